//! The Experiments and Models sections, driven headless with egui_kittest over a workspace with
//! the demo experiment logged: runs, a filter with an inline error, run detail and lineage back
//! to the data, comparing runs, and the registered model's signature.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use lathe_core::Workspace;
use lathe_tests::{Sandbox, painted_texts, run_until, visible_text};
use lathe_ui::Workbench;

const WAIT: Duration = Duration::from_secs(30);

fn demo_harness(s: &Sandbox) -> Harness<'static, Workbench> {
    let mut ws = Workspace::open(s.workspace()).unwrap();
    lathe_core::demo::seed(&mut ws).unwrap();
    lathe_core::demo::seed_tracking(&lathe_core::Store::open(s.workspace()).unwrap()).unwrap();
    let workbench = s.workbench();
    Harness::builder()
        .with_size([1400.0, 1200.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), workbench)
}

fn shows(h: &Harness<'_, Workbench>, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

fn shows_containing(h: &Harness<'_, Workbench>, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

/// A few frames, without waiting for the window to go idle (a spinner never does).
fn settle(h: &mut Harness<'_, Workbench>) {
    for _ in 0..3 {
        h.step();
    }
}

fn search(h: &mut Harness<'_, Workbench>, filter: &str) {
    let field = h.get_by_role(egui::Role::TextInput);
    field.focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_role(egui::Role::TextInput).type_text(filter);
    settle(h);
    h.get_by_label("Search").click();
}

#[test]
fn runs_filter_with_inline_errors_and_a_run_leads_back_to_its_data() {
    let s = Sandbox::new();
    let mut h = demo_harness(&s);
    h.get_by_label("Experiments").click();
    run_until(&mut h, WAIT, "the demo runs", |h| {
        shows(h, "logistic_regression-00")
    });
    assert!(shows(&h, "6 runs"), "{}", visible_text(&h));

    search(&mut h, "metrics.auc >> 1");
    run_until(&mut h, WAIT, "the filter error", |h| {
        shows_containing(h, "Invalid search expression")
    });
    search(
        &mut h,
        "params.algorithm = 'decision_tree' and metrics.accuracy > 0",
    );
    run_until(&mut h, WAIT, "the filtered runs", |h| shows(h, "3 runs"));
    assert!(!shows_containing(&h, "Invalid search"), "the error clears");
    assert!(shows(&h, "decision_tree-03"));
    assert!(!shows(&h, "logistic_regression-00"), "{}", visible_text(&h));

    h.get_by_label("decision_tree-03").click();
    run_until(&mut h, WAIT, "the run's detail", |h| {
        shows(h, "max_depth") && shows(h, "Lineage")
    });
    assert!(shows(&h, "5"), "its depth");
    h.get_by_label("Charts").click();
    run_until(&mut h, WAIT, "the learning curve", |h| {
        shows(h, "val_accuracy (5 points)")
    });
    h.get_by_label("Logs").click();
    settle(&mut h);
    h.get_by_label("🗋 train.log").click();
    run_until(&mut h, WAIT, "the log preview", |h| {
        shows_containing(h, "fitted on")
    });

    h.get_by_label("Lineage").click();
    run_until(&mut h, WAIT, "the lineage graph", |h| {
        shows(h, "⊞ customers:1")
    });
    h.get_by_label("⊞ customers:1").click();
    run_until(
        &mut h,
        WAIT,
        "the customers table in the Data section",
        |h| shows_containing(h, "2,000 rows"),
    );
}

#[test]
fn checked_runs_compare_and_the_model_shows_its_signature() {
    let s = Sandbox::new();
    let mut h = demo_harness(&s);
    h.get_by_label("Experiments").click();
    run_until(&mut h, WAIT, "the demo runs", |h| {
        shows(h, "logistic_regression-00")
    });
    for run in [
        "logistic_regression-00",
        "decision_tree-01",
        "logistic_regression-02",
    ] {
        h.get_by_label(&format!("Compare {run}")).click();
        settle(&mut h);
    }
    h.get_by_label("Compare (3)").click();
    run_until(&mut h, WAIT, "the comparison", |h| {
        shows(h, "Comparing 3 runs")
    });
    // A final score per run is a bar chart that writes each run's value: close values read
    // as different numbers even where the bars look alike.
    let tracking = lathe_core::tracking::Tracking::open(s.workspace()).unwrap();
    let experiment = tracking
        .handle(
            "GET",
            "experiments/get-by-name",
            serde_json::json!({ "experiment_name": "churn-demo" }),
        )
        .unwrap();
    let scores: Vec<String> = ["logistic_regression-00", "decision_tree-01"]
        .iter()
        .map(|name| {
            let filter = format!("attributes.run_name = '{name}'");
            let found = tracking
                .handle(
                    "POST",
                    "runs/search",
                    serde_json::json!({ "experiment_ids": [experiment["experiment"]["experiment_id"]], "filter": filter }),
                )
                .unwrap();
            let accuracy = found["runs"][0]["data"]["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["key"] == "accuracy")
                .unwrap_or_else(|| panic!("accuracy of {name}: {found}"))["value"]
                .as_f64()
                .unwrap();
            lathe_core::format::number(accuracy)
        })
        .collect();
    run_until(&mut h, WAIT, "the bars and their values", |h| {
        let painted = painted_texts(h);
        scores.iter().all(|s| painted.contains(s))
    });
    h.get_by_label("Params").click();
    settle(&mut h);
    // Params that differ across these three; each run's model is a column of the diff.
    for value in ["logistic_regression", "decision_tree", "0.1", "10", "3"] {
        assert!(
            shows(&h, value),
            "param diff shows {value}: {}",
            visible_text(&h)
        );
    }
    h.get_by_label("Parallel coordinates").click();
    settle(&mut h);
    assert!(shows_containing(&h, "One line per run"));
    // A legend says what the colour of a line means.
    assert!(shows_containing(&h, "Colour: "), "{}", visible_text(&h));

    h.get_by_label("Models").click();
    run_until(&mut h, WAIT, "the registered model", |h| {
        shows_containing(h, "churn-classifier")
    });
    h.get_by_label_contains("churn-classifier").click();
    run_until(&mut h, WAIT, "the signature", |h| shows(h, "monthly_spend"));
    assert!(shows(&h, "@champion · v1"));
    // Trained behind the demo pipeline's preparation, it takes the raw columns.
    assert!(
        shows(&h, "region") && shows(&h, "boolean"),
        "{}",
        visible_text(&h)
    );
}

#[test]
fn runs_a_script_logs_appear_without_a_reload() {
    let s = Sandbox::new();
    let mut h = demo_harness(&s);
    h.get_by_label("Experiments").click();
    run_until(&mut h, WAIT, "the demo runs", |h| shows(h, "6 runs"));
    // A training script logs a new run into the experiment meanwhile.
    let tracking = lathe_core::tracking::Tracking::open(s.workspace()).unwrap();
    let experiment = tracking
        .handle(
            "GET",
            "experiments/get-by-name",
            serde_json::json!({ "experiment_name": "churn-demo" }),
        )
        .unwrap();
    tracking
        .handle(
            "POST",
            "runs/create",
            serde_json::json!({ "experiment_id": experiment["experiment"]["experiment_id"], "run_name": "live-run" }),
        )
        .unwrap();
    run_until(&mut h, WAIT, "the new run, without a reload", |h| {
        shows(h, "7 runs") && shows(h, "live-run")
    });
}

#[test]
fn a_pipeline_run_nests_its_steps_and_shows_them_in_its_view() {
    let s = Sandbox::new();
    let pipeline = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/pipelines/churn-classification.yml");
    // Once to run every step, once more to reuse them all.
    for _ in 0..2 {
        s.lathe(&["pipeline", "run", pipeline.to_str().unwrap()])
            .ok();
    }
    let workbench = s.workbench();
    let mut h = Harness::builder()
        .with_size([1400.0, 900.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), workbench);
    h.get_by_label("Experiments").click();
    run_until(&mut h, WAIT, "the pipeline runs", |h| {
        h.query_all_by_label("Churn classification").count() == 2
    });
    // The steps are folded under their pipeline run, as MLflow nests them.
    assert!(!shows(&h, "train_logistic"), "{}", visible_text(&h));
    let unfold = h
        .query_all_by_label("⏵")
        .next()
        .expect("a pipeline run can be unfolded");
    unfold.click();
    settle(&mut h);
    assert!(shows(&h, "train_logistic"), "{}", visible_text(&h));
    // The newest pipeline run's view lists its twelve steps, all reused, and its duration.
    h.query_all_by_label("Churn classification")
        .next()
        .unwrap()
        .click();
    run_until(&mut h, WAIT, "the steps", |h| {
        shows_containing(h, "Steps (12)")
    });
    assert!(
        shows_containing(&h, "in all · 12 reused"),
        "{}",
        visible_text(&h)
    );
    assert_eq!(h.query_all_by_label("reused").count(), 12);
}

#[test]
fn a_version_is_promoted_from_the_models_section_once_its_gates_pass() {
    let s = Sandbox::new();
    let mut h = demo_harness(&s);
    h.get_by_label("Models").click();
    run_until(&mut h, WAIT, "the registered model", |h| {
        shows_containing(h, "churn-classifier")
    });
    h.get_by_label_contains("churn-classifier").click();
    run_until(&mut h, WAIT, "the gates", |h| {
        shows_containing(h, "has no promotion policy")
    });
    // A policy written from the template in the window is saved and checked at once.
    h.get_by_label("Write a policy…").click();
    settle(&mut h);
    h.get_by_label("Save policy").click();
    run_until(&mut h, WAIT, "the saved policy", |h| {
        shows(h, "Policy of churn-classifier saved") && shows_containing(h, "approvals")
    });
    assert!(
        h.get_by_label("Promote to @production")
            .accesskit_node()
            .is_disabled()
    );
    // A policy this version can meet: an approval, and a signature @production has no holder
    // for yet.
    let store = lathe_core::Store::open(s.workspace()).unwrap();
    lathe_core::promotion::set_policy(
        &store,
        "model: churn-classifier\nsignature_compatible: true\napprovals: 1\n",
    )
    .unwrap();
    run_until(&mut h, WAIT, "one approval missing", |h| shows(h, "0 of 1"));
    h.get_by_label("Approve").click();
    run_until(&mut h, WAIT, "the approval", |h| {
        shows(h, "1 of 1") && shows_containing(h, "Approved by")
    });
    h.get_by_label("Promote to @production").click();
    run_until(&mut h, WAIT, "the alias moved", |h| {
        shows(h, "churn-classifier@production is now version 1")
    });
    let holder = store
        .tracking()
        .read(|c| {
            lathe_core::tracking::registry::version_by_alias(c, "churn-classifier", "production")
        })
        .unwrap();
    assert_eq!(holder.version, "1");
    run_until(&mut h, WAIT, "the decision in the history", |h| {
        shows(h, "History (1)")
    });
}

#[test]
fn a_version_is_deployed_from_the_models_section() {
    let s = Sandbox::new();
    let mut h = demo_harness(&s);
    h.get_by_label("Models").click();
    run_until(&mut h, WAIT, "the registered model", |h| {
        shows_containing(h, "churn-classifier")
    });
    h.get_by_label_contains("churn-classifier").click();
    run_until(&mut h, WAIT, "the version", |h| shows(h, "Deploy…"));
    h.get_by_label("Deploy…").click();
    settle(&mut h);
    h.get_by_label("Deploy churn-classifier:1").click();
    run_until(&mut h, WAIT, "the deployment made", |h| {
        shows_containing(h, "Deployed to churn-classifier at http://127.0.0.1:")
    });
    let store = lathe_core::Store::open(s.workspace()).unwrap();
    let endpoint = lathe_core::endpoints::endpoint(&store, "churn-classifier").unwrap();
    assert_eq!(endpoint.spec.traffic.get("blue"), Some(&100));
    let deployments = lathe_core::endpoints::deployments(&store, "churn-classifier").unwrap();
    assert_eq!(
        (
            deployments[0].model_name.as_str(),
            deployments[0].model_version.as_str()
        ),
        ("churn-classifier", "1")
    );
    h.get_by_label("Open in Endpoints").click();
    run_until(&mut h, WAIT, "the endpoint in its section", |h| {
        shows_containing(h, "churn-classifier  ·  0/1 ready") && shows(h, "Test")
    });
}

#[test]
fn runs_are_pushed_to_a_tracking_server_and_pulled_back_from_the_experiments_section() {
    let s = Sandbox::new();
    let mut h = demo_harness(&s);
    h.get_by_label("Experiments").click();
    run_until(&mut h, WAIT, "the demo runs", |h| shows(h, "6 runs"));
    h.get_by_label("⬆⬇ Tracking server").click();
    settle(&mut h);
    // The selected experiment is named for the push; the token field hides what is typed.
    let field = h.get_by_role_and_label(egui::Role::TextInput, "Server");
    field.focus();
    h.step();
    h.get_by_role_and_label(egui::Role::TextInput, "Server")
        .type_text(lathe_tests::mlflow_server());
    settle(&mut h);
    h.get_by_label("Push ⬆").click();
    run_until(&mut h, Duration::from_secs(120), "the push's report", |h| {
        shows_containing(h, "items sent to http://127.0.0.1:")
    });
    let text = visible_text(&h);
    assert!(text.contains("6 of 6 items sent"), "{text}");
    assert!(shows_containing(&h, "run logistic_regression-00"), "{text}");

    // Pulled back, the runs are the ones pushed: nothing new comes.
    h.get_by_label("Pull ⬇").click();
    run_until(&mut h, Duration::from_secs(120), "the pull's report", |h| {
        shows_containing(h, "items recorded from http://127.0.0.1:")
    });
    let text = visible_text(&h);
    assert!(text.contains("0 of 6 items recorded"), "{text}");
    assert!(text.contains("6 already here"), "{text}");
}
