//! Online endpoints in Azure ML CLI v2's shapes: an endpoint (`managedOnlineEndpoint` YAML: name,
//! auth_mode, description, tags, traffic, mirror_traffic) holds deployments
//! (`managedOnlineDeployment` YAML: a model version, instance count, request settings, …), and
//! the workspace keeps both, with the endpoint's port and keys. The server process serves what is
//! here (and picks changes up within seconds). Unknown fields are refused by name; Azure fields
//! with no local meaning (`instance_type`, an environment's `image`, …) are accepted and
//! reported as ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value as Yaml;

use crate::pipeline::environment::{self, EnvSpec};
use crate::store::Store;
use crate::tracking::registry;
use crate::{Error, Result};

/// How callers prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// A key on every request, on loopback too (`Authorization: Bearer KEY`).
    Key,
    /// Azure's token modes have no local issuer: refused with the reason.
    AmlToken,
    AadToken,
}

/// An endpoint as its YAML describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    #[serde(rename = "$schema", default, skip_serializing)]
    pub schema: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Yaml>,
    /// `key` asks for a key even on loopback; when absent, a key is asked for only off
    /// loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<AuthMode>,
    /// Percent of requests per deployment; they sum to 100 (or 0: no traffic yet).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub traffic: BTreeMap<String, u32>,
    /// Percent of requests copied to a shadow deployment, its answers recorded, not returned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mirror_traffic: BTreeMap<String, u32>,
    #[serde(default, skip_serializing)]
    pub identity: Option<Yaml>,
    #[serde(default, skip_serializing)]
    pub public_network_access: Option<Yaml>,
    #[serde(default, skip_serializing)]
    pub kind: Option<Yaml>,
    #[serde(default, skip_serializing)]
    pub properties: Option<Yaml>,
}

impl EndpointSpec {
    /// The Azure fields given that have no meaning on this machine.
    pub fn ignored(&self) -> Vec<&'static str> {
        [
            ("identity", self.identity.is_some()),
            (
                "public_network_access",
                self.public_network_access.is_some(),
            ),
            ("kind", self.kind.is_some()),
            ("properties", self.properties.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// A deployment's model: a registered version (`azureml:NAME:VERSION`, `azureml:NAME@ALIAS`,
/// `NAME:VERSION`) or a local folder or file, registered on creation as Azure does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelRef {
    Reference(String),
    Local {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<Yaml>,
        #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeConfiguration {
    pub code: String,
    pub scoring_script: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSettings {
    /// A request waits at most this long for its answer (default 5,000 ms, as Azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
    /// Past this many requests in hand per instance, a request gets 429 (default 1, as Azure;
    /// Lathe's default is higher for in-process models, see `max_concurrent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_requests_per_instance: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_wait_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    #[serde(default)]
    pub initial_delay: Option<u64>,
    #[serde(default)]
    pub period: Option<u64>,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub success_threshold: Option<u64>,
    #[serde(default)]
    pub failure_threshold: Option<u64>,
}

/// A deployment as its YAML describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    #[serde(rename = "$schema", default, skip_serializing)]
    pub schema: Option<String>,
    pub name: String,
    pub endpoint_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, Yaml>,
    pub model: Option<ModelRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Yaml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_configuration: Option<CodeConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_settings: Option<RequestSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_collector: Option<Yaml>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, Yaml>,
    #[serde(default, skip_serializing)]
    pub instance_type: Option<Yaml>,
    #[serde(default, skip_serializing)]
    pub app_insights_enabled: Option<Yaml>,
    #[serde(default, skip_serializing)]
    pub scale_settings: Option<Yaml>,
    #[serde(default, skip_serializing)]
    pub egress_public_network_access: Option<Yaml>,
    #[serde(default, rename = "type", skip_serializing)]
    pub kind: Option<Yaml>,
}

impl DeploymentSpec {
    /// The Azure fields given that have no meaning on this machine.
    pub fn ignored(&self) -> Vec<&'static str> {
        let image = self
            .environment
            .as_ref()
            .and_then(|e| e.get("image"))
            .is_some();
        [
            ("instance_type", self.instance_type.is_some()),
            ("app_insights_enabled", self.app_insights_enabled.is_some()),
            ("scale_settings", self.scale_settings.is_some()),
            (
                "egress_public_network_access",
                self.egress_public_network_access.is_some(),
            ),
            ("type", self.kind.is_some()),
            ("environment.image", image),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// Requests a deployment takes at once before answering 429: Azure's
    /// `max_concurrent_requests_per_instance` × `instance_count`. Unless told otherwise, a
    /// Python worker takes Azure's default of 1 per instance, and a model scored in process
    /// 64 (Azure's 1 fits a Python worker, not a model scored in microseconds).
    pub fn max_concurrent(&self, python: bool) -> u32 {
        let per_instance = self
            .request_settings
            .as_ref()
            .and_then(|r| r.max_concurrent_requests_per_instance)
            .unwrap_or(if python { 1 } else { 64 });
        per_instance.max(1) * self.instance_count.unwrap_or(1).max(1)
    }

    /// `environment_variables` as text (numbers and booleans as YAML writes them).
    pub fn variables(&self) -> Vec<(String, String)> {
        variables(&self.environment_variables)
    }

    /// How long a request may take, in milliseconds (Azure's default, 5,000).
    pub fn timeout_ms(&self) -> u64 {
        self.request_settings
            .as_ref()
            .and_then(|r| r.request_timeout_ms)
            .unwrap_or(5_000)
    }
}

/// `environment_variables` as text (numbers and booleans as YAML writes them).
pub(crate) fn variables(given: &BTreeMap<String, Yaml>) -> Vec<(String, String)> {
    given
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Yaml::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other)
                    .unwrap_or_default()
                    .trim_end()
                    .to_owned(),
            };
            (k.clone(), text)
        })
        .collect()
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    crate::yaml::check_bounds(text).map_err(|e| Error::Endpoint(format!("{what}: {e}")))?;
    serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // The YAML reader's own message often starts with the path already.
        Error::Endpoint(if path == "." || inner.starts_with(&format!("{path}:")) {
            format!("{what}: {inner}")
        } else {
            format!("{what}: {path}: {inner}")
        })
    })
}

