//! Pre-labeling images with a registered ONNX model, run with tract. Each image is resized to
//! the model's input (N × C × H × W, RGB scaled to 0–1, batch 1); class i is the project's label
//! i (labels past the model's classes are never suggested).
//!
//! Classification projects read the first output as class scores. Scores that are not already
//! probabilities go through a softmax; the confidence is the chosen class's share among the
//! project's labels.
//!
//! Box and polygon projects read detections in either of the two layouts exporters write:
//! one output of rows `x1, y1, x2, y2, score, class` (YOLO exported with NMS), or three
//! outputs — boxes `x1, y1, x2, y2`, scores and classes (torchvision detectors; the classes are
//! the integer output, or the one named for labels or classes). Coordinates up to 1.5 are read
//! as fractions of the image, larger ones as pixels of the model's input. Detections under
//! [`FLOOR`] are dropped and the [`MOST`] likeliest kept; a polygon project gets each box as a
//! four-cornered polygon.

use crate::labeling::LabelError;
use std::path::PathBuf;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::assist::Prelabeled;
use super::project::{self, Filter, Project};
use super::{Shape, Task, invalid};
use crate::Result;
use crate::jobs::Progress;
use crate::tracking::Tracking;
use crate::tracking::api::ARTIFACTS_SCHEME;
use crate::tracking::types::ModelVersion;
use crate::workspace::Workspace;

/// The ONNX file of registered model version `name:version`.
fn model_file(tracking: &Tracking, reference: &str) -> Result<PathBuf> {
    let (name, version) = reference.rsplit_once(':').ok_or_else(|| {
        invalid(format!(
            "'{reference}' names no version: write NAME:VERSION"
        ))
    })?;
    let (n, v) = (name.to_owned(), version.to_owned());
    let found = tracking.read(move |c| crate::tracking::registry::get_version(c, &n, &v))?;
    onnx_file(tracking, &found)?
        .ok_or_else(|| invalid(format!("model {reference} has no .onnx file")))
}

/// The ONNX file among a registered version's files, if it has one.
fn onnx_file(tracking: &Tracking, version: &ModelVersion) -> Result<Option<PathBuf>> {
    let dir = version
        .source
        .trim_start_matches(ARTIFACTS_SCHEME)
        .trim_end_matches('/');
    let files = tracking.artifact_tree(dir)?;
    Ok(files
        .iter()
        .find(|(path, _, _)| path.ends_with(".onnx"))
        .map(|(_, hash, _)| tracking.blobs().path(hash)))
}

/// The registered versions (`NAME:VERSION`, newest first within a name) that hold an ONNX file:
/// the models an image project can be pre-labeled with.
pub fn onnx_models(tracking: &Tracking) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (_, versions) in tracking.models()? {
        let mut versions = versions;
        versions.sort_by_key(|v| std::cmp::Reverse(v.version.parse::<i64>().unwrap_or(0)));
        for version in versions {
            if onnx_file(tracking, &version)?.is_some() {
                out.push(format!("{}:{}", version.name, version.version));
            }
        }
    }
    Ok(out)
}

