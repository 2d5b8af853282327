//! The annotator, driven headless with egui_kittest: draw a box with pointer events, label it
//! with a hotkey, undo, redo, submit and find it stored; then the review flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use lathe_core::Workspace;
use lathe_core::labeling::project::{self, Project, Status};
use lathe_core::labeling::text_formats::Format;
use lathe_core::labeling::{Shape, Task, labels_from_names};
use lathe_tests::{Sandbox, run_until, visible_text};
use lathe_ui::Workbench;

const WAIT: Duration = Duration::from_secs(30);

/// A sandbox with the text project `sentiment` (two labeled reviews), and its workspace.
fn sentiment() -> (Sandbox, Workspace) {
    let s = Sandbox::new();
    let (ws, _) = text_project(
        &s,
        "sentiment",
        Format::Csv,
        b"text,label\ngreat,positive\nbad,negative\n",
    );
    (s, ws)
}

/// Imports the label file `body` as the text project `name`.
fn text_project(s: &Sandbox, name: &str, format: Format, body: &[u8]) -> (Workspace, Project) {
    let file = s.file(&format!("{name}.labels"), body);
    let mut ws = Workspace::open(s.workspace()).unwrap();
    let p = lathe_core::labeling::text_formats::import_file(&mut ws, &file, format, name).unwrap();
    (ws, p)
}

/// The window over the sandbox's workspace.
fn harness(s: &Sandbox) -> Harness<'static, Workbench> {
    let workbench = s.workbench();
    Harness::builder()
        .with_size([1400.0, 900.0])
        .build_ui_state(|ui, wb: &mut Workbench| wb.ui(ui), workbench)
}

fn shows_containing(h: &Harness<'_, Workbench>, text: &str) -> bool {
    h.query_by_label_contains(text).is_some()
}

fn pointer(h: &Harness<'_, Workbench>, pos: egui::Pos2, pressed: Option<bool>) {
    h.event(egui::Event::PointerMoved(pos));
    if let Some(pressed) = pressed {
        h.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
    }
}

/// The window on project `name`, once its first item is `shown`.
fn open_project(
    s: &Sandbox,
    name: &str,
    shown: impl Fn(&Harness<'_, Workbench>) -> bool,
) -> Harness<'static, Workbench> {
    let mut h = harness(s);
    h.get_by_label("Labeling").click();
    run_until(&mut h, WAIT, "the project", |h| shows_containing(h, name));
    h.get_by_label_contains(name).click();
    run_until(&mut h, WAIT, "the first item", shown);
    h
}

fn canvas_shown(h: &Harness<'_, Workbench>) -> bool {
    h.query_by_label("Image canvas").is_some()
}

/// Pre-labels the open project (one item is left), shows that item's suggestion, takes it with A
/// and submits it.
fn prelabel_and_accept(h: &mut Harness<'_, Workbench>, suggested: &str, saved: &str) {
    h.get_by_label("Pre-label unlabeled items").click();
    run_until(h, WAIT, "the pre-labels", |h| {
        shows_containing(h, "pre-labeled 1 item(s)")
    });
    h.get_by_label("unlabeled").click();
    run_until(h, WAIT, "the suggestion", |h| {
        shows_containing(h, suggested)
    });
    h.key_press(egui::Key::A);
    h.step();
    // The suggestion is the item's now: a shape drawn, or a class chosen.
    assert!(
        shows_containing(h, "Shapes (1)") || !shows_containing(h, "No label chosen yet"),
        "{}",
        visible_text(h)
    );
    h.key_press(egui::Key::Enter);
    run_until(h, WAIT, "the saved item", |h| shows_containing(h, saved));
}

fn comment_field<'a>(h: &'a Harness<'_, Workbench>) -> Option<egui_kittest::Node<'a>> {
    // The review's comment is the side panel's last field (the assist's model field is above).
    h.query_all_by_role(egui::Role::TextInput)
        .rfind(|n| n.rect().left() > 900.0)
}

