//! Label Studio's JSON export: a list of tasks, each with `data` (`image` or `text`) and
//! `annotations`, each a list of `result`s — `rectanglelabels` and `polygonlabels` in percent
//! of the image, `labels` (text spans), `choices`. Import takes each task's last annotation
//! that was not cancelled; images are matched by file name, texts become a text asset.
//! Normalization: rotation is not read (rotated boxes are refused); `from_name` is written as
//! `label`, `to_name` as `image` or `text`; ids, drafts and predictions are not kept.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::project::{self, Project};
use super::{Extent, Shape, Task, check_shapes, find_image, invalid, labels_from_names};
use crate::assets::AssetRef;
use crate::import::{ImportRequest, import};
use crate::jobs::Progress;
use crate::workspace::Workspace;
use crate::{Error, Result};

/// One result as a shape: box and polygon coordinates still in percent.
fn shape_of(result: &Value, at: &str) -> Result<Vec<Shape>> {
    let kind = result
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = result
        .get("value")
        .ok_or_else(|| invalid(format!("{at}: no \"value\"")))?;
    let names = |key: &str| -> Vec<String> {
        value
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let number = |key: &str| -> Result<f64> {
        value
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| invalid(format!("{at}: \"{key}\" is not a number")))
    };
    let first = |key: &str| -> Result<String> {
        names(key)
            .into_iter()
            .next()
            .ok_or_else(|| invalid(format!("{at}: no label in \"{key}\"")))
    };
    Ok(match kind {
        "rectanglelabels" => {
            if value.get("rotation").and_then(Value::as_f64).unwrap_or(0.0) != 0.0 {
                return Err(invalid(format!("{at}: rotated boxes are not supported")));
            }
            vec![Shape::Box {
                label: first("rectanglelabels")?,
                x: number("x")?,
                y: number("y")?,
                w: number("width")?,
                h: number("height")?,
                confidence: None,
            }]
        }
        "polygonlabels" => {
            let points = value
                .get("points")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid(format!("{at}: no \"points\"")))?
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([x, y]) => Ok([
                        x.as_f64().unwrap_or(f64::NAN),
                        y.as_f64().unwrap_or(f64::NAN),
                    ]),
                    _ => Err(invalid(format!("{at}: a point is [x, y]"))),
                })
                .collect::<Result<Vec<_>>>()?;
            vec![Shape::Polygon {
                label: first("polygonlabels")?,
                points,
                confidence: None,
            }]
        }
        "labels" => vec![Shape::Span {
            label: first("labels")?,
            start: number("start")? as usize,
            end: number("end")? as usize,
            confidence: None,
        }],
        "choices" => names("choices")
            .into_iter()
            .map(|label| Shape::Class {
                label,
                confidence: None,
            })
            .collect(),
        other => {
            return Err(invalid(format!(
                "{at}: '{other}' results are not supported"
            )));
        }
    })
}

/// Percent to pixels.
fn to_pixels(shape: Shape, width: f64, height: f64) -> Shape {
    match shape {
        Shape::Box {
            label,
            x,
            y,
            w,
            h,
            confidence,
        } => Shape::Box {
            label,
            x: x * width / 100.0,
            y: y * height / 100.0,
            w: w * width / 100.0,
            h: h * height / 100.0,
            confidence,
        },
        Shape::Polygon {
            label,
            points,
            confidence,
        } => Shape::Polygon {
            label,
            points: points
                .into_iter()
                .map(|[x, y]| [x * width / 100.0, y * height / 100.0])
                .collect(),
            confidence,
        },
        other => other,
    }
}

fn task_of(shapes: &[Vec<Shape>], images: bool) -> Task {
    let all = || shapes.iter().flatten();
    if all().any(|s| matches!(s, Shape::Polygon { .. })) {
        Task::Polygons
    } else if all().any(|s| matches!(s, Shape::Box { .. })) {
        Task::BoundingBoxes
    } else if all().any(|s| matches!(s, Shape::Span { .. })) {
        Task::EntitySpans
    } else {
        let multi = shapes.iter().any(|s| s.len() > 1);
        match (images, multi) {
            (true, false) => Task::ImageClassification,
            (true, true) => Task::ImageMultiLabel,
            (false, false) => Task::TextClassification,
            (false, true) => Task::TextMultiLabel,
        }
    }
}

