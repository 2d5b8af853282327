//! Online endpoints end to end: a model trained and registered by the demo pipeline, deployed
//! from Azure ML YAML with the CLI, served by `lathe server`; MLflow's scoring protocol and the
//! official Triton HTTP client against it; predictions against the model's own weights; bad
//! requests named with the server staying up; a deployment added while the server runs is picked
//! up, and a 80/20 split lands within bounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use lathe_tests::{
    Sandbox, Server, expected, http, logistic_weights, peer_python, peer_script,
    register_feature_model,
};
use serde_json::{Value, json};

fn post(
    url: &str,
    key: &str,
    content_type: &str,
    body: &str,
    deployment: Option<&str>,
) -> (u16, String, Value) {
    let mut request = ureq::http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {key}"));
    if let Some(d) = deployment {
        request = request.header("azureml-model-deployment", d);
    }
    let mut answer = http().run(request.body(body.to_owned()).unwrap()).unwrap();
    let status = answer.status().as_u16();
    let served_by = answer
        .headers()
        .get("azureml-model-deployment")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = answer.body_mut().read_to_string().unwrap();
    (
        status,
        served_by,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn show(sandbox: &Sandbox) -> Value {
    sandbox
        .lathe(&["online-endpoint", "show", "churn", "--json"])
        .ok()
        .json()
}

/// Waits until every deployment of `churn` is `ready` in the serving process.
fn wait_ready(sandbox: &Sandbox, count: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = show(sandbox);
        let states: Vec<&str> = shown["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["provisioning_state"].as_str().unwrap())
            .collect();
        if states.len() == count && states.iter().all(|s| *s == "ready") {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "deployments never became ready: {shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_registered_model_serves_both_protocols_and_traffic_moves_without_a_restart() {
    let sandbox = Sandbox::new();
    let pipeline = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/pipelines/churn-classification.yml");
    sandbox
        .lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"])
        .ok();
    // The protocols in feature space: the pipeline's weights without its preprocessing (the
    // demo's own test serves raw rows).
    register_feature_model(&sandbox);
    let endpoint = sandbox.file("endpoint.yml", b"$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\nname: churn\nauth_mode: key\n");
    let deployment = |name: &str| {
        format!(
            "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json\nname: {name}\nendpoint_name: churn\nmodel: azureml:churn-features@latest\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n"
        )
    };
    let blue = sandbox.file("blue.yml", deployment("blue").as_bytes());
    let green = sandbox.file("green.yml", deployment("green").as_bytes());
    let created = sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    assert!(
        created
            .stdout
            .starts_with("created endpoint churn at http://127.0.0.1:")
    );
    // The alias resolves at creation; an unknown model is refused by name, and nothing changes.
    let unknown = sandbox.file(
        "bad.yml",
        b"name: red\nendpoint_name: churn\nmodel: azureml:no-such-model:1\n",
    );
    sandbox
        .lathe(&[
            "online-deployment",
            "create",
            "-f",
            unknown.to_str().unwrap(),
        ])
        .fails_with("azureml:no-such-model:1");
    let made = sandbox
        .lathe(&[
            "online-deployment",
            "create",
            "-f",
            blue.to_str().unwrap(),
            "--all-traffic",
        ])
        .ok();
    assert!(
        made.stderr
            .contains("instance_type has no meaning on this machine"),
        "{}",
        made.stderr
    );
    let _server = Server::start(&sandbox.workspace(), &[]);
    let shown = wait_ready(&sandbox, 1);
    let scoring = shown["scoring_uri"].as_str().unwrap().to_owned();
    let base = scoring.trim_end_matches("/score").to_owned();
    let key = sandbox
        .lathe(&["online-endpoint", "get-credentials", "churn", "--json"])
        .ok()
        .json()["primaryKey"]
        .as_str()
        .unwrap()
        .to_owned();

    // Rows of the model's (scaled, one-hot) features, from a fixed pseudo-random walk.
    let (features, classes, w, b) = logistic_weights(&sandbox);
    let mut state: u64 = 7;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
    };
    let rows: Vec<Vec<f64>> = (0..40)
        .map(|_| features.iter().map(|_| next()).collect())
        .collect();
    let truth: Vec<(String, f64)> = rows.iter().map(|r| expected(&classes, &w, &b, r)).collect();
    let labels: Vec<Value> = truth
        .iter()
        .map(|(c, _)| match c.as_str() {
            "true" => json!(true),
            "false" => json!(false),
            other => other.parse::<i64>().map_or(json!(other), |n| json!(n)),
        })
        .collect();

    // MLflow's scoring protocol, every body shape, on /invocations and Azure's /score.
    let split = json!({ "dataframe_split": { "columns": features, "data": rows } }).to_string();
    let records: Vec<Value> = rows
        .iter()
        .map(|r| {
            Value::Object(
                features
                    .iter()
                    .cloned()
                    .zip(r.iter().map(|x| json!(x)))
                    .collect(),
            )
        })
        .collect();
    let csv = std::iter::once(features.join(","))
        .chain(rows.iter().map(|r| {
            r.iter()
                .map(|x| format!("{x:?}"))
                .collect::<Vec<_>>()
                .join(",")
        }))
        .collect::<Vec<_>>()
        .join("\n");
    for (path, content_type, body) in [
        ("/invocations", "application/json", split.clone()),
        (
            "/score",
            "application/json",
            json!({ "dataframe_records": records }).to_string(),
        ),
        (
            "/invocations",
            "application/json",
            json!({ "instances": records }).to_string(),
        ),
        (
            "/invocations",
            "application/json",
            json!({ "inputs": rows }).to_string(),
        ),
        ("/invocations", "text/csv", csv),
    ] {
        let (status, by, answer) = post(&format!("{base}{path}"), &key, content_type, &body, None);
        assert_eq!(status, 200, "{path} {content_type}: {answer}");
        assert_eq!(by, "blue");
        assert_eq!(
            answer["predictions"],
            Value::Array(labels.clone()),
            "{path} {content_type}"
        );
    }

    // Class probabilities on request, equal to the softmax of the model's own weights.
    let asked = json!({ "dataframe_split": { "columns": features, "data": rows }, "params": { "probabilities": true } });
    let (status, _, answer) = post(
        &format!("{base}/invocations"),
        &key,
        "application/json",
        &asked.to_string(),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    for (row, (_, positive)) in answer["predictions"].as_array().unwrap().iter().zip(&truth) {
        let p = row["probabilities"].as_object().unwrap();
        let total: f64 = p.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-12, "{row}");
        assert!(
            (p[&classes[1]].as_f64().unwrap() - positive).abs() < 1e-12,
            "{row}"
        );
    }

    // The official Triton client: binary tensors (its default), JSON, and one [N, F] tensor.
    let rows_file = sandbox.file(
        "rows.json",
        json!({ "columns": features, "data": rows })
            .to_string()
            .as_bytes(),
    );
    let out = std::process::Command::new(peer_python())
        .arg(peer_script("triton_client.py"))
        .args([
            base.trim_start_matches("http://"),
            "churn",
            &key,
            rows_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let triton: Value = serde_json::from_slice(&out.stdout).unwrap();
    let as_text: Vec<Value> = truth.iter().map(|(c, _)| json!(c)).collect();
    for way in ["binary", "json", "matrix"] {
        assert_eq!(
            triton[way],
            Value::Array(as_text.clone()),
            "tritonclient {way}"
        );
    }
    for (got, (_, p)) in triton["probability"].as_array().unwrap().iter().zip(&truth) {
        assert!(
            (got.as_f64().unwrap() - p).abs() < 1e-12,
            "probability {got} vs {p}"
        );
    }
    let inputs = triton["metadata"]["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), features.len());
    assert_eq!(inputs[0]["name"], json!(features[0]));

    // Bad requests: named, in each protocol's shape; the endpoint stays up.
    let url = format!("{base}/invocations");
    let (status, _, answer) = post(&url, "wrong-key", "application/json", &split, None);
    assert_eq!(
        (
            status,
            answer["error"].as_str().unwrap().contains("needs its key")
        ),
        (401, true)
    );
    let missing = json!({ "inputs": { "age": [1.0] } }).to_string();
    let (status, _, answer) = post(&url, &key, "application/json", &missing, None);
    assert_eq!(status, 400);
    assert_eq!(answer["error_code"], "BAD_REQUEST");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("is missing: the model takes"),
        "{answer}"
    );
    let mut extra = records[0].clone();
    extra["surprise"] = json!(1);
    let (status, _, answer) = post(
        &url,
        &key,
        "application/json",
        &json!({ "dataframe_records": [extra] }).to_string(),
        None,
    );
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("column 'surprise' is not an input"),
        "{answer}"
    );
    let (status, _, _) = post(&url, &key, "application/json", "{not json", None);
    assert_eq!(status, 400);
    let short = json!({ "inputs": [{ "name": "features", "shape": [2, features.len()], "datatype": "FP64", "data": [1.0, 2.0] }] });
    let (status, _, answer) = post(
        &format!("{base}/v2/models/churn/infer"),
        &key,
        "application/json",
        &short.to_string(),
        None,
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("2 values for a shape of"),
        "{answer}"
    );
    let (status, _, _) = post(
        &format!("{base}/v2/models/churn/versions/9/infer"),
        &key,
        "application/json",
        &short.to_string(),
        None,
    );
    assert_eq!(status, 404);
    let (status, _, _) = post(&url, &key, "application/json", &split, None);
    assert_eq!(status, 200, "the endpoint answers after the bad requests");

    // A second deployment while the server runs: no traffic until the split gives it some.
    sandbox
        .lathe(&["online-deployment", "create", "-f", green.to_str().unwrap()])
        .ok();
    wait_ready(&sandbox, 2);
    let (_, by, _) = post(&url, &key, "application/json", &split, Some("green"));
    assert_eq!(by, "green", "the header picks the deployment");
    sandbox
        .lathe(&[
            "online-endpoint",
            "update",
            "churn",
            "--traffic",
            "blue=80 green=30",
        ])
        .fails_with("sums to 110");
    sandbox
        .lathe(&[
            "online-endpoint",
            "update",
            "churn",
            "--traffic",
            "blue=80 gren=20",
        ])
        .fails_with("'gren' is not a deployment of churn");
    sandbox
        .lathe(&[
            "online-endpoint",
            "update",
            "churn",
            "--traffic",
            "blue=80 green=20",
        ])
        .ok();
    // Picked up within seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    while post(&url, &key, "application/json", &split, None).1 != "green" {
        assert!(Instant::now() < deadline, "the new split was never served");
    }
    let one_row =
        json!({ "dataframe_split": { "columns": features, "data": [rows[0]] } }).to_string();
    let green_count = (0..1000)
        .filter(|_| {
            let (status, by, _) = post(&url, &key, "application/json", &one_row, None);
            assert_eq!(status, 200);
            by == "green"
        })
        .count();
    // 20% of 1,000: a standard deviation of 12.6; 4.7 of them either way.
    assert!(
        (140..=260).contains(&green_count),
        "green answered {green_count} of 1000"
    );

    // The split changes back and forth under steady load from four clients: no request fails.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (answered, failed) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let (mut ok, mut bad) = (0, Vec::new());
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (status, _, answer) =
                            post(&url, &key, "application/json", &one_row, None);
                        if status == 200 {
                            ok += 1;
                        } else {
                            bad.push(format!("{status}: {answer}"));
                        }
                    }
                    (ok, bad)
                })
            })
            .collect();
        for split in [
            "blue=50 green=50",
            "blue=0 green=100",
            "blue=100",
            "blue=80 green=20",
        ] {
            sandbox
                .lathe(&["online-endpoint", "update", "churn", "--traffic", split])
                .ok();
            std::thread::sleep(Duration::from_millis(1500));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        clients.into_iter().map(|c| c.join().unwrap()).fold(
            (0, Vec::new()),
            |(n, mut all), (ok, bad)| {
                all.extend(bad);
                (n + ok, all)
            },
        )
    });
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(answered > 100, "only {answered} requests were answered");

    // Health, written every ten seconds: every deployment's requests and errors are counted
    // (the bad requests above were blue's), with latency quantiles.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = show(&sandbox)["health_last_5_min"].clone();
        let count = |d: &str, what: &str| health[d][what].as_i64().unwrap_or(0);
        let total = count("blue", "requests") + count("green", "requests");
        if total >= 1000 + answered as i64 && count("blue", "errors") >= 4 {
            assert!(count("green", "requests") >= 140, "{health}");
            let p99 = health["blue"]["p99_ms"].as_f64().unwrap();
            assert!(
                p99 > 0.0 && p99 >= health["blue"]["p50_ms"].as_f64().unwrap(),
                "{health}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "health never counted the requests: {health}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Mirror traffic: blue answers everything; a copy of a fifth of the requests is scored by
    // green in the background, counted in its health, and never returned.
    let green_before = show(&sandbox)["health_last_5_min"]["green"]["requests"]
        .as_i64()
        .unwrap();
    sandbox
        .lathe(&[
            "online-endpoint",
            "update",
            "churn",
            "--traffic",
            "blue=100",
            "--mirror-traffic",
            "green=20",
        ])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while show(&sandbox)["mirror_traffic"]["green"] != json!(20) {
        assert!(Instant::now() < deadline);
    }
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..500 {
        let (status, by, _) = post(&url, &key, "application/json", &one_row, None);
        assert_eq!((status, by.as_str()), (200, "blue"));
    }
    // One full health window after the last request.
    std::thread::sleep(Duration::from_millis(11_500));
    let mirrored = show(&sandbox)["health_last_5_min"]["green"]["requests"]
        .as_i64()
        .unwrap()
        - green_before;
    // 20% of 500: a standard deviation of 8.9; 5 of them either way.
    assert!(
        (55..=145).contains(&mirrored),
        "green scored {mirrored} mirrored requests"
    );
}

#[test]
fn endpoint_yaml_is_checked_and_a_port_in_use_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.lathe(&["data", "list"]).ok();
    let typo = sandbox.file("typo.yml", b"name: churn\nauth_mod: key\n");
    sandbox
        .lathe(&["online-endpoint", "create", "-f", typo.to_str().unwrap()])
        .fails_with("unknown field `auth_mod`");
    let token = sandbox.file("token.yml", b"name: churn\nauth_mode: aad_token\n");
    sandbox
        .lathe(&["online-endpoint", "create", "-f", token.to_str().unwrap()])
        .fails_with("Lathe serves keys");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let ok = sandbox.file("ok.yml", b"name: churn\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            ok.to_str().unwrap(),
            "--port",
            &port,
        ])
        .fails_with(&format!("port {port} on 127.0.0.1 is not free"));
    let listed = sandbox
        .lathe(&["online-endpoint", "list", "--json"])
        .ok()
        .json();
    assert_eq!(listed, json!([]), "nothing was created");
    sandbox
        .lathe(&["online-endpoint", "show", "chrn"])
        .fails_with("no endpoint named 'chrn'");
}

