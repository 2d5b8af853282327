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

pub(crate) fn print_report(report: &Report, push: bool) {
    for item in &report.items {
        let mapped = item
            .moved_to(push)
            .map(|m| format!(" {m}"))
            .unwrap_or_default();
        let note = item
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!("{:>12}  {}{mapped}{note}", item.outcome_word(), item.label);
    }
    println!("{}", report.summary(push));
    let skipped = report.count(Outcome::Skipped);
    if skipped > 0 {
        println!(
            "{skipped} skipped: see {} above",
            if skipped == 1 { "why" } else { "the reasons" }
        );
    }
}
