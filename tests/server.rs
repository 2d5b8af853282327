//! `lathe server` over real HTTP: bad requests get MLflow's error codes (never a 500), a
//! SIGKILL mid-stream loses no acknowledged batch and leaves a sound database, and the server
//! and the CLI write to one workspace at once without "database is locked".

// Tests: a failed step should stop the test right there, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // tests start bare threads to load the server

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lathe_tests::{Sandbox, Server, call, http, metric_history};
use serde_json::{Value, json};

fn api(server: &Server, endpoint: &str) -> String {
    format!("{}/api/2.0/mlflow/{endpoint}", server.url)
}

fn new_run(server: &Server) -> String {
    let (status, body) = call(
        &http(),
        "POST",
        &api(server, "runs/create"),
        r#"{"experiment_id": "0"}"#,
    );
    assert_eq!(status, 200, "{body}");
    body["run"]["info"]["run_id"].as_str().unwrap().to_owned()
}

/// A log-batch body with `count` points of metric `m` at steps `first..first + count`.
fn batch(run: &str, first: i64, count: i64) -> String {
    let metrics: Vec<Value> = (first..first + count)
        .map(|s| json!({"key": "m", "value": s as f64, "timestamp": 1_700_000_000_000_i64 + s, "step": s}))
        .collect();
    json!({"run_id": run, "metrics": metrics}).to_string()
}