#[test]
fn a_box_is_drawn_labeled_undone_redone_submitted_and_reviewed() {
    let s = Sandbox::new();
    let mut ws = Workspace::open(s.workspace()).unwrap();
    lathe_core::demo::seed(&mut ws).unwrap();
    let labels = labels_from_names(&["circle".into(), "square".into()]);
    let p = project::create(
        &mut ws,
        "boxes",
        Task::BoundingBoxes,
        &"shapes".parse().unwrap(),
        labels,
        1,
    )
    .unwrap();
    let mut h = open_project(&s, "boxes", canvas_shown);
    let canvas = h.get_by_label("Image canvas").rect();
    h.key_press(egui::Key::Num2);
    h.step();
    let (from, to) = (
        canvas.center() - egui::vec2(60.0, 60.0),
        canvas.center() + egui::vec2(40.0, 50.0),
    );
    drag(&mut h, from, to);
    assert!(shows_containing(&h, "Shapes (1)"), "{}", visible_text(&h));
    assert!(
        shows_containing(&h, "square  "),
        "the box has the hotkey's label"
    );
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.step();
    assert!(shows_containing(&h, "Shapes (0)"), "undone");
    h.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    h.step();
    assert!(shows_containing(&h, "Shapes (1)"), "redone");
    h.key_press(egui::Key::Enter);
    // Saved, and the next item is in view (keys act on the item shown).
    run_until(&mut h, WAIT, "the saved item", |h| {
        shows_containing(h, "Saved item 1: 1 shape(s)") && shows_containing(h, "circle-02.png")
    });
    let stored = project::latest(&ws, &p, 0).unwrap().expect("a submission");
    let [
        Shape::Box {
            label,
            w,
            h: height,
            ..
        },
    ] = stored.shapes.as_slice()
    else {
        panic!("one box: {:?}", stored.shapes)
    };
    assert_eq!(label, "square");
    assert!(*w > 5.0 && *height > 5.0, "{w} × {height}");

    // Review: back to it, a rejection needs a reason, then it is in the rejected queue.
    h.key_press(egui::Key::P);
    run_until(&mut h, WAIT, "the labeled item", |h| {
        shows_containing(h, "status: labeled")
    });
    h.get_by_label("Reject").click();
    // The comment box is the text field in the item's side panel (the list has one too).
    run_until(&mut h, WAIT, "the refusal", |h| {
        shows_containing(h, "say why it is rejected") && comment_field(h).is_some()
    });
    let comment = comment_field(&h).unwrap();
    comment.focus();
    comment.type_text("the box misses the circle");
    h.step();
    h.get_by_label("Reject").click();
    run_until(&mut h, WAIT, "the review", |h| {
        shows_containing(h, "Reviewed item 1")
    });
    let rejected = project::items(
        &ws,
        &p,
        &project::Filter {
            status: Some(Status::Rejected),
            label: None,
        },
    )
    .unwrap();
    assert_eq!(rejected.len(), 1);
    h.get_by_label("rejected").click();
    run_until(&mut h, WAIT, "the rejected queue", |h| {
        shows_containing(h, "1 of 1")
    });
}

#[test]
fn a_project_is_created_from_the_form() {
    let s = Sandbox::new();
    let mut ws = Workspace::open(s.workspace()).unwrap();
    lathe_core::demo::seed(&mut ws).unwrap();
    let mut h = harness(&s);
    h.get_by_label("Labeling").click();
    run_until(&mut h, WAIT, "the empty list", |h| {
        shows_containing(h, "No projects yet")
    });
    h.get_by_label("New project").click();
    h.step();
    let fields: Vec<_> = h.query_all_by_role(egui::Role::TextInput).collect();
    assert_eq!(fields.len(), 2, "name and labels");
    fields[0].focus();
    fields[0].type_text("shape-boxes");
    h.step();
    let fields: Vec<_> = h.query_all_by_role(egui::Role::TextInput).collect();
    fields[1].focus();
    fields[1].type_text("circle, square");
    h.step();
    h.get_by_label("Asset").click();
    run_until(&mut h, WAIT, "the asset choices", |h| {
        h.query_by_label("shapes").is_some()
    });
    h.get_by_label("shapes").click();
    h.step();
    h.get_by_label("Create").click();
    run_until(&mut h, WAIT, "the new project", |h| {
        h.query_by_label("Image canvas").is_some() && shows_containing(h, "0/24 labeled")
    });
    let p = project::open(&ws, "shape-boxes").unwrap();
    assert_eq!(p.labels.len(), 2);
    assert_eq!(p.task, Task::BoundingBoxes);
}