/// Names are what Azure allows for endpoints and deployments: 3 to 32 letters, digits and `-`,
/// starting with a letter and not ending with `-`.
pub(crate) fn check_name(name: &str, what: &str) -> Result<()> {
    let ok = (3..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::Endpoint(format!(
            "{what} name '{name}': 3 to 32 letters, digits and '-', starting with a letter"
        )))
    }
}

/// Reads an endpoint's YAML.
///
/// # Errors
/// An unknown field or a value of the wrong type, named with its path; a bad name; a token
/// auth mode.
pub fn parse_endpoint(text: &str) -> Result<EndpointSpec> {
    let spec: EndpointSpec = parse(text, "endpoint")?;
    check_name(&spec.name, "endpoint")?;
    if let Some(mode @ (AuthMode::AmlToken | AuthMode::AadToken)) = spec.auth_mode {
        return Err(Error::Endpoint(format!(
            "endpoint: auth_mode: {} needs Azure's token service; Lathe serves keys (auth_mode: key)",
            if mode == AuthMode::AmlToken {
                "aml_token"
            } else {
                "aad_token"
            }
        )));
    }
    Ok(spec)
}

/// Reads a deployment's YAML.
///
/// # Errors
/// As [`parse_endpoint`]; a deployment with no model.
pub fn parse_deployment(text: &str) -> Result<DeploymentSpec> {
    let spec: DeploymentSpec = parse(text, "deployment")?;
    check_name(&spec.name, "deployment")?;
    if spec.model.is_none() {
        return Err(Error::Endpoint(
            "deployment: model: names the model to serve (azureml:NAME:VERSION, azureml:NAME@ALIAS \
             or a local path)"
                .into(),
        ));
    }
    crate::collection::spec(spec.data_collector.as_ref())?;
    Ok(spec)
}

/// An endpoint as the workspace keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    pub spec: EndpointSpec,
    /// The address it listens on (127.0.0.1 unless asked otherwise at creation).
    pub host: String,
    pub port: u16,
    /// Whether a key is asked for: `auth_mode: key`, or an address off loopback.
    pub key_required: bool,
    #[serde(skip)]
    pub keys: [String; 2],
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Endpoint {
    pub fn scoring_uri(&self) -> String {
        format!("http://{}:{}/score", self.host, self.port)
    }

    /// Whether `given` is one of the endpoint's keys (compared in constant time).
    pub fn accepts(&self, given: &str) -> bool {
        self.keys.iter().any(|k| {
            k.len() == given.len()
                && k.bytes()
                    .zip(given.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }
}

/// A deployment as the workspace keeps it: the spec and the model version it resolved to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    pub endpoint: String,
    pub spec: DeploymentSpec,
    pub model_name: String,
    pub model_version: String,
    /// What the serving process last said of it: `creating`, `ready` or `failed`.
    pub state: String,
    /// Why it failed, or what it is waiting for.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Its environment and scoring code, fixed when it was created or updated.
    pub runtime: Runtime,
}

/// What a deployment runs in, resolved and kept when it is created or updated, so the serving
/// process needs neither the YAML's folder nor the registered environment as it was then.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Runtime {
    /// The deployment's `environment`; `None` takes the model's own (its requirements.txt or
    /// conda.yaml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvSpec>,
    /// The scoring script of `code_configuration` and its code folder's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
}

/// A scoring script's code folder, kept in the blob store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Code {
    pub scoring_script: String,
    /// Each file's path in the folder and its blob's hash.
    pub files: Vec<(String, String)>,
}

/// A fresh key: 256 random bits in hex.
fn new_key() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn is_loopback(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(host == "localhost")
}

/// A port free on `host` now.
fn free_port(host: &str) -> Result<u16> {
    std::net::TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Endpoint(format!("no free port on {host}: {e}")))
}

