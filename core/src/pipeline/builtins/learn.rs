//! Training, scoring, evaluation, sweeps and registration.

use crate::pipeline::{PipelineError, PipelineResult};
use std::collections::BTreeMap;

use polars::prelude::*;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use serde_json::json;

use super::{StepIo, log_batch, prep};
use crate::ml::model::Task;
use crate::ml::preprocessing::{self, Chain};
use crate::ml::{Algorithm, Model, features, metrics};
use crate::tracking::VersionRequest;

fn err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Invalid(e.to_string())
}

/// The hyperparameters given as inputs of a train step.
fn settings(io: &StepIo<'_>, algorithm: Algorithm) -> PipelineResult<BTreeMap<String, f64>> {
    let mut given = BTreeMap::new();
    for (name, _) in algorithm.hyperparameters() {
        if let Some(v) = io.number(name)? {
            given.insert((*name).to_owned(), v);
        }
    }
    Ok(given)
}

pub fn train(algorithm: &str, io: &StepIo<'_>) -> PipelineResult<()> {
    let algorithm = Algorithm::parse(algorithm)?;
    let df = io.table("data")?;
    let label = io.value("label");
    let given = io.list("features");
    let (_, skipped) = features::feature_columns(&df, &given, label)?;
    if !skipped.is_empty() {
        io.say(&format!(
            "not used (text; one-hot encode them to use them): {}",
            skipped.join(", ")
        ));
    }
    let mut model = Model::fit(&df, algorithm, label, &given, &settings(io, algorithm)?)?;
    io.say(&format!(
        "{} on {} rows, features: {}",
        algorithm.as_str(),
        df.height(),
        model.features.join(", ")
    ));
    // How well the model fits its own training data: a first sanity check.
    let mut fit_metrics = evaluate(
        &model.score_prepared(&df)?,
        label.unwrap_or_default(),
        &model,
    )?;
    attach_preprocessing(io, &mut model)?;
    for (key, _) in &mut fit_metrics {
        *key = format!("training_{key}");
    }
    io.log_metrics(&fit_metrics)?;
    let dir = io.output("model")?;
    model
        .save(dir)
        .map_err(|e| PipelineError::Invalid(format!("{}: {e}", dir.display())))
}

/// Registers with `model` the preparation its training table went through (the chain beside
/// input `data`), so the model takes raw rows.
fn attach_preprocessing(io: &StepIo<'_>, model: &mut Model) -> PipelineResult<()> {
    let Some(chain) = Chain::read(&io.data("data")?.path)? else {
        return Ok(());
    };
    let preprocessing = chain.compile(&model.features)?;
    io.say(&format!(
        "with its preprocessing ({} step(s)) the model takes the raw columns {}",
        chain.steps.len(),
        preprocessing::sources(&preprocessing.features).join(", ")
    ));
    model.preprocessing = Some(preprocessing);
    Ok(())
}

/// Scores input `data`: a table prepared as the model's training table was is scored as it
/// is; raw rows go through the model's preprocessing first.
pub fn score_model(io: &StepIo<'_>) -> PipelineResult<()> {
    let model = Model::load(&io.data("model")?.path)?;
    let data = io.data("data")?;
    let df = io.table("data")?;
    let chain = Chain::read(&data.path)?;
    let prepared = match (&model.preprocessing, &chain) {
        (None, _) => true,
        (Some(p), Some(chain)) if &p.chain == chain => true,
        (Some(_), None) => false,
        (Some(_), Some(_)) => {
            return Err(
                "input 'data' went through other preparation than the model was trained \
                 behind: give it the raw rows (the model prepares them itself) or a table \
                 prepared by the same steps"
                    .into(),
            );
        }
    };
    let mut scored = if prepared {
        model.score_prepared(&df)?
    } else {
        io.say("raw rows: the model's preprocessing runs first");
        model.score(&df)?
    };
    io.write_table("scored", &mut scored)
}

/// Metrics of a scored table against its label, as (name, value).
fn evaluate(scored: &DataFrame, label: &str, model: &Model) -> PipelineResult<Vec<(String, f64)>> {
    Ok(match model.algorithm.task() {
        Task::Clustering => Vec::new(),
        Task::Regression => regression_metrics(scored, label)?,
        Task::Classification => classification(scored, label)?.0,
    })
}

fn regression_metrics(scored: &DataFrame, label: &str) -> PipelineResult<Vec<(String, f64)>> {
    let m = metrics::regression(
        &features::numbers(scored, label)?,
        &features::numbers(scored, "prediction")?,
    );
    Ok(vec![
        ("mae".into(), m.mae),
        ("rmse".into(), m.rmse),
        ("r2".into(), m.r2),
    ])
}

