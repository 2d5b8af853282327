//! The Monitoring section: monitors on the left with their last run and open alerts; on the
//! right the chosen monitor — per signal a chart of a metric over its windows with the
//! threshold and the windows that alerted, the features of a window sorted by drift, one
//! feature's distributions; its alerts to acknowledge with the actions they started; a
//! backtest with a threshold slider; what it does when it alerts (actions added and removed);
//! its YAML, edited in place.

use std::sync::Arc;

use egui::RichText;
use egui_plot::{HLine, Line, Plot, PlotPoints, Points};
use lathe_core::format;
use lathe_core::monitoring::actions::Action;
use lathe_core::monitoring::monitors::Alert;
use lathe_core::monitoring::ranking::Rank;
use lathe_core::monitoring::run::{BacktestWindow, SignalResult};
use lathe_core::monitoring::spec::{Signal, SignalKind};
use lathe_core::monitoring::{FeatureType, Metric};
use lathe_core::service::{MonitorCommand, MonitorEvent, MonitorList, MonitorView, Service};

use crate::drift_view;
use crate::loadable::{Loadable, ready_or_status_ui};
use crate::vocabulary::Navigate;

/// Runs shown on a monitor's charts.
const RUNS: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Tab {
    #[default]
    Signals,
    Alerts,
    Backtest,
    Actions,
    Yaml,
}

/// What the Actions tab's form adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ActionKind {
    #[default]
    Label,
    Pipeline,
    Webhook,
}

/// The Actions tab's form.
struct ActionForm {
    kind: ActionKind,
    project: String,
    rank: Rank,
    top: usize,
    pipeline: String,
    /// `INPUT=VALUE`, one a line.
    inputs: String,
    url: String,
    secret_env: String,
}

impl Default for ActionForm {
    fn default() -> Self {
        Self {
            kind: ActionKind::default(),
            project: String::new(),
            rank: Rank::Drift,
            top: 50,
            pipeline: String::new(),
            inputs: String::new(),
            url: String::new(),
            secret_env: String::new(),
        }
    }
}

#[derive(Default)]
pub struct MonitoringPanel {
    list: Option<Loadable<Arc<MonitorList>>>,
    selected: Option<String>,
    view: Option<Loadable<Arc<MonitorView>>>,
    tab: Tab,
    signal: Option<String>,
    metric: Option<Metric>,
    feature: Option<String>,
    /// The run whose features are shown (an index into the view's runs); the newest when
    /// `None`.
    run: Option<usize>,
    backtest: Option<(String, Loadable<Arc<Vec<BacktestWindow>>>)>,
    backtest_windows: usize,
    /// The threshold tried on the backtest.
    trial: Option<f64>,
    yaml: Option<(String, String)>,
    message: Option<Result<String, String>>,
    action: ActionForm,
}

