//! Command components in Azure ML's CLI v2 YAML: a program with typed inputs and outputs, a
//! command line with `${{inputs.x}}` / `${{outputs.y}}` placeholders (optional parts in
//! `$[[ … ]]`), its code and its environment. Loading checks everything a run would trip on and
//! names the field at fault.

use crate::pipeline::{PipelineError, PipelineResult};
use std::collections::BTreeMap;

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

/// What an input or output carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortType {
    UriFile,
    UriFolder,
    Mltable,
    MlflowModel,
    CustomModel,
    TritonModel,
    Number,
    Integer,
    String,
    Boolean,
}

impl PortType {
    fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "uri_file" => Self::UriFile,
            "uri_folder" => Self::UriFolder,
            "mltable" => Self::Mltable,
            "mlflow_model" => Self::MlflowModel,
            "custom_model" => Self::CustomModel,
            "triton_model" => Self::TritonModel,
            "number" | "float" => Self::Number,
            "integer" => Self::Integer,
            "string" => Self::String,
            "boolean" => Self::Boolean,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UriFile => "uri_file",
            Self::UriFolder => "uri_folder",
            Self::Mltable => "mltable",
            Self::MlflowModel => "mlflow_model",
            Self::CustomModel => "custom_model",
            Self::TritonModel => "triton_model",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::String => "string",
            Self::Boolean => "boolean",
        }
    }

    /// Whether an input of this type takes what an output of type `made` gives. The same
    /// type always; and, as Azure ML's designer connects them, a `uri_folder` input takes any
    /// folder (a table, a model), a `mltable` input a folder or file holding a table (read at
    /// run time), and a `custom_model` input any model. A model never stands in for a table or
    /// the other way round, a value (number, string) is never data, and a folder of metrics is
    /// not a model.
    pub fn accepts(self, made: PortType) -> bool {
        use PortType::{CustomModel, MlflowModel, Mltable, TritonModel, UriFile, UriFolder};
        self == made
            || matches!(
                (self, made),
                (UriFolder, Mltable | MlflowModel | CustomModel | TritonModel)
                    | (Mltable, UriFolder | UriFile)
                    | (CustomModel, MlflowModel | TritonModel)
            )
    }

    /// Data (files, folders, tables, models) rather than a value on the command line.
    pub fn is_data(self) -> bool {
        !matches!(
            self,
            Self::Number | Self::Integer | Self::String | Self::Boolean
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Port {
    pub kind: PortType,
    pub description: Option<String>,
    pub optional: bool,
    /// The default as text, as it would appear on the command line.
    pub default: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub allowed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    pub name: String,
    pub version: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub is_deterministic: bool,
    pub inputs: Vec<(String, Port)>,
    pub outputs: Vec<(String, Port)>,
    pub command: String,
    pub code: Option<String>,
    /// A registered environment (`azureml:name:version`), or an inline definition as YAML.
    pub environment: String,
}

/// Why a component was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

const KNOWN_FIELDS: &[&str] = &[
    "$schema",
    "type",
    "name",
    "version",
    "display_name",
    "description",
    "tags",
    "is_deterministic",
    "inputs",
    "outputs",
    "command",
    "code",
    "environment",
    "environment_variables",
    "distribution",
    "resources",
    "additional_includes",
    "instance_count",
];

const PORT_FIELDS: &[&str] = &[
    "type",
    "description",
    "optional",
    "default",
    "min",
    "max",
    "enum",
    "mode",
    "path",
];

/// Parses and checks a command component; `Err` lists every problem found, each naming its field.
pub fn parse(text: &str) -> Result<Component, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, message: String| {
        problems.push(Problem {
            field: field.to_owned(),
            message,
        });
    };
    let root: Value = match crate::yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            problem("(file)", e);
            return Err(problems);
        }
    };
    let Some(map) = root.as_mapping() else {
        problem("(file)", "a component is a YAML mapping of fields".into());
        return Err(problems);
    };
    for key in map.keys() {
        let key = key.as_str().unwrap_or("?");
        if !KNOWN_FIELDS.contains(&key) {
            problem(
                key,
                format!(
                    "unknown field; a command component has {}",
                    KNOWN_FIELDS[1..].join(", ")
                ),
            );
        }
    }
    let text_of = |key: &str| scalar(map.get(key));
    match text_of("type").as_deref() {
        None | Some("command") => {}
        Some(other) => problem(
            "type",
            format!(
                "'{other}' is not supported here; this reads command components (type: command)"
            ),
        ),
    }
    let name = text_of("name").unwrap_or_default();
    if name.is_empty() {
        problem("name", "required, and must not be empty".into());
    } else if !is_component_name(&name) {
        problem(
            "name",
            format!("'{name}' must start with a letter and hold only letters, digits, '_' and '-'"),
        );
    }
    let command = text_of("command").unwrap_or_default();
    if command.trim().is_empty() {
        problem(
            "command",
            "required: the command line the component runs".into(),
        );
    }
    let environment = match map.get("environment") {
        None | Some(Value::Null) => {
            problem(
                "environment",
                "required: a registered environment (azureml:name:version) or an inline one".into(),
            );
            String::new()
        }
        Some(Value::String(s)) => {
            if let Some(message) = asset_reference_problem(s) {
                problem("environment", message);
            }
            s.clone()
        }
        Some(other) => serde_yaml_ng::to_string(other).unwrap_or_default(),
    };
    let code = text_of("code");
    if let Some(message) = code.as_deref().and_then(asset_reference_problem) {
        problem("code", message);
    }
    let is_deterministic = match map.get("is_deterministic") {
        None => true,
        Some(v) => match truth(v) {
            Some(b) => b,
            None => {
                problem("is_deterministic", "must be true or false".into());
                true
            }
        },
    };
    let inputs = ports(map.get("inputs"), "inputs", &mut problem);
    let outputs = ports(map.get("outputs"), "outputs", &mut problem);
    for (kind, name) in placeholders(&command) {
        // Against the names as written, so a badly named port is reported once, not again here.
        let declared = map
            .get(kind)
            .and_then(Value::as_mapping)
            .is_some_and(|ports| {
                ports
                    .keys()
                    .any(|k| scalar(Some(k)).as_deref() == Some(&name))
            });
        if !declared {
            problem(
                "command",
                format!(
                    "uses ${{{{{kind}.{name}}}}}, but the component declares no such {}",
                    &kind[..kind.len() - 1]
                ),
            );
        }
    }
    let tags = map
        .get("tags")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        scalar(Some(k)).unwrap_or_default(),
                        scalar(Some(v)).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Component {
        name,
        version: text_of("version"),
        display_name: text_of("display_name"),
        description: text_of("description"),
        tags,
        is_deterministic,
        inputs,
        outputs,
        command,
        code,
        environment,
    })
}

