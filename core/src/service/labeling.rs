//! The annotator's background work: projects with their counts, item lists by filter, an item
//! with its image (decoded at up to 4096 px a side) or text and its latest shapes, and
//! submitting and reviewing.

use std::sync::Arc;

use super::{Event, Failure, Reply, Shared};
use crate::assets::{Asset, AssetKind};
use crate::images::{self, Thumbnail};
use crate::jobs::Progress;
use crate::labeling::project::{self, Filter, Item, Project, Stats, Submission};
use crate::labeling::{Extent, Shape, Task, labels_from_names};
use crate::workspace::Workspace;

/// Images are shown at most this many pixels a side (a 12-megapixel photo fits).
const MAX_SIDE: u32 = 4096;

/// One item, ready to annotate.
#[derive(Debug, Clone)]
pub struct ItemView {
    pub item: Item,
    pub extent: Extent,
    pub image: Option<Arc<Thumbnail>>,
    pub text: Option<String>,
    pub latest: Option<Submission>,
    /// A model's pre-label for the item: the model and its shapes (with confidences).
    pub prediction: Option<(String, Vec<Shape>)>,
}

fn reply<T>(result: crate::Result<T>) -> Reply<T> {
    result.map(Arc::new).map_err(Failure::from)
}

/// The projects with their counts, and the image and text assets a new one could label.
#[derive(Debug, Clone)]
pub struct Projects {
    pub projects: Vec<(Project, Stats)>,
    pub assets: Vec<Asset>,
}

pub(super) fn projects(shared: &Shared) -> Event {
    Event::LabelProjects(reply(shared.store.workspace().and_then(|ws| {
        let projects = project::list(&ws)?
            .into_iter()
            .map(|p| {
                let stats = project::stats(&ws, &p)?;
                Ok((p, stats))
            })
            .collect::<crate::Result<Vec<(Project, Stats)>>>()?;
        let assets = ws
            .list_assets()?
            .into_iter()
            .filter(|a| a.kind != AssetKind::Table)
            .collect();
        Ok(Projects { projects, assets })
    })))
}

pub(super) fn create(
    shared: &Shared,
    name: &str,
    task: Task,
    asset: &str,
    labels: &[String],
) -> Event {
    let result = shared.store.workspace().and_then(|mut ws| {
        let asset = asset.parse()?;
        project::create(&mut ws, name, task, &asset, labels_from_names(labels), 1)
    });
    Event::LabelProjectCreated(reply(result))
}

pub(super) fn items(shared: &Shared, name: &str, filter: &Filter) -> Event {
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        project::items(&ws, &p, filter)
    });
    Event::LabelItems {
        project: name.to_owned(),
        filter: filter.clone(),
        reply: reply(result),
    }
}

pub(super) fn item(shared: &Shared, name: &str, position: i64) -> Event {
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        let item = project::items(&ws, &p, &Filter::default())?
            .into_iter()
            .find(|i| i.position == position)
            .ok_or_else(|| {
                crate::Error::Label(format!("project '{name}' has no item {position}"))
            })?;
        let extent = project::extent(&ws, &p, position)?;
        let (image, text) = match extent {
            Extent::Image { .. } => {
                let files = ws.version_files(p.version_id)?;
                let file = &files[position as usize];
                let decoded = images::thumbnail(&ws.blobs().path(&file.blob_hash), MAX_SIDE)?;
                (Some(Arc::new(decoded)), None)
            }
            Extent::Text { .. } => {
                let version = ws.version_by_id(p.version_id)?;
                let texts = crate::text::items(&ws, &version)?;
                (None, texts.into_iter().nth(position as usize))
            }
        };
        Ok(ItemView {
            prediction: crate::labeling::assist::prediction(&ws, &p, position)?,
            latest: project::latest(&ws, &p, position)?,
            item,
            extent,
            image,
            text,
        })
    });
    Event::LabelItem {
        project: name.to_owned(),
        position,
        reply: reply(result),
    }
}

pub(super) fn submit(
    shared: &Shared,
    name: &str,
    position: i64,
    shapes: &[Shape],
    source: &str,
) -> Event {
    let annotator = std::env::var("USER").unwrap_or_else(|_| "annotator".into());
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        project::submit(&ws, &p, position, &annotator, shapes, source)
    });
    Event::LabelSubmitted {
        project: name.to_owned(),
        position,
        reply: reply(result),
    }
}

pub(super) fn prelabel(
    shared: &Shared,
    ws: &Workspace,
    name: &str,
    threshold: f64,
    model: Option<&str>,
    progress: &Progress,
) -> Event {
    let result = project::open(ws, name).and_then(|p| match model {
        Some(model) => {
            let tracking = shared.tracking();
            crate::labeling::onnx_assist::prelabel(ws, tracking, &p, model, threshold, progress)
        }
        None => crate::labeling::assist::prelabel(ws, &p, threshold, progress),
    });
    Event::Prelabeled {
        project: name.to_owned(),
        reply: reply(result),
    }
}

pub(super) fn review(
    shared: &Shared,
    name: &str,
    position: i64,
    accepted: bool,
    comment: &str,
) -> Event {
    let reviewer = std::env::var("USER").unwrap_or_else(|_| "reviewer".into());
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        project::review(&ws, &p, position, &reviewer, accepted, comment)
    });
    Event::LabelReviewed {
        project: name.to_owned(),
        position,
        reply: reply(result),
    }
}

pub(super) fn export(
    shared: &Shared,
    name: &str,
    format: crate::labeling::LabelFormat,
    path: &std::path::Path,
) -> Event {
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        let exported = crate::labeling::export(&ws, &p, format, path)?;
        Ok(format!(
            "Exported {exported} of {name} as {format} to {}",
            path.display()
        ))
    });
    Event::LabelsExported(reply(result))
}

pub(super) fn export_asset(shared: &Shared, name: &str, asset: &str) -> Event {
    let result = shared.store.workspace().and_then(|mut ws| {
        let p = project::open(&ws, name)?;
        let (version, created) = crate::labeling::dataset::export_asset(&mut ws, &p, asset)?;
        Ok(if created {
            format!(
                "Recorded data asset {} ({} rows)",
                version.reference(),
                version.item_count
            )
        } else {
            format!(
                "Unchanged: data asset {} holds these labels",
                version.reference()
            )
        })
    });
    Event::LabelsExported(reply(result))
}

pub(super) fn import_labels(
    shared: &Shared,
    path: &std::path::Path,
    format: crate::labeling::LabelFormat,
    name: &str,
    asset: Option<&str>,
) -> Event {
    let result = shared.store.workspace().and_then(|mut ws| {
        let asset = asset
            .filter(|a| !a.is_empty())
            .map(str::parse)
            .transpose()?;
        crate::labeling::import(&mut ws, path, format, name, asset.as_ref())
    });
    Event::LabelProjectCreated(reply(result))
}

pub(super) fn update_labels(
    shared: &Shared,
    name: &str,
    labels: &[crate::labeling::Label],
) -> Event {
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        project::update_labels(&ws, &p, labels)
    });
    Event::LabelsUpdated(reply(result))
}
