//! `lathe monitor` (monitoring schedules in Azure ML's YAML: create, update, show, list,
//! delete, run, backtest, actions) and `lathe alert` (list, ack).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use lathe_core::Store;
use lathe_core::format;
use lathe_core::monitoring::actions::{self, Action};
use lathe_core::monitoring::monitors::{self, AlertFilter, Monitor};
use lathe_core::monitoring::run::{self, RunOutcome, SignalResult};
use lathe_core::monitoring::trigger::{parse_duration, parse_time};
use serde_json::json;

use crate::cli::{Output, print_json, read_text};

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Create a monitor from a monitoring schedule's YAML (Azure ML `create_monitor`).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Replace a monitor's YAML (-f), or change its cooldown or whether it runs.
    Update {
        /// The monitor (not needed with -f: the YAML names it).
        name: Option<String>,
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// How long an alert seen again counts as the same alert (ISO 8601, e.g. PT6H).
        #[arg(long)]
        cooldown: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[command(flatten)]
        output: Output,
    },
    /// A monitor: its signals, next run, recent runs and actions (--yaml: its YAML).
    Show {
        name: String,
        #[arg(long, conflicts_with = "json")]
        yaml: bool,
        #[command(flatten)]
        output: Output,
    },
    List {
        #[command(flatten)]
        output: Output,
    },
    Delete {
        name: String,
    },
    /// Run a monitor now: for the window ending now (or --at), or a given --window.
    Run {
        name: String,
        /// The run's due time (ISO 8601, e.g. 2026-12-06T05:00:00Z); default now.
        #[arg(long)]
        at: Option<String>,
        /// START/END (ISO 8601 times) replacing every signal's production window.
        #[arg(long)]
        window: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Compute the monitor over its past windows and show which would have alerted.
    Backtest {
        name: String,
        /// How many past windows.
        #[arg(long, default_value_t = 10)]
        windows: usize,
        #[command(flatten)]
        output: Output,
    },
    /// What a monitor does when it alerts.
    #[command(subcommand)]
    Action(ActionCommand),
}

