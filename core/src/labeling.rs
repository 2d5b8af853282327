//! Labeling: projects that annotate one image, text or table data asset version under a label
//! schema (a table's items are its rows, or rows a monitor sends later: `rows.rs`).
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
pub mod rows;
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
    /// A class for each row of a table (the ground truth of a classifier's predictions).
    RowClassification,
    /// A number for each row of a table (the ground truth of a regressor's predictions).
    RowValue,
}

impl Task {
    pub const ALL: [Task; 9] = [
        Task::ImageClassification,
        Task::ImageMultiLabel,
        Task::BoundingBoxes,
        Task::Polygons,
        Task::TextClassification,
        Task::TextMultiLabel,
        Task::EntitySpans,
        Task::RowClassification,
        Task::RowValue,
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
            Task::RowClassification => "row_classification",
            Task::RowValue => "row_value",
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
            Task::RowClassification | Task::RowValue => AssetKind::Table,
            _ => AssetKind::Text,
        }
    }

    /// Whether an item may carry more than one class label.
    pub fn multi_label(self) -> bool {
        matches!(self, Task::ImageMultiLabel | Task::TextMultiLabel)
    }

    /// Whether items are labeled with classes (one, or several): a labeled item has at least
    /// one. (Boxes, polygons and spans may be none: "nothing to mark here" is an answer.)
    pub fn classifies(self) -> bool {
        matches!(
            self,
            Task::ImageClassification
                | Task::ImageMultiLabel
                | Task::TextClassification
                | Task::TextMultiLabel
                | Task::RowClassification
        )
    }

    /// Whether items are table rows.
    pub fn rows(self) -> bool {
        matches!(self, Task::RowClassification | Task::RowValue)
    }
}

/// A class in a project's schema (for [`Task::RowValue`], its one label names the quantity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    /// The key that picks it: '1'–'9' for the first nine.
    pub hotkey: Option<char>,
    /// Its id in the label file it came from (a COCO category id such as 3, 7 or 12), so an
    /// export writes the same id back; labels added in Lathe have none and are numbered after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<i64>,
    /// COCO's `supercategory`, kept for the same reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supercategory: Option<String>,
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
            category_id: None,
            supercategory: None,
        })
        .collect()
}

/// A label to add to a schema: the palette's next colour and the first free hotkey.
pub fn next_label(labels: &[Label], name: &str) -> Label {
    Label {
        name: name.to_owned(),
        color: PALETTE[labels.len() % PALETTE.len()].to_owned(),
        hotkey: ('1'..='9').find(|k| labels.iter().all(|l| l.hotkey != Some(*k))),
        category_id: None,
        supercategory: None,
    }
}

/// What a label file says of a shape besides its geometry and label, kept so an export in the
/// same format writes it back: a COCO annotation's `id`, `iscrowd`, `area` and CVAT's
/// `attributes`; VOC's `difficult`, `truncated`, `occluded` and `pose`; a Label Studio
/// result's `id`. Empty for shapes made in Lathe.
pub type Attributes = std::collections::BTreeMap<String, serde_json::Value>;

/// Attributes that restate a shape's geometry as the file wrote it (COCO's `area` and `bbox`,
/// Label Studio's `percent`ages): written back while the geometry is as it was read, dropped by
/// [`Shape::reshaped`] once it changes.
const DERIVED_ATTRIBUTES: [&str; 3] = ["area", "bbox", "percent"];

/// One annotation on an item. Geometry is in image pixels; spans are character offsets
/// (end exclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    Class {
        label: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        #[serde(default, skip_serializing_if = "Attributes::is_empty")]
        attributes: Attributes,
    },
    Box {
        label: String,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        #[serde(default, skip_serializing_if = "Attributes::is_empty")]
        attributes: Attributes,
    },
    Polygon {
        label: String,
        points: Vec<[f64; 2]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        #[serde(default, skip_serializing_if = "Attributes::is_empty")]
        attributes: Attributes,
    },
    Span {
        label: String,
        start: usize,
        end: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        #[serde(default, skip_serializing_if = "Attributes::is_empty")]
        attributes: Attributes,
    },
    /// A number given to a row; `label` is the quantity (the project's one label, `price`).
    Value {
        label: String,
        value: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        #[serde(default, skip_serializing_if = "Attributes::is_empty")]
        attributes: Attributes,
    },
}

