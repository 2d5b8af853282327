//! The Endpoints section's collected data and Replay: the windows each deployment collected
//! (rows, and the data asset version a passed window became) and how much of it is kept, and
//! a deployment's collected requests replayed against another deployment or a model version,
//! with the report.

use std::sync::Arc;

use egui::RichText;
use lathe_core::collection::Limits;
use lathe_core::replay::Report;
use lathe_core::service::{EndpointCommand, EndpointView, Reply, Service};

use crate::loadable::{Loadable, ready_or_status_ui};

/// How many of the newest collected requests a replay sends.
const LIMIT: usize = 1000;

#[derive(Default)]
pub struct ReplayPanel {
    /// The endpoint the choices below belong to.
    endpoint: String,
    from: Option<String>,
    /// A deployment's name, or a model version `NAME:VERSION`.
    to: String,
    report: Option<Loadable<Arc<Report>>>,
    /// The collection limits being edited: days and MiB as typed (empty: no limit).
    days: String,
    mib: String,
    /// What became of the last change of limits.
    limits_message: Option<Result<String, String>>,
}

impl ReplayPanel {
    pub fn on_replayed(&mut self, endpoint: &str, reply: Reply<Report>) {
        if endpoint == self.endpoint {
            self.report = Some(Loadable::from_reply(reply));
        }
    }

