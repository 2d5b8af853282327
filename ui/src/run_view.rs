//! One run in detail: its params, metrics and tags; charts of every metric's history; its
//! artifacts with previews of text, images and tables; its logs; and its lineage.

use std::sync::Arc;

use lathe_core::format;
use lathe_core::service::{Service, TrackingCommand};
use lathe_core::tracking::browse::{Preview, RunDetail};

use crate::lineage_view::lineage_ui;
use crate::loadable::loaded_ui;
use crate::metric_chart::{ChartStyle, chart_ui, series};
use crate::runs_table::duration_text;
use crate::tracking_cache::TrackingCache;
use crate::vocabulary::Navigate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunTab {
    #[default]
    Overview,
    Charts,
    Artifacts,
    Logs,
    Lineage,
}

#[derive(Default)]
pub struct RunView {
    pub tab: RunTab,
    pub style: ChartStyle,
    /// The artifact shown in the preview, by its path relative to the run's root.
    selected_artifact: Option<String>,
}

impl RunView {
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        cache: &mut TrackingCache,
        run_id: &str,
    ) -> Option<Navigate> {
        let detail = loaded_ui(ui, &mut cache.runs, &run_id.to_owned(), "the run", || {
            service.send(TrackingCommand::LoadRun {
                run_id: run_id.to_owned(),
            });
        })?;
        header_ui(ui, &detail);
        ui.horizontal(|ui| {
            for (tab, label) in [
                (RunTab::Overview, "Overview"),
                (RunTab::Charts, "Charts"),
                (RunTab::Artifacts, "Artifacts"),
                (RunTab::Logs, "Logs"),
                (RunTab::Lineage, "Lineage"),
            ] {
                ui.selectable_value(&mut self.tab, tab, label);
            }
        });
        ui.separator();
        match self.tab {
            RunTab::Overview => return overview_ui(ui, &detail),
            RunTab::Charts => self.charts_ui(ui, service, cache, &detail),
            RunTab::Artifacts => self.artifacts_ui(ui, service, cache, &detail, |_| true),
            RunTab::Logs => self.artifacts_ui(ui, service, cache, &detail, is_log),
            RunTab::Lineage => return lineage_ui(ui, &detail),
        }
        None
    }

    fn charts_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        cache: &mut TrackingCache,
        detail: &RunDetail,
    ) {
        self.style.controls_ui(ui);
        let run_id = &detail.run.info.run_id;
        if detail.run.data.metrics.is_empty() {
            ui.weak("This run logged no metrics.");
            return;
        }
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                for metric in &detail.run.data.metrics {
                    let key = (run_id.clone(), metric.key.clone());
                    let Some(points) =
                        loaded_ui(ui, &mut cache.histories, &key, &metric.key, || {
                            service.send(TrackingCommand::LoadHistory {
                                run_id: key.0.clone(),
                                key: key.1.clone(),
                            });
                        })
                    else {
                        continue;
                    };
                    if points.len() < 2 {
                        // One value makes no chart; say it plainly.
                        ui.label(format!(
                            "{}: {} (a single value)",
                            metric.key,
                            lathe_core::format::number(metric.value)
                        ));
                        ui.add_space(4.0);
                        continue;
                    }
                    let line = (
                        detail.run.info.run_name.clone(),
                        series(&points, self.style),
                    );
                    chart_ui(
                        ui,
                        (run_id, &metric.key),
                        &format!("{} ({} points)", metric.key, points.len()),
                        &[line],
                        180.0,
                    );
                    ui.add_space(8.0);
                }
            });
    }

    fn artifacts_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        cache: &mut TrackingCache,
        detail: &RunDetail,
        keep: impl Fn(&str) -> bool,
    ) {
        let Some(root) = &detail.artifact_root else {
            ui.weak(format!(
                "The artifacts live outside Lathe, at {}",
                detail.run.info.artifact_uri
            ));
            return;
        };
        let files: Vec<&(String, i64)> = detail.artifacts.iter().filter(|(p, _)| keep(p)).collect();
        if files.is_empty() {
            ui.weak(if self.tab == RunTab::Logs {
                "No logs: files ending in .log, or under a logs/ folder, show here."
            } else {
                "This run has no artifacts."
            });
            return;
        }
        egui::Panel::left(("artifact-list", self.tab == RunTab::Logs))
            .resizable(true)
            .default_size(260.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .auto_shrink(false)
                    .show(ui, |ui| {
                        for (path, size) in files {
                            let depth = path.matches('/').count();
                            let name = path.rsplit('/').next().unwrap_or(path);
                            ui.horizontal(|ui| {
                                ui.add_space(depth as f32 * 12.0);
                                let selected =
                                    self.selected_artifact.as_deref() == Some(path.as_str());
                                if ui
                                    .selectable_label(selected, format!("🗋 {name}"))
                                    .on_hover_text(format!("{path} · {}", format::bytes(*size)))
                                    .clicked()
                                {
                                    self.selected_artifact = Some(path.clone());
                                }
                            });
                        }
                    });
            });
        let Some(relative) = self.selected_artifact.clone() else {
            ui.weak("Choose a file to preview it.");
            return;
        };
        let full = format!("{root}/{relative}");
        ui.strong(&relative);
        let Some(preview) = loaded_ui(ui, &mut cache.previews, &full, &relative, || {
            service.send(TrackingCommand::LoadArtifact { path: full.clone() });
        }) else {
            return;
        };
        preview_ui(ui, cache, &full, &preview);
    }
}

