//! The whole window: a top bar with the sections and import actions, the Data section, and a
//! status bar with running jobs and messages. It routes service events to the panels and turns
//! dropped files into imports.

use std::path::PathBuf;

use lathe_core::format;
use lathe_core::service::{Command, Event, Service};

use crate::data_panel::DataPanel;
use crate::import_dialog::ImportDialog;
use crate::status_bar::{Message, status_bar_ui};

/// What the window asks of the shell around it (the native file dialogs live in the app).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellRequest {
    PickFiles,
    PickFolder,
}

pub struct Workbench {
    service: Service,
    data: DataPanel,
    imports: ImportDialog,
    messages: Vec<Message>,
    requests: Vec<ShellRequest>,
}

impl Workbench {
    pub fn new(service: Service) -> Self {
        service.send(Command::RefreshAssets);
        Self {
            service,
            data: DataPanel::default(),
            imports: ImportDialog::default(),
            messages: Vec::new(),
            requests: Vec::new(),
        }
    }

    pub fn service(&self) -> &Service {
        &self.service
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
            self.service.send(Command::Import(request));
        }

        egui::Panel::top("top-bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("Lathe");
                ui.separator();
                let _ = ui.selectable_label(true, "Data");
                ui.separator();
                if ui.button("Import files…").on_hover_text("Ctrl+O").clicked() {
                    self.requests.push(ShellRequest::PickFiles);
                }
                if ui
                    .button("Import folder…")
                    .on_hover_text("Ctrl+Shift+O")
                    .clicked()
                {
                    self.requests.push(ShellRequest::PickFolder);
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.weak(self.service.root().display().to_string())
                        .on_hover_text("Workspace folder");
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
        egui::Panel::left("asset-list")
            .resizable(true)
            .default_size(240.0)
            .show(ui, |ui| self.data.asset_list_ui(ui, &self.service));
        egui::CentralPanel::default().show(ui, |ui| self.data.asset_ui(ui, &self.service));

        if !jobs.is_empty() {
            // Progress moves without events; redraw a few times a second while work runs.
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn take_events(&mut self, ctx: &egui::Context) {
        for event in self.service.poll() {
            let Some(event) = self.data.on_event(event, ctx) else {
                continue;
            };
            if let Event::Imported { request, reply } = event {
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
                    Err(e) if e == lathe_core::Error::Cancelled.to_string() => {
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
