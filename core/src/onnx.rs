//! Reading an ONNX model's signature: the graph's inputs and outputs with element types and
//! shapes. Only the few protobuf fields needed are declared; prost skips the rest (weights
//! included) without copying them.

use serde_json::{Value, json};

#[derive(Clone, PartialEq, prost::Message)]
struct ModelProto {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorName>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

/// A TensorProto with only its name: older models list weights among the graph inputs.
#[derive(Clone, PartialEq, prost::Message)]
struct TensorName {
    #[prost(string, tag = "8")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorType>,
    /// Present for sequences and maps (classifiers' probability outputs); their element types
    /// are not read.
    #[prost(message, optional, tag = "4")]
    sequence_type: Option<Opaque>,
    #[prost(message, optional, tag = "5")]
    map_type: Option<Opaque>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Opaque {}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorType {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShape>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorShape {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

/// ONNX element types by their TensorProto.DataType number, named as MLflow's tensor specs do.
fn dtype_name(elem_type: i32) -> &'static str {
    match elem_type {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "str",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        _ => "unknown",
    }
}

/// The signature of an ONNX model in MLflow's shape:
/// `{"inputs": [{"type": "tensor", "name": …, "tensor-spec": {"dtype": …, "shape": […]}}], "outputs": […]}`.
/// A dimension without a fixed size (symbolic or missing) is -1.
pub fn signature(bytes: &[u8]) -> Result<Value, String> {
    use prost::Message;
    let model = ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model: {e}"))?;
    let graph = model.graph.ok_or("not an ONNX model: it has no graph")?;
    let weights: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let describe = |info: &ValueInfoProto| {
        let ty = info.r#type.as_ref();
        let Some(tensor) = ty.and_then(|t| t.tensor_type.as_ref()) else {
            let kind = match ty {
                Some(t) if t.sequence_type.is_some() => "sequence",
                Some(t) if t.map_type.is_some() => "map",
                _ => "unknown",
            };
            return json!({ "type": kind, "name": info.name });
        };
        let shape: Vec<i64> = tensor
            .shape
            .as_ref()
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| d.dim_value.filter(|v| *v > 0).unwrap_or(-1))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "type": "tensor",
            "name": info.name,
            "tensor-spec": { "dtype": dtype_name(tensor.elem_type), "shape": shape },
        })
    };
    let inputs: Vec<Value> = graph
        .input
        .iter()
        .filter(|i| !weights.contains(i.name.as_str()))
        .map(describe)
        .collect();
    let outputs: Vec<Value> = graph.output.iter().map(describe).collect();
    Ok(json!({ "inputs": inputs, "outputs": outputs }))
}
