//! The items of a text corpus, one per row, virtualized.

use lathe_core::format;

pub fn text_list_ui(ui: &mut egui::Ui, items: &[String]) {
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    let number_width = 12.0 + 8.0 * items.len().to_string().len() as f32;
    egui::ScrollArea::vertical().auto_shrink(false).show_rows(
        ui,
        row_height,
        items.len(),
        |ui, range| {
            for i in range {
                ui.horizontal(|ui| {
                    ui.add_sized(
                        [number_width, row_height],
                        egui::Label::new(egui::RichText::new(format::count(i as i64 + 1)).weak()),
                    );
                    ui.add(egui::Label::new(&items[i]).truncate());
                });
            }
        },
    );
}
