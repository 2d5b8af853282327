//! Two tables compared, drawn: the features sorted by how far they moved, and one feature's
//! reference and current distributions overlaid with its quality figures. Shared by the
//! Monitoring section and the Data section's Compare data.

use egui::RichText;
use egui_plot::{Bar, BarChart, Legend, Plot};
use lathe_core::format;
use lathe_core::monitoring::Metric;
use lathe_core::monitoring::compare::{Comparison, Distribution, Feature};
use lathe_core::monitoring::thresholds::Crossing;

/// The metric columns of the feature table, with their short headings.
const COLUMNS: [(Metric, &str); 7] = [
    (Metric::JensenShannonDistance, "JS"),
    (Metric::PopulationStabilityIndex, "PSI"),
    (Metric::NormalizedWassersteinDistance, "Wasserstein"),
    (Metric::TwoSampleKolmogorovSmirnovTest, "KS p"),
    (Metric::PearsonsChiSquaredTest, "χ² p"),
    (Metric::NullValueRate, "Nulls"),
    (Metric::OutOfBoundsRate, "Out of range"),
];

/// A value in a table cell: three decimals, p-values and tiny numbers in scientific form.
pub fn short(x: f64) -> String {
    format::metric(x, 3)
}

fn value(f: &Feature, m: Metric) -> Option<f64> {
    f.drift.get(&m).or_else(|| f.quality.get(&m)).copied()
}

/// How far a feature moved, for sorting: its Jensen-Shannon distance (every feature type has
/// one), or 0 when it has none.
fn drift_of(f: &Feature) -> f64 {
    value(f, Metric::JensenShannonDistance).unwrap_or(0.0)
}

/// The features, most drifted first; a click on a name selects it. Values that crossed a
/// threshold are drawn in the error colour.
pub fn feature_table_ui(
    ui: &mut egui::Ui,
    comparison: &Comparison,
    crossings: &[Crossing],
    selected: &mut Option<String>,
    id: &str,
) {
    let mut features: Vec<&Feature> = comparison.features.iter().collect();
    features.sort_by(|a, b| drift_of(b).total_cmp(&drift_of(a)));
    if selected.is_none() {
        *selected = features.first().map(|f| f.name.clone());
    }
    let error = ui.visuals().error_fg_color;
    egui::ScrollArea::horizontal()
        .id_salt(("drift-table-scroll", id))
        .show(ui, |ui| {
            egui::Grid::new(("drift-table", id))
                .striped(true)
                .min_col_width(48.0)
                .show(ui, |ui| {
                    ui.strong("Feature");
                    ui.strong("Type");
                    for (_, heading) in COLUMNS {
                        ui.strong(heading);
                    }
                    ui.end_row();
                    for f in features {
                        let chosen = selected.as_deref() == Some(f.name.as_str());
                        if ui.selectable_label(chosen, &f.name).clicked() {
                            *selected = Some(f.name.clone());
                        }
                        ui.weak(f.feature_type.name());
                        for (metric, _) in COLUMNS {
                            match value(f, metric) {
                                Some(x) => {
                                    let crossed = crossings
                                        .iter()
                                        .any(|c| c.feature == f.name && c.metric == metric);
                                    let text = RichText::new(short(x));
                                    ui.label(if crossed {
                                        text.color(error).strong()
                                    } else {
                                        text
                                    });
                                }
                                None => {
                                    ui.weak("–");
                                }
                            }
                        }
                        if let Some(problem) = &f.problem {
                            ui.colored_label(error, problem);
                        }
                        ui.end_row();
                    }
                });
        });
    if !comparison.only_in_reference.is_empty() || !comparison.only_in_current.is_empty() {
        ui.weak(format!(
            "Not compared: only in the reference {}; only in the current data {}",
            list_or_none(&comparison.only_in_reference),
            list_or_none(&comparison.only_in_current)
        ));
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// One feature's two distributions overlaid (shares of each side's values), and its data
/// quality figures.
pub fn distribution_ui(ui: &mut egui::Ui, feature: &Feature, id: &str) {
    ui.horizontal_wrapped(|ui| {
        ui.strong(&feature.name);
        ui.weak(format!(
            "{} · {} reference and {} current values compared",
            feature.feature_type.name(),
            format::count(feature.reference_values as i64),
            format::count(feature.current_values as i64)
        ));
    });
    ui.horizontal_wrapped(|ui| {
        for (metric, label) in [
            (Metric::NullValueRate, "nulls"),
            (Metric::DataTypeErrorRate, "type errors"),
            (Metric::OutOfBoundsRate, "out of range"),
        ] {
            if let Some(x) = feature.quality.get(&metric) {
                ui.label(format!("{label} {:.2}%", x * 100.0));
            }
        }
    });
    let Some(distribution) = &feature.distribution else {
        ui.weak(
            feature
                .problem
                .as_deref()
                .unwrap_or("No distribution to draw."),
        );
        return;
    };
    let share = |counts: &[u64]| {
        let total = counts.iter().sum::<u64>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / total).collect::<Vec<_>>()
    };
    let (reference_color, current_color) = (
        egui::Color32::from_rgb(90, 140, 220),
        egui::Color32::from_rgb(230, 130, 60),
    );
    let (reference, current, labels): (Vec<Bar>, Vec<Bar>, Vec<String>) = match distribution {
        Distribution::Histogram {
            edges,
            reference,
            current,
        } => {
            let bars = |counts: &[u64], left: bool| -> Vec<Bar> {
                share(counts)
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let (lo, hi) = (edges[i], edges[i + 1]);
                        let w = (hi - lo) / 2.0;
                        let x = if left { lo + w * 0.5 } else { lo + w * 1.5 };
                        Bar::new(x, s).width(w * 0.95).name(format!(
                            "{} – {}",
                            format::number(lo),
                            format::number(hi)
                        ))
                    })
                    .collect()
            };
            (bars(reference, true), bars(current, false), Vec::new())
        }
        Distribution::Categories {
            categories,
            reference,
            current,
        } => {
            // The most frequent 30 categories; the rest would be unreadable bars.
            let shown = categories.len().min(30);
            let bars = |counts: &[u64], offset: f64| -> Vec<Bar> {
                share(counts)
                    .into_iter()
                    .take(shown)
                    .enumerate()
                    .map(|(i, s)| {
                        Bar::new(i as f64 + offset, s)
                            .width(0.38)
                            .name(categories[i].clone())
                    })
                    .collect()
            };
            (
                bars(reference, -0.2),
                bars(current, 0.2),
                categories.iter().take(shown).cloned().collect(),
            )
        }
    };
    let categorical = !labels.is_empty();
    Plot::new(("distribution", id))
        .height(180.0)
        .legend(Legend::default())
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_y(0.0)
        .y_axis_label("share")
        .y_axis_formatter(|mark, _| format!("{:.0}%", mark.value * 100.0))
        .x_axis_formatter(move |mark, _| {
            if categorical {
                let i = mark.value.round();
                if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            } else {
                format::number(mark.value)
            }
        })
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("reference", reference).color(reference_color));
            plot.bar_chart(BarChart::new("current", current).color(current_color));
        });
}
