//! The import window: the files and folders the user picked or dropped, each with the asset name
//! and kind it will be imported as, ready to confirm.

use std::path::PathBuf;

use lathe_core::assets::{AssetKind, name_from_path};
use lathe_core::import::ImportRequest;

#[derive(Debug, Clone)]
struct Pending {
    path: PathBuf,
    name: String,
    kind: Option<AssetKind>,
    text_column: String,
}

#[derive(Default)]
pub struct ImportDialog {
    pending: Vec<Pending>,
}

impl ImportDialog {
    pub fn offer(&mut self, paths: impl IntoIterator<Item = PathBuf>) {
        for path in paths {
            if self.pending.iter().all(|p| p.path != path) {
                let name = name_from_path(&path);
                self.pending.push(Pending {
                    path,
                    name,
                    kind: None,
                    text_column: String::new(),
                });
            }
        }
    }

    pub fn is_open(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Draws the window; returns the imports the user confirmed.
    pub fn ui(&mut self, ctx: &egui::Context) -> Vec<ImportRequest> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let mut confirmed = false;
        let mut cancelled = false;
        let mut removed = None;
        egui::Window::new("Import data")
            .collapsible(false)
            .resizable(true)
            .default_width(640.0)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                egui::Grid::new("pending-imports").num_columns(5).striped(true).spacing([10.0, 6.0]).show(ui, |ui| {
                    ui.strong("Source");
                    ui.strong("Asset name");
                    ui.strong("Kind");
                    ui.strong("Text column");
                    ui.end_row();
                    for (i, p) in self.pending.iter_mut().enumerate() {
                        ui.add(egui::Label::new(p.path.display().to_string()).truncate())
                            .on_hover_text(p.path.display().to_string());
                        ui.add(egui::TextEdit::singleline(&mut p.name).desired_width(160.0));
                        egui::ComboBox::from_id_salt(("kind", i))
                            .selected_text(p.kind.map_or("auto", AssetKind::as_str))
                            .show_ui(ui, |ui| {
                                ui.selectable_value(&mut p.kind, None, "auto");
                                for kind in AssetKind::ALL {
                                    ui.selectable_value(&mut p.kind, Some(kind), kind.as_str());
                                }
                            });
                        ui.add_enabled(
                            p.kind == Some(AssetKind::Text),
                            egui::TextEdit::singleline(&mut p.text_column).hint_text("(lines)").desired_width(100.0),
                        )
                        .on_hover_text("For text in a table: the column that holds it. Empty: one item per line.");
                        if ui.small_button("✖").on_hover_text("Leave this one out").clicked() {
                            removed = Some(i);
                        }
                        ui.end_row();
                    }
                });
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    let label = if self.pending.len() == 1 { "Import".to_owned() } else { format!("Import {}", self.pending.len()) };
                    confirmed = ui.button(label).clicked() || ui.input(|i| i.key_pressed(egui::Key::Enter));
                    cancelled = ui.button("Cancel").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape));
                });
            });
        if let Some(i) = removed {
            self.pending.remove(i);
        }
        if cancelled {
            self.pending.clear();
        }
        if !confirmed {
            return Vec::new();
        }
        self.pending
            .drain(..)
            .map(|p| ImportRequest {
                path: p.path,
                name: p.name.trim().to_owned(),
                kind: p.kind,
                text_column: Some(p.text_column.trim().to_owned())
                    .filter(|c| !c.is_empty() && p.kind == Some(AssetKind::Text)),
                source_label: None,
            })
            .collect()
    }
}
