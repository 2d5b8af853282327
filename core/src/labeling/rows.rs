//! Table rows as labeling items: a project over a table asset labels each row with a class
//! ([`Task::RowClassification`]) or a number ([`Task::RowValue`]) — the ground truth of a
//! tabular model's predictions. Its items are the version's rows, or none to begin with and
//! the rows a monitor's label action sends later (`monitoring/actions.rs`), each kept with its
//! fields, why it was sent and the action run that sent it (migration 18).
//!
//! An item's name is its key, the correlation id ground truth is joined on: a collected row's
//! `request_id` (`<request_id>_<row>` for a request of several rows, as Azure ML's data
//! collector names them), a key column's value, or `row N` (1-based) for a table with neither.
//!
//! Ground truth ([`ground_truth`]) is every accepted item's latest answer by key, for any
//! classifying task (an image's path or `item N` of a text asset is its key) and for values.

use polars::prelude::*;
use rusqlite::params;

use super::project::{self, Project, Status};
use super::{Exported, Label, Shape, Task, invalid};
use crate::assets::AssetRef;
use crate::workspace::Workspace;
use crate::{Error, Result};

/// The most rows a project takes from one table: labeling is for a sample people can get
/// through, and a larger table is a sign of the wrong asset.
pub const MAX_ROWS: usize = 100_000;

/// Collection's columns that say when and how a row was answered, not what it is.
const BOOKKEEPING: [&str; 4] = ["request_id", "row", "timestamp_ms", "latency_ms"];

/// A row to label: its key, its fields as text (`None` for a missing value), and why it is
/// there (set by a monitor's action: `confidence 0.52`, `drift score 3.1`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RowItem {
    pub key: String,
    pub fields: Fields,
    pub reason: Option<String>,
}

