//! The built-in baseline for boxes and polygons, learned from the project's labeled shapes in
//! two stages.
//!
//! 1. Which pixels are objects: naive Bayes over two features of each pixel of a small copy —
//!    its colour (3 bits a channel) and its contrast with the image's background (the median
//!    colour of its border). Colour carries what a consistent set shares; contrast carries
//!    "a figure on a ground" to colours never labeled.
//! 2. Which label a region has: connected object regions, no smaller than half the smallest
//!    labeled one, are described by how much of their bounding box they fill (a square fills
//!    it, a circle π/4, a triangle half), their aspect ratio and mean colour, and take the label
//!    of the nearest labeled region's mean.
//!
//! A region becomes a box (its bounding rectangle) or a polygon (its convex hull); its
//! confidence is its pixels' mean object posterior times its label's share of the vote. It saves
//! an annotator most of the drawing on sets of figures on a ground, and says how sure it is.

use super::project::{Item, Project, Submission};
use super::{Shape, Task};
use crate::Result;
use crate::assets::VersionFile;
use crate::jobs::Progress;
use crate::workspace::Workspace;

/// The long side of the copy each image is read at.
const SIDE: u32 = 128;
/// Colour bins: 3 bits of each channel.
const COLOURS: usize = 512;
/// Contrast bins: the distance from the background colour, in steps of 8 (of 0–441).
const CONTRASTS: usize = 56;

/// An image read small, each pixel's features, and how far one pixel reaches in the original.
struct Grid {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
    colour: Vec<u16>,
    contrast: Vec<u8>,
    scale_x: f64,
    scale_y: f64,
}

