//! A batch endpoint's invocation: a job, recorded before it starts, that scores its input in
//! mini batches (in parallel, with progress and cancel) and writes the rows with their
//! predictions as a new data asset version. The job is an MLflow run of experiment
//! `batch-<endpoint>`, which names the input version and the model (the lineage view shows
//! both) and is tagged with the output version.
//!
//! Whoever runs a job (the CLI's `invoke`, `lathe batch-job run`, the window) beats its
//! heartbeat every quarter second and reads its cancel flag, so `lathe batch-job cancel` from
//! another process stops it, and a job whose process died shows as such.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use polars::prelude::*;
use rayon::prelude::*;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::{BatchDeployment, BatchPipeline, OutputAction};
use crate::assets::{AssetKind, AssetRef};
use crate::jobs::Progress;
use crate::pipeline::executor::{Event as PipelineEvent, RunOptions, StepStatus};
use crate::pipeline::job::{Binding, Pipeline};
use crate::serving::table::TableScores;
use crate::serving::{Hosting, ScoreError, Scorer};
use crate::store::Store;
use crate::table::TableFormat;
use crate::tracking::registry;
use crate::tracking::types::RunStatus;
use crate::{Error, Result};

mod script;

/// Rows per mini batch of a table when the deployment does not say (Azure's 10 counts files).
pub const DEFAULT_ROWS_PER_MINI_BATCH: u64 = 10_000;
/// Failures a job keeps by row; past this only the count grows.
const KEPT_FAILURES: usize = 1_000;
/// A running job's heartbeat older than this means its process stopped.
const LOST_AFTER_MS: i64 = 30_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// A row (or file) that was not scored, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The file it came from, for an input of files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its row, counting from 1 (in its file, for files); `None` when the whole file failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    pub error: String,
}

impl Failure {
    /// Where it failed, as a person reads it: `b.csv, row 3`.
    pub fn place(&self) -> String {
        match (&self.file, self.row) {
            (Some(file), Some(row)) => format!("{file}, row {row}"),
            (Some(file), None) => file.clone(),
            (None, Some(row)) => format!("row {row}"),
            (None, None) => "a mini batch".to_owned(),
        }
    }
}

/// A batch job as the workspace keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchJob {
    pub id: i64,
    pub endpoint: String,
    pub deployment: String,
    /// A data asset version `NAME:VERSION`, or the absolute path of a table file or folder.
    pub input: String,
    /// The data asset the predictions become a version of.
    pub output: String,
    pub state: JobState,
    pub cancel_requested: bool,
    pub rows_total: u64,
    pub rows_done: u64,
    pub rows_failed: u64,
    /// The first failures, by row.
    pub failures: Vec<Failure>,
    pub message: String,
    /// The MLflow run that records the job.
    pub run_id: Option<String>,
    /// The output data asset version, `NAME:VERSION`.
    pub output_version: Option<String>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub heartbeat_ms: Option<i64>,
}

impl BatchJob {
    /// Whether the job still says it runs although its process has stopped beating.
    pub fn is_lost(&self, now_ms: i64) -> bool {
        self.state == JobState::Running
            && self
                .heartbeat_ms
                .is_some_and(|beat| now_ms - beat > LOST_AFTER_MS)
    }

    /// The state as a person reads it (a lost job says so).
    pub fn describe_state(&self, now_ms: i64) -> String {
        if self.is_lost(now_ms) {
            "lost: the process running it stopped".to_owned()
        } else {
            self.state.as_str().to_owned()
        }
    }

    /// Rows scored per second, once the job has ended.
    pub fn rows_per_second(&self) -> Option<f64> {
        let seconds = (self.finished_at_ms? - self.started_at_ms?) as f64 / 1000.0;
        (seconds > 0.0).then(|| self.rows_done as f64 / seconds)
    }
}

/// What to score, and with what.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invocation {
    pub endpoint: String,
    /// The endpoint's default deployment when `None`.
    pub deployment: Option<String>,
    /// A data asset version (`NAME:VERSION`, `NAME` for its newest, `azureml:` allowed) or a
    /// table file or a folder of table files.
    pub input: String,
    /// The data asset the predictions become a version of (`<endpoint>-predictions` when
    /// `None`).
    pub output: Option<String>,
}

/// Records a job for `invocation` (queued): the deployment and input are checked and the
/// input fixed (an asset's version, a path made absolute) so the job scores what was asked
/// whoever runs it.
///
/// # Errors
/// An unknown endpoint or deployment, an endpoint with no deployment, an input that is
/// neither a table version nor table files, a bad output name.
pub fn submit(store: &Store, invocation: &Invocation) -> Result<BatchJob> {
    let endpoint = super::endpoint(store, &invocation.endpoint)?;
    let deployment = match invocation
        .deployment
        .clone()
        .or(endpoint.spec.defaults.deployment_name)
    {
        Some(name) => super::deployment(store, &invocation.endpoint, &name)?,
        None => {
            return Err(Error::Endpoint(format!(
                "batch endpoint {} has no deployments; create one (`lathe batch-deployment \
                 create -f deployment.yml`)",
                invocation.endpoint
            )));
        }
    };
    let input = match &deployment.pipeline {
        Some(pipeline) => pipeline_input(store, pipeline, &invocation.input)?,
        None if invocation.input.trim().is_empty() => {
            return Err(Error::Endpoint(
                "input: give the table to score (a data asset NAME:VERSION, a table file or a \
                 folder of them)"
                    .to_owned(),
            ));
        }
        None => fix_input(store, &invocation.input, deployment.runtime.code.is_some())?,
    };
    let output = invocation
        .output
        .clone()
        .unwrap_or_else(|| format!("{}-predictions", invocation.endpoint));
    crate::assets::validate_name(&output)?;
    if let Some(kind) = store.workspace()?.asset_kind(&output)?
        && kind != AssetKind::Table
    {
        return Err(Error::Endpoint(format!(
            "output: data asset {output} holds {kind}; name a table asset"
        )));
    }
    let now = crate::db::now_millis();
    let row = (
        invocation.endpoint.clone(),
        deployment.spec.name.clone(),
        input,
        output,
    );
    let id = store.transaction::<_, Error>(move |c| {
        c.execute(
            "INSERT INTO batch_jobs (endpoint, deployment, input, output, state, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, 'queued', ?5)",
            params![row.0, row.1, row.2, row.3, now],
        )?;
        Ok(c.last_insert_rowid())
    })?;
    job(store, id)
}

