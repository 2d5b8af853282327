//! Model performance on production data: the predictions a deployment made, joined with
//! ground truth that arrived later (a table of actual values keyed by correlation id), scored
//! as Azure ML's model performance signal scores them — accuracy, precision and recall
//! macro-averaged over the classes (scikit-learn's `average="macro"`), F1 likewise, ROC AUC
//! from a probability column for two classes; or MAE, MSE, RMSE and R².
//!
//! Keys: a collected row's correlation id is its `request_id`, and `<request_id>_<row>` for
//! each row of a batched request (Azure ML's data collector writes batched rows' ids so); the
//! ground truth's correlation column may use either.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;

use super::spec::Signal;
use super::tables::Table;
use super::{Metric, MonitorError};
use crate::Result;

/// Where the values are.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    pub prediction: String,
    pub probability: Option<String>,
    pub ground_truth_id: String,
    pub actual: String,
    /// `classification` or `regression`; `None` decides from the actual values.
    pub task: Option<String>,
}

impl Columns {
    /// The columns a model performance signal names (`data_column_names`), else collection's
    /// `prediction` and the ground truth's `correlation_id` and `actual` (always these for a
    /// labeling project's answers).
    pub fn of(signal: &Signal, task: Option<&str>) -> Self {
        let p = |k: &str| {
            signal
                .production
                .as_ref()
                .and_then(|d| d.column_names.get(k).cloned())
        };
        let r = |k: &str| {
            signal
                .reference
                .as_ref()
                .and_then(|d| d.column_names.get(k).cloned())
        };
        if signal
            .reference
            .as_ref()
            .is_some_and(|r| r.labeling.is_some())
        {
            // A labeling project's answers come in these columns, whatever the YAML says.
            return Self {
                prediction: p("prediction").unwrap_or_else(|| "prediction".into()),
                probability: p("prediction_probability"),
                ground_truth_id: "correlation_id".into(),
                actual: "actual".into(),
                task: task.map(str::to_owned),
            };
        }
        Self {
            prediction: p("prediction").unwrap_or_else(|| "prediction".into()),
            probability: p("prediction_probability"),
            ground_truth_id: r("correlation_id").unwrap_or_else(|| "correlation_id".into()),
            actual: r("actual")
                .or_else(|| r("target_column"))
                .unwrap_or_else(|| "actual".into()),
            task: task.map(str::to_owned),
        }
    }
}

/// What the predictions scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Performance {
    pub metrics: BTreeMap<Metric, f64>,
    /// Predictions in the window, and how many had ground truth.
    pub predictions: usize,
    pub matched: usize,
}

/// A value as a class label: integral numbers without a fraction (`1.0` and `1` are one
/// class), text as it is.
fn label(value: &AnyValue<'_>) -> Option<String> {
    let text = crate::table::cell_text(value)?;
    match text.parse::<f64>() {
        Ok(x) if x.fract() == 0.0 && x.abs() < 1e15 => Some(format!("{}", x as i64)),
        _ => Some(text),
    }
}

