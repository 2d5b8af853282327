//! The pipeline executor. Steps run in dependency order, independent ones in parallel (bounded
//! by `parallelism`); each is a child run of the pipeline's run. A step whose fingerprint —
//! component, code, environment, parameters and the content of its data inputs — matches an
//! earlier successful run reuses that run's outputs instead of running (unless the component
//! is not deterministic). A failed step skips the steps that depend on it; the others go on.
//! Outputs are stored as the step run's artifacts (`outputs/<name>/…`), content-addressed.

pub(crate) mod files;
pub(crate) mod process;
mod ray;
mod step;

use crate::pipeline::{PipelineError, PipelineResult};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde::Serialize;

use super::job::{Binding, Pipeline};
use crate::tracking::Tracking;
use crate::tracking::api::ARTIFACTS_SCHEME;
use crate::tracking::types::RunStatus;

pub use files::tree_hash;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The experiment the runs are logged to (created if new).
    pub experiment: String,
    pub run_name: Option<String>,
    /// Given to command steps as MLFLOW_TRACKING_URI, so their own MLflow logging lands in
    /// their run.
    pub tracking_uri: Option<String>,
    pub parallelism: usize,
    /// Run every step, reusing nothing.
    pub force: bool,
    /// The workspace's Ray compute targets by name ([`RunOptions::with_targets`]); a step
    /// whose compute is none of them runs on this machine, with a notice.
    pub targets: BTreeMap<String, crate::compute::ComputeSpec>,
}

impl RunOptions {
    pub fn new(experiment: &str) -> Self {
        RunOptions {
            experiment: experiment.to_owned(),
            run_name: None,
            tracking_uri: None,
            parallelism: std::thread::available_parallelism().map_or(2, usize::from),
            force: false,
            targets: BTreeMap::new(),
        }
    }

    /// With the compute targets of the workspace at `store`, so steps run where they ask.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn with_targets(mut self, store: &crate::Store) -> crate::Result<Self> {
        self.targets = crate::compute::list(store)?
            .into_iter()
            .filter(|c| !c.built_in)
            .map(|c| (c.spec.name.clone(), c.spec))
            .collect();
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepStatus {
    Queued,
    Running,
    Reused { from_run: String },
    Done,
    Failed { message: String },
    Skipped { reason: String },
    Cancelled,
}

impl StepStatus {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Reused { .. } => "reused",
            Self::Done => "done",
            Self::Failed { .. } => "failed",
            Self::Skipped { .. } => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// Finished with outputs a later step can use.
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Done | Self::Reused { .. })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        run_id: String,
        experiment_id: String,
    },
    Step {
        step: String,
        status: StepStatus,
        run_id: Option<String>,
    },
    Log {
        step: String,
        line: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub name: String,
    pub run_id: Option<String>,
    pub status: StepStatus,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub run_id: String,
    pub experiment_id: String,
    /// Finished, failed or killed, as on the run.
    pub status: RunStatus,
    pub steps: Vec<StepOutcome>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Finished
    }

    pub fn reused(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Reused { .. }))
            .count()
    }
}

/// What a finished (or reused) step produced for one output.
#[derive(Debug, Clone, PartialEq)]
struct Produced {
    hash: String,
    run_id: String,
    artifact_uri: String,
    /// The files on disk, while this pipeline run has them.
    local: Option<PathBuf>,
    /// The data asset versions (`name`, `version`) it was made from, directly or through the
    /// steps before: every run downstream names them in its lineage.
    lineage: Vec<(String, String)>,
}

/// Everything the steps of one pipeline run share.
struct Context<'a> {
    tracking: &'a Tracking,
    base: &'a Path,
    pipeline: &'a Pipeline,
    options: &'a RunOptions,
    cancel: &'a AtomicBool,
    observe: &'a (dyn Fn(Event) + Sync),
    experiment_id: String,
    run_id: String,
    work: PathBuf,
}

fn experiment_id(tracking: &Tracking, name: &str) -> PipelineResult<String> {
    tracking
        .experiment_named(name)
        .map_err(|e| PipelineError::Invalid(format!("experiment '{name}': {e}")))
}

/// Creates a run; returns its id and artifact folder (as an artifact path).
fn create_run(
    tracking: &Tracking,
    experiment_id: &str,
    name: &str,
    tags: &[(&str, String)],
) -> PipelineResult<(String, String)> {
    let run = tracking
        .create_run(crate::tracking::runs::NewRun {
            experiment_id: experiment_id.to_owned(),
            user_id: std::env::var("USER").unwrap_or_default(),
            start_time: Some(crate::db::now_millis()),
            run_name: Some(name.to_owned()),
            tags: tags
                .iter()
                .map(|(key, value)| crate::tracking::types::Tag {
                    key: (*key).to_owned(),
                    value: value.clone(),
                })
                .collect(),
        })
        .map_err(|e| format!("runs/create: {e}"))?;
    let artifacts = run
        .info
        .artifact_uri
        .trim_start_matches(ARTIFACTS_SCHEME)
        .to_owned();
    Ok((run.info.run_id, artifacts))
}

