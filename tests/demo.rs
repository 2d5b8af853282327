//! The demo workspace as a new user gets it: `churn-classifier` trained by the demo pipeline and
//! registered with the preprocessing it was trained behind, a `churn-demo` experiment of real
//! runs, and the `churn` endpoint serving raw customer rows. Batch scoring of the demo table
//! equals online scoring row for row, and both equal the pipeline's own scoring of its held-out
//! rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lathe_tests::{Sandbox, Server, http};
use polars::prelude::*;
use serde_json::{Value, json};

const RAW: [&str; 7] = [
    "region",
    "plan",
    "age",
    "monthly_spend",
    "tenure_months",
    "support_tickets",
    "satisfaction",
];

fn table(sandbox: &Sandbox, reference: &str) -> DataFrame {
    let ws = lathe_core::Workspace::open(sandbox.workspace()).unwrap();
    let version = ws.resolve(&reference.parse().unwrap()).unwrap();
    lathe_core::profile::load_table(&ws, &version).unwrap()
}

fn numbers(df: &DataFrame, column: &str) -> Vec<Option<f64>> {
    let cast = df.column(column).unwrap().cast(&DataType::Float64).unwrap();
    cast.f64().unwrap().iter().collect()
}

/// A cell of the raw table as JSON, as a caller would send it.
fn cell(df: &DataFrame, column: &str, row: usize) -> Value {
    match df.column(column).unwrap().get(row).unwrap() {
        AnyValue::Null => Value::Null,
        AnyValue::String(s) => json!(s),
        AnyValue::Int64(n) => json!(n),
        AnyValue::Float64(x) => json!(x),
        other => panic!("{column}: {other:?}"),
    }
}

