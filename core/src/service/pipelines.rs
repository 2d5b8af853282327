//! The designer's background work: the palette (registered components, data assets, saved
//! pipelines), opening, saving and exporting pipelines, and running one as a job whose progress
//! events stream to the canvas.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Event, Failure, Reply, Shared};
use crate::assets::Asset;
use crate::pipeline::executor::{self, RunOptions};
use crate::pipeline::job::{self, Pipeline};
use crate::pipeline::registry::{self, Registered};
use crate::pipeline::saved::{self, Saved};

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

pub(super) fn palette(shared: &Shared) -> Event {
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
    Event::Palette(reply)
}

pub(super) fn open(shared: &Shared, source: &PipelineSource) -> Event {
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
    Event::PipelineOpened(reply)
}

pub(super) fn save(shared: &Shared, name: &str, pipeline: &Pipeline) -> Event {
    let reply = saved::save(shared.tracking(), name, pipeline)
        .map(|version| Arc::new((name.to_owned(), version)))
        .map_err(Failure::from);
    Event::PipelineSaved(reply)
}

pub(super) fn export(pipeline: &Pipeline, path: &Path) -> Event {
    let reply: Reply<PathBuf> = std::fs::write(path, pipeline.to_yaml())
        .map(|()| Arc::new(path.to_path_buf()))
        .map_err(|e| Failure::from(format!("{}: {e}", path.display())));
    Event::PipelineExported(reply)
}

/// Runs the pipeline on the job's thread; progress goes out as events as it happens.
pub(super) fn run(
    shared: &Shared,
    pipeline: &Pipeline,
    base: &Path,
    tracking_uri: Option<String>,
    cancel: &std::sync::atomic::AtomicBool,
) -> Event {
    let tracking = shared.tracking();
    let experiment = pipeline
        .experiment_name
        .clone()
        .or_else(|| pipeline.display_name.clone())
        .unwrap_or_else(|| "pipelines".into());
    let mut options = RunOptions::new(&experiment);
    options.tracking_uri = tracking_uri;
    let observe = |event| shared.emit(Event::PipelineProgress(event));
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
    Event::PipelineFinished(reply)
}
