//! The tracking benchmark: the same workload against `lathe server`, against `mlflow server`
//! (SQLite backend, its default workers) and, for the official client's own ceiling, against a
//! null server that answers `{}` at once — side by side in one run, with ratios.
//!
//! `cargo bench -p lathe-tests --bench tracking` (builds the release `lathe` if needed).
//! LATHE_BENCH_RUNS (10,000) and LATHE_BENCH_LARGE_RUNS (100,000) size the search; set
//! LATHE_BENCH_PEER=0 to leave MLflow out. It prints figures; it is a benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // tests start bare threads to load the server

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lathe_tests::{
    Server, call, http, metric_history, peer_python, peer_script, report_frames, run_until,
    wheel_scroll_frames,
};
use serde_json::{Value, json};

const CONNECTIONS: usize = 8;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let small = env_usize("LATHE_BENCH_RUNS", 10_000);
    let large = env_usize("LATHE_BENCH_LARGE_RUNS", 100_000);
    let with_peer = env_usize("LATHE_BENCH_PEER", 1) == 1;
    let python = peer_python();
    let dir = tempfile::tempdir().unwrap();
    const FAKE_RUN: &str = "0123456789abcdef0123456789abcdef";

    // Lathe first, with MLflow not yet started: its 15 idle processes would take CPU from it.
    let null = NullServer::start();
    let lathe = Server::start(&dir.path().join("lathe-ws"), &[]);
    std::thread::sleep(Duration::from_secs(1));
    let lathe_fresh_mb = rss_mb(lathe.child.id());
    println!("servers: lathe {}  null {}", lathe.url, null.url);

    println!(
        "\n== the official client (mlflow {}), best of 3 alternating runs",
        mlflow_version(&python)
    );
    let (mut null_pts, mut lathe_pts, mut null_ms, mut lathe_ms) =
        (0.0_f64, 0.0_f64, f64::MAX, f64::MAX);
    for _ in 0..3 {
        let n = client_load(&python, &null.url, Some(FAKE_RUN));
        let l = client_load(&python, &lathe.url, None);
        null_pts = null_pts.max(n["points_per_s"].as_f64().unwrap());
        lathe_pts = lathe_pts.max(l["points_per_s"].as_f64().unwrap());
        null_ms = null_ms.min(n["log_metric_ms_median"].as_f64().unwrap());
        lathe_ms = lathe_ms.min(l["log_metric_ms_median"].as_f64().unwrap());
    }
    println!("{:<30}{:>14}{:>14}", "", "null server", "lathe");
    println!(
        "{:<30}{null_pts:>14.0}{lathe_pts:>14.0}",
        "log_batch points/s"
    );
    println!(
        "{:<30}{null_ms:>14.2}{lathe_ms:>14.2}",
        "log_metric median ms"
    );
    println!(
        "lathe vs the client's ceiling: ingestion {:.1}% slower, log_metric {:.1}% slower (target: within 10%)",
        (null_pts / lathe_pts - 1.0) * 100.0,
        (lathe_ms / null_ms - 1.0) * 100.0
    );

    println!(
        "\n== native load client ({CONNECTIONS} connections, pre-built 1000-point log-batch bodies)"
    );
    let lathe_ingest = native_ingest(&lathe.url, 2000);
    let lathe_single = native_log_metric(&lathe.url, &new_run(&lathe.url), 2000);
    let null_single = native_log_metric(&null.url, FAKE_RUN, 2000);
    println!(
        "lathe:  {:>12.0} points/s ({} points stored)   log-metric median {:.3} ms \
         (null server {null_single:.3} ms)",
        lathe_ingest.0, lathe_ingest.1, lathe_single
    );

    println!("\n== search (filter \"{FILTER}\", order by {ORDER}, pages of 1000)");
    let lathe_small = populate(&lathe.url, "search-small", small);
    let (small_search, small_paging) = search_figures(&lathe.url, &lathe_small, 7);
    println!(
        "lathe  {small:>7} runs: search {small_search:>9.1} ms   paging all {small_paging:>9.1} ms"
    );
    let lathe_large = populate(&lathe.url, "search-large", large);
    let (s, p) = search_figures(&lathe.url, &lathe_large, 5);
    println!("lathe  {large:>7} runs: search {s:>9.1} ms   paging all {p:>9.1} ms");

    println!("\n== the GUI's runs table at {large} runs");
    runs_table_frames(&dir.path().join("lathe-ws"), &lathe_large, large);

    println!("\n== memory (resident), idle");
    std::thread::sleep(Duration::from_secs(2));
    let after_2s = rss_mb(lathe.child.id());
    // Blocking threads linger 10 s after their last request, holding their heaps.
    std::thread::sleep(Duration::from_secs(11));
    println!(
        "lathe:  {lathe_fresh_mb:.1} MB just started; after the workload {after_2s:.1} MB at 2 s, \
         {:.1} MB at 13 s (1 process)",
        rss_mb(lathe.child.id())
    );
    drop(lathe);
    if !with_peer {
        return;
    }

    // The same workload against MLflow, started now that Lathe is stopped.
    let mlflow = MlflowServer::start(&python, &dir.path().join("mlflow"));
    std::thread::sleep(Duration::from_secs(2));
    let (fresh_mb, processes) = tree_mb(mlflow.child.id());
    println!(
        "\n== mlflow server {} (SQLite backend, default workers)",
        mlflow.url
    );
    let m = client_load(&python, &mlflow.url, None);
    let (m_pts, m_ms) = (
        m["points_per_s"].as_f64().unwrap(),
        m["log_metric_ms_median"].as_f64().unwrap(),
    );
    println!(
        "official client: log_batch {m_pts:.0} points/s, log_metric median {m_ms:.1} ms \
              (lathe {:.0}× and {:.0}× faster)",
        lathe_pts / m_pts,
        m_ms / lathe_ms
    );
    let ingest = native_ingest(&mlflow.url, 40);
    let single = native_log_metric(&mlflow.url, &new_run(&mlflow.url), 200);
    println!(
        "native client: {:.0} points/s, log-metric median {single:.3} ms (lathe {:.0}× and {:.0}× faster)",
        ingest.0,
        lathe_ingest.0 / ingest.0,
        single / lathe_single
    );
    let peer_exp = populate(&mlflow.url, "search-small", small);
    let (ps, pp) = search_figures(&mlflow.url, &peer_exp, 3);
    println!(
        "{small} runs: search {ps:.1} ms, paging all {pp:.1} ms (lathe {:.0}× and {:.0}× faster)",
        ps / small_search,
        pp / small_paging
    );
    let (after_mb, _) = tree_mb(mlflow.child.id());
    println!(
        "memory: {fresh_mb:.1} MB just started, {after_mb:.1} MB after the workload ({processes} processes)"
    );
}

