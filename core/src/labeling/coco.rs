//! COCO object detection files: import into a new project (boxes, polygons, and RLE masks —
//! compressed or not — traced to polygons), and export a project, streamed item by item.

use crate::labeling::LabelError;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::project::{self, Imported, Project};
use super::{
    Attributes, Exported, Extent, ImageIndex, Shape, Task, accept_shapes, exact, invalid,
    labels_from_names, tidy,
};
use crate::assets::AssetRef;
use crate::workspace::Workspace;
use crate::{Error, Result};

#[derive(Deserialize)]
struct File {
    images: Vec<Image>,
    #[serde(default)]
    annotations: Vec<serde_json::Map<String, Value>>,
    categories: Vec<Category>,
}

#[derive(Deserialize)]
struct Image {
    id: i64,
    file_name: String,
}

#[derive(Deserialize)]
struct Category {
    id: i64,
    name: String,
    #[serde(default)]
    supercategory: Option<String>,
}

/// The fields of an annotation that are its place and geometry; the others (`id`, `iscrowd`,
/// `area`, CVAT's `attributes`, …) are kept on the shape as read. A polygon's `bbox` is kept
/// too, as read, while its points stay as they were.
const STRUCTURE: [&str; 3] = ["image_id", "category_id", "segmentation"];

/// Creates project `name` over `asset` from the COCO file at `path`, every annotation checked
/// first: nothing is stored unless all of it is good. A file with any segmentation makes a
/// polygon project, in which annotations with only a `bbox` stay boxes; category ids,
/// supercategories, image ids and annotation ids are kept for the export.
pub fn import(ws: &mut Workspace, path: &Path, name: &str, asset: &AssetRef) -> Result<Project> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file: File = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("{shown}: not a COCO file: {e}")))?;
    let version = ws.resolve(asset)?;
    let files = ws.version_files(version.id)?;
    let categories: BTreeMap<i64, &str> = file
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    let index = ImageIndex::new(&files);
    let mut images = BTreeMap::new();
    let mut imported = Imported::default();
    for image in &file.images {
        let position = index.find(&image.file_name).ok_or_else(|| {
            invalid(format!(
                "{shown}: image {} ('{}') is not in {}",
                image.id,
                image.file_name,
                version.reference()
            ))
        })?;
        images.insert(image.id, (position, &files[position]));
        imported.item_ids.insert(position, image.id);
    }
    let segmented = file
        .annotations
        .iter()
        .any(|a| has_segmentation(a.get("segmentation").unwrap_or(&Value::Null)));
    let task = if segmented {
        Task::Polygons
    } else {
        Task::BoundingBoxes
    };
    let mut labels = labels_from_names(
        &file
            .categories
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
    );
    for (label, category) in labels.iter_mut().zip(&file.categories) {
        label.category_id = Some(category.id);
        label.supercategory.clone_from(&category.supercategory);
    }
    for (i, a) in file.annotations.iter().enumerate() {
        let at = format!(
            "{shown}: annotation {}",
            a.get("id")
                .map_or_else(|| format!("#{}", i + 1), Value::to_string)
        );
        let field = |key: &str| a.get(key).and_then(Value::as_i64);
        let category_id = field("category_id")
            .ok_or_else(|| invalid(format!("{at}: category_id must be a whole number")))?;
        let label = categories
            .get(&category_id)
            .ok_or_else(|| {
                invalid(format!(
                    "{at}: category {category_id} is not among the categories"
                ))
            })?
            .to_string();
        let image_id = field("image_id")
            .ok_or_else(|| invalid(format!("{at}: image_id must be a whole number")))?;
        let (position, image) = images
            .get(&image_id)
            .ok_or_else(|| invalid(format!("{at}: image {image_id} is not among the images")))?;
        let extent = Extent::of_image(image);
        let mut shapes = shapes_of(a, &label, extent).map_err(|e| invalid(format!("{at}: {e}")))?;
        let attributes: Attributes = a
            .iter()
            .filter(|(k, _)| !STRUCTURE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let traced = a.get("segmentation").is_some_and(Value::is_object);
        for shape in &mut shapes {
            *shape.attributes_mut() = attributes.clone();
            if traced {
                // An RLE mask traced to a polygon: the file's bbox and area are the mask's,
                // not this outline's.
                *shape = shape.clone().reshaped();
            }
        }
        let shapes = accept_shapes(task, &labels, extent, shapes)
            .map_err(|e| invalid(format!("{at} on {}: {e}", image.path)))?;
        imported.shapes.entry(*position).or_default().extend(shapes);
    }
    project::create_imported(ws, name, task, asset, labels, &imported, path)
}

