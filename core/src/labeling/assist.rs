//! ML-assisted labeling with built-in baselines that learn from the project's own labels:
//! naive Bayes over words for text classes, nearest class centroid over small colour
//! thumbnails for image classes, a dictionary of already-labeled strings for entity spans, and
//! colour regions for boxes and polygons (`regions.rs`).
//! Pre-labels (with a confidence) are stored per item and model; the annotator is offered
//! those above a threshold, and a submission that keeps one records it as its source.

use std::collections::{BTreeMap, HashMap};

use rusqlite::params;
use serde::Serialize;

use super::project::{self, Filter, Project};
use super::{Shape, Task};
use crate::Result;
use crate::jobs::Progress;
use crate::workspace::Workspace;

/// The name a baseline's pre-labels are stored and credited under.
pub fn baseline_name(task: Task) -> &'static str {
    match task {
        Task::TextClassification | Task::TextMultiLabel => "baseline:naive-bayes",
        Task::ImageClassification | Task::ImageMultiLabel => "baseline:nearest-centroid",
        Task::EntitySpans => "baseline:dictionary",
        Task::BoundingBoxes | Task::Polygons => "baseline:colour-regions",
        Task::RowClassification | Task::RowValue => "baseline:none",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prelabeled {
    pub model: String,
    /// Items given a pre-label.
    pub items: usize,
    /// Of those, how many have a shape at or above the threshold.
    pub confident: usize,
}

/// Trains the project's baseline on its labeled items and pre-labels the unlabeled ones. A
/// cancelled run keeps the pre-labels stored before it.
pub fn prelabel(
    ws: &Workspace,
    project: &Project,
    threshold: f64,
    progress: &Progress,
) -> Result<Prelabeled> {
    let model = baseline_name(project.task);
    if project.task.rows() {
        return Err(super::invalid(
            "rows have no baseline to pre-label with: the rows a monitor sends carry the \
             model's own answer and why they were sent",
        ));
    }
    let labeled = project::latest_all(ws, project)?;
    if labeled.is_empty() {
        return Err(super::invalid(
            "label a few items first: the baseline learns from them",
        ));
    }
    let unlabeled = project::items(ws, project, &Filter::unlabeled())?;
    let predictions: Vec<(i64, Vec<Shape>)> = match project.task {
        Task::RowClassification | Task::RowValue => Vec::new(),
        Task::TextClassification | Task::TextMultiLabel => {
            let texts = texts(ws, project)?;
            let train: Vec<(&str, &str)> = labeled
                .iter()
                .filter_map(|s| {
                    Some((
                        texts.get(s.position as usize)?.as_str(),
                        s.shapes.first()?.label(),
                    ))
                })
                .collect();
            let bayes = NaiveBayes::fit(&train);
            unlabeled
                .iter()
                .filter_map(|i| {
                    let (label, p) = bayes.predict(texts.get(i.position as usize)?)?;
                    Some((
                        i.position,
                        vec![Shape::Class {
                            label,
                            confidence: Some(p),
                            attributes: Default::default(),
                        }],
                    ))
                })
                .collect()
        }
        Task::ImageClassification | Task::ImageMultiLabel => {
            let files = ws.version_files(project.version_id)?;
            let features = |position: i64| -> Result<Vec<f32>> {
                let file = &files[position as usize];
                let thumb = crate::images::thumbnail(&ws.blobs().path(&file.blob_hash), 8)?;
                Ok(colour_features(&thumb))
            };
            let mut centroids: BTreeMap<String, (Vec<f32>, f32)> = BTreeMap::new();
            progress.start_stage("Learning from the labeled images", labeled.len() as u64);
            for s in &labeled {
                progress.check()?;
                progress.advance(1);
                let Some(label) = s.shapes.first().map(Shape::label) else {
                    continue;
                };
                let f = features(s.position)?;
                let entry = centroids
                    .entry(label.to_owned())
                    .or_insert_with(|| (vec![0.0; f.len()], 0.0));
                entry.0.iter_mut().zip(&f).for_each(|(a, b)| *a += b);
                entry.1 += 1.0;
            }
            let centroids: Vec<(String, Vec<f32>)> = centroids
                .into_iter()
                .map(|(l, (sum, n))| (l, sum.into_iter().map(|v| v / n).collect()))
                .collect();
            let mut out = Vec::new();
            progress.start_stage("Pre-labeling", unlabeled.len() as u64);
            for item in &unlabeled {
                progress.check()?;
                progress.advance(1);
                let f = features(item.position)?;
                let distances: Vec<f32> = centroids
                    .iter()
                    .map(|(_, c)| {
                        c.iter()
                            .zip(&f)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f32>()
                            .sqrt()
                    })
                    .collect();
                // Closer is likelier: a softmax of negative distances, sharpened.
                let weights: Vec<f64> = distances
                    .iter()
                    .map(|d| (-f64::from(*d) * 20.0).exp())
                    .collect();
                let total: f64 = weights.iter().sum();
                if let Some((best, w)) =
                    weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))
                    && total > 0.0
                {
                    out.push((
                        item.position,
                        vec![Shape::Class {
                            label: centroids[best].0.clone(),
                            confidence: Some(w / total),
                            attributes: Default::default(),
                        }],
                    ));
                }
            }
            out
        }
        Task::EntitySpans => {
            let texts = texts(ws, project)?;
            // Every labeled string with how often it had each label.
            let mut seen: HashMap<String, BTreeMap<String, usize>> = HashMap::new();
            for s in &labeled {
                let Some(text) = texts.get(s.position as usize) else {
                    continue;
                };
                let chars: Vec<char> = text.chars().collect();
                for shape in &s.shapes {
                    if let Shape::Span {
                        label, start, end, ..
                    } = shape
                    {
                        let surface: String = chars
                            [(*start).min(chars.len())..(*end).min(chars.len())]
                            .iter()
                            .collect();
                        *seen
                            .entry(surface)
                            .or_default()
                            .entry(label.clone())
                            .or_default() += 1;
                    }
                }
            }
            unlabeled
                .iter()
                .filter_map(|item| {
                    let text = texts.get(item.position as usize)?;
                    let spans = dictionary_spans(text, &seen);
                    (!spans.is_empty()).then_some((item.position, spans))
                })
                .collect()
        }
        Task::BoundingBoxes | Task::Polygons => {
            super::regions::predict(ws, project, &labeled, &unlabeled, progress)?
        }
    };
    store(ws, project, model, &predictions, threshold)
}

