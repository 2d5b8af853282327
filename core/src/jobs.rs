//! Progress and cancellation shared between a long task and whoever watches it (a GUI progress
//! bar, a CLI progress bar). The task advances the counter and checks the flag; the watcher reads
//! the counter and may raise the flag. Both sides only touch atomics, so neither blocks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{Error, Result};

#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    cancelled: AtomicBool,
    stage: Mutex<String>,
}

impl Progress {
    /// Starts a new stage of work measured in `total` units (bytes, items, ...).
    pub fn start_stage(&self, stage: &str, total: u64) {
        if let Ok(mut s) = self.stage.lock() {
            stage.clone_into(&mut s);
        }
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    pub fn advance(&self, units: u64) {
        self.done.fetch_add(units, Ordering::Relaxed);
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// The cancel flag itself, for work that watches an `AtomicBool`.
    pub fn flag(&self) -> &AtomicBool {
        &self.cancelled
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Returns `Err(Cancelled)` once cancellation was asked for; call it between units of work.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            stage: self.stage.lock().map(|s| s.clone()).unwrap_or_default(),
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressSnapshot {
    pub stage: String,
    pub done: u64,
    pub total: u64,
}

impl ProgressSnapshot {
    /// Fraction done in 0..=1, or `None` when the total is not known.
    pub fn fraction(&self) -> Option<f32> {
        (self.total > 0).then(|| (self.done as f64 / self.total as f64).min(1.0) as f32)
    }
}
