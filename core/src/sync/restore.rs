//! Pulled manifests recorded in the workspace, each in one transaction with its row in
//! `sync_map`: a version whose content a local one has maps to it; otherwise it takes the
//! next local number; a run here gets what the datastore's copy has more. Nothing local is
//! changed.

use rusqlite::{Connection, OptionalExtension, params};

use super::Outcome;
use super::manifest::{AssetManifest, Layout, ModelManifest, RunManifest, files_digest};
use crate::Result;
use crate::assets::AssetKind;
use crate::blobs::PutBlob;
use crate::store::Store;
use crate::tracking::types::DatasetInput;
use crate::tracking::{
    Tracking, TrackingError, TrackingResult, artifacts, experiments, registry, runs,
};
use crate::workspace::NewVersion;

/// What a pulled manifest became here.
pub struct Restored {
    /// The local name: `churn:4`, a run id, `churn-classifier:2`.
    pub local: String,
    pub outcome: Outcome,
    pub note: Option<String>,
}

/// Where a manifest was read: its key, fingerprint and ETag.
pub type Seen = (String, String, String);

fn note_pull(
    c: &Connection,
    datastore: &str,
    (key, fp, etag): &Seen,
    local: &str,
) -> rusqlite::Result<()> {
    super::note(c, "pull", (datastore, key), (local, fp, etag))
}

/// The local version with this asset's content, if there is one.
pub fn asset_here(store: &Store, m: &AssetManifest) -> Result<Option<String>> {
    Ok(store
        .workspace()?
        .find_by_content(&m.name, &m.content_hash)?
        .map(|v| v.reference()))
}

/// Records an asset version from its manifest (its blobs are in the store).
pub fn asset(
    store: &Store,
    (datastore, seen): (&str, Seen),
    m: &AssetManifest,
) -> Result<Restored> {
    let blobs: Vec<PutBlob> = m
        .blob
        .iter()
        .map(|b| (b.blob.clone(), b.size))
        .chain(m.files.iter().map(|f| (f.blob_hash.clone(), f.size_bytes)))
        .map(|(hash, size_bytes)| PutBlob {
            hash,
            size_bytes,
            created: false,
        })
        .collect();
    let new = NewVersion {
        name: m.name.clone(),
        kind: m.kind,
        content_hash: m.content_hash.clone(),
        source: m.source.clone(),
        item_count: m.item_count,
        size_bytes: m.size_bytes,
        meta: m.meta.clone(),
        files: if m.kind == AssetKind::Images {
            m.files.clone()
        } else {
            Vec::new()
        },
        blobs,
    };
    let mut workspace = store.workspace()?;
    let (version, created) = workspace.record_version(&new)?;
    let local = version.reference();
    let datastore = datastore.to_owned();
    let noted = local.clone();
    store.transaction::<_, crate::Error>(move |c| Ok(note_pull(c, &datastore, &seen, &noted)?))?;
    Ok(Restored {
        local,
        outcome: if created {
            Outcome::Created
        } else {
            Outcome::AlreadyHere
        },
        note: None,
    })
}

/// Whether a run of this id is here.
pub fn run_here(store: &Store, id: &str) -> Result<bool> {
    let id = id.to_owned();
    store.read::<_, crate::Error>(move |c| {
        Ok(
            c.query_row("SELECT 1 FROM runs WHERE uuid = ?1", [id], |_| Ok(()))
                .optional()?
                .is_some(),
        )
    })
}

/// The run as the tracking store takes it.
fn restored_run(m: &RunManifest, experiment_id: i64, experiment: String) -> runs::RestoredRun {
    runs::RestoredRun {
        info: crate::tracking::types::RunInfo {
            run_id: m.run_id.clone(),
            run_uuid: m.run_id.clone(),
            run_name: m.run_name.clone(),
            experiment_id: experiment,
            user_id: m.user_id.clone(),
            status: m.status.clone(),
            start_time: m.start_time,
            end_time: m.end_time,
            artifact_uri: String::new(),
            lifecycle_stage: "active".into(),
        },
        experiment_id,
        params: m.params.clone(),
        tags: m.tags.clone(),
        metrics: m.metrics.clone(),
    }
}

