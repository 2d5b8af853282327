//! The Endpoints section: online and batch endpoints on the left. For a batch endpoint, see
//! [`batch`]. For an online one, on the right the chosen endpoint's
//! scoring URI and key, its deployments with their model and state, the traffic split as
//! sliders applied at once, and a Test tab that sends a request (built from the model's
//! signature, or written by hand) to the live endpoint and shows the answer and its latency;
//! below, the data it collected and Replay ([`replay`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use egui::RichText;
use lathe_core::service::{
    EndpointCommand, EndpointEvent, EndpointView, Service, TestAnswer, request_template,
};

use crate::loadable::{Loadable, ready_or_status_ui};
use crate::vocabulary::Navigate;

mod batch;
mod replay;

type Views = Arc<Vec<EndpointView>>;

#[derive(Default)]
pub struct EndpointsPanel {
    endpoints: Option<Loadable<Views>>,
    selected: Option<String>,
    /// The split being edited for the selected endpoint, until applied.
    traffic: Option<(String, BTreeMap<String, u32>)>,
    /// The request being written, and which deployment it goes to (the split when `None`).
    request: Option<(String, String)>,
    target: Option<String>,
    answer: Option<Loadable<Arc<TestAnswer>>>,
    message: Option<Result<String, String>>,
    show_key: bool,
    replay: replay::ReplayPanel,
    batch: batch::BatchPanel,
    /// The batch endpoint shown, instead of an online one.
    batch_selected: Option<String>,
}

impl EndpointsPanel {
    pub fn on_event(&mut self, event: EndpointEvent) {
        match event {
            EndpointEvent::Loaded(reply) => {
                if self.selected.is_none()
                    && let Ok(list) = &reply
                {
                    self.selected = list.first().map(|v| v.endpoint.spec.name.clone());
                }
                self.endpoints = Some(Loadable::from_reply(reply));
            }
            EndpointEvent::TrafficSet(reply) => {
                self.message = Some(match reply {
                    Ok(e) => {
                        self.traffic = None;
                        Ok(format!("Traffic of {} applied", e.spec.name))
                    }
                    Err(e) => Err(format!("Traffic not changed: {e}")),
                });
                self.endpoints = None;
            }
            EndpointEvent::Deployed(reply) => {
                if let Ok(made) = &reply {
                    self.selected = Some(made.0.spec.name.clone());
                    self.traffic = None;
                    self.request = None;
                    self.answer = None;
                }
                self.endpoints = None;
            }
            EndpointEvent::Tested { endpoint, reply } => {
                if self.selected.as_deref() == Some(endpoint.as_str()) {
                    self.answer = Some(Loadable::from_reply(reply));
                }
            }
            EndpointEvent::Replayed { endpoint, reply } => {
                self.replay.on_replayed(&endpoint, reply);
            }
            EndpointEvent::CollectionLimitsSet { endpoint, reply } => {
                self.replay.on_limits_set(&endpoint, reply);
                self.endpoints = None;
            }
            batch => self.batch.on_event(batch),
        }
    }

    /// Opens `name` (a link from another section).
    pub fn select(&mut self, name: &str) {
        self.selected = Some(name.to_owned());
        self.batch_selected = None;
        self.traffic = None;
        self.request = None;
        self.answer = None;
    }

    /// Endpoints changed elsewhere (or their state did): read again, shown as they are meanwhile.
    pub fn endpoints_changed(&mut self, service: &Service) {
        if self.endpoints.is_some() {
            service.send(EndpointCommand::Load);
        }
    }

    /// Batch endpoints or their jobs changed (a running job's counts too).
    pub fn batch_changed(&mut self, service: &Service) {
        self.batch.changed(service);
    }

