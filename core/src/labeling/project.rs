//! Projects and their items: creating one over a data asset version, submitting shapes,
//! reviewing, filtering, and the dashboard's counts.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Extent, Label, Shape, Task, check_shapes, invalid};
use crate::Result;
use crate::assets::{AssetRef, AssetVersion};
use crate::workspace::Workspace;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub task: Task,
    /// The labeled data asset version, as `name:version`.
    pub asset: String,
    pub version_id: i64,
    pub labels: Vec<Label>,
    /// Annotators wanted per item.
    pub consensus: u32,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Unlabeled,
    Labeled,
    Accepted,
    Rejected,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Unlabeled,
        Status::Labeled,
        Status::Accepted,
        Status::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unlabeled => "unlabeled",
            Status::Labeled => "labeled",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Status {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .unwrap_or(Status::Unlabeled)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub position: i64,
    /// The image's path in the asset, or `item N` for text.
    pub name: String,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Submission {
    pub id: i64,
    pub position: i64,
    pub annotator: String,
    pub shapes: Vec<Shape>,
    /// `human`, `import:<file>`, or `model:<name>:<version>`.
    pub source: String,
    pub created_at: i64,
}

/// Which items to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub status: Option<Status>,
    /// Items whose latest submission has a shape with this label.
    pub label: Option<String>,
}

impl Filter {
    /// Items nobody has labeled yet: what pre-labeling works on.
    pub fn unlabeled() -> Filter {
        Filter {
            status: Some(Status::Unlabeled),
            label: None,
        }
    }
}

/// How many items are in each [`Status`] (in JSON, an object keyed by status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub accepted: i64,
    pub labeled: i64,
    pub rejected: i64,
    pub unlabeled: i64,
}

impl StatusCounts {
    pub fn get(&self, status: Status) -> i64 {
        match status {
            Status::Unlabeled => self.unlabeled,
            Status::Labeled => self.labeled,
            Status::Accepted => self.accepted,
            Status::Rejected => self.rejected,
        }
    }

    fn add(&mut self, status: Status, n: i64) {
        match status {
            Status::Unlabeled => self.unlabeled += n,
            Status::Labeled => self.labeled += n,
            Status::Accepted => self.accepted += n,
            Status::Rejected => self.rejected += n,
        }
    }

    pub fn total(&self) -> i64 {
        self.unlabeled + self.labeled + self.accepted + self.rejected
    }