/// `text` as the input a job keeps: `NAME:VERSION` of a table asset, or an absolute path (of
/// table files; of any files, and any asset, for a scoring script).
fn fix_input(store: &Store, text: &str, scripted: bool) -> Result<String> {
    let fixed = fix_data(store, text)?;
    let path = Path::new(&fixed);
    if path.is_absolute() {
        if scripted {
            if !path.exists() {
                return Err(Error::Endpoint(format!(
                    "input: {} does not exist",
                    path.display()
                )));
            }
        } else {
            table_files(path)?;
        }
        return Ok(fixed);
    }
    let version = store.workspace()?.resolve(&fixed.parse()?)?;
    if version.kind != AssetKind::Table && !scripted {
        return Err(Error::Endpoint(format!(
            "input: {} holds {}; a model batch deployment scores a table's rows",
            version.reference(),
            version.kind
        )));
    }
    Ok(fixed)
}

/// The one input of `pipeline` a batch invocation binds: its data input (one left open, or
/// one given a path), `None` when it has none.
///
/// # Errors
/// More than one data input, named.
pub(crate) fn data_input(pipeline: &Pipeline) -> std::result::Result<Option<String>, String> {
    let data: Vec<&str> = pipeline
        .inputs
        .iter()
        .filter(|(_, b)| matches!(b, Binding::Data { .. } | Binding::Unbound))
        .map(|(n, _)| n.as_str())
        .collect();
    match data.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((*one).to_owned())),
        many => Err(format!(
            "the pipeline has {} data inputs ({}); a batch invocation gives one",
            many.len(),
            many.join(", ")
        )),
    }
}

/// A pipeline deployment's input, fixed as a model deployment's is: none when the pipeline
/// takes no data (or its own data input has a path and none is given).
fn pipeline_input(store: &Store, pipeline: &BatchPipeline, given: &str) -> Result<String> {
    let parsed = parse_pipeline(store, pipeline)?;
    let input = data_input(&parsed).map_err(Error::Endpoint)?;
    let open = parsed
        .inputs
        .iter()
        .any(|(n, b)| Some(n) == input.as_ref() && *b == Binding::Unbound);
    match (input, given.trim().is_empty()) {
        (None, true) => Ok(String::new()),
        (None, false) => Err(Error::Endpoint(format!(
            "input: the pipeline {} takes no data input; invoke it without --input",
            pipeline.name
        ))),
        (Some(name), true) if open => Err(Error::Endpoint(format!(
            "input: give the data for the pipeline's input '{name}' (a data asset \
             NAME:VERSION, a file or a folder)"
        ))),
        (Some(_), true) => Ok(String::new()),
        (Some(_), false) => fix_data(store, given),
    }
}

/// Any data asset version or local file or folder (a pipeline's step reads what it takes).
fn fix_data(store: &Store, text: &str) -> Result<String> {
    let forced = text.strip_prefix("azureml:");
    if forced.is_none() && Path::new(text).exists() {
        let path = std::fs::canonicalize(text).map_err(|e| Error::io(text, e))?;
        return Ok(path.display().to_string());
    }
    let reference: AssetRef = forced.unwrap_or(text).parse().map_err(|_| {
        Error::Endpoint(format!(
            "input: '{text}' is neither a file or folder nor a data asset NAME:VERSION"
        ))
    })?;
    let version = store.workspace()?.resolve(&reference).map_err(|e| {
        Error::Endpoint(format!(
            "input: '{text}' is neither a file or folder nor a data asset version ({e})"
        ))
    })?;
    Ok(version.reference())
}

fn parse_pipeline(store: &Store, pipeline: &BatchPipeline) -> Result<Pipeline> {
    let tracking = store.tracking();
    let root = store.root().to_path_buf();
    let registry =
        |reference: &str| crate::pipeline::registry::resolve(&tracking, &root, reference);
    crate::pipeline::job::parse_with(&pipeline.yaml, &pipeline.base, &registry).map_err(
        |problems| {
            let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Error::Endpoint(format!(
                "the pipeline {} no longer reads: {}",
                pipeline.name,
                listed.join("; ")
            ))
        },
    )
}

