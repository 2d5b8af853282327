//! Runs monitors when they come due, while Lathe runs (the window or `lathe server`): a thread
//! per process, of which the one holding the `monitors` lease runs them, as pipeline
//! schedules are run (`pipeline/schedule.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::run::{self, RunOutcome};
use crate::Result;
use crate::store::Store;

/// The lease that decides which process runs a workspace's monitors.
pub const LEASE: &str = "monitors";

/// The runner's off switch: dropped, the runner ends within a second and gives its lease up.
#[derive(Debug)]
pub struct Runner {
    stop: Arc<AtomicBool>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Checks for due monitors every `every` until the [`Runner`] is dropped, telling `report`
/// how each run went (its monitor's name, the outcome).
///
/// # Errors
/// The thread cannot start.
pub fn spawn(
    store: Store,
    every: Duration,
    report: impl Fn(&str, &Result<RunOutcome>) + Send + 'static,
) -> std::io::Result<Runner> {
    let holder = format!("process {} monitors", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("lathe-monitors".into())
        .spawn(move || {
            let tick = Duration::from_millis(200).min(every);
            while !stopped.load(Ordering::Relaxed) {
                let leader = store
                    .take_lease(LEASE, &holder, (every * 3).max(Duration::from_secs(5)))
                    .unwrap_or(false);
                if leader
                    && let Ok(claimed) = super::monitors::claim_due(&store, crate::db::now_millis())
                {
                    for (monitor, due) in claimed {
                        let outcome = run::run(&store, &monitor, due, None);
                        report(monitor.name(), &outcome);
                    }
                }
                let waited = std::time::Instant::now();
                while waited.elapsed() < every && !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                }
            }
            let _ = store.release_lease(LEASE, &holder);
        })?;
    Ok(Runner { stop })
}
