//! A version's promotion: the gates of its model's policy for an alias, each green or red with
//! its value and what it needed; approvals and an Approve button; Promote, which moves the alias
//! only when every gate passes; the decisions on record; and the policy's YAML, edited in place.

use std::sync::Arc;

use egui::RichText;
use lathe_core::format;
use lathe_core::promotion::GateResult;
use lathe_core::service::{PromotionCommand, PromotionEvent, PromotionView, Service};
use lathe_core::tracking::types::ModelVersion;

use crate::loadable::{Loadable, ready_or_status_ui};

/// A policy to start from, for a model that has none.
fn template(model: &str) -> String {
    format!(
        "model: {model}\n\
         metrics:\n  - metric: accuracy\n    at_least: 0.8\n    max_regression: 0.02\n\
         # data_quality:\n#   data: NAME:VERSION\n#   max_null_rate: 0.01\n#   schema_matches_signature: true\n\
         # fairness:\n#   data: NAME:VERSION\n#   sensitive_column: region\n#   label_column: label\n\
         #   prediction_column: prediction\n#   positive_label: '1'\n\
         #   max_selection_rate_difference: 0.1\n#   max_true_positive_rate_difference: 0.1\n\
         signature_compatible: true\napprovals: 1\n"
    )
}

/// The (model, version, alias) a view was loaded for.
type Key = (String, String, String);

pub struct PromotionPanel {
    alias: String,
    comment: String,
    view: Option<(Key, Loadable<Arc<PromotionView>>)>,
    /// The view asked for and not yet answered.
    asked: Option<Key>,
    /// Something changed: the view is read again, shown as it is meanwhile.
    outdated: bool,
    /// The policy's YAML while it is being edited.
    editing: Option<String>,
    message: Option<Result<String, String>>,
}

impl Default for PromotionPanel {
    fn default() -> Self {
        Self {
            alias: "production".to_owned(),
            comment: String::new(),
            view: None,
            asked: None,
            outdated: false,
            editing: None,
            message: None,
        }
    }
}

impl PromotionPanel {
    pub fn on_event(&mut self, event: PromotionEvent) {
        match event {
            PromotionEvent::Loaded {
                model,
                version,
                alias,
                reply,
            } => {
                let key = (model, version, alias);
                if self.asked.as_ref() == Some(&key) {
                    self.asked = None;
                }
                if self.view.as_ref().is_some_and(|(k, _)| *k == key) {
                    self.view = Some((key, Loadable::from_reply(reply)));
                }
            }
            PromotionEvent::PolicySaved(reply) => {
                self.message = Some(match reply {
                    Ok(policy) => {
                        self.editing = None;
                        Ok(format!("Policy of {} saved", policy.model))
                    }
                    Err(e) => Err(format!("Not saved: {e}")),
                });
                self.reload();
            }
            PromotionEvent::Approved(reply) => {
                self.message = Some(match reply {
                    Ok(_) => {
                        self.comment.clear();
                        Ok("Approved".to_owned())
                    }
                    Err(e) => Err(format!("Not approved: {e}")),
                });
                self.reload();
            }
            PromotionEvent::Decided(reply) => {
                self.message = Some(match reply {
                    Ok(d) if d.promoted => Ok(format!(
                        "{}@{} is now version {}",
                        d.evaluation.model, d.evaluation.alias, d.evaluation.version
                    )),
                    Ok(d) => Err(format!(
                        "Not promoted: {} gate(s) failed",
                        d.evaluation.gates.iter().filter(|g| !g.passed).count()
                    )),
                    Err(e) => Err(format!("Not promoted: {e}")),
                });
                self.reload();
            }
        }
    }

    /// Reads the view again (after a change here or elsewhere), showing the old one meanwhile.
    pub fn reload(&mut self) {
        self.outdated = true;
    }

