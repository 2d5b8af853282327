//! The annotator's background work: projects with their counts, item lists by filter, an item
//! with its image (decoded at up to 4096 px a side), text or table row and its latest shapes,
//! and submitting and reviewing.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Failure, Reply, Service, Shared};
use crate::assets::Asset;
use crate::images::{self, Thumbnail};
use crate::jobs::Progress;
use crate::labeling::assist::Prelabeled;
use crate::labeling::project::{self, Filter, Item, Project, Stats, Submission};
use crate::labeling::{Extent, Label, LabelFormat, Shape, Task, labels_from_names};
use crate::workspace::Workspace;

/// Images are shown at most this many pixels a side (a 12-megapixel photo fits).
const MAX_SIDE: u32 = 4096;

#[derive(Debug, Clone, PartialEq)]
pub enum LabelCommand {
    LoadProjects,
    CreateProject {
        name: String,
        task: Task,
        asset: String,
        labels: Vec<String>,
        /// A row project that starts with no items (a monitor's label action fills it).
        empty: bool,
    },
    LoadItems {
        project: String,
        filter: Filter,
    },
    /// An item with its image or text and latest shapes (also to decode the next ones ahead).
    LoadItem {
        project: String,
        position: i64,
    },
    Submit {
        project: String,
        position: i64,
        shapes: Vec<Shape>,
        /// `human`, or `model:<name>` when a pre-label was kept as it was.
        source: String,
    },
    /// Creates a project from a label file (or folder); image formats label the images of
    /// `asset`. A job: a file of 100,000 items takes a while.
    Import {
        path: PathBuf,
        format: LabelFormat,
        name: String,
        asset: Option<String>,
    },
    /// Replaces a project's label schema.
    UpdateLabels {
        project: String,
        labels: Vec<Label>,
    },
    /// Writes a project's labels to a file (or folder for yolo and voc), as a job.
    Export {
        project: String,
        format: LabelFormat,
        path: PathBuf,
    },
    /// Records a project's labels as a new version of a table data asset, as a job.
    ExportAsset {
        project: String,
        asset: String,
    },
    /// Lists the registered model versions with an ONNX file, to pre-label images with.
    LoadOnnxModels,
    /// Pre-labels the unlabeled items with a registered ONNX model, or the project's built-in
    /// baseline when `model` is `None`.
    Prelabel {
        project: String,
        threshold: f64,
        /// A registered ONNX model (`NAME:VERSION`).
        model: Option<String>,
    },
    Review {
        project: String,
        position: i64,
        accepted: bool,
        comment: String,
    },
}

#[derive(Debug)]
pub enum LabelEvent {
    Projects(Reply<Projects>),
    /// Created from the form or imported from a label file.
    ProjectCreated(Reply<Project>),
    Items {
        project: String,
        /// The filter asked for: an answer for an older filter is stale.
        filter: Filter,
        reply: Reply<Vec<Item>>,
    },
    Item {
        project: String,
        position: i64,
        reply: Reply<ItemView>,
    },
    Submitted {
        project: String,
        position: i64,
        reply: Reply<Submission>,
    },
    Reviewed {
        project: String,
        position: i64,
        reply: Reply<()>,
    },
    LabelsUpdated(Reply<Project>),
    /// What an export did, worded for the user.
    Exported(Reply<String>),
    Prelabeled {
        project: String,
        reply: Reply<Prelabeled>,
    },
    /// Registered ONNX models as `NAME:VERSION`.
    OnnxModels(Reply<Vec<String>>),
}

