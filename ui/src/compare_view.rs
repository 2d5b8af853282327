//! Comparing runs: each metric's history overlaid across the runs, a table of params that
//! marks where they differ, and parallel coordinates over params and latest metrics.

use std::collections::BTreeSet;

use lathe_core::format;
use lathe_core::service::{Service, TrackingCommand};
use lathe_core::tracking::browse::{RunRow, RunTable};

use crate::loadable::Loadable;
use crate::metric_chart::{ChartStyle, chart_ui, series};
use crate::tracking_cache::TrackingCache;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompareTab {
    #[default]
    Charts,
    Params,
    Parallel,
}

#[derive(Default)]
pub struct CompareView {
    pub tab: CompareTab,
    style: ChartStyle,
    only_differences: bool,
}

impl CompareView {
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        cache: &mut TrackingCache,
        table: &RunTable,
        runs: &[&RunRow],
    ) {
        ui.horizontal(|ui| {
            ui.heading(format!("Comparing {} runs", runs.len()));
            ui.separator();
            ui.selectable_value(&mut self.tab, CompareTab::Charts, "Metric charts");
            ui.selectable_value(&mut self.tab, CompareTab::Params, "Params");
            ui.selectable_value(&mut self.tab, CompareTab::Parallel, "Parallel coordinates");
        });
        ui.separator();
        match self.tab {
            CompareTab::Charts => self.charts_ui(ui, service, cache, table, runs),
            CompareTab::Params => self.params_ui(ui, table, runs),
            CompareTab::Parallel => parallel_ui(ui, table, runs),
        }
    }

    fn charts_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        cache: &mut TrackingCache,
        table: &RunTable,
        runs: &[&RunRow],
    ) {
        self.style.controls_ui(ui);
        let keys: Vec<(usize, &String)> = table
            .metric_keys
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                runs.iter()
                    .any(|r| r.metrics.get(*i).copied().flatten().is_some())
            })
            .collect();
        egui::ScrollArea::vertical()
            .auto_shrink(false)
            .show(ui, |ui| {
                for (i, key) in keys {
                    let mut lines = Vec::new();
                    let mut waiting = false;
                    for run in runs
                        .iter()
                        .filter(|r| r.metrics.get(i).copied().flatten().is_some())
                    {
                        let id = (run.run_id.clone(), key.clone());
                        match cache.histories.get(&id) {
                            Some(Loadable::Ready(points)) => {
                                lines.push((run.name.clone(), series(points, self.style)));
                            }
                            Some(Loadable::Failed(e)) => {
                                ui.colored_label(
                                    ui.visuals().error_fg_color,
                                    format!("{} of {}: {e}", key, run.name),
                                );
                            }
                            Some(Loadable::Loading) => waiting = true,
                            None => {
                                waiting = true;
                                cache.histories.insert(id.clone(), Loadable::Loading);
                                service.send(TrackingCommand::LoadHistory {
                                    run_id: id.0,
                                    key: id.1,
                                });
                            }
                        }
                    }
                    let title = if waiting {
                        format!("{key} (loading…)")
                    } else {
                        key.clone()
                    };
                    if !waiting && lines.iter().all(|(_, points)| points.len() < 2) {
                        // A value per run (a final score): bars compare them better than dots.
                        let bars: Vec<(String, f64)> = lines
                            .iter()
                            .filter_map(|(name, points)| Some((name.clone(), points.first()?[1])))
                            .collect();
                        bars_ui(ui, key, &bars);
                    } else {
                        chart_ui(ui, ("compare", key), &title, &lines, 200.0);
                    }
                    ui.add_space(8.0);
                }
            });
    }

    fn params_ui(&mut self, ui: &mut egui::Ui, table: &RunTable, runs: &[&RunRow]) {
        ui.checkbox(&mut self.only_differences, "Only params that differ");
        egui::ScrollArea::both().auto_shrink(false).show(ui, |ui| {
            egui::Grid::new("param-diff").striped(true).show(ui, |ui| {
                ui.strong("Param");
                for run in runs {
                    ui.strong(&run.name);
                }
                ui.end_row();
                for (i, key) in table.param_keys.iter().enumerate() {
                    let values: Vec<Option<&str>> = runs
                        .iter()
                        .map(|r| r.params.get(i).and_then(|v| v.as_deref()))
                        .collect();
                    if values.iter().all(Option::is_none) {
                        continue;
                    }
                    let differs = values.iter().collect::<BTreeSet<_>>().len() > 1;
                    if self.only_differences && !differs {
                        continue;
                    }
                    let warn = ui.visuals().warn_fg_color;
                    let text = |t: &str| {
                        let rich = egui::RichText::new(t);
                        if differs {
                            rich.strong().color(warn)
                        } else {
                            rich
                        }
                    };
                    ui.label(text(key));
                    for value in values {
                        ui.label(text(value.unwrap_or("—")));
                    }
                    ui.end_row();
                }
            });
        });
    }
}

