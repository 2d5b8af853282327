//! The state of something the service is fetching.

#[derive(Debug, Clone, Default)]
pub enum Loadable<T> {
    #[default]
    Loading,
    Ready(T),
    Failed(String),
}

impl<T> Loadable<std::sync::Arc<T>> {
    pub fn from_reply(reply: Result<std::sync::Arc<T>, String>) -> Self {
        match reply {
            Ok(value) => Loadable::Ready(value),
            Err(e) => Loadable::Failed(e),
        }
    }
}

/// Draws the loading and failed states; returns the value when it is ready.
pub fn ready_or_status_ui<'a, T>(
    ui: &mut egui::Ui,
    state: Option<&'a Loadable<T>>,
    what: &str,
) -> Option<&'a T> {
    match state {
        Some(Loadable::Ready(value)) => Some(value),
        Some(Loadable::Failed(e)) => {
            ui.colored_label(
                ui.visuals().error_fg_color,
                format!("Could not load {what}: {e}"),
            );
            None
        }
        Some(Loadable::Loading) | None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Loading {what}…"));
            });
            None
        }
    }
}