pub(super) fn handle(service: &Service, command: LabelCommand) {
    match command {
        LabelCommand::LoadProjects => service.read(projects),
        LabelCommand::CreateProject {
            name,
            task,
            asset,
            labels,
            empty,
        } => service.read(move |s| create(s, &name, task, &asset, &labels, empty)),
        LabelCommand::LoadItems { project, filter } => {
            service.read(move |s| items(s, &project, &filter));
        }
        LabelCommand::LoadItem { project, position } => {
            service.read(move |s| item(s, &project, position));
        }
        LabelCommand::Submit {
            project,
            position,
            shapes,
            source,
        } => service.read(move |s| submit(s, &project, position, &shapes, &source)),
        LabelCommand::Import {
            path,
            format,
            name,
            asset,
        } => {
            let label = format!("Importing {} as {name}", path.display());
            service.job(label, move |shared, _, _| {
                shared.emit(import_labels(
                    shared,
                    &path,
                    format,
                    &name,
                    asset.as_deref(),
                ));
            });
        }
        LabelCommand::UpdateLabels { project, labels } => {
            service.read(move |s| update_labels(s, &project, &labels));
        }
        LabelCommand::Export {
            project,
            format,
            path,
        } => {
            let label = format!("Exporting {project} as {format}");
            service.job(label, move |shared, _, _| {
                shared.emit(export(shared, &project, format, &path));
            });
        }
        LabelCommand::ExportAsset { project, asset } => {
            let label = format!("Recording {project} as data asset {asset}");
            service.job(label, move |shared, _, _| {
                shared.emit(export_asset(shared, &project, &asset));
            });
        }
        LabelCommand::LoadOnnxModels => service.read(|s| {
            let reply = crate::labeling::onnx_assist::onnx_models(s.tracking())
                .map(Arc::new)
                .map_err(Failure::from);
            LabelEvent::OnnxModels(reply)
        }),
        LabelCommand::Prelabel {
            project,
            threshold,
            model,
        } => service.job(
            format!("Pre-labeling {project}"),
            move |shared, ws, progress| {
                let event = prelabel(shared, ws, &project, threshold, model.as_deref(), progress);
                shared.emit(event);
            },
        ),
        LabelCommand::Review {
            project,
            position,
            accepted,
            comment,
        } => service.read(move |s| review(s, &project, position, accepted, &comment)),
    }
}

/// One item, ready to annotate.
#[derive(Debug, Clone)]
pub struct ItemView {
    pub item: Item,
    pub extent: Extent,
    pub image: Option<Arc<Thumbnail>>,
    pub text: Option<String>,
    /// A table row's fields and why it was sent.
    pub row: Option<crate::labeling::rows::RowItem>,
    pub latest: Option<Submission>,
    /// A model's pre-label for the item: the model and its shapes (with confidences).
    pub prediction: Option<(String, Vec<Shape>)>,
}

fn reply<T>(result: crate::Result<T>) -> Reply<T> {
    result.map(Arc::new).map_err(Failure::from)
}

/// The projects with their counts, and the assets a new one could label.
#[derive(Debug, Clone)]
pub struct Projects {
    pub projects: Vec<(Project, Stats)>,
    pub assets: Vec<Asset>,
}

fn projects(shared: &Shared) -> LabelEvent {
    LabelEvent::Projects(reply(shared.store.workspace().and_then(|ws| {
        let projects = project::list(&ws)?
            .into_iter()
            .map(|p| {
                let stats = project::stats(&ws, &p)?;
                Ok((p, stats))
            })
            .collect::<crate::Result<Vec<(Project, Stats)>>>()?;
        let assets = ws.list_assets()?;
        Ok(Projects { projects, assets })
    })))
}

fn create(
    shared: &Shared,
    name: &str,
    task: Task,
    asset: &str,
    labels: &[String],
    empty: bool,
) -> LabelEvent {
    let result = shared.store.workspace().and_then(|mut ws| {
        let asset = asset.parse()?;
        let labels = labels_from_names(labels);
        if task.rows() {
            crate::labeling::rows::create(&mut ws, name, task, &asset, labels, None, empty)
        } else {
            project::create(&mut ws, name, task, &asset, labels, 1)
        }
    });
    LabelEvent::ProjectCreated(reply(result))
}

fn items(shared: &Shared, name: &str, filter: &Filter) -> LabelEvent {
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        project::items(&ws, &p, filter)
    });
    LabelEvent::Items {
        project: name.to_owned(),
        filter: filter.clone(),
        reply: reply(result),
    }
}

