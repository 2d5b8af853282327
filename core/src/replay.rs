//! Replay: a deployment's collected requests sent again — to another deployment of the same
//! endpoint (over HTTP, marked so they are neither collected nor mirrored), or to a registered
//! model version scored in process — and the answers compared with what the deployment
//! answered when the requests came, before any traffic moves.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::collection::{self, Collected};
use crate::endpoints::{self, Caller};
use crate::serving::{Frame, Scorer, mlflow_protocol};
use crate::store::Store;
use crate::{Error, Result};

/// Where the collected requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Another deployment of the endpoint, through its listener.
    Deployment(String),
    /// A registered model version (`NAME:VERSION`), scored in process (native or ONNX).
    Model { name: String, version: String },
}

impl Target {
    /// `NAME:VERSION` (or `azureml:NAME:VERSION`) is a model version; anything else names a
    /// deployment.
    pub fn parse(text: &str) -> Self {
        let rest = text.strip_prefix("azureml:").unwrap_or(text);
        match rest.rsplit_once(':') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => Self::Model {
                name: name.to_owned(),
                version: version.to_owned(),
            },
            _ => Self::Deployment(text.to_owned()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Deployment(d) => format!("deployment {d}"),
            Self::Model { name, version } => format!("model {name}:{version}"),
        }
    }
}

/// Latency quantiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.retain(|x| x.is_finite());
    if ms.is_empty() {
        return Latency::default();
    }
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    Latency {
        p50_ms: q(0.5),
        p99_ms: q(0.99),
    }
}

/// How the target's answers differ from what the deployment answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub requests: usize,
    pub rows: usize,
    /// Rows answered the same (numbers within 1e-9 relative).
    pub identical: usize,
    pub identical_share: f64,
    /// Rows whose class changed: (answered before, answered now, rows), most first.
    pub flips: Vec<(String, String, usize)>,
    /// The largest difference between numeric answers, when they are numbers.
    pub largest_difference: Option<f64>,
    /// Requests the target refused or failed, and the first one's answer.
    pub failed: usize,
    pub first_failure: Option<String>,
    /// As collected (in the serving process), and as measured now.
    pub from_latency: Latency,
    pub to_latency: Latency,
}

