//! The tracking commands: `server`, `experiments`, `runs` and `models`. Reads print a table or,
//! with `--json`, MLflow's JSON shapes.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lathe_core::format;
use lathe_core::jobs::Progress;
use lathe_core::sync::Selection;
use lathe_core::tracking::experiments::{self, ViewType};
use lathe_core::tracking::search::{self, RunQuery};
use lathe_core::tracking::types::{ModelVersion, Run};
use lathe_core::tracking::{Tracking, registry, runs};
use serde_json::json;

use crate::cli::{Output, print_json};
use crate::promotion_cli::{self, PolicyCommand, PromoteArgs};
use crate::server::{self, ServerConfig};

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The address to listen on. Anything but loopback requires --token.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The port (0 picks a free one and prints it).
    #[arg(long, default_value_t = 5000)]
    port: u16,
    /// A token clients must send as a bearer token (MLFLOW_TRACKING_TOKEN on their side).
    #[arg(long, env = "LATHE_SERVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentsCommand {
    /// List experiments.
    List {
        /// Include deleted experiments.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Args)]
pub struct RunSelection {
    /// Experiment names or ids (default: every active experiment).
    #[arg(long = "experiment", short = 'e', value_name = "NAME|ID")]
    experiments: Vec<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 100)]
    max: usize,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        #[command(flatten)]
        selection: RunSelection,
        #[command(flatten)]
        output: Output,
    },
    /// Show one run: its params, latest metrics, tags, inputs and artifacts.
    Show {
        run_id: String,
        #[command(flatten)]
        output: Output,
    },
    /// Search runs with MLflow's filter syntax, e.g. "metrics.rmse < 1 and params.model = 'tree'".
    Search {
        /// The filter.
        filter: String,
        /// Order, e.g. "metrics.rmse ASC"; repeat for ties.
        #[arg(long = "order-by")]
        order_by: Vec<String>,
        #[command(flatten)]
        selection: RunSelection,
        #[command(flatten)]
        output: Output,
    },
    /// Copy runs (params, every metric point, tags, inputs, artifacts) and registered model
    /// versions to an MLflow tracking server; a second push sends only what is new.
    Push {
        /// The server, e.g. https://mlflow.example.com or http://127.0.0.1:5000.
        #[arg(long = "to", value_name = "URI")]
        uri: String,
        /// Every run of these experiments, with their model versions (default: everything).
        #[arg(long = "experiment", short = 'e', value_name = "NAME")]
        experiments: Vec<String>,
        /// Runs by id.
        #[arg(long = "run", value_name = "RUN_ID")]
        runs: Vec<String>,
        /// Registered models, NAME (every version) or NAME:VERSION, with their runs.
        #[arg(long = "model", value_name = "MODEL")]
        models: Vec<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Bring an MLflow tracking server's runs into this workspace, beside local ones; a run
    /// here gets only what it lacks.
    Pull {
        /// The server, e.g. https://mlflow.example.com or http://127.0.0.1:5000.
        #[arg(long = "from", value_name = "URI")]
        uri: String,
        /// Every active run of these experiments there.
        #[arg(long = "experiment", short = 'e', value_name = "NAME")]
        experiments: Vec<String>,
        /// Runs there, by id.
        #[arg(long = "run", value_name = "RUN_ID")]
        runs: Vec<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// How to speak to a tracking server.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// A bearer token (else MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and
    /// MLFLOW_TRACKING_PASSWORD, as MLflow's client reads them). Never stored.
    #[arg(long, env = "MLFLOW_TRACKING_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models with their latest version and aliases.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Show a model's versions, or one version: NAME, NAME:VERSION or NAME@ALIAS.
    Show {
        reference: String,
        #[command(flatten)]
        output: Output,
    },
    /// Register a model version from an MLmodel folder or an ONNX file.
    Register {
        path: PathBuf,
        /// The registered model (created if new).
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        output: Output,
    },
    /// Point an alias (e.g. champion) at a version, with no gates.
    Alias {
        name: String,
        alias: String,
        version: String,
    },
    /// A model's promotion policy: the gates a version passes before an alias moves to it.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Check every gate of the model's policy and move the alias only when all pass; exits
    /// non-zero otherwise. The decision is recorded either way.
    Promote(PromoteArgs),
    /// The promotion decisions on record for a model, newest first.
    Decisions {
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Write a version as a self-contained folder: the model in MLflow's format (a Lathe model
    /// loadable by mlflow.pyfunc), its environment, the lathe program and a Dockerfile.
    Package {
        /// NAME:VERSION or NAME@ALIAS.
        reference: String,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Serve one model with MLflow's scoring protocol and the Open Inference Protocol, from a
    /// model folder (a package's `model`), an ONNX file or a version of this workspace, in a
    /// fresh workspace of its own; until stopped.
    Serve {
        /// A model folder, or NAME:VERSION / NAME@ALIAS.
        source: String,
        /// 0 picks a free port.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Off loopback a key is required (printed at start).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
}

pub fn serve(root: &Path, args: ServerArgs) -> Result<()> {
    let tracking = open(root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let config = ServerConfig {
            host: args.host,
            port: args.port,
            token: args.token,
        };
        let bound = server::bind(tracking.clone(), config).await?;
        // Tests and scripts read this line to find the port.
        println!(
            "Lathe tracking server on http://{} (workspace {})",
            bound.addr,
            root.display()
        );
        // The workspace's online endpoints serve while the server does.
        if let Err(e) = crate::endpoints_server::spawn(tracking.store().clone()) {
            eprintln!("lathe: online endpoints will not serve: {e:#}");
        }
        // Scheduled pipelines run while the server does.
        let _schedules = lathe_core::pipeline::schedule::spawn_runner(
            tracking.clone(),
            Some(format!("http://{}", bound.addr)),
            std::time::Duration::from_secs(30),
            |schedule, outcome| match outcome {
                Ok(o) => eprintln!(
                    "schedule {}: pipeline run {} {}",
                    schedule.id,
                    o.run_id,
                    o.status.word()
                ),
                Err(e) => eprintln!("schedule {}: did not run: {e}", schedule.id),
            },
        )
        .context("cannot start the schedule runner")?;
        // So do monitors.
        let _monitors = lathe_core::monitoring::runner::spawn(
            tracking.store().clone(),
            std::time::Duration::from_secs(5),
            |monitor, outcome| match outcome {
                Ok(o) => eprintln!(
                    "monitor {monitor}: run {} {}, {} alert(s) opened",
                    o.id.unwrap_or_default(),
                    o.state,
                    o.opened.len()
                ),
                Err(e) => eprintln!("monitor {monitor}: did not run: {e}"),
            },
        )
        .context("cannot start the monitor runner")?;
        bound
            .serve(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}

fn open(root: &Path) -> Result<Tracking> {
    Tracking::open(root).with_context(|| format!("cannot open workspace {}", root.display()))
}

pub fn experiments(root: &Path, command: ExperimentsCommand) -> Result<()> {
    let tracking = open(root)?;
    let ExperimentsCommand::List { all, output } = command;
    let view = if all {
        ViewType::All
    } else {
        ViewType::ActiveOnly
    };
    let (found, _) = tracking.read(|c| experiments::search(c, view, "", &[], 50_000, 0))?;
    if output.json {
        return print_json(&found);
    }
    println!(
        "{:>6}  {:<40} {:<8} {:>6}  CREATED",
        "ID", "NAME", "STAGE", "RUNS"
    );
    for e in &found {
        let count: i64 = tracking.read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM runs WHERE experiment_id = ?1 AND lifecycle_stage = 'active'",
                [&e.experiment_id],
                |r| r.get(0),
            )?)
        })?;
        println!(
            "{:>6}  {:<40} {:<8} {:>6}  {}",
            e.experiment_id,
            e.name,
            e.lifecycle_stage,
            count,
            format::timestamp(e.creation_time / 1000)
        );
    }
    Ok(())
}

/// Experiment ids for names or ids given on the command line; every active one when none.
fn experiment_ids(tracking: &Tracking, given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        let (all, _) =
            tracking.read(|c| experiments::search(c, ViewType::ActiveOnly, "", &[], 50_000, 0))?;
        return Ok(all.into_iter().map(|e| e.experiment_id).collect());
    }
    given
        .iter()
        .map(|g| {
            tracking
                .read(|c| match experiments::get_by_name(c, g) {
                    Ok(e) => Ok(e.experiment_id),
                    Err(_) => experiments::get(c, g).map(|e| e.experiment_id),
                })
                .map_err(|_| {
                    let known = tracking
                        .read(|c| experiments::search(c, ViewType::All, "", &[], 50_000, 0))
                        .map(|(all, _)| all)
                        .unwrap_or_default();
                    let hint =
                        lathe_core::suggest::did_you_mean(g, known.iter().map(|e| e.name.as_str()));
                    anyhow::anyhow!("no experiment named or numbered '{g}'{hint}")
                })
        })
        .collect()
}

pub fn runs(root: &Path, command: RunsCommand) -> Result<()> {
    match command {
        RunsCommand::List { selection, output } => {
            list_runs(&open(root)?, "", &[], &selection, &output)
        }
        RunsCommand::Search {
            filter,
            order_by,
            selection,
            output,
        } => list_runs(&open(root)?, &filter, &order_by, &selection, &output),
        RunsCommand::Show { run_id, output } => show_run(&open(root)?, &run_id, &output),
        RunsCommand::Push {
            uri,
            experiments,
            runs,
            models,
            remote,
        } => {
            let selection = Selection {
                runs,
                experiments,
                models,
                ..Selection::default()
            };
            exchange(root, (&uri, true), &selection, &remote)
        }
        RunsCommand::Pull {
            uri,
            experiments,
            runs,
            remote,
        } => {
            if experiments.is_empty() && runs.is_empty() {
                anyhow::bail!(
                    "name what to pull: --experiment NAME (every run of it) or --run RUN_ID"
                );
            }
            let selection = Selection {
                runs,
                experiments,
                ..Selection::default()
            };
            exchange(root, (&uri, false), &selection, &remote)
        }
    }
}
/// `runs push` (`push`) or `runs pull` with the server at `uri`.
fn exchange(
    root: &Path,
    (uri, push): (&str, bool),
    selection: &Selection,
    remote: &RemoteArgs,
) -> Result<()> {
    let store = lathe_core::Store::open(root)
        .with_context(|| format!("cannot open workspace {}", root.display()))?;
    let server = lathe_core::remote::Server::new(uri, remote.token.as_deref())?;
    let interrupted = Arc::new(AtomicBool::new(false));
    crate::output::on_ctrl_c(interrupted.clone());
    let progress = Progress::default();
    let report = crate::output::with_bar(&progress, Some(&interrupted), |progress| {
        if push {
            lathe_core::remote::push(&store, &server, selection, progress)
        } else {
            let named = (&selection.experiments[..], &selection.runs[..]);
            lathe_core::remote::pull(&store, &server, named, progress)
        }
    })?;
    if remote.output.json {
        print_json(&report)?;
    } else {
        crate::sync_cli::print_report(&report, push);
    }
    let failed = report.count(lathe_core::sync::Outcome::Failed);
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} not {}: see above",
            report.items.len(),
            if push { "pushed" } else { "pulled" }
        );
    }
    Ok(())
}