/// Replaces `model`'s pre-labels of the project with `predictions` (item position → shapes).
pub fn store(
    ws: &Workspace,
    project: &Project,
    model: &str,
    predictions: &[(i64, Vec<Shape>)],
    threshold: f64,
) -> Result<Prelabeled> {
    let confident = predictions
        .iter()
        .filter(|(_, shapes)| !offered(shapes, threshold).is_empty())
        .count();
    ws.write(|tx| {
    tx.execute(
        "DELETE FROM label_predictions WHERE project_id = ?1 AND model = ?2",
        params![project.id, model],
    )?;
    for (position, shapes) in predictions {
        tx.execute(
            "INSERT INTO label_predictions (project_id, position, model, shapes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![project.id, position, model, serde_json::to_string(shapes)?, crate::db::now_millis()],
        )?;
    }
    Ok(())
    })?;
    Ok(Prelabeled {
        model: model.to_owned(),
        items: predictions.len(),
        confident,
    })
}

/// The shapes of a pre-label offered to the annotator: those at or above the threshold (a
/// shape without a confidence always is).
pub fn offered(shapes: &[Shape], threshold: f64) -> Vec<Shape> {
    shapes
        .iter()
        .filter(|s| s.confidence().unwrap_or(1.0) >= threshold)
        .cloned()
        .collect()
}

