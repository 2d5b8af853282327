//! The Open Inference Protocol v2 (KServe's and Triton's REST API): an inference request's
//! typed tensors in, typed tensors out, with Triton's binary tensor extension
//! (`Inference-Header-Content-Length`: the JSON header, then each binary tensor's bytes in
//! order, little-endian; `BYTES` elements each a 4-byte length and the bytes), as
//! `tritonclient[http]` sends by default. Sources: the KServe "Open Inference Protocol (V2
//! Inference Protocol)" REST section and Triton's binary data extension.
//!
//! Tensor layout: one tensor per input column (shape `[N]` or `[N, 1]`, named as the
//! signature names the column), or one 2-D tensor `[N, F]` of any name holding the `F` inputs in
//! signature order. Outputs: `prediction` (or `cluster`), and `probability` of the second class
//! for a two-class classifier.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::tensors::Tensor;
use super::{Frame, Output, ScoreError, Scorer};

/// What an inference request asked for besides its inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub id: Option<String>,
    pub tensors: Vec<Tensor>,
    /// The outputs asked for by name (all when empty), each with whether it is wanted as
    /// binary data.
    pub outputs: Vec<(String, bool)>,
    /// Every output as binary data (`binary_data_output`).
    pub binary_output: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    inputs: Vec<InputBody>,
    #[serde(default)]
    outputs: Vec<OutputBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputBody {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputBody {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

fn flag(parameters: Option<&Map<String, Value>>, key: &str) -> bool {
    parameters
        .and_then(|p| p.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Bytes per element of a numeric datatype.
fn width(datatype: &str) -> Option<usize> {
    Some(match datatype {
        "BOOL" | "INT8" | "UINT8" => 1,
        "INT16" | "UINT16" | "FP16" => 2,
        "INT32" | "UINT32" | "FP32" => 4,
        "INT64" | "UINT64" | "FP64" => 8,
        _ => return None,
    })
}

/// Decodes a request: `body` is all of it, `header_length` the JSON part's length when the
/// binary extension is used.
///
/// # Errors
/// A header that is not the protocol's JSON, a tensor whose data does not match its shape or
/// datatype, or tensors that are not the model's inputs — each named.
pub fn decode(body: &[u8], header_length: Option<usize>) -> Result<Request, ScoreError> {
    // A length past the body is a stale header (tritonclient leaves it in a headers dict that
    // is used again for a JSON-only request): the body is all JSON then, and an input that
    // claims binary data is refused below, by name.
    let (header, mut binary) = match header_length {
        Some(n) if n <= body.len() => body.split_at(n),
        _ => (body, &[][..]),
    };
    let request: RequestBody =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(header))
            .map_err(|e| ScoreError::bad(format!("the inference request: {e}")))?;
    let mut tensors = Vec::with_capacity(request.inputs.len());
    for input in &request.inputs {
        let count = element_count(&input.shape).ok_or_else(|| {
            ScoreError::bad(format!(
                "input '{}': shape {:?} has a negative dimension or more elements than fit",
                input.name, input.shape
            ))
        })?;
        let size = input
            .parameters
            .as_ref()
            .and_then(|p| p.get("binary_data_size"))
            .and_then(Value::as_u64);
        let values = match (size, &input.data) {
            (Some(size), _) => {
                let size = size as usize;
                if size > binary.len() {
                    return Err(ScoreError::bad(format!(
                        "input '{}': binary_data_size {size} runs past the body",
                        input.name
                    )));
                }
                let (mine, rest) = binary.split_at(size);
                binary = rest;
                from_binary(&input.name, &input.datatype, mine, count)?
            }
            (None, Some(data)) => from_json(&input.name, &input.datatype, data, count)?,
            (None, None) => {
                return Err(ScoreError::bad(format!("input '{}': no data", input.name)));
            }
        };
        tensors.push(Tensor {
            name: input.name.clone(),
            datatype: input.datatype.clone(),
            shape: input.shape.iter().map(|d| *d as usize).collect(),
            data: values,
        });
    }
    let outputs = request
        .outputs
        .iter()
        .map(|o| (o.name.clone(), flag(o.parameters.as_ref(), "binary_data")))
        .collect();
    Ok(Request {
        id: request.id,
        tensors,
        outputs,
        binary_output: flag(request.parameters.as_ref(), "binary_data_output"),
    })
}

/// A tabular model's rows from the request's tensors: one per column (`[N]` or `[N, 1]`, named
/// as the column), or one `[N, F]` tensor of all `names` in order.
///
/// # Errors
/// Tensors of other shapes, or not the model's columns.
pub fn frame_of(tensors: &[Tensor], names: &[String]) -> Result<Frame, ScoreError> {
    let mut frame = Frame::default();
    match tensors {
        [t] if t.shape.len() == 2 && t.shape[1] == names.len() && !names.contains(&t.name) => {
            let rows = t.shape[0];
            for (j, name) in names.iter().enumerate() {
                let column = (0..rows)
                    .map(|i| t.data[i * names.len() + j].clone())
                    .collect();
                frame.push(name.clone(), column)?;
            }
        }
        _ => {
            for t in tensors {
                if !matches!(t.shape.as_slice(), [_] | [_, 1]) {
                    return Err(ScoreError::bad(format!(
                        "input '{}': shape {:?}; a column is [N] or [N, 1], or send one [N, {}] \
                         tensor of {}",
                        t.name,
                        t.shape,
                        names.len(),
                        names.join(", ")
                    )));
                }
                frame.push(t.name.clone(), t.data.clone())?;
            }
        }
    }
    Ok(frame)
}

/// Answers an inference request with `scorer`: the tensors go straight to a tensor model, or
/// become rows for a tabular one.
///
/// # Errors
/// As [`decode`], the scorer's, and [`encode`]'s.
pub fn answer(
    body: &[u8],
    header_length: Option<usize>,
    scorer: &Scorer,
) -> Result<(Vec<u8>, Option<usize>), ScoreError> {
    let request = decode(body, header_length)?;
    let outputs = match scorer.onnx() {
        Some(model) => model.run(&request.tensors)?,
        None => {
            let frame = frame_of(&request.tensors, &scorer.input_names())?;
            output_tensors(&scorer.score(&frame)?, scorer)
        }
    };
    encode(outputs, scorer, &request)
}

fn element_count(shape: &[i64]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
}

fn from_json(
    name: &str,
    datatype: &str,
    data: &Value,
    count: usize,
) -> Result<Vec<Value>, ScoreError> {
    // Not sized by `count`: the shape is the caller's word, the data is what arrived.
    let mut flat = Vec::new();
    fn walk(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            other => out.push(other.clone()),
        }
    }
    walk(data, &mut flat);
    if flat.len() != count {
        return Err(ScoreError::bad(format!(
            "input '{name}': {} values for a shape of {count} elements",
            flat.len()
        )));
    }
    let fits = |v: &Value| match datatype {
        "BOOL" => v.is_boolean(),
        "BYTES" => v.is_string(),
        t if t.starts_with("FP") => v.is_number(),
        t if t.starts_with("INT") || t.starts_with("UINT") => v.is_i64() || v.is_u64(),
        _ => false,
    };
    if width(datatype).is_none() && datatype != "BYTES" {
        return Err(ScoreError::bad(format!(
            "input '{name}': datatype '{datatype}' is not one of the protocol's"
        )));
    }
    if let Some((i, bad)) = flat.iter().enumerate().find(|(_, v)| !fits(v)) {
        return Err(ScoreError::bad(format!(
            "input '{name}': element {i} ({bad}) is not {datatype}"
        )));
    }
    Ok(flat)
}

fn from_binary(
    name: &str,
    datatype: &str,
    bytes: &[u8],
    count: usize,
) -> Result<Vec<Value>, ScoreError> {
    if datatype == "BYTES" {
        let mut out = Vec::new();
        let mut rest = bytes;
        while rest.len() >= 4 {
            let (len, tail) = rest.split_at(4);
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len > tail.len() {
                break;
            }
            let (item, tail) = tail.split_at(len);
            out.push(Value::String(String::from_utf8_lossy(item).into_owned()));
            rest = tail;
        }
        if out.len() != count || !rest.is_empty() {
            return Err(ScoreError::bad(format!(
                "input '{name}': the BYTES data does not hold {count} length-prefixed elements"
            )));
        }
        return Ok(out);
    }
    let w = width(datatype).ok_or_else(|| {
        ScoreError::bad(format!(
            "input '{name}': datatype '{datatype}' is not one of the protocol's"
        ))
    })?;
    if w.checked_mul(count) != Some(bytes.len()) {
        return Err(ScoreError::bad(format!(
            "input '{name}': {} bytes of data for {count} {datatype} elements of {w} bytes",
            bytes.len()
        )));
    }
    let values = bytes.chunks_exact(w).map(|b| {
        let mut a = [0u8; 8];
        a[..w].copy_from_slice(b);
        match datatype {
            "BOOL" => Ok(json!(b[0] != 0)),
            "INT8" => Ok(json!(b[0] as i8)),
            "UINT8" => Ok(json!(b[0])),
            "INT16" => Ok(json!(i16::from_le_bytes([b[0], b[1]]))),
            "UINT16" => Ok(json!(u16::from_le_bytes([b[0], b[1]]))),
            "INT32" => Ok(json!(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            "UINT32" => Ok(json!(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            "FP32" => Ok(json!(f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)),
            "INT64" => Ok(json!(i64::from_le_bytes(a))),
            "UINT64" => Ok(json!(u64::from_le_bytes(a))),
            "FP64" => Ok(json!(f64::from_le_bytes(a))),
            _ => Err(ScoreError::bad(format!(
                "input '{name}': {datatype} binary data is not read; send FP32 or FP64"
            ))),
        }
    });
    values.collect()
}

/// A tabular model's answer as tensors: `prediction` (or `cluster`), and `probability` for a
/// two-class classifier.
fn output_tensors(output: &Output, scorer: &Scorer) -> Vec<Tensor> {
    let (name, datatype) = scorer.output_kind();
    let tensor = |name: &str, datatype: &str, data: Vec<Value>| Tensor {
        name: name.to_owned(),
        datatype: datatype.to_owned(),
        shape: vec![data.len()],
        data,
    };
    match output {
        Output::Numbers(v) => vec![tensor(name, "FP64", v.iter().map(|x| json!(x)).collect())],
        Output::Integers(v) => vec![tensor(name, "INT64", v.iter().map(|x| json!(x)).collect())],
        Output::Labels {
            labels,
            probability,
        } => {
            let mut out = vec![tensor(name, datatype, labels.clone())];
            if let Some(p) = probability {
                out.push(tensor(
                    "probability",
                    "FP64",
                    p.iter().map(|x| json!(x)).collect(),
                ));
            }
            out
        }
    }
}

/// The output tensors a model gives, for its metadata.
pub fn output_ports(scorer: &Scorer) -> Vec<Value> {
    if let Some(model) = scorer.onnx() {
        return model
            .outputs
            .iter()
            .map(|p| json!({ "name": p.name, "datatype": p.datatype, "shape": p.shape }))
            .collect();
    }
    let (name, datatype) = scorer.output_kind();
    let mut ports = vec![json!({ "name": name, "datatype": datatype, "shape": [-1] })];
    if scorer.gives_probability() {
        ports.push(json!({ "name": "probability", "datatype": "FP64", "shape": [-1] }));
    }
    ports
}

/// Encodes the answer: the JSON, and the binary part's start when any output is binary (the
/// value of `Inference-Header-Content-Length`).
///
/// # Errors
/// An output asked for by a name the model does not give.
pub fn encode(
    all: Vec<Tensor>,
    scorer: &Scorer,
    request: &Request,
) -> Result<(Vec<u8>, Option<usize>), ScoreError> {
    for (asked, _) in &request.outputs {
        if !all.iter().any(|t| &t.name == asked) {
            let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
            return Err(ScoreError::bad(format!(
                "output '{asked}' is not one the model gives ({})",
                names.join(", ")
            )));
        }
    }
    let mut binary = Vec::new();
    let mut outputs = Vec::new();
    for Tensor {
        name,
        datatype,
        shape,
        data: values,
    } in all
    {
        let wanted = request.outputs.is_empty() || request.outputs.iter().any(|(n, _)| *n == name);
        if !wanted {
            continue;
        }
        let as_binary =
            request.binary_output || request.outputs.iter().any(|(n, b)| *n == name && *b);
        let datatype = datatype.as_str();
        if as_binary {
            let start = binary.len();
            for v in &values {
                match datatype {
                    "FP64" => {
                        binary.extend_from_slice(&v.as_f64().unwrap_or(f64::NAN).to_le_bytes());
                    }
                    "FP32" => {
                        let x = v.as_f64().unwrap_or(f64::NAN) as f32;
                        binary.extend_from_slice(&x.to_le_bytes());
                    }
                    "INT64" => {
                        binary.extend_from_slice(&v.as_i64().unwrap_or_default().to_le_bytes());
                    }
                    "INT32" => {
                        let x = v.as_i64().unwrap_or_default() as i32;
                        binary.extend_from_slice(&x.to_le_bytes());
                    }
                    "BOOL" => binary.push(u8::from(v.as_bool().unwrap_or(false))),
                    _ => {
                        let text = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        binary.extend_from_slice(&(text.len() as u32).to_le_bytes());
                        binary.extend_from_slice(text.as_bytes());
                    }
                }
            }
            outputs.push(json!({
                "name": name, "datatype": datatype, "shape": shape,
                "parameters": { "binary_data_size": binary.len() - start },
            }));
        } else {
            let data: Vec<Value> = if datatype == "BYTES" {
                values
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Value::String(s),
                        other => Value::String(other.to_string()),
                    })
                    .collect()
            } else {
                values
            };
            outputs
                .push(json!({ "name": name, "datatype": datatype, "shape": shape, "data": data }));
        }
    }
    let mut answer = json!({
        "model_name": scorer.model_name,
        "model_version": scorer.model_version,
        "outputs": outputs,
    });
    if let Some(id) = &request.id {
        answer["id"] = json!(id);
    }
    let mut bytes = serde_json::to_vec(&answer).map_err(|e| ScoreError::Model(e.to_string()))?;
    if binary.is_empty() {
        return Ok((bytes, None));
    }
    let header = bytes.len();
    bytes.extend_from_slice(&binary);
    Ok((bytes, Some(header)))
}

/// The model's metadata: its inputs from the signature, its outputs, its platform.
pub fn metadata(scorer: &Scorer) -> Value {
    if let Some(model) = scorer.onnx() {
        return json!({
            "name": scorer.model_name,
            "versions": [scorer.model_version],
            "platform": "onnx",
            "inputs": model.inputs.iter().map(|p| json!({
                "name": p.name, "datatype": p.datatype, "shape": p.shape,
            })).collect::<Vec<_>>(),
            "outputs": output_ports(scorer),
        });
    }
    json!({
        "name": scorer.model_name,
        "versions": [scorer.model_version],
        "platform": "lathe",
        "inputs": scorer.inputs.iter().map(|p| json!({
            "name": p.name,
            "datatype": datatype_of(&p.kind),
            "shape": [-1, 1],
        })).collect::<Vec<_>>(),
        "outputs": output_ports(scorer),
    })
}

/// The protocol's datatype for an MLflow column type.
fn datatype_of(kind: &str) -> &'static str {
    match kind {
        "double" => "FP64",
        "float" => "FP32",
        "long" => "INT64",
        "integer" => "INT32",
        "boolean" => "BOOL",
        _ => "BYTES",
    }
}

/// An error in the protocol's shape: `{"error": …}`.
pub fn error(message: &str) -> Value {
    json!({ "error": message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_out_of_bounds_is_refused_not_allocated() {
        for shape in ["[4611686018427387904, 4]", "[-1, 2]", "[1000000000000]"] {
            let body = format!(
                r#"{{"inputs": [{{"name": "x", "shape": {shape}, "datatype": "FP32", "data": [1.0, 2.0]}}]}}"#
            );
            let e = decode(body.as_bytes(), None).unwrap_err().to_string();
            assert!(e.starts_with("input 'x': "), "{shape}: {e}");
        }
        let header = r#"{"inputs": [{"name": "x", "shape": [4611686018427387904, 4], "datatype": "FP64", "parameters": {"binary_data_size": 8}}]}"#;
        let mut body = header.as_bytes().to_vec();
        body.extend_from_slice(&1.0f64.to_le_bytes());
        assert!(decode(&body, Some(header.len())).is_err());
    }
}
