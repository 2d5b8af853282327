//! MLflow's REST API over [`Tracking`]: each endpoint's request read from JSON (a POST body or
//! a GET query turned into JSON), checked, run as a read or a grouped write, and answered with
//! MLflow's response JSON. The HTTP server only routes bytes here, so the protocol is testable
//! without a socket.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::experiments::{self, ViewType};
use super::lenient;
use super::logged_models;
use super::registry;
use super::runs::{self, Batch, NewRun, RunUpdate};
use super::search::{self, RunQuery};
use super::types::{DatasetInput, Metric, ModelOutput, Param, Tag};
use super::{ErrorCode, Tracking, TrackingError, TrackingResult, validate_artifact_path};

mod logged_models_api;
mod registry_api;

/// The prefix of the artifact proxy's URIs; a path after it is an artifact path.
pub const ARTIFACTS_SCHEME: &str = "mlflow-artifacts:/";

/// A request's fields: a JSON body as the client sent it (parsed straight into the endpoint's
/// request type), or fields already gathered as JSON (a GET query; calls from Lathe itself).
pub enum Request<'a> {
    Json(&'a [u8]),
    Fields(Value),
}

impl From<Value> for Request<'_> {
    fn from(fields: Value) -> Self {
        Request::Fields(fields)
    }
}

fn parse<T: DeserializeOwned>(body: Request<'_>) -> TrackingResult<T> {
    let (error, value) = match body {
        Request::Json(bytes) => {
            let mut json = serde_json::Deserializer::from_slice(bytes);
            match serde_path_to_error::deserialize(&mut json) {
                Ok(parsed) => return Ok(parsed),
                Err(e) if e.inner().is_syntax() || e.inner().is_eof() => {
                    return Err(TrackingError::invalid(format!(
                        "Malformed request: the body is not JSON ({})",
                        e.inner()
                    )));
                }
                Err(e) => (e, serde_json::from_slice::<Value>(bytes).ok()),
            }
        }
        Request::Fields(fields) => match serde_path_to_error::deserialize(&fields) {
            Ok(parsed) => return Ok(parsed),
            Err(e) => (e, Some(fields)),
        },
    };
    Err(field_error(&error, value.as_ref()))
}

/// A request field of the wrong type, or missing, in MLflow's words
/// (`_validate_param_against_schema` in its handlers): "Invalid value 123 for parameter
/// 'name' supplied: …" or "Missing value for required parameter 'metrics[0].timestamp'."
fn field_error(
    error: &serde_path_to_error::Error<serde_json::Error>,
    body: Option<&Value>,
) -> TrackingError {
    let reason = error.inner().to_string();
    let reason = reason.split(" at line ").next().unwrap_or(&reason);
    let mut path = error.path().to_string();
    if path == "." {
        path.clear();
    }
    if let Some(field) = reason
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        if !(path == field || path.ends_with(&format!(".{field}"))) {
            path = if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
        }
        return missing(&path);
    }
    let given = body.and_then(|b| value_at(b, &path));
    // A null is a value left out, as MLflow reads it.
    if given.is_some_and(Value::is_null) {
        return missing(&path);
    }
    let given = given.map(ToString::to_string);
    let expected = reason
        .split_once("expected ")
        .map(|(_, e)| e.split(", got").next().unwrap_or(e).to_owned())
        .unwrap_or_else(|| reason.to_owned());
    TrackingError::invalid(format!(
        "Invalid value {} for parameter '{path}' supplied: {expected} was expected. See the API \
         docs for more information about request parameters.",
        given.unwrap_or_else(|| "?".to_owned())
    ))
}

/// The value at a path such as `metrics[0].timestamp` in a request body.
fn value_at<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = body;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indices) = part
            .split_once('[')
            .map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            at = at.get(name)?;
        }
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            at = at.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(at)
}

fn missing(field: &str) -> TrackingError {
    TrackingError::invalid(format!(
        "Missing value for required parameter '{field}'. See the API docs for more information \
         about request parameters."
    ))
}

