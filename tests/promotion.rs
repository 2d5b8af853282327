//! Gated promotion from the CLI: `lathe models policy set`, `promote` refusing (exit non-zero,
//! each failed gate printed with its value and threshold) and then promoting with approvals,
//! `decisions`; and the fairness gate's numbers against Fairlearn's on the same table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lathe_core::Store;
use lathe_core::tracking::VersionRequest;
use lathe_core::tracking::runs::{Batch, NewRun};
use lathe_core::tracking::types::Metric;
use lathe_tests::{Sandbox, peer_python, peer_script};

/// A version of `model` trained by a run that logged `accuracy`, its MLmodel taking
/// `tenure` (double) and `plan` (string).
fn version(store: &Store, model: &str, accuracy: f64) -> String {
    let t = store.tracking();
    let run = t
        .create_run(NewRun {
            experiment_id: "0".into(),
            user_id: "ci".into(),
            start_time: None,
            run_name: None,
            tags: Vec::new(),
        })
        .unwrap();
    let id = run.info.run_id.clone();
    let metric = Metric {
        key: "accuracy".into(),
        value: accuracy,
        timestamp: 1,
        ..Metric::default()
    };
    t.log_batch(
        &id,
        Batch {
            metrics: vec![metric],
            params: Vec::new(),
            tags: Vec::new(),
        },
    )
    .unwrap();
    let root = run
        .info
        .artifact_uri
        .strip_prefix("mlflow-artifacts:/")
        .unwrap();
    let mlmodel = "artifact_path: model\nflavors: {}\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"tenure\"}, {\"type\": \"string\", \"name\": \"plan\"}]'\n";
    t.put_artifact(&format!("{root}/model/MLmodel"), &mut mlmodel.as_bytes())
        .unwrap();
    t.register_version(VersionRequest {
        name: model.into(),
        source: format!("{}/model", run.info.artifact_uri),
        run_id: Some(id),
        ..VersionRequest::default()
    })
    .unwrap()
    .version
}

#[test]
fn promote_refuses_with_each_failed_gate_then_promotes_with_approvals() {
    let sandbox = Sandbox::new();
    sandbox.lathe(&["data", "list"]).ok();
    let (v1, v2) = {
        let store = Store::open(sandbox.workspace()).unwrap();
        (
            version(&store, "churn", 0.9),
            version(&store, "churn", 0.86),
        )
    };
    // No policy: refused, saying how to set one.
    sandbox
        .lathe(&["models", "promote", &format!("churn:{v1}")])
        .fails_with("1 gate(s) failed");
    let policy = sandbox.file(
        "policy.yml",
        b"model: churn\nmetrics:\n  - metric: accuracy\n    at_least: 0.8\n    max_regression: 0.02\napprovals: 1\n",
    );
    let bad = sandbox.file(
        "bad.yml",
        b"model: churn\nmetrics:\n  - metric: accuracy\n    at_lest: 0.8\n",
    );
    sandbox
        .lathe(&["models", "policy", "set", bad.to_str().unwrap()])
        .fails_with("metrics[0]: unknown field `at_lest`");
    sandbox
        .lathe(&["models", "policy", "set", policy.to_str().unwrap()])
        .ok();
    let shown = sandbox.lathe(&["models", "policy", "show", "churn"]).ok();
    assert!(
        shown.stdout.contains("max_regression: 0.02"),
        "{}",
        shown.stdout
    );
    // Metrics pass, the approval is missing: refused, the gate printed with its numbers.
    let refused = sandbox.lathe(&[
        "models",
        "promote",
        &format!("churn:{v1}"),
        "--alias",
        "production",
    ]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stdout
            .contains("pass  accuracy ≥ 0.8: 0.9 (needs ≥ 0.8)"),
        "{}",
        refused.stdout
    );
    assert!(
        refused
            .stdout
            .contains("FAIL  approvals: 0 of 1 (needs ≥ 1)"),
        "{}",
        refused.stdout
    );
    // Approved: promoted, exit 0.
    let promoted = sandbox
        .lathe(&[
            "models",
            "promote",
            &format!("churn:{v1}"),
            "--approve",
            "--comment",
            "fine",
            "--approver",
            "ana",
        ])
        .ok();
    assert!(
        promoted
            .stdout
            .contains(&format!("churn@production → version {v1}")),
        "{}",
        promoted.stdout
    );
    // v2 is 0.04 worse than the holder: refused even when approved; a dry run records nothing.
    let dry = sandbox.lathe(&[
        "models",
        "promote",
        &format!("churn:{v2}"),
        "--dry-run",
        "--json",
    ]);
    assert_ne!(dry.code, 0);
    let json = dry.json();
    assert_eq!(json["promoted"], serde_json::Value::Null);
    let failed: Vec<&str> = json["evaluation"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["passed"] == false)
        .map(|g| g["gate"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        [
            "accuracy no worse than the current holder by more than 0.02",
            "approvals"
        ]
    );
    sandbox
        .lathe(&[
            "models",
            "promote",
            &format!("churn:{v2}"),
            "--approve",
            "--approver",
            "ben",
        ])
        .fails_with("1 gate(s) failed");
    let shown = sandbox.lathe(&["models", "show", "churn@production"]).ok();
    assert!(
        shown.stdout.starts_with(&format!("churn:{v1}")),
        "{}",
        shown.stdout
    );
    let history = sandbox
        .lathe(&["models", "decisions", "churn", "--json"])
        .ok()
        .json();
    let outcomes: Vec<bool> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["promoted"].as_bool().unwrap())
        .collect();
    assert_eq!(outcomes, [false, true, false, false]);
}

