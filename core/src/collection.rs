//! Data collection for online deployments (Azure ML's `data_collector`): a sample of the
//! requests a deployment answers — each row's inputs and the model's outputs, with the request
//! id, the time and the latency — kept so monitors can compare production with training and
//! ground truth can be joined later by request id.
//!
//! The request path only offers a sample to a bounded in-memory [`Buffer`] (a full buffer
//! drops and counts, never waits). The serving process flushes buffers every few seconds into
//! Parquet parts in the blob store, one index row each (migration 14: `collected_parts`); once
//! a rolling window (an hour unless `rolling_rate` says otherwise) has passed, its parts become
//! one version of the data assets `<endpoint>-<deployment>-model_inputs` and `…-model_outputs`.
//!
//! Columns: `request_id`, `row` (within the request), `timestamp_ms` (UTC, when the answer
//! left), `latency_ms`, then the inputs as the caller named them (numbers as Float64, booleans
//! as Boolean, anything else as its text; a tensor model's tensors by rows, see
//! `serving::tensors::row_frame`) — or, for outputs, `prediction`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use polars::prelude::*;
use rusqlite::params;
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;

mod retention;

pub use retention::{Limits, Removed, enforce, limits, set_limits};

use crate::serving::Frame;
use crate::store::Store;
use crate::{Error, Result};

/// The one input column a scoring script's request is collected in, whole (its shape is the
/// script's own).
pub const SCRIPT_REQUEST: &str = "request";

/// Rows a deployment's buffer holds between flushes; past it samples are dropped and counted.
pub const BUFFER_ROWS: usize = 200_000;

/// What a deployment's `data_collector` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorSpec {
    /// The share of requests collected, 0 to 1 (Azure's `sampling_rate`, default 1).
    pub sampling_rate: f64,
    /// How long each collected version spans, in milliseconds (Azure's `rolling_rate`:
    /// `minute`, `hour` (the default) or `day`).
    pub window_ms: i64,
    pub inputs: bool,
    pub outputs: bool,
}

/// Reads a deployment's `data_collector`. `None` when it collects nothing.
///
/// # Errors
/// A sampling rate outside 0–1, an unknown rolling rate or collection, each named by its
/// field.
pub fn spec(collector: Option<&Yaml>) -> Result<Option<CollectorSpec>> {
    let Some(collector) = collector else {
        return Ok(None);
    };
    let bad = |m: String| Error::Endpoint(format!("deployment: data_collector.{m}"));
    let sampling_rate = match collector.get("sampling_rate") {
        None => 1.0,
        Some(v) => v
            .as_f64()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| bad(format!("sampling_rate: {v:?} is not a number from 0 to 1")))?,
    };
    let window_ms = match collector.get("rolling_rate").and_then(Yaml::as_str) {
        None => 3_600_000,
        Some(r) => match r.to_ascii_lowercase().as_str() {
            "minute" => 60_000,
            "hour" => 3_600_000,
            "day" => 86_400_000,
            _ => {
                return Err(bad(format!(
                    "rolling_rate: '{r}' is not minute, hour or day"
                )));
            }
        },
    };
    let enabled = |name: &str| {
        collector
            .get("collections")
            .and_then(|c| c.get(name))
            .and_then(|c| c.get("enabled"))
            .is_some_and(|e| match e {
                Yaml::Bool(b) => *b,
                Yaml::String(s) => s.eq_ignore_ascii_case("true"),
                _ => false,
            })
    };
    if let Some(Yaml::Mapping(collections)) = collector.get("collections") {
        for key in collections.keys().filter_map(Yaml::as_str) {
            if !matches!(
                key,
                "model_inputs" | "model_outputs" | "model_inputs_outputs" | "request" | "response"
            ) {
                return Err(bad(format!(
                    "collections.{key}: not a collection Azure names"
                )));
            }
        }
    }
    let both = enabled("model_inputs_outputs");
    let (inputs, outputs) = (
        enabled("model_inputs") || both,
        enabled("model_outputs") || both,
    );
    if !inputs && !outputs {
        return Ok(None);
    }
    Ok(Some(CollectorSpec {
        sampling_rate,
        window_ms,
        inputs,
        outputs,
    }))
}

