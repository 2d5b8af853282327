//! Compute targets: where pipeline steps run. `local`, this machine, is built in; a Ray
//! cluster is added from YAML in the shape of Azure ML's compute YAML (`name`, `type`,
//! `description`) with Ray's own fields:
//!
//! ```yaml
//! name: ray-team
//! type: ray
//! address: http://127.0.0.1:8265   # the Jobs API: the dashboard's address
//! token_env: RAY_TOKEN             # optional: a bearer token, by the variable holding it
//! headers:                         # optional: more headers, each by the variable holding it
//!   X-Api-Key: RAY_API_KEY
//! resources:                       # optional: what a step asks of the cluster by default
//!   num_cpus: 1
//!   num_gpus: 0
//!   memory: 2GiB
//! datastore: team-bucket           # optional: where inputs and outputs are staged
//! ```
//!
//! The Jobs API is Ray's REST interface for submitting and watching jobs
//! (<https://docs.ray.io/en/latest/cluster/running-applications/job-submission/rest.html>); a
//! check reads `/api/version`, the alive nodes' resources from the state API (`/api/v0/nodes`)
//! and what is in use from `/api/cluster_status`.

pub mod ray;

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use ray::Cluster;

use crate::store::Store;
use crate::{Error, Result};

/// The built-in target: this machine.
pub const LOCAL: &str = "local";

/// A compute target as its YAML says it (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeSpec {
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub name: String,
    /// `ray` (`local` is the built-in target's).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Jobs API's URL (the dashboard's, port 8265 by default).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// The environment variable holding a bearer token for the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// Headers sent with every request: header name → the variable holding its value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    /// The datastore inputs and outputs go through when the cluster cannot read this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore: Option<String>,
}

/// What a step asks of the cluster (Ray's `entrypoint_num_cpus`, `_num_gpus`, `_memory`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_cpus: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_gpus: Option<f64>,
    /// Bytes, or with a unit: `512MiB`, `2GiB`, `2G`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
}

impl Resources {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// An amount of memory as written: a number of bytes or a string with a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Memory {
    Bytes(u64),
    Text(String),
}

impl Memory {
    /// In bytes: `K`, `M`, `G`, `T` are powers of 1000, `Ki`… of 1024, a trailing `B` allowed.
    ///
    /// # Errors
    /// Not a number with one of those units.
    pub fn bytes(&self) -> std::result::Result<u64, String> {
        let text = match self {
            Self::Bytes(n) => return Ok(*n),
            Self::Text(t) => t.trim(),
        };
        let digits = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let unit = unit.trim();
        let unit = unit.strip_suffix(['B', 'b']).unwrap_or(unit);
        let scale: f64 = match unit {
            "" => 1.0,
            "K" | "k" => 1e3,
            "M" => 1e6,
            "G" => 1e9,
            "T" => 1e12,
            "Ki" => 1024.0,
            "Mi" => 1024.0 * 1024.0,
            "Gi" => 1024.0 * 1024.0 * 1024.0,
            "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => {
                return Err(format!(
                    "'{text}' is not an amount of memory (e.g. 2GiB, 512MiB)"
                ));
            }
        };
        let number: f64 = number
            .parse()
            .map_err(|_| format!("'{text}' is not an amount of memory (e.g. 2GiB, 512MiB)"))?;
        Ok((number * scale).round() as u64)
    }
}

fn problem(message: impl Into<String>) -> Error {
    Error::Compute(message.into())
}

