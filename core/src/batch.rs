//! Batch endpoints in Azure ML CLI v2's shapes: an endpoint (`batchEndpoint` YAML: name,
//! description, tags, `defaults.deployment_name`) holds deployments (`modelBatchDeployment`
//! YAML: a model version and how to split and retry the work), and an invocation is a job
//! ([`job`]) that scores a table data asset version, or table files, into a new data asset
//! version with the predictions beside the inputs.
//!
//! Source of the shapes: Azure ML's `batchEndpoint.schema.json` and
//! `modelBatchDeployment.schema.json` (reference-yaml-endpoint-batch, -deployment-batch). The
//! settings are read under `settings:` (the current schema) or at the top level (the older
//! one). Fields with no local meaning (`compute`, `resources.instance_type`, `auth_mode`, an
//! environment's `image`) are accepted and reported as ignored.

pub mod job;

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value as Yaml;

use crate::endpoints::{self, CodeConfiguration, ModelRef, Runtime};
use crate::store::Store;
use crate::{Error, Result};

/// A batch endpoint as its YAML describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchEndpointSpec {
    #[serde(rename = "$schema", default, skip_serializing)]
    pub schema: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Yaml>,
    #[serde(default)]
    pub defaults: Defaults,
    /// Azure's token modes guard its REST invocation; here jobs start from the CLI or window.
    #[serde(default, skip_serializing)]
    pub auth_mode: Option<Yaml>,
}

impl BatchEndpointSpec {
    /// The Azure fields given that have no meaning here: jobs start from the CLI or the
    /// window, so Azure's token modes guard nothing.
    pub fn ignored(&self) -> Vec<&'static str> {
        if self.auth_mode.is_some() {
            vec!["auth_mode"]
        } else {
            Vec::new()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// The deployment an invocation runs when it names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
}

/// How a batch deployment splits and retries its work (`settings:`, or the top level).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    /// Mini batches scored at once per instance (Azure's default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency_per_instance: Option<u32>,
    /// Files per mini batch, or rows for a table (Azure's default 10 files; 10,000 rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mini_batch_size: Option<u64>,
    /// Failed rows (or files) the job tolerates; past it the job fails. -1: any number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_threshold: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_action: Option<OutputAction>,
    /// The output file's name; `.parquet` writes Parquet, anything else CSV (Azure's default
    /// `predictions.csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_settings: Option<RetrySettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging_level: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, Yaml>,
    // A pipeline deployment's settings.
    /// Whether the pipeline's other steps go on after one fails (Lathe's runs skip what
    /// depends on a failed step and run the rest either way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_step_failure: Option<bool>,
    #[serde(default, skip_serializing)]
    pub default_compute: Option<Yaml>,
    #[serde(default, skip_serializing)]
    pub default_datastore: Option<Yaml>,
}

/// What a job writes: every row with its predictions, or only the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputAction {
    AppendRow,
    SummaryOnly,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Tries after the first for a mini batch that failed as a whole (Azure's default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Seconds a mini batch may take in a Python worker (Azure's default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Python worker processes for a model scored in Python.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<u32>,
    #[serde(default, skip_serializing)]
    pub instance_type: Option<Yaml>,
    #[serde(default, skip_serializing)]
    pub properties: Option<Yaml>,
}

/// A batch deployment as its YAML describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDeploymentSpec {
    #[serde(rename = "$schema", default, skip_serializing)]
    pub schema: Option<String>,
    pub name: String,
    pub endpoint_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Yaml>,
    /// `model` (the default) or `pipeline`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub model: Option<ModelRef>,
    /// A pipeline deployment's pipeline component: a YAML file (a pipeline component or a
    /// pipeline job) or a pipeline saved in the workspace, `azureml:NAME[:VERSION|@latest]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// A pipeline job's YAML file to deploy (Azure names a job that ran; here, its file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Yaml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_configuration: Option<CodeConfiguration>,
    #[serde(default, skip_serializing)]
    pub compute: Option<Yaml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<BatchSettings>,
    // The older schema's settings, at the top level.
    #[serde(default, skip_serializing)]
    pub max_concurrency_per_instance: Option<u32>,
    #[serde(default, skip_serializing)]
    pub mini_batch_size: Option<u64>,
    #[serde(default, skip_serializing)]
    pub error_threshold: Option<i64>,
    #[serde(default, skip_serializing)]
    pub output_action: Option<OutputAction>,
    #[serde(default, skip_serializing)]
    pub output_file_name: Option<String>,
    #[serde(default, skip_serializing)]
    pub retry_settings: Option<RetrySettings>,
    #[serde(default, skip_serializing)]
    pub logging_level: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, Yaml>,
}

