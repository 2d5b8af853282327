//! `lathe sync push|pull`: data assets, runs and models to and from a datastore.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use clap::{Args, Subcommand};
use lathe_core::Store;
use lathe_core::jobs::Progress;
use lathe_core::sync::{self, Outcome, Report, Selection};

use crate::cli::{Output, print_json};

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Send data asset versions, runs (every metric point, their artifacts) and model versions
    /// to a datastore; blobs it has are not sent again, and a broken push resumes.
    Push {
        /// The datastore (see `lathe datastore create`).
        #[arg(long = "to", value_name = "DATASTORE")]
        datastore: String,
        #[command(flatten)]
        what: What,
    },
    /// Bring what a datastore holds into this workspace: a version whose content is here maps
    /// to it, others take the next local number; nothing here is changed.
    Pull {
        /// The datastore (see `lathe datastore create`).
        #[arg(long = "from", value_name = "DATASTORE")]
        datastore: String,
        #[command(flatten)]
        what: What,
    },
}

/// What to sync: everything when nothing is named.
#[derive(Debug, Args)]
pub struct What {
    /// Data assets, NAME (every version) or NAME:VERSION.
    #[arg(long, num_args = 1.., value_name = "ASSET")]
    assets: Vec<String>,
    /// Runs by id.
    #[arg(long, num_args = 1.., value_name = "RUN_ID")]
    runs: Vec<String>,
    /// Every run of these experiments.
    #[arg(long, num_args = 1.., value_name = "EXPERIMENT")]
    experiments: Vec<String>,
    /// Registered models, NAME (every version) or NAME:VERSION.
    #[arg(long, num_args = 1.., value_name = "MODEL")]
    models: Vec<String>,
    /// Requests in flight at once (1 to 64).
    #[arg(long, default_value_t = sync::THREADS as u16, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    #[command(flatten)]
    output: Output,
}

pub fn sync(store: &Store, command: SyncCommand) -> Result<()> {
    let (push, datastore, what) = match command {
        SyncCommand::Push { datastore, what } => (true, datastore, what),
        SyncCommand::Pull { datastore, what } => (false, datastore, what),
    };
    let selection = Selection {
        assets: what.assets,
        runs: what.runs,
        experiments: what.experiments,
        models: what.models,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    crate::output::on_ctrl_c(interrupted.clone());
    let progress = Progress::default();
    let report = crate::output::with_bar(&progress, Some(&interrupted), |progress| {
        if push {
            sync::push(
                store,
                &datastore,
                &selection,
                usize::from(what.parallel),
                progress,
            )
        } else {
            sync::pull(
                store,
                &datastore,
                &selection,
                usize::from(what.parallel),
                progress,
            )
        }
    })?;
    if what.output.json {
        return print_json(&report);
    }
    print_report(&report, push);
    Ok(())
}

fn print_report(report: &Report, push: bool) {
    for item in &report.items {
        let outcome = match item.outcome {
            Outcome::Sent => "sent",
            Outcome::Unchanged => "unchanged",
            Outcome::Created => "created",
            Outcome::AlreadyHere => "already here",
            Outcome::Updated => "updated",
            Outcome::Skipped => "skipped",
        };
        // Where it is on the other side, when its name there differs.
        let (other, side) = if push {
            (item.remote.as_deref(), "there")
        } else {
            (item.local.as_deref(), "here")
        };
        let mapped = other
            .filter(|o| {
                !item.label.ends_with(&format!(" {o}")) && !item.label.contains(&format!(" {o} "))
            })
            .map(|o| format!(" → {o} {side}"))
            .unwrap_or_default();
        let note = item
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!("{outcome:>12}  {}{mapped}{note}", item.label);
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let (done, verb, direction, blobs_verb, present) = if push {
        (
            report.count(Outcome::Sent),
            "sent",
            "to",
            "sent",
            "already there",
        )
    } else {
        (
            report.count(Outcome::Created) + report.count(Outcome::Updated),
            "recorded",
            "from",
            "fetched",
            "already here",
        )
    };
    println!(
        "{done} of {} {verb} {direction} {}; {} ({}) {blobs_verb}, {} {present}; {:.1} s",
        plural(report.items.len(), "item", "items"),
        report.location,
        plural(report.blobs_moved, "blob", "blobs"),
        lathe_core::format::bytes(report.bytes_moved as i64),
        plural(report.blobs_present, "blob", "blobs"),
        report.seconds
    );
    let skipped = report.count(Outcome::Skipped);
    if skipped > 0 {
        println!(
            "{} skipped: see the reasons above",
            plural(skipped, "item", "items")
        );
    }
}
