//! Monitoring in the window: monitors with their last run and open alerts, a monitor's
//! recorded runs (values and distributions per window), acknowledging alerts, running a
//! monitor or a backtest as a job, saving a monitor's YAML, and comparing two table versions
//! (the Data section's Compare data).

use std::sync::Arc;

use super::{Failure, Reply, Service};
use crate::assets::AssetRef;
use crate::monitoring::actions::{self, Action};
use crate::monitoring::compare::{self, Comparison, Options};
use crate::monitoring::monitors::{self, Alert, AlertFilter, Monitor, Saved};
use crate::monitoring::run::{self, BacktestWindow, RecordedRun, RunOutcome};
use crate::monitoring::tables::Table;

#[derive(Debug, Clone, PartialEq)]
pub enum MonitorCommand {
    /// Every monitor with its latest run and open alerts, and the alerts.
    Load,
    /// A monitor's recorded runs (the newest `runs`), its actions.
    Open {
        name: String,
        runs: usize,
    },
    Acknowledge {
        ids: Vec<i64>,
    },
    /// Runs a monitor now, as a job.
    RunNow {
        name: String,
    },
    /// Computes a monitor over its `windows` past windows, as a job.
    Backtest {
        name: String,
        windows: usize,
    },
    /// Creates (or, with `replace`, updates) a monitor from its YAML.
    Save {
        yaml: String,
        replace: bool,
    },
    /// Compares two table versions (`NAME:VERSION`), as a job.
    Compare {
        reference: String,
        current: String,
    },
    /// Adds an action to a monitor (checked first: its pipeline loads, its project labels rows).
    AddAction {
        monitor: String,
        action: Action,
    },
    RemoveAction {
        monitor: String,
        id: i64,
    },
}

/// A monitor in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSummary {
    pub monitor: Monitor,
    /// The latest run's state and window end.
    pub last_run: Option<(String, i64)>,
    pub open_alerts: usize,
}

/// The Monitoring section's list.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorList {
    pub monitors: Vec<MonitorSummary>,
    /// Every alert, newest first.
    pub alerts: Vec<Alert>,
}

/// One monitor opened.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorView {
    pub monitor: Monitor,
    /// Oldest first.
    pub runs: Vec<RecordedRun>,
    /// What it does when it alerts: each action's id and what it does, in words.
    pub actions: Vec<(i64, String)>,
}

#[derive(Debug)]
pub enum MonitorEvent {
    Loaded(Reply<MonitorList>),
    Opened {
        name: String,
        reply: Reply<MonitorView>,
    },
    Acknowledged(Reply<usize>),
    Ran {
        name: String,
        reply: Reply<RunOutcome>,
    },
    Backtested {
        name: String,
        reply: Reply<Vec<BacktestWindow>>,
    },
    Saved(Reply<Saved>),
    /// An action added or removed: what was done, in words.
    ActionsChanged {
        monitor: String,
        reply: Reply<String>,
    },
    Compared {
        reference: String,
        current: String,
        reply: Reply<Comparison>,
    },
}

fn list(store: &crate::Store) -> crate::Result<MonitorList> {
    let alerts = monitors::alerts(store, &AlertFilter::default())?;
    let mut out = Vec::new();
    for monitor in monitors::list(store)? {
        let last_run = run::last_run(store, &monitor)?;
        let open_alerts = alerts
            .iter()
            .filter(|a| a.monitor == monitor.spec.name && a.acknowledged_at_ms.is_none())
            .count();
        out.push(MonitorSummary {
            monitor,
            last_run,
            open_alerts,
        });
    }
    Ok(MonitorList {
        monitors: out,
        alerts,
    })
}

fn open(store: &crate::Store, name: &str, runs: usize) -> crate::Result<MonitorView> {
    let monitor = monitors::get(store, name)?;
    let mut recorded = run::runs(store, &monitor, runs)?;
    recorded.reverse();
    let actions = crate::monitoring::actions::list(store, &monitor)?
        .into_iter()
        .map(|(id, a)| (id, a.describe()))
        .collect();
    Ok(MonitorView {
        monitor,
        runs: recorded,
        actions,
    })
}

fn versions(store: &crate::Store, reference: &str, current: &str) -> crate::Result<Comparison> {
    let ws = store.workspace()?;
    let table = |text: &str| -> crate::Result<Table> {
        let version = ws.resolve(&text.parse::<AssetRef>()?)?;
        Table::versions(&ws, std::slice::from_ref(&version), version.reference())
    };
    compare::compare(&table(reference)?, &table(current)?, &Options::default())
}

pub(super) fn handle(service: &Service, command: MonitorCommand) {
    match command {
        MonitorCommand::Load => service
            .read(|s| MonitorEvent::Loaded(list(&s.store).map(Arc::new).map_err(Failure::from))),
        MonitorCommand::Open { name, runs } => service.read(move |s| {
            let reply = open(&s.store, &name, runs)
                .map(Arc::new)
                .map_err(Failure::from);
            MonitorEvent::Opened { name, reply }
        }),
        MonitorCommand::Acknowledge { ids } => service.read(move |s| {
            let by = crate::promotion::current_user();
            MonitorEvent::Acknowledged(
                monitors::acknowledge(&s.store, &ids, &by)
                    .map(Arc::new)
                    .map_err(Failure::from),
            )
        }),
        MonitorCommand::RunNow { name } => {
            service.job(format!("Running monitor {name}"), move |shared, _, _| {
                let reply = monitors::get(&shared.store, &name)
                    .and_then(|m| run::run(&shared.store, &m, crate::db::now_millis(), None))
                    .map(Arc::new)
                    .map_err(Failure::from);
                shared.emit(MonitorEvent::Ran { name, reply });
            });
        }
        MonitorCommand::Backtest { name, windows } => {
            service.job(
                format!("Backtesting monitor {name}"),
                move |shared, _, _| {
                    let reply = monitors::get(&shared.store, &name)
                        .and_then(|m| {
                            run::backtest(&shared.store, &m, windows, crate::db::now_millis())
                        })
                        .map(Arc::new)
                        .map_err(Failure::from);
                    shared.emit(MonitorEvent::Backtested { name, reply });
                },
            );
        }
        MonitorCommand::Save { yaml, replace } => service.read(move |s| {
            MonitorEvent::Saved(
                monitors::put(&s.store, &yaml, replace)
                    .map(Arc::new)
                    .map_err(Failure::from),
            )
        }),
        MonitorCommand::AddAction { monitor, action } => service.read(move |s| {
            let reply = actions::add(&s.store, &monitor, &action)
                .map(|id| Arc::new(format!("Added action {id}: {}", action.describe())))
                .map_err(Failure::from);
            MonitorEvent::ActionsChanged { monitor, reply }
        }),
        MonitorCommand::RemoveAction { monitor, id } => service.read(move |s| {
            let reply = actions::remove(&s.store, id)
                .map(|()| Arc::new(format!("Removed action {id}")))
                .map_err(Failure::from);
            MonitorEvent::ActionsChanged { monitor, reply }
        }),
        MonitorCommand::Compare { reference, current } => {
            let label = format!("Comparing {current} with {reference}");
            service.job(label, move |shared, _, _| {
                let reply = versions(&shared.store, &reference, &current)
                    .map(Arc::new)
                    .map_err(Failure::from);
                shared.emit(MonitorEvent::Compared {
                    reference,
                    current,
                    reply,
                });
            });
        }
    }
}
