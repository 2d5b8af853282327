//! The built-in baseline for boxes and polygons: per-pixel naive Bayes over quantised colours,
//! learned from the pixels the project's labeled shapes cover (and the background they leave).
//! On an unlabeled image every pixel of a small copy takes its likeliest class; connected
//! regions of one label, no smaller than half that label's smallest labeled shape, become a box
//! (their bounding rectangle) or a polygon (their convex hull), with the region's mean posterior
//! as confidence. It finds objects that differ from their surroundings in colour — enough to
//! save an annotator most of the drawing on a consistent set — and is honest about the rest
//! through that confidence.

use std::collections::HashMap;

use super::project::{Item, Project, Submission};
use super::{Shape, Task};
use crate::Result;
use crate::assets::VersionFile;
use crate::workspace::Workspace;

/// The long side of the copy each image is read at.
const SIDE: u32 = 128;
/// Colour bins: 3 bits of each channel.
const BINS: usize = 512;
/// Class 0 of the model is the background; class `i + 1` is the project's label `i`.
const BACKGROUND: usize = 0;

/// An image read small: each pixel's colour bin, and how far one pixel reaches in the original.
struct Grid {
    width: usize,
    height: usize,
    bins: Vec<u16>,
    scale_x: f64,
    scale_y: f64,
}

impl Grid {
    fn read(ws: &Workspace, file: &VersionFile) -> Result<Grid> {
        let thumb = crate::images::thumbnail(&ws.blobs().path(&file.blob_hash), SIDE)?;
        let bins = thumb
            .rgba
            .chunks_exact(4)
            .map(|p| {
                (u16::from(p[0] >> 5) << 6) | (u16::from(p[1] >> 5) << 3) | u16::from(p[2] >> 5)
            })
            .collect();
        Ok(Grid {
            width: thumb.width as usize,
            height: thumb.height as usize,
            bins,
            scale_x: f64::from(file.width) / f64::from(thumb.width),
            scale_y: f64::from(file.height) / f64::from(thumb.height),
        })
    }

    /// The centre of pixel (x, y) in the original image's pixels.
    fn centre(&self, x: usize, y: usize) -> [f64; 2] {
        [
            (x as f64 + 0.5) * self.scale_x,
            (y as f64 + 0.5) * self.scale_y,
        ]
    }
}

/// Colour counts per class, and the smallest labeled shape of each label (in grid pixels).
struct ColourModel {
    counts: Vec<[u32; BINS]>,
    smallest: Vec<usize>,
}

impl ColourModel {
    fn fit(
        ws: &Workspace,
        files: &[VersionFile],
        labels: &[String],
        labeled: &[Submission],
    ) -> Result<ColourModel> {
        let mut model = ColourModel {
            counts: vec![[0; BINS]; labels.len() + 1],
            smallest: vec![usize::MAX; labels.len()],
        };
        for submission in labeled {
            let Some(file) = files.get(submission.position as usize) else {
                continue;
            };
            let grid = Grid::read(ws, file)?;
            let shapes: Vec<(usize, &Shape)> = submission
                .shapes
                .iter()
                .filter_map(|s| Some((labels.iter().position(|l| l == s.label())?, s)))
                .collect();
            let mut areas = vec![0usize; shapes.len()];
            for y in 0..grid.height {
                for x in 0..grid.width {
                    let point = grid.centre(x, y);
                    let covering = shapes.iter().position(|(_, s)| covers(s, point));
                    let class = covering.map_or(BACKGROUND, |i| shapes[i].0 + 1);
                    if let Some(i) = covering {
                        areas[i] += 1;
                    }
                    model.counts[class][usize::from(grid.bins[y * grid.width + x])] += 1;
                }
            }
            for ((label, _), area) in shapes.iter().zip(areas) {
                model.smallest[*label] = model.smallest[*label].min(area);
            }
        }
        Ok(model)
    }

    /// Each pixel's likeliest class and its posterior probability.
    fn classify(&self, grid: &Grid) -> Vec<(usize, f32)> {
        let totals: Vec<f64> = self
            .counts
            .iter()
            .map(|c| c.iter().map(|n| f64::from(*n)).sum())
            .collect();
        let all: f64 = totals.iter().sum();
        // Posterior per bin, computed once: prior × add-one smoothed likelihood.
        let mut per_bin: HashMap<u16, (usize, f32)> = HashMap::new();
        grid.bins
            .iter()
            .map(|bin| {
                *per_bin.entry(*bin).or_insert_with(|| {
                    let joint: Vec<f64> = self
                        .counts
                        .iter()
                        .zip(&totals)
                        .map(|(counts, total)| {
                            let prior = total / all;
                            let likelihood = (f64::from(counts[usize::from(*bin)]) + 1.0)
                                / (total + BINS as f64);
                            prior * likelihood
                        })
                        .collect();
                    let sum: f64 = joint.iter().sum();
                    joint
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map_or((BACKGROUND, 0.0), |(class, p)| (class, (p / sum) as f32))
                })
            })
            .collect()
    }
}