    /// Items someone has labeled: waiting for review, accepted or rejected.
    pub fn done(&self) -> i64 {
        self.labeled + self.accepted + self.rejected
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub items: i64,
    pub by_status: StatusCounts,
    /// Shapes per label, over each item's latest submission.
    pub by_label: BTreeMap<String, i64>,
    /// Submissions per annotator.
    pub by_annotator: BTreeMap<String, i64>,
    /// How far annotators agree on the items several of them labeled.
    pub agreement: Option<super::agreement::Agreement>,
}

/// Creates a project over `asset` (latest version when none is named); its items are the
/// version's images, text items or table rows (see [`super::rows::create`]), in order.
pub fn create(
    ws: &mut Workspace,
    name: &str,
    task: Task,
    asset: &AssetRef,
    labels: Vec<Label>,
    consensus: u32,
) -> Result<Project> {
    if task.rows() {
        return super::rows::create(ws, name, task, asset, labels, None, false);
    }
    create_with(ws, name, task, asset, labels, consensus, |_, _| Ok(()))
}

/// Creates a project and, in the same transaction, lets `fill` add to it (an import's
/// submissions, a table's rows): all of it is stored, or none. Image and text items are made
/// here; a table's rows are `fill`'s to add.
pub fn create_with(
    ws: &mut Workspace,
    name: &str,
    task: Task,
    asset: &AssetRef,
    labels: Vec<Label>,
    consensus: u32,
    fill: impl FnOnce(&rusqlite::Connection, &Project) -> Result<()>,
) -> Result<Project> {
    if name.trim().is_empty() {
        return Err(invalid("a project needs a name"));
    }
    if labels.is_empty() {
        return Err(invalid("a project needs at least one label"));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = labels.iter().find(|l| !seen.insert(&l.name)) {
        return Err(invalid(format!("label '{}' is given twice", dup.name)));
    }
    let version = ws.resolve(asset)?;
    if version.kind != task.asset_kind() {
        return Err(invalid(format!(
            "{} labels {} assets, and {} is {}",
            task.as_str(),
            task.asset_kind(),
            version.reference(),
            version.kind
        )));
    }
    let names: Vec<String> = match version.kind {
        crate::assets::AssetKind::Images => ws
            .version_files(version.id)?
            .into_iter()
            .map(|f| f.path)
            .collect(),
        crate::assets::AssetKind::Table => Vec::new(),
        crate::assets::AssetKind::Text => (1..=version.item_count)
            .map(|i| format!("item {i}"))
            .collect(),
    };
    let labels_json = serde_json::to_string(&labels)?;
    let created_at = crate::db::now_millis();
    let consensus = consensus.max(1);
    ws.write(|tx| {
    let inserted = tx.execute(
        "INSERT INTO label_projects (name, task, version_id, labels, consensus, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            name,
            task.as_str(),
            version.id,
            labels_json,
            consensus,
            created_at
        ],
    );
    if let Err(rusqlite::Error::SqliteFailure(e, _)) = &inserted
        && e.code == rusqlite::ErrorCode::ConstraintViolation
    {
        return Err(super::project_exists(name));
    }
    inserted?;
    let project = Project {
        id: tx.last_insert_rowid(),
        name: name.to_owned(),
        task,
        asset: version.reference(),
        version_id: version.id,
        labels,
        consensus,
        created_at,
    };
    {
        let mut stmt = tx.prepare(
            "INSERT INTO label_items (project_id, position, name, status) VALUES (?1, ?2, ?3, 'unlabeled')",
        )?;
        for (i, item) in names.iter().enumerate() {
            stmt.execute(params![project.id, i as i64, item])?;
        }
    }
    fill(tx, &project)?;
    Ok(project)
    })
}

/// Replaces the project's label schema (colours, hotkeys, added labels). A label still used by
/// a submission cannot be dropped; names stay unique, hotkeys are 1–9 and unique, colours are
/// `#rrggbb`.
pub fn update_labels(ws: &Workspace, project: &Project, labels: &[Label]) -> Result<Project> {
    let mut names = std::collections::BTreeSet::new();
    let mut keys = std::collections::BTreeMap::new();
    for label in labels {
        if label.name.trim().is_empty() || !names.insert(label.name.clone()) {
            return Err(invalid(format!(
                "label '{}' is empty or given twice",
                label.name
            )));
        }
        if let Some(key) = label.hotkey {
            if !('1'..='9').contains(&key) {
                return Err(invalid(format!(
                    "label '{}': hotkey '{key}' is not a digit 1–9",
                    label.name
                )));
            }
            if let Some(other) = keys.insert(key, &label.name) {
                return Err(invalid(format!(
                    "labels '{other}' and '{}' both have hotkey '{key}'",
                    label.name
                )));
            }
        }
        let hex = label.color.strip_prefix('#').unwrap_or_default();
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "label '{}': colour '{}' is not #rrggbb",
                label.name, label.color
            )));
        }
    }
    let in_use = stats(ws, project)?.by_label;
    if let Some((dropped, n)) = in_use.iter().find(|(name, _)| !names.contains(*name)) {
        return Err(invalid(format!(
            "label '{dropped}' is on {n} shape(s) and cannot be dropped"
        )));
    }
    let labels = serde_json::to_string(labels)?;
    ws.write(|conn| {
        conn.execute(
            "UPDATE label_projects SET labels = ?1 WHERE id = ?2",
            params![labels, project.id],
        )?;
        Ok(())
    })?;
    open(ws, &project.name)
}

/// Creates a project pre-filled from the label file at `path` (item position → its shapes),
/// credited to `import` with the file as source; all of it is stored, or none.
pub fn create_imported(
    ws: &mut Workspace,
    name: &str,
    task: Task,
    asset: &AssetRef,
    labels: Vec<Label>,
    imported: &Imported,
    path: &std::path::Path,
) -> Result<Project> {
    let source = format!(
        "import:{}",
        path.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    );
    create_with(ws, name, task, asset, labels, 1, |tx, project| {
        for (position, shapes) in &imported.shapes {
            insert_submission(tx, project, *position as i64, "import", shapes, &source)?;
        }
        let mut stmt = tx.prepare(
            "UPDATE label_items SET source_id = ?3 WHERE project_id = ?1 AND position = ?2",
        )?;
        for (position, id) in &imported.item_ids {
            stmt.execute(params![project.id, *position as i64, id])?;
        }
        Ok(())
    })
}