/// Creates an endpoint from its YAML on `host` (127.0.0.1 when `None`) and `port` (a free one
/// when `None`); the port is kept for the endpoint's life.
///
/// # Errors
/// A spec that does not read, a name taken, a port in use or taken by another endpoint.
pub fn create_endpoint(
    store: &Store,
    yaml: &str,
    host: Option<&str>,
    port: Option<u16>,
) -> Result<Endpoint> {
    let spec = parse_endpoint(yaml)?;
    if !spec.traffic.is_empty() {
        return Err(Error::Endpoint(
            "endpoint: traffic: a new endpoint has no deployments to send traffic to; set it \
             after creating them (`lathe online-endpoint update NAME --traffic \"blue=100\"`)"
                .into(),
        ));
    }
    let host = host.unwrap_or("127.0.0.1").to_owned();
    let port = match port {
        Some(port) => {
            std::net::TcpListener::bind((host.as_str(), port))
                .map_err(|e| Error::Endpoint(format!("port {port} on {host} is not free: {e}")))?;
            port
        }
        None => free_port(&host)?,
    };
    let key_required = spec.auth_mode == Some(AuthMode::Key) || !is_loopback(&host);
    let stored = serde_json::to_string(&spec)?;
    let (name, keys, now) = (
        spec.name.clone(),
        [new_key(), new_key()],
        crate::db::now_millis(),
    );
    let row = (name.clone(), stored, host.clone(), keys.clone());
    store.transaction::<_, Error>(move |c| {
        let taken: Option<String> = c
            .query_row(
                "SELECT name FROM endpoints WHERE name = ?1 OR port = ?2",
                params![row.0, port],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = taken {
            return Err(Error::Endpoint(if other == row.0 {
                format!("an endpoint named '{other}' exists already")
            } else {
                format!("port {port} belongs to endpoint '{other}'")
            }));
        }
        c.execute(
            "INSERT INTO endpoints (name, spec, host, port, key_required, primary_key,
                 secondary_key, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![
                row.0,
                row.1,
                row.2,
                port,
                key_required,
                row.3[0],
                row.3[1],
                now
            ],
        )?;
        Ok(())
    })?;
    Ok(Endpoint {
        spec,
        host,
        port,
        key_required,
        keys,
        created_at_ms: now,
        updated_at_ms: now,
    })
}

/// An endpoint's row: spec, host, port, key_required, keys, created, updated.
type EndpointRow = (String, String, u16, bool, [String; 2], i64, i64);
/// A deployment's row: endpoint, spec, model name and version, state, message, created, updated.
type DeploymentRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
);

fn endpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EndpointRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        [r.get(4)?, r.get(5)?],
        r.get(6)?,
        r.get(7)?,
    ))
}

const ENDPOINT_COLUMNS: &str = "spec, host, port, key_required, primary_key, secondary_key,
    created_at_ms, updated_at_ms";

fn to_endpoint(
    (spec, host, port, key_required, keys, created_at_ms, updated_at_ms): EndpointRow,
) -> Result<Endpoint> {
    Ok(Endpoint {
        spec: serde_json::from_str(&spec)?,
        host,
        port,
        key_required,
        keys,
        created_at_ms,
        updated_at_ms,
    })
}

/// The endpoint named `name`.
///
/// # Errors
/// An unknown name, with the nearest names suggested.
pub fn endpoint(store: &Store, name: &str) -> Result<Endpoint> {
    let key = name.to_owned();
    let row = store.read::<_, Error>(move |c| {
        Ok(c.query_row(
            &format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE name = ?1"),
            [&key],
            endpoint_row,
        )
        .optional()?)
    })?;
    match row {
        Some(row) => to_endpoint(row),
        None => {
            let known: Vec<String> = endpoints(store)?.into_iter().map(|e| e.spec.name).collect();
            Err(Error::Endpoint(format!(
                "no endpoint named '{name}'{}",
                crate::suggest::did_you_mean(name, known.iter().map(String::as_str))
            )))
        }
    }
}

/// Every endpoint, by name.
pub fn endpoints(store: &Store) -> Result<Vec<Endpoint>> {
    let rows = store.read::<_, Error>(|c| {
        let mut stmt = c.prepare(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints ORDER BY name"
        ))?;
        let rows = stmt.query_map([], endpoint_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    rows.into_iter().map(to_endpoint).collect()
}

/// Changes an endpoint: its description, tags, traffic and mirror traffic (the name, host and
/// port stay). A split names only the endpoint's deployments and sums to 100 (or 0); a mirror
/// names a deployment that gets no live traffic, at most 50 percent.
///
/// # Errors
/// An unknown endpoint or deployment, a split that does not sum to 100.
pub fn update_endpoint(
    store: &Store,
    name: &str,
    change: impl FnOnce(&mut EndpointSpec),
) -> Result<Endpoint> {
    let mut current = endpoint(store, name)?;
    change(&mut current.spec);
    current.spec.name = name.to_owned();
    let deployments: Vec<String> = deployments(store, name)?
        .into_iter()
        .map(|d| d.spec.name)
        .collect();
    check_traffic(&current.spec, &deployments)?;
    let stored = serde_json::to_string(&current.spec)?;
    let (key, now) = (name.to_owned(), crate::db::now_millis());
    store.transaction::<_, Error>(move |c| {
        c.execute(
            "UPDATE endpoints SET spec = ?2, updated_at_ms = ?3 WHERE name = ?1",
            params![key, stored, now],
        )?;
        Ok(())
    })?;
    current.updated_at_ms = now;
    Ok(current)
}

fn check_traffic(spec: &EndpointSpec, deployments: &[String]) -> Result<()> {
    for (what, split) in [
        ("traffic", &spec.traffic),
        ("mirror_traffic", &spec.mirror_traffic),
    ] {
        if let Some(unknown) = split.keys().find(|d| !deployments.contains(d)) {
            return Err(Error::Endpoint(format!(
                "{what}: '{unknown}' is not a deployment of {} ({})",
                spec.name,
                if deployments.is_empty() {
                    "it has none".to_owned()
                } else {
                    deployments.join(", ")
                }
            )));
        }
    }
    let total: u32 = spec.traffic.values().sum();
    if total != 100 && total != 0 {
        return Err(Error::Endpoint(format!(
            "traffic: the split sums to {total}; it must sum to 100"
        )));
    }
    for (d, share) in &spec.mirror_traffic {
        if *share > 50 {
            return Err(Error::Endpoint(format!(
                "mirror_traffic: {d}={share}; a mirror takes at most 50 percent"
            )));
        }
        if spec.traffic.get(d).is_some_and(|s| *s > 0) {
            return Err(Error::Endpoint(format!(
                "mirror_traffic: {d} gets live traffic already; a mirror is a deployment with none"
            )));
        }
    }
    Ok(())
}

/// Parses `blue=90 green=10` (spaces or commas between) into a split.
///
/// # Errors
/// A part that is not `NAME=PERCENT`.
pub fn parse_split(text: &str) -> Result<BTreeMap<String, u32>> {
    text.split([' ', ','])
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (name, share) = part.split_once('=').ok_or_else(|| {
                Error::Endpoint(format!("'{part}': write DEPLOYMENT=PERCENT, e.g. blue=90"))
            })?;
            let share = share
                .parse::<u32>()
                .ok()
                .filter(|s| *s <= 100)
                .ok_or_else(|| {
                    Error::Endpoint(format!("'{part}': the percent is a whole number 0 to 100"))
                })?;
            Ok((name.to_owned(), share))
        })
        .collect()
}