#[test]
fn bad_requests_get_mlflow_error_codes_never_a_500() {
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox.workspace(), &[]);
    let run = new_run(&server);
    let agent = http();
    let artifacts = format!("{}/api/2.0/mlflow-artifacts/artifacts", server.url);
    let too_many = batch(&run, 0, 1001);
    let huge = format!(
        "{{\"run_id\": \"{run}\", \"pad\": \"{}\"}}",
        "x".repeat(17 << 20)
    );
    let cases: Vec<(&str, String, String, u16, &str)> = vec![
        (
            "POST",
            api(&server, "runs/log-batch"),
            "{not json".into(),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            api(&server, "runs/log-batch"),
            too_many,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            api(&server, "runs/log-batch"),
            huge,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            api(&server, "runs/log-metric"),
            r#"{"run_id": "nope", "key": "m", "value": 1, "timestamp": 1}"#.into(),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "GET",
            api(&server, "runs/get?run_id=nope"),
            String::new(),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "POST",
            api(&server, "runs/log-metric"),
            format!(r#"{{"run_id": "{run}", "key": "m", "value": "high"}}"#),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "POST",
            api(&server, "no/such/endpoint"),
            "{}".into(),
            404,
            "ENDPOINT_NOT_FOUND",
        ),
        (
            "GET",
            format!("{}/nothing-here", server.url),
            String::new(),
            404,
            "ENDPOINT_NOT_FOUND",
        ),
        (
            "PUT",
            format!("{artifacts}/0/{run}/artifacts/%2E%2E/%2E%2E/escape.txt"),
            "x".into(),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "PUT",
            format!("{artifacts}/0/{run}/artifacts/a/../../../escape.txt"),
            "x".into(),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "GET",
            format!("{artifacts}?path=0/../.."),
            String::new(),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "GET",
            format!("{artifacts}/0/{run}/artifacts/missing.txt"),
            String::new(),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
    ];
    for (method, url, body, status, code) in cases {
        let (got, answer) = call(&agent, method, &url, &body);
        assert_eq!(
            (got, answer["error_code"].as_str()),
            (status, Some(code)),
            "{method} {url}: {answer}"
        );
        assert!(
            !answer["message"].as_str().unwrap_or_default().is_empty(),
            "{url}: a message says why"
        );
    }
    // The server is still up and the run untouched.
    let (status, body) = call(
        &agent,
        "GET",
        &api(&server, &format!("runs/get?run_id={run}")),
        "",
    );
    assert_eq!(status, 200);
    assert!(
        body["run"]["data"]["metrics"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_batch() {
    const POINTS: i64 = 100;
    let sandbox = Sandbox::new();
    let ws = sandbox.workspace();
    let mut server = Server::start(&ws, &[]);
    let run = new_run(&server);
    let url = api(&server, "runs/log-batch");
    // Four clients stream batches; each remembers the batches it got a 200 for.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (url, run, stop) = (url.clone(), run.clone(), stop.clone());
            std::thread::spawn(move || {
                let agent = http();
                let mut acknowledged = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let first = (n * 4 + client) * POINTS;
                    let request = ureq::http::Request::builder()
                        .method("POST")
                        .uri(&url)
                        .body(batch(&run, first, POINTS))
                        .unwrap();
                    match agent.run(request) {
                        Ok(r) if r.status() == 200 => acknowledged.push(first),
                        Ok(r) => panic!("status {} before the kill", r.status()),
                        Err(_) => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<i64> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        acknowledged.len() > 20,
        "only {} batches before the kill",
        acknowledged.len()
    );

    let conn = rusqlite::Connection::open(ws.join("lathe.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);

    let server = Server::start(&ws, &[]);
    let steps: std::collections::HashSet<i64> = metric_history(&server.url, &run, "m")
        .iter()
        .map(|m| m["step"].as_i64().unwrap())
        .collect();
    for first in &acknowledged {
        for step in *first..*first + POINTS {
            assert!(steps.contains(&step), "acknowledged step {step} was lost");
        }
    }
}

#[test]
fn server_and_cli_write_one_workspace_at_once() {
    let sandbox = Sandbox::new();
    let ws = sandbox.workspace();
    let server = Server::start(&ws, &[]);
    let run = new_run(&server);
    let url = api(&server, "runs/log-batch");
    let logger = std::thread::spawn(move || {
        let agent = http();
        for n in 0..300 {
            let (status, body) = call(&agent, "POST", &url, &batch(&run, n * 10, 10));
            assert_eq!(status, 200, "batch {n}: {body}");
        }
    });
    let csv: String = std::iter::once("a,b\n".to_owned())
        .chain((0..20_000).map(|i| format!("{i},{}\n", i * 2)))
        .collect();
    for i in 0..4 {
        let file = sandbox.file(
            &format!("t{i}.csv"),
            csv.replace("a,b", &format!("a{i},b")).as_bytes(),
        );
        sandbox
            .lathe(&[
                "data",
                "import",
                file.to_str().unwrap(),
                "--name",
                &format!("t{i}"),
            ])
            .ok();
        let model = sandbox.path("tiny.onnx");
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/corpora/onnx/onnx/onnx/backend/test/data/pytorch-converted/test_ReLU/model.onnx"),
            &model,
        )
        .unwrap();
        sandbox
            .lathe(&[
                "models",
                "register",
                model.to_str().unwrap(),
                "--name",
                "relu",
            ])
            .ok();
    }
    logger.join().unwrap();
    let versions = sandbox
        .lathe(&["models", "show", "relu", "--json"])
        .ok()
        .json();
    assert_eq!(versions.as_array().unwrap().len(), 4);
    assert_eq!(
        versions[0]["signature"]["inputs"][0]["tensor-spec"]["shape"],
        json!([2, 3, 4, 5])
    );
}

#[test]
fn searches_past_the_stores_limits_are_refused_by_name_and_never_show_sql() {
    let sandbox = Sandbox::new();
    let server = Server::start(&sandbox.workspace(), &[]);
    let run = new_run(&server);
    let agent = http();
    let search = |endpoint: &str, body: Value| {
        call(&agent, "POST", &api(&server, endpoint), &body.to_string())
    };
    // An IN list longer than SQLite binds (32,766 values) is one value to the store: it works.
    let ids: Vec<String> = (0..32_767).map(|i| format!("'id{i}'")).collect();
    let long_in = format!("attributes.run_id IN ({}, '{run}')", ids.join(", "));
    let (status, body) = search(
        "runs/search",
        json!({"experiment_ids": ["0"], "filter": long_in}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runs"].as_array().map(Vec::len), Some(1));
    // Past the documented limits: 400 naming the limit, for every search.
    let clauses = |n: usize, prefix: &str| {
        (0..n)
            .map(|i| format!("{prefix}k{i} = 'v'"))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let order: Vec<String> = (0..64).map(|i| format!("params.p{i}")).collect();
    let cases = [
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "filter": clauses(64, "params.")}),
            "at most 40 comparisons",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "filter": clauses(1000, "tags.")}),
            "at most 40 comparisons",
        ),
        (
            "runs/search",
            json!({"experiment_ids": ["0"], "order_by": order}),
            "at most 20 keys",
        ),
        (
            "experiments/search",
            json!({"max_results": 10, "filter": clauses(64, "tags.")}),
            "at most 40 comparisons",
        ),
        (
            "registered-models/search",
            json!({"filter": clauses(64, "tags.")}),
            "at most 40 comparisons",
        ),
        (
            "model-versions/search",
            json!({"filter": clauses(64, "tags.")}),
            "at most 40 comparisons",
        ),
    ];
    for (endpoint, body, limit) in cases {
        let (status, answer) = search(endpoint, body);
        let message = answer["message"].as_str().unwrap_or_default();
        assert_eq!(
            (status, answer["error_code"].as_str()),
            (400, Some("INVALID_PARAMETER_VALUE")),
            "{endpoint}: {answer}"
        );
        assert!(message.contains(limit), "{endpoint}: {message}");
        for sql in ["SELECT", "JOIN", " FROM ", "json_each"] {
            assert!(!message.contains(sql), "{endpoint} shows SQL: {message}");
        }
    }
}