fn classification(
    scored: &DataFrame,
    label: &str,
) -> PipelineResult<(Vec<(String, f64)>, metrics::Classification)> {
    let probability = match scored.column("probability") {
        Ok(_) => Some(features::numbers(scored, "probability")?),
        Err(_) => None,
    };
    let m = metrics::classification(
        &features::texts(scored, label)?,
        &features::texts(scored, "prediction")?,
        probability.as_deref(),
    );
    let mut out = vec![
        ("accuracy".to_owned(), m.accuracy),
        ("precision".to_owned(), m.precision),
        ("recall".to_owned(), m.recall),
        ("f1".to_owned(), m.f1),
    ];
    if let Some(auc) = m.roc_auc {
        out.push(("roc_auc".into(), auc));
    }
    Ok((out, m))
}

pub fn evaluate_model(io: &StepIo<'_>) -> PipelineResult<()> {
    let scored = io.table("scored")?;
    let label = io.required("label")?;
    let prediction = scored.column("prediction").map_err(|_| {
        "the table has no 'prediction' column: score it with a model first".to_owned()
    })?;
    let dir = io.output("metrics")?;
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    let write = |file: &str, value: serde_json::Value| {
        let path = dir.join(file);
        std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap_or_default())
            .map_err(|e| PipelineError::io(&path, e))
    };
    let found = if prediction.dtype() == &DataType::Float64 {
        regression_metrics(&scored, label)?
    } else {
        let (found, m) = classification(&scored, label)?;
        write(
            "confusion_matrix.json",
            json!({ "classes": m.classes, "matrix": m.confusion }),
        )?;
        io.say(&format!(
            "confusion matrix (rows actual, columns predicted) over {:?}:",
            m.classes
        ));
        for (class, row) in m.classes.iter().zip(&m.confusion) {
            io.say(&format!("  {class:>12}: {row:?}"));
        }
        if m.roc_auc.is_none() {
            io.say(
                "roc_auc: not computed (needs two classes and a model that gives probabilities)",
            );
        }
        found
    };
    for (key, value) in &found {
        io.say(&format!("{key} = {value:.4}"));
    }
    io.log_metrics(&found)?;
    write(
        "metrics.json",
        serde_json::Value::Object(found.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
    )
}

/// One dimension of a sweep's search space.
#[derive(Debug, Clone, PartialEq)]
enum Dimension {
    Choice(Vec<f64>),
    Uniform(f64, f64),
    LogUniform(f64, f64),
}

/// Parses `alpha=0.01,0.1,1; max_depth=uniform(2,8)`.
fn parse_space(text: &str) -> PipelineResult<Vec<(String, Dimension)>> {
    let mut space = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, values) = part
            .split_once('=')
            .ok_or_else(|| format!("space: '{part}' should read name=values"))?;
        let (name, values) = (name.trim().to_owned(), values.trim());
        let number = |t: &str| {
            t.trim()
                .parse::<f64>()
                .map_err(|_| format!("space: {name}: '{}' is not a number", t.trim()))
        };
        let range = |inner: &str| -> PipelineResult<(f64, f64)> {
            let (a, b) = inner
                .split_once(',')
                .ok_or_else(|| format!("space: {name}: a range needs two bounds"))?;
            Ok((number(a)?, number(b.trim_end_matches(')'))?))
        };
        let dimension = if let Some(inner) = values.strip_prefix("uniform(") {
            let (a, b) = range(inner)?;
            Dimension::Uniform(a, b)
        } else if let Some(inner) = values.strip_prefix("loguniform(") {
            let (a, b) = range(inner)?;
            if a <= 0.0 || b <= 0.0 {
                return Err(PipelineError::Invalid(format!(
                    "space: {name}: loguniform bounds must be positive"
                )));
            }
            Dimension::LogUniform(a, b)
        } else {
            Dimension::Choice(values.split(',').map(number).collect::<Result<_, _>>()?)
        };
        space.push((name, dimension));
    }
    if space.is_empty() {
        return Err("space: name at least one hyperparameter, e.g. alpha=0.1,1,10".into());
    }
    Ok(space)
}

