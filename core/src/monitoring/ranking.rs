//! Which production rows a monitor sends people to label, most useful first — the
//! human-in-the-loop path of Azure ML's MLOps architectures, where drifted or uncertain items
//! go back to labeling:
//!
//! - **drift**: the rows that most explain the drift. A row's score is the sum, over the
//!   features whose drift crossed a threshold in the run, of `ln((c + ε) / (r + ε))`, where `c`
//!   and `r` are the current and reference shares of the row's bin (numbers, the signal's own
//!   bins) or category, and `ε = 1 / (reference values + current values)`. It is the per-row
//!   term of the Kullback–Leibler divergence of current from reference: rows in bins the
//!   window fills more than the reference did score high; an unseen category scores highest.
//! - **confidence**: the rows the model was least sure of, by its top class probability,
//!   lowest first: the probabilities collected with the answer (`{"prediction", "probabilities"}`),
//!   else the deployed model's own, recomputed for the row (Lathe's native classifiers).
//!
//! Ties keep the window's order (earliest first).

use std::collections::HashMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MonitorError;
use super::compare::{Distribution, Feature};
use crate::labeling::rows::{self, RowItem};
use crate::serving::{Frame, Scorer};
use crate::store::Store;
use crate::{Error, Result};

/// How rows are ranked for labeling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rank {
    Drift,
    Confidence,
}

impl Rank {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drift => "drift",
            Self::Confidence => "confidence",
        }
    }

    /// `drift` or `confidence`.
    ///
    /// # Errors
    /// Any other word.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "drift" => Ok(Self::Drift),
            "confidence" => Ok(Self::Confidence),
            other => Err(MonitorError::Spec(format!(
                "'{other}' is not a ranking; use drift (the rows that explain the drift) or \
                 confidence (the rows the model was least sure of)"
            ))
            .into()),
        }
    }
}

/// A row's score for one drifted feature: `ln((c + ε) / (r + ε))` of the shares of its bin or
/// category; `None` for a missing value (it adds nothing).
fn feature_score(feature: &Feature, value: &AnyValue<'_>) -> Option<f64> {
    let distribution = feature.distribution.as_ref()?;
    let total = (feature.reference_values + feature.current_values).max(1) as f64;
    let eps = 1.0 / total;
    let share = |counts: &[u64], i: Option<usize>| {
        let n: u64 = counts.iter().sum();
        match i {
            Some(i) if n > 0 => counts.get(i).copied().unwrap_or(0) as f64 / n as f64,
            _ => 0.0,
        }
    };
    let (r, c) = match distribution {
        Distribution::Histogram {
            edges,
            reference,
            current,
        } => {
            let x = value.extract::<f64>().filter(|x| x.is_finite())?;
            let bins = edges.len().checked_sub(1)?;
            if bins == 0 {
                return None;
            }
            // Bins are [e_i, e_{i+1}), the last closed; a value beyond the edges falls in the
            // nearest end bin.
            let i = edges[1..bins].partition_point(|e| *e <= x);
            (share(reference, Some(i)), share(current, Some(i)))
        }
        Distribution::Categories {
            categories,
            reference,
            current,
        } => {
            let text = crate::table::cell_text(value)?;
            let i = categories.iter().position(|c| *c == text);
            (share(reference, i), share(current, i))
        }
    };
    Some(((c + eps) / (r + eps)).ln())
}

/// Each row's drift score over the `drifted` features (columns of `rows` by name; a feature the
/// rows lack adds nothing), with the features that raised it most.
pub fn drift_scores(rows: &DataFrame, drifted: &[&Feature]) -> Vec<(f64, Vec<String>)> {
    let mut scores = vec![(0.0, Vec::<(f64, String)>::new()); rows.height()];
    for feature in drifted {
        let Ok(column) = rows.column(&feature.name) else {
            continue;
        };
        for (i, (score, parts)) in scores.iter_mut().enumerate() {
            if let Some(s) = column.get(i).ok().and_then(|v| feature_score(feature, &v)) {
                *score += s;
                parts.push((s, feature.name.clone()));
            }
        }
    }
    scores
        .into_iter()
        .map(|(score, mut parts)| {
            parts.sort_by(|a, b| b.0.total_cmp(&a.0));
            let names = parts
                .into_iter()
                .filter(|(s, _)| *s > 0.0)
                .take(3)
                .map(|(_, n)| n)
                .collect();
            (score, names)
        })
        .collect()
}