fn show_run(tracking: &Tracking, run_id: &str, output: &Output) -> Result<()> {
    let run = tracking.read(|c| runs::get(c, run_id))?;
    let artifacts = match run
        .info
        .artifact_uri
        .strip_prefix(lathe_core::tracking::api::ARTIFACTS_SCHEME)
    {
        Some(dir) => tracking.artifact_tree(dir)?,
        None => Vec::new(),
    };
    if output.json {
        let files: Vec<_> = artifacts
            .iter()
            .map(|(path, _, size)| json!({ "path": path, "file_size": size }))
            .collect();
        return print_json(&json!({ "run": run, "artifacts": files }));
    }
    print_run(&run);
    if !artifacts.is_empty() {
        println!("artifacts:");
        for (path, _, size) in &artifacts {
            println!("  {path}  {}", format::bytes(*size));
        }
    }
    Ok(())
}

fn list_runs(
    tracking: &Tracking,
    filter: &str,
    order_by: &[String],
    selection: &RunSelection,
    output: &Output,
) -> Result<()> {
    let ids = experiment_ids(tracking, &selection.experiments)?;
    if ids.is_empty() {
        anyhow::bail!("no experiments");
    }
    let query = RunQuery {
        experiment_ids: &ids,
        filter,
        view: ViewType::ActiveOnly,
        order_by,
        max_results: selection.max.clamp(1, search::MAX_RESULTS_LIMIT),
        page_token: None,
    };
    let (found, _) = tracking.read(|c| search::search_runs(c, &query))?;
    if output.json {
        return print_json(&found);
    }
    if found.is_empty() {
        println!("no runs");
        return Ok(());
    }
    println!(
        "{:<32}  {:<24} {:>4}  {:<9} {:<20}  METRICS",
        "RUN ID", "NAME", "EXP", "STATUS", "STARTED"
    );
    for run in &found {
        let metrics: Vec<String> = run
            .data
            .metrics
            .iter()
            .take(4)
            .map(|m| format!("{}={}", m.key, format::number(m.value)))
            .collect();
        println!(
            "{:<32}  {:<24} {:>4}  {:<9} {:<20}  {}",
            run.info.run_id,
            run.info.run_name,
            run.info.experiment_id,
            run.info.status,
            run.info
                .start_time
                .map(|t| format::timestamp(t / 1000))
                .unwrap_or_default(),
            metrics.join("  ")
        );
    }
    Ok(())
}