impl Shape {
    pub fn label(&self) -> &str {
        match self {
            Shape::Class { label, .. }
            | Shape::Box { label, .. }
            | Shape::Polygon { label, .. }
            | Shape::Span { label, .. }
            | Shape::Value { label, .. } => label,
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
                attributes: Default::default(),
            }
        } else {
            Shape::Box {
                label,
                x: x0,
                y: y0,
                w: x1 - x0,
                h: y1 - y0,
                confidence,
                attributes: Default::default(),
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
            Shape::Class { .. } | Shape::Span { .. } | Shape::Value { .. } => false,
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
            Shape::Class { .. } | Shape::Span { .. } | Shape::Value { .. } => {}
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

    /// What the label file the shape came from said of it besides its geometry.
    pub fn attributes(&self) -> &Attributes {
        match self {
            Shape::Class { attributes, .. }
            | Shape::Box { attributes, .. }
            | Shape::Polygon { attributes, .. }
            | Shape::Span { attributes, .. }
            | Shape::Value { attributes, .. } => attributes,
        }
    }

    pub fn attributes_mut(&mut self) -> &mut Attributes {
        match self {
            Shape::Class { attributes, .. }
            | Shape::Box { attributes, .. }
            | Shape::Polygon { attributes, .. }
            | Shape::Span { attributes, .. }
            | Shape::Value { attributes, .. } => attributes,
        }
    }

    /// The shape after its geometry was edited: attributes derived from the old geometry (a
    /// COCO area) no longer hold and are dropped; the others (ids, flags) stay.
    #[must_use]
    pub fn reshaped(mut self) -> Shape {
        self.attributes_mut()
            .retain(|key, _| !DERIVED_ATTRIBUTES.contains(&key.as_str()));
        self
    }

    /// A model's confidence in the shape, if a model made it.
    pub fn confidence(&self) -> Option<f64> {
        match self {
            Shape::Class { confidence, .. }
            | Shape::Box { confidence, .. }
            | Shape::Polygon { confidence, .. }
            | Shape::Span { confidence, .. }
            | Shape::Value { confidence, .. } => *confidence,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Shape::Class { .. } => "class",
            Shape::Box { .. } => "box",
            Shape::Polygon { .. } => "polygon",
            Shape::Span { .. } => "span",
            Shape::Value { .. } => "value",
        }
    }
}

/// What an item is, for checking shapes against it: an image's size, a text's length in
/// characters, or a table row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Extent {
    Image { width: u32, height: u32 },
    Text { chars: usize },
    Row,
}

/// How far outside its image a coordinate may lie and still be taken as on the edge, in
/// pixels, the same on every edge: float rounding in other tools' files (a box ending at
/// 640.0000001, a polygon point at -0.0000003) and half-pixel conventions. Further out is
/// refused.
pub const EDGE_TOLERANCE_PX: f64 = 0.5;

impl Shape {
    /// The shape as Lathe keeps it: a box with a negative width or height (as some tools write
    /// a box dragged up or to the left) starts at its other corner, and coordinates within
    /// [`EDGE_TOLERANCE_PX`] outside the image are pulled onto its edge. A coordinate further
    /// out is left as it is, for [`check_shapes`] to refuse. Untouched numbers stay exactly as
    /// they were read.
    pub fn normalized(self, extent: Extent) -> Shape {
        let Extent::Image { width, height } = extent else {
            return self;
        };
        let before = self.clone();
        let after = self.pulled_inside(width, height);
        if after == before {
            after
        } else {
            after.reshaped()
        }
    }

