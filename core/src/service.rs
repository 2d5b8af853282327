//! The background service behind the GUI. The GUI sends commands and, each frame, takes the
//! [`Event`]s that finished work produced; it never touches the database or the disk itself.
//! Commands and events are split by domain — data assets ([`data`]), experiments and models
//! ([`tracking`]), labeling ([`labeling`]), pipelines ([`pipelines`]), promotion
//! ([`promotion`]), online endpoints ([`endpoints`]), datastores and sync ([`datastores`]) — each handled in its own module. Long or writing work (imports, profiles, exports, pipeline runs, pre-labels) runs as
//! a [`Job`] with progress and cancel on the job runner's named threads; short reads (table
//! pages, thumbnails) run on two reader threads. Both queues are bounded: past their bound a
//! command is refused at once with [`Event::Failed`], so the window never waits on them. A job
//! or read that panics answers [`Event::Failed`] too. Everything goes through the process's one
//! [`Store`]. A plain waker callback tells the GUI that an event is waiting, so this module
//! knows nothing of egui.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError, channel, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use polars::prelude::DataFrame;

use crate::jobs::{Progress, ProgressSnapshot};
use crate::pipeline::schedule;
use crate::store::Store;
use crate::tracking::Tracking;
use crate::workspace::Workspace;
use crate::{Error, Result};

mod batch;
mod data;
mod datastores;
mod endpoints;
mod labeling;
mod monitoring;
mod pipelines;
mod promotion;
mod tracking;
mod watch;

pub use batch::{BatchView, BatchViews};
pub use data::{DataCommand, DataEvent, PAGE_ROWS, Page, THUMBNAIL_SIDE};
pub use datastores::{DatastoreCommand, DatastoreEvent};
pub use endpoints::{EndpointCommand, EndpointEvent, EndpointView, TestAnswer, request_template};
pub use labeling::{ItemView, LabelCommand, LabelEvent, Projects};
pub use monitoring::{MonitorCommand, MonitorEvent, MonitorList, MonitorSummary, MonitorView};
pub use pipelines::{Opened, Palette, PipelineCommand, PipelineEvent, PipelineSource};
pub use promotion::{PromotionCommand, PromotionEvent, PromotionView};
pub use tracking::{TrackingCommand, TrackingEvent};
pub use watch::Changes;

/// How often the workspace is looked at for changes made elsewhere.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Short reads run on a few plain threads rather than a rayon pool: a rayon worker that waits
/// (inside polars, say) may steal another read that waits on the same table load, and deadlock.
const READER_THREADS: usize = 2;
/// Reads waiting for a reader; a window asks for what it shows, so more means something is
/// asking in a loop.
const READ_QUEUE: usize = 1024;
/// Jobs that run at once; the rest wait their turn in the list of jobs, cancellable.
const JOB_THREADS: usize = 4;
/// Jobs waiting for a job thread.
const JOB_QUEUE: usize = 64;

pub type Waker = Arc<dyn Fn() + Send + Sync>;
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

impl From<crate::pipeline::PipelineError> for Failure {
    fn from(error: crate::pipeline::PipelineError) -> Self {
        Self::from(Error::from(error))
    }
}

impl From<crate::tracking::TrackingError> for Failure {
    fn from(error: crate::tracking::TrackingError) -> Self {
        Self::Error(error.to_string())
    }
}

/// What the window asks of the service, by domain.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Data(DataCommand),
    Tracking(TrackingCommand),
    Labeling(LabelCommand),
    Pipelines(PipelineCommand),
    Promotion(PromotionCommand),
    Endpoints(EndpointCommand),
    Monitoring(MonitorCommand),
    Datastores(DatastoreCommand),
}

/// What finished work tells the window, by domain, and what concerns every domain.
#[derive(Debug)]
pub enum Event {
    Data(DataEvent),
    Tracking(TrackingEvent),
    Labeling(LabelEvent),
    Pipelines(PipelineEvent),
    Promotion(PromotionEvent),
    Endpoints(EndpointEvent),
    Monitoring(MonitorEvent),
    Datastores(DatastoreEvent),
    /// Someone (this window, the CLI, another window, a script) changed these kinds of thing:
    /// lists showing them should be read again.
    Changed(Changes),
    /// A job or a read stopped on a fault in Lathe (a panic) or could not be queued, instead of
    /// answering; `task` says which, `error` why. Its progress bar is gone, and the service
    /// goes on.
    Failed {
        task: String,
        error: String,
    },
}

macro_rules! by_domain {
    ($($domain:ident: $command:ty, $event:ty;)*) => {$(
        impl From<$command> for Command {
            fn from(command: $command) -> Self {
                Self::$domain(command)
            }
        }
        impl From<$event> for Event {
            fn from(event: $event) -> Self {
                Self::$domain(event)
            }
        }
    )*};
}