/// New keys for the endpoint (both); returns it with them.
pub fn regenerate_keys(store: &Store, name: &str) -> Result<Endpoint> {
    let mut current = endpoint(store, name)?;
    let keys = [new_key(), new_key()];
    let row = (name.to_owned(), keys.clone(), crate::db::now_millis());
    store.transaction::<_, Error>(move |c| {
        c.execute(
            "UPDATE endpoints SET primary_key = ?2, secondary_key = ?3, updated_at_ms = ?4
             WHERE name = ?1",
            params![row.0, row.1[0], row.1[1], row.2],
        )?;
        Ok(())
    })?;
    current.keys = keys;
    Ok(current)
}

/// Deletes an endpoint and its deployments.
pub fn delete_endpoint(store: &Store, name: &str) -> Result<()> {
    endpoint(store, name)?;
    let key = name.to_owned();
    store.transaction::<_, Error>(move |c| {
        c.execute("DELETE FROM deployment_logs WHERE endpoint = ?1", [&key])?;
        c.execute("DELETE FROM deployment_health WHERE endpoint = ?1", [&key])?;
        c.execute("DELETE FROM deployments WHERE endpoint = ?1", [&key])?;
        c.execute("DELETE FROM collection_limits WHERE endpoint = ?1", [&key])?;
        c.execute("DELETE FROM endpoints WHERE name = ?1", [&key])?;
        Ok(())
    })
}

/// Resolves a deployment's model to a registered version (a local path is registered as
/// `anonymous`, `<endpoint>-<deployment>`, as Azure registers an anonymous model; any folder is
/// taken as a custom model when a scoring script reads it).
pub(crate) fn resolve_model(
    store: &Store,
    model: Option<&ModelRef>,
    anonymous: &str,
    scripted: bool,
    base: &Path,
) -> Result<(String, String)> {
    let tracking = store.tracking();
    let reference = match model {
        Some(ModelRef::Reference(r)) => r.clone(),
        Some(ModelRef::Local { path, .. }) => format!("file:{path}"),
        None => return Err(Error::Endpoint("deployment: model: missing".into())),
    };
    if let Some(rest) = reference.strip_prefix("file:") {
        let path: PathBuf = base.join(rest);
        if !path.exists() {
            return Err(Error::Endpoint(format!(
                "deployment: model: path {} does not exist",
                path.display()
            )));
        }
        let name = anonymous.to_owned();
        let described = "registered for a deployment";
        let mlflow_or_onnx = path.join("MLmodel").is_file()
            || path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
        // A scoring script reads any files (Azure's custom_model).
        let version = if !mlflow_or_onnx && scripted {
            tracking.register_custom(&path, &name, described)?
        } else {
            tracking.register_local(&path, &name, described)?
        };
        return Ok((version.name, version.version));
    }
    let rest = reference.strip_prefix("azureml:").unwrap_or(&reference);
    let found = if let Some((name, alias)) = rest.split_once('@') {
        let (n, a) = (name.to_owned(), alias.to_owned());
        tracking.read(move |c| {
            if a == "latest" {
                // Azure's label for the newest version.
                let filter = format!("name = '{}'", n.replace('\'', "''"));
                let (found, _) =
                    registry::search_versions(c, &filter, &registry::newest_first(), 1, 0)?;
                found.into_iter().next().ok_or_else(|| {
                    crate::tracking::TrackingError::missing(format!(
                        "Registered Model with name={n} not found"
                    ))
                })
            } else {
                registry::version_by_alias(c, &n, &a)
            }
        })
    } else if let Some((name, version)) = rest.rsplit_once(':') {
        let (n, v) = (name.to_owned(), version.to_owned());
        tracking.read(move |c| registry::get_version(c, &n, &v))
    } else {
        return Err(Error::Endpoint(format!(
            "deployment: model: '{reference}': write azureml:NAME:VERSION or azureml:NAME@ALIAS \
             (a local folder is written `model: {{path: {reference}}}`)"
        )));
    };
    found
        .map(|v| (v.name, v.version))
        .map_err(|e| Error::Endpoint(format!("deployment: model: {reference}: {e}")))
}

