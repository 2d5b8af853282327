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
mod pull;
mod push;
pub(crate) mod restore;
pub mod transfer;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::store::Store;
use crate::{Error, Result};
use manifest::{Kind, Manifest};

pub use pull::pull;
pub use push::push;

/// What to sync; all of it when every list is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Pull: a local version has the same content, or the run is here as it is there.
    AlreadyHere,
    /// Pull: the run was here; what the datastore's copy has more was added (see `note`).
    Updated,
    /// Left out, with the reason in `note`: a model version whose files are not in the
    /// store; a run whose copy in the datastore changed since this workspace last saw it.
    Skipped,
    /// The other side refused it (its reason in `note`); the rest went on.
    Failed,
}

/// One thing a sync looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub kind: Kind,
    /// As the user knows it where it came from: `asset churn:3`.
    pub label: String,
    pub outcome: Outcome,
    /// What it is here: `churn:4`, a run id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// What it is in the datastore: `churn:1`, a run id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
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

    /// One line on what a push (`push`) or pull did: `3 of 5 items sent to s3://b/p; 12 files
    /// (3.4 MiB) sent, 40 files already there; 1.2 s` (a file: a blob of a datastore, an
    /// artifact of a tracking server).
    pub fn summary(&self, push: bool) -> String {
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        let (done, verb, direction, blobs_verb, present) = if push {
            (
                self.count(Outcome::Sent),
                "sent",
                "to",
                "sent",
                "already there",
            )
        } else {
            (
                self.count(Outcome::Created) + self.count(Outcome::Updated),
                "recorded",
                "from",
                "fetched",
                "already here",
            )
        };
        format!(
            "{done} of {} {verb} {direction} {}; {} ({}) {blobs_verb}, {} {present}; {:.1} s",
            plural(self.items.len(), "item"),
            self.location,
            plural(self.blobs_moved, "file"),
            crate::format::bytes(self.bytes_moved as i64),
            plural(self.blobs_present, "file"),
            self.seconds
        )
    }
}

impl Item {
    /// Its name on the other side (push: in the datastore, pull: here) when that differs from
    /// the one in its label, as `as customers:2 there`.
    pub fn moved_to(&self, push: bool) -> Option<String> {
        let (other, side) = if push {
            (self.remote.as_deref(), "there")
        } else {
            (self.local.as_deref(), "here")
        };
        other
            .filter(|o| {
                !self.label.ends_with(&format!(" {o}")) && !self.label.ends_with(&format!("({o})"))
            })
            .map(|o| format!("as {o} {side}"))
    }

    /// Its outcome in a word or two.
    pub fn outcome_word(&self) -> &'static str {
        match self.outcome {
            Outcome::Sent => "sent",
            Outcome::Unchanged => "unchanged",
            Outcome::Created => "created",
            Outcome::AlreadyHere => "already here",
            Outcome::Updated => "updated",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// Datastore `name`'s settings, a client with its credentials, and where sync's objects are.
///
/// # Errors
/// No such datastore; its credentials not found.
fn open(
    store: &Store,
    name: &str,
) -> Result<(
    crate::datastores::DatastoreSpec,
    crate::datastores::s3::Client,
    manifest::Layout,
)> {
    let spec = crate::datastores::get(store, name)?.spec;
    let client = crate::datastores::s3::Client::new(&spec)?;
    let layout = manifest::Layout::new(&spec.prefix);
    Ok((spec, client, layout))
}

/// `NAME:VERSION` as its parts; a name alone (or one whose last part is not a number).
fn split_version(name: &str) -> (&str, Option<i64>) {
    match name.rsplit_once(':') {
        Some((n, v)) if v.parse::<i64>().is_ok() => (n, v.parse().ok()),
        _ => (name, None),
    }
}

/// How a manifest is named in the datastore: `churn:1`, a run's id.
fn remote_name(m: &Manifest) -> String {
    match m {
        Manifest::Asset(a) => format!("{}:{}", a.name, a.version),
        Manifest::Model(v) => format!("{}:{}", v.name, v.version),
        Manifest::Run(r) => r.run_id.clone(),
    }
}

/// What this workspace last wrote or read at `key` of datastore `datastore`: the manifest's
/// fingerprint and the object's ETag.
pub(crate) fn last_seen(
    store: &Store,
    datastore: &str,
    key: &str,
) -> Result<Option<(String, String)>> {
    let (datastore, key) = (datastore.to_owned(), key.to_owned());
    store.read::<_, Error>(move |c| {
        Ok(c.query_row(
            "SELECT fingerprint, etag FROM sync_map WHERE datastore = ?1 AND remote = ?2
             ORDER BY synced_at_ms DESC LIMIT 1",
            params![datastore, key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
    })
}

/// Notes what this workspace wrote (`push`) or read (`pull`) at `key`.
pub(crate) fn note(
    c: &rusqlite::Connection,
    direction: &str,
    (datastore, key): (&str, &str),
    (local, fingerprint, etag): (&str, &str, &str),
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO sync_map (datastore, direction, remote, local, fingerprint, etag,
             synced_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (datastore, direction, remote) DO UPDATE SET local = excluded.local,
             fingerprint = excluded.fingerprint, etag = excluded.etag,
             synced_at_ms = excluded.synced_at_ms",
    )?
    .execute(params![
        datastore,
        direction,
        key,
        local,
        fingerprint,
        etag,
        crate::db::now_millis()
    ])?;
    Ok(())
}

/// The hash a manifest's bytes are known by here.
pub(crate) fn fingerprint(json: &[u8]) -> String {
    blake3::hash(json).to_hex().to_string()
}

/// An ETag without the quotes S3 puts around it (listings and headers differ in how they
/// escape them).
fn bare(etag: &str) -> &str {
    etag.trim_matches('"')
}