/// Replays the newest `limit` requests `from` (a deployment of `endpoint`) collected against
/// `to`, a request at a time, counted on `progress` (which can cancel it).
///
/// # Errors
/// Cancelled through `progress`;
/// No collected requests (the deployment must collect inputs and outputs), an unknown
/// deployment or model, a model that cannot be scored in process, an endpoint that is not
/// being served.
pub fn replay(
    store: &Store,
    endpoint: &str,
    from: &str,
    to: &Target,
    limit: usize,
    progress: &crate::jobs::Progress,
) -> Result<Report> {
    let found = endpoints::endpoint(store, endpoint)?;
    let known: Vec<String> = endpoints::deployments(store, endpoint)?
        .into_iter()
        .map(|d| d.spec.name)
        .collect();
    for name in std::iter::once(from).chain(match to {
        Target::Deployment(d) => Some(d.as_str()),
        Target::Model { .. } => None,
    }) {
        if !known.iter().any(|k| k == name) {
            return Err(Error::Endpoint(format!(
                "endpoint {endpoint} has no deployment '{name}' ({})",
                known.join(", ")
            )));
        }
    }
    let requests = collection::collected(store, endpoint, from, limit)?;
    if requests.is_empty() {
        return Err(Error::Endpoint(format!(
            "deployment {from} has collected no requests with their answers yet: give it a \
             data_collector with model_inputs and model_outputs enabled, and wait for traffic \
             (parts are written every ten seconds)"
        )));
    }
    let scorer = match to {
        Target::Model { name, version } => {
            let tracking = store.tracking();
            let v = tracking
                .read(|c| crate::tracking::registry::get_version(c, name, version))
                .map_err(|e| Error::Endpoint(format!("model {name}:{version}: {e}")))?;
            Some(Scorer::load(&tracking, &v).map_err(|e| {
                Error::Endpoint(format!(
                    "{e} (to replay against a Python model, deploy it and replay to the deployment)"
                ))
            })?)
        }
        Target::Deployment(_) => None,
    };
    let caller = Caller::new();
    let mut report = Report {
        from: from.to_owned(),
        to: to.describe(),
        requests: requests.len(),
        rows: 0,
        identical: 0,
        identical_share: 0.0,
        flips: Vec::new(),
        largest_difference: None,
        failed: 0,
        first_failure: None,
        from_latency: latency(requests.iter().map(|r| r.latency_ms).collect()),
        to_latency: Latency::default(),
    };
    let mut flips: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut took = Vec::new();
    progress.start_stage("replaying", requests.len() as u64);
    for request in &requests {
        progress.check()?;
        progress.advance(1);
        let started = Instant::now();
        let answered = match (&scorer, to) {
            (Some(scorer), _) => in_process(scorer, &request.inputs),
            (None, Target::Deployment(d)) => over_http(&caller, &found, d, request)?,
            (None, Target::Model { .. }) => unreachable!("a model target has a scorer"),
        };
        took.push(started.elapsed().as_secs_f64() * 1000.0);
        let now = match answered {
            Ok(now) if now.len() == request.outputs.len() => now,
            Ok(now) => {
                report.failed += 1;
                report.first_failure.get_or_insert_with(|| {
                    format!(
                        "request {}: {} answers for {} rows",
                        request.request_id,
                        now.len(),
                        request.outputs.len()
                    )
                });
                continue;
            }
            Err(why) => {
                report.failed += 1;
                report
                    .first_failure
                    .get_or_insert_with(|| format!("request {}: {why}", request.request_id));
                continue;
            }
        };
        for (before, after) in request.outputs.iter().zip(&now) {
            report.rows += 1;
            match (before.as_f64(), after.as_f64()) {
                // Integers are class labels (or cluster ids): a change is a flip.
                (Some(_), Some(_)) if before.is_i64() && after.is_i64() => {
                    if before == after {
                        report.identical += 1;
                    } else {
                        *flips.entry((text(before), text(after))).or_default() += 1;
                    }
                }
                (Some(a), Some(b)) => {
                    let diff = (a - b).abs();
                    report.largest_difference =
                        Some(report.largest_difference.unwrap_or(0.0).max(diff));
                    if diff <= 1e-9 * a.abs().max(1.0) {
                        report.identical += 1;
                    }
                }
                _ if text(before) == text(after) => report.identical += 1,
                _ => *flips.entry((text(before), text(after))).or_default() += 1,
            }
        }
    }
    report.to_latency = latency(took);
    report.identical_share = if report.rows == 0 {
        0.0
    } else {
        report.identical as f64 / report.rows as f64
    };
    let mut flips: Vec<(String, String, usize)> =
        flips.into_iter().map(|((a, b), n)| (a, b, n)).collect();
    flips.sort_by(|x, y| y.2.cmp(&x.2).then_with(|| (&x.0, &x.1).cmp(&(&y.0, &y.1))));
    report.flips = flips;
    Ok(report)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The request's rows scored in process: one answer per row.
fn in_process(scorer: &Scorer, rows: &Frame) -> std::result::Result<Vec<Value>, String> {
    let output = scorer.score(rows).map_err(|e| e.to_string())?;
    Ok(mlflow_protocol::encode(&output)["predictions"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The request sent to deployment `to` as it was collected: rows in MLflow's `dataframe_split`,
/// or a scoring script's own body.
fn over_http(
    caller: &Caller,
    endpoint: &endpoints::Endpoint,
    to: &str,
    request: &Collected,
) -> Result<std::result::Result<Vec<Value>, String>> {
    let script_body = (request.inputs.names == [collection::SCRIPT_REQUEST])
        .then(|| request.inputs.columns[0].first().and_then(Value::as_str))
        .flatten();
    let body = match script_body {
        Some(raw) => raw.as_bytes().to_vec(),
        None => request.inputs.to_dataframe_split().to_string().into_bytes(),
    };
    let answer = caller.send(endpoint, &body, "application/json", Some(to), true)?;
    if !(200..300).contains(&answer.status) {
        return Ok(Err(format!(
            "answered {}: {}",
            answer.status,
            answer.body.trim()
        )));
    }
    let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    Ok(Ok(match script_body {
        Some(_) => vec![value],
        None => value["predictions"].as_array().cloned().unwrap_or_default(),
    }))
}
