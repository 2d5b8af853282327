//! Pipelines saved from the designer: versioned YAML in the workspace (`name` → 1, 2, …).
//! Components read from files are saved with absolute paths, so a saved pipeline opens from
//! anywhere.

use crate::pipeline::{PipelineError, PipelineResult};
use std::path::Path;

use serde::Serialize;

use super::job::{self, Pipeline, StepSource};
use crate::tracking::Tracking;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Saved {
    pub name: String,
    pub version: i64,
    pub created_at: i64,
}

/// Saves `pipeline` as the next version of `name`; returns that version.
pub fn save(tracking: &Tracking, name: &str, pipeline: &Pipeline) -> PipelineResult<i64> {
    if name.trim().is_empty() {
        return Err("a saved pipeline needs a name".into());
    }
    let mut pipeline = pipeline.clone();
    for step in &mut pipeline.steps {
        if let StepSource::File(path) = &step.source
            && !Path::new(path).is_absolute()
        {
            let file = Path::new(path)
                .file_name()
                .map(|f| step.origin.join(f))
                .unwrap_or_else(|| step.origin.clone());
            step.source = StepSource::File(file.display().to_string());
        }
    }
    let yaml = pipeline.to_yaml();
    let name = name.trim().to_owned();
    tracking
        .write(move |c| {
            let version: i64 = c.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM pipelines WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )?;
            c.execute(
                "INSERT INTO pipelines (name, version, yaml, created_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![name, version, yaml, crate::db::now_millis()],
            )?;
            Ok(version)
        })
        .map_err(PipelineError::from)
}

/// Every saved pipeline version, newest first within a name.
pub fn list(tracking: &Tracking) -> PipelineResult<Vec<Saved>> {
    tracking
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT name, version, created_at FROM pipelines ORDER BY name, version DESC",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Saved {
                    name: r.get(0)?,
                    version: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .map_err(PipelineError::from)
}

/// Opens a saved version; registered components are looked up in the workspace at `root`.
pub fn open(
    tracking: &Tracking,
    root: &Path,
    name: &str,
    version: i64,
) -> PipelineResult<Pipeline> {
    let key = (name.to_owned(), version);
    let yaml: String = tracking
        .read(move |c| {
            Ok(c.query_row(
                "SELECT yaml FROM pipelines WHERE name = ?1 AND version = ?2",
                rusqlite::params![key.0, key.1],
                |r| r.get(0),
            )?)
        })
        .map_err(|_| format!("no saved pipeline {name} version {version}"))?;
    // A saved draft may not be ready to run; the designer lists what is missing.
    job::parse_draft(&yaml, root, &|r| {
        super::registry::resolve(tracking, root, r)
    })
    .map(|(pipeline, _)| pipeline)
    .map_err(|problems| {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        format!("{name}:{version} no longer opens: {}", listed.join("; "))
    })
    .map_err(PipelineError::from)
}
