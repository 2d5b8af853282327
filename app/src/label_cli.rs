//! `lathe label`: create labeling projects, import labels into a new project, export a project,
//! and show its progress.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use lathe_core::Workspace;
use lathe_core::assets::AssetRef;
use lathe_core::labeling::project::{self, Filter};
use lathe_core::labeling::{self, Label, Task, labels_from_names};

use crate::cli::{Output, print_json, with_progress};

/// `--format`: core's label formats as clap values (core knows no clap).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Coco,
    Yolo,
    Voc,
    LabelStudio,
    #[value(alias = "iob")]
    Conll,
    #[value(alias = "spans")]
    Jsonl,
    Csv,
}

impl From<Format> for labeling::LabelFormat {
    fn from(format: Format) -> Self {
        match format {
            Format::Coco => Self::Coco,
            Format::Yolo => Self::Yolo,
            Format::Voc => Self::Voc,
            Format::LabelStudio => Self::LabelStudio,
            Format::Conll => Self::Conll,
            Format::Jsonl => Self::SpanJsonl,
            Format::Csv => Self::Csv,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// Create a project over an image, text or table data asset version (a table's items are
    /// its rows).
    Create {
        name: String,
        /// NAME or NAME:VERSION of the data asset to label.
        #[arg(long)]
        asset: String,
        /// image_classification, image_multi_label, bounding_boxes, polygons,
        /// text_classification, text_multi_label, entity_spans, row_classification or
        /// row_value.
        #[arg(long)]
        task: String,
        /// The labels, separated by commas (hotkeys 1–9 in this order); for row_value, the
        /// one quantity asked for (such as price).
        #[arg(long)]
        labels: String,
        /// For rows: the column whose value keys each row (default: the collected
        /// request_id, else `row N`).
        #[arg(long, value_name = "COLUMN")]
        key: Option<String>,
        /// For rows: start with no items; a monitor's label action sends them.
        #[arg(long)]
        empty: bool,
        /// Annotators wanted per item.
        #[arg(long, default_value_t = 1)]
        consensus: u32,
        #[command(flatten)]
        output: Output,
    },
    /// Create a project pre-filled from labels: coco (a file) or yolo (a folder) over the image
    /// asset they label, or conll, jsonl (spans) and csv (text,label), whose texts become a new
    /// text asset.
    Import {
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Coco)]
        format: Format,
        /// For coco: NAME or NAME:VERSION of the image asset the file labels.
        #[arg(long)]
        asset: Option<String>,
        /// The new project's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Write a project's labels (each item's latest submission): coco (a file), yolo or voc (a
    /// folder) for image projects; conll, jsonl or csv for text projects.
    Export {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Coco)]
        format: Format,
        #[arg(long, value_name = "PATH", required_unless_present = "asset")]
        out: Option<PathBuf>,
        /// Record the labels as a new version of this table data asset (a row per shape), with
        /// the project and the labeled asset as its source.
        #[arg(long, value_name = "NAME")]
        asset: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Pre-label the unlabeled items with the project's built-in baseline, trained on the
    /// items labeled so far (naive Bayes for text classes, nearest centroid for image classes,
    /// a dictionary of labeled strings for entity spans, colour regions for boxes and polygons).
    Prelabel {
        name: String,
        /// A registered ONNX model (NAME:VERSION) to pre-label an image project with, instead of
        /// the baseline: a classifier, or a detector (rows of x1,y1,x2,y2,score,class, or boxes,
        /// scores and classes); its class i is the project's label i.
        #[arg(long, value_name = "NAME:VERSION")]
        model: Option<String>,
        /// The confidence a pre-label needs to be offered to annotators.
        #[arg(long, default_value_t = 0.8)]
        threshold: f64,
        #[command(flatten)]
        output: Output,
    },
    /// Show a project's label schema, or change it: add labels, drop unused ones, set colours
    /// and hotkeys. The whole change is checked before any of it is kept.
    Labels {
        name: String,
        /// Labels to add (colours from the palette, the next free hotkey), separated by commas.
        #[arg(long, value_name = "NAMES")]
        add: Option<String>,
        /// Labels to drop, separated by commas; a label on any shape cannot be dropped.
        #[arg(long, value_name = "NAMES")]
        drop: Option<String>,
        /// LABEL=#rrggbb, repeatable.
        #[arg(long, value_name = "LABEL=#RRGGBB")]
        color: Vec<String>,
        /// LABEL=1–9, or LABEL=none to free its key; repeatable.
        #[arg(long, value_name = "LABEL=KEY")]
        hotkey: Vec<String>,
        #[command(flatten)]
        output: Output,
    },
    /// Every accepted item's answer by key (the ground truth a monitor's model_performance
    /// signal reads as labeling:NAME): CSV of correlation_id,actual, or JSON.
    GroundTruth {
        name: String,
        /// Write the CSV here instead of standard output.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        #[command(flatten)]
        output: Output,
    },
    /// A project's progress, label distribution and annotators; all projects without a name.
    Status {
        name: Option<String>,
        #[command(flatten)]
        output: Output,
    },
}