/// A scalar as text (YAML numbers and booleans too); None for absent, null or a collection.
fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// true/false, also as the texts "True"/"False" that REST bodies use.
fn truth(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn is_component_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_port_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A registered asset is `azureml:name:version` or `azureml:name@label`; a bare
/// `azureml:name` names no version.
fn asset_reference_problem(reference: &str) -> Option<String> {
    let rest = reference.strip_prefix("azureml:")?;
    if rest.starts_with("//") || rest.starts_with('/') {
        return None; // an azureml:// URI to a datastore or a registry
    }
    let has_version = rest
        .split_once(':')
        .is_some_and(|(n, v)| !n.is_empty() && !v.is_empty());
    let has_label = rest
        .split_once('@')
        .is_some_and(|(n, l)| !n.is_empty() && !l.is_empty());
    (!has_version && !has_label).then(|| {
        format!("'{reference}' names no version: write azureml:{rest}:<version> or azureml:{rest}@latest")
    })
}

fn ports(
    value: Option<&Value>,
    section: &str,
    problem: &mut impl FnMut(&str, String),
) -> Vec<(String, Port)> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let Some(map) = value.as_mapping() else {
        problem(section, "must map each name to its definition".into());
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, definition) in map {
        let name = scalar(Some(key)).unwrap_or_default();
        let field = format!("{section}.{name}");
        if !is_port_name(&name) {
            problem(
                &field,
                format!(
                    "'{name}' is not a valid name: start with a letter or '_', then letters, digits or '_'"
                ),
            );
            continue;
        }
        if let Some(port) = port(definition, &field, problem) {
            out.push((name, port));
        }
    }
    out
}

