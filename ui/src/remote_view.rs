//! The Experiments section's tracking server: push the workspace's runs and model versions to
//! a team's MLflow server, pull a server's runs here beside local ones, and the report of what
//! moved. The token is held for this window only and never saved.

use std::sync::Arc;

use lathe_core::remote::Token;
use lathe_core::service::{Service, TrackingCommand, TrackingEvent};
use lathe_core::sync::{Report, Selection};

use crate::datastores_view::report_ui;
use crate::loadable::Loadable;

#[derive(Default)]
pub struct RemoteView {
    uri: String,
    token: String,
    /// Comma-separated experiment names.
    experiments: String,
    /// The last push or pull: push?, and its report or why it failed.
    report: Option<(bool, Loadable<Arc<Report>>)>,
}

impl RemoteView {
    /// Starts with the experiments selected in the list, when the field is empty.
    pub fn open(&mut self, selected: &[String]) {
        if self.experiments.trim().is_empty() {
            self.experiments = selected.join(", ");
        }
    }

    /// Takes the answer to a push or pull; other events go back.
    pub fn on_event(&mut self, event: TrackingEvent) -> Option<TrackingEvent> {
        match event {
            TrackingEvent::Exchanged { push, reply, .. } => {
                self.report = Some((push, Loadable::from_reply(reply)));
                None
            }
            other => Some(other),
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, service: &Service) {
        ui.heading("MLflow tracking server");
        ui.weak(
            "Push copies runs (params, every metric point, tags, inputs, artifacts) and their \
             model versions to a team's MLflow server; pushing again sends only what is new. \
             Pull brings a server's runs here, beside the local ones, to browse and compare.",
        );
        ui.add_space(4.0);
        egui::Grid::new("remote-fields")
            .num_columns(2)
            .spacing([8.0, 4.0])
            .show(ui, |ui| {
                let label = ui.label("Server");
                ui.add(
                    egui::TextEdit::singleline(&mut self.uri)
                        .hint_text("https://mlflow.example.com")
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Token");
                ui.add(
                    egui::TextEdit::singleline(&mut self.token)
                        .password(true)
                        .hint_text("none, or MLFLOW_TRACKING_TOKEN's")
                        .desired_width(320.0),
                )
                .labelled_by(label.id)
                .on_hover_text("Kept in memory for this window only, never saved");
                ui.end_row();
                let label = ui.label("Experiments");
                ui.add(
                    egui::TextEdit::singleline(&mut self.experiments)
                        .hint_text("push: all; pull: name them (comma-separated)")
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
                ui.end_row();
            });
        let running = matches!(self.report, Some((_, Loadable::Loading)));
        let names: Vec<String> = self
            .experiments
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        let has_uri = !self.uri.trim().is_empty();
        ui.horizontal_wrapped(|ui| {
            let push = ui
                .add_enabled(has_uri && !running, egui::Button::new("Push ⬆"))
                .on_hover_text("Send the experiments named (all, when none are) and their models")
                .on_disabled_hover_text("Give the server's URL");
            let pull = ui
                .add_enabled(
                    has_uri && !running && !names.is_empty(),
                    egui::Button::new("Pull ⬇"),
                )
                .on_hover_text("Bring the named experiments' runs here")
                .on_disabled_hover_text("Give the server's URL and the experiments to pull");
            for (clicked, push) in [(push.clicked(), true), (pull.clicked(), false)] {
                if clicked {
                    self.report = Some((push, Loadable::Loading));
                    let token = Some(self.token.trim())
                        .filter(|t| !t.is_empty())
                        .map(Token::new);
                    service.send(TrackingCommand::Exchange {
                        uri: self.uri.trim().to_owned(),
                        token,
                        push,
                        selection: Selection {
                            experiments: names.clone(),
                            ..Selection::default()
                        },
                    });
                }
            }
            if running {
                ui.spinner();
                ui.weak("see the status bar to follow or cancel it");
            }
        });
        ui.add_space(4.0);
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| match &self.report {
                Some((push, Loadable::Ready(report))) => report_ui(ui, *push, report),
                Some((push, Loadable::Failed(e))) if e == "cancelled" => {
                    ui.label(if *push {
                        "Push cancelled. What was sent stays there, and Push again sends only \
                         the rest."
                    } else {
                        "Pull cancelled. The runs recorded stay; Pull again brings the rest."
                    });
                }
                Some((push, Loadable::Failed(e))) => {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!("{} failed: {e}", if *push { "Push" } else { "Pull" }),
                    );
                }
                _ => {}
            });
    }
}