impl MonitoringPanel {
    pub fn on_event(&mut self, event: MonitorEvent) {
        match event {
            MonitorEvent::Loaded(reply) => {
                if self.selected.is_none()
                    && let Ok(list) = &reply
                {
                    self.selected = list.monitors.first().map(|m| m.monitor.spec.name.clone());
                }
                self.list = Some(Loadable::from_reply(reply));
            }
            MonitorEvent::Opened { name, reply } => {
                if self.selected.as_deref() == Some(name.as_str()) {
                    self.view = Some(Loadable::from_reply(reply));
                }
            }
            MonitorEvent::Acknowledged(reply) => {
                self.message = Some(match reply {
                    Ok(n) => Ok(format!("Acknowledged {n} alert(s)")),
                    Err(e) => Err(format!("Not acknowledged: {e}")),
                });
                self.reload();
            }
            MonitorEvent::Ran { name, reply } => {
                self.message = Some(match reply {
                    Ok(o) if o.state == "completed" => Ok(format!(
                        "{name} ran: {} alert(s) opened, {} seen again",
                        o.opened.len(),
                        o.seen_again.len()
                    )),
                    Ok(o) => Err(format!("{name} ran and failed: {}", o.message)),
                    Err(e) => Err(format!("{name} did not run: {e}")),
                });
                self.reload();
            }
            MonitorEvent::Backtested { name, reply } => {
                self.backtest = Some((name, Loadable::from_reply(reply)));
            }
            MonitorEvent::Saved(reply) => {
                self.message = Some(match reply {
                    Ok(saved) => {
                        self.selected = Some(saved.monitor.spec.name.clone());
                        self.yaml = None;
                        let notes = if saved.notices.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", saved.notices.join("; "))
                        };
                        Ok(format!("Saved {}{notes}", saved.monitor.spec.name))
                    }
                    Err(e) => Err(e.to_string()),
                });
                self.reload();
            }
            MonitorEvent::ActionsChanged { monitor, reply } => {
                self.message = Some(match reply {
                    Ok(done) => {
                        // The next action starts from an empty form of the same kind.
                        self.action = ActionForm {
                            kind: self.action.kind,
                            ..ActionForm::default()
                        };
                        Ok(format!("{monitor}: {done}"))
                    }
                    Err(e) => Err(format!("{monitor}: {e}")),
                });
                self.view = None;
            }
            // Compare data answers the Data section.
            MonitorEvent::Compared { .. } => {}
        }
    }

    fn reload(&mut self) {
        self.list = None;
        self.view = None;
    }

    /// Monitors, runs or alerts changed (here, in the CLI, on a schedule): read again.
    pub fn changed(&mut self, service: &Service) {
        if self.list.is_some() {
            service.send(MonitorCommand::Load);
        }
        if let (Some(name), Some(_)) = (&self.selected, &self.view) {
            service.send(MonitorCommand::Open {
                name: name.clone(),
                runs: RUNS,
            });
        }
    }

    pub fn list_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        if self.list.is_none() {
            self.list = Some(Loadable::Loading);
            service.send(MonitorCommand::Load);
        }
        ui.add_space(4.0);
        ui.heading("Monitors");
        let Some(list) = ready_or_status_ui(ui, self.list.as_ref(), "monitors").cloned() else {
            return;
        };
        if list.monitors.is_empty() {
            ui.weak(
                "No monitors yet. Create one from Azure ML monitoring YAML with \
                 `lathe monitor create -f monitor.yml`, or with New monitor below.",
            );
        }
        let error = ui.visuals().error_fg_color;
        for m in &list.monitors {
            let name = &m.monitor.spec.name;
            let chosen = self.selected.as_deref() == Some(name.as_str());
            ui.horizontal(|ui| {
                if ui.selectable_label(chosen, name).clicked() && !chosen {
                    self.select(name);
                }
                if m.open_alerts > 0 {
                    ui.colored_label(error, format!("{} open", m.open_alerts));
                }
            });
            let last = match &m.last_run {
                Some((state, end)) => format!("last run {state}, window to {}", short_time(*end)),
                None => "not run yet".to_owned(),
            };
            let next = m.monitor.next_due_ms.map_or_else(
                || "no next run".to_owned(),
                |t| format!("next {}", short_time(t)),
            );
            ui.weak(format!("{last}; {next}"));
            ui.add_space(2.0);
        }
        ui.add_space(8.0);
        if ui.button("New monitor…").clicked() {
            self.tab = Tab::Yaml;
            self.yaml = Some((String::new(), TEMPLATE.to_owned()));
        }
        let open = list
            .alerts
            .iter()
            .filter(|a| a.acknowledged_at_ms.is_none())
            .count();
        ui.add_space(4.0);
        ui.weak(format!("{open} open alert(s) across all monitors"));
    }

    fn select(&mut self, name: &str) {
        self.selected = Some(name.to_owned());
        self.view = None;
        self.signal = None;
        self.metric = None;
        self.feature = None;
        self.run = None;
        self.trial = None;
        self.yaml = None;
    }

    pub fn main_ui(&mut self, ui: &mut egui::Ui, service: &Service) -> Option<Navigate> {
        if let Some(message) = &self.message {
            match message {
                Ok(m) => ui.label(m),
                Err(e) => ui.colored_label(ui.visuals().error_fg_color, e),
            };
        }
        if self.tab == Tab::Yaml && self.yaml.as_ref().is_some_and(|(name, _)| name.is_empty()) {
            self.yaml_ui(ui, service, None);
            return None;
        }
        let Some(name) = self.selected.clone() else {
            ui.weak("Choose a monitor on the left.");
            return None;
        };
        if self.view.is_none() {
            self.view = Some(Loadable::Loading);
            service.send(MonitorCommand::Open {
                name: name.clone(),
                runs: RUNS,
            });
        }
        let view = ready_or_status_ui(ui, self.view.as_ref(), "the monitor").cloned()?;
        header_ui(ui, &view);
        ui.horizontal(|ui| {
            if ui.button("Run now").clicked() {
                service.send(MonitorCommand::RunNow { name: name.clone() });
            }
            ui.separator();
            for (tab, label) in [
                (Tab::Signals, "Signals"),
                (Tab::Alerts, "Alerts"),
                (Tab::Backtest, "Backtest"),
                (Tab::Actions, "Actions"),
                (Tab::Yaml, "YAML"),
            ] {
                ui.selectable_value(&mut self.tab, tab, label);
            }
        });
        ui.separator();
        match self.tab {
            Tab::Signals => self.signals_ui(ui, &view),
            Tab::Alerts => return self.alerts_ui(ui, service, &name),
            Tab::Backtest => self.backtest_ui(ui, service, &view),
            Tab::Actions => self.actions_ui(ui, service, &view),
            Tab::Yaml => self.yaml_ui(ui, service, Some(&view)),
        }
        None
    }

    /// The signal, metric and feature chosen, defaulting to the first signal, its first
    /// thresholded metric, and the feature that moved most in the newest run.
    fn choose(&mut self, view: &MonitorView) -> Option<(Signal, Metric, String)> {
        let enabled: Vec<&Signal> = view
            .monitor
            .spec
            .signals
            .iter()
            .filter(|s| s.enabled)
            .collect();
        let signal = enabled
            .iter()
            .find(|s| Some(&s.name) == self.signal.as_ref())
            .or_else(|| enabled.first())
            .copied()?
            .clone();
        self.signal = Some(signal.name.clone());
        let metrics = metrics_of(view, &signal.name);
        let metric = self
            .metric
            .filter(|m| metrics.contains(m))
            .or_else(|| {
                signal
                    .thresholds
                    .numerical
                    .keys()
                    .chain(signal.thresholds.categorical.keys())
                    .chain(signal.performance.keys())
                    .find(|m| metrics.contains(m))
                    .copied()
            })
            .or_else(|| metrics.first().copied())?;
        self.metric = Some(metric);
        let newest = view
            .runs
            .last()
            .and_then(|r| r.signals.iter().find(|s| s.signal == signal.name));
        let features: Vec<String> = newest
            .map(|s| s.values.keys().cloned().collect())
            .unwrap_or_default();
        let feature = self
            .feature
            .clone()
            .filter(|f| features.contains(f))
            .or_else(|| {
                let s = newest?;
                let mut ranked: Vec<(&String, f64)> = s
                    .values
                    .iter()
                    .filter_map(|(f, v)| v.get(&metric).map(|x| (f, *x)))
                    .collect();
                ranked.sort_by(|a, b| {
                    if metric.alerts_below() {
                        a.1.total_cmp(&b.1)
                    } else {
                        b.1.total_cmp(&a.1)
                    }
                });
                ranked.first().map(|(f, _)| (*f).clone())
            })
            .unwrap_or_default();
        self.feature = Some(feature.clone());
        Some((signal, metric, feature))
    }

    fn signals_ui(&mut self, ui: &mut egui::Ui, view: &MonitorView) {
        if view.runs.is_empty() {
            ui.weak("No runs yet: press Run now, or wait for its next run.");
            return;
        }
        ui.horizontal_wrapped(|ui| {
            for s in &view.monitor.spec.signals {
                if s.enabled {
                    let chosen = self.signal.as_deref() == Some(s.name.as_str());
                    if ui
                        .selectable_label(chosen, format!("{} ({})", s.name, s.type_name))
                        .clicked()
                    {
                        self.signal = Some(s.name.clone());
                        self.metric = None;
                        self.feature = None;
                    }
                } else {
                    ui.weak(format!("{} ({})", s.name, s.type_name))
                        .on_hover_text("Kept from the YAML, not computed by Lathe");
                }
            }
        });
        let Some((signal, metric, feature)) = self.choose(view) else {
            ui.weak("This monitor has no signal Lathe computes.");
            return;
        };
        ui.horizontal(|ui| {
            let label = ui.label("Metric");
            egui::ComboBox::from_id_salt("monitor-metric")
                .selected_text(metric.name())
                .show_ui(ui, |ui| {
                    for m in metrics_of(view, &signal.name) {
                        if ui.selectable_label(m == metric, m.name()).clicked() {
                            self.metric = Some(m);
                        }
                    }
                })
                .response
                .labelled_by(label.id);
            if !feature.is_empty() {
                ui.label(format!("of {feature}"));
            }
        });
        let feature_type = view
            .runs
            .iter()
            .rev()
            .filter_map(|r| r.signals.iter().find(|s| s.signal == signal.name))
            .filter_map(|s| s.comparison.as_ref())
            .flat_map(|c| c.features.iter())
            .find(|f| f.name == feature)
            .map(|f| f.feature_type);
        let threshold = threshold_of(&signal, metric, feature_type);
        if let Some(clicked) = chart_ui(ui, view, &signal.name, metric, &feature, threshold) {
            self.run = Some(clicked);
        }
        let index = self
            .run
            .filter(|&i| i < view.runs.len())
            .unwrap_or(view.runs.len() - 1);
        let run = &view.runs[index];
        ui.horizontal_wrapped(|ui| {
            ui.strong(format!(
                "Window {} to {}",
                format::timestamp(run.window_start_ms / 1000),
                format::timestamp(run.window_end_ms / 1000)
            ));
            ui.weak(format!("run {}: {}", run.id, run.state));
        });
        let Some(result) = run.signals.iter().find(|s| s.signal == signal.name) else {
            ui.weak("This signal was not part of that run.");
            return;
        };
        signal_detail_ui(ui, result, &mut self.feature);
    }

    fn alerts_ui(&mut self, ui: &mut egui::Ui, service: &Service, name: &str) -> Option<Navigate> {
        let list = match &self.list {
            Some(Loadable::Ready(list)) => Arc::clone(list),
            _ => return None,
        };
        let alerts: Vec<&Alert> = list.alerts.iter().filter(|a| a.monitor == name).collect();
        if alerts.is_empty() {
            ui.weak("No alerts: no threshold of an alerting signal was crossed.");
            return None;
        }
        let open: Vec<i64> = alerts
            .iter()
            .filter(|a| a.acknowledged_at_ms.is_none())
            .map(|a| a.id)
            .collect();
        if !open.is_empty()
            && ui
                .button(format!("Acknowledge all {} open", open.len()))
                .clicked()
        {
            service.send(MonitorCommand::Acknowledge { ids: open });
        }
        let mut navigate = None;
        egui::ScrollArea::vertical()
            .id_salt("monitor-alerts")
            .show(ui, |ui| {
                for a in alerts {
                    ui.group(|ui| {
                        ui.horizontal_wrapped(|ui| {
                            let feature = if a.feature.is_empty() {
                                String::new()
                            } else {
                                format!(" · {}", a.feature)
                            };
                            let title = format!("{}{feature} · {}", a.signal, a.metric);
                            if a.acknowledged_at_ms.is_none() {
                                ui.colored_label(
                                    ui.visuals().error_fg_color,
                                    RichText::new(title).strong(),
                                );
                            } else {
                                ui.label(title);
                            }
                            ui.label(format!(
                                "{} against threshold {}",
                                drift_view::short(a.value),
                                drift_view::short(a.threshold)
                            ));
                        });
                        ui.weak(format!(
                            "{} window(s), {} to {}",
                            a.occurrences,
                            format::timestamp(a.window_start_ms / 1000),
                            format::timestamp(a.window_end_ms / 1000)
                        ));
                        match (&a.acknowledged_by, a.acknowledged_at_ms) {
                            (Some(by), Some(at)) => {
                                ui.weak(format!(
                                    "acknowledged by {by}, {}",
                                    format::timestamp(at / 1000)
                                ));
                            }
                            _ => {
                                if ui.button("Acknowledge").clicked() {
                                    service.send(MonitorCommand::Acknowledge { ids: vec![a.id] });
                                }
                            }
                        }
                        for action in &a.actions {
                            ui.horizontal_wrapped(|ui| {
                                let text =
                                    format!("{} {}: {}", action.kind, action.state, action.message);
                                if action.state == "failed" {
                                    ui.colored_label(ui.visuals().error_fg_color, text);
                                } else {
                                    ui.label(text);
                                }
                                if let Some(run) = &action.pipeline_run_id
                                    && ui.link("open the pipeline run").clicked()
                                {
                                    navigate = Some(Navigate::Run(run.clone()));
                                }
                                if let Some(project) = &action.labeling_project
                                    && action.state == "completed"
                                    && ui.link(format!("label them in {project}")).clicked()
                                {
                                    navigate = Some(Navigate::LabelingProject(project.clone()));
                                }
                            });
                        }
                    });
                }
            });
        navigate
    }

    /// What the monitor does when it alerts: its actions to remove, and a form to add one.
    fn actions_ui(&mut self, ui: &mut egui::Ui, service: &Service, view: &MonitorView) {
        let name = view.monitor.spec.name.clone();
        ui.strong("When it alerts");
        if view.actions.is_empty() {
            ui.weak("Nothing yet: alerts are only listed. Add an action below.");
        }
        for (id, what) in &view.actions {
            ui.horizontal(|ui| {
                ui.label(what);
                if ui.small_button("Remove").clicked() {
                    service.send(MonitorCommand::RemoveAction {
                        monitor: name.clone(),
                        id: *id,
                    });
                }
            });
        }
        ui.add_space(8.0);
        ui.separator();
        ui.strong("Add an action");
        let form = &mut self.action;
        ui.horizontal(|ui| {
            for (kind, label) in [
                (ActionKind::Label, "Send rows to labeling"),
                (ActionKind::Pipeline, "Run a pipeline"),
                (ActionKind::Webhook, "Call a webhook"),
            ] {
                ui.selectable_value(&mut form.kind, kind, label);
            }
        });
        let field = |ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str| {
            ui.horizontal(|ui| {
                let l = ui.label(label);
                ui.add(egui::TextEdit::singleline(text).hint_text(hint))
                    .labelled_by(l.id);
            });
        };
        let action = match form.kind {
            ActionKind::Label => {
                field(
                    ui,
                    "Project",
                    &mut form.project,
                    "a row_classification or row_value project",
                );
                ui.horizontal(|ui| {
                    let l = ui.label("Rank by");
                    egui::ComboBox::from_id_salt("action-rank")
                        .selected_text(form.rank.as_str())
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut form.rank, Rank::Drift, "drift");
                            ui.selectable_value(&mut form.rank, Rank::Confidence, "confidence");
                        })
                        .response
                        .labelled_by(l.id);
                    let l = ui.label("Top");
                    ui.add(egui::DragValue::new(&mut form.top).range(1..=10_000))
                        .labelled_by(l.id);
                });
                ui.weak(match form.rank {
                    Rank::Drift => "The window's rows in the bins that drifted most, first.",
                    Rank::Confidence => "The window's rows the model was least sure of, first.",
                });
                Action::Label {
                    project: form.project.trim().to_owned(),
                    rank: form.rank,
                    top: form.top,
                }
            }
            ActionKind::Pipeline => {
                field(ui, "Pipeline", &mut form.pipeline, "NAME:VERSION or a file");
                ui.label("Inputs, INPUT=VALUE a line ({window_start}, {window_end}, {monitor}, {production_data} are replaced)");
                ui.add(egui::TextEdit::multiline(&mut form.inputs).desired_rows(3));
                Action::Pipeline {
                    pipeline: form.pipeline.trim().to_owned(),
                    experiment: None,
                    inputs: form
                        .inputs
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .collect(),
                }
            }
            ActionKind::Webhook => {
                field(ui, "URL", &mut form.url, "https://hooks.example.com/alerts");
                field(
                    ui,
                    "Token variable",
                    &mut form.secret_env,
                    "an environment variable (optional)",
                );
                ui.weak(
                    "POSTs the new alerts as JSON (monitor, run, window, alerts); the variable's \
                     value goes as a bearer token and is never stored. https trusts the system's \
                     certificates, or those in SSL_CERT_FILE.",
                );
                Action::Webhook {
                    url: form.url.trim().to_owned(),
                    secret_env: Some(form.secret_env.trim().to_owned()).filter(|v| !v.is_empty()),
                    timeout_s: 10,
                    retries: 2,
                }
            }
        };
        if ui.button("Add action").clicked() {
            service.send(MonitorCommand::AddAction {
                monitor: name,
                action,
            });
        }
    }

    fn backtest_ui(&mut self, ui: &mut egui::Ui, service: &Service, view: &MonitorView) {
        let name = view.monitor.spec.name.clone();
        if self.backtest_windows == 0 {
            self.backtest_windows = 10;
        }
        ui.horizontal(|ui| {
            ui.label("Past windows");
            ui.add(egui::DragValue::new(&mut self.backtest_windows).range(1..=200));
            if ui.button("Backtest").clicked() {
                self.backtest = Some((name.clone(), Loadable::Loading));
                service.send(MonitorCommand::Backtest {
                    name: name.clone(),
                    windows: self.backtest_windows,
                });
            }
        });
        ui.weak("Runs this monitor over its past windows without recording anything, so a threshold can be chosen before alerts start.");
        let Some((for_monitor, state)) = &self.backtest else {
            return;
        };
        if *for_monitor != name {
            return;
        }
        let Some(windows) = ready_or_status_ui(ui, Some(state), "the backtest").cloned() else {
            return;
        };
        let Some((signal, metric, feature)) = self.choose(view) else {
            return;
        };
        let values: Vec<(i64, Option<f64>)> = windows
            .iter()
            .map(|w| {
                let v = w
                    .signals
                    .iter()
                    .find(|s| s.signal == signal.name)
                    .and_then(|s| s.values.get(&feature))
                    .and_then(|v| v.get(&metric))
                    .copied();
                (w.due_ms, v)
            })
            .collect();
        let largest = values.iter().filter_map(|(_, v)| *v).fold(0.0f64, f64::max);
        let configured = threshold_of(&signal, metric, None);
        let mut trial = self.trial.or(configured).unwrap_or(largest / 2.0);
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} of {} {}",
                metric.name(),
                signal.name,
                if feature.is_empty() {
                    String::new()
                } else {
                    format!("({feature})")
                }
            ));
        });
        let top = if metric.alerts_below() {
            1.0
        } else {
            (largest * 1.2).max(trial).max(1e-6)
        };
        ui.add(egui::Slider::new(&mut trial, 0.0..=top).text("threshold"));
        self.trial = Some(trial);
        let alerting: Vec<&(i64, Option<f64>)> = values
            .iter()
            .filter(|(_, v)| v.is_some_and(|x| metric.crosses(x, trial)))
            .collect();
        ui.label(format!(
            "At {}, {} of {} windows would alert{}",
            drift_view::short(trial),
            alerting.len(),
            values.len(),
            configured.map_or_else(String::new, |c| format!(
                " (the monitor's threshold is {})",
                drift_view::short(c)
            ))
        ));
        let points: Vec<[f64; 2]> = values
            .iter()
            .enumerate()
            .filter_map(|(i, (_, v))| v.map(|x| [i as f64, x]))
            .collect();
        let marked: Vec<[f64; 2]> = values
            .iter()
            .enumerate()
            .filter_map(|(i, (_, v))| {
                v.filter(|x| metric.crosses(*x, trial))
                    .map(|x| [i as f64, x])
            })
            .collect();
        let times: Vec<i64> = values.iter().map(|(t, _)| *t).collect();
        let error = ui.visuals().error_fg_color;
        Plot::new("backtest-chart")
            .height(200.0)
            .allow_zoom(false)
            .allow_drag(false)
            .allow_scroll(false)
            .x_axis_formatter(move |mark, _| time_label(&times, mark.value))
            .legend(egui_plot::Legend::default().position(egui_plot::Corner::LeftTop))
            .show(ui, |plot| {
                let color = egui::Color32::from_rgb(90, 140, 220);
                plot.line(Line::new("", PlotPoints::from(points)).color(color));
                plot.points(
                    Points::new("would alert", PlotPoints::from(marked))
                        .radius(5.0)
                        .color(error),
                );
                plot.hline(HLine::new("threshold", trial).color(error));
            });
        // Windows the signal could not be computed in (nothing collected yet, say): one line.
        let failed: Vec<(i64, String)> = windows
            .iter()
            .filter_map(|w| {
                let s = w.signals.iter().find(|s| s.signal == signal.name)?;
                s.problem.as_ref().map(|p| (w.due_ms, p.clone()))
            })
            .collect();
        if let (Some((first, reason)), Some((last, _))) = (failed.first(), failed.last()) {
            ui.weak(format!(
                "{} of {} windows (ending {} to {}) have no value: {reason}",
                failed.len(),
                windows.len(),
                short_time(*first),
                short_time(*last)
            ));
        }
    }

    fn yaml_ui(&mut self, ui: &mut egui::Ui, service: &Service, view: Option<&MonitorView>) {
        let name = view
            .map(|v| v.monitor.spec.name.clone())
            .unwrap_or_default();
        if self.yaml.as_ref().is_none_or(|(n, _)| *n != name) {
            let text = view.map_or_else(|| TEMPLATE.to_owned(), |v| v.monitor.spec.to_yaml());
            self.yaml = Some((name.clone(), text));
        }
        let Some((_, text)) = &mut self.yaml else {
            return;
        };
        ui.weak(if name.is_empty() {
            "A new monitor, in Azure ML's monitoring schedule YAML. Save checks every field."
                .to_owned()
        } else {
            format!("{name} as Azure ML monitoring schedule YAML; Save replaces it.")
        });
        if let Some(v) = view
            && !v.actions.is_empty()
        {
            let what: Vec<&str> = v.actions.iter().map(|(_, a)| a.as_str()).collect();
            ui.weak(format!("When it alerts: {} (see Actions)", what.join("; ")));
        }
        let save = ui.button("Save").clicked();
        egui::ScrollArea::vertical()
            .id_salt("monitor-yaml")
            .show(ui, |ui| {
                ui.add(
                    egui::TextEdit::multiline(text)
                        .code_editor()
                        .desired_width(f32::INFINITY)
                        .desired_rows(24),
                );
            });
        if save {
            service.send(MonitorCommand::Save {
                yaml: text.clone(),
                replace: !name.is_empty(),
            });
        }
    }
}