impl BatchDeploymentSpec {
    /// The settings in force: `settings:` first, then the top level, then Azure's defaults
    /// (filled in by the job).
    pub fn settings(&self) -> BatchSettings {
        let given = self.settings.clone().unwrap_or_default();
        let mut variables = self.environment_variables.clone();
        variables.extend(given.environment_variables);
        BatchSettings {
            max_concurrency_per_instance: given
                .max_concurrency_per_instance
                .or(self.max_concurrency_per_instance),
            mini_batch_size: given.mini_batch_size.or(self.mini_batch_size),
            error_threshold: given.error_threshold.or(self.error_threshold),
            output_action: given.output_action.or(self.output_action),
            output_file_name: given
                .output_file_name
                .or_else(|| self.output_file_name.clone()),
            retry_settings: given.retry_settings.or_else(|| self.retry_settings.clone()),
            logging_level: given.logging_level.or_else(|| self.logging_level.clone()),
            environment_variables: variables,
            continue_on_step_failure: given.continue_on_step_failure,
            default_compute: given.default_compute,
            default_datastore: given.default_datastore,
        }
    }

    /// Whether it deploys a pipeline rather than a model.
    pub fn is_pipeline(&self) -> bool {
        self.kind.as_deref() == Some("pipeline")
    }

    /// Python worker processes (`resources.instance_count`, default 1).
    pub fn instances(&self) -> u32 {
        self.resources
            .as_ref()
            .and_then(|r| r.instance_count)
            .unwrap_or(1)
            .max(1)
    }