/// Records a run from its manifest, in its experiment (made when there is none of its name),
/// with its artifacts (their blobs are in the store) and its inputs linked to the local
/// versions of the same content. A run already here gets what the manifest has more: metric
/// points, params, tags, artifacts at paths it lacks, its end.
pub fn run(store: &Store, (datastore, seen): (&str, Seen), m: &RunManifest) -> Result<Restored> {
    let tracking = store.tracking();
    let here = run_here(store, &m.run_id)?;
    let experiment = if here {
        String::new()
    } else {
        tracking.experiment_named(&m.experiment)?
    };
    let m = m.clone();
    let datastore = datastore.to_owned();
    tracking
        .write(move |c| {
            let (info, merged) = if here {
                let merged = runs::merge(c, &restored_run(&m, 0, String::new()))?;
                (runs::get(c, &m.run_id)?.info, Some(merged))
            } else {
                let experiment_id = experiments::require_active(c, &experiment)?;
                (
                    runs::restore(c, &restored_run(&m, experiment_id, experiment.clone()))?,
                    None,
                )
            };
            if !here {
                let inputs: Vec<DatasetInput> = m
                    .inputs
                    .iter()
                    .map(|i| local_input(c, i))
                    .collect::<TrackingResult<_>>()?;
                if !inputs.is_empty() {
                    runs::log_inputs(c, &m.run_id, &inputs)?;
                }
            }
            let dir = artifact_folder(&info.artifact_uri)?;
            let mut files = 0;
            for file in &m.artifacts {
                let path = format!("{dir}/{}", checked(&file.path)?);
                let there: bool = c
                    .query_row("SELECT 1 FROM artifacts WHERE path = ?1", [&path], |_| {
                        Ok(())
                    })
                    .optional()?
                    .is_some();
                if !there {
                    artifacts::record(c, &path, &file.blob, file.size)?;
                    files += 1;
                }
            }
            note_pull(c, &datastore, &seen, &m.run_id)?;
            let (outcome, note) = match merged {
                None => (Outcome::Created, None),
                Some(merged) => added(&merged, files),
            };
            Ok(Restored {
                local: m.run_id.clone(),
                outcome,
                note,
            })
        })
        .map_err(Into::into)
}