/// Creates project `name` from a Label Studio export: over the image asset `asset` when the
/// tasks are images, else over a new text asset of their texts. All checked first.
pub fn import_file(
    ws: &mut Workspace,
    path: &Path,
    name: &str,
    asset: Option<&AssetRef>,
) -> Result<Project> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let tasks: Vec<Value> = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("{shown}: not a Label Studio export: {e}")))?;
    let mut rows = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let at = format!(
            "{shown}: task {}",
            t.get("id").map_or((i + 1).to_string(), ToString::to_string)
        );
        let data = t
            .get("data")
            .ok_or_else(|| invalid(format!("{at}: no \"data\"")))?;
        let annotation = t
            .get("annotations")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter().rev().find(|a| {
                    !a.get("was_cancelled")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                })
            });
        let mut shapes = Vec::new();
        for (j, result) in annotation
            .and_then(|a| a.get("result"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            shapes.extend(shape_of(result, &format!("{at}, result {}", j + 1))?);
        }
        rows.push((at, data.clone(), shapes));
    }
    let images = rows.iter().any(|(_, d, _)| d.get("image").is_some());
    let all_shapes: Vec<Vec<Shape>> = rows.iter().map(|(_, _, s)| s.clone()).collect();
    let task = task_of(&all_shapes, images);
    let names: BTreeSet<String> = all_shapes
        .iter()
        .flatten()
        .map(|s| s.label().to_owned())
        .collect();
    if names.is_empty() {
        return Err(invalid(format!("{shown}: no labels in it")));
    }
    let labels = labels_from_names(&names.into_iter().collect::<Vec<_>>());
    let mut by_item: BTreeMap<usize, Vec<Shape>> = BTreeMap::new();
    let target: AssetRef = if images {
        let asset =
            asset.ok_or_else(|| invalid("image tasks: --asset names the images they label"))?;
        let version = ws.resolve(asset)?;
        let files = ws.version_files(version.id)?;
        for (at, data, shapes) in rows {
            let image = data
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let position = find_image(&files, image).ok_or_else(|| {
                invalid(format!(
                    "{at}: image '{image}' is not in {}",
                    version.reference()
                ))
            })?;
            let file = &files[position];
            let shapes: Vec<Shape> = shapes
                .into_iter()
                .map(|s| to_pixels(s, f64::from(file.width), f64::from(file.height)))
                .collect();
            check_shapes(task, &labels, Extent::of_image(file), &shapes)
                .map_err(|e| invalid(format!("{at}: {e}")))?;
            by_item.entry(position).or_default().extend(shapes);
        }
        asset.clone()
    } else {
        let mut texts = Vec::new();
        for (i, (at, data, shapes)) in rows.into_iter().enumerate() {
            let text = data
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{at}: no \"text\" or \"image\" in data")))?;
            check_shapes(
                task,
                &labels,
                Extent::Text {
                    chars: text.chars().count(),
                },
                &shapes,
            )
            .map_err(|e| invalid(format!("{at}: {e}")))?;
            texts.push(text.replace(['\n', '\r'], " "));
            if !shapes.is_empty() {
                by_item.insert(i, shapes);
            }
        }
        if project::open(ws, name).is_ok() {
            return Err(invalid(format!("a project named '{name}' exists already")));
        }
        let staging = tempfile::tempdir().map_err(|e| Error::io("<temp>", e))?;
        let file = staging.path().join(format!("{name}.txt"));
        std::fs::write(&file, texts.join("\n") + "\n").map_err(|e| Error::io(&file, e))?;
        let request = ImportRequest {
            path: file,
            name: format!("{name}-texts"),
            kind: Some(crate::assets::AssetKind::Text),
            text_column: None,
            source_label: Some(format!("texts of {shown}")),
        };
        import(ws, &request, &Progress::default())?
            .version
            .reference()
            .parse()?
    };
    project::create_imported(ws, name, task, &target, labels, &by_item, path)
}