#[test]
fn the_fairness_gate_measures_what_fairlearn_measures() {
    let sandbox = Sandbox::new();
    // Three groups of unequal size, labels and predictions from a fixed pseudo-random walk.
    let mut csv = String::from("region,churned,predicted\n");
    let mut state: u64 = 42;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for i in 0..600 {
        let region = ["north", "south", "east"][if i % 7 == 0 { 2 } else { i % 2 }];
        let bias = if region == "south" { 0.25 } else { 0.0 };
        let label = next() < 0.4;
        let predicted = next() < if label { 0.8 - bias } else { 0.2 + bias };
        csv.push_str(&format!(
            "{region},{},{}\n",
            if label { "yes" } else { "no" },
            if predicted { "yes" } else { "no" }
        ));
    }
    let table = sandbox.file("scored.csv", csv.as_bytes());
    sandbox
        .lathe(&[
            "data",
            "import",
            table.to_str().unwrap(),
            "--name",
            "scored",
        ])
        .ok();
    let v = {
        let store = Store::open(sandbox.workspace()).unwrap();
        version(&store, "churn", 0.9)
    };
    let policy = sandbox.file(
        "policy.yml",
        b"model: churn\nfairness:\n  data: scored:1\n  sensitive_column: region\n  label_column: churned\n  prediction_column: predicted\n  positive_label: 'yes'\n  max_selection_rate_difference: 1\n  max_true_positive_rate_difference: 1\n",
    );
    sandbox
        .lathe(&["models", "policy", "set", policy.to_str().unwrap()])
        .ok();
    let ours = sandbox
        .lathe(&[
            "models",
            "promote",
            &format!("churn:{v}"),
            "--dry-run",
            "--json",
        ])
        .ok()
        .json();
    let gates = ours["evaluation"]["gates"].as_array().unwrap();
    let value = |prefix: &str| -> f64 {
        gates
            .iter()
            .find(|g| g["gate"].as_str().unwrap().starts_with(prefix))
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let out = std::process::Command::new(peer_python())
        .arg(peer_script("fairness.py"))
        .args([
            table.to_str().unwrap(),
            "region",
            "churned",
            "predicted",
            "yes",
        ])
        .output()
        .expect("the peer python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fairlearn: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Lathe shows four decimals.
    for (ours, theirs) in [
        (
            value("selection rate difference"),
            "selection_rate_difference",
        ),
        (
            value("true-positive rate difference"),
            "true_positive_rate_difference",
        ),
    ] {
        let theirs = fairlearn[theirs].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 5e-5,
            "{theirs}: Lathe {ours}, Fairlearn {theirs}"
        );
        assert!(
            theirs > 0.05,
            "the table should hold a real difference: {theirs}"
        );
    }
}