/// Each row's key (see the module's rule): `key_column`'s value when named, else the
/// collected `request_id` (with `_<row>` where the request has several rows), else `row N`.
///
/// # Errors
/// `key_column` is not a column of `df`.
pub fn keys(df: &DataFrame, key_column: Option<&str>) -> Result<Vec<String>> {
    let text = |name: &str| -> Result<Vec<Option<String>>> {
        let column = df.column(name).map_err(|_| {
            invalid(format!(
                "there is no column '{name}' to key the rows by; the table has {}",
                df.get_column_names()
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        Ok((0..column.len())
            .map(|i| column.get(i).ok().and_then(|v| crate::table::cell_text(&v)))
            .collect())
    };
    let numbered = |i: usize| format!("row {}", i + 1);
    if let Some(name) = key_column {
        return Ok(text(name)?
            .into_iter()
            .enumerate()
            .map(|(i, k)| k.unwrap_or_else(|| numbered(i)))
            .collect());
    }
    if df.column("request_id").is_err() {
        return Ok((0..df.height()).map(numbered).collect());
    }
    let ids = text("request_id")?;
    let rows = if df.column("row").is_ok() {
        text("row")?
    } else {
        vec![None; ids.len()]
    };
    let mut per_request: std::collections::HashMap<&str, usize> = Default::default();
    for id in ids.iter().flatten() {
        *per_request.entry(id).or_default() += 1;
    }
    Ok(ids
        .iter()
        .zip(&rows)
        .enumerate()
        .map(|(i, (id, row))| match (id, row) {
            (Some(id), Some(row)) if per_request[id.as_str()] > 1 => format!("{id}_{row}"),
            (Some(id), _) => id.clone(),
            (None, _) => numbered(i),
        })
        .collect())
}

/// Rows `wanted` of `df` (all when `None`), in that order, as items keyed by [`keys`], their
/// fields every column but collection's bookkeeping and the key column.
///
/// # Errors
/// As [`keys`].
pub fn items_of(
    df: &DataFrame,
    key_column: Option<&str>,
    wanted: Option<&[usize]>,
) -> Result<Vec<RowItem>> {
    let keys = keys(df, key_column)?;
    let columns: Vec<&Column> = df
        .columns()
        .iter()
        .filter(|c| {
            !BOOKKEEPING.contains(&c.name().as_str()) && Some(c.name().as_str()) != key_column
        })
        .collect();
    let item = |i: usize| RowItem {
        key: keys[i].clone(),
        fields: columns
            .iter()
            .map(|c| {
                (
                    c.name().to_string(),
                    c.get(i).ok().and_then(|v| crate::table::cell_text(&v)),
                )
            })
            .collect(),
        reason: None,
    };
    Ok(match wanted {
        Some(rows) => rows.iter().map(|&i| item(i)).collect(),
        None => (0..df.height()).map(item).collect(),
    })
}

/// Creates a row project over the table `asset`: its rows as items (keyed by `key_column`,
/// see [`keys`]), or none when `empty` (a monitor's label action fills it). A value project
/// has one label, naming the quantity.
///
/// # Errors
/// A task that does not label rows; an asset that is not a table; a value project with other
/// than one label; more than [`MAX_ROWS`] rows; as [`project::create_with`].
pub fn create(
    ws: &mut Workspace,
    name: &str,
    task: Task,
    asset: &AssetRef,
    labels: Vec<Label>,
    key_column: Option<&str>,
    empty: bool,
) -> Result<Project> {
    if !task.rows() {
        return Err(invalid(format!(
            "{} does not label table rows",
            task.as_str()
        )));
    }
    if task == Task::RowValue && labels.len() != 1 {
        return Err(invalid(format!(
            "a row_value project has one label, the quantity it asks for (such as price), not {}",
            labels.len()
        )));
    }
    let version = ws.resolve(asset)?;
    let items = if empty || version.kind != crate::assets::AssetKind::Table {
        // Not a table: create_with names the kinds.
        Vec::new()
    } else {
        let df = crate::profile::load_table(ws, &version)?;
        if df.height() > MAX_ROWS {
            return Err(invalid(format!(
                "{} has {} rows, more than the {MAX_ROWS} a project takes: label a sample \
                 (a data asset of the rows to label), or start the project empty and let a \
                 monitor send it the rows that matter",
                version.reference(),
                df.height()
            )));
        }
        items_of(&df, key_column, None)?
    };
    project::create_with(ws, name, task, asset, labels, 1, |tx, project| {
        insert(tx, project, &items, None)?;
        Ok(())
    })
}

/// Appends `items` to `project` (inside the caller's transaction), after its last item, in
/// the order given — the queue's order. A key already in the project is not added twice.
/// Returns the positions added.
///
/// # Errors
/// The store cannot be written.
pub fn insert(
    conn: &rusqlite::Connection,
    project: &Project,
    items: &[RowItem],
    action_run: Option<i64>,
) -> Result<Vec<i64>> {
    let mut next: i64 = conn.query_row(
        "SELECT COALESCE(MAX(position) + 1, 0) FROM label_items WHERE project_id = ?1",
        [project.id],
        |r| r.get(0),
    )?;
    let mut known =
        conn.prepare("SELECT 1 FROM label_items WHERE project_id = ?1 AND name = ?2")?;
    let mut add = conn.prepare(
        "INSERT INTO label_items (project_id, position, name, status, data, reason, action_run_id)
         VALUES (?1, ?2, ?3, 'unlabeled', ?4, ?5, ?6)",
    )?;
    let mut added = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in items {
        if !seen.insert(item.key.as_str()) || known.exists(params![project.id, item.key])? {
            continue;
        }
        add.execute(params![
            project.id,
            next,
            item.key,
            serde_json::to_string(&item.fields)?,
            item.reason,
            action_run
        ])?;
        added.push(next);
        next += 1;
    }
    Ok(added)
}

/// Appends `items` to a row project (see [`insert`]).
///
/// # Errors
/// A project that does not label rows; the store cannot be written.
pub fn add(
    ws: &Workspace,
    project: &Project,
    items: &[RowItem],
    action_run: Option<i64>,
) -> Result<Vec<i64>> {
    if !project.task.rows() {
        return Err(invalid(format!(
            "{} labels {}, not table rows",
            project.name,
            project.task.asset_kind()
        )));
    }
    ws.write(|tx| insert(tx, project, items, action_run))
}

/// Item `position`'s row: its fields, and why it was sent.
///
/// # Errors
/// No such item.
pub fn row(ws: &Workspace, project: &Project, position: i64) -> Result<RowItem> {
    use rusqlite::OptionalExtension;
    let found: Option<(String, Option<String>, Option<String>)> = ws
        .conn()
        .query_row(
            "SELECT name, data, reason FROM label_items WHERE project_id = ?1 AND position = ?2",
            params![project.id, position],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (key, data, reason) = found.ok_or_else(|| super::no_item(&project.name, position))?;
    Ok(RowItem {
        key,
        fields: fields(data)?,
        reason,
    })
}

/// A row's fields: `(column, text or None)`.
pub type Fields = Vec<(String, Option<String>)>;

/// An item's stored fields (none for an item that is not a row).
fn fields(data: Option<String>) -> Result<Fields> {
    Ok(data
        .map(|d| serde_json::from_str(&d))
        .transpose()?
        .unwrap_or_default())
}

/// An accepted answer as ground truth: a class (the first, for multi-label items) or a
/// value's shortest decimal text.
fn actual(shapes: &[Shape]) -> Option<String> {
    shapes.iter().find_map(|s| match s {
        Shape::Class { label, .. } => Some(label.clone()),
        Shape::Value { value, .. } => Some(format!("{value}")),
        _ => None,
    })
}

/// Every accepted item's answer, `(key, actual)` in item order: what a model performance
/// signal joins with the predictions (columns `correlation_id`, `actual`).
///
/// # Errors
/// A project whose task gives no class or value (boxes, polygons, spans).
pub fn ground_truth(ws: &Workspace, project: &Project) -> Result<Vec<(String, String)>> {
    if !project.task.classifies() && project.task != Task::RowValue {
        return Err(invalid(format!(
            "{} is a {} project: ground truth is a class or a value for each item",
            project.name,
            project.task.as_str()
        )));
    }
    let accepted: std::collections::HashMap<i64, String> = project::items(
        ws,
        project,
        &project::Filter {
            status: Some(Status::Accepted),
            label: None,
        },
    )?
    .into_iter()
    .map(|i| (i.position, i.name))
    .collect();
    let mut out = Vec::new();
    project::for_each_latest(ws, project, |s| {
        if let (Some(key), Some(value)) = (accepted.get(&s.position), actual(&s.shapes)) {
            out.push((key.clone(), value));
        }
        Ok(())
    })?;
    Ok(out)
}

/// Writes [`ground_truth`] as CSV (`correlation_id,actual`); returns the answers written.
///
/// # Errors
/// As [`ground_truth`]; `out` cannot be written.
pub fn write_ground_truth(
    ws: &Workspace,
    project: &Project,
    out: &mut dyn std::io::Write,
) -> Result<usize> {
    let truth = ground_truth(ws, project)?;
    let failed = |e: csv::Error| invalid(format!("writing the ground truth: {e}"));
    let mut writer = csv::Writer::from_writer(out);
    writer
        .write_record(["correlation_id", "actual"])
        .map_err(failed)?;
    for (key, actual) in &truth {
        writer.write_record([key, actual]).map_err(failed)?;
    }
    writer.flush().map_err(|e| Error::io("<ground truth>", e))?;
    Ok(truth.len())
}

/// [`ground_truth`] as a table of `correlation_id` and `actual` (a class as text; a value as
/// Float64, so the signal scores it as regression).
///
/// # Errors
/// As [`ground_truth`].
pub fn ground_truth_frame(ws: &Workspace, project: &Project) -> Result<DataFrame> {
    let pairs = ground_truth(ws, project)?;
    let (ids, values): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
    let actual = if project.task == Task::RowValue {
        let numbers: Vec<Option<f64>> = values.iter().map(|v| v.parse().ok()).collect();
        Column::new("actual".into(), numbers)
    } else {
        Column::new("actual".into(), values)
    };
    DataFrame::new(
        ids.len(),
        vec![Column::new("correlation_id".into(), ids), actual],
    )
    .map_err(|e| invalid(format!("ground truth of {}: {e}", project.name)))
}

/// Writes a row project as CSV: `key`, the row's fields, `label` (the latest answer, empty
/// when none), `status`.
///
/// # Errors
/// The file cannot be written.
pub fn export_csv(ws: &Workspace, project: &Project, dest: &std::path::Path) -> Result<Exported> {
    crate::files::write_atomically(dest, |out| {
        let failed = |e: csv::Error| invalid(format!("writing {}: {e}", dest.display()));
        let items = project::items(ws, project, &project::Filter::default())?;
        let mut answers = std::collections::HashMap::new();
        project::for_each_latest(ws, project, |s| {
            answers.insert(s.position, s.shapes);
            Ok(())
        })?;
        // Every item's fields in one read, in item order as `items`.
        let rows: Vec<Fields> = ws
            .conn()
            .prepare("SELECT data FROM label_items WHERE project_id = ?1 ORDER BY position")?
            .query_map([project.id], |r| r.get::<_, Option<String>>(0))?
            .map(|data| fields(data?))
            .collect::<Result<_>>()?;
        let mut columns: Vec<&str> = Vec::new();
        for r in &rows {
            for (name, _) in r {
                if !columns.contains(&name.as_str()) {
                    columns.push(name);
                }
            }
        }
        let mut writer = csv::Writer::from_writer(out);
        let mut header = vec!["key"];
        header.extend(&columns);
        header.extend(["label", "status"]);
        writer.write_record(&header).map_err(failed)?;
        let mut done = Exported::default();
        for (item, r) in items.iter().zip(&rows) {
            let answer = answers.get(&item.position).and_then(|s| actual(s));
            let mut record = vec![item.name.clone()];
            for c in &columns {
                record.push(
                    r.iter()
                        .find(|(n, _)| n == c)
                        .and_then(|(_, v)| v.clone())
                        .unwrap_or_default(),
                );
            }
            done.items += 1;
            if answer.is_some() {
                done.labeled += 1;
                done.annotations += 1;
            }
            record.push(answer.unwrap_or_default());
            record.push(item.status.as_str().to_owned());
            writer.write_record(&record).map_err(failed)?;
        }
        writer
            .flush()
            .map_err(|e| Error::io(dest.display().to_string(), e))?;
        Ok(done)
    })
}