/// What an import brings into a new project: shapes per item position, and the ids the
/// label file gave its items (kept for exports in the same format).
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub shapes: BTreeMap<usize, Vec<Shape>>,
    pub item_ids: BTreeMap<usize, i64>,
}

impl Imported {
    /// Shapes for items, with no item ids.
    pub fn shapes(shapes: BTreeMap<usize, Vec<Shape>>) -> Imported {
        Imported {
            shapes,
            item_ids: BTreeMap::new(),
        }
    }
}

/// The ids items had in the file they were imported from, by position, for exports.
pub fn item_ids(ws: &Workspace, project: &Project) -> Result<BTreeMap<i64, i64>> {
    let mut stmt = ws.conn().prepare(
        "SELECT position, source_id FROM label_items
         WHERE project_id = ?1 AND source_id IS NOT NULL",
    )?;
    let rows = stmt.query_map([project.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The largest integer `id` attribute on any shape the project ever stored: new shapes are
/// numbered after it on export, so an id read from a file is never given to another shape.
pub fn max_shape_id(ws: &Workspace, project: &Project) -> Result<i64> {
    Ok(ws
        .conn()
        .query_row(
            "SELECT MAX(CAST(json_extract(j.value, '$.attributes.id') AS INTEGER))
             FROM label_submissions s, json_each(s.shapes) j
             WHERE s.project_id = ?1 AND json_type(j.value, '$.attributes.id') = 'integer'",
            [project.id],
            |r| r.get::<_, Option<i64>>(0),
        )?
        .unwrap_or(0))
}

/// Stores a submission and marks its item labeled, unchecked: for callers that checked the
/// shapes already, inside their own transaction.
pub fn insert_submission(
    conn: &rusqlite::Connection,
    project: &Project,
    position: i64,
    annotator: &str,
    shapes: &[Shape],
    source: &str,
) -> Result<Submission> {
    let created_at = crate::db::now_millis();
    conn.execute(
        "INSERT INTO label_submissions (project_id, position, annotator, shapes, source, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![project.id, position, annotator, serde_json::to_string(shapes)?, source, created_at],
    )?;
    let id = conn.last_insert_rowid();
    // With consensus, an item waits in the queue until enough people have labeled it.
    let annotators: i64 = conn.query_row(
        "SELECT COUNT(DISTINCT annotator) FROM label_submissions WHERE project_id = ?1 AND position = ?2",
        params![project.id, position],
        |r| r.get(0),
    )?;
    if annotators >= i64::from(project.consensus) {
        conn.execute(
            "UPDATE label_items SET status = 'labeled' WHERE project_id = ?1 AND position = ?2",
            params![project.id, position],
        )?;
    }
    Ok(Submission {
        id,
        position,
        annotator: annotator.to_owned(),
        shapes: shapes.to_vec(),
        source: source.to_owned(),
        created_at,
    })
}

fn project_row(ws: &Workspace, clause: &str, key: &dyn rusqlite::ToSql) -> Result<Option<Project>> {
    let row = ws
        .conn()
        .query_row(
            &format!(
                "SELECT p.id, p.name, p.task, p.version_id, p.labels, p.consensus, p.created_at,
                        a.name, v.version
                 FROM label_projects p
                 JOIN asset_versions v ON v.id = p.version_id
                 JOIN assets a ON a.id = v.asset_id
                 WHERE {clause}"
            ),
            [key],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            },
        )
        .optional()?;
    row.map(
        |(id, name, task, version_id, labels, consensus, created_at, asset, version)| {
            Ok(Project {
                id,
                name,
                task: Task::parse(&task).map_err(invalid)?,
                asset: format!("{asset}:{version}"),
                version_id,
                labels: serde_json::from_str(&labels)?,
                consensus: consensus as u32,
                created_at,
            })
        },
    )
    .transpose()
}

pub fn open(ws: &Workspace, name: &str) -> Result<Project> {
    project_row(ws, "p.name = ?1", &name)?.ok_or_else(|| {
        let known = names(ws).unwrap_or_default();
        let hint = crate::suggest::did_you_mean(name, known.iter().map(String::as_str));
        crate::Error::Label(super::LabelError::NoProject {
            name: name.to_owned(),
            hint,
        })
    })
}

/// Every project's name, in order.
fn names(ws: &Workspace) -> Result<Vec<String>> {
    Ok(ws
        .conn()
        .prepare("SELECT name FROM label_projects ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

pub fn list(ws: &Workspace) -> Result<Vec<Project>> {
    names(ws)?.iter().map(|n| open(ws, n)).collect()
}

/// The items that pass `filter`, in order.
pub fn items(ws: &Workspace, project: &Project, filter: &Filter) -> Result<Vec<Item>> {
    let mut stmt = ws.conn().prepare(
        "SELECT i.position, i.name, i.status FROM label_items i
         WHERE i.project_id = ?1 AND (?2 IS NULL OR i.status = ?2)
           AND (?3 IS NULL OR EXISTS (
                SELECT 1 FROM label_submissions s, json_each(s.shapes) j
                WHERE s.id = (SELECT MAX(id) FROM label_submissions
                              WHERE project_id = i.project_id AND position = i.position)
                  AND json_extract(j.value, '$.label') = ?3))
         ORDER BY i.position",
    )?;
    let rows = stmt.query_map(
        params![project.id, filter.status.map(Status::as_str), filter.label],
        |r| {
            Ok(Item {
                position: r.get(0)?,
                name: r.get(1)?,
                status: Status::parse(&r.get::<_, String>(2)?),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn item(ws: &Workspace, project: &Project, position: i64) -> Result<Item> {
    ws.conn()
        .query_row(
            "SELECT position, name, status FROM label_items WHERE project_id = ?1 AND position = ?2",
            params![project.id, position],
            |r| {
                Ok(Item {
                    position: r.get(0)?,
                    name: r.get(1)?,
                    status: Status::parse(&r.get::<_, String>(2)?),
                })
            },
        )
        .optional()?
        .ok_or_else(|| super::no_item(&project.name, position))
}

/// What shapes on item `position` are checked against: its image size or text length.
pub fn extent(ws: &Workspace, project: &Project, position: i64) -> Result<Extent> {
    match project.task.asset_kind() {
        crate::assets::AssetKind::Images => {
            let files = ws.version_files(project.version_id)?;
            let file = files
                .get(position as usize)
                .ok_or_else(|| super::no_item(&project.name, position))?;
            Ok(Extent::of_image(file))
        }
        crate::assets::AssetKind::Table => {
            item(ws, project, position)?;
            Ok(Extent::Row)
        }
        crate::assets::AssetKind::Text => {
            let version: AssetVersion = ws.version_by_id(project.version_id)?;
            let texts = crate::text::items(ws, &version)?;
            let text = texts
                .get(position as usize)
                .ok_or_else(|| super::no_item(&project.name, position))?;
            Ok(Extent::Text {
                chars: text.chars().count(),
            })
        }
    }
}

/// Records `shapes` as `annotator`'s annotation of item `position`; the item becomes labeled
/// (back in the queue for review if it had been reviewed).
pub fn submit(
    ws: &Workspace,
    project: &Project,
    position: i64,
    annotator: &str,
    shapes: &[Shape],
    source: &str,
) -> Result<Submission> {
    let item = item(ws, project, position)?;
    check_shapes(
        project.task,
        &project.labels,
        extent(ws, project, position)?,
        shapes,
    )
    .map_err(|e| invalid(format!("{}: {e}", item.name)))?;
    ws.write(|tx| insert_submission(tx, project, position, annotator, shapes, source))
}

/// The item's latest submission, if it has one.
pub fn latest(ws: &Workspace, project: &Project, position: i64) -> Result<Option<Submission>> {
    let row = ws
        .conn()
        .query_row(
            "SELECT id, annotator, shapes, source, created_at FROM label_submissions
             WHERE project_id = ?1 AND position = ?2 ORDER BY id DESC LIMIT 1",
            params![project.id, position],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?;
    row.map(|(id, annotator, shapes, source, created_at)| {
        Ok(Submission {
            id,
            position,
            annotator,
            shapes: serde_json::from_str(&shapes)?,
            source,
            created_at,
        })
    })
    .transpose()
}

/// Every labeled item's latest submission, in item order.
pub fn latest_all(ws: &Workspace, project: &Project) -> Result<Vec<Submission>> {
    let mut all = Vec::new();
    for_each_latest(ws, project, |s| {
        all.push(s);
        Ok(())
    })?;
    Ok(all)
}

/// Hands every labeled item's latest submission to `each`, in item order, one row at a time
/// (an export of any size holds one in memory).
pub fn for_each_latest(
    ws: &Workspace,
    project: &Project,
    mut each: impl FnMut(Submission) -> Result<()>,
) -> Result<()> {
    let mut stmt = ws.conn().prepare(
        "SELECT s.id, s.position, s.annotator, s.shapes, s.source, s.created_at
         FROM label_submissions s
         WHERE s.project_id = ?1 AND s.id = (SELECT MAX(id) FROM label_submissions
                                             WHERE project_id = s.project_id AND position = s.position)
         ORDER BY s.position",
    )?;
    let mut rows = stmt.query([project.id])?;
    while let Some(r) = rows.next()? {
        each(Submission {
            id: r.get(0)?,
            position: r.get(1)?,
            annotator: r.get(2)?,
            shapes: serde_json::from_str(&r.get::<_, String>(3)?)?,
            source: r.get(4)?,
            created_at: r.get(5)?,
        })?;
    }
    Ok(())
}

/// A reviewer's verdict on item `position`: accepted, or rejected with a comment (the item
/// goes back to the queue).
pub fn review(
    ws: &Workspace,
    project: &Project,
    position: i64,
    reviewer: &str,
    accepted: bool,
    comment: &str,
) -> Result<()> {
    let item = item(ws, project, position)?;
    if item.status == Status::Unlabeled {
        return Err(invalid(format!("{}: nothing to review yet", item.name)));
    }
    if !accepted && comment.trim().is_empty() {
        return Err(invalid(format!("{}: say why it is rejected", item.name)));
    }
    ws.write(|tx| {
        tx.execute(
        "INSERT INTO label_reviews (project_id, position, reviewer, accepted, comment, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            project.id,
            position,
            reviewer,
            accepted,
            comment,
            crate::db::now_millis()
        ],
    )?;
        tx.execute(
            "UPDATE label_items SET status = ?3 WHERE project_id = ?1 AND position = ?2",
            params![
                project.id,
                position,
                if accepted { "accepted" } else { "rejected" }
            ],
        )?;
        Ok(())
    })
}

/// Each item's latest shapes by annotator, for agreement.
pub fn ratings(ws: &Workspace, project: &Project) -> Result<super::agreement::Ratings> {
    let mut stmt = ws.conn().prepare(
        "SELECT s.position, s.annotator, s.shapes FROM label_submissions s
         WHERE s.project_id = ?1 AND s.id = (
             SELECT MAX(id) FROM label_submissions
             WHERE project_id = s.project_id AND position = s.position AND annotator = s.annotator)",
    )?;
    let rows = stmt.query_map([project.id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out = super::agreement::Ratings::new();
    for row in rows {
        let (position, annotator, shapes) = row?;
        out.entry(position)
            .or_default()
            .insert(annotator, serde_json::from_str(&shapes)?);
    }
    Ok(out)
}

/// Progress, label distribution, per-annotator counts and agreement.
pub fn stats(ws: &Workspace, project: &Project) -> Result<Stats> {
    let conn = ws.conn();
    let mut by_status = StatusCounts::default();
    let mut stmt = conn.prepare(
        "SELECT status, COUNT(*) FROM label_items WHERE project_id = ?1 GROUP BY status",
    )?;
    for row in stmt.query_map([project.id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (status, n): (String, i64) = row?;
        by_status.add(Status::parse(&status), n);
    }
    let mut by_label = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT json_extract(j.value, '$.label'), COUNT(*)
         FROM label_submissions s, json_each(s.shapes) j
         WHERE s.project_id = ?1 AND s.id = (SELECT MAX(id) FROM label_submissions
                                             WHERE project_id = s.project_id AND position = s.position)
         GROUP BY 1",
    )?;
    for row in stmt.query_map([project.id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (label, n) = row?;
        by_label.insert(label, n);
    }
    let mut by_annotator = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT annotator, COUNT(*) FROM label_submissions WHERE project_id = ?1 GROUP BY annotator",
    )?;
    for row in stmt.query_map([project.id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (who, n) = row?;
        by_annotator.insert(who, n);
    }
    Ok(Stats {
        items: by_status.total(),
        by_status,
        by_label,
        by_annotator,
        agreement: super::agreement::measure(&ratings(ws, project)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labeling::{LabelError, labels_from_names};

    fn demo() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let mut ws = Workspace::open(dir.path()).unwrap();
        crate::demo::seed(&mut ws).unwrap();
        (dir, ws)
    }

    fn boxed(label: &str) -> Shape {
        Shape::Box {
            label: label.into(),
            x: 1.0,
            y: 1.0,
            w: 5.0,
            h: 5.0,
            confidence: None,
            attributes: Default::default(),
        }
    }

    #[test]
    fn a_box_project_takes_submissions_reviews_and_filters() {
        let (_dir, mut ws) = demo();
        let labels = labels_from_names(&["circle".into(), "square".into()]);
        let p = create(
            &mut ws,
            "boxes",
            Task::BoundingBoxes,
            &"shapes".parse().unwrap(),
            labels,
            1,
        )
        .unwrap();
        assert_eq!(p.asset, "shapes:1");
        let all = items(&ws, &p, &Filter::default()).unwrap();
        assert_eq!(all.len(), 24);
        // What is not there is told by kind, naming it.
        assert!(matches!(
            open(&ws, "boxs"),
            Err(crate::Error::Label(LabelError::NoProject { name, hint }))
                if name == "boxs" && hint.contains("boxes")
        ));
        assert!(matches!(
            item(&ws, &p, 24),
            Err(crate::Error::Label(LabelError::NoItem { position: 24, .. }))
        ));
        assert!(matches!(
            create(&mut ws, "boxes", Task::BoundingBoxes, &"shapes".parse().unwrap(), labels_from_names(&["a".into()]), 1),
            Err(crate::Error::Label(LabelError::ProjectExists { name })) if name == "boxes"
        ));
        submit(&ws, &p, 0, "ana", &[boxed("circle")], "human").unwrap();
        submit(
            &ws,
            &p,
            1,
            "ben",
            &[boxed("square"), boxed("square")],
            "human",
        )
        .unwrap();
        let e = submit(&ws, &p, 2, "ana", &[boxed("triangle")], "human").unwrap_err();
        assert!(e.to_string().contains("no such label"), "{e}");
        review(&ws, &p, 1, "rita", false, "the second box is a duplicate").unwrap();
        assert!(
            review(&ws, &p, 0, "rita", false, " ").is_err(),
            "a rejection needs a reason"
        );
        review(&ws, &p, 0, "rita", true, "").unwrap();
        let rejected = items(
            &ws,
            &p,
            &Filter {
                status: Some(Status::Rejected),
                label: None,
            },
        )
        .unwrap();
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].position, 1);
        let squares = items(
            &ws,
            &p,
            &Filter {
                status: None,
                label: Some("square".into()),
            },
        )
        .unwrap();
        assert_eq!(squares.iter().map(|i| i.position).collect::<Vec<_>>(), [1]);
        let s = stats(&ws, &p).unwrap();
        assert_eq!(
            (s.items, s.by_status.unlabeled, s.by_status.accepted),
            (24, 22, 1)
        );
        assert_eq!(s.by_label["square"], 2);
        assert_eq!(s.by_annotator["ana"], 1);
        // Fixed and resubmitted, it is back in the queue for review.
        submit(&ws, &p, 1, "ben", &[boxed("square")], "human").unwrap();
        assert_eq!(latest(&ws, &p, 1).unwrap().unwrap().shapes.len(), 1);
        assert!(
            create(
                &mut ws,
                "boxes",
                Task::Polygons,
                &"shapes".parse().unwrap(),
                labels_from_names(&["x".into()]),
                1
            )
            .is_err()
        );
        let e = create(
            &mut ws,
            "wrong",
            Task::EntitySpans,
            &"shapes".parse().unwrap(),
            labels_from_names(&["x".into()]),
            1,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("labels text assets, and shapes:1 is images"),
            "{e}"
        );
    }

    #[test]
    fn with_consensus_an_item_waits_for_enough_annotators_and_agreement_is_measured() {
        let (_dir, mut ws) = demo();
        let labels = labels_from_names(&["circle".into(), "square".into()]);
        let p = create(
            &mut ws,
            "two",
            Task::ImageClassification,
            &"shapes".parse().unwrap(),
            labels,
            2,
        )
        .unwrap();
        let class = |l: &str| {
            vec![Shape::Class {
                label: l.into(),
                confidence: None,
                attributes: Default::default(),
            }]
        };
        submit(&ws, &p, 0, "ana", &class("circle"), "human").unwrap();
        assert_eq!(
            items(&ws, &p, &Filter::default()).unwrap()[0].status,
            Status::Unlabeled
        );
        submit(&ws, &p, 0, "ben", &class("circle"), "human").unwrap();
        assert_eq!(
            items(&ws, &p, &Filter::default()).unwrap()[0].status,
            Status::Labeled
        );
        for (i, (a, b)) in [
            ("circle", "square"),
            ("square", "square"),
            ("square", "circle"),
        ]
        .iter()
        .enumerate()
        {
            submit(&ws, &p, i as i64 + 1, "ana", &class(a), "human").unwrap();
            submit(&ws, &p, i as i64 + 1, "ben", &class(b), "human").unwrap();
        }
        let agreement = stats(&ws, &p).unwrap().agreement.unwrap();
        assert_eq!(
            (agreement.measure.as_str(), agreement.items),
            ("cohen_kappa", 4)
        );
        // Agree on 2 of 4 with balanced marginals: kappa 0.
        assert!(agreement.value.abs() < 1e-12, "{agreement:?}");
    }

    #[test]
    fn a_schema_is_edited_but_keeps_the_labels_in_use() {
        let (_dir, mut ws) = demo();
        let p = create(
            &mut ws,
            "s",
            Task::BoundingBoxes,
            &"shapes".parse().unwrap(),
            labels_from_names(&["a".into(), "b".into()]),
            1,
        )
        .unwrap();
        submit(&ws, &p, 0, "ana", &[boxed("a")], "human").unwrap();
        let mut labels = p.labels.clone();
        labels[1].color = "#00ff00".into();
        labels.push(Label {
            hotkey: Some('3'),
            color: "#123456".into(),
            ..crate::labeling::next_label(&labels, "c")
        });
        let updated = update_labels(&ws, &p, &labels).unwrap();
        assert_eq!(updated.labels.len(), 3);
        let e = update_labels(&ws, &p, &labels[1..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "label 'a' is on 1 shape(s) and cannot be dropped"
        );
        labels[2].hotkey = Some('2');
        assert!(
            update_labels(&ws, &p, &labels)
                .unwrap_err()
                .to_string()
                .contains("hotkey '2'")
        );
    }

    #[test]
    fn spans_must_lie_within_their_text() {
        let (_dir, mut ws) = demo();
        let p = create(
            &mut ws,
            "ner",
            Task::EntitySpans,
            &"reviews".parse().unwrap(),
            labels_from_names(&["PRODUCT".into()]),
            1,
        )
        .unwrap();
        let Extent::Text { chars } = extent(&ws, &p, 0).unwrap() else {
            panic!("text")
        };
        let ok = Shape::Span {
            label: "PRODUCT".into(),
            start: 0,
            end: chars.min(4),
            confidence: None,
            attributes: Default::default(),
        };
        submit(&ws, &p, 0, "ana", &[ok], "human").unwrap();
        let past = Shape::Span {
            label: "PRODUCT".into(),
            start: 0,
            end: chars + 1,
            confidence: None,
            attributes: Default::default(),
        };
        let e = submit(&ws, &p, 0, "ana", &[past], "human").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("item 1: shape 1 (span 'PRODUCT')"),
            "{e}"
        );
    }
}