    /// The Azure fields given that have no meaning on this machine.
    pub fn ignored(&self) -> Vec<&'static str> {
        let image = self
            .environment
            .as_ref()
            .and_then(|e| e.get("image"))
            .is_some();
        let settings = self.settings();
        [
            ("compute", self.compute.is_some()),
            (
                "resources.instance_type",
                self.resources
                    .as_ref()
                    .is_some_and(|r| r.instance_type.is_some()),
            ),
            ("environment.image", image),
            ("logging_level", settings.logging_level.is_some()),
            (
                "settings.default_compute",
                settings.default_compute.is_some(),
            ),
            (
                "settings.default_datastore",
                settings.default_datastore.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// Reads a batch endpoint's YAML.
///
/// # Errors
/// An unknown field or a value of the wrong type, named with its path; a bad name.
pub fn parse_endpoint(text: &str) -> Result<BatchEndpointSpec> {
    let spec: BatchEndpointSpec = endpoints::parse(text, "batch endpoint")?;
    endpoints::check_name(&spec.name, "batch endpoint")?;
    Ok(spec)
}

/// Reads a batch deployment's YAML: a model deployment (modelBatchDeployment, or the older
/// batchDeployment) or a pipeline deployment (pipelineComponentBatchDeployment).
///
/// # Errors
/// As [`parse_endpoint`]; a model deployment with no model, a pipeline one with neither or
/// both of `component` and `job_definition`; a batch scoring script (not run yet, said so); a
/// setting out of range.
pub fn parse_deployment(text: &str) -> Result<BatchDeploymentSpec> {
    let refuse = |m: &str| Err(Error::Endpoint(format!("batch deployment: {m}")));
    let spec: BatchDeploymentSpec = endpoints::parse(text, "batch deployment")?;
    endpoints::check_name(&spec.name, "batch deployment")?;
    if spec.is_pipeline() || spec.component.is_some() || spec.job_definition.is_some() {
        return check_pipeline(spec);
    }
    if let Some(kind) = spec.kind.as_deref().filter(|k| *k != "model") {
        return refuse(&format!("type: '{kind}': write model"));
    }
    if spec.model.is_none() {
        return refuse(
            "model: names the model to score with (azureml:NAME:VERSION, azureml:NAME@ALIAS or \
             a local path)",
        );
    }
    let settings = spec.settings();
    if settings.mini_batch_size == Some(0) {
        return refuse("settings.mini_batch_size: at least 1");
    }
    if spec.resources.as_ref().and_then(|r| r.instance_count) == Some(0) {
        return refuse("resources.instance_count: at least 1");
    }
    if settings.max_concurrency_per_instance == Some(0) {
        return refuse("settings.max_concurrency_per_instance: at least 1");
    }
    if settings.error_threshold.is_some_and(|t| t < -1) {
        return refuse("settings.error_threshold: -1 (any number) or a count of rows");
    }
    if let Some(file) = &settings.output_file_name
        && (file.is_empty() || file.contains(['/', '\\']) || file.starts_with('.'))
    {
        return refuse(&format!(
            "settings.output_file_name: '{file}' must be a plain file name"
        ));
    }
    Ok(spec)
}

fn check_pipeline(spec: BatchDeploymentSpec) -> Result<BatchDeploymentSpec> {
    let refuse = |m: &str| Err(Error::Endpoint(format!("batch deployment: {m}")));
    if !spec.is_pipeline() {
        return refuse("type: pipeline: a deployment of a component or job_definition says so");
    }
    if spec.model.is_some() || spec.code_configuration.is_some() {
        return refuse(
            "type: pipeline: a pipeline deployment runs its component; model and \
             code_configuration belong to a model deployment",
        );
    }
    match (&spec.component, &spec.job_definition) {
        (Some(_), Some(_)) => refuse("component and job_definition: give one of them"),
        (None, None) => refuse(
            "component: names the pipeline component to run (a YAML file, or a saved \
             pipeline azureml:NAME[:VERSION])",
        ),
        (None, Some(job)) if job.starts_with("azureml:") => refuse(&format!(
            "job_definition: '{job}' names a job in Azure's workspace; give the pipeline \
             job's YAML file instead"
        )),
        _ => Ok(spec),
    }
}

/// A batch endpoint as the workspace keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchEndpoint {
    pub spec: BatchEndpointSpec,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A batch deployment as the workspace keeps it: its spec, the model version it resolved to,
/// and what that model runs in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchDeployment {
    pub endpoint: String,
    pub spec: BatchDeploymentSpec,
    pub model_name: String,
    pub model_version: String,
    pub runtime: Runtime,
    /// A pipeline deployment's pipeline, as it was when the deployment was put.
    pub pipeline: Option<BatchPipeline>,
    pub created_at_ms: i64,
}

/// The pipeline a pipeline deployment runs: its YAML and the folder its relative paths (a
/// component's `code`) start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPipeline {
    /// The component's name (or the file's stem), with its version when saved.
    pub name: String,
    pub yaml: String,
    pub base: std::path::PathBuf,
}

/// Creates a batch endpoint from its YAML.
///
/// # Errors
/// A spec that does not read, a name taken, a default deployment (none exist yet).
pub fn create_endpoint(store: &Store, yaml: &str) -> Result<BatchEndpoint> {
    let spec = parse_endpoint(yaml)?;
    if let Some(name) = &spec.defaults.deployment_name {
        return Err(Error::Endpoint(format!(
            "batch endpoint: defaults.deployment_name: '{name}' — a new endpoint has no \
             deployments yet; the first one created becomes its default"
        )));
    }
    let now = crate::db::now_millis();
    let row = (spec.name.clone(), serde_json::to_string(&spec)?);
    store.transaction::<_, Error>(move |c| {
        let taken: Option<String> = c
            .query_row(
                "SELECT name FROM batch_endpoints WHERE name = ?1",
                [&row.0],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(Error::Endpoint(format!(
                "a batch endpoint named '{}' exists already",
                row.0
            )));
        }
        c.execute(
            "INSERT INTO batch_endpoints (name, spec, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?3)",
            params![row.0, row.1, now],
        )?;
        Ok(())
    })?;
    Ok(BatchEndpoint {
        spec,
        created_at_ms: now,
        updated_at_ms: now,
    })
}

/// Batch endpoint `name`.
///
/// # Errors
/// No such endpoint (named).
pub fn endpoint(store: &Store, name: &str) -> Result<BatchEndpoint> {
    endpoints_where(store, Some(name))?
        .pop()
        .ok_or_else(|| Error::Endpoint(format!("no batch endpoint named '{name}'")))
}

/// Every batch endpoint, by name.
pub fn endpoints(store: &Store) -> Result<Vec<BatchEndpoint>> {
    endpoints_where(store, None)
}

fn endpoints_where(store: &Store, name: Option<&str>) -> Result<Vec<BatchEndpoint>> {
    let key = name.map(str::to_owned);
    let rows: Vec<(String, i64, i64)> = store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT spec, created_at_ms, updated_at_ms FROM batch_endpoints
             WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })?;
    rows.into_iter()
        .map(|(spec, created_at_ms, updated_at_ms)| {
            Ok(BatchEndpoint {
                spec: serde_json::from_str(&spec)?,
                created_at_ms,
                updated_at_ms,
            })
        })
        .collect()
}

