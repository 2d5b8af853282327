//! Experiments: create, read, rename, delete and restore (which carries their runs along, as in
//! MLflow), tags, and search.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::query::{Fields, search_page};
use super::types::{Experiment, Tag};
use super::{TrackingError, TrackingResult};
use crate::db::now_millis;

const MAX_NAME_CHARS: usize = 500;
const MAX_TAG_KEY_CHARS: usize = 250;
const MAX_TAG_VALUE_CHARS: usize = 20_000;

/// Which lifecycle stages a search returns, as MLflow's `ViewType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    pub fn parse(text: Option<&str>) -> TrackingResult<Self> {
        match text.map(str::to_ascii_uppercase).as_deref() {
            None | Some("" | "ACTIVE_ONLY" | "1") => Ok(Self::ActiveOnly),
            Some("DELETED_ONLY" | "2") => Ok(Self::DeletedOnly),
            Some("ALL" | "3") => Ok(Self::All),
            Some(other) => Err(TrackingError::invalid(format!(
                "Invalid view type '{other}': use ACTIVE_ONLY, DELETED_ONLY or ALL"
            ))),
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            Self::ActiveOnly => "('active')",
            Self::DeletedOnly => "('deleted')",
            Self::All => "('active', 'deleted')",
        }
    }
}

pub fn parse_id(id: &str) -> TrackingResult<i64> {
    id.trim()
        .parse()
        .map_err(|_| TrackingError::missing(format!("No Experiment with id={id} exists")))
}

pub fn create(
    conn: &Connection,
    name: &str,
    artifact_location: Option<&str>,
    tags: &[Tag],
) -> TrackingResult<String> {
    check_name(name)?;
    let taken: Option<String> = conn
        .query_row(
            "SELECT lifecycle_stage FROM experiments WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(stage) = taken {
        let hint = if stage == "deleted" {
            " (it is deleted; restore it or choose another name)"
        } else {
            ""
        };
        return Err(TrackingError::exists(format!(
            "Experiment(name={name}) already exists{hint}"
        )));
    }
    let now = now_millis();
    let location = artifact_location.map(resolve_location).unwrap_or_default();
    let id: i64 = conn.query_row(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, 'active', ?3, ?3) RETURNING id",
        params![name, location, now],
        |r| r.get(0),
    )?;
    if artifact_location.is_none_or(str::is_empty) {
        conn.execute(
            "UPDATE experiments SET artifact_location = ?1 WHERE id = ?2",
            params![format!("mlflow-artifacts:/{id}"), id],
        )?;
    }
    for tag in tags {
        set_tag(conn, id, &tag.key, &tag.value)?;
    }
    Ok(id.to_string())
}

/// An artifact location as MLflow stores it (`resolve_uri_if_local`): a relative local path
/// is made absolute against the server's working folder (`file:` kept), anything with a
/// scheme or already absolute is kept as given.
pub fn resolve_location(location: &str) -> String {
    let (file, path) = match location.strip_prefix("file:") {
        Some(rest) if !rest.starts_with('/') => (true, rest),
        Some(_) => return location.to_owned(),
        None => (false, location),
    };
    let has_scheme = path.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() > 1
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if path.is_empty() || has_scheme || std::path::Path::new(path).is_absolute() {
        return location.to_owned();
    }
    let Ok(cwd) = std::env::current_dir() else {
        return location.to_owned();
    };
    // Lexically, as Python's abspath: "./x" is "<cwd>/x".
    let mut absolute = cwd;
    for part in std::path::Path::new(path).components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                absolute.pop();
            }
            other => absolute.push(other),
        }
    }
    let text = absolute.display().to_string();
    if file { format!("file://{text}") } else { text }
}

