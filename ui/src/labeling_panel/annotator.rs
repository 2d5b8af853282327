//! The image under annotation: fitted to the view, zoom (Ctrl+scroll) and pan (scroll, or
//! middle-drag), boxes drawn by dragging, polygons by clicking vertices (click the first one,
//! or press C, to close; a click on a polygon selects it, Shift+click starts one there), a selected box's corners or polygon's vertices dragged to edit and the
//! shape dragged from inside to move it, shapes in their label's colour and a model's
//! suggestions dashed.

use egui::{Color32, Pos2, Rect, Sense, Stroke, StrokeKind, TextureHandle, Vec2, pos2, vec2};
use lathe_core::labeling::{Label, Shape};

/// What a frame of interaction asks the panel to do with the shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    Add(Shape),
    Select(Option<usize>),
    /// Replace shape `i` (a handle was dragged); `first` is true on the first frame of a drag.
    Replace {
        index: usize,
        shape: Shape,
        first: bool,
    },
}

#[derive(Debug, Clone, Default)]
pub struct ImageView {
    zoom: f32,
    pan: Vec2,
    /// A box being dragged out, from this corner (image pixels).
    drawing: Option<[f32; 2]>,
    /// A polygon's vertices so far.
    pub polygon: Vec<[f64; 2]>,
    /// The handle of the selected shape being dragged: a box's corner or a polygon's vertex.
    handle: Option<usize>,
    /// The selected shape being moved whole: where the drag began (image pixels) and the shape
    /// as it was then.
    moving: Option<([f64; 2], Shape)>,
}

/// What the canvas shows and draws with.
pub struct Scene<'a> {
    pub shapes: &'a [Shape],
    /// A model's pre-label, shown dashed until accepted.
    pub suggested: &'a [Shape],
    pub labels: &'a [Label],
    /// The label new shapes get.
    pub active: &'a str,
    /// Clicks add polygon vertices rather than drawing boxes.
    pub polygons: bool,
    pub selected: Option<usize>,
}

pub fn color_of(labels: &[Label], label: &str) -> Color32 {
    labels
        .iter()
        .find(|l| l.name == label)
        .and_then(|l| Color32::from_hex(&l.color).ok())
        .unwrap_or(Color32::YELLOW)
}