/// Makes `deployment` the one an invocation of `endpoint_name` runs when it names none.
///
/// # Errors
/// An unknown endpoint or deployment.
pub fn set_default(store: &Store, endpoint_name: &str, deployment: &str) -> Result<BatchEndpoint> {
    let mut found = endpoint(store, endpoint_name)?;
    self::deployment(store, endpoint_name, deployment)?;
    found.spec.defaults.deployment_name = Some(deployment.to_owned());
    let now = crate::db::now_millis();
    let row = (
        endpoint_name.to_owned(),
        serde_json::to_string(&found.spec)?,
    );
    store.transaction::<_, Error>(move |c| {
        c.execute(
            "UPDATE batch_endpoints SET spec = ?2, updated_at_ms = ?3 WHERE name = ?1",
            params![row.0, row.1, now],
        )?;
        Ok(())
    })?;
    found.updated_at_ms = now;
    Ok(found)
}

/// Deletes a batch endpoint, its deployments and the record of its jobs (their output data
/// assets stay). Refused while one of its jobs runs.
///
/// # Errors
/// An unknown endpoint; a job still running.
pub fn delete_endpoint(store: &Store, name: &str) -> Result<()> {
    endpoint(store, name)?;
    if let Some(running) = job::jobs(store, Some(name))?
        .into_iter()
        .find(|j| !j.state.is_final())
    {
        return Err(Error::Endpoint(format!(
            "job {} of {name} is {}; cancel it first (`lathe batch-job cancel {}`)",
            running.id,
            running.state.as_str(),
            running.id
        )));
    }
    let key = name.to_owned();
    store.transaction::<_, Error>(move |c| {
        for table in ["batch_jobs", "batch_deployments"] {
            c.execute(&format!("DELETE FROM {table} WHERE endpoint = ?1"), [&key])?;
        }
        c.execute("DELETE FROM batch_endpoints WHERE name = ?1", [&key])?;
        Ok(())
    })
}

