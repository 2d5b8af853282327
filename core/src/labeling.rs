//! Labeling: projects that annotate one image or text data asset version under a label schema.
//! Every submission of shapes is kept with who made it, when and from where (a person, an
//! import, a model's pre-label); reviews accept or reject; an item's status is kept on the item
//! for filtering. Formats in and out live beside (`coco.rs`).

pub mod agreement;
pub mod assist;
pub mod coco;
pub mod dataset;
pub mod label_studio;
pub mod onnx_assist;
pub mod project;
pub mod regions;
pub mod text_formats;
pub mod voc;
pub mod yolo;

use serde::{Deserialize, Serialize};

use crate::assets::AssetKind;

/// What a project asks of each item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    ImageClassification,
    ImageMultiLabel,
    BoundingBoxes,
    Polygons,
    TextClassification,
    TextMultiLabel,
    EntitySpans,
}

impl Task {
    pub const ALL: [Task; 7] = [
        Task::ImageClassification,
        Task::ImageMultiLabel,
        Task::BoundingBoxes,
        Task::Polygons,
        Task::TextClassification,
        Task::TextMultiLabel,
        Task::EntitySpans,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::ImageClassification => "image_classification",
            Task::ImageMultiLabel => "image_multi_label",
            Task::BoundingBoxes => "bounding_boxes",
            Task::Polygons => "polygons",
            Task::TextClassification => "text_classification",
            Task::TextMultiLabel => "text_multi_label",
            Task::EntitySpans => "entity_spans",
        }
    }

    pub fn parse(text: &str) -> Result<Task, String> {
        Task::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                let all: Vec<&str> = Task::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "'{text}' is not a labeling task; use one of {}",
                    all.join(", ")
                )
            })
    }

    /// The kind of data asset the task labels.
    pub fn asset_kind(self) -> AssetKind {
        match self {
            Task::ImageClassification
            | Task::ImageMultiLabel
            | Task::BoundingBoxes
            | Task::Polygons => AssetKind::Images,
            _ => AssetKind::Text,
        }
    }

    /// Whether an item may carry more than one class label.
    pub fn multi_label(self) -> bool {
        matches!(self, Task::ImageMultiLabel | Task::TextMultiLabel)
    }
}

/// A class in a project's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    /// The key that picks it: '1'–'9' for the first nine.
    pub hotkey: Option<char>,
}

/// Colours given to labels in order when none is chosen.
const PALETTE: [&str; 10] = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990",
];

/// A schema from label names: colours from a palette, hotkeys 1–9.
pub fn labels_from_names(names: &[String]) -> Vec<Label> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| Label {
            name: name.clone(),
            color: PALETTE[i % PALETTE.len()].to_owned(),
            hotkey: char::from_digit(i as u32 + 1, 10).filter(|_| i < 9),
        })
        .collect()
}

/// A label to add to a schema: the palette's next colour and the first free hotkey.
pub fn next_label(labels: &[Label], name: &str) -> Label {
    Label {
        name: name.to_owned(),
        color: PALETTE[labels.len() % PALETTE.len()].to_owned(),
        hotkey: ('1'..='9').find(|k| labels.iter().all(|l| l.hotkey != Some(*k))),
    }
}

/// One annotation on an item. Geometry is in image pixels; spans are character offsets
/// (end exclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    Class {
        label: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
    },
    Box {
        label: String,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
    },
    Polygon {
        label: String,
        points: Vec<[f64; 2]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
    },
    Span {
        label: String,
        start: usize,
        end: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
    },
}

impl Shape {
    pub fn label(&self) -> &str {
        match self {
            Shape::Class { label, .. }
            | Shape::Box { label, .. }
            | Shape::Polygon { label, .. }
            | Shape::Span { label, .. } => label,
        }
    }

