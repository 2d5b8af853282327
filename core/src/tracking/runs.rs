//! Runs: creating and finishing them, params, tags, metrics (single and batched, within MLflow's
//! limits), dataset inputs, and reading a run back whole.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::experiments;
use super::metrics;
use super::types::{
    Dataset, DatasetInput, Metric, ModelOutput, Param, Run, RunData, RunInfo, RunInputs,
    RunOutputs, Tag,
};
use super::{TrackingError, TrackingResult};
use crate::db::now_millis;

pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
const MAX_KEY_CHARS: usize = 250;
const MAX_PARAM_VALUE_CHARS: usize = 6000;
const MAX_TAG_VALUE_CHARS: usize = 8000;
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// A run's row id, experiment and stage, looked up by its MLflow id.
pub struct RunRef {
    pub id: i64,
    pub experiment_id: i64,
    pub lifecycle_stage: String,
}

pub fn find(conn: &Connection, run_id: &str) -> TrackingResult<RunRef> {
    conn.prepare_cached("SELECT id, experiment_id, lifecycle_stage FROM runs WHERE uuid = ?1")?
        .query_row([run_id], |r| {
            Ok(RunRef {
                id: r.get(0)?,
                experiment_id: r.get(1)?,
                lifecycle_stage: r.get(2)?,
            })
        })
        .optional()?
        .ok_or_else(|| TrackingError::missing(format!("Run with id={run_id} not found")))
}

/// Finds a run that may be logged to: it must exist and be active.
pub fn find_active(conn: &Connection, run_id: &str) -> TrackingResult<RunRef> {
    let run = find(conn, run_id)?;
    if run.lifecycle_stage != "active" {
        return Err(TrackingError::invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is {}.",
            run.lifecycle_stage
        )));
    }
    Ok(run)
}

pub struct NewRun {
    pub experiment_id: String,
    pub user_id: String,
    pub start_time: Option<i64>,
    pub run_name: Option<String>,
    pub tags: Vec<Tag>,
}

pub fn create(conn: &Connection, new: NewRun) -> TrackingResult<Run> {
    let experiment_id = experiments::require_active(conn, &new.experiment_id)?;
    let experiment = experiments::get(conn, &new.experiment_id)?;
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let tagged_name = new
        .tags
        .iter()
        .find(|t| t.key == RUN_NAME_TAG)
        .map(|t| t.value.clone());
    let name = new
        .run_name
        .filter(|n| !n.is_empty())
        .or(tagged_name)
        .unwrap_or_else(|| generated_name(&uuid));
    let artifact_uri = format!(
        "{}/{uuid}/artifacts",
        experiment.artifact_location.trim_end_matches('/')
    );
    let id: i64 = conn.query_row(
        "INSERT INTO runs (uuid, experiment_id, name, user_id, status, start_time_ms,
             lifecycle_stage, artifact_uri)
         VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, 'active', ?6) RETURNING id",
        params![
            uuid,
            experiment_id,
            name,
            new.user_id,
            new.start_time.unwrap_or_else(now_millis),
            artifact_uri
        ],
        |r| r.get(0),
    )?;
    for tag in new.tags.iter().filter(|t| t.key != RUN_NAME_TAG) {
        set_tag_row(conn, id, &tag.key, &tag.value)?;
    }
    set_tag_row(conn, id, RUN_NAME_TAG, &name)?;
    get(conn, &uuid)
}

/// A run as another workspace recorded it (`lathe sync pull`): its id, name, owner, status and
/// times kept, in the local experiment `experiment_id`, with every metric point.
pub struct RestoredRun {
    pub info: RunInfo,
    pub experiment_id: i64,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
    pub metrics: Vec<Metric>,
}

/// Records a [`RestoredRun`]; its artifact URI is the experiment's location and the run's id,
/// as for a run created here. The caller checked that no run has its id.
///
/// # Errors
/// A key or value MLflow's limits refuse; the store cannot be written.
pub fn restore(conn: &Connection, run: &RestoredRun) -> TrackingResult<RunInfo> {
    let experiment = experiments::get(conn, &run.experiment_id.to_string())?;
    let info = &run.info;
    let artifact_uri = format!(
        "{}/{}/artifacts",
        experiment.artifact_location.trim_end_matches('/'),
        info.run_id
    );
    let id: i64 = conn.query_row(
        "INSERT INTO runs (uuid, experiment_id, name, user_id, status, start_time_ms,
             end_time_ms, lifecycle_stage, artifact_uri)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8) RETURNING id",
        params![
            info.run_id,
            run.experiment_id,
            info.run_name,
            info.user_id,
            info.status,
            info.start_time,
            info.end_time,
            artifact_uri
        ],
        |r| r.get(0),
    )?;
    log_params(conn, id, &info.run_id, &run.params)?;
    for tag in &run.tags {
        set_tag_row(conn, id, &tag.key, &tag.value)?;
    }
    if !run.metrics.is_empty() {
        metrics::append(conn, id, &run.metrics)?;
    }
    Ok(get(conn, &info.run_id)?.info)
}

