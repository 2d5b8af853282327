//! The manifests of what a push sends, read from the workspace.

use rusqlite::{Connection, OptionalExtension};

use super::Selection;
use super::manifest::{
    AssetLink, AssetManifest, FORMAT, FileEntry, Manifest, ModelManifest, RunInput, RunManifest,
    files_digest,
};
use crate::assets::{AssetKind, AssetRef};
use crate::store::Store;
use crate::tracking::{Tracking, TrackingResult, experiments, metrics, registry, runs};
use crate::{Error, Result};

/// A thing named for a push that cannot be sent: its label and why.
pub type LeftOut = (String, String);

/// The manifests of everything `selection` names (everything, when it names nothing): assets,
/// then runs, then models. A model version whose files are outside the workspace's store is
/// left out and named in the second list, with why.
///
/// # Errors
/// A name in `selection` the workspace does not have (with the nearest names).
pub fn manifests(store: &Store, selection: &Selection) -> Result<(Vec<Manifest>, Vec<LeftOut>)> {
    let everything = selection.is_empty();
    let mut out = Vec::new();
    if everything || !selection.assets.is_empty() {
        out.extend(assets(store, &selection.assets)?);
    }
    let tracking = store.tracking();
    if everything || !selection.runs.is_empty() || !selection.experiments.is_empty() {
        for id in run_ids(&tracking, selection)? {
            out.push(Manifest::Run(Box::new(run(&tracking, &id)?)));
        }
    }
    let mut left_out = Vec::new();
    if everything || !selection.models.is_empty() {
        for (name, version) in model_versions(&tracking, &selection.models)? {
            match model(&tracking, &name, &version)? {
                Some(m) => out.push(Manifest::Model(m)),
                None => left_out.push((
                    format!("model {name}:{version}"),
                    "its files are not in this workspace's artifact store".to_owned(),
                )),
            }
        }
    }
    Ok((out, left_out))
}

fn assets(store: &Store, names: &[String]) -> Result<Vec<Manifest>> {
    let workspace = store.workspace()?;
    let mut versions = Vec::new();
    if names.is_empty() {
        for asset in workspace.list_assets()? {
            versions.extend(workspace.versions(&asset.name)?);
        }
    } else {
        for name in names {
            let reference: AssetRef = name.parse()?;
            match reference.version {
                Some(_) => versions.push(workspace.resolve(&reference)?),
                None => versions.extend(workspace.versions(&reference.name)?),
            }
        }
    }
    versions.sort_by(|a, b| (&a.asset_name, a.version).cmp(&(&b.asset_name, b.version)));
    versions.dedup_by_key(|v| v.id);
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        let files = match v.kind {
            AssetKind::Images => workspace.version_files(v.id)?,
            _ => Vec::new(),
        };
        let blob = match &v.meta.blob {
            Some(hash) => Some(FileEntry {
                path: String::new(),
                blob: hash.clone(),
                size: blob_size(workspace.conn(), hash)?,
            }),
            None => None,
        };
        out.push(Manifest::Asset(AssetManifest {
            format: FORMAT,
            name: v.asset_name,
            kind: v.kind,
            version: v.version,
            content_hash: v.content_hash,
            created_at: v.created_at,
            source: v.source,
            item_count: v.item_count,
            size_bytes: v.size_bytes,
            meta: v.meta,
            blob,
            files,
        }));
    }
    Ok(out)
}

fn blob_size(conn: &Connection, hash: &str) -> Result<u64> {
    let size: Option<i64> = conn
        .query_row(
            "SELECT size_bytes FROM blobs WHERE hash = ?1",
            [hash],
            |r| r.get(0),
        )
        .optional()?;
    size.map(|s| s as u64)
        .ok_or_else(|| Error::Datastore(format!("blob {hash} is not recorded in the workspace")))
}

/// The ids of the active runs `selection` names: by id, and every run of the named
/// experiments; all active runs when it names neither.
pub(crate) fn run_ids(tracking: &Tracking, selection: &Selection) -> Result<Vec<String>> {
    let (ids, experiments_named) = (selection.runs.clone(), selection.experiments.clone());
    let all = ids.is_empty() && experiments_named.is_empty();
    Ok(tracking.read(move |c| {
        let mut out = Vec::new();
        if all {
            let mut stmt = c.prepare(
                "SELECT uuid FROM runs WHERE lifecycle_stage = 'active' ORDER BY start_time_ms, id",
            )?;
            out = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
        }
        for name in &experiments_named {
            let experiment = experiments::get_by_name(c, name)?;
            let mut stmt = c.prepare(
                "SELECT uuid FROM runs WHERE experiment_id = ?1 AND lifecycle_stage = 'active'
                 ORDER BY start_time_ms, id",
            )?;
            let found = stmt
                .query_map(
                    [experiment.experiment_id.parse::<i64>().unwrap_or(-1)],
                    |r| r.get(0),
                )?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            out.extend(found);
        }
        for id in &ids {
            runs::find(c, id)?;
            out.push(id.clone());
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|id| seen.insert(id.clone()));
        Ok(out)
    })?)
}