impl Grid {
    fn read(ws: &Workspace, file: &VersionFile) -> Result<Grid> {
        let thumb = crate::images::thumbnail(&ws.blobs().path(&file.blob_hash), SIDE)?;
        let (width, height) = (thumb.width as usize, thumb.height as usize);
        let rgb: Vec<[u8; 3]> = thumb
            .rgba
            .chunks_exact(4)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        let border: Vec<[u8; 3]> = (0..width * height)
            .filter(|i| {
                let (x, y) = (i % width, i / width);
                x == 0 || y == 0 || x + 1 == width || y + 1 == height
            })
            .map(|i| rgb[i])
            .collect();
        let ground: [f32; 3] = std::array::from_fn(|c| {
            let mut channel: Vec<u8> = border.iter().map(|p| p[c]).collect();
            channel.sort_unstable();
            f32::from(channel.get(channel.len() / 2).copied().unwrap_or(0))
        });
        let colour = rgb
            .iter()
            .map(|p| {
                (u16::from(p[0] >> 5) << 6) | (u16::from(p[1] >> 5) << 3) | u16::from(p[2] >> 5)
            })
            .collect();
        let contrast = rgb
            .iter()
            .map(|p| {
                let d: f32 = (0..3).map(|c| (f32::from(p[c]) - ground[c]).powi(2)).sum();
                ((d.sqrt() / 8.0) as usize).min(CONTRASTS - 1) as u8
            })
            .collect();
        Ok(Grid {
            width,
            height,
            rgb,
            colour,
            contrast,
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

/// Stage 1: feature counts of background (0) and object (1) pixels.
struct PixelModel {
    colour: [Vec<f64>; 2],
    contrast: [Vec<f64>; 2],
}

impl PixelModel {
    fn new() -> PixelModel {
        PixelModel {
            colour: [vec![0.0; COLOURS], vec![0.0; COLOURS]],
            contrast: [vec![0.0; CONTRASTS], vec![0.0; CONTRASTS]],
        }
    }

    fn count(&mut self, grid: &Grid, covered: &[bool]) {
        for (i, object) in covered.iter().enumerate() {
            let class = usize::from(*object);
            self.colour[class][usize::from(grid.colour[i])] += 1.0;
            self.contrast[class][usize::from(grid.contrast[i])] += 1.0;
        }
    }

    /// Each pixel's probability of being part of an object.
    fn posterior(&self, grid: &Grid) -> Vec<f32> {
        let totals: [f64; 2] = std::array::from_fn(|c| self.colour[c].iter().sum());
        let all = totals[0] + totals[1];
        // Likelihoods per bin, add-one smoothed, times the prior.
        let odds = |c: usize, colour: usize, contrast: usize| {
            (totals[c] / all) * (self.colour[c][colour] + 1.0) / (totals[c] + COLOURS as f64)
                * (self.contrast[c][contrast] + 1.0)
                / (totals[c] + CONTRASTS as f64)
        };
        (0..grid.colour.len())
            .map(|i| {
                let (colour, contrast) =
                    (usize::from(grid.colour[i]), usize::from(grid.contrast[i]));
                let (ground, object) = (odds(0, colour, contrast), odds(1, colour, contrast));
                (object / (ground + object)) as f32
            })
            .collect()
    }
}

/// Which pixels of a grid each shape covers.
fn coverage(grid: &Grid, shapes: &[Shape]) -> Vec<Vec<bool>> {
    shapes
        .iter()
        .map(|shape| {
            (0..grid.width * grid.height)
                .map(|i| shape.covers(grid.centre(i % grid.width, i / grid.width)))
                .collect()
        })
        .collect()
}

/// Learns from `labeled` and predicts boxes or polygons for each of `unlabeled`.
pub fn predict(
    ws: &Workspace,
    project: &Project,
    labeled: &[Submission],
    unlabeled: &[Item],
    progress: &Progress,
) -> Result<Vec<(i64, Vec<Shape>)>> {
    let files = ws.version_files(project.version_id)?;
    let labels: Vec<String> = project.labels.iter().map(|l| l.name.clone()).collect();
    // Stage 1 from every labeled pixel.
    let mut pixels = PixelModel::new();
    let mut training = Vec::new();
    progress.start_stage("Learning from the labeled images", labeled.len() as u64);
    for submission in labeled {
        progress.check()?;
        progress.advance(1);
        let Some(file) = files.get(submission.position as usize) else {
            continue;
        };
        let grid = Grid::read(ws, file)?;
        let shapes: Vec<(usize, Shape)> = submission
            .shapes
            .iter()
            .filter_map(|s| Some((labels.iter().position(|l| l == s.label())?, s.clone())))
            .collect();
        let plain: Vec<Shape> = shapes.iter().map(|(_, s)| s.clone()).collect();
        let covered = coverage(&grid, &plain);
        let any: Vec<bool> = (0..grid.width * grid.height)
            .map(|i| covered.iter().any(|c| c[i]))
            .collect();
        pixels.count(&grid, &any);
        training.push((grid, shapes, covered));
    }
    // Stage 2: each labeled shape described by the object pixels it covers.
    let mut described: Vec<(usize, Descriptor, usize)> = Vec::new();
    for (grid, shapes, covered) in &training {
        let posterior = pixels.posterior(grid);
        for ((label, _), inside) in shapes.iter().zip(covered) {
            let region = Region::of(grid, |i| inside[i] && posterior[i] >= 0.5, &posterior);
            if let Some(region) = region {
                described.push((*label, region.descriptor(grid), region.area));
            }
        }
    }
    let Some(smallest) = described.iter().map(|(_, _, area)| *area).min() else {
        return Ok(Vec::new());
    };
    let centroids = Centroids::fit(&described);
    let mut out = Vec::new();
    progress.start_stage("Pre-labeling", unlabeled.len() as u64);
    for item in unlabeled {
        progress.check()?;
        progress.advance(1);
        let Some(file) = files.get(item.position as usize) else {
            continue;
        };
        let grid = Grid::read(ws, file)?;
        let posterior = pixels.posterior(&grid);
        let shapes: Vec<Shape> = regions(&grid, &posterior)
            .into_iter()
            .filter(|r| r.area * 2 >= smallest.max(8))
            .map(|r| {
                let (label, share) = centroids.nearest(&r.descriptor(&grid));
                r.shape(project.task, &labels[label], share, &grid)
            })
            .collect();
        if !shapes.is_empty() {
            out.push((item.position, shapes));
        }
    }
    Ok(out)
}

/// A region's fill of its bounding box, log aspect ratio and mean colour (0–1).
type Descriptor = [f64; 5];

/// How much each part of a descriptor counts: the fill tells shapes apart best.
const WEIGHTS: Descriptor = [4.0, 1.0, 1.0, 1.0, 1.0];

/// Stage 2: the mean descriptor of each label's labeled regions.
struct Centroids(Vec<(usize, Descriptor)>);

impl Centroids {
    fn fit(described: &[(usize, Descriptor, usize)]) -> Centroids {
        let mut sums: std::collections::BTreeMap<usize, (Descriptor, f64)> = Default::default();
        for (label, d, _) in described {
            let (sum, n) = sums.entry(*label).or_insert(([0.0; 5], 0.0));
            sum.iter_mut().zip(d).for_each(|(s, v)| *s += v);
            *n += 1.0;
        }
        Centroids(
            sums.into_iter()
                .map(|(label, (sum, n))| (label, sum.map(|s| s / n)))
                .collect(),
        )
    }

    /// The nearest label and its share of a softmax over negative distances.
    fn nearest(&self, d: &Descriptor) -> (usize, f64) {
        let weights: Vec<f64> = self
            .0
            .iter()
            .map(|(_, c)| {
                let distance: f64 = (0..5).map(|k| WEIGHTS[k] * (c[k] - d[k]).powi(2)).sum();
                (-distance.sqrt() * 8.0).exp()
            })
            .collect();
        let total: f64 = weights.iter().sum();
        weights
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or((0, 0.0), |(i, w)| {
                (self.0[i].0, if total > 0.0 { w / total } else { 0.0 })
            })
    }
}

/// A connected set of pixels: each row's leftmost and rightmost pixel, its area and its
/// pixels' summed colour and posterior.
struct Region {
    area: usize,
    posterior: f64,
    rgb: [f64; 3],
    rows: Vec<(usize, usize, usize)>,
}

impl Region {
    /// The pixels `inside` says belong, taken as one region (for a labeled shape).
    fn of(grid: &Grid, inside: impl Fn(usize) -> bool, posterior: &[f32]) -> Option<Region> {
        let mut region = Region::empty();
        for i in (0..grid.width * grid.height).filter(|i| inside(*i)) {
            region.add(grid, i, posterior[i]);
        }
        (region.area > 0).then(|| region.finish())
    }

    fn empty() -> Region {
        Region {
            area: 0,
            posterior: 0.0,
            rgb: [0.0; 3],
            rows: Vec::new(),
        }
    }

    fn add(&mut self, grid: &Grid, i: usize, posterior: f32) {
        let (x, y) = (i % grid.width, i / grid.width);
        self.area += 1;
        self.posterior += f64::from(posterior);
        for c in 0..3 {
            self.rgb[c] += f64::from(grid.rgb[i][c]);
        }
        match self.rows.iter_mut().find(|r| r.0 == y) {
            Some(row) => *row = (y, row.1.min(x), row.2.max(x)),
            None => self.rows.push((y, x, x)),
        }
    }

    /// Means from sums, rows in order.
    fn finish(mut self) -> Region {
        let n = self.area as f64;
        self.posterior /= n;
        self.rgb = self.rgb.map(|c| c / n);
        self.rows.sort_unstable();
        self
    }

    /// The bounding box in grid pixels: left, top, right, bottom (exclusive).
    fn bounds(&self) -> [f64; 4] {
        let left = self.rows.iter().map(|r| r.1).min().unwrap_or(0) as f64;
        let right = self.rows.iter().map(|r| r.2).max().unwrap_or(0) as f64 + 1.0;
        let top = self.rows.first().map_or(0, |r| r.0) as f64;
        let bottom = self.rows.last().map_or(0, |r| r.0) as f64 + 1.0;
        [left, top, right, bottom]
    }

    fn descriptor(&self, grid: &Grid) -> Descriptor {
        let [l, t, r, b] = self.bounds();
        // In the original's proportions: the small copy keeps them, up to rounding.
        let (w, h) = ((r - l) * grid.scale_x, (b - t) * grid.scale_y);
        [
            self.area as f64 / ((r - l) * (b - t)),
            (w / h).ln(),
            self.rgb[0] / 255.0,
            self.rgb[1] / 255.0,
            self.rgb[2] / 255.0,
        ]
    }

    /// The region as the task's shape, in the original image's pixels.
    fn shape(&self, task: Task, label: &str, share: f64, grid: &Grid) -> Shape {
        let confidence = Some(self.posterior * share);
        let label = label.to_owned();
        let scale = |[x, y]: [f64; 2]| [x * grid.scale_x, y * grid.scale_y];
        if task == Task::Polygons {
            // Each row's outer pixel corners, in grid units.
            let corners: Vec<[f64; 2]> = self
                .rows
                .iter()
                .flat_map(|&(y, l, r)| {
                    let (y, l, r) = (y as f64, l as f64, r as f64 + 1.0);
                    [[l, y], [l, y + 1.0], [r, y], [r, y + 1.0]]
                })
                .collect();
            return Shape::Polygon {
                label,
                points: simplified(convex_hull(corners))
                    .into_iter()
                    .map(scale)
                    .collect(),
                confidence,
                attributes: Default::default(),
            };
        }
        let [l, t, r, b] = self.bounds();
        let ([x0, y0], [x1, y1]) = (scale([l, t]), scale([r, b]));
        Shape::rectangle(task, label, [x0, y0, x1, y1], confidence)
    }
}

/// The 4-connected regions of object pixels (posterior at least one half).
fn regions(grid: &Grid, posterior: &[f32]) -> Vec<Region> {
    let (w, h) = (grid.width, grid.height);
    let object = |i: usize| posterior[i] >= 0.5;
    let mut seen = vec![false; posterior.len()];
    let mut out = Vec::new();
    for start in 0..posterior.len() {
        if seen[start] || !object(start) {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![start];
        let mut region = Region::empty();
        while let Some(i) = stack.pop() {
            region.add(grid, i, posterior[i]);
            let (x, y) = (i % w, i / w);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for n in neighbours.into_iter().flatten() {
                if !seen[n] && object(n) {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        out.push(region.finish());
    }
    out
}

/// A closed outline without the corners that bend it by under a pixel: a pixel staircase
/// along a straight edge becomes that edge.
fn simplified(mut points: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    let off_line = |a: [f64; 2], p: [f64; 2], b: [f64; 2]| {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        ((p[0] - a[0]) * dy - (p[1] - a[1]) * dx).abs() / dx.hypot(dy).max(f64::EPSILON)
    };
    let mut i = 0;
    while points.len() > 3 && i < points.len() {
        let n = points.len();
        if off_line(points[(i + n - 1) % n], points[i], points[(i + 1) % n]) < 0.75 {
            points.remove(i);
            i = i.saturating_sub(1);
        } else {
            i += 1;
        }
    }
    points
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
    fn a_staircase_along_an_edge_simplifies_to_the_edge() {
        // A right triangle traced in unit steps along its hypotenuse.
        let mut outline = vec![[0.0, 0.0], [0.0, 10.0], [10.0, 10.0]];
        outline.extend((1..10).rev().map(|i| [f64::from(i), f64::from(i)]));
        let hull = convex_hull(outline.clone());
        assert_eq!(simplified(hull), [[0.0, 0.0], [10.0, 10.0], [0.0, 10.0]]);
        let jagged: Vec<[f64; 2]> = (0..10)
            .flat_map(|i| {
                let i = f64::from(i);
                [[i, i], [i + 1.0, i]]
            })
            .chain([[10.0, 10.0], [0.0, 10.0]])
            .collect();
        // Its steps' outer corners stand under a pixel off the diagonal: they go too.
        assert_eq!(
            simplified(convex_hull(jagged)),
            [[0.0, 0.0], [10.0, 10.0], [0.0, 10.0]]
        );
    }

    #[test]
    fn a_polygon_covers_its_inside_only() {
        let triangle = Shape::Polygon {
            label: "a".into(),
            points: vec![[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]],
            confidence: None,
            attributes: Default::default(),
        };
        assert!(triangle.covers([2.0, 2.0]));
        assert!(!triangle.covers([8.0, 8.0]));
    }
}