fn is_log(path: &str) -> bool {
    path.ends_with(".log")
        || path.starts_with("logs/")
        || path.contains("/logs/")
        || path.ends_with("stdout.txt")
        || path.ends_with("stderr.txt")
}

fn header_ui(ui: &mut egui::Ui, detail: &RunDetail) {
    let info = &detail.run.info;
    ui.horizontal(|ui| {
        ui.heading(&info.run_name);
        ui.weak(&info.run_id);
    });
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("Status {}", info.status));
        if let Some(start) = info.start_time {
            ui.separator();
            ui.label(format!("Started {}", format::timestamp(start / 1000)));
            if let Some(end) = info.end_time {
                ui.separator();
                ui.label(format!("Took {}", duration_text((end - start) as f64)));
            }
        }
        if !info.user_id.is_empty() {
            ui.separator();
            ui.label(format!("User {}", info.user_id));
        }
        if let Some(commit) = detail.run.tag("mlflow.source.git.commit") {
            ui.separator();
            ui.label(format!("Commit {}", &commit[..commit.len().min(10)]));
        }
        if let Some(source) = detail.run.tag("mlflow.source.name") {
            ui.separator();
            ui.label(format!("Source {source}"));
        }
        if let Some(parent) = detail.run.tag("mlflow.parentRunId") {
            ui.separator();
            ui.label(format!("Parent {parent}"));
        }
    });
}

/// The run's params, latest metrics and tags; for a pipeline run (or a sweep) first its steps
/// (or trials), each with its status, whether it was reused, and how long it took. Returns a
/// step the user opened.
fn overview_ui(ui: &mut egui::Ui, detail: &RunDetail) -> Option<Navigate> {
    let data = &detail.run.data;
    let mut open = None;
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .show(ui, |ui| {
            if !detail.children.is_empty() {
                open = steps_ui(ui, detail);
                ui.add_space(8.0);
            }
            ui.columns(3, |columns| {
                section_ui(
                    &mut columns[0],
                    "Params",
                    data.params
                        .iter()
                        .map(|p| (p.key.as_str(), p.value.clone())),
                );
                section_ui(
                    &mut columns[1],
                    "Metrics (latest)",
                    data.metrics.iter().map(|m| {
                        (
                            m.key.as_str(),
                            format!("{} · step {}", format::number(m.value), m.step),
                        )
                    }),
                );
                section_ui(
                    &mut columns[2],
                    "Tags",
                    data.tags.iter().map(|t| (t.key.as_str(), t.value.clone())),
                );
            });
        });
    open
}

