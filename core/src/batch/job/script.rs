//! Batch scoring scripts: a model deployment's `code_configuration`, run as Azure ML's batch
//! endpoints run it. The script's `init()` runs once in each of the deployment's Python
//! workers, then `run(mini_batch)` once per mini batch: a list of file paths for an input of
//! files (a folder, or an image or text asset's files), or a pandas DataFrame of a table's
//! rows (a table asset). Each element `run()` returns — a value, or a DataFrame's row — is a
//! row of the job's output table (a DataFrame's columns, or one column `result`). A mini batch
//! whose `run()` raises is tried again (`retry_settings`), then all its items count as failed
//! against `error_threshold`, named with the script's error line.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use polars::prelude::*;
use serde_json::Value;

use super::{
    BatchJob, Counts, Ended, Ending, Failure, JobState, Plan, Scored, finish, host, score_all,
    start_run, stopped,
};
use crate::assets::AssetKind;
use crate::batch::BatchDeployment;
use crate::jobs::Progress;
use crate::serving::python::{Op, WorkerError};
use crate::store::Store;
use crate::{Error, Result};

/// What a scoring script's mini batches are made of.
enum Items {
    /// Files, each with the name it is reported by.
    Files(Vec<(String, PathBuf)>),
    Table(DataFrame),
}

impl Items {
    fn len(&self) -> usize {
        match self {
            Self::Files(files) => files.len(),
            Self::Table(df) => df.height(),
        }
    }
}

/// One mini batch: its items, where they start (rows count from 1) and its files' names.
struct Unit {
    files: Vec<(String, PathBuf)>,
    rows: Option<DataFrame>,
    first: u64,
}

impl Unit {
    fn len(&self) -> u64 {
        self.rows
            .as_ref()
            .map_or(self.files.len(), DataFrame::height) as u64
    }