fn item(shared: &Shared, name: &str, position: i64) -> LabelEvent {
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        let item = project::items(&ws, &p, &Filter::default())?
            .into_iter()
            .find(|i| i.position == position)
            .ok_or_else(|| crate::labeling::no_item(name, position))?;
        let extent = project::extent(&ws, &p, position)?;
        let (mut image, mut text, mut row) = (None, None, None);
        match extent {
            Extent::Image { .. } => {
                let files = ws.version_files(p.version_id)?;
                let file = &files[position as usize];
                let decoded = images::thumbnail(&ws.blobs().path(&file.blob_hash), MAX_SIDE)?;
                image = Some(Arc::new(decoded));
            }
            Extent::Text { .. } => {
                let version = ws.version_by_id(p.version_id)?;
                let texts = crate::text::items(&ws, &version)?;
                text = texts.into_iter().nth(position as usize);
            }
            Extent::Row => row = Some(crate::labeling::rows::row(&ws, &p, position)?),
        }
        Ok(ItemView {
            prediction: crate::labeling::assist::prediction(&ws, &p, position)?,
            latest: project::latest(&ws, &p, position)?,
            item,
            extent,
            image,
            text,
            row,
        })
    });
    LabelEvent::Item {
        project: name.to_owned(),
        position,
        reply: reply(result),
    }
}

fn submit(
    shared: &Shared,
    name: &str,
    position: i64,
    shapes: &[Shape],
    source: &str,
) -> LabelEvent {
    let annotator = std::env::var("USER").unwrap_or_else(|_| "annotator".into());
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        project::submit(&ws, &p, position, &annotator, shapes, source)
    });
    LabelEvent::Submitted {
        project: name.to_owned(),
        position,
        reply: reply(result),
    }
}

fn prelabel(
    shared: &Shared,
    ws: &Workspace,
    name: &str,
    threshold: f64,
    model: Option<&str>,
    progress: &Progress,
) -> LabelEvent {
    let result = project::open(ws, name).and_then(|p| match model {
        Some(model) => {
            let tracking = shared.tracking();
            crate::labeling::onnx_assist::prelabel(ws, tracking, &p, model, threshold, progress)
        }
        None => crate::labeling::assist::prelabel(ws, &p, threshold, progress),
    });
    LabelEvent::Prelabeled {
        project: name.to_owned(),
        reply: reply(result),
    }
}

fn review(shared: &Shared, name: &str, position: i64, accepted: bool, comment: &str) -> LabelEvent {
    let reviewer = std::env::var("USER").unwrap_or_else(|_| "reviewer".into());
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        project::review(&ws, &p, position, &reviewer, accepted, comment)
    });
    LabelEvent::Reviewed {
        project: name.to_owned(),
        position,
        reply: reply(result),
    }
}

fn export(shared: &Shared, name: &str, format: LabelFormat, path: &std::path::Path) -> LabelEvent {
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        let exported = crate::labeling::export(&ws, &p, format, path)?;
        Ok(format!(
            "Exported {exported} of {name} as {format} to {}",
            path.display()
        ))
    });
    LabelEvent::Exported(reply(result))
}

fn export_asset(shared: &Shared, name: &str, asset: &str) -> LabelEvent {
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
    LabelEvent::Exported(reply(result))
}

fn import_labels(
    shared: &Shared,
    path: &std::path::Path,
    format: LabelFormat,
    name: &str,
    asset: Option<&str>,
) -> LabelEvent {
    let result = shared.store.workspace().and_then(|mut ws| {
        let asset = asset
            .filter(|a| !a.is_empty())
            .map(str::parse)
            .transpose()?;
        crate::labeling::import(&mut ws, path, format, name, asset.as_ref())
    });
    LabelEvent::ProjectCreated(reply(result))
}

fn update_labels(shared: &Shared, name: &str, labels: &[Label]) -> LabelEvent {
    let result = shared.store.workspace().and_then(|ws| {
        let p = project::open(&ws, name)?;
        project::update_labels(&ws, &p, labels)
    });
    LabelEvent::LabelsUpdated(reply(result))
}
