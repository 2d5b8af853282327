//! Datastores in the Data section, as Azure ML studio keeps them beside data assets: the list
//! under the assets; for the one selected, Check, Push and Pull (everything, or named assets,
//! experiments and models) with the last report, Import of a path in it as a data asset, and
//! its YAML, saved or deleted. A new datastore starts from a YAML template.

use std::collections::HashMap;
use std::sync::Arc;

use lathe_core::assets::name_from_path;
use lathe_core::datastores::{CheckReport, Datastore};
use lathe_core::import::ImportRequest;
use lathe_core::service::{DataCommand, DatastoreCommand, DatastoreEvent, Service};
use lathe_core::sync::{Item, Outcome, Report, Selection};

use crate::loadable::{Loadable, ready_or_status_ui};

/// A new datastore's starting point.
const TEMPLATE: &str = "name: team-bucket
type: s3
description: Where the team shares data and runs
endpoint_url: http://127.0.0.1:9000   # leave out for AWS
bucket: ml-data
# prefix: team/                       # only keys under it
region: us-east-1
credentials:                          # names of variables, never the secrets
  access_key_id_env: TEAM_S3_KEY
  secret_access_key_env: TEAM_S3_SECRET
";

/// What the user typed to choose what a sync moves (comma-separated; all empty: everything).
#[derive(Default)]
struct Choice {
    assets: String,
    experiments: String,
    models: String,
}

impl Choice {
    fn selection(&self) -> Selection {
        let split = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Selection {
            assets: split(&self.assets),
            runs: Vec::new(),
            experiments: split(&self.experiments),
            models: split(&self.models),
        }
    }
}

#[derive(Default)]
pub struct DatastoresView {
    list: Loadable<Arc<Vec<Datastore>>>,
    asked: bool,
    /// The datastore shown; `Some("")` is a new one being written.
    selected: Option<String>,
    /// The YAML being edited, for the datastore it belongs to.
    yaml: Option<(String, String)>,
    /// What the last import or delete said, at the top.
    message: Option<Result<String, String>>,
    /// What the last save said, beside Save.
    settings_message: Option<Result<String, String>>,
    checks: HashMap<String, Loadable<Arc<CheckReport>>>,
    /// The last push or pull of each datastore: push?, and its report or why it failed.
    reports: HashMap<String, (bool, Loadable<Arc<Report>>)>,
    choice: Choice,
    import_path: String,
    import_name: String,
    confirm_delete: bool,
}

impl DatastoresView {
    pub fn is_open(&self) -> bool {
        self.selected.is_some()
    }

    /// Shows nothing of datastores in the main area (an asset was selected).
    pub fn close(&mut self) {
        self.selected = None;
    }

    /// Datastores changed elsewhere (the CLI, another window): the list is read again.
    pub fn changed(&mut self, service: &Service) {
        service.send(DatastoreCommand::Load);
    }

    pub fn on_event(&mut self, event: DatastoreEvent, service: &Service) {
        match event {
            DatastoreEvent::Loaded(reply) => self.list = Loadable::from_reply(reply),
            DatastoreEvent::Saved(reply) => match reply {
                Ok(saved) => {
                    let name = saved.spec.name.clone();
                    self.settings_message = Some(Ok(format!("Saved datastore {name}.")));
                    self.selected = Some(name.clone());
                    self.yaml = Some((name.clone(), saved.spec.to_yaml()));
                    // What was checked or moved was for the settings before.
                    self.reports.remove(&name);
                    self.checks.insert(name.clone(), Loadable::Loading);
                    service.send(DatastoreCommand::Check { name });
                    service.send(DatastoreCommand::Load);
                }
                Err(e) => self.settings_message = Some(Err(e.to_string())),
            },
            DatastoreEvent::Deleted { name, reply } => match reply {
                Ok(_) => {
                    self.message = Some(Ok(format!(
                        "Deleted datastore {name}; its bucket is untouched."
                    )));
                    self.selected = None;
                    service.send(DatastoreCommand::Load);
                }
                Err(e) => self.message = Some(Err(e.to_string())),
            },
            DatastoreEvent::Checked { name, reply } => {
                self.checks.insert(name, Loadable::from_reply(reply));
            }
            DatastoreEvent::Synced { name, push, reply } => {
                self.reports
                    .insert(name, (push, Loadable::from_reply(reply)));
            }
        }
    }