/// Runs a pipeline deployment's pipeline over the job's input, as a pipeline run in the
/// endpoint's experiment; its first output's new version is the job's output, and its rows
/// the job's.
fn execute_pipeline(
    store: &Store,
    found: &BatchJob,
    pipeline: &BatchPipeline,
    progress: &Progress,
    counts: &Counts,
) -> Result<Ended> {
    let tracking = store.tracking();
    let mut parsed = parse_pipeline(store, pipeline)?;
    if let Some(name) = data_input(&parsed).map_err(Error::Endpoint)?
        && !found.input.is_empty()
    {
        let path = if Path::new(&found.input).is_absolute() {
            found.input.clone()
        } else {
            format!("azureml:{}", found.input)
        };
        for (input, binding) in &mut parsed.inputs {
            if *input == name {
                *binding = Binding::Data { kind: None, path };
                break;
            }
        }
    }
    // An output's newest version: its id, and its rows (the job's count).
    let newest = |name: &str| -> Option<(i64, i64)> {
        let ws = store.workspace().ok()?;
        ws.resolve(&AssetRef {
            name: name.to_owned(),
            version: None,
        })
        .ok()
        .map(|v| (v.id, v.item_count))
    };
    let output = parsed.outputs.first().cloned();
    let before = output.as_deref().and_then(newest);
    let mut options = RunOptions::new(&format!("batch-{}", found.endpoint));
    options.run_name = Some(format!("{}-job-{}", found.endpoint, found.id));
    progress.start_stage("running the pipeline", parsed.steps.len() as u64);
    let observe = |event: PipelineEvent| {
        if let PipelineEvent::Step { status, .. } = &event
            && !matches!(status, StepStatus::Queued | StepStatus::Running)
        {
            progress.advance(1);
        }
    };
    let outcome = crate::pipeline::executor::run(
        &tracking,
        store.root(),
        &parsed,
        &pipeline.base,
        &options,
        progress.flag(),
        &observe,
    )?;
    let tag = |key: &str, value: &str| crate::tracking::types::Tag {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    tracking.log_batch(
        &outcome.run_id,
        crate::tracking::runs::Batch {
            tags: vec![
                tag("lathe.batch.endpoint", &found.endpoint),
                tag("lathe.batch.deployment", &found.deployment),
                tag("lathe.batch.job", &found.id.to_string()),
                tag("lathe.pipeline.name", &pipeline.name),
            ],
            ..Default::default()
        },
    )?;
    let failed: Vec<Failure> = outcome
        .steps
        .iter()
        .filter_map(|s| match &s.status {
            StepStatus::Failed { message } => Some(Failure {
                file: Some(format!("step {}", s.name)),
                row: None,
                error: message.clone(),
            }),
            _ => None,
        })
        .collect();
    let run_id = Some(outcome.run_id.clone());
    Ok(match outcome.status {
        RunStatus::Finished => {
            let made = output
                .as_deref()
                .and_then(newest)
                .filter(|after| Some(*after) != before);
            let rows = made.map_or(0, |(_, rows)| u64::try_from(rows).unwrap_or(0));
            counts.total.store(rows, Ordering::Relaxed);
            counts.done.store(rows, Ordering::Relaxed);
            Ended::Completed {
                run_id: outcome.run_id,
                output: made.map(|(id, _)| id),
                failures: failed,
            }
        }
        RunStatus::Killed => Ended::Stopped {
            state: JobState::Cancelled,
            message: "cancelled".to_owned(),
            run_id,
            failures: failed,
        },
        _ => Ended::Stopped {
            state: JobState::Failed,
            message: failed.first().map_or_else(
                || "the pipeline failed".to_owned(),
                |f| format!("{} failed: {}", f.place(), f.error),
            ),
            run_id,
            failures: failed,
        },
    })
}

/// The table files to score at `path`: the file itself, or the table files in the folder
/// (not its subfolders), by name.
fn table_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return match TableFormat::from_path(path) {
            Some(_) => Ok(vec![path.to_path_buf()]),
            None => Err(Error::Endpoint(format!(
                "input: {} is not a table file (CSV, TSV, Parquet, JSON lines)",
                path.display()
            ))),
        };
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && TableFormat::from_path(p).is_some())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Endpoint(format!(
            "input: folder {} holds no table files (CSV, TSV, Parquet, JSON lines)",
            path.display()
        )));
    }
    Ok(files)
}

const COLUMNS: &str = "id, endpoint, deployment, input, output, state, cancel_requested,
    rows_total, rows_done, rows_failed, failures, message, run_id,
    (SELECT a.name || ':' || v.version FROM asset_versions v JOIN assets a ON a.id = v.asset_id
     WHERE v.id = output_version_id),
    created_at_ms, started_at_ms, finished_at_ms, heartbeat_ms";

/// Row counts are stored as SQLite's signed integers.
fn count(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

fn stored(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BatchJob> {
    let failures: String = r.get(10)?;
    Ok(BatchJob {
        id: r.get(0)?,
        endpoint: r.get(1)?,
        deployment: r.get(2)?,
        input: r.get(3)?,
        output: r.get(4)?,
        state: JobState::parse(&r.get::<_, String>(5)?),
        cancel_requested: r.get(6)?,
        rows_total: count(r.get(7)?),
        rows_done: count(r.get(8)?),
        rows_failed: count(r.get(9)?),
        failures: serde_json::from_str(&failures).unwrap_or_default(),
        message: r.get(11)?,
        run_id: r.get(12)?,
        output_version: r.get(13)?,
        created_at_ms: r.get(14)?,
        started_at_ms: r.get(15)?,
        finished_at_ms: r.get(16)?,
        heartbeat_ms: r.get(17)?,
    })
}

/// Job `id`.
///
/// # Errors
/// No such job.
pub fn job(store: &Store, id: i64) -> Result<BatchJob> {
    store
        .read::<_, Error>(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM batch_jobs WHERE id = ?1"),
                [id],
                job_row,
            )
            .optional()?)
        })?
        .ok_or_else(|| Error::Endpoint(format!("no batch job {id}")))
}