/// The runs nested under this one, in the order they started, and the whole run's duration.
fn steps_ui(ui: &mut egui::Ui, detail: &RunDetail) -> Option<Navigate> {
    let info = &detail.run.info;
    let pipeline = data_tag(detail, "lathe.pipeline").is_some();
    let reused = detail
        .children
        .iter()
        .filter(|c| c.reused_from.is_some())
        .count();
    let whole = match (info.start_time, info.end_time) {
        (Some(s), Some(e)) => duration_text((e - s) as f64),
        (Some(_), None) => "still running".to_owned(),
        _ => "not started".to_owned(),
    };
    ui.strong(format!(
        "{} ({}) · {whole} in all{}",
        if pipeline { "Steps" } else { "Nested runs" },
        detail.children.len(),
        if reused > 0 {
            format!(" · {reused} reused")
        } else {
            String::new()
        }
    ));
    let mut open = None;
    egui::Grid::new("run-steps")
        .striped(true)
        .num_columns(4)
        .show(ui, |ui| {
            for heading in ["Step", "Status", "Reuse", "Duration"] {
                ui.weak(heading);
            }
            ui.end_row();
            for child in &detail.children {
                if ui.link(&child.name).on_hover_text(&child.run_id).clicked() {
                    open = Some(Navigate::Run(child.run_id.clone()));
                }
                ui.label(&child.status);
                match &child.reused_from {
                    Some(from) => {
                        if ui
                            .link("reused")
                            .on_hover_text(format!("Outputs of run {from}: open it"))
                            .clicked()
                        {
                            open = Some(Navigate::Run(from.clone()));
                        }
                    }
                    None => {
                        ui.label("ran");
                    }
                }
                ui.label(match (child.start_time, child.end_time) {
                    (Some(s), Some(e)) => duration_text((e - s) as f64),
                    (Some(_), None) => "running".to_owned(),
                    _ => String::new(),
                });
                ui.end_row();
            }
        });
    open
}

fn data_tag<'a>(detail: &'a RunDetail, key: &str) -> Option<&'a str> {
    detail
        .run
        .data
        .tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.as_str())
}

fn section_ui<'a>(ui: &mut egui::Ui, title: &str, rows: impl Iterator<Item = (&'a str, String)>) {
    ui.strong(title);
    egui::Grid::new(("run-section", title))
        .striped(true)
        .num_columns(2)
        .show(ui, |ui| {
            let mut any = false;
            for (key, value) in rows {
                any = true;
                ui.label(key);
                ui.label(value);
                ui.end_row();
            }
            if !any {
                ui.weak("none");
                ui.end_row();
            }
        });
}

fn preview_ui(ui: &mut egui::Ui, cache: &mut TrackingCache, path: &str, preview: &Arc<Preview>) {
    match preview.as_ref() {
        Preview::Text { text, truncated } => {
            egui::ScrollArea::both().auto_shrink(false).show(ui, |ui| {
                ui.add(egui::Label::new(egui::RichText::new(text).monospace()).extend());
                if *truncated {
                    ui.weak("… (the preview shows the first 256 KiB)");
                }
            });
        }
        Preview::Image(thumbnail) => {
            let texture = cache.textures.entry(path.to_owned()).or_insert_with(|| {
                let image = egui::ColorImage::from_rgba_unmultiplied(
                    [thumbnail.width as usize, thumbnail.height as usize],
                    &thumbnail.rgba,
                );
                ui.ctx().load_texture(
                    format!("artifact-{path}"),
                    image,
                    egui::TextureOptions::LINEAR,
                )
            });
            ui.image(&*texture);
        }
        Preview::Table {
            columns,
            rows,
            total_rows,
        } => {
            ui.weak(format!(
                "{} rows × {} columns (first {} shown)",
                format::count(*total_rows as i64),
                columns.len(),
                rows.len()
            ));
            egui::ScrollArea::both().auto_shrink(false).show(ui, |ui| {
                egui::Grid::new(("artifact-table", path))
                    .striped(true)
                    .show(ui, |ui| {
                        for c in columns {
                            ui.strong(c);
                        }
                        ui.end_row();
                        for row in rows {
                            for cell in row {
                                ui.label(cell.as_deref().unwrap_or(""));
                            }
                            ui.end_row();
                        }
                    });
            });
        }
        Preview::Binary { size_bytes } => {
            ui.weak(format!(
                "A binary file of {}; no preview.",
                format::bytes(*size_bytes as i64)
            ));
        }
    }
}
