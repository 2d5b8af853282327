//! Online endpoints in the window: each endpoint with its deployments (and the inputs their
//! models take), setting the traffic split at once, and sending a test request to the live
//! endpoint, timed.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Failure, Reply, Service, Shared};
use crate::endpoints::{self, Deployment, Endpoint};
use crate::tracking::registry;

#[derive(Debug, Clone, PartialEq)]
pub enum EndpointCommand {
    Load,
    /// Replaces the split (percent per deployment, summing to 100).
    SetTraffic {
        endpoint: String,
        traffic: BTreeMap<String, u32>,
    },
    /// Deploys a registered version (the Models section's Deploy…), making the endpoint when
    /// it is new.
    Deploy {
        endpoint: String,
        deployment: String,
        model: String,
        version: String,
        all_traffic: bool,
    },
    /// Sends `body` (MLflow's scoring JSON) to the endpoint, or to `deployment` when named.
    Test {
        endpoint: String,
        deployment: Option<String>,
        body: String,
    },
    /// Replays the newest `limit` requests `from` collected against `to` (a deployment or
    /// `NAME:VERSION`), as a job.
    Replay {
        endpoint: String,
        from: String,
        to: String,
        limit: usize,
    },
    /// Sets how much of the endpoint's collected data is kept.
    SetCollectionLimits {
        endpoint: String,
        limits: crate::collection::Limits,
    },
    /// Reads the batch endpoints, their deployments and jobs.
    LoadBatch,
    /// Records a batch job and runs it as a job of the window.
    InvokeBatch(crate::batch::job::Invocation),
    /// Cancels batch job `id`, in this process or another.
    CancelBatch(i64),
    /// Makes `deployment` the batch endpoint's default.
    SetBatchDefault {
        endpoint: String,
        deployment: String,
    },
}

/// An endpoint as the window shows it.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub endpoint: Endpoint,
    /// Each deployment with its model's inputs (name, MLflow type).
    pub deployments: Vec<(Deployment, Vec<(String, String)>)>,
    /// The last hour's health points, oldest first.
    pub health: Vec<endpoints::HealthPoint>,
    /// Each deployment's last log lines (time in ms since the epoch, line), oldest first.
    pub logs: Vec<(String, Vec<(i64, String)>)>,
    /// The data its deployments collected, newest window first.
    pub collected: Vec<crate::collection::Window>,
    /// How much of it is kept.
    pub limits: crate::collection::Limits,
}

/// What a test request got back.
pub type TestAnswer = endpoints::Answer;

#[derive(Debug)]
pub enum EndpointEvent {
    Loaded(Reply<Vec<EndpointView>>),
    TrafficSet(Reply<Endpoint>),
    Deployed(Reply<(Endpoint, Deployment)>),
    Tested {
        endpoint: String,
        reply: Reply<TestAnswer>,
    },
    Replayed {
        endpoint: String,
        reply: Reply<crate::replay::Report>,
    },
    CollectionLimitsSet {
        endpoint: String,
        reply: Reply<crate::collection::Limits>,
    },
    BatchLoaded(Reply<super::batch::BatchViews>),
    /// A batch job was recorded and began.
    BatchStarted(Reply<crate::batch::job::BatchJob>),
    /// A batch job run by the window ended (or was never recorded: the error says why).
    BatchEnded(Reply<crate::batch::job::BatchJob>),
    BatchCancelled(Reply<crate::batch::job::BatchJob>),
    BatchDefaultSet(Reply<crate::batch::BatchEndpoint>),
}

