//! Schedules: a saved pipeline (or a pipeline file) run on a cron pattern, in UTC, while Lathe
//! runs — the window or `lathe server` — for retraining. A schedule that came due while Lathe
//! was closed runs once when it next starts, not once per missed time.

use crate::pipeline::{PipelineError, PipelineResult};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use serde::Serialize;

use super::executor::{self, Outcome, RunOptions};
use super::job::{self, Pipeline};
use crate::tracking::Tracking;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub id: i64,
    /// `NAME:VERSION` of a saved pipeline, or the path of a pipeline file.
    pub pipeline: String,
    pub cron: String,
    pub experiment: String,
    pub enabled: bool,
    pub last_run_at: Option<i64>,
    pub created_at: i64,
    /// When it runs next (milliseconds since the epoch).
    pub next_run_at: Option<i64>,
}

fn parse_cron(pattern: &str) -> PipelineResult<Cron> {
    Cron::from_str(pattern)
        .map_err(|e| PipelineError::Invalid(format!("'{pattern}' is not a cron pattern: {e}")))
}

/// The first time after `after_ms` that `pattern` matches.
pub fn next_after(pattern: &str, after_ms: i64) -> PipelineResult<i64> {
    let cron = parse_cron(pattern)?;
    let start = DateTime::<Utc>::from_timestamp_millis(after_ms).ok_or("time out of range")?;
    cron.find_next_occurrence(&start, false)
        .map(|t| t.timestamp_millis())
        .map_err(|e| PipelineError::Invalid(format!("'{pattern}' never matches: {e}")))
}

/// Reads a schedule's pipeline: a saved version, or a file. Returns it with its base folder.
pub fn load(
    tracking: &Tracking,
    root: &Path,
    reference: &str,
) -> PipelineResult<(Pipeline, PathBuf)> {
    let path = Path::new(reference);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{reference}: {e}"))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let pipeline = job::parse_with(&text, &base, &|r| {
            super::registry::resolve(tracking, root, r)
        })
        .map_err(|problems| {
            let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
            format!("{reference}: {}", listed.join("; "))
        })?;
        return Ok((pipeline, base));
    }
    let (name, version) = reference
        .rsplit_once(':')
        .and_then(|(n, v)| Some((n, v.parse::<i64>().ok()?)))
        .ok_or_else(|| {
            format!("'{reference}' is neither a pipeline file nor a saved pipeline NAME:VERSION")
        })?;
    let pipeline = super::saved::open(tracking, root, name, version)?;
    let problems = job::check(&pipeline);
    if let Some(first) = problems.first() {
        return Err(PipelineError::Invalid(format!(
            "{reference} is not ready to run: {first}"
        )));
    }
    Ok((pipeline, root.to_path_buf()))
}

/// Adds a schedule after checking its pattern and that its pipeline loads and can run.
pub fn add(
    tracking: &Tracking,
    root: &Path,
    pipeline: &str,
    pattern: &str,
    experiment: Option<&str>,
) -> PipelineResult<Schedule> {
    parse_cron(pattern)?;
    let reference = match std::fs::canonicalize(pipeline) {
        Ok(path) if path.is_file() => path.display().to_string(),
        _ => pipeline.to_owned(),
    };
    let (loaded, _) = load(tracking, root, &reference)?;
    let experiment = experiment
        .map(str::to_owned)
        .or(loaded.experiment_name)
        .or(loaded.display_name)
        .unwrap_or_else(|| "scheduled".into());
    let (p, c, e) = (reference.clone(), pattern.to_owned(), experiment.clone());
    let now = crate::db::now_millis();
    let id = tracking
        .write(move |conn| {
            conn.execute(
                "INSERT INTO schedules (pipeline, cron, experiment, created_at) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![p, c, e, now],
            )?;
            Ok(conn.last_insert_rowid())
        })
        ?;
    Ok(Schedule {
        id,
        pipeline: reference,
        cron: pattern.to_owned(),
        experiment,
        enabled: true,
        last_run_at: None,
        created_at: now,
        next_run_at: next_after(pattern, now).ok(),
    })
}

