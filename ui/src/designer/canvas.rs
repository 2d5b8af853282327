//! The designer's canvas: nodes for pipeline inputs and steps, edges between ports, pan (drag
//! the background, or scroll) and zoom (Ctrl+scroll or pinch). Dragging from an output port to
//! an input port connects them; a node's header drags it; a palette item dropped on the canvas
//! adds a node there.

use egui::epaint::CubicBezierShape;
use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, StrokeKind, Vec2, pos2, vec2};
use lathe_core::pipeline::component::Port;
use lathe_core::pipeline::design::{Node as GraphNode, Source, input_key};
use lathe_core::pipeline::executor::StepStatus;
use lathe_core::pipeline::job::{Binding, Pipeline};

pub const NODE_WIDTH: f32 = 190.0;
const HEADER: f32 = 26.0;
const ROW: f32 = 18.0;
const PORT_RADIUS: f32 = 5.0;

/// Where the canvas looks: world origin offset (screen points) and scale.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub offset: Vec2,
    pub zoom: f32,
}

impl Default for View {
    fn default() -> Self {
        View {
            offset: vec2(20.0, 20.0),
            zoom: 1.0,
        }
    }
}

/// What the user did on the canvas this frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Select(Option<String>),
    /// A node's header was pressed to drag it (record undo once).
    StartMove,
    Move(String, [f32; 2]),
    Connect {
        from: Source,
        step: String,
        input: String,
    },
    Drop(Pos2),
}

/// A node as drawn: its key (step name or `$input`), title, subtitle, ports.
struct Node {
    key: String,
    title: String,
    subtitle: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    status: Option<StepStatus>,
}

fn data_ports(ports: &[(String, Port)]) -> Vec<String> {
    ports
        .iter()
        .filter(|(_, p)| p.kind.is_data())
        .map(|(n, _)| n.clone())
        .collect()
}

fn nodes(pipeline: &Pipeline, status: &dyn Fn(&str) -> Option<StepStatus>) -> Vec<Node> {
    let mut out: Vec<Node> = pipeline
        .inputs
        .iter()
        .filter(|(_, b)| matches!(b, Binding::Data { .. }))
        .map(|(name, b)| Node {
            key: input_key(name),
            title: name.clone(),
            subtitle: match b {
                Binding::Data { path, .. } => path.clone(),
                _ => String::new(),
            },
            inputs: Vec::new(),
            outputs: vec!["data".into()],
            status: None,
        })
        .collect();
    out.extend(pipeline.steps.iter().map(|s| {
        Node {
            key: s.name.clone(),
            title: s.name.clone(),
            subtitle: s
                .component
                .display_name
                .clone()
                .unwrap_or_else(|| s.source.to_string()),
            inputs: data_ports(&s.component.inputs),
            outputs: data_ports(&s.component.outputs),
            status: status(&s.name),
        }
    }));
    out
}

fn node_height(node: &Node) -> f32 {
    HEADER + 16.0 + ROW * node.inputs.len().max(node.outputs.len()).max(1) as f32 + 6.0
}

pub fn status_color(status: Option<&StepStatus>) -> Color32 {
    match status {
        Some(StepStatus::Running) => Color32::from_rgb(70, 130, 220),
        Some(StepStatus::Done) => Color32::from_rgb(60, 160, 90),
        Some(StepStatus::Reused { .. }) => Color32::from_rgb(120, 170, 120),
        Some(StepStatus::Failed { .. }) => Color32::from_rgb(210, 70, 60),
        Some(StepStatus::Skipped { .. } | StepStatus::Cancelled) => Color32::from_gray(140),
        Some(StepStatus::Queued) => Color32::from_rgb(200, 160, 60),
        None => Color32::from_gray(110),
    }
}

/// The canvas's per-frame state that outlives a frame: an edge being dragged out.
#[derive(Debug, Clone, Default)]
pub struct Canvas {
    pub view: View,
    dragging_from: Option<(Source, Pos2)>,
}

impl Canvas {
    pub fn to_world(&self, origin: Pos2, screen: Pos2) -> [f32; 2] {
        let w = (screen - origin - self.view.offset) / self.view.zoom;
        [w.x, w.y]
    }

    /// Zooms and pans so every node shows (nodes are at most 200 points tall).
    pub fn fit(&mut self, size: Vec2, layout: &std::collections::BTreeMap<String, [f32; 2]>) {
        let Some((min, max)) = layout
            .values()
            .fold(None, |bounds: Option<(Pos2, Pos2)>, p| {
                let p = pos2(p[0], p[1]);
                Some(bounds.map_or((p, p), |(lo, hi)| (lo.min(p), hi.max(p))))
            })
        else {
            return;
        };
        let extent = (max - min) + vec2(NODE_WIDTH, 120.0);
        let zoom = ((size.x - 40.0) / extent.x)
            .min((size.y - 40.0) / extent.y)
            .clamp(0.4, 1.0);
        self.view.zoom = zoom;
        self.view.offset = vec2(20.0, 20.0) - min.to_vec2() * zoom;
    }

