//! `lathe pipeline|component|environment`: validate, run and export pipeline jobs; list, show
//! and register components; register environments. Exit non-zero on any failure, for CI/CD.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::Subcommand;
use lathe_core::pipeline::component::{self, Component, Problem};
use lathe_core::pipeline::executor::{self, Event, RunOptions, StepStatus};
use lathe_core::pipeline::job::{self, Binding, Pipeline};
use lathe_core::pipeline::{builtin, environment, registry};
use lathe_core::tracking::Tracking;

use crate::cli::{Output, print_json};

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Import a pipeline job YAML and check its components, wiring and graph.
    Validate {
        path: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Run a pipeline job: steps in dependency order, unchanged steps reused, each a run.
    Run {
        path: PathBuf,
        /// The experiment to log to (default: the pipeline's experiment_name, else its file name).
        #[arg(long)]
        experiment: Option<String>,
        /// Run every step again, reusing nothing.
        #[arg(long)]
        force: bool,
        /// How many steps may run at once (default: the number of cores).
        #[arg(long, value_name = "N")]
        parallel: Option<usize>,
        /// Print every step's log lines as they come.
        #[arg(long)]
        logs: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Run a pipeline on a cron pattern (UTC) while Lathe runs (the window or `lathe server`).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Import a pipeline job YAML and write it back out as Lathe reads it (to stdout, or --out).
    Export {
        path: PathBuf,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Schedule a pipeline file or a saved pipeline (NAME:VERSION).
    Add {
        pipeline: String,
        /// A cron pattern, e.g. "0 3 * * *" for 03:00 UTC every day.
        #[arg(long)]
        cron: String,
        /// Default: the pipeline's experiment_name, else its display name.
        #[arg(long)]
        experiment: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// The schedules, with when each runs next.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Remove a schedule by its id.
    Remove { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ComponentCommand {
    /// Check a command component YAML and summarize it; every problem names its field.
    Validate {
        path: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// The built-in components and those registered in this workspace.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// One component as YAML: lathe:NAME (a built-in), or NAME[:VERSION] (registered).
    Show {
        reference: String,
        #[command(flatten)]
        output: Output,
    },
    /// Register a command component YAML (with a snapshot of its code) as a new version.
    Register {
        path: PathBuf,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnvironmentCommand {
    /// Register an environment: Azure ML environment YAML (its conda file's dependencies) or a
    /// requirements file. Components use it as azureml:NAME:VERSION.
    Register {
        path: PathBuf,
        #[arg(long)]
        name: String,
        /// Default: one more than the newest version of NAME.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// The registered environments.
    List {
        #[command(flatten)]
        output: Output,
    },
}

fn open(root: &Path) -> Result<Tracking> {
    Tracking::open(root).with_context(|| format!("cannot open workspace {}", root.display()))
}

/// Reads a YAML file and checks it with `check`; its problems become one error line that
/// names the file and each field.
pub fn checked<T>(path: &Path, check: impl FnOnce(&str) -> Result<T, Vec<Problem>>) -> Result<T> {
    let text = crate::cli::read_text(path)?;
    check(&text).map_err(|problems| {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}: {}", path.display(), listed.join("; "))
    })
}

/// Imports a pipeline file, looking registered components up in the workspace.
fn import(root: &Path, tracking: &Tracking, path: &Path) -> Result<Pipeline> {
    let base = path.parent().unwrap_or(Path::new("."));
    checked(path, |text| {
        job::parse_with(text, base, &|reference| {
            registry::resolve(tracking, root, reference)
        })
    })
}

pub fn pipeline(root: &Path, command: PipelineCommand) -> Result<()> {
    let tracking = open(root)?;
    match command {
        PipelineCommand::Validate { path, output } => {
            let pipeline = import(root, &tracking, &path)?;
            if output.json {
                return print_json(&pipeline);
            }
            print_pipeline(&pipeline);
            Ok(())
        }
        PipelineCommand::Schedule(command) => schedules(root, &tracking, command),
        PipelineCommand::Export { path, out } => {
            let yaml = import(root, &tracking, &path)?.to_yaml();
            match out {
                None => print!("{yaml}"),
                Some(out) => {
                    std::fs::write(&out, yaml)
                        .with_context(|| format!("cannot write {}", out.display()))?;
                    println!("exported {} to {}", path.display(), out.display());
                }
            }
            Ok(())
        }
        PipelineCommand::Run {
            path,
            experiment,
            force,
            parallel,
            logs,
            output,
        } => {
            let pipeline = import(root, &tracking, &path)?;
            let experiment = experiment
                .or_else(|| pipeline.experiment_name.clone())
                .or_else(|| Some(path.file_stem()?.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "pipelines".into());
            let store = lathe_core::Store::open(root)?;
            let mut options = RunOptions::new(&experiment).with_targets(&store)?;
            options.force = force;
            if let Some(n) = parallel {
                options.parallelism = n.max(1);
            }
            // Command steps log with MLflow to their run: serve the API while they run.
            let needs_server = pipeline.steps.iter().any(|s| s.source.builtin().is_none());
            if needs_server {
                options.tracking_uri =
                    Some(crate::server::serve_in_background(tracking.clone(), 0)?);
            }
            let cancel = Arc::new(AtomicBool::new(false));
            crate::output::on_ctrl_c(cancel.clone());
            let quiet = output.json;
            let observe = move |event: Event| report(&event, logs, quiet);
            let base = path.parent().unwrap_or(Path::new("."));
            let outcome = executor::run(
                &tracking, root, &pipeline, base, &options, &cancel, &observe,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            if output.json {
                print_json(&outcome)?;
            } else {
                let ran = outcome
                    .steps
                    .iter()
                    .filter(|s| s.status == StepStatus::Done)
                    .count();
                println!(
                    "pipeline run {} {}: {} step(s), {ran} run, {} reused",
                    outcome.run_id,
                    outcome.status.word(),
                    outcome.steps.len(),
                    outcome.reused()
                );
                for step in &outcome.steps {
                    println!("  {:<24} {}", step.name, describe(&step.status));
                }
            }
            if !outcome.succeeded() {
                // The outcome above is the answer, JSON or not; the exit code says it failed.
                return Err(crate::cli::Reported(format!(
                    "the pipeline {}",
                    outcome.status.word()
                ))
                .into());
            }
            Ok(())
        }
    }
}

fn schedules(root: &Path, tracking: &Tracking, command: ScheduleCommand) -> Result<()> {
    use lathe_core::pipeline::schedule;
    let when = |ms: Option<i64>| {
        ms.map(|ms| lathe_core::format::timestamp(ms / 1000))
            .unwrap_or_else(|| "—".into())
    };
    match command {
        ScheduleCommand::Add {
            pipeline,
            cron,
            experiment,
            output,
        } => {
            let added = schedule::add(tracking, root, &pipeline, &cron, experiment.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?;
            if output.json {
                return print_json(&added);
            }
            println!(
                "schedule {}: {} on \"{}\" (UTC) into experiment {}; next run {}",
                added.id,
                added.pipeline,
                added.cron,
                added.experiment,
                when(added.next_run_at)
            );
            Ok(())
        }
        ScheduleCommand::List { output } => {
            let all = schedule::list(tracking).map_err(|e| anyhow::anyhow!(e))?;
            if output.json {
                return print_json(&all);
            }
            if all.is_empty() {
                println!(
                    "no schedules; `lathe pipeline schedule add PIPELINE --cron PATTERN` adds one"
                );
            }
            for s in &all {
                println!(
                    "  {:<4} {:<16} {:<40} next {}  last {}",
                    s.id,
                    s.cron,
                    s.pipeline,
                    when(s.next_run_at),
                    when(s.last_run_at)
                );
            }
            Ok(())
        }
        ScheduleCommand::Remove { id } => {
            schedule::remove(tracking, id).map_err(|e| anyhow::anyhow!(e))?;
            println!("removed schedule {id}");
            Ok(())
        }
    }
}

fn describe(status: &StepStatus) -> String {
    match status {
        StepStatus::Reused { from_run } => format!("reused (outputs of run {from_run})"),
        StepStatus::Failed { message } => format!("failed: {message}"),
        StepStatus::Skipped { reason } => format!("skipped: {reason}"),
        other => other.label().to_owned(),
    }
}

/// Live progress on stderr: each step's state as it changes, log lines with --logs.
fn report(event: &Event, logs: bool, quiet: bool) {
    let mut err = std::io::stderr().lock();
    match event {
        Event::Started { run_id, .. } if !quiet => {
            let _ = writeln!(err, "pipeline run {run_id}");
        }
        Event::Step { step, status, .. } if !quiet && *status != StepStatus::Queued => {
            let _ = writeln!(err, "  {step}: {}", describe(status));
        }
        Event::Log { step, line } if logs => {
            let _ = writeln!(err, "  [{step}] {line}");
        }
        _ => {}
    }
}

fn print_pipeline(pipeline: &Pipeline) {
    println!(
        "{} — valid pipeline, {} step(s)",
        pipeline.display_name.as_deref().unwrap_or("(unnamed)"),
        pipeline.steps.len()
    );
    for step in &pipeline.steps {
        println!("  {} ({}: {})", step.name, step.source, step.component.name);
        for (port, binding) in &step.inputs {
            let from = match binding {
                Binding::Literal(value) => value.clone(),
                Binding::Data { path, .. } => path.clone(),
                Binding::ParentInput(name) => format!("pipeline input {name}"),
                Binding::ParentOutput(name) => format!("pipeline output {name}"),
                Binding::StepOutput { step, output } => format!("{step}.{output}"),
                Binding::Unbound => "(unbound)".into(),
            };
            println!("    {port} ← {from}");
        }
    }
}

fn print_component(component: &Component) {
    println!(
        "{} {} — {}",
        component.name,
        component.version.as_deref().unwrap_or("(no version)"),
        component
            .description
            .as_deref()
            .or(component.display_name.as_deref())
            .unwrap_or("command component")
    );
    for (section, ports) in [("input", &component.inputs), ("output", &component.outputs)] {
        for (name, port) in ports {
            let default = port
                .default
                .as_deref()
                .map(|d| format!(" = {d}"))
                .unwrap_or_default();
            let optional = if port.optional { " (optional)" } else { "" };
            println!(
                "  {section} {name}: {}{default}{optional}",
                port.kind.as_str()
            );
        }
    }
    println!("  environment: {}", component.environment.trim());
}

pub fn component(root: &Path, command: ComponentCommand) -> Result<()> {
    match command {
        ComponentCommand::Validate { path, output } => {
            let component = checked(&path, component::parse)?;
            if output.json {
                return print_json(&component);
            }
            print_component(&component);
            Ok(())
        }
        ComponentCommand::List { output } => {
            let registered = registry::list(&open(root)?).map_err(|e| anyhow::anyhow!(e))?;
            if output.json {
                let builtins: Vec<_> = builtin::catalog()
                    .iter()
                    .map(|c| serde_json::json!({ "reference": format!("{}{}", builtin::PREFIX, c.name), "component": c }))
                    .collect();
                return print_json(
                    &serde_json::json!({ "builtin": builtins, "registered": registered }),
                );
            }
            println!("built-in (lathe:NAME):");
            for c in builtin::catalog() {
                println!(
                    "  {:<28} {}",
                    c.name,
                    c.display_name.as_deref().unwrap_or_default()
                );
            }
            println!("registered (azureml:NAME:VERSION):");
            if registered.is_empty() {
                println!("  (none; `lathe component register FILE` adds one)");
            }
            for r in &registered {
                println!(
                    "  {:<28} {:<8} {} code file(s)",
                    r.name,
                    r.version,
                    r.code_files.len()
                );
            }
            Ok(())
        }
        ComponentCommand::Show { reference, output } => {
            let component = if reference.starts_with(builtin::PREFIX) {
                builtin::find(&reference).cloned()
            } else {
                registry::find(&open(root)?, &reference).map(|r| r.component)
            }
            .map_err(|e| anyhow::anyhow!(e))?;
            if output.json {
                return print_json(&component);
            }
            print!("{}", component.to_yaml_text());
            Ok(())
        }
        ComponentCommand::Register { path, output } => {
            let registered =
                registry::register(&open(root)?, &path).map_err(|e| anyhow::anyhow!(e))?;
            if output.json {
                return print_json(&registered);
            }
            println!(
                "registered {}:{} ({} code file(s)); use it as azureml:{}:{}",
                registered.name,
                registered.version,
                registered.code_files.len(),
                registered.name,
                registered.version
            );
            Ok(())
        }
    }
}

pub fn environment(root: &Path, command: EnvironmentCommand) -> Result<()> {
    let tracking = open(root)?;
    match command {
        EnvironmentCommand::Register {
            path,
            name,
            version,
            output,
        } => {
            let registered = environment::register(&tracking, &path, &name, version.as_deref())
                .map_err(|e| anyhow::anyhow!(e))?;
            if output.json {
                return print_json(&registered);
            }
            println!(
                "registered environment {}:{} — {}; use it as azureml:{}:{}",
                registered.name,
                registered.version,
                registered.spec.describe(),
                registered.name,
                registered.version
            );
            Ok(())
        }
        EnvironmentCommand::List { output } => {
            let all = environment::list(&tracking).map_err(|e| anyhow::anyhow!(e))?;
            if output.json {
                return print_json(&all);
            }
            if all.is_empty() {
                println!(
                    "no environments registered; `lathe environment register FILE --name N` adds one"
                );
            }
            for e in &all {
                println!("  {:<28} {:<8} {}", e.name, e.version, e.spec.describe());
            }
            Ok(())
        }
    }
}
