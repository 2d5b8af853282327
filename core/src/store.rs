//! The workspace's store, opened once per process — by the CLI's main, once by the window and
//! shared by its service, tracking server and schedule runner — and borrowed by every domain:
//! the database's one writer, a pool of readers beside it, and the blob store.
//!
//! Writes take one of two ways, both `BEGIN IMMEDIATE` on the one writer connection:
//! - [`Store::write`], group commit: a writer queues its work, then takes the connection;
//!   whoever holds it commits everything queued so far in one transaction, its own work and that
//!   of the writers waiting behind it. Alone, a write commits at once on the caller's own thread;
//!   under load, many small requests share a commit. Each runs in its own savepoint, so one bad
//!   request fails alone. For the tracking server's many small requests.
//! - [`Store::transaction`], its own transaction on the caller's thread, for a write that
//!   borrows from its caller or takes long (an import's record, a 100,000-item label import):
//!   what was queued before it commits first, and nothing is held up inside a shared commit.
//!
//! Reads use pooled connections ([`Store::read`], [`Store::workspace`]), which refuse to write
//! (`PRAGMA query_only`); WAL lets them run while a write commits. Other processes may hold the
//! same workspace: SQLite's busy timeout makes a writer wait for theirs rather than fail.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

use crate::blobs::BlobStore;
use crate::db;

/// What the store itself can fail with, beside the work it runs (which has its own error type,
/// `From<StoreError>`). Messages never carry SQL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the workspace database failed: {0}")]
    Database(String),
    #[error("a write failed earlier in this process; restart Lathe")]
    Poisoned,
    #[error("a write was lost before its commit")]
    Lost,
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Database(reason(&error))
    }
}

/// SQLite's own words for `error`, without the statement: SQL is never shown to a user or a
/// client.
pub(crate) fn reason(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        rusqlite::Error::SqliteFailure(e, message) => {
            message.clone().unwrap_or_else(|| e.to_string())
        }
        other => other.to_string(),
    }
}

type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
type WriteJob = Box<dyn Job>;

/// A queued write: it runs inside the shared transaction and says whether it succeeded, then
/// hears whether the commit did; or it fails without running when no transaction can start.
trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish);
    fn fail(self: Box<Self>, error: StoreError);
}

struct Pending<W, D> {
    work: W,
    done: D,
}

impl<T, E, W, D> Job for Pending<W, D>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    W: FnOnce(&Connection) -> Result<T, E> + Send,
    D: FnOnce(Result<T, E>) + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish) {
        let Pending { work, done } = *self;
        let result = work(conn);
        let ok = result.is_ok();
        (
            ok,
            Box::new(move |commit| done(commit.map_err(E::from).and(result))),
        )
    }

    fn fail(self: Box<Self>, error: StoreError) {
        (self.done)(Err(E::from(error)));
    }
}

const MAX_IDLE_READERS: usize = 8;

/// The store of one workspace. Cheap to clone; clones share the writer, readers and blobs.
#[derive(Clone)]
pub struct Store {
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

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the workspace in `root` (`lathe.db` and `blobs/`), creating it if the folder is new
    /// or empty, applying pending migrations (checked without a write lock when none are), and
    /// cleaning up after processes that died mid-import.
    ///
    /// # Errors
    /// The folder cannot be created or read, the database is from a newer Lathe or has an
    /// edited migration, or SQLite fails.
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

    /// The data-asset and labeling facade over this store, reading on a pooled connection.
    pub fn workspace(&self) -> crate::Result<crate::Workspace> {
        Ok(crate::Workspace::over(self.clone(), self.reader()?))
    }

    /// The tracking facade (MLflow's model) over this store.
    pub fn tracking(&self) -> crate::tracking::Tracking {
        crate::tracking::Tracking::new(self.clone())
    }

    /// Runs `work` in the shared write transaction (group commit; see the module docs) and
    /// returns its result once committed.
    pub fn write<T, E>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
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
        answer.try_recv().map_err(|_| E::from(StoreError::Lost))?
    }

    /// Runs `work` in a transaction of its own on the writer, on the caller's thread: committed
    /// when it returns `Ok`, rolled back when it returns `Err`. Writes queued before it commit
    /// first.
    pub fn transaction<T, E>(&self, work: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let conn = lock(&self.inner.writer)?;
        let queued = std::mem::take(&mut *lock(&self.inner.queue)?);
        if !queued.is_empty() {
            commit_group(&conn, queued);
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| E::from(e.into()))?;
        match work(&conn) {
            Ok(value) => match conn.execute_batch("COMMIT") {
                Ok(()) => Ok(value),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(E::from(e.into()))
                }
            },
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Takes or renews lease `name` for `holder` until `ttl` from now, and says whether
    /// `holder` has it: `false` while another holder's lease has not expired. One process at a
    /// time runs a kind of background work this way; when it dies, its lease runs out and the
    /// next process to ask takes over.
    pub fn take_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let now = db::now_millis();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self.write(move |conn| {
            let changed = conn.execute(
                "INSERT INTO leases (name, holder, expires_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE
                 SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms
                 WHERE leases.holder = excluded.holder OR leases.expires_at_ms < ?4",
                rusqlite::params![name, holder, until, now],
            )?;
            Ok(changed == 1)
        })
    }

    /// Gives lease `name` up, if `holder` has it, so that another process takes over at once.
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                [name, holder],
            )?;
            Ok(())
        })
    }

    /// Runs `work` on a pooled read connection.
    pub fn read<T, E>(&self, work: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let reader = self.reader().map_err(E::from)?;
        work(&reader)
    }

    /// A pooled read connection, back in the pool when dropped.
    pub(crate) fn reader(&self) -> Result<Reader, StoreError> {
        let pooled = self
            .inner
            .readers
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = db::connect(&self.inner.db_path)
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                // Every write goes through the writer: a reader refuses to write.
                conn.pragma_update(None, "query_only", true)?;
                conn
            }
        };
        Ok(Reader {
            conn: Some(conn),
            store: Arc::clone(&self.inner),
        })
    }
}

