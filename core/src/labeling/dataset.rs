//! A project's labels as a data asset: a table with a row per shape of each labeled item's
//! latest submission (items without shapes get a row with an empty label), imported as a new
//! version of a table asset whose source names the project and the asset it labels — so
//! pipelines can train on it and lineage leads back to the labeling.

use std::io::Write;

use super::Shape;
use super::project::{self, Project};
use crate::assets::AssetVersion;
use crate::import::{ImportRequest, import};
use crate::jobs::Progress;
use crate::workspace::Workspace;
use crate::{Error, Result};

/// Writes the label table as CSV: item, name, label, kind, x, y, w, h, start, end, annotator,
/// source (a row's value is its `label`, of kind `value`).
pub fn write_table(ws: &Workspace, project: &Project, out: &mut dyn Write) -> Result<usize> {
    let mut writer = csv::Writer::from_writer(out);
    let failed = |e: csv::Error| super::invalid(format!("writing the label table: {e}"));
    writer
        .write_record([
            "item",
            "name",
            "label",
            "kind",
            "x",
            "y",
            "w",
            "h",
            "start",
            "end",
            "annotator",
            "source",
        ])
        .map_err(failed)?;
    let names: Vec<String> = project::items(ws, project, &project::Filter::default())?
        .into_iter()
        .map(|i| i.name)
        .collect();
    let mut rows = 0;
    project::for_each_latest(ws, project, |s| {
        let name = names.get(s.position as usize).cloned().unwrap_or_default();
        let item = s.position.to_string();
        let mut row = |label: &str, kind: &str, numbers: [String; 6]| -> Result<()> {
            let [x, y, w, h, start, end] = numbers;
            writer
                .write_record([
                    item.as_str(),
                    &name,
                    label,
                    kind,
                    &x,
                    &y,
                    &w,
                    &h,
                    &start,
                    &end,
                    &s.annotator,
                    &s.source,
                ])
                .map_err(failed)?;
            rows += 1;
            Ok(())
        };
        let none = || std::array::from_fn(|_| String::new());
        if s.shapes.is_empty() {
            row("", "", none())?;
        }
        for shape in &s.shapes {
            match shape {
                Shape::Class { label, .. } => row(label, "class", none())?,
                Shape::Value { value, .. } => row(&value.to_string(), "value", none())?,
                Shape::Box {
                    label, x, y, w, h, ..
                } => {
                    row(
                        label,
                        "box",
                        [
                            x.to_string(),
                            y.to_string(),
                            w.to_string(),
                            h.to_string(),
                            String::new(),
                            String::new(),
                        ],
                    )?;
                }
                Shape::Polygon { label, .. } => {
                    let [x0, y0, x1, y1] = shape.bounds().unwrap_or_default();
                    row(
                        label,
                        "polygon",
                        [
                            x0.to_string(),
                            y0.to_string(),
                            (x1 - x0).to_string(),
                            (y1 - y0).to_string(),
                            String::new(),
                            String::new(),
                        ],
                    )?;
                }
                Shape::Span {
                    label, start, end, ..
                } => {
                    row(
                        label,
                        "span",
                        [
                            String::new(),
                            String::new(),
                            String::new(),
                            String::new(),
                            start.to_string(),
                            end.to_string(),
                        ],
                    )?;
                }
            }
        }
        Ok(())
    })?;
    writer.flush().map_err(|e| Error::io("<label table>", e))?;
    Ok(rows)
}

/// Records the label table as a new version of the table asset `name` (unchanged labels find
/// the version that holds them); its source names the project and the labeled asset.
pub fn export_asset(
    ws: &mut Workspace,
    project: &Project,
    name: &str,
) -> Result<(AssetVersion, bool)> {
    let staging = tempfile::tempdir().map_err(|e| Error::io("<temp>", e))?;
    let path = staging.path().join(format!("{name}.csv"));
    let rows = crate::files::write_atomically(&path, |out| write_table(ws, project, out))?;
    if rows == 0 {
        // Said before the import, which would name the staging file rather than the project.
        return Err(super::invalid(format!(
            "{} has no labels yet: label some items, then record them as a data asset",
            project.name
        )));
    }
    let request = ImportRequest {
        path,
        name: name.to_owned(),
        kind: Some(crate::assets::AssetKind::Table),
        text_column: None,
        source_label: Some(format!(
            "labels of project {} over {}",
            project.name, project.asset
        )),
    };
    let outcome = import(ws, &request, &Progress::default())?;
    Ok((outcome.version, outcome.created))
}