/// One bar per run, labelled with the run's name under it and its value over it, against a
/// y axis with numbered ticks: close values (0.898 and 0.842) read as different numbers even
/// where the bars look alike.
fn bars_ui(ui: &mut egui::Ui, key: &str, values: &[(String, f64)]) {
    ui.strong(key);
    let color = ui.visuals().selection.bg_fill;
    let text_color = ui.visuals().strong_text_color();
    let finite = values.iter().map(|(_, v)| *v).filter(|v| v.is_finite());
    let (low, high) = finite.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Room above (or below) the tallest bar for its value.
    let headroom = (high - low).max(f64::EPSILON) * 0.18;
    let labels: Vec<egui_plot::Text> = values
        .iter()
        .enumerate()
        .filter(|(_, (_, v))| v.is_finite())
        .map(|(i, (_, value))| {
            let at = if *value >= 0.0 {
                value + headroom * 0.4
            } else {
                value - headroom * 0.4
            };
            egui_plot::Text::new(
                format!("{key}-value-{i}"),
                egui_plot::PlotPoint::new(i as f64, at),
                egui::RichText::new(format::number(*value))
                    .color(text_color)
                    .small(),
            )
        })
        .collect();
    let bars: Vec<egui_plot::Bar> = values
        .iter()
        .enumerate()
        .map(|(i, (name, value))| {
            egui_plot::Bar::new(i as f64, *value)
                .width(0.6)
                .name(format!("{name}: {}", format::number(*value)))
        })
        .collect();
    let names: Vec<String> = values.iter().map(|(name, _)| name.clone()).collect();
    egui_plot::Plot::new(("compare-bars", key))
        .height(180.0)
        .include_y(low - if low < 0.0 { headroom } else { 0.0 })
        .include_y(high + headroom)
        .y_axis_min_width(40.0)
        .y_axis_formatter(|mark, _| format::number(mark.value))
        .x_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.bar_chart(egui_plot::BarChart::new(key, bars).color(color));
            for label in labels {
                plot.text(label);
            }
        });
}

/// One axis: a param or metric and how its values map onto the axis (0 bottom, 1 top).
struct Axis {
    name: String,
    /// Per run, its position on the axis, or None when the run has no value.
    positions: Vec<Option<f32>>,
    labels: (String, String),
    /// For a categorical axis, each category and its position.
    categories: Vec<(f32, String)>,
}

fn axes(table: &RunTable, runs: &[&RunRow]) -> Vec<Axis> {
    let mut out = Vec::new();
    for (i, key) in table.param_keys.iter().enumerate() {
        let values: Vec<Option<&str>> = runs
            .iter()
            .map(|r| r.params.get(i).and_then(|v| v.as_deref()))
            .collect();
        if values.iter().flatten().collect::<BTreeSet<_>>().len() > 1 {
            out.push(text_or_number_axis(key, &values));
        }
    }
    for (i, key) in table.metric_keys.iter().enumerate() {
        let values: Vec<Option<f64>> = runs
            .iter()
            .map(|r| r.metrics.get(i).copied().flatten())
            .collect();
        if values.iter().flatten().any(|v| v.is_finite()) {
            out.push(number_axis(key, &values));
        }
    }
    out
}

fn number_axis(name: &str, values: &[Option<f64>]) -> Axis {
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    Axis {
        name: name.to_owned(),
        positions: values
            .iter()
            .map(|v| {
                v.filter(|v| v.is_finite())
                    .map(|v| ((v - lo) / span) as f32)
            })
            .collect(),
        labels: (format::number(lo), format::number(hi)),
        categories: Vec::new(),
    }
}

/// Params that all parse as numbers get a numeric axis; others a category per distinct value.
fn text_or_number_axis(name: &str, values: &[Option<&str>]) -> Axis {
    let numbers: Vec<Option<f64>> = values
        .iter()
        .map(|v| v.and_then(|t| t.parse().ok()))
        .collect();
    if numbers
        .iter()
        .zip(values)
        .all(|(n, v)| n.is_some() == v.is_some())
    {
        return number_axis(name, &numbers);
    }
    let categories: Vec<&str> = values
        .iter()
        .flatten()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let last = (categories.len().max(2) - 1) as f32;
    Axis {
        name: name.to_owned(),
        positions: values
            .iter()
            .map(|v| {
                v.and_then(|t| categories.iter().position(|c| *c == t))
                    .map(|i| i as f32 / last)
            })
            .collect(),
        labels: (String::new(), String::new()),
        categories: categories
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f32 / last, (*c).to_owned()))
            .collect(),
    }
}