    /// The list, under the data assets.
    pub fn list_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        if !self.asked {
            self.asked = true;
            service.send(DatastoreCommand::Load);
        }
        ui.horizontal(|ui| {
            ui.strong("Datastores");
            if ui
                .small_button("+ Add")
                .on_hover_text("Add an S3-compatible datastore from its YAML")
                .clicked()
            {
                self.selected = Some(String::new());
                self.yaml = Some((String::new(), TEMPLATE.to_owned()));
                self.message = None;
                self.settings_message = None;
            }
        });
        let Some(list) = ready_or_status_ui(ui, Some(&self.list), "datastores").cloned() else {
            return;
        };
        if list.is_empty() {
            ui.weak("None yet: add one to push, pull and import from S3.");
        }
        for datastore in list.iter() {
            let name = &datastore.spec.name;
            let selected = self.selected.as_deref() == Some(name.as_str());
            if ui
                .selectable_label(selected, format!("🗄 {name}"))
                .on_hover_text(datastore.spec.location())
                .clicked()
            {
                if self.selected.as_deref() != Some(name.as_str()) {
                    // What was typed for one datastore is not meant for another.
                    self.choice = Choice::default();
                    self.import_path.clear();
                    self.import_name.clear();
                }
                self.selected = Some(name.clone());
                self.message = None;
                self.settings_message = None;
                self.confirm_delete = false;
            }
        }
    }

    /// The selected datastore, or the form of a new one.
    pub fn main_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        let Some(name) = self.selected.clone() else {
            return;
        };
        let datastore = match &self.list {
            Loadable::Ready(list) => list.iter().find(|d| d.spec.name == name).cloned(),
            _ => None,
        };
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| match datastore {
                Some(datastore) => self.datastore_ui(ui, service, &datastore),
                None => {
                    ui.heading("New datastore");
                    ui.weak(
                        "An S3-compatible object store (AWS S3, MinIO, Ceph). Its credentials \
                         are named, never written here: environment variables or a profile of \
                         ~/.aws/credentials.",
                    );
                    self.yaml_ui(ui, service, "");
                    if ui.button("Cancel").clicked() {
                        self.selected = None;
                    }
                }
            });
    }

    fn message_ui(&self, ui: &mut egui::Ui) {
        show_message(ui, self.message.as_ref());
    }
}

/// A message in its colour: plain when it went well, red when not.
fn show_message(ui: &mut egui::Ui, message: Option<&Result<String, String>>) {
    match message {
        Some(Ok(text)) => {
            ui.label(text);
        }
        Some(Err(text)) => {
            ui.colored_label(ui.visuals().error_fg_color, text);
        }
        None => {}
    }
}

impl DatastoresView {
    fn datastore_ui(&mut self, ui: &mut egui::Ui, service: &Service, datastore: &Datastore) {
        let spec = &datastore.spec;
        let name = spec.name.clone();
        ui.heading(format!("🗄 {name}"));
        ui.label(format!("{} at {}", spec.location(), spec.endpoint()));
        if let Some(description) = &spec.description {
            ui.weak(description);
        }
        self.message_ui(ui);
        ui.horizontal_wrapped(|ui| {
            if ui
                .button("Check")
                .on_hover_text("Find the credentials, reach the endpoint, list the prefix")
                .clicked()
            {
                self.checks.insert(name.clone(), Loadable::Loading);
                service.send(DatastoreCommand::Check { name: name.clone() });
            }
            match self.checks.get(&name) {
                Some(Loadable::Loading) => {
                    ui.spinner();
                }
                Some(Loadable::Ready(report)) => {
                    ui.label(format!(
                        "✔ reachable in {} ms, credentials from {}, {}",
                        report.latency_ms,
                        report.credentials,
                        if report.has_objects {
                            "objects under the prefix"
                        } else {
                            "nothing under the prefix yet"
                        }
                    ));
                }
                Some(Loadable::Failed(e)) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                None => {}
            }
        });
        ui.separator();
        self.sync_ui(ui, service, &name);
        ui.separator();
        self.import_ui(ui, service, &name);
        ui.separator();
        ui.collapsing("Settings (YAML)", |ui| {
            self.yaml_ui(ui, service, &name);
            ui.add_space(4.0);
            if self.confirm_delete {
                ui.horizontal(|ui| {
                    ui.label(format!(
                        "Forget datastore {name}? Its bucket is not touched."
                    ));
                    if ui.button("Delete").clicked() {
                        service.send(DatastoreCommand::Delete { name: name.clone() });
                        self.confirm_delete = false;
                    }
                    if ui.button("Keep").clicked() {
                        self.confirm_delete = false;
                    }
                });
            } else if ui.button("Delete datastore…").clicked() {
                self.confirm_delete = true;
            }
        });
    }

