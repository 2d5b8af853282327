//! MLflow's scoring protocol (`mlflow models serve`, `/invocations`): a JSON body with exactly
//! one of `dataframe_split` (`{columns, data}`), `dataframe_records` (a list of objects),
//! `instances` or `inputs` (a list of objects, of rows, of values for a one-input model, or an
//! object of columns), and optional `params`; or a CSV body (`text/csv`) with a header. The
//! answer is `{"predictions": [...]}`; with `"params": {"probabilities": true}` a classifier
//! answers each row as `{"prediction": label, "probabilities": {class: p, …}}` (Lathe's
//! addition: MLflow's pyfunc server returns what the model's `predict` returns). Source:
//! mlflow/pyfunc/scoring_server and MLflow's "Deploy MLflow Model as a Local Inference Server"
//! documentation.

use serde_json::{Map, Value, json};

use super::tensors::{self, Tensor};
use super::{Frame, Output, ScoreError, Scorer};

/// The keys one of which a JSON request holds.
pub const FORMATS: [&str; 4] = [
    "dataframe_split",
    "dataframe_records",
    "instances",
    "inputs",
];

/// Decodes a request body of `content_type` into rows; `inputs` are the model's input names in
/// signature order (for rows given as lists).
///
/// # Errors
/// An unsupported content type, a body that is not JSON or CSV, or a shape MLflow does not
/// take, naming the field.
pub fn decode(body: &[u8], content_type: &str, inputs: &[String]) -> Result<Frame, ScoreError> {
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match kind.as_str() {
        "application/json" | "" => decode_json(body, inputs),
        "text/csv" => decode_csv(body),
        other => Err(ScoreError::bad(format!(
            "content type '{other}' is not served: send application/json or text/csv"
        ))),
    }
}

fn decode_json(body: &[u8], inputs: &[String]) -> Result<Frame, ScoreError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ScoreError::bad(format!("the body is not JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| {
        ScoreError::bad(format!(
            "the body is a JSON object with one of {}",
            FORMATS.join(", ")
        ))
    })?;
    let given: Vec<&str> = FORMATS
        .iter()
        .copied()
        .filter(|k| object.contains_key(*k))
        .collect();
    if let Some(unknown) = object
        .keys()
        .find(|k| !FORMATS.contains(&k.as_str()) && k.as_str() != "params")
    {
        return Err(ScoreError::bad(format!(
            "field '{unknown}' is not part of MLflow's scoring protocol (one of {}, and params)",
            FORMATS.join(", ")
        )));
    }
    let [format] = given.as_slice() else {
        return Err(ScoreError::bad(format!(
            "give exactly one of {} (got {})",
            FORMATS.join(", "),
            if given.is_empty() {
                "none".to_owned()
            } else {
                given.join(", ")
            }
        )));
    };
    let data = &object[*format];
    match *format {
        "dataframe_split" => split(data),
        "dataframe_records" => {
            let records = data.as_array().ok_or_else(|| {
                ScoreError::bad("dataframe_records: a list of objects, one per row")
            })?;
            Frame::from_records(records, "dataframe_records")
        }
        field => tensor_like(data, field, inputs),
    }
}

/// `{"columns": [...], "data": [[...], ...]}` (an `index` is allowed and ignored).
fn split(data: &Value) -> Result<Frame, ScoreError> {
    let object = data
        .as_object()
        .ok_or_else(|| ScoreError::bad("dataframe_split: an object with columns and data"))?;
    let columns: Vec<String> = object
        .get("columns")
        .and_then(Value::as_array)
        .ok_or_else(|| ScoreError::bad("dataframe_split.columns: a list of column names"))?
        .iter()
        .map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let rows = object
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ScoreError::bad("dataframe_split.data: a list of rows"))?;
    Frame::from_rows(rows, &columns, "dataframe_split.data")
}

/// `instances` or `inputs`: records, rows, values of a one-input model, or columns.
fn tensor_like(data: &Value, field: &str, inputs: &[String]) -> Result<Frame, ScoreError> {
    match data {
        Value::Object(columns) => by_columns(columns, field),
        Value::Array(items) => match items.first() {
            None => Ok(Frame::default()),
            Some(Value::Object(_)) => Frame::from_records(items, field),
            Some(Value::Array(_)) => Frame::from_rows(items, inputs, field),
            Some(_) if inputs.len() == 1 => {
                let mut frame = Frame::default();
                frame.push(inputs[0].clone(), items.clone())?;
                Ok(frame)
            }
            Some(_) => Err(ScoreError::bad(format!(
                "{field}: a list of values fits a model of one input; this one takes {}",
                inputs.join(", ")
            ))),
        },
        _ => Err(ScoreError::bad(format!(
            "{field}: a list of rows or an object of columns"
        ))),
    }
}

