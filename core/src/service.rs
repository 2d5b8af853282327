//! The background service behind the GUI. The GUI sends [`Command`]s and, each frame, takes the
//! [`Event`]s that finished work produced; it never touches the database or the disk itself.
//! Long work (imports, profiles, pipeline runs, pre-labels) runs as a [`Job`] with progress and
//! cancellation on a thread named for it; short reads (table pages, thumbnails) run on two
//! reader threads. A job or read that panics answers [`Event::Failed`]. Everything goes through
//! the process's one [`Store`]. A plain waker callback tells the GUI that an event is waiting,
//! so this module knows nothing of egui.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use polars::prelude::DataFrame;

use crate::assets::{Asset, AssetVersion, VersionFile};
use crate::images::{self, Thumbnail};
use crate::import::{ImportOutcome, ImportRequest, import};
use crate::jobs::{Progress, ProgressSnapshot};
use crate::pipeline::executor::{Event as PipelineEvent, Outcome};
use crate::pipeline::job::Pipeline;
use crate::pipeline::schedule::{self, Schedule};
use crate::profile::{self, TableProfile};
use crate::store::Store;
use crate::tracking::Tracking;
use crate::tracking::browse::{Preview, RunDetail, RunTable};
use crate::tracking::metrics::Point;
use crate::tracking::types::{Experiment, ModelVersion, RegisteredModel};
use crate::workspace::Workspace;
use crate::{Error, Result, table, text};

mod labeling;
mod pipelines;
mod watch;

pub use labeling::{ItemView, Projects};
pub use pipelines::{Opened, Palette, PipelineSource};
pub use watch::Changes;

/// How often the workspace is looked at for changes made elsewhere.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Rows in one page of a table preview.
pub const PAGE_ROWS: usize = 200;
/// Decoded tables kept in memory for paging.
const CACHED_TABLES: usize = 3;
pub const THUMBNAIL_SIDE: u32 = 128;

pub type Waker = Arc<dyn Fn() + Send + Sync>;
pub type Page = Vec<Vec<Option<String>>>;
/// Results carry why they failed as a [`Failure`]: the GUI tells a cancel apart and shows the
/// rest.
pub type Reply<T> = std::result::Result<Arc<T>, Failure>;

