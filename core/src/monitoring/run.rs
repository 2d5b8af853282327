//! One monitor run: each enabled signal computed over its window — the production data (a
//! data asset, or the monitored deployment's collected rows of that window) against its
//! reference (a data asset, or the deployment's own earlier data) —, the values recorded as a
//! tracked run, each crossed threshold raised as an alert (grouped with the same alert seen
//! within the cooldown), and the monitor's actions started for new alerts. A backtest runs
//! the same computation over past windows and records nothing.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::compare::{self, Comparison, Options};
use super::monitors::Monitor;
use super::performance::{self, Performance};
use super::spec::{DataSpec, Features, Signal, SignalKind};
use super::tables::Table;
use super::thresholds::{self, Crossing};
use super::{Metric, MonitorError};
use crate::store::Store;
use crate::{Error, Result};

/// What one signal found in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalResult {
    pub signal: String,
    pub kind: SignalKind,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    /// What was compared (`churn-blue-model_inputs, 12:00 to 12:05`, `customers:1`).
    pub production: String,
    pub reference: String,
    /// Drift and data quality signals: every feature's values and distributions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// Every value the signal reports, `feature → metric → value` (the signal's own metrics
    /// only: a data quality signal's rates, a drift signal's distances and tests). A signal's
    /// own summary (share of drifted features, performance) is under the feature `""`.
    pub values: BTreeMap<String, compare::Values>,
    pub crossings: Vec<Crossing>,
    pub share_of_drifted_features: Option<f64>,
    /// Why the signal could not be computed; it then crosses nothing.
    pub problem: Option<String>,
}

/// A monitor run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    /// The `monitor_runs` row (none for a backtest).
    pub id: Option<i64>,
    pub monitor: String,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    /// `completed`, or `failed` when a signal could not be computed.
    pub state: String,
    pub message: String,
    /// The tracked run holding the values.
    pub run_id: Option<String>,
    pub signals: Vec<SignalResult>,
    /// Alerts this run opened, and those it saw again within their cooldown.
    pub opened: Vec<i64>,
    pub seen_again: Vec<i64>,
    pub actions: Vec<super::monitors::ActionRun>,
}

/// The production window of `signal` for a run due at `due_ms`: fixed dates, or the lookback
/// window before the run (less its offset), by default the trigger's period.
fn window(monitor: &Monitor, data: Option<&DataSpec>, due_ms: i64) -> (i64, i64) {
    let w = data.map(|d| d.window.clone()).unwrap_or_default();
    if let (Some(s), Some(e)) = (w.start_ms, w.end_ms) {
        return (s, e);
    }
    let size = w
        .size_ms
        .unwrap_or_else(|| monitor.spec.trigger.default_window_ms());
    let end = due_ms - w.offset_ms.unwrap_or(0);
    (end - size, end)
}

/// A data asset named by a monitor, as a table, with its version's id for lineage.
fn asset_table(store: &Store, asset: &str) -> Result<(Table, Vec<i64>)> {
    let ws = store.workspace()?;
    let version = ws.resolve(&asset.parse()?)?;
    let label = version.reference();
    Ok((
        Table::versions(&ws, std::slice::from_ref(&version), label)?,
        vec![version.id],
    ))
}

