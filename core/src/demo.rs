//! The demo workspace: a churn table, a small image set and a review corpus, generated for Lathe
//! (see assets/demo/generate.py) and built into the binary so a new user has data to look at.

use crate::Result;
use crate::assets::AssetKind;
use crate::import::{ImportRequest, import};
use crate::jobs::Progress;
use crate::workspace::Workspace;

macro_rules! shipped {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/demo/", $path)) as &[u8])),*]
    };
}

const FILES: &[(&str, &[u8])] = shipped![
    "customers.csv",
    "reviews.txt",
    "shapes/circle/circle-01.png",
    "shapes/circle/circle-02.png",
    "shapes/circle/circle-03.png",
    "shapes/circle/circle-04.png",
    "shapes/circle/circle-05.png",
    "shapes/circle/circle-06.png",
    "shapes/circle/circle-07.png",
    "shapes/circle/circle-08.png",
    "shapes/square/square-01.png",
    "shapes/square/square-02.png",
    "shapes/square/square-03.png",
    "shapes/square/square-04.png",
    "shapes/square/square-05.png",
    "shapes/square/square-06.png",
    "shapes/square/square-07.png",
    "shapes/square/square-08.png",
    "shapes/triangle/triangle-01.png",
    "shapes/triangle/triangle-02.png",
    "shapes/triangle/triangle-03.png",
    "shapes/triangle/triangle-04.png",
    "shapes/triangle/triangle-05.png",
    "shapes/triangle/triangle-06.png",
    "shapes/triangle/triangle-07.png",
    "shapes/triangle/triangle-08.png",
];

/// The demo assets: `(name, kind, path inside the demo folder)`.
pub const ASSETS: [(&str, AssetKind, &str); 3] = [
    ("customers", AssetKind::Table, "customers.csv"),
    ("shapes", AssetKind::Images, "shapes"),
    ("reviews", AssetKind::Text, "reviews.txt"),
];

/// Imports the demo assets into `ws`. Importing them again finds the same versions.
pub fn seed(ws: &mut Workspace) -> Result<()> {
    let staging = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    for (path, bytes) in FILES {
        let dest = staging.path().join(path);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
        }
        std::fs::write(&dest, bytes).map_err(|e| crate::Error::io(&dest, e))?;
    }
    for (name, kind, path) in ASSETS {
        let request = ImportRequest {
            path: staging.path().join(path),
            name: name.to_owned(),
            kind: Some(kind),
            text_column: None,
            source_label: Some(format!("Lathe demo: {path}")),
        };
        import(ws, &request, &Progress::default())?;
    }
    Ok(())
}

/// Starts two demo labeling projects, nothing labeled yet: boxes on the shapes and sentiment of
/// the reviews (the seeded assets must be there).
pub fn seed_labeling(ws: &mut Workspace) -> Result<()> {
    use crate::labeling::{Task, labels_from_names, project};
    let names = |names: &[&str]| -> Vec<String> { names.iter().map(|n| (*n).to_owned()).collect() };
    for (name, task, asset, labels) in [
        (
            "shapes-boxes",
            Task::BoundingBoxes,
            "shapes",
            names(&["circle", "square", "triangle"]),
        ),
        (
            "review-sentiment",
            Task::TextClassification,
            "reviews",
            names(&["positive", "negative", "neutral"]),
        ),
    ] {
        project::create(
            ws,
            name,
            task,
            &asset.parse()?,
            labels_from_names(&labels),
            1,
        )?;
    }
    Ok(())
}

/// The registered model the demo pipeline trains and the demo endpoint serves.
pub const MODEL: &str = "churn-classifier";

