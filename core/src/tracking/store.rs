//! The tracking store's connections. Writes share one connection with group commit: a writer
//! queues its work, then takes the connection; whoever holds it commits everything queued so
//! far in one transaction, its own work and that of the writers waiting behind it. Alone, a
//! write commits at once on the caller's own thread (no hand-off to another thread); under load,
//! many small requests share a commit. Each request runs in its own savepoint, so one bad request
//! fails alone. Reads use a small pool of connections beside it (WAL lets them run while a write
//! commits).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

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
    queue: Mutex<Vec<WriteJob>>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Tracking {
    /// Opens the tracking store of the workspace in `root`, creating and migrating it if needed.
    pub fn open(root: impl Into<PathBuf>) -> crate::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| crate::Error::io(&root, e))?;
        let db_path = root.join("lathe.db");
        let writer = db::open(&db_path)?;
        let blobs = BlobStore::open(root.join("blobs"))?;
        blobs.recover(&|hash| db::blob_referenced(&writer, hash))?;
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                db_path,
                blobs,
                queue: Mutex::new(Vec::new()),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// Runs `work` in a write transaction and returns its result once committed.
    pub fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> TrackingResult<T> + Send + 'static,
    ) -> TrackingResult<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: WriteJob = Box::new(Pending {
            work,
            done: move |result| {
                let _ = reply.send(result);
            },
        });
        lock(&self.inner.queue)?.push(job);
        {
            // Our job is queued. Whoever held the connection before us took the queue as it
            // was then; whatever is left (ours at least, unless taken) we commit now.
            let conn = lock(&self.inner.writer)?;
            let group = std::mem::take(&mut *lock(&self.inner.queue)?);
            if !group.is_empty() {
                commit_group(&conn, group);
            }
        }
        // Committed by us or by an earlier holder of the connection, so the answer is there.
        answer
            .try_recv()
            .map_err(|_| TrackingError::internal("a write was lost before its commit"))?
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

fn lock<T>(mutex: &Mutex<T>) -> TrackingResult<std::sync::MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| TrackingError::internal("a write failed earlier; restart Lathe"))
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