/// The jobs of batch endpoint `endpoint` (of every endpoint when `None`), newest first.
pub fn jobs(store: &Store, endpoint: Option<&str>) -> Result<Vec<BatchJob>> {
    let key = endpoint.map(str::to_owned);
    store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM batch_jobs WHERE ?1 IS NULL OR endpoint = ?1 ORDER BY id DESC"
        ))?;
        let rows = stmt.query_map([key], job_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })
}

/// Asks job `id` to stop: a queued job is cancelled at once, a running one within a second
/// (by whichever process runs it); a job whose process died is marked cancelled.
///
/// # Errors
/// No such job; a job that has ended.
pub fn cancel(store: &Store, id: i64) -> Result<BatchJob> {
    let found = job(store, id)?;
    if found.state.is_final() {
        return Err(Error::Endpoint(format!(
            "batch job {id} has ended ({})",
            found.state.as_str()
        )));
    }
    let now = crate::db::now_millis();
    let stop_now = found.state == JobState::Queued || found.is_lost(now);
    if !stop_now && found.rows_total > 0 && found.rows_done == found.rows_total {
        return Err(Error::Endpoint(format!(
            "batch job {id} has scored every row and is writing its predictions; it can no \
             longer be cancelled"
        )));
    }
    store.transaction::<_, Error>(move |c| {
        if stop_now {
            c.execute(
                "UPDATE batch_jobs SET state = 'cancelled', cancel_requested = 1,
                     finished_at_ms = ?2, message = 'cancelled' WHERE id = ?1",
                params![id, now],
            )?;
        } else {
            c.execute(
                "UPDATE batch_jobs SET cancel_requested = 1 WHERE id = ?1",
                [id],
            )?;
        }
        Ok(())
    })?;
    job(store, id)
}

/// The work a job splits into mini batches: a table's rows, or table files.
enum Source {
    Table(DataFrame),
    Files(Vec<(String, DataFrame)>),
}

/// One piece of a mini batch: rows from one table, where they start, and their file.
struct Piece {
    rows: DataFrame,
    first_row: u64,
    file: Option<String>,
}

/// What a mini batch gave: its rows with their answers (for the output), and its failures.
struct Scored {
    rows: Vec<DataFrame>,
    failures: Vec<Failure>,
    /// Rows not scored: those of the failures, and every row of a piece that failed whole.
    failed_rows: u64,
}

/// The settings of a job, Azure's defaults filled in.
struct Plan {
    mini_batch: usize,
    threads: usize,
    attempts: u32,
    error_threshold: Option<u64>,
    output_action: OutputAction,
    output_file: String,
}

impl Plan {
    fn of(deployment: &BatchDeployment, files: bool, python: bool) -> Self {
        let settings = deployment.spec.settings();
        let per_instance = settings.max_concurrency_per_instance.unwrap_or(1).max(1);
        Self {
            mini_batch: settings
                .mini_batch_size
                .unwrap_or(if files {
                    10
                } else {
                    DEFAULT_ROWS_PER_MINI_BATCH
                })
                .max(1) as usize,
            // A model scored in process uses every core; a Python model as many mini batches
            // at once as the deployment's processes take.
            threads: if python {
                (per_instance * deployment.spec.instances()) as usize
            } else {
                rayon::current_num_threads()
            },
            attempts: 1 + settings
                .retry_settings
                .as_ref()
                .and_then(|r| r.max_retries)
                .unwrap_or(3),
            error_threshold: settings.error_threshold.and_then(|t| u64::try_from(t).ok()),
            output_action: settings.output_action.unwrap_or(OutputAction::AppendRow),
            output_file: settings
                .output_file_name
                .unwrap_or_else(|| "predictions.csv".to_owned()),
        }
    }
}

/// Runs job `id` to its end in this process, with `progress` (rows) and its cancel; the
/// job's record follows along. Returns the job as it ended.
///
/// # Errors
/// No such job, or one that is not queued. A failure of the job itself is not an error: it
/// ends `failed` with the reason in its message.
pub fn run(store: &Store, id: i64, progress: &Progress) -> Result<BatchJob> {
    let found = job(store, id)?;
    if found.state != JobState::Queued {
        return Err(Error::Endpoint(format!(
            "batch job {id} is {}, not queued",
            found.state.as_str()
        )));
    }
    let now = crate::db::now_millis();
    let started = store.transaction::<_, Error>(move |c| {
        Ok(c.execute(
            "UPDATE batch_jobs SET state = 'running', started_at_ms = ?2, heartbeat_ms = ?2
             WHERE id = ?1 AND state = 'queued'",
            params![id, now],
        )? == 1)
    })?;
    if !started {
        return Err(Error::Endpoint(format!(
            "batch job {id} was started by another process"
        )));
    }
    let counts = Counts::default();
    let ended = std::thread::scope(|scope| {
        // The heartbeat stops as soon as the sender is dropped, not a beat later.
        let (done, stop) = std::sync::mpsc::channel::<()>();
        let counts = &counts;
        scope.spawn(move || heartbeat(store, id, progress, counts, &stop));
        let ended = execute(store, &found, progress, counts);
        drop(done);
        ended
    });
    let (state, message, run_id, output, failures) = match ended {
        Ok(Ended::Completed {
            run_id,
            output,
            failures,
        }) => (
            JobState::Completed,
            String::new(),
            Some(run_id),
            output,
            failures,
        ),
        Ok(Ended::Stopped {
            state,
            message,
            run_id,
            failures,
        }) => (state, message, run_id, None, failures),
        Err(e) => (JobState::Failed, e.to_string(), None, None, Vec::new()),
    };
    let (total, scored, failed) = counts.stored();
    let row = (
        state.as_str(),
        message,
        run_id,
        output,
        serde_json::to_string(&failures)?,
        failed,
        total,
        scored,
    );
    let now = crate::db::now_millis();
    store.transaction::<_, Error>(move |c| {
        c.execute(
            "UPDATE batch_jobs SET state = ?2, message = ?3, run_id = ?4, output_version_id = ?5,
                 failures = ?6, rows_failed = ?7, rows_total = ?8, rows_done = ?9,
                 finished_at_ms = ?10, heartbeat_ms = ?10
             WHERE id = ?1",
            params![
                id, row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, now
            ],
        )?;
        Ok(())
    })?;
    job(store, id)
}

