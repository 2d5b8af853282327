//! Batch endpoints for the window: their deployments and jobs, a job started on the service's
//! job threads (progress and cancel in the status bar), a job cancelled wherever it runs.

use std::sync::Arc;

use super::{EndpointEvent, Failure, Service, Shared};
use crate::assets::AssetKind;
use crate::batch::job::{self, BatchJob, Invocation};
use crate::batch::{self, BatchDeployment, BatchEndpoint};

/// Batch endpoints as the window shows them, and the tables they could score.
#[derive(Debug, Clone, Default)]
pub struct BatchViews {
    pub endpoints: Vec<BatchView>,
    /// The newest version of each table data asset, `NAME:VERSION`.
    pub tables: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct BatchView {
    pub endpoint: BatchEndpoint,
    pub deployments: Vec<BatchDeployment>,
    /// Newest first.
    pub jobs: Vec<BatchJob>,
}

impl BatchView {
    /// Whether a job of the endpoint is queued or running (its figures change).
    pub fn busy(&self) -> bool {
        self.jobs.iter().any(|j| !j.state.is_final())
    }
}

pub(super) fn load(service: &Service) {
    service.read(|s| EndpointEvent::BatchLoaded(views(s).map(Arc::new).map_err(Failure::from)));
}

/// Records the job, then runs it as a service job; the window hears when it starts (so it
/// lists it) and when it ends.
pub(super) fn invoke(service: &Service, invocation: Invocation) {
    let label = format!(
        "Batch scoring {} with {}",
        invocation.input, invocation.endpoint
    );
    service.job(label, move |shared, _, progress| {
        let queued = match job::submit(&shared.store, &invocation) {
            Ok(queued) => queued,
            Err(e) => {
                shared.emit(EndpointEvent::BatchEnded(Err(Failure::from(e))));
                return;
            }
        };
        shared.emit(EndpointEvent::BatchStarted(Ok(Arc::new(queued.clone()))));
        let ended = job::run(&shared.store, queued.id, progress);
        shared.emit(EndpointEvent::BatchEnded(
            ended.map(Arc::new).map_err(Failure::from),
        ));
    });
}

pub(super) fn cancel(service: &Service, id: i64) {
    service.read(move |s| {
        EndpointEvent::BatchCancelled(
            job::cancel(&s.store, id)
                .map(Arc::new)
                .map_err(Failure::from),
        )
    });
}

pub(super) fn set_default(service: &Service, endpoint: String, deployment: String) {
    service.read(move |s| {
        EndpointEvent::BatchDefaultSet(
            batch::set_default(&s.store, &endpoint, &deployment)
                .map(Arc::new)
                .map_err(Failure::from),
        )
    });
}

fn views(shared: &Shared) -> crate::Result<BatchViews> {
    let endpoints = batch::endpoints(&shared.store)?
        .into_iter()
        .map(|endpoint| {
            let name = endpoint.spec.name.clone();
            Ok(BatchView {
                deployments: batch::deployments(&shared.store, &name)?,
                jobs: job::jobs(&shared.store, Some(&name))?,
                endpoint,
            })
        })
        .collect::<crate::Result<_>>()?;
    let ws = shared.store.workspace()?;
    let tables = ws
        .list_assets()?
        .into_iter()
        .filter(|a| a.kind == AssetKind::Table)
        .map(|a| format!("{}:{}", a.name, a.latest_version))
        .collect();
    Ok(BatchViews { endpoints, tables })
}