/// What [`merge`] added to a run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    pub points: usize,
    pub params: usize,
    pub tags: usize,
    /// The run was running here and had ended there.
    pub ended: bool,
}

/// Adds to the run `run.info.run_id` what `run` (another workspace's copy of it) has more:
/// metric points, params and tags of keys it lacks, and the end of a run still running here.
/// Nothing it has is changed: a tag or param of the same key keeps its value here.
///
/// # Errors
/// No such run; the store cannot be written.
pub fn merge(conn: &Connection, run: &RestoredRun) -> TrackingResult<Merged> {
    let id = &run.info.run_id;
    let found = find(conn, id)?;
    let mut merged = Merged::default();
    let has = |table: &str, key: &str| -> TrackingResult<bool> {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT 1 FROM {table} WHERE run_id = ?1 AND key = ?2"
            ))?
            .query_row(params![found.id, key], |_| Ok(()))
            .optional()?
            .is_some())
    };
    let mut new_params = Vec::new();
    for p in &run.params {
        if !has("params", &p.key)? {
            new_params.push(p.clone());
        }
    }
    merged.params = new_params.len();
    log_params(conn, found.id, id, &new_params)?;
    for tag in &run.tags {
        if !has("run_tags", &tag.key)? {
            set_tag_row(conn, found.id, &tag.key, &tag.value)?;
            merged.tags += 1;
        }
    }
    let mut keys: Vec<&str> = run.metrics.iter().map(|m| m.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut new_points = Vec::new();
    for key in keys {
        let here: std::collections::HashSet<(i64, i64, u64)> =
            metrics::history(conn, found.id, key)?
                .into_iter()
                .map(|p| (p.step, p.timestamp, p.value.to_bits()))
                .collect();
        new_points.extend(
            run.metrics
                .iter()
                .filter(|m| {
                    m.key == key && !here.contains(&(m.step, m.timestamp, m.value.to_bits()))
                })
                .cloned(),
        );
    }
    merged.points = new_points.len();
    if !new_points.is_empty() {
        metrics::append(conn, found.id, &new_points)?;
    }
    let status: String =
        conn.query_row("SELECT status FROM runs WHERE id = ?1", [found.id], |r| {
            r.get(0)
        })?;
    if status == "RUNNING" && run.info.status != "RUNNING" {
        conn.execute(
            "UPDATE runs SET status = ?1, end_time_ms = ?2 WHERE id = ?3",
            params![run.info.status, run.info.end_time, found.id],
        )?;
        merged.ended = true;
    }
    Ok(merged)
}

/// A readable default name, as MLflow gives: `adjective-noun-number`, drawn from the run's id.
fn generated_name(uuid: &str) -> String {
    const ADJECTIVES: &[&str] = &[
        "amber", "bold", "brisk", "calm", "clever", "crisp", "dapper", "eager", "fleet", "gentle",
        "glad", "keen", "lucid", "mellow", "nimble", "quiet", "rapid", "sly", "steady", "vivid",
    ];
    const NOUNS: &[&str] = &[
        "badger", "crane", "dolphin", "falcon", "fox", "gecko", "heron", "ibis", "lynx", "marten",
        "newt", "otter", "owl", "panda", "quail", "raven", "seal", "stoat", "tern", "wren",
    ];
    let n = u64::from_str_radix(uuid.get(..12).unwrap_or("0"), 16).unwrap_or(0);
    format!(
        "{}-{}-{}",
        ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize],
        NOUNS[((n / 64) % NOUNS.len() as u64) as usize],
        (n / 4096) % 1000
    )
}

const INFO_COLUMNS: &str = "r.id, r.uuid, r.name, r.experiment_id, r.user_id, r.status, \
     r.start_time_ms, r.end_time_ms, r.artifact_uri, r.lifecycle_stage";

