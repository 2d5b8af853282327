//! The whole window: a top bar with the sections (Data, Experiments, Models) and import actions,
//! the chosen section, and a status bar with running jobs and messages. It routes service events
//! to the panels, moves between sections when a view links elsewhere, and turns dropped files
//! into imports.

use std::path::PathBuf;

use lathe_core::format;
use lathe_core::service::{DataCommand, DataEvent, Event, Failure, PipelineEvent, Service};

use crate::data_panel::DataPanel;
use crate::designer::DesignerPanel;
use crate::endpoints_panel::EndpointsPanel;
use crate::experiments_panel::ExperimentsPanel;
use crate::import_dialog::ImportDialog;
use crate::labeling_panel::LabelingPanel;
use crate::models_panel::ModelsPanel;
use crate::monitoring_panel::MonitoringPanel;
use crate::status_bar::{Message, status_bar_ui};
use crate::vocabulary::{Navigate, Section, ShellRequest};

pub struct Workbench {
    service: Service,
    section: Section,
    tracking_uri: Option<String>,
    data: DataPanel,
    experiments: ExperimentsPanel,
    models: ModelsPanel,
    designer: DesignerPanel,
    labeling: LabelingPanel,
    endpoints: EndpointsPanel,
    monitoring: MonitoringPanel,
    imports: ImportDialog,
    messages: Vec<Message>,
    requests: Vec<ShellRequest>,
}

