//! A command step on a Ray compute target: its code folder packaged once (by content), its
//! rendered command submitted through the Jobs API with a runtime environment that reproduces
//! the step's — the resolved package list, not a fresh resolution — and its variables, the
//! job's log followed into the step's log, cancel stopping the job.
//!
//! The job reads its inputs and writes its outputs at this machine's paths, so the cluster
//! must be on this machine; staging them through the target's datastore for a cluster
//! elsewhere is not done yet, and such a cluster is refused by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::compute::ComputeSpec;
use crate::compute::ray::{Cluster, Ended, Submission};
use crate::pipeline::environment::Built;
use crate::pipeline::{PipelineError, PipelineResult};

/// What a command step runs, rendered.
pub struct Command<'a> {
    pub step: &'a str,
    pub run_id: &'a str,
    pub line: &'a str,
    /// The step's code folder, when it has one (a snapshot of it).
    pub code: Option<&'a Path>,
    /// The step's variables (inputs, outputs, MLflow's), without the local environment's.
    pub env: &'a [(String, String)],
    pub built: &'a Built,
}

/// Runs a command step on the Ray cluster of `target`.
///
/// # Errors
/// The cluster is not on this machine; it cannot be reached or refuses the job; the job
/// failed (its exit code and last lines) or was stopped; a cancel (`Cancelled`).
pub fn run(
    target: &ComputeSpec,
    command: &Command<'_>,
    log: &(dyn Fn(&str) + Sync),
    cancel: &AtomicBool,
) -> PipelineResult<()> {
    if !on_this_machine(&target.address) {
        return Err(PipelineError::Invalid(format!(
            "compute '{}': the Ray cluster at {} is not on this machine, and a step's inputs \
             and outputs are not yet staged through a datastore for a cluster elsewhere; run \
             the step on a cluster on this machine or on 'local'",
            target.name, target.address
        )));
    }
    let failed =
        |e: crate::Error| PipelineError::Invalid(format!("compute '{}': {e}", target.name));
    let cluster = Cluster::new(target).map_err(failed)?;
    let working_dir = match command.code {
        Some(folder) => Some(cluster.upload_folder(folder).map_err(failed)?),
        None => None,
    };
    let job = Submission {
        entrypoint: command.line.to_owned(),
        working_dir,
        env_vars: command.env.iter().cloned().collect(),
        pip: requirements(&command.built.packages, command.built.bin.is_some()),
        metadata: BTreeMap::from([
            ("lathe.step".to_owned(), command.step.to_owned()),
            ("lathe.run_id".to_owned(), command.run_id.to_owned()),
        ]),
    };
    log(&format!(
        "on compute '{}' (Ray at {})",
        target.name,
        cluster.address()
    ));
    match cluster.run(&job, log, cancel).map_err(failed)? {
        Ok(()) => Ok(()),
        Err(Ended::Cancelled) => Err(PipelineError::Cancelled),
        Err(Ended::Failed(message)) => Err(PipelineError::Invalid(message)),
    }
}

/// The pinned requirements of a built environment (`pip freeze`'s lines), for Ray's `pip`;
/// none for the system's Python, which the cluster has its own of.
fn requirements(packages: &str, built: bool) -> Vec<String> {
    if !built {
        return Vec::new();
    }
    packages
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("-e "))
        .map(str::to_owned)
        .collect()
}

/// Whether an address names this machine (a loopback host).
fn on_this_machine(address: &str) -> bool {
    url::Url::parse(address).is_ok_and(|url| match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_this_machine() {
        for (address, here) in [
            ("http://127.0.0.1:8265", true),
            ("http://localhost:8265", true),
            ("http://[::1]:8265", true),
            ("http://10.0.0.5:8265", false),
            ("https://ray.example.com", false),
        ] {
            assert_eq!(on_this_machine(address), here, "{address}");
        }
    }

    #[test]
    fn a_built_environment_gives_its_pins_and_the_system_none() {
        let frozen = "numpy==2.4.6\n# comment\n-e git+https://x\n\npandas==2.3.3\n";
        assert_eq!(
            requirements(frozen, true),
            ["numpy==2.4.6", "pandas==2.3.3"]
        );
        assert!(requirements(frozen, false).is_empty());
    }
}