/// The monitored deployment's collected `kind` rows of `[start, end)`, with the asset
/// versions of the sealed windows they come from.
pub(super) fn collected(
    store: &Store,
    monitor: &Monitor,
    kind: &str,
    start: i64,
    end: i64,
) -> Result<(Table, Vec<i64>)> {
    let target = monitor.spec.target.clone().ok_or_else(|| {
        MonitorError::Spec(
            "no production data: the signal names no data asset and the monitor no deployment"
                .into(),
        )
    })?;
    let (e, d, k) = (
        target.endpoint.clone(),
        target.deployment.clone(),
        kind.to_owned(),
    );
    let parts: Vec<(String, Option<i64>)> = store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT blob_hash, asset_version_id FROM collected_parts
             WHERE endpoint = ?1 AND deployment = ?2 AND kind = ?3
                 AND last_ms >= ?4 AND first_ms < ?5
             ORDER BY first_ms, id",
        )?;
        let rows = stmt.query_map(params![e, d, k, start, end], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    let label = format!(
        "{}-{}-{kind}, {} to {}",
        target.endpoint,
        target.deployment,
        crate::format::timestamp(start / 1000),
        crate::format::timestamp(end / 1000)
    );
    if parts.is_empty() {
        return Err(MonitorError::EmptyWindow { what: label }.into());
    }
    let files = parts
        .iter()
        .map(|(hash, _)| {
            (
                store.blobs().path(hash),
                format!("collected part {}", &hash[..12.min(hash.len())]),
            )
        })
        .collect();
    let mut versions: Vec<i64> = parts.iter().filter_map(|(_, v)| *v).collect();
    versions.sort_unstable();
    versions.dedup();
    Ok((
        Table::parquet_files(files, label).between(start, end),
        versions,
    ))
}

/// A labeling project's accepted answers as ground truth (`correlation_id`, `actual`).
fn labeled(store: &Store, project: &str) -> Result<Table> {
    let ws = store.workspace()?;
    let p = crate::labeling::project::open(&ws, project)?;
    let df = crate::labeling::rows::ground_truth_frame(&ws, &p)?;
    Ok(Table::frame(df, format!("accepted labels of {project}")))
}

