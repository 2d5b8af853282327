//! Scoring a registered model for an online endpoint: the model loaded once ([`Scorer`]), and
//! the two protocols an endpoint speaks decoded into one [`Frame`] of named columns and encoded
//! back — MLflow's scoring protocol ([`mlflow_protocol`]) and the Open Inference Protocol v2
//! ([`oip`]). Pure functions over bytes: the HTTP side lives with the server.
//!
//! Runtimes: Lathe's native models (flavor `lathe`, `model.json`) and ONNX models (tract,
//! [`tensors`]) are scored in process. MLflow pyfunc models and Azure scoring scripts run in
//! Python worker processes ([`python`]) inside the deployment's environment, built once per
//! spec for the whole machine.

pub mod mlflow_protocol;
pub mod oip;
pub mod onnx_ml;
pub mod python;
pub mod table;
pub mod tensors;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ml::model::{Model, Predictions};
use crate::ml::preprocessing::Cell;
use crate::tracking::Tracking;
use crate::tracking::types::ModelVersion;

/// Why a request could not be scored. `BadRequest` is the caller's (HTTP 400), naming the
/// field; `Model` is the model's own failure (HTTP 500).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the model failed: {0}")]
    Model(String),
    /// The worker that held the request stopped (HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// No answer in time (HTTP 408).
    #[error("{0}")]
    Timeout(String),
}

impl From<python::WorkerError> for ScoreError {
    fn from(e: python::WorkerError) -> Self {
        match e {
            python::WorkerError::Unavailable(m) => Self::Unavailable(m),
            python::WorkerError::Timeout(m) => Self::Timeout(m),
        }
    }
}

impl ScoreError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
}

/// A request's rows as named columns of JSON scalars, every column `rows` long.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub names: Vec<String>,
    pub columns: Vec<Vec<Value>>,
    pub rows: usize,
}

impl Frame {
    /// Adds a column, checking its length against the others.
    ///
    /// # Errors
    /// A column of another length, or a name given twice.
    pub fn push(&mut self, name: String, values: Vec<Value>) -> Result<(), ScoreError> {
        if self.names.contains(&name) {
            return Err(ScoreError::bad(format!("column '{name}' is given twice")));
        }
        if self.names.is_empty() {
            self.rows = values.len();
        } else if values.len() != self.rows {
            return Err(ScoreError::bad(format!(
                "column '{name}' has {} values where the others have {}",
                values.len(),
                self.rows
            )));
        }
        self.names.push(name);
        self.columns.push(values);
        Ok(())
    }

    /// Rows given as lists, their columns named by `names` (the model's inputs, in order).
    ///
    /// # Errors
    /// A row that is not a list of `names.len()` values.
    pub fn from_rows(rows: &[Value], names: &[String], what: &str) -> Result<Self, ScoreError> {
        let mut columns = vec![Vec::with_capacity(rows.len()); names.len()];
        for (i, row) in rows.iter().enumerate() {
            let cells = row
                .as_array()
                .filter(|cells| cells.len() == names.len())
                .ok_or_else(|| {
                    ScoreError::bad(format!(
                        "{what}[{i}]: a row is a list of {} values ({})",
                        names.len(),
                        names.join(", ")
                    ))
                })?;
            for (column, cell) in columns.iter_mut().zip(cells) {
                column.push(cell.clone());
            }
        }
        Ok(Self {
            names: names.to_vec(),
            columns,
            rows: rows.len(),
        })
    }

    /// The rows as MLflow's `{"dataframe_split": {"columns", "data"}}` request.
    pub fn to_dataframe_split(&self) -> Value {
        let data: Vec<Value> = (0..self.rows)
            .map(|i| Value::Array(self.columns.iter().map(|c| c[i].clone()).collect()))
            .collect();
        serde_json::json!({ "dataframe_split": { "columns": self.names, "data": data } })
    }