/// Creates (or, with `replace`, updates) a batch deployment from its YAML; `base` is the
/// folder its relative paths start from. The endpoint's first deployment, or any with
/// `make_default`, becomes its default.
///
/// # Errors
/// A spec that does not read, an unknown endpoint, model or environment, a name taken
/// (without `replace`) or unknown (with it). Nothing changes on an error.
pub fn put_deployment(
    store: &Store,
    yaml: &str,
    base: &Path,
    make_default: bool,
    replace: bool,
) -> Result<BatchDeployment> {
    let spec = parse_deployment(yaml)?;
    let endpoint = endpoint(store, &spec.endpoint_name)?;
    let existing = deployments(store, &spec.endpoint_name)?;
    let exists = existing.iter().any(|d| d.spec.name == spec.name);
    if exists && !replace {
        return Err(Error::Endpoint(format!(
            "batch endpoint {} has a deployment named '{}' already; update it instead",
            spec.endpoint_name, spec.name
        )));
    }
    if !exists && replace {
        return Err(Error::Endpoint(format!(
            "batch endpoint {} has no deployment named '{}'",
            spec.endpoint_name, spec.name
        )));
    }
    let mut puts = Vec::new();
    let (model_name, model_version, runtime, pipeline) = if spec.is_pipeline() {
        let pipeline = resolve_pipeline(store, &spec, base)?;
        (
            String::new(),
            String::new(),
            Runtime::default(),
            Some(pipeline),
        )
    } else {
        let environment = endpoints::resolve_environment(store, spec.environment.as_ref(), base)?;
        // A batch scoring script's folder is kept as an online deployment's is.
        let code = match &spec.code_configuration {
            Some(config) => {
                let (code, put) = endpoints::snapshot_code(store, config, base)?;
                puts = put;
                Some(code)
            }
            None => None,
        };
        let anonymous = format!("{}-{}", spec.endpoint_name, spec.name);
        let (name, version) =
            endpoints::resolve_model(store, spec.model.as_ref(), &anonymous, code.is_some(), base)?;
        (name, version, Runtime { environment, code }, None)
    };
    let blobs: Vec<(String, i64)> = puts
        .iter()
        .map(|p| (p.hash.clone(), p.size_bytes as i64))
        .collect();
    let stored_pipeline = pipeline.as_ref().map(serde_json::to_string).transpose()?;
    let mut endpoint_spec = endpoint.spec.clone();
    if make_default || existing.is_empty() {
        endpoint_spec.defaults.deployment_name = Some(spec.name.clone());
    }
    let now = crate::db::now_millis();
    let row = (
        spec.endpoint_name.clone(),
        spec.name.clone(),
        serde_json::to_string(&spec)?,
        model_name.clone(),
        model_version.clone(),
        serde_json::to_string(&runtime)?,
        serde_json::to_string(&endpoint_spec)?,
        stored_pipeline,
    );
    store.transaction::<_, Error>(move |c| {
        for (hash, size) in &blobs {
            c.execute(
                "INSERT OR IGNORE INTO blobs (hash, size_bytes, created_at) VALUES (?1, ?2, ?3)",
                params![hash, size, crate::db::now_secs()],
            )?;
        }
        c.execute(
            "INSERT INTO batch_deployments (endpoint, name, spec, model_name, model_version,
                 runtime, pipeline, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (endpoint, name) DO UPDATE SET spec = ?3, model_name = ?4,
                 model_version = ?5, runtime = ?6, pipeline = ?7, updated_at_ms = ?8",
            params![row.0, row.1, row.2, row.3, row.4, row.5, row.7, now],
        )?;
        c.execute(
            "UPDATE batch_endpoints SET spec = ?2, updated_at_ms = ?3 WHERE name = ?1",
            params![row.0, row.6, now],
        )?;
        Ok(())
    })?;
    Ok(BatchDeployment {
        endpoint: spec.endpoint_name.clone(),
        spec,
        model_name,
        model_version,
        runtime,
        pipeline,
        created_at_ms: now,
    })
}

