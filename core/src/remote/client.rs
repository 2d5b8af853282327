//! The calls `lathe runs push|pull` make to an MLflow tracking server, over its REST API
//! (<https://mlflow.org/docs/latest/api_reference/rest-api.html>) and its artifact proxy
//! (`/api/2.0/mlflow-artifacts/artifacts/…`, what `mlflow server` serves by default).
//!
//! The token is sent as MLflow's client sends `MLFLOW_TRACKING_TOKEN` (a bearer token), or
//! `MLFLOW_TRACKING_USERNAME`/`PASSWORD` as basic auth; it is never stored or printed.

use std::io::{Read, Write};
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

use crate::tracking::types::{DatasetInput, Metric, Param, Tag};
use crate::{Error, Result};

/// What a path segment may not hold unencoded (RFC 3986 §3.3), `/` kept as the separator.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'&')
    .add(b'+')
    .add(b';')
    .add(b'=');

/// MLflow's limits on one `runs/log-batch` (its `MAX_METRICS_PER_BATCH`,
/// `MAX_PARAMS_TAGS_PER_BATCH` and `MAX_ENTITIES_PER_BATCH`).
const BATCH_METRICS: usize = 1000;
const BATCH_PARAMS_TAGS: usize = 100;

/// A tracking server and how to speak to it.
pub struct Server {
    base: String,
    authorization: Option<String>,
    api: ureq::Agent,
    files: ureq::Agent,
}

/// A run as the server has it: the parts push and pull read.
#[derive(Debug, Clone)]
pub struct RemoteRun {
    pub id: String,
    pub name: String,
    pub experiment_id: String,
    pub user_id: String,
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub deleted: bool,
    /// The latest point of each metric.
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
    pub inputs: Vec<DatasetInput>,
}

/// The tag a pushed run carries: its id in the workspace it came from, so a push finds it
/// again whatever URL the server is reached by.
pub const SOURCE_TAG: &str = "lathe.source_run_id";

/// The tag a pushed model version carries: its number in the workspace it came from.
pub const SOURCE_VERSION_TAG: &str = "lathe.source_version";

/// A file under a run's artifacts: its path from the root and size in bytes.
pub type RemoteFile = (String, u64);