/// A read connection borrowed from the store's pool.
pub(crate) struct Reader {
    conn: Option<Connection>,
    store: Arc<Inner>,
}

impl std::ops::Deref for Reader {
    type Target = Connection;

    #[expect(clippy::expect_used, reason = "the connection is taken only in drop")]
    fn deref(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a pooled connection is present until dropped")
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut pool)) = (self.conn.take(), self.store.readers.lock())
            && pool.len() < MAX_IDLE_READERS
            && conn.is_autocommit()
        {
            pool.push(conn);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    mutex.lock().map_err(|_| StoreError::Poisoned)
}

fn commit_group(conn: &Connection, group: Vec<WriteJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let error = StoreError::from(e);
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
        finishes.push((finish, settled.map_err(StoreError::from)));
    }
    let committed = conn.execute_batch("COMMIT").map_err(StoreError::from);
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for (finish, settled) in finishes {
        finish(committed.clone().and(settled));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(conn: &Connection, name: &str) -> Result<usize, StoreError> {
        conn.execute(
            "INSERT INTO assets (name, kind, created_at) VALUES (?1, 'table', 0)",
            [name],
        )
        .map_err(StoreError::from)
    }

    fn count(store: &Store) -> i64 {
        store
            .read(|conn| {
                conn.query_row("SELECT COUNT(*) FROM assets", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap()
    }

    #[test]
    fn readers_refuse_to_write_and_writes_go_through_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let refused = store.read(|conn| insert(conn, "a"));
        assert!(
            matches!(&refused, Err(StoreError::Database(m)) if m.contains("readonly")),
            "{refused:?}"
        );
        store.transaction(|conn| insert(conn, "a")).unwrap();
        store.write(|conn| insert(conn, "b")).unwrap();
        assert_eq!(count(&store), 2);
    }

    #[test]
    fn a_failed_write_leaves_nothing_and_the_next_one_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let failed: Result<(), StoreError> = store.transaction(|conn| {
            insert(conn, "a")?;
            Err(StoreError::Lost)
        });
        assert!(failed.is_err());
        assert_eq!(count(&store), 0);
        // A bad request fails alone.
        assert!(
            store
                .write(|conn| insert(conn, "b").and(insert(conn, "b")))
                .is_err()
        );
        store.write(|conn| insert(conn, "c")).unwrap();
        assert_eq!(count(&store), 1);
    }

    #[test]
    fn a_lease_has_one_holder_until_it_expires_or_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let long = Duration::from_secs(60);
        assert!(store.take_lease("schedules", "a", long).unwrap());
        assert!(!store.take_lease("schedules", "b", long).unwrap());
        assert!(store.take_lease("schedules", "a", long).unwrap(), "renewed");
        store.release_lease("schedules", "b").unwrap();
        assert!(
            !store.take_lease("schedules", "b", long).unwrap(),
            "only the holder releases"
        );
        store.release_lease("schedules", "a").unwrap();
        assert!(
            store
                .take_lease("schedules", "b", Duration::from_millis(30))
                .unwrap()
        );
        // b dies without giving it up: its lease runs out.
        assert!(!store.take_lease("schedules", "a", long).unwrap());
        std::thread::sleep(Duration::from_millis(60));
        assert!(store.take_lease("schedules", "a", long).unwrap());
        assert!(
            store.take_lease("monitors", "b", long).unwrap(),
            "leases are by name"
        );
    }

    #[test]
    fn a_read_does_not_wait_for_another_process_writer() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        // Another process's writer, holding the lock.
        let other = db::connect(&dir.path().join("lathe.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let start = std::time::Instant::now();
        let store = Store::open(dir.path()).unwrap();
        let ws = store.workspace().unwrap();
        assert!(ws.list_assets().unwrap().is_empty());
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        other.execute_batch("ROLLBACK").unwrap();
    }
}