/// Creates (or, with `replace`, updates) a deployment from its YAML; `base` is the folder its
/// relative paths start from. With `all_traffic` it takes all of the endpoint's traffic;
/// otherwise a new deployment gets none, as in Azure.
///
/// # Errors
/// A spec that does not read, an unknown endpoint or model, a name taken (without `replace`)
/// or unknown (with it). Nothing changes on an error.
pub fn put_deployment(
    store: &Store,
    yaml: &str,
    base: &Path,
    all_traffic: bool,
    replace: bool,
) -> Result<Deployment> {
    let spec = parse_deployment(yaml)?;
    let endpoint = endpoint(store, &spec.endpoint_name)?;
    let exists = deployments(store, &spec.endpoint_name)?
        .iter()
        .any(|d| d.spec.name == spec.name);
    match (exists, replace) {
        (true, false) => {
            return Err(Error::Endpoint(format!(
                "endpoint {} has a deployment named '{}' already; update it instead",
                spec.endpoint_name, spec.name
            )));
        }
        (false, true) => {
            return Err(Error::Endpoint(format!(
                "endpoint {} has no deployment named '{}'",
                spec.endpoint_name, spec.name
            )));
        }
        _ => {}
    }
    // What can be refused is checked before a local model is registered.
    let environment = resolve_environment(store, spec.environment.as_ref(), base)?;
    let (code, puts) = match &spec.code_configuration {
        Some(config) => {
            let (code, puts) = snapshot_code(store, config, base)?;
            (Some(code), puts)
        }
        None => (None, Vec::new()),
    };
    let anonymous = format!("{}-{}", spec.endpoint_name, spec.name);
    let (model_name, model_version) = resolve_model(
        store,
        spec.model.as_ref(),
        &anonymous,
        spec.code_configuration.is_some(),
        base,
    )?;
    let runtime = Runtime { environment, code };
    let runtime_json = serde_json::to_string(&runtime)?;
    let blobs: Vec<(String, i64)> = puts
        .iter()
        .map(|p| (p.hash.clone(), p.size_bytes as i64))
        .collect();
    let stored = serde_json::to_string(&spec)?;
    let now = crate::db::now_millis();
    let mut traffic = endpoint.spec.traffic.clone();
    if all_traffic {
        traffic = BTreeMap::from([(spec.name.clone(), 100)]);
    }
    let traffic = serde_json::to_string(&EndpointSpec {
        traffic,
        ..endpoint.spec.clone()
    })?;
    let row = (
        spec.endpoint_name.clone(),
        spec.name.clone(),
        stored,
        model_name.clone(),
        model_version.clone(),
    );
    store.transaction::<_, Error>(move |c| {
        // Recorded as blobs, so a clean-up of the store sees the code referenced.
        for (hash, size) in &blobs {
            c.execute(
                "INSERT OR IGNORE INTO blobs (hash, size_bytes, created_at) VALUES (?1, ?2, ?3)",
                params![hash, size, crate::db::now_secs()],
            )?;
        }
        c.execute(
            "INSERT INTO deployments (endpoint, name, spec, model_name, model_version, state,
                 message, created_at_ms, updated_at_ms, runtime)
             VALUES (?1, ?2, ?3, ?4, ?5, 'creating', '', ?6, ?6, ?7)
             ON CONFLICT (endpoint, name) DO UPDATE SET spec = ?3, model_name = ?4,
                 model_version = ?5, state = 'creating', message = '', updated_at_ms = ?6,
                 runtime = ?7",
            params![row.0, row.1, row.2, row.3, row.4, now, runtime_json],
        )?;
        c.execute(
            "UPDATE endpoints SET spec = ?2, updated_at_ms = ?3 WHERE name = ?1",
            params![row.0, traffic, now],
        )?;
        Ok(())
    })?;
    Ok(Deployment {
        endpoint: spec.endpoint_name.clone(),
        spec,
        model_name,
        model_version,
        state: "creating".into(),
        message: String::new(),
        created_at_ms: now,
        updated_at_ms: now,
        runtime,
    })
}

/// A deployment's `environment`: a registered `azureml:NAME:VERSION` or an inline definition
/// (`conda_file` relative to `base`; an `image` alone is the system's Python). `None` when the
/// YAML gives none.
///
/// # Errors
/// An environment that is not registered or whose conda file does not read.
pub(crate) fn resolve_environment(
    store: &Store,
    environment: Option<&Yaml>,
    base: &Path,
) -> Result<Option<EnvSpec>> {
    let Some(given) = environment else {
        return Ok(None);
    };
    let text = match given {
        Yaml::String(reference) => reference.clone(),
        inline => serde_yaml_ng::to_string(inline)
            .map_err(|e| Error::Endpoint(format!("deployment: environment: {e}")))?,
    };
    environment::resolve(&store.tracking(), &text, base)
        .map(Some)
        .map_err(|e| Error::Endpoint(format!("deployment: environment: {e}")))
}