fn info_from_row(row: &Row) -> rusqlite::Result<(i64, RunInfo)> {
    let uuid: String = row.get(1)?;
    Ok((
        row.get(0)?,
        RunInfo {
            run_id: uuid.clone(),
            run_uuid: uuid,
            run_name: row.get(2)?,
            experiment_id: row.get::<_, i64>(3)?.to_string(),
            user_id: row.get(4)?,
            status: row.get(5)?,
            start_time: row.get(6)?,
            end_time: row.get(7)?,
            artifact_uri: row.get(8)?,
            lifecycle_stage: row.get(9)?,
        },
    ))
}

/// One run, with the logged models it took as inputs (which MLflow gives on a single run only,
/// not in searches).
pub fn get(conn: &Connection, run_id: &str) -> TrackingResult<Run> {
    let found = find(conn, run_id)?;
    let mut run = get_many(conn, &[found.id])?
        .pop()
        .ok_or_else(|| TrackingError::missing(format!("Run with id={run_id} not found")))?;
    run.inputs.model_inputs = super::logged_models::model_inputs(conn, found.id)?;
    Ok(run)
}

/// Reads runs by row id, in the order given: five queries for the whole list (a search page
/// holds up to thousands of runs), not five per run.
pub fn get_many(conn: &Connection, ids: &[i64]) -> TrackingResult<Vec<Run>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Row ids come from the store itself, so writing them into the SQL is safe.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let position: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut runs: Vec<Option<Run>> = vec![None; ids.len()];
    let mut stmt = conn.prepare(&format!(
        "SELECT {INFO_COLUMNS} FROM runs r WHERE r.id IN ({list})"
    ))?;
    for row in stmt.query_map([], info_from_row)? {
        let (id, info) = row?;
        if let Some(&i) = position.get(&id) {
            runs[i] = Some(Run {
                info,
                data: RunData::default(),
                inputs: RunInputs::default(),
                outputs: RunOutputs::default(),
            });
        }
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT run_id, key, value FROM params WHERE run_id IN ({list}) ORDER BY run_id, key"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if let Some(run) = slot(&mut runs, &position, r.get(0)?) {
            run.data.params.push(Param {
                key: r.get(1)?,
                value: r.get(2)?,
            });
        }
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT run_id, key, value FROM run_tags WHERE run_id IN ({list}) ORDER BY run_id, key"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if let Some(run) = slot(&mut runs, &position, r.get(0)?) {
            run.data.tags.push(Tag {
                key: r.get(1)?,
                value: r.get(2)?,
            });
        }
    }
    for (id, metric) in metrics::latest_of(conn, &list)? {
        if let Some(run) = slot(&mut runs, &position, id) {
            run.data.metrics.push(metric);
        }
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT run_id, name, digest, source_type, source, schema, profile, tags
         FROM run_inputs WHERE run_id IN ({list}) ORDER BY run_id, name, digest"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if let Some(run) = slot(&mut runs, &position, r.get(0)?) {
            let tags: String = r.get(7)?;
            run.inputs.dataset_inputs.push(DatasetInput {
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                dataset: Dataset {
                    name: r.get(1)?,
                    digest: r.get(2)?,
                    source_type: r.get(3)?,
                    source: r.get(4)?,
                    schema: r.get(5)?,
                    profile: r.get(6)?,
                },
            });
        }
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT run_id, model_id, step FROM run_outputs WHERE run_id IN ({list})
         ORDER BY run_id, step, model_id"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if let Some(run) = slot(&mut runs, &position, r.get(0)?) {
            run.outputs.model_outputs.push(ModelOutput {
                model_id: r.get(1)?,
                step: r.get(2)?,
            });
        }
    }
    Ok(runs.into_iter().flatten().collect())
}

/// The run with row id `id` among runs placed by `position`.
fn slot<'a>(
    runs: &'a mut [Option<Run>],
    position: &HashMap<i64, usize>,
    id: i64,
) -> Option<&'a mut Run> {
    position.get(&id).and_then(|&i| runs[i].as_mut())
}

pub struct RunUpdate {
    pub status: Option<super::types::RunStatus>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
}

