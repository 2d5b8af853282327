//! The tracking store's connections. All writes go through one writer thread that commits
//! whatever requests are waiting in one transaction (group commit): under load many small
//! requests share a commit, and no writer ever waits on another writer's lock inside Lathe. Each
//! request runs in its own savepoint, so one bad request fails alone. Reads use a small pool of
//! connections beside it (WAL lets them run while the writer writes).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::{TrackingError, TrackingResult};
use crate::blobs::BlobStore;
use crate::db;

type Finish = Box<dyn FnOnce(TrackingResult<()>) + Send>;
type WriteJob = Box<dyn Job>;

/// A queued write: it runs inside the shared transaction and says whether it succeeded, then
/// hears whether the commit did; or it fails without running when no transaction can start.
trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish);
    fn fail(self: Box<Self>, error: TrackingError);
}

struct Pending<W, D> {
    work: W,
    done: D,
}

impl<T, W, D> Job for Pending<W, D>
where
    T: Send + 'static,
    W: FnOnce(&Connection) -> TrackingResult<T> + Send,
    D: FnOnce(TrackingResult<T>) + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish) {
        let Pending { work, done } = *self;
        let result = work(conn);
        let ok = result.is_ok();
        (ok, Box::new(move |commit| done(commit.and(result))))
    }

    fn fail(self: Box<Self>, error: TrackingError) {
        (self.done)(Err(error));
    }
}

/// Requests committed together at most; bounds the latency a request can add to the others.
const MAX_GROUP: usize = 512;
const MAX_IDLE_READERS: usize = 8;

/// The tracking store of one workspace. Cheap to clone; clones share the writer and readers.
#[derive(Clone)]
pub struct Tracking {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    db_path: PathBuf,
    blobs: BlobStore,
    jobs: Option<Sender<WriteJob>>,
    writer: Option<JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer after the jobs already queued.
        self.jobs.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Tracking {
    /// Opens the tracking store of the workspace in `root`, creating and migrating it if needed.
    pub fn open(root: impl Into<PathBuf>) -> crate::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| crate::Error::io(&root, e))?;
        let db_path = root.join("lathe.db");
        let conn = db::open(&db_path)?;
        let blobs = BlobStore::open(root.join("blobs"))?;
        let (jobs, queue) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("lathe-tracking-writer".into())
            .spawn(move || write_loop(&conn, &queue))
            .map_err(|e| crate::Error::io(&root, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                db_path,
                blobs,
                jobs: Some(jobs),
                writer: Some(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub(super) fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// Runs `work` in the writer's transaction and returns its result once committed.
    pub fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> TrackingResult<T> + Send + 'static,
    ) -> TrackingResult<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit(work, move |result| {
            let _ = reply.send(result);
        });
        answer
            .recv()
            .map_err(|_| TrackingError::internal("the tracking writer stopped"))?
    }

    /// Queues `work` for the writer; `done` hears its result after the commit. For callers that
    /// must not block a thread while waiting (the async server).
    pub fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> TrackingResult<T> + Send + 'static,
        done: impl FnOnce(TrackingResult<T>) + Send + 'static,
    ) {
        let job: WriteJob = Box::new(Pending { work, done });
        let stopped = || TrackingError::internal("the tracking writer stopped");
        match &self.inner.jobs {
            Some(jobs) => {
                if let Err(mpsc::SendError(job)) = jobs.send(job) {
                    job.fail(stopped());
                }
            }
            None => job.fail(stopped()),
        }
    }

    /// Runs `work` on a pooled read connection.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> TrackingResult<T>,
    ) -> TrackingResult<T> {
        let pooled = self
            .inner
            .readers
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => db::connect(&self.inner.db_path)?,
        };
        let result = work(&conn);
        if let Ok(mut pool) = self.inner.readers.lock()
            && pool.len() < MAX_IDLE_READERS
        {
            pool.push(conn);
        }
        result
    }
}

fn write_loop(conn: &Connection, queue: &Receiver<WriteJob>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(conn, group);
    }
}

fn commit_group(conn: &Connection, group: Vec<WriteJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let error = TrackingError::from(e);
        for job in group {
            job.fail(error.clone());
        }
        return;
    }
    let mut finishes = Vec::with_capacity(group.len());
    for job in group {
        let savepoint = conn.execute_batch("SAVEPOINT request");
        let (ok, finish) = job.run(conn);
        let settled = match (savepoint, ok) {
            (Ok(()), true) => conn.execute_batch("RELEASE request"),
            (Ok(()), false) => conn.execute_batch("ROLLBACK TO request; RELEASE request"),
            (Err(e), _) => Err(e),
        };
        finishes.push((finish, settled.map_err(TrackingError::from)));
    }
    let committed = conn.execute_batch("COMMIT").map_err(TrackingError::from);
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for (finish, settled) in finishes {
        finish(committed.clone().and(settled));
    }
}