/// The asset versions a signal read: `(role, version id)`.
type Lineage = Vec<(&'static str, i64)>;

/// The tables a signal compares, with lineage: `(production, reference, versions read)`.
pub(super) fn tables(
    store: &Store,
    monitor: &Monitor,
    signal: &Signal,
    start: i64,
    end: i64,
) -> Result<(Table, Table, Lineage)> {
    let kind = signal
        .kind
        .map_or("model_inputs", SignalKind::collected_kind);
    let context = |d: Option<&DataSpec>| {
        d.and_then(|d| d.data_context.clone())
            .filter(|c| c == "model_inputs" || c == "model_outputs")
    };
    let production_kind = context(signal.production.as_ref()).unwrap_or_else(|| kind.to_owned());
    let (production, p_versions) = match signal.production.as_ref().and_then(|p| p.asset.as_ref()) {
        Some(asset) => asset_table(store, asset)?,
        None => collected(store, monitor, &production_kind, start, end)?,
    };
    let reference_data = signal.reference.as_ref();
    let (reference, r_versions) = match (
        reference_data.and_then(|r| r.asset.as_ref()),
        reference_data.and_then(|r| r.labeling.as_ref()),
    ) {
        (Some(asset), _) => asset_table(store, asset)?,
        (None, Some(project)) => (labeled(store, project)?, Vec::new()),
        (None, None) => {
            // Azure ML's default reference: the deployment's own data of the two windows
            // before the production window.
            let size = end - start;
            let reference_kind = context(signal.reference.as_ref()).unwrap_or(production_kind);
            collected(store, monitor, &reference_kind, start - 2 * size, start)?
        }
    };
    let mut lineage: Vec<(&'static str, i64)> =
        p_versions.into_iter().map(|v| ("production", v)).collect();
    lineage.extend(r_versions.into_iter().map(|v| ("reference", v)));
    Ok((production, reference, lineage))
}

/// A column name from a signal's `data_column_names`.
fn column(data: Option<&DataSpec>, key: &str) -> Option<String> {
    data.and_then(|d| d.column_names.get(key).cloned())
}

/// Computes one signal over the window ending at `due_ms`.
fn compute(
    store: &Store,
    monitor: &Monitor,
    signal: &Signal,
    due_ms: i64,
    given: Option<(i64, i64)>,
    cache: Option<&std::sync::Arc<compare::ReferenceCache>>,
    lineage: &mut Vec<(String, &'static str, i64)>,
) -> SignalResult {
    let kind = signal.kind.unwrap_or(SignalKind::DataDrift);
    let (start, end) = given.unwrap_or_else(|| window(monitor, signal.production.as_ref(), due_ms));
    let mut result = SignalResult {
        signal: signal.name.clone(),
        kind,
        window_start_ms: start,
        window_end_ms: end,
        production: String::new(),
        reference: String::new(),
        comparison: None,
        values: BTreeMap::new(),
        crossings: Vec::new(),
        share_of_drifted_features: None,
        problem: None,
    };
    let outcome = (|| -> Result<()> {
        let (production, reference, read) = tables(store, monitor, signal, start, end)?;
        result.production = production.label.clone();
        result.reference = reference.label.clone();
        lineage.extend(
            read.into_iter()
                .map(|(role, v)| (signal.name.clone(), role, v)),
        );
        if kind == SignalKind::ModelPerformance {
            let p: Performance = performance::evaluate(
                &production,
                &reference,
                &performance::Columns::of(
                    signal,
                    monitor
                        .spec
                        .target
                        .as_ref()
                        .and_then(|t| t.ml_task.as_deref()),
                ),
            )?;
            for (&metric, &threshold) in &signal.performance {
                if let Some(&value) = p.metrics.get(&metric)
                    && metric.crosses(value, threshold)
                {
                    result.crossings.push(Crossing {
                        feature: String::new(),
                        metric,
                        value,
                        threshold,
                    });
                }
            }
            result
                .values
                .insert(String::new(), compare::Values(p.metrics));
            return Ok(());
        }
        let mut options = Options {
            types: signal.type_overrides.clone(),
            cache: cache.cloned(),
            ..Options::default()
        };
        match &signal.features {
            Features::List(names) => options.features = Some(names.clone()),
            Features::All | Features::TopN(_) => {}
        }
        if let Some(target) = column(signal.reference.as_ref(), "target_column") {
            options.exclude.push(target);
        }
        if kind == SignalKind::PredictionDrift {
            let predicted = column(signal.production.as_ref(), "prediction")
                .unwrap_or_else(|| "prediction".to_owned());
            let in_reference = column(signal.reference.as_ref(), "prediction")
                .or_else(|| column(signal.reference.as_ref(), "target_column"))
                .unwrap_or_else(|| predicted.clone());
            options.features = Some(vec![predicted.clone()]);
            options.reference_columns.insert(predicted, in_reference);
        }
        let comparison = compare::compare(&reference, &production, &options)?;
        let mut thresholds = signal.thresholds.clone();
        // A signal reports its own kind of metric: drift or quality.
        let own = |m: &Metric| Metric::QUALITY.contains(m) == (kind == SignalKind::DataQuality);
        thresholds.numerical.retain(|m, _| own(m));
        thresholds.categorical.retain(|m, _| own(m));
        let verdict = thresholds::evaluate(&comparison, &thresholds);
        for f in &comparison.features {
            let values: BTreeMap<Metric, f64> = f
                .drift
                .iter()
                .chain(f.quality.iter())
                .filter(|(m, _)| own(m))
                .map(|(m, v)| (*m, *v))
                .collect();
            result
                .values
                .insert(f.name.clone(), compare::Values(values));
        }
        if kind != SignalKind::DataQuality {
            result.share_of_drifted_features = Some(verdict.share_of_drifted_features);
        }
        result.crossings = verdict.crossings;
        result.comparison = Some(comparison);
        Ok(())
    })();
    if let Err(e) = outcome {
        result.problem = Some(e.to_string());
        result.crossings.clear();
    }
    result
}

/// Computes every enabled signal for the window ending at `due_ms`, recording nothing;
/// reference columns prepared once in `cache` serve every window compared with them.
fn evaluate(
    store: &Store,
    monitor: &Monitor,
    due_ms: i64,
    cache: &std::sync::Arc<compare::ReferenceCache>,
) -> Vec<SignalResult> {
    let mut lineage = Vec::new();
    monitor
        .spec
        .signals
        .iter()
        .filter(|s| s.enabled)
        .map(|s| compute(store, monitor, s, due_ms, None, Some(cache), &mut lineage))
        .collect()
}

/// A metric key for MLflow: `signal.feature.metric`, characters MLflow refuses as `_`.
fn metric_key(signal: &str, feature: &str, metric: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || "_-. /".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    if feature.is_empty() {
        format!("{}.{}", clean(signal), clean(metric))
    } else {
        format!("{}.{}.{}", clean(signal), clean(feature), clean(metric))
    }
}

/// Runs `monitor` for the window ending at `due_ms`: computes its signals, records them as a
/// tracked run in the monitor's experiment (one metric series per signal, feature and
/// metric, stepped by the run's number), raises alerts for the alerting signals' crossings,
/// and starts the monitor's actions when an alert is new. A signal that cannot be computed
/// makes the run `failed`, with its reason, and raises nothing. `window` replaces every
/// signal's production window (`lathe monitor run --window START/END`).
///
/// # Errors
/// The store cannot be written.
pub fn run(
    store: &Store,
    monitor: &Monitor,
    due_ms: i64,
    window: Option<(i64, i64)>,
) -> Result<RunOutcome> {
    let started = crate::db::now_millis();
    let mut lineage = Vec::new();
    let signals: Vec<SignalResult> = monitor
        .spec
        .signals
        .iter()
        .filter(|s| s.enabled)
        .map(|s| compute(store, monitor, s, due_ms, window, None, &mut lineage))
        .collect();
    let window_start = signals
        .iter()
        .map(|s| s.window_start_ms)
        .min()
        .unwrap_or(due_ms);
    let window_end = signals
        .iter()
        .map(|s| s.window_end_ms)
        .max()
        .unwrap_or(due_ms);
    let failed: Vec<String> = signals
        .iter()
        .filter_map(|s| s.problem.as_ref().map(|p| format!("{}: {p}", s.signal)))
        .collect();
    let (state, message) = if failed.is_empty() {
        ("completed", String::new())
    } else {
        ("failed", failed.join("; "))
    };
    let run_id = record_run(store, monitor, &signals, window_start, window_end, state)?;
    let results = serde_json::to_string(&signals)?;
    let monitor_id = monitor.id;
    let alerting: Vec<(String, Crossing, i64, i64)> = monitor
        .spec
        .signals
        .iter()
        .filter(|s| s.alert_enabled)
        .flat_map(|s| {
            signals
                .iter()
                .filter(move |r| r.signal == s.name)
                .flat_map(|r| {
                    r.crossings.iter().map(move |c| {
                        (
                            r.signal.clone(),
                            c.clone(),
                            r.window_start_ms,
                            r.window_end_ms,
                        )
                    })
                })
        })
        .collect();
    let cooldown = monitor.cooldown_ms;
    let (state_s, message_s, run_s) = (state.to_owned(), message.clone(), run_id.clone());
    let (id, opened, seen_again) = store.write::<_, Error>(move |c| {
        c.execute(
            "INSERT INTO monitor_runs (monitor_id, window_start_ms, window_end_ms, state, message,
                 run_id, results, started_at_ms, finished_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![monitor_id, window_start, window_end, state_s, message_s, run_s, results, started, crate::db::now_millis()],
        )?;
        let id = c.last_insert_rowid();
        for (signal, role, version) in &lineage {
            c.execute(
                "INSERT OR IGNORE INTO monitor_run_inputs (monitor_run_id, signal, role, asset_version_id)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, signal, role, version],
            )?;
        }
        let (mut opened, mut seen_again) = (Vec::new(), Vec::new());
        for (signal, crossing, start, end) in &alerting {
            let feature = crossing.feature.clone();
            let metric = crossing.metric.name();
            let open: Option<i64> = c
                .query_row(
                    "SELECT id FROM alerts WHERE monitor_id = ?1 AND signal = ?2 AND feature = ?3
                         AND metric = ?4 AND acknowledged_at_ms IS NULL AND window_end_ms >= ?5
                     ORDER BY id DESC LIMIT 1",
                    params![monitor_id, signal, feature, metric, start - cooldown],
                    |r| r.get(0),
                )
                .optional()?;
            match open {
                Some(alert) => {
                    c.execute(
                        "UPDATE alerts SET value = ?1, threshold = ?2, window_end_ms = MAX(window_end_ms, ?3),
                             last_run_id = ?4, occurrences = occurrences + 1, last_seen_at_ms = ?5
                         WHERE id = ?6",
                        params![crossing.value, crossing.threshold, end, id, crate::db::now_millis(), alert],
                    )?;
                    seen_again.push(alert);
                }
                None => {
                    let now = crate::db::now_millis();
                    c.execute(
                        "INSERT INTO alerts (monitor_id, signal, feature, metric, value, threshold,
                             window_start_ms, window_end_ms, first_run_id, last_run_id,
                             opened_at_ms, last_seen_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?10)",
                        params![monitor_id, signal, feature, metric, crossing.value, crossing.threshold, start, end, id, now],
                    )?;
                    opened.push(c.last_insert_rowid());
                }
            }
        }
        Ok((id, opened, seen_again))
    })?;
    let actions = if opened.is_empty() {
        Vec::new()
    } else {
        super::actions::start(
            store,
            monitor,
            id,
            &opened,
            &signals,
            window_start,
            window_end,
        )?
    };
    Ok(RunOutcome {
        id: Some(id),
        monitor: monitor.spec.name.clone(),
        window_start_ms: window_start,
        window_end_ms: window_end,
        state: state.to_owned(),
        message,
        run_id,
        signals,
        opened,
        seen_again,
        actions,
    })
}

/// Records the values as a run of the monitor's experiment.
fn record_run(
    store: &Store,
    monitor: &Monitor,
    signals: &[SignalResult],
    start: i64,
    end: i64,
    state: &str,
) -> Result<Option<String>> {
    use crate::tracking::types::{Metric as Point, Param, Tag};
    let tracking = store.tracking();
    let experiment_id = tracking.experiment_named(&monitor.experiment())?;
    let step: i64 = {
        let id = monitor.id;
        store.read::<_, Error>(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM monitor_runs WHERE monitor_id = ?1 AND backtest = 0",
                [id],
                |r| r.get(0),
            )?)
        })?
    };
    let tag = |key: &str, value: String| Tag {
        key: key.to_owned(),
        value,
    };
    let run = tracking.create_run(crate::tracking::runs::NewRun {
        experiment_id,
        user_id: crate::promotion::current_user(),
        start_time: Some(crate::db::now_millis()),
        run_name: Some(format!(
            "{} {}",
            monitor.spec.name,
            crate::format::timestamp(end / 1000)
        )),
        tags: vec![
            tag("lathe.monitor", monitor.spec.name.clone()),
            tag("lathe.monitor.window_start_ms", start.to_string()),
            tag("lathe.monitor.window_end_ms", end.to_string()),
        ],
    })?;
    let run_id = run.info.run_id;
    let mut points = Vec::new();
    for s in signals {
        for (feature, values) in &s.values {
            for (metric, value) in values.iter() {
                points.push(Point {
                    key: metric_key(&s.signal, feature, metric.name()),
                    value: *value,
                    timestamp: s.window_end_ms,
                    step,
                    ..Default::default()
                });
            }
        }
        if let Some(share) = s.share_of_drifted_features {
            points.push(Point {
                key: metric_key(&s.signal, "", "share_of_drifted_features"),
                value: share,
                timestamp: s.window_end_ms,
                step,
                ..Default::default()
            });
        }
    }
    let params = vec![
        Param {
            key: "window_start".into(),
            value: crate::format::timestamp(start / 1000),
        },
        Param {
            key: "window_end".into(),
            value: crate::format::timestamp(end / 1000),
        },
    ];
    let mut first = true;
    for chunk in points.chunks(1000) {
        tracking.log_batch(
            &run_id,
            crate::tracking::runs::Batch {
                metrics: chunk.to_vec(),
                params: if first { params.clone() } else { Vec::new() },
                ..Default::default()
            },
        )?;
        first = false;
    }
    tracking.update_run(
        &run_id,
        crate::tracking::runs::RunUpdate {
            status: (if state == "completed" {
                "FINISHED"
            } else {
                "FAILED"
            })
            .parse()
            .ok(),
            end_time: Some(crate::db::now_millis()),
            run_name: None,
        },
    )?;
    Ok(Some(run_id))
}

