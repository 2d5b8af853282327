//! A version's Deploy…: to a new endpoint (made on loopback with a free port, its first
//! deployment taking all traffic) or an existing one (with or without all its traffic), and a
//! link to the endpoint once it is made.

use egui::RichText;
use lathe_core::service::{EndpointCommand, Reply, Service};
use lathe_core::tracking::types::ModelVersion;

use crate::vocabulary::Navigate;

pub struct DeployPanel {
    open: bool,
    endpoint: String,
    deployment: String,
    all_traffic: bool,
    /// What the last Deploy did: the endpoint to link to, or why it failed.
    outcome: Option<Result<(String, String), String>>,
}

impl Default for DeployPanel {
    fn default() -> Self {
        Self {
            open: false,
            endpoint: String::new(),
            deployment: "blue".to_owned(),
            all_traffic: true,
            outcome: None,
        }
    }
}

impl DeployPanel {
    pub fn deployed(
        &mut self,
        reply: &Reply<(
            lathe_core::endpoints::Endpoint,
            lathe_core::endpoints::Deployment,
        )>,
    ) {
        self.outcome = Some(match reply {
            Ok(made) => Ok((made.0.spec.name.clone(), made.0.scoring_uri())),
            Err(e) => Err(e.to_string()),
        });
    }

    pub fn deploy_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        version: &ModelVersion,
    ) -> Option<Navigate> {
        let mut go = None;
        if !self.open {
            if ui
                .button("Deploy…")
                .on_hover_text("Serve this version from an online endpoint")
                .clicked()
            {
                self.open = true;
                if self.endpoint.is_empty() {
                    self.endpoint = version.name.chars().take(32).collect();
                }
            }
        } else {
            ui.strong("Deploy");
            egui::Grid::new("deploy-form")
                .num_columns(2)
                .show(ui, |ui| {
                    ui.label("Endpoint");
                    ui.add(egui::TextEdit::singleline(&mut self.endpoint).desired_width(200.0))
                        .on_hover_text("An existing endpoint, or a new one to make");
                    ui.end_row();
                    ui.label("Deployment");
                    ui.add(egui::TextEdit::singleline(&mut self.deployment).desired_width(200.0));
                    ui.end_row();
                });
            ui.checkbox(
                &mut self.all_traffic,
                "Send all of the endpoint's traffic to it",
            )
            .on_hover_text("A new endpoint's first deployment always takes all of it");
            ui.horizontal(|ui| {
                if ui
                    .button(format!("Deploy {}:{}", version.name, version.version))
                    .clicked()
                {
                    self.outcome = None;
                    service.send(EndpointCommand::Deploy {
                        endpoint: self.endpoint.trim().to_owned(),
                        deployment: self.deployment.trim().to_owned(),
                        model: version.name.clone(),
                        version: version.version.clone(),
                        all_traffic: self.all_traffic,
                    });
                }
                if ui.button("Close").clicked() {
                    self.open = false;
                }
            });
        }
        match &self.outcome {
            Some(Ok((endpoint, uri))) => {
                ui.horizontal_wrapped(|ui| {
                    ui.label(
                        RichText::new(format!("Deployed to {endpoint} at {uri}"))
                            .color(ui.visuals().hyperlink_color),
                    );
                    if ui.link("Open in Endpoints").clicked() {
                        go = Some(Navigate::Endpoint(endpoint.clone()));
                    }
                });
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("Not deployed: {e}"));
            }
            None => {}
        }
        go
    }
}