fn parallel_ui(ui: &mut egui::Ui, table: &RunTable, runs: &[&RunRow]) {
    let axes = axes(table, runs);
    if axes.len() < 2 {
        ui.weak(
            "Parallel coordinates need at least two params or metrics that vary across these runs.",
        );
        return;
    }
    ui.weak("One line per run; axes are params that differ, then metrics. Point at a line to name its run.");
    if let Some(last) = axes.last() {
        legend_ui(ui, last);
    }
    let size = egui::vec2(ui.available_width(), ui.available_height().max(240.0) - 8.0);
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::hover());
    let plot = rect.shrink2(egui::vec2(48.0, 36.0));
    let painter = ui.painter_at(rect);
    let x = |i: usize| plot.left() + plot.width() * i as f32 / (axes.len() - 1) as f32;
    let y = |p: f32| plot.bottom() - plot.height() * p;
    let text = ui.visuals().text_color();
    let weak = ui.visuals().weak_text_color();
    let hovered = response.hover_pos();
    let mut hovered_run = None;
    for (r, run) in runs.iter().enumerate() {
        let points: Vec<egui::Pos2> = axes
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.positions[r].map(|p| egui::pos2(x(i), y(p))))
            .collect();
        let colour = line_colour(axes.last().and_then(|a| a.positions[r]).unwrap_or(0.0));
        let near = hovered.is_some_and(|h| {
            points
                .windows(2)
                .any(|w| distance_to_segment(h, w[0], w[1]) < 4.0)
        });
        if near {
            hovered_run = Some(*run);
        }
        painter.add(egui::Shape::line(
            points,
            egui::Stroke::new(if near { 3.0 } else { 1.5 }, colour),
        ));
    }
    for (i, axis) in axes.iter().enumerate() {
        painter.line_segment(
            [
                egui::pos2(x(i), plot.top()),
                egui::pos2(x(i), plot.bottom()),
            ],
            egui::Stroke::new(1.0, weak),
        );
        painter.text(
            egui::pos2(x(i), plot.top() - 20.0),
            egui::Align2::CENTER_BOTTOM,
            &axis.name,
            egui::FontId::proportional(13.0),
            text,
        );
        painter.text(
            egui::pos2(x(i), plot.top() - 4.0),
            egui::Align2::CENTER_BOTTOM,
            &axis.labels.1,
            egui::FontId::proportional(11.0),
            weak,
        );
        painter.text(
            egui::pos2(x(i), plot.bottom() + 4.0),
            egui::Align2::CENTER_TOP,
            &axis.labels.0,
            egui::FontId::proportional(11.0),
            weak,
        );
        for (position, category) in &axis.categories {
            painter.text(
                egui::pos2(x(i) + 4.0, y(*position)),
                egui::Align2::LEFT_CENTER,
                category,
                egui::FontId::proportional(11.0),
                weak,
            );
        }
    }
    if let Some(run) = hovered_run {
        response.on_hover_text(format!("{} ({})", run.name, run.run_id));
    }
}

/// A run's line colour from its place on the colouring axis: blue at the bottom, red at the top.
fn line_colour(at: f32) -> egui::Color32 {
    egui::Color32::from_rgb((40.0 + 200.0 * at) as u8, 110, (240.0 - 200.0 * at) as u8)
}

/// The legend: which axis colours the lines, and the colours of its low and high ends.
fn legend_ui(ui: &mut egui::Ui, axis: &Axis) {
    ui.horizontal(|ui| {
        ui.label(format!("Colour: {}", axis.name));
        let (low, high) = match (axis.categories.first(), axis.categories.last()) {
            (Some(first), Some(last)) => (first.1.clone(), last.1.clone()),
            _ => axis.labels.clone(),
        };
        ui.weak(low);
        let (rect, _) = ui.allocate_exact_size(egui::vec2(120.0, 10.0), egui::Sense::hover());
        const STEPS: usize = 24;
        for i in 0..STEPS {
            let t = i as f32 / (STEPS - 1) as f32;
            let x0 = rect.left() + rect.width() * i as f32 / STEPS as f32;
            let cell = egui::Rect::from_min_max(
                egui::pos2(x0, rect.top()),
                egui::pos2(x0 + rect.width() / STEPS as f32 + 0.5, rect.bottom()),
            );
            ui.painter().rect_filled(cell, 0.0, line_colour(t));
        }
        ui.weak(high);
    });
}

fn distance_to_segment(p: egui::Pos2, a: egui::Pos2, b: egui::Pos2) -> f32 {
    let ab = b - a;
    let t = ((p - a).dot(ab) / ab.length_sq().max(f32::EPSILON)).clamp(0.0, 1.0);
    (a + ab * t).distance(p)
}