#[test]
fn a_baseline_suggestion_is_accepted_with_a_key_and_credited() {
    let s = Sandbox::new();
    let (ws, p) = text_project(
        &s,
        "sentiment",
        Format::Csv,
        b"text,label\ngreat product love it,positive\nbroke after a day,negative\nlove the colour,positive\nstopped working,negative\ni love it so much,\n",
    );
    let mut h = open_project(&s, "sentiment", |h| shows_containing(h, "great"));
    prelabel_and_accept(
        &mut h,
        "Suggested by baseline:naive-bayes: positive",
        "Saved item 5",
    );
    let stored = project::latest(&ws, &p, 4).unwrap().unwrap();
    assert_eq!(stored.source, "model:baseline:naive-bayes");
}

#[test]
fn labels_are_exported_from_the_window_to_a_file_and_a_data_asset() {
    let (s, _ws) = sentiment();
    let mut h = harness(&s);
    h.state_mut().open_label_project("sentiment");
    run_until(&mut h, WAIT, "the project", |h| {
        shows_containing(h, "Save as data asset")
    });
    h.get_by_label("Save as data asset").click();
    run_until(&mut h, WAIT, "the asset", |h| {
        shows_containing(h, "Recorded data asset sentiment-labels:1 (2 rows)")
    });
    // The Export… button asks the shell for a path; the shell hands it back.
    h.get_by_label("Format").click();
    run_until(&mut h, WAIT, "the formats", |h| {
        h.query_by_label("csv").is_some()
    });
    h.get_by_label("csv").click();
    h.step();
    h.get_by_label("Export…").click();
    h.step();
    assert_eq!(
        h.state_mut().take_requests(),
        [lathe_ui::ShellRequest::ExportLabels]
    );
    let out = s.path("out.csv");
    h.state_mut().export_labels(out.clone());
    run_until(&mut h, WAIT, "the export", |h| {
        shows_containing(h, "Exported 2 item(s)")
    });
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "text,label\ngreat,positive\nbad,negative\n"
    );
}

#[test]
fn a_project_is_started_from_a_label_file_in_the_window() {
    let s = Sandbox::new();
    let csv = s.file("reviews.csv", b"text,label\ngreat,positive\nbad,negative\n");
    Workspace::open(s.workspace()).unwrap();
    let mut h = harness(&s);
    h.get_by_label("Labeling").click();
    run_until(&mut h, WAIT, "the list", |h| {
        shows_containing(h, "No projects yet")
    });
    h.get_by_label("New project").click();
    h.step();
    h.get_by_label("From labels…").click();
    h.step();
    assert_eq!(
        h.state_mut().take_requests(),
        [lathe_ui::ShellRequest::PickLabels]
    );
    h.state_mut().offer_label_file(csv);
    h.step();
    let name = h.query_all_by_role(egui::Role::TextInput).next().unwrap();
    name.focus();
    name.type_text("sentiment");
    h.step();
    h.get_by_label("Format").click();
    run_until(&mut h, WAIT, "the formats", |h| {
        h.query_by_label("csv").is_some()
    });
    h.get_by_label("csv").click();
    h.step();
    h.get_by_label("Import").click();
    run_until(&mut h, WAIT, "the imported project", |h| {
        shows_containing(h, "2/2 labeled")
    });
}

