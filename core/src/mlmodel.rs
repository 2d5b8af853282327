//! MLflow's `MLmodel` file: the YAML that describes a saved model (its flavors, and the input
//! and output signature the registry and endpoints show and check).

use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
struct MlModelFile {
    #[serde(default)]
    signature: Option<SignatureFields>,
    #[serde(default)]
    flavors: Option<serde_yaml_ng::Mapping>,
}

/// The signature as written: each part a JSON text inside the YAML.
#[derive(Debug, Deserialize)]
struct SignatureFields {
    #[serde(default)]
    inputs: Option<String>,
    #[serde(default)]
    outputs: Option<String>,
    #[serde(default)]
    params: Option<String>,
}

/// What Lathe reads from an MLmodel file.
#[derive(Debug, Clone, PartialEq)]
pub struct MlModel {
    pub flavors: Vec<String>,
    /// `{"inputs": [...], "outputs": [...], "params": [...]}`, the parts present.
    pub signature: Option<Value>,
}

/// Parses an MLmodel file; `name` labels errors (a path or an artifact path).
pub fn parse(name: &str, text: &str) -> Result<MlModel, String> {
    let file: MlModelFile = crate::yaml::from_str(text)
        .map_err(|e| format!("{name}: not a valid MLmodel file: {e}"))?;
    let flavors = file
        .flavors
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let signature = match file.signature {
        None => None,
        Some(fields) => {
            let mut out = json!({});
            for (part, text) in [
                ("inputs", fields.inputs),
                ("outputs", fields.outputs),
                ("params", fields.params),
            ] {
                if let Some(text) = text {
                    let value: Value = serde_json::from_str(&text)
                        .map_err(|e| format!("{name}: signature {part} is not valid JSON: {e}"))?;
                    out[part] = value;
                }
            }
            Some(out)
        }
    };
    Ok(MlModel { flavors, signature })
}