    /// What the failure of the whole mini batch names.
    fn place(&self) -> String {
        match &self.rows {
            Some(_) => format!("rows {}–{}", self.first, self.first + self.len() - 1),
            None => self
                .files
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Runs job `found` through `deployment`'s scoring script (see the module).
///
/// # Errors
/// The input cannot be read, the workers do not start, the store refuses a write.
pub(super) fn execute(
    store: &Store,
    found: &BatchJob,
    deployment: &BatchDeployment,
    progress: &Progress,
    counts: &Counts,
) -> Result<Ended> {
    progress.start_stage("reading the input", 0);
    let staging = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let items = items(store, &found.input, staging.path())?;
    progress.start_stage("starting the scoring script", 0);
    let (version, scorer) = host(store, deployment)?;
    let python = scorer
        .python()
        .ok_or_else(|| Error::Endpoint("the scoring script runs in no Python worker".into()))?;
    let plan = Plan::of(deployment, matches!(items, Items::Files(_)), true);
    let run_id = start_run(store, found, deployment, &version, &plan)?;
    let total = items.len() as u64;
    counts.total.store(total, Ordering::Relaxed);
    progress.start_stage("scoring", total);
    if total == 0 {
        return stopped(
            store,
            &run_id,
            JobState::Failed,
            "the input holds nothing to score".into(),
            Vec::new(),
        );
    }
    let units = units(items, plan.mini_batch);
    let started = Instant::now();
    let (results, over) = score_all(&units, &plan, progress, counts, |unit| {
        let scored = match run(python, unit, plan.attempts, staging.path()) {
            Ok(rows) => Scored {
                rows: vec![rows],
                failures: Vec::new(),
                failed_rows: 0,
            },
            Err(error) => Scored {
                rows: Vec::new(),
                failures: vec![Failure {
                    file: None,
                    row: None,
                    error: format!("{}: {error}", unit.place()),
                }],
                failed_rows: unit.len(),
            },
        };
        (scored, unit.len())
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

/// The job's input as items: every file under a folder (or the one file), a table asset's
/// rows, or an image or text asset's files (put under `staging` with their names).
fn items(store: &Store, input: &str, staging: &std::path::Path) -> Result<Items> {
    let path = std::path::Path::new(input);
    if path.is_absolute() {
        let files = if path.is_file() {
            vec![(String::new(), path.to_path_buf())]
        } else {
            crate::files::tree(path)?
        };
        return Ok(Items::Files(
            files
                .into_iter()
                .map(|(name, file)| {
                    let name = if name.is_empty() {
                        file.file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                    } else {
                        name
                    };
                    (name, file)
                })
                .collect(),
        ));
    }
    let ws = store.workspace()?;
    let version = ws.resolve(&input.parse()?)?;
    if version.kind == AssetKind::Table {
        return Ok(Items::Table(crate::profile::load_table(&ws, &version)?));
    }
    let listing: Vec<(String, String)> = ws
        .version_files(version.id)?
        .into_iter()
        .map(|f| (f.path, f.blob_hash))
        .collect();
    let dir = staging.join("input");
    crate::files::unpack_tree(ws.blobs(), &listing, &dir)?;
    Ok(Items::Files(
        listing
            .into_iter()
            .map(|(name, _)| {
                let file = dir.join(&name);
                (name, file)
            })
            .collect(),
    ))
}

/// The items in mini batches of `size`.
fn units(items: Items, size: usize) -> Vec<Unit> {
    match items {
        Items::Files(files) => files
            .chunks(size)
            .map(|chunk| Unit {
                files: chunk.to_vec(),
                rows: None,
                first: 1,
            })
            .collect(),
        Items::Table(df) => (0..df.height().div_ceil(size))
            .map(|k| Unit {
                files: Vec::new(),
                rows: Some(df.slice((k * size) as i64, size)),
                first: (k * size) as u64 + 1,
            })
            .collect(),
    }
}

/// Runs the script over `unit` (a table's rows go as a CSV file under `staging`), trying again
/// up to `attempts` times when it raises or its worker stops; its answer as rows.
fn run(
    python: &crate::serving::PythonModel,
    unit: &Unit,
    attempts: u32,
    staging: &std::path::Path,
) -> std::result::Result<DataFrame, String> {
    let _csv;
    let body = match &unit.rows {
        Some(rows) => {
            let file = tempfile::Builder::new()
                .suffix(".csv")
                .tempfile_in(staging)
                .map_err(|e| e.to_string())?;
            crate::table::write(
                &mut rows.clone(),
                file.path(),
                crate::table::TableFormat::Csv,
            )
            .map_err(|e| e.to_string())?;
            let body = serde_json::json!({ "table": file.path() });
            _csv = file;
            body
        }
        None => {
            let paths: Vec<&PathBuf> = unit.files.iter().map(|(_, p)| p).collect();
            serde_json::json!({ "files": paths })
        }
    };
    let body = body.to_string().into_bytes();
    let mut last = String::new();
    for _ in 0..attempts.max(1) {
        match python.call(Op::Batch, "application/json", body.clone()) {
            Ok(reply) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body)
                    .map_err(|e| format!("the worker's answer is not JSON: {e}"))?;
                return rows_of(answer["rows"].as_array().map_or(&[][..], Vec::as_slice));
            }
            Ok(reply) => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                last = answer["error"].as_str().map_or_else(
                    || String::from_utf8_lossy(&reply.body).into_owned(),
                    str::to_owned,
                );
            }
            Err(WorkerError::Unavailable(e) | WorkerError::Timeout(e)) => last = e,
        }
    }
    Err(last)
}

/// What `run()` returned as a table: objects (a DataFrame's rows) by their keys, anything
/// else as one column `result`.
fn rows_of(values: &[Value]) -> std::result::Result<DataFrame, String> {
    let columns: Vec<Column> = if !values.is_empty() && values.iter().all(Value::is_object) {
        let mut names: Vec<&String> = Vec::new();
        for value in values {
            for name in value.as_object().into_iter().flat_map(|o| o.keys()) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
            .iter()
            .map(|name| {
                let cells: Vec<Option<&Value>> =
                    values.iter().map(|v| v.get(name.as_str())).collect();
                crate::collection::column(name, &cells)
            })
            .collect()
    } else {
        let cells: Vec<Option<&Value>> = values.iter().map(Some).collect();
        vec![crate::collection::column("result", &cells)]
    };
    DataFrame::new(values.len(), columns).map_err(|e| e.to_string())
}
