//! The pipeline designer, driven headless with egui_kittest: open the churn sample, run it from
//! the toolbar and watch it finish, run it again and see every step reused; build a pipeline
//! from the palette, follow an issue to its node, undo and redo, save a version.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_core::Workspace;
use lathe_tests::{Sandbox, run_until, visible_text};
use lathe_ui::Workbench;

const WAIT: Duration = Duration::from_secs(60);

fn harness(s: &Sandbox) -> Harness<'static, Workbench> {
    let mut ws = Workspace::open(s.workspace()).unwrap();
    lathe_core::demo::seed(&mut ws).unwrap();
    let workbench = s.workbench();
    let mut h = Harness::builder()
        .with_size([1400.0, 900.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), workbench);
    h.get_by_label("Pipelines").click();
    h.step();
    h
}

fn shows_containing(h: &Harness<'_, Workbench>, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

#[test]
fn the_churn_sample_runs_from_the_designer_and_reruns_fully_reused() {
    let s = Sandbox::new();
    let mut h = harness(&s);
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/pipelines/churn-classification.yml");
    h.state_mut().open_pipeline(sample);
    run_until(&mut h, WAIT, "the opened sample", |h| {
        shows_containing(h, "Opened") && shows_containing(h, "Ready to run")
    });
    assert_eq!(h.state().designed_pipeline().steps.len(), 12);
    // With nothing selected, the pipeline's own parameters are there to edit.
    assert!(
        shows_containing(&h, "Pipeline parameters"),
        "{}",
        visible_text(&h)
    );
    h.get_by_label("▶ Run").click();
    run_until(&mut h, WAIT, "the first run to finish", |h| {
        shows_containing(h, "finished — 12 step(s), 0 reused")
    });
    assert!(
        shows_containing(&h, "Open the pipeline's run"),
        "{}",
        visible_text(&h)
    );
    h.get_by_label("▶ Run").click();
    run_until(&mut h, WAIT, "the rerun", |h| {
        shows_containing(h, "finished — 12 step(s), 12 reused")
    });
}

#[test]
fn a_pipeline_built_from_the_palette_lists_its_issues_undoes_and_saves() {
    let s = Sandbox::new();
    let mut h = harness(&s);
    run_until(&mut h, WAIT, "the palette's data assets", |h| {
        h.query_by_label("Add customers").is_some()
    });
    assert!(shows_containing(&h, "add a step from the palette"));
    h.get_by_label("Add customers").click();
    h.step();
    h.get_by_label("Add Select columns").click();
    h.step();
    assert!(shows_containing(&h, "⚠ 2 issue(s)"), "{}", visible_text(&h));
    h.get_by_label_contains("select_columns: columns: required")
        .click();
    h.step();
    assert!(
        shows_containing(&h, "lathe:select_columns · Select columns"),
        "the inspector shows the step"
    );
    h.get_by_label("⟲ Undo").click();
    h.step();
    assert_eq!(h.state().designed_pipeline().steps.len(), 0);
    assert!(shows_containing(&h, "add a step from the palette"));
    h.get_by_label("⟳ Redo").click();
    h.step();
    assert_eq!(h.state().designed_pipeline().steps.len(), 1);
    h.get_by_label("Save").click();
    run_until(&mut h, WAIT, "the saved version", |h| {
        shows_containing(h, "Saved new-pipeline:1")
    });
    run_until(&mut h, WAIT, "the saved list", |h| {
        h.query_by_label("new-pipeline:1").is_some()
    });
    // A draft with issues cannot be scheduled; the reason is shown.
    h.get_by_label("Schedule").click();
    run_until(&mut h, WAIT, "the refusal", |h| {
        shows_containing(h, "Not scheduled: new-pipeline:1 is not ready to run")
    });
    // Reopened from the saved list, it is the same pipeline.
    h.get_by_label("New").click();
    h.step();
    assert_eq!(h.state().designed_pipeline().steps.len(), 0);
    h.get_by_label("new-pipeline:1").click();
    run_until(&mut h, WAIT, "the reopened pipeline", |h| {
        h.state().designed_pipeline().steps.len() == 1
    });
    assert_eq!(h.state().designed_pipeline().inputs.len(), 1);
}

#[test]
fn the_demo_workspace_opens_its_saved_pipeline_in_the_designer() {
    let s = Sandbox::new();
    lathe_core::demo::seed_pipelines(&lathe_core::Store::open(s.workspace()).unwrap()).unwrap();
    let mut h = harness(&s);
    run_until(&mut h, WAIT, "the demo pipeline", |h| {
        shows_containing(h, "Opened churn-classification:1")
    });
    let pipeline = h.state().designed_pipeline();
    assert_eq!(pipeline.steps.len(), 12);
    assert_eq!(
        pipeline.inputs[0].1,
        lathe_core::pipeline::job::Binding::Data {
            kind: Some("uri_folder".into()),
            path: "azureml:customers@latest".into()
        }
    );
    assert!(shows_containing(&h, "Ready to run"), "{}", visible_text(&h));
}