    /// Rows given as objects of column → value.
    ///
    /// # Errors
    /// A row that is not an object, or rows with different columns.
    pub fn from_records(records: &[Value], what: &str) -> Result<Self, ScoreError> {
        let mut frame = Frame::default();
        let Some(first) = records.first() else {
            return Ok(frame);
        };
        let names: Vec<String> = first
            .as_object()
            .ok_or_else(|| ScoreError::bad(format!("{what}[0]: a record is an object")))?
            .keys()
            .cloned()
            .collect();
        let mut columns = vec![Vec::with_capacity(records.len()); names.len()];
        for (i, record) in records.iter().enumerate() {
            let object = record
                .as_object()
                .ok_or_else(|| ScoreError::bad(format!("{what}[{i}]: a record is an object")))?;
            if object.len() != names.len() {
                return Err(ScoreError::bad(format!(
                    "{what}[{i}]: has {} fields where the first record has {} ({})",
                    object.len(),
                    names.len(),
                    names.join(", ")
                )));
            }
            for (column, name) in columns.iter_mut().zip(&names) {
                let value = object
                    .get(name)
                    .ok_or_else(|| ScoreError::bad(format!("{what}[{i}]: no field '{name}'")))?;
                column.push(value.clone());
            }
        }
        frame.rows = records.len();
        frame.names = names;
        frame.columns = columns;
        Ok(frame)
    }
}

/// One input the model takes, from its signature.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    /// MLflow's type name (`double`, `long`, `string`, …).
    pub kind: String,
}

/// What a model answers per row, ready to encode.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Numbers (regression, cluster ids).
    Numbers(Vec<f64>),
    Integers(Vec<i64>),
    /// Class labels as the model names them, with the positive class's probability for two
    /// classes.
    Labels {
        labels: Vec<Value>,
        probability: Option<Vec<f64>>,
    },
}

/// A loaded model, ready to score request after request.
#[derive(Debug, Clone)]
pub struct Scorer {
    pub model_name: String,
    pub model_version: String,
    pub inputs: Vec<Port>,
    runtime: Runtime,
}

#[derive(Debug, Clone)]
enum Runtime {
    Native(Box<Model>),
    Onnx(std::sync::Arc<tensors::OnnxModel>),
    Python(std::sync::Arc<PythonModel>),
}

/// A model served by Python workers: the workers, the folder they read the model (and code)
/// from, and how long a request may take.
#[derive(Debug)]
pub struct PythonModel {
    pub pool: python::Pool,
    /// An Azure scoring script (`/score`), not an MLflow model (`/invocations`).
    pub script: bool,
    pub timeout: std::time::Duration,
    /// The signature's output type (MLflow's name), when it gives one.
    output: Option<String>,
    _files: tempfile::TempDir,
}

impl PythonModel {
    /// Sends a request's body to a worker as it came.
    ///
    /// # Errors
    /// As [`python::Pool::call`].
    pub fn call(
        &self,
        op: python::Op,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<python::Reply, python::WorkerError> {
        self.pool.call(op, content_type, body, self.timeout)
    }
}

/// What hosting a deployment's model takes beyond the model: its runtime (environment,
/// scoring code), its instances and variables, and where its workers' lines go.
pub struct Hosting<'a> {
    pub runtime: &'a crate::endpoints::Runtime,
    pub instances: u32,
    pub variables: Vec<(String, String)>,
    pub timeout: std::time::Duration,
    pub log: std::sync::Arc<dyn Fn(&str) + Send + Sync>,
}

impl Scorer {
    /// Loads registered version `version` from the artifact store, for scoring in process.
    ///
    /// # Errors
    /// A version whose files are not in Lathe's artifact store, or whose flavor Lathe cannot
    /// serve in process (named).
    pub fn load(tracking: &Tracking, version: &ModelVersion) -> Result<Self, String> {
        Self::host(tracking, version, None)
    }

