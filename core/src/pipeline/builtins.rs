//! The built-in components' native work. Each takes its step's inputs (literal values and data
//! paths) and writes its outputs into the step's folders; tables travel between steps as
//! `data.csv` in an output folder, models as an MLflow model folder.

mod learn;
mod prep;

use crate::pipeline::{PipelineError, PipelineResult};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use polars::prelude::DataFrame;

use crate::ml::preprocessing::Chain;
use crate::table::{self, TableFormat};
use crate::tracking::Tracking;

/// Where a data input's files came from, when another step's run produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub run_id: String,
    /// The `mlflow-artifacts:/…` URI of the output folder in that run.
    pub artifact_uri: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataInput {
    pub path: PathBuf,
    pub origin: Option<Origin>,
}

/// What a built-in step gets to work with.
pub struct StepIo<'a> {
    pub values: &'a BTreeMap<String, String>,
    pub data: &'a BTreeMap<String, DataInput>,
    pub outputs: &'a BTreeMap<String, PathBuf>,
    pub tracking: &'a Tracking,
    pub run_id: &'a str,
    pub experiment_id: &'a str,
    pub cancel: &'a AtomicBool,
    pub log: &'a (dyn Fn(&str) + Sync),
}

impl StepIo<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> PipelineResult<&str> {
        self.value(name)
            .ok_or_else(|| PipelineError::missing_input(name))
    }

    fn number(&self, name: &str) -> PipelineResult<Option<f64>> {
        self.value(name)
            .map(|v| {
                v.parse::<f64>().map_err(|_| PipelineError::Input {
                    name: name.to_owned(),
                    reason: format!("is '{v}', not a number"),
                })
            })
            .transpose()
    }

    /// A comma-separated list of names; empty when the input is not given.
    fn list(&self, name: &str) -> Vec<String> {
        self.value(name)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn data(&self, name: &str) -> PipelineResult<&DataInput> {
        self.data
            .get(name)
            .ok_or_else(|| PipelineError::missing_input(name))
    }

    fn table(&self, name: &str) -> PipelineResult<DataFrame> {
        read_table(&self.data(name)?.path)
    }

    fn output(&self, name: &str) -> PipelineResult<&Path> {
        self.outputs
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| PipelineError::Output {
                name: name.to_owned(),
                reason: "has no folder".to_owned(),
            })
    }

    fn write_table(&self, name: &str, df: &mut DataFrame) -> PipelineResult<()> {
        let dir = self.output(name)?;
        std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
        table::write(df, &dir.join("data.csv"), TableFormat::Csv)?;
        // An MLTable file beside the table makes the folder a real `mltable`, readable by
        // Azure ML's `mltable.load()` in a command step downstream.
        std::fs::write(dir.join("MLTable"), MLTABLE).map_err(|e| PipelineError::io(dir, e))?;
        self.say(&format!(
            "{name}: {} rows × {} columns",
            df.height(),
            df.width()
        ));
        Ok(())
    }

    /// The preparation input `name`'s table has been through, or a new chain starting at it.
    fn chain(&self, name: &str, df: &DataFrame) -> PipelineResult<Chain> {
        Ok(Chain::read(&self.data(name)?.path)?.unwrap_or_else(|| Chain::start(df)))
    }

    /// Writes a prepared table with the chain of preparation that made it beside it.
    fn write_prepared(&self, name: &str, df: &mut DataFrame, chain: &Chain) -> PipelineResult<()> {
        self.write_table(name, df)?;
        let dir = self.output(name)?;
        chain.write(dir).map_err(|e| PipelineError::io(dir, e))
    }

    fn say(&self, line: &str) {
        (self.log)(line);
    }

    fn cancelled(&self) -> PipelineResult<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(PipelineError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Logs metrics to the step's run.
    fn log_metrics(&self, metrics: &[(String, f64)]) -> PipelineResult<()> {
        log_batch(self.tracking, self.run_id, metrics, &[])
    }
}

/// Logs metrics and params to a run in one batch (non-finite metrics are left out).
pub fn log_batch(
    tracking: &Tracking,
    run_id: &str,
    metrics: &[(String, f64)],
    params: &[(String, String)],
) -> PipelineResult<()> {
    use crate::tracking::types::{Metric, Param};
    let now = crate::db::now_millis();
    let batch = crate::tracking::runs::Batch {
        metrics: metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(key, value)| Metric {
                key: key.clone(),
                value: *value,
                timestamp: now,
                ..Metric::default()
            })
            .collect(),
        params: params
            .iter()
            .map(|(key, value)| Param {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        tags: Vec::new(),
    };
    tracking
        .log_batch(run_id, batch)
        .map_err(PipelineError::from)
}

/// The MLTable file of a built-in's table output (Azure ML's format: the paths of the data and
/// how to read them).
const MLTABLE: &str = "paths:\n  - file: ./data.csv\ntransformations:\n  - read_delimited:\n      delimiter: ','\n      header: all_files_same_headers\n      encoding: utf8\n";

/// Reads a table from a file, or from the one table file in a folder.
pub fn read_table(path: &Path) -> PipelineResult<DataFrame> {
    let file = table_file(path)?;
    let format = TableFormat::from_path(&file)
        .ok_or_else(|| format!("{} is not a table file", file.display()))?;
    table::read(&file, &file, format).map_err(PipelineError::from)
}

/// The table file at `path`, or the one table file in the folder `path`.
pub fn table_file(path: &Path) -> PipelineResult<PathBuf> {
    if path.is_file() {
        return TableFormat::from_path(path)
            .map(|_| path.to_path_buf())
            .ok_or_else(|| {
                PipelineError::Invalid(format!("{} is not a table file", path.display()))
            });
    }
    if !path.is_dir() {
        return Err(PipelineError::Invalid(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let mut tables: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| PipelineError::io(path, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && TableFormat::from_path(p).is_some())
        .collect();
    tables.sort();
    match tables.len() {
        1 => Ok(tables.remove(0)),
        0 => Err(format!(
            "{} holds no table (CSV, TSV, Parquet or JSON lines)",
            path.display()
        )
        .into()),
        n => Err(format!("{} holds {n} tables; a step reads one", path.display()).into()),
    }
}

/// Runs the built-in `name`.
pub fn run(name: &str, io: &StepIo<'_>) -> PipelineResult<()> {
    match name {
        "select_columns" => prep::select_columns(io),
        "clean_missing_data" => prep::clean_missing_data(io),
        "normalize" => prep::normalize(io),
        "one_hot_encode" => prep::one_hot_encode(io),
        "split_data" => prep::split_data(io),
        "score_model" => learn::score_model(io),
        "evaluate_model" => learn::evaluate_model(io),
        "sweep" => learn::sweep(io),
        "register_model" => learn::register_model(io),
        train if train.starts_with("train_") => learn::train(&train["train_".len()..], io),
        other => Err(PipelineError::Invalid(format!(
            "'{other}' is not a built-in component"
        ))),
    }
}
