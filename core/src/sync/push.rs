//! `lathe sync push`: the blobs the datastore lacks, then the manifests — an asset or model
//! version the datastore has (by content) is not written again; new content takes the
//! datastore's next number for its name; a run is written when it changed here, and never
//! over a copy someone else wrote since this workspace last saw it.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::manifest::{Kind, Layout, Manifest};
use super::{Item, Outcome, Report, Selection, bare, collect, fingerprint, last_seen, note};
use crate::datastores::s3::{Client, Object};
use crate::jobs::Progress;
use crate::store::Store;
use crate::{Error, Result};

/// Sends what `selection` names to datastore `name`, `threads` requests at a time.
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
    let (datastore, client, layout) = super::open(store, name)?;
    progress.start_stage("reading the workspace", 0);
    let (manifests, left_out) = collect::manifests(store, selection)?;
    progress.start_stage("listing the datastore", 0);
    // A blob is there when an object of its hash and size is.
    let folder = layout.blobs();
    let present: HashMap<String, u64> = client
        .list_all(&folder)?
        .into_iter()
        .filter_map(|o| Some((o.key.strip_prefix(&folder)?.to_owned(), o.size)))
        .collect();
    let mut wanted: Vec<(String, u64)> = manifests.iter().flat_map(Manifest::blobs).collect();
    wanted.sort_unstable();
    wanted.dedup_by(|a, b| a.0 == b.0);
    let (had, send): (Vec<_>, Vec<_>) = wanted
        .into_iter()
        .partition(|(h, size)| present.get(h) == Some(size));
    let sent = super::transfer::upload(store, &client, (name, &layout), &send, threads, progress)?;

    let mut remote = Remote::list(&client, &layout, &manifests)?;
    progress.start_stage("writing manifests", manifests.len() as u64);
    let mut items = Vec::with_capacity(manifests.len() + left_out.len());
    for m in manifests {
        progress.check()?;
        let (label, kind) = (m.label(), m.kind());
        let (outcome, remote_name, note) = match kind {
            Kind::Asset | Kind::Model => remote.version(store, (name, &client, &layout), m)?,
            Kind::Run => remote.run(store, (name, &client, &layout), &m)?,
        };
        items.push(Item {
            kind,
            label,
            outcome,
            local: None,
            remote: Some(remote_name),
            note,
        });
        progress.advance(1);
    }
    items.extend(left_out.into_iter().map(|(label, why)| Item {
        kind: Kind::Model,
        label,
        outcome: Outcome::Skipped,
        local: None,
        remote: None,
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

/// The manifests the datastore holds in the folders a push writes to.
struct Remote {
    /// By key.
    objects: HashMap<String, Object>,
    /// (kind, name) → (version, content hash or digest) of the versions there.
    versions: HashMap<(Kind, String), Vec<(i64, String)>>,
}

type Target<'a> = (&'a str, &'a Client, &'a Layout);

impl Remote {
    fn list(client: &Client, layout: &Layout, manifests: &[Manifest]) -> Result<Self> {
        let kinds: HashSet<Kind> = manifests.iter().map(Manifest::kind).collect();
        let mut remote = Self {
            objects: HashMap::new(),
            versions: HashMap::new(),
        };
        for kind in kinds {
            for object in client.list_all(&layout.folder(kind, None))? {
                if let Some(parsed) = layout.parse(&object.key) {
                    if let Some(version) = parsed.version {
                        remote
                            .versions
                            .entry((kind, parsed.name))
                            .or_default()
                            .push((version, parsed.id));
                    }
                    remote.objects.insert(object.key.clone(), object);
                }
            }
        }
        Ok(remote)
    }

    /// An asset or model version: there already (by content), or written with the next
    /// number.
    fn version(
        &mut self,
        store: &Store,
        (datastore, client, layout): Target<'_>,
        mut m: Manifest,
    ) -> Result<(Outcome, String, Option<String>)> {
        let versions = self
            .versions
            .entry((m.kind(), m.name().to_owned()))
            .or_default();
        if let Some((version, _)) = versions.iter().find(|(_, id)| id == m.id()) {
            return Ok((Outcome::Unchanged, format!("{}:{version}", m.name()), None));
        }
        let next = versions.iter().map(|(v, _)| *v).max().unwrap_or(0) + 1;
        versions.push((next, m.id().to_owned()));
        m.set_version(next);
        write(store, (datastore, client, layout), &m)?;
        Ok((Outcome::Sent, super::remote_name(&m), None))
    }

    /// A run: written when new there, or when the copy there is the one this workspace last
    /// wrote or read; left alone (and named) when someone else changed it since.
    fn run(
        &mut self,
        store: &Store,
        (datastore, client, layout): Target<'_>,
        m: &Manifest,
    ) -> Result<(Outcome, String, Option<String>)> {
        let key = m.key(layout);
        let json = m.to_json();
        let ours = fingerprint(&json);
        let id = m.name().to_owned();
        let Some(there) = self.objects.get(&key) else {
            write(store, (datastore, client, layout), m)?;
            return Ok((Outcome::Sent, id, None));
        };
        if let Some((seen, etag)) = last_seen(store, datastore, &key)?
            && bare(&etag) == bare(&there.etag)
        {
            if seen == ours {
                return Ok((Outcome::Unchanged, id, None));
            }
            write(store, (datastore, client, layout), m)?;
            return Ok((Outcome::Sent, id, None));
        }
        // Written by someone else since: the same run as here, or a conflict left alone.
        let theirs = client.get_bytes(&key, MANIFEST_LIMIT)?;
        if fingerprint(&theirs) == ours {
            let (ds, k, local, etag) = (datastore.to_owned(), key, m.label(), there.etag.clone());
            store.transaction::<_, Error>(move |c| {
                note(c, "push", (&ds, &k), (&local, &ours, &etag))?;
                Ok(())
            })?;
            return Ok((Outcome::Unchanged, id, None));
        }
        Ok((
            Outcome::Skipped,
            id,
            Some(
                "the datastore's copy changed since this workspace last pushed or pulled it; \
                 pull it first, then push"
                    .into(),
            ),
        ))
    }
}

/// A manifest is small; a larger object under a manifest's key is not one.
pub const MANIFEST_LIMIT: u64 = 256 << 20;

/// Writes a manifest and notes what was written.
fn write(store: &Store, (datastore, client, layout): Target<'_>, m: &Manifest) -> Result<()> {
    let key = m.key(layout);
    let json = m.to_json();
    let etag = client.put_bytes(&key, &json)?;
    let (ds, local, fp) = (datastore.to_owned(), m.label(), fingerprint(&json));
    store.transaction::<_, Error>(move |c| {
        note(c, "push", (&ds, &key), (&local, &fp, &etag))?;
        Ok(())
    })
}