fn tree_mb(pid: u32) -> (f64, usize) {
    let tree = process_tree(pid);
    (tree.iter().map(|p| rss_mb(*p)).sum(), tree.len())
}

const FILTER: &str = "metrics.acc > 0.5 and params.model = 'tree'";
const ORDER: &str = "metrics.acc DESC";

fn mlflow_version(python: &Path) -> String {
    let out = Command::new(python)
        .args(["-c", "import mlflow; print(mlflow.__version__)"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn client_load(python: &Path, url: &str, run_id: Option<&str>) -> Value {
    let mut command = Command::new(python);
    command
        .arg(peer_script("mlflow_load.py"))
        .arg(url)
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .env("GIT_PYTHON_REFRESH", "quiet");
    if let Some(run_id) = run_id {
        command.arg(run_id);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "load client failed against {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap()
}

fn api(url: &str, endpoint: &str) -> String {
    format!("{url}/api/2.0/mlflow/{endpoint}")
}

fn create_run(url: &str, experiment_id: &str, body: Value) -> String {
    let mut request = body;
    request["experiment_id"] = json!(experiment_id);
    let (status, answer) = call(
        &http(),
        "POST",
        &api(url, "runs/create"),
        &request.to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    answer["run"]["info"]["run_id"].as_str().unwrap().to_owned()
}

fn create_experiment(url: &str, name: &str) -> String {
    let body = json!({ "name": format!("{name}-{}", std::process::id()) }).to_string();
    let (status, answer) = call(&http(), "POST", &api(url, "experiments/create"), &body);
    assert_eq!(status, 200, "{answer}");
    answer["experiment_id"].as_str().unwrap().to_owned()
}

/// Sends `batches` 1000-point log-batch requests over [`CONNECTIONS`] connections; returns
/// points per second and the points the server then reports stored.
fn native_ingest(url: &str, batches: usize) -> (f64, usize) {
    let experiment = create_experiment(url, "ingest");
    let run = create_run(url, &experiment, json!({}));
    let bodies: Vec<String> = (0..batches)
        .map(|b| {
            let metrics: Vec<Value> = (b * 1000..(b + 1) * 1000)
                .map(|s| json!({"key": "loss", "value": 1.0 / (s as f64 + 1.0), "timestamp": 1_700_000_000_000_i64 + s as i64, "step": s}))
                .collect();
            json!({"run_id": run, "metrics": metrics}).to_string()
        })
        .collect();
    let endpoint = api(url, "runs/log-batch");
    let start = Instant::now();
    std::thread::scope(|scope| {
        for chunk in bodies.chunks(batches.div_ceil(CONNECTIONS)) {
            let endpoint = &endpoint;
            scope.spawn(move || {
                let agent = http();
                for body in chunk {
                    let request = ureq::http::Request::builder()
                        .method("POST")
                        .uri(endpoint)
                        .header("Content-Type", "application/json")
                        .body(body.as_str())
                        .unwrap();
                    let mut response = agent.run(request).unwrap();
                    assert_eq!(response.status(), 200);
                    response.body_mut().read_to_string().unwrap();
                }
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let stored = metric_history(url, &run, "loss").len();
    ((batches * 1000) as f64 / elapsed, stored)
}

/// A run in a new experiment, to log into.
fn new_run(url: &str) -> String {
    let experiment = create_experiment(url, "single");
    create_run(url, &experiment, json!({}))
}

/// Median milliseconds of `count` sequential single log-metric calls on one connection.
fn native_log_metric(url: &str, run: &str, count: usize) -> f64 {
    let agent = http();
    let endpoint = api(url, "runs/log-metric");
    let mut times: Vec<f64> = (0..count)
        .map(|s| {
            let body = json!({"run_id": run, "key": "m", "value": s as f64, "timestamp": 1_700_000_000_000_i64, "step": s}).to_string();
            let start = Instant::now();
            let (status, _) = call(&agent, "POST", &endpoint, &body);
            assert_eq!(status, 200);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    median(&mut times)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Creates `count` runs with params, metrics and tags in a new experiment; returns its id.
fn populate(url: &str, name: &str, count: usize) -> String {
    let experiment = create_experiment(url, name);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..CONNECTIONS {
            let experiment = &experiment;
            scope.spawn(move || {
                let agent = http();
                for i in (worker..count).step_by(CONNECTIONS) {
                    let run = create_run(url, experiment, json!({ "run_name": format!("run-{i}") }));
                    let model = ["tree", "linear", "forest"][i % 3];
                    let acc = (i * 7919 % 1000) as f64 / 1000.0;
                    let body = json!({
                        "run_id": run,
                        "params": [{"key": "model", "value": model}, {"key": "lr", "value": format!("{}", 0.001 * (i % 10) as f64)}],
                        "metrics": [{"key": "acc", "value": acc, "timestamp": 0, "step": 0},
                                    {"key": "loss", "value": 1.0 - acc, "timestamp": 0, "step": 0}],
                        "tags": [{"key": "team", "value": if i % 2 == 0 { "vision" } else { "nlp" }}],
                    });
                    let (status, answer) = call(&agent, "POST", &api(url, "runs/log-batch"), &body.to_string());
                    assert_eq!(status, 200, "{answer}");
                }
            });
        }
    });
    eprintln!(
        "  (populated {count} runs at {url} in {:.1} s)",
        start.elapsed().as_secs_f64()
    );
    experiment
}

/// Median ms of the filtered, ordered search, and of paging through every run: the time until
/// the whole answer has arrived (decoding it is the client's own work, timed apart).
fn search_figures(url: &str, experiment: &str, repeats: usize) -> (f64, f64) {
    let agent = http();
    let endpoint = api(url, "runs/search");
    let timed = |body: Value| -> (f64, Value) {
        let request = ureq::http::Request::builder()
            .method("POST")
            .uri(&endpoint)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .unwrap();
        let start = Instant::now();
        let mut response = agent.run(request).unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(response.status(), 200, "{text}");
        (elapsed, serde_json::from_str(&text).unwrap())
    };
    let mut searches: Vec<f64> = (0..repeats)
        .map(|_| {
            let (ms, answer) = timed(json!({"experiment_ids": [experiment], "filter": FILTER, "order_by": [ORDER], "max_results": 1000}));
            assert!(!answer["runs"].as_array().unwrap().is_empty());
            ms
        })
        .collect();
    let mut pagings: Vec<f64> = (0..repeats.min(3))
        .map(|_| {
            let mut total = 0.0;
            let mut token: Option<String> = None;
            loop {
                let mut body = json!({"experiment_ids": [experiment], "max_results": 1000});
                if let Some(t) = &token {
                    body["page_token"] = json!(t);
                }
                let (ms, answer) = timed(body);
                total += ms;
                match answer["next_page_token"].as_str() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
            total
        })
        .collect();
    (median(&mut searches), median(&mut pagings))
}

/// Opens the experiment in the real workbench, waits for its runs, then scrolls the table with
/// the mouse wheel frame by frame in a plain egui context (as the window does) and times it.
fn runs_table_frames(root: &Path, experiment_id: &str, runs: usize) {
    use egui_kittest::kittest::Queryable;
    let service = lathe_core::service::Service::new(
        lathe_core::Store::open(root).unwrap(),
        std::sync::Arc::new(|| {}),
    )
    .unwrap();
    let mut h = egui_kittest::Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(
            |ui, wb: &mut lathe_ui::Workbench| wb.ui(ui),
            lathe_ui::Workbench::new(service),
        );
    let wait = Duration::from_secs(300);
    h.get_by_label("Experiments").click();
    let name = format!("search-large-{}", std::process::id());
    run_until(&mut h, wait, "the experiment list", |h| {
        h.query_by_label(&name).is_some()
    });
    h.get_by_label(&name).click();
    let count = format!("{} runs", lathe_core::format::count(runs as i64));
    let start = Instant::now();
    run_until(&mut h, wait, "the runs", |h| {
        h.query_by_label(&count).is_some()
    });
    println!(
        "loading {runs} runs into the table: {:.2} s (experiment {experiment_id})",
        start.elapsed().as_secs_f64()
    );
    let mut workbench = h.into_state();
    let mut first_names = Vec::new();
    let mut last_names = Vec::new();
    let mut frames = wheel_scroll_frames(
        &mut workbench,
        300,
        egui::pos2(700.0, 400.0),
        |frame, shapes| {
            if frame == 4 {
                first_names = run_names(shapes);
            } else {
                last_names = run_names(shapes);
            }
        },
    );
    assert!(
        !last_names.is_empty() && last_names != first_names,
        "the wheel scrolled the runs table"
    );
    report_frames(
        &format!("runs table, wheel scrolling ({runs} runs)"),
        &mut frames,
    );
}

/// The run names (`run-N`) drawn in a frame.
fn run_names(shapes: &[egui::epaint::ClippedShape]) -> Vec<String> {
    fn walk(shape: &egui::Shape, out: &mut Vec<String>) {
        match shape {
            egui::Shape::Text(text) if text.galley.text().starts_with("run-") => {
                out.push(text.galley.text().to_owned());
            }
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for clipped in shapes {
        walk(&clipped.shape, &mut out);
    }
    out
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `pid` and all its descendants.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // The parent pid is the second field after the parenthesised command name.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parents.push((child, ppid));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    tree
}

/// `mlflow server` with a SQLite backend in `dir`, stopped when dropped.
struct MlflowServer {
    child: Child,
    url: String,
}

impl MlflowServer {
    fn start(python: &Path, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let child = Command::new(python)
            .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .env("MLFLOW_DISABLE_TELEMETRY", "true")
            .env("DO_NOT_TRACK", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        // Owned from here, so a failure below still stops it (see Drop).
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        let agent = http();
        while Instant::now() < deadline {
            if let Ok(mut r) = agent.get(format!("{}/health", server.url)).call()
                && r.status() == 200
                && r.body_mut().read_to_string().is_ok()
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("mlflow server did not come up at {}", server.url);
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // The workers are in the server's process group; end them all, by force if they linger
        // (uvicorn's workers can outlive a TERM, and the benchmark would wait on them forever).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

use std::os::unix::process::CommandExt;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP server that answers every request with `{}` at once: the client's own ceiling.
struct NullServer {
    url: String,
}

impl NullServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let header = line.to_ascii_lowercase();
                            if let Some(v) = header.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                        if writer.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url }
    }
}
