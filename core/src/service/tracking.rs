//! Experiments and models in the window: experiments, a filtered run table, a run's detail,
//! a metric's history, an artifact's preview, and the registered models with their versions.

use super::{Reply, Service};
use crate::tracking::Tracking;
use crate::tracking::browse::{Preview, RunDetail, RunTable};
use crate::tracking::metrics::Point;
use crate::tracking::types::{Experiment, ModelVersion, RegisteredModel};

#[derive(Debug, Clone, PartialEq)]
pub enum TrackingCommand {
    LoadExperiments,
    /// The runs of these experiments that match an MLflow filter.
    LoadRuns {
        experiment_ids: Vec<String>,
        filter: String,
    },
    LoadRun {
        run_id: String,
    },
    LoadHistory {
        run_id: String,
        key: String,
    },
    /// A preview of the artifact at this path in the artifact store.
    LoadArtifact {
        path: String,
    },
    LoadModels,
}

#[derive(Debug)]
pub enum TrackingEvent {
    Experiments(Reply<Vec<Experiment>>),
    Runs {
        experiment_ids: Vec<String>,
        filter: String,
        reply: Reply<RunTable>,
    },
    Run {
        run_id: String,
        reply: Reply<RunDetail>,
    },
    History {
        run_id: String,
        key: String,
        reply: Reply<Vec<Point>>,
    },
    Artifact {
        path: String,
        reply: Reply<Preview>,
    },
    Models(Reply<Vec<(RegisteredModel, Vec<ModelVersion>)>>),
}

pub(super) fn handle(service: &Service, command: TrackingCommand) {
    match command {
        TrackingCommand::LoadExperiments => {
            service.read(|s| TrackingEvent::Experiments(s.with_tracking(Tracking::experiments)));
        }
        TrackingCommand::LoadRuns {
            experiment_ids,
            filter,
        } => service.read(move |s| {
            let reply = s.with_tracking(|t| t.run_table(&experiment_ids, &filter));
            TrackingEvent::Runs {
                experiment_ids,
                filter,
                reply,
            }
        }),
        TrackingCommand::LoadRun { run_id } => service.read(move |s| {
            let reply = s.with_tracking(|t| t.run_detail(&run_id));
            TrackingEvent::Run { run_id, reply }
        }),
        TrackingCommand::LoadHistory { run_id, key } => service.read(move |s| {
            let reply = s.with_tracking(|t| t.metric_history(&run_id, &key));
            TrackingEvent::History { run_id, key, reply }
        }),
        TrackingCommand::LoadArtifact { path } => service.read(move |s| {
            let reply = s.with_tracking(|t| t.artifact_preview(&path));
            TrackingEvent::Artifact { path, reply }
        }),
        TrackingCommand::LoadModels => {
            service.read(|s| TrackingEvent::Models(s.with_tracking(Tracking::models)));
        }
    }
}
