//! `lathe sync`: data asset versions, runs (with every metric point and their artifacts) and
//! registered model versions copied between a workspace and a datastore, so another workspace
//! can pull them. Blobs go under their hash and are sent once; each thing is described by a
//! manifest written after its blobs ([`manifest`] has the layout), so a reader never sees a
//! manifest whose bytes are not all there.
//!
//! - **Push** reads the manifests of what is chosen, lists the blobs the datastore has, sends
//!   the others ([`transfer::upload`]: parallel, large blobs in parts, resumable), then writes
//!   the manifests that are new or changed since this workspace last wrote them (`sync_map`).
//! - **Pull** lists and reads the manifests, maps each to what is already here — an asset or
//!   model version with the same content, a run with the same id — fetches the blobs of the
//!   rest ([`transfer::download`]: checked against their hashes) and records each in one
//!   transaction: a new version takes the next local number, and nothing local is changed.
//!   `sync_map` keeps which remote manifest is which local thing.

pub mod collect;
pub mod manifest;
mod restore;
pub mod transfer;

use std::collections::HashSet;
use std::time::Instant;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::datastores::{self, s3::Client};
use crate::jobs::Progress;
use crate::store::Store;
use crate::{Error, Result};
use manifest::{Kind, Layout, Manifest};

/// What to sync; all of it when every list is empty.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Data assets, `NAME` (every version) or `NAME:VERSION`.
    pub assets: Vec<String>,
    /// Runs by id.
    pub runs: Vec<String>,
    /// Every run of these experiments.
    pub experiments: Vec<String>,
    /// Registered models, `NAME` (every version) or `NAME:VERSION`.
    pub models: Vec<String>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
            && self.runs.is_empty()
            && self.experiments.is_empty()
            && self.models.is_empty()
    }
}

/// How many requests a sync keeps in flight by default (boto3's transfer manager uses 10).
pub const THREADS: usize = 10;

/// What happened to one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Push: its manifest was written.
    Sent,
    /// Push: the datastore has this manifest as this workspace last wrote it.
    Unchanged,
    /// Pull: recorded here.
    Created,
    /// Pull: a local version has the same content, or the run is here.
    AlreadyHere,
    /// Left out, with the reason in `note`.
    Skipped,
}

/// One thing a sync looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub kind: Kind,
    /// As the user knows it where it came from: `asset churn:3`.
    pub label: String,
    pub outcome: Outcome,
    /// What it is here (a pull): `churn:4`, a run id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a push or pull did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub datastore: String,
    pub location: String,
    pub items: Vec<Item>,
    /// Blobs sent or fetched, and the bytes that went over the wire for them (less than their
    /// size when a broken push had sent some parts).
    pub blobs_moved: usize,
    pub bytes_moved: u64,
    /// Blobs the other side had already.
    pub blobs_present: usize,
    pub seconds: f64,
}

impl Report {
    /// How many items ended as `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.items.iter().filter(|i| i.outcome == outcome).count()
    }
}

