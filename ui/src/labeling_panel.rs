//! The Labeling section: projects (and a form to start one), an item queue with filters, and a
//! keyboard-first annotator — 1–9 pick a label, N/P or the arrows move, Enter submits, Ctrl+Z /
//! Ctrl+Shift+Z undo and redo, Delete removes the selected shape — for class labels, boxes,
//! polygons and text spans, with review (accept, or reject with a comment). The next items are
//! fetched and decoded ahead so moving on is instant.

mod annotator;

use std::collections::HashMap;
use std::sync::Arc;

use egui::RichText;
use lathe_core::labeling::project::{Filter, Item, Project, Status};
use lathe_core::labeling::{LabelFormat, Shape, Task};
use lathe_core::service::{ItemView, LabelCommand, LabelEvent, Projects, Service};

use crate::history::History;
use crate::loadable::Loadable;
use annotator::{Edit, ImageView, Scene};

/// The projects with their counts (and the assets a new one could label), as the service
/// sends them.
type ProjectList = Arc<Projects>;

/// Items decoded ahead of the current one.
const AHEAD: usize = 2;

#[derive(Default)]
pub struct LabelingPanel {
    projects: Option<Loadable<ProjectList>>,
    project: Option<Project>,
    filter: Filter,
    items: Option<Loadable<Arc<Vec<Item>>>>,
    cursor: usize,
    views: HashMap<i64, Loadable<Arc<ItemView>>>,
    textures: HashMap<i64, egui::TextureHandle>,
    /// The shapes being edited for the current item, and their history.
    shapes: Vec<Shape>,
    editing: Option<i64>,
    history: History<Vec<Shape>>,
    active: usize,
    selected: Option<usize>,
    image: ImageView,
    /// A span being marked.
    marking: Option<Marking>,
    comment: String,
    message: Option<Result<String, String>>,
    form: NewProject,
    threshold: Threshold,
    /// A pre-label taken into the editor: its model and shapes, to credit the model if it is
    /// submitted unchanged.
    accepted: Option<(String, Vec<Shape>)>,
    /// A project to open once the list has it (from `select`).
    wanted: Option<String>,
    /// The export format picked, and the data asset name to record labels under.
    export_format: LabelFormat,
    export_asset: String,
    /// A registered ONNX model (`NAME:VERSION`) to pre-label with; empty for the baseline.
    model: String,
    /// The registered ONNX models to choose from, loaded when an image project's assist shows.
    onnx_models: Option<Loadable<Arc<Vec<String>>>>,
    /// The label schema being edited, until applied.
    schema: Option<Vec<lathe_core::labeling::Label>>,
    /// A row_value item's number as typed.
    value: String,
}

/// The confidence a pre-label needs to be offered.
struct Threshold(f64);

impl Default for Threshold {
    fn default() -> Self {
        Threshold(0.8)
    }
}

/// The form that starts a project: from scratch, or from a label file.
struct NewProject {
    name: String,
    asset: String,
    task: Task,
    labels: String,
    error: Option<String>,
    /// A label file (or folder) to start from, and its format.
    file: Option<std::path::PathBuf>,
    format: LabelFormat,
    /// A row project with no items yet (a monitor sends them).
    empty: bool,
}

impl Default for NewProject {
    fn default() -> Self {
        NewProject {
            name: String::new(),
            asset: String::new(),
            task: Task::BoundingBoxes,
            labels: String::new(),
            error: None,
            file: None,
            format: LabelFormat::Coco,
            empty: false,
        }
    }
}

impl LabelingPanel {
    pub fn on_event(&mut self, event: LabelEvent, ctx: &egui::Context) -> Option<LabelEvent> {
        match event {
            LabelEvent::Projects(reply) => {
                if let (Ok(list), Some(current)) = (&reply, &self.project) {
                    self.project = list
                        .projects
                        .iter()
                        .find(|(p, _)| p.name == current.name)
                        .map(|(p, _)| p.clone());
                }
                if let (Ok(list), Some(wanted)) = (&reply, self.wanted.clone())
                    && let Some((p, _)) = list.projects.iter().find(|(p, _)| p.name == wanted)
                {
                    self.wanted = None;
                    let projects = Some(Loadable::from_reply(reply.clone()));
                    self.open(p.clone());
                    self.projects = projects;
                    return None;
                }
                self.projects = Some(Loadable::from_reply(reply));
            }
            LabelEvent::ProjectCreated(reply) => match reply {
                Ok(project) => {
                    self.open((*project).clone());
                    self.projects = None;
                }
                Err(e) => self.form.error = Some(e.to_string()),
            },
            LabelEvent::Items {
                project,
                filter,
                reply,
            } if self.is_current(&project) && filter == self.filter => {
                self.items = Some(Loadable::from_reply(reply));
                self.cursor = self.cursor.min(self.item_count().saturating_sub(1));
            }
            LabelEvent::Item {
                project,
                position,
                reply,
            } if self.is_current(&project) => {
                if let Ok(view) = &reply
                    && let Some(image) = &view.image
                {
                    let color = egui::ColorImage::from_rgba_unmultiplied(
                        [image.width as usize, image.height as usize],
                        &image.rgba,
                    );
                    let texture = ctx.load_texture(
                        format!("label-{project}-{position}"),
                        color,
                        egui::TextureOptions::LINEAR,
                    );
                    self.textures.insert(position, texture);
                }
                self.views.insert(position, Loadable::from_reply(reply));
            }
            LabelEvent::Submitted {
                project,
                position,
                reply,
            } if self.is_current(&project) => {
                self.message = Some(match reply {
                    Ok(s) => Ok(format!(
                        "Saved item {}: {}",
                        position + 1,
                        saved_as(&s.shapes)
                    )),
                    Err(e) => Err(format!("Not saved: {e}")),
                });
                self.refresh(position);
            }
            LabelEvent::LabelsUpdated(reply) => match reply {
                Ok(project) => {
                    self.message = Some(Ok(format!("Labels of {} saved", project.name)));
                    self.project = Some((*project).clone());
                    self.schema = None;
                    self.projects = None;
                }
                Err(e) => self.message = Some(Err(format!("Labels not saved: {e}"))),
            },
            LabelEvent::Exported(reply) => {
                self.message = Some(reply.map(|text| (*text).clone()).map_err(|e| e.to_string()));
            }
            LabelEvent::OnnxModels(reply) => {
                self.onnx_models = Some(Loadable::from_reply(reply));
            }
            LabelEvent::Prelabeled { project, reply } if self.is_current(&project) => {
                self.message = Some(match reply {
                    Ok(p) => Ok(format!(
                        "{} pre-labeled {} item(s), {} at or above {:.2}",
                        p.model, p.items, p.confident, self.threshold.0
                    )),
                    Err(e) => Err(e.to_string()),
                });
                self.views.clear();
                self.textures.clear();
            }
            LabelEvent::Reviewed {
                project,
                position,
                reply,
            } if self.is_current(&project) => {
                self.message = Some(match reply {
                    Ok(_) => Ok(format!("Reviewed item {}", position + 1)),
                    Err(e) => Err(format!("Not reviewed: {e}")),
                });
                self.refresh(position);
            }
            other => return Some(other),
        }
        None
    }