    pub fn list_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        if self.endpoints.is_none() {
            self.endpoints = Some(Loadable::Loading);
            service.send(EndpointCommand::Load);
        }
        ui.add_space(4.0);
        ui.heading("Endpoints");
        ui.strong("Online");
        self.online_list_ui(ui);
        ui.add_space(8.0);
        ui.strong("Batch");
        let Some(views) =
            ready_or_status_ui(ui, self.batch.views(service), "batch endpoints").cloned()
        else {
            return;
        };
        if views.endpoints.is_empty() {
            ui.weak(
                "No batch endpoints. Create one from Azure ML YAML: `lathe batch-endpoint create -f endpoint.yml`, then `lathe batch-deployment create -f deployment.yml`.",
            );
        }
        if let Some(name) = batch::list_ui(ui, &views, self.batch_selected.as_deref()) {
            self.batch_selected = Some(name);
        }
        // With no online endpoint to show, the first batch one is shown.
        let no_online = matches!(&self.endpoints, Some(Loadable::Ready(v)) if v.is_empty());
        if no_online && self.batch_selected.is_none() {
            self.batch_selected = views
                .endpoints
                .first()
                .map(|v| v.endpoint.spec.name.clone());
        }
    }

    fn online_list_ui(&mut self, ui: &mut egui::Ui) {
        let Some(views) = ready_or_status_ui(ui, self.endpoints.as_ref(), "endpoints").cloned()
        else {
            return;
        };
        if views.is_empty() {
            ui.weak(
                "No online endpoints. Create one from Azure ML YAML: `lathe online-endpoint create -f endpoint.yml`, then `lathe online-deployment create -f blue.yml --all-traffic`.",
            );
            return;
        }
        for view in views.iter() {
            let name = &view.endpoint.spec.name;
            let ready = view
                .deployments
                .iter()
                .filter(|(d, _)| d.state == "ready")
                .count();
            let label = format!("{name}  ·  {ready}/{} ready", view.deployments.len());
            let chosen = self.batch_selected.is_none() && self.selected.as_ref() == Some(name);
            if ui.selectable_label(chosen, label).clicked() {
                self.selected = Some(name.clone());
                self.batch_selected = None;
                self.traffic = None;
                self.request = None;
                self.answer = None;
                self.target = None;
            }
        }
    }

    pub fn main_ui(&mut self, ui: &mut egui::Ui, service: &Service) -> Option<Navigate> {
        if let Some(name) = self.batch_selected.clone() {
            return self.batch.main_ui(ui, service, &name);
        }
        self.online_ui(ui, service);
        None
    }

    fn online_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        let Some(Loadable::Ready(views)) = &self.endpoints else {
            return;
        };
        let views = Arc::clone(views);
        let Some(view) = views
            .iter()
            .find(|v| Some(&v.endpoint.spec.name) == self.selected.as_ref())
        else {
            ui.weak("Choose an endpoint on the left.");
            return;
        };
        let e = &view.endpoint;
        ui.heading(&e.spec.name);
        if !e.spec.description.is_empty() {
            ui.label(&e.spec.description);
        }
        ui.horizontal_wrapped(|ui| {
            ui.label("Scoring URI");
            ui.monospace(e.scoring_uri());
            if ui.small_button("Copy").clicked() {
                ui.ctx().copy_text(e.scoring_uri());
            }
        });
        if e.key_required {
            ui.horizontal_wrapped(|ui| {
                ui.label("Key");
                if self.show_key {
                    ui.monospace(&e.keys[0]);
                } else {
                    ui.monospace("••••••••");
                }
                if ui
                    .small_button(if self.show_key { "Hide" } else { "Show" })
                    .clicked()
                {
                    self.show_key = !self.show_key;
                }
                if ui.small_button("Copy").clicked() {
                    ui.ctx().copy_text(e.keys[0].clone());
                }
            });
        } else {
            ui.weak("No key on loopback (auth_mode: key asks for one everywhere).");
        }
        if let Some(message) = &self.message {
            match message {
                Ok(text) => ui.label(RichText::new(text).color(ui.visuals().hyperlink_color)),
                Err(text) => ui.colored_label(ui.visuals().error_fg_color, text),
            };
        }
        ui.separator();
        self.deployments_ui(ui, service, view);
        logs_ui(ui, view);
        ui.separator();
        health_ui(ui, view);
        ui.separator();
        self.test_ui(ui, service, view);
        ui.separator();
        self.replay.ui(ui, service, view);
    }

    fn deployments_ui(&mut self, ui: &mut egui::Ui, service: &Service, view: &EndpointView) {
        let e = &view.endpoint;
        if view.deployments.is_empty() {
            ui.weak(format!(
                "No deployments yet: `lathe online-deployment create -f blue.yml --all-traffic` (endpoint_name: {}).",
                e.spec.name
            ));
            return;
        }
        let name = e.spec.name.clone();
        if self.traffic.as_ref().is_none_or(|(n, _)| *n != name) {
            let mut split: BTreeMap<String, u32> = view
                .deployments
                .iter()
                .map(|(d, _)| (d.spec.name.clone(), 0))
                .collect();
            split.extend(e.spec.traffic.clone());
            self.traffic = Some((name.clone(), split));
        }
        let Some((_, split)) = &mut self.traffic else {
            return;
        };
        ui.strong("Deployments");
        egui::Grid::new("deployments")
            .striped(true)
            .num_columns(4)
            .show(ui, |ui| {
                for title in ["Deployment", "Model", "State", "Traffic %"] {
                    ui.strong(title);
                }
                ui.end_row();
                for (d, _) in &view.deployments {
                    let label = ui.label(&d.spec.name);
                    ui.label(format!("{}:{}", d.model_name, d.model_version));
                    let color = match d.state.as_str() {
                        "ready" => egui::Color32::from_rgb(60, 160, 80),
                        "failed" => ui.visuals().error_fg_color,
                        _ => ui.visuals().weak_text_color(),
                    };
                    ui.label(RichText::new(&d.state).color(color))
                        .on_hover_text(if d.message.is_empty() {
                            "—"
                        } else {
                            &d.message
                        });
                    if let Some(share) = split.get_mut(&d.spec.name) {
                        // Named by its deployment, for screen readers (and the tests).
                        ui.horizontal(|ui| {
                            ui.add(egui::Slider::new(share, 0..=100).show_value(false))
                                .labelled_by(label.id);
                            ui.label(format!("{share}%"));
                        });
                    }
                    ui.end_row();
                }
            });
        for (d, _) in view
            .deployments
            .iter()
            .filter(|(d, _)| !d.message.is_empty())
        {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("{}: {}", d.spec.name, d.message),
            );
        }
        let total: u32 = split.values().sum();
        let changed = *split
            != view
                .deployments
                .iter()
                .map(|(d, _)| {
                    (
                        d.spec.name.clone(),
                        e.spec.traffic.get(&d.spec.name).copied().unwrap_or(0),
                    )
                })
                .collect::<BTreeMap<_, _>>();
        ui.horizontal(|ui| {
            let apply = ui
                .add_enabled(total == 100 && changed, egui::Button::new("Apply traffic"))
                .on_disabled_hover_text(if total == 100 {
                    "Move a slider first".to_owned()
                } else {
                    format!("The split sums to {total}%; it must sum to 100%")
                });
            if apply.clicked() {
                let traffic = split
                    .iter()
                    .filter(|(_, s)| **s > 0)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                service.send(EndpointCommand::SetTraffic {
                    endpoint: name.clone(),
                    traffic,
                });
            }
            if total != 100 {
                ui.colored_label(ui.visuals().error_fg_color, format!("sums to {total}%"));
            }
        });
    }

    fn test_ui(&mut self, ui: &mut egui::Ui, service: &Service, view: &EndpointView) {
        ui.strong("Test");
        let name = view.endpoint.spec.name.clone();
        let inputs = view
            .deployments
            .iter()
            .find(|(d, _)| Some(&d.spec.name) == self.target.as_ref())
            .or(view.deployments.first())
            .map(|(_, inputs)| inputs.clone())
            .unwrap_or_default();
        if self.request.as_ref().is_none_or(|(n, _)| *n != name) {
            self.request = Some((name.clone(), request_template(&inputs)));
        }
        let send_to = ui
            .horizontal(|ui| {
                let send_to = ui.label("Send to");
                egui::ComboBox::from_id_salt("test-target")
                    .selected_text(self.target.as_deref().unwrap_or("the traffic split"))
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut self.target, None, "the traffic split");
                        for (d, _) in &view.deployments {
                            ui.selectable_value(
                                &mut self.target,
                                Some(d.spec.name.clone()),
                                &d.spec.name,
                            );
                        }
                    })
                    .response
                    .labelled_by(send_to.id);
                if ui.button("Send").clicked()
                    && let Some((_, body)) = &self.request
                {
                    self.answer = Some(Loadable::Loading);
                    service.send(EndpointCommand::Test {
                        endpoint: name.clone(),
                        deployment: self.target.clone(),
                        body: body.clone(),
                    });
                }
                if ui.button("Reset request").clicked() {
                    self.request = Some((name.clone(), request_template(&inputs)));
                }
                send_to.id
            })
            .inner;
        if let Some((_, body)) = &mut self.request {
            let editor = ui.add(
                egui::TextEdit::multiline(body)
                    .code_editor()
                    .desired_rows(4)
                    .desired_width(f32::INFINITY),
            );
            editor.labelled_by(send_to);
        }
        if self.answer.is_none() {
            return;
        }
        if let Some(answer) = ready_or_status_ui(ui, self.answer.as_ref(), "the answer") {
            let ok = (200..300).contains(&answer.status);
            let color = if ok {
                egui::Color32::from_rgb(60, 160, 80)
            } else {
                ui.visuals().error_fg_color
            };
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(format!("HTTP {}", answer.status))
                        .color(color)
                        .strong(),
                );
                ui.label(format!("{:.1} ms", answer.latency_ms));
                if !answer.deployment.is_empty() {
                    ui.weak(format!("answered by {}", answer.deployment));
                }
            });
            ui.add(egui::Label::new(RichText::new(&answer.body).monospace()).wrap());
        }
    }
}