    pub fn promotion_ui(&mut self, ui: &mut egui::Ui, service: &Service, version: &ModelVersion) {
        ui.strong("Promotion");
        ui.horizontal(|ui| {
            ui.label("Promote to");
            ui.add(egui::TextEdit::singleline(&mut self.alias).desired_width(120.0))
                .on_hover_text("The alias that moves to this version when every gate passes");
        });
        let key = (
            version.name.clone(),
            version.version.clone(),
            self.alias.trim().to_owned(),
        );
        let shown = self.view.as_ref().is_some_and(|(k, _)| *k == key);
        if !key.2.is_empty() && (!shown || self.outdated) && self.asked.as_ref() != Some(&key) {
            service.send(PromotionCommand::Load {
                model: key.0.clone(),
                version: key.1.clone(),
                alias: key.2.clone(),
            });
            self.asked = Some(key.clone());
            self.outdated = false;
            if !shown {
                self.view = Some((key.clone(), Loadable::Loading));
            }
        }
        if let Some(message) = &self.message {
            match message {
                Ok(text) => ui.label(RichText::new(text).color(ui.visuals().hyperlink_color)),
                Err(text) => ui.colored_label(ui.visuals().error_fg_color, text),
            };
        }
        let state = self.view.as_ref().map(|(_, v)| v);
        let Some(view) = ready_or_status_ui(ui, state, "the gates").cloned() else {
            return;
        };
        gates_ui(ui, &view);
        ui.add_space(4.0);
        approvals_ui(ui, &view);
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.comment)
                    .hint_text("why you approve (optional)")
                    .desired_width(220.0),
            );
            if ui.button("Approve").clicked() {
                service.send(PromotionCommand::Approve {
                    model: key.0.clone(),
                    version: key.1.clone(),
                    alias: key.2.clone(),
                    comment: self.comment.trim().to_owned(),
                });
            }
            let passed = view.evaluation.passed();
            let promote = ui
                .add_enabled(passed, egui::Button::new(format!("Promote to @{}", key.2)))
                .on_disabled_hover_text("Every gate must pass first");
            if promote.clicked() {
                service.send(PromotionCommand::Promote {
                    model: key.0.clone(),
                    version: key.1.clone(),
                    alias: key.2.clone(),
                });
            }
        });
        ui.add_space(4.0);
        self.policy_ui(ui, service, &version.name, view.policy.as_deref());
        decisions_ui(ui, &view);
    }

    fn policy_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        model: &str,
        policy: Option<&str>,
    ) {
        match &mut self.editing {
            None => {
                let label = if policy.is_some() {
                    "Edit policy…"
                } else {
                    "Write a policy…"
                };
                if ui.button(label).clicked() {
                    self.editing = Some(policy.map_or_else(|| template(model), str::to_owned));
                }
            }
            Some(text) => {
                ui.strong("Promotion policy");
                ui.add(
                    egui::TextEdit::multiline(text)
                        .code_editor()
                        .desired_rows(12)
                        .desired_width(f32::INFINITY),
                );
                let cancel = ui
                    .horizontal(|ui| {
                        if ui.button("Save policy").clicked() {
                            service.send(PromotionCommand::SavePolicy { yaml: text.clone() });
                        }
                        ui.button("Cancel").clicked()
                    })
                    .inner;
                if cancel {
                    self.editing = None;
                }
            }
        }
    }
}

fn gates_ui(ui: &mut egui::Ui, view: &PromotionView) {
    let e = &view.evaluation;
    ui.weak(match &e.current {
        Some(v) => format!("@{} is held by version {v}", e.alias),
        None => format!("No version holds @{} yet", e.alias),
    });
    for g in &e.gates {
        gate_ui(ui, g);
    }
}

/// One gate: its mark, what it checks and the value (red or green), what it needed, and why,
/// wrapped to the window's width.
fn gate_ui(ui: &mut egui::Ui, g: &GateResult) {
    let (mark, color) = if g.passed {
        ("✔", egui::Color32::from_rgb(60, 160, 80))
    } else {
        ("✖", ui.visuals().error_fg_color)
    };
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(mark).color(color).strong());
        ui.label(&g.gate);
        ui.label(RichText::new(&g.value).color(color).strong());
        if !g.threshold.is_empty() {
            ui.weak(format!("needs {}", g.threshold));
        }
    });
    if !g.detail.is_empty() {
        ui.indent(("gate-detail", &g.gate), |ui| {
            ui.add(egui::Label::new(RichText::new(&g.detail).weak()).wrap());
        });
    }
}

fn approvals_ui(ui: &mut egui::Ui, view: &PromotionView) {
    if view.approvals.is_empty() {
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.weak("Approved by");
        for a in &view.approvals {
            let text = if a.comment.is_empty() {
                a.approver.clone()
            } else {
                format!("{} (“{}”)", a.approver, a.comment)
            };
            ui.label(text)
                .on_hover_text(format::timestamp(a.created_at_ms / 1000));
        }
    });
}

fn decisions_ui(ui: &mut egui::Ui, view: &PromotionView) {
    if view.decisions.is_empty() {
        return;
    }
    egui::CollapsingHeader::new(format!("History ({})", view.decisions.len()))
        .id_salt("promotion-history")
        .show(ui, |ui| {
            for d in view.decisions.iter().take(50) {
                let failed = d.evaluation.gates.iter().filter(|g| !g.passed).count();
                ui.label(format!(
                    "{}  v{} for @{}  {}  by {}",
                    format::timestamp(d.created_at_ms / 1000),
                    d.evaluation.version,
                    d.evaluation.alias,
                    if d.promoted {
                        "promoted".to_owned()
                    } else {
                        format!("refused ({failed} gate(s) failed)")
                    },
                    d.decided_by
                ));
            }
        });
}