/// Pre-labels the unlabeled items of an image classification project with `model`.
pub fn prelabel(
    ws: &Workspace,
    tracking: &Tracking,
    project: &Project,
    model: &str,
    threshold: f64,
    progress: &Progress,
) -> Result<Prelabeled> {
    if project.task.asset_kind() != crate::assets::AssetKind::Images {
        return Err(invalid(format!(
            "ONNX pre-labels are for image projects; {} is {}",
            project.name,
            project.task.as_str()
        )));
    }
    let path = model_file(tracking, model)?;
    let failed = |e: TractError| invalid(format!("model {model}: {e}"));
    let inference = tract_onnx::onnx().model_for_path(&path).map_err(failed)?;
    let dims: Vec<usize> = inference
        .input_fact(0)
        .map_err(failed)?
        .shape
        .dims()
        .map(|d| {
            d.concretize()
                .and_then(|d| d.as_i64())
                .map_or(1, |d| d.max(1) as usize)
        })
        .collect();
    let [_, channels, height, width] = dims[..] else {
        return Err(invalid(format!(
            "model {model}: its input is {dims:?}, not N × C × H × W"
        )));
    };
    let typed = inference
        .with_input_fact(0, f32::fact([1, channels, height, width]).into())
        .and_then(InferenceModelExt::into_optimized)
        .map_err(failed)?;
    let output_names: Vec<String> = typed
        .output_outlets()
        .map_err(failed)?
        .iter()
        .map(|o| typed.node(o.node).name.clone())
        .collect();
    let runnable = typed.into_runnable().map_err(failed)?;
    let files = ws.version_files(project.version_id)?;
    let unlabeled = project::items(ws, project, &Filter::unlabeled())?;
    let mut predictions = Vec::new();
    progress.start_stage("Pre-labeling", unlabeled.len() as u64);
    for item in &unlabeled {
        progress.check()?;
        progress.advance(1);
        let file = &files[item.position as usize];
        // Upright, as it was recorded and is shown; the format is read from the bytes.
        let image = crate::images::decode(&ws.blobs().path(&file.blob_hash))
            .map_err(|e| invalid(format!("{}: {e}", file.path)))?
            .resize_exact(
                width as u32,
                height as u32,
                image::imageops::FilterType::Triangle,
            )
            .to_rgb8();
        let input: Tensor =
            tract_ndarray::Array4::from_shape_fn((1, channels, height, width), |(_, c, y, x)| {
                f32::from(image.get_pixel(x as u32, y as u32)[c.min(2)]) / 255.0
            })
            .into();
        let outputs = runnable.run(tvec!(input.into())).map_err(failed)?;
        if matches!(project.task, Task::BoundingBoxes | Task::Polygons) {
            let rows = detections(&outputs, &output_names)
                .map_err(|e| invalid(format!("model {model}: {e}")))?;
            let shapes = detected_shapes(
                project,
                &rows,
                [width as f64, height as f64],
                [f64::from(file.width), f64::from(file.height)],
            );
            if !shapes.is_empty() {
                predictions.push((item.position, shapes));
            }
            continue;
        }
        let scores: Vec<f32> = outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(failed)?
            .iter()
            .copied()
            .collect();
        let n = scores.len().min(project.labels.len());
        if n == 0 {
            continue;
        }
        let probabilities = if scores.iter().all(|s| (0.0..=1.0).contains(s))
            && (scores.iter().sum::<f32>() - 1.0).abs() < 0.01
        {
            scores
        } else {
            let top = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = scores.iter().map(|s| (s - top).exp()).collect();
            let total: f32 = exp.iter().sum();
            exp.into_iter().map(|e| e / total).collect()
        };
        let within: f32 = probabilities[..n].iter().sum();
        let (best, p) = probabilities[..n]
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, p)| (i, *p))
            .unwrap_or((0, 0.0));
        let confidence = if within > 0.0 {
            f64::from(p / within)
        } else {
            0.0
        };
        predictions.push((
            item.position,
            vec![Shape::Class {
                label: project.labels[best].name.clone(),
                confidence: Some(confidence),
                attributes: Default::default(),
            }],
        ));
    }
    super::assist::store(ws, project, model, &predictions, threshold)
}

/// The lowest score a detection needs to be kept.
pub const FLOOR: f32 = 0.05;
/// The most detections kept per image, likeliest first (as COCO evaluates).
pub const MOST: usize = 100;