    fn sync_ui(&mut self, ui: &mut egui::Ui, service: &Service, name: &str) {
        ui.strong("Sync");
        ui.weak(
            "Push sends data asset versions, runs and model versions here (each file once); \
             Pull brings what is here into this workspace. Leave the fields empty for \
             everything; separate names with commas.",
        );
        egui::Grid::new("sync-choice")
            .num_columns(2)
            .spacing([8.0, 4.0])
            .show(ui, |ui| {
                for (label, text, hint) in [
                    (
                        "Assets",
                        &mut self.choice.assets,
                        "all (or: customers, reviews:2)",
                    ),
                    (
                        "Experiments",
                        &mut self.choice.experiments,
                        "all (or: churn-demo)",
                    ),
                    (
                        "Models",
                        &mut self.choice.models,
                        "all (or: churn-classifier:1)",
                    ),
                ] {
                    ui.label(label);
                    ui.add(
                        egui::TextEdit::singleline(text)
                            .hint_text(hint)
                            .desired_width(280.0),
                    );
                    ui.end_row();
                }
            });
        let running = matches!(self.reports.get(name), Some((_, Loadable::Loading)));
        ui.horizontal_wrapped(|ui| {
            for (push, label) in [(true, "Push ⬆"), (false, "Pull ⬇")] {
                if ui.add_enabled(!running, egui::Button::new(label)).clicked() {
                    self.reports
                        .insert(name.to_owned(), (push, Loadable::Loading));
                    service.send(DatastoreCommand::Sync {
                        name: name.to_owned(),
                        push,
                        selection: self.choice.selection(),
                    });
                }
            }
            if running {
                ui.spinner();
                ui.weak("see the status bar to follow or cancel it");
            }
        });
        match self.reports.get(name) {
            Some((push, Loadable::Ready(report))) => report_ui(ui, *push, report),
            Some((push, Loadable::Failed(e))) if e == "cancelled" => {
                ui.label(if *push {
                    "Push cancelled. What was sent stays there; Push again goes on from where \
                     it stopped."
                } else {
                    "Pull cancelled. Nothing half-recorded; the files fetched are kept, and \
                     Pull again goes on from there."
                });
            }
            Some((push, Loadable::Failed(e))) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("{} failed: {e}", if *push { "Push" } else { "Pull" }),
                );
            }
            _ => {}
        }
    }

    fn import_ui(&mut self, ui: &mut egui::Ui, service: &Service, name: &str) {
        ui.strong("Import from this datastore");
        ui.weak(
            "A file (a table or a text file) or a folder (an image set), by its path under the \
             datastore's prefix.",
        );
        let mut go = false;
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Path");
            ui.add(
                egui::TextEdit::singleline(&mut self.import_path)
                    .hint_text("raw/customers.csv")
                    .desired_width(220.0),
            )
            .labelled_by(label.id);
            let label = ui.label("as asset");
            ui.add(
                egui::TextEdit::singleline(&mut self.import_name)
                    .hint_text("from the path")
                    .desired_width(140.0),
            )
            .labelled_by(label.id);
            let path = self.import_path.trim().trim_start_matches('/');
            go = ui
                .add_enabled(!path.is_empty(), egui::Button::new("Import"))
                .on_disabled_hover_text("Type the path of a file or folder first")
                .clicked();
        });
        if go {
            let path = self.import_path.trim().trim_start_matches('/').to_owned();
            let asset = match self.import_name.trim() {
                "" => name_from_path(std::path::Path::new(path.trim_end_matches('/'))),
                typed => typed.to_owned(),
            };
            service.send(DataCommand::Import(ImportRequest {
                path: format!("azureml://datastores/{name}/paths/{path}").into(),
                name: asset.clone(),
                kind: None,
                text_column: None,
                source_label: None,
            }));
            self.message = Some(Ok(format!(
                "Importing {path} as {asset}; it appears in the list when done."
            )));
        }
    }

    fn yaml_ui(&mut self, ui: &mut egui::Ui, service: &Service, name: &str) {
        if self.yaml.as_ref().is_none_or(|(n, _)| n != name) {
            let text = match &self.list {
                Loadable::Ready(list) => list
                    .iter()
                    .find(|d| d.spec.name == name)
                    .map_or_else(|| TEMPLATE.to_owned(), |d| d.spec.to_yaml()),
                _ => TEMPLATE.to_owned(),
            };
            self.yaml = Some((name.to_owned(), text));
        }
        let Some((_, text)) = &mut self.yaml else {
            return;
        };
        let label = ui.weak("Its YAML: Save checks every field.");
        // Lines are not wrapped (a wrapped YAML line reads as another key): it scrolls instead.
        egui::ScrollArea::horizontal()
            .id_salt("datastore-yaml")
            .show(ui, |ui| {
                ui.add(
                    egui::TextEdit::multiline(text)
                        .code_editor()
                        .desired_width(560.0)
                        .desired_rows(11),
                )
                .labelled_by(label.id);
            });
        let label = if name.is_empty() { "Create" } else { "Save" };
        ui.horizontal_wrapped(|ui| {
            if ui.button(label).clicked() {
                self.settings_message = None;
                let renamed = lathe_core::datastores::DatastoreSpec::from_yaml(text)
                    .ok()
                    .filter(|spec| !name.is_empty() && spec.name != name);
                if let Some(spec) = renamed {
                    self.settings_message = Some(Err(format!(
                        "A datastore keeps its name: to call it {}, add a new one with + Add and \
                         delete {name}.",
                        spec.name
                    )));
                } else {
                    service.send(DatastoreCommand::Save {
                        yaml: text.clone(),
                        replace: !name.is_empty(),
                    });
                }
            }
            show_message(ui, self.settings_message.as_ref());
        });
    }
}