    /// Loads `version` for a deployment: in process when Lathe can score it (and the
    /// deployment has no scoring script), else in Python workers as `hosting` says.
    ///
    /// # Errors
    /// As [`Scorer::load`]; an environment that does not build (pip's error); a worker that
    /// does not start (its last line).
    pub fn host(
        tracking: &Tracking,
        version: &ModelVersion,
        hosting: Option<&Hosting<'_>>,
    ) -> Result<Self, String> {
        let dir = tracking
            .artifact_dir(&version.source)
            .map_err(|e| format!("{}:{}: {e}", version.name, version.version))?
            .ok_or_else(|| {
                format!(
                    "{}:{}: its files are at {}, outside Lathe's artifact store",
                    version.name, version.version, version.source
                )
            })?;
        let files = tracking.artifact_tree(&dir).map_err(|e| e.to_string())?;
        let file = |name: &str| {
            files
                .iter()
                .find(|(path, _, _)| path == name || path.ends_with(&format!("/{name}")))
                .map(|(_, hash, _)| tracking.blobs().path(hash))
        };
        let reference = format!("{}:{}", version.name, version.version);
        let scripted = hosting.is_some_and(|h| h.runtime.code.is_some());
        if let Some(json) = file("model.json").filter(|_| !scripted) {
            let bytes =
                std::fs::read(&json).map_err(|e| format!("{reference}: model.json: {e}"))?;
            let model: Model = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{reference}: model.json is not a Lathe model: {e}"))?;
            return Ok(Self {
                model_name: version.name.clone(),
                model_version: version.version.clone(),
                inputs: model
                    .inputs()
                    .into_iter()
                    .map(|i| Port {
                        name: i.name,
                        kind: i.kind,
                    })
                    .collect(),
                runtime: Runtime::Native(Box::new(model)),
            });
        }
        if let Some((_, hash, _)) = files
            .iter()
            .find(|(p, _, _)| p.ends_with(".onnx"))
            .filter(|_| !scripted)
        {
            let model = tensors::OnnxModel::load(&tracking.blobs().path(hash))
                .map_err(|e| format!("{reference}: {e}"))?;
            return Ok(Self {
                model_name: version.name.clone(),
                model_version: version.version.clone(),
                inputs: model
                    .inputs
                    .iter()
                    .map(|p| Port {
                        name: p.name.clone(),
                        kind: p.datatype.clone(),
                    })
                    .collect(),
                runtime: Runtime::Onnx(std::sync::Arc::new(model)),
            });
        }
        let flavors = file("MLmodel")
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| crate::mlmodel::parse("MLmodel", &text).ok())
            .map(|m| m.flavors)
            .unwrap_or_default();
        let pyfunc = flavors.iter().any(|f| f == "python_function");
        match hosting {
            Some(hosting) if scripted || pyfunc => {
                let model = hosted(tracking, version, &files, hosting)?;
                Ok(Self {
                    model_name: version.name.clone(),
                    model_version: version.version.clone(),
                    inputs: signature_ports(version.signature.as_ref()),
                    runtime: Runtime::Python(std::sync::Arc::new(model)),
                })
            }
            _ if flavors.is_empty() => Err(format!(
                "{reference}: no model.json, .onnx file or MLmodel among its files; nothing to \
                 serve (a scoring script serves any files: give a code_configuration)"
            )),
            _ => Err(format!(
                "{reference}: flavor(s) {} have no python_function flavor, and Lathe scores only \
                 its native models and ONNX models in process; MLflow pyfunc models and scoring \
                 scripts are served by a deployment's Python workers",
                flavors.join(", ")
            )),
        }
    }

    /// The Python workers behind the scorer, when it has them.
    pub fn python(&self) -> Option<&PythonModel> {
        match &self.runtime {
            Runtime::Python(model) => Some(model),
            _ => None,
        }
    }

    /// What serves the model, for the deployment's log.
    pub fn describe(&self) -> String {
        match &self.runtime {
            Runtime::Native(_) => "Lathe native".into(),
            Runtime::Onnx(_) => "ONNX, tract".into(),
            Runtime::Python(model) => format!(
                "{}, {} Python worker(s), Python {}{}",
                if model.script {
                    "scoring script"
                } else {
                    "MLflow pyfunc"
                },
                model.pool.instances,
                model.pool.versions["python"].as_str().unwrap_or("?"),
                model.pool.versions["mlflow"]
                    .as_str()
                    .map(|v| format!(", mlflow {v}"))
                    .unwrap_or_default()
            ),
        }
    }

    /// The ONNX model behind a tensor scorer.
    pub fn onnx(&self) -> Option<&tensors::OnnxModel> {
        match &self.runtime {
            Runtime::Onnx(model) => Some(model),
            _ => None,
        }
    }

    /// The model's inputs as the signature names them.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|p| p.name.clone()).collect()
    }

    /// What kind of answer the model gives, for metadata: `FP64`, `INT64` or `BYTES`, and the
    /// output's name.
    pub fn output_kind(&self) -> (&'static str, &'static str) {
        match &self.runtime {
            Runtime::Onnx(_) => ("output", "FP32"),
            Runtime::Python(model) => match model.output.as_deref() {
                Some("long" | "integer") => ("predictions", "INT64"),
                Some("string" | "boolean") => ("predictions", "BYTES"),
                _ => ("predictions", "FP64"),
            },
            Runtime::Native(model) => match &model.body {
                crate::ml::model::Body::Linear { .. } => ("prediction", "FP64"),
                crate::ml::model::Body::Centroids { .. } => ("cluster", "INT64"),
                crate::ml::model::Body::Softmax { classes, .. }
                | crate::ml::model::Body::Tree { classes, .. } => {
                    if classes.iter().all(|c| c.parse::<i64>().is_ok()) {
                        ("prediction", "INT64")
                    } else {
                        ("prediction", "BYTES")
                    }
                }
            },
        }
    }

    /// The rows of `frame` as the native `model`'s feature matrix: each feature read from its
    /// input through the model's preprocessing.
    ///
    /// # Errors
    /// A column that is not an input, an input that is missing, a value that gives no number.
    fn matrix(&self, model: &Model, frame: &Frame) -> Result<ndarray::Array2<f64>, ScoreError> {
        let plans = model.plans_for(|name| frame.names.iter().any(|n| n == name));
        if let Some(extra) = frame
            .names
            .iter()
            .find(|n| !plans.iter().any(|p| &p.source == *n))
        {
            return Err(ScoreError::bad(format!(
                "column '{extra}' is not an input of the model (it takes {})",
                self.input_names().join(", ")
            )));
        }
        let by_name: BTreeMap<&str, &Vec<Value>> = frame
            .names
            .iter()
            .map(String::as_str)
            .zip(&frame.columns)
            .collect();
        let mut x = ndarray::Array2::zeros((frame.rows, plans.len()));
        for (j, plan) in plans.iter().enumerate() {
            let name = &plan.source;
            let column = by_name.get(name.as_str()).ok_or_else(|| {
                ScoreError::bad(format!(
                    "column '{name}' is missing: the model takes {}",
                    self.input_names().join(", ")
                ))
            })?;
            for (i, value) in column.iter().enumerate() {
                let cell = match value {
                    Value::Number(n) => Cell::Number(n.as_f64().unwrap_or(f64::NAN)),
                    Value::Bool(b) => Cell::Number(f64::from(u8::from(*b))),
                    // Text is a category, or a number as text, where the model prepares it.
                    Value::String(t) if !plan.ops.is_empty() => Cell::Text(t),
                    Value::Null if !plan.ops.is_empty() => Cell::Null,
                    other => {
                        return Err(ScoreError::bad(format!(
                            "column '{name}', row {i}: {other} is not a number"
                        )));
                    }
                };
                x[[i, j]] = plan.value(cell).map_err(|problem| {
                    ScoreError::bad(format!("row {i}: {}", problem.describe(name)))
                })?;
            }
        }
        Ok(x)
    }

    /// Each row's probability of every class, keyed by the class's label (MLflow's
    /// `params: {"probabilities": true}`).
    ///
    /// # Errors
    /// A model that gives no probabilities (named), or as [`Scorer::score`].
    pub fn probabilities(
        &self,
        frame: &Frame,
    ) -> Result<Vec<serde_json::Map<String, Value>>, ScoreError> {
        let Runtime::Native(model) = &self.runtime else {
            return Err(ScoreError::bad(
                "probabilities: Lathe computes them for its native models; an ONNX or Python \
                 model gives what it outputs",
            ));
        };
        let x = self.matrix(model, frame)?;
        let (classes, rows) = model.probabilities(&x).ok_or_else(|| {
            ScoreError::bad(format!(
                "probabilities: {}:{} ({}) gives none; a logistic regression does",
                self.model_name,
                self.model_version,
                model.algorithm.as_str()
            ))
        })?;
        Ok(rows
            .into_iter()
            .map(|p| {
                classes
                    .iter()
                    .cloned()
                    .zip(p.into_iter().map(Value::from))
                    .collect()
            })
            .collect())
    }

    /// Whether the model gives the positive class's probability beside the label (a
    /// two-class logistic regression).
    pub fn gives_probability(&self) -> bool {
        match &self.runtime {
            Runtime::Onnx(_) | Runtime::Python(_) => false,
            Runtime::Native(model) => matches!(
                &model.body,
                crate::ml::model::Body::Softmax { classes, .. } if classes.len() == 2
            ),
        }
    }

    /// Scores the rows of `frame`, which must hold exactly the model's inputs.
    ///
    /// # Errors
    /// [`ScoreError::BadRequest`] for a missing or extra column or a value of the wrong type,
    /// naming it; [`ScoreError::Model`] when the model itself fails.
    pub fn score(&self, frame: &Frame) -> Result<Output, ScoreError> {
        match &self.runtime {
            Runtime::Onnx(model) => Err(ScoreError::bad(format!(
                "{}:{} is a tensor model: send its inputs ({}) as tensors — MLflow's \"inputs\" \
                 as an object of nested lists, or the Open Inference Protocol",
                self.model_name,
                self.model_version,
                model.input_names()
            ))),
            Runtime::Python(model) => score_in_python(model, frame),
            Runtime::Native(model) => {
                let x = self.matrix(model, frame)?;
                Ok(match model.predict_matrix(&x).map_err(ScoreError::Model)? {
                    Predictions::Values(v) => Output::Numbers(v),
                    Predictions::Clusters(c) => {
                        Output::Integers(c.into_iter().map(i64::from).collect())
                    }
                    Predictions::Classes {
                        predicted,
                        positive,
                    } => Output::Labels {
                        labels: predicted.into_iter().map(label_value).collect(),
                        probability: positive,
                    },
                })
            }
        }
    }
}

