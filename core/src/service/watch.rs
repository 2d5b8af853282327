//! Following the workspace: a thread that notices commits by anyone — this process's other
//! connections, the CLI, another window, a script logging through the server — and says which
//! kinds of thing changed, so every list in the window stays current without a refresh.
//!
//! It looks at SQLite's `data_version` (which moves when another connection commits) and only
//! then at a few cheap aggregates per domain, so an idle workspace costs one pragma a tick.

use std::time::Duration;

use rusqlite::Connection;

/// Which kinds of thing changed since the last look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub assets: bool,
    pub experiments: bool,
    /// Runs, their metrics, params and tags.
    pub runs: bool,
    pub models: bool,
    pub labeling: bool,
    pub pipelines: bool,
    pub endpoints: bool,
    /// Batch endpoints, deployments and jobs (a running job's counts too).
    pub batch: bool,
    /// Monitors, their runs, alerts and actions.
    pub monitoring: bool,
    pub datastores: bool,
}

impl Changes {
    pub fn any(self) -> bool {
        self != Changes::default()
    }
}

/// Cheap aggregates per domain; a domain changed when its aggregates did.
#[derive(Debug, Clone, PartialEq, Default)]
struct Fingerprints {
    assets: Vec<i64>,
    experiments: Vec<i64>,
    runs: Vec<i64>,
    models: Vec<i64>,
    labeling: Vec<i64>,
    pipelines: Vec<i64>,
    endpoints: Vec<i64>,
    batch: Vec<i64>,
    monitoring: Vec<i64>,
    datastores: Vec<i64>,
}

