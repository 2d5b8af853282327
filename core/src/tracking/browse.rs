//! What the experiment browser shows, read in bulk: a whole experiment's runs as a compact
//! table (every run's latest metrics, params and tags by column), one run in detail with its
//! artifacts and lineage, and previews of artifacts.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, params_from_iter};

use super::api::ARTIFACTS_SCHEME;
use super::experiments::{self, ViewType};
use super::registry;
use super::runs;
use super::search::{self, RunQuery};
use super::types::{DatasetInput, ModelVersion, Run};
use super::{Tracking, TrackingError, TrackingResult};

/// Runs with their values laid out by column, in the order the search gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunTable {
    pub metric_keys: Vec<String>,
    pub param_keys: Vec<String>,
    pub tag_keys: Vec<String>,
    pub runs: Vec<RunRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub name: String,
    pub experiment_id: String,
    pub status: String,
    pub user: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// By `metric_keys`; None where the run has no such metric.
    pub metrics: Vec<Option<f64>>,
    pub params: Vec<Option<String>>,
    pub tags: Vec<Option<String>>,
    /// The run this one is a step or trial of (`mlflow.parentRunId`), as MLflow nests runs.
    pub parent_run_id: Option<String>,
}

/// A run nested under another (a pipeline's step, a sweep's trial), as its parent's view
/// lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildRun {
    pub run_id: String,
    pub name: String,
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// The run whose outputs this step reused instead of running (`lathe.reused_from`).
    pub reused_from: Option<String>,
}

/// A run with everything its detail view shows.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub run: Run,
    /// The runs nested under it, in the order they started.
    pub children: Vec<ChildRun>,
    /// Artifact files under the run's root: (path relative to it, size).
    pub artifacts: Vec<(String, i64)>,
    /// The artifact root inside the store, when the run's artifacts live in Lathe.
    pub artifact_root: Option<String>,
    pub lineage: Lineage,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lineage {
    pub inputs: Vec<LineageInput>,
    /// Model versions registered from this run.
    pub outputs: Vec<ModelVersion>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineageInput {
    pub input: DatasetInput,
    /// The Lathe data asset version it was linked to, as (name, version).
    pub asset: Option<(String, i64)>,
}

/// An artifact's content for a preview.
#[derive(Debug, Clone)]
pub enum Preview {
    Text {
        text: String,
        truncated: bool,
    },
    Image(crate::images::Thumbnail),
    Table {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
        total_rows: usize,
    },
    Binary {
        size_bytes: u64,
    },
}

const PREVIEW_TEXT_BYTES: usize = 256 << 10;
const PREVIEW_TABLE_ROWS: usize = 200;
/// Larger tables are previewed as text (their first lines) rather than parsed whole.
const MAX_TABLE_PREVIEW_BYTES: u64 = 64 << 20;

impl Tracking {
    /// Every active experiment, newest first.
    pub fn experiments(&self) -> TrackingResult<Vec<super::types::Experiment>> {
        self.read(|c| experiments::search(c, ViewType::ActiveOnly, "", &[], 50_000, 0))
            .map(|(found, _)| found)
    }

    /// The runs of `experiment_ids` matching `filter`, in the search's default order.
    pub fn run_table(&self, experiment_ids: &[String], filter: &str) -> TrackingResult<RunTable> {
        self.read(|c| run_table(c, experiment_ids, filter))
    }

    pub fn run_detail(&self, run_id: &str) -> TrackingResult<RunDetail> {
        let run = self.read(|c| runs::get(c, run_id))?;
        let artifact_root = run
            .info
            .artifact_uri
            .strip_prefix(ARTIFACTS_SCHEME)
            .map(|root| root.trim_matches('/').to_owned());
        let artifacts = match &artifact_root {
            Some(root) => self
                .artifact_tree(root)?
                .into_iter()
                .map(|(path, _, size)| (path, size))
                .collect(),
            None => Vec::new(),
        };
        let lineage = self.read(|c| lineage(c, &run))?;
        let children = self.read(|c| children(c, run_id))?;
        Ok(RunDetail {
            run,
            children,
            artifacts,
            artifact_root,
            lineage,
        })
    }

    /// A preview of the artifact at `path`: text, an image thumbnail, the first rows of a
    /// table, or just its size.
    pub fn artifact_preview(&self, path: &str) -> TrackingResult<Preview> {
        let (file, size) = self.artifact_file(path)?;
        let fail = |e: crate::Error| TrackingError::invalid(format!("{path}: {e}"));
        if crate::images::is_image_path(Path::new(path)) {
            return crate::images::thumbnail(&file, 512)
                .map(Preview::Image)
                .map_err(fail);
        }
        if let Some(format) = crate::table::TableFormat::from_path(Path::new(path))
            && size < MAX_TABLE_PREVIEW_BYTES
        {
            let df = crate::table::read(&file, Path::new(path), format).map_err(fail)?;
            return Ok(Preview::Table {
                columns: crate::table::columns(&df)
                    .into_iter()
                    .map(|c| c.name)
                    .collect(),
                rows: crate::table::page(&df, 0, PREVIEW_TABLE_ROWS),
                total_rows: df.height(),
            });
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::fs::File::open(&file)
                    .map_err(|e| TrackingError::internal(format!("{}: {e}", file.display())))?,
                PREVIEW_TEXT_BYTES as u64,
            ),
            &mut bytes,
        )
        .map_err(|e| TrackingError::internal(format!("{}: {e}", file.display())))?;
        let looks_binary = bytes.iter().take(4096).any(|b| *b == 0);
        if looks_binary {
            return Ok(Preview::Binary { size_bytes: size });
        }
        Ok(Preview::Text {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            truncated: size as usize > PREVIEW_TEXT_BYTES,
        })
    }

    /// Every point of one metric of one run, by step.
    pub fn metric_history(
        &self,
        run_id: &str,
        key: &str,
    ) -> TrackingResult<Vec<super::metrics::Point>> {
        self.read(|c| {
            let run = runs::find(c, run_id)?;
            super::metrics::history(c, run.id, key)
        })
    }

    /// Registered models with their versions, for the Models section.
    pub fn models(
        &self,
    ) -> TrackingResult<Vec<(super::types::RegisteredModel, Vec<ModelVersion>)>> {
        self.read(|c| {
            let (models, _) = registry::search_models(c, "", &[], 50_000, 0)?;
            models
                .into_iter()
                .map(|m| {
                    let filter = format!("name = '{}'", m.name.replace('\'', "''"));
                    let (versions, _) = registry::search_versions(
                        c,
                        &filter,
                        &registry::newest_first(),
                        50_000,
                        0,
                    )?;
                    Ok((m, versions))
                })
                .collect()
        })
    }
}

