//! YOLO labels: a class list (`classes.txt` or `obj.names`, one name a line) and, for each
//! image, `<image stem>.txt` with a line `class cx cy w h` per box, normalized to 0–1. Import
//! reads a folder (label files anywhere under it; a file in it stands for the folder); export
//! writes `classes.txt` and `labels/`.
//! Normalization: coordinates are written with 6 decimals; CRLF line ends are read.

use std::collections::BTreeMap;
use std::path::Path;

use super::project::{self, Imported, Project};
use super::{
    Exported, Extent, ImageIndex, Shape, Task, accept_shapes, invalid, labels_from_names, stem,
    tidy,
};
use crate::assets::AssetRef;
use crate::workspace::Workspace;
use crate::{Error, Result};

/// Creates project `name` over `asset` from the YOLO folder `dir`; all of it is checked first.
pub fn import(ws: &mut Workspace, dir: &Path, name: &str, asset: &AssetRef) -> Result<Project> {
    // A file given (its classes.txt, say) stands for the folder it is in.
    let dir = if dir.is_file() {
        dir.parent().unwrap_or(Path::new("."))
    } else {
        dir
    };
    let shown = dir.display().to_string();
    let classes_file = ["classes.txt", "obj.names"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| invalid(format!("{shown}: no classes.txt or obj.names")))?;
    let classes: Vec<String> = std::fs::read_to_string(&classes_file)
        .map_err(|e| Error::io(&classes_file, e))?
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let labels = labels_from_names(&classes);
    let version = ws.resolve(asset)?;
    let files = ws.version_files(version.id)?;
    let index = ImageIndex::new(&files);
    let mut by_item: BTreeMap<usize, Vec<Shape>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| invalid(format!("{shown}: {e}")))?;
        let path = entry.path();
        let is_labels = path.extension().is_some_and(|e| e == "txt")
            && path != classes_file
            && !matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some("classes.txt" | "README.txt" | "train.txt" | "valid.txt" | "test.txt")
            );
        if !entry.file_type().is_file() || !is_labels {
            continue;
        }
        let relative = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let position = index.find_stem(&stem(&relative)).ok_or_else(|| {
            invalid(format!(
                "{relative}: no image '{}' in {}",
                stem(&relative),
                version.reference()
            ))
        })?;
        let file = &files[position];
        let (w, h) = (f64::from(file.width), f64::from(file.height));
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut shapes = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let at = format!("{relative}: line {}", i + 1);
            let numbers: Vec<f64> = line
                .split_whitespace()
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| invalid(format!("{at}: '{v}' is not a number")))
                })
                .collect::<Result<_>>()?;
            let [class, cx, cy, bw, bh] = numbers[..] else {
                return Err(invalid(format!(
                    "{at}: a box is 'class cx cy w h', not {} numbers",
                    numbers.len()
                )));
            };
            let label = classes
                .get(class as usize)
                .filter(|_| class >= 0.0 && class.fract() == 0.0)
                .ok_or_else(|| {
                    invalid(format!(
                        "{at}: class {class} is not among the {} classes",
                        classes.len()
                    ))
                })?;
            let shape = Shape::Box {
                label: label.clone(),
                x: (cx - bw / 2.0) * w,
                y: (cy - bh / 2.0) * h,
                w: bw * w,
                h: bh * h,
                confidence: None,
                attributes: Default::default(),
            };
            // One line is one box: a problem names its line.
            let accepted = accept_shapes(
                Task::BoundingBoxes,
                &labels,
                Extent::of_image(file),
                vec![shape],
            )
            .map_err(|e| invalid(format!("{at} {}", e.trim_start_matches("shape 1 "))))?;
            shapes.extend(accepted);
        }
        by_item.entry(position).or_default().extend(shapes);
    }
    project::create_imported(
        ws,
        name,
        Task::BoundingBoxes,
        asset,
        labels,
        &Imported::shapes(by_item),
        dir,
    )
}

/// Writes `classes.txt` and `labels/<stem>.txt` for every labeled image into `dir`; returns the
/// count of boxes.
pub fn export(ws: &Workspace, project: &Project, dir: &Path) -> Result<Exported> {
    let labels_dir = dir.join("labels");
    std::fs::create_dir_all(&labels_dir).map_err(|e| Error::io(&labels_dir, e))?;
    let names: Vec<&str> = project.labels.iter().map(|l| l.name.as_str()).collect();
    crate::files::write_atomically(&dir.join("classes.txt"), |out| {
        writeln!(out, "{}", names.join("\n")).map_err(|e| Error::io(dir, e))?;
        Ok(names.len())
    })?;
    let files = ws.version_files(project.version_id)?;
    let mut boxes = 0;
    let mut labeled = 0;
    for submission in project::latest_all(ws, project)? {
        labeled += 1;
        let file = &files[submission.position as usize];
        let (w, h) = (f64::from(file.width.max(1)), f64::from(file.height.max(1)));
        let dest = labels_dir.join(format!("{}.txt", stem(&file.path)));
        boxes += crate::files::write_atomically(&dest, |out| {
            let mut n = 0;
            for shape in &submission.shapes {
                if let Shape::Box {
                    label,
                    x,
                    y,
                    w: bw,
                    h: bh,
                    ..
                } = shape
                {
                    let class = names.iter().position(|n| n == label).unwrap_or_default();
                    writeln!(
                        out,
                        "{class} {} {} {} {}",
                        tidy((x + bw / 2.0) / w),
                        tidy((y + bh / 2.0) / h),
                        tidy(bw / w),
                        tidy(bh / h)
                    )
                    .map_err(|e| Error::io(&dest, e))?;
                    n += 1;
                }
            }
            Ok(n)
        })?;
    }
    Ok(Exported {
        items: labeled,
        labeled,
        annotations: boxes,
    })
}
