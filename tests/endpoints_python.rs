//! Online deployments served by Python workers: a scikit-learn model logged and registered into
//! Lathe by the official MLflow client, served as an MLflow pyfunc model (predictions equal
//! scikit-learn's own over `/invocations` and tritonclient), and an Azure scoring script
//! (`init()` once, `run()` per request) with a worker that dies, a request past its timeout, a
//! request past the concurrency bound and a script that raises. A model whose environment does
//! not build fails with pip's error while the other deployment keeps serving.
//!
//! The workers run in the peers' Python (`environment: {image: …}` is the system's Python, and
//! the server's `LATHE_PYTHON` is the peers' venv), so no test installs anything; the
//! environment that cannot build is refused by pip without reaching an index (`PIP_NO_INDEX`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use lathe_tests::{Sandbox, Server, http, log_sklearn_model, peer_python, peer_script};
use serde_json::{Value, json};

fn post(url: &str, content_type: &str, body: &str, deployment: Option<&str>) -> (u16, Value) {
    let mut request = ureq::http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", content_type);
    if let Some(d) = deployment {
        request = request.header("azureml-model-deployment", d);
    }
    let mut answer = http().run(request.body(body.to_owned()).unwrap()).unwrap();
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn show(sandbox: &Sandbox, endpoint: &str) -> Value {
    sandbox
        .lathe(&["online-endpoint", "show", endpoint, "--json"])
        .ok()
        .json()
}

/// Waits until no deployment of `endpoint` is `creating`, and returns each one's state and
/// message by name.
fn settled(sandbox: &Sandbox, endpoint: &str) -> (Value, Vec<(String, String, String)>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let shown = show(sandbox, endpoint);
        let states: Vec<(String, String, String)> = shown["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_owned(),
                    d["provisioning_state"].as_str().unwrap().to_owned(),
                    d["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        if !states.is_empty() && states.iter().all(|(_, s, _)| s != "creating") {
            return (shown, states);
        }
        assert!(Instant::now() < deadline, "never settled: {shown}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn logs(sandbox: &Sandbox, endpoint: &str, deployment: &str) -> String {
    sandbox
        .lathe(&[
            "online-deployment",
            "logs",
            "--name",
            deployment,
            "--endpoint-name",
            endpoint,
        ])
        .ok()
        .stdout
}

#[test]
fn an_mlflow_scikit_learn_model_serves_in_python_workers_with_scikit_learns_predictions() {
    let sandbox = Sandbox::new();
    let cache = sandbox.path("cache");
    let python = peer_python();
    let server = Server::start_with(
        &sandbox.workspace(),
        &[],
        &[
            ("LATHE_PYTHON", python.as_os_str()),
            ("LATHE_CACHE_DIR", cache.as_os_str()),
            ("PIP_NO_INDEX", OsStr::new("1")),
        ],
    );
    let oracle = log_sklearn_model(&server.url, "iris-classifier");
    let version = oracle["version"].as_str().unwrap();

    let endpoint = sandbox.file("endpoint.yml", b"name: iris\nauth_mode: key\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    // blue: the system's Python (an image alone), two workers; green: no environment, so the
    // model's own requirements.txt, which pip cannot install here.
    let blue = format!(
        "name: blue\nendpoint_name: iris\nmodel: azureml:iris-classifier:{version}\n\
         environment:\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n\
         instance_count: 2\nrequest_settings:\n  max_concurrent_requests_per_instance: 4\n"
    );
    let green =
        format!("name: green\nendpoint_name: iris\nmodel: azureml:iris-classifier:{version}\n");
    for (name, yaml, all) in [("blue", &blue, true), ("green", &green, false)] {
        let file = sandbox.file(&format!("{name}.yml"), yaml.as_bytes());
        let mut args = vec!["online-deployment", "create", "-f", file.to_str().unwrap()];
        if all {
            args.push("--all-traffic");
        }
        sandbox.lathe(&args).ok();
    }
    let (shown, states) = settled(&sandbox, "iris");
    let state = |name: &str| states.iter().find(|(n, _, _)| n == name).unwrap().clone();
    assert_eq!(state("blue").1, "ready", "{shown}");
    assert_eq!(state("green").1, "failed", "{shown}");
    assert!(
        state("green").2.contains("pip install")
            && state("green")
                .2
                .contains("No matching distribution found for mlflow=="),
        "pip's error names what it could not install: {}",
        state("green").2
    );
    let blue_log = logs(&sandbox, "iris", "blue");
    assert!(
        blue_log.contains("MLflow pyfunc, 2 Python worker(s)"),
        "{blue_log}"
    );
    let key = sandbox
        .lathe(&["online-endpoint", "get-credentials", "iris", "--json"])
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
    let authed = |path: &str, content_type: &str, body: &str| {
        let mut answer = http()
            .run(
                ureq::http::Request::builder()
                    .method("POST")
                    .uri(format!("{base}{path}"))
                    .header("content-type", content_type)
                    .header("authorization", format!("Bearer {key}"))
                    .body(body.to_owned())
                    .unwrap(),
            )
            .unwrap();
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
        )
    };
    let columns = oracle["columns"].clone();
    let data = oracle["data"].clone();
    let expected = json!({ "predictions": oracle["predict"] });
    let split = json!({ "dataframe_split": { "columns": columns, "data": data } });
    assert_eq!(
        authed("/invocations", "application/json", &split.to_string()),
        (200, expected.clone())
    );
    let records: Vec<Value> = data
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let fields = columns
                .as_array()
                .unwrap()
                .iter()
                .zip(row.as_array().unwrap())
                .map(|(c, v)| (c.as_str().unwrap().to_owned(), v.clone()));
            Value::Object(fields.collect())
        })
        .collect();
    assert_eq!(
        authed(
            "/invocations",
            "application/json",
            &json!({ "dataframe_records": records }).to_string()
        ),
        (200, expected.clone())
    );
    let mut csv = columns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(",");
    for row in data.as_array().unwrap() {
        let cells: Vec<String> = row
            .as_array()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        csv.push('\n');
        csv.push_str(&cells.join(","));
    }
    assert_eq!(authed("/invocations", "text/csv", &csv), (200, expected));
    // A missing column: MLflow's own 400 (its error code as its server gives it), and the
    // workers stay up.
    let (status, missing) = authed(
        "/invocations",
        "application/json",
        &json!({ "dataframe_split": { "columns": ["sepal_length"], "data": [[5.1]] } }).to_string(),
    );
    assert_eq!(status, 400, "{missing}");
    assert_eq!(
        missing["error_code"], "INVALID_PARAMETER_VALUE",
        "{missing}"
    );
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("petal_length"),
        "names the missing column: {missing}"
    );
    assert_eq!(
        authed("/invocations", "application/json", &split.to_string()).0,
        200
    );

    // The official Triton client, unchanged: one tensor per column, and one [N, 4] tensor.
    let rows_file = sandbox.file(
        "rows.json",
        json!({ "columns": columns, "data": data })
            .to_string()
            .as_bytes(),
    );
    let out = std::process::Command::new(&python)
        .arg(peer_script("triton_client.py"))
        .args([
            base.trim_start_matches("http://"),
            "iris-classifier",
            &key,
            rows_file.to_str().unwrap(),
            "predictions",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let triton: Value = serde_json::from_slice(&out.stdout).unwrap();
    for way in ["binary", "json", "matrix"] {
        assert_eq!(triton[way], oracle["predict"], "tritonclient {way}");
    }
}

const SCRIPT: &str = r#"
import json, os, time

def init():
    global scale
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "weights.json")
    scale = json.load(open(path))["scale"]
    print("init: scale", scale)

def run(raw_data):
    request = json.loads(raw_data)
    if "sleep" in request:
        time.sleep(request["sleep"])
    if "exit" in request:
        os._exit(3)
    if "raise" in request:
        raise ValueError(request["raise"])
    return [x * scale for x in request["data"]]
"#;

#[test]
fn a_scoring_script_runs_init_once_and_run_per_request_and_a_dead_worker_is_replaced() {
    let sandbox = Sandbox::new();
    let python = peer_python();
    let _server = Server::start_with(
        &sandbox.workspace(),
        &[],
        &[("LATHE_PYTHON", python.as_os_str())],
    );
    sandbox.file("deploy/model/weights.json", br#"{"scale": 3}"#);
    sandbox.file("deploy/onlinescoring/score.py", SCRIPT.as_bytes());
    let endpoint = sandbox.file("deploy/endpoint.yml", b"name: scaler\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    // As Azure's sample writes it (model-1): a model folder, a code folder, a scoring script.
    let deployment = sandbox.file(
        "deploy/blue.yml",
        b"name: blue\nendpoint_name: scaler\nmodel:\n  path: model/\n\
          code_configuration:\n  code: onlinescoring/\n  scoring_script: score.py\n\
          environment:\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n\
          instance_type: Standard_DS3_v2\ninstance_count: 1\n\
          request_settings:\n  request_timeout_ms: 1500\n",
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
    // The code is kept with the deployment: editing the folder afterwards changes nothing.
    sandbox.file(
        "deploy/onlinescoring/score.py",
        b"raise SystemExit('edited')\n",
    );
    let (shown, states) = settled(&sandbox, "scaler");
    assert_eq!(states[0].1, "ready", "{shown}");
    let score = shown["scoring_uri"].as_str().unwrap().to_owned();
    let base = score.trim_end_matches("/score").to_owned();
    assert_eq!(
        post(&score, "application/json", r#"{"data": [1, 2.5]}"#, None),
        (200, json!([3, 7.5]))
    );
    // MLflow's route is not the script's.
    assert_eq!(
        post(
            &format!("{base}/invocations"),
            "application/json",
            r#"{"data": [1]}"#,
            None
        )
        .0,
        404
    );
    // A script that raises: 500 with its error line, logged with the traceback.
    let (status, raised) = post(
        &score,
        "application/json",
        r#"{"raise": "no such row"}"#,
        None,
    );
    assert_eq!(status, 500, "{raised}");
    assert_eq!(raised["error"], "ValueError: no such row", "{raised}");
    // Past max_concurrent_requests_per_instance (Azure's default, 1): 429 at once.
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            post(
                &score,
                "application/json",
                r#"{"sleep": 0.8, "data": [1]}"#,
                None,
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        let (status, busy) = post(&score, "application/json", r#"{"data": [1]}"#, None);
        assert_eq!(status, 429, "{busy}");
        assert_eq!(slow.join().unwrap(), (200, json!([3])));
    });
    // A worker that dies while answering: its request gets 503 saying so, not a hang.
    let started = Instant::now();
    let (status, died) = post(
        &score,
        "application/json",
        r#"{"exit": true, "data": []}"#,
        None,
    );
    assert_eq!(status, 503, "{died}");
    assert!(
        died["error"].as_str().unwrap().contains("exit status: 3"),
        "{died}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // …and it is started again (init() runs again) and answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, answer) = post(&score, "application/json", r#"{"data": [2]}"#, None);
        if status == 200 {
            assert_eq!(answer, json!([6]));
            break;
        }
        assert!(Instant::now() < deadline, "{status} {answer}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Past request_timeout_ms: 408, the stuck worker is stopped, and a new one answers.
    let (status, late) = post(
        &score,
        "application/json",
        r#"{"sleep": 30, "data": [1]}"#,
        None,
    );
    assert_eq!(status, 408, "{late}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while post(&score, "application/json", r#"{"data": [1]}"#, None).0 != 200 {
        assert!(Instant::now() < deadline, "the worker never came back");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = logs(&sandbox, "scaler", "blue");
    for needle in [
        "scoring script, 1 Python worker(s)",
        "init: scale 3",
        "ValueError: no such row",
        "worker 0 stopped while answering (exit status: 3",
        "worker 0 started again",
        "gave no answer within the request timeout",
    ] {
        assert!(
            log.contains(needle),
            "the log should say '{needle}':\n{log}"
        );
    }
}

#[test]
fn a_packaged_native_model_serves_from_its_folder_and_loads_in_mlflow_pyfunc_alike() {
    let sandbox = Sandbox::new();
    let pipeline = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/pipelines/churn-classification.yml");
    sandbox
        .lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"])
        .ok();
    let out = sandbox.path("package");
    let made = sandbox
        .lathe(&[
            "models",
            "package",
            "churn-pipeline-classifier:1",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    let files: Vec<&str> = made["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for needed in [
        "Dockerfile",
        "bin/lathe",
        "model/MLmodel",
        "model/code/lathe_pyfunc.py",
        "model/conda.yaml",
        "model/python_env.yaml",
        "model/requirements.txt",
        "model/model.json",
    ] {
        assert!(files.contains(&needed), "{needed} in {files:?}");
    }
    // The Dockerfile, checked statically (no engine here): what it copies is in the package,
    // and it serves what it copied on the port it exposes.
    let dockerfile = std::fs::read_to_string(out.join("Dockerfile")).unwrap();
    let mut copied = Vec::new();
    for line in dockerfile.lines() {
        if let Some(rest) = line.strip_prefix("COPY ") {
            let (from, to) = rest.split_once(' ').unwrap();
            assert!(out.join(from).exists(), "COPY {from}: not in the package");
            copied.push(to.to_owned());
        }
    }
    let cmd = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .unwrap();
    let cmd: Vec<String> = serde_json::from_str(cmd).unwrap();
    assert_eq!(cmd[..3], ["lathe", "models", "serve"]);
    assert!(copied.contains(&cmd[3]), "serves what it copied: {cmd:?}");
    let exposed = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .unwrap();
    assert_eq!(
        cmd[cmd.iter().position(|a| a == "--port").unwrap() + 1],
        exposed
    );
    assert!(copied.contains(&"/usr/local/bin/lathe".to_owned()));
    // A folder that is not empty is refused, and left as it was.
    sandbox
        .lathe(&[
            "models",
            "package",
            "churn-pipeline-classifier:1",
            "--out",
            out.join("model").to_str().unwrap(),
        ])
        .fails_with("is not empty");

    // Served from the folder alone, by the packaged program, in a workspace of its own.
    let empty = sandbox.path("elsewhere");
    let (mut serving, base) = lathe_tests::serve_package(&out, &empty);
    // Raw customer rows, as a caller has them: the model prepares them itself (its fills,
    // categories and scales travel in the package). Row 1 lacks its age, row 2's region is one
    // the model never saw.
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo/customers.csv"),
    )
    .unwrap();
    let features = [
        "region",
        "plan",
        "age",
        "monthly_spend",
        "tenure_months",
        "support_tickets",
        "satisfaction",
    ];
    let data: Vec<Value> = text
        .lines()
        .skip(1)
        .take(25)
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').collect();
            let number = |c: &str| match c.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => c.parse::<f64>().map_or(Value::Null, |v| json!(v)),
            };
            json!([
                if i == 2 { "mars" } else { cells[2] },
                cells[3],
                if i == 1 {
                    Value::Null
                } else {
                    number(cells[4])
                },
                number(cells[5]),
                number(cells[6]),
                number(cells[7]),
                number(cells[8]),
            ])
        })
        .collect();
    let body = json!({ "dataframe_split": { "columns": features, "data": data } }).to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    // The listener comes up within the serving process's first tick.
    let served = loop {
        let answer = http()
            .post(format!("{base}/invocations"))
            .header("content-type", "application/json")
            .send(&body);
        if let Ok(mut answer) = answer
            && answer.status() == 200
        {
            let text = answer.body_mut().read_to_string().unwrap();
            break serde_json::from_str::<Value>(&text).unwrap();
        }
        assert!(Instant::now() < deadline, "the package never served");
        std::thread::sleep(Duration::from_millis(200));
    };
    serving.kill().ok();
    serving.wait().ok();
    assert!(
        !empty.join("lathe.db").exists() && std::fs::read_dir(&empty).unwrap().next().is_none(),
        "serving a folder leaves the folder it ran in alone"
    );

    // The official mlflow.pyfunc loads the package's model and predicts the same.
    let rows = sandbox.file(
        "rows.json",
        json!({ "columns": features, "data": data })
            .to_string()
            .as_bytes(),
    );
    let predicted = std::process::Command::new(peer_python())
        .arg(peer_script("pyfunc_predict.py"))
        .arg(out.join("model"))
        .arg(&rows)
        .output()
        .unwrap();
    assert!(
        predicted.status.success(),
        "{}",
        String::from_utf8_lossy(&predicted.stderr)
    );
    let text = String::from_utf8_lossy(&predicted.stdout);
    let by_mlflow: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(served["predictions"], by_mlflow);
    assert!(by_mlflow.as_array().unwrap().len() == 25, "{by_mlflow}");
}