impl ComputeSpec {
    /// Reads a compute target's YAML, naming the field of every problem.
    ///
    /// # Errors
    /// Not YAML, an unknown field, a token written into the file, a type other than `ray`, a
    /// bad name, address, variable name or amount.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let value: serde_yaml_ng::Value = crate::yaml::from_str(text).map_err(problem)?;
        if value.get("token").is_some() {
            return Err(problem(
                "token: a token is never stored in the workspace; put it in an environment \
                 variable and name that with token_env",
            ));
        }
        let mut spec: Self = serde_yaml_ng::from_str(text).map_err(|e| problem(e.to_string()))?;
        spec.address = spec.address.trim().trim_end_matches('/').to_owned();
        spec.check()?;
        Ok(spec)
    }

    /// The spec as YAML, as `compute show --yaml` writes it.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }

    fn check(&self) -> Result<()> {
        if let Err(Error::InvalidName { reason, .. }) = crate::assets::validate_name(&self.name) {
            return Err(problem(format!("name: '{}': {reason}", self.name)));
        }
        if self.name == LOCAL {
            return Err(problem(
                "name: 'local' is the built-in target (this machine); choose another name",
            ));
        }
        if self.kind != "ray" {
            return Err(problem(format!(
                "type: '{}': Lathe runs steps on Ray clusters (type: ray) or on this machine \
                 (the built-in target 'local')",
                self.kind
            )));
        }
        match url::Url::parse(&self.address) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(problem(
                        "address: holds a user or password; name a variable with token_env",
                    ));
                }
            }
            _ if self.address.is_empty() => {
                return Err(problem(
                    "address: missing; give the Jobs API's URL (the dashboard's, e.g. \
                     http://127.0.0.1:8265)",
                ));
            }
            _ => {
                return Err(problem(format!(
                    "address: '{}' is not an http(s) URL (the dashboard's, e.g. \
                     http://127.0.0.1:8265)",
                    self.address
                )));
            }
        }
        let variables = self
            .token_env
            .iter()
            .map(|v| ("token_env".to_owned(), v))
            .chain(
                self.headers
                    .iter()
                    .map(|(h, v)| (format!("headers.{h}"), v)),
            );
        for (field, name) in variables {
            if !crate::http::is_variable_name(name) {
                return Err(problem(format!(
                    "{field}: not an environment variable's name (letters, digits and _, not \
                     starting with a digit); it names the variable that holds the value"
                )));
            }
        }
        for (field, amount) in [
            ("num_cpus", self.resources.num_cpus),
            ("num_gpus", self.resources.num_gpus),
        ] {
            if amount.is_some_and(|a| !(a.is_finite() && a >= 0.0)) {
                return Err(problem(format!(
                    "resources.{field}: must be a number from 0"
                )));
            }
        }
        if let Some(memory) = &self.resources.memory {
            memory
                .bytes()
                .map_err(|e| problem(format!("resources.memory: {e}")))?;
        }
        Ok(())
    }

    /// The headers every request carries, read from the environment now.
    ///
    /// # Errors
    /// A variable the spec names is not set.
    pub fn request_headers(&self) -> Result<Vec<(String, String)>> {
        let read = |field: &str, variable: &str| {
            std::env::var(variable)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    problem(format!(
                        "{field}: ${variable} is not set in this environment"
                    ))
                })
        };
        let mut out = Vec::new();
        if let Some(variable) = &self.token_env {
            out.push((
                "authorization".to_owned(),
                format!("Bearer {}", read("token_env", variable)?),
            ));
        }
        for (header, variable) in &self.headers {
            out.push((
                header.clone(),
                read(&format!("headers.{header}"), variable)?,
            ));
        }
        Ok(out)
    }
}

/// A compute target as stored, or the built-in `local`.
#[derive(Debug, Clone, Serialize)]
pub struct Compute {
    #[serde(flatten)]
    pub spec: ComputeSpec,
    pub created_at_ms: i64,
    pub built_in: bool,
}

/// The built-in target.
fn local() -> Compute {
    Compute {
        spec: ComputeSpec {
            schema: None,
            name: LOCAL.into(),
            kind: "local".into(),
            description: Some("this machine".into()),
            address: String::new(),
            token_env: None,
            headers: BTreeMap::new(),
            resources: Resources::default(),
            datastore: None,
        },
        created_at_ms: 0,
        built_in: true,
    }
}

/// The `computes` table (migration 21).
const COMPUTES: crate::specs::Specs = crate::specs::Specs {
    table: "computes",
    what: "compute target",
    update: "lathe compute update -f",
    problem: Error::Compute,
};

