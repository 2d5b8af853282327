//! The batch-endpoint benchmark: the demo pipeline's logistic regression scores a table of
//! LATHE_BENCH_ROWS rows (default 1,000,000) of its 12 features as a batch job, from the data
//! asset to the predictions asset, and with `summary_only` (reading and scoring alone); then
//! `mlflow models predict` scores the same CSV with a scikit-learn logistic regression on the
//! same features, the batch path MLflow offers for a local model. Prints rows/s of each and the
//! ratio.
//!
//!     cargo bench -p lathe-tests --bench batch
//!
//! LATHE_BENCH_PEER=0 leaves MLflow out. It prints figures; it is a benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use lathe_tests::{Sandbox, peer_python, run_metric, save_sklearn_logistic};

const FEATURES: [&str; 12] = [
    "region_east",
    "region_north",
    "region_south",
    "region_west",
    "plan_basic",
    "plan_plus",
    "plan_pro",
    "age",
    "monthly_spend",
    "tenure_months",
    "support_tickets",
    "satisfaction",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `lathe batch-endpoint invoke` and prints the wall time and the job's own rate.
fn invoke(sandbox: &Sandbox, deployment: &str, rows: u64) -> f64 {
    let started = Instant::now();
    let job = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn",
            "--input",
            "bench-input:1",
            "--deployment-name",
            deployment,
            "--json",
        ])
        .ok()
        .json();
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(job["state"], "completed", "{job}");
    // The job's run records its scoring alone (the mini batches, without reading the input,
    // loading the model or writing the output).
    let run = sandbox
        .lathe(&["runs", "show", job["run_id"].as_str().unwrap(), "--json"])
        .ok()
        .json();
    let scoring = run_metric(&run, "rows_per_second");
    let job_seconds =
        (job["finished_at_ms"].as_f64().unwrap() - job["started_at_ms"].as_f64().unwrap()) / 1000.0;
    println!(
        "Lathe batch job ({deployment}): {wall:.2} s as the CLI waits ({:.0} rows/s), the job \
         {job_seconds:.2} s ({:.0} rows/s with reading{}), scoring alone {scoring:.0} rows/s",
        rows as f64 / wall,
        rows as f64 / job_seconds,
        if deployment == "full" {
            " and writing"
        } else {
            ""
        }
    );
    wall
}

fn main() {
    let rows = env_u64("LATHE_BENCH_ROWS", 1_000_000);
    let sandbox = Sandbox::new();
    sandbox.run_churn_pipeline();
    let endpoint = sandbox.file("endpoint.yml", b"name: churn\n");
    sandbox
        .lathe(&["batch-endpoint", "create", "-f", endpoint.to_str().unwrap()])
        .ok();
    for (name, settings) in [
        ("full", "  output_action: append_row\n"),
        ("summary", "  output_action: summary_only\n"),
    ] {
        let yaml = format!(
            "name: {name}\nendpoint_name: churn\nmodel: azureml:churn-pipeline-classifier:1\n\
             settings:\n{settings}"
        );
        let file = sandbox.file(&format!("{name}.yml"), yaml.as_bytes());
        sandbox
            .lathe(&["batch-deployment", "create", "-f", file.to_str().unwrap()])
            .ok();
    }
    let mut csv = FEATURES.join(",");
    csv.push('\n');
    for i in 0..rows {
        for j in 0..FEATURES.len() {
            let x = ((i * 31 + j as u64 * 7) % 1000) as f64 / 250.0 - 2.0;
            let _ = write!(csv, "{}{x}", if j == 0 { "" } else { "," });
        }
        csv.push('\n');
    }
    let input = sandbox.file("input.csv", csv.as_bytes());
    drop(csv);
    let started = Instant::now();
    sandbox
        .lathe(&[
            "data",
            "import",
            input.to_str().unwrap(),
            "--name",
            "bench-input",
        ])
        .ok();
    println!(
        "== {rows} rows × {} features; imported in {:.2} s",
        FEATURES.len(),
        started.elapsed().as_secs_f64()
    );
    let lathe = invoke(&sandbox, "full", rows);
    invoke(&sandbox, "summary", rows);
    if env_u64("LATHE_BENCH_PEER", 1) == 0 {
        return;
    }
    let python = peer_python();
    let model = sandbox.path("sklearn-model");
    save_sklearn_logistic(&FEATURES, &model);
    let mlflow = python.with_file_name("mlflow");
    let out = sandbox.path("mlflow-predictions.csv");
    let started = Instant::now();
    let predicted = Command::new(&mlflow)
        .args([
            "models",
            "predict",
            "--env-manager",
            "local",
            "-t",
            "csv",
            "-m",
        ])
        .arg(&model)
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let peer = started.elapsed().as_secs_f64();
    assert!(
        predicted.status.success(),
        "{}",
        String::from_utf8_lossy(&predicted.stderr)
    );
    println!(
        "mlflow models predict, scikit-learn: {peer:.2} s, {:.0} rows/s end to end",
        rows as f64 / peer
    );
    println!("Lathe / MLflow: {:.1}× the rows/s end to end", peer / lathe);
}
