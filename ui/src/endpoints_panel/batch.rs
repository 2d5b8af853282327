//! Batch endpoints in the Endpoints section: each one's deployments (the default marked, any
//! other made default in a click), a form that scores a table data asset or table files as a
//! job of the window (progress and cancel in the status bar), and its jobs with their rows,
//! failures, predictions and MLflow run, which update while they run wherever they were
//! started (the CLI too).

use std::sync::Arc;

use egui::RichText;
use lathe_core::batch::job::{BatchJob, Invocation, JobState};
use lathe_core::service::{BatchView, BatchViews, EndpointCommand, EndpointEvent, Service};

use crate::loadable::Loadable;
use crate::vocabulary::Navigate;

/// What the Score form holds.
#[derive(Default)]
struct Form {
    endpoint: String,
    /// A table `NAME:VERSION`, or a path to table files.
    input: String,
    /// `None`: the endpoint's default.
    deployment: Option<String>,
    output: String,
}

#[derive(Default)]
pub struct BatchPanel {
    views: Option<Loadable<Arc<BatchViews>>>,
    form: Form,
    /// The job whose failures are shown.
    opened: Option<i64>,
    message: Option<Result<String, String>>,
}

impl BatchPanel {
    pub fn on_event(&mut self, event: EndpointEvent) {
        match event {
            EndpointEvent::BatchLoaded(reply) => self.views = Some(Loadable::from_reply(reply)),
            EndpointEvent::BatchStarted(Ok(job)) => {
                self.message = Some(Ok(format!("Batch job {} started", job.id)));
                self.opened = Some(job.id);
            }
            EndpointEvent::BatchEnded(reply) => {
                self.message = Some(match reply {
                    Ok(job) => match job.state {
                        JobState::Completed => Ok(format!(
                            "Batch job {} scored {} rows{}",
                            job.id,
                            job.rows_done,
                            job.output_version
                                .as_ref()
                                .map(|v| format!("; predictions in {v}"))
                                .unwrap_or_default()
                        )),
                        JobState::Cancelled => Ok(format!("Batch job {} cancelled", job.id)),
                        _ => Err(format!("Batch job {} failed: {}", job.id, job.message)),
                    },
                    Err(e) => Err(format!("Not started: {e}")),
                });
            }
            EndpointEvent::BatchCancelled(Err(e)) | EndpointEvent::BatchStarted(Err(e)) => {
                self.message = Some(Err(e.to_string()));
            }
            EndpointEvent::BatchDefaultSet(reply) => {
                self.message = Some(match reply {
                    Ok(e) => Ok(format!(
                        "{} now scores with {} by default",
                        e.spec.name,
                        e.spec.defaults.deployment_name.as_deref().unwrap_or("—")
                    )),
                    Err(e) => Err(format!("Default not changed: {e}")),
                });
            }
            _ => {}
        }
    }

    /// Batch endpoints or their jobs changed (here or in another process): read again.
    pub fn changed(&mut self, service: &Service) {
        if self.views.is_some() {
            service.send(EndpointCommand::LoadBatch);
        }
    }

    /// The batch endpoints, read on first use.
    pub fn views(&mut self, service: &Service) -> Option<&Loadable<Arc<BatchViews>>> {
        if self.views.is_none() {
            self.views = Some(Loadable::Loading);
            service.send(EndpointCommand::LoadBatch);
        }
        self.views.as_ref()
    }

