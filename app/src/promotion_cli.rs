//! `lathe models policy|promote|decisions`: a registered model's promotion policy, the gates a
//! version must pass before an alias moves to it, approvals, and the decisions on record. A
//! refused promotion exits non-zero, so a CI job can use `promote` as its gate.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use lathe_core::format;
use lathe_core::promotion::{self, Evaluation};
use lathe_core::store::Store;

use crate::cli::{Output, Reported, print_json, read_text};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Set the promotion policy of the model the YAML names.
    Set {
        file: PathBuf,
        #[command(flatten)]
        output: Output,
    },
    /// Show a model's promotion policy, as written.
    Show {
        name: String,
        #[command(flatten)]
        output: Output,
    },
}

pub fn policy(store: &Store, command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::Set { file, output } => {
            let text = read_text(&file)?;
            let policy = promotion::set_policy(store, &text)
                .with_context(|| format!("{}", file.display()))?;
            if output.json {
                return print_json(&policy);
            }
            println!(
                "promotion policy of {} set from {}",
                policy.model,
                file.display()
            );
            Ok(())
        }
        PolicyCommand::Show { name, output } => {
            let Some((policy, text)) = promotion::policy(store, &name)? else {
                bail!(
                    "{name} has no promotion policy; set one with `lathe models policy set FILE`"
                );
            };
            if output.json {
                return print_json(&policy);
            }
            print!("{text}");
            Ok(())
        }
    }
}

/// Arguments of `lathe models promote`.
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The version to promote: NAME:VERSION.
    pub reference: String,
    /// The alias to move when every gate passes.
    #[arg(long, default_value = "production")]
    pub alias: String,
    /// Record your approval first (as --approver, or your login name).
    #[arg(long)]
    pub approve: bool,
    /// Why you approve.
    #[arg(long, default_value = "", requires = "approve")]
    pub comment: String,
    /// Who approves and decides (default: your login name).
    #[arg(long)]
    pub approver: Option<String>,
    /// Check the gates and print them, changing and recording nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: Output,
}

pub fn promote(store: &Store, args: PromoteArgs) -> Result<()> {
    let Some((model, version)) = args.reference.split_once(':') else {
        bail!("'{}': give the version as NAME:VERSION", args.reference);
    };
    let who = args
        .approver
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(promotion::current_user);
    if args.approve {
        promotion::approve(store, model, version, &args.alias, &who, &args.comment)?;
        if !args.output.json {
            println!("approved {model}:{version} for @{} as {who}", args.alias);
        }
    }
    let (evaluation, promoted) = if args.dry_run {
        let evaluation = promotion::evaluate(store, model, version, &args.alias)?;
        (evaluation, None)
    } else {
        let decision = promotion::promote(store, model, version, &args.alias, &who)?;
        (decision.evaluation, Some(decision.promoted))
    };
    if args.output.json {
        print_json(&serde_json::json!({
            "evaluation": evaluation,
            "passed": evaluation.passed(),
            "promoted": promoted,
        }))?;
    } else {
        print_gates(&evaluation);
    }
    let failing = evaluation.gates.iter().filter(|g| !g.passed).count();
    let (model, alias) = (&evaluation.model, &evaluation.alias);
    let refusal = match promoted {
        Some(true) => {
            if !args.output.json {
                println!("{model}@{alias} → version {version}");
            }
            return Ok(());
        }
        None if evaluation.passed() => return Ok(()),
        Some(false) => {
            format!("{model}:{version} was not promoted to @{alias}: {failing} gate(s) failed")
        }
        None => {
            format!("{model}:{version} would not be promoted to @{alias}: {failing} gate(s) fail")
        }
    };
    // The gates are printed already (as JSON under --json): the exit code and one line say it.
    Err(Reported(refusal).into())
}

fn print_gates(evaluation: &Evaluation) {
    println!(
        "{}:{} for @{} (held by {})",
        evaluation.model,
        evaluation.version,
        evaluation.alias,
        evaluation
            .current
            .as_deref()
            .map_or("nobody".to_owned(), |v| format!("version {v}"))
    );
    for gate in &evaluation.gates {
        let mark = if gate.passed { "pass" } else { "FAIL" };
        let mut line = format!("  {mark}  {}: {}", gate.gate, gate.value);
        if !gate.threshold.is_empty() {
            line.push_str(&format!(" (needs {})", gate.threshold));
        }
        if !gate.detail.is_empty() {
            line.push_str(&format!(" — {}", gate.detail));
        }
        println!("{line}");
    }
}

pub fn decisions(store: &Store, name: &str, output: &Output) -> Result<()> {
    let found = promotion::decisions(store, name)?;
    if output.json {
        return print_json(&found);
    }
    if found.is_empty() {
        println!("no promotion decisions for {name}");
    }
    for d in &found {
        println!(
            "{}  {}:{} → @{}  {}  by {}",
            format::timestamp(d.created_at_ms / 1000),
            d.evaluation.model,
            d.evaluation.version,
            d.evaluation.alias,
            if d.promoted { "promoted" } else { "refused" },
            d.decided_by
        );
        for g in d.evaluation.gates.iter().filter(|g| !g.passed) {
            println!("    failed {}: {} {}", g.gate, g.value, g.detail);
        }
    }
    Ok(())
}
