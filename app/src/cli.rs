//! The headless commands. Every read command takes `--json`; long work shows a progress bar on
//! stderr; an error exits non-zero with a one-line reason.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use lathe_core::assets::{AssetKind, AssetRef, AssetVersion};
use lathe_core::import::{ImportRequest, import_from};
use lathe_core::profile::{TableProfile, profile_version};
use lathe_core::{Workspace, export, format};
use serde_json::json;

pub use crate::output::{Output, Reported, print_json, read_text, with_progress};

use crate::{
    batch_cli, compute_cli, datastore_cli, drift_cli, endpoint_cli, label_cli, monitor_cli,
    pipeline_cli, sync_cli, tracking_cli,
};

fn open_store(root: &Path) -> Result<lathe_core::Store> {
    lathe_core::Store::open(root)
        .with_context(|| format!("cannot open workspace {}", root.display()))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Data assets: import, list, show, profile, export.
    #[command(subcommand)]
    Data(DataCommand),
    /// Serve the MLflow-compatible tracking API and artifact proxy (127.0.0.1:5000 by default).
    Server(tracking_cli::ServerArgs),
    /// Experiments logged to this workspace.
    #[command(subcommand)]
    Experiments(tracking_cli::ExperimentsCommand),
    /// Runs: list, show, search; push to and pull from an MLflow tracking server.
    #[command(subcommand)]
    Runs(tracking_cli::RunsCommand),
    /// The model registry: list, show, register, alias; promotion: policy, promote, decisions.
    #[command(subcommand)]
    Models(tracking_cli::ModelsCommand),
    /// Pipeline components (Azure ML CLI v2 YAML): validate, list, show, register.
    #[command(subcommand)]
    Component(pipeline_cli::ComponentCommand),
    /// Environments that command components run in: register, list.
    #[command(subcommand)]
    Environment(pipeline_cli::EnvironmentCommand),
    /// Labeling projects: create, import, export, prelabel, labels, status.
    #[command(subcommand)]
    Label(label_cli::LabelCommand),
    /// Pipeline jobs (Azure ML CLI v2 YAML): validate, run, export.
    #[command(subcommand)]
    Pipeline(pipeline_cli::PipelineCommand),
    /// Online endpoints (Azure ML CLI v2 YAML): create, update, show, list, delete, keys, invoke.
    #[command(subcommand)]
    OnlineEndpoint(endpoint_cli::EndpointCommand),
    /// Deployments of online endpoints: create, update, show, list, delete, logs.
    #[command(subcommand)]
    OnlineDeployment(endpoint_cli::DeploymentCommand),
    /// Batch endpoints (Azure ML CLI v2 YAML): create, update, show, list, delete, invoke.
    #[command(subcommand)]
    BatchEndpoint(batch_cli::BatchEndpointCommand),
    /// Deployments of batch endpoints: create, update, show, list, delete.
    #[command(subcommand)]
    BatchDeployment(batch_cli::BatchDeploymentCommand),
    /// Batch jobs (started by batch-endpoint invoke): show, list, cancel.
    #[command(subcommand)]
    BatchJob(batch_cli::BatchJobCommand),
    /// Compare two tables for drift and data quality (files or data assets); a CI gate with
    /// --fail-on-drift.
    Drift(drift_cli::DriftArgs),
    /// Monitors (Azure ML monitoring schedule YAML): create, update, show, list, delete, run,
    /// backtest, actions.
    #[command(subcommand)]
    Monitor(monitor_cli::MonitorCommand),
    /// Alerts raised by monitors: list, ack.
    #[command(subcommand)]
    Alert(monitor_cli::AlertCommand),
    /// Compute targets where steps run (this machine, Ray clusters): create, update, show,
    /// list, check, delete.
    #[command(subcommand)]
    Compute(compute_cli::ComputeCommand),
    /// Datastores (S3-compatible object stores): create, update, show, list, check, delete.
    #[command(subcommand)]
    Datastore(datastore_cli::DatastoreCommand),
    /// Copy data assets, runs and models to a datastore and from it into a workspace: push,
    /// pull.
    #[command(subcommand)]
    Sync(sync_cli::SyncCommand),
    /// Remove files in the blob store that nothing refers to (left by killed imports).
    Gc {
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Import a table (CSV, TSV, Parquet, JSONL), an image folder or a text corpus as a new version.
    Import {
        path: PathBuf,
        /// The asset's name; a new version is added if it exists.
        #[arg(long)]
        name: String,
        /// What the data is (default: judged from the path).
        #[arg(long, value_parser = parse_kind)]
        kind: Option<AssetKind>,
        /// For a text corpus held in a table: the column with the text.
        #[arg(long, value_name = "COLUMN")]
        text_column: Option<String>,
        /// For an s3:// path: the datastore to read it through (default: the one of its
        /// bucket).
        #[arg(long, value_name = "DATASTORE")]
        datastore: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List the data assets.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Show an asset's versions, or one version in detail.
    Show {
        /// NAME or NAME:VERSION
        reference: AssetRef,
        #[command(flatten)]
        output: Output,
    },
    /// Profile a table version (computed once, then cached).
    Profile {
        /// NAME or NAME:VERSION
        reference: AssetRef,
        #[command(flatten)]
        output: Output,
    },
    /// Write a version out: a table to .csv/.tsv/.parquet/.jsonl, text to .txt, images to a folder.
    Export {
        /// NAME or NAME:VERSION
        reference: AssetRef,
        path: PathBuf,
    },
}

fn parse_kind(s: &str) -> Result<AssetKind, String> {
    s.parse()
}

pub fn run(root: &Path, command: Command) -> Result<()> {
    match command {
        Command::Data(command) => data(root, command),
        Command::Server(args) => tracking_cli::serve(root, args),
        Command::Experiments(command) => tracking_cli::experiments(root, command),
        Command::Runs(command) => tracking_cli::runs(root, command),
        Command::Models(command) => tracking_cli::models(root, command),
        Command::Component(command) => pipeline_cli::component(root, command),
        Command::Environment(command) => pipeline_cli::environment(root, command),
        Command::Pipeline(command) => pipeline_cli::pipeline(root, command),
        Command::Label(command) => label_cli::run(root, command),
        Command::OnlineEndpoint(command) => endpoint_cli::endpoint(&open_store(root)?, command),
        Command::OnlineDeployment(command) => endpoint_cli::deployment(&open_store(root)?, command),
        Command::BatchEndpoint(command) => batch_cli::endpoint(&open_store(root)?, command),
        Command::BatchDeployment(command) => batch_cli::deployment(&open_store(root)?, command),
        Command::BatchJob(command) => batch_cli::batch_job(&open_store(root)?, command),
        Command::Drift(args) => drift_cli::drift(root, &args),
        Command::Monitor(command) => monitor_cli::monitor(&open_store(root)?, command),
        Command::Alert(command) => monitor_cli::alert(&open_store(root)?, command),
        Command::Compute(command) => compute_cli::compute(&open_store(root)?, command),
        Command::Datastore(command) => datastore_cli::datastore(&open_store(root)?, command),
        Command::Sync(command) => sync_cli::sync(&open_store(root)?, command),
        Command::Gc { output } => gc(root, &output),
    }
}

fn gc(root: &Path, output: &Output) -> Result<()> {
    let ws = Workspace::open(root)
        .with_context(|| format!("cannot open workspace {}", root.display()))?;
    let Some(collected) = ws.collect_garbage()? else {
        anyhow::bail!(
            "another Lathe process has workspace {} open, and its newest files may not be \
             recorded yet; close it and run lathe gc again",
            root.display()
        );
    };
    if output.json {
        print_json(&collected)?;
    } else {
        println!(
            "removed {} unreferenced file(s), {}",
            collected.files,
            format::bytes(i64::try_from(collected.bytes).unwrap_or(i64::MAX))
        );
    }
    Ok(())
}

fn data(root: &Path, command: DataCommand) -> Result<()> {
    let mut ws = Workspace::open(root)
        .with_context(|| format!("cannot open workspace {}", root.display()))?;
    match command {
        DataCommand::Import {
            path,
            name,
            kind,
            text_column,
            datastore,
            output,
        } => {
            let request = ImportRequest {
                path,
                name,
                kind,
                text_column,
                source_label: None,
            };
            let outcome = with_progress(&mut ws, |ws, progress| {
                import_from(ws, &request, datastore.as_deref(), progress)
            })?;
            let v = &outcome.version;
            if output.json {
                print_json(&json!({ "created": outcome.created, "version": v }))?;
            } else if outcome.created {
                println!(
                    "imported {} ({} {})",
                    v.reference(),
                    format::count(v.item_count),
                    v.kind.items_word()
                );
            } else {
                println!("unchanged: {} already holds this content", v.reference());
            }
        }
        DataCommand::List { output } => {
            let assets = ws.list_assets()?;
            if output.json {
                print_json(&assets)?;
            } else if assets.is_empty() {
                println!("no data assets");
            } else {
                println!(
                    "{:<32} {:<7} {:>7} {:>9}",
                    "NAME", "KIND", "LATEST", "VERSIONS"
                );
                for a in &assets {
                    println!(
                        "{:<32} {:<7} {:>7} {:>9}",
                        a.name, a.kind, a.latest_version, a.version_count
                    );
                }
            }
        }
        DataCommand::Show { reference, output } => {
            if reference.version.is_some() {
                let v = ws.resolve(&reference)?;
                let files = if v.kind == AssetKind::Images {
                    ws.version_files(v.id)?
                } else {
                    Vec::new()
                };
                if output.json {
                    print_json(&json!({ "version": v, "files": files }))?;
                } else {
                    print_version(&v);
                    for f in &files {
                        println!(
                            "  {}  {}×{}  {}",
                            f.path,
                            f.width,
                            f.height,
                            format::bytes(f.size_bytes as i64)
                        );
                    }
                }
            } else {
                let versions = ws.versions(&reference.name)?;
                if output.json {
                    print_json(&versions)?;
                } else {
                    for v in &versions {
                        print_version(v);
                    }
                }
            }
        }
        DataCommand::Profile { reference, output } => {
            let version = ws.resolve(&reference)?;
            let profile = with_progress(&mut ws, |ws, progress| {
                profile_version(ws, &version, progress)
            })?;
            if output.json {
                print_json(&profile)?;
            } else {
                print_profile(&version, &profile);
            }
        }
        DataCommand::Export { reference, path } => {
            let version = ws.resolve(&reference)?;
            let files = with_progress(&mut ws, |ws, progress| {
                export::export(ws, &version, &path, progress)
            })?;
            println!(
                "exported {} to {} ({files} file(s))",
                version.reference(),
                path.display()
            );
        }
    }
    Ok(())
}

fn print_version(v: &AssetVersion) {
    println!(
        "{}  {}  {} {}  {}  {}  hash {}",
        v.reference(),
        v.kind,
        format::count(v.item_count),
        v.kind.items_word(),
        format::bytes(v.size_bytes),
        format::timestamp(v.created_at),
        &v.content_hash[..12.min(v.content_hash.len())]
    );
    println!("  source: {}", v.source);
    for c in &v.meta.columns {
        println!("  {}: {}", c.name, c.dtype);
    }
}

fn print_profile(v: &AssetVersion, p: &TableProfile) {
    println!(
        "{}: {} rows × {} columns",
        v.reference(),
        format::count(p.rows as i64),
        p.columns.len()
    );
    for c in &p.columns {
        println!(
            "\n{} ({})  count {}  null {:.1}%  distinct {}",
            c.name,
            c.dtype,
            format::count(c.count as i64),
            c.null_pct,
            format::count(c.distinct as i64)
        );
        if let Some(n) = &c.numeric {
            let quantiles: Vec<String> = n
                .quantiles
                .iter()
                .map(|(q, v)| format!("p{:.0} {}", q * 100.0, format::number(*v)))
                .collect();
            println!(
                "  min {}  max {}  mean {}  std {}",
                format::number(n.min),
                format::number(n.max),
                format::number(n.mean),
                format::number(n.std)
            );
            println!("  {}", quantiles.join("  "));
        }
        if let Some((min, max)) = &c.range {
            println!("  min {min}  max {max}");
        }
        if !c.top_values.is_empty() {
            let top: Vec<String> = c
                .top_values
                .iter()
                .take(5)
                .map(|(v, n)| format!("{v} ({n})"))
                .collect();
            println!("  top: {}", top.join(", "));
        }
    }
}