/// Why a reply holds no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The user cancelled the job; nothing was stored.
    Cancelled,
    /// Anything else, worded for the user.
    Error(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cancelled => f.write_str("cancelled"),
            Self::Error(message) => f.write_str(message),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        match error {
            Error::Cancelled => Self::Cancelled,
            other => Self::Error(other.to_string()),
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self::Error(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self::Error(message.to_owned())
    }
}

impl From<crate::tracking::TrackingError> for Failure {
    fn from(error: crate::tracking::TrackingError) -> Self {
        Self::Error(error.to_string())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    RefreshAssets,
    LoadVersions {
        name: String,
    },
    Import(ImportRequest),
    LoadPage {
        version: i64,
        page: usize,
    },
    /// `reference` (`name:version`) names the job while it runs.
    LoadProfile {
        version: i64,
        reference: String,
    },
    LoadFiles {
        version: i64,
    },
    LoadThumbnail {
        blob_hash: String,
    },
    LoadText {
        version: i64,
    },
    LoadExperiments,
    /// The runs of these experiments that match an MLflow filter.
    LoadRuns {
        experiment_ids: Vec<String>,
        filter: String,
    },
    LoadRun {
        run_id: String,
    },
    LoadHistory {
        run_id: String,
        key: String,
    },
    /// A preview of the artifact at this path in the artifact store.
    LoadArtifact {
        path: String,
    },
    LoadModels,
    /// What the designer's palette offers beyond the built-ins.
    LoadPalette,
    OpenPipeline(PipelineSource),
    SavePipeline {
        name: String,
        pipeline: Pipeline,
    },
    ExportPipeline {
        pipeline: Pipeline,
        path: PathBuf,
    },
    LoadLabelProjects,
    CreateLabelProject {
        name: String,
        task: crate::labeling::Task,
        asset: String,
        labels: Vec<String>,
    },
    LoadLabelItems {
        project: String,
        filter: crate::labeling::project::Filter,
    },
    /// An item with its image or text and latest shapes (also to decode the next ones ahead).
    LoadLabelItem {
        project: String,
        position: i64,
    },
    SubmitLabels {
        project: String,
        position: i64,
        shapes: Vec<crate::labeling::Shape>,
        /// `human`, or `model:<name>` when a pre-label was kept as it was.
        source: String,
    },
    /// Creates a project from a label file (or folder); image formats label the images of
    /// `asset`.
    ImportLabels {
        path: PathBuf,
        format: crate::labeling::LabelFormat,
        name: String,
        asset: Option<String>,
    },
    /// Replaces a project's label schema.
    UpdateLabels {
        project: String,
        labels: Vec<crate::labeling::Label>,
    },
    /// Writes a project's labels to a file (or folder for yolo and voc).
    ExportLabels {
        project: String,
        format: crate::labeling::LabelFormat,
        path: PathBuf,
    },
    /// Records a project's labels as a new version of a table data asset.
    ExportLabelAsset {
        project: String,
        asset: String,
    },
    /// Lists the registered model versions with an ONNX file, to pre-label images with.
    LoadOnnxModels,
    /// Pre-labels the unlabeled items with the project's built-in baseline.
    Prelabel {
        project: String,
        threshold: f64,
        /// A registered ONNX model (`NAME:VERSION`); the built-in baseline when `None`.
        model: Option<String>,
    },
    ReviewItem {
        project: String,
        position: i64,
        accepted: bool,
        comment: String,
    },
    /// Schedules a saved pipeline (`NAME:VERSION`) on a cron pattern.
    AddSchedule {
        pipeline: String,
        cron: String,
    },
    /// Runs a pipeline as a job; `base` is where its relative paths start.
    RunPipeline {
        pipeline: Pipeline,
        base: PathBuf,
        tracking_uri: Option<String>,
    },
}

#[derive(Debug)]
pub enum Event {
    Assets(Reply<Vec<Asset>>),
    Versions {
        name: String,
        reply: Reply<Vec<AssetVersion>>,
    },
    Imported {
        request: ImportRequest,
        reply: Reply<ImportOutcome>,
    },
    Page {
        version: i64,
        page: usize,
        reply: Reply<Page>,
    },
    Profile {
        version: i64,
        reply: Reply<TableProfile>,
    },
    Files {
        version: i64,
        reply: Reply<Vec<VersionFile>>,
    },
    Thumbnail {
        blob_hash: String,
        reply: Reply<Thumbnail>,
    },
    Text {
        version: i64,
        reply: Reply<Vec<String>>,
    },
    Experiments(Reply<Vec<Experiment>>),
    Runs {
        experiment_ids: Vec<String>,
        filter: String,
        reply: Reply<RunTable>,
    },
    Run {
        run_id: String,
        reply: Reply<RunDetail>,
    },
    History {
        run_id: String,
        key: String,
        reply: Reply<Vec<Point>>,
    },
    Artifact {
        path: String,
        reply: Reply<Preview>,
    },
    Models(Reply<Vec<(RegisteredModel, Vec<ModelVersion>)>>),
    Palette(Reply<Palette>),
    PipelineOpened(Reply<Opened>),
    /// The name and the new version.
    PipelineSaved(Reply<(String, i64)>),
    PipelineExported(Reply<PathBuf>),
    PipelineProgress(PipelineEvent),
    PipelineFinished(Reply<Outcome>),
    ScheduleAdded(Reply<Schedule>),
    LabelProjects(Reply<Projects>),
    LabelProjectCreated(Reply<crate::labeling::project::Project>),
    LabelItems {
        project: String,
        /// The filter asked for: an answer for an older filter is stale.
        filter: crate::labeling::project::Filter,
        reply: Reply<Vec<crate::labeling::project::Item>>,
    },
    LabelItem {
        project: String,
        position: i64,
        reply: Reply<ItemView>,
    },
    LabelSubmitted {
        project: String,
        position: i64,
        reply: Reply<crate::labeling::project::Submission>,
    },
    LabelReviewed {
        project: String,
        position: i64,
        reply: Reply<()>,
    },
    LabelsUpdated(Reply<crate::labeling::project::Project>),
    /// What an export did, worded for the user.
    LabelsExported(Reply<String>),
    Prelabeled {
        project: String,
        reply: Reply<crate::labeling::assist::Prelabeled>,
    },
    /// Registered ONNX models as `NAME:VERSION`.
    OnnxModels(Reply<Vec<String>>),
    /// A schedule's run ended (or could not start).
    ScheduledRun {
        schedule: Schedule,
        reply: Reply<Outcome>,
    },
    /// Someone (this window, the CLI, another window, a script) changed these kinds of thing:
    /// lists showing them should be read again.
    Changed(Changes),
    /// A job or a read stopped on a fault in Lathe (a panic) instead of answering; `task` says
    /// which, `error` what the fault said. Its progress bar is gone, and the service goes on.
    Failed {
        task: String,
        error: String,
    },
}

/// A long task the GUI shows with a progress bar and a cancel button.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u64,
    pub label: String,
    pub progress: Arc<Progress>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub id: u64,
    pub label: String,
    pub progress: ProgressSnapshot,
}

type TableSlot = Arc<OnceLock<Reply<DataFrame>>>;

struct Shared {
    store: Store,
    tracking: Tracking,
    events: Sender<Event>,
    waker: Waker,
    jobs: Mutex<Vec<Job>>,
    next_job: AtomicU64,
    tables: Mutex<Vec<(i64, TableSlot)>>,
}

/// Short reads run on a few plain threads rather than a rayon pool: a rayon worker that waits
/// (inside polars, say) may steal another read that waits on the same table load, and deadlock.
type ReadTask = Box<dyn FnOnce() + Send>;
const READER_THREADS: usize = 2;

pub struct Service {
    shared: Arc<Shared>,
    events: Receiver<Event>,
    readers: Sender<ReadTask>,
    /// The schedule runner, stopped when the service is dropped.
    schedules: Mutex<Option<schedule::Runner>>,
}

impl Service {
    /// A service over the workspace's store, opened once for the process ([`Store::open`]).
    pub fn new(store: Store, waker: Waker) -> Result<Self> {
        let (tx, rx) = channel();
        let (readers, tasks) = channel::<ReadTask>();
        let tasks = Arc::new(Mutex::new(tasks));
        for i in 0..READER_THREADS {
            let tasks = Arc::clone(&tasks);
            std::thread::Builder::new()
                .name(format!("lathe-reader-{i}"))
                .spawn(move || {
                    // Ends when the service, and with it the sender, is dropped.
                    while let Ok(task) = tasks
                        .lock()
                        .map_err(drop)
                        .and_then(|rx| rx.recv().map_err(drop))
                    {
                        task();
                    }
                })
                .map_err(|e| Error::io("<threads>", e))?;
        }
        let shared = Arc::new(Shared {
            tracking: store.tracking(),
            store,
            events: tx,
            waker,
            jobs: Mutex::new(Vec::new()),
            next_job: AtomicU64::new(1),
            tables: Mutex::new(Vec::new()),
        });
        // The watcher holds the service weakly, and ends once the service is gone.
        let weak = Arc::downgrade(&shared);
        watch::spawn(shared.store.reader()?, WATCH_EVERY, move |changes| {
            let Some(shared) = weak.upgrade() else {
                return false;
            };
            if changes.any() {
                shared.emit(Event::Changed(changes));
            }
            true
        })
        .map_err(|e| Error::io("<threads>", e))?;
        Ok(Self {
            shared,
            events: rx,
            readers,
            schedules: Mutex::new(None),
        })
    }

    pub fn root(&self) -> &Path {
        self.shared.store.root()
    }

    pub fn send(&self, command: Command) {
        let shared = Arc::clone(&self.shared);
        match command {
            Command::Import(request) => {
                let label = format!("Importing {}", request.name);
                shared.clone().run_job(label, move |ws, progress| {
                    let reply = import(ws, &request, progress)
                        .map(Arc::new)
                        .map_err(Failure::from);
                    let imported = reply.is_ok();
                    shared.emit(Event::Imported { request, reply });
                    if imported {
                        shared.emit(Event::Assets(shared.with_workspace(|ws| ws.list_assets())));
                    }
                });
            }
            Command::LoadProfile { version, reference } => {
                shared
                    .clone()
                    .run_job(format!("Profiling {reference}"), move |ws, progress| {
                        let reply = ws
                            .version_by_id(version)
                            .and_then(|v| profile::profile_version(ws, &v, progress))
                            .map(Arc::new)
                            .map_err(Failure::from);
                        shared.emit(Event::Profile { version, reply });
                    });
            }
            Command::RefreshAssets => {
                self.read(move |s| Event::Assets(s.with_workspace(|ws| ws.list_assets())));
            }
            Command::LoadVersions { name } => self.read(move |s| {
                let reply = s.with_workspace(|ws| ws.versions(&name));
                Event::Versions { name, reply }
            }),
            Command::LoadPage { version, page } => self.read(move |s| {
                let reply = s
                    .table(version)
                    .map(|df| Arc::new(table::page(&df, page * PAGE_ROWS, PAGE_ROWS)));
                Event::Page {
                    version,
                    page,
                    reply,
                }
            }),
            Command::LoadFiles { version } => self.read(move |s| Event::Files {
                version,
                reply: s.with_workspace(|ws| ws.version_files(version)),
            }),
            Command::LoadThumbnail { blob_hash } => self.read(move |s| {
                let reply = images::thumbnail(&s.store.blobs().path(&blob_hash), THUMBNAIL_SIDE)
                    .map(Arc::new)
                    .map_err(Failure::from);
                Event::Thumbnail { blob_hash, reply }
            }),
            Command::LoadText { version } => self.read(move |s| Event::Text {
                version,
                reply: s.with_workspace(|ws| text::items(ws, &ws.version_by_id(version)?)),
            }),
            Command::LoadExperiments => {
                self.read(|s| Event::Experiments(s.with_tracking(Tracking::experiments)));
            }
            Command::LoadRuns {
                experiment_ids,
                filter,
            } => self.read(move |s| {
                let reply = s.with_tracking(|t| t.run_table(&experiment_ids, &filter));
                Event::Runs {
                    experiment_ids,
                    filter,
                    reply,
                }
            }),
            Command::LoadRun { run_id } => self.read(move |s| {
                let reply = s.with_tracking(|t| t.run_detail(&run_id));
                Event::Run { run_id, reply }
            }),
            Command::LoadHistory { run_id, key } => self.read(move |s| {
                let reply = s.with_tracking(|t| t.metric_history(&run_id, &key));
                Event::History { run_id, key, reply }
            }),
            Command::LoadArtifact { path } => self.read(move |s| {
                let reply = s.with_tracking(|t| t.artifact_preview(&path));
                Event::Artifact { path, reply }
            }),
            Command::LoadModels => self.read(|s| Event::Models(s.with_tracking(Tracking::models))),
            Command::LoadPalette => self.read(pipelines::palette),
            Command::OpenPipeline(source) => self.read(move |s| pipelines::open(s, &source)),
            Command::SavePipeline { name, pipeline } => {
                self.read(move |s| pipelines::save(s, &name, &pipeline));
            }
            Command::LoadLabelProjects => self.read(labeling::projects),
            Command::CreateLabelProject {
                name,
                task,
                asset,
                labels,
            } => self.read(move |s| labeling::create(s, &name, task, &asset, &labels)),
            Command::LoadLabelItems { project, filter } => {
                self.read(move |s| labeling::items(s, &project, &filter));
            }
            Command::LoadLabelItem { project, position } => {
                self.read(move |s| labeling::item(s, &project, position));
            }
            Command::SubmitLabels {
                project,
                position,
                shapes,
                source,
            } => self.read(move |s| labeling::submit(s, &project, position, &shapes, &source)),
            Command::ImportLabels {
                path,
                format,
                name,
                asset,
            } => {
                // A label file of 100,000 items takes a while: a job, not a reader's turn.
                let label = format!("Importing {} as {name}", path.display());
                shared.clone().run_job(label, move |_, _| {
                    shared.emit(labeling::import_labels(
                        &shared,
                        &path,
                        format,
                        &name,
                        asset.as_deref(),
                    ));
                });
            }
            Command::UpdateLabels { project, labels } => {
                self.read(move |s| labeling::update_labels(s, &project, &labels));
            }
            Command::ExportLabels {
                project,
                format,
                path,
            } => {
                let label = format!("Exporting {project} as {format}");
                shared.clone().run_job(label, move |_, _| {
                    shared.emit(labeling::export(&shared, &project, format, &path));
                });
            }
            Command::ExportLabelAsset { project, asset } => {
                let label = format!("Recording {project} as data asset {asset}");
                shared.clone().run_job(label, move |_, _| {
                    shared.emit(labeling::export_asset(&shared, &project, &asset));
                });
            }
            Command::LoadOnnxModels => self.read(|s| {
                let reply = crate::labeling::onnx_assist::onnx_models(s.tracking())
                    .map(Arc::new)
                    .map_err(Failure::from);
                Event::OnnxModels(reply)
            }),
            Command::Prelabel {
                project,
                threshold,
                model,
            } => shared
                .clone()
                .run_job(format!("Pre-labeling {project}"), move |ws, progress| {
                    let event = labeling::prelabel(
                        &shared,
                        ws,
                        &project,
                        threshold,
                        model.as_deref(),
                        progress,
                    );
                    shared.emit(event);
                }),
            Command::ReviewItem {
                project,
                position,
                accepted,
                comment,
            } => self.read(move |s| labeling::review(s, &project, position, accepted, &comment)),
            Command::AddSchedule { pipeline, cron } => self.read(move |s| {
                let reply = schedule::add(s.tracking(), s.store.root(), &pipeline, &cron, None)
                    .map(Arc::new)
                    .map_err(Failure::from);
                Event::ScheduleAdded(reply)
            }),
            Command::ExportPipeline { pipeline, path } => {
                self.read(move |_| pipelines::export(&pipeline, &path));
            }
            Command::RunPipeline {
                pipeline,
                base,
                tracking_uri,
            } => {
                let label = format!(
                    "Running {}",
                    pipeline.display_name.as_deref().unwrap_or("pipeline")
                );
                shared.clone().run_job(label, move |_, progress| {
                    let event =
                        pipelines::run(&shared, &pipeline, &base, tracking_uri, progress.flag());
                    shared.emit(event);
                });
            }
        }
    }

    /// Runs due schedules until the service is dropped, checking every half minute; each run's
    /// end arrives as [`Event::ScheduledRun`].
    pub fn start_schedules(&self, tracking_uri: Option<String>) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        let runner = schedule::spawn_runner(
            self.shared.tracking.clone(),
            tracking_uri,
            std::time::Duration::from_secs(30),
            move |schedule, outcome| {
                shared.emit(Event::ScheduledRun {
                    schedule: schedule.clone(),
                    reply: outcome.map(Arc::new).map_err(Failure::from),
                });
            },
        )
        .map_err(|e| Error::io("<threads>", e))?;
        if let Ok(mut slot) = self.schedules.lock() {
            // A runner started earlier stops as it is replaced.
            *slot = Some(runner);
        }
        Ok(())
    }

    fn read(&self, work: impl FnOnce(&Shared) -> Event + Send + 'static) {
        let shared = Arc::clone(&self.shared);
        // A send fails only if every reader thread died; the GUI then waits, as it would anyway.
        let _ = self.readers.send(Box::new(move || {
            let event = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&shared)))
                .unwrap_or_else(|panic| Event::Failed {
                    task: "Reading the workspace".to_owned(),
                    error: panic_message(&*panic),
                });
            shared.emit(event);
        }));
    }

    /// Events that arrived since the last call, oldest first.
    pub fn poll(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    pub fn jobs(&self) -> Vec<JobView> {
        self.shared
            .jobs
            .lock()
            .map(|jobs| {
                jobs.iter()
                    .map(|j| JobView {
                        id: j.id,
                        label: j.label.clone(),
                        progress: j.progress.snapshot(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn cancel(&self, job_id: u64) {
        if let Ok(jobs) = self.shared.jobs.lock()
            && let Some(job) = jobs.iter().find(|j| j.id == job_id)
        {
            job.progress.cancel();
        }
    }
}

impl Shared {
    fn emit(&self, event: Event) {
        // The receiver is gone only when the GUI is closing; nothing is left to tell.
        let _ = self.events.send(event);
        (self.waker)();
    }

    fn with_workspace<T>(&self, f: impl FnOnce(&mut Workspace) -> Result<T>) -> Reply<T> {
        self.store
            .workspace()
            .and_then(|mut ws| f(&mut ws))
            .map(Arc::new)
            .map_err(Failure::from)
    }

    /// Runs `f` on the workspace's tracking facade.
    fn with_tracking<T>(
        &self,
        f: impl FnOnce(&Tracking) -> crate::tracking::TrackingResult<T>,
    ) -> Reply<T> {
        f(self.tracking()).map(Arc::new).map_err(Failure::from)
    }

    /// The workspace's tracking facade.
    fn tracking(&self) -> &Tracking {
        &self.tracking
    }

    fn run_job(
        self: Arc<Self>,
        label: String,
        work: impl FnOnce(&mut Workspace, &Progress) + Send + 'static,
    ) {
        let job = Job {
            id: self.next_job.fetch_add(1, Ordering::Relaxed),
            label,
            progress: Arc::default(),
        };
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.push(job.clone());
        }
        (self.waker)();
        let id = job.id;
        let shared = Arc::clone(&self);
        let spawned = std::thread::Builder::new()
            .name(format!("lathe-job-{id}"))
            .spawn(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    match shared.store.workspace() {
                        Ok(mut ws) => work(&mut ws, &job.progress),
                        Err(e) => {
                            // The workspace opened when the GUI started; say why it no longer does.
                            shared.emit(Event::Assets(Err(Failure::from(e))));
                        }
                    }
                }));
                if let Err(panic) = ran {
                    shared.emit(Event::Failed {
                        task: job.label.clone(),
                        error: panic_message(&*panic),
                    });
                }
                shared.end_job(id);
            });
        if let Err(e) = spawned {
            self.emit(Event::Failed {
                task: format!("Starting job {id}"),
                error: e.to_string(),
            });
            self.end_job(id);
        }
    }

    fn end_job(&self, id: u64) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.retain(|j| j.id != id);
        }
        (self.waker)();
    }

    /// The decoded table of a version, loaded once and kept among the last few used.
    fn table(&self, version: i64) -> Reply<DataFrame> {
        let slot = {
            let Ok(mut tables) = self.tables.lock() else {
                return Err(Failure::from("table cache poisoned"));
            };
            if let Some(i) = tables.iter().position(|(v, _)| *v == version) {
                let entry = tables.remove(i);
                tables.push(entry);
            } else {
                if tables.len() >= CACHED_TABLES {
                    tables.remove(0);
                }
                tables.push((version, TableSlot::default()));
            }
            tables
                .last()
                .map(|(_, slot)| Arc::clone(slot))
                .ok_or("table cache empty")?
        };
        slot.get_or_init(|| {
            self.store
                .workspace()
                .and_then(|ws| profile::load_table(&ws, &ws.version_by_id(version)?))
                .map(Arc::new)
                .map_err(Failure::from)
        })
        .clone()
    }
}

