//! COCO object detection files: import into a new project (boxes, polygons, and RLE masks —
//! compressed or not — traced to polygons), and export a project, streamed item by item.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::project::{self, Project};
use super::{Extent, Label, Shape, Task, check_shapes, find_image, invalid, labels_from_names};
use crate::assets::AssetRef;
use crate::workspace::Workspace;
use crate::{Error, Result};

#[derive(Deserialize)]
struct File {
    images: Vec<Image>,
    #[serde(default)]
    annotations: Vec<Annotation>,
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
}

#[derive(Deserialize)]
struct Annotation {
    #[serde(default)]
    id: Value,
    image_id: i64,
    category_id: i64,
    #[serde(default)]
    bbox: Option<[f64; 4]>,
    #[serde(default)]
    segmentation: Value,
}

/// Creates project `name` over `asset` from the COCO file at `path`, every annotation checked
/// first: nothing is stored unless all of it is good.
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
    let mut images = BTreeMap::new();
    for image in &file.images {
        let position = find_image(&files, &image.file_name).ok_or_else(|| {
            invalid(format!(
                "{shown}: image {} ('{}') is not in {}",
                image.id,
                image.file_name,
                version.reference()
            ))
        })?;
        images.insert(image.id, (position, &files[position]));
    }
    let segmented = file
        .annotations
        .iter()
        .any(|a| has_segmentation(&a.segmentation));
    let task = if segmented {
        Task::Polygons
    } else {
        Task::BoundingBoxes
    };
    let labels = labels_from_names(
        &file
            .categories
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
    );
    let mut by_item: BTreeMap<usize, Vec<Shape>> = BTreeMap::new();
    for a in &file.annotations {
        let at = format!("{shown}: annotation {}", a.id);
        let label = categories
            .get(&a.category_id)
            .ok_or_else(|| {
                invalid(format!(
                    "{at}: category {} is not among the categories",
                    a.category_id
                ))
            })?
            .to_string();
        let (position, image) = images.get(&a.image_id).ok_or_else(|| {
            invalid(format!(
                "{at}: image {} is not among the images",
                a.image_id
            ))
        })?;
        let shapes = shapes_of(a, &label, segmented).map_err(|e| invalid(format!("{at}: {e}")))?;
        let extent = Extent::of_image(image);
        check_shapes(task, &labels, extent, &shapes)
            .map_err(|e| invalid(format!("{at} on {}: {e}", image.path)))?;
        by_item.entry(*position).or_default().extend(shapes);
    }
    project::create_imported(ws, name, task, asset, labels, &by_item, path)
}

fn has_segmentation(segmentation: &Value) -> bool {
    match segmentation {
        Value::Array(parts) => !parts.is_empty(),
        Value::Object(_) => true,
        _ => false,
    }
}

