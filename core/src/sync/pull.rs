//! `lathe sync pull`: the manifests `selection` names, each mapped to what is here — an asset
//! or model version of the same content, a run of the same id (to which what the datastore's
//! copy has more is added) — the blobs of the rest fetched and checked, then each recorded in
//! one transaction.

use std::time::Instant;

use super::manifest::{Kind, Layout, Manifest};
use super::{
    Item, Outcome, Report, Selection, fingerprint, note, remote_name, restore, split_version,
};
use crate::datastores::s3::{Client, Object};
use crate::jobs::Progress;
use crate::store::Store;
use crate::{Error, Result};

/// A manifest read for a pull, with where it was, the hash of its bytes and its ETag.
struct Pulled {
    key: String,
    fingerprint: String,
    etag: String,
    manifest: Manifest,
}

/// Brings what `selection` names from datastore `name` into the workspace, `threads` requests
/// at a time.
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
    let (datastore, client, layout) = super::open(store, name)?;
    let location = datastore.location();
    progress.start_stage("listing the datastore", 0);
    let objects = remote_manifests(&client, (&layout, &location), selection)?;
    progress.start_stage("reading manifests", objects.len() as u64);
    let mut pulled = read_manifests(&client, &layout, &objects, (threads, progress))?;
    pulled.retain(|p| selection.wants(&p.manifest));
    selection.check_found(&pulled, &location)?;
    pulled.sort_by_key(|p| (p.manifest.kind(), order(&p.manifest)));

    // What is here already; the rest, and the runs here that the datastore has more of.
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
            Some(_) if matches!(p.manifest, Manifest::Run(_)) => todo.push(p),
            Some(local) => {
                let note_text = match &p.manifest {
                    Manifest::Model(m) => restore::free_aliases(store, &local, &m.aliases)?,
                    _ => None,
                };
                record_seen(store, name, &p, &local)?;
                items.push(item(&p, Outcome::AlreadyHere, local, note_text));
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
    super::transfer::download(store, &client, &layout, &fetch, threads, progress)?;

    progress.start_stage("recording", todo.len() as u64);
    let seen = |p: &Pulled| (p.key.clone(), p.fingerprint.clone(), p.etag.clone());
    for p in todo {
        progress.check()?;
        let restored = match &p.manifest {
            Manifest::Asset(a) => restore::asset(store, (name, seen(&p)), a),
            Manifest::Run(r) => restore::run(store, (name, seen(&p)), r),
            Manifest::Model(m) => restore::model(store, (name, &layout, seen(&p)), m),
        }
        .map_err(|e| Error::Datastore(format!("{}: {e}", p.manifest.label())))?;
        items.push(item(&p, restored.outcome, restored.local, restored.note));
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

fn item(p: &Pulled, outcome: Outcome, local: String, note: Option<String>) -> Item {
    Item {
        kind: p.manifest.kind(),
        label: p.manifest.label(),
        outcome,
        local: Some(local),
        remote: Some(remote_name(&p.manifest)),
        note,
    }
}

/// Notes that the manifest `p` is `local` here.
fn record_seen(store: &Store, datastore: &str, p: &Pulled, local: &str) -> Result<()> {
    let (ds, key, local, fp, etag) = (
        datastore.to_owned(),
        p.key.clone(),
        local.to_owned(),
        p.fingerprint.clone(),
        p.etag.clone(),
    );
    store.transaction::<_, Error>(move |c| {
        note(c, "pull", (&ds, &key), (&local, &fp, &etag))?;
        Ok(())
    })
}

/// The order things are recorded in: versions by their number, runs by start.
fn order(m: &Manifest) -> (String, i64, String) {
    match m {
        Manifest::Asset(a) => (a.name.clone(), a.version, String::new()),
        Manifest::Run(r) => (String::new(), r.start_time.unwrap_or(0), r.run_id.clone()),
        Manifest::Model(m) => (m.name.clone(), m.version, String::new()),
    }
}

/// The manifests in the folders `selection` points at (a name's own folder, or a kind's),
/// checked to name something.
fn remote_manifests(
    client: &Client,
    (layout, location): (&Layout, &str),
    selection: &Selection,
) -> Result<Vec<Object>> {
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
    let mut objects: Vec<Object> = Vec::new();
    for (folder, named) in folders {
        let found: Vec<Object> = client
            .list_all(&folder)?
            .into_iter()
            .filter(|o| layout.parse(&o.key).is_some())
            .collect();
        if let Some(what) = named.filter(|_| found.is_empty()) {
            return Err(Error::Datastore(format!("{location} has no {what}")));
        }
        objects.extend(found);
    }
    objects.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    objects.dedup_by(|a, b| a.key == b.key);
    Ok(objects)
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

    /// Every run, experiment and `NAME:VERSION` named is among the manifests read.
    fn check_found(&self, pulled: &[Pulled], location: &str) -> Result<()> {
        let missing = |what: String| Err(Error::Datastore(format!("{location} has no {what}")));
        let runs = || {
            pulled.iter().filter_map(|p| match &p.manifest {
                Manifest::Run(r) => Some(r),
                _ => None,
            })
        };
        for id in &self.runs {
            if !runs().any(|r| r.run_id == *id) {
                return missing(format!("run {id}"));
            }
        }
        for experiment in &self.experiments {
            if !runs().any(|r| r.experiment == *experiment) {
                return missing(format!("run of experiment '{experiment}'"));
            }
        }
        for (kind, names) in [(Kind::Asset, &self.assets), (Kind::Model, &self.models)] {
            for wanted in names.iter().filter(|n| split_version(n).1.is_some()) {
                let (name, version) = split_version(wanted);
                let found = pulled.iter().any(|p| {
                    p.manifest.kind() == kind
                        && p.manifest.name() == name
                        && super::remote_name(&p.manifest)
                            == format!("{name}:{}", version.unwrap_or(0))
                });
                if !found {
                    return missing(format!("{} {wanted}", kind.as_str()));
                }
            }
        }
        Ok(())
    }
}

/// Reads the manifests `objects`, `threads` at a time.
fn read_manifests(
    client: &Client,
    layout: &Layout,
    objects: &[Object],
    (threads, progress): (usize, &Progress),
) -> Result<Vec<Pulled>> {
    let out = std::sync::Mutex::new(Vec::with_capacity(objects.len()));
    super::transfer::each(objects, threads, progress, |object| {
        let Some(parsed) = layout.parse(&object.key) else {
            return Ok(());
        };
        let json = client.get_bytes(&object.key, super::push::MANIFEST_LIMIT)?;
        let mut manifest = Manifest::from_json(parsed.kind, &object.key, &json)?;
        // The key's number is the datastore's; the manifest's own copy of it must agree.
        if let Some(version) = parsed.version {
            manifest.set_version(version);
        }
        if let Ok(mut out) = out.lock() {
            out.push(Pulled {
                key: object.key.clone(),
                fingerprint: fingerprint(&json),
                etag: object.etag.clone(),
                manifest,
            });
        }
        progress.advance(1);
        Ok(())
    })?;
    Ok(out.into_inner().unwrap_or_default())
}
