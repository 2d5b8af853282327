//! Pulled manifests recorded in the workspace, each in one transaction with its row in
//! `sync_map`: a version whose content a local one has maps to it; otherwise it takes the
//! next local number. Nothing local is changed.

use rusqlite::{Connection, OptionalExtension, params};

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
    /// False when a local one already had its content (or id).
    pub created: bool,
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
    datastore: &str,
    key: &str,
    fingerprint: &str,
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
    map(store, datastore, key, &local, fingerprint)?;
    Ok(Restored { local, created })
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

/// Records a run from its manifest, in its experiment (made when there is none of its name),
/// with its artifacts (their blobs are in the store) and its inputs linked to the local
/// versions of the same content.
pub fn run(
    store: &Store,
    datastore: &str,
    key: &str,
    fingerprint: &str,
    m: &RunManifest,
) -> Result<Restored> {
    let tracking = store.tracking();
    let experiment = tracking.experiment_named(&m.experiment)?;
    let m = m.clone();
    let (datastore, key, fingerprint) =
        (datastore.to_owned(), key.to_owned(), fingerprint.to_owned());
    let local = tracking.write(move |c| {
        let experiment_id = experiments::require_active(c, &experiment)?;
        let info = runs::restore(
            c,
            &runs::RestoredRun {
                info: crate::tracking::types::RunInfo {
                    run_id: m.run_id.clone(),
                    run_uuid: m.run_id.clone(),
                    run_name: m.run_name.clone(),
                    experiment_id: experiment.clone(),
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
            },
        )?;
        let inputs: Vec<DatasetInput> = m
            .inputs
            .iter()
            .map(|i| local_input(c, i))
            .collect::<TrackingResult<_>>()?;
        if !inputs.is_empty() {
            runs::log_inputs(c, &m.run_id, &inputs)?;
        }
        let dir = artifact_folder(&info.artifact_uri)?;
        for file in &m.artifacts {
            artifacts::record(
                c,
                &format!("{dir}/{}", checked(&file.path)?),
                &file.blob,
                file.size,
            )?;
        }
        map_row(c, &datastore, &key, &m.run_id, &fingerprint)?;
        Ok(m.run_id.clone())
    })?;
    Ok(Restored {
        local,
        created: true,
    })
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
    (datastore, layout): (&str, &Layout),
    key: &str,
    fingerprint: &str,
    m: &ModelManifest,
) -> Result<Restored> {
    let tracking = store.tracking();
    let m = m.clone();
    let own_folder = format!(
        "synced/{}",
        layout
            .model(&m.name, &m.digest)
            .trim_end_matches(".json")
            .rsplit_once("/models/")
            .map_or(m.digest.as_str(), |(_, rest)| rest)
    );
    let (datastore, key, fingerprint) =
        (datastore.to_owned(), key.to_owned(), fingerprint.to_owned());
    let local = tracking.write(move |c| {
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
        for alias in &m.aliases {
            if registry::version_by_alias(c, &m.name, alias).is_err() {
                registry::set_alias(c, &m.name, alias, &version.version)?;
            }
        }
        let local = format!("{}:{}", m.name, version.version);
        map_row(c, &datastore, &key, &local, &fingerprint)?;
        Ok(local)
    })?;
    Ok(Restored {
        local,
        created: true,
    })
}

/// Notes that the manifest at `key` is `local` here (a pull that found it already here).
pub fn map(
    store: &Store,
    datastore: &str,
    key: &str,
    local: &str,
    fingerprint: &str,
) -> Result<()> {
    let (datastore, key, local, fingerprint) = (
        datastore.to_owned(),
        key.to_owned(),
        local.to_owned(),
        fingerprint.to_owned(),
    );
    store.transaction::<_, crate::Error>(move |c| {
        map_row(c, &datastore, &key, &local, &fingerprint)?;
        Ok(())
    })
}

fn map_row(
    c: &Connection,
    datastore: &str,
    key: &str,
    local: &str,
    fingerprint: &str,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO sync_map (datastore, direction, remote, local, fingerprint, synced_at_ms)
         VALUES (?1, 'pull', ?2, ?3, ?4, ?5)
         ON CONFLICT (datastore, direction, remote) DO UPDATE SET local = excluded.local,
             fingerprint = excluded.fingerprint, synced_at_ms = excluded.synced_at_ms",
    )?
    .execute(params![
        datastore,
        key,
        local,
        fingerprint,
        crate::db::now_millis()
    ])?;
    Ok(())
}