fn port(definition: &Value, field: &str, problem: &mut impl FnMut(&str, String)) -> Option<Port> {
    // `name: string` is short for `name: {type: string}`.
    let short;
    let map: &Mapping = match definition {
        Value::String(_) => {
            let mut m = Mapping::new();
            m.insert(Value::String("type".into()), definition.clone());
            short = m;
            &short
        }
        Value::Mapping(m) => m,
        _ => {
            problem(field, "must be a type name or a mapping with 'type'".into());
            return None;
        }
    };
    for key in map.keys() {
        let key = key.as_str().unwrap_or("?");
        if !PORT_FIELDS.contains(&key) {
            problem(
                &format!("{field}.{key}"),
                format!("unknown field; a port has {}", PORT_FIELDS.join(", ")),
            );
        }
    }
    let type_text = scalar(map.get("type")).unwrap_or_default();
    let Some(kind) = PortType::parse(&type_text) else {
        problem(
            &format!("{field}.type"),
            format!(
                "'{type_text}' is not a port type: use uri_file, uri_folder, mltable, mlflow_model, custom_model, number, integer, string or boolean"
            ),
        );
        return None;
    };
    let optional = match map.get("optional") {
        None => false,
        Some(v) => truth(v).unwrap_or_else(|| {
            problem(&format!("{field}.optional"), "must be true or false".into());
            false
        }),
    };
    let number = |key: &str, problem: &mut dyn FnMut(&str, String)| -> Option<f64> {
        let text = scalar(map.get(key))?;
        text.parse().ok().or_else(|| {
            problem(
                &format!("{field}.{key}"),
                format!("'{text}' is not a number"),
            );
            None
        })
    };
    let min = number("min", problem);
    let max = number("max", problem);
    if (min.is_some() || max.is_some()) && !matches!(kind, PortType::Number | PortType::Integer) {
        problem(
            field,
            "min and max apply only to number and integer ports".into(),
        );
    }
    let allowed: Vec<String> = map
        .get("enum")
        .and_then(Value::as_sequence)
        .map(|items| items.iter().filter_map(|v| scalar(Some(v))).collect())
        .unwrap_or_default();
    let port = Port {
        kind,
        description: scalar(map.get("description")),
        optional,
        default: scalar(map.get("default")),
        min,
        max,
        allowed,
    };
    if let Some(d) = &port.default
        && let Err(message) = port.check(d)
    {
        problem(&format!("{field}.default"), message.to_string());
    }
    Some(port)
}

impl Port {
    /// Whether `value` (as written in YAML or typed in the designer) suits this port: its
    /// type, range and allowed values.
    pub fn check(&self, value: &str) -> PipelineResult<()> {
        let fits = match self.kind {
            PortType::Number => value.parse::<f64>().is_ok(),
            PortType::Integer => value.parse::<i64>().is_ok(),
            PortType::Boolean => truth(&Value::String(value.to_owned())).is_some(),
            _ => true,
        };
        if !fits {
            return Err(PipelineError::Invalid(format!(
                "'{value}' is not a valid {}",
                self.kind.as_str()
            )));
        }
        let number = value.parse::<f64>().ok();
        if let (Some(v), Some(lo)) = (number, self.min)
            && v < lo
        {
            return Err(PipelineError::Invalid(format!(
                "{value} is below the minimum {lo}"
            )));
        }
        if let (Some(v), Some(hi)) = (number, self.max)
            && v > hi
        {
            return Err(PipelineError::Invalid(format!(
                "{value} is above the maximum {hi}"
            )));
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a == value) {
            return Err(format!("'{value}' is not one of {}", self.allowed.join(", ")).into());
        }
        Ok(())
    }
}
/// Every `${{inputs.x}}` and `${{outputs.y}}` in a command, as ("inputs"|"outputs", name).
pub fn placeholders(command: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut rest = command;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let Some(end) = after.find("}}") else { break };
        let inner = after[..end].trim();
        for kind in ["inputs", "outputs"] {
            if let Some(name) = inner.strip_prefix(kind).and_then(|r| r.strip_prefix('.')) {
                out.push((kind, name.trim().to_owned()));
            }
        }
        rest = &after[end + 2..];
    }
    out
}

impl Component {
    /// The component as YAML text.
    pub fn to_yaml_text(&self) -> String {
        serde_yaml_ng::to_string(&self.to_yaml()).unwrap_or_default()
    }