/// Keeps `code_configuration.code` in the blob store, checking the scoring script is in it.
///
/// # Errors
/// A folder or script that does not exist, a script path that leaves the folder.
pub(crate) fn snapshot_code(
    store: &Store,
    config: &CodeConfiguration,
    base: &Path,
) -> Result<(Code, Vec<crate::blobs::PutBlob>)> {
    let dir = base.join(&config.code);
    let script = Path::new(&config.scoring_script);
    if script.is_absolute()
        || script
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::Endpoint(format!(
            "deployment: code_configuration.scoring_script: '{}' must be a path inside the code \
             folder",
            config.scoring_script
        )));
    }
    if !dir.is_dir() {
        return Err(Error::Endpoint(format!(
            "deployment: code_configuration.code: folder {} does not exist",
            dir.display()
        )));
    }
    if !dir.join(script).is_file() {
        return Err(Error::Endpoint(format!(
            "deployment: code_configuration.scoring_script: {} is not in {}",
            config.scoring_script,
            dir.display()
        )));
    }
    let (files, puts) = crate::files::put_tree(store.blobs(), &dir)?;
    Ok((
        Code {
            scoring_script: config.scoring_script.replace('\\', "/"),
            files,
        },
        puts,
    ))
}

fn deployment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeploymentRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

