//! The Experiments section: experiments on the left; on the right their runs (a filter box that
//! takes MLflow's syntax and shows its errors inline, column choice, sorting), one run in
//! detail, the checked runs compared, or the tracking server runs are pushed to and pulled
//! from.

use std::sync::Arc;

use lathe_core::service::{Changes, Service, TrackingCommand, TrackingEvent};
use lathe_core::tracking::types::Experiment;

use crate::compare_view::CompareView;
use crate::loadable::{Loadable, ready_or_status_ui};
use crate::remote_view::RemoteView;
use crate::run_view::RunView;
use crate::runs_table::{RunsTable, TableAction};
use crate::tracking_cache::TrackingCache;
use crate::vocabulary::Navigate;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum View {
    #[default]
    Runs,
    Run(String),
    Compare,
    Remote,
}

#[derive(Default)]
pub struct ExperimentsPanel {
    experiments: Loadable<Arc<Vec<Experiment>>>,
    requested: bool,
    selected: Vec<String>,
    filter: String,
    /// The request whose answer the table shows or waits for.
    shown: Option<(Vec<String>, String)>,
    loading: bool,
    /// When (egui time) the shown runs were last asked for, to read them again while scripts log.
    asked_at: f64,
    filter_error: Option<String>,
    table: RunsTable,
    view: View,
    run_view: RunView,
    compare: CompareView,
    remote: RemoteView,
    pub cache: TrackingCache,
}

impl ExperimentsPanel {
    pub fn on_event(&mut self, event: TrackingEvent) -> Option<TrackingEvent> {
        let event = self.cache.on_event(event)?;
        let event = self.remote.on_event(event)?;
        match event {
            TrackingEvent::Experiments(reply) => {
                self.experiments = Loadable::from_reply(reply);
                if let Loadable::Ready(list) = &self.experiments
                    && self.selected.is_empty()
                {
                    // Start on the newest experiment that has a name other than Default.
                    if let Some(first) = list
                        .iter()
                        .find(|e| e.experiment_id != "0")
                        .or(list.first())
                    {
                        self.selected = vec![first.experiment_id.clone()];
                    }
                }
            }
            TrackingEvent::Runs {
                experiment_ids,
                filter,
                reply,
            } => {
                if self.shown.as_ref() != Some(&(experiment_ids, filter)) {
                    return None;
                }
                self.loading = false;
                match reply {
                    Ok(table) => {
                        self.filter_error = None;
                        self.table.set(table);
                    }
                    Err(e) => self.filter_error = Some(e.to_string()),
                }
            }
            other => return Some(other),
        }
        None
    }

    /// Opens a run's detail (from elsewhere, e.g. a model version's lineage).
    pub fn open_run(&mut self, run_id: &str) {
        self.view = View::Run(run_id.to_owned());
    }

    fn refresh(&mut self) {
        self.cache.clear();
        self.requested = false;
        self.shown = None;
    }

    /// Asks for the runs of the chosen experiments and filter, unless they are already shown;
    /// `now` is the egui time, which the live refresh counts from.
    fn request_runs(&mut self, service: &Service, now: f64) {
        if self.selected.is_empty() {
            return;
        }
        let key = (self.selected.clone(), self.filter.trim().to_owned());
        if self.shown.as_ref() == Some(&key) {
            return;
        }
        self.shown = Some(key.clone());
        self.loading = true;
        self.asked_at = now;
        service.send(TrackingCommand::LoadRuns {
            experiment_ids: key.0,
            filter: key.1,
        });
    }

    /// Experiments or runs changed elsewhere (a script logging, the CLI, a pipeline): the list,
    /// the shown runs and the running runs a view shows are read again, what is on screen
    /// staying until the new answers arrive.
    pub fn tracking_changed(&mut self, changes: Changes, service: &Service) {
        if changes.experiments {
            service.send(TrackingCommand::LoadExperiments);
        }
        if (changes.runs || changes.experiments)
            && !self.loading
            && let Some((experiment_ids, filter)) = self.shown.clone()
        {
            self.loading = true;
            service.send(TrackingCommand::LoadRuns {
                experiment_ids,
                filter,
            });
        }
        if changes.runs {
            self.cache.runs_changed(service);
        }
    }