fn end_run(tracking: &Tracking, run_id: &str, status: RunStatus) -> PipelineResult<()> {
    tracking
        .update_run(
            run_id,
            crate::tracking::runs::RunUpdate {
                status: Some(status),
                end_time: Some(crate::db::now_millis()),
                run_name: None,
            },
        )
        .map(|_| ())
        .map_err(|e| PipelineError::Invalid(format!("runs/update: {e}")))
}

/// Runs `pipeline` (imported from a file in `base`) in the workspace at `root`.
pub fn run(
    tracking: &Tracking,
    root: &Path,
    pipeline: &Pipeline,
    base: &Path,
    options: &RunOptions,
    cancel: &AtomicBool,
    observe: &(dyn Fn(Event) + Sync),
) -> PipelineResult<Outcome> {
    let experiment_id = experiment_id(tracking, &options.experiment)?;
    let name = options
        .run_name
        .clone()
        .or_else(|| pipeline.display_name.clone())
        .unwrap_or_else(|| "pipeline".into());
    let (run_id, artifacts) = create_run(
        tracking,
        &experiment_id,
        &name,
        &[("lathe.pipeline", pipeline.steps.len().to_string())],
    )?;
    observe(Event::Started {
        run_id: run_id.clone(),
        experiment_id: experiment_id.clone(),
    });
    let yaml = pipeline.to_yaml();
    tracking.put_artifact(&format!("{artifacts}/pipeline.yaml"), &mut yaml.as_bytes())?;
    let params: Vec<(String, String)> = pipeline
        .inputs
        .iter()
        .filter_map(|(n, b)| match b {
            Binding::Literal(v) => Some((n.clone(), v.clone())),
            _ => None,
        })
        .collect();
    super::builtins::log_batch(tracking, &run_id, &[], &params)?;
    let context = Context {
        tracking,
        base,
        pipeline,
        options,
        cancel,
        observe,
        experiment_id: experiment_id.clone(),
        work: root.join("work").join(&run_id),
        run_id: run_id.clone(),
    };
    let steps = schedule(&context);
    let _ = std::fs::remove_dir_all(&context.work);
    let status = if steps.iter().all(|s| s.status.succeeded()) {
        RunStatus::Finished
    } else if cancel.load(Ordering::Relaxed) {
        RunStatus::Killed
    } else {
        RunStatus::Failed
    };
    let reused = steps
        .iter()
        .filter(|s| matches!(s.status, StepStatus::Reused { .. }))
        .count();
    tracking
        .set_run_tag(&run_id, "lathe.steps_reused", &reused.to_string())
        .map_err(|e| format!("runs/set-tag: {e}"))?;
    end_run(tracking, &run_id, status)?;
    Ok(Outcome {
        run_id,
        experiment_id,
        status,
        steps,
    })
}

/// Runs the steps in dependency order; returns each step's outcome, in the pipeline's order.
fn schedule(cx: &Context<'_>) -> Vec<StepOutcome> {
    let steps = &cx.pipeline.steps;
    let deps = super::job::dependencies(steps);
    let mut outcomes: Vec<StepOutcome> = steps
        .iter()
        .map(|s| StepOutcome {
            name: s.name.clone(),
            run_id: None,
            status: StepStatus::Queued,
            seconds: 0.0,
        })
        .collect();
    for s in steps {
        (cx.observe)(Event::Step {
            step: s.name.clone(),
            status: StepStatus::Queued,
            run_id: None,
        });
    }
    let mut produced: Vec<BTreeMap<String, Produced>> = vec![BTreeMap::new(); steps.len()];
    let mut started: Vec<Option<Instant>> = vec![None; steps.len()];
    let set = |outcomes: &mut Vec<StepOutcome>, i: usize, status: StepStatus| {
        (cx.observe)(Event::Step {
            step: steps[i].name.clone(),
            status: status.clone(),
            run_id: outcomes[i].run_id.clone(),
        });
        outcomes[i].status = status;
    };
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel();
        let mut running = 0;
        loop {
            let mut launched = true;
            while launched && !cx.cancel.load(Ordering::Relaxed) {
                launched = false;
                for i in 0..steps.len() {
                    if running >= cx.options.parallelism.max(1) {
                        break;
                    }
                    let ready = outcomes[i].status == StepStatus::Queued
                        && deps[i].iter().all(|d| outcomes[*d].status.succeeded());
                    if !ready {
                        continue;
                    }
                    launched = true;
                    started[i] = Some(Instant::now());
                    let upstream: BTreeMap<String, BTreeMap<String, Produced>> = deps[i]
                        .iter()
                        .map(|d| (steps[*d].name.clone(), produced[*d].clone()))
                        .collect();
                    match step::prepare(cx, &steps[i], &upstream) {
                        Err(message) => {
                            fail(cx, &mut outcomes, &deps, i, message.to_string(), &set);
                        }
                        Ok(step::Prepared::Reused {
                            run_id,
                            from_run,
                            outputs,
                        }) => {
                            outcomes[i].run_id = Some(run_id);
                            produced[i] = outputs;
                            set(&mut outcomes, i, StepStatus::Reused { from_run });
                        }
                        Ok(step::Prepared::Run(job)) => {
                            outcomes[i].run_id = Some(job.run_id.clone());
                            set(&mut outcomes, i, StepStatus::Running);
                            running += 1;
                            let done_tx = done_tx.clone();
                            scope.spawn(move || {
                                let result = step::execute(cx, &job);
                                let _ = done_tx.send((i, result));
                            });
                        }
                    }
                    outcomes[i].seconds = started[i].map_or(0.0, |t| t.elapsed().as_secs_f64());
                }
            }
            if running == 0 {
                break;
            }
            let Ok((i, result)) = done_rx.recv() else {
                break;
            };
            running -= 1;
            outcomes[i].seconds = started[i].map_or(0.0, |t| t.elapsed().as_secs_f64());
            match result {
                Ok(outputs) => {
                    produced[i] = outputs;
                    set(&mut outcomes, i, StepStatus::Done);
                }
                Err(_) if cx.cancel.load(Ordering::Relaxed) => {
                    set(&mut outcomes, i, StepStatus::Cancelled);
                }
                Err(message) => fail(cx, &mut outcomes, &deps, i, message.to_string(), &set),
            }
        }
    });
    for (i, step) in steps.iter().enumerate() {
        if outcomes[i].status.succeeded() {
            register_outputs(cx, step, &produced[i], outcomes[i].run_id.as_deref());
        }
    }
    for i in 0..steps.len() {
        if outcomes[i].status == StepStatus::Queued {
            let status = if cx.cancel.load(Ordering::Relaxed) {
                StepStatus::Cancelled
            } else {
                StepStatus::Skipped {
                    reason: "an earlier step did not finish".into(),
                }
            };
            set(&mut outcomes, i, status);
        }
    }
    outcomes
}