#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Add an action: --pipeline (a retraining run), --label (rows to a labeling project) or
    /// --webhook.
    Add {
        monitor: String,
        /// A saved pipeline NAME:VERSION or a pipeline file.
        #[arg(long, conflicts_with_all = ["webhook", "label"])]
        pipeline: Option<String>,
        /// A row_classification or row_value labeling project to send the window's rows to.
        #[arg(long, conflicts_with = "webhook")]
        label: Option<String>,
        /// How rows are ranked for --label: drift (the rows that explain the drift) or
        /// confidence (the rows the model was least sure of).
        #[arg(long, requires = "label", default_value = "drift")]
        rank: String,
        /// How many rows --label sends per alerting run.
        #[arg(long, requires = "label", default_value_t = 50)]
        top: usize,
        /// INPUT=VALUE for the pipeline; {window_start}, {window_end}, {monitor} and
        /// {production_data} are replaced when it runs. Repeatable.
        #[arg(long = "input", requires = "pipeline")]
        inputs: Vec<String>,
        #[arg(long, requires = "pipeline")]
        experiment: Option<String>,
        /// An https:// (or http://) URL to POST the alerts to; https trusts the system's roots,
        /// or those in SSL_CERT_FILE.
        #[arg(long)]
        webhook: Option<String>,
        /// The environment variable holding the webhook's bearer token (never stored).
        #[arg(long, requires = "webhook")]
        secret_env: Option<String>,
        #[arg(long, requires = "webhook", default_value_t = 10)]
        timeout: u64,
        #[arg(long, requires = "webhook", default_value_t = 2)]
        retries: u32,
        #[command(flatten)]
        output: Output,
    },
    List {
        monitor: String,
        #[command(flatten)]
        output: Output,
    },
    Remove {
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Alerts, newest first.
    List {
        #[arg(long)]
        monitor: Option<String>,
        #[arg(long)]
        signal: Option<String>,
        /// Only those not acknowledged.
        #[arg(long)]
        open: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Acknowledge alerts (who and when are recorded).
    Ack {
        #[arg(required = true)]
        ids: Vec<i64>,
        /// Who acknowledges (default: the user).
        #[arg(long)]
        by: Option<String>,
    },
}

fn time(text: &str) -> Result<i64> {
    parse_time(text).map_err(anyhow::Error::msg)
}

fn when(ms: i64) -> String {
    format::timestamp(ms / 1000)
}

pub fn monitor(store: &Store, command: MonitorCommand) -> Result<()> {
    match command {
        MonitorCommand::Create { file, output } => {
            let saved = monitors::put(store, &read_text(&file)?, false)?;
            report_saved(&saved, "created", &output)?;
        }
        MonitorCommand::Update {
            name,
            file,
            cooldown,
            enable,
            disable,
            output,
        } => {
            let mut saved = None;
            if let Some(file) = file {
                let s = monitors::put(store, &read_text(&file)?, true)?;
                if name.as_ref().is_some_and(|n| *n != s.monitor.spec.name) {
                    bail!(
                        "{} names monitor '{}', not '{}'",
                        file.display(),
                        s.monitor.spec.name,
                        name.unwrap_or_default()
                    );
                }
                saved = Some(s);
            }
            let name = match (&saved, name) {
                (Some(s), _) => s.monitor.spec.name.clone(),
                (None, Some(n)) => n,
                (None, None) => bail!("name the monitor, or give its YAML with -f"),
            };
            let cooldown = cooldown
                .map(|c| parse_duration(&c).map_err(anyhow::Error::msg))
                .transpose()?;
            let enabled = match (enable, disable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let monitor = if cooldown.is_some() || enabled.is_some() {
                monitors::set_settings(store, &name, enabled, cooldown)?
            } else if let Some(s) = &saved {
                s.monitor.clone()
            } else {
                bail!("nothing to change: give -f, --cooldown, --enable or --disable");
            };
            let notices = saved.map(|s| s.notices).unwrap_or_default();
            report_saved(&monitors::Saved { monitor, notices }, "updated", &output)?;
        }
        MonitorCommand::Show { name, yaml, output } => {
            let m = monitors::get(store, &name)?;
            if yaml {
                print!("{}", m.spec.to_yaml());
                return Ok(());
            }
            let runs = run::runs(store, &m, 10)?;
            let actions = actions::list(store, &m)?;
            if output.json {
                let actions: Vec<_> = actions
                    .iter()
                    .map(|(id, a)| json!({"id": id, "action": a}))
                    .collect();
                print_json(&json!({ "monitor": m, "runs": runs, "actions": actions }))?;
            } else {
                print_monitor(&m);
                for (id, a) in &actions {
                    println!("  action {id}: {}", a.describe());
                }
                if !runs.is_empty() {
                    println!("recent runs:");
                }
                for r in &runs {
                    println!(
                        "  run {} {} to {}: {}{}",
                        r.id,
                        when(r.window_start_ms),
                        when(r.window_end_ms),
                        r.state,
                        if r.message.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", r.message)
                        }
                    );
                }
            }
        }
        MonitorCommand::List { output } => {
            let all = monitors::list(store)?;
            if output.json {
                print_json(&all)?;
            } else if all.is_empty() {
                println!("no monitors");
            } else {
                println!(
                    "{:<32} {:<8} {:<9} {:<20} TARGET",
                    "NAME", "SIGNALS", "STATE", "NEXT RUN"
                );
                for m in &all {
                    println!(
                        "{:<32} {:<8} {:<9} {:<20} {}",
                        m.spec.name,
                        m.spec.signals.iter().filter(|s| s.enabled).count(),
                        if m.enabled { "enabled" } else { "disabled" },
                        m.next_due_ms.map_or_else(|| "-".to_owned(), when),
                        m.spec.target.as_ref().map_or_else(
                            || "-".to_owned(),
                            |t| format!("{}:{}", t.endpoint, t.deployment)
                        )
                    );
                }
            }
        }
        MonitorCommand::Delete { name } => {
            monitors::delete(store, &name)?;
            println!("deleted monitor {name}");
        }
        MonitorCommand::Run {
            name,
            at,
            window,
            output,
        } => {
            let m = monitors::get(store, &name)?;
            let due = at
                .as_deref()
                .map(time)
                .transpose()?
                .unwrap_or_else(lathe_core::db::now_millis);
            let window = match window {
                Some(w) => {
                    let (s, e) = w.split_once('/').context("--window is START/END")?;
                    let (s, e) = (time(s)?, time(e)?);
                    if s >= e {
                        bail!("--window: END comes before START");
                    }
                    Some((s, e))
                }
                None => None,
            };
            let outcome = run::run(store, &m, due, window)?;
            if output.json {
                print_json(&outcome)?;
            } else {
                print_outcome(&outcome);
            }
            if outcome.state != "completed" {
                return Err(crate::cli::Reported(format!(
                    "monitor run {} failed: {}",
                    outcome.id.unwrap_or_default(),
                    outcome.message
                ))
                .into());
            }
        }
        MonitorCommand::Backtest {
            name,
            windows,
            output,
        } => {
            let m = monitors::get(store, &name)?;
            let result = run::backtest(store, &m, windows, lathe_core::db::now_millis())?;
            if output.json {
                print_json(&result)?;
            } else {
                for w in &result {
                    let crossed: Vec<String> = w.signals.iter().flat_map(crossings).collect();
                    let failed: Vec<String> = w
                        .signals
                        .iter()
                        .filter_map(|s| s.problem.as_ref().map(|p| format!("{}: {p}", s.signal)))
                        .collect();
                    println!(
                        "window ending {}: {}",
                        when(w.due_ms),
                        if !failed.is_empty() {
                            format!("not computed ({})", failed.join("; "))
                        } else if crossed.is_empty() {
                            "no alert".to_owned()
                        } else {
                            format!("would alert: {}", crossed.join(", "))
                        }
                    );
                }
            }
        }
        MonitorCommand::Action(command) => action(store, command)?,
    }
    Ok(())
}

fn crossings(s: &SignalResult) -> Vec<String> {
    s.crossings
        .iter()
        .map(|c| {
            let feature = if c.feature.is_empty() {
                String::new()
            } else {
                format!(" {}", c.feature)
            };
            format!(
                "{}{feature} {} {}",
                s.signal,
                c.metric.name(),
                format::number(c.value)
            )
        })
        .collect()
}

fn report_saved(saved: &monitors::Saved, verb: &str, output: &Output) -> Result<()> {
    if output.json {
        print_json(&json!({ "monitor": saved.monitor, "notices": saved.notices }))?;
    } else {
        println!("{verb} monitor {}", saved.monitor.spec.name);
        for n in &saved.notices {
            println!("  note: {n}");
        }
        print_monitor(&saved.monitor);
    }
    Ok(())
}

fn print_monitor(m: &Monitor) {
    println!(
        "{}: {}, next run {}, alerts grouped within {}",
        m.spec.name,
        if m.enabled { "enabled" } else { "disabled" },
        m.next_due_ms.map_or_else(|| "never".to_owned(), when),
        lathe_core::monitoring::trigger::format_duration(m.cooldown_ms)
    );
    if let Some(t) = &m.spec.target {
        println!("  watches {}:{}", t.endpoint, t.deployment);
    }
    for s in &m.spec.signals {
        let thresholds: Vec<String> = s
            .thresholds
            .numerical
            .iter()
            .map(|(k, v)| format!("numerical {} {v}", k.name()))
            .chain(
                s.thresholds
                    .categorical
                    .iter()
                    .map(|(k, v)| format!("categorical {} {v}", k.name())),
            )
            .chain(
                s.performance
                    .iter()
                    .map(|(k, v)| format!("{} {v}", k.name())),
            )
            .collect();
        println!(
            "  signal {} ({}){}{}",
            s.name,
            s.type_name,
            if !s.enabled {
                " — disabled: not computed by Lathe".to_owned()
            } else if s.alert_enabled {
                ", alerts".to_owned()
            } else {
                ", no alerts".to_owned()
            },
            if thresholds.is_empty() {
                String::new()
            } else {
                format!(": {}", thresholds.join(", "))
            }
        );
    }
}

fn print_outcome(o: &RunOutcome) {
    println!(
        "monitor {} run {}: {} to {}, {}",
        o.monitor,
        o.id.unwrap_or_default(),
        when(o.window_start_ms),
        when(o.window_end_ms),
        o.state
    );
    for s in &o.signals {
        match &s.problem {
            Some(p) => println!("  {}: not computed: {p}", s.signal),
            None => {
                let crossed = crossings(s);
                println!(
                    "  {} ({} vs {}): {}",
                    s.signal,
                    s.production,
                    s.reference,
                    if crossed.is_empty() {
                        "within thresholds".to_owned()
                    } else {
                        crossed.join(", ")
                    }
                );
            }
        }
    }
    if !o.opened.is_empty() || !o.seen_again.is_empty() {
        println!(
            "  alerts: {} opened, {} seen again",
            o.opened.len(),
            o.seen_again.len()
        );
    }
    for a in &o.actions {
        println!("  action {}: {} {}", a.kind, a.state, a.message);
    }
    if let Some(id) = &o.run_id {
        println!("  recorded as run {id}");
    }
}

fn action(store: &Store, command: ActionCommand) -> Result<()> {
    match command {
        ActionCommand::Add {
            monitor,
            pipeline,
            label,
            rank,
            top,
            inputs,
            experiment,
            webhook,
            secret_env,
            timeout,
            retries,
            output,
        } => {
            let action = match (pipeline, webhook) {
                _ if label.is_some() => Action::Label {
                    project: label.unwrap_or_default(),
                    rank: lathe_core::monitoring::ranking::Rank::parse(&rank)?,
                    top,
                },
                (Some(pipeline), None) => {
                    let mut bound = std::collections::BTreeMap::new();
                    for i in &inputs {
                        let (k, v) = i
                            .split_once('=')
                            .with_context(|| format!("--input '{i}' is not NAME=VALUE"))?;
                        bound.insert(k.to_owned(), v.to_owned());
                    }
                    Action::Pipeline {
                        pipeline,
                        experiment,
                        inputs: bound,
                    }
                }
                (None, Some(url)) => Action::Webhook {
                    url,
                    secret_env,
                    timeout_s: timeout,
                    retries,
                },
                _ => bail!("give --pipeline, --label or --webhook"),
            };
            let id = actions::add(store, &monitor, &action)?;
            if output.json {
                print_json(&json!({ "id": id, "action": action }))?;
            } else {
                println!("action {id} on monitor {monitor}: {}", action.describe());
            }
        }
        ActionCommand::List { monitor, output } => {
            let m = monitors::get(store, &monitor)?;
            let all = actions::list(store, &m)?;
            if output.json {
                let all: Vec<_> = all
                    .iter()
                    .map(|(id, a)| json!({"id": id, "action": a}))
                    .collect();
                print_json(&all)?;
            } else if all.is_empty() {
                println!("monitor {monitor} has no actions");
            } else {
                for (id, a) in &all {
                    println!("{id}: {}", a.describe());
                }
            }
        }
        ActionCommand::Remove { id } => {
            actions::remove(store, id)?;
            println!("removed action {id}");
        }
    }
    Ok(())
}

pub fn alert(store: &Store, command: AlertCommand) -> Result<()> {
    match command {
        AlertCommand::List {
            monitor,
            signal,
            open,
            output,
        } => {
            let all = monitors::alerts(
                store,
                &AlertFilter {
                    monitor,
                    signal,
                    open,
                },
            )?;
            if output.json {
                print_json(&all)?;
            } else if all.is_empty() {
                println!("no alerts");
            } else {
                for a in &all {
                    let feature = if a.feature.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", a.feature)
                    };
                    println!(
                        "{:>5}  {}  {} {}{feature} {} = {} (threshold {}), {} window(s), last {}{}",
                        a.id,
                        if a.acknowledged_at_ms.is_some() {
                            "ack "
                        } else {
                            "OPEN"
                        },
                        a.monitor,
                        a.signal,
                        a.metric,
                        format::number(a.value),
                        format::number(a.threshold),
                        a.occurrences,
                        when(a.window_end_ms),
                        a.acknowledged_by
                            .as_ref()
                            .map(|b| format!(", acknowledged by {b}"))
                            .unwrap_or_default()
                    );
                    for r in &a.actions {
                        println!(
                            "         {} {}: {}{}",
                            r.kind,
                            r.state,
                            r.message,
                            r.pipeline_run_id
                                .as_ref()
                                .map(|id| format!(" (run {id})"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
        AlertCommand::Ack { ids, by } => {
            let by = by.unwrap_or_else(lathe_core::promotion::current_user);
            let n = monitors::acknowledge(store, &ids, &by)?;
            println!("acknowledged {n} alert(s) as {by}");
        }
    }
    Ok(())
}
