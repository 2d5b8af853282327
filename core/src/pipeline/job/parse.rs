//! Reading a pipeline job's YAML: its fields, inputs and outputs, and each step's component —
//! a built-in, a registered one, a file, inline, or a command job — with nested pipelines
//! flattened into prefixed steps. Every problem is named by its field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::{Binding, LAYOUT_PROPERTY, Pipeline, Step, StepSource, check, problem};
use crate::pipeline::PipelineResult;
use crate::pipeline::builtin;
use crate::pipeline::component::{self, Component, Problem};

const KNOWN_FIELDS: &[&str] = &[
    "$schema",
    "type",
    "name",
    "display_name",
    "experiment_name",
    "description",
    "tags",
    "properties",
    "inputs",
    "outputs",
    "jobs",
    "settings",
    "compute",
    "identity",
    // A pipeline component (used nested) has these too.
    "version",
    "is_deterministic",
    "component",
];

const NODE_FIELDS: &[&str] = &[
    "type",
    "component",
    "inputs",
    "outputs",
    "compute",
    "command",
    "environment",
    "code",
    "name",
    "display_name",
    "description",
    "tags",
    "resources",
    "distribution",
    "environment_variables",
    "limits",
    "identity",
    "services",
    "properties",
    "experiment_name",
];

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Finds a registered component by name and version (or label, `@latest`): the component and
/// the folder its code was unpacked to.
pub type Registry<'a> = &'a dyn Fn(&str) -> PipelineResult<(Component, PathBuf)>;

/// Imports a pipeline job; `base` is the folder its relative component paths start from.
/// Registered components (`azureml:name:version`) need a workspace: see [`parse_with`].
pub fn parse(yaml: &str, base: &Path) -> Result<Pipeline, Vec<Problem>> {
    parse_with(yaml, base, &|reference| {
        Err(
            format!("'{reference}' is a registered component; it is looked up in a workspace")
                .into(),
        )
    })
}

/// Imports a pipeline job, looking registered components up with `registry`.
pub fn parse_with(
    yaml: &str,
    base: &Path,
    registry: Registry<'_>,
) -> Result<Pipeline, Vec<Problem>> {
    let (pipeline, problems) = parse_draft(yaml, base, registry)?;
    if problems.is_empty() {
        Ok(pipeline)
    } else {
        Err(problems)
    }
}

/// Imports a pipeline that may not be ready to run (a designer's work in progress): what it
/// cannot even read is an error; what stops it from running — required inputs left open, bad
/// values, wiring and type mismatches, cycles — comes back beside it.
pub fn parse_draft(
    yaml: &str,
    base: &Path,
    registry: Registry<'_>,
) -> Result<(Pipeline, Vec<Problem>), Vec<Problem>> {
    parse_nested(yaml, base, registry, &[])
}