/// Whether a shape covers a point of the image.
fn covers(shape: &Shape, [px, py]: [f64; 2]) -> bool {
    match shape {
        Shape::Box { x, y, w, h, .. } => px >= *x && px < x + w && py >= *y && py < y + h,
        Shape::Polygon { points, .. } => {
            // Even–odd rule.
            let mut inside = false;
            let mut j = points.len().wrapping_sub(1);
            for (i, [xi, yi]) in points.iter().enumerate() {
                let [xj, yj] = points[j];
                if (*yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
                    inside = !inside;
                }
                j = i;
            }
            inside
        }
        Shape::Class { .. } | Shape::Span { .. } => false,
    }
}

/// Learns from `labeled` and predicts boxes or polygons for each of `unlabeled`.
pub fn predict(
    ws: &Workspace,
    project: &Project,
    labeled: &[Submission],
    unlabeled: &[Item],
) -> Result<Vec<(i64, Vec<Shape>)>> {
    let files = ws.version_files(project.version_id)?;
    let labels: Vec<String> = project.labels.iter().map(|l| l.name.clone()).collect();
    let model = ColourModel::fit(ws, &files, &labels, labeled)?;
    let mut out = Vec::new();
    for item in unlabeled {
        let Some(file) = files.get(item.position as usize) else {
            continue;
        };
        let grid = Grid::read(ws, file)?;
        let pixels = model.classify(&grid);
        let shapes: Vec<Shape> = regions(&grid, &pixels)
            .into_iter()
            .filter(|r| r.area * 2 >= model.smallest[r.class - 1].max(8))
            .map(|r| r.shape(project.task, &labels[r.class - 1], &grid))
            .collect();
        if !shapes.is_empty() {
            out.push((item.position, shapes));
        }
    }
    Ok(out)
}

/// A 4-connected run of pixels of one class: each row's leftmost and rightmost pixel.
struct Region {
    class: usize,
    area: usize,
    posterior: f64,
    rows: Vec<(usize, usize, usize)>,
}

/// The connected regions of every class but the background.
fn regions(grid: &Grid, pixels: &[(usize, f32)]) -> Vec<Region> {
    let (w, h) = (grid.width, grid.height);
    let mut seen = vec![false; pixels.len()];
    let mut out = Vec::new();
    for start in 0..pixels.len() {
        let class = pixels[start].0;
        if seen[start] || class == BACKGROUND {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut extent: HashMap<usize, (usize, usize)> = HashMap::new();
        let (mut area, mut posterior) = (0, 0.0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            area += 1;
            posterior += f64::from(pixels[i].1);
            let row = extent.entry(y).or_insert((x, x));
            *row = (row.0.min(x), row.1.max(x));
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for n in neighbours.into_iter().flatten() {
                if !seen[n] && pixels[n].0 == class {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        let mut rows: Vec<(usize, usize, usize)> =
            extent.into_iter().map(|(y, (l, r))| (y, l, r)).collect();
        rows.sort_unstable();
        out.push(Region {
            class,
            area,
            posterior: posterior / area as f64,
            rows,
        });
    }
    out
}

impl Region {
    /// The region as the task's shape, in the original image's pixels.
    fn shape(&self, task: Task, label: &str, grid: &Grid) -> Shape {
        let confidence = Some(self.posterior);
        let label = label.to_owned();
        // Each row's outer pixel corners, in grid units.
        let corners: Vec<[f64; 2]> = self
            .rows
            .iter()
            .flat_map(|&(y, l, r)| {
                let (y, l, r) = (y as f64, l as f64, r as f64 + 1.0);
                [[l, y], [l, y + 1.0], [r, y], [r, y + 1.0]]
            })
            .collect();
        let scale = |[x, y]: [f64; 2]| [x * grid.scale_x, y * grid.scale_y];
        if task == Task::Polygons {
            return Shape::Polygon {
                label,
                points: convex_hull(corners).into_iter().map(scale).collect(),
                confidence,
            };
        }
        let fold = |axis: usize, pick: fn(f64, f64) -> f64, from: f64| {
            corners.iter().map(|c| c[axis]).fold(from, pick)
        };
        let [x0, y0] = scale([fold(0, f64::min, f64::MAX), fold(1, f64::min, f64::MAX)]);
        let [x1, y1] = scale([fold(0, f64::max, 0.0), fold(1, f64::max, 0.0)]);
        Shape::Box {
            label,
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
            confidence,
        }
    }
}

/// Andrew's monotone chain: the hull's corners, counter-clockwise in image coordinates.
fn convex_hull(mut points: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    points.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let cross = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<[f64; 2]> = Vec::with_capacity(points.len() * 2);
    for pass in [points.clone(), points.into_iter().rev().collect()] {
        let floor = hull.len();
        for p in pass {
            while hull.len() >= floor + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hull_of_a_square_of_pixels_is_its_four_corners() {
        let hull = convex_hull(vec![
            [0.0, 0.0],
            [1.0, 0.0],
            [2.0, 0.0],
            [0.0, 2.0],
            [1.0, 1.0],
            [2.0, 2.0],
            [0.0, 1.0],
        ]);
        assert_eq!(hull, [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]]);
    }

    #[test]
    fn a_polygon_covers_its_inside_only() {
        let triangle = Shape::Polygon {
            label: "a".into(),
            points: vec![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]],
            confidence: None,
        };
        assert!(covers(&triangle, [2.0, 2.0]));
        assert!(!covers(&triangle, [8.0, 8.0]));
    }
}