fn by_columns(columns: &Map<String, Value>, field: &str) -> Result<Frame, ScoreError> {
    let mut frame = Frame::default();
    for (name, values) in columns {
        let values = match values {
            Value::Array(values) => values.clone(),
            scalar => vec![scalar.clone()],
        };
        frame.push(name.clone(), values).map_err(|e| match e {
            ScoreError::BadRequest(m) => ScoreError::bad(format!("{field}: {m}")),
            other => other,
        })?;
    }
    Ok(frame)
}

/// A CSV body with a header; numbers read as numbers, empty cells as nulls.
fn decode_csv(body: &[u8]) -> Result<Frame, ScoreError> {
    let mut reader = csv::ReaderBuilder::new().from_reader(body);
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| ScoreError::bad(format!("the CSV body: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut columns = vec![Vec::new(); names.len()];
    let mut rows = 0;
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ScoreError::bad(format!("the CSV body: {e}")))?;
        if record.len() != names.len() {
            return Err(ScoreError::bad(format!(
                "the CSV body: line {} has {} fields where the header has {}",
                i + 2,
                record.len(),
                names.len()
            )));
        }
        for (column, cell) in columns.iter_mut().zip(record.iter()) {
            column.push(cell_value(cell));
        }
        rows += 1;
    }
    Ok(Frame {
        names,
        columns,
        rows,
    })
}

fn cell_value(cell: &str) -> Value {
    if cell.is_empty() {
        return Value::Null;
    }
    if let Ok(n) = cell.parse::<i64>() {
        return Value::from(n);
    }
    match cell.parse::<f64>() {
        Ok(x) if x.is_finite() => Value::from(x),
        _ => Value::String(cell.to_owned()),
    }
}

/// Answers a request with `scorer`: rows for a tabular model, tensors for an ONNX model
/// (`inputs` or `instances` as an object of input name → nested lists, or one nested list for
/// a one-input model), the answer in MLflow's shape.
///
/// The rows a tabular model scored come back beside the answer (for data collection).
///
/// # Errors
/// As [`decode`] and the scorer's.
pub fn answer(
    body: &[u8],
    content_type: &str,
    scorer: &Scorer,
) -> Result<(Value, Option<Frame>), ScoreError> {
    let Some(model) = scorer.onnx() else {
        let frame = decode(body, content_type, &scorer.input_names())?;
        let output = scorer.score(&frame)?;
        if !wants_probabilities(body, content_type)? {
            return Ok((encode(&output), Some(frame)));
        }
        let Output::Labels { labels, .. } = &output else {
            return Err(ScoreError::bad(
                "params.probabilities: the model predicts numbers, not classes",
            ));
        };
        let probabilities = scorer.probabilities(&frame)?;
        let rows: Vec<Value> = labels
            .iter()
            .zip(probabilities)
            .map(|(label, p)| json!({ "prediction": label, "probabilities": p }))
            .collect();
        return Ok((json!({ "predictions": rows }), Some(frame)));
    };
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ScoreError::bad(format!("the body is not JSON: {e}")))?;
    let data = ["inputs", "instances"]
        .iter()
        .find_map(|k| value.get(*k))
        .ok_or_else(|| {
            ScoreError::bad(
                "a tensor model takes \"inputs\" (or \"instances\"): an object of input names to \
                 nested lists",
            )
        })?;
    let given = given_tensors(model, data)?;
    let outputs = model.run(&given)?;
    let answer = match outputs.as_slice() {
        [one] => json!({ "predictions": tensors::to_nested(one) }),
        many => json!({
            "predictions": many
                .iter()
                .map(|t| (t.name.clone(), tensors::to_nested(t)))
                .collect::<Map<String, Value>>()
        }),
    };
    Ok((answer, None))
}

/// The tensors of MLflow's `"inputs"` (or `"instances"`) for a tensor model: an object of
/// input names to nested lists, or one nested list for a model of one input.
///
/// # Errors
/// Another shape, or ragged lists, naming the input.
fn given_tensors(model: &tensors::OnnxModel, data: &Value) -> Result<Vec<Tensor>, ScoreError> {
    match data {
        Value::Object(named) => named
            .iter()
            .map(|(name, v)| {
                let port = model.inputs.iter().find(|p| &p.name == name);
                let datatype = port.map_or("FP32", |p| p.datatype.as_str());
                tensors::from_nested(name, datatype, v)
            })
            .collect(),
        list @ Value::Array(_) if model.inputs.len() == 1 => {
            let port = &model.inputs[0];
            Ok(vec![tensors::from_nested(
                &port.name,
                &port.datatype,
                list,
            )?])
        }
        _ => Err(ScoreError::bad(format!(
            "inputs: an object of {} to nested lists",
            model.input_names()
        ))),
    }
}