    /// The component as component YAML, which [`parse`] reads back to the same component.
    pub fn to_yaml(&self) -> Value {
        let mut m = Mapping::new();
        let mut set = |k: &str, v: Value| {
            m.insert(Value::String(k.into()), v);
        };
        set("type", Value::String("command".into()));
        set("name", Value::String(self.name.clone()));
        for (key, value) in [
            ("version", &self.version),
            ("display_name", &self.display_name),
            ("description", &self.description),
        ] {
            if let Some(v) = value {
                set(key, Value::String(v.clone()));
            }
        }
        if !self.tags.is_empty() {
            let tags = self
                .tags
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), Value::String(v.clone())))
                .collect();
            set("tags", Value::Mapping(tags));
        }
        if !self.is_deterministic {
            set("is_deterministic", Value::Bool(false));
        }
        set("inputs", ports_yaml(&self.inputs));
        set("outputs", ports_yaml(&self.outputs));
        set("command", Value::String(self.command.clone()));
        if let Some(code) = &self.code {
            set("code", Value::String(code.clone()));
        }
        // An inline environment was kept as YAML text; give it back as a mapping.
        let environment = match serde_yaml_ng::from_str::<Value>(&self.environment) {
            Ok(v @ Value::Mapping(_)) => v,
            _ => Value::String(self.environment.clone()),
        };
        set("environment", environment);
        Value::Mapping(m)
    }
}

fn ports_yaml(ports: &[(String, Port)]) -> Value {
    let mut out = Mapping::new();
    for (name, port) in ports {
        let mut p = Mapping::new();
        let mut set = |k: &str, v: Value| {
            p.insert(Value::String(k.into()), v);
        };
        set("type", Value::String(port.kind.as_str().into()));
        if let Some(d) = &port.description {
            set("description", Value::String(d.clone()));
        }
        if port.optional {
            set("optional", Value::Bool(true));
        }
        if let Some(d) = &port.default {
            set("default", Value::String(d.clone()));
        }
        for (key, bound) in [("min", port.min), ("max", port.max)] {
            if let Some(b) = bound {
                set(key, Value::Number(b.into()));
            }
        }
        if !port.allowed.is_empty() {
            set(
                "enum",
                Value::Sequence(port.allowed.iter().cloned().map(Value::String).collect()),
            );
        }
        out.insert(Value::String(name.clone()), Value::Mapping(p));
    }
    Value::Mapping(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name: echo\ntype: command\ncommand: echo ${{inputs.x}} > ${{outputs.y}}/out\nenvironment: azureml:python:3\ninputs:\n  x: {type: integer, default: 3, min: 1, max: 5}\noutputs:\n  y: {type: uri_folder}\n";

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_minimal_component_loads() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.inputs[0].1.kind, PortType::Integer);
        assert_eq!(c.inputs[0].1.default.as_deref(), Some("3"));
        assert!(c.is_deterministic);
    }

    #[test]
    fn each_mistake_names_its_field() {
        let cases = [
            (
                MINIMAL.replace("default: 3", "default: 9"),
                "inputs.x.default: 9 is above the maximum 5",
            ),
            (
                MINIMAL.replace("type: integer", "type: tensor"),
                "inputs.x.type: 'tensor' is not a port type",
            ),
            (
                MINIMAL.replace("${{inputs.x}}", "${{inputs.z}}"),
                "command: uses ${{inputs.z}}",
            ),
            (
                MINIMAL.replace("environment: azureml:python:3\n", ""),
                "environment: required",
            ),
            (
                MINIMAL.replace("azureml:python:3", "azureml:python"),
                "environment: 'azureml:python' names no version",
            ),
            (
                MINIMAL.replace("  x:", "  x-y:"),
                "inputs.x-y: 'x-y' is not a valid name",
            ),
            (format!("{MINIMAL}colour: red\n"), "colour: unknown field"),
            (
                MINIMAL.replace("type: command", "type: spark"),
                "type: 'spark' is not supported",
            ),
        ];
        for (text, expected) in cases {
            let found = problems(&text);
            assert!(
                found.iter().any(|p| p.starts_with(expected)),
                "{expected}: {found:?}"
            );
        }
    }
}
