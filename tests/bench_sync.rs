//! The sync benchmark: `lathe sync push` and `pull` of a run with LATHE_BENCH_SMALL small
//! artifacts (default 10,000, 1–4 KiB each) and of a run with one LATHE_BENCH_LARGE_MB file
//! (default 2,048), beside boto3's transfer manager moving the same bytes (`peers/s3_bench.py`:
//! 10 requests at a time, as `aws s3 cp` does), against the same S3 server (moto's) in one run.
//! Prints the seconds and Lathe's speed as a share of boto3's.
//!
//!     cargo bench -p lathe-tests --bench sync
//!
//! Lathe's pull also records the run in the workspace; its push first reads the run's manifest.
//! It prints figures; it is a benchmark, not a test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use lathe_core::Store;
use lathe_core::tracking::runs::NewRun;
use lathe_tests::{Sandbox, lathe_bin, peer_python, peer_script, s3_server};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A run in experiment `bench` with `files` as artifacts: its id and artifact folder.
fn run_with(
    store: &Store,
    name: &str,
    files: impl Iterator<Item = (String, Vec<u8>)>,
) -> (String, String) {
    let tracking = store.tracking();
    let experiment_id = tracking.experiment_named("bench").unwrap();
    let run = tracking
        .create_run(NewRun {
            experiment_id,
            user_id: "bench".into(),
            start_time: None,
            run_name: Some(name.into()),
            tags: Vec::new(),
        })
        .unwrap();
    let dir = tracking
        .artifact_dir(&run.info.artifact_uri)
        .unwrap()
        .unwrap();
    for (path, bytes) in files {
        tracking
            .put_artifact(&format!("{dir}/{path}"), &mut bytes.as_slice())
            .unwrap();
    }
    (run.info.run_id, dir)
}

fn lathe(sandbox: &Sandbox, args: &[&str]) -> f64 {
    let started = Instant::now();
    let out = Command::new(lathe_bin())
        .arg("--workspace")
        .arg(sandbox.workspace())
        .args(args)
        .env("BENCH_KEY", "bench")
        .env("BENCH_SECRET", "bench")
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "lathe {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    seconds
}

fn datastore(sandbox: &Sandbox, prefix: &str) {
    let yaml = format!(
        "name: bench\ntype: s3\nendpoint_url: {}\nbucket: lathe-test\nprefix: {prefix}\n\
         credentials:\n  access_key_id_env: BENCH_KEY\n  secret_access_key_env: BENCH_SECRET\n",
        s3_server()
    );
    let file = sandbox.file("bench.yml", yaml.as_bytes());
    lathe(
        sandbox,
        &["datastore", "create", "-f", file.to_str().unwrap()],
    );
}

fn main() {
    let small = env_number("LATHE_BENCH_SMALL", 10_000) as usize;
    let large_mb = env_number("LATHE_BENCH_LARGE_MB", 2048);
    let a = Sandbox::new();
    let store = Store::open(a.workspace()).unwrap();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let started = Instant::now();
    let files: Vec<(String, Vec<u8>)> = (0..small)
        .map(|i| {
            let len = 1024 + (next() % 3072) as usize;
            let bytes: Vec<u8> = (0..len.div_ceil(8))
                .flat_map(|_| next().to_le_bytes())
                .take(len)
                .collect();
            (format!("files/{i:05}.bin"), bytes)
        })
        .collect();
    let small_bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let (small_run, small_dir) = run_with(&store, "small", files.into_iter());
    let large_path = a.path("large.bin");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&large_path).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..large_mb {
            for chunk in block.chunks_mut(8) {
                chunk.copy_from_slice(&next().to_le_bytes());
            }
            out.write_all(&block).unwrap();
        }
    }
    let large_run = {
        let (id, dir) = run_with(&store, "large", std::iter::empty());
        let mut file = std::fs::File::open(&large_path).unwrap();
        store
            .tracking()
            .put_artifact(&format!("{dir}/large.bin"), &mut file)
            .unwrap();
        id
    };
    // boto3 sends the very blob files Lathe sends.
    let blob_paths: Vec<String> = store
        .tracking()
        .artifact_tree(&small_dir)
        .unwrap()
        .into_iter()
        .map(|(_, hash, _)| store.blobs().path(&hash).display().to_string())
        .collect();
    drop(store);
    println!(
        "set up {small} small files ({:.1} MiB) and one of {large_mb} MiB in {:.1} s",
        small_bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );

    datastore(&a, "lathe-bench/");
    let push_small = lathe(&a, &["sync", "push", "--to", "bench", "--runs", &small_run]);
    let push_large = lathe(&a, &["sync", "push", "--to", "bench", "--runs", &large_run]);
    let b = Sandbox::new();
    datastore(&b, "lathe-bench/");
    let pull_small = lathe(
        &b,
        &["sync", "pull", "--from", "bench", "--runs", &small_run],
    );
    let pull_large = lathe(
        &b,
        &["sync", "pull", "--from", "bench", "--runs", &large_run],
    );

    let listing = a.file("files.txt", blob_paths.join("\n").as_bytes());
    assert_eq!(blob_paths.len(), small, "the small run's blobs");
    let out = Command::new(peer_python())
        .arg(peer_script("s3_bench.py"))
        .args([s3_server(), "lathe-test", "boto3-bench/"])
        .arg(&listing)
        .arg(&large_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boto: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |what: &str, lathe: f64, key: &str| {
        let boto = boto[key].as_f64().unwrap();
        println!(
            "{what:<28} lathe {lathe:>7.2} s   boto3 {boto:>7.2} s   lathe's speed = {:>4.0}% of boto3's",
            100.0 * boto / lathe
        );
    };
    row(&format!("push {small} small files"), push_small, "small_up");
    row(
        &format!("pull {small} small files"),
        pull_small,
        "small_down",
    );
    row(
        &format!("push one {large_mb} MiB file"),
        push_large,
        "large_up",
    );
    row(
        &format!("pull one {large_mb} MiB file"),
        pull_large,
        "large_down",
    );
}