/// A new monitor's starting point: the out-of-box monitor of the demo's endpoint.
const TEMPLATE: &str = "$schema: http://azureml/sdk-2-0/Schedule.json
name: my-monitor
trigger:
  type: recurrence
  frequency: day
  interval: 1
  schedule:
    hours: 3
    minutes: 15
create_monitor:
  monitoring_target:
    ml_task: classification
    endpoint_deployment_id: azureml:churn:blue
";

fn header_ui(ui: &mut egui::Ui, view: &MonitorView) {
    let m = &view.monitor;
    ui.horizontal_wrapped(|ui| {
        ui.heading(&m.spec.name);
        if let Some(t) = &m.spec.target {
            ui.label(format!("watches {}:{}", t.endpoint, t.deployment));
        }
        ui.weak(format!(
            "{}; next run {}",
            if m.enabled { "enabled" } else { "disabled" },
            m.next_due_ms
                .map_or_else(|| "never".to_owned(), |t| format::timestamp(t / 1000))
        ));
    });
    if let Some(d) = &m.spec.description {
        ui.weak(d);
    }
}

/// "05:12" today, else the date too.
fn short_time(ms: i64) -> String {
    let full = format::timestamp(ms / 1000);
    let today = format::timestamp(lathe_core::db::now_millis() / 1000);
    if full.get(..10) == today.get(..10) {
        full.get(11..16).unwrap_or(&full).to_owned()
    } else {
        full
    }
}

