//! The pipeline benchmark: the executor's overhead per step (a chain of 50 trivial command
//! steps, against starting the same 50 commands bare) and a fully reused rerun of the churn
//! sample pipeline.
//!
//! `cargo bench -p lathe-tests --bench pipelines`. Targets: under 10 ms of overhead a step, a
//! fully reused rerun under 200 ms. A benchmark, not a test: it prints the figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lathe_core::pipeline::executor::{self, RunOptions};
use lathe_core::pipeline::job;
use lathe_core::tracking::Tracking;

const STEPS: usize = 50;
const RUNS: usize = 5;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let tracking = Tracking::open(&root).unwrap();
    let cancel = AtomicBool::new(false);
    let quiet = |_| {};

    // A chain, so steps run one after another and the overhead adds up.
    let mut yaml = String::from("type: pipeline\njobs:\n");
    for i in 0..STEPS {
        yaml.push_str(&format!(
            "  s{i}:\n    command: 'true'\n    environment: system\n    outputs:\n      out:\n"
        ));
        if i > 0 {
            yaml.push_str(&format!(
                "    inputs:\n      x: ${{{{parent.jobs.s{}.outputs.out}}}}\n",
                i - 1
            ));
        }
    }
    let chain = job::parse(&yaml, dir.path()).unwrap();
    let mut options = RunOptions::new("bench");
    options.force = true;
    let (mut bare, mut piped) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let start = Instant::now();
        for _ in 0..STEPS {
            assert!(
                Command::new("sh")
                    .args(["-c", "true"])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        bare.push(start.elapsed());
        let start = Instant::now();
        let outcome = executor::run(
            &tracking,
            &root,
            &chain,
            dir.path(),
            &options,
            &cancel,
            &quiet,
        )
        .unwrap();
        piped.push(start.elapsed());
        assert!(outcome.succeeded());
    }
    let (bare, piped) = (median(bare), median(piped));
    let overhead = (ms(piped) - ms(bare)) / STEPS as f64;
    println!(
        "{STEPS} trivial command steps: {:.1} ms through the executor, {:.1} ms started bare \
         ({:.2}× ); overhead {overhead:.2} ms a step (target < 10 ms)",
        ms(piped),
        ms(bare),
        ms(piped) / ms(bare),
    );

    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/pipelines");
    let file = sample.join("churn-classification.yml");
    let churn = job::parse(&std::fs::read_to_string(&file).unwrap(), &sample).unwrap();
    let options = RunOptions::new("bench-churn");
    let start = Instant::now();
    let first =
        executor::run(&tracking, &root, &churn, &sample, &options, &cancel, &quiet).unwrap();
    let cold = start.elapsed();
    assert!(first.succeeded());
    let mut reruns = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let again =
            executor::run(&tracking, &root, &churn, &sample, &options, &cancel, &quiet).unwrap();
        reruns.push(start.elapsed());
        assert_eq!(again.reused(), churn.steps.len());
    }
    let rerun = median(reruns);
    println!(
        "churn sample ({} steps): first run {:.1} ms, fully reused rerun {:.1} ms (target < 200 ms; {:.0}× faster than running)",
        churn.steps.len(),
        ms(cold),
        ms(rerun),
        ms(cold) / ms(rerun)
    );
}