/// A push's or pull's report (a datastore's or a tracking server's): the summary, what
/// changed, and what did not, folded.
pub(crate) fn report_ui(ui: &mut egui::Ui, push: bool, report: &Report) {
    ui.strong(report.summary(push));
    let same = |item: &&Item| matches!(item.outcome, Outcome::Unchanged | Outcome::AlreadyHere);
    let changed: Vec<&Item> = report.items.iter().filter(|i| !same(i)).collect();
    let unchanged: Vec<&Item> = report.items.iter().filter(same).collect();
    items_ui(ui, "sync-changed", push, &changed);
    if !unchanged.is_empty() {
        egui::CollapsingHeader::new(format!(
            "{} {}",
            unchanged.len(),
            if push { "unchanged" } else { "already here" }
        ))
        .id_salt("sync-unchanged")
        .show(ui, |ui| items_ui(ui, "sync-same", push, &unchanged));
    }
}

fn items_ui(ui: &mut egui::Ui, id: &str, push: bool, items: &[&Item]) {
    egui::Grid::new(id)
        .num_columns(3)
        .striped(true)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            for item in items {
                let word = item.outcome_word();
                match item.outcome {
                    Outcome::Skipped => {
                        ui.colored_label(ui.visuals().warn_fg_color, word);
                    }
                    Outcome::Failed => {
                        ui.colored_label(ui.visuals().error_fg_color, word);
                    }
                    Outcome::Sent | Outcome::Created | Outcome::Updated => {
                        ui.strong(word);
                    }
                    Outcome::Unchanged | Outcome::AlreadyHere => {
                        ui.weak(word);
                    }
                }
                ui.label(&item.label);
                let note = [item.moved_to(push), item.note.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                ui.weak(note);
                ui.end_row();
            }
        });
}