pub fn update(conn: &Connection, run_id: &str, change: RunUpdate) -> TrackingResult<RunInfo> {
    let run = find_active(conn, run_id)?;
    if let Some(status) = change.status {
        conn.execute(
            "UPDATE runs SET status = ?1 WHERE id = ?2",
            params![status.as_str(), run.id],
        )?;
    }
    if let Some(end) = change.end_time {
        conn.execute(
            "UPDATE runs SET end_time_ms = ?1 WHERE id = ?2",
            params![end, run.id],
        )?;
    }
    if let Some(name) = change.run_name.filter(|n| !n.is_empty()) {
        set_tag_row(conn, run.id, RUN_NAME_TAG, &name)?;
    }
    Ok(get(conn, run_id)?.info)
}

pub fn set_deleted(conn: &Connection, run_id: &str, deleted: bool) -> TrackingResult<()> {
    let run = find(conn, run_id)?;
    let stage = if deleted { "deleted" } else { "active" };
    conn.execute(
        "UPDATE runs SET lifecycle_stage = ?1 WHERE id = ?2",
        params![stage, run.id],
    )?;
    Ok(())
}

/// Checks a param, metric or tag key as MLflow does: 1 to 250 characters from letters, digits,
/// `_ - . / :` and spaces, and no path tricks (`..`, a leading `/`, `//`).
pub fn check_key(kind: &str, key: &str) -> TrackingResult<()> {
    let allowed = |c: char| c.is_alphanumeric() || "_-./: ".contains(c);
    let bad_path = key.starts_with('/')
        || key.contains("//")
        || key.split('/').any(|part| part == ".." || part == ".");
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(TrackingError::invalid(format!(
            "Invalid {kind} name '{key}': it must have 1 to {MAX_KEY_CHARS} characters"
        )));
    }
    if !key.chars().all(allowed) || bad_path {
        return Err(TrackingError::invalid(format!(
            "Invalid {kind} name '{key}': names may contain letters, digits, underscores (_), \
             dashes (-), periods (.), spaces ( ), colons (:) and slashes (/), and must not be a \
             path such as '../x' or '/x'"
        )));
    }
    Ok(())
}

fn set_tag_row(conn: &Connection, run: i64, key: &str, value: &str) -> TrackingResult<()> {
    check_key("tag", key)?;
    if value.chars().count() > MAX_TAG_VALUE_CHARS {
        return Err(TrackingError::invalid(format!(
            "Tag '{key}' has a value of {} characters; the limit is {MAX_TAG_VALUE_CHARS}",
            value.chars().count()
        )));
    }
    conn.prepare_cached(
        "INSERT INTO run_tags (run_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![run, key, value])?;
    if key == RUN_NAME_TAG {
        conn.prepare_cached("UPDATE runs SET name = ?1 WHERE id = ?2")?
            .execute(params![value, run])?;
    }
    Ok(())
}

pub fn delete_tag(conn: &Connection, run_id: &str, key: &str) -> TrackingResult<()> {
    let run = find_active(conn, run_id)?;
    let removed = conn.execute(
        "DELETE FROM run_tags WHERE run_id = ?1 AND key = ?2",
        params![run.id, key],
    )?;
    if removed == 0 {
        return Err(TrackingError::missing(format!(
            "No tag with name: {key} in run with id {run_id}"
        )));
    }
    Ok(())
}

fn log_params(conn: &Connection, run: i64, run_id: &str, params: &[Param]) -> TrackingResult<()> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for p in params {
        check_key("param", &p.key)?;
        if p.value.chars().count() > MAX_PARAM_VALUE_CHARS {
            return Err(TrackingError::invalid(format!(
                "Param '{}' has a value of {} characters; the limit is {MAX_PARAM_VALUE_CHARS}",
                p.key,
                p.value.chars().count()
            )));
        }
        if let Some(previous) = seen.insert(&p.key, &p.value)
            && previous != p.value
        {
            return Err(TrackingError::invalid(format!(
                "Duplicate parameter keys have been submitted: '{}' with values '{previous}' and '{}'",
                p.key, p.value
            )));
        }
    }
    let mut existing =
        conn.prepare_cached("SELECT value FROM params WHERE run_id = ?1 AND key = ?2")?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO params (run_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_id, key) DO NOTHING",
    )?;
    for p in params {
        let old: Option<String> = existing
            .query_row(params![run, p.key], |r| r.get(0))
            .optional()?;
        match old {
            Some(old) if old != p.value => {
                return Err(TrackingError::invalid(format!(
                    "Changing param values is not allowed. Param with key='{}' was already \
                     logged with value='{old}' for run ID='{run_id}'. Attempted logging new \
                     value '{}'.",
                    p.key, p.value
                )));
            }
            Some(_) => {}
            None => {
                insert.execute(params![run, p.key, p.value])?;
            }
        }
    }
    Ok(())
}