    /// Centres the view on a world position.
    pub fn focus(&mut self, size: Vec2, world: [f32; 2]) {
        self.view.offset =
            size / 2.0 - vec2(world[0] + NODE_WIDTH / 2.0, world[1] + 30.0) * self.view.zoom;
    }

    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        pipeline: &Pipeline,
        selected: Option<&str>,
        flagged: &dyn Fn(&str) -> bool,
        status: &dyn Fn(&str) -> Option<StepStatus>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let (rect, background) =
            ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        let origin = rect.min;
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
        self.grid(&painter, rect);
        // Pan and zoom.
        if background.dragged() && self.dragging_from.is_none() {
            self.view.offset += background.drag_delta();
        }
        if background.hovered() {
            let (zoom, scroll, pointer) =
                ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta, i.pointer.hover_pos()));
            if zoom != 1.0 {
                let before = pointer.map(|p| self.to_world(origin, p));
                self.view.zoom = (self.view.zoom * zoom).clamp(0.3, 2.5);
                if let (Some(p), Some(w)) = (pointer, before) {
                    self.view.offset = p - origin - vec2(w[0], w[1]) * self.view.zoom;
                }
            } else {
                self.view.offset += scroll;
            }
        }
        if background.clicked() {
            actions.push(Action::Select(None));
        }
        if let Some(pos) = background
            .dnd_release_payload::<super::PaletteItem>()
            .and_then(|_| ui.input(|i| i.pointer.interact_pos()))
        {
            actions.push(Action::Drop(pos));
        }

        let nodes = nodes(pipeline, status);
        let view = self.view;
        let zoom = view.zoom;
        let place = |key: &str| pipeline.layout.get(key).copied().unwrap_or([0.0, 0.0]);
        let rect_of = |node: &Node| {
            let at = place(&node.key);
            Rect::from_min_size(
                origin + view.offset + vec2(at[0], at[1]) * zoom,
                vec2(NODE_WIDTH, node_height(node)) * zoom,
            )
        };
        let in_port = |node: &Node, i: usize| {
            let r = rect_of(node);
            pos2(
                r.left(),
                r.top() + (HEADER + 16.0 + ROW * (i as f32 + 0.5)) * zoom,
            )
        };
        let out_port = |node: &Node, i: usize| {
            let r = rect_of(node);
            pos2(
                r.right(),
                r.top() + (HEADER + 16.0 + ROW * (i as f32 + 0.5)) * zoom,
            )
        };
        let find = |key: &str| nodes.iter().find(|n| n.key == key);
        // Edges first, under the nodes.
        let edge_stroke = Stroke::new(
            2.0 * zoom.sqrt(),
            ui.visuals().text_color().gamma_multiply(0.6),
        );
        for step in &pipeline.steps {
            let Some(target) = find(&step.name) else {
                continue;
            };
            for (input, binding) in &step.inputs {
                let Some(i) = target.inputs.iter().position(|n| n == input) else {
                    continue;
                };
                let from = match binding {
                    Binding::StepOutput { step, output } => find(step).and_then(|n| {
                        n.outputs
                            .iter()
                            .position(|o| o == output)
                            .map(|o| out_port(n, o))
                    }),
                    Binding::ParentInput(name) => find(&input_key(name)).map(|n| out_port(n, 0)),
                    _ => None,
                };
                if let Some(from) = from {
                    edge(&painter, from, in_port(target, i), edge_stroke);
                }
            }
        }
        let pointer = ui.input(|i| i.pointer.interact_pos());
        let font = FontId::proportional(13.0 * zoom);
        let small = FontId::proportional(11.0 * zoom);
        let text = ui.visuals().text_color();
        let weak = ui.visuals().weak_text_color();
        for node in &nodes {
            let r = rect_of(node);
            let id = ui.scope_id().with(("node", &node.key));
            let header = Rect::from_min_size(r.min, vec2(r.width(), HEADER * zoom));
            let response = ui.interact(header, id, Sense::click_and_drag());
            let body = ui.interact(r.shrink(PORT_RADIUS * 2.0), id.with("body"), Sense::click());
            if response.drag_started() {
                actions.push(Action::StartMove);
            }
            if response.dragged() {
                let at = place(&node.key);
                let d = response.drag_delta() / zoom;
                actions.push(Action::Move(node.key.clone(), [at[0] + d.x, at[1] + d.y]));
            }
            if response.clicked() || response.drag_started() || body.clicked() {
                actions.push(Action::Select(Some(node.key.clone())));
            }
            let is_selected = selected == Some(node.key.as_str());
            let fill = ui.visuals().window_fill;
            let border = if is_selected {
                Stroke::new(2.5, ui.visuals().selection.stroke.color)
            } else if flagged(&node.key) {
                Stroke::new(1.5, Color32::from_rgb(210, 140, 40))
            } else {
                Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color)
            };
            painter.rect(r, 6.0 * zoom, fill, border, StrokeKind::Inside);
            let band = if matches!(GraphNode::of(&node.key), GraphNode::Input(_)) {
                Color32::from_rgb(90, 120, 170)
            } else {
                status_color(node.status.as_ref())
            };
            painter.rect_filled(
                Rect::from_min_size(r.min, vec2(6.0 * zoom, r.height())),
                egui::CornerRadius {
                    nw: (6.0 * zoom) as u8,
                    sw: (6.0 * zoom) as u8,
                    ne: 0,
                    se: 0,
                },
                band,
            );
            painter.text(
                r.min + vec2(12.0, 6.0) * zoom,
                Align2::LEFT_TOP,
                &node.title,
                font.clone(),
                text,
            );
            if let Some(status) = &node.status {
                painter.text(
                    pos2(r.right() - 8.0 * zoom, r.top() + 7.0 * zoom),
                    Align2::RIGHT_TOP,
                    status.label(),
                    small.clone(),
                    status_color(Some(status)),
                );
            }
            let subtitle: String = node.subtitle.chars().take(30).collect();
            painter.text(
                r.min + vec2(12.0, HEADER) * zoom,
                Align2::LEFT_TOP,
                subtitle,
                small.clone(),
                weak,
            );
            for (i, input) in node.inputs.iter().enumerate() {
                let p = in_port(node, i);
                painter.circle_filled(p, PORT_RADIUS * zoom, Color32::from_rgb(90, 150, 200));
                painter.text(
                    p + vec2(9.0 * zoom, 0.0),
                    Align2::LEFT_CENTER,
                    input,
                    small.clone(),
                    text,
                );
            }
            for (i, output) in node.outputs.iter().enumerate() {
                let p = out_port(node, i);
                painter.circle_filled(p, PORT_RADIUS * zoom, Color32::from_rgb(220, 150, 70));
                painter.text(
                    p - vec2(9.0 * zoom, 0.0),
                    Align2::RIGHT_CENTER,
                    output,
                    small.clone(),
                    text,
                );
                let hit = Rect::from_center_size(p, Vec2::splat(PORT_RADIUS * 4.0 * zoom));
                let port = ui.interact(hit, id.with(("out", i)), Sense::drag());
                if port.drag_started() {
                    let from = match GraphNode::of(&node.key) {
                        GraphNode::Input(name) => Source::Input(name.to_owned()),
                        GraphNode::Step(step) => Source::Step {
                            step: step.to_owned(),
                            output: output.clone(),
                        },
                    };
                    self.dragging_from = Some((from, p));
                }
            }
        }
        // An edge being dragged out: follow the pointer; on release, connect to the input
        // port under it.
        if let Some((from, start)) = self.dragging_from.clone() {
            if let Some(p) = pointer {
                edge(
                    &painter,
                    start,
                    p,
                    Stroke::new(2.0, ui.visuals().selection.stroke.color),
                );
            }
            if ui.input(|i| i.pointer.any_released()) {
                self.dragging_from = None;
                let target = pointer.and_then(|p| {
                    nodes.iter().find_map(|n| {
                        n.inputs.iter().enumerate().find_map(|(i, input)| {
                            (in_port(n, i).distance(p) < PORT_RADIUS * 3.0 * zoom)
                                .then(|| (n.key.clone(), input.clone()))
                        })
                    })
                });
                if let Some((step, input)) = target {
                    actions.push(Action::Connect { from, step, input });
                }
            }
        }
        actions
    }

    fn grid(&self, painter: &egui::Painter, rect: Rect) {
        let spacing = 40.0 * self.view.zoom;
        if spacing < 8.0 {
            return;
        }
        let color = Color32::from_gray(128).gamma_multiply(0.12);
        let start = rect.min
            + vec2(
                self.view.offset.x.rem_euclid(spacing),
                self.view.offset.y.rem_euclid(spacing),
            );
        let mut x = start.x;
        while x < rect.right() {
            painter.line_segment(
                [pos2(x, rect.top()), pos2(x, rect.bottom())],
                Stroke::new(1.0, color),
            );
            x += spacing;
        }
        let mut y = start.y;
        while y < rect.bottom() {
            painter.line_segment(
                [pos2(rect.left(), y), pos2(rect.right(), y)],
                Stroke::new(1.0, color),
            );
            y += spacing;
        }
    }
}

fn edge(painter: &egui::Painter, from: Pos2, to: Pos2, stroke: Stroke) {
    let bend = ((to.x - from.x).abs() / 2.0).max(40.0);
    painter.add(CubicBezierShape::from_points_stroke(
        [from, from + vec2(bend, 0.0), to - vec2(bend, 0.0), to],
        false,
        Color32::TRANSPARENT,
        stroke,
    ));
}
