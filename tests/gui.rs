//! The real Data panel, driven headless with egui_kittest over a real workspace and service:
//! select an asset, see its rows, its profile, its images and its text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_core::Workspace;
use lathe_core::import::{ImportRequest, import};
use lathe_core::jobs::Progress;
use lathe_tests::{Sandbox, drop_files, go_to_row, painted_texts, png, run_until};
use lathe_ui::Workbench;

const WAIT: Duration = Duration::from_secs(30);

fn workbench(s: &Sandbox, imports: &[(&str, &[u8])]) -> Workbench {
    let mut ws = Workspace::open(s.workspace()).unwrap();
    for (name, bytes) in imports {
        let path = s.file(name, bytes);
        let request = ImportRequest {
            path,
            name: lathe_core::assets::name_from_path(std::path::Path::new(name)),
            ..Default::default()
        };
        import(&mut ws, &request, &Progress::default()).unwrap();
    }
    s.workbench()
}

fn harness(workbench: Workbench) -> Harness<'static, Workbench> {
    Harness::builder()
        .with_size([1200.0, 800.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), workbench)
}

fn shows(h: &Harness<'_, Workbench>, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

#[test]
fn selecting_a_table_shows_its_rows_and_profile() {
    let s = Sandbox::new();
    let csv = b"city,temp\nOslo,-3.5\nLima,19.25\nOslo,4\n";
    let mut h = harness(workbench(&s, &[("weather.csv", csv)]));
    run_until(&mut h, WAIT, "the asset list", |h| shows(h, "⊞ weather"));
    h.get_by_label("⊞ weather").click();
    run_until(&mut h, WAIT, "the first rows", |h| {
        shows(h, "Lima") && shows(h, "19.25")
    });
    assert!(h.query_by_label_contains("3 rows × 2 columns").is_some());

    h.get_by_label("Profile").click();
    run_until(&mut h, WAIT, "the profile", |h| shows(h, "mean"));
    // temp: mean of -3.5, 19.25, 4 = 6.583; city: Oslo is the top value.
    assert!(shows(&h, "6.583"), "the mean of temp is shown");
    // The histogram has a y axis that says what it counts, with numbered ticks.
    let painted = painted_texts(&h);
    assert!(painted.iter().any(|t| t == "rows"), "{painted:?}");
    assert!(painted.iter().any(|t| t == "1"), "{painted:?}");
    assert!(shows(&h, "Oslo"));
}

#[test]
fn a_large_table_pages_in_as_it_scrolls() {
    let s = Sandbox::new();
    let mut csv = String::from("n,square\n");
    for n in 1..=5_000 {
        csv.push_str(&format!("{n},{}\n", n * n));
    }
    let mut h = harness(workbench(&s, &[("squares.csv", csv.as_bytes())]));
    run_until(&mut h, WAIT, "the asset list", |h| shows(h, "⊞ squares"));
    h.get_by_label("⊞ squares").click();
    run_until(&mut h, WAIT, "the first page", |h| shows(h, "100"));
    assert!(
        !shows(&h, "250000"),
        "row 500 is not laid out before scrolling"
    );
    // Pages of 200 rows: row 500 is on the third page, row 4,999 on the last.
    for (row, square) in [("500", "250000"), ("4,999", "24990001")] {
        go_to_row(&h, row);
        run_until(&mut h, WAIT, &format!("row {row}"), |h| shows(h, square));
    }
    assert!(!shows(&h, "100"), "the first rows scrolled out of view");
}

#[test]
fn images_and_text_show_in_their_views() {
    let s = Sandbox::new();
    s.file("pics/a.png", &png(8, 8));
    s.file("pics/b.png", &png(9, 9));
    let mut ws = Workspace::open(s.workspace()).unwrap();
    let request = ImportRequest {
        path: s.path("data/pics"),
        name: "pics".into(),
        ..Default::default()
    };
    import(&mut ws, &request, &Progress::default()).unwrap();
    drop(ws);
    let mut h = harness(workbench(&s, &[("notes.txt", b"alpha\nbeta\n")]));
    run_until(&mut h, WAIT, "the asset list", |h| {
        shows(h, "🖼 pics") && shows(h, "🗋 notes")
    });
    h.get_by_label("🖼 pics").click();
    run_until(&mut h, WAIT, "the image names", |h| {
        shows(h, "a.png") && shows(h, "b.png")
    });
    assert!(h.query_by_label_contains("2 images").is_some());
    h.get_by_label("🗋 notes").click();
    run_until(&mut h, WAIT, "the text items", |h| {
        shows(h, "alpha") && shows(h, "beta")
    });
}

#[test]
fn dropped_files_open_the_import_window_and_import() {
    let s = Sandbox::new();
    let mut h = harness(workbench(&s, &[]));
    run_until(&mut h, WAIT, "the empty state", |h| {
        h.query_by_label_contains("No data assets yet").is_some()
    });
    let path = s.file("fresh.csv", b"x\n1\n2\n");
    drop_files(&mut h, &[path]);
    run_until(&mut h, WAIT, "the import window", |h| {
        shows(h, "Import data")
    });
    h.get_by_label("Import").click();
    run_until(&mut h, WAIT, "the imported asset", |h| {
        shows(h, "⊞ fresh") && h.query_by_label_contains("Imported fresh:1").is_some()
    });
}

#[test]
fn a_failed_import_is_reported_in_the_window() {
    let s = Sandbox::new();
    let mut h = harness(workbench(&s, &[]));
    let path = s.file("ragged.csv", b"a,b\n1\n");
    h.state_mut().offer_paths(vec![path]);
    run_until(&mut h, WAIT, "the import window", |h| {
        shows(h, "Import data")
    });
    h.get_by_label("Import").click();
    run_until(&mut h, WAIT, "the error", |h| {
        h.query_by_label_contains("ragged.csv: line 2: expected 2 fields")
            .is_some()
    });
}

/// The import reads from a named pipe that the test writes only after clicking Cancel, so the
/// job is certainly still running when Cancel is clicked.
#[cfg(unix)]
#[test]
fn a_running_import_shows_progress_and_can_be_cancelled() {
    let s = Sandbox::new();
    let pipe = s.path("data/slow.csv");
    std::fs::create_dir_all(pipe.parent().unwrap()).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    let mut h = harness(workbench(&s, &[]));
    drop_files(&mut h, std::slice::from_ref(&pipe));
    run_until(&mut h, WAIT, "the import window", |h| {
        shows(h, "Import data")
    });
    h.get_by_label("Import").click();
    run_until(&mut h, WAIT, "the running job", |h| {
        shows(h, "Importing slow") && shows(h, "Cancel")
    });
    // As a person does: the pointer is over the button a frame before the click.
    h.get_all_by_label("Cancel")
        .last()
        .expect("the job's Cancel button")
        .hover();
    h.step();
    h.get_all_by_label("Cancel")
        .last()
        .expect("the job's Cancel button")
        .click();
    h.step();
    // Opening the pipe lets the import go on; it sees the cancel and closes its end, so the
    // write itself may find a broken pipe, which is fine.
    let _ = std::fs::write(&pipe, b"a\n1\n");
    run_until(&mut h, WAIT, "the cancellation", |h| {
        h.query_by_label_contains("Import of slow cancelled; nothing was stored")
            .is_some()
    });
    run_until(&mut h, WAIT, "the job to leave the status bar", |h| {
        !shows(h, "Importing slow")
    });
    assert!(
        h.query_by_label_contains("No data assets yet").is_some(),
        "nothing was imported"
    );
}

#[test]
fn lists_follow_changes_made_elsewhere() {
    let s = Sandbox::new();
    let mut h = harness(workbench(&s, &[("first.csv", b"a\n1\n")]));
    run_until(&mut h, WAIT, "the asset list", |h| shows(h, "⊞ first"));
    // Another process imports (the CLI, a pipeline's output): the list follows, no restart.
    let later = s.file("later.csv", b"b\n2\n");
    s.lathe(&["data", "import", later.to_str().unwrap(), "--name", "later"])
        .ok();
    run_until(&mut h, WAIT, "the asset made elsewhere", |h| {
        shows(h, "⊞ later")
    });
    // The same for the other sections: a model registered and a labeling project made from
    // the CLI show up while their sections are open.
    h.get_by_label("Models").click();
    for _ in 0..3 {
        h.step();
    }
    let onnx = s.file(
        "m.onnx",
        &lathe_tests::red_detector::model(lathe_tests::red_detector::Layout::Rows),
    );
    s.lathe(&[
        "models",
        "register",
        onnx.to_str().unwrap(),
        "--name",
        "detector",
    ])
    .ok();
    run_until(&mut h, WAIT, "the model registered elsewhere", |h| {
        h.query_by_label_contains("detector").is_some()
    });
    h.get_by_label("Labeling").click();
    for _ in 0..3 {
        h.step();
    }
    s.file("shots/a.png", &png(8, 8));
    s.import_images("shots", "shots");
    s.lathe(&[
        "label",
        "create",
        "from-cli",
        "--asset",
        "shots",
        "--task",
        "image_classification",
        "--labels",
        "cat,dog",
    ])
    .ok();
    run_until(&mut h, WAIT, "the project made elsewhere", |h| {
        h.query_by_label_contains("from-cli").is_some()
    });
}

#[test]
fn every_section_fits_a_1024_by_700_window() {
    let s = Sandbox::new();
    // A long workspace path, as a real home folder gives.
    let mut workbench = workbench(&s, &[("t.csv", b"a,b\n1,2\n")]);
    workbench.set_tracking_uri(Some("http://127.0.0.1:50000".into()));
    let mut h = Harness::builder()
        .with_size([1024.0, 700.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), workbench);
    let sections = [
        "Data",
        "Experiments",
        "Models",
        "Labeling",
        "Pipelines",
        "Monitoring",
    ];
    // The top bar's item of a label (a section's own heading may repeat its name lower down).
    let top = |h: &Harness<'_, Workbench>, label: &str| {
        h.query_all_by_label(label)
            .map(|n| n.rect())
            .min_by(|a, b| a.top().total_cmp(&b.top()))
            .unwrap_or_else(|| panic!("no {label} in the top bar"))
    };
    for section in sections {
        h.query_all_by_label(section)
            .min_by(|a, b| a.rect().top().total_cmp(&b.rect().top()))
            .unwrap()
            .click();
        for _ in 0..20 {
            h.step();
        }
        // The top bar's items sit side by side, inside the window, none over another.
        let mut items: Vec<(String, egui::Rect)> = ["Lathe", "Import…"]
            .iter()
            .chain(&sections)
            .map(|label| ((*label).to_owned(), top(&h, label)))
            .collect();
        items.push((
            "MLflow".to_owned(),
            h.get_by_label_contains("MLflow 127.0.0.1:50000").rect(),
        ));
        for (label, rect) in &items {
            assert!(
                rect.left() >= 0.0 && rect.right() <= 1024.0 && rect.height() > 0.0,
                "{section}: {label} at {rect:?} is outside the window"
            );
        }
        for (i, (a, ra)) in items.iter().enumerate() {
            for (b, rb) in &items[i + 1..] {
                assert!(
                    !ra.shrink(1.0).intersects(rb.shrink(1.0)),
                    "{section}: {a} {ra:?} overlaps {b} {rb:?}"
                );
            }
        }
    }
}

