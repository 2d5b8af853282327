//! The Models section: registered models on the left; on the right the chosen model's versions
//! with their stage, aliases, source and run, and the chosen version's signature and tags.

use std::sync::Arc;

use lathe_core::format;
use lathe_core::service::{PromotionEvent, Service, TrackingCommand, TrackingEvent};
use lathe_core::tracking::types::{ModelVersion, RegisteredModel};

use crate::loadable::{Loadable, ready_or_status_ui};
use crate::vocabulary::Navigate;

mod deploy;
mod promotion;

use deploy::DeployPanel;
use promotion::PromotionPanel;

type Models = Arc<Vec<(RegisteredModel, Vec<ModelVersion>)>>;

#[derive(Default)]
pub struct ModelsPanel {
    models: Option<Loadable<Models>>,
    selected: Option<String>,
    version: Option<String>,
    promotion: PromotionPanel,
    deploy: DeployPanel,
}

impl ModelsPanel {
    pub fn on_event(&mut self, event: TrackingEvent) -> Option<TrackingEvent> {
        match event {
            TrackingEvent::Models(reply) => self.models = Some(Loadable::from_reply(reply)),
            other => return Some(other),
        }
        None
    }

    /// What a Deploy… from this section did.
    pub fn deployed(
        &mut self,
        reply: &lathe_core::service::Reply<(
            lathe_core::endpoints::Endpoint,
            lathe_core::endpoints::Deployment,
        )>,
    ) {
        self.deploy.deployed(reply);
    }

    pub fn on_promotion(&mut self, event: PromotionEvent) {
        self.promotion.on_event(event);
    }

    /// The registry changed elsewhere: the list is read again, the one shown staying until it
    /// arrives; so are the gates shown.
    pub fn models_changed(&mut self, service: &Service) {
        if self.models.is_some() {
            service.send(TrackingCommand::LoadModels);
        }
        self.promotion.reload();
    }

    pub fn select(&mut self, name: &str) {
        self.selected = Some(name.to_owned());
        self.version = None;
        self.models = None;
    }

    pub fn list_ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        if self.models.is_none() {
            self.models = Some(Loadable::Loading);
            service.send(TrackingCommand::LoadModels);
        }
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.heading("Models");
            if ui.small_button("⟳").on_hover_text("Refresh").clicked() {
                self.models = None;
            }
        });
        let Some(models) = ready_or_status_ui(ui, self.models.as_ref(), "models").cloned() else {
            return;
        };
        if models.is_empty() {
            ui.weak("No registered models. Register one from a run (mlflow.register_model) or with `lathe models register PATH --name NAME`.");
            return;
        }
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                for (model, versions) in models.iter() {
                    let selected = self.selected.as_deref() == Some(model.name.as_str());
                    let label = format!("{}  ·  {} version(s)", model.name, versions.len());
                    if ui.selectable_label(selected, label).clicked() {
                        self.selected = Some(model.name.clone());
                        self.version = None;
                    }
                }
            });
    }

    pub fn main_ui(&mut self, ui: &mut egui::Ui, service: &Service) -> Option<Navigate> {
        let Some(Loadable::Ready(models)) = &self.models else {
            return None;
        };
        let models = Arc::clone(models);
        let Some((model, versions)) = models
            .iter()
            .find(|(m, _)| Some(m.name.as_str()) == self.selected.as_deref())
        else {
            ui.weak("Choose a model on the left.");
            return None;
        };
        ui.heading(&model.name);
        if !model.description.is_empty() {
            ui.label(&model.description);
        }
        ui.horizontal_wrapped(|ui| {
            for alias in &model.aliases {
                ui.label(
                    egui::RichText::new(format!("@{} · v{}", alias.alias, alias.version)).strong(),
                );
            }
            for tag in &model.tags {
                ui.weak(format!("{} = {}", tag.key, tag.value));
            }
        });
        ui.separator();
        let mut go = None;
        egui::Grid::new("model-versions")
            .striped(true)
            .num_columns(6)
            .show(ui, |ui| {
                for title in ["Version", "Stage", "Aliases", "Registered", "Run", "Source"] {
                    ui.strong(title);
                }
                ui.end_row();
                for v in versions {
                    let selected = self.version.as_deref() == Some(v.version.as_str());
                    if ui
                        .selectable_label(selected, format!("v{}", v.version))
                        .clicked()
                    {
                        self.version = Some(v.version.clone());
                    }
                    ui.label(&v.current_stage);
                    ui.label(
                        v.aliases
                            .iter()
                            .map(|a| format!("@{a}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                    ui.label(format::timestamp(v.creation_timestamp / 1000));
                    if v.run_id.is_empty() {
                        ui.weak("—");
                    } else if ui
                        .link(&v.run_id[..v.run_id.len().min(12)])
                        .on_hover_text("Open the run")
                        .clicked()
                    {
                        go = Some(Navigate::Run(v.run_id.clone()));
                    }
                    ui.label(&v.source);
                    ui.end_row();
                }
            });
        let shown = self
            .version
            .clone()
            .or_else(|| versions.first().map(|v| v.version.clone()));
        if let Some(v) = versions.iter().find(|v| Some(&v.version) == shown.as_ref()) {
            ui.separator();
            version_ui(ui, v);
            ui.separator();
            if let Some(link) = self.deploy.deploy_ui(ui, service, v) {
                go = Some(link);
            }
            ui.separator();
            self.promotion.promotion_ui(ui, service, v);
        }
        go
    }
}

fn version_ui(ui: &mut egui::Ui, v: &ModelVersion) {
    ui.strong(format!("{} v{}", v.name, v.version));
    if !v.description.is_empty() {
        ui.label(&v.description);
    }
    match &v.signature {
        None => {
            ui.weak("No signature: the model's MLmodel file has none, or the model lives outside Lathe.");
        }
        Some(signature) => {
            ui.columns(2, |columns| {
                for (column, part) in columns.iter_mut().zip(["inputs", "outputs"]) {
                    column.strong(part);
                    egui::Grid::new(("signature", part))
                        .striped(true)
                        .show(column, |ui| {
                            for field in signature[part].as_array().into_iter().flatten() {
                                let name = field["name"]
                                    .as_str()
                                    .map(str::to_owned)
                                    .or_else(|| field["name"].as_i64().map(|n| n.to_string()))
                                    .unwrap_or_default();
                                let ty = match field["tensor-spec"]["dtype"].as_str() {
                                    Some(dtype) => {
                                        format!("{dtype} {}", field["tensor-spec"]["shape"])
                                    }
                                    None => field["type"].as_str().unwrap_or("?").to_owned(),
                                };
                                ui.label(name);
                                ui.label(ty);
                                ui.end_row();
                            }
                        });
                }
            });
        }
    }
    for tag in &v.tags {
        ui.weak(format!("{} = {}", tag.key, tag.value));
    }
}