/// The time of window `i` on a chart's axis.
fn time_label(times: &[i64], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    times
        .get(i as usize)
        .map(|t| short_time(*t))
        .unwrap_or_default()
}

/// Every metric a signal reported in any run.
fn metrics_of(view: &MonitorView, signal: &str) -> Vec<Metric> {
    let mut out: Vec<Metric> = view
        .runs
        .iter()
        .filter_map(|r| r.signals.iter().find(|s| s.signal == signal))
        .flat_map(|s| s.values.values().flat_map(|v| v.keys().copied()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The signal's threshold on `metric` for a feature of `feature_type` (either type when not
/// known).
fn threshold_of(signal: &Signal, metric: Metric, feature_type: Option<FeatureType>) -> Option<f64> {
    if signal.kind == Some(SignalKind::ModelPerformance) {
        return signal.performance.get(&metric).copied();
    }
    match feature_type {
        Some(t) => signal.thresholds.for_type(t).get(&metric).copied(),
        None => signal
            .thresholds
            .numerical
            .get(&metric)
            .or_else(|| signal.thresholds.categorical.get(&metric))
            .copied(),
    }
}

/// The metric of `feature` over the runs, the threshold, and the windows that crossed it.
/// Returns the run clicked.
fn chart_ui(
    ui: &mut egui::Ui,
    view: &MonitorView,
    signal: &str,
    metric: Metric,
    feature: &str,
    threshold: Option<f64>,
) -> Option<usize> {
    let mut points = Vec::new();
    let mut alerted = Vec::new();
    for (i, r) in view.runs.iter().enumerate() {
        let Some(s) = r.signals.iter().find(|s| s.signal == signal) else {
            continue;
        };
        if let Some(x) = s.values.get(feature).and_then(|v| v.get(&metric)) {
            points.push([i as f64, *x]);
            if s.crossings
                .iter()
                .any(|c| c.feature == feature && c.metric == metric)
            {
                alerted.push([i as f64, *x]);
            }
        }
    }
    let times: Vec<i64> = view.runs.iter().map(|r| r.window_end_ms).collect();
    let error = ui.visuals().error_fg_color;
    let response = Plot::new(("monitor-chart", signal, metric.name(), feature))
        .height(200.0)
        .include_y(0.0)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        // Top left: the newest windows, on the right, stay visible.
        .legend(egui_plot::Legend::default().position(egui_plot::Corner::LeftTop))
        .y_axis_formatter(|mark, _| drift_view::short(mark.value))
        .x_axis_formatter(move |mark, _| time_label(&times, mark.value))
        .show(ui, |plot| {
            // Unnamed, so the legend holds only what needs saying: the threshold, crossings.
            let color = egui::Color32::from_rgb(90, 140, 220);
            plot.line(Line::new("", PlotPoints::from(points.clone())).color(color));
            plot.points(
                Points::new("", PlotPoints::from(points))
                    .radius(3.0)
                    .color(color),
            );
            if !alerted.is_empty() {
                plot.points(
                    Points::new("crossed", PlotPoints::from(alerted))
                        .radius(6.0)
                        .color(error),
                );
            }
            if let Some(t) = threshold {
                plot.hline(
                    HLine::new(format!("threshold {}", drift_view::short(t)), t).color(error),
                );
            }
            plot.pointer_coordinate()
        });
    if response.response.clicked()
        && let Some(at) = response.inner
    {
        let i = at.x.round();
        if i >= 0.0 && (i as usize) < view.runs.len() {
            return Some(i as usize);
        }
    }
    None
}

/// One signal's result in one window: a drift or quality signal's features and the chosen
/// feature's distributions; a performance signal's figures.
fn signal_detail_ui(ui: &mut egui::Ui, result: &SignalResult, feature: &mut Option<String>) {
    if let Some(problem) = &result.problem {
        ui.colored_label(
            ui.visuals().error_fg_color,
            format!("Not computed: {problem}"),
        );
        return;
    }
    ui.weak(format!(
        "{} against {}",
        result.production, result.reference
    ));
    if let Some(share) = result.share_of_drifted_features {
        ui.label(format!("{:.0}% of the features drifted", share * 100.0));
    }
    match &result.comparison {
        Some(comparison) => {
            drift_view::feature_table_ui(
                ui,
                comparison,
                &result.crossings,
                feature,
                &result.signal,
            );
            if let Some(f) = feature
                .as_ref()
                .and_then(|name| comparison.features.iter().find(|f| &f.name == name))
            {
                ui.add_space(6.0);
                drift_view::distribution_ui(ui, f, &result.signal);
            }
        }
        None => {
            for (metric, value) in result
                .values
                .get("")
                .map(|v| v.iter().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                let crossed = result.crossings.iter().any(|c| c.metric == *metric);
                let text =
                    RichText::new(format!("{} {}", metric.name(), drift_view::short(*value)));
                ui.label(if crossed {
                    text.color(ui.visuals().error_fg_color)
                } else {
                    text
                });
            }
        }
    }
}
