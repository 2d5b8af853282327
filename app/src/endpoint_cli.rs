//! `lathe online-endpoint` and `lathe online-deployment`, in Azure ML CLI v2's shapes: create
//! from YAML (`-f`), update, show, list, delete, keys, and invoke. The endpoints serve while
//! `lathe server` or the window runs (a change is picked up within seconds).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use lathe_core::Store;
use lathe_core::collection::{self, Limits};
use lathe_core::endpoints::{self, Deployment, Endpoint};
use serde_json::json;

use crate::cli::{Output, print_json, read_text};

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Create an endpoint from its YAML (managedOnlineEndpoint); it keeps its port.
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The address to listen on; off loopback a key is always required.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The port (a free one when not given).
        #[arg(long)]
        port: Option<u16>,
        #[command(flatten)]
        output: Output,
    },
    /// Change the traffic split, the mirror, or the description and tags (-f).
    Update {
        name: String,
        /// "blue=90 green=10": percent per deployment, summing to 100.
        #[arg(long)]
        traffic: Option<String>,
        /// "green=10": a copy of that share of requests goes to green; its answers are recorded.
        #[arg(long)]
        mirror_traffic: Option<String>,
        /// Remove collected windows this many days after they end ("none": keep them).
        #[arg(long, value_name = "DAYS|none")]
        collection_retention_days: Option<String>,
        /// Keep at most this many MiB of collected data, removing the oldest windows first
        /// ("none": no cap). The newest window of each asset is always kept.
        #[arg(long, value_name = "MIB|none")]
        collection_max_mib: Option<String>,
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
    /// An endpoint's scoring URI, traffic, deployments and last five minutes of health.
    Show {
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Every endpoint with its scoring URI.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Delete an endpoint and its deployments.
    Delete { name: String },
    /// The endpoint's keys (send one as `Authorization: Bearer KEY`).
    GetCredentials {
        name: String,
        /// Make new keys; the old ones stop working.
        #[arg(long)]
        regenerate: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Send a request file to the endpoint and print the answer.
    Invoke {
        name: String,
        #[arg(long)]
        request_file: PathBuf,
        /// Send it to this deployment, whatever the split.
        #[arg(long)]
        deployment_name: Option<String>,
    },
    /// Send a deployment's collected requests to another deployment (or a model version,
    /// scored here) and report how the answers differ: identical share, class flips, largest
    /// numeric difference, latency of each. Replayed requests are not collected.
    Replay {
        name: String,
        /// The deployment whose collected requests are replayed.
        #[arg(long)]
        from: String,
        /// A deployment of the endpoint, or a model version NAME:VERSION.
        #[arg(long)]
        to: String,
        /// The newest this many requests.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Create a deployment from its YAML (managedOnlineDeployment).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Send all of the endpoint's traffic to it (otherwise it gets none, as in Azure).
        #[arg(long)]
        all_traffic: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Replace a deployment from its YAML (a new model version, new settings).
    Update {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// A deployment's model and state.
    Show {
        #[arg(long)]
        name: String,
        #[arg(long)]
        endpoint_name: String,
        #[command(flatten)]
        output: Output,
    },
    /// An endpoint's deployments with their model and state.
    List {
        #[arg(long)]
        endpoint_name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Delete a deployment (move its traffic elsewhere first).
    Delete {
        #[arg(long)]
        name: String,
        #[arg(long)]
        endpoint_name: String,
    },
    /// What the serving process said of the deployment: its model loaded (or why not), failed
    /// answers.
    Logs {
        #[arg(long)]
        name: String,
        #[arg(long)]
        endpoint_name: String,
        /// How many of the last lines.
        #[arg(long, default_value_t = 100)]
        lines: usize,
        #[command(flatten)]
        output: Output,
    },
}

/// A collection limit given on the command line: a positive whole number, or `none`.
fn limit<T: std::str::FromStr>(flag: &str, given: &str) -> Result<Option<T>> {
    if given.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    given
        .parse()
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{flag}: '{given}' is not a whole number or 'none'"))
}

fn base_of(file: &Path) -> PathBuf {
    file.parent().unwrap_or(Path::new(".")).to_path_buf()
}

/// Health over the last five minutes, per deployment.
fn recent_health(
    store: &Store,
    name: &str,
) -> std::collections::BTreeMap<String, endpoints::HealthPoint> {
    let since = lathe_core::db::now_millis() - 5 * 60 * 1000;
    endpoints::health(store, name, since)
        .map(|points| endpoints::health_summary(&points))
        .unwrap_or_default()
}

fn endpoint_json(e: &Endpoint, deployments: &[Deployment], limits: &Limits) -> serde_json::Value {
    json!({
        "name": e.spec.name,
        "description": e.spec.description,
        "scoring_uri": e.scoring_uri(),
        "openapi_uri": format!("http://{}:{}/v2", e.host, e.port),
        "auth_mode": if e.key_required { "key" } else { "none on loopback" },
        "traffic": e.spec.traffic,
        "mirror_traffic": e.spec.mirror_traffic,
        "collection_limits": limits,
        "deployments": deployments.iter().map(deployment_json).collect::<Vec<_>>(),
        "created_at_ms": e.created_at_ms,
    })
}

fn deployment_json(d: &Deployment) -> serde_json::Value {
    json!({
        "name": d.spec.name,
        "endpoint_name": d.endpoint,
        "model": format!("azureml:{}:{}", d.model_name, d.model_version),
        "instance_count": d.spec.instance_count.unwrap_or(1),
        "provisioning_state": d.state,
        "message": d.message,
    })
}

fn print_endpoint(e: &Endpoint, deployments: &[Deployment], limits: &Limits) {
    println!("{}  {}", e.spec.name, e.scoring_uri());
    if e.key_required {
        println!(
            "  a key is required (lathe online-endpoint get-credentials {})",
            e.spec.name
        );
    }
    let split: Vec<String> = e
        .spec
        .traffic
        .iter()
        .map(|(d, s)| format!("{d}={s}"))
        .collect();
    println!(
        "  traffic: {}",
        if split.is_empty() {
            "none".to_owned()
        } else {
            split.join(" ")
        }
    );
    if !e.spec.mirror_traffic.is_empty() {
        let mirror: Vec<String> = e
            .spec
            .mirror_traffic
            .iter()
            .map(|(d, s)| format!("{d}={s}"))
            .collect();
        println!("  mirror: {}", mirror.join(" "));
    }
    if *limits != Limits::default() {
        println!("  collected data: {}", limits.describe());
    }
    for d in deployments {
        print_deployment(d);
    }
}

fn print_deployment(d: &Deployment) {
    let mut line = format!(
        "  {}  {}:{}  {}",
        d.spec.name, d.model_name, d.model_version, d.state
    );
    if !d.message.is_empty() {
        line.push_str(&format!(" — {}", d.message));
    }
    println!("{line}");
}

pub fn warn_ignored(ignored: &[&str]) {
    if !ignored.is_empty() {
        eprintln!(
            "note: {} ha{} no meaning on this machine and {} ignored",
            ignored.join(", "),
            if ignored.len() == 1 { "s" } else { "ve" },
            if ignored.len() == 1 { "is" } else { "are" }
        );
    }
}

pub fn endpoint(store: &Store, command: EndpointCommand) -> Result<()> {
    match command {
        EndpointCommand::Create {
            file,
            host,
            port,
            output,
        } => {
            let text = read_text(&file)?;
            warn_ignored(
                &endpoints::parse_endpoint(&text)
                    .map(|s| s.ignored())
                    .unwrap_or_default(),
            );
            let created = endpoints::create_endpoint(store, &text, Some(&host), port)?;
            if output.json {
                return print_json(&endpoint_json(&created, &[], &Limits::default()));
            }
            println!(
                "created endpoint {} at {}",
                created.spec.name,
                created.scoring_uri()
            );
            Ok(())
        }
        EndpointCommand::Update {
            name,
            traffic,
            mirror_traffic,
            collection_retention_days,
            collection_max_mib,
            file,
            output,
        } => {
            if collection_retention_days.is_some() || collection_max_mib.is_some() {
                let mut limits = collection::limits(store, &name)?;
                if let Some(days) = collection_retention_days {
                    limits.retention_days = limit("--collection-retention-days", &days)?;
                }
                if let Some(mib) = collection_max_mib {
                    limits.max_bytes = limit::<u64>("--collection-max-mib", &mib)?
                        .map(|m| m.saturating_mul(1 << 20));
                }
                collection::set_limits(store, &name, limits)?;
            }
            let from_file = file
                .map(|f| read_text(&f))
                .transpose()?
                .map(|t| endpoints::parse_endpoint(&t))
                .transpose()?;
            let traffic = traffic.map(|t| endpoints::parse_split(&t)).transpose()?;
            let unchanged = from_file.is_none() && traffic.is_none() && mirror_traffic.is_none();
            let mirror = mirror_traffic
                .map(|t| endpoints::parse_split(&t))
                .transpose()?;
            let updated = if unchanged {
                endpoints::endpoint(store, &name)?
            } else {
                endpoints::update_endpoint(store, &name, |spec| {
                    if let Some(new) = from_file {
                        spec.description = new.description;
                        spec.tags = new.tags;
                        if !new.traffic.is_empty() {
                            spec.traffic = new.traffic;
                        }
                        if !new.mirror_traffic.is_empty() {
                            spec.mirror_traffic = new.mirror_traffic;
                        }
                    }
                    if let Some(t) = traffic {
                        spec.traffic = t;
                    }
                    if let Some(m) = mirror {
                        spec.mirror_traffic = m;
                    }
                })?
            };
            let deployments = endpoints::deployments(store, &name)?;
            let limits = collection::limits(store, &name)?;
            if output.json {
                return print_json(&endpoint_json(&updated, &deployments, &limits));
            }
            print_endpoint(&updated, &deployments, &limits);
            Ok(())
        }
        EndpointCommand::Show { name, output } => {
            let found = endpoints::endpoint(store, &name)?;
            let deployments = endpoints::deployments(store, &name)?;
            let health = recent_health(store, &name);
            let collected = collection::windows(store, Some(&name))?;
            let limits = collection::limits(store, &name)?;
            if output.json {
                let mut shown = endpoint_json(&found, &deployments, &limits);
                shown["health_last_5_min"] = json!(health);
                shown["collected"] = json!(collected);
                return print_json(&shown);
            }
            print_endpoint(&found, &deployments, &limits);
            for w in collected.iter().take(10) {
                let when = lathe_core::format::timestamp(w.start_ms / 1000);
                println!(
                    "  collected {} {} from {when}: {} rows in {} part(s){}",
                    w.deployment,
                    w.kind,
                    w.rows,
                    w.parts,
                    w.asset
                        .as_ref()
                        .map(|a| format!(", data asset {a}"))
                        .unwrap_or_else(|| ", window open".into())
                );
            }
            for (d, h) in &health {
                println!(
                    "  {d}, last 5 min: {} requests ({:.1}/s), {} errors, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
                    h.requests,
                    h.throughput(),
                    h.errors,
                    h.p50_ms,
                    h.p95_ms,
                    h.p99_ms
                );
            }
            Ok(())
        }
        EndpointCommand::List { output } => {
            let all = endpoints::endpoints(store)?;
            if output.json {
                let listed: Vec<serde_json::Value> = all
                    .iter()
                    .map(|e| {
                        endpoint_json(
                            e,
                            &endpoints::deployments(store, &e.spec.name).unwrap_or_default(),
                            &collection::limits(store, &e.spec.name).unwrap_or_default(),
                        )
                    })
                    .collect();
                return print_json(&listed);
            }
            if all.is_empty() {
                println!("no online endpoints");
            }
            for e in &all {
                println!("{}  {}", e.spec.name, e.scoring_uri());
            }
            Ok(())
        }
        EndpointCommand::Delete { name } => {
            endpoints::delete_endpoint(store, &name)?;
            println!("deleted endpoint {name}");
            Ok(())
        }
        EndpointCommand::GetCredentials {
            name,
            regenerate,
            output,
        } => {
            let e = if regenerate {
                endpoints::regenerate_keys(store, &name)?
            } else {
                endpoints::endpoint(store, &name)?
            };
            let keys = json!({ "primaryKey": e.keys[0], "secondaryKey": e.keys[1] });
            if output.json {
                return print_json(&keys);
            }
            println!("primary:   {}\nsecondary: {}", e.keys[0], e.keys[1]);
            Ok(())
        }
        EndpointCommand::Invoke {
            name,
            request_file,
            deployment_name,
        } => {
            let e = endpoints::endpoint(store, &name)?;
            let body = std::fs::read(&request_file)
                .with_context(|| format!("cannot read {}", request_file.display()))?;
            let content_type = if request_file
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("csv"))
            {
                "text/csv"
            } else {
                "application/json"
            };
            let answer = endpoints::invoke(&e, &body, content_type, deployment_name.as_deref())?;
            let text = answer.body.trim();
            if !(200..300).contains(&answer.status) {
                bail!("endpoint {name} answered {}: {text}", answer.status);
            }
            println!("{text}");
            Ok(())
        }
        EndpointCommand::Replay {
            name,
            from,
            to,
            limit,
            output,
        } => {
            let target = lathe_core::replay::Target::parse(&to);
            let report = lathe_core::replay::replay(
                store,
                &name,
                &from,
                &target,
                limit,
                &lathe_core::jobs::Progress::default(),
            )?;
            if output.json {
                return print_json(&json!(report));
            }
            println!(
                "replayed {} request(s) ({} rows) of {} against {}",
                report.requests, report.rows, report.from, report.to
            );
            println!(
                "  identical: {} of {} rows ({:.1}%)",
                report.identical,
                report.rows,
                report.identical_share * 100.0
            );
            for (before, after, rows) in &report.flips {
                println!("  {before} -> {after}: {rows} row(s)");
            }
            if let Some(d) = report.largest_difference {
                println!("  largest numeric difference: {d}");
            }
            if report.failed > 0 {
                println!(
                    "  failed: {} request(s); first: {}",
                    report.failed,
                    report.first_failure.as_deref().unwrap_or_default()
                );
            }
            println!(
                "  latency p50/p99: {} {:.2}/{:.2} ms (as served), {} {:.2}/{:.2} ms (now)",
                report.from,
                report.from_latency.p50_ms,
                report.from_latency.p99_ms,
                report.to,
                report.to_latency.p50_ms,
                report.to_latency.p99_ms
            );
            Ok(())
        }
    }
}

pub fn deployment(store: &Store, command: DeploymentCommand) -> Result<()> {
    match command {
        DeploymentCommand::Create {
            file,
            all_traffic,
            output,
        } => put(store, &file, all_traffic, false, &output),
        DeploymentCommand::Update { file, output } => put(store, &file, false, true, &output),
        DeploymentCommand::Show {
            name,
            endpoint_name,
            output,
        } => {
            let found = endpoints::deployments(store, &endpoint_name)?
                .into_iter()
                .find(|d| d.spec.name == name)
                .with_context(|| {
                    format!("endpoint {endpoint_name} has no deployment named '{name}'")
                })?;
            if output.json {
                return print_json(&deployment_json(&found));
            }
            print_deployment(&found);
            Ok(())
        }
        DeploymentCommand::List {
            endpoint_name,
            output,
        } => {
            endpoints::endpoint(store, &endpoint_name)?;
            let all = endpoints::deployments(store, &endpoint_name)?;
            if output.json {
                return print_json(&all.iter().map(deployment_json).collect::<Vec<_>>());
            }
            if all.is_empty() {
                println!("endpoint {endpoint_name} has no deployments");
            }
            for d in &all {
                print_deployment(d);
            }
            Ok(())
        }
        DeploymentCommand::Logs {
            name,
            endpoint_name,
            lines,
            output,
        } => {
            if !endpoints::deployments(store, &endpoint_name)?
                .iter()
                .any(|d| d.spec.name == name)
            {
                bail!("endpoint {endpoint_name} has no deployment named '{name}'");
            }
            let found = endpoints::logs(store, &endpoint_name, &name, lines)?;
            if output.json {
                let lines: Vec<serde_json::Value> = found
                    .iter()
                    .map(|(at, line)| json!({ "at_ms": at, "line": line }))
                    .collect();
                return print_json(&lines);
            }
            for (at, line) in &found {
                println!("{}  {line}", lathe_core::format::timestamp(at / 1000));
            }
            Ok(())
        }
        DeploymentCommand::Delete {
            name,
            endpoint_name,
        } => {
            endpoints::delete_deployment(store, &endpoint_name, &name)?;
            println!("deleted deployment {name} of {endpoint_name}");
            Ok(())
        }
    }
}

/// Creates or replaces the deployment `file` describes.
fn put(
    store: &Store,
    file: &Path,
    all_traffic: bool,
    replace: bool,
    output: &Output,
) -> Result<()> {
    let text = read_text(file)?;
    warn_ignored(
        &endpoints::parse_deployment(&text)
            .map(|s| s.ignored())
            .unwrap_or_default(),
    );
    let d = endpoints::put_deployment(store, &text, &base_of(file), all_traffic, replace)?;
    if output.json {
        return print_json(&deployment_json(&d));
    }
    println!(
        "{} deployment {} of {} serving {}:{}{}",
        if replace { "updated" } else { "created" },
        d.spec.name,
        d.endpoint,
        d.model_name,
        d.model_version,
        if all_traffic {
            ", with all of its traffic"
        } else {
            ""
        }
    );
    Ok(())
}