/// The deployments of endpoint `name`, by name.
pub fn deployments(store: &Store, name: &str) -> Result<Vec<Deployment>> {
    let key = name.to_owned();
    let rows = store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT endpoint, spec, model_name, model_version, state, message, created_at_ms,
                 updated_at_ms, runtime
             FROM deployments WHERE endpoint = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([&key], deployment_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    rows.into_iter()
        .map(
            |(
                endpoint,
                spec,
                model_name,
                model_version,
                state,
                message,
                created_at_ms,
                updated_at_ms,
                runtime,
            )| {
                Ok(Deployment {
                    endpoint,
                    spec: serde_json::from_str(&spec)?,
                    runtime: serde_json::from_str(&runtime)?,
                    model_name,
                    model_version,
                    state,
                    message,
                    created_at_ms,
                    updated_at_ms,
                })
            },
        )
        .collect()
}

/// Deletes a deployment; its traffic and mirror shares go with it (a split that would then not
/// sum to 100 is refused: move the traffic first).
pub fn delete_deployment(store: &Store, endpoint_name: &str, name: &str) -> Result<()> {
    let endpoint = endpoint(store, endpoint_name)?;
    if !deployments(store, endpoint_name)?
        .iter()
        .any(|d| d.spec.name == name)
    {
        return Err(Error::Endpoint(format!(
            "endpoint {endpoint_name} has no deployment named '{name}'"
        )));
    }
    if endpoint.spec.traffic.get(name).is_some_and(|s| *s > 0) && endpoint.spec.traffic.len() > 1 {
        return Err(Error::Endpoint(format!(
            "{name} takes {}% of {endpoint_name}'s traffic; move it to the other deployments first",
            endpoint.spec.traffic[name]
        )));
    }
    let mut spec = endpoint.spec.clone();
    spec.traffic.remove(name);
    spec.mirror_traffic.remove(name);
    let stored = serde_json::to_string(&spec)?;
    let row = (
        endpoint_name.to_owned(),
        name.to_owned(),
        stored,
        crate::db::now_millis(),
    );
    store.transaction::<_, Error>(move |c| {
        for table in ["deployment_logs", "deployment_health"] {
            c.execute(
                &format!("DELETE FROM {table} WHERE endpoint = ?1 AND deployment = ?2"),
                params![row.0, row.1],
            )?;
        }
        c.execute(
            "DELETE FROM deployments WHERE endpoint = ?1 AND name = ?2",
            params![row.0, row.1],
        )?;
        c.execute(
            "UPDATE endpoints SET spec = ?2, updated_at_ms = ?3 WHERE name = ?1",
            params![row.0, row.2, row.3],
        )?;
        Ok(())
    })
}

/// Records what the serving process found of a deployment (`ready`, or `failed` with why).
pub fn set_state(
    store: &Store,
    endpoint: &str,
    name: &str,
    state: &str,
    message: &str,
) -> Result<()> {
    let row = (
        endpoint.to_owned(),
        name.to_owned(),
        state.to_owned(),
        message.to_owned(),
    );
    store.write::<_, Error>(move |c| {
        c.execute(
            "UPDATE deployments SET state = ?3, message = ?4
             WHERE endpoint = ?1 AND name = ?2 AND (state != ?3 OR message != ?4)",
            params![row.0, row.1, row.2, row.3],
        )?;
        Ok(())
    })?;
    Ok(())
}

/// A deployment's health over one window of the serving process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthPoint {
    pub endpoint: String,
    pub deployment: String,
    /// When the window ended, in milliseconds since the epoch.
    pub at_ms: i64,
    /// The window's length.
    pub seconds: f64,
    pub requests: i64,
    /// Answers that were not 2xx.
    pub errors: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl HealthPoint {
    /// Requests per second over the window.
    pub fn throughput(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// How long health points are kept.
const HEALTH_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

/// What the endpoint answered a request (see [`invoke`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// From sending to the whole answer read.
    pub latency_ms: f64,
    /// The deployment that answered (`azureml-model-deployment`).
    pub deployment: String,
}

/// Sends `body` (of `content_type`) to the endpoint's live scoring URI with its key — to
/// `deployment` when named, else by the split — as `online-endpoint invoke` and the window's
/// Test tab do.
///
/// # Errors
/// An endpoint that does not answer (no process is serving it), named with its URI. An answer
/// of any status is an [`Answer`].
pub fn invoke(
    endpoint: &Endpoint,
    body: &[u8],
    content_type: &str,
    deployment: Option<&str>,
) -> Result<Answer> {
    Caller::new().send(endpoint, body, content_type, deployment, false)
}

/// An HTTP client for an endpoint's scoring URI, kept across requests (one connection).
pub struct Caller(ureq::Agent);

impl Default for Caller {
    fn default() -> Self {
        Self::new()
    }
}

impl Caller {
    pub fn new() -> Self {
        Self(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(std::time::Duration::from_secs(60)))
                .build()
                .into(),
        )
    }

    /// Sends `body` to `endpoint` (to `deployment` when named). A `replay` request says so
    /// (`x-lathe-replay`): it is neither collected nor mirrored.
    ///
    /// # Errors
    /// As [`invoke`].
    pub fn send(
        &self,
        endpoint: &Endpoint,
        body: &[u8],
        content_type: &str,
        deployment: Option<&str>,
        replay: bool,
    ) -> Result<Answer> {
        let mut request = self
            .0
            .post(&endpoint.scoring_uri())
            .header("content-type", content_type)
            .header("authorization", &format!("Bearer {}", endpoint.keys[0]));
        if let Some(d) = deployment {
            request = request.header("azureml-model-deployment", d);
        }
        if replay {
            request = request.header(REPLAY_HEADER, "1");
        }
        let started = std::time::Instant::now();
        let mut answer = request.send(body).map_err(|e| {
            Error::Endpoint(format!(
                "{} does not answer at {} ({e}); it serves while the window or `lathe server` runs",
                endpoint.spec.name,
                endpoint.scoring_uri()
            ))
        })?;
        let text = answer.body_mut().read_to_string().unwrap_or_default();
        Ok(Answer {
            status: answer.status().as_u16(),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            deployment: answer
                .headers()
                .get("azureml-model-deployment")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: text,
        })
    }
}

/// The header a replayed request carries, so the endpoint neither collects nor mirrors it.
pub const REPLAY_HEADER: &str = "x-lathe-replay";

/// Deploys registered version `model:version` as deployment `deployment` of endpoint
/// `endpoint`, creating the endpoint (on loopback, a free port) when it is new — the window's
/// **Deploy…**. A new endpoint's first deployment takes all its traffic; otherwise it takes it
/// only with `all_traffic`.
///
/// # Errors
/// As [`create_endpoint`] and [`put_deployment`]; nothing is created when the deployment is
/// refused.
pub fn deploy(
    store: &Store,
    endpoint_name: &str,
    deployment: &str,
    model: &str,
    version: &str,
    all_traffic: bool,
) -> Result<(Endpoint, Deployment)> {
    check_name(endpoint_name, "endpoint")?;
    check_name(deployment, "deployment")?;
    let yaml = format!(
        "name: {deployment}\nendpoint_name: {endpoint_name}\nmodel: azureml:{model}:{version}\n"
    );
    let exists = endpoints(store)?
        .iter()
        .any(|e| e.spec.name == endpoint_name);
    if !exists {
        // The model must resolve before an endpoint is made for it.
        let (m, v) = (model.to_owned(), version.to_owned());
        store
            .tracking()
            .read(move |c| registry::get_version(c, &m, &v))
            .map_err(|e| Error::Endpoint(format!("{model}:{version}: {e}")))?;
        create_endpoint(store, &format!("name: {endpoint_name}\n"), None, None)?;
    }
    let made = put_deployment(store, &yaml, store.root(), all_traffic || !exists, false)?;
    Ok((endpoint(store, endpoint_name)?, made))
}

/// Lines kept per deployment in its log.
const LOG_LINES: i64 = 1000;

/// Adds a line to a deployment's log (the serving process's account of it), keeping the last
/// thousand.
pub fn log(store: &Store, endpoint: &str, deployment: &str, line: &str) -> Result<()> {
    let row = (
        endpoint.to_owned(),
        deployment.to_owned(),
        line.to_owned(),
        crate::db::now_millis(),
    );
    store.write::<_, Error>(move |c| {
        c.execute(
            "INSERT INTO deployment_logs (endpoint, deployment, at_ms, line) VALUES (?1, ?2, ?3, ?4)",
            params![row.0, row.1, row.3, row.2],
        )?;
        c.execute(
            "DELETE FROM deployment_logs WHERE endpoint = ?1 AND deployment = ?2 AND id <=
                 (SELECT id FROM deployment_logs WHERE endpoint = ?1 AND deployment = ?2
                  ORDER BY id DESC LIMIT 1 OFFSET ?3)",
            params![row.0, row.1, LOG_LINES],
        )?;
        Ok(())
    })
}

/// The last `lines` lines of a deployment's log, oldest first, each with its time in
/// milliseconds since the epoch.
pub fn logs(
    store: &Store,
    endpoint: &str,
    deployment: &str,
    lines: usize,
) -> Result<Vec<(i64, String)>> {
    let key = (endpoint.to_owned(), deployment.to_owned());
    let mut found = store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT at_ms, line FROM deployment_logs WHERE endpoint = ?1 AND deployment = ?2
             ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![key.0, key.1, lines as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<(i64, String)>>>()?)
    })?;
    found.reverse();
    Ok(found)
}