#[test]
fn another_process_takes_the_endpoints_over_when_their_server_dies() {
    let sandbox = Sandbox::new();
    let endpoint = sandbox.file("endpoint.yml", b"name: quiet\n");
    let created = sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    let ping = created["scoring_uri"]
        .as_str()
        .unwrap()
        .replace("/score", "/ping");
    let answers = || {
        http()
            .get(&ping)
            .call()
            .is_ok_and(|r| r.status().as_u16() == 200)
    };
    let wait = |what: &str, up: bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while answers() != up {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut first = Server::start(&sandbox.workspace(), &[]);
    wait("the first server never served the endpoint", true);
    // A second server on the workspace leaves the endpoint to the first...
    let _second = Server::start(&sandbox.workspace(), &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(answers());
    // ...and serves it once the first is gone and its lease has run out.
    first.kill();
    wait("the second server never took the endpoint over", true);
}

#[test]
fn the_endpoints_section_shows_an_endpoint_and_sends_it_a_test_request() {
    use egui_kittest::kittest::Queryable;
    let sandbox = Sandbox::new();
    let pipeline = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/pipelines/churn-classification.yml");
    sandbox
        .lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"])
        .ok();
    let endpoint = sandbox.file("endpoint.yml", b"name: churn\nauth_mode: key\n");
    let blue = sandbox.file(
        "blue.yml",
        b"name: blue\nendpoint_name: churn\nmodel: azureml:churn-pipeline-classifier:1\n",
    );
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    sandbox
        .lathe(&[
            "online-deployment",
            "create",
            "-f",
            blue.to_str().unwrap(),
            "--all-traffic",
        ])
        .ok();
    let green = sandbox.file(
        "green.yml",
        b"name: green\nendpoint_name: churn\nmodel: azureml:churn-pipeline-classifier:1\n",
    );
    sandbox
        .lathe(&["online-deployment", "create", "-f", green.to_str().unwrap()])
        .ok();
    let _server = Server::start(&sandbox.workspace(), &[]);
    wait_ready(&sandbox, 2);
    // One request blue collected (its rows and what blue answered), for Replay.
    let store = lathe_core::Store::open(sandbox.workspace()).unwrap();
    let (features, ..) = logistic_weights(&sandbox);
    let row: Vec<f64> = (0..features.len())
        .map(|j| (j as f64 * 0.4).cos())
        .collect();
    let body = json!({ "dataframe_split": { "columns": features, "data": [row] } });
    let found = lathe_core::endpoints::endpoint(&store, "churn").unwrap();
    let answer = lathe_core::endpoints::invoke(
        &found,
        body.to_string().as_bytes(),
        "application/json",
        Some("blue"),
    )
    .unwrap();
    let predicted: Value = serde_json::from_str(&answer.body).unwrap();
    let mut inputs = lathe_core::serving::Frame::default();
    for (name, x) in features.iter().zip(&row) {
        inputs.push(name.clone(), vec![json!(x)]).unwrap();
    }
    let sample = lathe_core::collection::Sample {
        request_id: "r-1".into(),
        at_ms: lathe_core::db::now_millis(),
        latency_ms: 0.5,
        inputs,
        outputs: vec![predicted["predictions"][0].clone()],
    };
    let spec = lathe_core::collection::CollectorSpec {
        sampling_rate: 1.0,
        window_ms: 3_600_000,
        inputs: true,
        outputs: true,
    };
    lathe_core::collection::flush(&store, "churn", "blue", &spec, &[sample]).unwrap();
    let mut h = egui_kittest::Harness::builder()
        .with_size([1280.0, 1800.0])
        .build_ui_state(
            |ui, wb: &mut lathe_ui::Workbench| wb.ui(ui),
            sandbox.workbench(),
        );
    let wait = Duration::from_secs(30);
    h.get_by_label("Endpoints").click();
    lathe_tests::run_until(&mut h, wait, "the endpoint, ready", |h| {
        h.query_by_label_contains("churn  ·  2/2 ready").is_some()
    });
    assert_eq!(
        h.query_all_by_label("churn-pipeline-classifier:1").count(),
        2,
        "each deployment shows its model"
    );
    h.get_by_label("Send").click();
    lathe_tests::run_until(&mut h, wait, "the answer", |h| {
        h.query_by_label("HTTP 200").is_some() && h.query_by_label("answered by blue").is_some()
    });
    assert!(h.query_by_label_contains("\"predictions\"").is_some());

    // The sliders move the split; Apply sets both shares at once.
    let sliders: Vec<_> = h.get_all_by_role(egui::accesskit::Role::Slider).collect();
    assert_eq!(sliders.len(), 2, "one slider per deployment");
    sliders[0].set_value_accesskit(70.0);
    h.run();
    let sliders: Vec<_> = h.get_all_by_role(egui::accesskit::Role::Slider).collect();
    sliders[1].set_value_accesskit(30.0);
    h.run();
    h.get_by_label("Apply traffic").click();
    lathe_tests::run_until(&mut h, wait, "the split applied", |h| {
        h.query_by_label("Traffic of churn applied").is_some()
    });
    let traffic = lathe_core::endpoints::endpoint(&store, "churn")
        .unwrap()
        .spec
        .traffic;
    assert_eq!(
        traffic,
        std::collections::BTreeMap::from([("blue".to_owned(), 70), ("green".to_owned(), 30)])
    );

    // The collected request is listed, and replays to green answering the same.
    assert_eq!(
        h.query_all_by_label("window open").count(),
        2,
        "the collected window, inputs and outputs"
    );
    h.get_by_label("to").click();
    h.run();
    h.get_all_by_label("green").last().unwrap().click();
    h.run();
    h.get_by_label("Replay").click();
    lathe_tests::run_until(&mut h, wait, "the replay report", |h| {
        h.query_by_label_contains("100.0% identical: 1 of 1 rows")
            .is_some()
    });

    // How much collected data is kept: set in the window, read and changed by the CLI.
    for (label, text) in [("Keep windows", "30"), ("days, at most", "64")] {
        let role = egui::accesskit::Role::TextInput;
        h.get_by_role_and_label(role, label).focus();
        h.run();
        h.get_by_role_and_label(role, label).type_text(text);
        h.run();
    }
    h.get_by_label("Apply limits").click();
    lathe_tests::run_until(&mut h, wait, "the limits set", |h| {
        h.query_by_label("Collected data: kept 30 day(s), at most 64.0 MiB")
            .is_some()
    });
    let shown = show(&sandbox);
    assert_eq!(
        shown["collection_limits"],
        json!({ "retention_days": 30, "max_bytes": 64 << 20 })
    );
    sandbox
        .lathe(&[
            "online-endpoint",
            "update",
            "churn",
            "--collection-retention-days",
            "0",
        ])
        .fails_with("at least 1 day");
    sandbox
        .lathe(&[
            "online-endpoint",
            "update",
            "churn",
            "--collection-max-mib",
            "lots",
        ])
        .fails_with("--collection-max-mib: 'lots' is not a whole number or 'none'");
    let text = sandbox
        .lathe(&[
            "online-endpoint",
            "update",
            "churn",
            "--collection-retention-days",
            "none",
        ])
        .ok();
    assert!(
        text.stdout.contains("collected data: at most 64.0 MiB"),
        "{}",
        text.stdout
    );
    assert_eq!(
        show(&sandbox)["traffic"],
        json!({ "blue": 70, "green": 30 }),
        "limits alone leave the split as it was"
    );
}

#[test]
fn onnx_models_serve_in_process_and_agree_with_onnxruntime() {
    let sandbox = Sandbox::new();
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/onnx/sklearn-onnx/docs/examples");
    // An operator neither tract nor Lathe implements: ONNX's StringNormalizer.
    let strnorm = "../../../onnx/onnx/backend/test/data/simple/\
                   test_strnorm_model_nostopwords_nochangecase/model.onnx";
    for (file, name) in [
        ("example1.onnx", "example1"),
        ("logreg_iris.onnx", "iris"),
        (strnorm, "strnorm"),
    ] {
        let path = corpus.join(file);
        sandbox
            .lathe(&["models", "register", path.to_str().unwrap(), "--name", name])
            .ok();
    }
    let endpoint = sandbox.file("endpoint.yml", b"name: tensors\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    for (deployment, model, all) in [
        ("example", "example1", true),
        ("iris", "iris", false),
        ("strnorm", "strnorm", false),
    ] {
        let yaml =
            format!("name: {deployment}\nendpoint_name: tensors\nmodel: azureml:{model}:1\n");
        let file = sandbox.file(&format!("{deployment}.yml"), yaml.as_bytes());
        let mut args = vec!["online-deployment", "create", "-f", file.to_str().unwrap()];
        if all {
            args.push("--all-traffic");
        }
        sandbox.lathe(&args).ok();
    }
    let _server = Server::start(&sandbox.workspace(), &[]);
    // The model with an operator Lathe cannot run fails, naming it; the others serve.
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let shown = sandbox
            .lathe(&["online-endpoint", "show", "tensors", "--json"])
            .ok()
            .json();
        let states: Vec<&str> = shown["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["provisioning_state"].as_str().unwrap())
            .collect();
        if !states.contains(&"creating") {
            break shown;
        }
        assert!(Instant::now() < deadline, "{shown}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let by_name = |name: &str| {
        shown["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("example")["provisioning_state"], "ready");
    // Its ZipMap output is taken off (scikit-learn_onnx_models_agree_with_onnxruntime).
    assert_eq!(by_name("iris")["provisioning_state"], "ready");
    assert_eq!(by_name("strnorm")["provisioning_state"], "failed");
    assert!(
        by_name("strnorm")["message"]
            .as_str()
            .unwrap()
            .contains("Unimplemented(StringNormalizer)"),
        "{}",
        by_name("strnorm")["message"]
    );
    // Each deployment's log says what happened to it.
    let logs = |name: &str| {
        sandbox
            .lathe(&[
                "online-deployment",
                "logs",
                "--name",
                name,
                "--endpoint-name",
                "tensors",
            ])
            .ok()
            .stdout
    };
    assert!(
        logs("example").contains("ready: model example1:1 loaded in"),
        "{}",
        logs("example")
    );
    assert!(
        logs("strnorm").contains("failed to load model strnorm:1: "),
        "{}",
        logs("strnorm")
    );

    // The model adds a 2 × 2 constant: it takes two rows.
    let x: Vec<Vec<f64>> = (0..2)
        .map(|i| vec![i as f64 * 0.5 - 1.0, 2.0 - i as f64 * 0.25])
        .collect();
    let oracle = onnxruntime(
        &sandbox,
        "x.json",
        &corpus.join("example1.onnx"),
        &json!({ "X": x }),
    );
    let flat = |v: &Value| -> Vec<f64> {
        let mut out = Vec::new();
        fn walk(v: &Value, out: &mut Vec<f64>) {
            match v {
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                other => out.push(other.as_f64().unwrap()),
            }
        }
        walk(v, &mut out);
        out
    };
    let expected = flat(&oracle["Y"]);
    let base = shown["scoring_uri"]
        .as_str()
        .unwrap()
        .trim_end_matches("/score")
        .to_owned();
    let (status, _, mlflow) = post(
        &format!("{base}/invocations"),
        "",
        "application/json",
        &json!({ "inputs": { "X": x } }).to_string(),
        None,
    );
    assert_eq!(status, 200, "{mlflow}");
    let (status, _, oip) = post(
        &format!("{base}/v2/models/example1/infer"),
        "",
        "application/json",
        &json!({ "inputs": [{ "name": "X", "shape": [2, 2], "datatype": "FP32", "data": x }] })
            .to_string(),
        None,
    );
    assert_eq!(status, 200, "{oip}");
    assert_eq!(
        oip["outputs"][0]["shape"],
        json!(oracle_shape(&oracle["Y"]))
    );
    for got in [
        flat(&mlflow["predictions"]),
        flat(&oip["outputs"][0]["data"]),
    ] {
        assert_eq!(got.len(), expected.len());
        for (a, b) in got.iter().zip(&expected) {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "Lathe {a}, onnxruntime {b}"
            );
        }
    }
    // A tensor of the wrong shape is named.
    let (status, _, bad) = post(
        &format!("{base}/invocations"),
        "",
        "application/json",
        &json!({ "inputs": { "X": [[1.0, 2.0, 3.0]] } }).to_string(),
        None,
    );
    assert_eq!(status, 400);
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("input 'X': shape [1, 3]"),
        "{bad}"
    );
}

fn oracle_shape(v: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut probe = v;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        probe = &items[0];
    }
    shape
}

#[test]
fn an_endpoint_on_a_host_name_listens_there() {
    let sandbox = Sandbox::new();
    let endpoint = sandbox.file("endpoint.yml", b"name: named\n");
    let created = sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
            "--host",
            "localhost",
            "--json",
        ])
        .ok()
        .json();
    let ping = created["scoring_uri"]
        .as_str()
        .unwrap()
        .replace("/score", "/ping");
    assert!(ping.starts_with("http://localhost:"), "{ping}");
    let _server = Server::start(&sandbox.workspace(), &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http()
        .get(&ping)
        .call()
        .is_ok_and(|r| r.status().as_u16() == 200)
    {
        assert!(Instant::now() < deadline, "{ping} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scikit-learn model from the corpus served in process, and what onnxruntime gives for the
/// same rows: each output's values, a ZipMap output read as its classes' probabilities.
#[test]
fn scikit_learn_onnx_models_agree_with_onnxruntime() {
    let sandbox = Sandbox::new();
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/onnx/sklearn-onnx/docs/examples");
    // (file, deployment, input, features, the served output that onnxruntime's ZipMap gives)
    let models = [
        ("logreg_iris.onnx", "logreg", "X", 2, "probabilities"),
        ("rf_iris.onnx", "forest", "float_input", 4, "probabilities"),
        (
            "pipeline_lightgbm.onnx",
            "lightgbm",
            "input",
            2,
            "probability_tensor",
        ),
    ];
    // A StandardScaler alone (ONNX-ML's Scaler), its rows fixed at four.
    let scaler = corpus.join("../../tests/tests/SklearnStandardScalerFloat32.model.onnx");
    // ONNX-ML operators Lathe adds to tract: OneHotEncoder over text and over integers,
    // FeatureVectorizer, TreeEnsembleRegressor. (file, deployment, OIP inputs per request)
    let text = |v: &[&str]| json!(v);
    let titanic = |pclass: (&str, Value)| {
        json!([
            { "name": "pclass", "datatype": pclass.0, "shape": [5, 1], "data": pclass.1 },
            { "name": "sex", "datatype": "BYTES", "shape": [5, 1],
              "data": text(&["female", "male", "male", "female", "other"]) },
            { "name": "age", "datatype": "FP32", "shape": [5, 1], "data": [29.0, 2.0, 40.0, 2.0, 60.0] },
            { "name": "fare", "datatype": "FP32", "shape": [5, 1], "data": [211.3375, 8.05, 13.0, 21.075, 0.0] },
            { "name": "embarked", "datatype": "BYTES", "shape": [5, 1],
              "data": text(&["S", "Q", "C", "missing", "X"]) },
        ])
    };
    let added: Vec<(std::path::PathBuf, &str, Vec<Value>)> = vec![
        (
            corpus.join("pipeline_titanic.onnx"),
            "titanic",
            vec![titanic(("BYTES", text(&["1", "3", "2", "3", "9"])))],
        ),
        // Its output is untyped in the graph: served as the type tract works out.
        (
            corpus.join("pipeline_titanic_numerical.onnx"),
            "titanic-numbers",
            vec![titanic(("BYTES", text(&["1", "3", "2", "3", "9"])))],
        ),
        (
            corpus.join("pipeline_titanic_nozipmap.onnx"),
            "titanic-ints",
            vec![titanic(("INT64", json!([1, 3, 2, 3, 9])))],
        ),
        (
            corpus.join("../../tests/tests/SklearnOneHotEncoderInt64-SkipDim1.model.onnx"),
            "onehot",
            [[0, 1, 0], [4, 5, 6], [4, 1, 7], [7, 7, 7]]
                .iter()
                .map(|row| json!([{ "name": "input", "datatype": "INT64", "shape": [1, 3], "data": row }]))
                .collect(),
        ),
        (
            corpus.join("../../tests/tests/SklearnMRgRandomForestRegressor.model.onnx"),
            "forest-regressor",
            [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.3, 0.7]]
                .iter()
                .map(|row| json!([{ "name": "input", "datatype": "FP32", "shape": [1, 2], "data": row }]))
                .collect(),
        ),
    ];
    let endpoint = sandbox.file("endpoint.yml", b"name: sklearn\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    let files = models
        .iter()
        .map(|(file, name, ..)| (corpus.join(file), *name))
        .chain([(scaler.clone(), "scaler")])
        .chain(added.iter().map(|(path, name, _)| (path.clone(), *name)));
    for (path, name) in files {
        sandbox
            .lathe(&["models", "register", path.to_str().unwrap(), "--name", name])
            .ok();
        let yaml = format!("name: {name}\nendpoint_name: sklearn\nmodel: azureml:{name}:1\n");
        let file = sandbox.file(&format!("{name}.yml"), yaml.as_bytes());
        sandbox
            .lathe(&["online-deployment", "create", "-f", file.to_str().unwrap()])
            .ok();
    }
    let _server = Server::start(&sandbox.workspace(), &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let shown = sandbox
            .lathe(&["online-endpoint", "show", "sklearn", "--json"])
            .ok()
            .json();
        let states: Vec<&str> = shown["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["provisioning_state"].as_str().unwrap())
            .collect();
        if states.iter().all(|s| *s == "ready") {
            break shown;
        }
        assert!(
            Instant::now() < deadline && !states.contains(&"failed"),
            "{shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let base = shown["scoring_uri"]
        .as_str()
        .unwrap()
        .trim_end_matches("/score")
        .to_owned();
    let rows: Vec<Vec<f64>> = (0..4)
        .map(|i| (0..3).map(|j| f64::from(i * 3 + j) * 1.5 - 4.0).collect())
        .collect();
    let oracle = onnxruntime(&sandbox, "scaler.json", &scaler, &json!({ "input": rows }));
    let (status, _, scaled) = post(
        &format!("{base}/invocations"),
        "",
        "application/json",
        &json!({ "inputs": { "input": rows } }).to_string(),
        Some("scaler"),
    );
    assert_eq!(status, 200, "{scaled}");
    let flat = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
            .collect()
    };
    let expected = flat(&oracle["variable"]);
    let got = flat(&scaled["predictions"]);
    assert_eq!(got.len(), expected.len(), "{scaled}");
    for (a, b) in got.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-5, "scaler: Lathe {a}, onnxruntime {b}");
    }
    for (file, name, input, features, probabilities) in models {
        let rows: Vec<Vec<f64>> = (0..6)
            .map(|i| {
                (0..features)
                    .map(|j| ((i * features + j) as f64 * 0.77).sin() * 3.0 + 4.0)
                    .collect()
            })
            .collect();
        let oracle = onnxruntime(
            &sandbox,
            &format!("{name}.json"),
            &corpus.join(file),
            &json!({ input: rows }),
        );
        let (status, _, answer) = post(
            &format!("{base}/v2/models/sklearn/infer"),
            "",
            "application/json",
            &json!({ "inputs": [{
                "name": input, "shape": [rows.len(), features], "datatype": "FP32", "data": rows
            }] })
            .to_string(),
            Some(name),
        );
        assert_eq!(status, 200, "{name}: {answer}");
        let output = |wanted: &str| {
            answer["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == wanted)
                .unwrap_or_else(|| panic!("{name}: no output {wanted}: {answer}"))["data"]
                .clone()
        };
        assert_eq!(output("output_label"), oracle["output_label"], "{name}");
        let expected: Vec<f64> = oracle["output_probability"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| {
                row.as_object()
                    .unwrap()
                    .values()
                    .map(|p| p.as_f64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        let got: Vec<f64> = output(probabilities)
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), expected.len(), "{name}");
        for (a, b) in got.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{name}: Lathe {a}, onnxruntime {b}");
        }
    }
    // Every output of the added operators' models, against onnxruntime on the same tensors:
    // unknown categories (9, "other", "X", 7) give rows of zeros in both.
    for (path, name, requests) in &added {
        for request in requests {
            let given: serde_json::Map<String, Value> = request
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let rows: Vec<Value> = t["data"]
                        .as_array()
                        .unwrap()
                        .chunks(t["shape"][1].as_u64().unwrap() as usize)
                        .map(|r| Value::Array(r.to_vec()))
                        .collect();
                    (t["name"].as_str().unwrap().to_owned(), Value::Array(rows))
                })
                .collect();
            let oracle = onnxruntime(
                &sandbox,
                &format!("{name}.json"),
                path,
                &Value::Object(given),
            );
            let (status, _, answer) = post(
                &format!("{base}/v2/models/sklearn/infer"),
                "",
                "application/json",
                &json!({ "inputs": request }).to_string(),
                Some(name),
            );
            assert_eq!(status, 200, "{name}: {answer}");
            for output in answer["outputs"].as_array().unwrap() {
                let served = output["name"].as_str().unwrap();
                // A ZipMap output is served as the probability tensor it was made from.
                let (key, expected): (&str, Vec<f64>) = match oracle.get(served) {
                    Some(v) => (served, flatten(v)),
                    None => (
                        "output_probability",
                        oracle["output_probability"]
                            .as_array()
                            .unwrap_or_else(|| panic!("{name}: {served} vs {oracle}"))
                            .iter()
                            .flat_map(|row| {
                                row.as_object()
                                    .unwrap()
                                    .values()
                                    .map(|p| p.as_f64().unwrap())
                                    .collect::<Vec<_>>()
                            })
                            .collect(),
                    ),
                };
                let got = flatten(&output["data"]);
                assert_eq!(
                    got.len(),
                    expected.len(),
                    "{name} {served}: {answer} vs {oracle}"
                );
                for (a, b) in got.iter().zip(&expected) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{name} {served} ({key}): Lathe {got:?}, onnxruntime {expected:?}"
                    );
                }
            }
        }
    }
}

/// What onnxruntime (the peer) answers for `model` given `inputs` ({input name: nested
/// lists}), by `tests/peers/onnx_run.py`; the request is kept as `file` in the sandbox.
fn onnxruntime(sandbox: &Sandbox, file: &str, model: &std::path::Path, inputs: &Value) -> Value {
    let inputs = sandbox.file(file, inputs.to_string().as_bytes());
    let out = std::process::Command::new(peer_python())
        .arg(peer_script("onnx_run.py"))
        .arg(model)
        .arg(&inputs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every number in a nested JSON list, in order.
fn flatten(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flatten).collect(),
        other => vec![
            other
                .as_f64()
                .unwrap_or_else(|| panic!("not a number: {other}")),
        ],
    }
}

/// Data collection: every request of a deployment collecting at rate 1 is kept with its request
/// id, rows and predictions (as answered); one sampling half its requests keeps about half.
#[test]
fn collected_requests_are_kept_with_their_ids_and_answers() {
    let sandbox = Sandbox::new();
    let pipeline = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/pipelines/churn-classification.yml");
    sandbox
        .lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"])
        .ok();
    let endpoint = sandbox.file("endpoint.yml", b"name: churn\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    for (name, rate) in [("blue", "1.0"), ("green", "0.5")] {
        let yaml = format!(
            "name: {name}\nendpoint_name: churn\nmodel: azureml:churn-pipeline-classifier:1\n\
             data_collector:\n  sampling_rate: {rate}\n  collections:\n    model_inputs:\n      \
             enabled: 'true'\n    model_outputs:\n      enabled: 'true'\n"
        );
        let file = sandbox.file(&format!("{name}.yml"), yaml.as_bytes());
        sandbox
            .lathe(&["online-deployment", "create", "-f", file.to_str().unwrap()])
            .ok();
    }
    let _server = Server::start(&sandbox.workspace(), &[]);
    let shown = wait_ready(&sandbox, 2);
    let url = shown["scoring_uri"]
        .as_str()
        .unwrap()
        .replace("/score", "/invocations");
    let (features, ..) = logistic_weights(&sandbox);
    let mut answered = std::collections::BTreeMap::new();
    for (deployment, count) in [("blue", 40), ("green", 400)] {
        for i in 0..count {
            let row: Vec<f64> = (0..features.len())
                .map(|j| ((i * 7 + j) as f64 * 0.31).sin())
                .collect();
            let body = json!({ "dataframe_split": { "columns": features, "data": [row] } });
            let id = format!("{deployment}-{i}");
            let request = ureq::http::Request::builder()
                .method("POST")
                .uri(&url)
                .header("content-type", "application/json")
                .header("x-request-id", &id)
                .header("azureml-model-deployment", deployment)
                .body(body.to_string())
                .unwrap();
            let mut answer = http().run(request).unwrap();
            assert_eq!(answer.status(), 200);
            let text = answer.body_mut().read_to_string().unwrap();
            let predictions: Value = serde_json::from_str(&text).unwrap();
            answered.insert(id, predictions["predictions"][0].clone());
        }
    }
    // Flushed within about ten seconds.
    let deadline = Instant::now() + Duration::from_secs(40);
    let rows = |kind: &str, deployment: &str, shown: &Value| -> i64 {
        shown["collected"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["kind"] == kind && w["deployment"] == deployment)
            .map(|w| w["rows"].as_i64().unwrap())
            .sum()
    };
    let shown = loop {
        let shown = show(&sandbox);
        if rows("model_outputs", "blue", &shown) == 40 && rows("model_inputs", "green", &shown) > 0
        {
            break shown;
        }
        assert!(Instant::now() < deadline, "{}", shown["collected"]);
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(rows("model_inputs", "blue", &shown), 40);
    let green = rows("model_inputs", "green", &shown);
    // Binomial(400, 0.5): 200 ± 60 is past five standard deviations.
    assert!((140..=260).contains(&green), "green kept {green} of 400");
    assert_eq!(rows("model_outputs", "green", &shown), green);
    // Each kept output is the answer its request got, under its request id.
    let store = lathe_core::Store::open(sandbox.workspace()).unwrap();
    let parts: Vec<String> = store
        .read::<_, lathe_core::Error>(|c| {
            let mut stmt =
                c.prepare("SELECT blob_hash FROM collected_parts WHERE kind = 'model_outputs'")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .unwrap();
    let mut seen = 0;
    for hash in parts {
        let path = store.blobs().path(&hash);
        let df =
            lathe_core::table::read(&path, &path, lathe_core::table::TableFormat::Parquet).unwrap();
        let page = lathe_core::table::page(&df, 0, df.height());
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(ToString::to_string)
            .collect();
        let id_at = names.iter().position(|n| n == "request_id").unwrap();
        let prediction_at = names.iter().position(|n| n == "prediction").unwrap();
        for row in page {
            let id = row[id_at].clone().unwrap();
            let expected = &answered[&id];
            let got = row[prediction_at].clone().unwrap();
            assert_eq!(got, expected.to_string().trim_matches('"'), "{id}");
            seen += 1;
        }
    }
    assert_eq!(seen, 40 + green);

    // Replay blue's requests: to green (the same model) and to the model version, every row
    // answers the same; to a model whose weights are negated, rows flip class.
    for to in ["green", "churn-pipeline-classifier:1"] {
        let report = sandbox
            .lathe(&[
                "online-endpoint",
                "replay",
                "churn",
                "--from",
                "blue",
                "--to",
                to,
                "--json",
            ])
            .ok()
            .json();
        assert_eq!(report["requests"], 40, "{report}");
        assert_eq!(report["rows"], 40, "{report}");
        assert_eq!(report["identical"], 40, "{report}");
        assert_eq!(report["flips"], json!([]), "{report}");
        assert!(report["to_latency"]["p50_ms"].as_f64().unwrap() > 0.0);
    }
    let flipped = negated_model(&sandbox, &store);
    sandbox
        .lathe(&[
            "models",
            "register",
            flipped.to_str().unwrap(),
            "--name",
            "flipped",
        ])
        .ok();
    let report = sandbox
        .lathe(&[
            "online-endpoint",
            "replay",
            "churn",
            "--from",
            "blue",
            "--to",
            "flipped:1",
            "--json",
        ])
        .ok()
        .json();
    let flips: i64 = report["flips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[2].as_i64().unwrap())
        .sum();
    assert!(flips > 0, "{report}");
    assert_eq!(
        report["identical"].as_i64().unwrap() + flips,
        40,
        "{report}"
    );
    assert!(
        report["flips"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f[0] != f[1]),
        "{report}"
    );
    // The replay to green was not collected: green keeps what it had at the next flush.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(rows("model_inputs", "green", &show(&sandbox)), green);
    sandbox
        .lathe(&[
            "online-endpoint",
            "replay",
            "churn",
            "--from",
            "green",
            "--to",
            "nobody",
        ])
        .fails_with("endpoint churn has no deployment 'nobody'");
}

/// The registered classifier's files with its weights and intercepts negated: a model that
/// disagrees with it on most rows.
fn negated_model(sandbox: &Sandbox, store: &lathe_core::Store) -> std::path::PathBuf {
    let tracking = store.tracking();
    let version = tracking
        .read(|c| lathe_core::tracking::registry::get_version(c, "churn-pipeline-classifier", "1"))
        .unwrap();
    let dir = version.source.strip_prefix("mlflow-artifacts:/").unwrap();
    let out = sandbox.path("flipped");
    for (path, hash, _) in tracking.artifact_tree(dir).unwrap() {
        let target = out.join(&path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let bytes = std::fs::read(tracking.blobs().path(&hash)).unwrap();
        if path.ends_with("model.json") {
            let mut model: Value = serde_json::from_slice(&bytes).unwrap();
            let negate = |v: &mut Value| {
                if let Some(x) = v.as_f64() {
                    *v = json!(-x);
                }
            };
            for row in model["body"]["weights"].as_array_mut().unwrap() {
                row.as_array_mut().unwrap().iter_mut().for_each(negate);
            }
            model["body"]["intercepts"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .for_each(negate);
            std::fs::write(&target, model.to_string()).unwrap();
        } else {
            std::fs::write(&target, bytes).unwrap();
        }
    }
    out
}

/// An ONNX file registered as it is packages with MLflow's onnx flavor and the graph's
/// signature, and the package serves from its folder, agreeing with onnxruntime.
#[test]
fn a_registered_onnx_file_packages_and_serves_from_its_folder() {
    let sandbox = Sandbox::new();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/corpora/onnx/sklearn-onnx/tests/tests/SklearnOneHotEncoderInt64-SkipDim1.model.onnx",
    );
    sandbox
        .lathe(&[
            "models",
            "register",
            model.to_str().unwrap(),
            "--name",
            "onehot",
        ])
        .ok();
    let out = sandbox.path("package");
    let made = sandbox
        .lathe(&[
            "models",
            "package",
            "onehot:1",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        made["flavors"],
        json!(["onnx", "python_function"]),
        "{made}"
    );
    let text = std::fs::read_to_string(out.join("model/MLmodel")).unwrap();
    let mlmodel = lathe_core::mlmodel::parse("MLmodel", &text).unwrap();
    assert!(mlmodel.flavors.contains(&"onnx".to_owned()), "{text}");
    assert!(text.contains("loader_module: mlflow.onnx"), "{text}");
    assert!(
        text.contains("\"name\": \"input\"") || text.contains("\"name\":\"input\""),
        "{text}"
    );
    let requirements = std::fs::read_to_string(out.join("model/requirements.txt")).unwrap();
    assert!(requirements.contains("onnxruntime"), "{requirements}");

    // 7 is in none of the encoder's categories.
    let row = json!([[4, 1, 7]]);
    let oracle = onnxruntime(&sandbox, "onehot.json", &model, &json!({ "input": row }));
    // Served from the package's folder, and from the bare file, each in a workspace of its own.
    for (n, (mut serving, base)) in [
        lathe_tests::serve_package(&out, &sandbox.path("elsewhere")),
        lathe_tests::serve_model(&lathe_tests::lathe_bin(), &model, &sandbox.path("bare")),
    ]
    .into_iter()
    .enumerate()
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = loop {
            let answer = http()
                .post(format!("{base}/invocations"))
                .header("content-type", "application/json")
                .send(json!({ "inputs": { "input": row } }).to_string());
            if let Ok(mut answer) = answer
                && answer.status() == 200
            {
                break serde_json::from_str::<Value>(&answer.body_mut().read_to_string().unwrap())
                    .unwrap();
            }
            assert!(Instant::now() < deadline, "way {n} never served");
            std::thread::sleep(Duration::from_millis(200));
        };
        serving.kill().ok();
        serving.wait().ok();
        assert_eq!(
            flatten(&answer["predictions"]),
            flatten(&oracle["variable"]),
            "way {n}: {answer}"
        );
    }
}

/// A tensor model's requests are collected too: each row of its tensors (the first axis) with
/// a column per value, and its outputs' rows — from MLflow's protocol and the Open Inference
/// Protocol alike.
#[test]
fn an_onnx_deployment_collects_its_tensor_rows_and_outputs() {
    let sandbox = Sandbox::new();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/onnx/sklearn-onnx/docs/examples/logreg_iris.onnx");
    sandbox
        .lathe(&[
            "models",
            "register",
            model.to_str().unwrap(),
            "--name",
            "iris",
        ])
        .ok();
    let endpoint = sandbox.file("endpoint.yml", b"name: churn\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    let deployment = sandbox.file(
        "blue.yml",
        b"name: blue\nendpoint_name: churn\nmodel: azureml:iris:1\ndata_collector:\n  \
          collections:\n    model_inputs:\n      enabled: 'True'\n    model_outputs:\n      \
          enabled: 'True'\n",
    );
    sandbox
        .lathe(&[
            "online-deployment",
            "create",
            "-f",
            deployment.to_str().unwrap(),
            "--all-traffic",
        ])
        .ok();
    let _server = Server::start(&sandbox.workspace(), &[]);
    let shown = wait_ready(&sandbox, 1);
    let base = shown["scoring_uri"]
        .as_str()
        .unwrap()
        .trim_end_matches("/score")
        .to_owned();
    let rows = [[5.1, 3.5], [6.2, 2.9], [7.7, 3.0]];
    let (status, _, mlflow) = post(
        &format!("{base}/invocations"),
        "",
        "application/json",
        &json!({ "inputs": { "X": rows } }).to_string(),
        None,
    );
    assert_eq!(status, 200, "{mlflow}");
    let (status, _, oip) = post(
        &format!("{base}/v2/models/churn/infer"),
        "",
        "application/json",
        &json!({ "inputs": [{ "name": "X", "datatype": "FP32", "shape": [2, 2], "data": [1.0, 2.0, 3.0, 4.0] }] })
            .to_string(),
        None,
    );
    assert_eq!(status, 200, "{oip}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let collected = loop {
        let shown = show(&sandbox);
        let kept: i64 = shown["collected"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["kind"] == "model_outputs")
            .map(|w| w["rows"].as_i64().unwrap())
            .sum();
        if kept == 5 {
            break shown;
        }
        assert!(Instant::now() < deadline, "{}", shown["collected"]);
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        collected["collected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["kind"] == "model_inputs" && w["rows"] == 5)
    );
    let store = lathe_core::Store::open(sandbox.workspace()).unwrap();
    let read = |kind: &str| -> Vec<polars::prelude::DataFrame> {
        let hashes: Vec<String> = store
            .read::<_, lathe_core::Error>(|c| {
                let mut stmt = c.prepare(
                    "SELECT blob_hash FROM collected_parts WHERE kind = ?1 ORDER BY first_ms, id",
                )?;
                let rows = stmt.query_map([kind], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
            })
            .unwrap();
        hashes
            .iter()
            .map(|h| {
                let path = store.blobs().path(h);
                lathe_core::table::read(&path, &path, lathe_core::table::TableFormat::Parquet)
                    .unwrap()
            })
            .collect()
    };
    let stacked = |parts: Vec<polars::prelude::DataFrame>| {
        parts
            .into_iter()
            .reduce(|a, b| a.vstack(&b).unwrap())
            .unwrap()
    };
    let inputs = stacked(read("model_inputs"));
    let outputs = stacked(read("model_outputs"));
    let column = |df: &polars::prelude::DataFrame, name: &str| -> Vec<f64> {
        df.column(name)
            .unwrap()
            .cast(&polars::prelude::DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    // The two requests' rows, each value of X a column, as sent.
    let mut first = column(&inputs, "X[0]");
    first.sort_by(f64::total_cmp);
    assert_eq!(first, [1.0, 3.0, 5.1, 6.2, 7.7]);
    // Each output row holds the label and the probabilities the caller got.
    let predictions: Vec<Value> = outputs
        .column("prediction")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|t| serde_json::from_str(t.unwrap()).unwrap())
        .collect();
    let labels: Vec<&Value> = predictions.iter().map(|p| &p["output_label"]).collect();
    let answered = mlflow["predictions"]["output_label"].as_array().unwrap();
    assert!(
        answered.iter().all(|l| labels.contains(&l)),
        "{predictions:?} vs {mlflow}"
    );
    assert!(
        predictions
            .iter()
            .all(|p| p["probabilities"].as_array().is_some_and(|p| p.len() == 3)),
        "{predictions:?}"
    );
}
