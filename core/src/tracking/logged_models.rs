//! MLflow 3's logged models: what `mlflow.<flavor>.log_model` creates — a model with its own
//! id (`m-…`), artifacts under `<experiment>/models/<id>/artifacts`, params, tags and a status
//! that turns READY once its files are uploaded — and a run's model outputs.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::query::{Fields, search_page};
use super::types::{Metric, ModelInput, ModelOutput, Tag};
use super::{TrackingError, TrackingResult, experiments, runs};
use crate::db::now_millis;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub artifact_uri: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoggedModelData {
    pub params: Vec<Tag>,
    pub metrics: Vec<super::types::Metric>,
}

const STATUSES: [&str; 3] = [
    "LOGGED_MODEL_PENDING",
    "LOGGED_MODEL_READY",
    "LOGGED_MODEL_UPLOAD_FAILED",
];

/// A status as clients send it: its name, or its number in MLflow's enum.
pub fn parse_status(text: &str) -> TrackingResult<&'static str> {
    match text {
        "1" => Ok(STATUSES[0]),
        "2" => Ok(STATUSES[1]),
        "3" => Ok(STATUSES[2]),
        name => STATUSES
            .iter()
            .find(|s| **s == name)
            .copied()
            .ok_or_else(|| {
                TrackingError::invalid(format!(
                    "Invalid logged model status '{name}': use one of {}",
                    STATUSES.join(", ")
                ))
            }),
    }
}

pub struct NewLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<Tag>,
    pub tags: Vec<Tag>,
}

pub fn create(conn: &Connection, new: NewLoggedModel) -> TrackingResult<LoggedModel> {
    let experiment = experiments::require_active(conn, &new.experiment_id)?;
    let location = experiments::get(conn, &new.experiment_id)?.artifact_location;
    // The source run is not looked up, as in MLflow: a model may come from a run logged
    // elsewhere.
    let id = format!("m-{}", uuid::Uuid::new_v4().simple());
    let name = new
        .name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.clone());
    let now = now_millis();
    conn.execute(
        "INSERT INTO logged_models (id, experiment_id, name, model_type, source_run_uuid, status,
             artifact_uri, lifecycle_stage, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, 'LOGGED_MODEL_PENDING', ?6, 'active', ?7, ?7)",
        params![
            id,
            experiment,
            name,
            new.model_type,
            new.source_run_id.filter(|r| !r.is_empty()),
            format!("{}/models/{id}/artifacts", location.trim_end_matches('/')),
            now
        ],
    )?;
    set_tags(conn, &id, &new.tags)?;
    log_params(conn, &id, &new.params)?;
    get(conn, &id)
}

fn exists(conn: &Connection, id: &str) -> TrackingResult<()> {
    let found: Option<String> = conn
        .query_row(
            "SELECT lifecycle_stage FROM logged_models WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    match found.as_deref() {
        Some("active") => Ok(()),
        _ => Err(TrackingError::missing(format!(
            "Logged model with ID '{id}' not found."
        ))),
    }
}

pub fn set_tags(conn: &Connection, id: &str, tags: &[Tag]) -> TrackingResult<()> {
    upsert(conn, "logged_model_tags", "tag", id, tags)?;
    touch(conn, id)
}

pub fn delete_tag(conn: &Connection, id: &str, key: &str) -> TrackingResult<()> {
    exists(conn, id)?;
    let removed = conn.execute(
        "DELETE FROM logged_model_tags WHERE model_id = ?1 AND key = ?2",
        params![id, key],
    )?;
    if removed == 0 {
        return Err(TrackingError::missing(format!(
            "No tag with key '{key}' found for model with ID '{id}'."
        )));
    }
    touch(conn, id)
}

