//! `lathe batch-endpoint`, `lathe batch-deployment` and `lathe batch-job`, in Azure ML CLI v2's
//! shapes: endpoints and deployments from YAML (`-f`), `invoke` to score a data asset or table
//! files, and the jobs it starts (show, list, cancel).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use lathe_core::Store;
use lathe_core::batch::job::{self, BatchJob, Invocation, JobState};
use lathe_core::batch::{self, BatchDeployment, BatchEndpoint};
use lathe_core::jobs::Progress;
use serde_json::json;

use crate::cli::{Output, Reported, print_json, read_text};

#[derive(Debug, Subcommand)]
pub enum BatchEndpointCommand {
    /// Create an endpoint from its YAML (batchEndpoint).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Make a deployment the one an invocation uses when it names none.
    Update {
        name: String,
        #[arg(long)]
        default_deployment: String,
        #[command(flatten)]
        output: Output,
    },
    /// An endpoint's default deployment, its deployments and its latest jobs.
    Show {
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Every batch endpoint with its default deployment.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Delete an endpoint, its deployments and the record of its jobs (their MLflow runs and
    /// prediction assets stay).
    Delete { name: String },
    /// Score a table data asset (NAME:VERSION, NAME for its newest) or table files (a CSV,
    /// Parquet or JSONL file or a folder of them) with the deployment's model, or run its
    /// pipeline over the input. The predictions become a version of a data asset, and an
    /// MLflow run records the job. Waits with a progress bar (Ctrl+C cancels) unless --no-wait.
    Invoke {
        name: String,
        /// The data (a pipeline deployment whose pipeline takes none, or has its own, needs
        /// none).
        #[arg(long)]
        input: Option<String>,
        /// Score with this deployment rather than the endpoint's default.
        #[arg(long)]
        deployment_name: Option<String>,
        /// The data asset the predictions become a version of (default: ENDPOINT-predictions).
        #[arg(long = "output-name")]
        output_name: Option<String>,
        /// Start the job in a background process and print its id.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        output: Output,
    },
    /// The endpoint's jobs, newest first.
    ListJobs {
        name: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum BatchDeploymentCommand {
    /// Create a deployment from its YAML (modelBatchDeployment or batchDeployment).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Make it the endpoint's default (the first deployment always is).
        #[arg(long)]
        set_default: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Replace a deployment from its YAML (a new model version, new settings); jobs already
    /// started keep what they started with.
    Update {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// A deployment's model and settings.
    Show {
        #[arg(long)]
        name: String,
        #[arg(long)]
        endpoint_name: String,
        #[command(flatten)]
        output: Output,
    },
    /// An endpoint's deployments.
    List {
        #[arg(long)]
        endpoint_name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Delete a deployment (not the endpoint's default while others remain).
    Delete {
        #[arg(long)]
        name: String,
        #[arg(long)]
        endpoint_name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BatchJobCommand {
    /// A job's state, rows, failures, run and predictions.
    Show {
        id: i64,
        #[command(flatten)]
        output: Output,
    },
    /// Jobs of every batch endpoint (or one), newest first.
    List {
        #[arg(long)]
        endpoint_name: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Stop a job: a queued one at once, a running one after its current mini batches (what
    /// was scored is not kept as predictions).
    Cancel {
        id: i64,
        #[command(flatten)]
        output: Output,
    },
    /// Run a queued job in this process (what `invoke --no-wait` starts).
    #[command(hide = true)]
    Run { id: i64 },
}

fn endpoint_json(e: &BatchEndpoint, deployments: &[BatchDeployment]) -> serde_json::Value {
    json!({
        "name": e.spec.name,
        "description": e.spec.description,
        "tags": e.spec.tags,
        "defaults": { "deployment_name": e.spec.defaults.deployment_name },
        "deployments": deployments.iter().map(deployment_json).collect::<Vec<_>>(),
        "created_at_ms": e.created_at_ms,
    })
}

/// What a deployment runs: `azureml:NAME:VERSION` of its model, or its pipeline's name.
fn runs(d: &BatchDeployment) -> String {
    match &d.pipeline {
        Some(p) => format!("pipeline {}", p.name),
        None => format!("azureml:{}:{}", d.model_name, d.model_version),
    }
}

fn deployment_json(d: &BatchDeployment) -> serde_json::Value {
    let settings = d.spec.settings();
    json!({
        "name": d.spec.name,
        "endpoint_name": d.endpoint,
        "type": if d.pipeline.is_some() { "pipeline" } else { "model" },
        "model": d.pipeline.is_none().then(|| runs(d)),
        "component": d.pipeline.as_ref().map(|p| &p.name),
        "runtime": d.runtime,
        "settings": settings,
        "instance_count": d.spec.instances(),
    })
}

fn print_deployment(d: &BatchDeployment, default: bool) {
    let settings = d.spec.settings();
    let mut line = format!("  {}  {}", d.spec.name, runs(d));
    if default {
        line.push_str("  (default)");
    }
    if let Some(size) = settings.mini_batch_size {
        line.push_str(&format!("  mini batch {size}"));
    }
    println!("{line}");
}

fn print_job(j: &BatchJob) {
    let now = lathe_core::db::now_millis();
    println!(
        "job {}  {}/{}  {}",
        j.id,
        j.endpoint,
        j.deployment,
        j.describe_state(now)
    );
    if !j.input.is_empty() {
        println!("  input: {}", j.input);
    }
    let mut rows = if j.state.is_final() {
        format!("  rows: {}", j.rows_done)
    } else {
        format!("  rows: {} of {}", j.rows_done, j.rows_total)
    };
    if j.rows_failed > 0 {
        rows.push_str(&format!(", {} of them failed", j.rows_failed));
    }
    if let Some(rate) = j.rows_per_second() {
        rows.push_str(&format!(" ({rate:.0} rows/s)"));
    }
    println!("{rows}");
    if let Some(version) = &j.output_version {
        println!("  predictions: data asset {version}");
    }
    if let Some(run) = &j.run_id {
        println!("  MLflow run: {run}");
    }
    if !j.message.is_empty() && j.state != JobState::Cancelled {
        println!("  {}", j.message);
    }
    for f in j.failures.iter().take(5) {
        println!("  failed: {}: {}", f.place(), f.error);
    }
    if j.failures.len() > 5 {
        println!(
            "  … {} more (lathe batch-job show {} --json)",
            j.failures.len() - 5,
            j.id
        );
    }
}

fn print_jobs(jobs: &[BatchJob]) {
    if jobs.is_empty() {
        println!("no batch jobs");
    }
    let now = lathe_core::db::now_millis();
    for j in jobs {
        println!(
            "{}  {}/{}  {}  {} rows  {}",
            j.id,
            j.endpoint,
            j.deployment,
            j.describe_state(now),
            j.rows_done,
            j.input
        );
    }
}

pub fn endpoint(store: &Store, command: BatchEndpointCommand) -> Result<()> {
    match command {
        BatchEndpointCommand::Create { file, output } => {
            let created = batch::create_endpoint(store, &read_text(&file)?)
                .with_context(|| file.display().to_string())?;
            crate::endpoint_cli::warn_ignored(&created.spec.ignored());
            if output.json {
                return print_json(&endpoint_json(&created, &[]));
            }
            println!("created batch endpoint {}", created.spec.name);
            Ok(())
        }
        BatchEndpointCommand::Update {
            name,
            default_deployment,
            output,
        } => {
            let updated = batch::set_default(store, &name, &default_deployment)?;
            if output.json {
                let deployments = batch::deployments(store, &name)?;
                return print_json(&endpoint_json(&updated, &deployments));
            }
            println!("batch endpoint {name} now scores with {default_deployment} by default");
            Ok(())
        }
        BatchEndpointCommand::Show { name, output } => {
            let found = batch::endpoint(store, &name)?;
            let deployments = batch::deployments(store, &name)?;
            let jobs = job::jobs(store, Some(&name))?;
            if output.json {
                let mut shown = endpoint_json(&found, &deployments);
                shown["jobs"] = json!(jobs.iter().take(10).collect::<Vec<_>>());
                return print_json(&shown);
            }
            println!("{}", found.spec.name);
            if !found.spec.description.is_empty() {
                println!("  {}", found.spec.description);
            }
            if deployments.is_empty() {
                println!("  no deployments (lathe batch-deployment create -f deployment.yml)");
            }
            let default = found.spec.defaults.deployment_name.as_deref();
            for d in &deployments {
                print_deployment(d, default == Some(d.spec.name.as_str()));
            }
            for j in jobs.iter().take(5) {
                println!(
                    "  job {}  {}  {} rows  {}",
                    j.id,
                    j.describe_state(lathe_core::db::now_millis()),
                    j.rows_done,
                    j.input
                );
            }
            Ok(())
        }
        BatchEndpointCommand::List { output } => {
            let all = batch::endpoints(store)?;
            if output.json {
                let listed: Vec<serde_json::Value> = all
                    .iter()
                    .map(|e| {
                        endpoint_json(
                            e,
                            &batch::deployments(store, &e.spec.name).unwrap_or_default(),
                        )
                    })
                    .collect();
                return print_json(&listed);
            }
            if all.is_empty() {
                println!("no batch endpoints");
            }
            for e in &all {
                println!(
                    "{}  default: {}",
                    e.spec.name,
                    e.spec.defaults.deployment_name.as_deref().unwrap_or("none")
                );
            }
            Ok(())
        }
        BatchEndpointCommand::Delete { name } => {
            batch::delete_endpoint(store, &name)?;
            println!("deleted batch endpoint {name}");
            Ok(())
        }
        BatchEndpointCommand::Invoke {
            name,
            input,
            deployment_name,
            output_name,
            no_wait,
            output,
        } => {
            let queued = job::submit(
                store,
                &Invocation {
                    endpoint: name,
                    deployment: deployment_name,
                    input: input.unwrap_or_default(),
                    output: output_name,
                },
            )?;
            if no_wait {
                start_detached(store, queued.id)?;
                if output.json {
                    return print_json(&queued);
                }
                println!(
                    "started batch job {} (lathe batch-job show {})",
                    queued.id, queued.id
                );
                return Ok(());
            }
            let ended = run_here(store, queued.id)?;
            report(&ended, &output)
        }
        BatchEndpointCommand::ListJobs { name, output } => {
            batch::endpoint(store, &name)?;
            let jobs = job::jobs(store, Some(&name))?;
            if output.json {
                return print_json(&jobs);
            }
            print_jobs(&jobs);
            Ok(())
        }
    }
}

pub fn deployment(store: &Store, command: BatchDeploymentCommand) -> Result<()> {
    match command {
        BatchDeploymentCommand::Create {
            file,
            set_default,
            output,
        } => put(store, &file, set_default, false, &output),
        BatchDeploymentCommand::Update { file, output } => put(store, &file, false, true, &output),
        BatchDeploymentCommand::Show {
            name,
            endpoint_name,
            output,
        } => {
            let found = batch::deployment(store, &endpoint_name, &name)?;
            if output.json {
                return print_json(&deployment_json(&found));
            }
            let default = batch::endpoint(store, &endpoint_name)?
                .spec
                .defaults
                .deployment_name;
            print_deployment(&found, default.as_deref() == Some(name.as_str()));
            println!(
                "  settings: {}",
                serde_json::to_string(&found.spec.settings())?
            );
            Ok(())
        }
        BatchDeploymentCommand::List {
            endpoint_name,
            output,
        } => {
            let default = batch::endpoint(store, &endpoint_name)?
                .spec
                .defaults
                .deployment_name;
            let all = batch::deployments(store, &endpoint_name)?;
            if output.json {
                return print_json(&all.iter().map(deployment_json).collect::<Vec<_>>());
            }
            if all.is_empty() {
                println!("no deployments");
            }
            for d in &all {
                print_deployment(d, default.as_deref() == Some(d.spec.name.as_str()));
            }
            Ok(())
        }
        BatchDeploymentCommand::Delete {
            name,
            endpoint_name,
        } => {
            batch::delete_deployment(store, &endpoint_name, &name)?;
            println!("deleted batch deployment {name}");
            Ok(())
        }
    }
}

fn put(
    store: &Store,
    file: &std::path::Path,
    make_default: bool,
    replace: bool,
    output: &Output,
) -> Result<()> {
    let text = read_text(file)?;
    let base = file.parent().unwrap_or(std::path::Path::new("."));
    let put = batch::put_deployment(store, &text, base, make_default, replace)
        .with_context(|| file.display().to_string())?;
    crate::endpoint_cli::warn_ignored(&put.spec.ignored());
    if output.json {
        return print_json(&deployment_json(&put));
    }
    println!(
        "{} batch deployment {} of {} ({})",
        if replace { "updated" } else { "created" },
        put.spec.name,
        put.endpoint,
        runs(&put)
    );
    Ok(())
}

pub fn batch_job(store: &Store, command: BatchJobCommand) -> Result<()> {
    match command {
        BatchJobCommand::Show { id, output } => {
            let found = job::job(store, id)?;
            if output.json {
                return print_json(&found);
            }
            print_job(&found);
            Ok(())
        }
        BatchJobCommand::List {
            endpoint_name,
            output,
        } => {
            if let Some(name) = &endpoint_name {
                batch::endpoint(store, name)?;
            }
            let jobs = job::jobs(store, endpoint_name.as_deref())?;
            if output.json {
                return print_json(&jobs);
            }
            print_jobs(&jobs);
            Ok(())
        }
        BatchJobCommand::Cancel { id, output } => {
            let asked = job::cancel(store, id)?;
            if output.json {
                return print_json(&asked);
            }
            if asked.state == JobState::Cancelled {
                println!("cancelled batch job {id}");
            } else {
                println!("batch job {id} stops after its current mini batches");
            }
            Ok(())
        }
        BatchJobCommand::Run { id } => {
            job::run(store, id, &Progress::default())?;
            Ok(())
        }
    }
}

/// Starts `lathe batch-job run ID` in its own process group, so it outlives this one and a
/// Ctrl+C in this terminal does not reach it.
fn start_detached(store: &Store, id: i64) -> Result<()> {
    let lathe = std::env::current_exe().context("cannot find this program")?;
    let mut command = std::process::Command::new(lathe);
    command
        .arg("--workspace")
        .arg(store.root())
        .args(["batch-job", "run", &id.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .spawn()
        .context("cannot start the batch job's process")?;
    Ok(())
}

/// Runs job `id` here with a progress bar on stderr (on a terminal); Ctrl+C cancels it.
fn run_here(store: &Store, id: i64) -> Result<BatchJob> {
    let progress = Progress::default();
    let interrupted = Arc::new(AtomicBool::new(false));
    crate::output::on_ctrl_c(interrupted.clone());
    let bar = std::io::stderr().is_terminal().then(|| {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>12} [{bar:40}] {pos}/{len} rows {per_sec} {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        )
    });
    let ended = std::thread::scope(|scope| {
        let handle = scope.spawn(|| job::run(store, id, &progress));
        while !handle.is_finished() {
            if interrupted.load(Ordering::Relaxed) {
                progress.cancel();
            }
            if let Some(bar) = &bar {
                let snap = progress.snapshot();
                bar.set_length(snap.total.max(1));
                bar.set_position(snap.done);
                bar.set_message(snap.stage);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        handle.join()
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match ended {
        Ok(ended) => Ok(ended?),
        Err(_) => anyhow::bail!("internal error: the batch job panicked"),
    }
}

/// Prints how a job ended; a job that did not complete is an error (after its details).
fn report(ended: &BatchJob, output: &Output) -> Result<()> {
    if output.json {
        print_json(ended)?;
    } else {
        print_job(ended);
    }
    match ended.state {
        JobState::Completed => Ok(()),
        JobState::Cancelled => {
            Err(Reported(format!("batch job {} was cancelled", ended.id)).into())
        }
        _ => Err(Reported(format!("batch job {} failed: {}", ended.id, ended.message)).into()),
    }
}
