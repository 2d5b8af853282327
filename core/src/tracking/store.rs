//! The tracking facade: MLflow's model over the workspace's [`Store`], whose group commit
//! serves the tracking server's many small writes.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{TrackingError, TrackingResult};
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
}
