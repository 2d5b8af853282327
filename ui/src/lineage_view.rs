//! A run's lineage as a graph: the datasets it read (linked to Lathe data asset versions when
//! known) on the left, the run in the middle, the model versions registered from it on the
//! right. Nodes that lead somewhere are buttons.

use lathe_core::tracking::browse::RunDetail;

use crate::vocabulary::Navigate;

const NODE: egui::Vec2 = egui::vec2(220.0, 48.0);
const GAP: f32 = 90.0;

pub fn lineage_ui(ui: &mut egui::Ui, detail: &RunDetail) -> Option<Navigate> {
    let lineage = &detail.lineage;
    let rows = lineage.inputs.len().max(lineage.outputs.len()).max(1);
    let height = rows as f32 * (NODE.y + 16.0) + 40.0;
    let width = NODE.x * 3.0 + GAP * 2.0;
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(width.max(ui.available_width()), height),
        egui::Sense::hover(),
    );
    let column_x = |c: usize| rect.left() + 8.0 + c as f32 * (NODE.x + GAP);
    let node_rect = |c: usize, i: usize, n: usize| {
        let total = n as f32 * (NODE.y + 16.0) - 16.0;
        let top = rect.center().y - total / 2.0 + i as f32 * (NODE.y + 16.0);
        egui::Rect::from_min_size(egui::pos2(column_x(c), top), NODE)
    };
    let run_rect = node_rect(1, 0, 1);
    let stroke = egui::Stroke::new(1.5, ui.visuals().weak_text_color());
    let mut go = None;
    for (i, input) in lineage.inputs.iter().enumerate() {
        let r = node_rect(0, i, lineage.inputs.len());
        ui.painter()
            .line_segment([r.right_center(), run_rect.left_center()], stroke);
        let d = &input.input.dataset;
        let (title, target) = match &input.asset {
            Some((name, version)) => (
                format!("⊞ {name}:{version}"),
                Some(Navigate::Asset(name.clone(), *version)),
            ),
            None => (format!("⊞ {}", d.name), None),
        };
        let subtitle = format!("{} · {}", d.source_type, d.digest);
        if node_ui(ui, r, &title, &subtitle, target.is_some()) {
            go = target;
        }
    }
    node_ui(
        ui,
        run_rect,
        &format!("▶ {}", detail.run.info.run_name),
        "this run",
        false,
    );
    for (i, version) in lineage.outputs.iter().enumerate() {
        let r = node_rect(2, i, lineage.outputs.len());
        ui.painter()
            .line_segment([run_rect.right_center(), r.left_center()], stroke);
        if node_ui(
            ui,
            r,
            &format!("🗋 {}:{}", version.name, version.version),
            &version.current_stage,
            true,
        ) {
            go = Some(Navigate::Model(version.name.clone()));
        }
    }
    if lineage.inputs.is_empty() {
        let step = detail.run.data.tags.iter().any(|t| t.key == "lathe.step");
        ui.weak(if step {
            // A pipeline step records the assets it reads; this one read plain files.
            "This step read files rather than data assets. Give the pipeline's input a data asset (azureml:NAME:VERSION, or drag one from the palette in the designer) and each step's lineage leads back to it."
        } else {
            "No dataset inputs were logged (mlflow.log_input). A dataset with source type 'lathe' and source NAME:VERSION links to a Lathe data asset."
        });
    }
    go
}

/// Draws a node; returns true when it is clickable and was clicked.
fn node_ui(
    ui: &mut egui::Ui,
    rect: egui::Rect,
    title: &str,
    subtitle: &str,
    clickable: bool,
) -> bool {
    let sense = if clickable {
        egui::Sense::click()
    } else {
        egui::Sense::hover()
    };
    let response = ui.interact(rect, ui.scope_id().with(("lineage-node", title)), sense);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, clickable, title));
    let visuals = if clickable {
        ui.style().interact(&response)
    } else {
        ui.style().noninteractive()
    };
    ui.painter().rect(
        rect,
        6.0,
        visuals.bg_fill,
        visuals.bg_stroke,
        egui::StrokeKind::Inside,
    );
    ui.painter().text(
        rect.left_top() + egui::vec2(10.0, 8.0),
        egui::Align2::LEFT_TOP,
        title,
        egui::FontId::proportional(14.0),
        visuals.text_color(),
    );
    ui.painter().text(
        rect.left_top() + egui::vec2(10.0, 28.0),
        egui::Align2::LEFT_TOP,
        subtitle,
        egui::FontId::proportional(11.0),
        ui.visuals().weak_text_color(),
    );
    let response = if clickable {
        response.on_hover_cursor(egui::CursorIcon::PointingHand)
    } else {
        response
    };
    clickable && response.clicked()
}