impl Server {
    /// The server at `uri` (`http://` or `https://`), with `token` (else the environment's
    /// `MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD`).
    ///
    /// # Errors
    /// `uri` is not an http(s) URL, or holds a user or password.
    pub fn new(uri: &str, token: Option<&str>) -> Result<Self> {
        let parsed = url::Url::parse(uri.trim()).map_err(|e| {
            remote(format!(
                "'{uri}' is not a tracking server's URL ({e}): give http://HOST:PORT or https://…"
            ))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(remote(format!(
                "'{uri}' is not a tracking server's URL: give http://HOST:PORT or https://…"
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(remote(
                "the tracking URL holds a user or password; pass --token or set \
                 MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead"
                    .to_owned(),
            ));
        }
        let variable = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let authorization = match token
            .map(str::to_owned)
            .or_else(|| variable("MLFLOW_TRACKING_TOKEN"))
        {
            Some(token) => Some(format!("Bearer {token}")),
            None => match (
                variable("MLFLOW_TRACKING_USERNAME"),
                variable("MLFLOW_TRACKING_PASSWORD"),
            ) {
                (Some(user), Some(password)) => {
                    use base64::Engine;
                    let pair = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{password}"));
                    Some(format!("Basic {pair}"))
                }
                _ => None,
            },
        };
        Ok(Self {
            // As the URL parser writes it (lowercase host, no default port), so one server
            // written two ways is one place in the id map.
            base: parsed.as_str().trim_end_matches('/').to_owned(),
            authorization,
            api: crate::http::agent(Duration::from_secs(60)),
            files: crate::http::transfer_agent(Duration::from_secs(10)),
        })
    }

    /// The server's URL, as messages and the id map name it.
    pub fn uri(&self) -> &str {
        &self.base
    }

    /// The experiment's id, when the server has an experiment of that name (deleted or not:
    /// the second item says whether it is deleted).
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<(String, bool)>> {
        Ok(self
            .find(
                "GET",
                "mlflow/experiments/get-by-name",
                &[("experiment_name", name)],
            )?
            .map(|found| {
                let e = &found["experiment"];
                (text(&e["experiment_id"]), e["lifecycle_stage"] == "deleted")
            }))
    }

    /// The name of the experiment of this id.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn experiment_name(&self, id: &str) -> Result<String> {
        let found = self.call(
            "GET",
            "mlflow/experiments/get",
            &[("experiment_id", id)],
            None,
        )?;
        Ok(text(&found["experiment"]["name"]))
    }

    /// Creates an experiment; its id.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn create_experiment(&self, name: &str) -> Result<String> {
        let endpoint = "mlflow/experiments/create";
        match self.exchange("POST", endpoint, &[], Some(&json!({"name": name})))? {
            (status, made) if (200..300).contains(&status) => Ok(text(&made["experiment_id"])),
            // Another client made it meanwhile.
            (_, answer) if answer["error_code"] == "RESOURCE_ALREADY_EXISTS" => self
                .experiment_by_name(name)?
                .map(|(id, _)| id)
                .ok_or_else(|| remote(format!("{}: experiment '{name}' vanished", self.base))),
            (status, answer) => Err(self.refusal(endpoint, status, &answer)),
        }
    }

    /// The runs of an experiment pushed from a workspace, by the local id they carry in
    /// `lathe.source_run_id` (every lifecycle stage, so a deleted one is known as such).
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn pushed_runs(&self, experiment_id: &str) -> Result<Vec<(String, RemoteRun)>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut body = json!({
                "experiment_ids": [experiment_id],
                "filter": format!("tags.`{SOURCE_TAG}` LIKE '%'"),
                "run_view_type": "ALL",
                "max_results": 1000,
            });
            if !token.is_empty() {
                body["page_token"] = json!(token);
            }
            let page = self.call("POST", "mlflow/runs/search", &[], Some(&body))?;
            for found in page["runs"].as_array().into_iter().flatten().map(run) {
                if let Some(tag) = found.tags.iter().find(|t| t.key == SOURCE_TAG) {
                    out.push((tag.value.clone(), found.clone()));
                }
            }
            token = text(&page["next_page_token"]);
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Starts a run in experiment `experiment_id`.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn create_run(
        &self,
        experiment_id: &str,
        (name, user, start_time): (&str, &str, Option<i64>),
    ) -> Result<RemoteRun> {
        let made = self.call(
            "POST",
            "mlflow/runs/create",
            &[],
            Some(&json!({
                "experiment_id": experiment_id,
                "run_name": name,
                "user_id": user,
                "start_time": start_time,
            })),
        )?;
        Ok(run(&made["run"]))
    }

    /// The run of this id; `None` when the server has none.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn run(&self, id: &str) -> Result<Option<RemoteRun>> {
        Ok(self
            .find("GET", "mlflow/runs/get", &[("run_id", id)])?
            .map(|found| run(&found["run"])))
    }

    /// Every active run of an experiment, oldest first.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn runs_of(&self, experiment_id: &str) -> Result<Vec<RemoteRun>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut body = json!({
                "experiment_ids": [experiment_id],
                "run_view_type": "ACTIVE_ONLY",
                "max_results": 1000,
                "order_by": ["attributes.start_time ASC"],
            });
            if !token.is_empty() {
                body["page_token"] = json!(token);
            }
            let page = self.call("POST", "mlflow/runs/search", &[], Some(&body))?;
            out.extend(page["runs"].as_array().into_iter().flatten().map(run));
            token = text(&page["next_page_token"]);
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Every point of metric `key` of a run.
    ///
    /// # Errors
    /// See [`Server::call`]; a point the server sent that is not a metric.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<Metric>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut query = vec![
                ("run_id", run_id),
                ("metric_key", key),
                ("max_results", "25000"),
            ];
            if !token.is_empty() {
                query.push(("page_token", &token));
            }
            let page = self.call("GET", "mlflow/metrics/get-history", &query, None)?;
            for point in page["metrics"].as_array().into_iter().flatten() {
                out.push(serde_json::from_value(point.clone()).map_err(|e| {
                    remote(format!(
                        "{}: a point of metric '{key}' of run {run_id}: {e}",
                        self.base
                    ))
                })?);
            }
            token = text(&page["next_page_token"]);
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Logs metric points, params and tags, in batches within MLflow's limits.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()> {
        for chunk in params.chunks(BATCH_PARAMS_TAGS) {
            self.call(
                "POST",
                "mlflow/runs/log-batch",
                &[],
                Some(&json!({"run_id": run_id, "params": chunk})),
            )?;
        }
        for chunk in tags.chunks(BATCH_PARAMS_TAGS) {
            self.call(
                "POST",
                "mlflow/runs/log-batch",
                &[],
                Some(&json!({"run_id": run_id, "tags": chunk})),
            )?;
        }
        for chunk in metrics.chunks(BATCH_METRICS) {
            let points: Vec<Value> = chunk
                .iter()
                .map(|m| {
                    json!({"key": m.key, "value": number(m.value), "timestamp": m.timestamp, "step": m.step})
                })
                .collect();
            self.call(
                "POST",
                "mlflow/runs/log-batch",
                &[],
                Some(&json!({"run_id": run_id, "metrics": points})),
            )?;
        }
        Ok(())
    }

    /// Records the datasets a run read.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn log_inputs(&self, run_id: &str, inputs: &[DatasetInput]) -> Result<()> {
        self.call(
            "POST",
            "mlflow/runs/log-inputs",
            &[],
            Some(&json!({"run_id": run_id, "datasets": inputs})),
        )?;
        Ok(())
    }

    /// Sets a run's status and end.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn end_run(&self, run_id: &str, status: &str, end_time: Option<i64>) -> Result<()> {
        self.call(
            "POST",
            "mlflow/runs/update",
            &[],
            Some(&json!({"run_id": run_id, "status": status, "end_time": end_time})),
        )?;
        Ok(())
    }

    /// Every file under a run's artifacts, with its size.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn artifacts(&self, run_id: &str) -> Result<Vec<RemoteFile>> {
        let mut out = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            let mut query = vec![("run_id", run_id)];
            if !folder.is_empty() {
                query.push(("path", &folder));
            }
            let listed = self.call("GET", "mlflow/artifacts/list", &query, None)?;
            for file in listed["files"].as_array().into_iter().flatten() {
                let path = text(&file["path"]);
                if file["is_dir"].as_bool().unwrap_or(false) {
                    folders.push(path);
                } else {
                    out.push((path, integer(&file["file_size"]).unwrap_or(0).max(0) as u64));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Uploads `len` bytes from `body` as the artifact `path` of the run whose artifacts are
    /// at `artifact_uri`, through the server's artifact proxy.
    ///
    /// # Errors
    /// The run's artifacts are not served by the proxy (an `s3://` or local root the server
    /// only names); see [`Server::call`].
    pub fn upload(
        &self,
        artifact_uri: &str,
        path: &str,
        len: u64,
        body: &mut dyn Read,
    ) -> Result<()> {
        let url = format!("{}/{}", self.proxy_root(artifact_uri)?, encode(path));
        let mut request = self.files.put(&url).header("content-length", len);
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        let answer = request.send(ureq::SendBody::from_reader(body));
        self.checked(answer, &format!("upload of artifact '{path}'"))?;
        Ok(())
    }

    /// Streams the artifact `path` of a run into `out`; bytes written.
    ///
    /// # Errors
    /// See [`Server::call`]; `out` refused a write.
    pub fn download(
        &self,
        artifact_uri: &str,
        (run_id, path): (&str, &str),
        out: &mut dyn Write,
    ) -> Result<u64> {
        let mut request = match self.proxy_root(artifact_uri) {
            Ok(root) => self.files.get(format!("{root}/{}", encode(path))),
            // Artifacts kept where the server only names them are read through its
            // `get-artifact` route, which reads them server-side.
            Err(_) => self
                .files
                .get(format!("{}/get-artifact", self.base))
                .query("run_id", run_id)
                .query("path", path),
        };
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        let doing = format!("download of artifact '{path}' of run {run_id}");
        let mut response = self.checked(request.call(), &doing)?;
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        std::io::copy(&mut reader, out).map_err(|e| {
            remote(format!(
                "{}: the {doing} broke off ({e}); run the command again",
                self.base
            ))
        })
    }

    /// Creates a registered model, unless the server has one of that name.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn ensure_model(&self, name: &str) -> Result<()> {
        if self
            .find("GET", "mlflow/registered-models/get", &[("name", name)])?
            .is_none()
        {
            self.call(
                "POST",
                "mlflow/registered-models/create",
                &[],
                Some(&json!({"name": name})),
            )?;
        }
        Ok(())
    }

    /// Whether version `version` of model `name` is there.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn has_version(&self, name: &str, version: &str) -> Result<bool> {
        Ok(self
            .find(
                "GET",
                "mlflow/model-versions/get",
                &[("name", name), ("version", version)],
            )?
            .is_some())
    }

    /// The versions of a registered model there with the `lathe.source_version` tag a push
    /// gave them: (that tag, the version's number).
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn pushed_versions(&self, name: &str) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut token = String::new();
        let filter = format!("name = '{}'", name.replace('\'', "\\'"));
        loop {
            let mut query = vec![("filter", filter.as_str()), ("max_results", "1000")];
            if !token.is_empty() {
                query.push(("page_token", &token));
            }
            let page = self.call("GET", "mlflow/model-versions/search", &query, None)?;
            for v in page["model_versions"].as_array().into_iter().flatten() {
                let tag = v["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["key"] == SOURCE_VERSION_TAG);
                if let Some(tag) = tag {
                    out.push((text(&tag["value"]), text(&v["version"])));
                }
            }
            token = text(&page["next_page_token"]);
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Registers a version; its number there.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn create_version(
        &self,
        name: &str,
        (source, run_id): (&str, &str),
        (description, tags): (&str, &[Tag]),
    ) -> Result<String> {
        let made = self.call(
            "POST",
            "mlflow/model-versions/create",
            &[],
            Some(&json!({
                "name": name, "source": source, "run_id": run_id,
                "description": description, "tags": tags,
            })),
        )?;
        Ok(text(&made["model_version"]["version"]))
    }

    /// The version an alias of a model points at there, if it is set.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn alias(&self, name: &str, alias: &str) -> Result<Option<String>> {
        let endpoint = "mlflow/registered-models/alias";
        match self.exchange("GET", endpoint, &[("name", name), ("alias", alias)], None)? {
            (status, found) if (200..300).contains(&status) => {
                Ok(Some(text(&found["model_version"]["version"])))
            }
            // MLflow answers a free alias with 400 INVALID_PARAMETER_VALUE ("… not found").
            (400 | 404, answer)
                if answer["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not found")) =>
            {
                Ok(None)
            }
            (status, answer) => Err(self.refusal(endpoint, status, &answer)),
        }
    }

    /// Asks what every MLflow server answers, so an unreachable server or a refused token is
    /// named before any work.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn check(&self) -> Result<()> {
        let body = json!({"max_results": 1});
        self.call("POST", "mlflow/experiments/search", &[], Some(&body))?;
        Ok(())
    }

    /// Points an alias at a version.
    ///
    /// # Errors
    /// See [`Server::call`].
    pub fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        self.call(
            "POST",
            "mlflow/registered-models/alias",
            &[],
            Some(&json!({"name": name, "alias": alias, "version": version})),
        )?;
        Ok(())
    }

    /// Where the proxy serves the artifacts at `artifact_uri` (`mlflow-artifacts:/1/<run>/artifacts`
    /// or `mlflow-artifacts://host/…`).
    fn proxy_root(&self, artifact_uri: &str) -> Result<String> {
        let rest = artifact_uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
            remote(format!(
                "{} keeps this run's artifacts at {artifact_uri}, which it does not serve; start \
                 it with artifact serving (mlflow server's default, --serve-artifacts)",
                self.base
            ))
        })?;
        // `mlflow-artifacts://host:port/path` names the server; the path is what counts.
        let path = match rest.strip_prefix("//") {
            Some(authority) => authority.split_once('/').map_or("", |(_, p)| p),
            None => rest,
        };
        Ok(format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            self.base,
            encode(path.trim_matches('/'))
        ))
    }

    /// A call of `/api/2.0/<endpoint>` that must succeed: its JSON answer.
    ///
    /// # Errors
    /// The server cannot be reached (within 10 s), refuses the token, or refuses the call
    /// (its own message, with the endpoint).
    fn call(
        &self,
        method: &str,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        match self.exchange(method, endpoint, query, body)? {
            (status, answer) if (200..300).contains(&status) => Ok(answer),
            (status, answer) => Err(self.refusal(endpoint, status, &answer)),
        }
    }

    /// As [`Server::call`], with `None` for MLflow's RESOURCE_DOES_NOT_EXIST.
    fn find(&self, method: &str, endpoint: &str, query: &[(&str, &str)]) -> Result<Option<Value>> {
        match self.exchange(method, endpoint, query, None)? {
            (status, answer) if (200..300).contains(&status) => Ok(Some(answer)),
            (404, answer)
                if answer["error_code"] == "RESOURCE_DOES_NOT_EXIST" || answer.is_null() =>
            {
                Ok(None)
            }
            (status, answer) => Err(self.refusal(endpoint, status, &answer)),
        }
    }

    /// Sends a call; its status and JSON answer (`Null` when the body is not JSON). A 429,
    /// 502, 503 or 504 is tried again after 0.25, 1 and 4 s; so is a read (GET) whose
    /// connection broke off — a write is not, since the server may have applied it.
    fn exchange(
        &self,
        method: &str,
        endpoint: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        const WAITS: [u64; 3] = [250, 1000, 4000];
        let url = format!("{}/api/2.0/{endpoint}", self.base);
        let bytes = body.map(serde_json::to_vec).transpose()?;
        let mut attempt = 0;
        loop {
            let sent = match &bytes {
                None => {
                    let mut request = self.api.get(&url);
                    for (k, v) in query {
                        request = request.query(*k, *v);
                    }
                    if let Some(auth) = &self.authorization {
                        request = request.header("authorization", auth);
                    }
                    request.call()
                }
                Some(bytes) => {
                    let mut request = self
                        .api
                        .post(&url)
                        .header("content-type", "application/json");
                    if let Some(auth) = &self.authorization {
                        request = request.header("authorization", auth);
                    }
                    request.send(&bytes[..])
                }
            };
            let again = match &sent {
                Ok(r) => matches!(r.status().as_u16(), 429 | 502 | 503 | 504),
                // A refused connection is refused again: nothing listens there.
                Err(ureq::Error::Io(io)) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                    false
                }
                Err(e) => method == "GET" && !crate::http::failure(e).lasting,
            };
            if again && attempt < WAITS.len() {
                std::thread::sleep(Duration::from_millis(WAITS[attempt]));
                attempt += 1;
                continue;
            }
            let mut response = sent.map_err(|e| self.unreachable(&e))?;
            let status = response.status().as_u16();
            let text = response
                .body_mut()
                .with_config()
                .limit(256 << 20)
                .read_to_string()
                .map_err(|e| {
                    remote(format!(
                        "{}: the answer to {endpoint} broke off ({e})",
                        self.base
                    ))
                })?;
            return Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)));
        }
    }

    /// A response of the artifact proxy that succeeded; else what went wrong.
    fn checked(
        &self,
        sent: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        doing: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut response = sent.map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        let answer = serde_json::from_str(&body).unwrap_or(Value::Null);
        Err(self.refusal(doing, status, &answer))
    }

    fn unreachable(&self, e: &ureq::Error) -> Error {
        let failure = crate::http::failure(e);
        remote(format!(
            "cannot reach the tracking server at {} ({}); is the URL right and the server running?",
            self.base, failure.reason
        ))
    }

    /// A refusal in words: MLflow's own message, with its error code.
    fn refusal(&self, what: &str, status: u16, answer: &Value) -> Error {
        let message = answer["message"].as_str().unwrap_or("").trim();
        match status {
            401 | 403 if self.authorization.is_some() => remote(format!(
                "{} refused the credentials ({status}) for {what}: check --token, \
                 MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)",
                self.base
            )),
            401 | 403 => remote(format!(
                "{} wants credentials ({status}) for {what}: pass --token or set \
                 MLFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)",
                self.base
            )),
            _ if answer.is_null() => remote(format!(
                "{} answered {status} to {what} with what is not MLflow's JSON: is it an MLflow \
                 tracking server?",
                self.base
            )),
            _ if message.is_empty() => remote(format!("{} answered {status} to {what}", self.base)),
            _ => remote(format!(
                "{} refused {what} ({status} {}): {message}",
                self.base,
                answer["error_code"].as_str().unwrap_or("")
            )),
        }
    }
}