/// Each deployment's last hour: requests per second and p99 latency over time, and the totals.
fn health_ui(ui: &mut egui::Ui, view: &EndpointView) {
    ui.strong("Health, last hour");
    if view.health.is_empty() {
        ui.weak("No requests in the last hour (points are written every ten seconds while the endpoint serves).");
        return;
    }
    let summary = lathe_core::endpoints::health_summary(&view.health);
    egui::Grid::new("health")
        .striped(true)
        .num_columns(6)
        .show(ui, |ui| {
            for title in [
                "Deployment",
                "Requests",
                "Per second",
                "Errors",
                "p50 / p95 / p99 ms (worst window)",
                "",
            ] {
                ui.strong(title);
            }
            ui.end_row();
            for (d, h) in &summary {
                ui.label(d);
                ui.label(h.requests.to_string());
                ui.label(format!("{:.1}", h.throughput()));
                let errors = RichText::new(h.errors.to_string());
                ui.label(if h.errors > 0 {
                    errors.color(ui.visuals().error_fg_color)
                } else {
                    errors
                });
                ui.label(format!(
                    "{:.2} / {:.2} / {:.2}",
                    h.p50_ms, h.p95_ms, h.p99_ms
                ));
                ui.end_row();
            }
        });
    let start = view.health.first().map_or(0, |p| p.at_ms);
    ui.columns(2, |columns| {
        for (column, (title, value)) in columns.iter_mut().zip([
            (
                "requests per second",
                (|p: &lathe_core::endpoints::HealthPoint| p.throughput()) as fn(&_) -> f64,
            ),
            ("p99 latency, ms", |p| p.p99_ms),
        ]) {
            column.weak(title);
            egui_plot::Plot::new(("health", title))
                .height(120.0)
                .legend(egui_plot::Legend::default())
                .x_axis_label("seconds ago")
                .show(column, |plot| {
                    let now = view.health.last().map_or(start, |p| p.at_ms);
                    for d in summary.keys() {
                        let points: egui_plot::PlotPoints = view
                            .health
                            .iter()
                            .filter(|p| &p.deployment == d)
                            .map(|p| [(p.at_ms - now) as f64 / 1000.0, value(p)])
                            .collect();
                        // Points, not a line: a window without requests writes none, and a line
                        // would draw traffic across the gap.
                        plot.points(egui_plot::Points::new(d.clone(), points).radius(2.5));
                    }
                });
        }
    });
}

/// Each deployment's last log lines: its model loaded (or why not), failed answers.
fn logs_ui(ui: &mut egui::Ui, view: &EndpointView) {
    egui::CollapsingHeader::new("Logs")
        .id_salt(("endpoint-logs", &view.endpoint.spec.name))
        .show(ui, |ui| {
            for (deployment, lines) in &view.logs {
                ui.strong(deployment);
                if lines.is_empty() {
                    ui.weak(
                        "Nothing yet: it is logged once the window or `lathe server` serves it.",
                    );
                }
                for (at, line) in lines {
                    ui.horizontal_wrapped(|ui| {
                        ui.weak(lathe_core::format::timestamp(at / 1000));
                        ui.add(egui::Label::new(RichText::new(line).monospace()).wrap());
                    });
                }
            }
        });
}