    /// Reads a modest table again every few seconds, so runs a script is logging show up and
    /// move; the table on screen stays until the new one arrives.
    fn refresh_live(&mut self, ui: &egui::Ui, service: &Service) {
        const EVERY_SECS: f64 = 5.0;
        const LIVE_RUNS: usize = 10_000;
        let Some((experiment_ids, filter)) = self.shown.clone() else {
            return;
        };
        if self.loading || self.table.table.runs.len() > LIVE_RUNS {
            return;
        }
        let now = ui.input(|i| i.time);
        if now - self.asked_at >= EVERY_SECS {
            self.asked_at = now;
            service.send(TrackingCommand::LoadRuns {
                experiment_ids,
                filter,
            });
        }
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_secs_f64(EVERY_SECS));
    }

    pub fn list_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        if !self.requested {
            self.requested = true;
            service.send(TrackingCommand::LoadExperiments);
        }
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.heading("Experiments");
            if ui.small_button("⟳").on_hover_text("Refresh").clicked() {
                self.refresh();
            }
        });
        let server = ui
            .add(egui::Button::new("⬆⬇ Tracking server").selected(self.view == View::Remote))
            .on_hover_text("Push runs to an MLflow tracking server, or pull its runs here");
        if server.clicked() {
            self.open_remote();
        }
        let Some(list) = ready_or_status_ui(ui, Some(&self.experiments), "experiments").cloned()
        else {
            return;
        };
        ui.weak("Ctrl+click to pick several");
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                for e in list.iter() {
                    let selected = self.selected.contains(&e.experiment_id);
                    let response = ui
                        .selectable_label(selected, &e.name)
                        .on_hover_text(format!("id {} · {}", e.experiment_id, e.artifact_location));
                    if response.clicked() {
                        let add = ui.input(|i| i.modifiers.command);
                        if add && selected && self.selected.len() > 1 {
                            self.selected.retain(|id| *id != e.experiment_id);
                        } else if add {
                            self.selected.push(e.experiment_id.clone());
                        } else {
                            self.selected = vec![e.experiment_id.clone()];
                        }
                        self.view = View::Runs;
                    }
                }
            });
    }

    /// Shows the tracking server, with the selected experiments named for a push or pull.
    fn open_remote(&mut self) {
        let names: Vec<String> = match &self.experiments {
            Loadable::Ready(list) => list
                .iter()
                .filter(|e| self.selected.contains(&e.experiment_id))
                .map(|e| e.name.clone())
                .collect(),
            _ => Vec::new(),
        };
        self.remote.open(&names);
        self.view = View::Remote;
    }

    pub fn main_ui(&mut self, ui: &mut egui::Ui, service: &Service) -> Option<Navigate> {
        if self.view == View::Remote {
            if ui.button("⬅ Runs").clicked() {
                self.view = View::Runs;
            }
            self.remote.ui(ui, service);
            return None;
        }
        if self.selected.is_empty() {
            ui.weak(match &self.experiments {
                Loadable::Ready(_) => "No experiments yet. Point an MLflow client at the tracking server shown at the top and log a run, or pull runs from a team's server (⬆⬇ Tracking server).",
                _ => "",
            });
            return None;
        }
        self.request_runs(service, ui.input(|i| i.time));
        match self.view.clone() {
            View::Runs => {
                self.refresh_live(ui, service);
                self.toolbar_ui(ui, service);
                match self.table.ui(ui) {
                    Some(TableAction::Open(run_id)) => self.view = View::Run(run_id),
                    Some(TableAction::Toggle(run_id)) => self.table.toggle(&run_id),
                    None => {}
                }
                None
            }
            View::Run(run_id) => {
                if ui.button("⬅ Runs").clicked() {
                    self.view = View::Runs;
                }
                self.run_view.ui(ui, service, &mut self.cache, &run_id)
            }
            View::Remote => None,
            View::Compare => {
                if ui.button("⬅ Runs").clicked() {
                    self.view = View::Runs;
                }
                let table = Arc::clone(&self.table.table);
                let runs: Vec<_> = table
                    .runs
                    .iter()
                    .filter(|r| self.table.checked.contains(&r.run_id))
                    .collect();
                self.compare.ui(ui, service, &mut self.cache, &table, &runs);
                None
            }
        }
    }

    fn toolbar_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        ui.horizontal(|ui| {
            let response = ui.add(
                egui::TextEdit::singleline(&mut self.filter)
                    .hint_text("metrics.rmse < 1 and params.model = 'tree'")
                    .desired_width((ui.available_width() - 330.0).max(200.0)),
            );
            let entered = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui.button("Search").clicked() || entered {
                self.shown = None;
                self.request_runs(service, ui.input(|i| i.time));
            }
            self.table.columns_menu_ui(ui);
            let checked = self.table.checked.len();
            let compare = ui.add_enabled(
                checked >= 2,
                egui::Button::new(format!("Compare ({checked})")),
            );
            if compare
                .on_disabled_hover_text("Tick two or more runs to compare them")
                .clicked()
            {
                self.view = View::Compare;
            }
            if ui.button("⟳").on_hover_text("Reload the runs").clicked() {
                self.cache.clear();
                self.shown = None;
                self.request_runs(service, ui.input(|i| i.time));
            }
        });
        if let Some(error) = &self.filter_error {
            ui.colored_label(ui.visuals().error_fg_color, format!("⚠ {error}"));
        }
        ui.horizontal(|ui| {
            if self.loading {
                ui.spinner();
                ui.weak("Loading runs…");
            } else {
                let runs = &self.table.table.runs;
                let nested = runs.iter().filter(|r| r.parent_run_id.is_some()).count();
                ui.weak(if nested > 0 {
                    format!(
                        "{} runs, {} of them steps or trials nested under another",
                        lathe_core::format::count(runs.len() as i64),
                        lathe_core::format::count(nested as i64)
                    )
                } else {
                    format!("{} runs", lathe_core::format::count(runs.len() as i64))
                });
            }
        });
    }
}
