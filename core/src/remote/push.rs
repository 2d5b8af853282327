//! `lathe runs push`: runs, then model versions, to a tracking server — each run in the
//! experiment of its name there (made when missing), parents before their children, each
//! version pointing at its run's files there, or, for a version with no run here, at a run
//! made to hold its files.
//!
//! A run is found there by the id map, else by its own id (a run pulled from there), else by
//! the `lathe.source_run_id` tag a push gives the runs it makes — so a server reached by
//! another URL is still the same server. What someone changed there is never undone: a tag
//! is written over only when the server still has the value this workspace last sent, a run
//! deleted there is not made again, and an alias is moved only while it points where this
//! workspace last set it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use super::client::{RemoteRun, SOURCE_TAG, SOURCE_VERSION_TAG, Server};
use super::{mapped, note_push, place, point};
use crate::jobs::Progress;
use crate::store::Store;
use crate::sync::manifest::{FileEntry, Kind, ModelManifest, RunManifest};
use crate::sync::{Item, Outcome, Report, Selection, collect, fingerprint, last_seen};
use crate::tracking::types::{Metric, Tag};
use crate::{Error, Result};

/// The experiment a version with no run here gets a run in, to hold its files.
const MODELS_EXPERIMENT: &str = "lathe-registered-models";

/// The tag MLflow nests a run under its parent with.
const PARENT_TAG: &str = "mlflow.parentRunId";