fn print_run(run: &Run) {
    let info = &run.info;
    println!("run {} ({})", info.run_id, info.run_name);
    println!(
        "  experiment {}  status {}  user {}  stage {}",
        info.experiment_id, info.status, info.user_id, info.lifecycle_stage
    );
    if let Some(start) = info.start_time {
        let took = info
            .end_time
            .map(|end| format!("  took {:.1} s", (end - start) as f64 / 1000.0))
            .unwrap_or_default();
        println!("  started {}{took}", format::timestamp(start / 1000));
    }
    println!("  artifacts {}", info.artifact_uri);
    let section = |title: &str, rows: Vec<(String, String)>| {
        if !rows.is_empty() {
            println!("{title}:");
            for (k, v) in rows {
                println!("  {k} = {v}");
            }
        }
    };
    section(
        "params",
        run.data
            .params
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
    );
    section(
        "metrics",
        run.data
            .metrics
            .iter()
            .map(|m| {
                (
                    m.key.clone(),
                    format!("{} (step {})", format::number(m.value), m.step),
                )
            })
            .collect(),
    );
    section(
        "tags",
        run.data
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
    );
    section(
        "inputs",
        run.inputs
            .dataset_inputs
            .iter()
            .map(|d| {
                (
                    d.dataset.name.clone(),
                    format!(
                        "{} ({}) digest {}",
                        d.dataset.source, d.dataset.source_type, d.dataset.digest
                    ),
                )
            })
            .collect(),
    );
    section(
        "outputs",
        run.outputs
            .model_outputs
            .iter()
            .map(|o| (o.model_id.clone(), format!("logged model, step {}", o.step)))
            .collect(),
    );
}