#[test]
fn a_label_is_added_to_the_schema_from_the_window() {
    let (s, ws) = sentiment();
    let mut h = harness(&s);
    h.state_mut().open_label_project("sentiment");
    run_until(&mut h, WAIT, "the project", |h| {
        shows_containing(h, "Edit labels")
    });
    h.get_by_label("Edit labels").click();
    h.step();
    h.get_by_label("+ Label").click();
    run_until(&mut h, WAIT, "the new row", |h| {
        h.query_by_label("new label").is_some()
    });
    let field = h.get_by_label("new label");
    field.focus();
    field.type_text("neutral");
    h.step();
    h.get_by_label("Apply").click();
    run_until(&mut h, WAIT, "the saved schema", |h| {
        shows_containing(h, "Labels of sentiment saved")
    });
    let p = project::open(&ws, "sentiment").unwrap();
    assert_eq!(
        p.labels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["negative", "positive", "neutral"]
    );
}

/// A sandbox with three red rectangles imported as the image asset `rects`, and where they are.
fn red_rectangles() -> (Sandbox, [[f64; 4]; 3]) {
    let s = Sandbox::new();
    let truth = [[10, 10, 40, 30], [90, 50, 50, 40], [30, 40, 60, 50]];
    for (i, [x, y, w, h]) in truth.iter().enumerate() {
        s.file(
            &format!("rects/{i}.png"),
            &lathe_tests::red_rectangle(*x, *y, *w, *h),
        );
    }
    s.import_images("rects", "rects");
    (s, truth.map(|b| b.map(f64::from)))
}

/// A project `name` labeling the red rectangles with the one label `red`.
fn rects_project(task: Task, name: &str) -> (Sandbox, Workspace, Project, [[f64; 4]; 3]) {
    let (s, truth) = red_rectangles();
    let mut ws = Workspace::open(s.workspace()).unwrap();
    let labels = labels_from_names(&["red".into()]);
    let p = project::create(&mut ws, name, task, &"rects".parse().unwrap(), labels, 1).unwrap();
    (s, ws, p, truth)
}

#[test]
fn a_suggested_box_is_shown_accepted_and_credited() {
    let (s, ws, p, truth) = rects_project(Task::BoundingBoxes, "rects");
    for (position, [x, y, w, h]) in truth.iter().enumerate().take(2) {
        let shape = Shape::rectangle(p.task, "red".into(), [*x, *y, x + w, y + h], None);
        project::submit(&ws, &p, position as i64, "ann", &[shape], "human").unwrap();
    }
    let mut h = open_project(&s, "rects", canvas_shown);
    prelabel_and_accept(
        &mut h,
        "Suggested by baseline:colour-regions: red",
        "Saved item 3",
    );
    let stored = project::latest(&ws, &p, 2).unwrap().unwrap();
    assert_eq!(stored.source, "model:baseline:colour-regions");
    let [Shape::Box { x, y, w, h, .. }] = stored.shapes.as_slice() else {
        panic!("one box: {:?}", stored.shapes)
    };
    let iou = lathe_tests::iou([*x, *y, *w, *h], truth[2]);
    assert!(iou > 0.9, "{iou}: {:?}", stored.shapes);
}

