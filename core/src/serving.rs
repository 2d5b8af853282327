//! Scoring a registered model for an online endpoint: the model loaded once ([`Scorer`]), and
//! the two protocols an endpoint speaks decoded into one [`Frame`] of named columns and encoded
//! back — MLflow's scoring protocol ([`mlflow_protocol`]) and the Open Inference Protocol v2
//! ([`oip`]). Pure functions over bytes: the HTTP side lives with the server.
//!
//! Runtimes: Lathe's native models (flavor `lathe`, `model.json`) and ONNX models (tract,
//! [`tensors`]) are scored in process. MLflow pyfunc models are refused for now with the
//! reason, naming the flavor.

pub mod mlflow_protocol;
pub mod oip;
pub mod tensors;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::ml::model::{Model, Predictions};
use crate::tracking::Tracking;
use crate::tracking::api::ARTIFACTS_SCHEME;
use crate::tracking::types::ModelVersion;

/// Why a request could not be scored. `BadRequest` is the caller's (HTTP 400), naming the
/// field; `Model` is the model's own failure (HTTP 500).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the model failed: {0}")]
    Model(String),
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
}

impl Scorer {
    /// Loads registered version `version` from the artifact store.
    ///
    /// # Errors
    /// A version whose files are not in Lathe's artifact store, or whose flavor Lathe cannot
    /// serve yet (named).
    pub fn load(tracking: &Tracking, version: &ModelVersion) -> Result<Self, String> {
        let dir = version
            .source
            .strip_prefix(ARTIFACTS_SCHEME)
            .ok_or_else(|| {
                format!(
                    "{}:{}: its files are at {}, outside Lathe's artifact store",
                    version.name, version.version, version.source
                )
            })?
            .trim_end_matches('/');
        let files = tracking.artifact_tree(dir).map_err(|e| e.to_string())?;
        let file = |name: &str| {
            files
                .iter()
                .find(|(path, _, _)| path == name || path.ends_with(&format!("/{name}")))
                .map(|(_, hash, _)| tracking.blobs().path(hash))
        };
        let reference = format!("{}:{}", version.name, version.version);
        if let Some(json) = file("model.json") {
            let bytes =
                std::fs::read(&json).map_err(|e| format!("{reference}: model.json: {e}"))?;
            let model: Model = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{reference}: model.json is not a Lathe model: {e}"))?;
            return Ok(Self {
                model_name: version.name.clone(),
                model_version: version.version.clone(),
                inputs: model
                    .features
                    .iter()
                    .map(|f| Port {
                        name: f.clone(),
                        kind: "double".into(),
                    })
                    .collect(),
                runtime: Runtime::Native(Box::new(model)),
            });
        }
        if let Some((_, hash, _)) = files.iter().find(|(p, _, _)| p.ends_with(".onnx")) {
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
            .map(|m| m.flavors.join(", "))
            .unwrap_or_default();
        Err(if flavors.is_empty() {
            format!("{reference}: no model.json or MLmodel among its files; nothing to serve")
        } else {
            format!(
                "{reference}: flavor(s) {flavors} are not served yet (Python workers come next); \
                 Lathe serves its native models and ONNX models"
            )
        })
    }

    /// The ONNX model behind a tensor scorer.
    pub fn onnx(&self) -> Option<&tensors::OnnxModel> {
        match &self.runtime {
            Runtime::Onnx(model) => Some(model),
            Runtime::Native(_) => None,
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

    /// The rows of `frame` as a matrix of the model's inputs in order.
    ///
    /// # Errors
    /// A column that is not an input, an input that is missing, a value that is not a number.
    fn matrix(&self, frame: &Frame) -> Result<ndarray::Array2<f64>, ScoreError> {
        if let Some(extra) = frame
            .names
            .iter()
            .find(|n| !self.inputs.iter().any(|p| &p.name == *n))
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
        let mut x = ndarray::Array2::zeros((frame.rows, self.inputs.len()));
        for (j, port) in self.inputs.iter().enumerate() {
            let column = by_name.get(port.name.as_str()).ok_or_else(|| {
                ScoreError::bad(format!(
                    "column '{}' is missing: the model takes {}",
                    port.name,
                    self.input_names().join(", ")
                ))
            })?;
            for (i, cell) in column.iter().enumerate() {
                x[[i, j]] = match cell {
                    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    Value::Bool(b) => f64::from(u8::from(*b)),
                    other => {
                        return Err(ScoreError::bad(format!(
                            "column '{}', row {i}: {other} is not a number",
                            port.name
                        )));
                    }
                };
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
                "probabilities: an ONNX model gives what its graph outputs; read them there",
            ));
        };
        let x = self.matrix(frame)?;
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
            Runtime::Onnx(_) => false,
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
            Runtime::Native(model) => {
                let x = self.matrix(frame)?;
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
