//! The drift benchmark: every drift and data quality metric of 25 columns (20 numerical, 5
//! categorical) over LATHE_BENCH_ROWS reference and as many current rows (default
//! 1,000,000 each, Parquet), by `lathe drift`, by a hand-written scipy check of the same
//! columns, and by Evidently's DataDriftPreset — each in its own process, timed with its peak
//! resident memory, side by side in one run. Prints the figures and the ratios.
//!
//!     cargo bench -p lathe-tests --bench monitoring
//!
//! Then drift over time: LATHE_BENCH_WINDOWS (default 30) daily windows of a deployment's
//! collected inputs, LATHE_BENCH_WINDOW_ROWS each (default 1,000,000; 6 columns), written
//! straight to collected Parquet parts, against a reference of as many rows — the whole chart
//! computed by `lathe monitor backtest`, then recorded window by window and the monitor opened
//! from its stored results as the window opens it.
//!
//! LATHE_BENCH_EVIDENTLY=0 leaves Evidently out (it takes minutes at a million rows). It
//! prints figures; it is a benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Instant;

use lathe_tests::{Sandbox, lathe_bin, peer_script};
use polars::prelude::*;

/// A table of `rows` rows: 20 normal columns (the current's shifted by `shift` times the
/// column's index / 20) and 5 categorical ones (the current's shares moved by `shift`).
fn table(rows: usize, seed: u64, shift: f64) -> DataFrame {
    let mut state = seed;
    let mut uniform = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut columns = Vec::new();
    for j in 0..20 {
        let mean = shift * j as f64 / 20.0;
        let values: Vec<f64> = (0..rows)
            .map(|_| {
                let (u, v) = (uniform().max(1e-300), uniform());
                mean + (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect();
        columns.push(Column::new(format!("num_{j}").into(), values));
    }
    const CATEGORIES: [&str; 8] = [
        "alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta",
    ];
    for j in 0..5 {
        let values: Vec<&str> = (0..rows)
            .map(|_| {
                let x = uniform().powf(1.0 + shift * j as f64);
                CATEGORIES[(x * CATEGORIES.len() as f64) as usize % CATEGORIES.len()]
            })
            .collect();
        columns.push(Column::new(format!("cat_{j}").into(), values));
    }
    DataFrame::new(rows, columns).unwrap()
}

fn main() {
    let rows: usize = std::env::var("LATHE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let evidently = std::env::var("LATHE_BENCH_EVIDENTLY").map_or(true, |v| v != "0");
    let sandbox = Sandbox::new();
    let (reference, current) = (
        sandbox.path("reference.parquet"),
        sandbox.path("current.parquet"),
    );
    for (path, seed, shift) in [(&reference, 1, 0.0), (&current, 2, 0.2)] {
        let mut df = table(rows, seed, shift);
        let file = std::fs::File::create(path).unwrap();
        ParquetWriter::new(file).finish(&mut df).unwrap();
    }
    let python = std::env::var("LATHE_DRIFT_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/lathe/venv-drift/bin/python",
            std::env::var("HOME").unwrap()
        )
    });
    let mut command = Command::new(python);
    command
        .arg(peer_script("drift_bench.py"))
        .arg(lathe_bin())
        .arg(&reference)
        .arg(&current);
    if evidently {
        command.arg("--evidently");
    }
    let out = command.output().expect("the benchmark driver runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("drift, 25 columns, {rows} reference + {rows} current rows (Parquet):");
    let lathe_s = figures["lathe"]["seconds"].as_f64().unwrap();
    for name in ["lathe", "scipy", "evidently"] {
        let f = &figures[name];
        if f.is_null() {
            continue;
        }
        let s = f["seconds"].as_f64().unwrap();
        println!(
            "  {name:<10} {s:>8.2} s  peak {:>7.0} MiB  ({:.1}× Lathe's time)",
            f["peak_mib"].as_f64().unwrap(),
            s / lathe_s
        );
    }
    println!("targets: Lathe under 2 s and 400 MiB; at least 4× scipy and 100× Evidently");
    over_time();
}

/// One day of a deployment's collected inputs: collection's columns and 6 features, the
/// numbers drifting a little each day.
fn day(rows: usize, day: i64, start_ms: i64) -> DataFrame {
    let mut features = table(rows, 100 + day as u64, 0.02 * day as f64);
    let keep: Vec<String> = ["num_0", "num_5", "num_10", "num_15", "num_19", "cat_4"]
        .map(str::to_owned)
        .to_vec();
    features = features.select(keep).unwrap();
    let ids: Vec<String> = (0..rows).map(|i| format!("d{day}-{i}")).collect();
    let times: Vec<i64> = (0..rows)
        .map(|i| start_ms + (i as i64 * 86_400_000) / rows as i64)
        .collect();
    let mut columns = vec![
        Column::new("request_id".into(), ids),
        Column::new("row".into(), vec![0u32; rows]),
        Column::new("timestamp_ms".into(), times),
        Column::new("latency_ms".into(), vec![1.0f64; rows]),
    ];
    columns.extend(features.columns().iter().cloned());
    DataFrame::new(rows, columns).unwrap()
}

fn over_time() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (windows, rows) = (
        env("LATHE_BENCH_WINDOWS", 30),
        env("LATHE_BENCH_WINDOW_ROWS", 1_000_000),
    );
    let sandbox = Sandbox::new();
    sandbox.run_churn_pipeline();
    let endpoint = sandbox.file("e.yml", b"name: churn\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    let deployment = sandbox.file(
        "d.yml",
        b"name: blue\nendpoint_name: churn\nmodel: azureml:churn-pipeline-classifier:1\n",
    );
    sandbox
        .lathe(&[
            "online-deployment",
            "create",
            "-f",
            deployment.to_str().unwrap(),
        ])
        .ok();
    let reference = sandbox.path("reference.parquet");
    let mut df = day(rows, 0, 0).drop_many(["request_id", "row", "timestamp_ms", "latency_ms"]);
    ParquetWriter::new(std::fs::File::create(&reference).unwrap())
        .finish(&mut df)
        .unwrap();
    sandbox
        .lathe(&[
            "data",
            "import",
            reference.to_str().unwrap(),
            "--name",
            "reference",
        ])
        .ok();
    const DAY: i64 = 86_400_000;
    let today = lathe_core::db::now_millis() / DAY * DAY;
    let first = today - windows as i64 * DAY;
    let written = Instant::now();
    {
        let store = lathe_core::Store::open(sandbox.workspace()).unwrap();
        for d in 0..windows as i64 {
            let start = first + d * DAY;
            let mut df = day(rows, d + 1, start);
            lathe_core::collection::add_part(
                &store,
                "churn",
                "blue",
                "model_inputs",
                (start, DAY),
                &mut df,
            )
            .unwrap();
        }
    }
    let written = written.elapsed().as_secs_f64();
    let monitor = sandbox.file(
        "m.yml",
        b"name: daily\ntrigger: {type: recurrence, frequency: day, interval: 1, schedule: {hours: 0, minutes: 0}}\n\
          create_monitor:\n  monitoring_target: {endpoint_deployment_id: 'azureml:churn:blue'}\n  \
          monitoring_signals:\n    drift:\n      type: data_drift\n      alert_enabled: true\n      \
          reference_data: {input_data: {path: 'azureml:reference:1'}}\n",
    );
    sandbox
        .lathe(&["monitor", "create", "-f", monitor.to_str().unwrap()])
        .ok();
    let started = Instant::now();
    let backtest = sandbox
        .lathe(&[
            "monitor",
            "backtest",
            "daily",
            "--windows",
            &windows.to_string(),
            "--json",
        ])
        .ok()
        .json();
    let chart = started.elapsed().as_secs_f64();
    let computed = backtest
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["signals"][0]["problem"].is_null())
        .count();
    assert_eq!(computed, windows, "every window has data");
    // Recorded window by window, then opened as the window opens a monitor.
    let store = lathe_core::Store::open(sandbox.workspace()).unwrap();
    let m = lathe_core::monitoring::monitors::get(&store, "daily").unwrap();
    for w in backtest.as_array().unwrap() {
        lathe_core::monitoring::run::run(&store, &m, w["due_ms"].as_i64().unwrap(), None).unwrap();
    }
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let runs = lathe_core::monitoring::run::runs(&store, &m, 60).unwrap();
        assert_eq!(runs.len(), windows);
        opens.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    opens.sort_by(f64::total_cmp);
    println!(
        "drift over time: {windows} daily windows × {rows} rows ({} rows, 6 columns) written to collected Parquet in {written:.1} s",
        windows * rows
    );
    println!(
        "  every window's drift metrics (lathe monitor backtest): {chart:.2} s (target under 10 s)"
    );
    println!(
        "  the monitor opened from its stored results: median {:.1} ms (target under 100 ms)",
        opens[opens.len() / 2]
    );
}
