//! The desktop window: eframe around lathe-ui's workbench, plus the native file dialogs and the
//! tracking server that runs while the window is open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use anyhow::{Context, Result, anyhow};
use lathe_core::Store;
use lathe_core::service::Service;
use lathe_ui::{ShellRequest, Workbench};

/// Lathe's icon (icons/lathe-256.png): a turned piece between headstock and tailstock.
const ICON: &[u8] = include_bytes!("../../icons/lathe-256.png");

pub fn run(root: &Path, is_default: bool) -> Result<()> {
    // The one store of this process, shared by the service, the server and the schedules.
    let store =
        Store::open(root).with_context(|| format!("cannot open workspace {}", root.display()))?;
    let mut ws = store.workspace()?;
    if is_default && ws.list_assets()?.is_empty() {
        lathe_core::demo::seed(&mut ws).context("cannot seed the demo workspace")?;
        lathe_core::demo::seed_labeling(&mut ws).context("cannot seed the demo labeling")?;
        lathe_core::demo::seed_pipelines(&store).context("cannot seed the demo pipeline")?;
        lathe_core::demo::seed_tracking(&store).context("cannot train the demo models")?;
        lathe_core::demo::seed_endpoints(&store).context("cannot seed the demo endpoint")?;
        lathe_core::demo::seed_monitoring(&store).context("cannot seed the demo monitor")?;
    }
    drop(ws);
    // The demo's monitor watches simulated traffic, sent while the window is open (for a
    // quarter of an hour), beside the window so its start does not wait.
    if lathe_core::demo::simulates_traffic(&store) {
        let store = store.clone();
        let stop = std::sync::atomic::AtomicBool::new(false);
        if let Err(e) = std::thread::Builder::new()
            .name("lathe-demo-traffic".into())
            .spawn(move || {
                let minutes = |m: u64| std::time::Duration::from_secs(60 * m);
                lathe_core::demo::simulate_traffic(
                    &store,
                    minutes(15),
                    minutes(2),
                    std::time::Duration::from_millis(250),
                    &stop,
                );
            })
        {
            eprintln!("lathe: the demo's simulated traffic will not run: {e}");
        }
    }
    // The app id is the window class (X11 WM_CLASS, Wayland app_id) desktops group windows
    // and find the launcher's icon by.
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("Lathe")
        .with_app_id("lathe")
        .with_inner_size([1280.0, 800.0])
        .with_min_inner_size([720.0, 480.0])
        .with_drag_and_drop(true);
    match eframe::icon_data::from_png_bytes(ICON) {
        Ok(icon) => viewport = viewport.with_icon(icon),
        Err(e) => eprintln!("lathe: the window icon does not decode: {e}"),
    }
    let options = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    eframe::run_native(
        "Lathe",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let service = Service::new(store.clone(), Arc::new(move || ctx.request_repaint()))?;
            let mut workbench = Workbench::new(service);
            if let Err(e) = crate::endpoints_server::spawn(store.clone()) {
                workbench.report_error(format!("Online endpoints will not serve: {e:#}"));
            }
            match crate::server::serve_in_background(store.tracking(), 5000) {
                Ok(uri) => {
                    if let Err(e) = workbench.service().start_schedules(Some(uri.clone())) {
                        workbench.report_error(format!("Schedules will not run: {e}"));
                    }
                    workbench.set_tracking_uri(Some(uri));
                }
                Err(e) => {
                    workbench.report_error(format!("The tracking server did not start: {e:#}"));
                }
            }
            Ok(Box::new(LatheApp::new(workbench)))
        }),
    )
    .map_err(|e| anyhow!("the window could not start: {e}"))
}

struct LatheApp {
    workbench: Workbench,
    picked_tx: Sender<Picked>,
    picked_rx: Receiver<Picked>,
}

/// What a native file dialog came back with.
enum Picked {
    Paths(Vec<PathBuf>),
    Pipeline(PathBuf),
    ExportTo(PathBuf),
    LabelsTo(PathBuf),
    LabelFile(PathBuf),
    /// The dialog closed at once: no dialog could be shown on this desktop.
    Unavailable,
}

impl LatheApp {
    fn new(workbench: Workbench) -> Self {
        let (picked_tx, picked_rx) = channel();
        Self {
            workbench,
            picked_tx,
            picked_rx,
        }
    }

    /// Native dialogs block their thread until the user answers, so they run on their own.
    fn open_dialog(&self, request: ShellRequest, ctx: &egui::Context) {
        let tx = self.picked_tx.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("lathe-dialog".into())
            .spawn(move || {
                let opened = std::time::Instant::now();
                let dialog = rfd::FileDialog::new();
                let picked = match request {
                    ShellRequest::PickFiles => dialog
                        .set_title("Import into Lathe")
                        .add_filter(
                            "Data",
                            &[
                                "csv", "tsv", "parquet", "jsonl", "ndjson", "txt", "png", "jpg",
                                "jpeg", "bmp", "tif", "tiff", "webp",
                            ],
                        )
                        .pick_files()
                        .map(Picked::Paths),
                    ShellRequest::PickFolder => dialog
                        .set_title("Import into Lathe")
                        .pick_folders()
                        .map(Picked::Paths),
                    ShellRequest::PickPipeline => dialog
                        .set_title("Open a pipeline job YAML")
                        .add_filter("Azure ML pipeline job", &["yml", "yaml"])
                        .pick_file()
                        .map(Picked::Pipeline),
                    ShellRequest::PickLabels => dialog
                        .set_title(
                            "Start a labeling project from labels (for yolo, pick its classes.txt)",
                        )
                        .pick_file()
                        .map(Picked::LabelFile),
                    ShellRequest::ExportLabels => dialog
                        .set_title("Export the labels (a file, or a folder for yolo and voc)")
                        .save_file()
                        .map(Picked::LabelsTo),
                    ShellRequest::ExportPipeline => dialog
                        .set_title("Export the pipeline as YAML")
                        .add_filter("Azure ML pipeline job", &["yml", "yaml"])
                        .set_file_name("pipeline.yml")
                        .save_file()
                        .map(Picked::ExportTo),
                };
                // rfd answers "nothing picked" both when the user cancels and when no dialog could
                // open (no desktop portal); no person cancels within a fraction of a second.
                let picked = match picked.filter(|p| !matches!(p, Picked::Paths(p) if p.is_empty()))
                {
                    Some(picked) => picked,
                    None if opened.elapsed() < std::time::Duration::from_millis(300) => {
                        Picked::Unavailable
                    }
                    None => return,
                };
                let _ = tx.send(picked);
                ctx.request_repaint();
            });
        if spawned.is_err() {
            // As when no dialog can open: the window offers the path to be typed instead.
            let _ = self.picked_tx.send(Picked::Unavailable);
        }
    }
}

impl eframe::App for LatheApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        for picked in self.picked_rx.try_iter() {
            match picked {
                Picked::Paths(paths) => self.workbench.offer_paths(paths),
                Picked::Pipeline(path) => self.workbench.open_pipeline(path),
                Picked::ExportTo(path) => self.workbench.export_pipeline(path),
                Picked::LabelsTo(path) => self.workbench.export_labels(path),
                Picked::LabelFile(path) => self.workbench.offer_label_file(path),
                Picked::Unavailable => self.workbench.report_error(
                    "No file dialog could open on this desktop (is xdg-desktop-portal running?). \
                     Drop files or folders on the window to import them."
                        .to_owned(),
                ),
            }
        }
        self.workbench.ui(ui);
        for request in self.workbench.take_requests() {
            self.open_dialog(request, ui.ctx());
        }
    }
}