fn required(field: &str, value: Option<String>) -> TrackingResult<String> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing(field))
}

fn to_json(value: impl serde::Serialize) -> TrackingResult<Value> {
    serde_json::to_value(value).map_err(|e| TrackingError::internal(e.to_string()))
}

#[derive(Deserialize)]
struct Ids {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    run_id: Option<String>,
    /// MLflow's older name for `run_id`; clients send both.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    run_uuid: Option<String>,
    #[serde(default)]
    experiment_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    version: Option<String>,
    #[serde(default)]
    new_name: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct SearchRequest {
    #[serde(default, deserialize_with = "lenient::strings")]
    experiment_ids: Vec<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    view_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    max_results: Option<i64>,
    #[serde(default, deserialize_with = "lenient::strings")]
    order_by: Vec<String>,
    #[serde(default)]
    page_token: Option<String>,
}

impl SearchRequest {
    fn max_results(&self, default: usize) -> TrackingResult<usize> {
        match self.max_results {
            None => Ok(default),
            Some(n) if n >= 1 => Ok(n as usize),
            Some(n) => Err(TrackingError::invalid(format!(
                "Invalid value {n} for parameter 'max_results': it must be at least 1"
            ))),
        }
    }
}

#[derive(Deserialize)]
struct CreateExperiment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct CreateRun {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    experiment_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    start_time: Option<i64>,
    #[serde(default)]
    run_name: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct UpdateRun {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    end_time: Option<i64>,
    #[serde(default)]
    run_name: Option<String>,
}

#[derive(Deserialize)]
struct LogMetric {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    run_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    run_uuid: Option<String>,
    // The metric's fields one by one (not flattened), so an error names its field.
    key: String,
    #[serde(deserialize_with = "super::types::required_f64")]
    value: f64,
    #[serde(deserialize_with = "super::types::required_i64")]
    timestamp: i64,
    #[serde(default, deserialize_with = "lenient::i64_or_zero")]
    step: i64,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default)]
    dataset_name: Option<String>,
    #[serde(default)]
    dataset_digest: Option<String>,
}

impl LogMetric {
    fn metric(&self) -> Metric {
        Metric {
            key: self.key.clone(),
            value: self.value,
            timestamp: self.timestamp,
            step: self.step,
            model_id: self.model_id.clone(),
            dataset_name: self.dataset_name.clone(),
            dataset_digest: self.dataset_digest.clone(),
            run_id: None,
        }
    }
}