/// The item's pre-label, if one is stored: the model and its shapes.
pub fn prediction(
    ws: &Workspace,
    project: &Project,
    position: i64,
) -> Result<Option<(String, Vec<Shape>)>> {
    let row: Option<(String, String)> =
        rusqlite::OptionalExtension::optional(ws.conn().query_row(
            "SELECT model, shapes FROM label_predictions WHERE project_id = ?1 AND position = ?2
         ORDER BY created_at DESC LIMIT 1",
            params![project.id, position],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?;
    row.map(|(model, shapes)| Ok((model, serde_json::from_str(&shapes)?)))
        .transpose()
}

fn texts(ws: &Workspace, project: &Project) -> Result<Vec<String>> {
    let version = ws.version_by_id(project.version_id)?;
    crate::text::items(ws, &version)
}

/// A colour thumbnail's pixels as numbers in 0–1.
fn colour_features(thumb: &crate::images::Thumbnail) -> Vec<f32> {
    // Pad or cut to 8 × 8 RGB so every image gives the same length.
    let mut out = vec![0.0; 8 * 8 * 3];
    for y in 0..thumb.height.min(8) as usize {
        for x in 0..thumb.width.min(8) as usize {
            for c in 0..3 {
                out[(y * 8 + x) * 3 + c] =
                    f32::from(thumb.rgba[(y * thumb.width as usize + x) * 4 + c]) / 255.0;
            }
        }
    }
    out
}

/// Multinomial naive Bayes over lower-cased words, with add-one smoothing.
struct NaiveBayes {
    priors: BTreeMap<String, f64>,
    words: BTreeMap<String, HashMap<String, f64>>,
    totals: BTreeMap<String, f64>,
    vocabulary: usize,
}

fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

impl NaiveBayes {
    fn fit(train: &[(&str, &str)]) -> NaiveBayes {
        let mut priors = BTreeMap::new();
        let mut words: BTreeMap<String, HashMap<String, f64>> = BTreeMap::new();
        let mut vocabulary = std::collections::HashSet::new();
        for (text, label) in train {
            *priors.entry((*label).to_owned()).or_insert(0.0) += 1.0;
            let counts = words.entry((*label).to_owned()).or_default();
            for w in tokens(text) {
                vocabulary.insert(w.clone());
                *counts.entry(w).or_default() += 1.0;
            }
        }
        let totals = words
            .iter()
            .map(|(l, c)| (l.clone(), c.values().sum()))
            .collect();
        NaiveBayes {
            priors,
            words,
            totals,
            vocabulary: vocabulary.len(),
        }
    }

    /// The likeliest label and its posterior probability.
    fn predict(&self, text: &str) -> Option<(String, f64)> {
        let n: f64 = self.priors.values().sum();
        let scores: Vec<(String, f64)> = self
            .priors
            .iter()
            .map(|(label, prior)| {
                let counts = &self.words[label];
                let total = self.totals[label] + self.vocabulary as f64;
                let log: f64 = tokens(text)
                    .map(|w| ((counts.get(&w).copied().unwrap_or(0.0) + 1.0) / total).ln())
                    .sum();
                (label.clone(), (prior / n).ln() + log)
            })
            .collect();
        let top = scores
            .iter()
            .map(|(_, s)| *s)
            .fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = scores.iter().map(|(_, s)| (s - top).exp()).sum();
        scores
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(label, s)| (label, (s - top).exp() / total))
    }
}

/// Spans where a labeled string occurs as whole words, longest first, not overlapping; each
/// with the share of times the string had that label as its confidence.
fn dictionary_spans(text: &str, seen: &HashMap<String, BTreeMap<String, usize>>) -> Vec<Shape> {
    let chars: Vec<char> = text.chars().collect();
    let mut entries: Vec<(&String, &BTreeMap<String, usize>)> = seen.iter().collect();
    entries.sort_by_key(|(s, _)| std::cmp::Reverse(s.chars().count()));
    let mut taken = vec![false; chars.len()];
    let mut out = Vec::new();
    for (surface, labels) in entries {
        let needle: Vec<char> = surface.chars().collect();
        if needle.is_empty() || needle.len() > chars.len() {
            continue;
        }
        let total: usize = labels.values().sum();
        let Some((label, n)) = labels.iter().max_by_key(|(_, n)| **n) else {
            continue;
        };
        for start in 0..=chars.len() - needle.len() {
            let end = start + needle.len();
            let whole = (start == 0 || !chars[start - 1].is_alphanumeric())
                && (end == chars.len() || !chars[end].is_alphanumeric());
            if whole && chars[start..end] == needle[..] && !taken[start..end].iter().any(|t| *t) {
                taken[start..end].iter_mut().for_each(|t| *t = true);
                out.push(Shape::Span {
                    label: label.clone(),
                    start,
                    end,
                    confidence: Some(*n as f64 / total as f64),
                    attributes: Default::default(),
                });
            }
        }
    }
    out.sort_by_key(|s| match s {
        Shape::Span { start, .. } => *start,
        _ => 0,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_bayes_and_the_dictionary_learn_from_labels() {
        let bayes = NaiveBayes::fit(&[
            ("great product love it", "positive"),
            ("broke after a day", "negative"),
            ("love the colour", "positive"),
        ]);
        let (label, p) = bayes.predict("I love this").unwrap();
        assert_eq!(label, "positive");
        assert!(p > 0.5 && p <= 1.0, "{p}");
        let mut seen = HashMap::new();
        seen.insert(
            "New Berlin".to_owned(),
            BTreeMap::from([("LOC".to_owned(), 3)]),
        );
        let spans = dictionary_spans("From New Berlin to New Berliner", &seen);
        assert_eq!(
            spans,
            [Shape::Span {
                label: "LOC".into(),
                start: 5,
                end: 15,
                confidence: Some(1.0),
                attributes: Default::default(),
            }]
        );
    }
}