#[test]
fn a_polygon_is_clicked_closed_and_its_vertex_dragged() {
    let (s, ws, p, _) = rects_project(Task::Polygons, "outlines");
    let mut h = open_project(&s, "outlines", canvas_shown);
    let c = h.get_by_label("Image canvas").rect().center();
    let corners = [
        c + egui::vec2(-100.0, -80.0),
        c + egui::vec2(100.0, -80.0),
        c + egui::vec2(0.0, 90.0),
    ];
    for corner in corners {
        click(&mut h, corner);
    }
    h.key_press(egui::Key::C);
    h.step();
    assert!(
        shows_containing(&h, "red  3 points"),
        "{}",
        visible_text(&h)
    );
    // The new polygon is selected: drag its first vertex right.
    let (from, to) = (corners[0], corners[0] + egui::vec2(60.0, 0.0));
    drag(&mut h, from, to);
    // A click outside starts another polygon (Esc drops it); a click inside selects this one,
    // which Delete removes and Ctrl+Z brings back.
    click(&mut h, c + egui::vec2(150.0, 150.0));
    h.key_press(egui::Key::Escape);
    h.step();
    click(&mut h, c + egui::vec2(10.0, 0.0));
    h.key_press(egui::Key::Delete);
    h.step();
    assert!(shows_containing(&h, "Shapes (0)"), "{}", visible_text(&h));
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.step();
    assert!(shows_containing(&h, "Shapes (1)"), "{}", visible_text(&h));
    h.key_press(egui::Key::Enter);
    run_until(&mut h, WAIT, "the saved item", |h| {
        shows_containing(h, "Saved item 1")
    });
    let stored = project::latest(&ws, &p, 0).unwrap().unwrap();
    let [Shape::Polygon { points, .. }] = stored.shapes.as_slice() else {
        panic!("one polygon: {:?}", stored.shapes)
    };
    assert_eq!(points.len(), 3, "a drag moves a vertex, it adds none");
    // The image is fitted to the canvas: 60 screen points are some image pixels to the right.
    // The first two were placed symmetrically about the third.
    let moved = points[0][0] - (2.0 * points[2][0] - points[1][0]);
    assert!(moved > 5.0, "{points:?}");
    assert!((points[0][1] - points[1][1]).abs() < 1.0, "{points:?}");
}

#[test]
fn a_span_is_marked_by_dragging_across_words() {
    let s = Sandbox::new();
    let (ws, p) = text_project(
        &s,
        "ner",
        Format::Conll,
        b"EU B-ORG\nrejects O\nPeter B-PER\n\nSpokesman O\nPeter O\nBlackburn O\nsaid O\n",
    );
    let per = p.labels.iter().position(|l| l.name == "PER").unwrap();
    let mut h = open_project(&s, "ner", |h| h.query_by_label("rejects").is_some());
    h.key_press(egui::Key::N);
    run_until(&mut h, WAIT, "the second text", |h| {
        h.query_by_label("Blackburn").is_some()
    });
    h.key_press(egui::Key::from_name(&(per + 1).to_string()).unwrap());
    h.step();
    let from = h.get_by_label("Peter").rect().center();
    let to = h.get_by_label("Blackburn").rect().center();
    drag(&mut h, from, to);
    assert!(shows_containing(&h, "Spans (1)"), "{}", visible_text(&h));
    h.key_press(egui::Key::Enter);
    run_until(&mut h, WAIT, "the saved item", |h| {
        shows_containing(h, "Saved item 2")
    });
    let stored = project::latest(&ws, &p, 1).unwrap().unwrap();
    assert_eq!(
        stored.shapes,
        [Shape::Span {
            label: "PER".into(),
            start: "Spokesman ".len(),
            end: "Spokesman Peter Blackburn".len(),
            confidence: None,
            attributes: Default::default(),
        }]
    );
}

#[test]
fn the_demo_workspace_opens_with_projects_ready_to_label() {
    let s = Sandbox::new();
    let mut ws = Workspace::open(s.workspace()).unwrap();
    lathe_core::demo::seed(&mut ws).unwrap();
    lathe_core::demo::seed_labeling(&mut ws).unwrap();
    let mut h = harness(&s);
    h.get_by_label("Labeling").click();
    run_until(&mut h, WAIT, "the demo projects", |h| {
        shows_containing(h, "bounding_boxes · 0/24 labeled")
            && shows_containing(h, "review-sentiment")
    });
    h.get_by_label_contains("review-sentiment").click();
    run_until(&mut h, WAIT, "the first review", |h| {
        shows_containing(h, "1  positive") && shows_containing(h, "3  neutral")
    });
}