/// Everything one log-batch request carries.
#[derive(Debug, Default)]
pub struct Batch {
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

/// Checks a batch against MLflow's limits before anything is written.
pub fn check_batch(batch: &Batch) -> TrackingResult<()> {
    let too_many = |what: &str, got: usize, limit: usize| {
        TrackingError::invalid(format!(
            "A batch logging request can contain at most {limit} {what}. Got {got} {what}. \
             Please split up the request into smaller batches."
        ))
    };
    if batch.metrics.len() > MAX_METRICS_PER_BATCH {
        return Err(too_many(
            "metrics",
            batch.metrics.len(),
            MAX_METRICS_PER_BATCH,
        ));
    }
    if batch.params.len() > MAX_PARAMS_TAGS_PER_BATCH {
        return Err(too_many(
            "params",
            batch.params.len(),
            MAX_PARAMS_TAGS_PER_BATCH,
        ));
    }
    if batch.tags.len() > MAX_PARAMS_TAGS_PER_BATCH {
        return Err(too_many(
            "tags",
            batch.tags.len(),
            MAX_PARAMS_TAGS_PER_BATCH,
        ));
    }
    let total = batch.metrics.len() + batch.params.len() + batch.tags.len();
    if total > MAX_ENTITIES_PER_BATCH {
        return Err(too_many(
            "metrics, params, and tags in total",
            total,
            MAX_ENTITIES_PER_BATCH,
        ));
    }
    let mut checked: Option<&str> = None;
    for m in &batch.metrics {
        // Keys repeat within a batch (a series); check each distinct key once.
        if checked != Some(m.key.as_str()) {
            check_key("metric", &m.key)?;
            checked = Some(&m.key);
        }
    }
    Ok(())
}

pub fn log_batch(conn: &Connection, run_id: &str, batch: &Batch) -> TrackingResult<()> {
    check_batch(batch)?;
    let run = find_active(conn, run_id)?;
    log_params(conn, run.id, run_id, &batch.params)?;
    for tag in &batch.tags {
        set_tag_row(conn, run.id, &tag.key, &tag.value)?;
    }
    if !batch.metrics.is_empty() {
        metrics::append(conn, run.id, &batch.metrics)?;
        super::logged_models::log_model_metrics(conn, run_id, &batch.metrics)?;
    }
    Ok(())
}

pub fn log_inputs(conn: &Connection, run_id: &str, inputs: &[DatasetInput]) -> TrackingResult<()> {
    let run = find_active(conn, run_id)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO run_inputs (run_id, name, digest, source_type, source, schema, profile, tags,
             asset_version_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (run_id, name, digest) DO UPDATE SET tags = excluded.tags",
    )?;
    for input in inputs {
        let d = &input.dataset;
        if d.name.is_empty() || d.digest.is_empty() {
            return Err(TrackingError::invalid(
                "A dataset input needs a name and a digest",
            ));
        }
        let asset_version = lathe_asset_version(conn, d)?;
        insert.execute(params![
            run.id,
            d.name,
            d.digest,
            d.source_type,
            d.source,
            d.schema,
            d.profile,
            serde_json::to_string(&input.tags).unwrap_or_else(|_| "[]".into()),
            asset_version
        ])?;
    }
    Ok(())
}

/// Links a dataset input to a Lathe data asset version when it names one: source type `lathe`
/// with source `NAME:VERSION`, or a digest equal to a version's content hash (or its prefix).
fn lathe_asset_version(conn: &Connection, d: &Dataset) -> TrackingResult<Option<i64>> {
    if d.source_type == "lathe"
        && let Some((name, version)) = d.source.rsplit_once(':')
        && let Ok(version) = version.parse::<i64>()
    {
        return Ok(conn
            .query_row(
                "SELECT v.id FROM asset_versions v JOIN assets a ON a.id = v.asset_id
                 WHERE a.name = ?1 AND v.version = ?2",
                params![name, version],
                |r| r.get(0),
            )
            .optional()?);
    }
    if d.digest.len() >= 8 && d.digest.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(conn
            .query_row(
                "SELECT id FROM asset_versions WHERE substr(content_hash, 1, length(?1)) = ?1",
                [d.digest.to_ascii_lowercase()],
                |r| r.get(0),
            )
            .optional()?);
    }
    Ok(None)
}