    /// The rectangle from (x0, y0) to (x1, y1) as the task draws it: a box, or a polygon of its
    /// four corners.
    pub fn rectangle(
        task: Task,
        label: String,
        [x0, y0, x1, y1]: [f64; 4],
        confidence: Option<f64>,
    ) -> Shape {
        if task == Task::Polygons {
            Shape::Polygon {
                label,
                points: vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                confidence,
            }
        } else {
            Shape::Box {
                label,
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
                confidence,
            }
        }
    }

    /// Whether a box or polygon covers a point of the image (even–odd rule for polygons).
    pub fn covers(&self, [px, py]: [f64; 2]) -> bool {
        match self {
            Shape::Box { x, y, w, h, .. } => px >= *x && px < x + w && py >= *y && py < y + h,
            Shape::Polygon { points, .. } => {
                let mut inside = false;
                let mut j = points.len().wrapping_sub(1);
                for (i, [xi, yi]) in points.iter().enumerate() {
                    let [xj, yj] = points[j];
                    if (*yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
                        inside = !inside;
                    }
                    j = i;
                }
                inside
            }
            Shape::Class { .. } | Shape::Span { .. } => false,
        }
    }

    /// A box or polygon moved by (dx, dy); other shapes as they are.
    pub fn translated(&self, dx: f64, dy: f64) -> Shape {
        let mut moved = self.clone();
        match &mut moved {
            Shape::Box { x, y, .. } => {
                *x += dx;
                *y += dy;
            }
            Shape::Polygon { points, .. } => {
                for p in points {
                    p[0] += dx;
                    p[1] += dy;
                }
            }
            Shape::Class { .. } | Shape::Span { .. } => {}
        }
        moved
    }

    /// The box or polygon's bounds: left, top, right, bottom.
    pub fn bounds(&self) -> Option<[f64; 4]> {
        match self {
            Shape::Box { x, y, w, h, .. } => Some([*x, *y, x + w, y + h]),
            Shape::Polygon { points, .. } if !points.is_empty() => Some(points.iter().fold(
                [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
                |[l, t, r, b], [x, y]| [l.min(*x), t.min(*y), r.max(*x), b.max(*y)],
            )),
            _ => None,
        }
    }

    /// A model's confidence in the shape, if a model made it.
    pub fn confidence(&self) -> Option<f64> {
        match self {
            Shape::Class { confidence, .. }
            | Shape::Box { confidence, .. }
            | Shape::Polygon { confidence, .. }
            | Shape::Span { confidence, .. } => *confidence,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Shape::Class { .. } => "class",
            Shape::Box { .. } => "box",
            Shape::Polygon { .. } => "polygon",
            Shape::Span { .. } => "span",
        }
    }
}

/// What an item is, for checking shapes against it: an image's size, or a text's length in
/// characters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Extent {
    Image { width: u32, height: u32 },
    Text { chars: usize },
}