/// Sends the runs and model versions `selection` names (its `assets` are not for a tracking
/// server) to `server`: every run and version when it names nothing; the versions of the runs
/// of the experiments it names. A version's run goes too. A run or version the server
/// refuses is reported (failed, with the server's reason) and the others go on.
///
/// # Errors
/// A name the workspace does not have; the server unreachable or refusing the token; a
/// cancel. What was sent stays sent and mapped, and the next push goes on from there.
pub fn push(
    store: &Store,
    server: &Server,
    selection: &Selection,
    progress: &Progress,
) -> Result<Report> {
    let started = Instant::now();
    progress.start_stage("asking the server", 0);
    server.check()?;
    progress.start_stage("reading the workspace", 0);
    let here = |e: Error| Error::Remote(format!("in this workspace: {e}"));
    let tracking = store.tracking();
    let everything = selection.is_empty();
    let mut run_ids =
        if everything || !selection.runs.is_empty() || !selection.experiments.is_empty() {
            collect::run_ids(&tracking, selection).map_err(here)?
        } else {
            Vec::new()
        };
    let mut versions = Vec::new();
    let with_runs: HashSet<String> = run_ids.iter().cloned().collect();
    let named_models = everything || !selection.models.is_empty();
    for (name, version) in collect::model_versions(&tracking, &selection.models).map_err(here)? {
        let Some(m) = collect::model(&tracking, &name, &version)? else {
            continue;
        };
        let of_runs = m.run_id.as_ref().is_some_and(|r| with_runs.contains(r));
        if named_models || of_runs {
            versions.push(m);
        }
    }
    for v in &versions {
        if let Some(run) = &v.run_id
            && !run_ids.contains(run)
            && crate::sync::restore::run_here(store, run)?
        {
            run_ids.push(run.clone());
        }
    }
    let mut manifests = Vec::with_capacity(run_ids.len());
    for id in &run_ids {
        manifests.push(collect::run(&tracking, id)?);
    }
    parents_first(&mut manifests);
    let mut pusher = Pusher {
        store,
        server,
        place: place(server),
        progress,
        experiments: HashMap::new(),
        pushed: HashMap::new(),
        files_sent: 0,
        bytes_sent: 0,
        files_there: 0,
    };
    progress.start_stage(
        "pushing runs and model versions",
        (manifests.len() + versions.len()) as u64,
    );
    let mut items = Vec::new();
    for m in &manifests {
        progress.check()?;
        let (outcome, remote, note) = match pusher.run(m) {
            Ok(done) => done,
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => (Outcome::Failed, String::new(), Some(e.to_string())),
        };
        items.push(Item {
            kind: Kind::Run,
            label: format!("run {} ({})", m.run_name, m.run_id),
            outcome,
            local: Some(m.run_id.clone()),
            remote: Some(remote).filter(|r| !r.is_empty()),
            note,
        });
        progress.advance(1);
    }
    for m in &versions {
        progress.check()?;
        let (outcome, remote, note) = match pusher.version(m) {
            Ok(done) => done,
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => (Outcome::Failed, String::new(), Some(e.to_string())),
        };
        items.push(Item {
            kind: Kind::Model,
            label: format!("model {}:{}", m.name, m.version),
            outcome,
            local: Some(format!("{}:{}", m.name, m.version)),
            remote: Some(remote).filter(|r| !r.is_empty()),
            note,
        });
        progress.advance(1);
    }
    Ok(Report {
        datastore: server.uri().to_owned(),
        location: server.uri().to_owned(),
        items,
        blobs_moved: pusher.files_sent,
        bytes_moved: pusher.bytes_sent,
        blobs_present: pusher.files_there,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Orders runs so each comes after the run it is nested under (when that is pushed too).
fn parents_first(runs: &mut [RunManifest]) {
    let parent: HashMap<String, String> = runs
        .iter()
        .filter_map(|m| {
            let p = m.tags.iter().find(|t| t.key == PARENT_TAG)?;
            Some((m.run_id.clone(), p.value.clone()))
        })
        .collect();
    let depth = |id: &str| {
        let mut depth = 0;
        let mut at = id;
        while let Some(up) = parent.get(at) {
            depth += 1;
            at = up;
            if depth > runs.len() {
                break;
            }
        }
        depth
    };
    let depths: HashMap<String, usize> = runs
        .iter()
        .map(|m| (m.run_id.clone(), depth(&m.run_id)))
        .collect();
    runs.sort_by_key(|m| depths.get(&m.run_id).copied().unwrap_or(0));
}

struct Pusher<'a> {
    store: &'a Store,
    server: &'a Server,
    place: String,
    progress: &'a Progress,
    /// Experiment ids there by name, with the runs pushed into each by their local id.
    experiments: HashMap<String, (String, HashMap<String, RemoteRun>)>,
    /// Runs as they are there, by local id.
    pushed: HashMap<String, RemoteRun>,
    files_sent: usize,
    bytes_sent: u64,
    files_there: usize,
}

impl Pusher<'_> {
    /// The id of the experiment of this name there (made when there is none), with the runs
    /// pushed into it from any workspace.
    fn experiment(&mut self, name: &str) -> Result<&(String, HashMap<String, RemoteRun>)> {
        if !self.experiments.contains_key(name) {
            let id = match self.server.experiment_by_name(name)? {
                Some((_, true)) => {
                    return Err(Error::Remote(format!(
                        "experiment '{name}' is deleted on {}; restore it there (mlflow \
                         experiments restore) or rename the experiment here",
                        self.server.uri()
                    )));
                }
                Some((id, false)) => id,
                None => self.server.create_experiment(name)?,
            };
            let pushed = self.server.pushed_runs(&id)?.into_iter().collect();
            self.experiments.insert(name.to_owned(), (id, pushed));
        }
        Ok(&self.experiments[name])
    }

    /// The run there that is local run `m`: by the id map, by its own id (pulled from there),
    /// or by the tag a push gave it.
    fn find(&mut self, m: &RunManifest) -> Result<Option<RemoteRun>> {
        if let Some(id) = mapped(self.store, &self.place, &m.run_id, true)?
            && let Some(run) = self.server.run(&id)?
        {
            return Ok(Some(run));
        }
        if let Some(run) = self.server.run(&m.run_id)? {
            return Ok(Some(run));
        }
        Ok(self.experiment(&m.experiment)?.1.get(&m.run_id).cloned())
    }

    /// Pushes one run: made there when it is not, then what it lacks.
    fn run(&mut self, m: &RunManifest) -> Result<(Outcome, String, Option<String>)> {
        let fp = fingerprint(&serde_json::to_vec(m)?);
        let there = self.find(m)?;
        if let Some(run) = &there
            && run.deleted
        {
            return Ok((
                Outcome::Skipped,
                run.id.clone(),
                Some(
                    "deleted on the server; restore it there (mlflow runs restore) to push it \
                     again"
                        .into(),
                ),
            ));
        }
        let last = there
            .as_ref()
            .map(|run| last_seen(self.store, &self.place, &run.id))
            .transpose()?
            .flatten();
        if let (Some(run), Some((seen, _))) = (&there, &last)
            && *seen == fp
        {
            self.pushed.insert(m.run_id.clone(), run.clone());
            return Ok((Outcome::Unchanged, run.id.clone(), None));
        }
        let (run, made) = match there {
            Some(run) => (run, false),
            None => {
                let experiment = self.experiment(&m.experiment)?.0.clone();
                let run = self
                    .server
                    .create_run(&experiment, (&m.run_name, &m.user_id, m.start_time))?;
                (run, true)
            }
        };
        // What this workspace last wrote of the run's tags there.
        let sent_before: BTreeMap<String, String> = last
            .as_ref()
            .and_then(|(_, sent)| serde_json::from_str(sent).ok())
            .unwrap_or_default();
        // Recorded at once, so a push broken from here on finds the run rather than making
        // another; the fingerprint is set when the run is all there.
        let sent_json = serde_json::to_string(&sent_before)?;
        note_push(
            self.store,
            &self.place,
            (&m.run_id, &run.id),
            ("", &sent_json),
        )?;
        let mut added = Vec::new();
        let mut left = Vec::new();

        let theirs: HashMap<&str, &str> = run
            .params
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        let mut params = Vec::new();
        for p in &m.params {
            match theirs.get(p.key.as_str()) {
                None => params.push(p.clone()),
                Some(v) if *v == p.value => {}
                Some(v) => left.push(format!(
                    "param '{}' is '{v}' there, '{}' here",
                    p.key, p.value
                )),
            }
        }
        let (tags, sent) = self.tags(m, &run, &sent_before, &mut left);
        let metrics = self.missing_points(&run, m)?;
        self.server.log_batch(&run.id, &metrics, &params, &tags)?;
        let known: HashSet<(&str, &str)> = run
            .inputs
            .iter()
            .map(|i| (i.dataset.name.as_str(), i.dataset.digest.as_str()))
            .collect();
        let inputs: Vec<_> = m
            .inputs
            .iter()
            .filter(|i| {
                !known.contains(&(
                    i.input.dataset.name.as_str(),
                    i.input.dataset.digest.as_str(),
                ))
            })
            .map(|i| i.input.clone())
            .collect();
        if !inputs.is_empty() {
            self.server.log_inputs(&run.id, &inputs)?;
        }
        let files = self.send_files(&run, &m.artifacts, made, "")?;
        let ended = m.status != "RUNNING" && (run.status != m.status || run.end_time != m.end_time);
        if ended {
            self.server.end_run(&run.id, &m.status, m.end_time)?;
        }
        note_push(
            self.store,
            &self.place,
            (&m.run_id, &run.id),
            (&fp, &serde_json::to_string(&sent)?),
        )?;
        for (n, what) in [
            (metrics.len(), "metric points"),
            (params.len(), "params"),
            (tags.len(), "tags"),
            (inputs.len(), "inputs"),
            (files, "artifacts"),
        ] {
            if n > 0 {
                added.push(format!("{n} {what}"));
            }
        }
        if ended && !made {
            added.push("its end".into());
        }
        let mut note = Vec::new();
        if !made && !added.is_empty() {
            note.push(format!("added {}", added.join(", ")));
        }
        if !left.is_empty() {
            note.push(format!("left as it is there: {}", left.join("; ")));
        }
        let id = run.id.clone();
        self.pushed.insert(m.run_id.clone(), run);
        let outcome = if made || !added.is_empty() {
            Outcome::Sent
        } else {
            Outcome::Unchanged
        };
        Ok((outcome, id, Some(note.join("; ")).filter(|n| !n.is_empty())))
    }

    /// The tags to write and, after writing them, what this workspace will have sent. A tag
    /// goes when the server lacks it (and never had it from here) or still has the value last
    /// sent from here; a value someone set there stays, and is named in `left`. The parent a
    /// run is nested under is named by its id there; the run's id here is tagged on a run
    /// made there.
    fn tags(
        &self,
        m: &RunManifest,
        run: &RemoteRun,
        sent_before: &BTreeMap<String, String>,
        left: &mut Vec<String>,
    ) -> (Vec<Tag>, BTreeMap<String, String>) {
        let theirs: HashMap<&str, &str> = run
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        let mut wanted: Vec<Tag> = Vec::with_capacity(m.tags.len() + 1);
        for t in &m.tags {
            if t.key == PARENT_TAG {
                // Under its parent's id there; a parent not pushed leaves the run unnested.
                if let Some(parent) = self.pushed.get(&t.value) {
                    wanted.push(Tag {
                        key: PARENT_TAG.into(),
                        value: parent.id.clone(),
                    });
                }
                continue;
            }
            wanted.push(t.clone());
        }
        if !theirs.contains_key(SOURCE_TAG) && run.id != m.run_id {
            wanted.push(Tag {
                key: SOURCE_TAG.into(),
                value: m.run_id.clone(),
            });
        }
        let mut send = Vec::new();
        let mut sent = sent_before.clone();
        for t in wanted {
            let before = sent_before.get(&t.key).map(String::as_str);
            match theirs.get(t.key.as_str()) {
                Some(v) if *v == t.value => {
                    sent.insert(t.key.clone(), t.value.clone());
                }
                None if before.is_some() => left.push(format!("tag '{}' was removed there", t.key)),
                Some(v) if before != Some(*v) => left.push(format!(
                    "tag '{}' is '{v}' there, '{}' here",
                    t.key, t.value
                )),
                _ => {
                    sent.insert(t.key.clone(), t.value.clone());
                    send.push(t);
                }
            }
        }
        (send, sent)
    }

    /// The run's metric points the server lacks: all of a metric it has no point of, else
    /// those its history lacks (by step, time and value, as many times as each is here).
    fn missing_points(&self, run: &RemoteRun, m: &RunManifest) -> Result<Vec<Metric>> {
        let theirs: HashSet<&str> = run.metrics.iter().map(|p| p.key.as_str()).collect();
        let mut out = Vec::new();
        let mut by_key: Vec<(&str, Vec<&Metric>)> = Vec::new();
        for p in &m.metrics {
            match by_key.last_mut() {
                Some((key, points)) if *key == p.key => points.push(p),
                _ => by_key.push((p.key.as_str(), vec![p])),
            }
        }
        for (key, points) in by_key {
            if !theirs.contains(key) {
                out.extend(points.into_iter().cloned());
                continue;
            }
            let mut there: HashMap<_, usize> = HashMap::new();
            for p in self.server.metric_history(&run.id, key)? {
                *there.entry(point(&p)).or_default() += 1;
            }
            for p in points {
                match there.get_mut(&point(p)) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => out.push(p.clone()),
                }
            }
        }
        Ok(out)
    }

    /// Uploads the files the run lacks there (by path and size) under `under`; how many. A
    /// cancel stops an upload in the middle of its file.
    fn send_files(
        &mut self,
        run: &RemoteRun,
        files: &[FileEntry],
        made: bool,
        under: &str,
    ) -> Result<usize> {
        if files.is_empty() {
            return Ok(0);
        }
        let there: HashMap<String, u64> = if made {
            HashMap::new()
        } else {
            self.server.artifacts(&run.id)?.into_iter().collect()
        };
        let join = |path: &str| {
            if under.is_empty() {
                path.to_owned()
            } else {
                format!("{under}/{path}")
            }
        };
        let send: Vec<&FileEntry> = files
            .iter()
            .filter(|f| there.get(&join(&f.path)) != Some(&f.size))
            .collect();
        self.files_there += files.len() - send.len();
        let (blobs, progress) = (self.store.blobs(), self.progress);
        crate::sync::transfer::each(&send, crate::sync::THREADS, progress, |file| {
            let path = blobs.path(&file.blob);
            let file_on_disk = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            let mut body = Stoppable {
                inner: file_on_disk,
                progress,
            };
            let sent =
                self.server
                    .upload(&run.artifact_uri, &join(&file.path), file.size, &mut body);
            if progress.is_cancelled() {
                return Err(Error::Cancelled);
            }
            sent
        })?;
        self.files_sent += send.len();
        self.bytes_sent += send.iter().map(|f| f.size).sum::<u64>();
        Ok(send.len())
    }

    /// Registers one model version there, once; sets its aliases that are free there, and
    /// moves one this workspace set while it still points where it was set.
    fn version(&mut self, m: &ModelManifest) -> Result<(Outcome, String, Option<String>)> {
        let local = format!("model:{}:{}", m.name, m.version);
        let known = match mapped(self.store, &self.place, &local, true)? {
            Some(remote) => {
                let number = remote.rsplit_once(':').map_or("", |(_, v)| v).to_owned();
                self.server.has_version(&m.name, &number)?.then_some(number)
            }
            // Reached by another URL: the version a push made carries its number here.
            None => self
                .server
                .pushed_versions(&m.name)?
                .into_iter()
                .find(|(source, _)| *source == m.version.to_string())
                .map(|(_, number)| number),
        };
        let (number, mut outcome) = match known {
            Some(number) => (number, Outcome::Unchanged),
            None => {
                self.server.ensure_model(&m.name)?;
                let (source, run_id) = self.source(m)?;
                let mut tags = m.tags.clone();
                tags.push(Tag {
                    key: SOURCE_VERSION_TAG.into(),
                    value: m.version.to_string(),
                });
                let number = self.server.create_version(
                    &m.name,
                    (&source, &run_id),
                    (&m.description, &tags),
                )?;
                note_push(
                    self.store,
                    &self.place,
                    (&local, &format!("model:{}:{number}", m.name)),
                    ("", ""),
                )?;
                (number, Outcome::Sent)
            }
        };
        let mut notes = Vec::new();
        for alias in &m.aliases {
            let key = format!("alias:{}:{alias}", m.name);
            let set_before = last_seen(self.store, &self.place, &key)?.map(|(_, v)| v);
            let there = self.server.alias(&m.name, alias)?;
            let free = there.is_none();
            match there {
                Some(v) if v == number => continue,
                Some(v) if set_before.as_deref() != Some(v.as_str()) => {
                    notes.push(format!(
                        "alias {alias} there points at version {v}; left as it is"
                    ));
                    continue;
                }
                _ => {}
            }
            self.server.set_alias(&m.name, alias, &number)?;
            note_push(self.store, &self.place, (&key, &key), ("", &number))?;
            notes.push(if free {
                format!("alias {alias} set")
            } else {
                format!("alias {alias} moved here")
            });
            outcome = Outcome::Sent;
        }
        Ok((
            outcome,
            format!("{}:{number}", m.name),
            Some(notes.join("; ")).filter(|n| !n.is_empty()),
        ))
    }

    /// Where a version's files are there, and its run: the pushed run's own folder when the
    /// files are its artifacts, else a run made to hold them.
    fn source(&mut self, m: &ModelManifest) -> Result<(String, String)> {
        if let (Some(run), Some(path)) = (&m.run_id, &m.path_in_run)
            && let Some(there) = self.pushed.get(run)
        {
            let source = if path.is_empty() {
                there.artifact_uri.clone()
            } else {
                format!("{}/{path}", there.artifact_uri)
            };
            return Ok((source, there.id.clone()));
        }
        let experiment = self.experiment(MODELS_EXPERIMENT)?.0.clone();
        let holder = self.server.create_run(
            &experiment,
            (
                &format!("{} v{}", m.name, m.version),
                &m.user_id,
                Some(m.created_at),
            ),
        )?;
        self.send_files(&holder, &m.files, true, "model")?;
        self.server
            .end_run(&holder.id, "FINISHED", Some(crate::db::now_millis()))?;
        Ok((format!("{}/model", holder.artifact_uri), holder.id))
    }
}

/// A reader that fails once its progress is cancelled, so an upload stops mid-file.
struct Stoppable<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: std::io::Read> std::io::Read for Stoppable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.progress.is_cancelled() {
            return Err(std::io::Error::other("cancelled"));
        }
        self.inner.read(buf)
    }
}
