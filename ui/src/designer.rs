//! The pipeline designer: a palette (built-in and registered components, data assets) to drag
//! onto a canvas, ports to connect, an inspector that edits the selected step's parameters with
//! validation, a list of what stops the pipeline from running (click to go to the node), a run
//! with live status and logs per node, undo and redo, and saving (versioned), opening, importing
//! and exporting Azure ML pipeline YAML.

mod canvas;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use egui::RichText;
use lathe_core::pipeline::builtin;
use lathe_core::pipeline::component::Component;
use lathe_core::pipeline::design::{self, Issue};
use lathe_core::pipeline::executor::{Event as RunEvent, StepStatus};
use lathe_core::pipeline::job::{Binding, Pipeline, StepSource};
use lathe_core::service::{
    Opened, Palette, PipelineCommand, PipelineEvent, PipelineSource, Service,
};

use crate::history::History;
use crate::loadable::Loadable;
use crate::vocabulary::{Navigate, ShellRequest};
use canvas::{Action, Canvas};

/// Something dragged from the palette.
#[derive(Debug, Clone)]
pub enum PaletteItem {
    Component {
        source: StepSource,
        component: Box<Component>,
        origin: PathBuf,
    },
    Asset(String),
}

/// Lines of a step's log kept for the inspector.
const LOG_LINES: usize = 500;

pub struct DesignerPanel {
    pipeline: Pipeline,
    base: PathBuf,
    title: String,
    save_name: String,
    history: History<Pipeline>,
    selected: Option<String>,
    /// `None` until asked for (and again after a save, to list the new version).
    palette: Option<Loadable<Arc<Palette>>>,
    /// The parameter being typed into, so one edit of a field is one undo step.
    editing: Option<(String, String)>,
    search: String,
    canvas: Canvas,
    focus: Option<String>,
    status: BTreeMap<String, (StepStatus, Option<String>)>,
    logs: BTreeMap<String, Vec<String>>,
    running: bool,
    run_id: Option<String>,
    message: Option<Result<String, String>>,
    /// The version last saved here, which a schedule runs.
    saved: Option<(String, i64)>,
    cron: String,
    /// A pipeline to open on the next frame (the service is not at hand in `on_event`).
    pending_open: Option<PipelineSource>,
    /// Fit the view to the nodes on the next frame (after opening or arranging).
    fit: bool,
}

