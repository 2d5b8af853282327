//! Label Studio's JSON export: a list of tasks, each with `data` (`image` or `text`) and
//! `annotations`, each a list of `result`s — `rectanglelabels` and `polygonlabels` in percent
//! of the image, `labels` (text spans), `choices`. Import takes each task's last annotation
//! that was not cancelled; images are matched by file name, texts become a text asset.
//! Normalization: rotation is not read (rotated boxes are refused); `from_name` is written as
//! `label`, `to_name` as `image` or `text`; drafts and predictions are not kept. Task ids and
//! result ids are kept and written back, and so are a shape's percentages as read while its
//! geometry is unchanged (Label Studio writes them with all 17 digits).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::project::{self, Imported, Project};
use super::{
    Attributes, Exported, Extent, ImageIndex, Shape, Task, accept_shapes, invalid,
    labels_from_names, tidy,
};
use crate::assets::AssetRef;
use crate::import::{ImportRequest, import};
use crate::jobs::Progress;
use crate::workspace::Workspace;
use crate::{Error, Result};

/// One result as shapes (box and polygon coordinates still in percent), with its `id` and its
/// geometry as read kept as attributes.
fn shape_of(result: &Value, at: &str) -> Result<Vec<Shape>> {
    let mut shapes = shapes_of_result(result, at)?;
    let mut attributes = Attributes::new();
    if let Some(id) = result.get("id") {
        attributes.insert("id".into(), id.clone());
    }
    if let Some(value) = result.get("value") {
        let geometry: serde_json::Map<String, Value> = ["x", "y", "width", "height", "points"]
            .iter()
            .filter_map(|k| Some(((*k).to_owned(), value.get(*k)?.clone())))
            .collect();
        if !geometry.is_empty() {
            attributes.insert("percent".into(), Value::Object(geometry));
        }
    }
    for shape in &mut shapes {
        *shape.attributes_mut() = attributes.clone();
    }
    Ok(shapes)
}