#[test]
fn a_datastore_is_checked_pushed_to_and_imported_from_in_the_data_section() {
    use lathe_core::datastores::{self, DatastoreSpec};
    use lathe_tests::{boto3, s3_server};
    let s = Sandbox::new();
    // moto takes any credentials: these name variables every process has.
    let spec = DatastoreSpec::from_yaml(&format!(
        "name: team\ntype: s3\nendpoint_url: {}\nbucket: lathe-test\nprefix: gui/\n\
         credentials:\n  access_key_id_env: HOME\n  secret_access_key_env: PATH\n",
        s3_server()
    ))
    .unwrap();
    {
        let store = lathe_core::Store::open(s.workspace()).unwrap();
        datastores::put(&store, &spec, false).unwrap();
    }
    boto3(r#"s3.put_object(Bucket="lathe-test", Key="gui/raw/t.csv", Body=b"x,y\n1,2\n")"#);
    let mut h = harness(workbench(
        &s,
        &[("weather.csv", b"city,temp\nOslo,-3.5\n".as_slice())],
    ));
    run_until(&mut h, WAIT, "the datastore list", |h| shows(h, "🗄 team"));
    h.get_by_label("🗄 team").click();
    run_until(&mut h, WAIT, "the datastore", |h| {
        h.query_by_label_contains("s3://lathe-test/gui/ at http://127.0.0.1:")
            .is_some()
    });
    h.get_by_label("Check").click();
    run_until(&mut h, WAIT, "the check", |h| {
        h.query_by_label_contains("✔ reachable in").is_some()
    });
    assert!(
        h.query_by_label_contains("credentials from $HOME")
            .is_some()
    );

    h.get_by_label("Push ⬆").click();
    run_until(&mut h, WAIT, "the push's report", |h| {
        h.query_by_label_contains("1 of 1 item sent to s3://lathe-test/gui/")
            .is_some()
    });
    assert!(shows(&h, "asset weather:1"));

    // A datastore keeps its name: renaming it in its YAML is refused beside Save, with how.
    h.get_by_label("Settings (YAML)").click();
    h.run();
    let yaml = h
        .query_all_by_role(egui::Role::MultilineTextInput)
        .next()
        .expect("the YAML editor");
    yaml.focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    h.get_all_by_role(egui::Role::MultilineTextInput)
        .next()
        .unwrap()
        .type_text(&spec.to_yaml().replace("name: team", "name: team2"));
    h.step();
    h.get_by_label("Save").click();
    run_until(&mut h, WAIT, "the refusal", |h| {
        h.query_by_label_contains("A datastore keeps its name: to call it team2")
            .is_some()
    });

    let path = h.get_by_label("Path");
    path.focus();
    path.type_text("raw/t.csv");
    h.step();
    let name = h.get_by_label("as asset");
    name.focus();
    name.type_text("from-s3");
    h.step();
    h.get_by_label("Import").click();
    run_until(&mut h, WAIT, "the imported asset", |h| {
        shows(h, "⊞ from-s3")
    });

    h.get_by_label("⊞ from-s3").click();
    run_until(&mut h, WAIT, "its rows", |h| {
        h.query_by_label_contains("azureml://datastores/team/paths/raw/t.csv")
            .is_some()
    });
}
