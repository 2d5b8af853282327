//! The Monitoring section and Compare data, driven headless with egui_kittest over a real
//! workspace: a monitor's drift chart with its threshold and alerted windows, clicking a
//! feature to see its distributions, acknowledging an alert; two versions of a table compared.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_core::import::{ImportRequest, import};
use lathe_core::jobs::Progress;
use lathe_tests::{Sandbox, painted_texts, run_until};
use lathe_ui::{Section, Workbench};

const WAIT: Duration = Duration::from_secs(30);

fn shows(h: &Harness<'_, Workbench>, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

/// Two versions of `sales`: the second's prices moved up and a region appeared.
fn sales(s: &Sandbox) {
    let mut ws = lathe_core::Workspace::open(s.workspace()).unwrap();
    for (shift, regions) in [(0.0, ["north", "south"]), (30.0, ["north", "west"])] {
        let mut text = String::from("price,region\n");
        for i in 0..300 {
            writeln!(
                text,
                "{},{}",
                10.0 + (i % 50) as f64 + shift,
                regions[i % 2]
            )
            .unwrap();
        }
        let path = s.file("sales.csv", text.as_bytes());
        let request = ImportRequest {
            path,
            name: "sales".into(),
            ..Default::default()
        };
        import(&mut ws, &request, &Progress::default()).unwrap();
    }
}

#[test]
fn a_monitor_charts_its_windows_and_its_alerts_are_acknowledged() {
    let s = Sandbox::new();
    sales(&s);
    let store = lathe_core::Store::open(s.workspace()).unwrap();
    let yaml = "name: sales-watch
trigger: {type: recurrence, frequency: hour, interval: 1}
create_monitor:
  monitoring_signals:
    prices:
      type: data_drift
      production_data: {input_data: {path: 'azureml:sales:2'}}
      reference_data: {input_data: {path: 'azureml:sales:1'}}
      alert_enabled: true
      metric_thresholds:
        numerical: {normalized_wasserstein_distance: 0.1}
        categorical: {jensen_shannon_distance: 0.1}
";
    let monitor = lathe_core::monitoring::monitors::put(&store, yaml, false)
        .unwrap()
        .monitor;
    let now = lathe_core::db::now_millis();
    for hours in [2, 1] {
        lathe_core::monitoring::run::run(&store, &monitor, now - hours * 3_600_000, None).unwrap();
    }
    drop(store);
    let mut workbench = s.workbench();
    workbench.show_section(Section::Monitoring);
    let mut h = Harness::builder()
        .with_size([1200.0, 800.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), workbench);
    run_until(&mut h, WAIT, "the monitor", |h| {
        shows(h, "sales-watch") && shows(h, "2 open")
    });
    run_until(&mut h, WAIT, "the drift chart", |h| {
        painted_texts(h)
            .iter()
            .any(|t| t.starts_with("threshold 0.1"))
    });
    // Every widget shown has an accessible name (the harness checks as it runs).
    h.run();
    // The features of the newest window, most drifted first; price is chosen and drawn.
    assert!(shows(&h, "price") && shows(&h, "region"));
    let painted = painted_texts(&h);
    assert!(
        painted.iter().any(|t| t == "crossed"),
        "alerted windows are marked: {painted:?}"
    );
    h.get_by_label("region").click();
    run_until(&mut h, WAIT, "region's distributions", |h| {
        painted_texts(h).iter().any(|t| t == "west") && shows(h, "out of range 50.00%")
    });
    h.get_by_label("Alerts").click();
    run_until(&mut h, WAIT, "the alerts", |h| {
        shows(h, "Acknowledge all 2 open")
    });
    h.get_by_label("Acknowledge all 2 open").click();
    run_until(&mut h, WAIT, "acknowledged alerts", |h| {
        h.query_all_by_label_contains("acknowledged by").count() == 2
    });

    // Actions: one that names no project is refused, saying so; one added is listed, then
    // removed.
    {
        let mut ws = lathe_core::Workspace::open(s.workspace()).unwrap();
        lathe_core::labeling::rows::create(
            &mut ws,
            "sales-review",
            lathe_core::labeling::Task::RowValue,
            &"sales:2".parse().unwrap(),
            lathe_core::labeling::labels_from_names(&["price".into()]),
            None,
            true,
        )
        .unwrap();
    }
    h.get_by_label("Actions").click();
    run_until(&mut h, WAIT, "the actions", |h| shows(h, "Add action"));
    h.run();
    let project = project_field(&h);
    project.focus();
    project.type_text("sales-reveiw");
    h.step();
    h.get_by_label("Add action").click();
    run_until(&mut h, WAIT, "the refusal", |h| {
        h.query_by_label_contains("did you mean 'sales-review'")
            .is_some()
            && shows(h, "Add action")
    });
    let project = project_field(&h);
    project.focus();
    for _ in 0..5 {
        h.key_press(egui::Key::Backspace);
    }
    let project = project_field(&h);
    project.type_text("eview");
    h.step();
    h.get_by_label("Add action").click();
    let listed = "send the 50 most drifted rows to labeling project sales-review";
    run_until(&mut h, WAIT, "the action listed", |h| shows(h, listed));
    h.run();
    assert_eq!(
        project_field(&h).value().unwrap_or_default(),
        "",
        "the form starts empty again"
    );
    h.get_by_label("Remove").click();
    run_until(&mut h, WAIT, "the action removed", |h| {
        shows(
            h,
            "Nothing yet: alerts are only listed. Add an action below.",
        )
    });

    // An https webhook, listed without the secret part of its path.
    h.get_by_label("Call a webhook").click();
    h.run();
    let url = h
        .query_all_by_role(egui::Role::TextInput)
        .next()
        .expect("the URL field");
    url.focus();
    url.type_text("https://hooks.example.com/lathe/s3cret-part");
    h.step();
    h.get_by_label("Add action").click();
    run_until(&mut h, WAIT, "the webhook listed", |h| {
        shows(h, "POST to https://hooks.example.com/lathe/…")
    });
    assert!(
        !lathe_tests::visible_text(&h).contains("s3cret-part"),
        "{}",
        lathe_tests::visible_text(&h)
    );
}

#[test]
fn compare_data_shows_two_versions_drift() {
    let s = Sandbox::new();
    sales(&s);
    let mut h = Harness::builder()
        .with_size([1200.0, 800.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), s.workbench());
    run_until(&mut h, WAIT, "the asset list", |h| shows(h, "⊞ sales"));
    h.get_by_label("⊞ sales").click();
    run_until(&mut h, WAIT, "the version", |h| shows(h, "Compare data"));
    h.get_by_label("Compare data").click();
    run_until(&mut h, WAIT, "the comparison", |h| {
        h.query_by_label_contains("2 of 2 columns drifted")
            .is_some()
    });
    run_until(&mut h, WAIT, "price's distributions", |h| {
        painted_texts(h).iter().any(|t| t == "reference")
    });
    h.run();
}

/// The Actions tab's one text field: the project to send rows to.
fn project_field<'a>(h: &'a Harness<'_, Workbench>) -> egui_kittest::Node<'a> {
    let mut fields = h.query_all_by_role(egui::Role::TextInput);
    let field = fields
        .next()
        .unwrap_or_else(|| panic!("the project field: {}", lathe_tests::visible_text(h)));
    assert!(fields.next().is_none(), "one text field");
    field
}