fn check_name(name: &str) -> TrackingResult<()> {
    if name.trim().is_empty() {
        return Err(TrackingError::invalid(
            "Invalid experiment name: the name must not be empty",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(TrackingError::invalid(format!(
            "Invalid experiment name: longer than {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

const COLUMNS: &str = "id, name, artifact_location, lifecycle_stage, created_at_ms, updated_at_ms";

fn from_row(row: &Row) -> rusqlite::Result<Experiment> {
    Ok(Experiment {
        experiment_id: row.get::<_, i64>(0)?.to_string(),
        name: row.get(1)?,
        artifact_location: row.get(2)?,
        lifecycle_stage: row.get(3)?,
        creation_time: row.get(4)?,
        last_update_time: row.get(5)?,
        tags: Vec::new(),
    })
}

fn with_tags(conn: &Connection, mut experiment: Experiment) -> TrackingResult<Experiment> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = ?1 ORDER BY key",
    )?;
    experiment.tags = stmt
        .query_map([&experiment.experiment_id], |r| {
            Ok(Tag {
                key: r.get(0)?,
                value: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(experiment)
}

pub fn get(conn: &Connection, id: &str) -> TrackingResult<Experiment> {
    let numeric = parse_id(id)?;
    let experiment = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM experiments WHERE id = ?1"),
            [numeric],
            from_row,
        )
        .optional()?
        .ok_or_else(|| TrackingError::missing(format!("No Experiment with id={id} exists")))?;
    with_tags(conn, experiment)
}

pub fn get_by_name(conn: &Connection, name: &str) -> TrackingResult<Experiment> {
    let experiment = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM experiments WHERE name = ?1"),
            [name],
            from_row,
        )
        .optional()?
        .ok_or_else(|| {
            TrackingError::missing(format!("Could not find experiment with name '{name}'"))
        })?;
    with_tags(conn, experiment)
}

/// Checks that an experiment exists and is active, as logging into it requires.
pub fn require_active(conn: &Connection, id: &str) -> TrackingResult<i64> {
    let experiment = get(conn, id)?;
    if experiment.lifecycle_stage != "active" {
        return Err(TrackingError::invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is {}.",
            experiment.lifecycle_stage
        )));
    }
    parse_id(id)
}

pub fn rename(conn: &Connection, id: &str, new_name: &str) -> TrackingResult<()> {
    check_name(new_name)?;
    let numeric = require_active(conn, id)?;
    let clash: Option<i64> = conn
        .query_row(
            "SELECT id FROM experiments WHERE name = ?1 AND id != ?2",
            params![new_name, numeric],
            |r| r.get(0),
        )
        .optional()?;
    if clash.is_some() {
        return Err(TrackingError::exists(format!(
            "Experiment(name={new_name}) already exists"
        )));
    }
    conn.execute(
        "UPDATE experiments SET name = ?1, updated_at_ms = ?2 WHERE id = ?3",
        params![new_name, now_millis(), numeric],
    )?;
    Ok(())
}

/// Deletes (`deleted = true`) or restores an experiment and, with it, its runs.
pub fn set_deleted(conn: &Connection, id: &str, deleted: bool) -> TrackingResult<()> {
    let numeric = parse_id(id)?;
    get(conn, id)?;
    let (stage, from) = if deleted {
        ("deleted", "active")
    } else {
        ("active", "deleted")
    };
    conn.execute(
        "UPDATE experiments SET lifecycle_stage = ?1, updated_at_ms = ?2 WHERE id = ?3",
        params![stage, now_millis(), numeric],
    )?;
    conn.execute(
        "UPDATE runs SET lifecycle_stage = ?1 WHERE experiment_id = ?2 AND lifecycle_stage = ?3",
        params![stage, numeric, from],
    )?;
    Ok(())
}

pub fn set_tag(conn: &Connection, id: i64, key: &str, value: &str) -> TrackingResult<()> {
    if key.is_empty() || key.chars().count() > MAX_TAG_KEY_CHARS {
        return Err(TrackingError::invalid(format!(
            "Invalid experiment tag key '{key}': it must have 1 to {MAX_TAG_KEY_CHARS} characters"
        )));
    }
    if value.chars().count() > MAX_TAG_VALUE_CHARS {
        return Err(TrackingError::invalid(format!(
            "Experiment tag '{key}' is longer than {MAX_TAG_VALUE_CHARS} characters"
        )));
    }
    conn.execute(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        params![id, key, value],
    )?;
    Ok(())
}

pub fn delete_tag(conn: &Connection, id: &str, key: &str) -> TrackingResult<()> {
    let numeric = require_active(conn, id)?;
    let removed = conn.execute(
        "DELETE FROM experiment_tags WHERE experiment_id = ?1 AND key = ?2",
        params![numeric, key],
    )?;
    if removed == 0 {
        return Err(TrackingError::missing(format!(
            "No tag with name: {key} in experiment with id {id}"
        )));
    }
    Ok(())
}

/// What an experiment search may filter and order by.
const FIELDS: Fields = Fields {
    what: "experiments",
    attributes: &[
        ("name", "name", false),
        ("experiment_id", "id", true),
        ("creation_time", "created_at_ms", true),
        ("last_update_time", "updated_at_ms", true),
    ],
    tag: "(SELECT value FROM experiment_tags t WHERE t.experiment_id = e.id AND t.key = {key})",
    prompt: None,
};

/// A page of experiments matching `filter`, and the token of the next page if there is one.
pub fn search(
    conn: &Connection,
    view: ViewType,
    filter_text: &str,
    order_by: &[String],
    max_results: usize,
    offset: usize,
) -> TrackingResult<(Vec<Experiment>, Option<String>)> {
    let mut args = Vec::new();
    let sql = format!(
        "SELECT {COLUMNS} FROM experiments e WHERE lifecycle_stage IN {} AND {}{}",
        view.sql(),
        FIELDS.conditions(filter_text, &mut args)?,
        FIELDS.order_and_page(
            order_by,
            &["created_at_ms DESC", "id ASC"],
            max_results,
            offset
        )?
    );
    search_page(
        conn,
        &sql,
        args,
        from_row,
        |e| with_tags(conn, e),
        max_results,
        offset,
    )
}