/// [`parse_draft`] for a pipeline read from inside others: `chain` holds the pipeline
/// component files being read around it, outermost first, so a file that includes itself
/// (directly or through others) is named with the whole chain instead of recursing forever.
fn parse_nested(
    yaml: &str,
    base: &Path,
    registry: Registry<'_>,
    chain: &[PathBuf],
) -> Result<(Pipeline, Vec<Problem>), Vec<Problem>> {
    let root: Value = crate::yaml::from_str(yaml).map_err(|e| vec![problem("(file)", e)])?;
    let map = root.as_mapping().ok_or_else(|| {
        vec![problem(
            "(file)",
            "a pipeline job is a YAML mapping of fields",
        )]
    })?;
    let mut problems = Vec::new();
    for key in map.keys() {
        let key = key.as_str().unwrap_or("?");
        if !KNOWN_FIELDS.contains(&key) {
            problems.push(problem(key, "unknown field of a pipeline job"));
        }
    }
    match text(map.get("type")).as_deref() {
        Some("pipeline") => {}
        other => problems.push(problem(
            "type",
            format!(
                "{} is not a pipeline job (type: pipeline)",
                other.unwrap_or("a missing type")
            ),
        )),
    }
    let inputs: Vec<(String, Binding)> = entries(map.get("inputs"))
        .into_iter()
        .map(|(name, value)| {
            let binding = binding(&value);
            (name, binding)
        })
        .collect();
    let outputs: Vec<String> = entries(map.get("outputs"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let jobs = match map.get("component") {
        // A job that runs one pipeline component: that component as its one (nested) step.
        Some(component) => vec![(
            "main".to_owned(),
            component_job(component, &inputs, &outputs),
        )],
        None => entries(map.get("jobs")),
    };
    if jobs.is_empty() {
        problems.push(problem("jobs", "a pipeline needs at least one step"));
    }
    let mut steps = Vec::new();
    // Nested pipeline steps: for each, where its outputs come from among the flattened steps.
    let mut exposed: BTreeMap<String, Exposed> = BTreeMap::new();
    for (name, node) in &jobs {
        let nested = text(node.get("type")).as_deref() == Some("pipeline");
        let added = if nested {
            flatten(name, node, base, registry, chain).map(|(inner, outputs)| {
                exposed.insert(name.clone(), outputs);
                inner
            })
        } else {
            step(name, node, base, registry).map(|s| vec![s])
        };
        match added {
            Ok(mut added) => steps.append(&mut added),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // A reference to a nested step's output becomes one to the inner step that makes it.
    for step in &mut steps {
        for (port, binding) in &mut step.inputs {
            if let Binding::StepOutput { step: from, output } = binding
                && let Some(outputs) = exposed.get(from.as_str())
            {
                match outputs.get(output.as_str()) {
                    Some((inner, inner_output)) => {
                        *binding = Binding::StepOutput {
                            step: inner.clone(),
                            output: inner_output.clone(),
                        };
                    }
                    None => problems.push(problem(
                        format!("jobs.{}.inputs.{port}", step.name),
                        format!("the pipeline component of step '{from}' has no output '{output}'"),
                    )),
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let settings = map
        .get("settings")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((text(Some(k))?, text(Some(v))?)))
                .collect()
        })
        .unwrap_or_default();
    let pipeline = Pipeline {
        display_name: text(map.get("display_name")),
        experiment_name: text(map.get("experiment_name")),
        description: text(map.get("description")),
        inputs,
        outputs,
        steps,
        settings,
        layout: map
            .get("properties")
            .and_then(|p| p.get(LAYOUT_PROPERTY))
            .and_then(Value::as_str)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default(),
    };
    let problems = check(&pipeline);
    Ok((pipeline, problems))
}

/// A mapping's entries as (name, value); an absent or empty section is none.
fn entries(value: Option<&Value>) -> Vec<(String, Value)> {
    value
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (text(Some(k)).unwrap_or_default(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn binding(value: &Value) -> Binding {
    match value {
        Value::Null => Binding::Unbound,
        Value::Mapping(m) => match (text(m.get("path")), text(m.get("default"))) {
            (Some(path), _) => Binding::Data {
                kind: text(m.get("type")),
                path,
            },
            // A pipeline component's input with a default.
            (None, Some(default)) => Binding::Literal(default),
            // `{mode: upload}` and the like: an output the pipeline places.
            (None, None) => Binding::Unbound,
        },
        other => {
            let raw = text(Some(other)).unwrap_or_default();
            let inner = raw
                .trim()
                .strip_prefix("${{")
                .and_then(|r| r.strip_suffix("}}"))
                .map(str::trim);
            let Some(reference) = inner else {
                return Binding::Literal(raw);
            };
            let parts: Vec<&str> = reference.split('.').collect();
            match parts.as_slice() {
                ["parent", "inputs", name] => Binding::ParentInput((*name).to_owned()),
                ["parent", "outputs", name] => Binding::ParentOutput((*name).to_owned()),
                ["parent", "jobs", step, "outputs", output] => Binding::StepOutput {
                    step: (*step).to_owned(),
                    output: (*output).to_owned(),
                },
                _ => Binding::Literal(raw),
            }
        }
    }
}

fn step(
    name: &str,
    node: &Value,
    base: &Path,
    registry: Registry<'_>,
) -> Result<Step, Vec<Problem>> {
    let field = format!("jobs.{name}");
    let map = node
        .as_mapping()
        .ok_or_else(|| vec![problem(&field, "a step is a mapping of fields")])?;
    // The step's kind first: an unsupported kind has fields of its own that are not errors.
    let kind = text(map.get("type")).unwrap_or_else(|| "command".into());
    match kind.as_str() {
        "command" => {}
        "sweep" | "parallel" | "spark" | "data_transfer" | "import" => {
            return Err(vec![problem(
                format!("{field}.type"),
                format!("'{kind}' steps are not supported yet; Lathe runs command steps"),
            )]);
        }
        other => {
            return Err(vec![problem(
                format!("{field}.type"),
                format!("'{other}' is not a step type"),
            )]);
        }
    }
    let mut problems = Vec::new();
    for key in map.keys() {
        let key = key.as_str().unwrap_or("?");
        if !NODE_FIELDS.contains(&key) {
            problems.push(problem(format!("{field}.{key}"), "unknown field of a step"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let (source, origin, component) = match map.get("component") {
        Some(Value::String(reference)) if reference.starts_with(builtin::PREFIX) => {
            let component = builtin::find(reference)
                .map_err(|e| vec![problem(format!("{field}.component"), e.to_string())])?;
            (
                StepSource::Builtin(reference.clone()),
                base.to_path_buf(),
                component.clone(),
            )
        }
        Some(Value::String(reference)) if reference.starts_with("azureml:") => {
            let (component, origin) = registry(reference)
                .map_err(|e| vec![problem(format!("{field}.component"), e.to_string())])?;
            (StepSource::Registered(reference.clone()), origin, component)
        }
        Some(Value::String(path)) => {
            let path = path.strip_prefix("file:").unwrap_or(path).to_owned();
            let file = base.join(&path);
            let yaml = std::fs::read_to_string(&file).map_err(|e| {
                vec![problem(
                    format!("{field}.component"),
                    format!("cannot read {}: {e}", file.display()),
                )]
            })?;
            let component = component::parse(&yaml)
                .map_err(|found| prefixed(&format!("{field}.component({path})"), found))?;
            let origin = file.parent().unwrap_or(base).to_path_buf();
            (StepSource::File(path.clone()), origin, component)
        }
        Some(Value::Mapping(inline)) => {
            // An inline component may go unnamed; it takes its step's name, as in Azure ML.
            let mut inline = inline.clone();
            let key = Value::String("name".into());
            if !inline.contains_key(&key) {
                inline.insert(key, Value::String(name.to_owned()));
            }
            let yaml = serde_yaml_ng::to_string(&inline).unwrap_or_default();
            let component = component::parse(&yaml)
                .map_err(|found| prefixed(&format!("{field}.component"), found))?;
            (StepSource::Inline, base.to_path_buf(), component)
        }
        Some(_) => {
            return Err(vec![problem(
                format!("{field}.component"),
                "must be a file path or a mapping",
            )]);
        }
        None => (
            StepSource::CommandJob,
            base.to_path_buf(),
            command_job(&field, map)?,
        ),
    };
    let inputs: Vec<(String, Binding)> = entries(map.get("inputs"))
        .into_iter()
        .map(|(n, v)| (n, binding(&v)))
        .collect();
    let outputs: Vec<(String, Binding)> = entries(map.get("outputs"))
        .into_iter()
        .map(|(n, v)| (n, binding(&v)))
        .collect();
    Ok(Step {
        name: name.to_owned(),
        source,
        origin,
        component,
        inputs,
        outputs,
        compute: text(map.get("compute")).map(|c| super::compute_name(&c)),
    })
}

/// The one step of a job that runs a pipeline component: its inputs and outputs are the job's.
fn component_job(component: &Value, inputs: &[(String, Binding)], outputs: &[String]) -> Value {
    let reference = |r: String| Value::String(format!("${{{{{r}}}}}"));
    let mut node = Mapping::new();
    node.insert(
        Value::String("type".into()),
        Value::String("pipeline".into()),
    );
    node.insert(Value::String("component".into()), component.clone());
    let ins: Mapping = inputs
        .iter()
        .map(|(n, _)| {
            (
                Value::String(n.clone()),
                reference(format!("parent.inputs.{n}")),
            )
        })
        .collect();
    let outs: Mapping = outputs
        .iter()
        .map(|n| {
            (
                Value::String(n.clone()),
                reference(format!("parent.outputs.{n}")),
            )
        })
        .collect();
    node.insert(Value::String("inputs".into()), Value::Mapping(ins));
    node.insert(Value::String("outputs".into()), Value::Mapping(outs));
    Value::Mapping(node)
}

/// For a nested pipeline step, where each of its component's outputs comes from: the inner
/// step and that step's output.
type Exposed = BTreeMap<String, (String, String)>;

/// A nested pipeline step, flattened: the pipeline component's steps, named `<step>_<inner>`,
/// with its inputs replaced by what the step binds them to. Also returns where each of the
/// component's outputs comes from (inner step, its output), for references to the step.
fn flatten(
    name: &str,
    node: &Value,
    base: &Path,
    registry: Registry<'_>,
    chain: &[PathBuf],
) -> Result<(Vec<Step>, Exposed), Vec<Problem>> {
    let field = format!("jobs.{name}.component");
    let reference = text(node.get("component")).ok_or_else(|| {
        vec![problem(
            &field,
            "a pipeline step names its pipeline component file",
        )]
    })?;
    if reference.starts_with("azureml:") {
        return Err(vec![problem(
            &field,
            format!(
                "'{reference}' is a registered pipeline component, not supported yet; give its file"
            ),
        )]);
    }
    let relative = reference.strip_prefix("file:").unwrap_or(&reference);
    let file = base.join(relative);
    let yaml = std::fs::read_to_string(&file).map_err(|e| {
        vec![problem(
            &field,
            format!("cannot read {}: {e}", file.display()),
        )]
    })?;
    let inner_base = file.parent().unwrap_or(base);
    let identity = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
    if chain.contains(&identity) {
        let names: Vec<String> = chain
            .iter()
            .skip_while(|f| **f != identity)
            .chain(std::iter::once(&identity))
            .map(|f| f.display().to_string())
            .collect();
        return Err(vec![problem(
            &field,
            format!(
                "the pipeline components include each other: {}",
                names.join(" -> ")
            ),
        )]);
    }
    let chain = [chain, std::slice::from_ref(&identity)].concat();
    // Its own wiring problems are found again once its steps stand in the outer pipeline.
    let (inner, _) = parse_nested(&yaml, inner_base, registry, &chain)
        .map_err(|found| prefixed(&format!("{field}({relative})"), found))?;
    let bound = |section: &str| -> Vec<(String, Binding)> {
        entries(node.get(section))
            .into_iter()
            .map(|(n, v)| (n, binding(&v)))
            .collect()
    };
    let (inputs, outputs) = (bound("inputs"), bound("outputs"));
    let find = |list: &[(String, Binding)], key: &str| {
        list.iter().find(|(n, _)| n == key).map(|(_, b)| b.clone())
    };
    let folder: PathBuf = Path::new(relative)
        .parent()
        .map(|p| {
            p.components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect()
        })
        .unwrap_or_default();
    let prefixed_name = |inner: &str| format!("{name}_{inner}");
    let mut exposed = BTreeMap::new();
    let mut steps = Vec::new();
    for mut step in inner.steps {
        step.name = prefixed_name(&step.name);
        if let StepSource::File(file) = &step.source {
            let source = Path::new(file.trim_start_matches("./"));
            step.source = StepSource::File(folder.join(source).to_string_lossy().into_owned());
        } else if let Some(code) = &step.component.code
            && !code.starts_with("azureml:")
        {
            // An inline component's code folder, now read from the outer pipeline's folder.
            step.component.code = Some(
                folder
                    .join(code.trim_start_matches("./"))
                    .to_string_lossy()
                    .into_owned(),
            );
            step.origin = base.to_path_buf();
        }
        for (_, binding) in &mut step.inputs {
            *binding = match binding.clone() {
                Binding::ParentInput(x) => find(&inputs, &x)
                    .or_else(|| find(&inner.inputs, &x))
                    .unwrap_or(Binding::Unbound),
                Binding::StepOutput { step, output } => Binding::StepOutput {
                    step: prefixed_name(&step),
                    output,
                },
                other => other,
            };
        }
        for (output, binding) in &mut step.outputs {
            if let Binding::ParentOutput(exposed_as) = binding.clone() {
                exposed.insert(exposed_as.clone(), (step.name.clone(), output.clone()));
                *binding = find(&outputs, &exposed_as).unwrap_or(Binding::Unbound);
            }
        }
        steps.push(step);
    }
    Ok((steps, exposed))
}

/// A command job written inline as a step: its component is its command, environment and the
/// ports its inputs and outputs name (data where a type or path is given, text otherwise).
fn command_job(field: &str, node: &Mapping) -> Result<Component, Vec<Problem>> {
    let mut spec = Mapping::new();
    let set = |m: &mut Mapping, k: &str, v: Value| {
        m.insert(Value::String(k.into()), v);
    };
    set(&mut spec, "name", Value::String(field.replace('.', "_")));
    set(&mut spec, "type", Value::String("command".into()));
    for key in ["command", "environment", "code"] {
        if let Some(v) = node.get(key) {
            set(&mut spec, key, v.clone());
        }
    }
    let ports = |section: &str, default_type: &str| {
        let mut out = Mapping::new();
        for (name, value) in entries(node.get(section)) {
            let kind = match &value {
                Value::Mapping(m) => text(m.get("type")).unwrap_or_else(|| default_type.into()),
                Value::Number(n) if n.is_i64() => "integer".into(),
                Value::Number(_) => "number".into(),
                Value::Bool(_) => "boolean".into(),
                _ if section == "outputs" => "uri_folder".into(),
                // Another step's output is data, whatever the command does with it.
                value if matches!(binding(value), Binding::StepOutput { .. }) => {
                    "uri_folder".into()
                }
                _ => default_type.into(),
            };
            let mut port = Mapping::new();
            port.insert(Value::String("type".into()), Value::String(kind));
            out.insert(Value::String(name), Value::Mapping(port));
        }
        Value::Mapping(out)
    };
    set(&mut spec, "inputs", ports("inputs", "string"));
    set(&mut spec, "outputs", ports("outputs", "uri_folder"));
    let yaml = serde_yaml_ng::to_string(&spec).unwrap_or_default();
    component::parse(&yaml).map_err(|found| prefixed(field, found))
}

fn prefixed(field: &str, problems: Vec<Problem>) -> Vec<Problem> {
    problems
        .into_iter()
        .map(|p| problem(format!("{field}.{}", p.field), p.message))
        .collect()
}