/// The settings to try: every combination (grid) or `trials` random draws.
fn trial_settings(
    space: &[(String, Dimension)],
    random: bool,
    trials: usize,
    seed: u64,
) -> PipelineResult<Vec<BTreeMap<String, f64>>> {
    if !random {
        let mut grid = vec![BTreeMap::new()];
        for (name, dimension) in space {
            let Dimension::Choice(values) = dimension else {
                return Err(format!("space: {name} is a range; ranges need search: random").into());
            };
            grid = grid
                .into_iter()
                .flat_map(|settings| {
                    values.iter().map(move |v| {
                        let mut next = settings.clone();
                        next.insert(name.clone(), *v);
                        next
                    })
                })
                .collect();
        }
        return Ok(grid);
    }
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let mut unit = move || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    Ok((0..trials)
        .map(|_| {
            space
                .iter()
                .map(|(name, dimension)| {
                    let v = match dimension {
                        Dimension::Choice(values) => {
                            values[((unit() * values.len() as f64) as usize).min(values.len() - 1)]
                        }
                        Dimension::Uniform(a, b) => a + unit() * (b - a),
                        Dimension::LogUniform(a, b) => (a.ln() + unit() * (b.ln() - a.ln())).exp(),
                    };
                    (name.clone(), v)
                })
                .collect()
        })
        .collect())
}

pub fn sweep(io: &StepIo<'_>) -> PipelineResult<()> {
    let algorithm = Algorithm::parse(io.required("algorithm")?)?;
    let task = algorithm.task();
    if task == Task::Clustering {
        return Err("sweep scores trials against a label; k-means has none".into());
    }
    let label = io
        .value("label")
        .ok_or_else(|| format!("{} needs input 'label'", algorithm.as_str()))?;
    let metric = io.value("metric").map(str::to_owned).unwrap_or_else(|| {
        if task == Task::Regression {
            "r2"
        } else {
            "accuracy"
        }
        .to_owned()
    });
    let lower_is_better = matches!(metric.as_str(), "mae" | "rmse");
    let df = io.table("data")?;
    let space = parse_space(io.required("space")?)?;
    let random = io.value("search") == Some("random");
    let trials = io.number("trials")?.unwrap_or(10.0) as usize;
    let seed = io.number("seed")?.unwrap_or(42.0) as u64;
    let candidates = trial_settings(&space, random, trials, seed)?;
    for settings in &candidates {
        algorithm.settings(settings)?;
    }
    let fraction = 1.0 - io.number("validation_fraction")?.unwrap_or(0.2);
    let stratify = (task == Task::Classification).then_some(label);
    let (train_rows, valid_rows) = prep::split_rows(&df, fraction, seed, stratify)?;
    let train = df.take(&train_rows).map_err(err)?;
    let valid = df.take(&valid_rows).map_err(err)?;
    io.say(&format!(
        "{} trials of {} on {} rows, validated on {}; optimizing {metric}",
        candidates.len(),
        algorithm.as_str(),
        train.height(),
        valid.height()
    ));
    let mut results: Vec<(BTreeMap<String, f64>, f64)> = Vec::new();
    for (i, settings) in candidates.iter().enumerate() {
        io.cancelled()?;
        let model = Model::fit(&train, algorithm, Some(label), &[], settings)?;
        let found = evaluate(&model.score_prepared(&valid)?, label, &model)?;
        let score = found
            .iter()
            .find(|(k, _)| *k == metric)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
                format!(
                    "metric '{metric}' is not measured here; there is {}",
                    names.join(", ")
                )
            })?;
        trial_run(io, i, settings, &found)?;
        io.say(&format!("trial {i}: {settings:?} -> {metric} {score:.4}"));
        results.push((settings.clone(), score));
    }
    let best = results
        .iter()
        .enumerate()
        .max_by(|a, b| {
            let order = a.1.1.total_cmp(&b.1.1);
            if lower_is_better {
                order.reverse()
            } else {
                order
            }
        })
        .map(|(i, _)| i)
        .ok_or("the sweep has no trials")?;
    let (best_settings, best_score) = results[best].clone();
    io.say(&format!(
        "best: trial {best} {best_settings:?} with {metric} {best_score:.4}; refitting on all rows"
    ));
    let mut model = Model::fit(&df, algorithm, Some(label), &[], &best_settings)?;
    attach_preprocessing(io, &mut model)?;
    let dir = io.output("model")?;
    model.save(dir).map_err(|e| PipelineError::io(dir, e))?;
    let params: Vec<(String, String)> = best_settings
        .iter()
        .map(|(k, v)| (format!("best_{k}"), v.to_string()))
        .collect();
    log_batch(
        io.tracking,
        io.run_id,
        &[(format!("best_{metric}"), best_score)],
        &params,
    )?;
    let mut table = trials_table(&space, &results, &metric)?;
    io.write_table("trials", &mut table)
}

