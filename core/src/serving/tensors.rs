//! Tensor models for endpoints: an ONNX model run in process by tract, its inputs and outputs
//! named and typed as the graph declares them. A graph dimension left open (a batch of `?`) is
//! fixed per request shape: a plan is optimized for each new set of input shapes and the last
//! few are kept, so a stream of one-row requests pays the optimization once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tract_onnx::prelude::*;

use super::ScoreError;

/// tract's ONNX reader with the ONNX-ML operators Lathe adds ([`super::onnx_ml`]).
fn reader() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    super::onnx_ml::register(&mut onnx.op_register);
    onnx
}

/// Plans kept per model, one per set of input shapes.
const PLANS: usize = 8;

/// A tensor as the protocols carry it: a name, the Open Inference Protocol's datatype
/// (`FP32`, `INT64`, `BYTES`, …), a shape and its elements in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<usize>,
    pub data: Vec<Value>,
}

/// One of the graph's inputs or outputs: a name, a datatype and a shape (`-1` where open).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorPort {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

type Plan = Arc<TypedRunnableModel>;

/// An ONNX model ready to run.
pub struct OnnxModel {
    path: PathBuf,
    /// The graph as tract reads it, scikit-learn's ZipMap outputs taken off.
    proto: tract_onnx::pb::ModelProto,
    pub inputs: Vec<TensorPort>,
    pub outputs: Vec<TensorPort>,
    plans: Mutex<Vec<(Vec<Vec<usize>>, Plan)>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

/// The protocol's datatype for an ONNX element type as `onnx::signature` names it.
fn datatype_of(dtype: &str) -> &'static str {
    match dtype {
        "float32" => "FP32",
        "float64" => "FP64",
        "float16" => "FP16",
        "int8" => "INT8",
        "int16" => "INT16",
        "int32" => "INT32",
        "int64" => "INT64",
        "uint8" => "UINT8",
        "uint16" => "UINT16",
        "uint32" => "UINT32",
        "uint64" => "UINT64",
        "bool" => "BOOL",
        "str" => "BYTES",
        _ => "UNKNOWN",
    }
}

/// The protocol's datatype for a tensor element type tract works out.
fn protocol_type(dt: DatumType) -> &'static str {
    match dt {
        DatumType::F32 => "FP32",
        DatumType::F64 => "FP64",
        DatumType::F16 => "FP16",
        DatumType::I8 => "INT8",
        DatumType::I16 => "INT16",
        DatumType::I32 => "INT32",
        DatumType::I64 => "INT64",
        DatumType::U8 => "UINT8",
        DatumType::U16 => "UINT16",
        DatumType::U32 => "UINT32",
        DatumType::U64 => "UINT64",
        DatumType::Bool => "BOOL",
        DatumType::String => "BYTES",
        _ => "UNKNOWN",
    }
}

fn ports(signature: &Value, part: &str) -> Result<Vec<TensorPort>, String> {
    signature[part]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let name = p["name"].as_str().unwrap_or_default().to_owned();
            match p["type"].as_str() {
                Some("tensor") => {}
                Some(kind @ ("sequence" | "map")) => {
                    return Err(format!(
                        "{part} '{name}' is a {kind}, not a tensor, and no tensor protocol \
                         carries one"
                    ));
                }
                // An output the graph leaves untyped takes the type tract works out for it
                // (`OnnxModel::load`).
                _ if part == "outputs" => {
                    return Ok(TensorPort {
                        name,
                        datatype: String::new(),
                        shape: Vec::new(),
                    });
                }
                _ => {
                    return Err(format!(
                        "{part} '{name}' declares no type in the graph, so its tensor cannot \
                         be described; re-export the model with the input typed"
                    ));
                }
            }
            Ok(TensorPort {
                datatype: datatype_of(p["tensor-spec"]["dtype"].as_str().unwrap_or_default())
                    .to_owned(),
                shape: p["tensor-spec"]["shape"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| d.as_i64().unwrap_or(-1))
                    .collect(),
                name,
            })
        })
        .collect()
}