/// A past window a backtest computed: what would have alerted under the thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestWindow {
    pub due_ms: i64,
    pub signals: Vec<SignalResult>,
}

/// Runs the monitor's configuration over the `windows` past due times before `now_ms`
/// (oldest first), recording nothing: per window, every value and what crossed.
///
/// # Errors
/// A monitor whose trigger never fired before `now_ms`.
pub fn backtest(
    store: &Store,
    monitor: &Monitor,
    windows: usize,
    now_ms: i64,
) -> Result<Vec<BacktestWindow>> {
    let dues = past_due_times(monitor, windows, now_ms);
    if dues.is_empty() {
        return Err(MonitorError::Spec(format!(
            "monitor '{}' has no past windows to backtest",
            monitor.spec.name
        ))
        .into());
    }
    let cache = std::sync::Arc::default();
    Ok(dues
        .into_iter()
        .map(|due| BacktestWindow {
            due_ms: due,
            signals: evaluate(store, monitor, due, &cache),
        })
        .collect())
}

/// The last `n` times before `now_ms` the trigger fired (or would have, had the monitor
/// existed), oldest first.
pub fn past_due_times(monitor: &Monitor, n: usize, now_ms: i64) -> Vec<i64> {
    let anchor = monitor.spec.start_ms.unwrap_or(monitor.created_at_ms);
    let period = monitor.spec.trigger.default_window_ms().max(60_000);
    let mut from = now_ms - period * (n as i64 + 2);
    // A recurrence counts its intervals from its anchor: start from an anchor-aligned time.
    if anchor > from {
        let periods = (anchor - from) / period + 1;
        from = anchor - periods * period;
    }
    let mut times = Vec::new();
    let mut t = from;
    while let Some(next) = monitor.spec.trigger.next_after(anchor.min(from), t) {
        if next > now_ms {
            break;
        }
        times.push(next);
        t = next;
        if times.len() > 10 * n + 100 {
            times.drain(..times.len() - n);
        }
    }
    let keep = times.len().saturating_sub(n);
    times.split_off(keep)
}