/// What a panic said, for [`Event::Failed`].
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a fault with no message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn service() -> (tempfile::TempDir, Service) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, Service::new(store, Arc::new(|| {})).unwrap())
    }

    /// Polls until `wanted` picks an event (the others polled with it are dropped), or fails
    /// after 10 s.
    fn wait_for<T>(service: &Service, mut wanted: impl FnMut(Event) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(found) = service.poll().into_iter().find_map(&mut wanted) {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the awaited event never came");
    }

    #[test]
    fn a_cancel_is_a_failure_of_its_own_kind() {
        assert_eq!(Failure::from(Error::Cancelled), Failure::Cancelled);
        let missing = Failure::from(Error::EmptyFile {
            path: "a.csv".into(),
        });
        assert!(
            matches!(&missing, Failure::Error(m) if m.contains("a.csv")),
            "{missing}"
        );
        assert_eq!(Failure::Cancelled.to_string(), "cancelled");
    }

    #[test]
    fn a_job_that_panics_ends_as_an_error_and_clears_its_progress_bar() {
        let (_dir, service) = service();
        Arc::clone(&service.shared).run_job("Exploding".into(), |_, _| panic!("boom"));
        let (task, error) = wait_for(&service, |e| match e {
            Event::Failed { task, error } => Some((task, error)),
            _ => None,
        });
        assert_eq!((task.as_str(), error.as_str()), ("Exploding", "boom"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !service.jobs().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(service.jobs().is_empty());
        // The service goes on.
        service.send(Command::RefreshAssets);
        let assets = wait_for(&service, |e| match e {
            Event::Assets(reply) => Some(reply),
            _ => None,
        });
        assert!(assets.unwrap().is_empty());
    }

    #[test]
    fn a_read_that_panics_is_reported_and_every_reader_lives_on() {
        let (_dir, service) = service();
        for _ in 0..READER_THREADS {
            service.read(|_| panic!("bad read"));
        }
        let mut failed = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while failed.len() < READER_THREADS && Instant::now() < deadline {
            failed.extend(service.poll().into_iter().filter_map(|e| match e {
                Event::Failed { error, .. } => Some(error),
                _ => None,
            }));
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(failed, vec!["bad read"; READER_THREADS]);
        // Had a panic killed its reader, these would never be answered.
        for _ in 0..READER_THREADS * 2 {
            service.send(Command::RefreshAssets);
            wait_for(&service, |e| {
                matches!(e, Event::Assets(Ok(_))).then_some(())
            });
        }
    }
}
