//! `lathe runs pull`: a tracking server's runs brought into the workspace, each in one
//! transaction — a run new here keeps its id, in the experiment of its name here (made when
//! missing); a run here (pulled before, or pushed from here) gets what it lacks.

use std::collections::HashSet;
use std::time::Instant;

use super::client::{RemoteRun, SOURCE_TAG, Server};
use super::{mapped, place};
use crate::jobs::Progress;
use crate::store::Store;
use crate::sync::manifest::{FORMAT, FileEntry, Kind, RunInput, RunManifest};
use crate::sync::restore;
use crate::sync::transfer::{Kept, StagedWriter, each};
use crate::sync::{Item, Outcome, Report, fingerprint, last_seen};
use crate::{Error, Result};

/// Brings the active runs of the experiments named `experiments`, and the runs `runs` by id,
/// from `server` into the workspace.
///
/// # Errors
/// An experiment or run the server does not have; the server unreachable or refusing a call;
/// an artifact whose bytes do not arrive whole; a cancel. Runs recorded stay recorded.
pub fn pull(
    store: &Store,
    server: &Server,
    (experiments, runs): (&[String], &[String]),
    progress: &Progress,
) -> Result<Report> {
    let started = Instant::now();
    progress.start_stage("listing runs", 0);
    server.check()?;
    let mut found: Vec<(String, RemoteRun)> = Vec::new();
    for name in experiments {
        match server.experiment_by_name(name)? {
            Some((_, true)) => {
                return Err(Error::Remote(format!(
                    "experiment '{name}' is deleted on {}; restore it there (mlflow experiments \
                     restore) to pull its runs",
                    server.uri()
                )));
            }
            Some((id, false)) => {
                found.extend(server.runs_of(&id)?.into_iter().map(|r| (name.clone(), r)));
            }
            None => {
                return Err(Error::Remote(format!(
                    "{} has no experiment named '{name}'",
                    server.uri()
                )));
            }
        }
    }
    for id in runs {
        let run = server
            .run(id)?
            .ok_or_else(|| Error::Remote(format!("{} has no run {id}", server.uri())))?;
        let experiment = server.experiment_name(&run.experiment_id)?;
        found.push((experiment, run));
    }
    let mut seen = HashSet::new();
    found.retain(|(_, r)| seen.insert(r.id.clone()));

    let place = place(server);
    let mut items = Vec::with_capacity(found.len());
    let (mut files, mut bytes, mut present) = (0, 0, 0);
    progress.start_stage("pulling runs", found.len() as u64);
    for (experiment, run) in found {
        progress.check()?;
        let local = mapped(store, &place, &run.id, false)?.unwrap_or_else(|| run.id.clone());
        let label = format!("run {} ({})", run.name, run.id);
        if run.deleted {
            items.push(Item {
                kind: Kind::Run,
                label,
                outcome: Outcome::Skipped,
                local: None,
                remote: Some(run.id.clone()),
                note: Some("deleted on the server".into()),
            });
            progress.advance(1);
            continue;
        }
        let listing = server.artifacts(&run.id)?;
        let fp = fingerprint(&serde_json::to_vec(&(
            &run.status,
            run.end_time,
            &run.name,
            &run.params,
            &run.tags,
            &run.metrics,
            &run.inputs,
            &listing,
        ))?);
        let here = restore::run_here(store, &local)?;
        if here && last_seen(store, &place, &run.id)?.is_some_and(|(seen, _)| seen == fp) {
            present += listing.len();
            items.push(Item {
                kind: Kind::Run,
                label,
                outcome: Outcome::AlreadyHere,
                local: Some(local),
                remote: Some(run.id.clone()),
                note: None,
            });
            progress.advance(1);
            continue;
        }
        let mut metrics = Vec::new();
        let mut keys: Vec<&str> = run.metrics.iter().map(|m| m.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let mut points = server.metric_history(&run.id, key)?;
            points.sort_by_key(|p| (p.step, p.timestamp));
            // MLflow's SQL store keeps an infinity as the largest finite number.
            for p in &mut points {
                if p.value == f64::MAX {
                    p.value = f64::INFINITY;
                } else if p.value == f64::MIN {
                    p.value = f64::NEG_INFINITY;
                }
            }
            metrics.extend(points);
        }
        let have: HashSet<String> = if here {
            let tracking = store.tracking();
            let uri = tracking
                .read(|c| crate::tracking::runs::get(c, &local))?
                .info
                .artifact_uri;
            match tracking.artifact_dir(&uri)? {
                Some(dir) => crate::sync::collect::files(&tracking, &dir)?
                    .into_iter()
                    .map(|f| f.path)
                    .collect(),
                None => HashSet::new(),
            }
        } else {
            HashSet::new()
        };
        let fetch: Vec<&(String, u64)> = listing
            .iter()
            .filter(|(path, _)| !have.contains(path))
            .collect();
        present += listing.len() - fetch.len();
        let artifacts = fetch_files(store, server, &run, &fetch, progress)?;
        files += artifacts.len();
        bytes += artifacts.iter().map(|f| f.size).sum::<u64>();
        let manifest = RunManifest {
            format: FORMAT,
            run_id: local.clone(),
            experiment,
            run_name: run.name.clone(),
            user_id: run.user_id.clone(),
            status: run.status.clone(),
            start_time: run.start_time,
            end_time: run.end_time,
            params: run.params.clone(),
            tags: local_tags(store, &place, &run, &local)?,
            metrics,
            inputs: run
                .inputs
                .iter()
                .map(|input| RunInput {
                    input: input.clone(),
                    asset: None,
                })
                .collect(),
            artifacts,
        };
        let restored = restore::run(
            store,
            (&place, (run.id.clone(), fp, String::new())),
            &manifest,
        )?;
        items.push(Item {
            kind: Kind::Run,
            label,
            outcome: restored.outcome,
            local: Some(restored.local),
            remote: Some(run.id.clone()),
            note: restored.note,
        });
        progress.advance(1);
    }
    Ok(Report {
        datastore: server.uri().to_owned(),
        location: server.uri().to_owned(),
        items,
        blobs_moved: files,
        bytes_moved: bytes,
        blobs_present: present,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A pulled run's tags as they read here: the run it is nested under by its id here; the
/// source tag a push gave it left out when it names this very run.
fn local_tags(
    store: &Store,
    place: &str,
    run: &RemoteRun,
    local: &str,
) -> Result<Vec<crate::tracking::types::Tag>> {
    let mut out = Vec::with_capacity(run.tags.len());
    for t in &run.tags {
        let mut t = t.clone();
        if t.key == SOURCE_TAG && t.value == local {
            continue;
        }
        if t.key == "mlflow.parentRunId"
            && let Some(here) = mapped(store, place, &t.value, false)?
        {
            t.value = here;
        }
        out.push(t);
    }
    Ok(out)
}

/// Downloads a run's files into the blob store, several at a time; each as a manifest names
/// it. A file whose size is not what the listing said is refused by name.
fn fetch_files(
    store: &Store,
    server: &Server,
    run: &RemoteRun,
    files: &[&(String, u64)],
    progress: &Progress,
) -> Result<Vec<FileEntry>> {
    let kept = Kept::default();
    let got = std::sync::Mutex::new(Vec::with_capacity(files.len()));
    let outcome = each(files, crate::sync::THREADS, progress, |(path, size)| {
        let mut staged = store.blobs().stage()?;
        let mut sink = Stoppable {
            inner: StagedWriter(&mut staged),
            progress,
        };
        let n = server.download(&run.artifact_uri, (&run.id, path), &mut sink);
        if progress.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let n = n?;
        if n != *size {
            return Err(Error::Remote(format!(
                "{}: artifact '{path}' of run {} came with {n} bytes where the listing says {size}",
                server.uri(),
                run.id
            )));
        }
        let blob = store.blobs().keep(staged)?;
        if let Ok(mut got) = got.lock() {
            got.push(FileEntry {
                path: path.clone(),
                blob: blob.hash.clone(),
                size: n,
            });
        }
        kept.add(store, blob)
    });
    kept.flush(store)?;
    outcome?;
    let mut out = got.into_inner().unwrap_or_default();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A writer that fails once its progress is cancelled, so a download stops mid-file.
struct Stoppable<'a, W> {
    inner: W,
    progress: &'a Progress,
}

impl<W: std::io::Write> std::io::Write for Stoppable<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.progress.is_cancelled() {
            return Err(std::io::Error::other("cancelled"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
