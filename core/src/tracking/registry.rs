//! The model registry: registered models, their numbered versions (each pointing at the files of
//! a model by `source` URI and, when known, at the run that made it), tags, aliases, stages and
//! search.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::query::{Fields, page, search_page};
use super::types::{ModelAlias, ModelVersion, RegisteredModel, Tag};
use super::{TrackingError, TrackingResult};
use crate::db::now_millis;

const MAX_TAG_KEY_CHARS: usize = 250;
const MAX_TAG_VALUE_CHARS: usize = 100_000;
const MAX_ALIAS_CHARS: usize = 255;
const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];

fn model_id(conn: &Connection, name: &str) -> TrackingResult<i64> {
    conn.prepare_cached("SELECT id FROM registered_models WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| {
            TrackingError::missing(format!("Registered Model with name={name} not found"))
        })
}

fn check_name(name: &str) -> TrackingResult<()> {
    if name.trim().is_empty() {
        return Err(TrackingError::invalid(
            "Registered model name cannot be empty",
        ));
    }
    if name.contains('/') || name.contains(':') {
        return Err(TrackingError::invalid(format!(
            "Invalid registered model name '{name}': it must not contain '/' or ':'"
        )));
    }
    Ok(())
}

fn check_tag(key: &str, value: &str) -> TrackingResult<()> {
    if key.is_empty() || key.chars().count() > MAX_TAG_KEY_CHARS {
        return Err(TrackingError::invalid(format!(
            "Invalid tag key '{key}': it must have 1 to {MAX_TAG_KEY_CHARS} characters"
        )));
    }
    if value.chars().count() > MAX_TAG_VALUE_CHARS {
        return Err(TrackingError::invalid(format!(
            "Tag '{key}' is longer than {MAX_TAG_VALUE_CHARS} characters"
        )));
    }
    Ok(())
}

pub fn create_model(
    conn: &Connection,
    name: &str,
    description: &str,
    tags: &[Tag],
) -> TrackingResult<RegisteredModel> {
    check_name(name)?;
    if model_id(conn, name).is_ok() {
        return Err(TrackingError::exists(format!(
            "Registered Model (name={name}) already exists."
        )));
    }
    let now = now_millis();
    let id: i64 = conn.query_row(
        "INSERT INTO registered_models (name, description, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?3) RETURNING id",
        params![name, description, now],
        |r| r.get(0),
    )?;
    for tag in tags {
        check_tag(&tag.key, &tag.value)?;
        set_model_tag_row(conn, id, &tag.key, &tag.value)?;
    }
    get_model(conn, name)
}

fn set_model_tag_row(conn: &Connection, id: i64, key: &str, value: &str) -> TrackingResult<()> {
    conn.execute(
        "INSERT INTO registered_model_tags (model_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
        params![id, key, value],
    )?;
    Ok(())
}

fn pairs(conn: &Connection, sql: &str, id: i64) -> TrackingResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get_model(conn: &Connection, name: &str) -> TrackingResult<RegisteredModel> {
    let id = model_id(conn, name)?;
    let (name, description, created, updated): (String, String, i64, i64) = conn.query_row(
        "SELECT name, description, created_at_ms, updated_at_ms FROM registered_models WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let tags = pairs(
        conn,
        "SELECT key, value FROM registered_model_tags WHERE model_id = ?1 ORDER BY key",
        id,
    )?
    .into_iter()
    .map(|(key, value)| Tag { key, value })
    .collect();
    let aliases = pairs(
        conn,
        "SELECT alias, CAST(version AS TEXT) FROM model_aliases WHERE model_id = ?1 ORDER BY alias",
        id,
    )?
    .into_iter()
    .map(|(alias, version)| ModelAlias { alias, version })
    .collect();
    Ok(RegisteredModel {
        latest_versions: latest_versions(conn, &name, &[])?,
        name,
        creation_timestamp: created,
        last_updated_timestamp: updated,
        description,
        tags,
        aliases,
    })
}

