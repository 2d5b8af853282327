//! `lathe runs push`: runs, then model versions, to a tracking server — each run in the
//! experiment of its name there (made when missing), each version pointing at its run's files
//! there, or, for a version with no run here, at a run made to hold its files.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::client::{RemoteRun, Server};
use super::{mapped, note_push, place, point};
use crate::jobs::Progress;
use crate::store::Store;
use crate::sync::manifest::{FileEntry, Kind, ModelManifest, RunManifest};
use crate::sync::{Item, Outcome, Report, Selection, collect, fingerprint, last_seen};
use crate::tracking::types::{Metric, Tag};
use crate::{Error, Result};

/// The experiment a version with no run here gets a run in, to hold its files.
const MODELS_EXPERIMENT: &str = "lathe-registered-models";

/// Sends the runs and model versions `selection` names (its `assets` are not for a tracking
/// server) to `server`: every run and version when it names nothing; the versions of the runs
/// of the experiments it names. A version's run goes too.
///
/// # Errors
/// A name the workspace does not have; the server unreachable or refusing a call; a cancel.
/// What was sent stays sent and mapped, and the next push goes on from there.
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
    let tracking = store.tracking();
    let everything = selection.is_empty();
    let mut run_ids =
        if everything || !selection.runs.is_empty() || !selection.experiments.is_empty() {
            collect::run_ids(&tracking, selection)?
        } else {
            Vec::new()
        };
    let mut versions = Vec::new();
    let with_runs: HashSet<String> = run_ids.iter().cloned().collect();
    let named_models = everything || !selection.models.is_empty();
    for (name, version) in collect::model_versions(&tracking, &selection.models)? {
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
        (run_ids.len() + versions.len()) as u64,
    );
    let mut items = Vec::new();
    for id in &run_ids {
        progress.check()?;
        let m = collect::run(&tracking, id)?;
        let (outcome, remote, note) = pusher.run(&m)?;
        items.push(Item {
            kind: Kind::Run,
            label: format!("run {} ({})", m.run_name, m.run_id),
            outcome,
            local: Some(m.run_id.clone()),
            remote: Some(remote),
            note,
        });
        progress.advance(1);
    }
    for m in &versions {
        progress.check()?;
        let (outcome, remote, note) = pusher.version(m)?;
        items.push(Item {
            kind: Kind::Model,
            label: format!("model {}:{}", m.name, m.version),
            outcome,
            local: Some(format!("{}:{}", m.name, m.version)),
            remote: Some(remote),
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

struct Pusher<'a> {
    store: &'a Store,
    server: &'a Server,
    place: String,
    progress: &'a Progress,
    /// Experiment ids there, by name.
    experiments: HashMap<String, String>,
    /// Runs as they are there, by local id.
    pushed: HashMap<String, RemoteRun>,
    files_sent: usize,
    bytes_sent: u64,
    files_there: usize,
}

impl Pusher<'_> {
    /// The id of the experiment of this name there, made when there is none.
    fn experiment(&mut self, name: &str) -> Result<String> {
        if let Some(id) = self.experiments.get(name) {
            return Ok(id.clone());
        }
        let id = match self.server.experiment_by_name(name)? {
            Some((_, true)) => {
                return Err(Error::Remote(format!(
                    "experiment '{name}' is deleted on {}; restore it there (mlflow experiments \
                     restore) or rename the experiment here",
                    self.server.uri()
                )));
            }
            Some((id, false)) => id,
            None => self.server.create_experiment(name)?,
        };
        self.experiments.insert(name.to_owned(), id.clone());
        Ok(id)
    }

    /// Pushes one run: made there when it is not, then what it lacks.
    fn run(&mut self, m: &RunManifest) -> Result<(Outcome, String, Option<String>)> {
        let fp = fingerprint(&serde_json::to_vec(m)?);
        let there = match mapped(self.store, &self.place, &m.run_id, true)? {
            Some(id) => self.server.run(&id)?.filter(|r| !r.deleted),
            None => None,
        };
        if let Some(run) = &there
            && last_seen(self.store, &self.place, &run.id)?.is_some_and(|(seen, _)| seen == fp)
        {
            let id = run.id.clone();
            self.pushed.insert(m.run_id.clone(), run.clone());
            return Ok((Outcome::Unchanged, id, None));
        }
        let (run, made) = match there {
            Some(run) => (run, false),
            None => {
                let experiment = self.experiment(&m.experiment)?;
                let run = self
                    .server
                    .create_run(&experiment, (&m.run_name, &m.user_id, m.start_time))?;
                (run, true)
            }
        };
        // Recorded at once, so a push broken from here on finds the run rather than making
        // another; the fingerprint is set when the run is all there.
        note_push(self.store, &self.place, (&m.run_id, &run.id), "")?;
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
        let their_tags: HashMap<&str, &str> = run
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        let tags: Vec<Tag> = m
            .tags
            .iter()
            .filter(|t| their_tags.get(t.key.as_str()) != Some(&t.value.as_str()))
            .cloned()
            .collect();
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
        if m.status != "RUNNING" && (run.status != m.status || run.end_time != m.end_time) {
            self.server.end_run(&run.id, &m.status, m.end_time)?;
        }
        note_push(self.store, &self.place, (&m.run_id, &run.id), &fp)?;
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

    /// Uploads the files the run lacks there (by path and size) under `under`; how many.
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
        let blobs = self.store.blobs();
        crate::sync::transfer::each(&send, crate::sync::THREADS, self.progress, |file| {
            let path = blobs.path(&file.blob);
            let mut body = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            self.server
                .upload(&run.artifact_uri, &join(&file.path), file.size, &mut body)
        })?;
        self.files_sent += send.len();
        self.bytes_sent += send.iter().map(|f| f.size).sum::<u64>();
        Ok(send.len())
    }

    /// Registers one model version there, once; sets its aliases that are free there.
    fn version(&mut self, m: &ModelManifest) -> Result<(Outcome, String, Option<String>)> {
        let local = format!("model:{}:{}", m.name, m.version);
        let known = match mapped(self.store, &self.place, &local, true)? {
            Some(remote) => {
                let number = remote.rsplit_once(':').map_or("", |(_, v)| v).to_owned();
                self.server.has_version(&m.name, &number)?.then_some(number)
            }
            None => None,
        };
        let (number, outcome) = match known {
            Some(number) => (number, Outcome::Unchanged),
            None => {
                self.server.ensure_model(&m.name)?;
                let (source, run_id) = self.source(m)?;
                let number = self.server.create_version(
                    &m.name,
                    (&source, &run_id),
                    (&m.description, &m.tags),
                )?;
                note_push(
                    self.store,
                    &self.place,
                    (&local, &format!("model:{}:{number}", m.name)),
                    "",
                )?;
                (number, Outcome::Sent)
            }
        };
        let mut notes = Vec::new();
        for alias in &m.aliases {
            match self.server.alias(&m.name, alias)? {
                None => {
                    self.server.set_alias(&m.name, alias, &number)?;
                    notes.push(format!("alias {alias} set"));
                }
                Some(v) if v == number => {}
                Some(v) => notes.push(format!(
                    "alias {alias} there points at version {v}; left as it is"
                )),
            }
        }
        let outcome = if outcome == Outcome::Unchanged && notes.iter().any(|n| n.ends_with(" set"))
        {
            Outcome::Sent
        } else {
            outcome
        };
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
        let experiment = self.experiment(MODELS_EXPERIMENT)?;
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
