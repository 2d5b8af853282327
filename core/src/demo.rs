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

/// Logs a demo experiment into the workspace's tracking store: twelve churn-model runs with
/// params, metric histories, tags, a training log, the customers table as their input, and the
/// best run's model registered as `churn-classifier@champion`. Values come from a fixed
/// pseudo-random sequence, so every demo is the same.
pub fn seed_tracking(store: &crate::Store) -> Result<()> {
    use serde_json::json;

    let tracking = store.tracking();
    let call = |method: &str, endpoint: &str, body: serde_json::Value| {
        tracking
            .handle(method, endpoint, body)
            .map_err(crate::Error::from)
    };
    let experiment = call(
        "POST",
        "experiments/create",
        json!({ "name": "churn-demo",
        "tags": [{ "key": "mlflow.note.content", "value": "Demo: churn classifiers on the customers table" }] }),
    )?;
    let experiment_id = experiment["experiment_id"].as_str().ok_or_else(|| {
        crate::Error::Tracking(crate::tracking::TrackingError::internal(
            "experiments/create answered without an id",
        ))
    })?;
    let mut seed = 0x2545_f491_u64;
    let mut random = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let start = crate::db::now_millis() - 12 * 3_600_000;
    // The best run so far: (auc, run id, artifact root).
    let mut best: Option<(f64, String, String)> = None;
    for i in 0..12 {
        let model = ["gradient_boosting", "logistic_regression", "random_forest"][i % 3];
        let learning_rate = [0.3, 0.1, 0.03, 0.01][i % 4];
        let depth = 3 + (i % 5) as i64;
        let started = start + i as i64 * 3_600_000;
        let tag = |key: &str, value: &str| crate::tracking::types::Tag {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        let run = tracking.create_run(crate::tracking::runs::NewRun {
            experiment_id: experiment_id.to_owned(),
            user_id: "demo".to_owned(),
            start_time: Some(started),
            run_name: Some(format!("{model}-{i:02}")),
            tags: vec![
                tag("mlflow.source.name", "train.py"),
                tag(
                    "mlflow.source.git.commit",
                    "3f9c2a1d8e7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c",
                ),
            ],
        })?;
        let run_id = run.info.run_id.clone();
        let quality = 0.6
            + 0.3 * random()
            + if model == "gradient_boosting" {
                0.05
            } else {
                0.0
            };
        let mut metrics = Vec::new();
        for epoch in 0..30_i64 {
            let progress = 1.0 - (-(epoch as f64) * learning_rate * 2.0).exp();
            let noise = (random() - 0.5) * 0.04;
            let timestamp = started + epoch * 20_000;
            metrics.push(json!({ "key": "train_loss", "value": 0.7 - 0.5 * progress * quality + noise, "timestamp": timestamp, "step": epoch }));
            metrics.push(json!({ "key": "val_loss", "value": 0.72 - 0.45 * progress * quality + noise * 1.5, "timestamp": timestamp, "step": epoch }));
        }
        let auc = (quality + (random() - 0.5) * 0.02).min(0.99);
        metrics.push(
            json!({ "key": "auc", "value": auc, "timestamp": started + 600_000, "step": 29 }),
        );
        metrics.push(json!({ "key": "f1", "value": auc - 0.12 + random() * 0.03, "timestamp": started + 600_000, "step": 29 }));
        call(
            "POST",
            "runs/log-batch",
            json!({ "run_id": run_id, "metrics": metrics,
            "params": [{ "key": "model", "value": model },
                       { "key": "learning_rate", "value": learning_rate.to_string() },
                       { "key": "max_depth", "value": depth.to_string() }],
            "tags": [{ "key": "stage", "value": "tuning" }] }),
        )?;
        call(
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
        let log: String = (0..30)
            .map(|e| format!("epoch {e:>2}  training…\n"))
            .collect();
        tracking.put_artifact(&format!("{artifacts}/logs/train.log"), &mut log.as_bytes())?;
        tracking.put_artifact(
            &format!("{artifacts}/model/MLmodel"),
            &mut DEMO_MLMODEL.as_bytes(),
        )?;
        call(
            "POST",
            "runs/update",
            json!({ "run_id": run_id, "status": "FINISHED", "end_time": started + 600_000 }),
        )?;
        if best.as_ref().is_none_or(|(b, _, _)| auc > *b) {
            best = Some((auc, run_id, artifacts));
        }
    }
    if let Some((_, run_id, path)) = best {
        call(
            "POST",
            "registered-models/create",
            json!({ "name": "churn-classifier",
            "description": "Predicts which customers will churn next month." }),
        )?;
        let version = call(
            "POST",
            "model-versions/create",
            json!({ "name": "churn-classifier",
            "source": format!("{}{path}/model", crate::tracking::api::ARTIFACTS_SCHEME), "run_id": run_id }),
        )?;
        call(
            "POST",
            "registered-models/alias",
            json!({ "name": "churn-classifier", "alias": "champion",
            "version": version["model_version"]["version"] }),
        )?;
    }
    Ok(())
}

const DEMO_MLMODEL: &str = "artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
  sklearn:
    pickled_model: model.pkl
signature:
  inputs: '[{\"type\": \"long\", \"name\": \"tenure_months\"}, {\"type\": \"double\", \"name\": \"monthly_spend\"}, {\"type\": \"string\", \"name\": \"plan\"}, {\"type\": \"long\", \"name\": \"support_tickets\"}]'
  outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"int64\", \"shape\": [-1]}}]'
";

/// Saves the sample churn pipeline (`assets/pipelines/churn-classification.yml`, reading the
/// demo's `customers` asset) as `churn-classification:1`, for the designer to open.
pub fn seed_pipelines(store: &crate::Store) -> Result<()> {
    let root = store.root();
    const CHURN: &str = include_str!("../../assets/pipelines/churn-classification.yml");
    let yaml = CHURN.replace(
        "type: uri_file\n    path: ../demo/customers.csv",
        "type: uri_folder\n    path: azureml:customers@latest",
    );
    let pipeline = crate::pipeline::job::parse(&yaml, root).map_err(|problems| {
        crate::Error::Pipeline(crate::pipeline::PipelineError::Invalid(format!(
            "the demo pipeline does not import: {problems:?}"
        )))
    })?;
    crate::pipeline::saved::save(&store.tracking(), "churn-classification", &pipeline)
        .map_err(crate::Error::Pipeline)?;
    Ok(())
}