pub fn rename_model(
    conn: &Connection,
    name: &str,
    new_name: &str,
) -> TrackingResult<RegisteredModel> {
    check_name(new_name)?;
    let id = model_id(conn, name)?;
    if name != new_name && model_id(conn, new_name).is_ok() {
        return Err(TrackingError::exists(format!(
            "Registered Model (name={new_name}) already exists."
        )));
    }
    conn.execute(
        "UPDATE registered_models SET name = ?1, updated_at_ms = ?2 WHERE id = ?3",
        params![new_name, now_millis(), id],
    )?;
    get_model(conn, new_name)
}

pub fn update_model(
    conn: &Connection,
    name: &str,
    description: &str,
) -> TrackingResult<RegisteredModel> {
    let id = model_id(conn, name)?;
    conn.execute(
        "UPDATE registered_models SET description = ?1, updated_at_ms = ?2 WHERE id = ?3",
        params![description, now_millis(), id],
    )?;
    get_model(conn, name)
}

pub fn delete_model(conn: &Connection, name: &str) -> TrackingResult<()> {
    let id = model_id(conn, name)?;
    conn.execute("DELETE FROM registered_models WHERE id = ?1", [id])?;
    Ok(())
}

pub fn set_model_tag(conn: &Connection, name: &str, key: &str, value: &str) -> TrackingResult<()> {
    check_tag(key, value)?;
    let id = model_id(conn, name)?;
    set_model_tag_row(conn, id, key, value)
}

pub fn delete_model_tag(conn: &Connection, name: &str, key: &str) -> TrackingResult<()> {
    let id = model_id(conn, name)?;
    conn.execute(
        "DELETE FROM registered_model_tags WHERE model_id = ?1 AND key = ?2",
        params![id, key],
    )?;
    Ok(())
}

const MODEL_FIELDS: Fields = Fields {
    what: "registered models",
    attributes: &[
        ("name", "m.name", false),
        ("creation_timestamp", "m.created_at_ms", true),
        ("last_updated_timestamp", "m.updated_at_ms", true),
        ("timestamp", "m.updated_at_ms", true),
    ],
    tag: "(SELECT value FROM registered_model_tags t WHERE t.model_id = m.id AND t.key = {key})",
    prompt: Some(PROMPT),
};

/// Whether the registered model `m` is an MLflow prompt.
const PROMPT: &str = "EXISTS (SELECT 1 FROM registered_model_tags p WHERE p.model_id = m.id \
     AND p.key = 'mlflow.prompt.is_prompt' AND lower(p.value) = 'true')";

/// Registered models whose name or tags match `filter_text`, one page.
pub fn search_models(
    conn: &Connection,
    filter_text: &str,
    order_by: &[String],
    max_results: usize,
    offset: usize,
) -> TrackingResult<(Vec<RegisteredModel>, Option<String>)> {
    let mut args = Vec::new();
    let sql = format!(
        "SELECT m.name FROM registered_models m WHERE {}{}",
        MODEL_FIELDS.conditions(filter_text, &mut args)?,
        MODEL_FIELDS.order_and_page(order_by, &["m.name ASC"], max_results, offset)?
    );
    search_page(
        conn,
        &sql,
        args,
        |r| r.get::<_, String>(0),
        Ok,
        max_results,
        offset,
    )
    .and_then(|(names, next)| {
        let models = names
            .iter()
            .map(|n| get_model(conn, n))
            .collect::<TrackingResult<_>>()?;
        Ok((models, next))
    })
}

pub struct NewVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: String,
    pub description: String,
    pub user_id: String,
    pub tags: Vec<Tag>,
    pub signature: Option<serde_json::Value>,
    pub model_id: Option<String>,
}