    /// A label file (or folder) picked in the shell's dialog, to start a project from.
    pub fn offer_label_file(&mut self, path: std::path::PathBuf) {
        self.form.file = Some(path);
    }

    /// Exports the open project in the chosen format to `path` (from the shell's save dialog).
    pub fn export_to(&mut self, service: &Service, path: std::path::PathBuf) {
        if let Some(p) = &self.project {
            service.send(LabelCommand::Export {
                project: p.name.clone(),
                format: self.export_format,
                path,
            });
        }
    }

    /// Opens the project named `name` as soon as the project list has it.
    pub fn select(&mut self, name: &str) {
        self.wanted = Some(name.to_owned());
        self.projects = None;
    }

    /// Reads the project list again (and the open project's counts with it).
    pub fn reload_projects(&mut self) {
        self.projects = None;
    }

    /// Labels changed (someone else labeled, reviewed or imported): the project list, its
    /// counts and the open item list are read again, what is shown staying until they arrive.
    pub fn labels_changed(&mut self, service: &Service) {
        if self.projects.is_some() {
            service.send(LabelCommand::LoadProjects);
        }
        if let (Some(project), Some(_)) = (&self.project, &self.items) {
            service.send(LabelCommand::LoadItems {
                project: project.name.clone(),
                filter: self.filter.clone(),
            });
        }
    }

    fn is_current(&self, project: &str) -> bool {
        self.project.as_ref().is_some_and(|p| p.name == project)
    }

    /// After a change to item `position`: its view, the item list and the counts are stale.
    fn refresh(&mut self, position: i64) {
        self.views.remove(&position);
        self.items = None;
        self.projects = None;
    }

    fn item_count(&self) -> usize {
        match &self.items {
            Some(Loadable::Ready(items)) => items.len(),
            _ => 0,
        }
    }

    fn current_item(&self) -> Option<Item> {
        match &self.items {
            Some(Loadable::Ready(items)) => items.get(self.cursor).cloned(),
            _ => None,
        }
    }

    fn open(&mut self, project: Project) {
        let format = lathe_core::labeling::default_format(project.task);
        *self = LabelingPanel {
            projects: self.projects.take(),
            export_format: format,
            project: Some(project),
            ..LabelingPanel::default()
        };
    }