/// The pipeline a pipeline deployment names, read and checked now: a YAML file (relative to
/// `base`) or a saved pipeline.
fn resolve_pipeline(
    store: &Store,
    spec: &BatchDeploymentSpec,
    base: &Path,
) -> Result<BatchPipeline> {
    let given = spec
        .component
        .as_deref()
        .or(spec.job_definition.as_deref())
        .unwrap_or_default();
    let tracking = store.tracking();
    let root = store.root().to_path_buf();
    let registry =
        |reference: &str| crate::pipeline::registry::resolve(&tracking, &root, reference);
    if let Some(saved) = given.strip_prefix("azureml:") {
        let (name, version) = match saved.split_once([':', '@']) {
            Some((name, v)) if v != "latest" => (name, v.parse::<i64>().ok()),
            Some((name, _)) => (name, None),
            None => (saved, None),
        };
        let newest = crate::pipeline::saved::list(&tracking)?
            .into_iter()
            .filter(|p| p.name == name && version.is_none_or(|v| p.version == v))
            .map(|p| p.version)
            .max()
            .ok_or_else(|| {
                Error::Endpoint(format!(
                    "component: '{given}': no saved pipeline by that name and version (save one \
                     in the designer, or give the pipeline component's YAML file)"
                ))
            })?;
        let pipeline = crate::pipeline::saved::open(&tracking, &root, name, newest)?;
        return Ok(BatchPipeline {
            name: format!("{name}:{newest}"),
            yaml: pipeline.to_yaml(),
            base: root,
        });
    }
    let file = base.join(given);
    let yaml = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    // A bare file name's parent is the empty path, which names no folder.
    let folder = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder = std::fs::canonicalize(folder).map_err(|e| Error::io(folder, e))?;
    let pipeline =
        crate::pipeline::job::parse_with(&yaml, &folder, &registry).map_err(|problems| {
            let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Error::Endpoint(format!(
                "component: {}: {}",
                file.display(),
                listed.join("; ")
            ))
        })?;
    crate::batch::job::data_input(&pipeline)
        .map_err(|e| Error::Endpoint(format!("component: {}: {e}", file.display())))?;
    Ok(BatchPipeline {
        name: pipeline.display_name.clone().unwrap_or_else(|| {
            file.file_stem()
                .map_or_else(|| given.to_owned(), |s| s.to_string_lossy().into_owned())
        }),
        yaml,
        base: folder,
    })
}

/// The deployments of batch endpoint `endpoint_name`, by name.
///
/// # Errors
/// A stored spec that does not read back.
pub fn deployments(store: &Store, endpoint_name: &str) -> Result<Vec<BatchDeployment>> {
    let key = endpoint_name.to_owned();
    type Row = (String, String, String, String, String, Option<String>, i64);
    let rows: Vec<Row> = store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT endpoint, spec, model_name, model_version, runtime, pipeline, created_at_ms
             FROM batch_deployments WHERE endpoint = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([&key], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    })?;
    rows.into_iter()
        .map(
            |(endpoint, spec, model_name, model_version, runtime, pipeline, created_at_ms)| {
                Ok(BatchDeployment {
                    endpoint,
                    spec: serde_json::from_str(&spec)?,
                    model_name,
                    model_version,
                    runtime: serde_json::from_str(&runtime)?,
                    pipeline: pipeline.as_deref().map(serde_json::from_str).transpose()?,
                    created_at_ms,
                })
            },
        )
        .collect()
}

/// Deployment `name` of batch endpoint `endpoint_name`.
///
/// # Errors
/// No such endpoint or deployment (named).
pub fn deployment(store: &Store, endpoint_name: &str, name: &str) -> Result<BatchDeployment> {
    endpoint(store, endpoint_name)?;
    deployments(store, endpoint_name)?
        .into_iter()
        .find(|d| d.spec.name == name)
        .ok_or_else(|| {
            Error::Endpoint(format!(
                "batch endpoint {endpoint_name} has no deployment named '{name}'"
            ))
        })
}