#[test]
fn the_demo_model_scores_raw_rows_online_and_in_batch_as_its_pipeline_did() {
    let s = Sandbox::new();
    {
        let mut ws = lathe_core::Workspace::open(s.workspace()).unwrap();
        lathe_core::demo::seed(&mut ws).unwrap();
        let store = lathe_core::Store::open(s.workspace()).unwrap();
        lathe_core::demo::seed_pipelines(&store).unwrap();
        lathe_core::demo::seed_tracking(&store).unwrap();
        lathe_core::demo::seed_endpoints(&store).unwrap();
        let champion = store
            .tracking()
            .read(|c| {
                lathe_core::tracking::registry::version_by_alias(c, "churn-classifier", "champion")
            })
            .unwrap();
        let inputs: Vec<&str> = champion.signature.as_ref().unwrap()["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(inputs, RAW, "the model takes raw rows, not encoded ones");
        assert!(
            !champion.run_id.is_empty(),
            "trained by a run of the pipeline"
        );
    }

    // The tuning experiment holds real runs: metrics measured, a learning curve each.
    let tracking = lathe_core::tracking::Tracking::open(s.workspace()).unwrap();
    let experiment = tracking
        .handle(
            "GET",
            "experiments/get-by-name",
            json!({ "experiment_name": "churn-demo" }),
        )
        .unwrap();
    let runs = tracking
        .handle(
            "POST",
            "runs/search",
            json!({ "experiment_ids": [experiment["experiment"]["experiment_id"]] }),
        )
        .unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    for run in runs {
        assert_eq!(run["info"]["status"], "FINISHED");
        let accuracy = run["data"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == "accuracy")
            .unwrap()["value"]
            .as_f64()
            .unwrap();
        assert!((0.5..=1.0).contains(&accuracy), "{run}");
        let history = tracking
            .handle(
                "GET",
                "metrics/get-history",
                json!({ "run_id": run["info"]["run_id"], "metric_key": "val_accuracy" }),
            )
            .unwrap();
        assert_eq!(history["metrics"].as_array().unwrap().len(), 5, "{history}");
    }

    // Batch: the raw demo table, scored by a batch deployment of the champion.
    s.lathe(&[
        "batch-endpoint",
        "create",
        "-f",
        s.file("e.yml", b"name: churn-batch\n").to_str().unwrap(),
    ])
    .ok();
    let deployment = s.file(
        "d.yml",
        b"name: champion\nendpoint_name: churn-batch\nmodel: azureml:churn-classifier@champion\n\
          settings:\n  mini_batch_size: 300\n",
    );
    s.lathe(&[
        "batch-deployment",
        "create",
        "-f",
        deployment.to_str().unwrap(),
    ])
    .ok();
    let job = s
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--input",
            "customers:1",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        job["rows_failed"], 0,
        "rows with a missing age are filled: {job}"
    );
    let raw = table(&s, "customers:1");
    let batch = table(&s, job["output_version"].as_str().unwrap());
    assert_eq!(batch.height(), raw.height());
    let batch_probability: Vec<f64> = numbers(&batch, "probability")
        .into_iter()
        .map(Option::unwrap)
        .collect();

    // The pipeline scored its held-out rows (prepared) in their order in the table: the raw
    // rows' probabilities hold them as a subsequence — to 1e-12, as the prepared table
    // travelled between the pipeline's steps as CSV text.
    let held_out: Vec<f64> = numbers(&table(&s, "churn_test_scored:1"), "probability")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let mut at = 0;
    for p in &batch_probability {
        if at < held_out.len() && (p - held_out[at]).abs() < 1e-12 {
            at += 1;
        }
    }
    assert_eq!(
        at,
        held_out.len(),
        "the raw rows scored by the model give the pipeline's own scores"
    );

    // Online: the demo's endpoint answers the same raw rows with the same numbers.
    let _server = Server::start(&s.workspace(), &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let shown = loop {
        let shown = s
            .lathe(&["online-endpoint", "show", "churn", "--json"])
            .ok()
            .json();
        if shown["deployments"][0]["provisioning_state"] == "ready" {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "churn never became ready: {shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        shown["deployments"][0]["model"],
        "azureml:churn-classifier:1"
    );
    let key = s
        .lathe(&["online-endpoint", "get-credentials", "churn", "--json"])
        .ok()
        .json()["primaryKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = shown["scoring_uri"]
        .as_str()
        .unwrap()
        .trim_end_matches("/score")
        .to_owned();
    let mut online: Vec<f64> = Vec::new();
    for start in (0..raw.height()).step_by(500) {
        let rows: Vec<Vec<Value>> = (start..(start + 500).min(raw.height()))
            .map(|i| RAW.iter().map(|c| cell(&raw, c, i)).collect())
            .collect();
        let body = json!({ "dataframe_split": { "columns": RAW, "data": rows },
                           "params": { "probabilities": true } });
        let mut answer = http()
            .post(format!("{base}/invocations"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(answer.status(), 200);
        let answer: Value =
            serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap();
        online.extend(
            answer["predictions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["probabilities"]["true"].as_f64().unwrap()),
        );
    }
    assert_eq!(online.len(), batch_probability.len());
    let differ: Vec<(usize, f64, f64)> = (0..online.len())
        .filter(|&i| online[i] != batch_probability[i])
        .map(|i| (i, online[i], batch_probability[i]))
        .take(5)
        .collect();
    // JSON numbers parse to the nearest double (serde_json's float_roundtrip), as the CSV's do.
    assert!(
        differ.is_empty(),
        "online equals batch, row for row, to the last bit: (row, online, batch) {differ:?}"
    );
}

/// The demo's monitor watches the simulated traffic the window sends, and the traffic drifts
/// enough for its thresholds: the drifted part alerts, the part before does not.
#[test]
fn the_demo_monitor_alerts_on_the_simulated_drift() {
    let s = Sandbox::new();
    let store = lathe_core::Store::open(s.workspace()).unwrap();
    {
        let mut ws = lathe_core::Workspace::open(s.workspace()).unwrap();
        lathe_core::demo::seed(&mut ws).unwrap();
        lathe_core::demo::seed_pipelines(&store).unwrap();
        lathe_core::demo::seed_tracking(&store).unwrap();
        lathe_core::demo::seed_endpoints(&store).unwrap();
        lathe_core::demo::seed_monitoring(&store).unwrap();
    }
    assert!(lathe_core::demo::simulates_traffic(&store));
    let _server = lathe_tests::Server::start(&s.workspace(), &[]);
    let start = lathe_core::db::now_millis();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let secs = std::time::Duration::from_secs;
    // Faster than the window's pace, so that each part has a few hundred rows.
    lathe_core::demo::simulate_traffic(
        &store,
        secs(24),
        secs(12),
        std::time::Duration::from_millis(40),
        &stop,
    );
    let end = lathe_core::db::now_millis();
    // Collected within about ten seconds of the last request.
    lathe_tests::endpoint_until(&s, "churn", "the traffic was never collected", |shown| {
        lathe_tests::collected_rows(shown, "model_inputs") >= 300
    });
    let iso = lathe_tests::iso;
    let run = |from: i64, to: i64| {
        s.lathe(&[
            "monitor",
            "run",
            "churn-drift",
            "--window",
            &format!("{}/{}", iso(from), iso(to)),
            "--json",
        ])
        .ok()
        .json()
    };
    let drift = |outcome: &Value| -> Vec<String> {
        outcome["signals"][0]["crossings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["feature"].as_str().unwrap().to_owned())
            .collect()
    };
    let steady = run(start, start + 11_000);
    assert_eq!(drift(&steady), Vec::<String>::new(), "{steady}");
    let drifted = run(start + 13_000, end);
    let moved = drift(&drifted);
    for feature in ["age", "monthly_spend", "plan"] {
        assert!(moved.contains(&feature.to_owned()), "{moved:?}");
    }
    assert!(!drifted["opened"].as_array().unwrap().is_empty());
    // The alert sent the 20 rows the model was least sure of to the review project.
    let sent = &drifted["actions"][0];
    assert_eq!(sent["state"], "completed", "{drifted}");
    assert_eq!(sent["labeling_project"], "churn-review", "{drifted}");
    let status = s
        .lathe(&["label", "status", "churn-review", "--json"])
        .ok()
        .json();
    assert_eq!(status[0]["stats"]["items"], 20, "{status}");
}
