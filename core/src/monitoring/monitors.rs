//! Monitors kept in the workspace (migration 17): created from their YAML after checking what
//! it names exists, listed with when they run next, their alerts grouped across windows and
//! acknowledged, and the actions an alert starts.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::MonitorError;
use super::spec::{self, MonitorSpec};
use crate::store::Store;
use crate::{Error, Result};

/// Alerts of the same signal, feature and metric within this long of each other are one
/// alert seen again (its count goes up; its actions do not run again).
pub const DEFAULT_COOLDOWN_MS: i64 = 24 * 3_600_000;

/// A monitor as the workspace keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Monitor {
    pub id: i64,
    pub spec: MonitorSpec,
    pub enabled: bool,
    pub cooldown_ms: i64,
    /// The last due time claimed (a run started for it).
    pub last_due_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// When it runs next.
    pub next_due_ms: Option<i64>,
}

impl Monitor {
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The experiment its runs are recorded in.
    pub fn experiment(&self) -> String {
        format!("monitor-{}", self.spec.name)
    }
}

/// A monitor created or updated, with what of its YAML is kept but not acted on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Saved {
    pub monitor: Monitor,
    pub notices: Vec<String>,
}

/// Checks that what the monitor names exists: its endpoint and deployment, its data assets.
fn check_references(store: &Store, spec: &MonitorSpec) -> Result<()> {
    let mut problems = Vec::new();
    if let Some(t) = &spec.target {
        match crate::endpoints::endpoint(store, &t.endpoint) {
            Err(e) => problems.push(format!(
                "create_monitor.monitoring_target.endpoint_deployment_id: {e}"
            )),
            Ok(_) => {
                let deployments = crate::endpoints::deployments(store, &t.endpoint)?;
                if !deployments.iter().any(|d| d.spec.name == t.deployment) {
                    let names: Vec<&str> =
                        deployments.iter().map(|d| d.spec.name.as_str()).collect();
                    problems.push(format!(
                        "create_monitor.monitoring_target.endpoint_deployment_id: endpoint '{}' has no deployment '{}'{}",
                        t.endpoint,
                        t.deployment,
                        crate::suggest::did_you_mean(&t.deployment, names.iter().copied())
                    ));
                }
            }
        }
    }
    let ws = store.workspace()?;
    for s in &spec.signals {
        for (role, data) in [
            ("production_data", &s.production),
            ("reference_data", &s.reference),
        ] {
            if let Some(project) = data.as_ref().and_then(|d| d.labeling.as_ref())
                && let Err(e) = crate::labeling::project::open(&ws, project)
            {
                problems.push(format!(
                    "create_monitor.monitoring_signals.{}.{role}.input_data.path: {e}",
                    s.name
                ));
            }
            let Some(asset) = data.as_ref().and_then(|d| d.asset.as_ref()) else {
                continue;
            };
            let resolved = asset
                .parse::<crate::assets::AssetRef>()
                .and_then(|r| ws.resolve(&r));
            match resolved {
                Ok(v) if v.kind != crate::assets::AssetKind::Table => problems.push(format!(
                    "create_monitor.monitoring_signals.{}.{role}.input_data.path: {} is {}, not a table",
                    s.name,
                    v.reference(),
                    v.kind
                )),
                Ok(_) => {}
                Err(e) => problems.push(format!(
                    "create_monitor.monitoring_signals.{}.{role}.input_data.path: {e}",
                    s.name
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MonitorError::Spec(format!(
            "monitor: {} problem(s): {}",
            problems.len(),
            problems.join("; ")
        ))
        .into())
    }
}

/// Creates a monitor from its YAML, or replaces the one of the same name when `replace`.
///
/// # Errors
/// The YAML's problems ([`spec::parse`]); an endpoint, deployment or data asset it names that
/// does not exist; a name taken (without `replace`) or unknown (with it).
pub fn put(store: &Store, yaml: &str, replace: bool) -> Result<Saved> {
    let parsed = spec::parse(yaml)?;
    check_references(store, &parsed.spec)?;
    let name = parsed.spec.name.clone();
    let json = serde_json::to_string(&parsed.spec)?;
    let now = crate::db::now_millis();
    let id = store.write::<_, Error>(move |c| {
        let existing: Option<i64> = c
            .query_row("SELECT id FROM monitors WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()?;
        match (existing, replace) {
            (Some(_), false) => Err(MonitorError::Spec(format!(
                "a monitor named '{name}' exists; update it instead"
            ))
            .into()),
            (None, true) => Err(MonitorError::Spec(format!("no monitor named '{name}'")).into()),
            (Some(id), true) => {
                c.execute(
                    "UPDATE monitors SET spec = ?1, updated_at_ms = ?2 WHERE id = ?3",
                    params![json, now, id],
                )?;
                Ok(id)
            }
            (None, false) => {
                c.execute(
                    "INSERT INTO monitors (name, spec, cooldown_ms, created_at_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                    params![name, json, DEFAULT_COOLDOWN_MS, now],
                )?;
                Ok(c.last_insert_rowid())
            }
        }
    })?;
    Ok(Saved {
        monitor: by_id(store, id)?,
        notices: parsed.notices,
    })
}

const COLUMNS: &str = "id, spec, enabled, cooldown_ms, last_due_ms, created_at_ms, updated_at_ms";

/// A `monitors` row: id, spec (JSON), enabled, cooldown, last due, created, updated.
type MonitorRow = (i64, String, bool, i64, Option<i64>, i64, i64);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MonitorRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get::<_, i64>(2)? != 0,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_monitor(
    (id, spec, enabled, cooldown_ms, last_due_ms, created_at_ms, updated_at_ms): MonitorRow,
) -> Result<Monitor> {
    let spec: MonitorSpec = serde_json::from_str(&spec)?;
    let mut m = Monitor {
        id,
        spec,
        enabled,
        cooldown_ms,
        last_due_ms,
        created_at_ms,
        updated_at_ms,
        next_due_ms: None,
    };
    m.next_due_ms = next_due(&m);
    Ok(m)
}

/// When `monitor` runs next: the trigger's first time after its last due time (or its
/// creation), within its start and end.
pub fn next_due(monitor: &Monitor) -> Option<i64> {
    let anchor = monitor.spec.start_ms.unwrap_or(monitor.created_at_ms);
    let after = monitor
        .last_due_ms
        .unwrap_or(monitor.created_at_ms)
        .max(monitor.spec.start_ms.map_or(i64::MIN, |s| s - 1));
    let next = monitor.spec.trigger.next_after(anchor, after)?;
    match monitor.spec.end_ms {
        Some(end) if next > end => None,
        _ => Some(next),
    }
}

fn by_id(store: &Store, id: i64) -> Result<Monitor> {
    let r = store.read::<_, Error>(move |c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM monitors WHERE id = ?1"),
            [id],
            row,
        )?)
    })?;
    to_monitor(r)
}

/// Every monitor, by name.
pub fn list(store: &Store) -> Result<Vec<Monitor>> {
    let rows = store.read::<_, Error>(|c| {
        let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM monitors ORDER BY name"))?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    rows.into_iter().map(to_monitor).collect()
}

/// The monitor named `name`.
///
/// # Errors
/// An unknown name, with the nearest suggested.
pub fn get(store: &Store, name: &str) -> Result<Monitor> {
    let key = name.to_owned();
    let r = store.read::<_, Error>(move |c| {
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM monitors WHERE name = ?1"),
            [&key],
            row,
        )
        .optional()?)
    })?;
    match r {
        Some(r) => to_monitor(r),
        None => {
            let known: Vec<String> = list(store)?.into_iter().map(|m| m.spec.name).collect();
            Err(MonitorError::Spec(format!(
                "no monitor named '{name}'{}",
                crate::suggest::did_you_mean(name, known.iter().map(String::as_str))
            ))
            .into())
        }
    }
}

/// Changes a monitor's settings that its YAML does not hold.
///
/// # Errors
/// An unknown monitor; a cooldown below zero.
pub fn set_settings(
    store: &Store,
    name: &str,
    enabled: Option<bool>,
    cooldown_ms: Option<i64>,
) -> Result<Monitor> {
    let monitor = get(store, name)?;
    if cooldown_ms.is_some_and(|c| c < 0) {
        return Err(MonitorError::Spec("cooldown: zero or longer".into()).into());
    }
    let id = monitor.id;
    store.write::<_, Error>(move |c| {
        c.execute(
            "UPDATE monitors SET enabled = COALESCE(?1, enabled),
                 cooldown_ms = COALESCE(?2, cooldown_ms), updated_at_ms = ?3 WHERE id = ?4",
            params![enabled, cooldown_ms, crate::db::now_millis(), id],
        )?;
        Ok(())
    })?;
    by_id(store, id)
}

/// Deletes a monitor with its runs, alerts and actions (its tracked runs stay).
///
/// # Errors
/// An unknown monitor.
pub fn delete(store: &Store, name: &str) -> Result<()> {
    let id = get(store, name)?.id;
    store.write::<_, Error>(move |c| {
        c.execute("DELETE FROM monitors WHERE id = ?1", [id])?;
        Ok(())
    })
}

/// The monitors due at `now`, each claimed for its due time (so that one process runs it):
/// `(monitor, due time)`. A monitor that came due several times while Lathe was closed runs
/// once, for the latest.
pub fn claim_due(store: &Store, now: i64) -> Result<Vec<(Monitor, i64)>> {
    let mut claimed = Vec::new();
    for m in list(store)? {
        if !m.enabled {
            continue;
        }
        let Some(mut due) = m.next_due_ms.filter(|&t| t <= now) else {
            continue;
        };
        let anchor = m.spec.start_ms.unwrap_or(m.created_at_ms);
        while let Some(next) = m.spec.trigger.next_after(anchor, due).filter(|&t| t <= now) {
            due = next;
        }
        let (id, previous) = (m.id, m.last_due_ms);
        let won = store.write::<_, Error>(move |c| {
            Ok(c.execute(
                "UPDATE monitors SET last_due_ms = ?1 WHERE id = ?2 AND last_due_ms IS ?3",
                params![due, id, previous],
            )?)
        })?;
        if won == 1 {
            claimed.push((m, due));
        }
    }
    Ok(claimed)
}

/// An alert: one signal's metric of one feature over its threshold, seen in one window or in
/// several within the cooldown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: i64,
    pub monitor: String,
    pub signal: String,
    pub feature: String,
    pub metric: String,
    /// The latest value seen, and its threshold.
    pub value: f64,
    pub threshold: f64,
    /// The first window it was seen in starts here; the last one ends here.
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub first_run: i64,
    pub last_run: i64,
    pub occurrences: i64,
    pub opened_at_ms: i64,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at_ms: Option<i64>,
    /// The actions it started: `(kind, state, what it made)`.
    pub actions: Vec<ActionRun>,
}