/// Stores a compute target (`replace`: over one of the same name).
///
/// # Errors
/// The name is taken and `replace` is false; the datastore it names does not exist; the
/// store cannot be written.
pub fn put(store: &Store, spec: &ComputeSpec, replace: bool) -> Result<Compute> {
    if let Some(datastore) = &spec.datastore {
        crate::datastores::get(store, datastore).map_err(|e| problem(format!("datastore: {e}")))?;
    }
    let created_at_ms = COMPUTES.put(store, &spec.name, spec, replace)?;
    Ok(Compute {
        spec: spec.clone(),
        created_at_ms,
        built_in: false,
    })
}

/// The compute targets: `local` first, then the others by name.
///
/// # Errors
/// The store cannot be read.
pub fn list(store: &Store) -> Result<Vec<Compute>> {
    let mut out = vec![local()];
    out.extend(
        COMPUTES
            .list(store)?
            .into_iter()
            .map(|(spec, created_at_ms)| Compute {
                spec,
                created_at_ms,
                built_in: false,
            }),
    );
    Ok(out)
}

/// One compute target (`local` included).
///
/// # Errors
/// No target of that name (the nearest names suggested).
pub fn get(store: &Store, name: &str) -> Result<Compute> {
    if name == LOCAL {
        return Ok(local());
    }
    let (spec, created_at_ms) = COMPUTES.get(store, name)?;
    Ok(Compute {
        spec,
        created_at_ms,
        built_in: false,
    })
}

/// Forgets a compute target (the cluster is not touched).
///
/// # Errors
/// No target of that name; `local`, which is built in.
pub fn delete(store: &Store, name: &str) -> Result<()> {
    if name == LOCAL {
        return Err(problem(
            "'local' is the built-in target (this machine) and stays",
        ));
    }
    COMPUTES.delete(store, name)
}

/// What [`check`] found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    /// `ray` or `local`.
    pub kind: String,
    /// Ray's version (`local`: empty).
    pub version: String,
    pub nodes: usize,
    pub cpus: f64,
    pub cpus_free: f64,
    pub gpus: f64,
    pub memory_bytes: u64,
    /// The round trip of the version request, in milliseconds.
    pub latency_ms: u64,
    /// What a step's default resources ask that the cluster does not have.
    pub warnings: Vec<String>,
}

/// Checks a target: for Ray, that the Jobs API answers within seconds, with its version and
/// the cluster's resources; for `local`, this machine's.
///
/// # Errors
/// No such target; a variable it names unset; the cluster unreachable, refusing the token,
/// or not a Ray dashboard.
pub fn check(store: &Store, name: &str) -> Result<CheckReport> {
    let compute = get(store, name)?;
    if compute.built_in {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        return Ok(CheckReport {
            name: LOCAL.into(),
            kind: "local".into(),
            version: String::new(),
            nodes: 1,
            cpus,
            cpus_free: cpus,
            gpus: 0.0,
            memory_bytes: local_memory(),
            latency_ms: 0,
            warnings: Vec::new(),
        });
    }
    let spec = &compute.spec;
    let cluster = Cluster::new(spec)?;
    let started = Instant::now();
    let version = cluster.get("/api/version")?;
    let latency_ms = started.elapsed().as_millis() as u64;
    // The nodes and their resources as the GCS has them (the autoscaler's report lags).
    let listed = cluster.get("/api/v0/nodes")?;
    let alive: Vec<&serde_json::Value> = listed["data"]["result"]["result"]
        .as_array()
        .map(|nodes| nodes.iter().filter(|n| n["state"] == "ALIVE").collect())
        .unwrap_or_default();
    let total = |key: &str| -> f64 {
        alive
            .iter()
            .map(|n| n["resources_total"][key].as_f64().unwrap_or(0.0))
            .sum()
    };
    let (cpus, gpus, memory) = (total("CPU"), total("GPU"), total("memory"));
    let status = cluster.get("/api/cluster_status")?;
    let cpus_used = status["data"]["clusterStatus"]["loadMetricsReport"]["usage"]["CPU"][0]
        .as_f64()
        .unwrap_or(0.0);
    let nodes = alive.len();
    let mut warnings = Vec::new();
    if nodes == 0 {
        warnings.push("no node of the cluster is alive yet: steps would wait".to_owned());
    }
    if let Some(asked) = spec.resources.num_cpus
        && asked > cpus
    {
        warnings.push(format!(
            "resources.num_cpus asks {asked} CPUs; the cluster has {cpus}: steps would wait"
        ));
    }
    if let Some(asked) = spec.resources.num_gpus
        && asked > gpus
    {
        warnings.push(format!(
            "resources.num_gpus asks {asked} GPUs; the cluster has {gpus}: steps would wait"
        ));
    }
    Ok(CheckReport {
        name: spec.name.clone(),
        kind: spec.kind.clone(),
        version: version["ray_version"].as_str().unwrap_or("").to_owned(),
        nodes,
        cpus,
        cpus_free: cpus - cpus_used,
        gpus,
        memory_bytes: memory as u64,
        latency_ms,
        warnings,
    })
}

