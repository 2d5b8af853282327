//! Field readers that accept what MLflow clients send: protobuf JSON writes 64-bit integers as
//! numbers or strings and non-finite doubles as "NaN"/"Infinity", and GET requests carry every
//! field as a query-string text, with a repeated field given once as a single value.

use serde::de::{Deserializer, Error};
use serde::{Deserialize, Serializer};
use serde_json::Value;

fn number_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    })
}

pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match number_or_text(d)? {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected an integer, got '{s}'"))),
        Some(other) => Err(D::Error::custom(format!(
            "expected an integer, got {other}"
        ))),
    }
}

pub fn i64_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(opt_i64(d)?.unwrap_or(0))
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match number_or_text(d)? {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a number, got {n}"))),
        Some(Value::String(s)) => parse_f64(&s)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a number, got '{s}'"))),
        Some(other) => Err(D::Error::custom(format!("expected a number, got {other}"))),
    }
}

fn parse_f64(text: &str) -> Option<f64> {
    match text.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match number_or_text(d)? {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" | "" => Ok(Some(false)),
            _ => Err(D::Error::custom(format!(
                "expected true or false, got '{s}'"
            ))),
        },
        Some(other) => Err(D::Error::custom(format!(
            "expected true or false, got {other}"
        ))),
    }
}

pub fn bool_or_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(opt_bool(d)?.unwrap_or(true))
}

/// A repeated string field: a list, or one value (as a GET query gives a list of one).
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match number_or_text(d)? {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.into_iter().map(scalar_text::<D>).collect(),
        Some(single) => Ok(vec![scalar_text::<D>(single)?]),
    }
}

fn scalar_text<'de, D: Deserializer<'de>>(value: Value) -> Result<String, D::Error> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(D::Error::custom(format!("expected text, got {other}"))),
    }
}

/// An optional string field (ids are strings in MLflow's protos). A number is refused, as
/// MLflow's server refuses it ("Invalid value 31 for parameter 'run_id'").
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match number_or_text(d)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(D::Error::custom(format!("expected a string, got {other}"))),
    }
}

/// Writes a double the way protobuf JSON does: a number, or "NaN"/"Infinity"/"-Infinity".
pub fn write_f64<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.is_nan() {
        s.serialize_str("NaN")
    } else if value.is_infinite() {
        s.serialize_str(if *value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        })
    } else {
        s.serialize_f64(*value)
    }
}

/// Turns a query string into the JSON object a POST body would carry: each field a text, a
/// field given more than once a list of texts.
pub fn query_to_json(query: &str) -> Value {
    let mut object = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let (key, value) = (key.into_owned(), value.into_owned());
        match object.get_mut(&key) {
            None => {
                object.insert(key, Value::String(value));
            }
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "opt_f64")]
        x: Option<f64>,
        #[serde(default, deserialize_with = "strings")]
        list: Vec<String>,
    }

    fn parse(json: &str) -> Fields {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn integers_and_doubles_come_as_numbers_or_texts() {
        assert_eq!(parse(r#"{"n": 5}"#).n, Some(5));
        assert_eq!(
            parse(r#"{"n": "1700000000000"}"#).n,
            Some(1_700_000_000_000)
        );
        assert!(parse(r#"{"x": "NaN"}"#).x.unwrap().is_nan());
        assert_eq!(parse(r#"{"x": "-Infinity"}"#).x, Some(f64::NEG_INFINITY));
        assert_eq!(parse(r#"{"x": 0.5}"#).x, Some(0.5));
        assert!(serde_json::from_str::<Fields>(r#"{"n": "five"}"#).is_err());
    }

    #[test]
    fn a_repeated_field_given_once_is_a_list_of_one() {
        assert_eq!(parse(r#"{"list": "a"}"#).list, ["a"]);
        assert_eq!(parse(r#"{"list": ["a", "b"]}"#).list, ["a", "b"]);
    }

    #[test]
    fn query_strings_become_json() {
        let json = query_to_json("a=1&b=x%20y&b=z+w&b=%27q%27");
        assert_eq!(json["a"], "1");
        assert_eq!(json["b"], serde_json::json!(["x y", "z w", "'q'"]));
    }
}