#[derive(Deserialize)]
struct LogBatch {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct LogInputs {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetInput>,
    #[serde(default)]
    models: Vec<super::types::ModelInput>,
}

#[derive(Deserialize)]
struct LogOutputs {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    models: Vec<ModelOutput>,
}

#[derive(Deserialize)]
struct History {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    #[serde(default)]
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    page_token: Option<String>,
}

#[derive(Deserialize)]
struct ListArtifacts {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

fn page(items_key: &str, items: Value, next: Option<String>) -> Value {
    let mut out = serde_json::Map::new();
    out.insert(items_key.to_owned(), items);
    if let Some(next) = next {
        out.insert("next_page_token".to_owned(), Value::String(next));
    }
    Value::Object(out)
}

impl Tracking {
    /// Answers one MLflow REST call. `endpoint` is the path after `/api/2.0/mlflow/` (or
    /// `/ajax-api/2.0/mlflow/`), e.g. `runs/log-batch`.
    pub fn handle<'a>(
        &self,
        method: &str,
        endpoint: &str,
        body: impl Into<Request<'a>>,
    ) -> TrackingResult<Value> {
        let body = body.into();
        if let Some(rest) = endpoint.strip_prefix("logged-models") {
            return self.handle_logged_models(method, rest.trim_start_matches('/'), body);
        }
        match (method, endpoint) {
            ("POST", "experiments/create") => {
                let req: CreateExperiment = parse(body)?;
                let name = required("name", req.name)?;
                let id = self.write(move |c| {
                    experiments::create(c, &name, req.artifact_location.as_deref(), &req.tags)
                })?;
                Ok(json!({ "experiment_id": id }))
            }
            ("GET", "experiments/get") => {
                let id = required("experiment_id", parse::<Ids>(body)?.experiment_id)?;
                let experiment = self.read(|c| experiments::get(c, &id))?;
                Ok(json!({ "experiment": to_json(experiment)? }))
            }
            ("GET", "experiments/get-by-name") => {
                let name = required("experiment_name", parse::<Ids>(body)?.experiment_name)?;
                let experiment = self.read(|c| experiments::get_by_name(c, &name))?;
                Ok(json!({ "experiment": to_json(experiment)? }))
            }
            ("GET" | "POST", "experiments/search") => {
                let req: SearchRequest = parse(body)?;
                let view = ViewType::parse(req.view_type.as_deref())?;
                let max = req.max_results(1000)?.min(50_000);
                let offset = search::parse_page_token(req.page_token.as_deref())?;
                let filter = req.filter.unwrap_or_default();
                let (found, next) = self
                    .read(|c| experiments::search(c, view, &filter, &req.order_by, max, offset))?;
                Ok(page("experiments", to_json(found)?, next))
            }
            ("POST", "experiments/update") => {
                let req: Ids = parse(body)?;
                let id = required("experiment_id", req.experiment_id)?;
                let new_name = required("new_name", req.new_name)?;
                self.write(move |c| experiments::rename(c, &id, &new_name))?;
                Ok(json!({}))
            }
            ("POST", "experiments/delete" | "experiments/restore") => {
                let id = required("experiment_id", parse::<Ids>(body)?.experiment_id)?;
                let deleted = endpoint.ends_with("delete");
                self.write(move |c| experiments::set_deleted(c, &id, deleted))?;
                Ok(json!({}))
            }
            ("POST", "experiments/set-experiment-tag") => {
                let req: Ids = parse(body)?;
                let id = required("experiment_id", req.experiment_id)?;
                let key = required("key", req.key)?;
                let value = req.value.unwrap_or_default();
                self.write(move |c| {
                    let numeric = experiments::require_active(c, &id)?;
                    experiments::set_tag(c, numeric, &key, &value)
                })?;
                Ok(json!({}))
            }
            ("POST", "experiments/delete-experiment-tag") => {
                let req: Ids = parse(body)?;
                let id = required("experiment_id", req.experiment_id)?;
                let key = required("key", req.key)?;
                self.write(move |c| experiments::delete_tag(c, &id, &key))?;
                Ok(json!({}))
            }
            ("POST", "runs/create") => {
                let req: CreateRun = parse(body)?;
                let new = NewRun {
                    experiment_id: req.experiment_id.unwrap_or_else(|| "0".into()),
                    user_id: req.user_id.unwrap_or_default(),
                    start_time: req.start_time,
                    run_name: req.run_name,
                    tags: req.tags,
                };
                let run = self.create_run(new)?;
                Ok(json!({ "run": to_json(run)? }))
            }
            ("GET", "runs/get") => {
                let req: Ids = parse(body)?;
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                let run = self.read(|c| runs::get(c, &id))?;
                Ok(json!({ "run": to_json(run)? }))
            }
            ("POST", "runs/update") => {
                let req: UpdateRun = parse(body)?;
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                let change = RunUpdate {
                    status: req.status.as_deref().map(str::parse).transpose()?,
                    end_time: req.end_time,
                    run_name: req.run_name,
                };
                let info = self.update_run(&id, change)?;
                Ok(json!({ "run_info": to_json(info)? }))
            }
            ("POST", "runs/delete" | "runs/restore") => {
                let req: Ids = parse(body)?;
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                let deleted = endpoint.ends_with("delete");
                self.write(move |c| runs::set_deleted(c, &id, deleted))?;
                Ok(json!({}))
            }
            ("POST", "runs/log-metric") => {
                let req: LogMetric = parse(body)?;
                let metric = req.metric();
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                self.log_batch(
                    &id,
                    Batch {
                        metrics: vec![metric],
                        ..Batch::default()
                    },
                )?;
                Ok(json!({}))
            }
            ("POST", "runs/log-parameter") => {
                let req: Ids = parse(body)?;
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                let param = Param {
                    key: required("key", req.key)?,
                    value: req.value.unwrap_or_default(),
                };
                self.log_batch(
                    &id,
                    Batch {
                        params: vec![param],
                        ..Batch::default()
                    },
                )?;
                Ok(json!({}))
            }
            ("POST", "runs/set-tag") => {
                let req: Ids = parse(body)?;
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                let tag = Tag {
                    key: required("key", req.key)?,
                    value: req.value.unwrap_or_default(),
                };
                self.log_batch(
                    &id,
                    Batch {
                        tags: vec![tag],
                        ..Batch::default()
                    },
                )?;
                Ok(json!({}))
            }
            ("POST", "runs/delete-tag") => {
                let req: Ids = parse(body)?;
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                let key = required("key", req.key)?;
                self.write(move |c| runs::delete_tag(c, &id, &key))?;
                Ok(json!({}))
            }
            ("POST", "runs/log-batch") => {
                let req: LogBatch = parse(body)?;
                let id = required("run_id", req.run_id)?;
                self.log_batch(
                    &id,
                    Batch {
                        metrics: req.metrics,
                        params: req.params,
                        tags: req.tags,
                    },
                )?;
                Ok(json!({}))
            }
            ("POST", "runs/log-inputs") => {
                let req: LogInputs = parse(body)?;
                let id = required("run_id", req.run_id)?;
                self.write(move |c| {
                    runs::log_inputs(c, &id, &req.datasets)?;
                    logged_models::log_model_inputs(c, &id, &req.models)
                })?;
                Ok(json!({}))
            }
            ("POST" | "GET", "runs/search") => {
                let (runs, next_page_token) = self.search_runs(body)?;
                Ok(page("runs", to_json(runs)?, next_page_token))
            }
            ("GET", "metrics/get-history") => {
                let req: History = parse(body)?;
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                let key = required("metric_key", req.metric_key)?;
                let max = req.max_results.unwrap_or(25_000).clamp(1, 25_000) as usize;
                let offset = search::parse_page_token(req.page_token.as_deref())?;
                let points = self.read(|c| {
                    let run = runs::find(c, &id)?;
                    super::metrics::history(c, run.id, &key)
                })?;
                let next = (points.len() > offset + max).then(|| (offset + max).to_string());
                let metrics: Vec<Metric> = points
                    .into_iter()
                    .skip(offset)
                    .take(max)
                    .map(|p| Metric {
                        key: key.clone(),
                        value: p.value,
                        timestamp: p.timestamp,
                        step: p.step,
                        ..Metric::default()
                    })
                    .collect();
                Ok(page("metrics", to_json(metrics)?, next))
            }
            ("GET", "artifacts/list") => {
                let req: ListArtifacts = parse(body)?;
                if let Some(path) = &req.path {
                    validate_artifact_path(path)?;
                }
                let id = required("run_id", req.run_id.or(req.run_uuid))?;
                let run = self.read(|c| runs::get(c, &id))?;
                let root = run.info.artifact_uri.clone();
                let files = match root.strip_prefix(ARTIFACTS_SCHEME) {
                    Some(base) => {
                        let sub = req.path.unwrap_or_default();
                        let dir = if sub.is_empty() {
                            base.to_owned()
                        } else {
                            format!("{}/{}", base.trim_end_matches('/'), sub.trim_matches('/'))
                        };
                        let mut files = self.list_artifacts(&dir)?;
                        if !sub.is_empty() {
                            for f in &mut files {
                                f.path = format!("{}/{}", sub.trim_matches('/'), f.path);
                            }
                        }
                        files
                    }
                    None => Vec::new(),
                };
                Ok(json!({ "root_uri": root, "files": to_json(files)? }))
            }
            ("POST", "runs/outputs") => {
                let req: LogOutputs = parse(body)?;
                let id = required("run_id", req.run_id)?;
                self.write(move |c| logged_models::log_outputs(c, &id, &req.models))?;
                Ok(json!({}))
            }
            _ => self.handle_registry(method, endpoint, body),
        }
    }