/// A class label as JSON: integers and booleans as themselves (as the training table wrote
/// them), anything else as text.
fn label_value(label: String) -> Value {
    if let Ok(n) = label.parse::<i64>() {
        return Value::from(n);
    }
    match label.as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(label),
    }
}

/// The inputs a signature names (MLflow column specs; a tensor spec's name when it has one).
fn signature_ports(signature: Option<&Value>) -> Vec<Port> {
    signature
        .and_then(|s| s["inputs"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p["name"].as_str()?.to_owned(),
                kind: p["type"].as_str().unwrap_or("double").to_owned(),
            })
        })
        .collect()
}

/// Puts a version's files (and the deployment's code) on disk, builds its environment and
/// starts its workers.
fn hosted(
    tracking: &Tracking,
    version: &ModelVersion,
    files: &[(String, String, i64)],
    hosting: &Hosting<'_>,
) -> Result<PythonModel, String> {
    use crate::pipeline::environment;
    let reference = format!("{}:{}", version.name, version.version);
    let folder = tempfile::Builder::new()
        .prefix("lathe-deployment-")
        .tempdir()
        .map_err(|e| format!("a folder for the model's files: {e}"))?;
    let model_dir = folder.path().join("model");
    let listing: Vec<(String, String)> = files
        .iter()
        .map(|(path, hash, _)| (path.clone(), hash.clone()))
        .collect();
    crate::files::unpack_tree(tracking.blobs(), &listing, &model_dir)
        .map_err(|e| format!("{reference}: {e}"))?;
    let spec = match &hosting.runtime.environment {
        Some(spec) => spec.clone(),
        None => model_environment(&model_dir, &*hosting.log)?,
    };
    let built = environment::materialize(
        &environment::cache_root(),
        &spec,
        &|line| (hosting.log)(line),
        // A build runs to its end: the next deployment of the same spec uses it.
        &std::sync::atomic::AtomicBool::new(false),
    )
    .map_err(|e| e.to_string())?;
    let program = match &hosting.runtime.code {
        Some(code) => {
            let code_dir = folder.path().join("code");
            crate::files::unpack_tree(tracking.blobs(), &code.files, &code_dir)
                .map_err(|e| format!("code_configuration: {e}"))?;
            python::Program::Script {
                model_dir,
                code_dir,
                script: code.scoring_script.clone(),
            }
        }
        None => python::Program::Pyfunc { model_dir },
    };
    let mut variables = environment::variables(&built);
    variables.extend(hosting.variables.iter().cloned());
    let pool = python::Pool::start(&python::Setup {
        python: environment::python(&built),
        env: variables,
        program,
        instances: hosting.instances,
        log: std::sync::Arc::clone(&hosting.log),
    })
    .map_err(|e| format!("{reference}: {e}"))?;
    let output = version
        .signature
        .as_ref()
        .and_then(|s| s["outputs"][0]["type"].as_str())
        .map(str::to_owned);
    Ok(PythonModel {
        pool,
        script: hosting.runtime.code.is_some(),
        timeout: hosting.timeout,
        output,
        _files: folder,
    })
}

