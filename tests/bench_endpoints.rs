//! The online-endpoint benchmark: one-row requests over 8 keep-alive connections for a few
//! seconds against a Lathe endpoint serving a native logistic regression (the demo pipeline's),
//! then the same load against `mlflow models serve` of a scikit-learn logistic regression on the
//! same features, side by side in one run; prints requests/s, p50 and p99 and the ratio. Then
//! the same scikit-learn model as an MLflow pyfunc model in Lathe's Python workers against
//! `mlflow models serve`, with as many workers each (`WORKERS`).
//!
//!     cargo bench -p lathe-tests --bench endpoints
//!
//! LATHE_BENCH_SECONDS sets each phase's length (default 5); LATHE_BENCH_PEER=0 leaves MLflow
//! out. It prints figures; it is a benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lathe_tests::{Sandbox, Server, http, peer_python, save_sklearn_logistic};
use serde_json::json;

const CONNECTIONS: usize = 8;
/// Python workers on each side of the pyfunc comparison (MLflow's default: one per core).
const WORKERS: u32 = 2;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends `body` to `url` from `CONNECTIONS` threads for `seconds`; returns requests/s and the
/// sorted latencies in milliseconds. Every answer must be 200.
fn load(url: &str, body: &str, seconds: u64) -> (f64, Vec<f64>) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                scope.spawn(|| {
                    let agent = http();
                    let mut mine = Vec::new();
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let mut answer = agent
                            .post(url)
                            .header("content-type", "application/json")
                            .send(body)
                            .unwrap();
                        let status = answer.status().as_u16();
                        let text = answer.body_mut().read_to_string().unwrap();
                        assert_eq!(status, 200, "{text}");
                        mine.push(sent.elapsed().as_secs_f64() * 1000.0);
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (latencies.len() as f64 / elapsed, latencies)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn report(what: &str, (rate, latencies): &(f64, Vec<f64>)) {
    println!(
        "{what:<44} {rate:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} requests)",
        quantile(latencies, 0.5),
        quantile(latencies, 0.99),
        latencies.len()
    );
}

/// `mlflow models serve` of a model folder, stopped (with its workers) when dropped.
struct MlflowServe {
    child: Child,
    url: String,
}

impl MlflowServe {
    fn start(python: &Path, model: &Path, workers: u32) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .args([
                "-m",
                "mlflow",
                "models",
                "serve",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
            ])
            .arg("-m")
            .arg(model)
            .arg("-p")
            .arg(port.to_string())
            .args(["-w", &workers.to_string()])
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            // It starts `uvicorn` by name: the venv's programs come first.
            .env("PATH", path_with(python))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if http()
                .get(format!("{}/ping", server.url))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("mlflow models serve did not come up at {}", server.url);
    }
}

/// Creates endpoint `endpoint` with the deployment `yaml` taking all its traffic, waits (up to
/// two minutes: a Python deployment builds and starts its workers) until it answers `body`, and
/// returns its `/invocations` URL.
fn deploy(sandbox: &Sandbox, endpoint: &str, yaml: &str, body: &str) -> String {
    let file = sandbox.file(
        &format!("{endpoint}.yml"),
        format!("name: {endpoint}\n").as_bytes(),
    );
    let shown = sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            file.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    let deployment = sandbox.file(&format!("{endpoint}-deployment.yml"), yaml.as_bytes());
    sandbox
        .lathe(&[
            "online-deployment",
            "create",
            "-f",
            deployment.to_str().unwrap(),
            "--all-traffic",
        ])
        .ok();
    let url = shown["scoring_uri"]
        .as_str()
        .unwrap()
        .replace("/score", "/invocations");
    let deadline = Instant::now() + Duration::from_secs(120);
    while http()
        .post(&url)
        .header("content-type", "application/json")
        .send(body)
        .map_or(true, |r| r.status() != 200)
    {
        assert!(Instant::now() < deadline, "{endpoint} never served");
        std::thread::sleep(Duration::from_millis(200));
    }
    url
}

/// PATH with the folder of `python` (a venv's `bin`) first.
fn path_with(python: &Path) -> String {
    let bin = python
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

impl Drop for MlflowServe {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn main() {
    let seconds = env_u64("LATHE_BENCH_SECONDS", 5);
    let sandbox = Sandbox::new();
    let pipeline =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/pipelines/churn-classification.yml");
    sandbox
        .lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"])
        .ok();
    let endpoint = sandbox.file("endpoint.yml", b"name: churn\n");
    let blue = sandbox.file(
        "blue.yml",
        b"name: blue\nendpoint_name: churn\nmodel: azureml:churn-pipeline-classifier:1\n",
    );
    let shown = sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    sandbox
        .lathe(&[
            "online-deployment",
            "create",
            "-f",
            blue.to_str().unwrap(),
            "--all-traffic",
        ])
        .ok();
    let python = peer_python();
    // The pyfunc deployment's workers run in the peers' Python (an `image` environment).
    let _server = Server::start_with(
        &sandbox.workspace(),
        &[],
        &[("LATHE_PYTHON", python.as_os_str())],
    );
    let url = shown["scoring_uri"]
        .as_str()
        .unwrap()
        .replace("/score", "/invocations");
    let features = [
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
    let row: Vec<f64> = (0..features.len())
        .map(|i| (i as f64 * 0.37).sin())
        .collect();
    let body = json!({ "dataframe_split": { "columns": features, "data": [row] } }).to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http()
        .post(&url)
        .header("content-type", "application/json")
        .send(&body)
        .map_or(true, |r| r.status() != 200)
    {
        assert!(Instant::now() < deadline, "the endpoint never served");
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("== one-row requests, {CONNECTIONS} connections, {seconds} s each");
    load(&url, &body, 1);
    let lathe = load(&url, &body, seconds);
    report("Lathe endpoint, native logistic regression", &lathe);
    // The same model with every request collected (inputs and outputs).
    let collect_url = deploy(
        &sandbox,
        "churn-collect",
        concat!(
            "name: collect\nendpoint_name: churn-collect\n",
            "model: azureml:churn-pipeline-classifier:1\ndata_collector:\n  collections:\n",
            "    model_inputs:\n      enabled: 'true'\n",
            "    model_outputs:\n      enabled: 'true'\n",
        ),
        &body,
    );
    load(&collect_url, &body, 1);
    let with_collection = load(&collect_url, &body, seconds);
    report(
        "Lathe endpoint, native, collecting everything",
        &with_collection,
    );
    println!(
        "data collection costs {:.1}% of the requests/s",
        (1.0 - with_collection.0 / lathe.0) * 100.0
    );
    if env_u64("LATHE_BENCH_PEER", 1) == 0 {
        return;
    }
    // The same features, a scikit-learn logistic regression saved by MLflow, served by MLflow.
    let model = sandbox.path("sklearn-model");
    save_sklearn_logistic(&features, &model);
    let peer = MlflowServe::start(&python, &model, WORKERS);
    let peer_url = format!("{}/invocations", peer.url);
    load(&peer_url, &body, 1);
    let mlflow = load(&peer_url, &body, seconds);
    report(
        &format!("mlflow models serve, scikit-learn ({WORKERS} workers)"),
        &mlflow,
    );
    println!(
        "Lathe native / MLflow: {:.1}× the requests/s, p99 {:.1}× lower",
        lathe.0 / mlflow.0,
        quantile(&mlflow.1, 0.99) / quantile(&lathe.1, 0.99)
    );
    // The same scikit-learn model as an MLflow pyfunc model in Lathe's Python workers.
    sandbox
        .lathe(&[
            "models",
            "register",
            model.to_str().unwrap(),
            "--name",
            "churn-sklearn",
        ])
        .ok();
    let deployment = format!(
        "name: pyfunc\nendpoint_name: churn-py\nmodel: azureml:churn-sklearn:1\n\
         environment:\n  image: system\ninstance_count: {WORKERS}\n\
         request_settings:\n  max_concurrent_requests_per_instance: {CONNECTIONS}\n"
    );
    let py_url = deploy(&sandbox, "churn-py", &deployment, &body);
    load(&py_url, &body, 1);
    let workers = load(&py_url, &body, seconds);
    report(
        &format!("Lathe endpoint, pyfunc ({WORKERS} Python workers)"),
        &workers,
    );
    println!(
        "Lathe pyfunc / MLflow: {:.1}× the requests/s, p99 {:.1}× lower",
        workers.0 / mlflow.0,
        quantile(&mlflow.1, 0.99) / quantile(&workers.1, 0.99)
    );
}