/// Detection rows `x1, y1, x2, y2, score, class` from a model's outputs, in either layout.
fn detections(
    outputs: &[TValue],
    names: &[String],
) -> std::result::Result<Vec<[f32; 6]>, LabelError> {
    let shapes: Vec<Vec<usize>> = outputs.iter().map(|o| o.shape().to_vec()).collect();
    let floats = |i: usize| -> std::result::Result<Vec<f32>, LabelError> {
        let cast = outputs[i].cast_to::<f32>().map_err(|e| e.to_string())?;
        let view = cast
            .to_plain_array_view::<f32>()
            .map_err(|e| e.to_string())?;
        Ok(view.iter().copied().collect())
    };
    let last = |i: usize| shapes[i].last().copied();
    if let Some(i) = (0..outputs.len()).find(|i| shapes[*i].len() >= 2 && last(*i) == Some(6)) {
        return Ok(floats(i)?
            .chunks_exact(6)
            .map(|r| [r[0], r[1], r[2], r[3], r[4], r[5]])
            .collect());
    }
    let neither = || {
        format!(
            "its outputs {shapes:?} are neither rows of x1, y1, x2, y2, score, class nor boxes, \
             scores and classes"
        )
    };
    let boxes = (0..outputs.len())
        .find(|i| shapes[*i].len() >= 2 && last(*i) == Some(4))
        .ok_or_else(neither)?;
    let rest: Vec<usize> = (0..outputs.len()).filter(|i| *i != boxes).collect();
    let is_integer = |i: &usize| outputs[*i].datum_type().is_integer();
    let named_for_classes = |i: &usize| {
        let name = names.get(*i).map(|n| n.to_lowercase()).unwrap_or_default();
        name.contains("label") || name.contains("class")
    };
    let classes = rest
        .iter()
        .find(|i| is_integer(i))
        .or_else(|| rest.iter().find(|i| named_for_classes(i)))
        .copied()
        .ok_or_else(neither)?;
    let scores = rest
        .iter()
        .find(|i| **i != classes && !is_integer(i))
        .copied()
        .ok_or_else(neither)?;
    let (boxes, scores, classes) = (floats(boxes)?, floats(scores)?, floats(classes)?);
    if boxes.len() != scores.len() * 4 || scores.len() != classes.len() {
        return Err(format!(
            "{} boxes, {} scores and {} classes do not match",
            boxes.len() / 4,
            scores.len(),
            classes.len()
        )
        .into());
    }
    Ok(boxes
        .chunks_exact(4)
        .zip(scores.iter().zip(&classes))
        .map(|(b, (s, c))| [b[0], b[1], b[2], b[3], *s, *c])
        .collect())
}

/// The project's shapes for detection rows: in the image's pixels, in the project's labels.
fn detected_shapes(
    project: &Project,
    rows: &[[f32; 6]],
    input: [f64; 2],
    image: [f64; 2],
) -> Vec<Shape> {
    let mut rows: Vec<&[f32; 6]> = rows
        .iter()
        .filter(|r| r[4] >= FLOOR && r[5] >= 0.0 && (r[5] as usize) < project.labels.len())
        .collect();
    rows.sort_by(|a, b| b[4].total_cmp(&a[4]));
    rows.truncate(MOST);
    let fractions = rows.iter().all(|r| r[..4].iter().all(|v| *v <= 1.5));
    let scale = if fractions {
        image
    } else {
        [image[0] / input[0], image[1] / input[1]]
    };
    rows.into_iter()
        .map(|r| {
            let x0 = (f64::from(r[0].min(r[2])) * scale[0]).clamp(0.0, image[0]);
            let y0 = (f64::from(r[1].min(r[3])) * scale[1]).clamp(0.0, image[1]);
            let x1 = (f64::from(r[0].max(r[2])) * scale[0]).clamp(0.0, image[0]);
            let y1 = (f64::from(r[1].max(r[3])) * scale[1]).clamp(0.0, image[1]);
            let label = project.labels[r[5] as usize].name.clone();
            Shape::rectangle(project.task, label, [x0, y0, x1, y1], Some(f64::from(r[4])))
        })
        .collect()
}
