//! The image grid: thumbnails laid out in rows, virtualized, decoded in the background.

use std::collections::HashMap;

use lathe_core::assets::VersionFile;
use lathe_core::service::{DataCommand, Service, THUMBNAIL_SIDE};

use crate::loadable::Loadable;

pub type Thumbnails = HashMap<String, Loadable<egui::TextureHandle>>;

const CELL: f32 = THUMBNAIL_SIDE as f32 + 16.0;

pub fn image_grid_ui(
    ui: &mut egui::Ui,
    files: &[VersionFile],
    thumbnails: &mut Thumbnails,
    service: &Service,
) {
    let spacing = ui.spacing().item_spacing.x;
    let per_row = (((ui.available_width() + spacing) / (CELL + spacing)).floor() as usize).max(1);
    let rows = files.len().div_ceil(per_row);
    let label_height = ui.text_style_height(&egui::TextStyle::Small) * 2.0 + 4.0;
    let row_height = CELL + label_height;
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .show_rows(ui, row_height, rows, |ui, range| {
            for row in range {
                ui.horizontal(|ui| {
                    for file in files.iter().skip(row * per_row).take(per_row) {
                        ui.allocate_ui(egui::vec2(CELL, row_height), |ui| {
                            ui.vertical_centered(|ui| cell_ui(ui, file, thumbnails, service));
                        });
                    }
                });
            }
        });
}

fn cell_ui(ui: &mut egui::Ui, file: &VersionFile, thumbnails: &mut Thumbnails, service: &Service) {
    let side = THUMBNAIL_SIDE as f32;
    match thumbnails.get(&file.blob_hash) {
        Some(Loadable::Ready(texture)) => {
            let size = texture.size_vec2();
            let scale = (side / size.x.max(size.y)).min(1.0);
            ui.add_sized([side, side], egui::Image::new((texture.id(), size * scale)));
        }
        Some(Loadable::Failed(e)) => {
            ui.add_sized(
                [side, side],
                egui::Label::new(egui::RichText::new("⚠").size(32.0)),
            )
            .on_hover_text(e.as_str());
        }
        other => {
            if other.is_none() {
                thumbnails.insert(file.blob_hash.clone(), Loadable::Loading);
                service.send(DataCommand::LoadThumbnail {
                    blob_hash: file.blob_hash.clone(),
                });
            }
            ui.add_sized([side, side], egui::Spinner::new());
        }
    }
    ui.add(egui::Label::new(egui::RichText::new(&file.path).small()).truncate())
        .on_hover_text(format!(
            "{} · {}×{} px · {}",
            file.path,
            file.width,
            file.height,
            lathe_core::format::bytes(file.size_bytes as i64)
        ));
}