pub fn models(root: &Path, command: ModelsCommand) -> Result<()> {
    // A model folder, or an ONNX file, is served as it is, without a workspace.
    if let ModelsCommand::Serve { source, port, host } = &command
        && (Path::new(source).is_dir()
            || Path::new(source).is_file()
                && Path::new(source)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("onnx")))
    {
        return serve_model(Path::new(source), *port, host);
    }
    let tracking = open(root)?;
    match command {
        ModelsCommand::Package {
            reference,
            out,
            output,
        } => {
            let version = one_version(&tracking, &reference)?;
            let lathe = std::env::current_exe().context("cannot find this program to package")?;
            let made = lathe_core::packaging::package(&tracking, &version, &out, &lathe)?;
            if output.json {
                return print_json(&made);
            }
            println!(
                "packaged {}:{} in {} ({} files; flavors {})",
                version.name,
                version.version,
                made.dir.display(),
                made.files.len(),
                made.flavors.join(", ")
            );
            Ok(())
        }
        ModelsCommand::Serve { source, port, host } => {
            let version = one_version(&tracking, &source)?;
            let folder = tempfile::tempdir().context("cannot make a folder for the package")?;
            let out = folder.path().join("package");
            let lathe = std::env::current_exe().context("cannot find this program")?;
            lathe_core::packaging::package(&tracking, &version, &out, &lathe)?;
            serve_model(&out.join("model"), port, &host)
        }
        ModelsCommand::List { output } => {
            let (found, _) = tracking.read(|c| registry::search_models(c, "", &[], 50_000, 0))?;
            if output.json {
                return print_json(&found);
            }
            if found.is_empty() {
                println!("no registered models");
            }
            for m in &found {
                let latest = m
                    .latest_versions
                    .iter()
                    .map(|v| v.version.parse::<i64>().unwrap_or(0))
                    .max()
                    .unwrap_or(0);
                let aliases: Vec<String> = m
                    .aliases
                    .iter()
                    .map(|a| format!("@{}→v{}", a.alias, a.version))
                    .collect();
                println!("{:<32} latest v{latest}  {}", m.name, aliases.join(" "));
            }
            Ok(())
        }
        ModelsCommand::Show { reference, output } => {
            let versions = resolve_versions(&tracking, &reference)?;
            if output.json {
                return print_json(&versions);
            }
            for v in &versions {
                print_version(v);
            }
            Ok(())
        }
        ModelsCommand::Register {
            path,
            name,
            description,
            output,
        } => {
            let version = tracking.register_local(&path, &name, &description)?;
            if output.json {
                return print_json(&version);
            }
            println!(
                "registered {}:{} from {}",
                version.name,
                version.version,
                path.display()
            );
            Ok(())
        }
        ModelsCommand::Alias {
            name,
            alias,
            version,
        } => {
            let (n, a, v) = (name.clone(), alias.clone(), version.clone());
            tracking.write(move |c| registry::set_alias(c, &n, &a, &v))?;
            println!("{name}@{alias} → version {version}");
            Ok(())
        }
        ModelsCommand::Policy(command) => promotion_cli::policy(tracking.store(), command),
        ModelsCommand::Promote(args) => promotion_cli::promote(tracking.store(), args),
        ModelsCommand::Decisions { name, output } => {
            promotion_cli::decisions(tracking.store(), &name, &output)
        }
    }
}