/// What a merge added, in words; `AlreadyHere` when nothing.
fn added(merged: &runs::Merged, files: usize) -> (Outcome, Option<String>) {
    let mut parts = Vec::new();
    for (n, what) in [
        (merged.points, "metric points"),
        (merged.params, "params"),
        (merged.tags, "tags"),
        (files, "artifacts"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if merged.ended {
        parts.push("its end".into());
    }
    if parts.is_empty() {
        (Outcome::AlreadyHere, None)
    } else {
        (
            Outcome::Updated,
            Some(format!("added {}", parts.join(", "))),
        )
    }
}

/// A dataset input as it reads here: a `lathe` source names the local version of the same
/// content (numbers differ between workspaces).
fn local_input(c: &Connection, input: &super::manifest::RunInput) -> TrackingResult<DatasetInput> {
    let mut local = input.input.clone();
    if let Some(link) = &input.asset {
        let version: Option<i64> = c
            .query_row(
                "SELECT v.version FROM asset_versions v JOIN assets a ON a.id = v.asset_id
                 WHERE a.name = ?1 AND v.content_hash = ?2",
                params![link.name, link.content_hash],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(version) = version
            && local.dataset.source_type == "lathe"
        {
            local.dataset.source = format!("{}:{version}", link.name);
        }
    }
    Ok(local)
}

fn artifact_folder(uri: &str) -> TrackingResult<String> {
    uri.strip_prefix(crate::tracking::api::ARTIFACTS_SCHEME)
        .map(|d| d.trim_matches('/').to_owned())
        .ok_or_else(|| {
            TrackingError::internal(format!("the artifact location {uri} is not in the store"))
        })
}

/// A path from a manifest, checked as any artifact path (no `..`, no NUL).
fn checked(path: &str) -> TrackingResult<String> {
    let path = crate::tracking::validate_artifact_path(path)?;
    if path.is_empty() {
        return Err(TrackingError::invalid(
            "a manifest names a file with an empty path",
        ));
    }
    Ok(path)
}

/// The local version of this model with the same files, if there is one.
pub fn model_here(tracking: &Tracking, m: &ModelManifest) -> Result<Option<String>> {
    let name = m.name.clone();
    let versions: Vec<(String, String)> = match tracking.read(move |c| {
        registry::get_model(c, &name)?;
        let mut stmt = c.prepare(
            "SELECT v.version, v.source FROM model_versions v
             JOIN registered_models m ON m.id = v.model_id WHERE m.name = ?1 ORDER BY v.version",
        )?;
        let rows = stmt.query_map([&name], |r| {
            Ok((r.get::<_, i64>(0)?.to_string(), r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }) {
        Ok(v) => v,
        Err(e) if e.code == crate::tracking::ErrorCode::ResourceDoesNotExist => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    for (version, source) in versions {
        if let Some(dir) = tracking.artifact_dir(&source)?
            && files_digest(&super::collect::files(tracking, &dir)?) == m.digest
        {
            return Ok(Some(format!("{}:{version}", m.name)));
        }
    }
    Ok(None)
}

/// Records a model version from its manifest: its files in the pulled run's artifacts when
/// the run is here, else in a folder of their own; aliases it had that are free here.
pub fn model(
    store: &Store,
    (datastore, layout, seen): (&str, &Layout, Seen),
    m: &ModelManifest,
) -> Result<Restored> {
    let tracking = store.tracking();
    let m = m.clone();
    let own_folder = format!(
        "synced/{}",
        layout
            .model(&m.name, m.version, &m.digest)
            .trim_end_matches(".json")
            .rsplit_once("/models/")
            .map_or(m.digest.as_str(), |(_, rest)| rest)
    );
    let datastore = datastore.to_owned();
    tracking
        .write(move |c| {
            let run_dir: Option<String> = match (&m.run_id, &m.path_in_run) {
                (Some(id), Some(path)) => c
                    .query_row("SELECT artifact_uri FROM runs WHERE uuid = ?1", [id], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()?
                    .map(|uri| artifact_folder(&uri))
                    .transpose()?
                    .map(|root| {
                        if path.is_empty() {
                            root
                        } else {
                            format!("{root}/{path}")
                        }
                    }),
                _ => None,
            };
            let dir = run_dir.unwrap_or(own_folder);
            for file in &m.files {
                artifacts::record(
                    c,
                    &format!("{dir}/{}", checked(&file.path)?),
                    &file.blob,
                    file.size,
                )?;
            }
            if registry::get_model(c, &m.name).is_err() {
                registry::create_model(c, &m.name, "", &[])?;
            }
            let version = registry::create_version(
                c,
                registry::NewVersion {
                    name: m.name.clone(),
                    source: format!("{}{dir}", crate::tracking::api::ARTIFACTS_SCHEME),
                    run_id: m.run_id.clone(),
                    run_link: String::new(),
                    description: m.description.clone(),
                    user_id: m.user_id.clone(),
                    tags: m.tags.clone(),
                    signature: m.signature.clone(),
                    model_id: None,
                },
            )?;
            let local = format!("{}:{}", m.name, version.version);
            let note = set_free_aliases(c, &m.name, &version.version, &m.aliases)?;
            note_pull(c, &datastore, &seen, &local)?;
            Ok(Restored {
                local,
                outcome: Outcome::Created,
                note,
            })
        })
        .map_err(Into::into)
}

/// Gives the local version `local` (`NAME:VERSION`) the `aliases` no version of it has here;
/// what was set, in words.
pub fn free_aliases(store: &Store, local: &str, aliases: &[String]) -> Result<Option<String>> {
    let Some((name, version)) = local.rsplit_once(':') else {
        return Ok(None);
    };
    if aliases.is_empty() {
        return Ok(None);
    }
    let (name, version, aliases) = (name.to_owned(), version.to_owned(), aliases.to_vec());
    Ok(store
        .tracking()
        .write(move |c| set_free_aliases(c, &name, &version, &aliases))?)
}

fn set_free_aliases(
    c: &Connection,
    name: &str,
    version: &str,
    aliases: &[String],
) -> TrackingResult<Option<String>> {
    let mut set = Vec::new();
    for alias in aliases {
        if registry::version_by_alias(c, name, alias).is_err() {
            registry::set_alias(c, name, alias, version)?;
            set.push(alias.as_str());
        }
    }
    Ok((!set.is_empty()).then(|| format!("alias {} set", set.join(", "))))
}