/// Trains the demo's models for real. Runs the demo pipeline (the churn sample over the demo's
/// `customers` asset), which registers its logistic regression — with the preprocessing it was
/// trained behind, so it takes raw customer rows — as `churn-classifier`, aliased `champion`.
/// Then tunes two algorithms on that run's prepared split in the `churn-demo` experiment: six
/// runs, each with its hyperparameters, a learning curve (`val_accuracy` and `val_f1` by the
/// number of training rows), its test metrics, a training log and its model. The same data
/// and seeds give the same demo every time.
///
/// # Errors
/// The pipeline fails (its failed step named), or the tracking store refuses a write.
pub fn seed_tracking(store: &crate::Store) -> Result<()> {
    use crate::pipeline::executor::{self, RunOptions};
    use serde_json::json;

    let tracking = store.tracking();
    let call = |method: &str, endpoint: &str, body: serde_json::Value| {
        tracking
            .handle(method, endpoint, body)
            .map_err(crate::Error::from)
    };
    let failed = |why: String| {
        crate::Error::Pipeline(crate::pipeline::PipelineError::Invalid(format!(
            "the demo pipeline: {why}"
        )))
    };
    let pipeline = demo_pipeline(store.root())?;
    let mut options = RunOptions::new("churn-pipeline");
    options.run_name = Some("churn-classification (demo)".into());
    let outcome = executor::run(
        &tracking,
        store.root(),
        &pipeline,
        store.root(),
        &options,
        &std::sync::atomic::AtomicBool::new(false),
        &|_| {},
    )
    .map_err(crate::Error::Pipeline)?;
    let step_run = |name: &str| {
        outcome
            .steps
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.run_id.clone())
            .ok_or_else(|| failed(format!("step '{name}' did not run")))
    };
    if !outcome.succeeded() {
        let broken: Vec<&str> = outcome
            .steps
            .iter()
            .filter(|s| {
                use crate::pipeline::executor::StepStatus;
                matches!(
                    s.status,
                    StepStatus::Failed { .. } | StepStatus::Cancelled | StepStatus::Skipped { .. }
                )
            })
            .map(|s| s.name.as_str())
            .collect();
        return Err(failed(format!("did not finish ({})", broken.join(", "))));
    }
    let register = call(
        "GET",
        "runs/get",
        json!({ "run_id": step_run("register")? }),
    )?;
    let registered = register["run"]["data"]["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["key"] == "lathe.registered_model")
        .and_then(|t| t["value"].as_str())
        .and_then(|v| v.rsplit_once(':'))
        .map(|(_, version)| version.to_owned())
        .ok_or_else(|| failed("its register step registered nothing".into()))?;
    call(
        "PATCH",
        "registered-models/update",
        json!({ "name": MODEL,
        "description": "Predicts which customers will churn next month. Trained by the demo \
                        pipeline churn-classification; takes raw customer rows." }),
    )?;
    call(
        "POST",
        "registered-models/alias",
        json!({ "name": MODEL, "alias": "champion", "version": registered }),
    )?;
    tune(store, &step_run("split")?)
}