/// A job's rows: to score, scored, failed.
#[derive(Default)]
struct Counts {
    total: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

impl Counts {
    fn stored(&self) -> (i64, i64, i64) {
        let get = |n: &AtomicU64| stored(n.load(Ordering::Relaxed));
        (get(&self.total), get(&self.done), get(&self.failed))
    }
}

/// Writes the job's counts every quarter second until `stop` hangs up, and turns a cancel asked for
/// by another process into `progress`'s.
fn heartbeat(
    store: &Store,
    id: i64,
    progress: &Progress,
    counts: &Counts,
    stop: &std::sync::mpsc::Receiver<()>,
) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(Duration::from_millis(250))
    {
        let (total, done_rows, rows_failed) = counts.stored();
        let now = crate::db::now_millis();
        let asked = store.transaction::<_, Error>(move |c| {
            c.execute(
                "UPDATE batch_jobs SET rows_total = ?2, rows_done = ?3, rows_failed = ?4,
                     heartbeat_ms = ?5 WHERE id = ?1",
                params![id, total, done_rows, rows_failed, now],
            )?;
            Ok(c.query_row(
                "SELECT cancel_requested FROM batch_jobs WHERE id = ?1",
                [id],
                |r| r.get::<_, bool>(0),
            )?)
        });
        if asked.unwrap_or(false) {
            progress.cancel();
        }
    }
}

enum Ended {
    Completed {
        run_id: String,
        output: Option<i64>,
        failures: Vec<Failure>,
    },
    Stopped {
        state: JobState,
        message: String,
        run_id: Option<String>,
        failures: Vec<Failure>,
    },
}

fn execute(store: &Store, found: &BatchJob, progress: &Progress, counts: &Counts) -> Result<Ended> {
    let deployment = super::deployment(store, &found.endpoint, &found.deployment)?;
    if let Some(pipeline) = &deployment.pipeline {
        return execute_pipeline(store, found, pipeline, progress, counts);
    }
    if deployment.runtime.code.is_some() {
        return script::execute(store, found, &deployment, progress, counts);
    }
    progress.start_stage("reading the input", 0);
    let source = read_source(store, &found.input)?;
    progress.start_stage("loading the model", 0);
    let (version, scorer) = host(store, &deployment)?;
    let python = scorer.python().is_some();
    let files = matches!(source, Source::Files(_));
    let plan = Plan::of(&deployment, files, python);
    let run_id = start_run(store, found, &deployment, &version, &plan)?;
    let units = units(source, plan.mini_batch);
    let total: u64 = units.iter().flatten().map(|p| p.rows.height() as u64).sum();
    counts.total.store(total, Ordering::Relaxed);
    progress.start_stage("scoring", total);
    // A table's mini batches share its columns: what fails for one fails for all, said once
    // before any work (files are judged each on its own).
    if !python
        && !files
        && let Some(first) = units.first().and_then(|u| u.first())
        && let Err(e) = scorer.score_table(&first.rows.head(Some(0)))
    {
        let message = format!("the input does not fit the model: {e}");
        return stopped(store, &run_id, JobState::Failed, message, Vec::new());
    }
    let started = Instant::now();
    let (results, over) = score_all(&units, &plan, progress, counts, |unit| {
        let rows = unit.iter().map(|p| p.rows.height() as u64).sum();
        (score_unit(&scorer, unit, plan.attempts), rows)
    })?;
    let ending = Ending {
        run_id,
        plan: &plan,
        version: &version,
        total,
        seconds: started.elapsed().as_secs_f64(),
        over,
    };
    finish(store, found, ending, results, progress, counts)
}