fn run_table(
    conn: &Connection,
    experiment_ids: &[String],
    filter: &str,
) -> TrackingResult<RunTable> {
    let query = RunQuery {
        experiment_ids,
        filter,
        view: ViewType::ActiveOnly,
        order_by: &[],
        max_results: usize::MAX,
        page_token: None,
    };
    let (ids, _) = search::search_run_ids_unbounded(conn, &query)?;
    let position: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let experiments: Vec<i64> = experiment_ids
        .iter()
        .map(|id| experiments::parse_id(id))
        .collect::<TrackingResult<_>>()?;
    let marks = vec!["?"; experiments.len()].join(", ");
    let mut rows: Vec<Option<RunRow>> = vec![None; ids.len()];
    let mut stmt = conn.prepare(&format!(
        "SELECT id, uuid, name, experiment_id, status, user_id, start_time_ms, end_time_ms
         FROM runs WHERE experiment_id IN ({marks})"
    ))?;
    let mut found = stmt.query(params_from_iter(&experiments))?;
    while let Some(r) = found.next()? {
        let id: i64 = r.get(0)?;
        if let Some(&i) = position.get(&id) {
            rows[i] = Some(RunRow {
                run_id: r.get(1)?,
                name: r.get(2)?,
                experiment_id: r.get::<_, i64>(3)?.to_string(),
                status: r.get(4)?,
                user: r.get(5)?,
                start_time: r.get(6)?,
                end_time: r.get(7)?,
                metrics: Vec::new(),
                params: Vec::new(),
                tags: Vec::new(),
                parent_run_id: None,
            });
        }
    }
    let mut parents = conn.prepare(&format!(
        "SELECT t.run_id, t.value FROM run_tags t JOIN runs r ON r.id = t.run_id
         WHERE r.experiment_id IN ({marks}) AND t.key = 'mlflow.parentRunId'"
    ))?;
    let mut found = parents.query(params_from_iter(&experiments))?;
    while let Some(r) = found.next()? {
        if let Some(run) = position
            .get(&r.get::<_, i64>(0)?)
            .and_then(|&i| rows.get_mut(i))
            .and_then(Option::as_mut)
        {
            run.parent_run_id = Some(r.get(1)?);
        }
    }
    // Values by (row, key): read each kind for the whole experiment in one pass.
    let mut fill = |sql: &str, keys: &mut Vec<String>, kind: usize| -> TrackingResult<()> {
        let mut stmt = conn.prepare(&sql.replace("{marks}", &marks))?;
        let mut values = stmt.query(params_from_iter(&experiments))?;
        let mut key_index: HashMap<String, usize> = HashMap::new();
        let mut cells: Vec<(usize, usize, rusqlite::types::Value)> = Vec::new();
        while let Some(r) = values.next()? {
            let Some(&row) = position.get(&r.get::<_, i64>(0)?) else {
                continue;
            };
            let key: String = r.get(1)?;
            let next = key_index.len();
            let column = *key_index.entry(key).or_insert(next);
            cells.push((row, column, r.get(2)?));
        }
        let mut names: Vec<(String, usize)> = key_index.into_iter().collect();
        names.sort();
        let remap: HashMap<usize, usize> = names
            .iter()
            .enumerate()
            .map(|(new, (_, old))| (*old, new))
            .collect();
        *keys = names.into_iter().map(|(k, _)| k).collect();
        for run in rows.iter_mut().flatten() {
            match kind {
                0 => run.metrics = vec![None; keys.len()],
                1 => run.params = vec![None; keys.len()],
                _ => run.tags = vec![None; keys.len()],
            }
        }
        for (row, column, value) in cells {
            let Some(run) = rows.get_mut(row).and_then(Option::as_mut) else {
                continue;
            };
            let column = remap[&column];
            match (kind, value) {
                (0, rusqlite::types::Value::Real(v)) => run.metrics[column] = Some(v),
                (0, rusqlite::types::Value::Integer(v)) => run.metrics[column] = Some(v as f64),
                (0, _) => run.metrics[column] = Some(f64::NAN),
                (1, rusqlite::types::Value::Text(t)) => run.params[column] = Some(t),
                (_, rusqlite::types::Value::Text(t)) => run.tags[column] = Some(t),
                _ => {}
            }
        }
        Ok(())
    };
    let (mut metric_keys, mut param_keys, mut tag_keys) = (Vec::new(), Vec::new(), Vec::new());
    fill(
        "SELECT m.run_id, k.key, m.value FROM latest_metrics m JOIN metric_keys k ON k.id = m.key_id
         JOIN runs r ON r.id = m.run_id WHERE r.experiment_id IN ({marks})",
        &mut metric_keys,
        0,
    )?;
    fill(
        "SELECT p.run_id, p.key, p.value FROM params p JOIN runs r ON r.id = p.run_id
         WHERE r.experiment_id IN ({marks})",
        &mut param_keys,
        1,
    )?;
    fill(
        "SELECT t.run_id, t.key, t.value FROM run_tags t JOIN runs r ON r.id = t.run_id
         WHERE r.experiment_id IN ({marks}) AND t.key NOT LIKE 'mlflow.%'",
        &mut tag_keys,
        2,
    )?;
    Ok(RunTable {
        metric_keys,
        param_keys,
        tag_keys,
        // A run created after the search is not in it; every searched run has its row.
        runs: rows.into_iter().flatten().collect(),
    })
}