pub fn create_version(conn: &Connection, new: NewVersion) -> TrackingResult<ModelVersion> {
    let id = model_id(conn, &new.name)?;
    if new.source.trim().is_empty() {
        return Err(TrackingError::invalid("A model version needs a source"));
    }
    let version: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let now = now_millis();
    let version_id: i64 = conn.query_row(
        "INSERT INTO model_versions (model_id, version, description, source, run_uuid, run_link,
             user_id, status, current_stage, signature, created_at_ms, updated_at_ms, logged_model_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'READY', 'None', ?8, ?9, ?9, ?10) RETURNING id",
        params![
            id,
            version,
            new.description,
            new.source,
            new.run_id.filter(|r| !r.is_empty()),
            new.run_link,
            new.user_id,
            new.signature.map(|s| s.to_string()),
            now,
            new.model_id.filter(|m| !m.is_empty())
        ],
        |r| r.get(0),
    )?;
    for tag in &new.tags {
        check_tag(&tag.key, &tag.value)?;
        set_version_tag_row(conn, version_id, &tag.key, &tag.value)?;
    }
    conn.execute(
        "UPDATE registered_models SET updated_at_ms = ?1 WHERE id = ?2",
        params![now, id],
    )?;
    get_version(conn, &new.name, &version.to_string())
}

fn version_row_id(conn: &Connection, name: &str, version: &str) -> TrackingResult<i64> {
    let model = model_id(conn, name)?;
    let missing = || {
        TrackingError::missing(format!(
            "Model Version (name={name}, version={version}) not found"
        ))
    };
    let number: i64 = version.trim().parse().map_err(|_| missing())?;
    conn.prepare_cached("SELECT id FROM model_versions WHERE model_id = ?1 AND version = ?2")?
        .query_row(params![model, number], |r| r.get(0))
        .optional()?
        .ok_or_else(missing)
}

const VERSION_COLUMNS: &str = "m.name, v.version, v.created_at_ms, v.updated_at_ms, v.user_id, \
     v.current_stage, v.description, v.source, v.run_uuid, v.status, v.run_link, v.signature, v.id, v.model_id, v.logged_model_id";

fn version_from_row(row: &Row) -> rusqlite::Result<(i64, i64, ModelVersion)> {
    let signature: Option<String> = row.get(11)?;
    Ok((
        row.get(12)?,
        row.get(13)?,
        ModelVersion {
            name: row.get(0)?,
            version: row.get::<_, i64>(1)?.to_string(),
            creation_timestamp: row.get(2)?,
            last_updated_timestamp: row.get(3)?,
            user_id: row.get(4)?,
            current_stage: row.get(5)?,
            description: row.get(6)?,
            source: row.get(7)?,
            run_id: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
            status: row.get(9)?,
            run_link: row.get(10)?,
            tags: Vec::new(),
            aliases: Vec::new(),
            signature: signature.and_then(|s| serde_json::from_str(&s).ok()),
            model_id: row.get(14)?,
        },
    ))
}

fn complete(
    conn: &Connection,
    (id, model, mut version): (i64, i64, ModelVersion),
) -> TrackingResult<ModelVersion> {
    version.tags = pairs(
        conn,
        "SELECT key, value FROM model_version_tags WHERE version_id = ?1 ORDER BY key",
        id,
    )?
    .into_iter()
    .map(|(key, value)| Tag { key, value })
    .collect();
    let mut stmt = conn.prepare_cached(
        "SELECT alias FROM model_aliases WHERE model_id = ?1 AND version = ?2 ORDER BY alias",
    )?;
    version.aliases = stmt
        .query_map(
            params![model, version.version.parse::<i64>().unwrap_or(0)],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(version)
}

fn versions_where(
    conn: &Connection,
    condition: &str,
    args: &[rusqlite::types::Value],
) -> TrackingResult<Vec<ModelVersion>> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM model_versions v JOIN registered_models m ON m.id = v.model_id
         WHERE {condition}"
    );
    let rows: Vec<_> = conn
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(args), version_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter().map(|row| complete(conn, row)).collect()
}