/// Scores `units` on a pool of the plan's threads, each by `score` (what it gave, and how
/// many rows or files it held), counting progress and failures as they come; once the job is
/// cancelled or its failures pass the error threshold no further unit starts. Returns each
/// unit's result (`None` for one never started) and whether the threshold was passed.
///
/// # Errors
/// No threads to score with.
fn score_all<U: Sync>(
    units: &[U],
    plan: &Plan,
    progress: &Progress,
    counts: &Counts,
    score: impl Fn(&U) -> (Scored, u64) + Sync,
) -> Result<(Vec<Option<Scored>>, bool)> {
    let over = AtomicBool::new(false);
    let one = |unit: &U| -> Option<Scored> {
        if progress.is_cancelled() || over.load(Ordering::Relaxed) {
            return None;
        }
        let (scored, items) = score(unit);
        let count = scored.failed_rows;
        let now_failed = counts.failed.fetch_add(count, Ordering::Relaxed) + count;
        if plan.error_threshold.is_some_and(|t| now_failed > t) {
            over.store(true, Ordering::Relaxed);
        }
        counts.done.fetch_add(items, Ordering::Relaxed);
        progress.advance(items);
        Some(scored)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads.max(1))
        .thread_name(|i| format!("batch-{i}"))
        .build()
        .map_err(|e| Error::Endpoint(format!("no threads to score with: {e}")))?;
    let results = pool.install(|| units.par_iter().map(one).collect());
    Ok((results, over.load(Ordering::Relaxed)))
}

/// How a job's scoring went, for [`finish`].
struct Ending<'a> {
    run_id: String,
    plan: &'a Plan,
    version: &'a crate::tracking::types::ModelVersion,
    /// Rows (or files) in the input, and the seconds scoring them took.
    total: u64,
    seconds: f64,
    /// Whether the failures passed the error threshold.
    over: bool,
}

/// Ends a job whose mini batches were scored (`results`, `None` for one never started): its
/// failures kept, cancelled or over the threshold, else its metrics logged and its output
/// written as the plan's output action says.
fn finish(
    store: &Store,
    found: &BatchJob,
    ending: Ending<'_>,
    results: Vec<Option<Scored>>,
    progress: &Progress,
    counts: &Counts,
) -> Result<Ended> {
    let Ending {
        run_id,
        plan,
        version,
        total,
        seconds,
        over,
    } = ending;
    let mut failures: Vec<Failure> = Vec::new();
    let mut rows = Vec::new();
    for scored in results.into_iter().flatten() {
        if failures.len() < KEPT_FAILURES {
            failures.extend(
                scored
                    .failures
                    .into_iter()
                    .take(KEPT_FAILURES - failures.len()),
            );
        }
        rows.extend(scored.rows);
    }
    let failed_rows = counts.failed.load(Ordering::Relaxed);
    if progress.is_cancelled() {
        return stopped(
            store,
            &run_id,
            JobState::Cancelled,
            "cancelled".into(),
            failures,
        );
    }
    if over {
        let message = format!(
            "{failed_rows} row(s) failed, more than error_threshold {}; the first: {}",
            plan.error_threshold.unwrap_or_default(),
            failures.first().map_or("", |f| f.error.as_str())
        );
        return stopped(store, &run_id, JobState::Failed, message, failures);
    }
    let metrics = [
        ("rows", total as f64),
        ("failed_rows", failed_rows as f64),
        ("scoring_seconds", seconds),
        ("rows_per_second", total as f64 / seconds.max(1e-9)),
    ];
    log_metrics(store, &run_id, &metrics)?;
    let output = match plan.output_action {
        OutputAction::SummaryOnly => None,
        OutputAction::AppendRow => {
            progress.start_stage("writing the predictions", 0);
            match write_output(store, found, &run_id, rows, &plan.output_file, version) {
                Ok(id) => Some(id),
                Err(e) => {
                    let message = format!("the predictions were not written: {e}");
                    return stopped(store, &run_id, JobState::Failed, message, failures);
                }
            }
        }
    };
    end_run(store, &run_id, "FINISHED")?;
    Ok(Ended::Completed {
        run_id,
        output,
        failures,
    })
}

/// The deployment's model version, loaded as the deployment runs it (in process, or in its
/// Python workers with its scoring script).
fn host(
    store: &Store,
    deployment: &BatchDeployment,
) -> Result<(crate::tracking::types::ModelVersion, Scorer)> {
    let tracking = store.tracking();
    let version = {
        let (n, v) = (
            deployment.model_name.clone(),
            deployment.model_version.clone(),
        );
        tracking.read(move |c| registry::get_version(c, &n, &v))?
    };
    let settings = deployment.spec.settings();
    let timeout = settings
        .retry_settings
        .as_ref()
        .and_then(|r| r.timeout)
        .unwrap_or(30);
    let hosting = Hosting {
        runtime: &deployment.runtime,
        instances: deployment.spec.instances(),
        variables: crate::endpoints::variables(&settings.environment_variables),
        timeout: Duration::from_secs(timeout),
        log: std::sync::Arc::new(|_line: &str| {}),
    };
    let scorer = Scorer::host(&tracking, &version, Some(&hosting)).map_err(|e| {
        Error::Endpoint(format!(
            "model {}:{} did not load: {e}",
            version.name, version.version
        ))
    })?;
    Ok((version, scorer))
}

fn stopped(
    store: &Store,
    run_id: &str,
    state: JobState,
    message: String,
    failures: Vec<Failure>,
) -> Result<Ended> {
    end_run(
        store,
        run_id,
        if state == JobState::Cancelled {
            "KILLED"
        } else {
            "FAILED"
        },
    )?;
    Ok(Ended::Stopped {
        state,
        message,
        run_id: Some(run_id.to_owned()),
        failures,
    })
}