    pub fn on_limits_set(&mut self, endpoint: &str, reply: Reply<Limits>) {
        if endpoint == self.endpoint {
            self.limits_message = Some(match reply {
                Ok(limits) => Ok(format!("Collected data: {}", limits.describe())),
                Err(e) => Err(format!("Limits not changed: {e}")),
            });
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, service: &Service, view: &EndpointView) {
        let name = &view.endpoint.spec.name;
        if self.endpoint != *name {
            *self = Self {
                endpoint: name.clone(),
                days: view
                    .limits
                    .retention_days
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                mib: view
                    .limits
                    .max_bytes
                    .map(|b| (b >> 20).to_string())
                    .unwrap_or_default(),
                ..Self::default()
            };
        }
        collected_ui(ui, view);
        self.limits_ui(ui, service, view);
        ui.separator();
        ui.strong("Replay collected requests");
        let names: Vec<&String> = view.deployments.iter().map(|(d, _)| &d.spec.name).collect();
        let collecting: Vec<&String> = names
            .iter()
            .copied()
            .filter(|n| view.collected.iter().any(|w| &w.deployment == *n))
            .collect();
        if collecting.is_empty() {
            ui.weak(
                "Replay sends a deployment's collected requests to another deployment or a model \
                 version and compares the answers. No deployment has collected requests yet.",
            );
            return;
        }
        if self.from.as_ref().is_none_or(|f| !collecting.contains(&f)) {
            self.from = collecting.first().map(|f| (*f).clone());
        }
        ui.horizontal_wrapped(|ui| {
            let from = ui.label("Requests of");
            egui::ComboBox::from_id_salt("replay-from")
                .selected_text(self.from.as_deref().unwrap_or_default())
                .show_ui(ui, |ui| {
                    for n in &collecting {
                        ui.selectable_value(&mut self.from, Some((*n).clone()), n.as_str());
                    }
                })
                .response
                .labelled_by(from.id);
            let to = ui.label("to");
            egui::ComboBox::from_id_salt("replay-to")
                .selected_text(if self.to.is_empty() {
                    "choose a deployment"
                } else {
                    &self.to
                })
                .show_ui(ui, |ui| {
                    for n in names.iter().filter(|n| Some(**n) != self.from.as_ref()) {
                        ui.selectable_value(&mut self.to, (*n).clone(), n.as_str());
                    }
                })
                .response
                .labelled_by(to.id);
            let model = ui.label("or model");
            ui.add(
                egui::TextEdit::singleline(&mut self.to)
                    .hint_text("NAME:VERSION")
                    .desired_width(160.0),
            )
            .labelled_by(model.id);
            let ready = self.from.is_some() && !self.to.trim().is_empty();
            if ui
                .add_enabled(ready, egui::Button::new("Replay"))
                .on_hover_text(format!("Sends the newest {LIMIT} collected requests"))
                .clicked()
                && let Some(from) = &self.from
            {
                self.report = Some(Loadable::Loading);
                service.send(EndpointCommand::Replay {
                    endpoint: self.endpoint.clone(),
                    from: from.clone(),
                    to: self.to.trim().to_owned(),
                    limit: LIMIT,
                });
            }
        });
        if self.report.is_some()
            && let Some(report) = ready_or_status_ui(ui, self.report.as_ref(), "the replay")
        {
            report_ui(ui, report);
        }
    }
}

impl ReplayPanel {
    /// Retention and size cap of the endpoint's collected data, applied together.
    fn limits_ui(&mut self, ui: &mut egui::Ui, service: &Service, view: &EndpointView) {
        ui.horizontal_wrapped(|ui| {
            let keep = ui.label("Keep windows");
            ui.add(
                egui::TextEdit::singleline(&mut self.days)
                    .desired_width(48.0)
                    .hint_text("all"),
            )
            .labelled_by(keep.id);
            let days = ui.label("days, at most");
            ui.add(
                egui::TextEdit::singleline(&mut self.mib)
                    .desired_width(64.0)
                    .hint_text("any"),
            )
            .labelled_by(days.id);
            ui.label("MiB");
            if ui.button("Apply limits").clicked() {
                match self.limits() {
                    Ok(limits) => service.send(EndpointCommand::SetCollectionLimits {
                        endpoint: view.endpoint.spec.name.clone(),
                        limits,
                    }),
                    Err(e) => self.limits_message = Some(Err(e)),
                }
            }
        })
        .response
        .on_hover_text(
            "Windows that ended longer ago than this, then the oldest past the size, are \
             removed with their data asset versions; the newest window of each asset stays. \
             Empty keeps everything.",
        );
        match &self.limits_message {
            Some(Ok(m)) => {
                ui.label(m);
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            None => {}
        }
    }

    /// The limits as typed; a field that is not a whole number is named.
    fn limits(&self) -> Result<Limits, String> {
        let whole = |what: &str, text: &str| -> Result<Option<u64>, String> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse()
                .map(Some)
                .map_err(|_| format!("{what}: '{text}' is not a whole number"))
        };
        let days = whole("Days", &self.days)?;
        Ok(Limits {
            retention_days: days
                .map(|d| u32::try_from(d).map_err(|_| format!("Days: {d} is too many")))
                .transpose()?,
            max_bytes: whole("MiB", &self.mib)?.map(|m| m.saturating_mul(1 << 20)),
        })
    }
}

fn collected_ui(ui: &mut egui::Ui, view: &EndpointView) {
    ui.strong("Collected data");
    if view.collected.is_empty() {
        let collecting = view
            .deployments
            .iter()
            .any(|(d, _)| d.spec.data_collector.is_some());
        ui.weak(if collecting {
            "Nothing collected yet: each window of requests becomes a data asset version once \
             it has passed (an hour unless the data_collector's rolling_rate says otherwise)."
        } else {
            "Nothing collected. A deployment collects its requests when its YAML has a \
             data_collector with model_inputs and model_outputs enabled."
        });
        return;
    }
    egui::Grid::new(("collected", &view.endpoint.spec.name))
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for heading in ["Deployment", "Kind", "Window from", "Rows", "Data asset"] {
                ui.strong(heading);
            }
            ui.end_row();
            for w in view.collected.iter().take(12) {
                ui.label(&w.deployment);
                ui.label(w.kind.trim_start_matches("model_"));
                ui.label(lathe_core::format::timestamp(w.start_ms / 1000));
                ui.label(w.rows.to_string());
                match &w.asset {
                    Some(asset) => ui.monospace(asset),
                    None => ui.weak("window open"),
                };
                ui.end_row();
            }
        });
}

fn report_ui(ui: &mut egui::Ui, report: &Report) {
    let share = report.identical_share * 100.0;
    let color = if report.identical == report.rows && report.failed == 0 {
        egui::Color32::from_rgb(60, 160, 80)
    } else {
        ui.visuals().warn_fg_color
    };
    ui.label(
        RichText::new(format!(
            "{share:.1}% identical: {} of {} rows, {} requests of {} to {}",
            report.identical, report.rows, report.requests, report.from, report.to
        ))
        .color(color)
        .strong(),
    );
    for (before, after, rows) in &report.flips {
        ui.label(format!("{before} became {after}: {rows} row(s)"));
    }
    if let Some(d) = report.largest_difference {
        ui.label(format!("Largest numeric difference: {d:.6}"));
    }
    if report.failed > 0 {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!(
                "{} request(s) failed; first: {}",
                report.failed,
                report.first_failure.as_deref().unwrap_or_default()
            ),
        );
    }
    ui.weak(format!(
        "Latency p50/p99: {} {:.2}/{:.2} ms as served, {} {:.2}/{:.2} ms now",
        report.from,
        report.from_latency.p50_ms,
        report.from_latency.p99_ms,
        report.to,
        report.to_latency.p50_ms,
        report.to_latency.p99_ms
    ));
}