fn children(conn: &Connection, run_id: &str) -> TrackingResult<Vec<ChildRun>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.uuid, r.name, r.status, r.start_time_ms, r.end_time_ms,
                (SELECT value FROM run_tags x WHERE x.run_id = r.id AND x.key = 'lathe.reused_from')
         FROM run_tags t JOIN runs r ON r.id = t.run_id
         WHERE t.key = 'mlflow.parentRunId' AND t.value = ?1 AND r.lifecycle_stage = 'active'
         ORDER BY r.start_time_ms, r.id",
    )?;
    let rows = stmt.query_map([run_id], |r| {
        Ok(ChildRun {
            run_id: r.get(0)?,
            name: r.get(1)?,
            status: r.get(2)?,
            start_time: r.get(3)?,
            end_time: r.get(4)?,
            reused_from: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn lineage(conn: &Connection, run: &Run) -> TrackingResult<Lineage> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.name, v.version FROM run_inputs i
         JOIN runs r ON r.id = i.run_id
         JOIN asset_versions v ON v.id = i.asset_version_id
         JOIN assets a ON a.id = v.asset_id
         WHERE r.uuid = ?1 AND i.name = ?2 AND i.digest = ?3",
    )?;
    let mut inputs = Vec::new();
    for input in &run.inputs.dataset_inputs {
        let asset = stmt
            .query_row(
                [&run.info.run_id, &input.dataset.name, &input.dataset.digest],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        inputs.push(LineageInput {
            input: input.clone(),
            asset,
        });
    }
    let filter = format!("run_id = '{}'", run.info.run_id.replace('\'', "''"));
    let (outputs, _) =
        registry::search_versions(conn, &filter, &registry::newest_first(), 10_000, 0)?;
    Ok(Lineage { inputs, outputs })
}