impl DesignerPanel {
    pub fn new(workspace: PathBuf) -> Self {
        let mut pipeline = design::empty("New pipeline");
        pipeline.experiment_name = Some("designer".into());
        Self {
            pipeline,
            base: workspace,
            title: "New pipeline".into(),
            save_name: "new-pipeline".into(),
            history: History::with_limit(200),
            selected: None,
            palette: None,
            editing: None,
            search: String::new(),
            canvas: Canvas::default(),
            focus: None,
            status: BTreeMap::new(),
            logs: BTreeMap::new(),
            running: false,
            run_id: None,
            message: None,
            saved: None,
            cron: "0 3 * * *".into(),
            pending_open: None,
            fit: false,
        }
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Opens a pipeline file (from the shell's file dialog).
    pub fn open_file(&mut self, service: &Service, path: PathBuf) {
        service.send(PipelineCommand::Open(PipelineSource::File(path)));
    }

    /// Exports to a path the shell's save dialog chose.
    pub fn export_to(&mut self, service: &Service, path: PathBuf) {
        service.send(PipelineCommand::Export {
            pipeline: self.pipeline.clone(),
            path,
        });
    }

    pub fn on_event(&mut self, event: PipelineEvent) -> Option<PipelineEvent> {
        match event {
            PipelineEvent::Palette(reply) => {
                // A fresh designer opens the newest saved pipeline rather than an empty canvas.
                let untouched = !self.history.can_undo() && self.pipeline.steps.is_empty();
                if let (true, Ok(palette)) = (untouched, &reply)
                    && let Some(newest) = palette.saved.iter().max_by_key(|s| s.created_at)
                {
                    self.pending_open = Some(PipelineSource::Saved {
                        name: newest.name.clone(),
                        version: newest.version,
                    });
                }
                self.palette = Some(Loadable::from_reply(reply));
            }
            PipelineEvent::Opened(Ok(opened)) => self.load(&opened),
            PipelineEvent::Opened(Err(e)) => self.message = Some(Err(e.to_string())),
            PipelineEvent::Saved(Ok(saved)) => {
                self.message = Some(Ok(format!("Saved {}:{}", saved.0, saved.1)));
                self.saved = Some((*saved).clone());
                self.palette = None;
            }
            PipelineEvent::ScheduleAdded(reply) => {
                self.message = Some(match reply {
                    Ok(s) => Ok(format!(
                        "Schedule {}: {} on \"{}\" (UTC) while Lathe runs",
                        s.id, s.pipeline, s.cron
                    )),
                    Err(e) => Err(format!("Not scheduled: {e}")),
                });
            }
            PipelineEvent::Saved(Err(e)) => self.message = Some(Err(format!("Not saved: {e}"))),
            PipelineEvent::Exported(Ok(path)) => {
                self.message = Some(Ok(format!("Exported to {}", path.display())));
            }
            PipelineEvent::Exported(Err(e)) => {
                self.message = Some(Err(format!("Not exported: {e}")));
            }
            PipelineEvent::Progress(event) => self.on_progress(event),
            PipelineEvent::Finished(reply) => {
                self.running = false;
                self.message = Some(match reply {
                    Ok(outcome) => {
                        let text = format!(
                            "Run {}: {} — {} step(s), {} reused",
                            outcome.run_id,
                            outcome.status.word(),
                            outcome.steps.len(),
                            outcome.reused()
                        );
                        if outcome.succeeded() {
                            Ok(text)
                        } else {
                            Err(text)
                        }
                    }
                    Err(e) => Err(format!("The run did not start: {e}")),
                });
            }
            other => return Some(other),
        }
        None
    }

    fn on_progress(&mut self, event: RunEvent) {
        match event {
            RunEvent::Started { run_id, .. } => self.run_id = Some(run_id),
            RunEvent::Step {
                step,
                status,
                run_id,
            } => {
                self.status.insert(step, (status, run_id));
            }
            RunEvent::Log { step, line } => {
                let lines = self.logs.entry(step).or_default();
                if lines.len() == LOG_LINES {
                    lines.remove(0);
                }
                lines.push(line);
            }
        }
    }

    fn load(&mut self, opened: &Opened) {
        self.edit();
        self.pipeline = opened.pipeline.clone();
        design::auto_layout(&mut self.pipeline);
        self.base = opened.base.clone();
        self.title = opened.title.clone();
        self.save_name = opened
            .pipeline
            .display_name
            .clone()
            .unwrap_or_else(|| "pipeline".into())
            .to_lowercase()
            .replace(' ', "-");
        self.selected = None;
        self.status.clear();
        self.logs.clear();
        self.message = Some(Ok(format!("Opened {}", opened.title)));
        self.fit = true;
    }

    /// Records the state before an edit, for undo.
    fn edit(&mut self) {
        self.editing = None;
        self.history.record(&self.pipeline);
    }

    fn undo(&mut self) {
        self.history.undo(&mut self.pipeline);
    }

    fn redo(&mut self) {
        self.history.redo(&mut self.pipeline);
    }

    fn add(&mut self, item: &PaletteItem, at: [f32; 2]) {
        self.edit();
        let key = match item {
            PaletteItem::Component {
                source,
                component,
                origin,
            } => design::add_step(
                &mut self.pipeline,
                source.clone(),
                component,
                origin.clone(),
                at,
            ),
            PaletteItem::Asset(name) => design::input_key(&design::add_data_input(
                &mut self.pipeline,
                name,
                &format!("azureml:{name}@latest"),
                at,
            )),
        };
        self.selected = Some(key);
    }

    /// A free spot to the right of everything, for items added with their button.
    fn free_spot(&self) -> [f32; 2] {
        let right = self
            .pipeline
            .layout
            .values()
            .map(|p| p[0])
            .fold(f32::NEG_INFINITY, f32::max);
        if right.is_finite() {
            [right + canvas::NODE_WIDTH + 50.0, 40.0]
        } else {
            [40.0, 40.0]
        }
    }

    pub fn toolbar_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        tracking_uri: Option<&str>,
        requests: &mut Vec<ShellRequest>,
    ) {
        let (undo, redo, delete) = ui.input_mut(|i| {
            let redo = i.consume_key(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::Z,
            ) || i.consume_key(egui::Modifiers::COMMAND, egui::Key::Y);
            let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
            let delete = i.key_pressed(egui::Key::Delete);
            (undo, redo, delete)
        });
        let typing = ui.ctx().egui_wants_keyboard_input();
        if undo && !typing {
            self.undo();
        }
        if redo && !typing {
            self.redo();
        }
        if delete
            && !typing
            && let Some(key) = self.selected.take()
        {
            self.edit();
            design::remove(&mut self.pipeline, design::Node::of(&key).name());
        }
        ui.horizontal(|ui| {
            if ui.button("New").clicked() {
                self.edit();
                self.pipeline = design::empty("New pipeline");
                self.pipeline.experiment_name = Some("designer".into());
                self.title = "New pipeline".into();
                self.selected = None;
            }
            if ui.button("Import YAML…").clicked() {
                requests.push(ShellRequest::PickPipeline);
            }
            if ui.button("Export YAML…").clicked() {
                requests.push(ShellRequest::ExportPipeline);
            }
            ui.separator();
            ui.add_enabled_ui(self.history.can_undo(), |ui| {
                if ui.button("⟲ Undo").on_hover_text("Ctrl+Z").clicked() {
                    self.undo();
                }
            });
            ui.add_enabled_ui(self.history.can_redo(), |ui| {
                if ui.button("⟳ Redo").on_hover_text("Ctrl+Shift+Z").clicked() {
                    self.redo();
                }
            });
            if ui
                .button("Arrange")
                .on_hover_text("Lay the nodes out by their order")
                .clicked()
            {
                self.edit();
                self.pipeline.layout.clear();
                design::auto_layout(&mut self.pipeline);
                self.fit = true;
            }
            ui.separator();
            ui.add(
                egui::TextEdit::singleline(&mut self.save_name)
                    .desired_width(140.0)
                    .hint_text("name"),
            );
            if ui
                .button("Save")
                .on_hover_text("Save as the next version of this name")
                .clicked()
            {
                service.send(PipelineCommand::Save {
                    name: self.save_name.clone(),
                    pipeline: self.pipeline.clone(),
                });
            }
            if let Some((name, version)) = self.saved.clone() {
                ui.add(
                    egui::TextEdit::singleline(&mut self.cron)
                        .desired_width(90.0)
                        .hint_text("cron"),
                )
                .on_hover_text("A cron pattern in UTC, e.g. 0 3 * * * for 03:00 every day");
                if ui
                    .button("Schedule")
                    .on_hover_text(format!(
                        "Run {name}:{version} on this pattern while Lathe runs"
                    ))
                    .clicked()
                {
                    service.send(PipelineCommand::AddSchedule {
                        pipeline: format!("{name}:{version}"),
                        cron: self.cron.clone(),
                    });
                }
            }
            ui.separator();
            let issues = design::issues(&self.pipeline);
            if self.running {
                ui.spinner();
                ui.label("Running… (cancel from the status bar)");
            } else {
                let run = ui.add_enabled(issues.is_empty(), egui::Button::new("▶ Run"));
                let run = if issues.is_empty() {
                    run
                } else {
                    run.on_disabled_hover_text("Fix the issues listed on the right first")
                };
                if run.clicked() {
                    self.status.clear();
                    self.logs.clear();
                    self.running = true;
                    self.message = None;
                    service.send(PipelineCommand::Run {
                        pipeline: self.pipeline.clone(),
                        base: self.base.clone(),
                        tracking_uri: tracking_uri.map(str::to_owned),
                    });
                }
            }
            ui.separator();
            ui.weak(&self.title);
        });
        if let Some(message) = &self.message {
            match message {
                Ok(text) => ui.label(text),
                Err(text) => ui.colored_label(ui.visuals().error_fg_color, text),
            };
        }
    }

    /// Components, saved pipelines or data assets changed elsewhere: the palette is read
    /// again (the one shown stays until it arrives).
    pub fn palette_changed(&mut self, service: &Service) {
        if self.palette.is_some() {
            service.send(PipelineCommand::LoadPalette);
        }
    }

    pub fn palette_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        if self.palette.is_none() {
            service.send(PipelineCommand::LoadPalette);
            self.palette = Some(Loadable::Loading);
        }
        if let Some(source) = self.pending_open.take() {
            service.send(PipelineCommand::Open(source));
        }
        ui.heading("Components");
        ui.add(
            egui::TextEdit::singleline(&mut self.search)
                .hint_text("Search")
                .desired_width(f32::INFINITY),
        );
        let needle = self.search.to_lowercase();
        let matches = |c: &Component| {
            needle.is_empty()
                || c.name.to_lowercase().contains(&needle)
                || c.display_name
                    .as_deref()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(&needle)
        };
        let mut add: Option<PaletteItem> = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for category in ["data", "train", "evaluate", "deploy"] {
                let items: Vec<&Component> = builtin::catalog()
                    .iter()
                    .filter(|c| c.tags.get("category").map(String::as_str) == Some(category))
                    .filter(|c| matches(c))
                    .collect();
                if items.is_empty() {
                    continue;
                }
                ui.add_space(4.0);
                ui.weak(RichText::new(category.to_uppercase()).small());
                for c in items {
                    let item = PaletteItem::Component {
                        source: StepSource::Builtin(format!("{}{}", builtin::PREFIX, c.name)),
                        component: Box::new(c.clone()),
                        origin: self.base.clone(),
                    };
                    if palette_row(
                        ui,
                        &item,
                        c.display_name.as_deref().unwrap_or(&c.name),
                        c.description.as_deref(),
                    ) {
                        add = Some(item);
                    }
                }
            }
            if let Some(Loadable::Ready(palette)) = &self.palette {
                let registered: Vec<_> = palette
                    .registered
                    .iter()
                    .filter(|r| matches(&r.component))
                    .collect();
                if !registered.is_empty() {
                    ui.add_space(4.0);
                    ui.weak(RichText::new("REGISTERED").small());
                }
                for r in registered {
                    let item = PaletteItem::Component {
                        source: StepSource::Registered(format!("azureml:{}:{}", r.name, r.version)),
                        component: Box::new(r.component.clone()),
                        origin: self.base.clone(),
                    };
                    if palette_row(
                        ui,
                        &item,
                        &format!("{}:{}", r.name, r.version),
                        r.component.description.as_deref(),
                    ) {
                        add = Some(item);
                    }
                }
                let assets: Vec<_> = palette
                    .assets
                    .iter()
                    .filter(|a| needle.is_empty() || a.name.to_lowercase().contains(&needle))
                    .collect();
                if !assets.is_empty() {
                    ui.add_space(4.0);
                    ui.weak(RichText::new("DATA ASSETS").small());
                }
                for a in assets {
                    let item = PaletteItem::Asset(a.name.clone());
                    if palette_row(
                        ui,
                        &item,
                        &a.name,
                        Some(&format!("{} · {} version(s)", a.kind, a.version_count)),
                    ) {
                        add = Some(item);
                    }
                }
                if !palette.saved.is_empty() {
                    ui.add_space(8.0);
                    ui.weak(RichText::new("SAVED PIPELINES").small());
                    for saved in &palette.saved {
                        if ui
                            .link(format!("{}:{}", saved.name, saved.version))
                            .clicked()
                        {
                            service.send(PipelineCommand::Open(PipelineSource::Saved {
                                name: saved.name.clone(),
                                version: saved.version,
                            }));
                        }
                    }
                }
            } else if let Some(Loadable::Failed(e)) = &self.palette {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        });
        if let Some(item) = add {
            let at = self.free_spot();
            self.add(&item, at);
        }
    }

    pub fn canvas_ui(&mut self, ui: &mut egui::Ui) {
        if std::mem::take(&mut self.fit) {
            self.canvas.fit(ui.available_size(), &self.pipeline.layout);
        }
        if let Some(key) = self.focus.take()
            && let Some(at) = self.pipeline.layout.get(&key).copied()
        {
            self.canvas.focus(ui.available_size(), at);
        }
        let issues = design::issues(&self.pipeline);
        let flagged = |key: &str| issues.iter().any(|i| i.step.as_deref() == Some(key));
        let status = |key: &str| self.status.get(key).map(|(s, _)| s.clone());
        let dropped = egui::DragAndDrop::payload::<PaletteItem>(ui.ctx());
        let origin = ui.max_rect().min;
        let actions = self.canvas.ui(
            ui,
            &self.pipeline,
            self.selected.as_deref(),
            &flagged,
            &status,
        );
        for action in actions {
            match action {
                Action::Select(key) => self.selected = key,
                Action::StartMove => self.edit(),
                Action::Move(key, at) => {
                    self.pipeline.layout.insert(key, at);
                }
                Action::Connect { from, step, input } => {
                    self.edit();
                    if let Err(reason) = design::connect(&mut self.pipeline, &from, &step, &input) {
                        self.history.forget_last();
                        self.message = Some(Err(format!("Not connected: {reason}")));
                    } else {
                        self.message = None;
                    }
                }
                Action::Drop(pos) => {
                    if let Some(item) = &dropped {
                        let at = self.canvas.to_world(origin, pos);
                        self.add(item, at);
                    }
                }
            }
        }
        if self.pipeline.steps.is_empty() && self.pipeline.inputs.is_empty() {
            ui.painter().text(
                ui.max_rect().center(),
                egui::Align2::CENTER_CENTER,
                "Drag components and data assets here from the palette",
                egui::FontId::proportional(16.0),
                ui.visuals().weak_text_color(),
            );
        }
    }

    pub fn inspector_ui(&mut self, ui: &mut egui::Ui) -> Option<Navigate> {
        let mut navigate = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            let issues = design::issues(&self.pipeline);
            ui.heading(if issues.is_empty() { "Ready to run".to_owned() } else { format!("⚠ {} issue(s)", issues.len()) });
            for Issue { step, message } in &issues {
                let text = match step {
                    Some(step) => format!("{step}: {message}"),
                    None => message.clone(),
                };
                if ui.selectable_label(false, text).clicked()
                    && let Some(step) = step
                {
                    self.selected = Some(step.clone());
                    self.focus = Some(step.clone());
                }
            }
            if let Some(run_id) = &self.run_id
                && ui.link("Open the pipeline's run").clicked()
            {
                navigate = Some(Navigate::Run(run_id.clone()));
            }
            ui.separator();
            let selected = self.selected.clone();
            match selected.as_deref().map(design::Node::of) {
                Some(design::Node::Input(name)) => self.input_ui(ui, name),
                Some(design::Node::Step(step)) => {
                    navigate = navigate.take().or(self.step_ui(ui, step));
                }
                None => {
                    ui.weak("Select a node to edit it. Drag from an orange output port to a blue input port to connect them; Delete removes the selected node.");
                    self.pipeline_inputs_ui(ui);
                }
            }
        });
        navigate
    }

    /// The pipeline's own parameters (`inputs` that are values), which steps read as
    /// `${{parent.inputs.x}}`.
    fn pipeline_inputs_ui(&mut self, ui: &mut egui::Ui) {
        let values: Vec<(String, String)> = self
            .pipeline
            .inputs
            .iter()
            .filter_map(|(n, b)| match b {
                Binding::Literal(v) => Some((n.clone(), v.clone())),
                _ => None,
            })
            .collect();
        if values.is_empty() {
            return;
        }
        ui.add_space(8.0);
        ui.strong("Pipeline parameters");
        egui::Grid::new("pipeline-inputs")
            .num_columns(2)
            .show(ui, |ui| {
                for (name, current) in values {
                    ui.label(&name);
                    let mut text = current.clone();
                    ui.add(
                        egui::TextEdit::singleline(&mut text)
                            .id_salt(("pipeline-input", &name))
                            .desired_width(150.0),
                    );
                    if text != current {
                        let field = (String::new(), name.clone());
                        if self.editing.as_ref() != Some(&field) {
                            self.edit();
                            self.editing = Some(field);
                        }
                        design::set_pipeline_input(&mut self.pipeline, &name, &text);
                    }
                    ui.end_row();
                }
            });
    }

    fn input_ui(&mut self, ui: &mut egui::Ui, name: &str) {
        ui.strong(format!("Pipeline input {name}"));
        if let Some((_, Binding::Data { path, .. })) =
            self.pipeline.inputs.iter().find(|(n, _)| n == name)
        {
            ui.label(format!("Data: {path}"));
        }
    }

    fn step_ui(&mut self, ui: &mut egui::Ui, name: &str) -> Option<Navigate> {
        let step = self.pipeline.steps.iter().find(|s| s.name == name)?.clone();
        ui.strong(&step.name);
        ui.weak(format!(
            "{} · {}",
            step.source,
            step.component
                .display_name
                .as_deref()
                .unwrap_or(&step.component.name)
        ));
        if let Some(d) = &step.component.description {
            ui.label(RichText::new(d).small());
        }
        ui.add_space(6.0);
        egui::Grid::new("step-inputs")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                for (input, port) in &step.component.inputs {
                    let binding = step
                        .inputs
                        .iter()
                        .find(|(n, _)| n == input)
                        .map(|(_, b)| b.clone());
                    ui.label(input)
                        .on_hover_text(port.description.as_deref().unwrap_or(port.kind.as_str()));
                    if port.kind.is_data() {
                        let text = match &binding {
                            Some(Binding::StepOutput { step, output }) => {
                                format!("from {step}.{output}")
                            }
                            Some(Binding::ParentInput(p)) => format!("from input {p}"),
                            Some(Binding::Data { path, .. } | Binding::Literal(path)) => {
                                path.clone()
                            }
                            _ if port.optional => "(optional, not connected)".into(),
                            _ => "not connected".into(),
                        };
                        ui.horizontal(|ui| {
                            ui.label(text);
                            if binding.is_some()
                                && ui.small_button("✖").on_hover_text("Disconnect").clicked()
                            {
                                self.edit();
                                design::disconnect(&mut self.pipeline, name, input);
                            }
                        });
                    } else {
                        let current = match &binding {
                            Some(Binding::Literal(v)) => v.clone(),
                            Some(Binding::ParentInput(p)) => format!("${{{{parent.inputs.{p}}}}}"),
                            _ => String::new(),
                        };
                        let mut text = current.clone();
                        ui.vertical(|ui| {
                            if port.allowed.is_empty() {
                                let hint = port.default.clone().unwrap_or_else(|| {
                                    if port.optional {
                                        "optional".into()
                                    } else {
                                        "required".into()
                                    }
                                });
                                // A stable id: the issue list above changes length as the user types.
                                ui.add(
                                    egui::TextEdit::singleline(&mut text)
                                        .id_salt(("param", name, input))
                                        .hint_text(hint)
                                        .desired_width(150.0),
                                );
                            } else {
                                egui::ComboBox::from_id_salt(("enum", input))
                                    .selected_text(if text.is_empty() {
                                        port.default.clone().unwrap_or_default()
                                    } else {
                                        text.clone()
                                    })
                                    .show_ui(ui, |ui| {
                                        for option in &port.allowed {
                                            ui.selectable_value(&mut text, option.clone(), option);
                                        }
                                    });
                            }
                            if !text.is_empty()
                                && !text.starts_with("${{")
                                && let Err(e) = port.check(&text)
                            {
                                ui.colored_label(ui.visuals().error_fg_color, e.to_string());
                            }
                        });
                        if text != current {
                            let field = (name.to_owned(), input.clone());
                            if self.editing.as_ref() != Some(&field) {
                                self.edit();
                                self.editing = Some(field);
                            }
                            design::set_value(&mut self.pipeline, name, input, &text);
                        }
                    }
                    ui.end_row();
                }
            });
        let mut navigate = None;
        if let Some((status, run_id)) = self.status.get(name) {
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                ui.colored_label(canvas::status_color(Some(status)), status.label());
                if let Some(run_id) = run_id
                    && ui.link("Open run").clicked()
                {
                    navigate = Some(Navigate::Run(run_id.clone()));
                }
            });
            match status {
                StepStatus::Failed { message } => {
                    ui.colored_label(ui.visuals().error_fg_color, message);
                }
                StepStatus::Skipped { reason } => {
                    ui.weak(reason);
                }
                StepStatus::Reused { from_run } => {
                    ui.weak(format!("Outputs reused from run {from_run}"));
                }
                _ => {}
            }
        }
        if let Some(lines) = self.logs.get(name) {
            ui.add_space(4.0);
            ui.label("Log");
            egui::ScrollArea::vertical()
                .id_salt("step-log")
                .max_height(220.0)
                .stick_to_bottom(true)
                .show(ui, |ui| {
                    for line in lines {
                        ui.monospace(line);
                    }
                });
        }
        navigate
    }
}

/// One palette entry: drag it onto the canvas, or press + to add it. True when + was pressed.
fn palette_row(ui: &mut egui::Ui, item: &PaletteItem, label: &str, hint: Option<&str>) -> bool {
    let mut add = false;
    ui.horizontal(|ui| {
        let button = ui.small_button("+").on_hover_text(format!("Add {label}"));
        // Named for screen readers (and tests) by what it adds, not by its glyph.
        button.widget_info(|| {
            egui::WidgetInfo::labeled(egui::Role::Button, true, format!("Add {label}"))
        });
        if button.clicked() {
            add = true;
        }
        let id = ui.scope_id().with(("palette", label));
        let response = ui
            .dnd_drag_source(id, item.clone(), |ui| ui.label(label))
            .response;
        if let Some(hint) = hint {
            response.on_hover_text(hint);
        }
    });
    add
}