/// Deletes a batch deployment. Refused while it is the default of an endpoint with others
/// (make another the default first) or while one of its jobs runs.
///
/// # Errors
/// An unknown deployment; the default of several; a job running.
pub fn delete_deployment(store: &Store, endpoint_name: &str, name: &str) -> Result<()> {
    let found = endpoint(store, endpoint_name)?;
    deployment(store, endpoint_name, name)?;
    let others = deployments(store, endpoint_name)?.len() > 1;
    if others && found.spec.defaults.deployment_name.as_deref() == Some(name) {
        return Err(Error::Endpoint(format!(
            "{name} is {endpoint_name}'s default deployment; make another the default first \
             (`lathe batch-endpoint update {endpoint_name} --default-deployment OTHER`)"
        )));
    }
    if let Some(running) = job::jobs(store, Some(endpoint_name))?
        .into_iter()
        .find(|j| j.deployment == name && !j.state.is_final())
    {
        return Err(Error::Endpoint(format!(
            "job {} runs on {name}; cancel it first",
            running.id
        )));
    }
    let mut spec = found.spec;
    if spec.defaults.deployment_name.as_deref() == Some(name) {
        spec.defaults.deployment_name = None;
    }
    let row = (
        endpoint_name.to_owned(),
        name.to_owned(),
        serde_json::to_string(&spec)?,
        crate::db::now_millis(),
    );
    store.transaction::<_, Error>(move |c| {
        c.execute(
            "DELETE FROM batch_deployments WHERE endpoint = ?1 AND name = ?2",
            params![row.0, row.1],
        )?;
        c.execute(
            "UPDATE batch_endpoints SET spec = ?2, updated_at_ms = ?3 WHERE name = ?1",
            params![row.0, row.2, row.3],
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = "../../shared/corpora/azureml/azureml-examples/cli/endpoints/batch";

    #[test]
    fn azures_batch_yaml_reads_in_both_schemas_and_what_lathe_cannot_run_is_named() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
        let endpoint =
            std::fs::read_to_string(dir.join("deploy-models/heart-classifier-mlflow/endpoint.yml"))
                .unwrap();
        assert_eq!(
            parse_endpoint(&endpoint).unwrap().name,
            "heart-classifier-batch"
        );
        let simple = std::fs::read_to_string(
            dir.join("deploy-models/heart-classifier-mlflow/deployment-simple/deployment.yml"),
        )
        .unwrap();
        let spec = parse_deployment(&simple).unwrap();
        let settings = spec.settings();
        assert_eq!(settings.mini_batch_size, Some(2));
        assert_eq!(settings.error_threshold, Some(-1));
        assert_eq!(settings.output_action, Some(OutputAction::AppendRow));
        assert_eq!(spec.instances(), 2);
        assert!(spec.ignored().contains(&"compute"));
        // The older schema: settings at the top level.
        let old = "name: dep1\nendpoint_name: end1\nmodel: azureml:m:1\nmini_batch_size: 7\n\
                   output_file_name: out.parquet\nretry_settings:\n  max_retries: 1\n";
        let settings = parse_deployment(old).unwrap().settings();
        assert_eq!(settings.mini_batch_size, Some(7));
        assert_eq!(settings.output_file_name.as_deref(), Some("out.parquet"));
        assert_eq!(settings.retry_settings.unwrap().max_retries, Some(1));
        let custom = std::fs::read_to_string(
            dir.join("deploy-models/heart-classifier-mlflow/deployment-custom/deployment.yml"),
        )
        .unwrap();
        let scripted = parse_deployment(&custom).unwrap();
        assert_eq!(
            scripted.code_configuration.unwrap().scoring_script,
            "batch_driver.py"
        );
        let pipeline =
            std::fs::read_to_string(dir.join("deploy-pipelines/hello-batch/deployment.yml"))
                .unwrap();
        let spec = parse_deployment(&pipeline).unwrap();
        assert_eq!(
            spec.component.as_deref(),
            Some("azureml:hello_batch@latest")
        );
        assert!(spec.ignored().contains(&"settings.default_compute"));
        let from_job = std::fs::read_to_string(
            dir.join("deploy-pipelines/hello-batch/deployment-from-job.yml"),
        )
        .unwrap();
        let e = parse_deployment(&from_job).unwrap_err().to_string();
        assert!(
            e.contains("job_definition") && e.contains("YAML file"),
            "{e}"
        );
        for (bad, field) in [
            ("settings:\n  mini_batch_size: 0\n", "mini_batch_size"),
            ("settings:\n  error_threshold: -2\n", "error_threshold"),
            (
                "settings:\n  output_file_name: ../x.csv\n",
                "output_file_name",
            ),
            ("settings:\n  output_action: append\n", "output_action"),
            ("settings:\n  mini_batch_sise: 3\n", "mini_batch_sise"),
        ] {
            let text = format!("name: dep1\nendpoint_name: end1\nmodel: azureml:m:1\n{bad}");
            let e = parse_deployment(&text).unwrap_err().to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }
}
