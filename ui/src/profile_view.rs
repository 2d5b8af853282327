//! The EDA profile of a table: one card per column with its statistics, a histogram for numbers
//! and the most frequent values for everything else.

use egui_plot::{Bar, BarChart, Plot};
use lathe_core::format;
use lathe_core::profile::{ColumnProfile, Histogram, TableProfile};

const CARD_WIDTH: f32 = 300.0;

pub fn profile_ui(ui: &mut egui::Ui, profile: &TableProfile) {
    ui.label(format!(
        "{} rows × {} columns",
        format::count(profile.rows as i64),
        profile.columns.len()
    ));
    ui.add_space(4.0);
    let spacing = ui.spacing().item_spacing.x;
    let per_row =
        (((ui.available_width() - 16.0 + spacing) / (CARD_WIDTH + 14.0 + spacing)).floor()
            as usize)
            .max(1);
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .show(ui, |ui| {
            for (row, columns) in profile.columns.chunks(per_row).enumerate() {
                ui.horizontal_top(|ui| {
                    for (i, column) in columns.iter().enumerate() {
                        egui::Frame::group(ui.style()).show(ui, |ui| {
                            ui.set_width(CARD_WIDTH);
                            ui.set_min_height(270.0);
                            ui.vertical(|ui| column_card_ui(ui, row * per_row + i, column));
                        });
                    }
                });
            }
        });
}

fn column_card_ui(ui: &mut egui::Ui, index: usize, c: &ColumnProfile) {
    ui.horizontal(|ui| {
        ui.heading(&c.name);
        ui.weak(&c.dtype);
    });
    egui::Grid::new(("profile-stats", index))
        .num_columns(4)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            stat_ui(ui, "count", format::count(c.count as i64));
            stat_ui(ui, "null %", format!("{:.1}%", c.null_pct));
            ui.end_row();
            stat_ui(ui, "distinct", format::count(c.distinct as i64));
            stat_ui(ui, "nulls", format::count(c.null_count as i64));
            ui.end_row();
            if let Some(n) = &c.numeric {
                stat_ui(ui, "min", format::number(n.min));
                stat_ui(ui, "max", format::number(n.max));
                ui.end_row();
                stat_ui(ui, "mean", format::number(n.mean));
                stat_ui(ui, "std", format::number(n.std));
                ui.end_row();
                for pair in n.quantiles.chunks(2) {
                    for (q, v) in pair {
                        stat_ui(ui, &format!("p{:.0}", q * 100.0), format::number(*v));
                    }
                    ui.end_row();
                }
            }
            if let Some((min, max)) = &c.range {
                stat_ui(ui, "min", min.clone());
                stat_ui(ui, "max", max.clone());
                ui.end_row();
            }
        });
    if let Some(histogram) = &c.histogram {
        histogram_ui(ui, index, histogram);
    } else if c.distinct == c.count && c.count > 1 {
        ui.add_space(4.0);
        ui.weak("every value is distinct (an identifier?)");
    } else if !c.top_values.is_empty() {
        top_values_ui(ui, c);
    }
}

fn stat_ui(ui: &mut egui::Ui, name: &str, value: String) {
    ui.weak(name);
    ui.label(value);
}

fn histogram_ui(ui: &mut egui::Ui, index: usize, h: &Histogram) {
    let color = ui.visuals().selection.bg_fill;
    let bars: Vec<Bar> = h
        .counts
        .iter()
        .enumerate()
        .map(|(i, count)| {
            let (lo, hi) = (h.edges[i], h.edges[i + 1]);
            Bar::new((lo + hi) / 2.0, *count as f64)
                .width((hi - lo) * 0.95)
                .name(format!("{} – {}", format::number(lo), format::number(hi)))
        })
        .collect();
    let tallest = h.counts.iter().copied().max().unwrap_or(1) as f64;
    Plot::new(("histogram", index))
        .height(130.0)
        .width(CARD_WIDTH)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .show_y(false)
        .show_axes([true, true])
        .include_y(0.0)
        // Headroom above the tallest bar, so the axis reaches a numbered tick above it.
        .include_y(tallest * 1.15)
        .y_axis_min_width(28.0)
        .y_axis_label("rows")
        .y_axis_formatter(|mark, _| format::count(mark.value.round() as i64))
        .x_axis_formatter(|mark, _| format::number(mark.value))
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("count", bars).color(color));
        });
}

fn top_values_ui(ui: &mut egui::Ui, c: &ColumnProfile) {
    ui.add_space(4.0);
    ui.weak("top values");
    let total = c.count.max(1) as f32;
    let bar_width = CARD_WIDTH * 0.35;
    for (value, count) in c.top_values.iter().take(6) {
        ui.horizontal(|ui| {
            let (rect, _) =
                ui.allocate_exact_size(egui::vec2(bar_width, 10.0), egui::Sense::hover());
            let visuals = ui.visuals();
            ui.painter()
                .rect_filled(rect, 2.0, visuals.extreme_bg_color);
            let filled = egui::Rect::from_min_size(
                rect.min,
                egui::vec2(rect.width() * *count as f32 / total, rect.height()),
            );
            ui.painter()
                .rect_filled(filled, 2.0, visuals.selection.bg_fill);
            ui.label(format!("{:>5.1}%", 100.0 * *count as f32 / total))
                .on_hover_text(format::count(*count as i64));
            ui.add(egui::Label::new(value.as_str()).truncate());
        });
    }
}