fn has_segmentation(segmentation: &Value) -> bool {
    match segmentation {
        Value::Array(parts) => !parts.is_empty(),
        Value::Object(_) => true,
        _ => false,
    }
}

/// The shapes of one annotation: its polygons, its RLE mask traced to a polygon, or else its
/// box.
fn shapes_of(
    a: &serde_json::Map<String, Value>,
    label: &str,
    image: Extent,
) -> std::result::Result<Vec<Shape>, LabelError> {
    let polygon = |points: Vec<[f64; 2]>| Shape::Polygon {
        label: label.to_owned(),
        points,
        confidence: None,
        attributes: Attributes::new(),
    };
    match a.get("segmentation").unwrap_or(&Value::Null) {
        Value::Array(parts) if !parts.is_empty() => parts
            .iter()
            .map(|part| {
                let flat: Vec<f64> = part
                    .as_array()
                    .ok_or("a polygon is a list of numbers")?
                    .iter()
                    .map(|v| v.as_f64().ok_or("a polygon is a list of numbers"))
                    .collect::<std::result::Result<_, _>>()?;
                if !flat.len().is_multiple_of(2) {
                    return Err(LabelError::from(
                        "a polygon has an odd count of coordinates",
                    ));
                }
                Ok(polygon(flat.chunks(2).map(|p| [p[0], p[1]]).collect()))
            })
            .collect(),
        Value::Object(rle) => {
            let mask = decode_rle(rle, image)?;
            Ok(vec![polygon(mask.outline())])
        }
        _ => {
            let bbox = a
                .get("bbox")
                .and_then(Value::as_array)
                .filter(|b| b.len() == 4)
                .ok_or("neither a segmentation nor a bbox [x, y, width, height]")?;
            let n = |i: usize| bbox[i].as_f64().ok_or("a bbox is four numbers");
            Ok(vec![Shape::Box {
                label: label.to_owned(),
                x: n(0)?,
                y: n(1)?,
                w: n(2)?,
                h: n(3)?,
                confidence: None,
                attributes: Attributes::new(),
            }])
        }
    }
}

/// A binary mask, row-major.
#[derive(Debug)]
struct Mask {
    width: usize,
    height: usize,
    bits: Vec<bool>,
}

/// COCO run-length encoding: `{size: [h, w], counts}` with counts a list, or COCO's compressed
/// string. Runs alternate 0 and 1 (starting with 0) over the pixels in column-major order.
/// The size must be the image's own, checked before anything is allocated: a mask is the
/// image's pixels, and a forged size must not reserve memory the image never needs.
fn decode_rle(
    rle: &serde_json::Map<String, Value>,
    image: Extent,
) -> std::result::Result<Mask, LabelError> {
    let size = rle
        .get("size")
        .and_then(Value::as_array)
        .filter(|s| s.len() == 2)
        .ok_or("an RLE mask needs size [height, width]")?;
    let whole = |v: &Value| v.as_u64().ok_or("size must be whole numbers");
    let (height, width) = (whole(&size[0])?, whole(&size[1])?);
    if let Extent::Image {
        width: image_width,
        height: image_height,
    } = image
        && (u64::from(image_width), u64::from(image_height)) != (width, height)
    {
        return Err(format!(
            "the RLE mask's size is {height} × {width} (height × width), but the image is \
             {image_height} × {image_width}"
        )
        .into());
    }
    let (height, width) = (
        usize::try_from(height).map_err(|_| "the RLE size is too large")?,
        usize::try_from(width).map_err(|_| "the RLE size is too large")?,
    );
    let counts: Vec<u64> = match rle.get("counts") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_u64().ok_or("RLE counts must be whole numbers"))
            .collect::<std::result::Result<_, _>>()?,
        Some(Value::String(text)) => decompress_counts(text)?,
        _ => return Err("an RLE mask needs counts".into()),
    };
    let total = width
        .checked_mul(height)
        .ok_or("the RLE size is too large")?;
    let mut column_major = vec![false; total];
    let (mut at, mut on) = (0usize, false);
    for run in counts {
        let end = at.saturating_add(run as usize);
        if end > total {
            return Err(format!("the RLE runs past the {height} × {width} mask").into());
        }
        if on {
            column_major[at..end].fill(true);
        }
        at = end;
        on = !on;
    }
    let mut bits = vec![false; total];
    for (i, b) in column_major.into_iter().enumerate() {
        let (x, y) = (i / height, i % height);
        bits[y * width + x] = b;
    }
    Ok(Mask {
        width,
        height,
        bits,
    })
}