#[test]
fn a_registered_onnx_detector_is_picked_and_its_boxes_offered() {
    let (s, ws, p, truth) = rects_project(Task::BoundingBoxes, "rects");
    let detector = s.file(
        "rows.onnx",
        &lathe_tests::red_detector::model(lathe_tests::red_detector::Layout::Rows),
    );
    s.lathe(&[
        "models",
        "register",
        detector.to_str().unwrap(),
        "--name",
        "red-finder",
    ])
    .ok();
    let mut h = open_project(&s, "rects", canvas_shown);
    h.get_by_label("Model").click();
    run_until(&mut h, WAIT, "the registered models", |h| {
        shows_containing(h, "red-finder:1")
    });
    h.get_by_label("red-finder:1").click();
    h.step();
    h.get_by_label("Pre-label unlabeled items").click();
    run_until(&mut h, WAIT, "the pre-labels", |h| {
        shows_containing(h, "red-finder:1 pre-labeled 3 item(s), 3 at or above")
    });
    run_until(&mut h, WAIT, "the suggestion", |h| {
        shows_containing(h, "Suggested by red-finder:1: red")
    });
    h.key_press(egui::Key::A);
    h.step();
    h.key_press(egui::Key::Enter);
    run_until(&mut h, WAIT, "the saved item", |h| {
        shows_containing(h, "Saved item 1")
    });
    let stored = project::latest(&ws, &p, 0).unwrap().unwrap();
    assert_eq!(stored.source, "model:red-finder:1");
    let [Shape::Box { x, y, w, h, .. }] = stored.shapes.as_slice() else {
        panic!("one box: {:?}", stored.shapes)
    };
    let iou = lathe_tests::iou([*x, *y, *w, *h], truth[0]);
    assert!(iou > 0.85, "{iou}: {:?}", stored.shapes);
}

/// A click of the primary button at `at`.
fn click(h: &mut Harness<'_, Workbench>, at: egui::Pos2) {
    pointer(h, at, Some(true));
    h.step();
    pointer(h, at, Some(false));
    h.step();
}

/// Presses at `from`, drags through three steps to `to` and releases.
fn drag(h: &mut Harness<'_, Workbench>, from: egui::Pos2, to: egui::Pos2) {
    pointer(h, from, Some(true));
    h.step();
    for t in [0.3, 0.6, 1.0] {
        pointer(h, from + (to - from) * t, None);
        h.step();
    }
    pointer(h, to, Some(false));
    h.step();
    h.step();
}

#[test]
fn a_selected_box_is_moved_by_dragging_inside_it() {
    let (s, ws, p, _) = rects_project(Task::BoundingBoxes, "rects");
    let mut h = open_project(&s, "rects", canvas_shown);
    let c = h.get_by_label("Image canvas").rect().center();
    drag(&mut h, c - egui::vec2(100.0, 80.0), c);
    assert!(shows_containing(&h, "Shapes (1)"), "{}", visible_text(&h));
    let bounds = |ws: &Workspace| {
        project::latest(ws, &p, 0).unwrap().unwrap().shapes[0]
            .bounds()
            .unwrap()
    };
    h.key_press(egui::Key::Enter);
    // Saved, and the next image in view (keys act on the item shown).
    run_until(&mut h, WAIT, "the saved box", |h| {
        shows_containing(h, "Saved item 1") && h.query_by_label("1.png").is_some()
    });
    let drawn = bounds(&ws);
    h.key_press(egui::Key::P);
    run_until(&mut h, WAIT, "the box again", |h| {
        shows_containing(h, "status: labeled")
    });
    // Select it, then drag it from inside, 60 right and 40 down.
    let inside = c - egui::vec2(50.0, 40.0);
    h.get_by_label_contains("red  ").click();
    h.step();
    drag(&mut h, inside, inside + egui::vec2(60.0, 40.0));
    assert!(shows_containing(&h, "Shapes (1)"), "a move adds no box");
    h.key_press(egui::Key::Enter);
    // The message reads as before: wait for the store instead.
    run_until(&mut h, WAIT, "the moved box", |_| bounds(&ws) != drawn);
    let moved = bounds(&ws);
    let (dx, dy) = (moved[0] - drawn[0], moved[1] - drawn[1]);
    assert!(dx > 0.0 && dy > 0.0, "{drawn:?} → {moved:?}");
    assert_eq!(
        [moved[2] - dx, moved[3] - dy],
        [drawn[2], drawn[3]],
        "the same size, moved"
    );
}