/// The environment an MLflow model asks for: its requirements.txt, else its conda.yaml, else
/// the system's Python. A pinned Python other than the one here is said in the log (only the
/// system's Python exists to build from).
fn model_environment(
    model_dir: &std::path::Path,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<crate::pipeline::environment::EnvSpec, String> {
    use crate::pipeline::environment;
    for pinned in ["python_env.yaml", "conda.yaml"] {
        if let Ok(text) = std::fs::read_to_string(model_dir.join(pinned))
            && let Some(version) = text.lines().find_map(|l| {
                let l = l.trim().trim_start_matches("- ");
                l.strip_prefix("python: ")
                    .or_else(|| l.strip_prefix("python="))
                    .or_else(|| l.strip_prefix("python=="))
            })
        {
            log(&format!(
                "the model's {pinned} pins Python {}; its environment is built on this \
                 machine's Python",
                version.trim().trim_matches('"')
            ));
            break;
        }
    }
    for file in ["requirements.txt", "conda.yaml"] {
        let path = model_dir.join(file);
        if path.is_file() {
            return environment::from_file(&path).map_err(|e| format!("the model's {file}: {e}"));
        }
    }
    Ok(environment::EnvSpec::System)
}

/// Scores a frame in Python: the rows as MLflow's `dataframe_split`, the predictions read back.
fn score_in_python(model: &PythonModel, frame: &Frame) -> Result<Output, ScoreError> {
    if model.script {
        return Err(ScoreError::bad(
            "this deployment runs a scoring script: POST its own request shape to /score",
        ));
    }
    let body = frame.to_dataframe_split();
    let reply = model.call(
        python::Op::Invocations,
        "application/json",
        body.to_string().into_bytes(),
    )?;
    let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    if reply.status != 200 {
        let message = answer["message"].as_str().map_or_else(
            || String::from_utf8_lossy(&reply.body).into_owned(),
            str::to_owned,
        );
        return Err(if reply.status < 500 {
            ScoreError::BadRequest(message)
        } else {
            ScoreError::Model(message)
        });
    }
    let predictions = answer["predictions"]
        .as_array()
        .ok_or_else(|| ScoreError::Model("the model answered no list of predictions".into()))?;
    if predictions.iter().all(|p| p.is_i64() || p.is_u64()) {
        return Ok(Output::Integers(
            predictions.iter().filter_map(Value::as_i64).collect(),
        ));
    }
    if predictions.iter().all(Value::is_number) {
        return Ok(Output::Numbers(
            predictions.iter().filter_map(Value::as_f64).collect(),
        ));
    }
    if predictions.iter().all(|p| p.is_string() || p.is_boolean()) {
        return Ok(Output::Labels {
            labels: predictions.clone(),
            probability: None,
        });
    }
    Err(ScoreError::bad(
        "the model answers more than one value per row; read them from /invocations",
    ))
}