impl Workbench {
    pub fn new(service: Service) -> Self {
        service.send(DataCommand::LoadAssets);
        let designer = DesignerPanel::new(service.root().to_path_buf());
        Self {
            service,
            section: Section::default(),
            tracking_uri: None,
            data: DataPanel::default(),
            experiments: ExperimentsPanel::default(),
            models: ModelsPanel::default(),
            designer,
            labeling: LabelingPanel::default(),
            endpoints: EndpointsPanel::default(),
            monitoring: MonitoringPanel::default(),
            imports: ImportDialog::default(),
            messages: Vec::new(),
            requests: Vec::new(),
        }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The pipeline in the designer.
    pub fn designed_pipeline(&self) -> &lathe_core::pipeline::job::Pipeline {
        self.designer.pipeline()
    }

    /// A label file (or folder) to start a project from (from the shell's file dialog).
    pub fn offer_label_file(&mut self, path: PathBuf) {
        self.section = Section::Labeling;
        self.labeling.offer_label_file(path);
    }

    /// Exports the open labeling project to `path` (from the shell's save dialog).
    pub fn export_labels(&mut self, path: PathBuf) {
        self.labeling.export_to(&self.service, path);
    }

    /// Shows the labeling project `name` in the annotator.
    pub fn open_label_project(&mut self, name: &str) {
        self.section = Section::Labeling;
        self.labeling.select(name);
    }

    /// Opens a pipeline YAML in the designer (from the shell's file dialog).
    pub fn open_pipeline(&mut self, path: PathBuf) {
        self.section = Section::Pipelines;
        self.designer.open_file(&self.service, path);
    }

    /// Exports the designer's pipeline to `path` (from the shell's save dialog).
    pub fn export_pipeline(&mut self, path: PathBuf) {
        self.designer.export_to(&self.service, path);
    }

    /// Where the tracking server that runs beside the window listens, to show to the user.
    pub fn set_tracking_uri(&mut self, uri: Option<String>) {
        self.tracking_uri = uri;
    }

    pub fn show_section(&mut self, section: Section) {
        self.section = section;
    }

    /// Files or folders to import, from a file dialog or a drop: the import window opens with them.
    pub fn offer_paths(&mut self, paths: Vec<PathBuf>) {
        self.imports.offer(paths);
    }

    /// Shows an error from the shell (a dialog that failed, say) in the status bar.
    pub fn report_error(&mut self, message: String) {
        self.messages.push(Message::Error(message));
    }

    /// Requests made since the last call, for the shell to carry out.
    pub fn take_requests(&mut self) -> Vec<ShellRequest> {
        std::mem::take(&mut self.requests)
    }

    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.take_events(&ctx);
        self.take_input(&ctx);
        for request in self.imports.ui(&ctx) {
            self.service.send(DataCommand::Import(request));
        }

        egui::Panel::top("top-bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("Lathe");
                ui.separator();
                for (section, label) in [
                    (Section::Data, "Data"),
                    (Section::Experiments, "Experiments"),
                    (Section::Models, "Models"),
                    (Section::Labeling, "Labeling"),
                    (Section::Pipelines, "Pipelines"),
                    (Section::Endpoints, "Endpoints"),
                    (Section::Monitoring, "Monitoring"),
                ] {
                    if ui
                        .selectable_value(&mut self.section, section, label)
                        .clicked()
                        && section == Section::Labeling
                    {
                        // Projects may have been made from the CLI meanwhile.
                        self.labeling.reload_projects();
                    }
                }
                ui.separator();
                // One menu for both imports keeps the bar narrow enough for 1,024 px and the
                // sections still to come.
                ui.menu_button("Import…", |ui| {
                    if ui.button("Files…  (Ctrl+O)").clicked() {
                        self.requests.push(ShellRequest::PickFiles);
                        ui.close();
                    }
                    if ui.button("Folder…  (Ctrl+Shift+O)").clicked() {
                        self.requests.push(ShellRequest::PickFolder);
                        ui.close();
                    }
                });
                // The tracking URI and the workspace, right-aligned, in whatever room is left:
                // shortened rather than drawn over the sections.
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if let Some(uri) = &self.tracking_uri {
                        let short = uri.trim_start_matches("http://");
                        if ui
                            .add(egui::Button::new(format!("MLflow {short}")).truncate())
                            .on_hover_text(format!(
                                "The tracking server runs while Lathe is open: MLflow clients log \
                                 here with MLFLOW_TRACKING_URI={uri}. Click to copy it."
                            ))
                            .clicked()
                        {
                            ui.ctx().copy_text(format!("MLFLOW_TRACKING_URI={uri}"));
                        }
                    }
                    let root = self.service.root().display().to_string();
                    ui.add(egui::Label::new(egui::RichText::new(&root).weak()).truncate())
                        .on_hover_text(format!("Workspace folder: {root}"));
                });
            });
        });
        let jobs = self.service.jobs();
        egui::Panel::bottom("status-bar").show(ui, |ui| {
            ui.add_space(2.0);
            if let Some(job) = status_bar_ui(ui, &jobs, &mut self.messages) {
                self.service.cancel(job);
            }
            ui.add_space(2.0);
        });
        let navigate = match self.section {
            Section::Data => {
                egui::Panel::left("asset-list")
                    .resizable(true)
                    .default_size(240.0)
                    .show(ui, |ui| self.data.asset_list_ui(ui, &self.service));
                egui::CentralPanel::default().show(ui, |ui| self.data.main_ui(ui, &self.service));
                None
            }
            Section::Experiments => {
                egui::Panel::left("experiment-list")
                    .resizable(true)
                    .default_size(220.0)
                    .show(ui, |ui| self.experiments.list_ui(ui, &self.service));
                egui::CentralPanel::default()
                    .show(ui, |ui| self.experiments.main_ui(ui, &self.service))
                    .inner
            }
            Section::Labeling => {
                egui::Panel::left("label-projects")
                    .resizable(true)
                    .default_size(230.0)
                    .show(ui, |ui| {
                        self.labeling.list_ui(ui, &self.service, &mut self.requests);
                    });
                egui::CentralPanel::default()
                    .show(ui, |ui| self.labeling.main_ui(ui, &self.service));
                None
            }
            Section::Pipelines => {
                egui::Panel::top("designer-toolbar").show(ui, |ui| {
                    self.designer.toolbar_ui(
                        ui,
                        &self.service,
                        self.tracking_uri.as_deref(),
                        &mut self.requests,
                    );
                });
                egui::Panel::left("designer-palette")
                    .resizable(true)
                    .default_size(230.0)
                    .show(ui, |ui| self.designer.palette_ui(ui, &self.service));
                let navigate = egui::Panel::right("designer-inspector")
                    .resizable(true)
                    .default_size(320.0)
                    .show(ui, |ui| self.designer.inspector_ui(ui))
                    .inner;
                egui::CentralPanel::default()
                    .frame(egui::Frame::NONE)
                    .show(ui, |ui| self.designer.canvas_ui(ui));
                navigate
            }
            Section::Endpoints => {
                egui::Panel::left("endpoint-list")
                    .resizable(true)
                    .default_size(240.0)
                    .show(ui, |ui| self.endpoints.list_ui(ui, &self.service));
                egui::CentralPanel::default()
                    .show(ui, |ui| {
                        // Its grids are wider than a narrow window; they scroll rather than clip.
                        egui::ScrollArea::both()
                            .auto_shrink(false)
                            .show(ui, |ui| self.endpoints.main_ui(ui, &self.service))
                            .inner
                    })
                    .inner
            }
            Section::Monitoring => {
                egui::Panel::left("monitor-list")
                    .resizable(true)
                    .default_size(240.0)
                    .show(ui, |ui| self.monitoring.list_ui(ui, &self.service));
                egui::CentralPanel::default()
                    .show(ui, |ui| {
                        egui::ScrollArea::vertical()
                            .auto_shrink(false)
                            .show(ui, |ui| self.monitoring.main_ui(ui, &self.service))
                            .inner
                    })
                    .inner
            }
            Section::Models => {
                egui::Panel::left("model-list")
                    .resizable(true)
                    .default_size(240.0)
                    .show(ui, |ui| self.models.list_ui(ui, &self.service));
                egui::CentralPanel::default()
                    .show(ui, |ui| {
                        // A version's gates, history and policy editor can run past the window.
                        egui::ScrollArea::vertical()
                            .auto_shrink(false)
                            .show(ui, |ui| self.models.main_ui(ui, &self.service))
                            .inner
                    })
                    .inner
            }
        };
        match navigate {
            Some(Navigate::Asset(name, version)) => {
                self.section = Section::Data;
                self.data.select_number(&name, version);
            }
            Some(Navigate::Run(run_id)) => {
                self.section = Section::Experiments;
                self.experiments.open_run(&run_id);
            }
            Some(Navigate::Model(name)) => {
                self.section = Section::Models;
                self.models.select(&name);
            }
            Some(Navigate::Endpoint(name)) => {
                self.section = Section::Endpoints;
                self.endpoints.select(&name);
            }
            Some(Navigate::LabelingProject(name)) => {
                self.section = Section::Labeling;
                self.labeling.select(&name);
            }
            None => {}
        }

        if !jobs.is_empty() {
            // Progress moves without events; redraw a few times a second while work runs.
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    /// Someone changed the workspace — this window, the CLI, another window, a script through
    /// the tracking server: every list showing what changed is read again.
    fn workspace_changed(&mut self, changes: lathe_core::service::Changes) {
        if changes.assets {
            self.data.assets_changed(&self.service);
        }
        if changes.experiments || changes.runs {
            self.experiments.tracking_changed(changes, &self.service);
        }
        if changes.models {
            self.models.models_changed(&self.service);
        }
        if changes.labeling {
            self.labeling.labels_changed(&self.service);
        }
        if changes.endpoints {
            self.endpoints.endpoints_changed(&self.service);
        }
        if changes.batch {
            self.endpoints.batch_changed(&self.service);
        }
        if changes.monitoring {
            self.monitoring.changed(&self.service);
        }
        if changes.datastores {
            self.data.datastores.changed(&self.service);
        }
        if changes.pipelines || changes.assets || changes.models {
            self.designer.palette_changed(&self.service);
        }
    }

    fn take_events(&mut self, ctx: &egui::Context) {
        for event in self.service.poll() {
            // Each domain's events go to the panels that show it; what none of them takes
            // (the import's result, a schedule's run) is told in the message bar.
            match event {
                Event::Data(event) => {
                    if let Some(event) = self.data.on_event(event, ctx) {
                        self.data_told(event);
                    }
                }
                Event::Tracking(event) => {
                    let _ = self
                        .experiments
                        .on_event(event)
                        .and_then(|e| self.models.on_event(e));
                }
                Event::Labeling(event) => {
                    let _ = self.labeling.on_event(event, ctx);
                }
                Event::Pipelines(event) => {
                    if let Some(event) = self.designer.on_event(event) {
                        self.pipelines_told(&event);
                    }
                }
                Event::Promotion(event) => self.models.on_promotion(event),
                Event::Endpoints(event) => {
                    // A deployment made from the Models section is told there too.
                    if let lathe_core::service::EndpointEvent::Deployed(reply) = &event {
                        self.models.deployed(reply);
                    }
                    self.endpoints.on_event(event);
                }
                Event::Monitoring(lathe_core::service::MonitorEvent::Compared {
                    reference,
                    current,
                    reply,
                }) => self.data.on_compared(reference, current, reply),
                Event::Monitoring(event) => self.monitoring.on_event(event),
                Event::Datastores(event) => self.data.datastores.on_event(event, &self.service),
                Event::Changed(changes) => self.workspace_changed(changes),
                Event::Failed { task, error } => {
                    self.messages.push(Message::Error(format!(
                        "{task} stopped on a fault in Lathe ({error}); the rest goes on"
                    )));
                }
            }
        }
    }

    /// A schedule's run, told in the message bar.
    fn pipelines_told(&mut self, event: &PipelineEvent) {
        if let PipelineEvent::ScheduledRun { schedule, reply } = event {
            self.messages.push(match reply {
                Ok(o) if o.succeeded() => Message::Info(format!(
                    "Schedule {} ran {}: run {} finished",
                    schedule.id, schedule.pipeline, o.run_id
                )),
                Ok(o) => Message::Error(format!(
                    "Schedule {} ran {}: run {} {}",
                    schedule.id,
                    schedule.pipeline,
                    o.run_id,
                    o.status.word()
                )),
                Err(e) => Message::Error(format!("Schedule {} did not run: {e}", schedule.id)),
            });
        }
    }

    /// An import's result, told in the message bar; a new version is selected.
    fn data_told(&mut self, event: DataEvent) {
        let DataEvent::Imported { request, reply } = event else {
            return;
        };
        match reply {
            Ok(outcome) => {
                let v = &outcome.version;
                let text = if outcome.created {
                    format!(
                        "Imported {} ({} {})",
                        v.reference(),
                        format::count(v.item_count),
                        v.kind.items_word()
                    )
                } else {
                    format!(
                        "{} already holds this content; nothing new was stored",
                        v.reference()
                    )
                };
                self.messages.push(Message::Info(text));
                self.data.select(&v.asset_name, Some(v.id));
            }
            Err(Failure::Cancelled) => {
                self.messages.push(Message::Info(format!(
                    "Import of {} cancelled; nothing was stored",
                    request.name
                )));
            }
            Err(e) => self.messages.push(Message::Error(format!(
                "Import of {} failed: {e}",
                request.name
            ))),
        }
    }

    fn take_input(&mut self, ctx: &egui::Context) {
        let (dropped, pick_files, pick_folder) = ctx.input_mut(|i| {
            let dropped: Vec<PathBuf> = i
                .raw
                .dropped_files
                .drain(..)
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            let folder = i.consume_key(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::O,
            );
            let files = i.consume_key(egui::Modifiers::COMMAND, egui::Key::O);
            (dropped, files, folder)
        });
        if !dropped.is_empty() {
            self.imports.offer(dropped);
        }
        if pick_files {
            self.requests.push(ShellRequest::PickFiles);
        }
        if pick_folder {
            self.requests.push(ShellRequest::PickFolder);
        }
        let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
        if hovering && !self.imports.is_open() {
            let painter = ctx.layer_painter(egui::LayerId::new(
                egui::Order::Foreground,
                egui::Id::unique("drop-hint"),
            ));
            let rect = ctx.content_rect();
            painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "Drop to import",
                egui::FontId::proportional(28.0),
                egui::Color32::WHITE,
            );
        }
    }
}
