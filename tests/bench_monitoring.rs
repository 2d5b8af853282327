//! The drift benchmark: every drift and data quality metric of 25 columns (20 numerical, 5
//! categorical) over LATHE_BENCH_ROWS reference and as many current rows (default
//! 1,000,000 each, Parquet), by `lathe drift`, by a hand-written scipy check of the same
//! columns, and by Evidently's DataDriftPreset — each in its own process, timed with its peak
//! resident memory, side by side in one run. Prints the figures and the ratios.
//!
//!     cargo bench -p lathe-tests --bench monitoring
//!
//! LATHE_BENCH_EVIDENTLY=0 leaves Evidently out (it takes minutes at a million rows). It
//! prints figures; it is a benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

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
}