fn text_column(df: &DataFrame, name: &str, side: &'static str) -> Result<Vec<Option<String>>> {
    let column = df.column(name).map_err(|_| MonitorError::MissingColumn {
        column: name.to_owned(),
        side,
        available: df
            .get_column_names()
            .iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    Ok((0..column.len())
        .map(|i| column.get(i).ok().and_then(|v| label(&v)))
        .collect())
}

/// Scores `production`'s predictions against `ground_truth`.
///
/// # Errors
/// A column missing (named); no prediction with ground truth.
pub fn evaluate(
    production: &Table,
    ground_truth: &Table,
    columns: &Columns,
) -> Result<Performance> {
    let mut wanted = vec![columns.prediction.clone()];
    let p_schema = production.schema()?;
    let has = |n: &str| p_schema.iter_names().any(|c| c.as_str() == n);
    let keyed = has("request_id");
    if keyed {
        wanted.push("request_id".into());
        if has("row") {
            wanted.push("row".into());
        }
    } else {
        return Err(MonitorError::MissingColumn {
            column: "request_id".into(),
            side: "production",
            available: p_schema
                .iter_names()
                .map(polars::prelude::PlSmallStr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into());
    }
    if let Some(p) = &columns.probability {
        wanted.push(p.clone());
    }
    let p = production.columns(&wanted)?;
    let g = ground_truth.columns(&[columns.ground_truth_id.clone(), columns.actual.clone()])?;
    let predictions = text_column(&p, &columns.prediction, "production")?;
    let ids = text_column(&p, "request_id", "production")?;
    let rows = if has("row") {
        text_column(&p, "row", "production")?
    } else {
        vec![None; p.height()]
    };
    let probabilities: Option<Vec<Option<f64>>> = match &columns.probability {
        Some(name) => Some(
            p.column(name)
                .and_then(|c| c.cast(&DataType::Float64))
                .map_err(|e| crate::Error::Unreadable {
                    path: production.label.clone().into(),
                    reason: e.to_string(),
                })?
                .f64()
                .map_err(|e| crate::Error::Unreadable {
                    path: production.label.clone().into(),
                    reason: e.to_string(),
                })?
                .iter()
                .collect(),
        ),
        None => None,
    };
    let mut index: HashMap<String, usize> = HashMap::with_capacity(p.height() * 2);
    for (i, id) in ids.iter().enumerate() {
        let Some(id) = id else { continue };
        let row = rows[i].as_deref().unwrap_or("0");
        index.insert(format!("{id}_{row}"), i);
        if row == "0" {
            index.entry(id.clone()).or_insert(i);
        }
    }
    let truth_ids = text_column(&g, &columns.ground_truth_id, "ground truth")?;
    let actual_raw = g
        .column(&columns.actual)
        .map_err(|_| MonitorError::MissingColumn {
            column: columns.actual.clone(),
            side: "ground truth",
            available: g
                .get_column_names()
                .iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })?
        .clone();
    let actual = text_column(&g, &columns.actual, "ground truth")?;
    let mut pairs: Vec<(usize, String, String)> = Vec::new();
    for (j, id) in truth_ids.iter().enumerate() {
        if let (Some(id), Some(a)) = (id, &actual[j])
            && let Some(&i) = index.get(id)
            && let Some(pred) = &predictions[i]
        {
            pairs.push((i, a.clone(), pred.clone()));
        }
    }
    if pairs.is_empty() {
        return Err(MonitorError::Spec(format!(
            "no prediction of the {} in {} has its ground truth in {} yet",
            predictions.len(),
            production.label,
            ground_truth.label
        ))
        .into());
    }
    let regression = match columns.task.as_deref() {
        Some("regression") => true,
        Some(_) => false,
        None => {
            actual_raw.dtype().is_float()
                && pairs
                    .iter()
                    .any(|(_, a, _)| a.parse::<f64>().is_ok_and(|x| x.fract() != 0.0))
        }
    };
    let mut metrics = BTreeMap::new();
    if regression {
        let mut a = Vec::with_capacity(pairs.len());
        let mut q = Vec::with_capacity(pairs.len());
        for (_, x, y) in &pairs {
            if let (Ok(x), Ok(y)) = (x.parse::<f64>(), y.parse::<f64>()) {
                a.push(x);
                q.push(y);
            }
        }
        let r = crate::ml::metrics::regression(&a, &q);
        metrics.insert(Metric::Mae, r.mae);
        metrics.insert(Metric::Mse, r.rmse * r.rmse);
        metrics.insert(Metric::Rmse, r.rmse);
        metrics.insert(Metric::R2, r.r2);
    } else {
        let mut classes: Vec<&str> = pairs
            .iter()
            .flat_map(|(_, a, p)| [a.as_str(), p.as_str()])
            .collect();
        classes.sort_unstable();
        classes.dedup();
        let k = classes.len();
        let at = |c: &str| classes.binary_search(&c).unwrap_or_default();
        let mut confusion = vec![vec![0u64; k]; k];
        for (_, a, p) in &pairs {
            confusion[at(a)][at(p)] += 1;
        }
        let n = pairs.len() as f64;
        let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
        let ratio = |x: u64, y: u64| if y == 0 { 0.0 } else { x as f64 / y as f64 };
        let (mut precision, mut recall, mut f1) = (0.0, 0.0, 0.0);
        for i in 0..k {
            let tp = confusion[i][i];
            let p = ratio(tp, confusion.iter().map(|r| r[i]).sum());
            let r = ratio(tp, confusion[i].iter().sum());
            precision += p;
            recall += r;
            f1 += if p + r == 0.0 {
                0.0
            } else {
                2.0 * p * r / (p + r)
            };
        }
        metrics.insert(Metric::Accuracy, correct as f64 / n);
        metrics.insert(Metric::Precision, precision / k as f64);
        metrics.insert(Metric::Recall, recall / k as f64);
        metrics.insert(Metric::F1Score, f1 / k as f64);
        if let Some(probabilities) = &probabilities
            && k == 2
        {
            let mut positive = Vec::new();
            let mut scores = Vec::new();
            for (i, a, _) in &pairs {
                if let Some(s) = probabilities[*i] {
                    positive.push(at(a) == 1);
                    scores.push(s);
                }
            }
            if let Some(auc) = crate::ml::metrics::roc_auc(&positive, &scores) {
                metrics.insert(Metric::Auc, auc);
            }
        }
    }
    Ok(Performance {
        metrics,
        predictions: predictions.len(),
        matched: pairs.len(),
    })
}