/// Sends what `selection` names to datastore `name`.
///
/// # Errors
/// No such datastore; a name in `selection` the workspace does not have; the datastore
/// unreachable, refusing the credentials or missing its bucket; a cancel. What was sent stays
/// sent, and the next push goes on from there.
pub fn push(
    store: &Store,
    name: &str,
    selection: &Selection,
    threads: usize,
    progress: &Progress,
) -> Result<Report> {
    let started = Instant::now();
    let datastore = datastores::get(store, name)?.spec;
    let client = Client::new(&datastore)?;
    let layout = Layout::new(&datastore.prefix);
    progress.start_stage("reading the workspace", 0);
    let (manifests, left_out) = collect::manifests(store, selection)?;
    progress.start_stage("listing the datastore", 0);
    let present: HashSet<String> = listed_blobs(&client, &layout)?;
    let mut wanted: Vec<(String, u64)> = manifests.iter().flat_map(Manifest::blobs).collect();
    wanted.sort_unstable();
    wanted.dedup_by(|a, b| a.0 == b.0);
    let (had, send): (Vec<_>, Vec<_>) = wanted.into_iter().partition(|(h, _)| present.contains(h));
    let sent = transfer::upload(store, &client, (name, &layout), &send, threads, progress)?;
    let written: HashSet<String> = manifest_keys(&client, &layout, &manifests)?;
    progress.start_stage("writing manifests", manifests.len() as u64);
    let mut items = Vec::with_capacity(manifests.len() + left_out.len());
    for m in &manifests {
        progress.check()?;
        let key = m.key(&layout);
        let json = m.to_json();
        let fingerprint = blake3::hash(&json).to_hex().to_string();
        let unchanged =
            written.contains(&key) && pushed(store, name, &key)? == Some(fingerprint.clone());
        if !unchanged {
            client.put_bytes(&key, &json)?;
            note_push(store, name, &key, &m.label(), &fingerprint)?;
        }
        items.push(Item {
            kind: m.kind(),
            label: m.label(),
            outcome: if unchanged {
                Outcome::Unchanged
            } else {
                Outcome::Sent
            },
            local: None,
            note: None,
        });
        progress.advance(1);
    }
    items.extend(left_out.into_iter().map(|why| Item {
        kind: Kind::Model,
        label: why.split(':').next().unwrap_or_default().to_owned(),
        outcome: Outcome::Skipped,
        local: None,
        note: Some(why),
    }));
    Ok(Report {
        datastore: name.to_owned(),
        location: datastore.location(),
        items,
        blobs_moved: send.len(),
        bytes_moved: sent,
        blobs_present: had.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The hashes of the blobs the datastore holds.
fn listed_blobs(client: &Client, layout: &Layout) -> Result<HashSet<String>> {
    let folder = layout.blobs();
    Ok(client
        .list_all(&folder)?
        .into_iter()
        .filter_map(|(key, _)| key.strip_prefix(&folder).map(str::to_owned))
        .collect())
}

/// The keys of the manifests the datastore holds in the folders `manifests` go to.
fn manifest_keys(
    client: &Client,
    layout: &Layout,
    manifests: &[Manifest],
) -> Result<HashSet<String>> {
    let kinds: HashSet<Kind> = manifests.iter().map(Manifest::kind).collect();
    let mut keys = HashSet::new();
    for kind in kinds {
        keys.extend(
            client
                .list_all(&layout.folder(kind, None))?
                .into_iter()
                .map(|(k, _)| k),
        );
    }
    Ok(keys)
}

/// The fingerprint of the manifest this workspace last wrote at `key`.
fn pushed(store: &Store, datastore: &str, key: &str) -> Result<Option<String>> {
    let (datastore, key) = (datastore.to_owned(), key.to_owned());
    store.read::<_, Error>(move |c| {
        Ok(c.query_row(
            "SELECT fingerprint FROM sync_map
             WHERE datastore = ?1 AND direction = 'push' AND remote = ?2",
            params![datastore, key],
            |r| r.get(0),
        )
        .optional()?)
    })
}

fn note_push(
    store: &Store,
    datastore: &str,
    key: &str,
    local: &str,
    fingerprint: &str,
) -> Result<()> {
    let row = (
        datastore.to_owned(),
        key.to_owned(),
        local.to_owned(),
        fingerprint.to_owned(),
    );
    store.transaction::<_, Error>(move |c| {
        c.execute(
            "INSERT INTO sync_map (datastore, direction, remote, local, fingerprint, synced_at_ms)
             VALUES (?1, 'push', ?2, ?3, ?4, ?5)
             ON CONFLICT (datastore, direction, remote) DO UPDATE SET local = excluded.local,
                 fingerprint = excluded.fingerprint, synced_at_ms = excluded.synced_at_ms",
            params![row.0, row.1, row.2, row.3, crate::db::now_millis()],
        )?;
        Ok(())
    })
}

/// A manifest read for a pull, with where it was and the hash of its bytes.
struct Pulled {
    key: String,
    fingerprint: String,
    manifest: Manifest,
}

/// Brings what `selection` names from datastore `name` into the workspace.
///
/// # Errors
/// No such datastore; a name in `selection` the datastore does not have; a manifest that does
/// not read; the datastore unreachable; a blob whose bytes do not match its hash; a cancel.
/// What was recorded stays, blobs fetched are kept for the next pull, nothing is half-recorded.
pub fn pull(
    store: &Store,
    name: &str,
    selection: &Selection,
    threads: usize,
    progress: &Progress,
) -> Result<Report> {
    let started = Instant::now();
    let datastore = datastores::get(store, name)?.spec;
    let client = Client::new(&datastore)?;
    let layout = Layout::new(&datastore.prefix);
    progress.start_stage("listing the datastore", 0);
    let location = datastore.location();
    let keys = remote_manifests(&client, (&layout, &location), selection)?;
    progress.start_stage("reading manifests", keys.len() as u64);
    let mut pulled = read_manifests(&client, &layout, &keys, (threads, progress))?;
    pulled.retain(|p| selection.wants(&p.manifest));
    for wanted in &selection.runs {
        if !pulled
            .iter()
            .any(|p| matches!(&p.manifest, Manifest::Run(r) if r.run_id == *wanted))
        {
            return Err(Error::Datastore(format!("{location} has no run {wanted}")));
        }
    }
    for (kind, names) in [
        (Kind::Asset, &selection.assets),
        (Kind::Model, &selection.models),
    ] {
        for wanted in names.iter().filter(|n| split_version(n).1.is_some()) {
            if !pulled
                .iter()
                .any(|p| p.manifest.kind() == kind && selection_names(&p.manifest, wanted))
            {
                return Err(Error::Datastore(format!(
                    "{location} has no {} {wanted}",
                    kind.as_str()
                )));
            }
        }
    }
    pulled.sort_by_key(|p| (p.manifest.kind(), version_of(&p.manifest)));
    // What is here already, and the blobs of the rest that are not.
    let tracking = store.tracking();
    let mut items = Vec::with_capacity(pulled.len());
    let mut todo = Vec::new();
    for p in pulled {
        let here = match &p.manifest {
            Manifest::Asset(a) => restore::asset_here(store, a)?,
            Manifest::Run(r) => restore::run_here(store, &r.run_id)?.then(|| r.run_id.clone()),
            Manifest::Model(m) => restore::model_here(&tracking, m)?,
        };
        match here {
            Some(local) => {
                restore::map(store, name, &p.key, &local, &p.fingerprint)?;
                items.push(Item {
                    kind: p.manifest.kind(),
                    label: p.manifest.label(),
                    outcome: Outcome::AlreadyHere,
                    local: Some(local),
                    note: None,
                });
            }
            None => todo.push(p),
        }
    }
    let mut fetch: Vec<(String, u64)> = todo.iter().flat_map(|p| p.manifest.blobs()).collect();
    fetch.sort_unstable();
    fetch.dedup_by(|a, b| a.0 == b.0);
    let (had, fetch): (Vec<_>, Vec<_>) = fetch
        .into_iter()
        .partition(|(h, _)| store.blobs().contains(h));
    transfer::download(store, &client, &layout, &fetch, threads, progress)?;
    progress.start_stage("recording", todo.len() as u64);
    for p in todo {
        progress.check()?;
        let restored = match &p.manifest {
            Manifest::Asset(a) => restore::asset(store, name, &p.key, &p.fingerprint, a),
            Manifest::Run(r) => restore::run(store, name, &p.key, &p.fingerprint, r),
            Manifest::Model(m) => restore::model(store, (name, &layout), &p.key, &p.fingerprint, m),
        }
        .map_err(|e| Error::Datastore(format!("{}: {e}", p.manifest.label())))?;
        items.push(Item {
            kind: p.manifest.kind(),
            label: p.manifest.label(),
            outcome: if restored.created {
                Outcome::Created
            } else {
                Outcome::AlreadyHere
            },
            local: Some(restored.local),
            note: None,
        });
        progress.advance(1);
    }
    Ok(Report {
        datastore: name.to_owned(),
        location,
        items,
        blobs_moved: fetch.len(),
        bytes_moved: fetch.iter().map(|(_, s)| s).sum(),
        blobs_present: had.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether `m` is the version `wanted` (`NAME:VERSION`) names.
fn selection_names(m: &Manifest, wanted: &str) -> bool {
    let (name, version) = split_version(wanted);
    match m {
        Manifest::Asset(a) => a.name == name && Some(a.version) == version,
        Manifest::Model(v) => v.name == name && Some(v.version) == version,
        Manifest::Run(_) => false,
    }
}

/// The number a manifest had where it was pushed from, to record versions in their order.
fn version_of(m: &Manifest) -> (i64, String) {
    match m {
        Manifest::Asset(a) => (a.version, a.name.clone()),
        Manifest::Run(r) => (r.start_time.unwrap_or(0), r.run_id.clone()),
        Manifest::Model(m) => (m.version, m.name.clone()),
    }
}

/// The keys of the manifests in the folders `selection` points at (a name's own folder,
/// or a kind's), checked to name something.
fn remote_manifests(
    client: &Client,
    (layout, location): (&Layout, &str),
    selection: &Selection,
) -> Result<Vec<String>> {
    let everything = selection.is_empty();
    let mut folders: Vec<(String, Option<String>)> = Vec::new();
    for (kind, names) in [
        (Kind::Asset, &selection.assets),
        (Kind::Model, &selection.models),
    ] {
        if everything {
            folders.push((layout.folder(kind, None), None));
        }
        for name in names {
            let name = split_version(name).0;
            folders.push((
                layout.folder(kind, Some(name)),
                Some(format!("{} {name}", kind.as_str())),
            ));
        }
    }
    if everything || !selection.runs.is_empty() || !selection.experiments.is_empty() {
        folders.push((layout.folder(Kind::Run, None), None));
    }
    let mut keys = Vec::new();
    for (folder, named) in folders {
        let found: Vec<String> = client
            .list_all(&folder)?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| layout.parse(k).is_some())
            .collect();
        if let Some(what) = named.filter(|_| found.is_empty()) {
            return Err(Error::Datastore(format!("{location} has no {what}")));
        }
        keys.extend(found);
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

/// `NAME:VERSION` as its parts; a name alone (or one whose last part is not a number).
fn split_version(name: &str) -> (&str, Option<i64>) {
    match name.rsplit_once(':') {
        Some((n, v)) if v.parse::<i64>().is_ok() => (n, v.parse().ok()),
        _ => (name, None),
    }
}

impl Selection {
    /// Whether a pulled manifest is one this selection names.
    fn wants(&self, m: &Manifest) -> bool {
        let named = |names: &[String], name: &str, version: i64| {
            names.iter().any(|n| match split_version(n) {
                (n, Some(v)) => n == name && v == version,
                (n, None) => n == name,
            })
        };
        self.is_empty()
            || match m {
                Manifest::Asset(a) => named(&self.assets, &a.name, a.version),
                Manifest::Model(v) => named(&self.models, &v.name, v.version),
                Manifest::Run(r) => {
                    self.runs.contains(&r.run_id) || self.experiments.contains(&r.experiment)
                }
            }
    }
}

/// Reads the manifests at `keys`, `threads` at a time.
fn read_manifests(
    client: &Client,
    layout: &Layout,
    keys: &[String],
    (threads, progress): (usize, &Progress),
) -> Result<Vec<Pulled>> {
    /// A manifest is small; a larger object under a manifest's key is not one.
    const MANIFEST_LIMIT: u64 = 256 << 20;
    let out = std::sync::Mutex::new(Vec::with_capacity(keys.len()));
    transfer::each(keys, threads, progress, |key| {
        let Some((kind, _)) = layout.parse(key) else {
            return Ok(());
        };
        let json = client.get_bytes(key, MANIFEST_LIMIT)?;
        let manifest = Manifest::from_json(kind, key, &json)?;
        let fingerprint = blake3::hash(&json).to_hex().to_string();
        if let Ok(mut out) = out.lock() {
            out.push(Pulled {
                key: key.clone(),
                fingerprint,
                manifest,
            });
        }
        progress.advance(1);
        Ok(())
    })?;
    Ok(out.into_inner().unwrap_or_default())
}