fn shapes_of(
    a: &Annotation,
    label: &str,
    segmented: bool,
) -> std::result::Result<Vec<Shape>, String> {
    let polygon = |points: Vec<[f64; 2]>| Shape::Polygon {
        label: label.to_owned(),
        points,
        confidence: None,
    };
    match &a.segmentation {
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
                    return Err("a polygon has an odd count of coordinates".to_owned());
                }
                Ok(polygon(flat.chunks(2).map(|p| [p[0], p[1]]).collect()))
            })
            .collect(),
        Value::Object(rle) => {
            let mask = decode_rle(rle)?;
            Ok(vec![polygon(mask.outline())])
        }
        _ => {
            let [x, y, w, h] = a.bbox.ok_or("neither a segmentation nor a bbox")?;
            Ok(vec![if segmented {
                polygon(vec![[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
            } else {
                Shape::Box {
                    label: label.to_owned(),
                    x,
                    y,
                    w,
                    h,
                    confidence: None,
                }
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
fn decode_rle(rle: &serde_json::Map<String, Value>) -> std::result::Result<Mask, String> {
    let size = rle
        .get("size")
        .and_then(Value::as_array)
        .filter(|s| s.len() == 2)
        .ok_or("an RLE mask needs size [height, width]")?;
    let height = size[0].as_u64().ok_or("size must be whole numbers")? as usize;
    let width = size[1].as_u64().ok_or("size must be whole numbers")? as usize;
    let counts: Vec<u64> = match rle.get("counts") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_u64().ok_or("RLE counts must be whole numbers"))
            .collect::<std::result::Result<_, _>>()?,
        Some(Value::String(text)) => decompress_counts(text)?,
        _ => return Err("an RLE mask needs counts".into()),
    };
    let total = width * height;
    let mut column_major = vec![false; total];
    let (mut at, mut on) = (0usize, false);
    for run in counts {
        let end = at.saturating_add(run as usize);
        if end > total {
            return Err(format!("the RLE runs past the {height} × {width} mask"));
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
fn decompress_counts(text: &str) -> std::result::Result<Vec<u64>, String> {
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
        .map(|c| u64::try_from(c).map_err(|_| "the compressed RLE has a negative run".to_owned()))
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
/// the latest submission of every labeled item.
pub fn export(ws: &Workspace, project: &Project, out: &mut dyn Write) -> Result<usize> {
    let files = ws.version_files(project.version_id)?;
    let categories: Vec<Value> = project
        .labels
        .iter()
        .enumerate()
        .map(|(i, l): (usize, &Label)| json!({ "id": i + 1, "name": l.name, "supercategory": "" }))
        .collect();
    let category = |label: &str| {
        project
            .labels
            .iter()
            .position(|l| l.name == label)
            .map_or(0, |i| i + 1)
    };
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
            &json!({ "id": i + 1, "file_name": f.path, "width": f.width, "height": f.height }),
        )?;
    }
    write!(out, "],\"annotations\":[").map_err(io)?;
    let mut written = 0usize;
    project::for_each_latest(ws, project, |submission| {
        for shape in &submission.shapes {
            let (bbox, segmentation) = match shape {
                Shape::Box { x, y, w, h, .. } => ([*x, *y, *w, *h], Value::Array(Vec::new())),
                Shape::Polygon { points, .. } => {
                    let [x0, y0, x1, y1] = shape.bounds().unwrap_or_default();
                    let flat: Vec<f64> = points.iter().flat_map(|p| [p[0], p[1]]).collect();
                    ([x0, y0, x1 - x0, y1 - y0], json!([flat]))
                }
                _ => continue,
            };
            let area = match shape {
                Shape::Polygon { points, .. } => shoelace(points),
                _ => bbox[2] * bbox[3],
            };
            if written > 0 {
                write!(out, ",").map_err(io)?;
            }
            written += 1;
            serde_json::to_writer(
                &mut *out,
                &json!({ "id": written, "image_id": submission.position + 1,
                         "category_id": category(shape.label()), "bbox": bbox,
                         "segmentation": segmentation, "area": area, "iscrowd": 0 }),
            )?;
        }
        Ok(())
    })?;
    write!(out, "]}}").map_err(io)?;
    Ok(written)
}

/// Exports to the file `dest`, written beside it and renamed into place (no half-written
/// file is ever left); returns the count of annotations.
pub fn export_to(ws: &Workspace, project: &Project, dest: &Path) -> Result<usize> {
    super::write_atomically(dest, |out| export(ws, project, out))
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
        let rle = json!({ "size": [4, 4], "counts": [5, 2, 2, 2, 5] });
        let mask = decode_rle(rle.as_object().unwrap()).unwrap();
        assert!(mask.at(1, 1) && mask.at(2, 2) && !mask.at(0, 0) && !mask.at(3, 3));
        let outline = mask.outline();
        assert_eq!(outline, [[1.5, 1.5], [2.5, 1.5], [2.5, 2.5], [1.5, 2.5]]);
        // The compressed form of the same runs.
        assert_eq!(decompress_counts("52203").unwrap(), [5, 2, 2, 2, 5]);
        let bad = json!({ "size": [2, 2], "counts": [3, 5] });
        assert!(
            decode_rle(bad.as_object().unwrap())
                .unwrap_err()
                .contains("runs past")
        );
    }
}