/// Records health points (one write for all), dropping those older than a week.
pub fn record_health(store: &Store, points: Vec<HealthPoint>) -> Result<()> {
    if points.is_empty() {
        return Ok(());
    }
    store.write::<_, Error>(move |c| {
        let mut insert = c.prepare_cached(
            "INSERT OR REPLACE INTO deployment_health (endpoint, deployment, at_ms, seconds,
                 requests, errors, p50_ms, p95_ms, p99_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut newest = 0;
        for p in &points {
            insert.execute(params![
                p.endpoint,
                p.deployment,
                p.at_ms,
                p.seconds,
                p.requests,
                p.errors,
                p.p50_ms,
                p.p95_ms,
                p.p99_ms
            ])?;
            newest = newest.max(p.at_ms);
        }
        c.execute(
            "DELETE FROM deployment_health WHERE at_ms < ?1",
            [newest - HEALTH_KEPT_MS],
        )?;
        Ok(())
    })
}

/// The health points of endpoint `name` since `since_ms`, oldest first.
pub fn health(store: &Store, name: &str, since_ms: i64) -> Result<Vec<HealthPoint>> {
    let key = name.to_owned();
    store.read::<_, Error>(move |c| {
        let mut stmt = c.prepare(
            "SELECT endpoint, deployment, at_ms, seconds, requests, errors, p50_ms, p95_ms, p99_ms
             FROM deployment_health WHERE endpoint = ?1 AND at_ms >= ?2 ORDER BY at_ms",
        )?;
        let rows = stmt.query_map(params![key, since_ms], |r| {
            Ok(HealthPoint {
                endpoint: r.get(0)?,
                deployment: r.get(1)?,
                at_ms: r.get(2)?,
                seconds: r.get(3)?,
                requests: r.get(4)?,
                errors: r.get(5)?,
                p50_ms: r.get(6)?,
                p95_ms: r.get(7)?,
                p99_ms: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })
}

/// Sums points into one per deployment: requests, errors and throughput over their span, the
/// largest p50, p95 and p99 of any window (an upper bound, not a quantile of the union).
pub fn health_summary(points: &[HealthPoint]) -> BTreeMap<String, HealthPoint> {
    let mut out: BTreeMap<String, HealthPoint> = BTreeMap::new();
    for p in points {
        let sum = out
            .entry(p.deployment.clone())
            .or_insert_with(|| HealthPoint {
                requests: 0,
                errors: 0,
                seconds: 0.0,
                p50_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
                ..p.clone()
            });
        sum.requests += p.requests;
        sum.errors += p.errors;
        sum.seconds += p.seconds;
        sum.at_ms = sum.at_ms.max(p.at_ms);
        sum.p50_ms = sum.p50_ms.max(p.p50_ms);
        sum.p95_ms = sum.p95_ms.max(p.p95_ms);
        sum.p99_ms = sum.p99_ms.max(p.p99_ms);
    }
    out
}

/// A fingerprint of every endpoint and deployment: when it changes, the serving process looks
/// again.
pub fn fingerprint(store: &Store) -> Result<(i64, i64, i64, i64)> {
    store.read::<_, Error>(|c| {
        Ok(c.query_row(
            "SELECT (SELECT count(*) FROM endpoints), (SELECT max(updated_at_ms) FROM endpoints),
                    (SELECT count(*) FROM deployments), (SELECT max(updated_at_ms) FROM deployments)",
            [],
            |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?.unwrap_or_default(),
                    r.get::<_, Option<i64>>(1)?.unwrap_or_default(),
                    r.get::<_, Option<i64>>(2)?.unwrap_or_default(),
                    r.get::<_, Option<i64>>(3)?.unwrap_or_default(),
                ))
            },
        )?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_shapes_read_and_unknown_fields_are_named() {
        let endpoint = parse_endpoint(
            "$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json\nname: my-endpoint\nauth_mode: key\n",
        )
        .unwrap();
        assert_eq!(endpoint.auth_mode, Some(AuthMode::Key));
        let deployment = parse_deployment(
            "name: blue\nendpoint_name: my-endpoint\nmodel:\n  path: ../../model-1/model/\ncode_configuration:\n  code: ../../model-1/onlinescoring/\n  scoring_script: score.py\nenvironment:\n  conda_file: ../../model-1/environment/conda.yaml\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\ninstance_type: Standard_DS3_v2\ninstance_count: 1\n",
        )
        .unwrap();
        assert_eq!(deployment.ignored(), ["instance_type", "environment.image"]);
        let e = parse_deployment(
            "name: blue\nendpoint_name: e1x\nmodel: azureml:m:1\ninstance_cont: 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `instance_cont`"), "{e}");
        let e = parse_endpoint("name: ok-name\nauth_mode: aml_token\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Lathe serves keys"), "{e}");
        let e = parse_endpoint("name: x\n").unwrap_err().to_string();
        assert!(e.contains("3 to 32"), "{e}");
        assert_eq!(
            parse_split("blue=90 green=10").unwrap(),
            BTreeMap::from([("blue".to_owned(), 90), ("green".to_owned(), 10)])
        );
        assert!(parse_split("blue").is_err());
    }
}