/// A run of MLflow's JSON.
fn run(v: &Value) -> RemoteRun {
    let info = &v["info"];
    let list = |v: &Value| -> Vec<Value> { v.as_array().cloned().unwrap_or_default() };
    let pairs = |v: &Value| -> Vec<(String, String)> {
        list(v)
            .iter()
            .map(|p| (text(&p["key"]), text(&p["value"])))
            .collect()
    };
    RemoteRun {
        id: text(&info["run_id"]),
        name: text(&info["run_name"]),
        experiment_id: text(&info["experiment_id"]),
        user_id: text(&info["user_id"]),
        status: text(&info["status"]),
        start_time: integer(&info["start_time"]),
        end_time: integer(&info["end_time"]),
        artifact_uri: text(&info["artifact_uri"]),
        deleted: info["lifecycle_stage"] == "deleted",
        metrics: list(&v["data"]["metrics"])
            .into_iter()
            .filter_map(|m| serde_json::from_value(m).ok())
            .collect(),
        params: pairs(&v["data"]["params"])
            .into_iter()
            .map(|(key, value)| Param { key, value })
            .collect(),
        tags: pairs(&v["data"]["tags"])
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect(),
        inputs: list(&v["inputs"]["dataset_inputs"])
            .into_iter()
            .filter_map(|i| serde_json::from_value(i).ok())
            .collect(),
    }
}

/// A JSON string or number as text (MLflow writes ids as strings, some servers as numbers).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A JSON number, or a string holding one (protobuf's JSON writes int64 as a string).
fn integer(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

/// A metric value as protobuf's JSON mapping writes it: the non-finite ones as strings.
fn number(x: f64) -> Value {
    if x.is_nan() {
        json!("NaN")
    } else if x == f64::INFINITY {
        json!("Infinity")
    } else if x == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(x)
    }
}

fn encode(path: &str) -> String {
    utf8_percent_encode(path, PATH).to_string()
}

fn remote(message: String) -> Error {
    Error::Remote(message)
}