fn numbers(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<i64>> {
    conn.query_row(sql, [], |row| {
        let count = row.as_ref().column_count();
        (0..count)
            .map(|i| row.get::<_, Option<i64>>(i).map(Option::unwrap_or_default))
            .collect()
    })
}

fn fingerprints(conn: &Connection) -> rusqlite::Result<Fingerprints> {
    Ok(Fingerprints {
        assets: numbers(conn, "SELECT count(*), max(id) FROM asset_versions")?,
        experiments: numbers(
            conn,
            "SELECT count(*), max(updated_at_ms), sum(lifecycle_stage = 'deleted') FROM experiments",
        )?,
        runs: numbers(
            conn,
            "SELECT (SELECT count(*) FROM runs), (SELECT max(id) FROM runs),
                    (SELECT sum(status = 'RUNNING') + 2 * sum(lifecycle_stage = 'deleted') FROM runs),
                    (SELECT max(end_time_ms) FROM runs), (SELECT max(rowid) FROM metric_chunks),
                    (SELECT count(*) FROM params), (SELECT count(*) FROM run_tags)",
        )?,
        models: numbers(
            conn,
            "SELECT (SELECT count(*) FROM registered_models), (SELECT max(updated_at_ms) FROM registered_models),
                    (SELECT count(*) FROM model_versions), (SELECT max(updated_at_ms) FROM model_versions),
                    (SELECT count(*) FROM model_aliases), (SELECT sum(version) FROM model_aliases),
                    (SELECT max(updated_at_ms) FROM promotion_policies),
                    (SELECT max(created_at_ms) FROM promotion_approvals),
                    (SELECT max(id) FROM promotion_decisions)",
        )?,
        labeling: numbers(
            conn,
            "SELECT (SELECT count(*) FROM label_projects), (SELECT max(id) FROM label_submissions),
                    (SELECT max(id) FROM label_reviews), (SELECT count(*) FROM label_predictions),
                    (SELECT max(id) FROM action_runs WHERE labeling_project IS NOT NULL)",
        )?,
        pipelines: numbers(
            conn,
            "SELECT (SELECT count(*) FROM pipelines), (SELECT count(*) FROM components),
                    (SELECT count(*) FROM environments), (SELECT count(*) FROM schedules)",
        )?,
        endpoints: numbers(
            conn,
            "SELECT (SELECT count(*) FROM endpoints), (SELECT max(updated_at_ms) FROM endpoints),
                    (SELECT count(*) FROM deployments), (SELECT max(updated_at_ms) FROM deployments),
                    (SELECT count(*) FROM deployments WHERE state = 'ready'),
                    (SELECT max(at_ms) FROM deployment_health)",
        )?,
        batch: numbers(
            conn,
            "SELECT (SELECT count(*) FROM batch_endpoints), (SELECT max(updated_at_ms) FROM batch_endpoints),
                    (SELECT count(*) FROM batch_deployments), (SELECT max(updated_at_ms) FROM batch_deployments),
                    (SELECT count(*) FROM batch_jobs), (SELECT max(id) FROM batch_jobs),
                    (SELECT max(heartbeat_ms) FROM batch_jobs), (SELECT sum(cancel_requested) FROM batch_jobs)",
        )?,
        monitoring: numbers(
            conn,
            "SELECT (SELECT count(*) FROM monitors), (SELECT max(updated_at_ms) FROM monitors),
                    (SELECT max(last_due_ms) FROM monitors), (SELECT max(id) FROM monitor_runs),
                    (SELECT count(*) FROM alerts), (SELECT max(last_seen_at_ms) FROM alerts),
                    (SELECT count(acknowledged_at_ms) FROM alerts), (SELECT max(finished_at_ms) FROM action_runs)",
        )?,
        // A spec's bytes summed: an update changes them (almost always).
        datastores: numbers(
            conn,
            "SELECT count(*), max(created_at_ms), sum(length(spec)), sum(unicode(spec) * length(name))
             FROM datastores",
        )?,
    })
}

fn diff(old: &Fingerprints, new: &Fingerprints) -> Changes {
    Changes {
        assets: old.assets != new.assets,
        experiments: old.experiments != new.experiments,
        runs: old.runs != new.runs,
        models: old.models != new.models,
        labeling: old.labeling != new.labeling,
        pipelines: old.pipelines != new.pipelines,
        endpoints: old.endpoints != new.endpoints,
        batch: old.batch != new.batch,
        monitoring: old.monitoring != new.monitoring,
        datastores: old.datastores != new.datastores,
    }
}

/// Watches the workspace in `root` every `every` on a thread of its own, calling `tell` with
/// what changed; stops when `tell` returns false (nobody listens any more).
pub(super) fn spawn(
    conn: crate::store::Reader,
    every: Duration,
    tell: impl Fn(Changes) -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("lathe-watcher".into())
        .spawn(move || {
            let version = |c: &Connection| {
                c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
                    .unwrap_or(-1)
            };
            let mut seen = version(&conn);
            let mut last = fingerprints(&conn).unwrap_or_default();
            loop {
                std::thread::sleep(every);
                let now = version(&conn);
                if now == seen {
                    // Nothing committed; still ask whether anyone listens.
                    if !tell(Changes::default()) {
                        return;
                    }
                    continue;
                }
                seen = now;
                let Ok(current) = fingerprints(&conn) else {
                    continue;
                };
                let changes = diff(&last, &current);
                last = current;
                if !tell(changes) {
                    return;
                }
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_by_another_connection_are_told_by_domain() {
        let dir = tempfile::tempdir().unwrap();
        // The watcher's connection and the writer are two connections of one store.
        let store = crate::Store::open(dir.path()).unwrap();
        let mut ws = store.workspace().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(
            store.reader().unwrap(),
            Duration::from_millis(20),
            move |c| {
                if c.any() {
                    let _ = tx.send(c);
                }
                true
            },
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "a,b\n1,2\n").unwrap();
        let request = crate::import::ImportRequest {
            path: csv,
            name: "t".into(),
            ..Default::default()
        };
        crate::import::import(&mut ws, &request, &crate::jobs::Progress::default()).unwrap();
        let changes = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            changes.assets && !changes.runs && !changes.labeling,
            "{changes:?}"
        );
        store
            .tracking()
            .handle(
                "POST",
                "runs/create",
                serde_json::json!({ "experiment_id": "0" }),
            )
            .unwrap();
        let changes = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(changes.runs && !changes.assets, "{changes:?}");
    }
}