/// One collected request.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub request_id: String,
    pub at_ms: i64,
    pub latency_ms: f64,
    pub inputs: Frame,
    /// One value per row.
    pub outputs: Vec<Value>,
}

/// A sample as a buffer keeps it until the flush: in three allocations, its column names
/// shared with the buffer when they are the ones it has (a busy deployment buffers a few
/// hundred thousand requests between flushes; fresh memory for each request's names and
/// per-column vectors cost more than the rest of collection).
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    request_id: String,
    at_ms: i64,
    latency_ms: f64,
    /// `None`: the buffer's names.
    names: Option<Vec<String>>,
    rows: usize,
    /// The inputs column after column, `rows` values each.
    values: Vec<Value>,
    outputs: Vec<Value>,
}

impl Kept {
    fn new(sample: Sample, shared: &[String]) -> (Self, Option<Vec<String>>) {
        let Sample {
            request_id,
            at_ms,
            latency_ms,
            inputs,
            outputs,
        } = sample;
        let Frame {
            names,
            columns,
            rows,
        } = inputs;
        let values = columns.into_iter().flatten().collect();
        let (names, spare) = if names == shared {
            (None, Some(names))
        } else {
            (Some(names), None)
        };
        let kept = Self {
            request_id,
            at_ms,
            latency_ms,
            names,
            rows,
            values,
            outputs,
        };
        (kept, spare)
    }

    fn names<'a>(&'a self, shared: &'a [String]) -> &'a [String] {
        self.names.as_deref().unwrap_or(shared)
    }

    /// Input column `j`'s values.
    fn column(&self, j: usize) -> &[Value] {
        self.values
            .get(j * self.rows..(j + 1) * self.rows)
            .unwrap_or_default()
    }
}

/// What a buffer held: its samples, the names they share, and the requests it dropped.
#[derive(Debug, Default)]
pub struct Taken {
    pub kept: Vec<Kept>,
    pub names: Vec<String>,
    pub dropped: u64,
}

/// A deployment's samples between flushes, bounded by [`BUFFER_ROWS`].
#[derive(Debug, Default)]
pub struct Buffer {
    held: Mutex<(Vec<String>, Vec<Kept>)>,
    rows: AtomicUsize,
    dropped: AtomicU64,
}