    /// Colours, hotkeys and new labels for the open project.
    fn schema_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        let Some(p) = self.project.clone() else {
            return;
        };
        egui::CollapsingHeader::new("Edit labels").show(ui, |ui| {
            let draft = self.schema.get_or_insert_with(|| p.labels.clone());
            for (i, label) in draft.iter_mut().enumerate() {
                ui.horizontal(|ui| {
                    let mut color =
                        egui::Color32::from_hex(&label.color).unwrap_or(egui::Color32::YELLOW);
                    if egui::color_picker::color_edit_button_srgba(
                        ui,
                        &mut color,
                        egui::color_picker::Alpha::Opaque,
                    )
                    .changed()
                    {
                        label.color = color.to_hex()[..7].to_owned();
                    }
                    if i < p.labels.len() {
                        ui.label(&label.name);
                    } else {
                        let caption = ui.label("new label");
                        ui.add(
                            egui::TextEdit::singleline(&mut label.name)
                                .id_salt(("new-label", i))
                                .desired_width(90.0),
                        )
                        .labelled_by(caption.id);
                    }
                    egui::ComboBox::from_id_salt(("hotkey", i))
                        .width(40.0)
                        .selected_text(label.hotkey.map_or("—".to_owned(), |k| k.to_string()))
                        .show_ui(ui, |ui| {
                            ui.selectable_value(&mut label.hotkey, None, "none");
                            for d in '1'..='9' {
                                ui.selectable_value(&mut label.hotkey, Some(d), d.to_string());
                            }
                        });
                });
            }
            ui.horizontal(|ui| {
                if ui.button("+ Label").clicked() {
                    let label = lathe_core::labeling::next_label(draft, "");
                    draft.push(label);
                }
                if ui.button("Apply").clicked() {
                    service.send(LabelCommand::UpdateLabels {
                        project: p.name.clone(),
                        labels: draft.clone(),
                    });
                }
            });
        });
    }

    fn export_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        requests: &mut Vec<crate::vocabulary::ShellRequest>,
    ) {
        let Some(p) = self.project.clone() else {
            return;
        };
        ui.separator();
        ui.strong("Export");
        egui::ComboBox::new("export-format", "Format")
            .selected_text(self.export_format.as_str())
            .show_ui(ui, |ui| {
                for f in LabelFormat::ALL {
                    ui.selectable_value(&mut self.export_format, f, f.as_str());
                }
            });
        if ui
            .button("Export…")
            .on_hover_text("Write the labels to a file or folder")
            .clicked()
        {
            requests.push(crate::vocabulary::ShellRequest::ExportLabels);
        }
        if self.export_asset.is_empty() {
            self.export_asset = format!("{}-labels", p.name);
        }
        ui.add(egui::TextEdit::singleline(&mut self.export_asset).hint_text("data asset name"));
        if ui
            .button("Save as data asset")
            .on_hover_text("A table with a row per label, as a new version of this asset")
            .clicked()
        {
            service.send(LabelCommand::ExportAsset {
                project: p.name,
                asset: self.export_asset.clone(),
            });
        }
    }

    pub fn list_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        requests: &mut Vec<crate::vocabulary::ShellRequest>,
    ) {
        if self.projects.is_none() {
            service.send(LabelCommand::LoadProjects);
            self.projects = Some(Loadable::Loading);
        }
        ui.heading("Labeling projects");
        let mut open = None;
        match &self.projects {
            Some(Loadable::Ready(list)) => {
                if list.projects.is_empty() {
                    ui.weak(
                        "No projects yet: `lathe label create` or `lathe label import` starts one.",
                    );
                }
                for (p, s) in &list.projects {
                    let done = s.items - s.by_status.unlabeled;
                    let current = self.project.as_ref().is_some_and(|c| c.name == p.name);
                    let text = format!(
                        "{}\n{} · {done}/{} labeled",
                        p.name,
                        p.task.as_str(),
                        s.items
                    );
                    if ui.selectable_label(current, text).clicked() && !current {
                        open = Some(p.clone());
                    }
                }
            }
            Some(Loadable::Failed(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            _ => {
                ui.spinner();
            }
        }
        if let Some(p) = open {
            self.open(p);
        }
        if self.project.is_some() {
            ui.separator();
            self.schema_ui(ui, service);
        }
        self.export_ui(ui, service, requests);
        ui.separator();
        self.new_project_ui(ui, service, requests);
        if let (Some(p), Some(Loadable::Ready(list))) = (&self.project, &self.projects)
            && let Some((_, stats)) = list.projects.iter().find(|(q, _)| q.name == p.name)
        {
            ui.separator();
            ui.strong("Progress");
            for status in Status::ALL {
                ui.label(format!(
                    "{}: {}",
                    status.as_str(),
                    stats.by_status.get(status)
                ));
            }
            if !stats.by_label.is_empty() {
                ui.strong("Labels");
                for (label, n) in &stats.by_label {
                    ui.label(format!("{label}: {n}"));
                }
            }
            if !stats.by_annotator.is_empty() {
                ui.strong("Annotators");
                for (who, n) in &stats.by_annotator {
                    ui.label(format!("{who}: {n}"));
                }
            }
            if let Some(a) = &stats.agreement {
                ui.strong("Agreement");
                ui.label(format!("{} {:.3} ({} items)", a.measure, a.value, a.items));
            }
        }
    }

    fn new_project_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        requests: &mut Vec<crate::vocabulary::ShellRequest>,
    ) {
        egui::CollapsingHeader::new("New project").show(ui, |ui| {
            let form = &mut self.form;
            ui.add(egui::TextEdit::singleline(&mut form.name).hint_text("name"));
            ui.horizontal(|ui| {
                if ui
                    .button("From labels…")
                    .on_hover_text("Start from a label file or folder")
                    .clicked()
                {
                    requests.push(crate::vocabulary::ShellRequest::PickLabels);
                }
                if form.file.is_some()
                    && ui
                        .small_button("✖")
                        .on_hover_text("Start from scratch")
                        .clicked()
                {
                    form.file = None;
                }
            });
            if let Some(file) = form.file.clone() {
                ui.label(file.display().to_string());
                egui::ComboBox::new("import-format", "Format")
                    .selected_text(form.format.as_str())
                    .show_ui(ui, |ui| {
                        for f in LabelFormat::ALL {
                            ui.selectable_value(&mut form.format, f, f.as_str());
                        }
                    });
                let images: Vec<String> = match &self.projects {
                    Some(Loadable::Ready(list)) => list
                        .assets
                        .iter()
                        .filter(|a| a.kind == lathe_core::assets::AssetKind::Images)
                        .map(|a| a.name.clone())
                        .collect(),
                    _ => Vec::new(),
                };
                egui::ComboBox::new("import-asset", "Images")
                    .selected_text(if form.asset.is_empty() {
                        "(texts bring their own)"
                    } else {
                        &form.asset
                    })
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut form.asset, String::new(), "(none)");
                        for name in &images {
                            ui.selectable_value(&mut form.asset, name.clone(), name);
                        }
                    });
                if ui.button("Import").clicked() {
                    form.error = None;
                    service.send(LabelCommand::Import {
                        path: file,
                        format: form.format,
                        name: form.name.trim().to_owned(),
                        asset: Some(form.asset.clone()).filter(|a| !a.is_empty()),
                    });
                }
                if let Some(e) = &form.error {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                return;
            }
            let assets: Vec<String> = match &self.projects {
                Some(Loadable::Ready(list)) => list
                    .assets
                    .iter()
                    .filter(|a| a.kind == form.task.asset_kind())
                    .map(|a| a.name.clone())
                    .collect(),
                _ => Vec::new(),
            };
            egui::ComboBox::new("new-task", "Task")
                .selected_text(form.task.as_str())
                .show_ui(ui, |ui| {
                    for task in Task::ALL {
                        ui.selectable_value(&mut form.task, task, task.as_str());
                    }
                });
            egui::ComboBox::new("new-asset", "Asset")
                .selected_text(if form.asset.is_empty() {
                    "choose…"
                } else {
                    &form.asset
                })
                .show_ui(ui, |ui| {
                    for name in &assets {
                        ui.selectable_value(&mut form.asset, name.clone(), name);
                    }
                });
            let hint = if form.task == Task::RowValue {
                "the quantity, e.g. price"
            } else {
                "labels, comma-separated"
            };
            ui.add(egui::TextEdit::singleline(&mut form.labels).hint_text(hint));
            if form.task.rows() {
                ui.checkbox(&mut form.empty, "Start empty")
                    .on_hover_text("No rows yet: a monitor's label action sends the rows that drifted most, or that the model was least sure of");
            }
            if ui.button("Create").clicked() {
                let labels: Vec<String> = form
                    .labels
                    .split(',')
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty())
                    .collect();
                form.error = None;
                service.send(LabelCommand::CreateProject {
                    name: form.name.trim().to_owned(),
                    task: form.task,
                    asset: form.asset.clone(),
                    labels,
                    empty: form.task.rows() && form.empty,
                });
            }
            if let Some(e) = &form.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        });
    }

    pub fn main_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        let Some(project) = self.project.clone() else {
            ui.centered_and_justified(|ui| ui.weak("Select a project on the left."));
            return;
        };
        if self.items.is_none() {
            service.send(LabelCommand::LoadItems {
                project: project.name.clone(),
                filter: self.filter.clone(),
            });
            self.items = Some(Loadable::Loading);
        }
        self.filter_bar(ui, &project);
        // The last outcome stays in sight even when the filter leaves no item.
        if let Some(message) = &self.message {
            match message {
                Ok(text) => ui.label(text),
                Err(text) => ui.colored_label(ui.visuals().error_fg_color, text),
            };
        }
        let Some(item) = self.current_item() else {
            ui.weak(match &self.items {
                Some(Loadable::Ready(_)) => "No items match this filter.",
                _ => "Loading items…",
            });
            return;
        };
        self.fetch_ahead(service, &project);
        let view = match self.views.get(&item.position) {
            Some(Loadable::Ready(view)) => view.clone(),
            Some(Loadable::Failed(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
                return;
            }
            _ => {
                ui.spinner();
                return;
            }
        };
        if self.editing != Some(item.position) {
            self.editing = Some(item.position);
            self.shapes = view
                .latest
                .as_ref()
                .map(|s| s.shapes.clone())
                .unwrap_or_default();
            self.history.clear();
            self.selected = None;
            self.marking = None;
            self.accepted = None;
            self.image.reset();
            self.value = self
                .shapes
                .iter()
                .find_map(|s| match s {
                    Shape::Value { value, .. } => Some(value.to_string()),
                    _ => None,
                })
                .unwrap_or_default();
        }
        self.keys(ui, service, &project, &item);
        egui::Panel::right("label-side")
            .default_size(260.0)
            .show(ui, |ui| {
                self.side_ui(ui, service, &project, &item, &view);
            });
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(row) = &view.row {
                row_ui(ui, row);
                return;
            }
            match (&view.text, self.textures.get(&item.position)) {
                (Some(text), _) => self.text_ui(ui, &project, text),
                (None, Some(texture)) => {
                    let texture = texture.clone();
                    let size = match view.extent {
                        lathe_core::labeling::Extent::Image { width, height } => [width, height],
                        _ => [1, 1],
                    };
                    let active = project
                        .labels
                        .get(self.active)
                        .map(|l| l.name.clone())
                        .unwrap_or_default();
                    let drawable = matches!(project.task, Task::BoundingBoxes | Task::Polygons);
                    let suggested = self.suggestion().map(|(_, shapes)| shapes);
                    let edits = if drawable {
                        let scene = Scene {
                            shapes: &self.shapes,
                            suggested: suggested.as_deref().unwrap_or_default(),
                            labels: &project.labels,
                            active: &active,
                            polygons: project.task == Task::Polygons,
                            selected: self.selected,
                        };
                        self.image.ui(ui, &texture, size, &scene)
                    } else {
                        // Classification: the image alone, the class chosen with a hotkey.
                        let scene = Scene {
                            shapes: &[],
                            suggested: &[],
                            labels: &project.labels,
                            active: &active,
                            polygons: false,
                            selected: None,
                        };
                        ImageView::default().ui(ui, &texture, size, &scene);
                        Vec::new()
                    };
                    for edit in edits {
                        match edit {
                            Edit::Add(shape) => {
                                self.change(|shapes| shapes.push(shape));
                                self.selected = Some(self.shapes.len() - 1);
                            }
                            Edit::Select(i) => self.selected = i,
                            Edit::Replace {
                                index,
                                shape,
                                first,
                            } => {
                                if first {
                                    self.remember();
                                }
                                if let Some(s) = self.shapes.get_mut(index) {
                                    // Its geometry changed: what was derived from it is not
                                    // true any more (a COCO area read with it).
                                    *s = shape.reshaped();
                                }
                            }
                        }
                    }
                }
                (None, None) => {
                    ui.spinner();
                }
            }
        });
    }

    fn filter_bar(&mut self, ui: &mut egui::Ui, project: &Project) {
        ui.horizontal(|ui| {
            let mut changed = false;
            ui.label("Show");
            for (status, label) in [
                (None, "all"),
                (Some(Status::Unlabeled), "unlabeled"),
                (Some(Status::Labeled), "needs review"),
                (Some(Status::Accepted), "accepted"),
                (Some(Status::Rejected), "rejected"),
            ] {
                changed |= ui
                    .selectable_value(&mut self.filter.status, status, label)
                    .changed();
            }
            let with = ui.label("with");
            egui::ComboBox::from_id_salt("label-filter")
                .selected_text(
                    self.filter
                        .label
                        .clone()
                        .unwrap_or_else(|| "any label".into()),
                )
                .show_ui(ui, |ui| {
                    changed |= ui
                        .selectable_value(&mut self.filter.label, None, "any label")
                        .changed();
                    for l in &project.labels {
                        changed |= ui
                            .selectable_value(&mut self.filter.label, Some(l.name.clone()), &l.name)
                            .changed();
                    }
                })
                .response
                .labelled_by(with.id);
            if changed {
                self.items = None;
                self.cursor = 0;
            }
            ui.separator();
            let n = self.item_count();
            ui.label(if n == 0 {
                "0 items".to_owned()
            } else {
                format!("{} of {n}", self.cursor + 1)
            });
        });
    }

    /// Asks for the current item and the next few, so moving on finds them decoded.
    fn fetch_ahead(&mut self, service: &Service, project: &Project) {
        let Some(Loadable::Ready(items)) = &self.items else {
            return;
        };
        let wanted: Vec<i64> = items
            .iter()
            .skip(self.cursor)
            .take(AHEAD + 1)
            .map(|i| i.position)
            .collect();
        for position in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.views.entry(position) {
                service.send(LabelCommand::LoadItem {
                    project: project.name.clone(),
                    position,
                });
                slot.insert(Loadable::Loading);
            }
        }
        // Keep memory bounded: textures of items far behind are dropped.
        let keep: Vec<i64> = items
            .iter()
            .skip(self.cursor.saturating_sub(AHEAD))
            .take(2 * AHEAD + 2)
            .map(|i| i.position)
            .collect();
        self.textures.retain(|p, _| keep.contains(p));
        self.views.retain(|p, _| keep.contains(p));
    }

    fn remember(&mut self) {
        self.history.record(&self.shapes);
    }

    fn change(&mut self, f: impl FnOnce(&mut Vec<Shape>)) {
        self.remember();
        f(&mut self.shapes);
    }

    fn move_by(&mut self, delta: isize) {
        let n = self.item_count();
        if n > 0 {
            self.cursor = (self.cursor as isize + delta).clamp(0, n as isize - 1) as usize;
        }
    }

    fn submit(&mut self, service: &Service, project: &Project, item: &Item) {
        if project.task.classifies()
            && !self.shapes.iter().any(|s| matches!(s, Shape::Class { .. }))
        {
            // An item saved with no class would count as labeled and export as unlabeled.
            self.message = Some(Err(format!(
                "Item {} has no label yet: pick one (keys 1-9), or move on with N",
                item.position + 1
            )));
            return;
        }
        let source = match self.accepted.take() {
            Some((model, shapes)) if same_shapes(&shapes, &self.shapes) => format!("model:{model}"),
            _ => "human".to_owned(),
        };
        service.send(LabelCommand::Submit {
            project: project.name.clone(),
            position: item.position,
            shapes: self.shapes.clone(),
            source,
        });
        self.editing = None;
        // Under a status filter the submitted item leaves the list, and the next one takes its
        // place; otherwise move on.
        if self.filter.status.is_none() {
            self.move_by(1);
        }
    }

    fn keys(&mut self, ui: &egui::Ui, service: &Service, project: &Project, item: &Item) {
        if ui.ctx().egui_wants_keyboard_input() {
            return;
        }
        let accept = ui.input(|i| i.key_pressed(egui::Key::A));
        if accept {
            self.accept_suggestion();
        }
        let (digit, next, prev, enter, undo, redo, delete) = ui.input_mut(|i| {
            let digit = (1..=9).find(|d| {
                i.key_pressed(egui::Key::from_name(&d.to_string()).unwrap_or(egui::Key::Num0))
            });
            let redo = i.consume_key(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::Z,
            );
            let undo = i.consume_key(egui::Modifiers::COMMAND, egui::Key::Z);
            (
                digit,
                i.key_pressed(egui::Key::N) || i.key_pressed(egui::Key::ArrowRight),
                i.key_pressed(egui::Key::P) || i.key_pressed(egui::Key::ArrowLeft),
                i.key_pressed(egui::Key::Enter),
                undo,
                redo,
                i.key_pressed(egui::Key::Delete),
            )
        });
        if let Some(d) = digit
            && let Some(label) = project
                .labels
                .iter()
                .position(|l| l.hotkey == char::from_digit(d, 10))
        {
            self.pick(label, project);
        }
        if undo && self.history.undo(&mut self.shapes) {
            self.selected = None;
        }
        if redo {
            self.history.redo(&mut self.shapes);
        }
        if delete
            && let Some(i) = self.selected.take()
            && i < self.shapes.len()
        {
            self.change(|shapes| {
                shapes.remove(i);
            });
        }
        if enter && self.image.polygon.is_empty() {
            self.submit(service, project, item);
        }
        if next {
            self.move_by(1);
        }
        if prev {
            self.move_by(-1);
        }
    }

    /// Picks label `index`: for class tasks it sets (or, multi-label, toggles) the class; for
    /// drawing it becomes the label of new shapes and of the selected one.
    fn pick(&mut self, index: usize, project: &Project) {
        self.active = index;
        let name = project.labels[index].name.clone();
        match project.task {
            Task::ImageClassification | Task::TextClassification | Task::RowClassification => {
                self.change(|shapes| {
                    *shapes = vec![Shape::Class {
                        label: name,
                        confidence: None,
                        attributes: Default::default(),
                    }];
                });
            }
            Task::ImageMultiLabel | Task::TextMultiLabel => self.change(|shapes| {
                if let Some(i) = shapes.iter().position(|s| s.label() == name) {
                    shapes.remove(i);
                } else {
                    shapes.push(Shape::Class {
                        label: name,
                        confidence: None,
                        attributes: Default::default(),
                    });
                }
            }),
            _ => {
                if let Some(i) = self.selected
                    && i < self.shapes.len()
                {
                    self.change(|shapes| relabel(&mut shapes[i], &name));
                }
            }
        }
    }

    fn side_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        project: &Project,
        item: &Item,
        view: &ItemView,
    ) {
        ui.strong(&item.name);
        ui.label(format!("status: {}", item.status.as_str()));
        if let Some(latest) = &view.latest {
            ui.weak(format!(
                "last saved by {} ({})",
                latest.annotator, latest.source
            ));
        }
        ui.separator();
        if project.task == Task::RowValue {
            self.value_ui(ui, service, project, item);
        } else {
            self.labels_ui(ui, project, view);
        }
        ui.separator();
        ui.horizontal(|ui| {
            if ui.button("Submit").on_hover_text("Enter").clicked() {
                self.submit(service, project, item);
            }
            ui.add_enabled_ui(self.history.can_undo(), |ui| {
                if ui.button("Undo").on_hover_text("Ctrl+Z").clicked() {
                    self.history.undo(&mut self.shapes);
                }
            });
            ui.add_enabled_ui(self.history.can_redo(), |ui| {
                if ui.button("Redo").on_hover_text("Ctrl+Shift+Z").clicked() {
                    self.history.redo(&mut self.shapes);
                }
            });
        });
        if !project.task.rows() {
            self.assist_ui(ui, service, project, view);
        }
        if item.status != Status::Unlabeled {
            ui.separator();
            ui.strong("Review");
            ui.add(
                egui::TextEdit::singleline(&mut self.comment)
                    .hint_text("comment (needed to reject)"),
            );
            ui.horizontal(|ui| {
                for (accepted, text) in [(true, "Accept"), (false, "Reject")] {
                    if ui.button(text).clicked() {
                        service.send(LabelCommand::Review {
                            project: project.name.clone(),
                            position: item.position,
                            accepted,
                            comment: std::mem::take(&mut self.comment),
                        });
                    }
                }
            });
        }
        ui.separator();
        ui.weak(shortcuts(project.task));
    }

    /// A row_value item's number: typed, kept as the item's one value; Enter submits.
    fn value_ui(&mut self, ui: &mut egui::Ui, service: &Service, project: &Project, item: &Item) {
        let quantity = project
            .labels
            .first()
            .map(|l| l.name.clone())
            .unwrap_or_default();
        let named = ui.strong(&quantity);
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut self.value)
                    .hint_text("a number")
                    .desired_width(120.0),
            )
            .labelled_by(named.id);
        let typed = self.value.trim().to_owned();
        let parsed = typed.parse::<f64>().ok().filter(|v| v.is_finite());
        if edit.changed() {
            let shapes = parsed
                .map(|value| {
                    vec![Shape::Value {
                        label: quantity.clone(),
                        value,
                        confidence: None,
                        attributes: Default::default(),
                    }]
                })
                .unwrap_or_default();
            self.change(|s| *s = shapes);
        }
        if !typed.is_empty() && parsed.is_none() {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("'{typed}' is not a number"),
            );
        }
        if edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            self.submit(service, project, item);
        }
    }

    /// The label schema as buttons: a class task's chosen class, a drawing task's active label.
    fn labels_ui(&mut self, ui: &mut egui::Ui, project: &Project, view: &ItemView) {
        ui.strong("Labels");
        let mut picked = None;
        let classifies = project.task.classifies();
        for (i, label) in project.labels.iter().enumerate() {
            let color = annotator::color_of(&project.labels, &label.name);
            let key = label.hotkey.map(|k| format!("{k}  ")).unwrap_or_default();
            let text = RichText::new(format!("{key}{}", label.name)).color(color);
            // A class task shows what the item is labeled with; a drawing task the label the
            // next shape gets.
            let chosen = if classifies {
                self.shapes.iter().any(|s| s.label() == label.name)
            } else {
                i == self.active
            };
            if ui.selectable_label(chosen, text).clicked() {
                picked = Some(i);
            }
        }
        if let Some(i) = picked {
            self.pick(i, project);
        }
        if classifies {
            if self.shapes.is_empty() {
                ui.weak("No label chosen yet");
            }
        } else {
            self.shapes_ui(ui, project, view);
        }
    }

    /// The drawn shapes or marked spans of the item, to select or remove.
    fn shapes_ui(&mut self, ui: &mut egui::Ui, project: &Project, view: &ItemView) {
        ui.separator();
        let what = if project.task == Task::EntitySpans {
            "Spans"
        } else {
            "Shapes"
        };
        ui.strong(format!("{what} ({})", self.shapes.len()));
        let mut remove = None;
        // Only the rows in view are laid out: an image may carry thousands of shapes.
        let row = ui.spacing().interact_size.y + ui.spacing().item_spacing.y;
        egui::ScrollArea::vertical()
            .id_salt("shape-rows")
            .max_height(240.0)
            .show_rows(ui, row, self.shapes.len(), |ui, rows| {
                for i in rows {
                    let text = describe_in(&self.shapes[i], view.text.as_deref());
                    ui.horizontal(|ui| {
                        if ui
                            .selectable_label(self.selected == Some(i), text)
                            .clicked()
                        {
                            self.selected = Some(i);
                        }
                        if ui
                            .small_button("✖")
                            .on_hover_text("Remove (Delete)")
                            .clicked()
                        {
                            remove = Some(i);
                        }
                    });
                }
            });
        if let Some(i) = remove {
            self.change(|shapes| {
                shapes.remove(i);
            });
            self.selected = None;
        }
    }

    /// The current item's pre-labeled shapes that clear the threshold, while nothing is drawn
    /// yet.
    fn suggestion(&self) -> Option<(String, Vec<Shape>)> {
        let Some(Loadable::Ready(view)) = self.editing.and_then(|p| self.views.get(&p)) else {
            return None;
        };
        let (model, shapes) = view.prediction.as_ref()?;
        let offered = lathe_core::labeling::assist::offered(shapes, self.threshold.0);
        (self.shapes.is_empty() && !offered.is_empty()).then(|| (model.clone(), offered))
    }

    fn accept_suggestion(&mut self) {
        if let Some((model, shapes)) = self.suggestion() {
            self.change(|current| *current = shapes.clone());
            self.accepted = Some((model, shapes));
        }
    }

    fn assist_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        project: &Project,
        view: &ItemView,
    ) {
        let model = lathe_core::labeling::assist::baseline_name(project.task);
        ui.separator();
        ui.strong("Assist");
        ui.add(egui::Slider::new(&mut self.threshold.0, 0.0..=1.0).text("threshold"));
        if project.task.asset_kind() == lathe_core::assets::AssetKind::Images {
            self.model_ui(ui, service, model);
        }
        let chosen = Some(self.model.trim().to_owned()).filter(|m| !m.is_empty());
        let hover = match &chosen {
            Some(m) => format!("the registered model {m}: its class i is label i"),
            None => format!("{model}, trained on the items labeled so far"),
        };
        if ui
            .button("Pre-label unlabeled items")
            .on_hover_text(hover)
            .clicked()
        {
            service.send(LabelCommand::Prelabel {
                project: project.name.clone(),
                threshold: self.threshold.0,
                model: chosen,
            });
        }
        if let Some((model, shapes)) = self.suggestion() {
            let text: Vec<String> = shapes
                .iter()
                .map(|s| {
                    let shown = describe_in(s, view.text.as_deref());
                    format!("{shown} ({:.2})", s.confidence().unwrap_or(1.0))
                })
                .collect();
            ui.label(format!("Suggested by {model}: {}", text.join(", ")));
            if ui.button("Accept suggestion").on_hover_text("A").clicked() {
                self.accept_suggestion();
            }
        }
    }

    /// The model to pre-label an image project with: the baseline or a registered ONNX model.
    fn model_ui(&mut self, ui: &mut egui::Ui, service: &Service, baseline: &str) {
        if self.onnx_models.is_none() {
            service.send(LabelCommand::LoadOnnxModels);
            self.onnx_models = Some(Loadable::Loading);
        }
        let shown = if self.model.is_empty() {
            baseline.to_owned()
        } else {
            self.model.clone()
        };
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("Model")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.model, String::new(), baseline);
                    match &self.onnx_models {
                        Some(Loadable::Ready(models)) => {
                            for m in models.iter() {
                                ui.selectable_value(&mut self.model, m.clone(), m);
                            }
                            if models.is_empty() {
                                ui.weak(
                                    "No registered ONNX models: `lathe models register F.onnx`",
                                );
                            }
                        }
                        Some(Loadable::Failed(e)) => {
                            ui.colored_label(ui.visuals().error_fg_color, e);
                        }
                        _ => {
                            ui.spinner();
                        }
                    }
                });
            if ui
                .small_button("Reload")
                .on_hover_text("Read the registry again")
                .clicked()
            {
                self.onnx_models = None;
            }
        });
    }

    /// The text, word by word. Spans are marked by dragging across words, or by clicking the
    /// first word and then the last; either way they snap to whole words and show in their
    /// label's colour.
    fn text_ui(&mut self, ui: &mut egui::Ui, project: &Project, text: &str) {
        let words = word_bounds(text);
        let spans = project.task == Task::EntitySpans;
        let active = project
            .labels
            .get(self.active)
            .map(|l| l.name.clone())
            .unwrap_or_default();
        if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            self.marking = None;
        }
        let (mut clicked, mut pressed) = (None, None);
        let mut rects = Vec::with_capacity(words.len());
        let marked = self
            .marking
            .map(|m| (m.anchor.min(m.to), m.anchor.max(m.to)));
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.spacing_mut().item_spacing.x = 4.0;
                for (i, (start, end)) in words.iter().enumerate() {
                    let covering = self.shapes.iter().find(|s| match s {
                        Shape::Span {
                            start: s0, end: s1, ..
                        } => s0 <= start && end <= s1,
                        _ => false,
                    });
                    let mut rich = RichText::new(&text[*start..*end]).size(16.0);
                    if let Some(shape) = covering {
                        rich = rich.background_color(
                            annotator::color_of(&project.labels, shape.label()).gamma_multiply(0.5),
                        );
                    }
                    if marked.is_some_and(|(lo, hi)| (lo..=hi).contains(&i)) {
                        rich = rich.underline();
                    }
                    let response = ui.add(
                        egui::Label::new(rich)
                            .selectable(false)
                            .sense(egui::Sense::click_and_drag()),
                    );
                    if spans && response.clicked() {
                        clicked = Some(i);
                    }
                    if spans && response.drag_started() {
                        pressed = Some(i);
                    }
                    rects.push(response.rect);
                }
            });
        });
        if let Some(i) = pressed {
            self.marking = Some(Marking {
                anchor: i,
                to: i,
                dragging: true,
            });
        }
        let finished = match (&mut self.marking, clicked) {
            (Some(m), _) if m.dragging => {
                let (pointer, released) =
                    ui.input(|i| (i.pointer.hover_pos(), i.pointer.any_released()));
                if let Some(i) = pointer.and_then(|p| rects.iter().position(|r| r.contains(p))) {
                    m.to = i;
                }
                released
            }
            (Some(m), Some(i)) => {
                m.to = i;
                true
            }
            (None, Some(i)) => {
                self.marking = Some(Marking {
                    anchor: i,
                    to: i,
                    dragging: false,
                });
                false
            }
            (_, None) => false,
        };
        if finished && let Some(m) = self.marking.take() {
            let (lo, hi) = (m.anchor.min(m.to), m.anchor.max(m.to));
            let span = Shape::Span {
                label: active,
                start: char_index(text, words[lo].0),
                end: char_index(text, words[hi].1),
                confidence: None,
                attributes: Default::default(),
            };
            self.change(|shapes| shapes.push(span));
        }
    }
}