pub fn get_version(conn: &Connection, name: &str, version: &str) -> TrackingResult<ModelVersion> {
    let id = version_row_id(conn, name, version)?;
    versions_where(conn, "v.id = ?1", &[id.into()])?
        .pop()
        .ok_or_else(|| {
            TrackingError::missing(format!(
                "Model Version (name={name}, version={version}) not found"
            ))
        })
}

/// The newest version of a model in each of `stages` (all stages when empty).
pub fn latest_versions(
    conn: &Connection,
    name: &str,
    stages: &[String],
) -> TrackingResult<Vec<ModelVersion>> {
    let id = model_id(conn, name)?;
    let mut found = versions_where(
        conn,
        "v.model_id = ?1 AND v.version = (SELECT MAX(w.version) FROM model_versions w
             WHERE w.model_id = v.model_id AND w.current_stage = v.current_stage)
         ORDER BY v.version",
        &[id.into()],
    )?;
    if !stages.is_empty() {
        found.retain(|v| {
            stages
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&v.current_stage))
        });
    }
    Ok(found)
}

pub fn update_version(
    conn: &Connection,
    name: &str,
    version: &str,
    description: &str,
) -> TrackingResult<ModelVersion> {
    let id = version_row_id(conn, name, version)?;
    conn.execute(
        "UPDATE model_versions SET description = ?1, updated_at_ms = ?2 WHERE id = ?3",
        params![description, now_millis(), id],
    )?;
    get_version(conn, name, version)
}

pub fn transition_stage(
    conn: &Connection,
    name: &str,
    version: &str,
    stage: &str,
    archive_existing: bool,
) -> TrackingResult<ModelVersion> {
    let Some(stage) = STAGES.iter().find(|s| s.eq_ignore_ascii_case(stage)) else {
        return Err(TrackingError::invalid(format!(
            "Invalid Model Version stage: {stage}. Value must be one of {}",
            STAGES.join(", ")
        )));
    };
    let id = version_row_id(conn, name, version)?;
    let now = now_millis();
    if archive_existing && (*stage == "Staging" || *stage == "Production") {
        conn.execute(
            "UPDATE model_versions SET current_stage = 'Archived', updated_at_ms = ?1
             WHERE model_id = (SELECT model_id FROM model_versions WHERE id = ?2)
               AND id != ?2 AND current_stage = ?3",
            params![now, id, stage],
        )?;
    }
    conn.execute(
        "UPDATE model_versions SET current_stage = ?1, updated_at_ms = ?2 WHERE id = ?3",
        params![stage, now, id],
    )?;
    get_version(conn, name, version)
}

pub fn delete_version(conn: &Connection, name: &str, version: &str) -> TrackingResult<()> {
    let id = version_row_id(conn, name, version)?;
    conn.execute(
        "DELETE FROM model_aliases WHERE model_id = (SELECT model_id FROM model_versions WHERE id = ?1)
           AND version = (SELECT version FROM model_versions WHERE id = ?1)",
        [id],
    )?;
    conn.execute("DELETE FROM model_versions WHERE id = ?1", [id])?;
    Ok(())
}

fn set_version_tag_row(conn: &Connection, id: i64, key: &str, value: &str) -> TrackingResult<()> {
    conn.execute(
        "INSERT INTO model_version_tags (version_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value",
        params![id, key, value],
    )?;
    Ok(())
}

pub fn set_version_tag(
    conn: &Connection,
    name: &str,
    version: &str,
    key: &str,
    value: &str,
) -> TrackingResult<()> {
    check_tag(key, value)?;
    let id = version_row_id(conn, name, version)?;
    set_version_tag_row(conn, id, key, value)
}

