//! `lathe datastore` (S3-compatible object stores: create, update, show, list, check, delete).

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use lathe_core::Store;
use lathe_core::datastores::{self, Datastore, DatastoreSpec};

use crate::cli::{Output, print_json, read_text};

#[derive(Debug, Subcommand)]
pub enum DatastoreCommand {
    /// Add a datastore from its YAML (type s3: endpoint_url, bucket, prefix, region, and the
    /// names of the variables or the profile holding its credentials — never the secrets).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Replace a datastore's YAML (the YAML names it).
    Update {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// A datastore's settings (--yaml: its YAML).
    Show {
        name: String,
        #[arg(long, conflicts_with = "json")]
        yaml: bool,
        #[command(flatten)]
        output: Output,
    },
    /// The datastores.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Check a datastore works: credentials found, endpoint reachable, bucket there, listing
    /// allowed.
    Check {
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Forget a datastore (its bucket is not touched).
    Delete { name: String },
}

pub fn datastore(store: &Store, command: DatastoreCommand) -> Result<()> {
    match command {
        DatastoreCommand::Create { file, output } => {
            let spec = DatastoreSpec::from_yaml(&read_text(&file)?)?;
            report(&datastores::put(store, &spec, false)?, "created", &output)?;
        }
        DatastoreCommand::Update { file, output } => {
            let spec = DatastoreSpec::from_yaml(&read_text(&file)?)?;
            report(&datastores::put(store, &spec, true)?, "updated", &output)?;
        }
        DatastoreCommand::Show { name, yaml, output } => {
            let d = datastores::get(store, &name)?;
            if yaml {
                print!("{}", d.spec.to_yaml());
            } else if output.json {
                print_json(&d)?;
            } else {
                println!(
                    "{}: {} at {}",
                    d.spec.name,
                    d.spec.location(),
                    d.spec.endpoint()
                );
                println!("  region: {}", d.spec.region);
                println!("  credentials: {}", credentials(&d.spec));
                if let Some(text) = &d.spec.description {
                    println!("  {text}");
                }
            }
        }
        DatastoreCommand::List { output } => {
            let all = datastores::list(store)?;
            if output.json {
                print_json(&all)?;
            } else if all.is_empty() {
                println!("no datastores; add one with `lathe datastore create -f s3.yml`");
            } else {
                println!("{:<24} {:<40} ENDPOINT", "NAME", "LOCATION");
                for d in &all {
                    println!(
                        "{:<24} {:<40} {}",
                        d.spec.name,
                        d.spec.location(),
                        d.spec.endpoint()
                    );
                }
            }
        }
        DatastoreCommand::Check { name, output } => {
            let report = datastores::check(store, &name)?;
            if output.json {
                print_json(&report)?;
            } else {
                println!(
                    "{}: {} at {} answered in {} ms; credentials from {} accepted; {}",
                    report.name,
                    report.location,
                    report.endpoint,
                    report.latency_ms,
                    report.credentials,
                    if report.has_objects {
                        "it holds objects"
                    } else {
                        "it is empty"
                    }
                );
            }
        }
        DatastoreCommand::Delete { name } => {
            datastores::delete(store, &name)?;
            println!("deleted datastore {name} (its bucket is untouched)");
        }
    }
    Ok(())
}

fn report(saved: &Datastore, done: &str, output: &Output) -> Result<()> {
    if output.json {
        print_json(saved)
    } else {
        println!(
            "{done} datastore {}: {} at {}; `lathe datastore check {}` tries it",
            saved.spec.name,
            saved.spec.location(),
            saved.spec.endpoint(),
            saved.spec.name
        );
        Ok(())
    }
}

/// Where a datastore's credentials come from, in words.
fn credentials(spec: &DatastoreSpec) -> String {
    let c = &spec.credentials;
    match (&c.access_key_id_env, &c.secret_access_key_env, &c.profile) {
        (Some(key), Some(secret), _) => format!("${key} and ${secret}"),
        (_, _, Some(profile)) => format!("profile '{profile}'"),
        _ => "AWS's default chain (AWS_ACCESS_KEY_ID…, then AWS_PROFILE or default)".into(),
    }
}