/// Records each table a step gives to a pipeline output (`${{parent.outputs.x}}`) as a version
/// of the data asset `x`, its source naming the run, step and output (content already stored
/// is found, not stored again). Other outputs stay the step run's artifacts.
fn register_outputs(
    cx: &Context<'_>,
    step: &super::job::Step,
    produced: &BTreeMap<String, Produced>,
    run_id: Option<&str>,
) {
    let log = |line: String| {
        (cx.observe)(Event::Log {
            step: step.name.clone(),
            line,
        });
    };
    for (output, binding) in &step.outputs {
        let (Binding::ParentOutput(asset), Some(made)) = (binding, produced.get(output)) else {
            continue;
        };
        let local = match &made.local {
            Some(local) => local.clone(),
            None => {
                let dest = cx.work.join(&step.name).join("outputs").join(output);
                let dir = made.artifact_uri.trim_start_matches(ARTIFACTS_SCHEME);
                if let Err(e) = files::unpack(cx.tracking, dir, &dest) {
                    log(format!(
                        "output {output}: not registered as a data asset: {e}"
                    ));
                    continue;
                }
                dest
            }
        };
        let Ok(table) = super::builtins::table_file(&local) else {
            continue;
        };
        let request = crate::import::ImportRequest {
            path: table,
            name: asset.clone(),
            source_label: Some(format!(
                "pipeline run {}, step {}, output {output}",
                cx.run_id, step.name
            )),
            ..Default::default()
        };
        let imported = cx.tracking.store().workspace().and_then(|mut ws| {
            crate::import::import(&mut ws, &request, &crate::jobs::Progress::default())
        });
        match imported {
            Ok(outcome) => {
                let reference = outcome.version.reference();
                log(format!("output {output} is data asset {reference}"));
                if let Some(run_id) = run_id {
                    let key = format!("lathe.output.{output}");
                    if let Err(e) = cx.tracking.set_run_tag(run_id, &key, &reference) {
                        log(format!("output {output}: the run's tag was not set: {e}"));
                    }
                }
            }
            Err(e) => log(format!(
                "output {output}: not registered as a data asset: {e}"
            )),
        }
    }
}

/// Marks step `i` failed and every step downstream of it skipped.
fn fail(
    cx: &Context<'_>,
    outcomes: &mut Vec<StepOutcome>,
    deps: &[Vec<usize>],
    i: usize,
    message: String,
    set: &impl Fn(&mut Vec<StepOutcome>, usize, StepStatus),
) {
    let name = cx.pipeline.steps[i].name.clone();
    set(outcomes, i, StepStatus::Failed { message });
    let mut frontier = vec![i];
    while let Some(failed) = frontier.pop() {
        for (j, d) in deps.iter().enumerate() {
            if d.contains(&failed) && outcomes[j].status == StepStatus::Queued {
                set(
                    outcomes,
                    j,
                    StepStatus::Skipped {
                        reason: format!("step '{name}' failed"),
                    },
                );
                frontier.push(j);
            }
        }
    }
}