/// The monitor's recorded runs, newest first (results included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRun {
    pub id: i64,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub state: String,
    pub message: String,
    pub run_id: Option<String>,
    pub signals: Vec<SignalResult>,
    pub started_at_ms: i64,
}

/// The state and window end of a monitor's newest run (without its results).
pub fn last_run(store: &Store, monitor: &Monitor) -> Result<Option<(String, i64)>> {
    let id = monitor.id;
    store.read::<_, Error>(move |c| {
        Ok(c.query_row(
            "SELECT state, window_end_ms FROM monitor_runs WHERE monitor_id = ?1 AND backtest = 0
             ORDER BY window_end_ms DESC, id DESC LIMIT 1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
    })
}

/// A `monitor_runs` row: id, window start and end, state, message, run id, results, start.
type RunRow = (
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

pub fn runs(store: &Store, monitor: &Monitor, limit: usize) -> Result<Vec<RecordedRun>> {
    let (id, limit) = (monitor.id, i64::try_from(limit).unwrap_or(i64::MAX));
    let rows: Vec<RunRow> =
        store.read::<_, Error>(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, window_start_ms, window_end_ms, state, message, run_id, results, started_at_ms
                 FROM monitor_runs WHERE monitor_id = ?1 AND backtest = 0
                 ORDER BY window_end_ms DESC, id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![id, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
    rows.into_iter()
        .map(|(id, s, e, state, message, run_id, results, started)| {
            Ok(RecordedRun {
                id,
                window_start_ms: s,
                window_end_ms: e,
                state,
                message,
                run_id,
                signals: match results {
                    Some(r) => serde_json::from_str(&r)?,
                    None => Vec::new(),
                },
                started_at_ms: started,
            })
        })
        .collect()
}