/// A trial as a child run of the sweep's run, with its settings and metrics.
fn trial_run(
    io: &StepIo<'_>,
    index: usize,
    settings: &BTreeMap<String, f64>,
    found: &[(String, f64)],
) -> PipelineResult<()> {
    let tag = |key: &str, value: String| crate::tracking::types::Tag {
        key: key.to_owned(),
        value,
    };
    let run = io
        .tracking
        .create_run(crate::tracking::runs::NewRun {
            experiment_id: io.experiment_id.to_owned(),
            user_id: String::new(),
            start_time: Some(crate::db::now_millis()),
            run_name: Some(format!("trial-{index}")),
            tags: vec![
                tag("mlflow.parentRunId", io.run_id.to_owned()),
                tag("lathe.sweep_trial", index.to_string()),
            ],
        })
        .map_err(err)?;
    let run_id = run.info.run_id;
    let params: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    log_batch(io.tracking, &run_id, found, &params)?;
    io.tracking
        .update_run(
            &run_id,
            crate::tracking::runs::RunUpdate {
                status: Some(crate::tracking::types::RunStatus::Finished),
                end_time: Some(crate::db::now_millis()),
                run_name: None,
            },
        )
        .map(|_| ())
        .map_err(err)
}

fn trials_table(
    space: &[(String, Dimension)],
    results: &[(BTreeMap<String, f64>, f64)],
    metric: &str,
) -> PipelineResult<DataFrame> {
    let mut columns = vec![Column::new(
        "trial".into(),
        (0..results.len() as u32).collect::<Vec<_>>(),
    )];
    for (name, _) in space {
        let values: Vec<f64> = results
            .iter()
            .map(|(s, _)| s.get(name).copied().unwrap_or(f64::NAN))
            .collect();
        columns.push(Column::new(name.as_str().into(), values));
    }
    let scores: Vec<f64> = results.iter().map(|(_, v)| *v).collect();
    columns.push(Column::new(metric.into(), scores));
    DataFrame::new(results.len(), columns).map_err(err)
}

pub fn register_model(io: &StepIo<'_>) -> PipelineResult<()> {
    let name = io.required("name")?;
    let model = io.data("model")?;
    // A model folder holds an MLmodel file (or is an ONNX file); anything else wired here — a
    // folder of metrics, a table — is not registered as a model version.
    let is_model = model.path.join("MLmodel").is_file()
        || model
            .path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if !is_model {
        return Err(format!(
            "input 'model': {} is not a model (no MLmodel file in it); connect the model a \
             training step makes",
            model.path.display()
        )
        .into());
    }
    let version = match &model.origin {
        // A model another step trained: register that run's artifact, so lineage shows the run.
        Some(origin) => {
            io.tracking
                .register_version(VersionRequest {
                    name: name.to_owned(),
                    source: origin.artifact_uri.clone(),
                    run_id: Some(origin.run_id.clone()),
                    ..VersionRequest::default()
                })
                .map_err(err)?
                .version
        }
        None => {
            io.tracking
                .register_local(&model.path, name, "")
                .map_err(err)?
                .version
        }
    };
    io.say(&format!("registered {name} version {version}"));
    io.tracking
        .set_run_tag(
            io.run_id,
            "lathe.registered_model",
            &format!("{name}:{version}"),
        )
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_spaces_expand_to_grids_and_draws() {
        let space = parse_space("alpha=0.1,1; max_iterations=50,100,200").unwrap();
        let grid = trial_settings(&space, false, 0, 1).unwrap();
        assert_eq!(grid.len(), 6);
        assert_eq!(grid[5]["alpha"], 1.0);
        let space = parse_space("alpha=loguniform(0.001,1)").unwrap();
        let draws = trial_settings(&space, true, 5, 7).unwrap();
        assert_eq!(draws.len(), 5);
        assert!(draws.iter().all(|d| (0.001..=1.0).contains(&d["alpha"])));
        assert!(
            trial_settings(&space, false, 0, 1)
                .unwrap_err()
                .to_string()
                .contains("search: random")
        );
        assert!(
            parse_space("alpha")
                .unwrap_err()
                .to_string()
                .contains("name=values")
        );
        assert!(
            parse_space("alpha=x")
                .unwrap_err()
                .to_string()
                .contains("'x' is not a number")
        );
    }
}
