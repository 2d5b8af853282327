//! The official MLflow Python client against `lathe server`: the script in
//! peers/mlflow_client.py logs experiments, runs, params, metrics, tags and artifacts, searches,
//! reads history and registers a model with an alias; then the `lathe` CLI must show all of it.

// Tests: a failed step should stop the test right there, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use lathe_tests::{Sandbox, Server, call, http, peer_python, peer_script};
use serde_json::Value;

fn run_client(server_url: &str, token: Option<&str>, script: &str) -> Value {
    let mut command = Command::new(peer_python());
    command
        .arg(peer_script(script))
        .env("MLFLOW_TRACKING_URI", server_url)
        .env("GIT_PYTHON_REFRESH", "quiet")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .env_remove("MLFLOW_TRACKING_TOKEN");
    if let Some(token) = token {
        command.env("MLFLOW_TRACKING_TOKEN", token);
    }
    let out = command.output().expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the mlflow client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no JSON summary ({e}): {stdout}"))
}

#[test]
fn the_official_client_logs_everything_and_the_cli_shows_it() {
    let sandbox = Sandbox::new();
    let ws = sandbox.workspace();
    let server = Server::start(&ws, &[]);
    let ids = run_client(&server.url, None, "mlflow_client.py");
    // What MLflow's own server tests found Lathe answering differently (mlflow_compat.py).
    assert_eq!(
        ids["compat"],
        serde_json::json!([
            "registered_model_search",
            "model_version_sources",
            "logged_models",
            "artifacts",
            "validation",
            "experiments_and_version"
        ])
    );
    let lathe = |args: &[&str]| sandbox.lathe(args).ok().json();

    let experiments = lathe(&["experiments", "list", "--json"]);
    let churn = experiments
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "churn")
        .expect("the churn experiment");
    assert_eq!(churn["experiment_id"], ids["experiment_id"]);
    assert_eq!(churn["tags"][0]["key"], "team");

    let runs = lathe(&["runs", "list", "--experiment", "churn", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 4);
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .all(|r| r["info"]["status"] == "FINISHED")
    );

    let batch_id = ids["batch_run_id"].as_str().unwrap();
    let shown = lathe(&["runs", "show", batch_id, "--json"]);
    let data = &shown["run"]["data"];
    assert_eq!(
        data["params"][0],
        serde_json::json!({"key": "optimizer", "value": "adam"})
    );
    let curve = data["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "curve")
        .unwrap();
    assert_eq!(
        (curve["step"].as_i64(), curve["value"].as_f64()),
        (Some(999), Some(99.9))
    );
    let odd = data["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "odd")
        .unwrap();
    assert_eq!(odd["value"], "NaN");
    assert!(
        data["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "kind" && t["value"] == "batch")
    );
    let files: Vec<&str> = shown["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "model/MLmodel",
            "model/extra/README.md",
            "model/model.pkl",
            "notes.txt"
        ]
    );

    let tree = lathe(&[
        "runs",
        "search",
        "params.model = 'tree'",
        "--order-by",
        "params.lr",
        "--json",
    ]);
    let names: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info"]["run_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["trial-1", "trial-0"]);

    let champion = lathe(&["models", "show", "churn-model@champion", "--json"]);
    let version = &champion[0];
    assert_eq!(version["version"], "1");
    assert_eq!(version["run_id"], batch_id);
    assert_eq!(version["source"], ids["model_source"]);
    assert_eq!(version["tags"][0]["key"], "validated");
    assert_eq!(version["signature"]["inputs"][0]["name"], "sepal_length");
    assert_eq!(version["aliases"][0], "champion");

    // The MLflow 3 logged model: registered from `models:/<id>`, linked to its run.
    let echo = lathe(&["models", "show", "echo-model:1", "--json"]);
    assert_eq!(echo[0]["model_id"], ids["echo_model_id"]);
    assert_eq!(echo[0]["run_id"], ids["echo_run_id"]);
    assert!(
        echo[0]["signature"]["inputs"].is_array(),
        "signature from its MLmodel: {echo}"
    );
    let run = lathe(&[
        "runs",
        "show",
        ids["echo_run_id"].as_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        run["run"]["outputs"]["model_outputs"][0]["model_id"],
        ids["echo_model_id"]
    );
}

#[test]
fn off_loopback_the_server_needs_a_token_and_the_client_sends_it() {
    let sandbox = Sandbox::new();
    let ws = sandbox.workspace();
    sandbox
        .lathe(&["server", "--host", "0.0.0.0", "--port", "0"])
        .fails_with("--token");

    let server = Server::start(&ws, &["--host", "0.0.0.0", "--token", "s3cret"]);
    let url = server.url.replace("0.0.0.0", "127.0.0.1");
    let (status, body) = call(
        &http(),
        "GET",
        &format!("{url}/api/2.0/mlflow/experiments/search"),
        "",
    );
    assert_eq!(
        (status, body["error_code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let summary = run_client(&url, Some("s3cret"), "mlflow_token_client.py");
    assert_eq!(summary["experiments"], serde_json::json!(["Default"]));
}