/// Checks shapes against the task, the schema and the item; the error names the shape.
pub fn check_shapes(
    task: Task,
    labels: &[Label],
    extent: Extent,
    shapes: &[Shape],
) -> Result<(), String> {
    let classes = shapes
        .iter()
        .filter(|s| matches!(s, Shape::Class { .. }))
        .count();
    if classes > 1 && !task.multi_label() {
        return Err(format!(
            "{} takes one class per item, not {classes}",
            task.as_str()
        ));
    }
    for (i, shape) in shapes.iter().enumerate() {
        let at = format!("shape {} ({} '{}')", i + 1, shape.kind(), shape.label());
        if !labels.iter().any(|l| l.name == shape.label()) {
            let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
            return Err(format!(
                "{at}: no such label; the project has {}",
                names.join(", ")
            ));
        }
        let fits = matches!(
            (task, shape),
            (
                Task::ImageClassification
                    | Task::ImageMultiLabel
                    | Task::TextClassification
                    | Task::TextMultiLabel,
                Shape::Class { .. },
            ) | (Task::BoundingBoxes, Shape::Box { .. })
                | (Task::Polygons, Shape::Polygon { .. } | Shape::Box { .. })
                | (Task::EntitySpans, Shape::Span { .. })
        );
        if !fits {
            return Err(format!(
                "{at}: a {} project has no {}s",
                task.as_str(),
                shape.kind()
            ));
        }
        match (shape, extent) {
            (Shape::Box { x, y, w, h, .. }, Extent::Image { width, height }) => {
                let (wf, hf) = (f64::from(width), f64::from(height));
                let finite = [x, y, w, h].iter().all(|v| v.is_finite());
                if !finite || *w <= 0.0 || *h <= 0.0 {
                    return Err(format!("{at}: width and height must be positive numbers"));
                }
                if *x < 0.0 || *y < 0.0 || x + w > wf + 0.5 || y + h > hf + 0.5 {
                    return Err(format!(
                        "{at}: the box ({x}, {y}, {w} × {h}) falls outside the {width} × {height} image"
                    ));
                }
            }
            (Shape::Polygon { points, .. }, Extent::Image { width, height }) => {
                if points.len() < 3 {
                    return Err(format!("{at}: a polygon needs at least 3 points"));
                }
                let outside = points.iter().position(|[px, py]| {
                    !px.is_finite()
                        || !py.is_finite()
                        || *px < -0.5
                        || *py < -0.5
                        || *px > f64::from(width) + 0.5
                        || *py > f64::from(height) + 0.5
                });
                if let Some(p) = outside {
                    return Err(format!(
                        "{at}: point {} falls outside the {width} × {height} image",
                        p + 1
                    ));
                }
            }
            (Shape::Span { start, end, .. }, Extent::Text { chars })
                if start >= end || *end > chars =>
            {
                return Err(format!(
                    "{at}: the span {start}..{end} does not lie within the text's {chars} characters"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A labeling problem, already worded for the user.
pub(crate) fn invalid(message: impl Into<String>) -> crate::Error {
    crate::Error::Label(message.into())
}

/// A path's file name without its extension.
pub(crate) fn stem(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The image of a version that a label file names: the same path, else the same file name,
/// else the same stem (labels often name a `.jpg` that the asset holds under another name).
pub(crate) fn find_image(files: &[crate::assets::VersionFile], name: &str) -> Option<usize> {
    let file_name = |p: &str| {
        std::path::Path::new(p)
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
    };
    files
        .iter()
        .position(|f| f.path == name)
        .or_else(|| {
            files
                .iter()
                .position(|f| file_name(&f.path) == file_name(name))
        })
        .or_else(|| files.iter().position(|f| stem(&f.path) == stem(name)))
}

impl Extent {
    /// An image file's extent, from the size recorded when it was imported.
    pub fn of_image(file: &crate::assets::VersionFile) -> Extent {
        Extent::Image {
            width: file.width,
            height: file.height,
        }
    }
}

/// The formats labels are exported to (and imported from).
pub const FORMATS: [&str; 8] = [
    "coco",
    "yolo",
    "voc",
    "label-studio",
    "conll",
    "jsonl",
    "csv",
    "iob",
];

fn unknown_format(format: &str, what: &str) -> crate::Error {
    crate::Error::Label(format!(
        "'{format}' is not an {what} format; use coco, yolo, voc, label-studio, conll, jsonl or csv"
    ))
}

/// The export format that suits a task best.
pub fn default_format(task: Task) -> &'static str {
    match task {
        Task::BoundingBoxes | Task::Polygons => "coco",
        Task::ImageClassification | Task::ImageMultiLabel => "label-studio",
        Task::TextClassification | Task::TextMultiLabel => "csv",
        Task::EntitySpans => "conll",
    }
}

/// Exports `project` in `format` to `dest` (a file, or a folder for yolo and voc); returns how
/// many items or annotations were written.
pub fn export(
    ws: &crate::Workspace,
    project: &project::Project,
    format: &str,
    dest: &std::path::Path,
) -> crate::Result<usize> {
    let shapes_only = matches!(project.task, Task::BoundingBoxes | Task::Polygons);
    if matches!(format, "coco" | "yolo" | "voc") && !shapes_only {
        return Err(crate::Error::Label(format!(
            "{format} holds boxes{}; export a {} project as {}",
            if format == "coco" {
                " and polygons"
            } else {
                ""
            },
            project.task.as_str(),
            default_format(project.task)
        )));
    }
    match (format, text_formats::Format::parse(format)) {
        ("coco", _) => coco::export_to(ws, project, dest),
        ("yolo", _) => yolo::export(ws, project, dest),
        ("voc", _) => voc::export(ws, project, dest),
        ("label-studio", _) => label_studio::export_to(ws, project, dest),
        (_, Some(text)) => text_formats::export_to(ws, project, text, dest),
        _ => Err(unknown_format(format, "export")),
    }
}

/// Creates project `name` from labels at `path` in `format`; image formats label the images of
/// `asset`, text formats bring their texts as a new text asset.
pub fn import(
    ws: &mut crate::Workspace,
    path: &std::path::Path,
    format: &str,
    name: &str,
    asset: Option<&crate::assets::AssetRef>,
) -> crate::Result<project::Project> {
    let images = || {
        asset.ok_or_else(|| {
            crate::Error::Label(format!(
                "{format} labels images: name the image asset they are for"
            ))
        })
    };
    match (format, text_formats::Format::parse(format)) {
        ("coco", _) => coco::import(ws, path, name, images()?),
        ("yolo", _) => yolo::import(ws, path, name, images()?),
        ("voc", _) => voc::import(ws, path, name, images()?),
        ("label-studio", _) => label_studio::import_file(ws, path, name, asset),
        (_, Some(text)) => text_formats::import_file(ws, path, text, name),
        _ => Err(unknown_format(format, "import")),
    }
}

/// Writes `dest` through `write`, beside it first and renamed into place, so no half-written
/// file is ever left; returns what `write` returns.
pub fn write_atomically(
    dest: &std::path::Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> crate::Result<usize>,
) -> crate::Result<usize> {
    use std::io::Write;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| crate::Error::io(dir, e))?;
    let written = {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        let n = write(&mut out)?;
        out.flush().map_err(|e| crate::Error::io(dest, e))?;
        n
    };
    tmp.persist(dest)
        .map_err(|e| crate::Error::io(dest, e.error))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_against_task_schema_and_item() {
        let labels = labels_from_names(&["cat".into(), "dog".into()]);
        assert_eq!(labels[1].hotkey, Some('2'));
        let image = Extent::Image {
            width: 100,
            height: 50,
        };
        let boxed = |x: f64, w: f64| Shape::Box {
            label: "cat".into(),
            x,
            y: 0.0,
            w,
            h: 10.0,
            confidence: None,
        };
        assert!(check_shapes(Task::BoundingBoxes, &labels, image, &[boxed(10.0, 20.0)]).is_ok());
        let e =
            check_shapes(Task::BoundingBoxes, &labels, image, &[boxed(90.0, 20.0)]).unwrap_err();
        assert!(
            e.starts_with("shape 1 (box 'cat'): the box (90, 0, 20 × 10) falls outside"),
            "{e}"
        );
        let e = check_shapes(
            Task::ImageClassification,
            &labels,
            image,
            &[Shape::Class {
                label: "cow".into(),
                confidence: None,
            }],
        )
        .unwrap_err();
        assert_eq!(
            e,
            "shape 1 (class 'cow'): no such label; the project has cat, dog"
        );
        let two = [
            Shape::Class {
                label: "cat".into(),
                confidence: None,
            },
            Shape::Class {
                label: "dog".into(),
                confidence: None,
            },
        ];
        assert!(check_shapes(Task::ImageClassification, &labels, image, &two).is_err());
        assert!(check_shapes(Task::ImageMultiLabel, &labels, image, &two).is_ok());
        let span = Shape::Span {
            label: "dog".into(),
            start: 3,
            end: 12,
            confidence: None,
        };
        let e = check_shapes(
            Task::EntitySpans,
            &labels,
            Extent::Text { chars: 10 },
            &[span],
        )
        .unwrap_err();
        assert!(
            e.contains("does not lie within the text's 10 characters"),
            "{e}"
        );
    }
}