pub fn list(tracking: &Tracking) -> PipelineResult<Vec<Schedule>> {
    let rows = tracking.read(|c| {
        let mut stmt = c.prepare(
            "SELECT id, pipeline, cron, experiment, enabled, last_run_at, created_at
                 FROM schedules ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Schedule {
                id: r.get(0)?,
                pipeline: r.get(1)?,
                cron: r.get(2)?,
                experiment: r.get(3)?,
                enabled: r.get::<_, i64>(4)? != 0,
                last_run_at: r.get(5)?,
                created_at: r.get(6)?,
                next_run_at: None,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?;
    Ok(rows
        .into_iter()
        .map(|mut s| {
            let from = s.last_run_at.unwrap_or(s.created_at);
            s.next_run_at = next_after(&s.cron, from).ok();
            s
        })
        .collect())
}

pub fn remove(tracking: &Tracking, id: i64) -> PipelineResult<()> {
    let removed =
        tracking.write(move |c| Ok(c.execute("DELETE FROM schedules WHERE id = ?1", [id])?))?;
    if removed == 0 {
        return Err(PipelineError::Invalid(format!("there is no schedule {id}")));
    }
    Ok(())
}

/// The schedules due at `now`, each claimed (its last run set to `now`) so that a second
/// Lathe on the same workspace does not run it too.
pub fn claim_due(tracking: &Tracking, now: i64) -> PipelineResult<Vec<Schedule>> {
    let mut claimed = Vec::new();
    for schedule in list(tracking)? {
        let due = schedule.enabled && schedule.next_run_at.is_some_and(|t| t <= now);
        if !due {
            continue;
        }
        let (id, previous) = (schedule.id, schedule.last_run_at);
        let won = tracking.write(move |c| {
            Ok(c.execute(
                "UPDATE schedules SET last_run_at = ?1 WHERE id = ?2 AND last_run_at IS ?3",
                rusqlite::params![now, id, previous],
            )?)
        })?;
        if won == 1 {
            claimed.push(schedule);
        }
    }
    Ok(claimed)
}

/// Runs one claimed schedule.
pub fn run(
    tracking: &Tracking,
    root: &Path,
    schedule: &Schedule,
    tracking_uri: Option<String>,
    cancel: &AtomicBool,
) -> PipelineResult<Outcome> {
    let (pipeline, base) = load(tracking, root, &schedule.pipeline)?;
    let mut options = RunOptions::new(&schedule.experiment);
    options.tracking_uri = tracking_uri;
    options.run_name = Some(format!(
        "{} (schedule {})",
        pipeline.display_name.as_deref().unwrap_or("pipeline"),
        schedule.id
    ));
    executor::run(tracking, root, &pipeline, &base, &options, cancel, &|_| {})
}

/// The schedule runner's off switch: dropped (or [`Runner::stop`]ped), the runner ends within
/// a second, cancelling a run in hand (its commands are stopped, as on any cancel), and gives
/// its lease up.
#[derive(Debug)]
pub struct Runner {
    stop: Arc<AtomicBool>,
    holder: String,
}

impl Runner {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Who this runner is in the `schedules` lease.
    pub fn holder(&self) -> &str {
        &self.holder
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The lease that decides which process's runner runs a workspace's schedules.
pub const LEASE: &str = "schedules";

/// Checks for due schedules every `every` on a thread of its own until the returned [`Runner`]
/// is dropped, telling `report` how each run went. Of every process holding the workspace
/// (windows, `lathe server`), the one whose runner holds the [`LEASE`] runs the schedules; the
/// lease lasts three checks, renewed at each, so a process that dies is taken over.
pub fn spawn_runner(
    tracking: Tracking,
    tracking_uri: Option<String>,
    every: Duration,
    report: impl Fn(&Schedule, PipelineResult<Outcome>) + Send + 'static,
) -> std::io::Result<Runner> {
    static RUNNERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let holder = format!(
        "process {} runner {}",
        std::process::id(),
        RUNNERS.fetch_add(1, Ordering::Relaxed)
    );
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let me = holder.clone();
    std::thread::Builder::new()
        .name("lathe-schedules".into())
        .spawn(move || {
            let root = tracking.root().to_path_buf();
            let store = tracking.store().clone();
            let tick = Duration::from_secs(1).min(every);
            while !stopped.load(Ordering::Relaxed) {
                let leader = store.take_lease(LEASE, &me, every * 3).unwrap_or(false);
                if leader && let Ok(due) = claim_due(&tracking, crate::db::now_millis()) {
                    for schedule in due {
                        // A run in hand is cancelled by the same switch.
                        let outcome =
                            run(&tracking, &root, &schedule, tracking_uri.clone(), &stopped);
                        report(&schedule, outcome);
                    }
                }
                let waited = std::time::Instant::now();
                while waited.elapsed() < every && !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                }
            }
            let _ = store.release_lease(LEASE, &me);
        })?;
    Ok(Runner { stop, holder })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who holds the schedules lease.
    fn leader(tracking: &Tracking) -> Option<String> {
        tracking
            .read(|c| {
                Ok(
                    c.query_row("SELECT holder FROM leases WHERE name = ?1", [LEASE], |r| {
                        r.get(0)
                    })
                    .ok(),
                )
            })
            .unwrap()
    }

    /// Waits up to 5 s for `holder` to lead.
    fn leads(tracking: &Tracking, holder: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if leader(tracking).as_deref() == Some(holder) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn one_runner_leads_and_another_takes_over_when_it_stops_or_dies() {
        let dir = tempfile::tempdir().unwrap();
        // Two processes' stores on one workspace.
        let (one, two) = (
            Tracking::open(dir.path()).unwrap(),
            Tracking::open(dir.path()).unwrap(),
        );
        let every = Duration::from_millis(20);
        let first = spawn_runner(one.clone(), None, every, |_, _| {}).unwrap();
        assert!(leads(&one, first.holder()));
        let second = spawn_runner(two.clone(), None, every, |_, _| {}).unwrap();
        std::thread::sleep(every * 5);
        assert_eq!(leader(&two).as_deref(), Some(first.holder()), "one leader");
        drop(first);
        assert!(
            leads(&two, second.holder()),
            "taken over when the first stops"
        );
        // A process that dies holding the lease keeps it only until it expires.
        drop(second);
        std::thread::sleep(every * 3);
        one.write(|c| {
            c.execute(
                "INSERT OR REPLACE INTO leases (name, holder, expires_at_ms)
                 VALUES (?1, 'a dead process', ?2)",
                rusqlite::params![LEASE, crate::db::now_millis() + 200],
            )?;
            Ok(())
        })
        .unwrap();
        let third = spawn_runner(one.clone(), None, every, |_, _| {}).unwrap();
        std::thread::sleep(every * 2);
        assert_eq!(leader(&one).as_deref(), Some("a dead process"));
        assert!(
            leads(&one, third.holder()),
            "taken over once the lease ran out"
        );
    }

    #[test]
    fn the_runner_ends_when_its_handle_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = Tracking::open(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let runner = spawn_runner(tracking, None, Duration::from_millis(10), move |_, _| {
            let _ = tx.send(());
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            rx.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Empty),
            "running, nothing due"
        );
        drop(runner);
        // The thread drops its report closure, and with it the sender, as it ends.
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn patterns_give_the_next_time_and_bad_ones_are_named() {
        // 2026-01-01T00:00:00Z, then every day at 03:00.
        let start = 1_767_225_600_000;
        assert_eq!(
            next_after("0 3 * * *", start).unwrap(),
            start + 3 * 3_600_000
        );
        let e = next_after("61 * * * *", start).unwrap_err().to_string();
        assert!(e.starts_with("'61 * * * *' is not a cron pattern"), "{e}");
    }

    #[test]
    fn a_due_schedule_is_claimed_once_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = Tracking::open(dir.path()).unwrap();
        let file = dir.path().join("p.yml");
        std::fs::write(
            &file,
            "type: pipeline\ndisplay_name: nightly\njobs:\n  a:\n    command: echo hi\n    environment: system\n",
        )
        .unwrap();
        let s = add(
            &tracking,
            dir.path(),
            file.to_str().unwrap(),
            "* * * * *",
            None,
        )
        .unwrap();
        assert_eq!(s.experiment, "nightly");
        assert!(
            claim_due(&tracking, s.created_at).unwrap().is_empty(),
            "not due yet"
        );
        let later = s.created_at + 61_000;
        let due = claim_due(&tracking, later).unwrap();
        assert_eq!(due.len(), 1);
        assert!(
            claim_due(&tracking, later).unwrap().is_empty(),
            "claimed once"
        );
        let outcome = run(
            &tracking,
            dir.path(),
            &due[0],
            None,
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(outcome.succeeded());
        remove(&tracking, s.id).unwrap();
        assert!(
            remove(&tracking, s.id)
                .unwrap_err()
                .to_string()
                .contains("no schedule")
        );
        assert!(add(&tracking, dir.path(), "nope:1", "* * * * *", None).is_err());
    }
}