/// Reads a job's input: a table version's rows, or every table file at a path.
fn read_source(store: &Store, input: &str) -> Result<Source> {
    let path = Path::new(input);
    if path.is_absolute() {
        let files = table_files(path)?;
        let read: Vec<(String, DataFrame)> = files
            .par_iter()
            .map(|file| {
                let format = TableFormat::from_path(file).unwrap_or(TableFormat::Csv);
                let name = file
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                crate::table::read(file, file, format).map(|df| (name, df))
            })
            .collect::<Result<_>>()?;
        return Ok(Source::Files(read));
    }
    let ws = store.workspace()?;
    let version = ws.resolve(&input.parse()?)?;
    Ok(Source::Table(crate::profile::load_table(&ws, &version)?))
}

/// The source split into mini batches: `size` rows of a table, or `size` files.
fn units(source: Source, size: usize) -> Vec<Vec<Piece>> {
    match source {
        Source::Table(df) => {
            let rows = df.height();
            (0..rows.div_ceil(size))
                .map(|k| {
                    vec![Piece {
                        rows: df.slice((k * size) as i64, size),
                        first_row: (k * size) as u64 + 1,
                        file: None,
                    }]
                })
                .collect()
        }
        Source::Files(files) => {
            let mut units = Vec::new();
            let mut files = files.into_iter().peekable();
            while files.peek().is_some() {
                units.push(
                    files
                        .by_ref()
                        .take(size)
                        .map(|(name, rows)| Piece {
                            rows,
                            first_row: 1,
                            file: Some(name),
                        })
                        .collect(),
                );
            }
            units
        }
    }
}

/// Scores a mini batch piece by piece; a piece that fails as a whole is tried again up to
/// `attempts` times (not when the data itself is refused), then reported once, all its rows
/// counted as failed and left out of the output.
fn score_unit(scorer: &Scorer, unit: &[Piece], attempts: u32) -> Scored {
    let mut scored = Scored {
        rows: Vec::with_capacity(unit.len()),
        failures: Vec::new(),
        failed_rows: 0,
    };
    for piece in unit {
        let mut answer = scorer.score_table(&piece.rows);
        let mut tries = 1;
        while tries < attempts
            && matches!(
                answer,
                Err(ScoreError::Model(_) | ScoreError::Unavailable(_) | ScoreError::Timeout(_))
            )
        {
            answer = scorer.score_table(&piece.rows);
            tries += 1;
        }
        let failure = |row: Option<u64>, error: String| Failure {
            file: piece.file.clone(),
            row,
            error,
        };
        match answer.and_then(|answers| joined(piece, answers)) {
            Ok((rows, failed)) => {
                scored.failed_rows += failed.len() as u64;
                scored.failures.extend(
                    failed
                        .into_iter()
                        .map(|(i, e)| failure(Some(piece.first_row + i as u64), e)),
                );
                scored.rows.push(rows);
            }
            Err(e) => {
                let count = piece.rows.height() as u64;
                scored.failed_rows += count;
                let error = match &piece.file {
                    Some(_) => e.to_string(),
                    None => format!(
                        "rows {}–{}: {e}",
                        piece.first_row,
                        piece.first_row + count.saturating_sub(1)
                    ),
                };
                scored.failures.push(failure(None, error));
            }
        }
    }
    scored
}