fn open(root: &Path) -> Result<Workspace> {
    Workspace::open(root).with_context(|| format!("cannot open workspace {}", root.display()))
}

fn asset(text: &str) -> Result<AssetRef> {
    text.parse()
        .with_context(|| format!("'{text}' is not a data asset reference"))
}

pub fn run(root: &Path, command: LabelCommand) -> Result<()> {
    let mut ws = open(root)?;
    match command {
        LabelCommand::Create {
            name,
            asset: reference,
            task,
            labels,
            key,
            empty,
            consensus,
            output,
        } => {
            let task = Task::parse(&task).map_err(anyhow::Error::msg)?;
            let names: Vec<String> = labels
                .split(',')
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect();
            if !task.rows() && (key.is_some() || empty) {
                bail!("--key and --empty are for row_classification and row_value projects");
            }
            let created = if task.rows() {
                labeling::rows::create(
                    &mut ws,
                    &name,
                    task,
                    &asset(&reference)?,
                    labels_from_names(&names),
                    key.as_deref(),
                    empty,
                )?
            } else {
                project::create(
                    &mut ws,
                    &name,
                    task,
                    &asset(&reference)?,
                    labels_from_names(&names),
                    consensus,
                )?
            };
            if output.json {
                return print_json(&created);
            }
            let items = project::items(&ws, &created, &Filter::default())?.len();
            println!(
                "created project {} ({}) over {}: {items} items, labels {}",
                created.name,
                created.task.as_str(),
                created.asset,
                names.join(", ")
            );
            Ok(())
        }
        LabelCommand::GroundTruth { name, out, output } => {
            let p = project::open(&ws, &name)?;
            if output.json {
                let truth = labeling::rows::ground_truth(&ws, &p)?;
                let rows: Vec<_> = truth
                    .iter()
                    .map(|(k, a)| serde_json::json!({"correlation_id": k, "actual": a}))
                    .collect();
                return print_json(&rows);
            }
            match out {
                Some(path) => {
                    let mut file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    let n = labeling::rows::write_ground_truth(&ws, &p, &mut file)?;
                    eprintln!(
                        "wrote {n} accepted answer(s) of {} to {}",
                        p.name,
                        path.display()
                    );
                }
                None => {
                    labeling::rows::write_ground_truth(&ws, &p, &mut std::io::stdout().lock())?;
                }
            }
            Ok(())
        }
        LabelCommand::Import {
            path,
            format,
            asset: reference,
            name,
            output,
        } => {
            let images = reference.as_deref().map(asset).transpose()?;
            let imported = labeling::import(&mut ws, &path, format.into(), &name, images.as_ref())?;
            if output.json {
                return print_json(&imported);
            }
            let stats = project::stats(&ws, &imported)?;
            println!(
                "imported {} into project {} ({}): {} of {} items labeled, {} shapes",
                path.display(),
                imported.name,
                imported.task.as_str(),
                stats.by_status.labeled,
                stats.items,
                stats.by_label.values().sum::<i64>()
            );
            Ok(())
        }
        LabelCommand::Export {
            name,
            format,
            out,
            asset,
            output,
        } => {
            let found = project::open(&ws, &name)?;
            let mut report = serde_json::Map::new();
            if let Some(asset) = asset {
                let (version, created) =
                    lathe_core::labeling::dataset::export_asset(&mut ws, &found, &asset)?;
                if !output.json {
                    println!(
                        "{} data asset {} ({} rows) from project {name}",
                        if created { "recorded" } else { "unchanged:" },
                        version.reference(),
                        version.item_count
                    );
                }
                report.insert("asset".into(), serde_json::to_value(&version)?);
                report.insert("created".into(), created.into());
            }
            if let Some(out) = out {
                let exported = labeling::export(&ws, &found, format.into(), &out)?;
                if !output.json {
                    println!("exported {exported} of {name} to {}", out.display());
                }
                report.insert(
                    "format".into(),
                    labeling::LabelFormat::from(format).as_str().into(),
                );
                report.insert("path".into(), out.display().to_string().into());
                report.insert("items".into(), exported.items.into());
                report.insert("labeled".into(), exported.labeled.into());
                report.insert("annotations".into(), exported.annotations.into());
            }
            if output.json {
                return print_json(&report);
            }
            Ok(())
        }
        LabelCommand::Prelabel {
            name,
            model,
            threshold,
            output,
        } => {
            let found = project::open(&ws, &name)?;
            let tracking = model.as_ref().map(|_| ws.store().tracking());
            let done = with_progress(&mut ws, |ws, progress| match (&model, &tracking) {
                (Some(model), Some(tracking)) => lathe_core::labeling::onnx_assist::prelabel(
                    ws, tracking, &found, model, threshold, progress,
                ),
                _ => lathe_core::labeling::assist::prelabel(ws, &found, threshold, progress),
            })?;
            if output.json {
                return print_json(&done);
            }
            println!(
                "{} pre-labeled {} item(s) of {name}; {} at or above {threshold}",
                done.model, done.items, done.confident
            );
            Ok(())
        }
        LabelCommand::Labels {
            name,
            add,
            drop,
            color,
            hotkey,
            output,
        } => {
            let mut found = project::open(&ws, &name)?;
            let changes = Changes {
                add: list(add.as_deref()),
                drop: list(drop.as_deref()),
                color: pairs(&color, "--color")?,
                hotkey: pairs(&hotkey, "--hotkey")?,
            };
            if !changes.is_empty() {
                let labels = changes.apply(&found.labels)?;
                found = project::update_labels(&ws, &found, &labels)?;
            }
            if output.json {
                return print_json(&found.labels);
            }
            for label in &found.labels {
                let key = label.hotkey.map_or("-".to_owned(), String::from);
                println!("{key}  {}  {}", label.color, label.name);
            }
            Ok(())
        }
        LabelCommand::Status { name, output } => {
            let projects = match name {
                Some(name) => vec![project::open(&ws, &name)?],
                None => project::list(&ws)?,
            };
            let mut report = Vec::new();
            for p in &projects {
                report.push((p.clone(), project::stats(&ws, p)?));
            }
            if output.json {
                let json: Vec<_> = report
                    .iter()
                    .map(|(p, s)| serde_json::json!({ "project": p, "stats": s }))
                    .collect();
                return print_json(&json);
            }
            if report.is_empty() {
                println!("no labeling projects; `lathe label create` starts one");
            }
            for (p, s) in &report {
                let done = s.by_status.done();
                println!(
                    "{} ({}) over {}: {done} of {} items labeled — {} accepted, {} rejected, {} to review",
                    p.name,
                    p.task.as_str(),
                    p.asset,
                    s.items,
                    s.by_status.accepted,
                    s.by_status.rejected,
                    s.by_status.labeled
                );
                for (label, n) in &s.by_label {
                    println!("  {label}: {n}");
                }
                for (who, n) in &s.by_annotator {
                    println!("  by {who}: {n} submission(s)");
                }
                if let Some(a) = &s.agreement {
                    println!(
                        "  agreement: {} {:.3} over {} item(s)",
                        a.measure, a.value, a.items
                    );
                }
            }
            Ok(())
        }
    }
}

fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `LABEL=VALUE` arguments as pairs.
fn pairs(args: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .map(|(l, v)| (l.trim().to_owned(), v.trim().to_owned()))
                .with_context(|| format!("{flag} {a}: write LABEL=VALUE"))
        })
        .collect()
}

/// What `lathe label labels` is asked to change in a schema.
struct Changes {
    add: Vec<String>,
    drop: Vec<String>,
    color: Vec<(String, String)>,
    hotkey: Vec<(String, String)>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.drop.is_empty()
            && self.color.is_empty()
            && self.hotkey.is_empty()
    }

    /// The schema with the changes made; core checks the result (unique names and keys,
    /// colours, labels in use).
    fn apply(&self, labels: &[Label]) -> Result<Vec<Label>> {
        let known = |name: &str, labels: &[Label]| -> Result<usize> {
            labels.iter().position(|l| l.name == name).with_context(|| {
                let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
                format!("no label '{name}'; the project has {}", names.join(", "))
            })
        };
        let mut out = labels.to_vec();
        for name in &self.drop {
            let i = known(name, &out)?;
            out.remove(i);
        }
        for name in &self.add {
            out.push(labeling::next_label(&out, name));
        }
        for (name, color) in &self.color {
            let i = known(name, &out)?;
            out[i].color = color.clone();
        }
        for (name, key) in &self.hotkey {
            let i = known(name, &out)?;
            out[i].hotkey = match key.as_str() {
                "none" | "" => None,
                k => {
                    let mut chars = k.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Some(c),
                        _ => anyhow::bail!("--hotkey {name}={k}: a hotkey is one digit 1–9"),
                    }
                }
            };
        }
        Ok(out)
    }
}