fn shapes_of_result(result: &Value, at: &str) -> Result<Vec<Shape>> {
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
                attributes: Default::default(),
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
                attributes: Default::default(),
            }]
        }
        "labels" => vec![Shape::Span {
            label: first("labels")?,
            start: number("start")? as usize,
            end: number("end")? as usize,
            confidence: None,
            attributes: Default::default(),
        }],
        "choices" => names("choices")
            .into_iter()
            .map(|label| Shape::Class {
                label,
                confidence: None,
                attributes: Default::default(),
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
            attributes,
        } => Shape::Box {
            label,
            x: x * width / 100.0,
            y: y * height / 100.0,
            w: w * width / 100.0,
            h: h * height / 100.0,
            confidence,
            attributes,
        },
        Shape::Polygon {
            label,
            points,
            confidence,
            attributes,
        } => Shape::Polygon {
            label,
            points: points
                .into_iter()
                .map(|[x, y]| [x * width / 100.0, y * height / 100.0])
                .collect(),
            confidence,
            attributes,
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
        let id = t.get("id").and_then(Value::as_i64);
        rows.push((at, data.clone(), shapes, id));
    }
    let images = rows.iter().any(|(_, d, _, _)| d.get("image").is_some());
    let all_shapes: Vec<Vec<Shape>> = rows.iter().map(|(_, _, s, _)| s.clone()).collect();
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
    let mut imported = Imported::default();
    let target: AssetRef = if images {
        let asset =
            asset.ok_or_else(|| invalid("image tasks: --asset names the images they label"))?;
        let version = ws.resolve(asset)?;
        let files = ws.version_files(version.id)?;
        let index = ImageIndex::new(&files);
        for (at, data, shapes, id) in rows {
            if shapes.is_empty() && task.classifies() {
                // A task nobody answered: unlabeled, not labeled with nothing.
                continue;
            }
            let image = data
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let position = index.find(image).ok_or_else(|| {
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
            let shapes = accept_shapes(task, &labels, Extent::of_image(file), shapes)
                .map_err(|e| invalid(format!("{at}: {e}")))?;
            imported.shapes.entry(position).or_default().extend(shapes);
            if let Some(id) = id {
                imported.item_ids.insert(position, id);
            }
        }
        asset.clone()
    } else {
        let mut texts = Vec::new();
        for (i, (at, data, shapes, id)) in rows.into_iter().enumerate() {
            let text = data
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{at}: no \"text\" or \"image\" in data")))?;
            let unanswered = shapes.is_empty() && task.classifies();
            let shapes = if unanswered {
                shapes
            } else {
                accept_shapes(
                    task,
                    &labels,
                    Extent::Text {
                        chars: text.chars().count(),
                    },
                    shapes,
                )
                .map_err(|e| invalid(format!("{at}: {e}")))?
            };
            texts.push(text.replace(['\n', '\r'], " "));
            if !shapes.is_empty() {
                imported.shapes.insert(i, shapes);
            }
            if let Some(id) = id {
                imported.item_ids.insert(i, id);
            }
        }
        if project::open(ws, name).is_ok() {
            return Err(super::project_exists(name));
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
    project::create_imported(ws, name, task, &target, labels, &imported, path)
}

/// Writes the project as a Label Studio JSON export (a task per item; an annotation with each
/// labeled item's latest shapes), item by item.
pub fn export(ws: &Workspace, project: &Project, out: &mut dyn Write) -> Result<Exported> {
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
    let task_ids = project::item_ids(ws, project)?;
    let mut next_task = task_ids.values().copied().max().unwrap_or(0);
    // A shape's percentages as read while its geometry is unchanged; else computed.
    let percent = |s: &Shape, key: &str, computed: Value| {
        s.attributes()
            .get("percent")
            .and_then(|p| p.get(key))
            .cloned()
            .unwrap_or(computed)
    };
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
                                "value": { "x": percent(s, "x", tidy(x * 100.0 / wf)), "y": percent(s, "y", tidy(y * 100.0 / hf)),
                                           "width": percent(s, "width", tidy(w * 100.0 / wf)), "height": percent(s, "height", tidy(h * 100.0 / hf)),
                                           "rotation": 0, "rectanglelabels": [label] } }),
                            (Shape::Polygon { label, points, .. }, Some((wf, hf, ow, oh))) => json!({ "type": "polygonlabels", "original_width": ow, "original_height": oh,
                                "value": { "points": percent(s, "points", points.iter().map(|[x, y]| json!([tidy(x * 100.0 / wf), tidy(y * 100.0 / hf)])).collect()),
                                           "polygonlabels": [label] } }),
                            (Shape::Span { label, start, end, .. }, _) => {
                                let text: String = texts.get(i).map(|t| t.chars().skip(*start).take(end - start).collect()).unwrap_or_default();
                                json!({ "type": "labels", "value": { "start": start, "end": end, "text": text, "labels": [label] } })
                            }
                            _ => return None,
                        };
                        r["from_name"] = json!("label");
                        r["to_name"] = json!(to_name);
                        if let Some(id) = s.attributes().get("id") {
                            r["id"] = id.clone();
                        }
                        Some(r)
                    })
                    .collect();
                if !classes.is_empty() {
                    let mut choices = json!({ "type": "choices", "from_name": "label", "to_name": to_name, "value": { "choices": classes } });
                    if let Some(id) = shapes.iter().find(|s| matches!(s, Shape::Class { .. })).and_then(|s| s.attributes().get("id")) {
                        choices["id"] = id.clone();
                    }
                    results.push(choices);
                }
                results
            })
            .unwrap_or_default();
        let annotations = if latest.contains_key(&(i as i64)) {
            json!([{ "result": results, "was_cancelled": false }])
        } else {
            json!([])
        };
        let id = task_ids.get(&(i as i64)).copied().unwrap_or_else(|| {
            next_task += 1;
            next_task
        });
        serde_json::to_writer(
            &mut *out,
            &json!({ "id": id, "data": data, "annotations": annotations }),
        )?;
    }
    write!(out, "]").map_err(io)?;
    Ok(Exported {
        items: count,
        labeled: latest.len(),
        annotations: latest.values().map(|(_, shapes)| shapes.len()).sum(),
    })
}

/// Exports to the file `dest` atomically; returns the count of tasks.
pub fn export_to(ws: &Workspace, project: &Project, dest: &Path) -> Result<Exported> {
    crate::files::write_atomically(dest, |out| export(ws, project, out))
}