/// What an item was saved with, in the task's words: its classes, or a count of spans or
/// shapes.
fn saved_as(shapes: &[Shape]) -> String {
    let classes: Vec<&str> = shapes
        .iter()
        .filter(|s| matches!(s, Shape::Class { .. }))
        .map(Shape::label)
        .collect();
    let spans = shapes
        .iter()
        .filter(|s| matches!(s, Shape::Span { .. }))
        .count();
    if !classes.is_empty() {
        classes.join(", ")
    } else if spans > 0 {
        format!("{spans} span(s)")
    } else {
        format!("{} shape(s)", shapes.len())
    }
}

/// The keys and gestures of a task's annotator, as a reminder under the side panel.
fn shortcuts(task: Task) -> String {
    let drawing = match task {
        Task::BoundingBoxes => {
            " · drag to draw; a selected box: drag a corner to resize, inside to move · Ctrl+scroll zoom"
        }
        Task::Polygons => {
            " · click to add vertices, C or the first vertex to close; drag to draw a box; click a shape to select it (Shift+click starts a polygon inside), drag its vertices or inside · Ctrl+scroll zoom"
        }
        Task::EntitySpans => " · drag across words (or click the first and the last) to mark",
        Task::RowValue => " · type the value, Enter to submit",
        _ => "",
    };
    format!(
        "1–9 label · N/P next/previous · Enter submit · Ctrl+Z undo · Delete remove · A accept suggestion{drawing}"
    )
}

