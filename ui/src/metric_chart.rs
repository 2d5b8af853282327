//! Metric charts: one or more series (a run's history of one metric) drawn with egui_plot, by
//! step or by time, with optional exponential smoothing as in TensorBoard and MLflow.

use egui_plot::{Legend, Line, Plot, PlotPoints};
use lathe_core::tracking::metrics::Point;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAxis {
    #[default]
    Step,
    /// Seconds since the series' first point.
    Time,
}

/// How charts are drawn; shared by every chart of a view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartStyle {
    pub x_axis: XAxis,
    /// 0 draws the raw values; towards 1, each point leans more on the ones before it.
    pub smoothing: f32,
}

impl Default for ChartStyle {
    fn default() -> Self {
        Self {
            x_axis: XAxis::Step,
            smoothing: 0.0,
        }
    }
}

impl ChartStyle {
    pub fn controls_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("X axis");
            ui.selectable_value(&mut self.x_axis, XAxis::Step, "Step");
            ui.selectable_value(&mut self.x_axis, XAxis::Time, "Time");
            ui.separator();
            ui.add(egui::Slider::new(&mut self.smoothing, 0.0..=0.99).text("Smoothing"));
        });
    }
}

/// The points to draw: x by the chosen axis, y smoothed (NaN and infinities left out).
pub fn series(points: &[Point], style: ChartStyle) -> Vec<[f64; 2]> {
    let start = points.first().map_or(0, |p| p.timestamp);
    let weight = f64::from(style.smoothing.clamp(0.0, 0.99));
    let mut smoothed: Option<f64> = None;
    let mut out = Vec::with_capacity(points.len());
    for p in points.iter().filter(|p| p.value.is_finite()) {
        let y = match smoothed {
            Some(previous) => previous * weight + p.value * (1.0 - weight),
            None => p.value,
        };
        smoothed = Some(y);
        let x = match style.x_axis {
            XAxis::Step => p.step as f64,
            XAxis::Time => (p.timestamp - start) as f64 / 1000.0,
        };
        out.push([x, y]);
    }
    out
}

/// A chart of named series; `id` keeps its zoom apart from other charts.
pub fn chart_ui(
    ui: &mut egui::Ui,
    id: impl std::hash::Hash + std::fmt::Debug,
    title: &str,
    lines: &[(String, Vec<[f64; 2]>)],
    height: f32,
) {
    ui.strong(title);
    Plot::new(("metric-chart", id))
        .height(height)
        .legend(Legend::default())
        .show(ui, |plot| {
            for (name, points) in lines {
                plot.line(Line::new(name.clone(), PlotPoints::from(points.clone())));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_leans_on_earlier_points() {
        let points: Vec<Point> = [0.0, 10.0, 10.0, f64::NAN]
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                step: i as i64,
                timestamp: 1000 * i as i64,
                value: *v,
            })
            .collect();
        let raw = series(&points, ChartStyle::default());
        assert_eq!(raw, [[0.0, 0.0], [1.0, 10.0], [2.0, 10.0]]);
        let smooth = series(
            &points,
            ChartStyle {
                x_axis: XAxis::Time,
                smoothing: 0.5,
            },
        );
        assert_eq!(smooth, [[0.0, 0.0], [1.0, 5.0], [2.0, 7.5]]);
    }
}