/// pycocotools' `rleFrString`: 5 bits a character, a continuation bit, a sign bit, and counts
/// after the second stored as differences.
fn decompress_counts(text: &str) -> std::result::Result<Vec<u64>, LabelError> {
    let bytes = text.as_bytes();
    let mut counts: Vec<i64> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k, mut more) = (0i64, 0u32, true);
        while more {
            let c = i64::from(*bytes.get(p).ok_or("the compressed RLE ends mid-number")?) - 48;
            x |= (c & 0x1f) << (5 * k);
            more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more && c & 0x10 != 0 {
                x |= -1i64 << (5 * k);
            }
        }
        if counts.len() > 2 {
            x += counts[counts.len() - 2];
        }
        counts.push(x);
    }
    counts
        .into_iter()
        .map(|c| {
            u64::try_from(c).map_err(|_| LabelError::from("the compressed RLE has a negative run"))
        })
        .collect()
}

impl Mask {
    fn at(&self, x: i64, y: i64) -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < self.width
            && (y as usize) < self.height
            && self.bits[y as usize * self.width + x as usize]
    }

    /// The outer boundary of the first region (in reading order), traced through its edge
    /// pixels' centres (Moore neighbourhood), with straight runs reduced to their ends.
    fn outline(&self) -> Vec<[f64; 2]> {
        let Some(first) = self.bits.iter().position(|b| *b) else {
            return Vec::new();
        };
        let start = ((first % self.width) as i64, (first / self.width) as i64);
        // Clockwise from west, y pointing down.
        const AROUND: [(i64, i64); 8] = [
            (-1, 0),
            (-1, -1),
            (0, -1),
            (1, -1),
            (1, 0),
            (1, 1),
            (0, 1),
            (-1, 1),
        ];
        let mut path = vec![start];
        let (mut current, mut from) = (start, 0usize);
        for _ in 0..self.bits.len() * 4 {
            let next = (0..8).map(|i| (from + i) % 8).find(|&d| {
                let (dx, dy) = AROUND[d];
                self.at(current.0 + dx, current.1 + dy)
            });
            let Some(d) = next else { break };
            current = (current.0 + AROUND[d].0, current.1 + AROUND[d].1);
            // Look next from the neighbour before the one we came from.
            from = (d + 5) % 8;
            if current == start {
                break;
            }
            path.push(current);
        }
        let n = path.len();
        let kept: Vec<(i64, i64)> = (0..n)
            .filter(|&i| {
                let (a, b, c) = (path[(i + n - 1) % n], path[i], path[(i + 1) % n]);
                (b.0 - a.0) * (c.1 - b.1) != (b.1 - a.1) * (c.0 - b.0) || n < 4
            })
            .map(|i| path[i])
            .collect();
        if kept.len() < 3 {
            // A sliver: its pixel square instead.
            let (x, y) = (start.0 as f64, start.1 as f64);
            return vec![[x, y], [x + 1.0, y], [x + 1.0, y + 1.0], [x, y + 1.0]];
        }
        kept.into_iter()
            .map(|(x, y)| [x as f64 + 0.5, y as f64 + 0.5])
            .collect()
    }
}

