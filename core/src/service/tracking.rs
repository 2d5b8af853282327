//! Experiments and models in the window: experiments, a filtered run table, a run's detail,
//! a metric's history, an artifact's preview, the registered models with their versions, and
//! `runs push` / `pull` with an MLflow tracking server as jobs with progress and cancel.

use std::sync::Arc;

use super::{Failure, Reply, Service};
use crate::remote::{self, Token};
use crate::sync::{Report, Selection};
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
    /// `runs push` to (or, `push` false, `runs pull` from) the tracking server at `uri`, as
    /// a job. Pull takes `selection`'s experiments and runs.
    Exchange {
        uri: String,
        token: Option<Token>,
        push: bool,
        selection: Selection,
    },
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
    Exchanged {
        uri: String,
        push: bool,
        reply: Reply<Report>,
    },
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
        TrackingCommand::Exchange {
            uri,
            token,
            push,
            selection,
        } => {
            let label = if push {
                format!("Pushing runs to {uri}")
            } else {
                format!("Pulling runs from {uri}")
            };
            service.job(label, move |shared, _, progress| {
                let reply = remote::Server::new(&uri, token.as_ref().map(Token::expose))
                    .and_then(|server| {
                        if push {
                            remote::push(&shared.store, &server, &selection, progress)
                        } else {
                            let named = (&selection.experiments[..], &selection.runs[..]);
                            remote::pull(&shared.store, &server, named, progress)
                        }
                    })
                    .map(Arc::new)
                    .map_err(Failure::from);
                shared.emit(TrackingEvent::Exchanged { uri, push, reply });
            });
        }
    }
}