    fn pulled_inside(mut self, width: u32, height: u32) -> Shape {
        let (wf, hf) = (f64::from(width), f64::from(height));
        let onto_edge = |v: f64, size: f64| {
            if (-EDGE_TOLERANCE_PX..0.0).contains(&v) {
                0.0
            } else if v > size && v <= size + EDGE_TOLERANCE_PX {
                size
            } else {
                v
            }
        };
        match &mut self {
            Shape::Box { x, y, w, h, .. } => {
                if *w < 0.0 {
                    *x += *w;
                    *w = -*w;
                }
                if *h < 0.0 {
                    *y += *h;
                    *h = -*h;
                }
                let clamp = |start: &mut f64, length: &mut f64, size: f64| {
                    let (a, b) = (onto_edge(*start, size), onto_edge(*start + *length, size));
                    if a != *start || b != *start + *length {
                        *start = a;
                        *length = b - a;
                    }
                };
                clamp(x, w, wf);
                clamp(y, h, hf);
            }
            Shape::Polygon { points, .. } => {
                for [px, py] in points.iter_mut() {
                    *px = onto_edge(*px, wf);
                    *py = onto_edge(*py, hf);
                }
            }
            Shape::Class { .. } | Shape::Span { .. } | Shape::Value { .. } => {}
        }
        self
    }
}

/// Shapes from a label file as a project keeps them: each [`Shape::normalized`], then checked
/// with [`check_shapes`]. Every importer takes its shapes through here, so every format is
/// tolerant, and strict, in the same way.
pub fn accept_shapes(
    task: Task,
    labels: &[Label],
    extent: Extent,
    shapes: Vec<Shape>,
) -> Result<Vec<Shape>, String> {
    let shapes: Vec<Shape> = shapes.into_iter().map(|s| s.normalized(extent)).collect();
    check_shapes(task, labels, extent, &shapes)?;
    Ok(shapes)
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
    let values = shapes
        .iter()
        .filter(|s| matches!(s, Shape::Value { .. }))
        .count();
    if task == Task::RowValue && values != 1 {
        return Err(format!(
            "row_value takes one value per row, not {values}; type the number, or move on \
             without saving (N)"
        ));
    }
    if classes == 0 && task.classifies() {
        return Err(format!(
            "{} needs a label on every labeled item, and none is chosen; pick one (keys 1-9) \
             or move on without saving (N)",
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
                | (Task::RowClassification, Shape::Class { .. })
                | (Task::RowValue, Shape::Value { .. })
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
                let t = EDGE_TOLERANCE_PX;
                if *x < -t || *y < -t || x + w > wf + t || y + h > hf + t {
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
                        || *px < -EDGE_TOLERANCE_PX
                        || *py < -EDGE_TOLERANCE_PX
                        || *px > f64::from(width) + EDGE_TOLERANCE_PX
                        || *py > f64::from(height) + EDGE_TOLERANCE_PX
                });
                if let Some(p) = outside {
                    return Err(format!(
                        "{at}: point {} falls outside the {width} × {height} image",
                        p + 1
                    ));
                }
            }
            (Shape::Value { value, .. }, _) if !value.is_finite() => {
                return Err(format!("{at}: {value} is not a number"));
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

/// A stored coordinate as a label file writes it: a whole number as an integer, anything else
/// in its shortest form, which is the text it was read from.
pub(crate) fn exact(value: f64) -> serde_json::Value {
    const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0; // 2^53
    if !value.is_finite() {
        return serde_json::Value::Null;
    }
    if value.fract() == 0.0 && value.abs() < EXACT_INTEGERS {
        return serde_json::Value::from(value as i64);
    }
    serde_json::Value::from(value)
}

/// A computed coordinate or measure (a width from two corners, a percentage) as a label file
/// writes it: rounded to 15 significant digits, which removes the noise of float arithmetic
/// (52.779999999999994 → 52.78) and keeps every digit a labeling tool writes by hand; then
/// as [`exact`].
pub(crate) fn tidy(value: f64) -> serde_json::Value {
    exact(format!("{value:.14e}").parse().unwrap_or(value))
}

/// The errors of labeling: a project or item that is not there, a name taken, or a problem in
/// a label file, a shape or a schema, worded for the user with its place (`file: annotation 3:
/// …`).
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// `hint` suggests the nearest names (`; did you mean 'birds'?`) or is empty.
    #[error("there is no labeling project '{name}'{hint}")]
    NoProject { name: String, hint: String },
    #[error("project '{project}' has no item {position}")]
    NoItem { project: String, position: i64 },
    #[error("a project named '{name}' exists already")]
    ProjectExists { name: String },
    #[error("{0}")]
    Invalid(String),
}

impl From<String> for LabelError {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

impl From<&str> for LabelError {
    fn from(message: &str) -> Self {
        Self::Invalid(message.to_owned())
    }
}

/// A labeling problem, already worded for the user with its place.
pub(crate) fn invalid(message: impl Into<String>) -> crate::Error {
    crate::Error::Label(LabelError::Invalid(message.into()))
}

/// Item `position` of `project` is not there.
pub(crate) fn no_item(project: &str, position: i64) -> crate::Error {
    crate::Error::Label(LabelError::NoItem {
        project: project.to_owned(),
        position,
    })
}

/// `name` is taken by another project.
pub(crate) fn project_exists(name: &str) -> crate::Error {
    crate::Error::Label(LabelError::ProjectExists {
        name: name.to_owned(),
    })
}

/// A path's file name without its extension.
pub(crate) fn stem(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A name in Unicode's composed form (NFC). File names reach Lathe in either form — macOS
/// writes them decomposed (NFD), most tools composed — and `é` must find `é` either way.
pub(crate) fn nfc(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().collect()
}

/// The images of a version, found by the names label files give them: the same path, else the
/// same file name, else the same stem (labels often name a `.jpg` that the asset holds under
/// another name). Names match under Unicode normalization; the first image wins a tie.
pub(crate) struct ImageIndex {
    by_path: std::collections::HashMap<String, usize>,
    by_file_name: std::collections::HashMap<String, usize>,
    by_stem: std::collections::HashMap<String, usize>,
}

impl ImageIndex {
    pub(crate) fn new(files: &[crate::assets::VersionFile]) -> ImageIndex {
        let mut index = ImageIndex {
            by_path: std::collections::HashMap::new(),
            by_file_name: std::collections::HashMap::new(),
            by_stem: std::collections::HashMap::new(),
        };
        for (position, file) in files.iter().enumerate() {
            let path = nfc(&file.path);
            index.by_stem.entry(stem(&path)).or_insert(position);
            index
                .by_file_name
                .entry(file_name(&path))
                .or_insert(position);
            index.by_path.entry(path).or_insert(position);
        }
        index
    }

    /// The position of the image `name` (a path, a file name or a stem) names.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        let name = nfc(name);
        let name = name.trim_start_matches("./");
        self.by_path
            .get(name)
            .or_else(|| self.by_file_name.get(&file_name(name)))
            .or_else(|| self.by_stem.get(&stem(name)))
            .copied()
    }

    /// The position of the image whose file name without extension is `stem`.
    pub(crate) fn find_stem(&self, stem: &str) -> Option<usize> {
        self.by_stem.get(&nfc(stem)).copied()
    }
}

fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
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

/// A label file format: what labels are imported from and exported to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LabelFormat {
    /// COCO instances JSON: boxes, polygons, RLE masks (traced to polygons on import).
    #[default]
    Coco,
    /// YOLO text files, one per image, with normalized centre boxes.
    Yolo,
    /// Pascal VOC XML files, one per image.
    Voc,
    /// Label Studio's JSON export: image classes and boxes.
    LabelStudio,
    /// CoNLL-2003 / IOB tokens, one per line (entity spans).
    Conll,
    /// One JSON object per text, with character-offset spans.
    SpanJsonl,
    /// A text column and a label column (text classification).
    Csv,
}

impl LabelFormat {
    pub const ALL: [LabelFormat; 7] = [
        LabelFormat::Coco,
        LabelFormat::Yolo,
        LabelFormat::Voc,
        LabelFormat::LabelStudio,
        LabelFormat::Conll,
        LabelFormat::SpanJsonl,
        LabelFormat::Csv,
    ];

    /// The name the CLI and files use.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelFormat::Coco => "coco",
            LabelFormat::Yolo => "yolo",
            LabelFormat::Voc => "voc",
            LabelFormat::LabelStudio => "label-studio",
            LabelFormat::Conll => "conll",
            LabelFormat::SpanJsonl => "jsonl",
            LabelFormat::Csv => "csv",
        }
    }
}

impl std::fmt::Display for LabelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LabelFormat {
    type Err = crate::Error;

