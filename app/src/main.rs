//! The `lathe` binary: with no subcommand it opens the desktop window; with one it runs that
//! command headless. The only crate that parses arguments and starts eframe.

mod batch_cli;
mod cli;
mod compute_cli;
mod datastore_cli;
mod drift_cli;
mod endpoint_cli;
mod endpoints_server;
mod gui;
mod label_cli;
mod monitor_cli;
mod output;
mod pipeline_cli;
mod promotion_cli;
mod server;
mod sync_cli;
mod tracking_cli;

use std::path::PathBuf;

/// mimalloc hands freed memory back to the system within milliseconds; glibc's allocator keeps
/// it in per-thread arenas, so a server that handled a burst of requests stayed hundreds of MB
/// large while idle.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "lathe",
    version,
    about = "A local-first workbench for the machine-learning lifecycle"
)]
struct Args {
    /// The workspace folder (default: LATHE_WORKSPACE, else the platform's data folder).
    #[arg(long, global = true, env = "LATHE_WORKSPACE", value_name = "DIR")]
    workspace: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<cli::Command>,
}

fn main() -> std::process::ExitCode {
    // Output piped into `head` and the like ends when the reader stops reading, as other
    // command-line tools do, instead of panicking over the closed pipe.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .payload_as_str()
            .is_some_and(|m| m.contains("Broken pipe"))
        {
            std::process::exit(141);
        }
        report(info);
    }));
    // A script that asked for JSON gets its errors as JSON too, on stdout where it reads.
    let json = std::env::args_os().any(|a| a == "--json");
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if json && e.use_stderr() => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let message = first.strip_prefix("error: ").unwrap_or(first);
            println!("{}", serde_json::json!({ "error": message }));
            return std::process::ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<drift_cli::Drifted>().is_some() => {
            eprintln!("drift: {e}");
            std::process::ExitCode::from(3)
        }
        Err(e) if json && e.downcast_ref::<cli::Reported>().is_none() => {
            println!("{}", serde_json::json!({ "error": one_line(&e) }));
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let (root, is_default) = match args.workspace {
        Some(dir) => (dir, false),
        None => (default_workspace()?, true),
    };
    match args.command {
        None => gui::run(&root, is_default),
        Some(command) => cli::run(&root, command),
    }
}

/// The platform's data folder for Lathe, e.g. `~/.local/share/lathe/workspace` on Linux.
fn default_workspace() -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "lathe")
        .context("cannot find the home folder for a default workspace; pass --workspace DIR")?;
    Ok(dirs.data_dir().join("workspace"))
}

/// An error and its causes on one line, as the CLI promises.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}