/// A span being marked, from word `anchor` to word `to` (either way round).
#[derive(Debug, Clone, Copy)]
struct Marking {
    anchor: usize,
    to: usize,
    /// By a drag (it ends on release), not by clicks (it ends on the second click).
    dragging: bool,
}

/// Shapes equal but for their confidences.
fn same_shapes(a: &[Shape], b: &[Shape]) -> bool {
    let plain = |shapes: &[Shape]| -> Vec<String> { shapes.iter().map(describe).collect() };
    plain(a) == plain(b)
}

/// A byte offset as a character offset (spans count characters).
fn char_index(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// The byte ranges of the words (runs of non-space) of `text`.
fn word_bounds(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

fn relabel(shape: &mut Shape, name: &str) {
    match shape {
        Shape::Class { label, .. }
        | Shape::Box { label, .. }
        | Shape::Polygon { label, .. }
        | Shape::Span { label, .. }
        | Shape::Value { label, .. } => {
            *label = name.to_owned();
        }
    }
}

/// A shape as the side panel lists it: a span by its words when the text is at hand.
fn describe_in(shape: &Shape, text: Option<&str>) -> String {
    match (shape, text) {
        (
            Shape::Span {
                label, start, end, ..
            },
            Some(text),
        ) => {
            let words: String = text.chars().skip(*start).take(end - start).collect();
            let shown: String = words.chars().take(40).collect();
            let more = if words.chars().count() > 40 {
                "…"
            } else {
                ""
            };
            format!("{label}  \u{201c}{shown}{more}\u{201d}")
        }
        _ => describe(shape),
    }
}

fn describe(shape: &Shape) -> String {
    match shape {
        Shape::Class { label, .. } => label.clone(),
        Shape::Box {
            label, x, y, w, h, ..
        } => format!("{label}  {x:.0},{y:.0} {w:.0}×{h:.0}"),
        Shape::Polygon { label, points, .. } => format!("{label}  {} points", points.len()),
        Shape::Span {
            label, start, end, ..
        } => format!("{label}  {start}..{end}"),
        Shape::Value { label, value, .. } => format!("{label} = {value}"),
    }
}

/// A number as a person reads it: collection keeps numbers as Float64, so an age of 36 is
/// stored `36.0` and shown `36`; anything else as it is.
fn whole(text: &str) -> &str {
    match text.strip_suffix(".0") {
        Some(int) if int.parse::<i64>().is_ok() => int,
        _ => text,
    }
}

/// A table row to label: why it was sent, then its fields, one a line.
fn row_ui(ui: &mut egui::Ui, row: &lathe_core::labeling::rows::RowItem) {
    if let Some(reason) = &row.reason {
        ui.label(RichText::new(format!("Sent by a monitor — {reason}")).italics());
        ui.add_space(4.0);
    }
    egui::ScrollArea::vertical()
        .id_salt("row-fields")
        .show(ui, |ui| {
            egui::Grid::new("row-fields-grid")
                .num_columns(2)
                .striped(true)
                .spacing([24.0, 6.0])
                .show(ui, |ui| {
                    for (name, value) in &row.fields {
                        ui.strong(name);
                        match value {
                            Some(v) => ui.monospace(whole(v)),
                            None => ui.weak("(missing)"),
                        };
                        ui.end_row();
                    }
                });
        });
}