    /// A format by its name; `iob` is CoNLL and `spans` is span JSON Lines.
    fn from_str(name: &str) -> crate::Result<Self> {
        match name {
            "iob" => Ok(LabelFormat::Conll),
            "spans" => Ok(LabelFormat::SpanJsonl),
            _ => LabelFormat::ALL
                .into_iter()
                .find(|f| f.as_str() == name)
                .ok_or_else(|| {
                    invalid(format!(
                        "'{name}' is not a label format; use coco, yolo, voc, label-studio, \
                         conll, jsonl or csv"
                    ))
                }),
        }
    }
}

/// The export format that suits a task best.
pub fn default_format(task: Task) -> LabelFormat {
    match task {
        Task::BoundingBoxes | Task::Polygons => LabelFormat::Coco,
        Task::ImageClassification | Task::ImageMultiLabel => LabelFormat::LabelStudio,
        Task::TextClassification | Task::TextMultiLabel => LabelFormat::Csv,
        Task::EntitySpans => LabelFormat::Conll,
        Task::RowClassification | Task::RowValue => LabelFormat::Csv,
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Exported {
    /// Items written: images or texts, labeled or not, as far as the format holds them (COCO,
    /// Label Studio and the text formats list every item; YOLO and VOC write a file per labeled
    /// image).
    pub items: usize,
    /// Of those, the items that carry labels.
    pub labeled: usize,
    /// Annotations written: boxes, polygons, spans or classes.
    pub annotations: usize,
}

impl std::fmt::Display for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} item(s), {} labeled, {} annotation(s)",
            self.items, self.labeled, self.annotations
        )
    }
}