/// Writes the project as a COCO file, item by item (memory stays flat however many items):
/// the latest submission of every labeled item. Ids read from a COCO file (categories, images,
/// annotations) are written back as they were, with `supercategory` and the annotations' other
/// fields; what was made in Lathe is numbered after the largest id read. A polygon's `bbox` and
/// `area` are written as read while its points are unchanged, else computed (its bounds; the
/// shoelace area), and numbers are [`tidy`].
pub fn export(ws: &Workspace, project: &Project, out: &mut dyn Write) -> Result<Exported> {
    let files = ws.version_files(project.version_id)?;
    let mut next_category = project
        .labels
        .iter()
        .filter_map(|l| l.category_id)
        .max()
        .unwrap_or(0);
    let category_ids: Vec<i64> = project
        .labels
        .iter()
        .map(|l| {
            l.category_id.unwrap_or_else(|| {
                next_category += 1;
                next_category
            })
        })
        .collect();
    let categories: Vec<Value> = project
        .labels
        .iter()
        .zip(&category_ids)
        .map(|(l, id)| {
            json!({ "id": id, "name": l.name,
                    "supercategory": l.supercategory.clone().unwrap_or_default() })
        })
        .collect();
    let category = |label: &str| {
        project
            .labels
            .iter()
            .position(|l| l.name == label)
            .map_or(0, |i| category_ids[i])
    };
    let item_ids = project::item_ids(ws, project)?;
    let mut next_image = item_ids.values().copied().max().unwrap_or(0);
    let image_ids: Vec<i64> = (0..files.len() as i64)
        .map(|position| {
            item_ids.get(&position).copied().unwrap_or_else(|| {
                next_image += 1;
                next_image
            })
        })
        .collect();
    let io = |e: std::io::Error| Error::io("<export>", e);
    write!(
        out,
        "{{\"info\":{},\"categories\":",
        json!({ "description": format!("Lathe project {}", project.name) })
    )
    .map_err(io)?;
    serde_json::to_writer(&mut *out, &categories)?;
    write!(out, ",\"images\":[").map_err(io)?;
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            write!(out, ",").map_err(io)?;
        }
        serde_json::to_writer(
            &mut *out,
            &json!({ "id": image_ids[i], "file_name": f.path, "width": f.width, "height": f.height }),
        )?;
    }
    write!(out, "],\"annotations\":[").map_err(io)?;
    let mut next_id = project::max_shape_id(ws, project)?;
    let mut used = std::collections::HashSet::new();
    let mut written = 0usize;
    let mut labeled = 0usize;
    project::for_each_latest(ws, project, |submission| {
        labeled += 1;
        for shape in &submission.shapes {
            let (bbox, segmentation, area) = match shape {
                Shape::Box { x, y, w, h, .. } => (
                    [*x, *y, *w, *h].map(exact).to_vec(),
                    Value::Array(Vec::new()),
                    w * h,
                ),
                Shape::Polygon { points, .. } => {
                    let [x0, y0, x1, y1] = shape.bounds().unwrap_or_default();
                    let flat: Vec<Value> = points
                        .iter()
                        .flat_map(|p| [exact(p[0]), exact(p[1])])
                        .collect();
                    (
                        vec![exact(x0), exact(y0), tidy(x1 - x0), tidy(y1 - y0)],
                        json!([flat]),
                        shoelace(points),
                    )
                }
                _ => continue,
            };
            let mut annotation = shape.attributes().clone();
            let id = match annotation.get("id").and_then(Value::as_i64) {
                Some(id) if used.insert(id) => id,
                _ => loop {
                    next_id += 1;
                    if used.insert(next_id) {
                        break next_id;
                    }
                },
            };
            annotation.insert("id".into(), json!(id));
            annotation.insert(
                "image_id".into(),
                json!(image_ids[submission.position as usize]),
            );
            annotation.insert("category_id".into(), json!(category(shape.label())));
            annotation.insert("segmentation".into(), segmentation);
            annotation
                .entry("bbox".to_owned())
                .or_insert(Value::Array(bbox));
            annotation
                .entry("area".to_owned())
                .or_insert_with(|| tidy(area));
            annotation.entry("iscrowd".to_owned()).or_insert(json!(0));
            if written > 0 {
                write!(out, ",").map_err(io)?;
            }
            written += 1;
            serde_json::to_writer(&mut *out, &annotation)?;
        }
        Ok(())
    })?;
    write!(out, "]}}").map_err(io)?;
    Ok(Exported {
        items: files.len(),
        labeled,
        annotations: written,
    })
}

/// Exports to the file `dest`, written beside it and renamed into place (no half-written
/// file is ever left); returns the count of annotations.
pub fn export_to(ws: &Workspace, project: &Project, dest: &Path) -> Result<Exported> {
    crate::files::write_atomically(dest, |out| export(ws, project, out))
}

fn shoelace(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum::<f64>()
        .abs()
        / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle_masks_decode_and_outline() {
        // A 4 × 4 mask with a 2 × 2 square at (1, 1): column-major runs.
        let image = Extent::Image {
            width: 4,
            height: 4,
        };
        let rle = json!({ "size": [4, 4], "counts": [5, 2, 2, 2, 5] });
        let mask = decode_rle(rle.as_object().unwrap(), image).unwrap();
        assert!(mask.at(1, 1) && mask.at(2, 2) && !mask.at(0, 0) && !mask.at(3, 3));
        let outline = mask.outline();
        assert_eq!(outline, [[1.5, 1.5], [2.5, 1.5], [2.5, 2.5], [1.5, 2.5]]);
        // The compressed form of the same runs.
        assert_eq!(decompress_counts("52203").unwrap(), [5, 2, 2, 2, 5]);
        let bad = json!({ "size": [4, 4], "counts": [3, 50] });
        assert!(
            decode_rle(bad.as_object().unwrap(), image)
                .unwrap_err()
                .to_string()
                .contains("runs past")
        );
        // A forged size is refused before anything is allocated, however large.
        for size in [
            json!([100000, 100000]),
            json!([u64::MAX, u64::MAX]),
            json!([4, 5]),
        ] {
            let forged = json!({ "size": size, "counts": [1] });
            let e = decode_rle(forged.as_object().unwrap(), image).unwrap_err();
            assert!(e.to_string().contains("but the image is 4 × 4"), "{e}");
        }
    }
}
