//! What the experiment and model views have loaded, keyed so that any view can reuse it: runs
//! in detail, metric histories, artifact previews and their textures.

use std::collections::HashMap;
use std::sync::Arc;

use lathe_core::service::{TrackingCommand, TrackingEvent};
use lathe_core::tracking::browse::{Preview, RunDetail};
use lathe_core::tracking::metrics::Point;

use crate::loadable::Loadable;

#[derive(Default)]
pub struct TrackingCache {
    pub runs: HashMap<String, Loadable<Arc<RunDetail>>>,
    pub histories: HashMap<(String, String), Loadable<Arc<Vec<Point>>>>,
    pub previews: HashMap<String, Loadable<Arc<Preview>>>,
    pub textures: HashMap<String, egui::TextureHandle>,
}

impl TrackingCache {
    /// Takes the events it holds; hands back the rest.
    pub fn on_event(&mut self, event: TrackingEvent) -> Option<TrackingEvent> {
        match event {
            TrackingEvent::Run { run_id, reply } => {
                self.runs.insert(run_id, Loadable::from_reply(reply));
            }
            TrackingEvent::History { run_id, key, reply } => {
                self.histories
                    .insert((run_id, key), Loadable::from_reply(reply));
            }
            TrackingEvent::Artifact { path, reply } => {
                self.textures.remove(&path);
                self.previews.insert(path, Loadable::from_reply(reply));
            }
            other => return Some(other),
        }
        None
    }

    /// Runs changed: the runs still running that a view shows, and their metric histories,
    /// are read again (shown as they are until the new ones arrive).
    pub fn runs_changed(&self, service: &lathe_core::service::Service) {
        let running: Vec<&String> = self
            .runs
            .iter()
            .filter(|(_, r)| matches!(r, Loadable::Ready(d) if d.run.info.status == "RUNNING"))
            .map(|(id, _)| id)
            .collect();
        for run_id in &running {
            service.send(TrackingCommand::LoadRun {
                run_id: (*run_id).clone(),
            });
        }
        for (run_id, key) in self.histories.keys() {
            if running.contains(&run_id) {
                service.send(TrackingCommand::LoadHistory {
                    run_id: run_id.clone(),
                    key: key.clone(),
                });
            }
        }
    }

    /// Forgets everything, so the next frame reads afresh (runs go on logging).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}