use text_formats::Format as Text;

/// Exports `project` in `format` to `dest` (a file, or a folder for yolo and voc); returns what
/// was written.
pub fn export(
    ws: &crate::Workspace,
    project: &project::Project,
    format: LabelFormat,
    dest: &std::path::Path,
) -> crate::Result<Exported> {
    let shapes_only = matches!(project.task, Task::BoundingBoxes | Task::Polygons);
    let holds = match format {
        LabelFormat::Coco => Some("boxes and polygons"),
        LabelFormat::Yolo | LabelFormat::Voc => Some("boxes"),
        _ => None,
    };
    if project.task.rows() {
        if format != LabelFormat::Csv {
            return Err(invalid(format!(
                "{format} does not hold table rows; export a {} project as csv",
                project.task.as_str()
            )));
        }
        return rows::export_csv(ws, project, dest);
    }
    if let Some(holds) = holds
        && !shapes_only
    {
        return Err(invalid(format!(
            "{format} holds {holds}; export a {} project as {}",
            project.task.as_str(),
            default_format(project.task)
        )));
    }
    match format {
        LabelFormat::Coco => coco::export_to(ws, project, dest),
        LabelFormat::Yolo => yolo::export(ws, project, dest),
        LabelFormat::Voc => voc::export(ws, project, dest),
        LabelFormat::LabelStudio => label_studio::export_to(ws, project, dest),
        LabelFormat::Conll => text_formats::export_to(ws, project, Text::Conll, dest),
        LabelFormat::SpanJsonl => text_formats::export_to(ws, project, Text::SpanJsonl, dest),
        LabelFormat::Csv => text_formats::export_to(ws, project, Text::Csv, dest),
    }
}

/// Creates project `name` from labels at `path` in `format`; image formats label the images of
/// `asset`, text formats bring their texts as a new text asset.
pub fn import(
    ws: &mut crate::Workspace,
    path: &std::path::Path,
    format: LabelFormat,
    name: &str,
    asset: Option<&crate::assets::AssetRef>,
) -> crate::Result<project::Project> {
    let images = || {
        asset.ok_or_else(|| {
            invalid(format!(
                "{format} labels images: name the image asset they are for"
            ))
        })
    };
    match format {
        LabelFormat::Coco => coco::import(ws, path, name, images()?),
        LabelFormat::Yolo => yolo::import(ws, path, name, images()?),
        LabelFormat::Voc => voc::import(ws, path, name, images()?),
        LabelFormat::LabelStudio => label_studio::import_file(ws, path, name, asset),
        LabelFormat::Conll => text_formats::import_file(ws, path, Text::Conll, name),
        LabelFormat::SpanJsonl => text_formats::import_file(ws, path, Text::SpanJsonl, name),
        LabelFormat::Csv => text_formats::import_file(ws, path, Text::Csv, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_formats_read_back_from_their_names() {
        for format in LabelFormat::ALL {
            assert_eq!(format.as_str().parse::<LabelFormat>().unwrap(), format);
        }
        assert_eq!("iob".parse::<LabelFormat>().unwrap(), LabelFormat::Conll);
        let unknown = "cvat".parse::<LabelFormat>().unwrap_err().to_string();
        assert!(
            unknown.contains("'cvat'") && unknown.contains("label-studio"),
            "{unknown}"
        );
    }

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
            attributes: Default::default(),
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
                attributes: Default::default(),
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
                attributes: Default::default(),
            },
            Shape::Class {
                label: "dog".into(),
                confidence: None,
                attributes: Default::default(),
            },
        ];
        assert!(check_shapes(Task::ImageClassification, &labels, image, &two).is_err());
        assert!(check_shapes(Task::ImageMultiLabel, &labels, image, &two).is_ok());
        let span = Shape::Span {
            label: "dog".into(),
            start: 3,
            end: 12,
            confidence: None,
            attributes: Default::default(),
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