/// Writes the project as a Label Studio JSON export (a task per item; an annotation with each
/// labeled item's latest shapes), item by item.
pub fn export(ws: &Workspace, project: &Project, out: &mut dyn Write) -> Result<usize> {
    let io = |e: std::io::Error| Error::io("<export>", e);
    let images = project.task.asset_kind() == crate::assets::AssetKind::Images;
    let files = if images {
        ws.version_files(project.version_id)?
    } else {
        Vec::new()
    };
    let texts = if images {
        Vec::new()
    } else {
        crate::text::items(ws, &ws.version_by_id(project.version_id)?)?
    };
    let count = if images { files.len() } else { texts.len() };
    let mut latest: BTreeMap<i64, (String, Vec<Shape>)> = BTreeMap::new();
    project::for_each_latest(ws, project, |s| {
        latest.insert(s.position, (s.annotator, s.shapes));
        Ok(())
    })?;
    write!(out, "[").map_err(io)?;
    for i in 0..count {
        if i > 0 {
            write!(out, ",").map_err(io)?;
        }
        let (data, size) = if images {
            let f = &files[i];
            (
                json!({ "image": f.path }),
                Some((
                    f64::from(f.width.max(1)),
                    f64::from(f.height.max(1)),
                    f.width,
                    f.height,
                )),
            )
        } else {
            (json!({ "text": texts[i] }), None)
        };
        let to_name = if images { "image" } else { "text" };
        let results: Vec<Value> = latest
            .get(&(i as i64))
            .map(|(_, shapes)| {
                let classes: Vec<&str> = shapes.iter().filter(|s| matches!(s, Shape::Class { .. })).map(Shape::label).collect();
                let mut results: Vec<Value> = shapes
                    .iter()
                    .filter_map(|s| {
                        let mut r = match (s, size) {
                            (Shape::Box { label, x, y, w, h, .. }, Some((wf, hf, ow, oh))) => json!({ "type": "rectanglelabels", "original_width": ow, "original_height": oh,
                                "value": { "x": x * 100.0 / wf, "y": y * 100.0 / hf, "width": w * 100.0 / wf, "height": h * 100.0 / hf, "rotation": 0, "rectanglelabels": [label] } }),
                            (Shape::Polygon { label, points, .. }, Some((wf, hf, ow, oh))) => json!({ "type": "polygonlabels", "original_width": ow, "original_height": oh,
                                "value": { "points": points.iter().map(|[x, y]| [x * 100.0 / wf, y * 100.0 / hf]).collect::<Vec<_>>(), "polygonlabels": [label] } }),
                            (Shape::Span { label, start, end, .. }, _) => {
                                let text: String = texts.get(i).map(|t| t.chars().skip(*start).take(end - start).collect()).unwrap_or_default();
                                json!({ "type": "labels", "value": { "start": start, "end": end, "text": text, "labels": [label] } })
                            }
                            _ => return None,
                        };
                        r["from_name"] = json!("label");
                        r["to_name"] = json!(to_name);
                        Some(r)
                    })
                    .collect();
                if !classes.is_empty() {
                    results.push(json!({ "type": "choices", "from_name": "label", "to_name": to_name, "value": { "choices": classes } }));
                }
                results
            })
            .unwrap_or_default();
        let annotations = if latest.contains_key(&(i as i64)) {
            json!([{ "result": results, "was_cancelled": false }])
        } else {
            json!([])
        };
        serde_json::to_writer(
            &mut *out,
            &json!({ "id": i + 1, "data": data, "annotations": annotations }),
        )?;
    }
    write!(out, "]").map_err(io)?;
    Ok(count)
}

/// Exports to the file `dest` atomically; returns the count of tasks.
pub fn export_to(ws: &Workspace, project: &Project, dest: &Path) -> Result<usize> {
    super::write_atomically(dest, |out| export(ws, project, out))
}