/// The scored pieces as one table. Files whose columns differ (in order, in which, or in
/// type) line up by name, in the order first seen: a column a file lacks is empty there, and
/// a value is read as the type its column first had (empty if it cannot be).
fn stack(pieces: Vec<DataFrame>) -> Result<DataFrame> {
    let mut schema: Vec<(PlSmallStr, DataType)> = Vec::new();
    for piece in &pieces {
        for column in piece.columns() {
            if !schema.iter().any(|(n, _)| n == column.name()) {
                schema.push((column.name().clone(), column.dtype().clone()));
            }
        }
    }
    let align = |piece: DataFrame| -> PolarsResult<DataFrame> {
        let height = piece.height();
        let columns = schema
            .iter()
            .map(|(name, dtype)| match piece.column(name) {
                Ok(c) if c.dtype() == dtype => Ok(c.clone()),
                Ok(c) => c.cast(dtype),
                Err(_) => Ok(Column::full_null(name.clone(), height, dtype)),
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        DataFrame::new(height, columns)
    };
    let mut table: Option<DataFrame> = None;
    for piece in pieces {
        let piece = align(piece).map_err(|e| Error::Endpoint(format!("the output: {e}")))?;
        match &mut table {
            None => table = Some(piece),
            Some(table) => {
                table
                    .vstack_mut_owned(piece)
                    .map_err(|e| Error::Endpoint(format!("the output: {e}")))?;
            }
        }
    }
    let mut table = table.unwrap_or_default();
    table.rechunk_mut();
    Ok(table)
}

fn file_column(file: &str, rows: usize) -> Column {
    Column::new_scalar(
        "file".into(),
        Scalar::new(DataType::String, AnyValue::StringOwned(file.into())),
        rows,
    )
}

/// A piece's rows with their answers beside them (an answer named like an input gets `_2`),
/// and its file first for an input of files.
fn joined(
    piece: &Piece,
    answers: TableScores,
) -> std::result::Result<(DataFrame, Vec<(usize, String)>), ScoreError> {
    let mut rows = piece.rows.clone();
    for column in answers.columns {
        let mut name = column.name().to_string();
        let mut n = 2;
        while rows.column(&name).is_ok() {
            name = format!("{}_{n}", column.name());
            n += 1;
        }
        rows.with_column(column.with_name(name.into()))
            .map_err(|e| ScoreError::Model(e.to_string()))?;
    }
    if let Some(file) = &piece.file {
        rows.insert_column(0, file_column(file, rows.height()))
            .map_err(|e| ScoreError::Model(e.to_string()))?;
    }
    Ok((rows, answers.failed))
}

/// Starts the job's run: its input and model as lineage, its settings as params.
fn start_run(
    store: &Store,
    found: &BatchJob,
    deployment: &BatchDeployment,
    version: &crate::tracking::types::ModelVersion,
    plan: &Plan,
) -> Result<String> {
    use crate::tracking::types::{Dataset, DatasetInput, Param, Tag};
    let tracking = store.tracking();
    let experiment_id = tracking.experiment_named(&format!("batch-{}", found.endpoint))?;
    let tag = |key: &str, value: String| Tag {
        key: key.to_owned(),
        value,
    };
    let run = tracking.create_run(crate::tracking::runs::NewRun {
        experiment_id,
        user_id: crate::promotion::current_user(),
        start_time: Some(crate::db::now_millis()),
        run_name: Some(format!("{}-job-{}", found.endpoint, found.id)),
        tags: vec![
            tag("lathe.batch.endpoint", found.endpoint.clone()),
            tag("lathe.batch.deployment", found.deployment.clone()),
            tag("lathe.batch.job", found.id.to_string()),
            tag(
                "lathe.model",
                format!("{}:{}", version.name, version.version),
            ),
        ],
    })?;
    let run_id = run.info.run_id;
    let path = Path::new(&found.input);
    let dataset = if path.is_absolute() {
        Dataset {
            name: path
                .file_name()
                .map_or_else(|| found.input.clone(), |n| n.to_string_lossy().into_owned()),
            digest: blake3::hash(found.input.as_bytes()).to_hex()[..16].to_owned(),
            source_type: "local".to_owned(),
            source: found.input.clone(),
            schema: None,
            profile: None,
        }
    } else {
        let (name, number) = found.input.rsplit_once(':').unwrap_or((&found.input, ""));
        Dataset {
            name: name.to_owned(),
            digest: format!("{name}-{number}"),
            source_type: "lathe".to_owned(),
            source: found.input.clone(),
            schema: None,
            profile: None,
        }
    };
    tracking.log_inputs(
        &run_id,
        vec![DatasetInput {
            tags: vec![tag("mlflow.data.context", "input".to_owned())],
            dataset,
        }],
    )?;
    if let Some(model_id) = version.model_id.clone() {
        let id = run_id.clone();
        tracking.write(move |c| {
            crate::tracking::logged_models::log_model_inputs(
                c,
                &id,
                &[crate::tracking::types::ModelInput { model_id }],
            )
        })?;
    }
    let param = |key: &str, value: String| Param {
        key: key.to_owned(),
        value,
    };
    tracking.log_batch(
        &run_id,
        crate::tracking::runs::Batch {
            params: vec![
                param("mini_batch_size", plan.mini_batch.to_string()),
                param("concurrency", plan.threads.to_string()),
                param(
                    "error_threshold",
                    plan.error_threshold
                        .map_or_else(|| "-1".to_owned(), |t| t.to_string()),
                ),
                param("deployment", deployment.spec.name.clone()),
            ],
            ..Default::default()
        },
    )?;
    Ok(run_id)
}

fn log_metrics(store: &Store, run_id: &str, values: &[(&str, f64)]) -> Result<()> {
    let now = crate::db::now_millis();
    let metrics = values
        .iter()
        .map(|(key, value)| crate::tracking::types::Metric {
            key: (*key).to_owned(),
            value: *value,
            timestamp: now,
            step: 0,
            ..Default::default()
        })
        .collect();
    store.tracking().log_batch(
        run_id,
        crate::tracking::runs::Batch {
            metrics,
            ..Default::default()
        },
    )?;
    Ok(())
}

fn end_run(store: &Store, run_id: &str, status: &str) -> Result<()> {
    store.tracking().update_run(
        run_id,
        crate::tracking::runs::RunUpdate {
            status: status.parse().ok(),
            end_time: Some(crate::db::now_millis()),
            run_name: None,
        },
    )?;
    Ok(())
}

/// Writes the scored rows as `file` (Parquet for `.parquet`, else CSV) and records them as a
/// new version of the job's output asset, tagged on the run.
fn write_output(
    store: &Store,
    found: &BatchJob,
    run_id: &str,
    rows: Vec<DataFrame>,
    file: &str,
    version: &crate::tracking::types::ModelVersion,
) -> Result<i64> {
    let mut table = stack(rows)?;
    let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let path = dir.path().join(file);
    let format = match TableFormat::from_path(&path) {
        Some(TableFormat::Parquet) => TableFormat::Parquet,
        _ => TableFormat::Csv,
    };
    crate::table::write(&mut table, &path, format)?;
    let mut ws = store.workspace()?;
    let outcome = crate::import::import(
        &mut ws,
        &crate::import::ImportRequest {
            path,
            name: found.output.clone(),
            kind: Some(AssetKind::Table),
            text_column: None,
            source_label: Some(format!(
                "batch job {} of {} ({}), model {}:{}, input {}",
                found.id,
                found.endpoint,
                found.deployment,
                version.name,
                version.version,
                found.input
            )),
        },
        &Progress::default(),
    )?;
    store.tracking().set_run_tag(
        run_id,
        "lathe.output.predictions",
        &outcome.version.reference(),
    )?;
    Ok(outcome.version.id)
}
