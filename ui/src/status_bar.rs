//! The status bar: running jobs with progress and a cancel button, then messages.

use lathe_core::service::JobView;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Info(String),
    Error(String),
}

/// Draws the bar; returns the id of a job whose cancel button was clicked.
pub fn status_bar_ui(
    ui: &mut egui::Ui,
    jobs: &[JobView],
    messages: &mut Vec<Message>,
) -> Option<u64> {
    let mut cancel = None;
    for job in jobs {
        // A stable id per job keeps its Cancel button the same widget from frame to frame.
        ui.push_id(("job", job.id), |ui| {
            ui.horizontal(|ui| {
                ui.label(&job.label);
                let p = &job.progress;
                let bar = match p.fraction() {
                    Some(f) => egui::ProgressBar::new(f).show_percentage(),
                    None => egui::ProgressBar::new(0.0).animate(true),
                };
                ui.add(bar.desired_width(240.0).text(p.stage.clone()));
                if ui.button("Cancel").clicked() {
                    cancel = Some(job.id);
                }
            })
        });
    }
    let mut dismissed = None;
    for (i, message) in messages.iter().enumerate().rev().take(3) {
        ui.horizontal(|ui| {
            match message {
                Message::Info(text) => ui.label(text),
                Message::Error(text) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("⚠ {text}"))
                }
            };
            if ui.small_button("✖").on_hover_text("Dismiss").clicked() {
                dismissed = Some(i);
            }
        });
    }
    if let Some(i) = dismissed {
        messages.remove(i);
    }
    if jobs.is_empty() && messages.is_empty() {
        ui.weak("Ready. Drop files or folders on the window to import them.");
    }
    cancel
}
