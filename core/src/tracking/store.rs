//! The tracking facade: MLflow's model over the workspace's [`Store`], whose group commit
//! serves the tracking server's many small writes, with typed calls for Lathe's own callers
//! (the executor, the built-in steps, the demo); the MLflow REST API in `api.rs` is an adapter
//! over the same functions.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::runs::{self, Batch, NewRun, RunUpdate};
use super::types::{DatasetInput, Run, RunInfo, Tag};
use super::{ErrorCode, TrackingError, TrackingResult, experiments};
use crate::blobs::BlobStore;
use crate::store::{Store, StoreError};

/// Tracking over one workspace's store. Cheap to clone; clones share the store.
#[derive(Clone, Debug)]
pub struct Tracking {
    store: Store,
}

impl From<StoreError> for TrackingError {
    fn from(error: StoreError) -> Self {
        Self::internal(error.to_string())
    }
}

impl Tracking {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Opens the workspace in `root` for tracking alone (a CLI command, a test); a process that
    /// also does other work opens the [`Store`] once and takes [`Store::tracking`].
    pub fn open(root: impl Into<PathBuf>) -> crate::Result<Self> {
        Store::open(root).map(Self::new)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn root(&self) -> &Path {
        self.store.root()
    }

    pub fn blobs(&self) -> &BlobStore {
        self.store.blobs()
    }

    /// Runs `work` in the shared write transaction and returns its result once committed.
    pub fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> TrackingResult<T> + Send + 'static,
    ) -> TrackingResult<T> {
        self.store.write(work)
    }

    /// Runs `work` on a pooled read connection.
    pub fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> TrackingResult<T>,
    ) -> TrackingResult<T> {
        self.store.read(work)
    }

    /// The id of the experiment named `name`, created (with the default artifact location) if
    /// there is none.
    pub fn experiment_named(&self, name: &str) -> TrackingResult<String> {
        match self.read(|c| experiments::get_by_name(c, name)) {
            Ok(found) => Ok(found.experiment_id),
            Err(e) if e.code == ErrorCode::ResourceDoesNotExist => {
                let name = name.to_owned();
                // Looked up again under the write lock: another writer may have made it since.
                self.write(move |c| match experiments::get_by_name(c, &name) {
                    Ok(found) => Ok(found.experiment_id),
                    Err(_) => experiments::create(c, &name, None, &[]),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a run (`runs/create`).
    pub fn create_run(&self, new: NewRun) -> TrackingResult<Run> {
        self.write(move |c| runs::create(c, new))
    }

    /// Changes a run's status, end time or name (`runs/update`).
    pub fn update_run(&self, run_id: &str, change: RunUpdate) -> TrackingResult<RunInfo> {
        let run_id = run_id.to_owned();
        self.write(move |c| runs::update(c, &run_id, change))
    }

    /// Logs metrics, params and tags to a run in one write (`runs/log-batch`), checked against
    /// MLflow's limits first.
    pub fn log_batch(&self, run_id: &str, batch: Batch) -> TrackingResult<()> {
        // Checked before queueing, so a bad batch costs the writer nothing.
        runs::check_batch(&batch)?;
        let run_id = run_id.to_owned();
        self.write(move |c| runs::log_batch(c, &run_id, &batch))
    }

    /// Records the datasets a run read (`runs/log-inputs`).
    pub fn log_inputs(&self, run_id: &str, datasets: Vec<DatasetInput>) -> TrackingResult<()> {
        let run_id = run_id.to_owned();
        self.write(move |c| runs::log_inputs(c, &run_id, &datasets))
    }

    /// Sets one tag on a run (`runs/set-tag`).
    pub fn set_run_tag(&self, run_id: &str, key: &str, value: &str) -> TrackingResult<()> {
        let tag = Tag {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        self.log_batch(
            run_id,
            Batch {
                tags: vec![tag],
                ..Batch::default()
            },
        )
    }
}