/// The `churn-demo` experiment: real runs over the demo pipeline's prepared split (the
/// outputs of its `split` step, run `split_run`).
fn tune(store: &crate::Store, split_run: &str) -> Result<()> {
    use crate::ml::preprocessing::Chain;
    use crate::ml::{Algorithm, Model, features, metrics};
    use crate::tracking::types::{Metric, Param, Tag};
    use serde_json::json;

    let tracking = store.tracking();
    let staging = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    let run = tracking.handle("GET", "runs/get", json!({ "run_id": split_run }))?;
    let uri = run["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap_or_default();
    let dir = tracking.artifact_dir(uri)?.unwrap_or_default();
    let read = |part: &str| -> Result<(polars::prelude::DataFrame, Option<Chain>)> {
        let local = staging.path().join(part);
        crate::pipeline::executor::files::unpack(
            &tracking,
            &format!("{dir}/outputs/{part}"),
            &local,
        )
        .map_err(crate::Error::Pipeline)?;
        let df = crate::pipeline::builtins::read_table(&local).map_err(crate::Error::Pipeline)?;
        let chain = Chain::read(&local).map_err(invalid)?;
        Ok((df, chain))
    };
    let (train, chain) = read("train")?;
    let (test, _) = read("test")?;
    let label = "churned";
    let experiment_id = tracking.experiment_named("churn-demo")?;
    tracking.handle(
        "POST",
        "experiments/set-experiment-tag",
        json!({ "experiment_id": experiment_id, "key": "mlflow.note.content",
        "value": "Demo: logistic regressions and decision trees on the churn pipeline's prepared split" }),
    )?;
    let candidates = [
        (Algorithm::LogisticRegression, "alpha", 0.1),
        (Algorithm::DecisionTree, "max_depth", 3.0),
        (Algorithm::LogisticRegression, "alpha", 10.0),
        (Algorithm::DecisionTree, "max_depth", 5.0),
        (Algorithm::LogisticRegression, "alpha", 100.0),
        (Algorithm::DecisionTree, "max_depth", 8.0),
    ];
    let tag = |key: &str, value: &str| Tag {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    for (i, (algorithm, knob, value)) in candidates.into_iter().enumerate() {
        let name = format!("{}-{i:02}", algorithm.as_str());
        let started = crate::db::now_millis();
        let run = tracking.create_run(crate::tracking::runs::NewRun {
            experiment_id: experiment_id.clone(),
            user_id: "demo".to_owned(),
            start_time: Some(started),
            run_name: Some(name.clone()),
            tags: vec![tag("mlflow.source.name", "lathe demo (churn-demo)")],
        })?;
        let run_id = run.info.run_id.clone();
        let settings = [(knob.to_owned(), value)].into();
        let mut log = format!("{name}: {} with {knob} = {value}\n", algorithm.as_str());
        let mut metrics_out = Vec::new();
        let mut metric = |key: &str, value: f64, step: i64| {
            metrics_out.push(Metric {
                key: key.to_owned(),
                value,
                timestamp: crate::db::now_millis(),
                step,
                ..Metric::default()
            });
        };
        // A learning curve: the same model fitted on a growing share of the training rows.
        let mut model = None;
        for fifth in 1..=5 {
            let rows = train.height() * fifth / 5;
            let fitted = Model::fit(
                &train.head(Some(rows)),
                algorithm,
                Some(label),
                &[],
                &settings,
            )
            .map_err(invalid)?;
            let scored = fitted.score_prepared(&test).map_err(invalid)?;
            let probability = features::numbers(&scored, "probability").ok();
            let m = metrics::classification(
                &features::texts(&scored, label).map_err(invalid)?,
                &features::texts(&scored, "prediction").map_err(invalid)?,
                probability.as_deref(),
            );
            let step = rows as i64;
            metric("val_accuracy", m.accuracy, step);
            metric("val_f1", m.f1, step);
            log.push_str(&format!(
                "fitted on {rows:>5} rows: accuracy {:.4}, f1 {:.4}\n",
                m.accuracy, m.f1
            ));
            if fifth == 5 {
                for (key, v) in [
                    ("accuracy", m.accuracy),
                    ("precision", m.precision),
                    ("recall", m.recall),
                    ("f1", m.f1),
                ] {
                    metric(key, v, step);
                }
                if let Some(auc) = m.roc_auc {
                    metric("roc_auc", auc, step);
                }
                model = Some(fitted);
            }
        }
        tracking.log_batch(
            &run_id,
            crate::tracking::runs::Batch {
                metrics: metrics_out,
                params: vec![
                    Param {
                        key: "algorithm".into(),
                        value: algorithm.as_str().into(),
                    },
                    Param {
                        key: knob.into(),
                        value: value.to_string(),
                    },
                    Param {
                        key: "training_rows".into(),
                        value: train.height().to_string(),
                    },
                ],
                tags: vec![tag("stage", "tuning")],
            },
        )?;
        tracking.handle(
            "POST",
            "runs/log-inputs",
            json!({ "run_id": run_id, "datasets": [{
            "tags": [{ "key": "mlflow.data.context", "value": "training" }],
            "dataset": { "name": "customers", "digest": "customers-1", "source_type": "lathe", "source": "customers:1" } }] }),
        )?;
        let artifacts = run
            .info
            .artifact_uri
            .trim_start_matches(crate::tracking::api::ARTIFACTS_SCHEME)
            .to_owned();
        tracking.put_artifact(&format!("{artifacts}/logs/train.log"), &mut log.as_bytes())?;
        if let Some(mut model) = model {
            if let Some(chain) = &chain {
                model.preprocessing = Some(chain.compile(&model.features).map_err(invalid)?);
            }
            let folder = staging.path().join(&name);
            model
                .save(&folder)
                .map_err(|e| crate::Error::io(&folder, e))?;
            for file in ["MLmodel", "model.json"] {
                let path = folder.join(file);
                let mut reader =
                    std::fs::File::open(&path).map_err(|e| crate::Error::io(&path, e))?;
                tracking.put_artifact(&format!("{artifacts}/model/{file}"), &mut reader)?;
            }
        }
        tracking.update_run(
            &run_id,
            crate::tracking::runs::RunUpdate {
                status: Some(crate::tracking::types::RunStatus::Finished),
                end_time: Some(crate::db::now_millis()),
                run_name: None,
            },
        )?;
    }
    Ok(())
}

fn invalid(why: impl std::fmt::Display) -> crate::Error {
    crate::Error::Pipeline(crate::pipeline::PipelineError::Invalid(format!(
        "the demo experiment: {why}"
    )))
}

/// The demo pipeline: the churn sample (`assets/pipelines/churn-classification.yml`) reading
/// the demo's `customers` asset and registering its model as [`MODEL`].
fn demo_pipeline(root: &std::path::Path) -> Result<crate::pipeline::job::Pipeline> {
    const CHURN: &str = include_str!("../../assets/pipelines/churn-classification.yml");
    let yaml = CHURN
        .replace(
            "type: uri_file\n    path: ../demo/customers.csv",
            "type: uri_folder\n    path: azureml:customers@latest",
        )
        .replace("name: churn-pipeline-classifier", &format!("name: {MODEL}"));
    crate::pipeline::job::parse(&yaml, root).map_err(|problems| {
        crate::Error::Pipeline(crate::pipeline::PipelineError::Invalid(format!(
            "the demo pipeline does not import: {problems:?}"
        )))
    })
}

/// Saves the demo pipeline as `churn-classification:1`, for the designer to open.
pub fn seed_pipelines(store: &crate::Store) -> Result<()> {
    let pipeline = demo_pipeline(store.root())?;
    crate::pipeline::saved::save(&store.tracking(), "churn-classification", &pipeline)
        .map_err(crate::Error::Pipeline)?;
    Ok(())
}

/// The demo's online endpoint `churn` (loopback, a free port): deployment `blue` serves
/// `churn-classifier@champion` with all the traffic and collects its inputs and outputs.
/// Needs [`seed_tracking`] first.
///
/// # Errors
/// As [`crate::endpoints::create_endpoint`] and [`crate::endpoints::put_deployment`].
pub fn seed_endpoints(store: &crate::Store) -> Result<()> {
    crate::endpoints::create_endpoint(
        store,
        "name: churn\ndescription: \"The demo's churn classifier: raw customer rows in, churn out\"\n",
        None,
        None,
    )?;
    let deployment = format!(
        "name: blue\nendpoint_name: churn\nmodel: azureml:{MODEL}@champion\n\
         data_collector:\n  collections:\n    model_inputs:\n      enabled: 'True'\n    \
         model_outputs:\n      enabled: 'True'\n"
    );
    crate::endpoints::put_deployment(store, &deployment, store.root(), true, false)?;
    Ok(())
}

/// The demo's monitor: it watches the `churn` endpoint's inputs, minute by minute, against the
/// training data. The traffic it sees is simulated ([`simulate_traffic`]), and says so.
pub const MONITOR: &str = "churn-drift";

const MONITOR_YAML: &str = "$schema: http://azureml/sdk-2-0/Schedule.json
name: churn-drift
display_name: Churn inputs drift (simulated traffic)
description: >-
  Watches the demo endpoint churn:blue minute by minute against the customers training data.
  Its traffic is simulated: while the window is open Lathe sends customer rows to the real
  endpoint, and after two minutes the customers it sends get older and spend more, so the
  monitor alerts.
tags:
  traffic: simulated
trigger:
  type: recurrence
  frequency: minute
  interval: 1
create_monitor:
  monitoring_target:
    ml_task: classification
    endpoint_deployment_id: azureml:churn:blue
  monitoring_signals:
    inputs-drift:
      type: data_drift
      production_data:
        data_context: model_inputs
        data_window:
          lookback_window_size: PT1M
      reference_data:
        input_data:
          path: azureml:customers:1
          type: mltable
        data_context: training
        data_column_names:
          target_column: churned
      features: [region, plan, age, monthly_spend, tenure_months, satisfaction]
      feature_type_override:
        age: numerical
        tenure_months: numerical
      alert_enabled: true
      metric_thresholds:
        numerical:
          normalized_wasserstein_distance: 0.3
        categorical:
          jensen_shannon_distance: 0.25
    inputs-quality:
      type: data_quality
      production_data:
        data_window:
          lookback_window_size: PT1M
      reference_data:
        input_data:
          path: azureml:customers:1
          type: mltable
        data_context: training
      features: [age, plan, monthly_spend]
      feature_type_override:
        age: numerical
      alert_enabled: true
      metric_thresholds:
        numerical:
          out_of_bounds_rate: 0.05
        categorical:
          out_of_bounds_rate: 0.05
";

/// Creates the demo's monitor on the `churn` endpoint, with alerts grouped over ten minutes.
///
/// # Errors
/// The endpoint or the `customers` asset is missing.
pub fn seed_monitoring(store: &crate::Store) -> Result<()> {
    crate::monitoring::monitors::put(store, MONITOR_YAML, false)?;
    crate::monitoring::monitors::set_settings(store, MONITOR, None, Some(600_000))?;
    // When it alerts, the rows the model was least sure of go to people for labels.
    let mut ws = store.workspace()?;
    crate::labeling::rows::create(
        &mut ws,
        REVIEW_PROJECT,
        crate::labeling::Task::RowClassification,
        &"customers:1".parse()?,
        crate::labeling::labels_from_names(&["true".into(), "false".into()]),
        None,
        true,
    )?;
    crate::monitoring::actions::add(
        store,
        MONITOR,
        &crate::monitoring::actions::Action::Label {
            project: REVIEW_PROJECT.into(),
            rank: crate::monitoring::ranking::Rank::Confidence,
            top: 20,
        },
    )?;
    Ok(())
}

/// The demo's row project the monitor sends its least confident rows to.
pub const REVIEW_PROJECT: &str = "churn-review";

/// Whether this workspace has the demo's monitor of simulated traffic.
pub fn simulates_traffic(store: &crate::Store) -> bool {
    crate::monitoring::monitors::get(store, MONITOR)
        .is_ok_and(|m| m.spec.tags.get("traffic").is_some_and(|t| t == "simulated"))
}

/// Sends the demo endpoint simulated traffic for `run_for`, until `stop`: a customer row of the
/// demo table every `pace` (a quarter second in the window), through the real endpoint (so it is scored, collected and
/// monitored as any request). After `drift_after` (two minutes in the window) the customers
/// drift: 18 years older, spending 60% more, two in three on the pro plan. Logged in the
/// deployment's log as simulated.
pub fn simulate_traffic(
    store: &crate::Store,
    run_for: std::time::Duration,
    drift_after: std::time::Duration,
    pace: std::time::Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering;
    let Some((_, customers)) = FILES.iter().find(|(p, _)| *p == "customers.csv") else {
        return;
    };
    let text = String::from_utf8_lossy(customers);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    const COLUMNS: [&str; 7] = [
        "region",
        "plan",
        "age",
        "monthly_spend",
        "tenure_months",
        "support_tickets",
        "satisfaction",
    ];
    let at: Vec<Option<usize>> = COLUMNS
        .iter()
        .map(|c| header.iter().position(|h| h == c))
        .collect();
    let caller = crate::endpoints::Caller::new();
    let started = std::time::Instant::now();
    let _ = crate::endpoints::log(
        store,
        "churn",
        "blue",
        "simulated demo traffic: Lathe sends customer rows for the churn-drift monitor",
    );
    let mut seed = 0x5EED_u64;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < run_for {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let Some(row) = rows.get((seed >> 33) as usize % rows.len().max(1)) else {
            return;
        };
        let drifted = started.elapsed() >= drift_after;
        let values: Vec<serde_json::Value> = COLUMNS
            .iter()
            .zip(&at)
            .map(|(column, i)| {
                let raw = i.and_then(|i| row.get(i)).copied().unwrap_or_default();
                if raw.is_empty() {
                    return serde_json::Value::Null;
                }
                match (*column, drifted) {
                    ("region", _) => raw.into(),
                    ("plan", true) if !seed.is_multiple_of(3) => "pro".into(),
                    ("plan", _) => raw.into(),
                    (c, _) => {
                        let x: f64 = raw.parse().unwrap_or(0.0);
                        match (c, drifted) {
                            ("age", true) => (x + 18.0).into(),
                            ("monthly_spend", true) => ((x * 1.6 * 100.0).round() / 100.0).into(),
                            _ => x.into(),
                        }
                    }
                }
            })
            .collect();
        let body = serde_json::json!({
            "dataframe_split": { "columns": COLUMNS, "data": [values] }
        });
        let sent = crate::endpoints::endpoint(store, "churn").and_then(|e| {
            caller.send(
                &e,
                body.to_string().as_bytes(),
                "application/json",
                None,
                false,
            )
        });
        // Until the endpoint serves (the window starts it), wait a little longer.
        let pause = if sent.is_ok() {
            pace
        } else {
            std::time::Duration::from_secs(1)
        };
        std::thread::sleep(pause);
    }
}