/// This machine's memory in bytes (Linux: `MemTotal` of /proc/meminfo; 0 when unknown).
fn local_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Result<ComputeSpec> {
        ComputeSpec::from_yaml(yaml)
    }

    #[test]
    fn a_ray_target_reads_with_its_resources_and_refuses_what_is_wrong_by_field() {
        let ok = spec(
            "name: ray-team\ntype: ray\naddress: http://127.0.0.1:8265/\ntoken_env: RAY_TOKEN\n\
             resources: {num_cpus: 1.5, memory: 2GiB}\n",
        )
        .unwrap();
        assert_eq!(ok.address, "http://127.0.0.1:8265");
        assert_eq!(
            ok.resources.memory.as_ref().map(Memory::bytes),
            Some(Ok(2 << 30))
        );
        assert_eq!(ComputeSpec::from_yaml(&ok.to_yaml()).unwrap(), ok);
        for (yaml, needle) in [
            (
                "name: a\ntype: ray\naddress: http://h:1\ntoken: abc\n",
                "token: a token is never stored",
            ),
            (
                "name: local\ntype: ray\naddress: http://h:1\n",
                "built-in target",
            ),
            (
                "name: a\ntype: amlcompute\naddress: http://h:1\n",
                "type: 'amlcompute'",
            ),
            ("name: a\ntype: ray\n", "address: missing"),
            (
                "name: a\ntype: ray\naddress: ray://h:10001\n",
                "not an http(s) URL",
            ),
            (
                "name: a\ntype: ray\naddress: http://u:p@h:1\n",
                "holds a user or password",
            ),
            (
                "name: a\ntype: ray\naddress: http://h:1\ntoken_env: abc-def\n",
                "token_env: not an environment variable",
            ),
            (
                "name: a\ntype: ray\naddress: http://h:1\nresources: {num_cpus: -1}\n",
                "resources.num_cpus",
            ),
            (
                "name: a\ntype: ray\naddress: http://h:1\nresources: {memory: 2 lots}\n",
                "resources.memory",
            ),
            (
                "name: a\ntype: ray\naddress: http://h:1\nsize: Standard_DS3\n",
                "unknown field `size`",
            ),
        ] {
            let e = spec(yaml).unwrap_err().to_string();
            assert!(e.contains(needle), "{yaml}: {e}");
        }
    }

    #[test]
    fn memory_takes_bytes_and_units_of_1000_and_1024() {
        for (text, bytes) in [
            ("512MiB", 512 << 20),
            ("2G", 2_000_000_000),
            ("1.5Gi", 3 << 29),
            ("100", 100),
            ("4 KB", 4000),
        ] {
            assert_eq!(Memory::Text(text.into()).bytes(), Ok(bytes), "{text}");
        }
        assert!(Memory::Text("lots".into()).bytes().is_err());
    }
}