/// Keeps on the logged model `id` the tag `mlflow.modelVersions`, the registered versions made
/// from it, as MLflow writes it (`[{"name": "m", "version": 1}]`, Python's JSON spacing).
pub fn tag_model_version(
    conn: &Connection,
    id: &str,
    name: &str,
    version: i64,
) -> TrackingResult<()> {
    const KEY: &str = "mlflow.modelVersions";
    let current: Option<String> = conn
        .query_row(
            "SELECT value FROM logged_model_tags WHERE model_id = ?1 AND key = ?2",
            params![id, KEY],
            |r| r.get(0),
        )
        .optional()?;
    let mut versions: Vec<(String, i64)> = current
        .and_then(|text| serde_json::from_str::<Vec<serde_json::Value>>(&text).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| Some((v["name"].as_str()?.to_owned(), v["version"].as_i64()?)))
        .collect();
    if versions.iter().any(|(n, v)| n == name && *v == version) {
        return Ok(());
    }
    versions.push((name.to_owned(), version));
    let text = format!(
        "[{}]",
        versions
            .iter()
            .map(|(n, v)| format!(
                "{{\"name\": {}, \"version\": {v}}}",
                serde_json::Value::from(n.as_str())
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    set_tags(
        conn,
        id,
        &[Tag {
            key: KEY.to_owned(),
            value: text,
        }],
    )
}

/// Keeps the metrics of a batch that name a logged model on that model too, every point with
/// its run and dataset (MLflow's `_log_model_metrics`; the model is not looked up).
pub fn log_model_metrics(
    conn: &Connection,
    run_id: &str,
    metrics: &[Metric],
) -> TrackingResult<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO logged_model_metrics (model_id, run_uuid, key, value, is_nan, timestamp_ms,
             step, dataset_name, dataset_digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for metric in metrics {
        let Some(model_id) = metric.model_id.as_deref().filter(|m| !m.is_empty()) else {
            continue;
        };
        if metric.dataset_name.is_some() != metric.dataset_digest.is_some() {
            return Err(TrackingError::invalid(
                "Both dataset_name and dataset_digest must be provided if one is provided",
            ));
        }
        let nan = metric.value.is_nan();
        insert.execute(params![
            model_id,
            run_id,
            metric.key,
            (!nan).then_some(metric.value),
            nan,
            metric.timestamp,
            metric.step,
            metric.dataset_name,
            metric.dataset_digest
        ])?;
    }
    Ok(())
}

/// Records logged models a run took as inputs (not looked up, as in MLflow).
pub fn log_model_inputs(
    conn: &Connection,
    run_id: &str,
    inputs: &[ModelInput],
) -> TrackingResult<()> {
    let run = runs::find_active(conn, run_id)?;
    for input in inputs {
        conn.execute(
            "INSERT OR IGNORE INTO run_model_inputs (run_id, model_id) VALUES (?1, ?2)",
            params![run.id, input.model_id],
        )?;
    }
    Ok(())
}

/// The logged models a run took as inputs.
pub fn model_inputs(conn: &Connection, run_row: i64) -> TrackingResult<Vec<ModelInput>> {
    let mut stmt = conn.prepare_cached(
        "SELECT model_id FROM run_model_inputs WHERE run_id = ?1 ORDER BY model_id",
    )?;
    let rows = stmt.query_map([run_row], |r| {
        Ok(ModelInput {
            model_id: r.get(0)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn log_params(conn: &Connection, id: &str, params: &[Tag]) -> TrackingResult<()> {
    upsert(conn, "logged_model_params", "param", id, params)
}

/// Sets key/value pairs of a logged model in `table` (its tags or its params).
fn upsert(
    conn: &Connection,
    table: &str,
    kind: &str,
    id: &str,
    pairs: &[Tag],
) -> TrackingResult<()> {
    exists(conn, id)?;
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO {table} (model_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value"
    ))?;
    for pair in pairs {
        runs::check_key(kind, &pair.key)?;
        stmt.execute(params![id, pair.key, pair.value])?;
    }
    Ok(())
}

pub fn finalize(conn: &Connection, id: &str, status: &str) -> TrackingResult<LoggedModel> {
    exists(conn, id)?;
    conn.execute(
        "UPDATE logged_models SET status = ?1, updated_at_ms = ?2 WHERE id = ?3",
        params![parse_status(status)?, now_millis(), id],
    )?;
    get(conn, id)
}

pub fn delete(conn: &Connection, id: &str) -> TrackingResult<()> {
    exists(conn, id)?;
    conn.execute(
        "UPDATE logged_models SET lifecycle_stage = 'deleted', updated_at_ms = ?1 WHERE id = ?2",
        params![now_millis(), id],
    )?;
    Ok(())
}

fn touch(conn: &Connection, id: &str) -> TrackingResult<()> {
    conn.execute(
        "UPDATE logged_models SET updated_at_ms = ?1 WHERE id = ?2",
        params![now_millis(), id],
    )?;
    Ok(())
}

const COLUMNS: &str = "l.id, l.experiment_id, l.name, l.created_at_ms, l.updated_at_ms, \
     l.artifact_uri, l.status, l.model_type, l.source_run_uuid, l.status_message";

fn from_row(row: &Row) -> rusqlite::Result<LoggedModel> {
    Ok(LoggedModel {
        info: LoggedModelInfo {
            model_id: row.get(0)?,
            experiment_id: row.get::<_, i64>(1)?.to_string(),
            name: row.get(2)?,
            creation_timestamp_ms: row.get(3)?,
            last_updated_timestamp_ms: row.get(4)?,
            artifact_uri: row.get(5)?,
            status: row.get(6)?,
            model_type: row.get(7)?,
            source_run_id: row.get(8)?,
            status_message: row.get(9)?,
            tags: Vec::new(),
        },
        data: LoggedModelData::default(),
    })
}

fn complete(conn: &Connection, mut model: LoggedModel) -> TrackingResult<LoggedModel> {
    let pairs = |sql: &str| -> TrackingResult<Vec<Tag>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([&model.info.model_id], |r| {
            Ok(Tag {
                key: r.get(0)?,
                value: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let tags = pairs("SELECT key, value FROM logged_model_tags WHERE model_id = ?1 ORDER BY key")?;
    let params =
        pairs("SELECT key, value FROM logged_model_params WHERE model_id = ?1 ORDER BY key")?;
    model.info.tags = tags;
    model.data.params = params;
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, is_nan, timestamp_ms, step, dataset_name, dataset_digest, run_uuid
         FROM logged_model_metrics WHERE model_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([&model.info.model_id], |r| {
        Ok(Metric {
            key: r.get(0)?,
            value: if r.get(2)? {
                f64::NAN
            } else {
                r.get::<_, Option<f64>>(1)?.unwrap_or(f64::NAN)
            },
            timestamp: r.get(3)?,
            step: r.get(4)?,
            model_id: Some(model.info.model_id.clone()),
            dataset_name: r.get(5)?,
            dataset_digest: r.get(6)?,
            run_id: r.get(7)?,
        })
    })?;
    model.data.metrics = rows.collect::<rusqlite::Result<_>>()?;
    Ok(model)
}

pub fn get(conn: &Connection, id: &str) -> TrackingResult<LoggedModel> {
    exists(conn, id)?;
    let model = conn.query_row(
        &format!("SELECT {COLUMNS} FROM logged_models l WHERE l.id = ?1"),
        [id],
        from_row,
    )?;
    complete(conn, model)
}

const FIELDS: Fields = Fields {
    what: "logged models",
    attributes: &[
        ("name", "l.name", false),
        ("model_id", "l.id", false),
        ("source_run_id", "l.source_run_uuid", false),
        ("status", "l.status", false),
        ("model_type", "l.model_type", false),
        ("creation_timestamp", "l.created_at_ms", true),
        ("creation_time", "l.created_at_ms", true),
        ("last_updated_timestamp", "l.updated_at_ms", true),
    ],
    tag: "(SELECT value FROM logged_model_tags t WHERE t.model_id = l.id AND t.key = {key})",
    prompt: None,
};

/// A `datasets` clause of a logged-model search: models with a metric measured on this dataset
/// (name, and digest; no digest means a metric logged without one, as MLflow's handler reads
/// it).
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetFilter {
    pub name: String,
    pub digest: Option<String>,
}

pub fn search(
    conn: &Connection,
    experiment_ids: &[String],
    filter_text: &str,
    datasets: &[DatasetFilter],
    order_by: &[String],
    max_results: usize,
    offset: usize,
) -> TrackingResult<(Vec<LoggedModel>, Option<String>)> {
    let ids: Vec<String> = experiment_ids
        .iter()
        .map(|id| experiments::parse_id(id).map(|n| n.to_string()))
        .collect::<TrackingResult<_>>()?;
    let scope = if ids.is_empty() {
        String::new()
    } else {
        format!("l.experiment_id IN ({}) AND ", ids.join(", "))
    };
    let mut args = Vec::new();
    let conditions = FIELDS.conditions(filter_text, &mut args)?;
    let on_datasets = if datasets.is_empty() {
        String::new()
    } else {
        let mut any = Vec::new();
        for d in datasets {
            args.push(d.name.clone().into());
            let name = format!("?{}", args.len());
            let digest = match &d.digest {
                Some(digest) => {
                    args.push(digest.clone().into());
                    format!("d.dataset_digest = ?{}", args.len())
                }
                None => "d.dataset_digest IS NULL".to_owned(),
            };
            any.push(format!("(d.dataset_name = {name} AND {digest})"));
        }
        format!(
            " AND EXISTS (SELECT 1 FROM logged_model_metrics d WHERE d.model_id = l.id AND ({}))",
            any.join(" OR ")
        )
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM logged_models l WHERE {scope}l.lifecycle_stage = 'active' AND {conditions}{on_datasets}{}",
        FIELDS.order_and_page(
            order_by,
            &["l.created_at_ms DESC", "l.id"],
            max_results,
            offset
        )?
    );
    search_page(
        conn,
        &sql,
        args,
        from_row,
        |m| complete(conn, m),
        max_results,
        offset,
    )
}

pub fn log_outputs(conn: &Connection, run_id: &str, outputs: &[ModelOutput]) -> TrackingResult<()> {
    let run = runs::find_active(conn, run_id)?;
    for output in outputs {
        exists(conn, &output.model_id)?;
        conn.execute(
            "INSERT INTO run_outputs (run_id, model_id, step) VALUES (?1, ?2, ?3)
             ON CONFLICT (run_id, model_id) DO UPDATE SET step = excluded.step",
            params![run.id, output.model_id, output.step],
        )?;
    }
    Ok(())
}