/// NAME (all versions, newest first), NAME:VERSION or NAME@ALIAS; an unknown model's name
/// gets the nearest registered names suggested.
/// The one version `reference` (NAME:VERSION or NAME@ALIAS) names.
fn one_version(tracking: &Tracking, reference: &str) -> Result<ModelVersion> {
    if !reference.contains([':', '@']) {
        anyhow::bail!("'{reference}': name one version, as NAME:VERSION or NAME@ALIAS");
    }
    let mut found = resolve_versions(tracking, reference)?;
    found
        .pop()
        .with_context(|| format!("no version matches '{reference}'"))
}

/// Serves the model folder `model` in a fresh workspace of its own (removed when it stops),
/// as endpoint `model`, deployment `default`.
fn serve_model(model: &Path, port: u16, host: &str) -> Result<()> {
    let folder = tempfile::tempdir().context("cannot make a workspace to serve from")?;
    let store = lathe_core::Store::open(folder.path().join("ws"))?;
    let endpoint = lathe_core::endpoints::create_endpoint(
        &store,
        "name: model\n",
        Some(host),
        (port != 0).then_some(port),
    )?;
    let model = model
        .canonicalize()
        .with_context(|| format!("cannot read {}", model.display()))?;
    let yaml = format!(
        "name: default\nendpoint_name: model\nmodel:\n  path: {}\n",
        serde_json::to_string(&model.display().to_string())?
    );
    lathe_core::endpoints::put_deployment(&store, &yaml, Path::new("."), true, false)?;
    crate::endpoints_server::spawn(store.clone())?;
    // Scripts read this line to find the address.
    println!(
        "serving {} at http://{}:{} (MLflow: /invocations; Open Inference Protocol: /v2/models/model)",
        model.display(),
        endpoint.host,
        endpoint.port
    );
    if endpoint.key_required {
        println!("key: {}", endpoint.keys[0]);
    }
    loop {
        let state = lathe_core::endpoints::deployments(&store, "model")?
            .into_iter()
            .next()
            .map(|d| (d.state, d.message));
        if let Some((state, message)) = state.filter(|(s, _)| s == "failed") {
            anyhow::bail!("the model does not serve ({state}): {message}");
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn resolve_versions(tracking: &Tracking, reference: &str) -> Result<Vec<ModelVersion>> {
    let name = reference
        .split(['@', ':'])
        .next()
        .unwrap_or(reference)
        .to_owned();
    if tracking.read(|c| registry::get_model(c, &name)).is_err() {
        let (known, _) = tracking.read(|c| registry::search_models(c, "", &[], 50_000, 0))?;
        let hint = lathe_core::suggest::did_you_mean(&name, known.iter().map(|m| m.name.as_str()));
        anyhow::bail!("no registered model named '{name}'{hint}");
    }
    if let Some((name, alias)) = reference.split_once('@') {
        return Ok(vec![
            tracking.read(|c| registry::version_by_alias(c, name, alias))?,
        ]);
    }
    if let Some((name, version)) = reference.split_once(':') {
        return Ok(vec![
            tracking.read(|c| registry::get_version(c, name, version))?,
        ]);
    }
    let filter = format!("name = '{}'", reference.replace('\'', "''"));
    let (found, _) = tracking
        .read(|c| registry::search_versions(c, &filter, &registry::newest_first(), 50_000, 0))?;
    if found.is_empty() {
        tracking.read(|c| registry::get_model(c, reference))?;
    }
    Ok(found)
}

fn print_version(v: &ModelVersion) {
    let aliases: Vec<String> = v.aliases.iter().map(|a| format!("@{a}")).collect();
    println!(
        "{}:{}  {}  {}  {}",
        v.name,
        v.version,
        v.status,
        format::timestamp(v.creation_timestamp / 1000),
        aliases.join(" ")
    );
    println!("  source: {}", v.source);
    if !v.run_id.is_empty() {
        println!("  run: {}", v.run_id);
    }
    if !v.description.is_empty() {
        println!("  description: {}", v.description);
    }
    if let Some(signature) = &v.signature {
        for part in ["inputs", "outputs"] {
            if let Some(items) = signature[part].as_array() {
                let described: Vec<String> = items.iter().map(describe_field).collect();
                println!("  {part}: {}", described.join(", "));
            }
        }
    }
    for t in &v.tags {
        println!("  tag {} = {}", t.key, t.value);
    }
}

/// A signature field as `name: type[shape]`.
fn describe_field(field: &serde_json::Value) -> String {
    let name = field["name"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| field["name"].as_i64().map(|n| n.to_string()));
    let kind = field["type"].as_str().unwrap_or("?");
    let dtype = field["tensor-spec"]["dtype"].as_str();
    let shape = field["tensor-spec"]["shape"].as_array().map(|dims| {
        let dims: Vec<String> = dims.iter().map(ToString::to_string).collect();
        format!("[{}]", dims.join(", "))
    });
    let ty = match (kind, dtype) {
        ("tensor", Some(d)) => format!("{d}{}", shape.unwrap_or_default()),
        _ => kind.to_owned(),
    };
    match name {
        Some(n) => format!("{n}: {ty}"),
        None => ty,
    }
}