/// The top class probability of a collected answer `{"prediction", "probabilities": {…}}`
/// (as JSON text or a value), with the class.
fn collected_confidence(answer: &AnyValue<'_>) -> Option<(f64, String)> {
    let text = crate::table::cell_text(answer)?;
    let value: Value = serde_json::from_str(&text).ok()?;
    let probabilities = value.get("probabilities")?.as_object()?;
    let prediction = value
        .get("prediction")
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    let top = probabilities
        .values()
        .filter_map(Value::as_f64)
        .fold(f64::NAN, f64::max);
    top.is_finite().then_some((top, prediction))
}

/// Each input row's top class probability and class: collected with the answer where the
/// caller asked for probabilities, else recomputed by `scorer` (the deployed model).
///
/// # Errors
/// A row with neither: the model gives no probabilities (named), or its inputs are missing.
pub fn confidences(
    inputs: &DataFrame,
    outputs: &DataFrame,
    scorer: Option<&Scorer>,
) -> Result<Vec<(f64, String)>> {
    let keys = rows::keys(inputs, None)?;
    let mut collected: HashMap<String, (f64, String)> = HashMap::new();
    if let Ok(answers) = outputs.column("prediction") {
        let out_keys = rows::keys(outputs, None)?;
        for (i, key) in out_keys.into_iter().enumerate() {
            if let Some(c) = answers.get(i).ok().and_then(|v| collected_confidence(&v)) {
                collected.insert(key, c);
            }
        }
    }
    let missing: Vec<usize> = (0..keys.len())
        .filter(|i| !collected.contains_key(&keys[*i]))
        .collect();
    let mut computed: HashMap<usize, (f64, String)> = HashMap::new();
    if !missing.is_empty() {
        let scorer = scorer.ok_or_else(|| {
            MonitorError::Spec(
                "rank by confidence: the collected answers hold no probabilities and the \
                 monitor has no deployment whose model could give them"
                    .into(),
            )
        })?;
        let mut frame = Frame::default();
        for name in scorer.input_names() {
            let column = inputs.column(&name).map_err(|_| {
                MonitorError::Spec(format!(
                    "rank by confidence: the collected inputs lack the model's input '{name}'"
                ))
            })?;
            let values = missing
                .iter()
                .map(|&i| crate::collection::json_cell(column, i))
                .collect();
            frame
                .push(name, values)
                .map_err(|e| MonitorError::Spec(format!("rank by confidence: {e}")))?;
        }
        let probabilities = scorer.probabilities(&frame).map_err(|e| {
            MonitorError::Spec(format!(
                "rank by confidence: {e} (or collect answers with probabilities)"
            ))
        })?;
        for (&i, p) in missing.iter().zip(probabilities) {
            let top = p
                .iter()
                .filter_map(|(class, v)| Some((v.as_f64()?, class.clone())))
                .fold(None::<(f64, String)>, |best, c| match best {
                    Some(b) if b.0 >= c.0 => Some(b),
                    _ => Some(c),
                });
            if let Some(top) = top {
                computed.insert(i, top);
            }
        }
    }
    Ok((0..keys.len())
        .map(|i| {
            collected
                .get(&keys[i])
                .or_else(|| computed.get(&i))
                .cloned()
                .unwrap_or((f64::NAN, String::new()))
        })
        .collect())
}

/// The deployed model of `endpoint`/`deployment`, loaded to score in process.
///
/// # Errors
/// No such deployment; a model that cannot be loaded here.
pub fn deployed_model(store: &Store, endpoint: &str, deployment: &str) -> Result<Scorer> {
    let d = crate::endpoints::deployments(store, endpoint)?
        .into_iter()
        .find(|d| d.spec.name == deployment)
        .ok_or_else(|| {
            Error::Endpoint(format!(
                "endpoint {endpoint} has no deployment {deployment}"
            ))
        })?;
    let tracking = store.tracking();
    let version = tracking
        .read(|c| crate::tracking::registry::get_version(c, &d.model_name, &d.model_version))
        .map_err(|e| Error::Endpoint(format!("model {}:{}: {e}", d.model_name, d.model_version)))?;
    Scorer::load(&tracking, &version).map_err(Error::Endpoint)
}