pub fn delete_version_tag(
    conn: &Connection,
    name: &str,
    version: &str,
    key: &str,
) -> TrackingResult<()> {
    let id = version_row_id(conn, name, version)?;
    conn.execute(
        "DELETE FROM model_version_tags WHERE version_id = ?1 AND key = ?2",
        params![id, key],
    )?;
    Ok(())
}

pub fn set_alias(conn: &Connection, name: &str, alias: &str, version: &str) -> TrackingResult<()> {
    if alias.is_empty() || alias.chars().count() > MAX_ALIAS_CHARS {
        return Err(TrackingError::invalid(format!(
            "Invalid alias '{alias}': it must have 1 to {MAX_ALIAS_CHARS} characters"
        )));
    }
    let reserved = alias.eq_ignore_ascii_case("latest")
        || (alias.len() > 1
            && alias[..1].eq_ignore_ascii_case("v")
            && alias[1..].parse::<u64>().is_ok());
    if reserved {
        return Err(TrackingError::invalid(format!(
            "Invalid alias '{alias}': 'latest' and v<number> are reserved"
        )));
    }
    let model = model_id(conn, name)?;
    version_row_id(conn, name, version)?;
    conn.execute(
        "INSERT INTO model_aliases (model_id, alias, version) VALUES (?1, ?2, ?3)
         ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version",
        params![model, alias, version.trim().parse::<i64>().unwrap_or(0)],
    )?;
    Ok(())
}

pub fn delete_alias(conn: &Connection, name: &str, alias: &str) -> TrackingResult<()> {
    let model = model_id(conn, name)?;
    conn.execute(
        "DELETE FROM model_aliases WHERE model_id = ?1 AND alias = ?2",
        params![model, alias],
    )?;
    Ok(())
}

pub fn version_by_alias(
    conn: &Connection,
    name: &str,
    alias: &str,
) -> TrackingResult<ModelVersion> {
    let model = model_id(conn, name)?;
    let version: i64 = conn
        .query_row(
            "SELECT version FROM model_aliases WHERE model_id = ?1 AND alias = ?2",
            params![model, alias],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| {
            TrackingError::missing(format!("Registered model alias {alias} not found."))
        })?;
    get_version(conn, name, &version.to_string())
}

const VERSION_FIELDS: Fields = Fields {
    what: "model versions",
    attributes: &[
        ("name", "m.name", false),
        ("run_id", "v.run_uuid", false),
        ("source_path", "v.source", false),
        ("source", "v.source", false),
        ("version_number", "v.version", true),
        ("creation_timestamp", "v.created_at_ms", true),
        ("last_updated_timestamp", "v.updated_at_ms", true),
        ("timestamp", "v.updated_at_ms", true),
    ],
    tag: "(SELECT value FROM model_version_tags t WHERE t.version_id = v.id AND t.key = {key})",
    prompt: Some(PROMPT),
};

/// The order Lathe's own views list a model's versions in: newest version first.
pub fn newest_first() -> [String; 1] {
    ["version_number DESC".to_owned()]
}

/// Model versions matching `filter_text` (`name`, `run_id`, `source_path`, `tags.<key>`).
pub fn search_versions(
    conn: &Connection,
    filter_text: &str,
    order_by: &[String],
    max_results: usize,
    offset: usize,
) -> TrackingResult<(Vec<ModelVersion>, Option<String>)> {
    let mut args = Vec::new();
    let condition = format!(
        "{}{}",
        VERSION_FIELDS.conditions(filter_text, &mut args)?,
        // With no order given, MLflow's: the newest change first.
        VERSION_FIELDS.order_and_page(
            order_by,
            if order_by.is_empty() {
                &["v.updated_at_ms DESC", "m.name ASC", "v.version DESC"]
            } else {
                &["m.name ASC", "v.version DESC"]
            },
            max_results,
            offset
        )?
    );
    let found = versions_where(conn, &condition, &args)?;
    Ok(page(found, max_results, offset))
}