fn corners(x: f64, y: f64, w: f64, h: f64) -> [[f64; 2]; 4] {
    [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
}

/// The points of a shape that can be dragged.
fn handles(shape: &Shape) -> Vec<[f64; 2]> {
    match shape {
        Shape::Box { x, y, w, h, .. } => corners(*x, *y, *w, *h).to_vec(),
        Shape::Polygon { points, .. } => points.clone(),
        Shape::Class { .. } | Shape::Span { .. } | Shape::Value { .. } => Vec::new(),
    }
}

/// `shape` with handle `handle` moved to `to`: a box keeps the opposite corner.
fn moved(shape: &Shape, handle: usize, to: [f64; 2]) -> Option<Shape> {
    match shape {
        Shape::Box {
            label,
            x,
            y,
            w,
            h,
            confidence,
            attributes,
        } => {
            let opposite = corners(*x, *y, *w, *h)[(handle + 2) % 4];
            let (x0, x1) = (to[0].min(opposite[0]), to[0].max(opposite[0]));
            let (y0, y1) = (to[1].min(opposite[1]), to[1].max(opposite[1]));
            Some(Shape::Box {
                label: label.clone(),
                x: x0,
                y: y0,
                w: (x1 - x0).max(1.0),
                h: (y1 - y0).max(1.0),
                confidence: *confidence,
                attributes: attributes.clone(),
            })
        }
        Shape::Polygon {
            label,
            points,
            confidence,
            attributes,
        } => {
            let mut points = points.clone();
            *points.get_mut(handle)? = to;
            Some(Shape::Polygon {
                label: label.clone(),
                points,
                confidence: *confidence,
                attributes: attributes.clone(),
            })
        }
        Shape::Class { .. } | Shape::Span { .. } | Shape::Value { .. } => None,
    }
}

impl ImageView {
    /// Back to the whole image, for a new item.
    pub fn reset(&mut self) {
        *self = ImageView::default();
    }

    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        texture: &TextureHandle,
        size: [u32; 2],
        scene: &Scene,
    ) -> Vec<Edit> {
        let Scene {
            shapes,
            suggested,
            labels,
            active,
            polygons,
            selected,
        } = *scene;
        let mut edits = Vec::new();
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "Image canvas"));
        if self.zoom == 0.0 {
            self.zoom = 1.0;
        }
        let (w, h) = (size[0].max(1) as f32, size[1].max(1) as f32);
        let fit = (rect.width() / w).min(rect.height() / h) * 0.98;
        let scale = fit * self.zoom;
        let origin = rect.center() - vec2(w, h) * scale / 2.0 + self.pan;
        let to_screen = |p: [f64; 2]| origin + vec2(p[0] as f32, p[1] as f32) * scale;
        let to_image = |p: Pos2| {
            let v = (p - origin) / scale;
            [v.x.clamp(0.0, w), v.y.clamp(0.0, h)]
        };
        // Zoom about the pointer; scroll and middle-drag pan.
        if response.hovered() {
            let (zoom, scroll, pointer) =
                ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta, i.pointer.hover_pos()));
            if zoom != 1.0 {
                let new = (self.zoom * zoom).clamp(0.2, 40.0);
                if let Some(p) = pointer {
                    let before = (p - origin) / scale;
                    let new_scale = fit * new;
                    self.pan += (p - origin) - before * new_scale;
                }
                self.zoom = new;
            } else {
                self.pan += scroll;
            }
        }
        if response.dragged_by(egui::PointerButton::Middle) {
            self.pan += response.drag_delta();
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(20));
        let image_rect = Rect::from_min_size(origin, vec2(w, h) * scale);
        painter.image(
            texture.id(),
            image_rect,
            Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
            Color32::WHITE,
        );
        let pointer = ui.input(|i| i.pointer.interact_pos());
        // A selected shape's handles can be dragged.
        let selected_handles = selected.and_then(|i| Some((i, handles(shapes.get(i)?))));
        if response.drag_started_by(egui::PointerButton::Primary) {
            // From where the button went down, not where the drag was recognised.
            let down = ui
                .input(|i| i.pointer.press_origin())
                .or(response.interact_pointer_pos());
            let start = down.map(to_image);
            let on_handle = selected_handles
                .as_ref()
                .zip(down)
                .and_then(|((_, handles), p)| {
                    handles.iter().position(|h| to_screen(*h).distance(p) < 8.0)
                });
            let at = start.map(|[x, y]| [f64::from(x), f64::from(y)]);
            let grabbed = selected
                .and_then(|i| shapes.get(i))
                .zip(at)
                .filter(|(s, at)| s.covers(*at));
            match (on_handle, grabbed, start) {
                (Some(h), _, _) => self.handle = Some(h),
                (None, Some((shape, at)), _) => self.moving = Some((at, shape.clone())),
                // A drag draws a box, in a polygon project too (boxes and polygons mix, as in
                // CVAT), unless a polygon is being clicked out.
                (None, None, Some(start)) if !polygons || self.polygon.is_empty() => {
                    self.drawing = Some(start);
                }
                _ => {}
            }
        }
        if let (Some(handle), Some((index, _)), Some(p)) = (self.handle, &selected_handles, pointer)
            && response.dragged()
        {
            let [x, y] = to_image(p);
            if let Some(shape) = shapes
                .get(*index)
                .and_then(|s| moved(s, handle, [f64::from(x), f64::from(y)]))
            {
                edits.push(Edit::Replace {
                    index: *index,
                    shape,
                    first: response.drag_started(),
                });
            }
        }
        if let (Some((start, original)), Some(index), Some(p)) = (&self.moving, selected, pointer)
            && response.dragged()
            && let Some([l, t, r, b]) = original.bounds()
        {
            let [x, y] = to_image(p);
            // Whole inside the image.
            let dx = (f64::from(x) - start[0]).clamp(-l, f64::from(w) - r);
            let dy = (f64::from(y) - start[1]).clamp(-t, f64::from(h) - b);
            edits.push(Edit::Replace {
                index,
                shape: original.translated(dx.round(), dy.round()),
                first: response.drag_started(),
            });
        }
        if response.drag_stopped() {
            self.handle = None;
            self.moving = None;
            if let (Some(start), Some(end)) = (self.drawing.take(), pointer.map(to_image)) {
                let (x0, x1) = (start[0].min(end[0]), start[0].max(end[0]));
                let (y0, y1) = (start[1].min(end[1]), start[1].max(end[1]));
                if x1 - x0 >= 2.0 && y1 - y0 >= 2.0 {
                    edits.push(Edit::Add(Shape::Box {
                        label: active.to_owned(),
                        x: f64::from(x0).round(),
                        y: f64::from(y0).round(),
                        w: f64::from(x1 - x0).round(),
                        h: f64::from(y1 - y0).round(),
                        confidence: None,
                        attributes: Default::default(),
                    }));
                }
            }
        }
        if response.clicked()
            && let Some(p) = response.interact_pointer_pos()
        {
            let [x, y] = to_image(p);
            let at = [f64::from(x), f64::from(y)];
            let hit = shapes.iter().rposition(|s| s.covers(at));
            // Between polygons a click on one selects it; Shift+click starts a polygon anyway.
            let starts =
                self.polygon.is_empty() && (hit.is_none() || ui.input(|i| i.modifiers.shift));
            if !polygons || (self.polygon.is_empty() && !starts) {
                edits.push(Edit::Select(hit));
            } else {
                let closes = self
                    .polygon
                    .first()
                    .is_some_and(|first| to_screen(*first).distance(p) < 8.0);
                if closes || (ui.input(|i| i.key_pressed(egui::Key::C)) && self.polygon.len() >= 3)
                {
                    if let Some(shape) = self.close_polygon(active) {
                        edits.push(Edit::Add(shape));
                    }
                } else {
                    if starts {
                        edits.push(Edit::Select(None));
                    }
                    self.polygon.push(at);
                }
            }
        }
        if polygons
            && ui.input(|i| i.key_pressed(egui::Key::C))
            && let Some(shape) = self.close_polygon(active)
        {
            edits.push(Edit::Add(shape));
        }
        if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
            self.polygon.clear();
            self.drawing = None;
        }
        // The shapes.
        // With many shapes, names are written only on the selected one: laying out thousands
        // of labels a frame would cost more than the boxes.
        let named = shapes.len() <= 200;
        let colors: Vec<Color32> = labels.iter().map(|l| color_of(labels, &l.name)).collect();
        let color_for = |label: &str| {
            labels
                .iter()
                .position(|l| l.name == label)
                .map_or(Color32::YELLOW, |i| colors[i])
        };
        for (i, shape) in shapes.iter().enumerate() {
            let color = color_for(shape.label());
            let width = if Some(i) == selected { 3.0 } else { 2.0 };
            match shape {
                Shape::Box { x, y, w, h, .. } => {
                    let r = Rect::from_two_pos(to_screen([*x, *y]), to_screen([x + w, y + h]));
                    if !r.intersects(rect) {
                        continue;
                    }
                    painter.rect(
                        r,
                        0.0,
                        color.gamma_multiply(0.15),
                        Stroke::new(width, color),
                        StrokeKind::Outside,
                    );
                    if named || Some(i) == selected {
                        painter.text(
                            r.left_top() + vec2(2.0, -14.0),
                            egui::Align2::LEFT_TOP,
                            shape.label(),
                            egui::FontId::proportional(12.0),
                            color,
                        );
                    }
                }
                Shape::Polygon { points, .. } => {
                    let screen: Vec<Pos2> = points.iter().map(|p| to_screen(*p)).collect();
                    painter.add(egui::Shape::convex_polygon(
                        screen.clone(),
                        color.gamma_multiply(0.15),
                        Stroke::NONE,
                    ));
                    painter.add(egui::Shape::closed_line(screen, Stroke::new(width, color)));
                }
                _ => {}
            }
            if Some(i) == selected {
                for h in handles(shape) {
                    painter.rect_filled(
                        Rect::from_center_size(to_screen(h), Vec2::splat(8.0)),
                        1.0,
                        color,
                    );
                }
            }
        }
        for shape in suggested {
            let mut outline: Vec<Pos2> = match shape {
                Shape::Box { x, y, w, h, .. } => corners(*x, *y, *w, *h)
                    .iter()
                    .map(|c| to_screen(*c))
                    .collect(),
                Shape::Polygon { points, .. } => points.iter().map(|p| to_screen(*p)).collect(),
                _ => continue,
            };
            outline.extend(outline.first().copied());
            let color = color_for(shape.label());
            painter.extend(egui::Shape::dashed_line(
                &outline,
                Stroke::new(2.0, color),
                6.0,
                4.0,
            ));
            // Named above the outline's top-left, where a box names its label.
            let top_left = outline
                .iter()
                .fold(Pos2::new(f32::MAX, f32::MAX), |a, p| a.min(*p));
            if !outline.is_empty() {
                painter.text(
                    top_left + vec2(2.0, -14.0),
                    egui::Align2::LEFT_TOP,
                    format!(
                        "{} {:.2}?",
                        shape.label(),
                        shape.confidence().unwrap_or(1.0)
                    ),
                    egui::FontId::proportional(12.0),
                    color,
                );
            }
        }
        if let (Some(start), Some(p)) = (self.drawing, pointer) {
            let r = Rect::from_two_pos(to_screen([f64::from(start[0]), f64::from(start[1])]), p);
            painter.rect_stroke(
                r,
                0.0,
                Stroke::new(1.5, color_of(labels, active)),
                StrokeKind::Outside,
            );
        }
        if !self.polygon.is_empty() {
            let mut line: Vec<Pos2> = self.polygon.iter().map(|p| to_screen(*p)).collect();
            if let Some(p) = pointer {
                line.push(p);
            }
            painter.add(egui::Shape::line(
                line,
                Stroke::new(1.5, color_of(labels, active)),
            ));
            for p in &self.polygon {
                painter.circle_filled(to_screen(*p), 3.5, color_of(labels, active));
            }
        }
        edits
    }

    fn close_polygon(&mut self, label: &str) -> Option<Shape> {
        if self.polygon.len() < 3 {
            return None;
        }
        Some(Shape::Polygon {
            label: label.to_owned(),
            points: std::mem::take(&mut self.polygon),
            confidence: None,
            attributes: Default::default(),
        })
    }
}
