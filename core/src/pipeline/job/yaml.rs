//! Writing a pipeline back as Azure ML pipeline job YAML, which `parse` reads back to the same
//! pipeline.

use serde_yaml_ng::{Mapping, Value};

use super::{Binding, LAYOUT_PROPERTY, Pipeline, StepSource};

impl Binding {
    /// The binding as it is written in a pipeline's YAML.
    fn to_yaml(&self) -> Value {
        let reference = |r: String| Value::String(format!("${{{{{r}}}}}"));
        match self {
            Binding::Literal(text) => literal(text),
            Binding::Data { kind, path } => {
                let mut m = Mapping::new();
                if let Some(kind) = kind {
                    m.insert(Value::String("type".into()), Value::String(kind.clone()));
                }
                m.insert(Value::String("path".into()), Value::String(path.clone()));
                Value::Mapping(m)
            }
            Binding::ParentInput(name) => reference(format!("parent.inputs.{name}")),
            Binding::ParentOutput(name) => reference(format!("parent.outputs.{name}")),
            Binding::StepOutput { step, output } => {
                reference(format!("parent.jobs.{step}.outputs.{output}"))
            }
            Binding::Unbound => Value::Null,
        }
    }
}

/// A literal as YAML: numbers and booleans as themselves (an inline command job's port types
/// are read from them), everything else as text.
fn literal(text: &str) -> Value {
    if let Ok(n) = text.parse::<i64>() {
        return Value::Number(n.into());
    }
    if let Ok(x) = text.parse::<f64>()
        && x.is_finite()
    {
        return Value::Number(x.into());
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_owned()),
    }
}

fn bindings_yaml(bindings: &[(String, Binding)]) -> Value {
    Value::Mapping(
        bindings
            .iter()
            .map(|(name, b)| (Value::String(name.clone()), b.to_yaml()))
            .collect(),
    )
}

impl Pipeline {
    /// The pipeline as Azure ML pipeline job YAML, which [`parse`] reads back to the same
    /// pipeline (components from files stay references to their files).
    pub fn to_yaml(&self) -> String {
        let mut m = Mapping::new();
        let mut set = |k: &str, v: Value| {
            m.insert(Value::String(k.into()), v);
        };
        set(
            "$schema",
            Value::String(
                "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json".into(),
            ),
        );
        set("type", Value::String("pipeline".into()));
        if let Some(name) = &self.display_name {
            set("display_name", Value::String(name.clone()));
        }
        if let Some(experiment) = &self.experiment_name {
            set("experiment_name", Value::String(experiment.clone()));
        }
        if let Some(description) = &self.description {
            set("description", Value::String(description.clone()));
        }
        if !self.inputs.is_empty() {
            set("inputs", bindings_yaml(&self.inputs));
        }
        if !self.outputs.is_empty() {
            set(
                "outputs",
                Value::Mapping(
                    self.outputs
                        .iter()
                        .map(|o| (Value::String(o.clone()), Value::Null))
                        .collect(),
                ),
            );
        }
        if !self.settings.is_empty() {
            set(
                "settings",
                Value::Mapping(
                    self.settings
                        .iter()
                        .map(|(k, v)| (Value::String(k.clone()), Value::String(v.clone())))
                        .collect(),
                ),
            );
        }
        if !self.layout.is_empty() {
            let json = serde_json::to_string(&self.layout).unwrap_or_default();
            let mut properties = Mapping::new();
            properties.insert(Value::String(LAYOUT_PROPERTY.into()), Value::String(json));
            set("properties", Value::Mapping(properties));
        }
        let mut jobs = Mapping::new();
        for step in &self.steps {
            let mut node = Mapping::new();
            let mut put = |k: &str, v: Value| {
                node.insert(Value::String(k.into()), v);
            };
            put("type", Value::String("command".into()));
            match &step.source {
                StepSource::Inline => put("component", step.component.to_yaml()),
                StepSource::CommandJob => {
                    put("command", Value::String(step.component.command.clone()));
                    if let Value::Mapping(c) = step.component.to_yaml() {
                        for key in ["environment", "code"] {
                            if let Some(v) = c.get(key) {
                                put(key, v.clone());
                            }
                        }
                    }
                }
                StepSource::File(reference)
                | StepSource::Builtin(reference)
                | StepSource::Registered(reference) => {
                    put("component", Value::String(reference.clone()));
                }
            }
            if !step.inputs.is_empty() {
                put("inputs", bindings_yaml(&step.inputs));
            }
            if !step.outputs.is_empty() {
                put("outputs", bindings_yaml(&step.outputs));
            }
            if let Some(compute) = &step.compute {
                put("compute", Value::String(compute.clone()));
            }
            jobs.insert(Value::String(step.name.clone()), Value::Mapping(node));
        }
        set("jobs", Value::Mapping(jobs));
        serde_yaml_ng::to_string(&Value::Mapping(m)).unwrap_or_default()
    }
}