impl OnnxModel {
    /// Reads the model at `path` and checks that tract can run it, naming the operator it
    /// cannot.
    ///
    /// # Errors
    /// Not an ONNX model; an input or output that is not a tensor; an operator tract lacks.
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut proto = reader()
            .proto_model_for_path(path)
            .map_err(|e| format!("{}: {}", path.display(), root_cause(&e)))?;
        without_zipmap(&mut proto);
        let signature = crate::onnx::signature(&prost::Message::encode_to_vec(&proto))?;
        let mut model = Self {
            path: path.to_path_buf(),
            proto,
            inputs: ports(&signature, "inputs")?,
            outputs: ports(&signature, "outputs")?,
            plans: Mutex::new(Vec::new()),
        };
        // Planned once here for a batch of one, so an operator tract does not know fails the
        // deployment at once, named, rather than its first request.
        let shapes: Vec<Vec<usize>> = model
            .inputs
            .iter()
            .map(|p| {
                p.shape
                    .iter()
                    .map(|d| usize::try_from(*d).unwrap_or(1).max(1))
                    .collect()
            })
            .collect();
        let types = model
            .inputs
            .iter()
            .map(|p| {
                datum_type(&p.datatype).ok_or_else(|| {
                    format!(
                        "input '{}' is {}, which Lathe does not feed yet",
                        p.name, p.datatype
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let plan = model
            .plan(&shapes, &types)
            .map_err(|e| format!("tract cannot run this model: {e}"))?;
        for (i, port) in model.outputs.iter_mut().enumerate() {
            if !port.datatype.is_empty() {
                continue;
            }
            let fact = plan
                .model()
                .output_fact(i)
                .map_err(|e| format!("output '{}': {}", port.name, root_cause(&e)))?;
            port.datatype = protocol_type(fact.datum_type).to_owned();
            // Planned for one row: the first axis is the batch.
            port.shape = fact
                .shape
                .as_concrete()
                .map(|dims| {
                    dims.iter()
                        .enumerate()
                        .map(|(j, d)| if j == 0 { -1 } else { *d as i64 })
                        .collect()
                })
                .unwrap_or_default();
        }
        Ok(model)
    }

    /// The graph's input names, joined for a message.
    pub fn input_names(&self) -> String {
        self.inputs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The graph's output names, for metadata.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|p| p.name.clone()).collect()
    }

    fn plan(&self, shapes: &[Vec<usize>], types: &[DatumType]) -> Result<Plan, String> {
        if let Ok(plans) = self.plans.lock()
            && let Some((_, plan)) = plans.iter().find(|(s, _)| s == shapes)
        {
            return Ok(Arc::clone(plan));
        }
        let mut model = reader()
            .model_for_proto_model(&self.proto)
            .map_err(|e| root_cause(&e))?;
        for (i, (shape, dt)) in shapes.iter().zip(types).enumerate() {
            model = model
                .with_input_fact(i, InferenceFact::dt_shape(*dt, shape.clone()))
                .map_err(|e| root_cause(&e))?;
        }
        let plan: Plan = model
            .into_optimized()
            .and_then(tract_onnx::prelude::IntoRunnable::into_runnable)
            .map_err(|e| root_cause(&e))?;
        if let Ok(mut plans) = self.plans.lock() {
            if plans.len() >= PLANS {
                plans.remove(0);
            }
            plans.push((shapes.to_vec(), Arc::clone(&plan)));
        }
        Ok(plan)
    }

    /// Runs the model on `given`, which names every graph input once.
    ///
    /// # Errors
    /// A missing or unknown input, a shape the graph does not take, a value of the wrong type
    /// (as [`ScoreError::BadRequest`]); tract's own failure as [`ScoreError::Model`].
    pub fn run(&self, given: &[Tensor]) -> Result<Vec<Tensor>, ScoreError> {
        if let Some(extra) = given
            .iter()
            .find(|t| !self.inputs.iter().any(|p| p.name == t.name))
        {
            return Err(ScoreError::bad(format!(
                "input '{}' is not one of the model's ({})",
                extra.name,
                self.input_names()
            )));
        }
        let mut tensors = TVec::new();
        let (mut shapes, mut types) = (Vec::new(), Vec::new());
        for port in &self.inputs {
            let t = given
                .iter()
                .find(|t| t.name == port.name)
                .ok_or_else(|| ScoreError::bad(format!("input '{}' is missing", port.name)))?;
            let fits = port.shape.len() == t.shape.len()
                && port
                    .shape
                    .iter()
                    .zip(&t.shape)
                    .all(|(want, got)| *want < 0 || *want as usize == *got);
            if !fits {
                return Err(ScoreError::bad(format!(
                    "input '{}': shape {:?}, the model takes {:?} (-1: any)",
                    port.name, t.shape, port.shape
                )));
            }
            let tensor = to_tract(t, &port.datatype)?;
            shapes.push(t.shape.clone());
            types.push(tensor.datum_type());
            tensors.push(tensor.into());
        }
        let plan = self.plan(&shapes, &types).map_err(ScoreError::Model)?;
        let outputs = plan
            .run(tensors)
            .map_err(|e| ScoreError::Model(root_cause(&e)))?;
        outputs
            .iter()
            .zip(&self.outputs)
            .map(|(value, port)| from_tract(&port.name, value))
            .collect()
    }
}

fn datum_type(datatype: &str) -> Option<DatumType> {
    Some(match datatype {
        "FP32" => DatumType::F32,
        "FP64" => DatumType::F64,
        "INT64" => DatumType::I64,
        "INT32" => DatumType::I32,
        "BOOL" => DatumType::Bool,
        "BYTES" => DatumType::String,
        _ => return None,
    })
}

fn root_cause(e: &TractError) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn to_tract(t: &Tensor, datatype: &str) -> Result<tract_onnx::prelude::Tensor, ScoreError> {
    let bad = |i: usize, v: &Value| {
        ScoreError::bad(format!(
            "input '{}': element {i} ({v}) is not {datatype}",
            t.name
        ))
    };
    macro_rules! array {
        ($ty:ty, $get:expr) => {{
            let values = t
                .data
                .iter()
                .enumerate()
                .map(|(i, v)| $get(v).ok_or_else(|| bad(i, v)))
                .collect::<Result<Vec<$ty>, _>>()?;
            tract_ndarray::ArrayD::from_shape_vec(t.shape.clone(), values)
                .map(tract_onnx::prelude::Tensor::from)
                .map_err(|e| ScoreError::bad(format!("input '{}': {e}", t.name)))
        }};
    }
    match datatype {
        "FP32" => array!(f32, |v: &Value| v.as_f64().map(|x| x as f32)),
        "FP64" => array!(f64, Value::as_f64),
        "INT64" => array!(i64, Value::as_i64),
        "INT32" => array!(i32, |v: &Value| v
            .as_i64()
            .and_then(|x| i32::try_from(x).ok())),
        "BOOL" => array!(bool, Value::as_bool),
        "BYTES" => array!(String, |v: &Value| v.as_str().map(str::to_owned)),
        other => Err(ScoreError::bad(format!(
            "input '{}': the model takes {other}, which Lathe does not feed yet",
            t.name
        ))),
    }
}

fn from_tract(name: &str, value: &TValue) -> Result<Tensor, ScoreError> {
    let shape = value.shape().to_vec();
    let (datatype, data): (&str, Vec<Value>) = match value.datum_type() {
        DatumType::F32 => (
            "FP32",
            values::<f32>(value)?
                .iter()
                .map(|x| json!(f64::from(*x)))
                .collect(),
        ),
        DatumType::F64 => (
            "FP64",
            values::<f64>(value)?.iter().map(|x| json!(x)).collect(),
        ),
        DatumType::I64 => (
            "INT64",
            values::<i64>(value)?.iter().map(|x| json!(x)).collect(),
        ),
        DatumType::I32 => (
            "INT32",
            values::<i32>(value)?.iter().map(|x| json!(x)).collect(),
        ),
        DatumType::Bool => (
            "BOOL",
            values::<bool>(value)?.iter().map(|x| json!(x)).collect(),
        ),
        DatumType::String => (
            "BYTES",
            values::<String>(value)?.iter().map(|x| json!(x)).collect(),
        ),
        // tract's symbolic integers (a class index from its own LinearClassifier) are
        // concrete once run.
        DatumType::TDim => {
            let ints = value
                .cast_to::<i64>()
                .map_err(|e| ScoreError::Model(format!("output '{name}': {e}")))?;
            (
                "INT64",
                values::<i64>(&ints)?.iter().map(|x| json!(x)).collect(),
            )
        }
        other => {
            return Err(ScoreError::Model(format!(
                "output '{name}' is {other:?}, which Lathe does not send yet"
            )));
        }
    };
    Ok(Tensor {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape,
        data,
    })
}

fn values<T: Datum + Clone>(value: &tract_onnx::prelude::Tensor) -> Result<Vec<T>, ScoreError> {
    value
        .to_plain_array_view::<T>()
        .map(|view| view.iter().cloned().collect())
        .map_err(|e| ScoreError::Model(root_cause(&e)))
}

/// A tensor from nested JSON lists (MLflow's `inputs`/`instances` for tensor models): the shape
/// is read from the nesting.
///
/// # Errors
/// Ragged nesting.
pub fn from_nested(name: &str, datatype: &str, value: &Value) -> Result<Tensor, ScoreError> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut data = Vec::new();
    fn walk(v: &Value, depth: usize, shape: &[usize], out: &mut Vec<Value>) -> bool {
        match v {
            Value::Array(items) if depth < shape.len() && items.len() == shape[depth] => {
                items.iter().all(|i| walk(i, depth + 1, shape, out))
            }
            scalar if depth == shape.len() && !scalar.is_array() => {
                out.push(scalar.clone());
                true
            }
            _ => false,
        }
    }
    if !walk(value, 0, &shape, &mut data) {
        return Err(ScoreError::bad(format!(
            "input '{name}': the lists are ragged; a tensor has the same length at every depth"
        )));
    }
    Ok(Tensor {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape,
        data,
    })
}

/// A tensor as nested JSON lists, for MLflow's answer.
/// Rows of a tensor request for data collection: the first axis of every tensor is the row
/// (they must agree). A tensor with one value per row is a column of its name; with up to
/// [`WIDE`] values, one column each (`name[j]`); wider (an image, say), one column holding the
/// row's values as a JSON list. `None` when the tensors have no common first axis.
pub fn row_frame(tensors: &[Tensor]) -> Option<super::Frame> {
    let rows = *tensors.first()?.shape.first()?;
    let mut frame = super::Frame::default();
    for t in tensors {
        let values = per_row(t, rows)?;
        let width = values.first().map_or(0, Vec::len);
        if width == 1 {
            frame
                .push(t.name.clone(), values.into_iter().flatten().collect())
                .ok()?;
        } else if width <= WIDE {
            for j in 0..width {
                let column = values.iter().map(|row| row[j].clone()).collect();
                frame.push(format!("{}[{j}]", t.name), column).ok()?;
            }
        } else {
            let column = values.into_iter().map(Value::Array).collect();
            frame.push(t.name.clone(), column).ok()?;
        }
    }
    Some(frame)
}

/// The widest tensor row collected as a column per value.
pub const WIDE: usize = 32;

/// Each of `rows` rows' values of `t` (its first axis), flat.
fn per_row(t: &Tensor, rows: usize) -> Option<Vec<Vec<Value>>> {
    if t.shape.first() != Some(&rows) || rows == 0 {
        return None;
    }
    let step = t.data.len() / rows;
    (step * rows == t.data.len())
        .then(|| t.data.chunks(step.max(1)).map(<[Value]>::to_vec).collect())
}

/// What a tensor model answered for each of `rows` rows: its output's row (a value, or the
/// row's values as a list), or for several outputs an object of each output's row. `None`
/// when an output has no row per input row.
pub fn output_rows(outputs: &[Tensor], rows: usize) -> Option<Vec<Value>> {
    let per: Vec<(String, Vec<Vec<Value>>)> = outputs
        .iter()
        .map(|t| Some((t.name.clone(), per_row(t, rows)?)))
        .collect::<Option<_>>()?;
    let cell = |row: &[Value]| match row {
        [one] => one.clone(),
        many => Value::Array(many.to_vec()),
    };
    Some(
        (0..rows)
            .map(|i| match per.as_slice() {
                [(_, only)] => cell(&only[i]),
                many => Value::Object(
                    many.iter()
                        .map(|(name, values)| (name.clone(), cell(&values[i])))
                        .collect(),
                ),
            })
            .collect(),
    )
}

pub fn to_nested(t: &Tensor) -> Value {
    fn build(data: &[Value], shape: &[usize]) -> Value {
        match shape {
            [] => data.first().cloned().unwrap_or(Value::Null),
            [_] => Value::Array(data.to_vec()),
            [n, rest @ ..] => {
                let step = rest.iter().product::<usize>().max(1);
                Value::Array(
                    (0..*n)
                        .map(|i| build(&data[i * step..(i + 1) * step], rest))
                        .collect(),
                )
            }
        }
    }
    build(&t.data, &t.shape)
}

/// Takes scikit-learn's ZipMap nodes off the graph's outputs: a ZipMap turns the class
/// probabilities `[N, C]` into a sequence of maps, which no tensor protocol carries (Triton
/// refuses such models; skl2onnx's own `zipmap=False` does the same). The output becomes the
/// probabilities tensor under its own name (skl2onnx calls it `probabilities`), columns in
/// the order of the classifier's labels.
fn without_zipmap(proto: &mut tract_onnx::pb::ModelProto) {
    use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension};
    use tract_onnx::pb::{TensorShapeProto, TypeProto, type_proto};
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    let zipmaps: Vec<(String, String, usize)> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "ZipMap" && n.input.len() == 1 && n.output.len() == 1)
        .map(|n| {
            let classes = n
                .attribute
                .iter()
                .find(|a| a.name.starts_with("classlabels_"))
                .map_or(0, |a| a.ints.len().max(a.strings.len()));
            (n.input[0].clone(), n.output[0].clone(), classes)
        })
        .filter(|(_, output, _)| graph.output.iter().any(|o| &o.name == output))
        .collect();
    for (input, output, classes) in zipmaps {
        graph
            .node
            .retain(|n| !(n.op_type == "ZipMap" && n.output.first() == Some(&output)));
        if let Some(out) = graph.output.iter_mut().find(|o| o.name == output) {
            out.name = input;
            let dim = |value| Dimension {
                denotation: String::new(),
                value: Some(value),
            };
            out.r#type = Some(TypeProto {
                denotation: String::new(),
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: 1, // FLOAT
                    shape: Some(TensorShapeProto {
                        dim: vec![
                            dim(dimension::Value::DimParam("N".into())),
                            dim(dimension::Value::DimValue(classes as i64)),
                        ],
                    }),
                })),
            });
        }
    }
}