by_domain! {
    Data: DataCommand, DataEvent;
    Tracking: TrackingCommand, TrackingEvent;
    Labeling: LabelCommand, LabelEvent;
    Pipelines: PipelineCommand, PipelineEvent;
    Promotion: PromotionCommand, PromotionEvent;
    Endpoints: EndpointCommand, EndpointEvent;
    Monitoring: MonitorCommand, MonitorEvent;
    Datastores: DatastoreCommand, DatastoreEvent;
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

type Task = Box<dyn FnOnce() + Send>;

pub struct Service {
    shared: Arc<Shared>,
    events: Receiver<Event>,
    readers: SyncSender<Task>,
    job_threads: SyncSender<Task>,
    /// The schedule runner, stopped when the service is dropped.
    schedules: Mutex<Option<schedule::Runner>>,
    monitors: Mutex<Option<crate::monitoring::runner::Runner>>,
}

/// `count` threads named `name-N` taking tasks from one bounded queue until its sender, the
/// service, is dropped.
fn workers(name: &str, count: usize, queue: usize) -> Result<SyncSender<Task>> {
    let (sender, tasks) = sync_channel::<Task>(queue);
    let tasks = Arc::new(Mutex::new(tasks));
    for i in 0..count {
        let tasks = Arc::clone(&tasks);
        std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || {
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
    Ok(sender)
}

impl Service {
    /// A service over the workspace's store, opened once for the process ([`Store::open`]).
    pub fn new(store: Store, waker: Waker) -> Result<Self> {
        let (tx, rx) = channel();
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
            readers: workers("lathe-reader", READER_THREADS, READ_QUEUE)?,
            job_threads: workers("lathe-job", JOB_THREADS, JOB_QUEUE)?,
            schedules: Mutex::new(None),
            monitors: Mutex::new(None),
        })
    }

    pub fn root(&self) -> &Path {
        self.shared.store.root()
    }

    /// Hands a command to its domain; the answer arrives later as an [`Event`].
    pub fn send(&self, command: impl Into<Command>) {
        match command.into() {
            Command::Data(command) => data::handle(self, command),
            Command::Tracking(command) => tracking::handle(self, command),
            Command::Labeling(command) => labeling::handle(self, command),
            Command::Pipelines(command) => pipelines::handle(self, command),
            Command::Promotion(command) => promotion::handle(self, command),
            Command::Endpoints(command) => endpoints::handle(self, command),
            Command::Monitoring(command) => monitoring::handle(self, command),
            Command::Datastores(command) => datastores::handle(self, command),
        }
    }

    /// Runs due schedules until the service is dropped, checking every half minute; each run's
    /// end arrives as [`PipelineEvent::ScheduledRun`]. Due monitors run too (checked every five
    /// seconds).
    pub fn start_schedules(&self, tracking_uri: Option<String>) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        let runner = schedule::spawn_runner(
            self.shared.tracking.clone(),
            tracking_uri,
            std::time::Duration::from_secs(30),
            move |schedule, outcome| {
                shared.emit(PipelineEvent::ScheduledRun {
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
        // Monitors come due too; their runs and alerts reach the window through the
        // workspace watcher.
        let monitors = crate::monitoring::runner::spawn(
            self.shared.store.clone(),
            std::time::Duration::from_secs(5),
            |_, _| {},
        )
        .map_err(|e| Error::io("<threads>", e))?;
        if let Ok(mut slot) = self.monitors.lock() {
            *slot = Some(monitors);
        }
        Ok(())
    }

    /// Queues a short read for a reader thread; what it returns is sent to the window.
    fn read<E: Into<Event>>(&self, work: impl FnOnce(&Shared) -> E + Send + 'static) {
        let shared = Arc::clone(&self.shared);
        let task: Task = Box::new(move || {
            let event =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&shared).into()))
                    .unwrap_or_else(|panic| Event::Failed {
                        task: "Reading the workspace".to_owned(),
                        error: panic_message(&*panic),
                    });
            shared.emit(event);
        });
        if let Err(refused) = self.readers.try_send(task) {
            self.shared
                .refused("Reading the workspace", &refused, READ_QUEUE);
        }
    }

    /// Queues a long task as a job with a progress bar and a cancel button; it runs on a job
    /// thread with the workspace, and tells the window what it did through [`Shared::emit`].
    fn job(
        &self,
        label: String,
        work: impl FnOnce(&Shared, &mut Workspace, &Progress) + Send + 'static,
    ) {
        let job = Job {
            id: self.shared.next_job.fetch_add(1, Ordering::Relaxed),
            label,
            progress: Arc::default(),
        };
        job.progress.start_stage("waiting for a job thread", 0);
        if let Ok(mut jobs) = self.shared.jobs.lock() {
            jobs.push(job.clone());
        }
        (self.shared.waker)();
        let shared = Arc::clone(&self.shared);
        let (id, label) = (job.id, job.label.clone());
        let task: Task = Box::new(move || {
            job.progress.start_stage("", 0);
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match shared.store.workspace() {
                    Ok(mut ws) => work(&shared, &mut ws, &job.progress),
                    Err(e) => {
                        // The workspace opened when the GUI started; say why it no longer does.
                        shared.emit(DataEvent::Assets(Err(Failure::from(e))));
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
        if let Err(refused) = self.job_threads.try_send(task) {
            self.shared.refused(&label, &refused, JOB_QUEUE);
            self.shared.end_job(id);
        }
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
    fn emit(&self, event: impl Into<Event>) {
        // The receiver is gone only when the GUI is closing; nothing is left to tell.
        let _ = self.events.send(event.into());
        (self.waker)();
    }

    /// Tells the window that `task` was not queued: its queue of `bound` is full, or the
    /// threads behind it are gone.
    fn refused(&self, task: &str, refused: &TrySendError<Task>, bound: usize) {
        let error = match refused {
            TrySendError::Full(_) => {
                format!("{bound} tasks are waiting already; try again when some have finished")
            }
            TrySendError::Disconnected(_) => "the service's threads have stopped".to_owned(),
        };
        self.emit(Event::Failed {
            task: task.to_owned(),
            error,
        });
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

    fn end_job(&self, id: u64) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.retain(|j| j.id != id);
        }
        (self.waker)();
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
        // A pipeline's cancel, however deep, is the same kind.
        let cancelled = crate::pipeline::PipelineError::from(Error::Cancelled);
        assert_eq!(Failure::from(cancelled), Failure::Cancelled);
        assert_eq!(
            Failure::from(crate::pipeline::PipelineError::Cancelled),
            Failure::Cancelled
        );
    }

    #[test]
    fn a_job_that_panics_ends_as_an_error_and_clears_its_progress_bar() {
        let (_dir, service) = service();
        service.job("Exploding".into(), |_, _, _| panic!("boom"));
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
        service.send(DataCommand::LoadAssets);
        let assets = wait_for(&service, |e| match e {
            Event::Data(DataEvent::Assets(reply)) => Some(reply),
            _ => None,
        });
        assert!(assets.unwrap().is_empty());
    }

    #[test]
    fn a_read_that_panics_is_reported_and_every_reader_lives_on() {
        let (_dir, service) = service();
        for _ in 0..READER_THREADS {
            service.read(|_| -> Event { panic!("bad read") });
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
            service.send(DataCommand::LoadAssets);
            wait_for(&service, |e| {
                matches!(e, Event::Data(DataEvent::Assets(Ok(_)))).then_some(())
            });
        }
    }

    #[test]
    fn jobs_past_the_job_threads_wait_their_turn_and_past_the_queue_are_refused() {
        let (_dir, service) = service();
        let release = Arc::new(std::sync::Barrier::new(JOB_THREADS + 1));
        for i in 0..JOB_THREADS {
            let release = Arc::clone(&release);
            service.job(format!("busy {i}"), move |_, _, _| {
                release.wait();
            });
        }
        let waiting = |service: &Service| {
            service
                .jobs()
                .iter()
                .filter(|j| j.progress.stage == "waiting for a job thread")
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while waiting(&service) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        for i in 0..JOB_QUEUE {
            service.job(format!("queued {i}"), |_, _, _| {});
        }
        // Every job thread holds a busy job: the queued ones wait, shown as waiting.
        let deadline = Instant::now() + Duration::from_secs(10);
        while waiting(&service) != JOB_QUEUE && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(waiting(&service), JOB_QUEUE);
        // One more has no room: refused at once, with no progress bar left behind.
        service.job("one too many".into(), |_, _, _| {});
        let (task, error) = wait_for(&service, |e| match e {
            Event::Failed { task, error } => Some((task, error)),
            _ => None,
        });
        assert_eq!(task, "one too many");
        assert!(
            error.contains(&format!("{JOB_QUEUE} tasks are waiting")),
            "{error}"
        );
        assert_eq!(service.jobs().len(), JOB_THREADS + JOB_QUEUE);
        // Freed, every queued job runs and the list empties.
        release.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !service.jobs().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(service.jobs().is_empty());
    }

    #[test]
    fn a_command_is_answered_in_its_own_domain() {
        let (_dir, service) = service();
        service.send(TrackingCommand::LoadExperiments);
        let experiments = wait_for(&service, |e| match e {
            Event::Tracking(TrackingEvent::Experiments(reply)) => Some(reply),
            _ => None,
        });
        // A fresh workspace has MLflow's Default experiment.
        assert_eq!(experiments.unwrap().len(), 1);
        service.send(LabelCommand::LoadProjects);
        let projects = wait_for(&service, |e| match e {
            Event::Labeling(LabelEvent::Projects(reply)) => Some(reply),
            _ => None,
        });
        assert!(projects.unwrap().projects.is_empty());
    }
}