/// An action an alert started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRun {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub message: String,
    /// The tracked run of the pipeline it started.
    pub pipeline_run_id: Option<String>,
    /// The labeling project it filled.
    pub labeling_project: Option<String>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub monitor: Option<String>,
    pub signal: Option<String>,
    /// Only those not acknowledged.
    pub open: bool,
}

/// Alerts, newest first.
pub fn alerts(store: &Store, filter: &AlertFilter) -> Result<Vec<Alert>> {
    let f = filter.clone();
    store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT a.id, m.name, a.signal, a.feature, a.metric, a.value, a.threshold,
                 a.window_start_ms, a.window_end_ms, a.first_run_id, a.last_run_id,
                 a.occurrences, a.opened_at_ms, a.acknowledged_by, a.acknowledged_at_ms
             FROM alerts a JOIN monitors m ON m.id = a.monitor_id
             WHERE (?1 IS NULL OR m.name = ?1) AND (?2 IS NULL OR a.signal = ?2)
                 AND (?3 = 0 OR a.acknowledged_at_ms IS NULL)
             ORDER BY a.window_end_ms DESC, a.id DESC",
        )?;
        let rows = stmt.query_map(params![f.monitor, f.signal, f.open], |r| {
            Ok(Alert {
                id: r.get(0)?,
                monitor: r.get(1)?,
                signal: r.get(2)?,
                feature: r.get(3)?,
                metric: r.get(4)?,
                value: r.get(5)?,
                threshold: r.get(6)?,
                window_start_ms: r.get(7)?,
                window_end_ms: r.get(8)?,
                first_run: r.get(9)?,
                last_run: r.get(10)?,
                occurrences: r.get(11)?,
                opened_at_ms: r.get(12)?,
                acknowledged_by: r.get(13)?,
                acknowledged_at_ms: r.get(14)?,
                actions: Vec::new(),
            })
        })?;
        let mut alerts = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut actions = c.prepare(
            "SELECT r.id, r.kind, r.state, r.message, r.pipeline_run_id, r.labeling_project
             FROM alert_action_runs x JOIN action_runs r ON r.id = x.action_run_id
             WHERE x.alert_id = ?1 ORDER BY r.id",
        )?;
        for alert in &mut alerts {
            alert.actions = actions
                .query_map([alert.id], |r| {
                    Ok(ActionRun {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        state: r.get(2)?,
                        message: r.get(3)?,
                        pipeline_run_id: r.get(4)?,
                        labeling_project: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
        }
        Ok(alerts)
    })
}

/// Acknowledges alerts: who and when are recorded. Returns how many changed (an alert already
/// acknowledged keeps its first acknowledgement).
///
/// # Errors
/// An alert id that does not exist.
pub fn acknowledge(store: &Store, ids: &[i64], by: &str) -> Result<usize> {
    let (ids, by) = (ids.to_vec(), by.to_owned());
    store.write::<_, Error>(move |c| {
        let now = crate::db::now_millis();
        let mut changed = 0;
        for id in ids {
            let exists: bool = c
                .query_row("SELECT 1 FROM alerts WHERE id = ?1", [id], |_| Ok(true))
                .optional()?
                .unwrap_or(false);
            if !exists {
                return Err(MonitorError::Spec(format!("there is no alert {id}")).into());
            }
            changed += c.execute(
                "UPDATE alerts SET acknowledged_by = ?1, acknowledged_at_ms = ?2
                 WHERE id = ?3 AND acknowledged_at_ms IS NULL",
                params![by, now, id],
            )?;
        }
        Ok(changed)
    })
}