impl Buffer {
    /// Keeps `sample` unless the buffer is full (then it is counted as dropped).
    pub fn offer(&self, sample: Sample) {
        let rows = sample.inputs.rows.max(sample.outputs.len()).max(1);
        if self.rows.fetch_add(rows, Ordering::Relaxed) + rows > BUFFER_ROWS {
            self.rows.fetch_sub(rows, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // The names a sample shares are freed after the lock is let go.
        let _spare = match self.held.lock() {
            Ok(mut held) => {
                if held.0.is_empty() {
                    held.0 = sample.inputs.names.clone();
                }
                let (kept, spare) = Kept::new(sample, &held.0);
                held.1.push(kept);
                spare
            }
            Err(_) => None,
        };
    }

    /// Everything buffered, and the requests dropped since the last take.
    pub fn take(&self) -> Taken {
        let (names, kept) = self
            .held
            .lock()
            .map(|mut held| (held.0.clone(), std::mem::take(&mut held.1)))
            .unwrap_or_default();
        self.rows.store(0, Ordering::Relaxed);
        Taken {
            kept,
            names,
            dropped: self.dropped.swap(0, Ordering::Relaxed),
        }
    }
}

/// A column of JSON values as polars keeps it: numbers as Float64, booleans as Boolean,
/// anything else as text; missing values null.
pub(crate) fn column(name: &str, values: &[Option<&Value>]) -> Column {
    let present = || values.iter().flatten().filter(|v| !v.is_null());
    if present().all(|v| v.is_number()) {
        let data: Vec<Option<f64>> = values.iter().map(|v| v.and_then(Value::as_f64)).collect();
        return Column::new(name.into(), data);
    }
    if present().all(|v| v.is_boolean()) {
        let data: Vec<Option<bool>> = values.iter().map(|v| v.and_then(Value::as_bool)).collect();
        return Column::new(name.into(), data);
    }
    let data: Vec<Option<String>> = values
        .iter()
        .map(|v| {
            v.filter(|v| !v.is_null()).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
        .collect();
    Column::new(name.into(), data)
}

/// The inputs or the outputs of `samples` as one table (see the module's columns); `shared`
/// are the names of samples that keep none of their own.
fn table(samples: &[&Kept], inputs: bool, shared: &[String]) -> Result<DataFrame> {
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    let mut times = Vec::new();
    let mut latencies = Vec::new();
    let mut names: Vec<&String> = Vec::new();
    for s in samples {
        let n = if inputs { s.rows } else { s.outputs.len() };
        for row in 0..n {
            ids.push(s.request_id.as_str());
            rows.push(row as u32);
            times.push(s.at_ms);
            latencies.push(s.latency_ms);
        }
        if inputs {
            for name in s.names(shared) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    let mut columns = vec![
        Column::new("request_id".into(), ids),
        Column::new("row".into(), rows),
        Column::new("timestamp_ms".into(), times),
        Column::new("latency_ms".into(), latencies),
    ];
    if inputs {
        for name in &names {
            let values: Vec<Option<&Value>> = samples
                .iter()
                .flat_map(|s| {
                    let found = s.names(shared).iter().position(|n| n == *name);
                    (0..s.rows).map(move |row| found.map(|j| &s.column(j)[row]))
                })
                .collect();
            columns.push(column(name, &values));
        }
    } else {
        let values: Vec<Option<&Value>> = samples
            .iter()
            .flat_map(|s| s.outputs.iter().map(Some))
            .collect();
        columns.push(column("prediction", &values));
    }
    let height = columns.first().map_or(0, Column::len);
    DataFrame::new(height, columns).map_err(|e| Error::Endpoint(format!("collected data: {e}")))
}

fn parquet(df: &mut DataFrame, compression: ParquetCompression) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .with_compression(compression)
        .finish(df)
        .map_err(|e| Error::Endpoint(format!("collected data: {e}")))?;
    Ok(bytes)
}

/// Writes `samples` as Parquet parts, one per kind and window, and indexes them.
///
/// # Errors
/// A part that cannot be written or recorded.
pub fn flush(
    store: &Store,
    endpoint: &str,
    deployment: &str,
    spec: &CollectorSpec,
    samples: &[Sample],
) -> Result<()> {
    let taken = Taken {
        kept: samples
            .iter()
            .map(|s| Kept::new(s.clone(), &[]).0)
            .collect(),
        ..Taken::default()
    };
    flush_taken(store, endpoint, deployment, spec, &taken)
}

/// As [`flush`], for what a [`Buffer`] held.
///
/// # Errors
/// A part that cannot be written or recorded.
pub fn flush_taken(
    store: &Store,
    endpoint: &str,
    deployment: &str,
    spec: &CollectorSpec,
    taken: &Taken,
) -> Result<()> {
    let mut windows: std::collections::BTreeMap<i64, Vec<&Kept>> = Default::default();
    for s in &taken.kept {
        let start = s.at_ms - s.at_ms.rem_euclid(spec.window_ms);
        windows.entry(start).or_default().push(s);
    }
    let mut parts = Vec::new();
    for (start, samples) in windows {
        for (kind, wanted) in [
            ("model_inputs", spec.inputs),
            ("model_outputs", spec.outputs),
        ] {
            if !wanted {
                continue;
            }
            let mut df = table(&samples, kind == "model_inputs", &taken.names)?;
            if df.height() == 0 {
                continue;
            }
            // Parts are short-lived (joined when their window is sealed): fast compression.
            let put = store
                .blobs()
                .put_bytes(&parquet(&mut df, ParquetCompression::Lz4Raw)?)?;
            let first = samples.iter().map(|s| s.at_ms).min().unwrap_or(start);
            let last = samples.iter().map(|s| s.at_ms).max().unwrap_or(start);
            parts.push((kind, start, first, last, df.height() as i64, put));
        }
    }
    index_parts(store, endpoint, deployment, spec.window_ms, parts)
}

/// A written part: its kind, window start, first and last request times, rows and blob.
type Part = (&'static str, i64, i64, i64, i64, crate::blobs::PutBlob);

/// Records written parts in `collected_parts`, in one transaction.
fn index_parts(
    store: &Store,
    endpoint: &str,
    deployment: &str,
    window: i64,
    parts: Vec<Part>,
) -> Result<()> {
    let (endpoint, deployment) = (endpoint.to_owned(), deployment.to_owned());
    store.transaction::<_, Error>(move |c| {
        for (kind, start, first, last, rows, put) in &parts {
            c.execute(
                "INSERT OR IGNORE INTO blobs (hash, size_bytes, created_at) VALUES (?1, ?2, ?3)",
                params![put.hash, put.size_bytes as i64, crate::db::now_secs()],
            )?;
            c.execute(
                "INSERT INTO collected_parts (endpoint, deployment, kind, window_start_ms,
                     window_ms, first_ms, last_ms, rows, blob_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    endpoint, deployment, kind, start, window, first, last, rows, put.hash
                ],
            )?;
        }
        Ok(())
    })
}

/// Records rows collected elsewhere (a table with collection's columns: `request_id`, `row`,
/// `timestamp_ms`, `latency_ms`, then the inputs or `prediction`) as one part of `kind`
/// (`model_inputs` or `model_outputs`) in the window of `window_ms` starting at
/// `window_start_ms`, as if the deployment had collected them.
///
/// # Errors
/// The table lacks `timestamp_ms`; the part cannot be written or recorded.
pub fn add_part(
    store: &Store,
    endpoint: &str,
    deployment: &str,
    kind: &'static str,
    (window_start_ms, window_ms): (i64, i64),
    df: &mut DataFrame,
) -> Result<()> {
    let times = df
        .column("timestamp_ms")
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(|e| Error::Endpoint(format!("collected data: {e}")))?;
    let times = times
        .i64()
        .map_err(|e| Error::Endpoint(format!("collected data: {e}")))?;
    let (first, last) = (
        times.min().unwrap_or(window_start_ms),
        times.max().unwrap_or(window_start_ms),
    );
    let put = store
        .blobs()
        .put_bytes(&parquet(df, ParquetCompression::Lz4Raw)?)?;
    let rows = df.height() as i64;
    index_parts(
        store,
        endpoint,
        deployment,
        window_ms,
        vec![(kind, window_start_ms, first, last, rows, put)],
    )
}

/// A window of collected data: its parts so far, and its asset version once sealed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Window {
    pub endpoint: String,
    pub deployment: String,
    pub kind: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub parts: i64,
    pub rows: i64,
    /// `name:version` of the data asset version it became.
    pub asset: Option<String>,
}

/// The collected windows of `endpoint` (every endpoint when `None`), newest first.
///
/// # Errors
/// The store cannot be read.
pub fn windows(store: &Store, endpoint: Option<&str>) -> Result<Vec<Window>> {
    let endpoint = endpoint.map(str::to_owned);
    store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT p.endpoint, p.deployment, p.kind, p.window_start_ms, p.window_ms, COUNT(*),
                 SUM(p.rows), a.name || ':' || v.version
             FROM collected_parts p
             LEFT JOIN asset_versions v ON v.id = p.asset_version_id
             LEFT JOIN assets a ON a.id = v.asset_id
             WHERE ?1 IS NULL OR p.endpoint = ?1
             GROUP BY p.endpoint, p.deployment, p.kind, p.window_start_ms
             ORDER BY p.window_start_ms DESC, p.deployment, p.kind",
        )?;
        let rows = stmt.query_map([&endpoint], |r| {
            let start: i64 = r.get(3)?;
            Ok(Window {
                endpoint: r.get(0)?,
                deployment: r.get(1)?,
                kind: r.get(2)?,
                start_ms: start,
                end_ms: start + r.get::<_, i64>(4)?,
                parts: r.get(5)?,
                rows: r.get(6)?,
                asset: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })
}

/// Makes every window that ended before `now_ms` a version of its data asset
/// (`<endpoint>-<deployment>-<kind>`), its parts joined in time order; returns the versions
/// made (`name:version`).
///
/// # Errors
/// A part that cannot be read, a version that cannot be recorded.
pub fn seal(store: &Store, now_ms: i64) -> Result<Vec<String>> {
    let due: Vec<(String, String, String, i64, i64)> = store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT DISTINCT endpoint, deployment, kind, window_start_ms, window_ms
             FROM collected_parts
             WHERE asset_version_id IS NULL AND window_start_ms + window_ms <= ?1",
        )?;
        let rows = stmt.query_map([now_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    let mut made = Vec::new();
    for (endpoint, deployment, kind, start, window) in due {
        let key = (endpoint.clone(), deployment.clone(), kind.clone(), start);
        let hashes: Vec<String> = store.read::<_, Error>(move |c| {
            let mut stmt = c.prepare(
                "SELECT blob_hash FROM collected_parts
                 WHERE endpoint = ?1 AND deployment = ?2 AND kind = ?3 AND window_start_ms = ?4
                     AND asset_version_id IS NULL
                 ORDER BY first_ms, id",
            )?;
            let rows = stmt.query_map(params![key.0, key.1, key.2, key.3], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let mut table = joined(store, &hashes)?;
        let dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let file = dir.path().join(format!("{kind}.parquet"));
        std::fs::write(&file, parquet(&mut table, ParquetCompression::default())?)
            .map_err(|e| Error::io(&file, e))?;
        let name = format!("{endpoint}-{deployment}-{kind}");
        let mut ws = store.workspace()?;
        let outcome = crate::import::import(
            &mut ws,
            &crate::import::ImportRequest {
                path: file,
                name: name.clone(),
                kind: Some(crate::assets::AssetKind::Table),
                text_column: None,
                source_label: Some(format!(
                    "collected by endpoint {endpoint}, deployment {deployment}, {} to {}",
                    crate::format::timestamp(start / 1000),
                    crate::format::timestamp((start + window) / 1000)
                )),
            },
            &crate::jobs::Progress::default(),
        )?;
        let id = outcome.version.id;
        let (e, d, k) = (endpoint.clone(), deployment.clone(), kind.clone());
        store.transaction::<_, Error>(move |c| {
            c.execute(
                "UPDATE collected_parts SET asset_version_id = ?5
                 WHERE endpoint = ?1 AND deployment = ?2 AND kind = ?3 AND window_start_ms = ?4
                     AND asset_version_id IS NULL",
                params![e, d, k, start, id],
            )?;
            Ok(())
        })?;
        made.push(format!("{name}:{}", outcome.version.version));
    }
    Ok(made)
}

/// A collected request: its rows (the inputs as named columns), what was answered for each
/// row, and how long the answer took.
#[derive(Debug, Clone, PartialEq)]
pub struct Collected {
    pub request_id: String,
    pub inputs: Frame,
    pub outputs: Vec<Value>,
    pub latency_ms: f64,
}

/// The newest `limit` requests `deployment` of `endpoint` collected with both their inputs and
/// outputs, oldest first.
///
/// # Errors
/// A part that cannot be read.
pub fn collected(
    store: &Store,
    endpoint: &str,
    deployment: &str,
    limit: usize,
) -> Result<Vec<Collected>> {
    // The newest parts holding at least `limit` rows (a request has one row or more), read
    // oldest first: a replay reads what it sends, not everything ever collected.
    let hashes = |kind: &'static str| {
        let (e, d) = (endpoint.to_owned(), deployment.to_owned());
        store.read::<_, Error>(move |c| {
            let mut stmt = c.prepare(
                "SELECT blob_hash, rows FROM collected_parts
                 WHERE endpoint = ?1 AND deployment = ?2 AND kind = ?3
                 ORDER BY first_ms DESC, id DESC",
            )?;
            let mut newest = Vec::new();
            let mut rows = 0;
            for part in stmt.query_map(params![e, d, kind], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })? {
                let (hash, n) = part?;
                newest.push(hash);
                rows += usize::try_from(n).unwrap_or(0);
                if rows >= limit {
                    break;
                }
            }
            newest.reverse();
            Ok(newest)
        })
    };
    let inputs = joined(store, &hashes("model_inputs")?)?;
    let outputs = joined(store, &hashes("model_outputs")?)?;
    let text = |df: &DataFrame, name: &str, i: usize| -> Option<String> {
        crate::table::cell_text(&df.column(name).ok()?.get(i).ok()?)
    };
    let mut answered: std::collections::HashMap<(String, String), Value> = Default::default();
    for i in 0..outputs.height() {
        if let (Some(id), Some(row), Ok(column)) = (
            text(&outputs, "request_id", i),
            text(&outputs, "row", i),
            outputs.column("prediction"),
        ) {
            answered.insert((id, row), json_cell(column, i));
        }
    }
    let features: Vec<&Column> = inputs
        .columns()
        .iter()
        .filter(|c| {
            !matches!(
                c.name().as_str(),
                "request_id" | "row" | "timestamp_ms" | "latency_ms"
            )
        })
        .collect();
    let mut out: Vec<Collected> = Vec::new();
    for i in 0..inputs.height() {
        let (Some(id), Some(row)) = (text(&inputs, "request_id", i), text(&inputs, "row", i))
        else {
            continue;
        };
        let Some(answer) = answered.get(&(id.clone(), row)) else {
            continue;
        };
        let latency = inputs
            .column("latency_ms")
            .ok()
            .and_then(|c| c.get(i).ok())
            .and_then(|v| v.extract::<f64>())
            .unwrap_or(f64::NAN);
        if out.last().is_none_or(|last| last.request_id != id) {
            let mut frame = Frame::default();
            for c in &features {
                frame
                    .push(c.name().to_string(), Vec::new())
                    .map_err(|e| Error::Endpoint(format!("collected data: {e}")))?;
            }
            out.push(Collected {
                request_id: id,
                inputs: frame,
                outputs: Vec::new(),
                latency_ms: latency,
            });
        }
        let Some(last) = out.last_mut() else {
            continue;
        };
        for (column, c) in last.inputs.columns.iter_mut().zip(&features) {
            column.push(json_cell(c, i));
        }
        last.inputs.rows += 1;
        last.outputs.push(answer.clone());
    }
    let skip = out.len().saturating_sub(limit);
    Ok(out.split_off(skip))
}

/// A cell as JSON: numbers, booleans and text as themselves, a missing value as null.
pub(crate) fn json_cell(column: &Column, i: usize) -> Value {
    match column.get(i) {
        Ok(AnyValue::Null) | Err(_) => Value::Null,
        Ok(AnyValue::Boolean(b)) => Value::Bool(b),
        Ok(AnyValue::Float64(x)) => serde_json::json!(x),
        Ok(AnyValue::Float32(x)) => serde_json::json!(x),
        Ok(AnyValue::Int64(x)) => serde_json::json!(x),
        Ok(AnyValue::Int32(x)) => serde_json::json!(x),
        Ok(AnyValue::UInt32(x)) => serde_json::json!(x),
        Ok(other) => crate::table::cell_text(&other).map_or(Value::Null, Value::String),
    }
}

/// The parts `hashes` as one table: columns in order of first appearance, a column a part
/// lacks filled with nulls.
fn joined(store: &Store, hashes: &[String]) -> Result<DataFrame> {
    let mut frames = Vec::new();
    for hash in hashes {
        let path = store.blobs().path(hash);
        frames.push(crate::table::read(
            &path,
            &path,
            crate::table::TableFormat::Parquet,
        )?);
    }
    let mut names: Vec<(PlSmallStr, DataType)> = Vec::new();
    for df in &frames {
        for c in df.columns() {
            if !names.iter().any(|(n, _)| n == c.name()) {
                names.push((c.name().clone(), c.dtype().clone()));
            }
        }
    }
    let mut out: Option<DataFrame> = None;
    for df in frames {
        let height = df.height();
        let columns: Vec<Column> = names
            .iter()
            .map(|(name, dtype)| {
                df.column(name)
                    .cloned()
                    .unwrap_or_else(|_| Column::full_null(name.clone(), height, dtype))
            })
            .collect();
        let df = DataFrame::new(height, columns)
            .map_err(|e| Error::Endpoint(format!("collected data: {e}")))?;
        out = Some(match out {
            None => df,
            Some(mut all) => {
                all.vstack_mut(&df)
                    .map_err(|e| Error::Endpoint(format!("collected data: {e}")))?;
                all
            }
        });
    }
    Ok(out.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Yaml {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn azures_collector_yaml_reads_with_its_defaults_and_bad_fields_are_named() {
        // As the corpus' monitoring deployment writes it: enabled as text.
        let corpus = yaml(
            "collections:\n  model_inputs:\n    enabled: 'true'\n  model_outputs:\n    enabled: 'True'\n",
        );
        assert_eq!(
            spec(Some(&corpus)).unwrap(),
            Some(CollectorSpec {
                sampling_rate: 1.0,
                window_ms: 3_600_000,
                inputs: true,
                outputs: true
            })
        );
        let some = yaml(
            "sampling_rate: 0.25\nrolling_rate: minute\ncollections:\n  model_inputs_outputs:\n    enabled: true\n",
        );
        let read = spec(Some(&some)).unwrap().unwrap();
        assert_eq!((read.sampling_rate, read.window_ms), (0.25, 60_000));
        assert!(read.inputs && read.outputs);
        let off = yaml("collections:\n  model_inputs:\n    enabled: 'false'\n");
        assert_eq!(spec(Some(&off)).unwrap(), None);
        for (text, needle) in [
            ("sampling_rate: 2\n", "data_collector.sampling_rate"),
            (
                "rolling_rate: week\n",
                "data_collector.rolling_rate: 'week'",
            ),
            (
                "collections:\n  inputs:\n    enabled: true\n",
                "collections.inputs",
            ),
        ] {
            let e = spec(Some(&yaml(text))).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    fn sample(id: &str, at_ms: i64, rows: &[(f64, &str)], predictions: &[i64]) -> Sample {
        let mut inputs = Frame::default();
        inputs
            .push("age".into(), rows.iter().map(|(a, _)| json!(a)).collect())
            .unwrap();
        inputs
            .push("plan".into(), rows.iter().map(|(_, p)| json!(p)).collect())
            .unwrap();
        Sample {
            request_id: id.into(),
            at_ms,
            latency_ms: 1.5,
            inputs,
            outputs: predictions.iter().map(|p| json!(p)).collect(),
        }
    }

    #[test]
    fn collected_parts_become_one_asset_version_per_window_once_it_has_passed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("ws")).unwrap();
        let spec = CollectorSpec {
            sampling_rate: 1.0,
            window_ms: 60_000,
            inputs: true,
            outputs: true,
        };
        // Two flushes into the first minute, one into the second.
        flush(
            &store,
            "churn",
            "blue",
            &spec,
            &[sample(
                "a",
                1_000,
                &[(31.0, "basic"), (40.0, "pro")],
                &[0, 1],
            )],
        )
        .unwrap();
        flush(
            &store,
            "churn",
            "blue",
            &spec,
            &[
                sample("b", 59_000, &[(22.0, "plus")], &[1]),
                sample("c", 61_000, &[(50.0, "pro")], &[0]),
            ],
        )
        .unwrap();
        // Only the first minute has passed at 61 s.
        assert_eq!(
            seal(&store, 61_000).unwrap(),
            ["churn-blue-model_inputs:1", "churn-blue-model_outputs:1"]
        );
        let windows = windows(&store, Some("churn")).unwrap();
        let first: Vec<_> = windows.iter().filter(|w| w.start_ms == 0).collect();
        assert_eq!(first.len(), 2);
        assert!(
            first
                .iter()
                .all(|w| w.rows == 3 && w.parts == 2 && w.asset.is_some())
        );
        let open: Vec<_> = windows.iter().filter(|w| w.start_ms == 60_000).collect();
        assert!(open.iter().all(|w| w.asset.is_none() && w.rows == 1));
        // The version is the window's rows in time order, with request ids and features.
        let ws = store.workspace().unwrap();
        let version = ws
            .resolve(&"churn-blue-model_inputs:1".parse().unwrap())
            .unwrap();
        let blob = version.meta.blob.clone().unwrap();
        let path = store.blobs().path(&blob);
        let df = crate::table::read(&path, &path, crate::table::TableFormat::Parquet).unwrap();
        let ids: Vec<String> = df
            .column("request_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap().to_owned())
            .collect();
        assert_eq!(ids, ["a", "a", "b"]);
        let ages: Vec<f64> = df
            .column("age")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(ages, [31.0, 40.0, 22.0]);
        assert_eq!(version.item_count, 3);
        // Sealing again makes nothing new; the second minute seals once it has passed.
        assert!(seal(&store, 61_000).unwrap().is_empty());
        assert_eq!(
            seal(&store, 120_000).unwrap(),
            ["churn-blue-model_inputs:2", "churn-blue-model_outputs:2"]
        );
    }

    #[test]
    fn limits_remove_old_and_oversized_windows_but_keep_the_newest_and_the_referenced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("ws")).unwrap();
        crate::endpoints::create_endpoint(&store, "name: churn\n", None, None).unwrap();
        let spec = CollectorSpec {
            sampling_rate: 1.0,
            window_ms: 60_000,
            inputs: true,
            outputs: false,
        };
        let minutes = |from: i64, to: i64| {
            for m in from..to {
                let s = sample(
                    &format!("r{m}"),
                    m * 60_000 + 1_000,
                    &[(30.0, "basic")],
                    &[1],
                );
                flush(&store, "churn", "blue", &spec, &[s]).unwrap();
            }
            seal(&store, to * 60_000).unwrap();
        };
        minutes(0, 4);
        let exists = |v: u32| {
            let ws = store.workspace().unwrap();
            ws.resolve(&format!("churn-blue-model_inputs:{v}").parse().unwrap())
                .is_ok()
        };
        assert!((1..=4).all(exists));
        assert!(
            set_limits(&store, "nope", Limits::default()).is_err(),
            "an unknown endpoint is named"
        );
        let none = Limits {
            retention_days: Some(0),
            max_bytes: None,
        };
        assert!(set_limits(&store, "churn", none).is_err());
        let day = Limits {
            retention_days: Some(1),
            max_bytes: None,
        };
        set_limits(&store, "churn", day).unwrap();
        assert_eq!(limits(&store, "churn").unwrap(), day);
        // Within the day nothing goes; two days on, all but the newest window.
        assert!(enforce(&store, 5 * 60_000).unwrap().is_empty());
        let gone = enforce(&store, 2 * 86_400_000).unwrap();
        let assets: Vec<&str> = gone.iter().map(|r| r.asset.as_str()).collect();
        assert_eq!(
            assets,
            [
                "churn-blue-model_inputs:1",
                "churn-blue-model_inputs:2",
                "churn-blue-model_inputs:3"
            ]
        );
        assert!(
            gone.iter()
                .all(|r| r.why == "older than 1 day(s)" && r.bytes > 0)
        );
        assert!(!exists(1) && !exists(3) && exists(4));
        assert_eq!(windows(&store, Some("churn")).unwrap().len(), 1);

        // A size cap takes the oldest first; a version a batch job wrote into stays.
        minutes(4, 7);
        let ws = store.workspace().unwrap();
        let five = ws
            .resolve(&"churn-blue-model_inputs:5".parse().unwrap())
            .unwrap()
            .id;
        drop(ws);
        store
            .transaction::<_, Error>(|c| {
                c.execute(
                    "INSERT INTO batch_jobs (endpoint, deployment, input, output, state,
                         output_version_id, created_at_ms)
                     VALUES ('b', 'd', 'x', 'y', 'completed', ?1, 0)",
                    [five],
                )?;
                Ok(())
            })
            .unwrap();
        let cap = Limits {
            retention_days: None,
            max_bytes: Some(1),
        };
        set_limits(&store, "churn", cap).unwrap();
        let gone = enforce(&store, 8 * 60_000).unwrap();
        let assets: Vec<&str> = gone.iter().map(|r| r.asset.as_str()).collect();
        assert_eq!(
            assets,
            ["churn-blue-model_inputs:4", "churn-blue-model_inputs:6"]
        );
        assert!(exists(5) && exists(7));
        // A new window gets a new number.
        minutes(7, 8);
        assert!(exists(8));
        set_limits(&store, "churn", Limits::default()).unwrap();
        assert_eq!(limits(&store, "churn").unwrap(), Limits::default());
    }
}
