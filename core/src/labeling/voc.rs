//! Pascal VOC XML: one file per image (`<filename>`, `<size>`, an `<object>` per box with
//! `<name>` and `<bndbox>`). Import reads a folder of them (or one file); export writes
//! `Annotations/<stem>.xml` per labeled image.
//! Normalization: a box is x = xmin, y = ymin, w = xmax − xmin, h = ymax − ymin (no 1-based
//! shift); an object's `<pose>`, `<truncated>`, `<difficult>` and `<occluded>` are kept and
//! written back; `<part>`s and `<actions>` are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::project::{self, Imported, Project};
use super::{
    Attributes, Exported, Extent, ImageIndex, Shape, Task, accept_shapes, exact, invalid,
    labels_from_names, stem, tidy,
};
use crate::assets::AssetRef;
use crate::workspace::Workspace;
use crate::{Error, Result};

#[derive(Debug)]
struct Parsed {
    filename: String,
    boxes: Vec<(String, [f64; 4], Attributes)>,
}

/// The fields of an `<object>` kept as its shape's attributes, in the order VOC writes them.
const KEPT: [&str; 4] = ["pose", "truncated", "difficult", "occluded"];

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.tag_name().name() == name)
}

fn text_of(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_owned())
}

fn parse(text: &str, shown: &str) -> Result<Parsed> {
    let doc =
        roxmltree::Document::parse(text).map_err(|e| invalid(format!("{shown}: not XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "annotation" {
        return Err(invalid(format!(
            "{shown}: not a VOC file (the root is <{}>)",
            root.tag_name().name()
        )));
    }
    let mut boxes = Vec::new();
    for (i, object) in root
        .children()
        .filter(|c| c.tag_name().name() == "object")
        .enumerate()
    {
        let at = format!("{shown}: object {}", i + 1);
        let name = text_of(object, "name").ok_or_else(|| invalid(format!("{at}: no <name>")))?;
        let bndbox = child(object, "bndbox")
            .ok_or_else(|| invalid(format!("{at} ({name}): no <bndbox>")))?;
        let number = |field: &str| -> Result<f64> {
            let value = text_of(bndbox, field)
                .ok_or_else(|| invalid(format!("{at} ({name}): no <{field}>")))?;
            value.parse().map_err(|_| {
                invalid(format!(
                    "{at} ({name}): <{field}> '{value}' is not a number"
                ))
            })
        };
        let (x0, y0, x1, y1) = (
            number("xmin")?,
            number("ymin")?,
            number("xmax")?,
            number("ymax")?,
        );
        let attributes: Attributes = KEPT
            .iter()
            .filter_map(|key| {
                let text = text_of(object, key)?;
                let value = text
                    .parse::<i64>()
                    .map_or_else(|_| serde_json::Value::from(text), serde_json::Value::from);
                Some(((*key).to_owned(), value))
            })
            .collect();
        boxes.push((name, [x0, y0, x1 - x0, y1 - y0], attributes));
    }
    Ok(Parsed {
        filename: text_of(root, "filename").unwrap_or_default(),
        boxes,
    })
}

/// Creates project `name` over `asset` from VOC files (a folder of them, or one); all checked
/// before anything is stored.
pub fn import(ws: &mut Workspace, path: &Path, name: &str, asset: &AssetRef) -> Result<Project> {
    let xmls: Vec<PathBuf> = if path.is_dir() {
        walkdir::WalkDir::new(path)
            .sort_by_file_name()
            .into_iter()
            .filter_map(std::result::Result::ok)
            .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "xml"))
            .map(walkdir::DirEntry::into_path)
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    if xmls.is_empty() {
        return Err(invalid(format!("{}: no .xml files", path.display())));
    }
    let version = ws.resolve(asset)?;
    let files = ws.version_files(version.id)?;
    let index = ImageIndex::new(&files);
    let mut parsed = Vec::new();
    for xml in &xmls {
        let shown = xml
            .strip_prefix(path)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(xml)
            .display()
            .to_string();
        let text = std::fs::read_to_string(xml).map_err(|e| Error::io(xml, e))?;
        let file = parse(&text, &shown)?;
        // Without a <filename>, the XML's own name names the image.
        let wanted = if file.filename.is_empty() {
            stem(&xml.display().to_string())
        } else {
            file.filename.clone()
        };
        let position = index.find(&wanted).ok_or_else(|| {
            invalid(format!(
                "{shown}: image '{}' is not in {}",
                file.filename,
                version.reference()
            ))
        })?;
        parsed.push((shown, position, file));
    }
    let names: BTreeSet<String> = parsed
        .iter()
        .flat_map(|(_, _, f)| f.boxes.iter().map(|(n, _, _)| n.clone()))
        .collect();
    let labels = labels_from_names(&names.into_iter().collect::<Vec<_>>());
    let mut by_item: BTreeMap<usize, Vec<Shape>> = BTreeMap::new();
    for (shown, position, file) in parsed {
        let image = &files[position];
        let shapes: Vec<Shape> = file
            .boxes
            .into_iter()
            .map(|(label, [x, y, w, h], attributes)| Shape::Box {
                label,
                x,
                y,
                w,
                h,
                confidence: None,
                attributes,
            })
            .collect();
        let shapes = accept_shapes(
            Task::BoundingBoxes,
            &labels,
            Extent::of_image(image),
            shapes,
        )
        .map_err(|e| invalid(format!("{shown}: {e}")))?;
        by_item.entry(position).or_default().extend(shapes);
    }
    project::create_imported(
        ws,
        name,
        Task::BoundingBoxes,
        asset,
        labels,
        &Imported::shapes(by_item),
        path,
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes `Annotations/<stem>.xml` for every labeled image into `dir`; returns the count of boxes.
pub fn export(ws: &Workspace, project: &Project, dir: &Path) -> Result<Exported> {
    let annotations = dir.join("Annotations");
    std::fs::create_dir_all(&annotations).map_err(|e| Error::io(&annotations, e))?;
    let files = ws.version_files(project.version_id)?;
    let mut boxes = 0;
    let mut labeled = 0;
    for submission in project::latest_all(ws, project)? {
        labeled += 1;
        let file = &files[submission.position as usize];
        let mut xml = String::new();
        let _ = write!(
            xml,
            "<annotation>\n\t<filename>{}</filename>\n\t<size>\n\t\t<width>{}</width>\n\t\t<height>{}</height>\n\t\t<depth>3</depth>\n\t</size>\n",
            escape(&file.path),
            file.width,
            file.height
        );
        for shape in &submission.shapes {
            if let Shape::Box {
                label,
                x,
                y,
                w,
                h,
                attributes,
                ..
            } = shape
            {
                let _ = write!(xml, "\t<object>\n\t\t<name>{}</name>\n", escape(label));
                for key in KEPT {
                    let value = match (attributes.get(key), key) {
                        (Some(serde_json::Value::String(text)), _) => escape(text),
                        (Some(other), _) => other.to_string(),
                        (None, "difficult") => "0".to_owned(),
                        (None, _) => continue,
                    };
                    let _ = writeln!(xml, "\t\t<{key}>{value}</{key}>");
                }
                let _ = write!(
                    xml,
                    "\t\t<bndbox>\n\t\t\t<xmin>{}</xmin>\n\t\t\t<ymin>{}</ymin>\n\t\t\t<xmax>{}</xmax>\n\t\t\t<ymax>{}</ymax>\n\t\t</bndbox>\n\t</object>\n",
                    exact(*x),
                    exact(*y),
                    tidy(x + w),
                    tidy(y + h)
                );
                boxes += 1;
            }
        }
        xml.push_str("</annotation>\n");
        let dest = annotations.join(format!("{}.xml", stem(&file.path)));
        crate::files::write_atomically(&dest, |out| {
            out.write_all(xml.as_bytes())
                .map_err(|e| Error::io(&dest, e))?;
            Ok(0)
        })?;
    }
    Ok(Exported {
        items: labeled,
        labeled,
        annotations: boxes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_files_read_boxes_and_name_bad_fields() {
        let xml = "<annotation><filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>1</xmin><ymin>2.5</ymin><xmax>11</xmax><ymax>12.5</ymax></bndbox></object></annotation>";
        let p = parse(xml, "a.xml").unwrap();
        assert_eq!(p.filename, "a.jpg");
        assert_eq!(
            p.boxes,
            [("cat".to_owned(), [1.0, 2.5, 10.0, 10.0], Attributes::new())]
        );
        let bad = xml.replace("<xmin>1</xmin>", "<xmin>one</xmin>");
        assert_eq!(
            parse(&bad, "a.xml").unwrap_err().to_string(),
            "a.xml: object 1 (cat): <xmin> 'one' is not a number"
        );
        assert!(
            parse("<annotation>", "t.xml")
                .unwrap_err()
                .to_string()
                .starts_with("t.xml: not XML")
        );
    }
}