    /// Answers one MLflow REST call as the bytes of its JSON response: [`Tracking::handle`], but
    /// a page of runs (up to thousands, the largest answer) is written out directly rather than
    /// built as a JSON tree first.
    pub fn answer<'a>(
        &self,
        method: &str,
        endpoint: &str,
        body: impl Into<Request<'a>>,
    ) -> TrackingResult<Vec<u8>> {
        #[derive(serde::Serialize)]
        struct RunsPage {
            runs: Vec<super::types::Run>,
            #[serde(skip_serializing_if = "Option::is_none")]
            next_page_token: Option<String>,
        }
        let bytes = if matches!(method, "GET" | "POST") && endpoint == "runs/search" {
            let (runs, next_page_token) = self.search_runs(body.into())?;
            serde_json::to_vec(&RunsPage {
                runs,
                next_page_token,
            })
        } else {
            serde_json::to_vec(&self.handle(method, endpoint, body)?)
        };
        bytes.map_err(|e| TrackingError::internal(e.to_string()))
    }

    fn search_runs(
        &self,
        body: Request<'_>,
    ) -> TrackingResult<(Vec<super::types::Run>, Option<String>)> {
        let req: SearchRequest = parse(body)?;
        let view = ViewType::parse(req.run_view_type.as_deref())?;
        let query = RunQuery {
            experiment_ids: &req.experiment_ids,
            filter: req.filter.as_deref().unwrap_or_default(),
            view,
            order_by: &req.order_by,
            max_results: req.max_results(search::DEFAULT_MAX_RESULTS)?,
            page_token: req.page_token.as_deref(),
        };
        self.read(|c| search::search_runs(c, &query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Tracking) {
        let dir = tempfile::tempdir().unwrap();
        let tracking = Tracking::open(dir.path()).unwrap();
        (dir, tracking)
    }

    fn call(t: &Tracking, method: &str, endpoint: &str, body: Value) -> Value {
        t.handle(method, endpoint, body)
            .unwrap_or_else(|e| panic!("{method} {endpoint}: {e}"))
    }

    fn error(t: &Tracking, method: &str, endpoint: &str, body: Value) -> (ErrorCode, String) {
        let e = t.handle(method, endpoint, body).unwrap_err();
        (e.code, e.message)
    }

    fn new_run(t: &Tracking, experiment_id: &str) -> String {
        let run = call(
            t,
            "POST",
            "runs/create",
            json!({ "experiment_id": experiment_id }),
        );
        run["run"]["info"]["run_id"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_run_keeps_what_was_logged() {
        let (_dir, t) = store();
        let exp = call(&t, "POST", "experiments/create", json!({ "name": "e" }));
        let exp = exp["experiment_id"].as_str().unwrap().to_owned();
        let run = new_run(&t, &exp);
        let metrics: Vec<Value> = (0..10)
            .map(|s| json!({ "key": "loss", "value": 1.0 / (s as f64 + 1.0), "timestamp": 1000 + s, "step": s }))
            .collect();
        call(
            &t,
            "POST",
            "runs/log-batch",
            json!({ "run_id": run, "metrics": metrics, "params": [{ "key": "lr", "value": "0.1" }],
                    "tags": [{ "key": "team", "value": "vision" }] }),
        );
        call(
            &t,
            "POST",
            "runs/log-metric",
            json!({ "run_id": run, "key": "loss", "value": "NaN", "timestamp": "5", "step": "3" }),
        );
        let got = call(
            &t,
            "GET",
            "runs/get",
            lenient::query_to_json(&format!("run_id={run}")),
        );
        let data = &got["run"]["data"];
        assert_eq!(data["params"], json!([{ "key": "lr", "value": "0.1" }]));
        assert_eq!(
            data["metrics"][0]["value"],
            json!(0.1),
            "latest is step 9, not the NaN at step 3"
        );
        assert!(
            data["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["key"] == "team")
        );
        let history = call(
            &t,
            "GET",
            "metrics/get-history",
            lenient::query_to_json(&format!("run_id={run}&metric_key=loss&max_results=4")),
        );
        assert_eq!(history["metrics"].as_array().unwrap().len(), 4);
        assert_eq!(history["next_page_token"], "4");
        let all = call(
            &t,
            "GET",
            "metrics/get-history",
            json!({ "run_id": run, "metric_key": "loss" }),
        );
        let steps: Vec<i64> = all["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["step"].as_i64().unwrap())
            .collect();
        assert_eq!(steps, [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn bad_requests_get_mlflow_error_codes() {
        let (_dir, t) = store();
        let run = new_run(&t, "0");
        let too_many: Vec<Value> = (0..1001)
            .map(|s| json!({ "key": "m", "value": 1, "timestamp": 0, "step": s }))
            .collect();
        let long_value = "x".repeat(6001);
        let cases = [
            (
                "POST",
                "runs/log-metric",
                json!({ "run_id": "nope", "key": "m", "value": 1, "timestamp": 1 }),
                ErrorCode::ResourceDoesNotExist,
                "Run with id=nope not found",
            ),
            (
                "POST",
                "runs/log-batch",
                json!({ "run_id": "r", "metrics": [{ "key": "m", "value": 1 }] }),
                ErrorCode::InvalidParameterValue,
                "Missing value for required parameter 'metrics[0].timestamp'",
            ),
            (
                "POST",
                "runs/log-metric",
                json!({ "run_id": 31, "key": "m", "value": 1, "timestamp": 1 }),
                ErrorCode::InvalidParameterValue,
                "Invalid value 31 for parameter 'run_id' supplied",
            ),
            (
                "POST",
                "runs/log-metric",
                json!({ "run_id": "r", "key": "m", "value": 1, "timestamp": 1, "step": "foo" }),
                ErrorCode::InvalidParameterValue,
                "Invalid value \"foo\" for parameter 'step' supplied",
            ),
            (
                "POST",
                "runs/log-batch",
                json!({ "run_id": "r", "tags": "foo" }),
                ErrorCode::InvalidParameterValue,
                "Invalid value \"foo\" for parameter 'tags' supplied",
            ),
            (
                "POST",
                "experiments/create",
                json!({ "name": 123 }),
                ErrorCode::InvalidParameterValue,
                "Invalid value 123 for parameter 'name' supplied",
            ),
            (
                "POST",
                "runs/log-batch",
                json!({ "run_id": run, "metrics": too_many }),
                ErrorCode::InvalidParameterValue,
                "at most 1000 metrics",
            ),
            (
                "POST",
                "runs/log-parameter",
                json!({ "run_id": run, "key": "p", "value": long_value }),
                ErrorCode::InvalidParameterValue,
                "limit is 6000",
            ),
            (
                "POST",
                "runs/log-parameter",
                json!({ "run_id": run, "key": "../p", "value": "1" }),
                ErrorCode::InvalidParameterValue,
                "Invalid param name",
            ),
            (
                "POST",
                "runs/log-batch",
                json!({ "run_id": run, "metrics": "not a list" }),
                ErrorCode::InvalidParameterValue,
                "Invalid value \"not a list\" for parameter 'metrics' supplied",
            ),
            (
                "POST",
                "runs/create",
                json!({ "experiment_id": "42" }),
                ErrorCode::ResourceDoesNotExist,
                "No Experiment with id=42",
            ),
            (
                "GET",
                "experiments/get-by-name",
                json!({ "experiment_name": "none" }),
                ErrorCode::ResourceDoesNotExist,
                "Could not find experiment",
            ),
            (
                "POST",
                "experiments/create",
                json!({ "name": "Default" }),
                ErrorCode::ResourceAlreadyExists,
                "already exists",
            ),
            (
                "POST",
                "runs/search",
                json!({ "experiment_ids": ["0"], "filter": "metrics.a = 'x'" }),
                ErrorCode::InvalidParameterValue,
                "compare with numbers",
            ),
            (
                "POST",
                "runs/search",
                json!({ "experiment_ids": ["0"], "page_token": "zz" }),
                ErrorCode::InvalidParameterValue,
                "Invalid page token",
            ),
            (
                "GET",
                "registered-models/get",
                json!({ "name": "none" }),
                ErrorCode::ResourceDoesNotExist,
                "not found",
            ),
            (
                "POST",
                "runs/unknown",
                json!({}),
                ErrorCode::EndpointNotFound,
                "No endpoint",
            ),
        ];
        for (method, endpoint, body, code, fragment) in cases {
            let (got, message) = error(&t, method, endpoint, body);
            assert_eq!(got, code, "{endpoint}: {message}");
            assert!(message.contains(fragment), "{endpoint}: {message}");
        }
        // A param never changes; logging to a deleted run is refused.
        call(
            &t,
            "POST",
            "runs/log-parameter",
            json!({ "run_id": run, "key": "p", "value": "1" }),
        );
        let (code, message) = error(
            &t,
            "POST",
            "runs/log-parameter",
            json!({ "run_id": run, "key": "p", "value": "2" }),
        );
        assert_eq!(code, ErrorCode::InvalidParameterValue, "{message}");
        call(&t, "POST", "runs/delete", json!({ "run_id": run }));
        let (_, message) = error(
            &t,
            "POST",
            "runs/set-tag",
            json!({ "run_id": run, "key": "k", "value": "v" }),
        );
        assert!(
            message.contains("must be in the 'active' state"),
            "{message}"
        );
    }

    #[test]
    fn a_failed_request_in_a_group_takes_nothing_with_it() {
        let (_dir, t) = store();
        let run = new_run(&t, "0");
        // Queue many writes at once so they share commits; every other one fails.
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..200)
                .map(|i| {
                    let (t, run) = (&t, &run);
                    scope.spawn(move || {
                        let key = if i % 2 == 0 {
                            format!("k{i}")
                        } else {
                            "../bad".to_owned()
                        };
                        t.handle(
                        "POST",
                        "runs/log-metric",
                        json!({ "run_id": run, "key": key, "value": i, "timestamp": 0, "step": 0 }),
                    )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 100);
        let got = call(&t, "GET", "runs/get", json!({ "run_id": run }));
        assert_eq!(got["run"]["data"]["metrics"].as_array().unwrap().len(), 100);
    }

    #[test]
    fn search_filters_orders_and_pages() {
        let (_dir, t) = store();
        for i in 0..7 {
            let run = new_run(&t, "0");
            let model = if i % 2 == 0 { "tree" } else { "linear" };
            call(
                &t,
                "POST",
                "runs/log-batch",
                json!({ "run_id": run,
                "metrics": [{ "key": "acc", "value": i as f64 / 10.0, "timestamp": 0, "step": 0 }],
                "params": [{ "key": "model", "value": model }] }),
            );
        }
        let search = |filter: &str, order: &str, max: i64, token: Option<&str>| {
            let mut body = json!({ "experiment_ids": ["0"], "filter": filter, "order_by": [order], "max_results": max });
            if let Some(token) = token {
                body["page_token"] = json!(token);
            }
            call(&t, "POST", "runs/search", body)
        };
        let accs = |page: &Value| -> Vec<f64> {
            page["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["data"]["metrics"][0]["value"].as_f64().unwrap())
                .collect()
        };
        // The server's direct writing of a runs page says the same as the JSON tree.
        let body =
            json!({ "experiment_ids": ["0"], "max_results": 3, "order_by": ["metrics.acc ASC"] });
        let direct: Value =
            serde_json::from_slice(&t.answer("POST", "runs/search", body.clone()).unwrap())
                .unwrap();
        assert_eq!(direct, call(&t, "POST", "runs/search", body));
        let trees = search(
            "params.model = 'tree' and metrics.acc >= 0.2",
            "metrics.acc DESC",
            10,
            None,
        );
        assert_eq!(accs(&trees), [0.6, 0.4, 0.2]);
        let first = search("", "metrics.acc ASC", 3, None);
        assert_eq!(accs(&first), [0.0, 0.1, 0.2]);
        let token = first["next_page_token"].as_str().unwrap().to_owned();
        let second = search("", "metrics.acc ASC", 3, Some(&token));
        assert_eq!(accs(&second), [0.3, 0.4, 0.5]);
        let like = search("params.model LIKE 'lin%'", "metrics.acc ASC", 10, None);
        assert_eq!(accs(&like), [0.1, 0.3, 0.5]);
        assert!(
            search("params.model LIKE 'LIN%'", "metrics.acc ASC", 10, None)["runs"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            accs(&search(
                "params.model ILIKE 'LIN%'",
                "metrics.acc ASC",
                10,
                None
            ))
            .len(),
            3
        );
    }

    #[test]
    fn registry_versions_aliases_and_stages() {
        let (_dir, t) = store();
        call(
            &t,
            "POST",
            "registered-models/create",
            json!({ "name": "m", "description": "d" }),
        );
        for _ in 0..2 {
            call(
                &t,
                "POST",
                "model-versions/create",
                json!({ "name": "m", "source": "s3://bucket/x" }),
            );
        }
        call(
            &t,
            "POST",
            "registered-models/alias",
            json!({ "name": "m", "alias": "champion", "version": "2" }),
        );
        let (code, _) = error(
            &t,
            "POST",
            "registered-models/alias",
            json!({ "name": "m", "alias": "v3", "version": "1" }),
        );
        assert_eq!(code, ErrorCode::InvalidParameterValue);
        let by_alias = call(
            &t,
            "GET",
            "registered-models/alias",
            json!({ "name": "m", "alias": "champion" }),
        );
        assert_eq!(by_alias["model_version"]["version"], "2");
        call(
            &t,
            "POST",
            "model-versions/transition-stage",
            json!({ "name": "m", "version": "1", "stage": "production" }),
        );
        let latest = call(
            &t,
            "GET",
            "registered-models/get-latest-versions",
            json!({ "name": "m", "stages": "Production" }),
        );
        assert_eq!(latest["model_versions"][0]["version"], "1");
        call(
            &t,
            "DELETE",
            "model-versions/delete",
            json!({ "name": "m", "version": "2" }),
        );
        let model = call(&t, "GET", "registered-models/get", json!({ "name": "m" }));
        assert!(
            model["registered_model"].get("aliases").is_none(),
            "the alias went with its version"
        );
        call(
            &t,
            "POST",
            "registered-models/rename",
            json!({ "name": "m", "new_name": "n" }),
        );
        let found = call(
            &t,
            "GET",
            "registered-models/search",
            json!({ "filter": "name LIKE 'n%'" }),
        );
        assert_eq!(found["registered_models"][0]["name"], "n");
        call(
            &t,
            "DELETE",
            "registered-models/delete",
            json!({ "name": "n" }),
        );
        let (code, _) = error(
            &t,
            "GET",
            "model-versions/get",
            json!({ "name": "n", "version": "1" }),
        );
        assert_eq!(code, ErrorCode::ResourceDoesNotExist);
    }
}
