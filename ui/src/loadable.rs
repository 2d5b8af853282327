//! The state of something the service is fetching.

#[derive(Debug, Clone, Default)]
pub enum Loadable<T> {
    #[default]
    Loading,
    Ready(T),
    Failed(String),
}

impl<T> Loadable<std::sync::Arc<T>> {
    pub fn from_reply(reply: lathe_core::service::Reply<T>) -> Self {
        match reply {
            Ok(value) => Loadable::Ready(value),
            Err(e) => Loadable::Failed(e.to_string()),
        }
    }
}

/// Shows the entry for `key` in `map`: asks for it with `request` when absent, draws the loading
/// and failed states (a failure offers Retry), and returns the value when it is ready.
pub fn loaded_ui<K: std::hash::Hash + Eq + Clone, T: Clone>(
    ui: &mut egui::Ui,
    map: &mut std::collections::HashMap<K, Loadable<T>>,
    key: &K,
    what: &str,
    request: impl FnOnce(),
) -> Option<T> {
    let state = map.entry(key.clone()).or_insert_with(|| {
        request();
        Loadable::Loading
    });
    let value = ready_or_status_ui(ui, Some(state), what).cloned();
    if matches!(state, Loadable::Failed(_)) && ui.button("Retry").clicked() {
        // Without an entry, the next frame asks again.
        map.remove(key);
    }
    value
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