/// A sampled tensor request's rows and what `answer` (its answer) gave each, for data
/// collection (see [`tensors::row_frame`]); `None` for a request that is not tensors of a
/// tensor model, or whose tensors or outputs share no first axis.
pub fn tensor_rows(body: &[u8], scorer: &Scorer, answer: &Value) -> Option<(Frame, Vec<Value>)> {
    let model = scorer.onnx()?;
    let value: Value = serde_json::from_slice(body).ok()?;
    let data = ["inputs", "instances"].iter().find_map(|k| value.get(*k))?;
    let given = given_tensors(model, data).ok()?;
    let frame = tensors::row_frame(&given)?;
    // One output answers a list of rows; several, an object of them.
    let answers = match &answer["predictions"] {
        Value::Array(rows) => (rows.len() == frame.rows).then(|| rows.clone())?,
        Value::Object(outputs) => {
            let columns: Vec<(&String, &Vec<Value>)> = outputs
                .iter()
                .map(|(name, rows)| Some((name, rows.as_array()?)))
                .collect::<Option<_>>()?;
            if columns.iter().any(|(_, rows)| rows.len() != frame.rows) {
                return None;
            }
            (0..frame.rows)
                .map(|i| {
                    Value::Object(
                        columns
                            .iter()
                            .map(|(name, rows)| ((*name).clone(), rows[i].clone()))
                            .collect(),
                    )
                })
                .collect()
        }
        _ => return None,
    };
    Some((frame, answers))
}

/// Whether a JSON request asks for class probabilities: `"params": {"probabilities": true}`.
fn wants_probabilities(body: &[u8], content_type: &str) -> Result<bool, ScoreError> {
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
        && !content_type.trim().is_empty()
    {
        return Ok(false);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ScoreError::bad(format!("the body is not JSON: {e}")))?;
    match value.get("params").and_then(|p| p.get("probabilities")) {
        None | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) => Ok(true),
        Some(other) => Err(ScoreError::bad(format!(
            "params.probabilities: true or false, not {other}"
        ))),
    }
}

/// `{"predictions": [...]}`, one value per row as MLflow's pyfunc server writes them.
pub fn encode(output: &Output) -> Value {
    let predictions: Vec<Value> = match output {
        Output::Numbers(values) => values.iter().map(|v| json!(v)).collect(),
        Output::Integers(values) => values.iter().map(|v| json!(v)).collect(),
        Output::Labels { labels, .. } => labels.clone(),
    };
    json!({ "predictions": predictions })
}

/// An error in MLflow's shape: `{"error_code": "BAD_REQUEST", "message": …}`.
pub fn error(error: &ScoreError) -> Value {
    let code = match error {
        ScoreError::BadRequest(_) => "BAD_REQUEST",
        ScoreError::Model(_) => "INTERNAL_ERROR",
        ScoreError::Unavailable(_) => "TEMPORARILY_UNAVAILABLE",
        ScoreError::Timeout(_) => "DEADLINE_EXCEEDED",
    };
    json!({ "error_code": code, "message": error.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(frame: &Frame) -> Vec<&str> {
        frame.names.iter().map(String::as_str).collect()
    }

    #[test]
    fn every_json_shape_mlflow_takes_becomes_the_same_columns() {
        let inputs = vec!["a".to_owned(), "b".to_owned()];
        let bodies = [
            r#"{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 4]]}}"#,
            r#"{"dataframe_records": [{"a": 1, "b": 2.5}, {"a": 3, "b": 4}]}"#,
            r#"{"instances": [{"a": 1, "b": 2.5}, {"a": 3, "b": 4}]}"#,
            r#"{"inputs": {"a": [1, 3], "b": [2.5, 4]}}"#,
            r#"{"inputs": [[1, 2.5], [3, 4]], "params": {}}"#,
        ];
        for body in bodies {
            let frame = decode(body.as_bytes(), "application/json", &inputs).unwrap();
            assert_eq!(names(&frame), ["a", "b"], "{body}");
            assert_eq!(frame.rows, 2, "{body}");
            assert_eq!(frame.columns[1][0], json!(2.5), "{body}");
        }
        let csv = decode(b"a,b\n1,2.5\n3,4\n", "text/csv; charset=utf-8", &inputs).unwrap();
        assert_eq!((names(&csv), csv.rows), (vec!["a", "b"], 2));
    }

    #[test]
    fn bad_bodies_are_named() {
        let inputs = vec!["a".to_owned(), "b".to_owned()];
        let bad = |body: &str| {
            decode(body.as_bytes(), "application/json", &inputs)
                .unwrap_err()
                .to_string()
        };
        assert!(bad("{").starts_with("the body is not JSON"));
        assert!(bad(r#"{"rows": []}"#).contains("field 'rows' is not part"));
        assert!(bad(r#"{"inputs": [], "instances": []}"#).contains("got instances, inputs"));
        assert!(
            bad(r#"{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}"#)
                .contains("dataframe_split.data[0]: a row is a list of 2 values")
        );
        assert!(
            bad(r#"{"inputs": {"a": [1, 2], "b": [3]}}"#)
                .contains("inputs: column 'b' has 1 values where the others have 2")
        );
        let e = decode(b"x", "application/xml", &inputs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("application/xml"), "{e}");
    }
}
