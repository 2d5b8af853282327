//! Pre-labeling image classes with a registered ONNX model, run with tract. Each image is
//! resized to the model's input (N × C × H × W, RGB scaled to 0–1, batch 1) and the first output
//! read as class scores: class i is the project's label i (labels past the model's outputs are
//! never suggested). Scores that are not already probabilities go through a softmax; the
//! confidence is the chosen class's share among the project's labels.

use std::path::PathBuf;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use super::assist::Prelabeled;
use super::project::{self, Filter, Project, Status};
use super::{Shape, Task, invalid};
use crate::Result;
use crate::tracking::Tracking;
use crate::tracking::api::ARTIFACTS_SCHEME;
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
    let dir = found
        .source
        .trim_start_matches(ARTIFACTS_SCHEME)
        .trim_end_matches('/')
        .to_owned();
    let files = tracking.artifact_tree(&dir)?;
    let (_, hash, _) = files
        .iter()
        .find(|(path, _, _)| path.ends_with(".onnx"))
        .ok_or_else(|| invalid(format!("model {reference} has no .onnx file")))?;
    Ok(tracking.blobs().path(hash))
}

/// Pre-labels the unlabeled items of an image classification project with `model`.
pub fn prelabel(
    ws: &Workspace,
    tracking: &Tracking,
    project: &Project,
    model: &str,
    threshold: f64,
) -> Result<Prelabeled> {
    if !matches!(
        project.task,
        Task::ImageClassification | Task::ImageMultiLabel
    ) {
        return Err(invalid(format!(
            "ONNX pre-labels are for image classification; {} is {}",
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
    let runnable = inference
        .with_input_fact(0, f32::fact([1, channels, height, width]).into())
        .and_then(InferenceModelExt::into_optimized)
        .and_then(IntoRunnable::into_runnable)
        .map_err(failed)?;
    let files = ws.version_files(project.version_id)?;
    let unlabeled = project::items(
        ws,
        project,
        &Filter {
            status: Some(Status::Unlabeled),
            label: None,
        },
    )?;
    let name = format!("model:{model}");
    let mut predictions = Vec::new();
    for item in &unlabeled {
        let file = &files[item.position as usize];
        // Blobs have no extension: the format is read from the bytes.
        let image = image::ImageReader::open(ws.blobs().path(&file.blob_hash))
            .and_then(image::ImageReader::with_guessed_format)
            .map_err(|e| invalid(format!("{}: {e}", file.path)))?
            .decode()
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
            }],
        ));
    }
    super::assist::store(ws, project, &name, &predictions, threshold)
}
