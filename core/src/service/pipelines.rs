//! The designer's background work: the palette (registered components, data assets, saved
//! pipelines), opening, saving and exporting pipelines, schedules, and running a pipeline as a
//! job whose progress events stream to the canvas.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Failure, Reply, Service, Shared};
use crate::assets::Asset;
use crate::pipeline::executor::{self, Outcome, RunOptions};
use crate::pipeline::job::{self, Pipeline};
use crate::pipeline::registry::{self, Registered};
use crate::pipeline::saved::{self, Saved};
use crate::pipeline::schedule::{self, Schedule};

#[derive(Debug, Clone, PartialEq)]
pub enum PipelineCommand {
    /// What the designer's palette offers beyond the built-ins.
    LoadPalette,
    Open(PipelineSource),
    Save {
        name: String,
        pipeline: Pipeline,
    },
    Export {
        pipeline: Pipeline,
        path: PathBuf,
    },
    /// Schedules a saved pipeline (`NAME:VERSION`) on a cron pattern.
    AddSchedule {
        pipeline: String,
        cron: String,
    },
    /// Runs a pipeline as a job; `base` is where its relative paths start.
    Run {
        pipeline: Pipeline,
        base: PathBuf,
        tracking_uri: Option<String>,
    },
}

#[derive(Debug)]
pub enum PipelineEvent {
    Palette(Reply<Palette>),
    Opened(Reply<Opened>),
    /// The name and the new version.
    Saved(Reply<(String, i64)>),
    Exported(Reply<PathBuf>),
    /// A step of the running pipeline moved on.
    Progress(executor::Event),
    Finished(Reply<Outcome>),
    ScheduleAdded(Reply<Schedule>),
    /// A schedule's run ended (or could not start).
    ScheduledRun {
        schedule: Schedule,
        reply: Reply<Outcome>,
    },
}

pub(super) fn handle(service: &Service, command: PipelineCommand) {
    match command {
        PipelineCommand::LoadPalette => service.read(palette),
        PipelineCommand::Open(source) => service.read(move |s| open(s, &source)),
        PipelineCommand::Save { name, pipeline } => {
            service.read(move |s| save(s, &name, &pipeline));
        }
        PipelineCommand::Export { pipeline, path } => {
            service.read(move |_| export(&pipeline, &path));
        }
        PipelineCommand::AddSchedule { pipeline, cron } => service.read(move |s| {
            let reply = schedule::add(s.tracking(), s.store.root(), &pipeline, &cron, None)
                .map(Arc::new)
                .map_err(Failure::from);
            PipelineEvent::ScheduleAdded(reply)
        }),
        PipelineCommand::Run {
            pipeline,
            base,
            tracking_uri,
        } => {
            let label = format!(
                "Running {}",
                pipeline.display_name.as_deref().unwrap_or("pipeline")
            );
            service.job(label, move |shared, _, progress| {
                let event = run(shared, &pipeline, &base, tracking_uri, progress.flag());
                shared.emit(event);
            });
        }
    }
}

#[derive(Debug, Clone)]
pub struct Palette {
    pub registered: Vec<Registered>,
    pub assets: Vec<Asset>,
    pub saved: Vec<Saved>,
}

/// Where a pipeline to open is.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineSource {
    File(PathBuf),
    Saved { name: String, version: i64 },
}

/// An opened pipeline: the folder its relative paths start from, and a title for it.
#[derive(Debug, Clone)]
pub struct Opened {
    pub pipeline: Pipeline,
    pub base: PathBuf,
    pub title: String,
}

fn palette(shared: &Shared) -> PipelineEvent {
    let reply = (|| {
        let tracking = shared.tracking();
        Ok(Arc::new(Palette {
            registered: registry::list(tracking)?,
            assets: shared
                .store
                .workspace()
                .and_then(|ws| ws.list_assets())
                .map_err(Failure::from)?,
            saved: saved::list(tracking)?,
        }))
    })();
    PipelineEvent::Palette(reply)
}

fn open(shared: &Shared, source: &PipelineSource) -> PipelineEvent {
    let reply = (|| {
        let tracking = shared.tracking();
        let root = shared.store.root();
        let opened = match source {
            PipelineSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                // Opened as a draft: what stops it from running shows in the issue list.
                let (pipeline, _) =
                    job::parse_draft(&text, &base, &|r| registry::resolve(tracking, root, r))
                        .map_err(|problems| {
                            let listed: Vec<String> =
                                problems.iter().map(ToString::to_string).collect();
                            format!("{}: {}", path.display(), listed.join("; "))
                        })?;
                Opened {
                    pipeline,
                    base,
                    title: path.display().to_string(),
                }
            }
            PipelineSource::Saved { name, version } => Opened {
                pipeline: saved::open(tracking, root, name, *version)?,
                base: root.to_path_buf(),
                title: format!("{name}:{version}"),
            },
        };
        Ok(Arc::new(opened))
    })();
    PipelineEvent::Opened(reply)
}

fn save(shared: &Shared, name: &str, pipeline: &Pipeline) -> PipelineEvent {
    let reply = saved::save(shared.tracking(), name, pipeline)
        .map(|version| Arc::new((name.to_owned(), version)))
        .map_err(Failure::from);
    PipelineEvent::Saved(reply)
}

fn export(pipeline: &Pipeline, path: &Path) -> PipelineEvent {
    let reply: Reply<PathBuf> = std::fs::write(path, pipeline.to_yaml())
        .map(|()| Arc::new(path.to_path_buf()))
        .map_err(|e| Failure::from(format!("{}: {e}", path.display())));
    PipelineEvent::Exported(reply)
}

/// Runs the pipeline on the job's thread; progress goes out as events as it happens.
fn run(
    shared: &Shared,
    pipeline: &Pipeline,
    base: &Path,
    tracking_uri: Option<String>,
    cancel: &std::sync::atomic::AtomicBool,
) -> PipelineEvent {
    let tracking = shared.tracking();
    let experiment = pipeline
        .experiment_name
        .clone()
        .or_else(|| pipeline.display_name.clone())
        .unwrap_or_else(|| "pipelines".into());
    let mut options = RunOptions::new(&experiment);
    // Unreadable targets leave every step on this machine; the steps' logs say so.
    if let Ok(with) = options.clone().with_targets(&shared.store) {
        options = with;
    }
    options.tracking_uri = tracking_uri;
    let observe = |event| shared.emit(PipelineEvent::Progress(event));
    let reply = executor::run(
        tracking,
        shared.store.root(),
        pipeline,
        base,
        &options,
        cancel,
        &observe,
    )
    .map(Arc::new)
    .map_err(Failure::from);
    PipelineEvent::Finished(reply)
}
