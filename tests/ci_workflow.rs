//! The example CI workflow (`examples/ci/workflow.sh`: train → gate → deploy → smoke test, with
//! the lathe CLI alone) runs green on a fresh workspace, and again on a rerun: unchanged data
//! and code reuse the trained version (pipeline reuse), which passes its gates again and is
//! deployed over the last deployment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lathe_tests::{Sandbox, lathe_bin};

fn workflow(sandbox: &Sandbox) -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ci/workflow.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .env("LATHE", lathe_bin())
        .env("LATHE_WORKSPACE", sandbox.workspace())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_example_ci_workflow_trains_gates_deploys_and_smoke_tests() {
    let sandbox = Sandbox::new();
    let first = workflow(&sandbox);
    for needle in [
        "trained churn-pipeline-classifier:1",
        "pass  training_accuracy",
        "churn-pipeline-classifier@staging → version 1",
        "created deployment candidate of churn-staging",
        "churn-staging answered: {\"predictions\":[",
    ] {
        assert!(first.contains(needle), "'{needle}' in:\n{first}");
    }
    let second = workflow(&sandbox);
    for needle in [
        "trained churn-pipeline-classifier:1",
        "pass  training_accuracy",
        "updated deployment candidate",
        "churn-staging answered:",
    ] {
        assert!(second.contains(needle), "'{needle}' in:\n{second}");
    }
}