#[test]
fn a_polygon_project_takes_a_dragged_box_beside_a_clicked_polygon() {
    let (s, ws, p, _) = rects_project(Task::Polygons, "mixed");
    let mut h = open_project(&s, "mixed", canvas_shown);
    let c = h.get_by_label("Image canvas").rect().center();
    for corner in [
        c + egui::vec2(-100.0, -80.0),
        c + egui::vec2(-20.0, -80.0),
        c + egui::vec2(-60.0, -10.0),
    ] {
        click(&mut h, corner);
    }
    h.key_press(egui::Key::C);
    h.step();
    drag(
        &mut h,
        c + egui::vec2(40.0, 20.0),
        c + egui::vec2(140.0, 100.0),
    );
    assert!(shows_containing(&h, "Shapes (2)"), "{}", visible_text(&h));
    h.key_press(egui::Key::Enter);
    run_until(&mut h, WAIT, "the saved item", |h| {
        shows_containing(h, "Saved item 1")
    });
    let stored = project::latest(&ws, &p, 0).unwrap().unwrap();
    let kinds: Vec<&str> = stored
        .shapes
        .iter()
        .map(|s| match s {
            Shape::Polygon { .. } => "polygon",
            Shape::Box { .. } => "box",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["polygon", "box"]);
}

#[test]
fn a_text_item_without_a_class_is_not_saved_as_labeled() {
    let s = Sandbox::new();
    let (ws, p) = text_project(
        &s,
        "sentiment",
        Format::Csv,
        b"text,label
great,positive
bad,negative
so so,
",
    );
    let mut h = open_project(&s, "sentiment", |h| shows_containing(h, "great"));
    h.get_by_label("unlabeled").click();
    run_until(&mut h, WAIT, "the unlabeled item", |h| {
        shows_containing(h, "No label chosen yet")
    });
    h.key_press(egui::Key::Enter);
    h.step();
    assert!(
        shows_containing(&h, "has no label yet: pick one"),
        "{}",
        visible_text(&h)
    );
    assert!(project::latest(&ws, &p, 2).unwrap().is_none());
    // Refused by the store too, whoever asks.
    let e = project::submit(&ws, &p, 2, "ann", &[], "human").unwrap_err();
    assert!(e.to_string().contains("needs a label"), "{e}");
    // With a class chosen it is saved, and the list shows it chosen.
    h.key_press(egui::Key::Num2);
    h.step();
    assert!(!shows_containing(&h, "No label chosen yet"));
    h.key_press(egui::Key::Enter);
    run_until(&mut h, WAIT, "the saved item", |h| {
        shows_containing(h, "Saved item 3: positive")
    });
}

/// A row project: the row's fields are shown; a value is typed and Enter keeps it; a class is
/// picked with its hotkey.
#[test]
fn rows_are_labeled_with_a_value_or_a_class() {
    let s = Sandbox::new();
    let table = s.file(
        "houses.csv",
        b"house,rooms,city\nh1,3.0,Lyon\nh2,5.5,Nantes\n",
    );
    s.lathe(&[
        "data",
        "import",
        table.to_str().unwrap(),
        "--name",
        "houses",
    ])
    .ok();
    s.lathe(&[
        "label",
        "create",
        "bad",
        "--task",
        "row_value",
        "--asset",
        "houses",
        "--labels",
        "price,rent",
    ])
    .fails_with("a row_value project has one label, the quantity it asks for");
    s.lathe(&[
        "label",
        "create",
        "bad",
        "--task",
        "row_value",
        "--asset",
        "houses",
        "--labels",
        "price",
        "--key",
        "id",
    ])
    .fails_with("there is no column 'id' to key the rows by; the table has house, rooms, city");
    s.lathe(&[
        "label",
        "create",
        "prices",
        "--task",
        "row_value",
        "--asset",
        "houses",
        "--labels",
        "price",
        "--key",
        "house",
    ])
    .ok();
    let mut h = open_project(&s, "prices", |h| {
        shows_containing(h, "Nantes") || shows_containing(h, "Lyon")
    });
    assert!(shows_containing(&h, "rooms"), "{}", visible_text(&h));
    // A Float64 3.0 (as collection keeps numbers) reads as the 3 rooms it is.
    assert!(h.query_by_label("3").is_some(), "{}", visible_text(&h));
    let field = h
        .query_all_by_role(egui::Role::TextInput)
        .find(|n| n.rect().left() > 900.0)
        .unwrap();
    field.focus();
    field.type_text("5x");
    h.run();
    assert!(
        shows_containing(&h, "'5x' is not a number"),
        "{}",
        visible_text(&h)
    );
    h.key_press(egui::Key::Backspace);
    h.step();
    let field = h
        .query_all_by_role(egui::Role::TextInput)
        .find(|n| n.rect().left() > 900.0)
        .unwrap();
    field.type_text("0000.5");
    h.step();
    field_enter(&mut h);
    let ws = Workspace::open(s.workspace()).unwrap();
    let p = project::open(&ws, "prices").unwrap();
    run_until(&mut h, WAIT, "the saved value", |_| {
        project::latest(&ws, &p, 0).unwrap().is_some()
    });
    let saved = project::latest(&ws, &p, 0).unwrap().unwrap();
    assert!(
        matches!(&saved.shapes[..], [Shape::Value { label, value, .. }] if label == "price" && *value == 50_000.5),
        "{saved:?}"
    );
    assert_eq!(
        project::items(&ws, &p, &Default::default()).unwrap()[0].name,
        "h1"
    );
    // Exported as CSV: the key, the row's fields, the answer and the status.
    let out = s.file("prices.csv", b"");
    s.lathe(&[
        "label",
        "export",
        "prices",
        "--format",
        "csv",
        "--out",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "key,rooms,city,label,status\nh1,3.0,Lyon,50000.5,labeled\nh2,5.5,Nantes,,unlabeled\n"
    );

    s.lathe(&[
        "label",
        "create",
        "movers",
        "--task",
        "row_classification",
        "--asset",
        "houses",
        "--labels",
        "stays,moves",
    ])
    .ok();
    let mut h = open_project(&s, "movers", |h| shows_containing(h, "Lyon"));
    h.key_press(egui::Key::Num2);
    h.step();
    h.key_press(egui::Key::Enter);
    let p = project::open(&ws, "movers").unwrap();
    run_until(&mut h, WAIT, "the saved class", |_| {
        project::latest(&ws, &p, 0).unwrap().is_some()
    });
    let saved = project::latest(&ws, &p, 0).unwrap().unwrap();
    assert_eq!(saved.shapes[0].label(), "moves");
    assert_eq!(
        project::items(&ws, &p, &Default::default()).unwrap()[0].name,
        "row 1"
    );
    assert_eq!(Task::RowClassification, p.task);
}

/// Enter in the focused value field.
fn field_enter(h: &mut Harness<'_, Workbench>) {
    h.event(egui::Event::Key {
        key: egui::Key::Enter,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.step();
    h.event(egui::Event::Key {
        key: egui::Key::Enter,
        physical_key: None,
        pressed: false,
        repeat: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.step();
}
