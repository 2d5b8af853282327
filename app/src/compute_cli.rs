//! `lathe compute` (compute targets: the built-in `local`, Ray clusters: create, update, show,
//! list, check, delete).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use lathe_core::Store;
use lathe_core::compute::{self, Compute, ComputeSpec};

use crate::cli::{Output, print_json, read_text};

#[derive(Debug, Subcommand)]
pub enum ComputeCommand {
    /// Add a compute target from its YAML (type ray: the Jobs API's address, optional
    /// token_env and headers naming variables, default resources, a datastore for staging).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Replace a compute target's YAML (the YAML names it).
    Update {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// A compute target's settings (--yaml: its YAML).
    Show {
        name: String,
        #[arg(long, conflicts_with = "json")]
        yaml: bool,
        #[command(flatten)]
        output: Output,
    },
    /// The compute targets, `local` (this machine) first.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Check a target answers: Ray's version and the cluster's nodes, CPUs, GPUs and memory.
    Check {
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Forget a compute target (the cluster is not touched).
    Delete { name: String },
}

pub fn compute(store: &Store, command: ComputeCommand) -> Result<()> {
    match command {
        ComputeCommand::Create { file, output } => {
            let spec = ComputeSpec::from_yaml(&read_text(&file)?)?;
            report(&compute::put(store, &spec, false)?, "created", &output)?;
        }
        ComputeCommand::Update { file, output } => {
            let spec = ComputeSpec::from_yaml(&read_text(&file)?)?;
            report(&compute::put(store, &spec, true)?, "updated", &output)?;
        }
        ComputeCommand::Show { name, yaml, output } => {
            let c = compute::get(store, &name)?;
            if yaml {
                print!("{}", c.spec.to_yaml());
            } else if output.json {
                print_json(&c)?;
            } else {
                println!("{}: {}", c.spec.name, place(&c));
                if let Some(variable) = &c.spec.token_env {
                    println!("  token: ${variable}");
                }
                for (header, variable) in &c.spec.headers {
                    println!("  header {header}: ${variable}");
                }
                let r = &c.spec.resources;
                if let Some(cpus) = r.num_cpus {
                    println!("  num_cpus: {cpus}");
                }
                if let Some(gpus) = r.num_gpus {
                    println!("  num_gpus: {gpus}");
                }
                if let Some(memory) = &r.memory
                    && let Ok(bytes) = memory.bytes()
                {
                    println!("  memory: {}", lathe_core::format::bytes(bytes as i64));
                }
                if let Some(datastore) = &c.spec.datastore {
                    println!("  datastore: {datastore}");
                }
                if let Some(text) = &c.spec.description {
                    println!("  {text}");
                }
            }
        }
        ComputeCommand::List { output } => {
            let all = compute::list(store)?;
            if output.json {
                print_json(&all)?;
            } else {
                println!("{:<24} {:<6} WHERE", "NAME", "TYPE");
                for c in &all {
                    println!("{:<24} {:<6} {}", c.spec.name, c.spec.kind, place(c));
                }
                if all.len() == 1 {
                    println!("add a Ray cluster with `lathe compute create -f ray.yml`");
                }
            }
        }
        ComputeCommand::Check { name, output } => {
            let r = compute::check(store, &name)?;
            if output.json {
                print_json(&r)?;
            } else if r.kind == "local" {
                println!(
                    "local: this machine, {} CPUs, {}",
                    r.cpus,
                    lathe_core::format::bytes(r.memory_bytes as i64)
                );
            } else {
                println!(
                    "{}: Ray {} answered in {} ms; {} node{}, {} CPUs ({} free), {} GPUs, {} memory",
                    r.name,
                    r.version,
                    r.latency_ms,
                    r.nodes,
                    if r.nodes == 1 { "" } else { "s" },
                    r.cpus,
                    r.cpus_free,
                    r.gpus,
                    lathe_core::format::bytes(r.memory_bytes as i64)
                );
                for warning in &r.warnings {
                    println!("  warning: {warning}");
                }
            }
        }
        ComputeCommand::Delete { name } => {
            compute::delete(store, &name)?;
            println!("deleted compute target {name} (the cluster is untouched)");
        }
    }
    Ok(())
}

fn place(c: &Compute) -> String {
    if c.built_in {
        "this machine".into()
    } else {
        format!("Ray at {}", c.spec.address)
    }
}

fn report(saved: &Compute, done: &str, output: &Output) -> Result<()> {
    if output.json {
        print_json(saved)
    } else {
        println!(
            "{done} compute target {}: {}; `lathe compute check {}` tries it",
            saved.spec.name,
            place(saved),
            saved.spec.name
        );
        Ok(())
    }
}