    pub fn main_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        name: &str,
    ) -> Option<Navigate> {
        let Some(Loadable::Ready(views)) = &self.views else {
            return None;
        };
        let views = Arc::clone(views);
        let Some(view) = views
            .endpoints
            .iter()
            .find(|v| v.endpoint.spec.name == name)
        else {
            ui.weak("Choose an endpoint on the left.");
            return None;
        };
        if self.form.endpoint != name {
            self.form = Form {
                endpoint: name.to_owned(),
                ..Form::default()
            };
            self.message = None;
        }
        ui.heading(name);
        ui.weak(
            "Batch endpoint: scores a table data asset or table files as a job (a scoring \
             script also takes any folder of files or data asset).",
        );
        if !view.endpoint.spec.description.is_empty() {
            ui.label(&view.endpoint.spec.description);
        }
        if let Some(message) = &self.message {
            match message {
                Ok(text) => ui.label(RichText::new(text).color(ui.visuals().hyperlink_color)),
                Err(text) => ui.colored_label(ui.visuals().error_fg_color, text),
            };
        }
        ui.separator();
        deployments_ui(ui, service, view);
        ui.separator();
        self.score_ui(ui, service, view, &views.tables);
        ui.separator();
        self.jobs_ui(ui, service, view)
    }

    fn score_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        view: &BatchView,
        tables: &[String],
    ) {
        ui.strong("Score data");
        if view.deployments.is_empty() {
            ui.weak(format!(
                "No deployments yet: `lathe batch-deployment create -f deployment.yml` (endpoint_name: {}).",
                view.endpoint.spec.name
            ));
            return;
        }
        let default = view.endpoint.spec.defaults.deployment_name.clone();
        let chosen = self.form.deployment.clone().or_else(|| default.clone());
        let pipeline = view
            .deployments
            .iter()
            .any(|d| Some(&d.spec.name) == chosen.as_ref() && d.pipeline.is_some());
        egui::Grid::new("batch-score").num_columns(2).show(ui, |ui| {
            let label = ui.label("Input");
            ui.horizontal(|ui| {
                egui::ComboBox::from_id_salt("batch-input-table")
                    .selected_text(if tables.contains(&self.form.input) {
                        self.form.input.as_str()
                    } else {
                        "a table…"
                    })
                    .show_ui(ui, |ui| {
                        for table in tables {
                            ui.selectable_value(&mut self.form.input, table.clone(), table);
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.add(
                    egui::TextEdit::singleline(&mut self.form.input)
                        .hint_text("or a table file or folder path")
                        .desired_width(220.0),
                )
                .on_hover_text("A data asset NAME:VERSION, or a CSV/Parquet/JSONL file or a folder of them");
            });
            ui.end_row();
            let label = ui.label("Deployment");
            let shown = self
                .form
                .deployment
                .clone()
                .or_else(|| default.clone().map(|d| format!("{d} (default)")))
                .unwrap_or_default();
            egui::ComboBox::from_id_salt("batch-deployment")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for d in &view.deployments {
                        let name = d.spec.name.clone();
                        ui.selectable_value(&mut self.form.deployment, Some(name.clone()), name);
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();
            if pipeline {
                ui.label("Output");
                ui.weak("the pipeline's outputs, as data assets");
            } else {
                ui.label("Predictions asset");
                ui.add(
                    egui::TextEdit::singleline(&mut self.form.output)
                        .hint_text(format!("{}-predictions", view.endpoint.spec.name))
                        .desired_width(220.0),
                );
            }
            ui.end_row();
        });
        let input = self.form.input.trim().to_owned();
        let start = ui
            // A pipeline may take no data, or have its own: the job says if it needs some.
            .add_enabled(
                !input.is_empty() || pipeline,
                egui::Button::new("Start batch job"),
            )
            .on_disabled_hover_text("Choose a table or write a path first");
        if start.clicked() {
            let output = self.form.output.trim();
            service.send(EndpointCommand::InvokeBatch(Invocation {
                endpoint: view.endpoint.spec.name.clone(),
                deployment: self.form.deployment.clone(),
                input,
                output: (!output.is_empty()).then(|| output.to_owned()),
            }));
            self.message = Some(Ok("Starting…".to_owned()));
        }
    }

    fn jobs_ui(
        &mut self,
        ui: &mut egui::Ui,
        service: &Service,
        view: &BatchView,
    ) -> Option<Navigate> {
        ui.strong("Jobs");
        if view.jobs.is_empty() {
            ui.weak("No jobs yet.");
            return None;
        }
        let now = lathe_core::db::now_millis();
        let mut navigate = None;
        egui::Grid::new("batch-jobs")
            .striped(true)
            .num_columns(7)
            .show(ui, |ui| {
                for title in ["Job", "Deployment", "Input", "State", "Rows", "Output", ""] {
                    ui.strong(title);
                }
                ui.end_row();
                for job in view.jobs.iter().take(50) {
                    if ui
                        .selectable_label(self.opened == Some(job.id), job.id.to_string())
                        .on_hover_text("Show its failures and run")
                        .clicked()
                    {
                        self.opened = Some(job.id);
                    }
                    ui.label(&job.deployment);
                    ui.label(short_input(&job.input)).on_hover_text(&job.input);
                    state_ui(ui, job, now);
                    rows_ui(ui, job);
                    match &job.output_version {
                        Some(version) => {
                            if ui.link(version).clicked()
                                && let Some((name, number)) = version.rsplit_once(':')
                                && let Ok(number) = number.parse()
                            {
                                navigate = Some(Navigate::Asset(name.to_owned(), number));
                            }
                        }
                        None => {
                            ui.weak("—");
                        }
                    }
                    if !job.state.is_final() && !job.cancel_requested {
                        if ui.small_button("Cancel").clicked() {
                            service.send(EndpointCommand::CancelBatch(job.id));
                        }
                    } else {
                        ui.label("");
                    }
                    ui.end_row();
                }
            });
        if let Some(job) = self
            .opened
            .and_then(|id| view.jobs.iter().find(|j| j.id == id))
        {
            ui.add_space(4.0);
            navigate = job_ui(ui, job).or(navigate);
        }
        navigate
    }
}

/// The batch endpoints in the list on the left; returns the one clicked.
pub fn list_ui(ui: &mut egui::Ui, views: &BatchViews, selected: Option<&str>) -> Option<String> {
    let mut clicked = None;
    for view in &views.endpoints {
        let name = &view.endpoint.spec.name;
        let running = view.jobs.iter().filter(|j| !j.state.is_final()).count();
        let label = if running > 0 {
            format!("{name}  ·  {running} running")
        } else {
            format!("{name}  ·  {} job(s)", view.jobs.len())
        };
        if ui.selectable_label(selected == Some(name), label).clicked() {
            clicked = Some(name.clone());
        }
    }
    clicked
}

fn deployments_ui(ui: &mut egui::Ui, service: &Service, view: &BatchView) {
    ui.strong("Deployments");
    if view.deployments.is_empty() {
        return;
    }
    let default = view.endpoint.spec.defaults.deployment_name.as_deref();
    egui::Grid::new("batch-deployments")
        .striped(true)
        .num_columns(6)
        .show(ui, |ui| {
            for title in [
                "Deployment",
                "Runs",
                "Mini batch",
                "Failures allowed",
                "Output",
                "",
            ] {
                ui.strong(title);
            }
            ui.end_row();
            for d in &view.deployments {
                let settings = d.spec.settings();
                ui.label(&d.spec.name);
                if let Some(p) = &d.pipeline {
                    // A pipeline's steps decide how it splits its work and what it writes.
                    ui.label(format!("pipeline {}", p.name));
                    for _ in 0..2 {
                        ui.weak("—");
                    }
                    ui.label("the pipeline's outputs");
                    default_ui(ui, service, view, d, default);
                    ui.end_row();
                    continue;
                }
                match &d.runtime.code {
                    Some(code) => ui.label(format!(
                        "{}:{} · script {}",
                        d.model_name, d.model_version, code.scoring_script
                    )),
                    None => ui.label(format!("{}:{}", d.model_name, d.model_version)),
                };
                ui.label(settings.mini_batch_size.map_or_else(
                    || "10,000 rows or 10 files".to_owned(),
                    |n| format!("{n} rows or files"),
                ));
                ui.label(match settings.error_threshold {
                    None | Some(-1) => "any".to_owned(),
                    Some(n) => n.to_string(),
                });
                ui.label(match settings.output_action {
                    Some(lathe_core::batch::OutputAction::SummaryOnly) => "summary only",
                    _ if d.runtime.code.is_some() => "what run() returns",
                    _ => "rows and predictions",
                });
                default_ui(ui, service, view, d, default);
                ui.end_row();
            }
        });
}

/// The default's mark, or the button that makes `d` the default.
fn default_ui(
    ui: &mut egui::Ui,
    service: &Service,
    view: &BatchView,
    d: &lathe_core::batch::BatchDeployment,
    default: Option<&str>,
) {
    if default == Some(d.spec.name.as_str()) {
        ui.label(RichText::new("default").strong());
    } else if ui.small_button("Make default").clicked() {
        service.send(EndpointCommand::SetBatchDefault {
            endpoint: view.endpoint.spec.name.clone(),
            deployment: d.spec.name.clone(),
        });
    }
}

fn state_ui(ui: &mut egui::Ui, job: &BatchJob, now: i64) {
    let color = match job.state {
        JobState::Completed => egui::Color32::from_rgb(60, 160, 80),
        JobState::Failed => ui.visuals().error_fg_color,
        _ if job.is_lost(now) => ui.visuals().error_fg_color,
        _ => ui.visuals().text_color(),
    };
    let mut text = job.describe_state(now);
    if job.cancel_requested && !job.state.is_final() {
        text.push_str(", cancelling");
    }
    let label = ui.label(RichText::new(text).color(color));
    if !job.message.is_empty() {
        label.on_hover_text(&job.message);
    }
}

fn rows_ui(ui: &mut egui::Ui, job: &BatchJob) {
    if job.state == JobState::Running && job.rows_total > 0 {
        let fraction = job.rows_done as f32 / job.rows_total as f32;
        ui.add(
            egui::ProgressBar::new(fraction)
                .desired_width(140.0)
                .text(format!("{} / {}", job.rows_done, job.rows_total)),
        );
        return;
    }
    let mut text = format!("{}", job.rows_done);
    if job.rows_failed > 0 {
        text.push_str(&format!(", {} failed", job.rows_failed));
    }
    ui.label(text);
}

/// A job in detail: its message, rate, run and first failures.
fn job_ui(ui: &mut egui::Ui, job: &BatchJob) -> Option<Navigate> {
    let mut navigate = None;
    ui.strong(format!("Job {}", job.id));
    ui.label(format!("Input: {}", job.input));
    if let Some(rate) = job.rows_per_second() {
        ui.label(format!("{} rows, {rate:.0} rows/s", job.rows_done));
    }
    if !job.message.is_empty() && job.state == JobState::Failed {
        ui.colored_label(ui.visuals().error_fg_color, &job.message);
    }
    if let Some(run) = &job.run_id {
        ui.horizontal(|ui| {
            ui.label("MLflow run");
            if ui.link(run).clicked() {
                navigate = Some(Navigate::Run(run.clone()));
            }
        });
    }
    if !job.failures.is_empty() {
        ui.label(format!(
            "Failed rows ({} in all; the first shown):",
            job.rows_failed
        ));
        for f in job.failures.iter().take(20) {
            ui.label(
                RichText::new(format!("{}: {}", f.place(), f.error))
                    .color(ui.visuals().error_fg_color),
            );
        }
    }
    navigate
}

/// A path's last part (a data asset reference stays whole).
fn short_input(input: &str) -> String {
    std::path::Path::new(input)
        .is_absolute()
        .then(|| {
            std::path::Path::new(input)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .flatten()
        .unwrap_or_else(|| input.to_owned())
}