pub(crate) fn run(tracking: &Tracking, id: &str) -> Result<RunManifest> {
    let run_id = id.to_owned();
    let (run, experiment, metrics, links) = tracking.read(move |c| {
        let run = runs::get(c, &run_id)?;
        let experiment = experiments::get(c, &run.info.experiment_id)?.name;
        let row = runs::find(c, &run_id)?.id;
        let mut points = Vec::new();
        let mut keys: Vec<&str> = run.data.metrics.iter().map(|m| m.key.as_str()).collect();
        keys.sort_unstable();
        for key in keys {
            for p in metrics::history(c, row, key)? {
                points.push(crate::tracking::types::Metric {
                    key: key.to_owned(),
                    value: p.value,
                    timestamp: p.timestamp,
                    step: p.step,
                    ..Default::default()
                });
            }
        }
        let links = input_links(c, row)?;
        Ok((run, experiment, points, links))
    })?;
    let artifacts = match tracking.artifact_dir(&run.info.artifact_uri)? {
        Some(dir) => files(tracking, &dir)?,
        None => Vec::new(),
    };
    let inputs = run
        .inputs
        .dataset_inputs
        .into_iter()
        .map(|input| {
            let asset = links
                .iter()
                .find(|(name, digest, _)| {
                    *name == input.dataset.name && *digest == input.dataset.digest
                })
                .map(|(_, _, link)| link.clone());
            RunInput { input, asset }
        })
        .collect();
    let info = run.info;
    Ok(RunManifest {
        format: FORMAT,
        run_id: info.run_id,
        experiment,
        run_name: info.run_name,
        user_id: info.user_id,
        status: info.status,
        start_time: info.start_time,
        end_time: info.end_time,
        params: run.data.params,
        tags: run.data.tags,
        metrics,
        inputs,
        artifacts,
    })
}

/// The run's dataset inputs that are data asset versions: (dataset name, digest, asset).
fn input_links(c: &Connection, run: i64) -> TrackingResult<Vec<(String, String, AssetLink)>> {
    let mut stmt = c.prepare(
        "SELECT i.name, i.digest, a.name, v.content_hash FROM run_inputs i
         JOIN asset_versions v ON v.id = i.asset_version_id JOIN assets a ON a.id = v.asset_id
         WHERE i.run_id = ?1",
    )?;
    let rows = stmt.query_map([run], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            AssetLink {
                name: r.get(2)?,
                content_hash: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every file under the artifact folder `dir`, paths relative to it.
pub fn files(tracking: &Tracking, dir: &str) -> Result<Vec<FileEntry>> {
    Ok(tracking
        .artifact_tree(dir)?
        .into_iter()
        .map(|(path, blob, size)| FileEntry {
            path,
            blob,
            size: size as u64,
        })
        .collect())
}

/// (name, version) of the model versions `names` (`NAME` or `NAME:VERSION`) name; every
/// version when `names` is empty.
pub(crate) fn model_versions(
    tracking: &Tracking,
    names: &[String],
) -> Result<Vec<(String, String)>> {
    let names = names.to_vec();
    Ok(tracking.read(move |c| {
        let of = |name: &str| -> TrackingResult<Vec<(String, String)>> {
            registry::get_model(c, name)?;
            let mut stmt = c.prepare(
                "SELECT v.version FROM model_versions v JOIN registered_models m ON m.id = v.model_id
                 WHERE m.name = ?1 ORDER BY v.version",
            )?;
            let versions = stmt
                .query_map([name], |r| r.get::<_, i64>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(versions
                .into_iter()
                .map(|v| (name.to_owned(), v.to_string()))
                .collect())
        };
        let mut out = Vec::new();
        if names.is_empty() {
            let mut stmt = c.prepare("SELECT name FROM registered_models ORDER BY name")?;
            let all = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for name in all {
                out.extend(of(&name)?);
            }
        }
        for name in &names {
            match name.rsplit_once(':') {
                Some((model, version)) if version.parse::<u64>().is_ok() => {
                    registry::get_version(c, model, version)?;
                    out.push((model.to_owned(), version.to_owned()));
                }
                _ => out.extend(of(name)?),
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|v| seen.insert(v.clone()));
        Ok(out)
    })?)
}

/// A model version's manifest; `None` when its files are not in the workspace's store.
pub(crate) fn model(
    tracking: &Tracking,
    name: &str,
    version: &str,
) -> Result<Option<ModelManifest>> {
    let (name, number) = (name.to_owned(), version.to_owned());
    let (mv, run_root) = tracking.read(move |c| {
        let mv = registry::get_version(c, &name, &number)?;
        let run_root: Option<String> = match mv.run_id.as_str() {
            "" => None,
            id => c
                .query_row("SELECT artifact_uri FROM runs WHERE uuid = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?,
        };
        Ok((mv, run_root))
    })?;
    let Some(dir) = tracking.artifact_dir(&mv.source)? else {
        return Ok(None);
    };
    let files = files(tracking, &dir)?;
    let run_dir = match run_root {
        Some(uri) => tracking.artifact_dir(&uri)?,
        None => None,
    };
    let path_in_run = run_dir.and_then(|root| {
        dir.strip_prefix(&format!("{root}/"))
            .map(str::to_owned)
            .or_else(|| (dir == root).then(String::new))
    });
    Ok(Some(ModelManifest {
        format: FORMAT,
        digest: files_digest(&files),
        name: mv.name,
        version: mv.version.parse().unwrap_or(0),
        description: mv.description,
        user_id: mv.user_id,
        created_at: mv.creation_timestamp,
        run_id: Some(mv.run_id).filter(|r| !r.is_empty()),
        path_in_run,
        tags: mv.tags,
        aliases: mv.aliases,
        signature: mv.signature,
        files,
    }))
}