pub(super) fn handle(service: &Service, command: EndpointCommand) {
    match command {
        EndpointCommand::Load => {
            service.read(|s| EndpointEvent::Loaded(views(s).map(Arc::new).map_err(Failure::from)));
        }
        EndpointCommand::SetTraffic { endpoint, traffic } => service.read(move |s| {
            let set =
                endpoints::update_endpoint(&s.store, &endpoint, |spec| spec.traffic = traffic);
            EndpointEvent::TrafficSet(set.map(Arc::new).map_err(Failure::from))
        }),
        EndpointCommand::Deploy {
            endpoint,
            deployment,
            model,
            version,
            all_traffic,
        } => service.read(move |s| {
            let made = endpoints::deploy(
                &s.store,
                &endpoint,
                &deployment,
                &model,
                &version,
                all_traffic,
            );
            EndpointEvent::Deployed(made.map(Arc::new).map_err(Failure::from))
        }),
        EndpointCommand::Test {
            endpoint,
            deployment,
            body,
        } => service.read(move |s| {
            let reply = test(s, &endpoint, deployment.as_deref(), &body)
                .map(Arc::new)
                .map_err(Failure::from);
            EndpointEvent::Tested { endpoint, reply }
        }),
        EndpointCommand::Replay {
            endpoint,
            from,
            to,
            limit,
        } => {
            let label = format!("Replaying {from}'s requests to {to}");
            service.job(label, move |shared, _, progress| {
                let target = crate::replay::Target::parse(&to);
                let reply = crate::replay::replay(
                    &shared.store,
                    &endpoint,
                    &from,
                    &target,
                    limit,
                    progress,
                )
                .map(Arc::new)
                .map_err(Failure::from);
                shared.emit(EndpointEvent::Replayed { endpoint, reply });
            });
        }
        EndpointCommand::SetCollectionLimits { endpoint, limits } => service.read(move |s| {
            let reply = crate::collection::set_limits(&s.store, &endpoint, limits)
                .map(|()| Arc::new(limits))
                .map_err(Failure::from);
            EndpointEvent::CollectionLimitsSet { endpoint, reply }
        }),
        EndpointCommand::LoadBatch => super::batch::load(service),
        EndpointCommand::InvokeBatch(invocation) => super::batch::invoke(service, invocation),
        EndpointCommand::CancelBatch(id) => super::batch::cancel(service, id),
        EndpointCommand::SetBatchDefault {
            endpoint,
            deployment,
        } => super::batch::set_default(service, endpoint, deployment),
    }
}

/// A request for a model taking `inputs` (name, MLflow type): one row in MLflow's
/// `dataframe_split` shape — zero for a number, `false` for a boolean, empty text for text —
/// for the Test tab to start from.
pub fn request_template(inputs: &[(String, String)]) -> String {
    let names: Vec<&str> = inputs.iter().map(|(name, _)| name.as_str()).collect();
    let columns = serde_json::to_string(&names).unwrap_or_default();
    let row: Vec<serde_json::Value> = inputs
        .iter()
        .map(|(_, kind)| match kind.as_str() {
            "string" | "binary" | "datetime" => serde_json::json!(""),
            "boolean" => serde_json::json!(false),
            "integer" | "long" => serde_json::json!(0),
            _ => serde_json::json!(0.0),
        })
        .collect();
    let row = serde_json::to_string(&row).unwrap_or_default();
    format!("{{\"dataframe_split\": {{\n  \"columns\": {columns},\n  \"data\": [{row}]\n}}}}")
}

fn views(shared: &Shared) -> crate::Result<Vec<EndpointView>> {
    let tracking = shared.tracking();
    endpoints::endpoints(&shared.store)?
        .into_iter()
        .map(|endpoint| {
            let deployments: Vec<(Deployment, Vec<(String, String)>)> =
                endpoints::deployments(&shared.store, &endpoint.spec.name)?
                    .into_iter()
                    .map(|d| {
                        let (n, v) = (d.model_name.clone(), d.model_version.clone());
                        let inputs = tracking
                            .read(move |c| registry::get_version(c, &n, &v))
                            .ok()
                            .and_then(|v| v.signature)
                            .and_then(|s| s["inputs"].as_array().cloned())
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|f| {
                                let kind = f["type"].as_str().unwrap_or("double");
                                Some((f["name"].as_str()?.to_owned(), kind.to_owned()))
                            })
                            .collect();
                        (d, inputs)
                    })
                    .collect();
            let hour_ago = crate::db::now_millis() - 3600 * 1000;
            let logs = deployments
                .iter()
                .map(|(d, _)| {
                    let lines =
                        endpoints::logs(&shared.store, &endpoint.spec.name, &d.spec.name, 20)?;
                    Ok((d.spec.name.clone(), lines))
                })
                .collect::<crate::Result<_>>()?;
            Ok(EndpointView {
                collected: crate::collection::windows(&shared.store, Some(&endpoint.spec.name))?,
                limits: crate::collection::limits(&shared.store, &endpoint.spec.name)?,
                logs,
                health: endpoints::health(&shared.store, &endpoint.spec.name, hour_ago)?,
                endpoint,
                deployments,
            })
        })
        .collect()
}

fn test(
    shared: &Shared,
    name: &str,
    deployment: Option<&str>,
    body: &str,
) -> crate::Result<TestAnswer> {
    let endpoint = endpoints::endpoint(&shared.store, name)?;
    endpoints::invoke(&endpoint, body.as_bytes(), "application/json", deployment)
}