/// The `top` rows of `rows` by `scores` — highest first for drift, lowest first for
/// confidence — as labeling items, each with why it was chosen.
pub fn pick(
    rows: &DataFrame,
    rank: Rank,
    scores: &[(f64, String)],
    top: usize,
) -> Result<Vec<RowItem>> {
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i].0.is_finite())
        .collect();
    match rank {
        Rank::Drift => order.sort_by(|&a, &b| scores[b].0.total_cmp(&scores[a].0)),
        Rank::Confidence => order.sort_by(|&a, &b| scores[a].0.total_cmp(&scores[b].0)),
    }
    order.truncate(top);
    let mut items = rows::items_of(rows, None, Some(&order))?;
    for (n, (item, &i)) in items.iter_mut().zip(&order).enumerate() {
        let (score, why) = &scores[i];
        item.reason = Some(match rank {
            Rank::Drift if why.is_empty() => format!("#{}: drift score {score:.3}", n + 1),
            Rank::Drift => format!("#{}: drift score {score:.3} ({why})", n + 1),
            Rank::Confidence => {
                format!(
                    "#{}: the model said {why} with confidence {score:.3}",
                    n + 1
                )
            }
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitoring::FeatureType;
    use crate::monitoring::compare::Values;

    fn feature(name: &str, distribution: Distribution, n_ref: u64, n_cur: u64) -> Feature {
        Feature {
            name: name.into(),
            feature_type: FeatureType::Numerical,
            reference_type: "f64".into(),
            current_type: "f64".into(),
            reference_values: n_ref,
            current_values: n_cur,
            drift: Values::default(),
            quality: Values::default(),
            distribution: Some(distribution),
            problem: None,
        }
    }

    #[test]
    fn rows_in_bins_the_window_fills_more_rank_first() {
        // Reference: 8 of 10 in [0, 1), 2 in [1, 2]; current: 2 in [0, 1), 8 in [1, 2].
        let age = feature(
            "age",
            Distribution::Histogram {
                edges: vec![0.0, 1.0, 2.0],
                reference: vec![8, 2],
                current: vec![2, 8],
            },
            10,
            10,
        );
        let plan = feature(
            "plan",
            Distribution::Categories {
                categories: vec!["basic".into(), "gold".into()],
                reference: vec![10, 0],
                current: vec![5, 5],
            },
            10,
            10,
        );
        let rows = df!(
            "age" => [Some(0.5), Some(1.5), Some(2.0), None, Some(1.0)],
            "plan" => [Some("basic"), Some("basic"), Some("gold"), Some("new"), None],
        )
        .unwrap();
        let scores = drift_scores(&rows, &[&age, &plan]);
        let eps = 1.0 / 20.0;
        let ln = |c: f64, r: f64| ((c + eps) / (r + eps)).ln();
        let expected = [
            ln(0.2, 0.8) + ln(0.5, 1.0),
            ln(0.8, 0.2) + ln(0.5, 1.0),
            // 2.0 is the last edge: the last bin is closed.
            ln(0.8, 0.2) + ln(0.5, 0.0),
            // A missing age adds nothing; a category neither side had scores ln(1) = 0.
            0.0,
            // An interior edge belongs to the bin above it.
            ln(0.8, 0.2),
        ];
        for (i, ((got, _), want)) in scores.iter().zip(expected).enumerate() {
            assert!((got - want).abs() < 1e-12, "row {i}: {got} vs {want}");
        }
        assert_eq!(scores[2].1, ["plan", "age"]);
        let picked = pick(
            &rows,
            Rank::Drift,
            &scores
                .iter()
                .map(|(s, why)| (*s, why.join(", ")))
                .collect::<Vec<_>>(),
            3,
        )
        .unwrap();
        let keys: Vec<&str> = picked.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["row 3", "row 5", "row 2"]);
        assert!(
            picked[0]
                .reason
                .as_deref()
                .unwrap()
                .starts_with("#1: drift score "),
            "{picked:?}"
        );
    }

    #[test]
    fn the_least_confident_rows_rank_first_and_collected_probabilities_count() {
        let inputs = df!("request_id" => ["a", "b", "c"], "row" => [0u32, 0, 0]).unwrap();
        let outputs = df!(
            "request_id" => ["a", "b", "c"],
            "row" => [0u32, 0, 0],
            "prediction" => [
                r#"{"prediction": "yes", "probabilities": {"yes": 0.9, "no": 0.1}}"#,
                r#"{"prediction": "no", "probabilities": {"yes": 0.45, "no": 0.55}}"#,
                r#"{"prediction": "yes", "probabilities": {"yes": 0.7, "no": 0.3}}"#,
            ],
        )
        .unwrap();
        let scores = confidences(&inputs, &outputs, None).unwrap();
        assert_eq!(scores[1], (0.55, "no".to_owned()));
        let picked = pick(&inputs, Rank::Confidence, &scores, 2).unwrap();
        let keys: Vec<&str> = picked.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["b", "c"]);
        // Without probabilities and without a model, it says so.
        let plain = df!("request_id" => ["a"], "row" => [0u32], "prediction" => ["yes"]).unwrap();
        let e = confidences(&inputs, &plain, None).unwrap_err().to_string();
        assert!(e.contains("hold no probabilities"), "{e}");
    }
}
