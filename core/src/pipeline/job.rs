//! Pipeline jobs in Azure ML's CLI v2 YAML (`type: pipeline`): pipeline inputs and outputs, and
//! steps that run a component — from a file beside the pipeline, inline, or an inline command
//! job — wired with `${{parent.inputs.x}}`, `${{parent.outputs.y}}` and
//! `${{parent.jobs.<step>.outputs.<o>}}`. Importing checks every reference and the graph, and
//! names what it cannot take (registered components, nested pipelines, sweeps, parallel jobs).

use crate::pipeline::PipelineResult;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

use super::builtin;
use super::component::{self, Component, Problem};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Binding {
    /// A value given in the YAML (a number, a text, a boolean).
    Literal(String),
    /// Data at a path or URI, with its type when given.
    Data {
        kind: Option<String>,
        path: String,
    },
    ParentInput(String),
    ParentOutput(String),
    StepOutput {
        step: String,
        output: String,
    },
    /// An output left to the pipeline to place.
    Unbound,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub name: String,
    /// Where the component came from.
    pub source: StepSource,
    /// The folder the component's relative paths (`code`, a `conda_file`) start from.
    pub origin: PathBuf,
    pub component: Component,
    pub inputs: Vec<(String, Binding)>,
    pub outputs: Vec<(String, Binding)>,
}

/// Where a step's component came from, as the pipeline's YAML names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepSource {
    /// A component file: relative to the pipeline's folder as written, absolute once saved.
    File(String),
    /// A component written out in the step (`component:` a mapping).
    Inline,
    /// A command job, its own component (`command:` with no `component:`).
    CommandJob,
    /// A built-in component, `lathe:<name>[:<version>]` as written.
    Builtin(String),
    /// A registered component, `azureml:<name>:<version>` or `azureml:<name>@<label>` as written.
    Registered(String),
}

impl StepSource {
    /// The source a `component:` reference names (`lathe:…`, `azureml:…`, or a file path).
    pub fn of_reference(reference: &str) -> Self {
        if reference.starts_with(builtin::PREFIX) {
            Self::Builtin(reference.to_owned())
        } else if reference.starts_with("azureml:") {
            Self::Registered(reference.to_owned())
        } else {
            Self::File(reference.to_owned())
        }
    }

    /// The built-in's name (`split_data` for `lathe:split_data:1`), if the step runs one.
    pub fn builtin(&self) -> Option<&str> {
        match self {
            Self::Builtin(reference) => {
                let rest = reference.strip_prefix(builtin::PREFIX).unwrap_or(reference);
                rest.split(':').next()
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for StepSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(reference) | Self::Builtin(reference) | Self::Registered(reference) => {
                f.write_str(reference)
            }
            Self::Inline => f.write_str("inline"),
            Self::CommandJob => f.write_str("command job"),
        }
    }
}

impl Serialize for StepSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    pub display_name: Option<String>,
    /// The experiment its runs are logged to, unless the run says otherwise.
    pub experiment_name: Option<String>,
    pub description: Option<String>,
    pub inputs: Vec<(String, Binding)>,
    pub outputs: Vec<String>,
    pub steps: Vec<Step>,
    pub settings: BTreeMap<String, String>,
    /// Where the designer placed each node (steps by name, pipeline inputs as `$name`), kept
    /// in the YAML's `properties` as `lathe.layout` so Azure ML carries it along.
    pub layout: BTreeMap<String, [f32; 2]>,
}

/// The `properties` key that holds the designer's layout.
const LAYOUT_PROPERTY: &str = "lathe.layout";

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

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

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
    })
}

/// A step's bindings against its component: ports it does not have, required inputs left
/// unbound, values that do not suit their port.
pub fn check_step(step: &Step) -> Vec<Problem> {
    let field = format!("jobs.{}", step.name);
    let component = &step.component;
    let mut problems = Vec::new();
    for (input, _) in &step.inputs {
        if !component.inputs.iter().any(|(n, _)| n == input) {
            problems.push(problem(
                format!("{field}.inputs.{input}"),
                format!("component '{}' has no input '{input}'", component.name),
            ));
        }
    }
    for (output, _) in &step.outputs {
        if !component.outputs.iter().any(|(n, _)| n == output) {
            problems.push(problem(
                format!("{field}.outputs.{output}"),
                format!("component '{}' has no output '{output}'", component.name),
            ));
        }
    }
    for (input, port) in &component.inputs {
        let bound = step
            .inputs
            .iter()
            .any(|(n, b)| n == input && *b != Binding::Unbound);
        if !port.optional && port.default.is_none() && !bound {
            problems.push(problem(
                format!("{field}.inputs.{input}"),
                "required by the component, but not given",
            ));
        }
    }
    for (input, binding) in &step.inputs {
        if let (Binding::Literal(value), Some((_, port))) =
            (binding, component.inputs.iter().find(|(n, _)| n == input))
            && !port.kind.is_data()
            && let Err(message) = port.check(value)
        {
            problems.push(problem(
                format!("{field}.inputs.{input}"),
                message.to_string(),
            ));
        }
    }
    problems
}

/// Everything [`parse`] checks of a pipeline once its steps are read: each step's bindings,
/// the wiring between steps and pipeline inputs, types across edges, cycles.
pub fn check(pipeline: &Pipeline) -> Vec<Problem> {
    let mut problems: Vec<Problem> = pipeline.steps.iter().flat_map(check_step).collect();
    check_wiring(
        &pipeline.steps,
        &pipeline.inputs,
        &pipeline.outputs,
        &mut problems,
    );
    if let Some(cycle) = find_cycle(&pipeline.steps) {
        problems.push(problem(
            "jobs",
            format!("the steps form a cycle: {}", cycle.join(" -> ")),
        ));
    }
    problems
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

fn check_wiring(
    steps: &[Step],
    inputs: &[(String, Binding)],
    outputs: &[String],
    problems: &mut Vec<Problem>,
) {
    let by_name: HashMap<&str, &Step> = steps.iter().map(|s| (s.name.as_str(), s)).collect();
    for step in steps {
        for (port, binding) in step.inputs.iter().chain(&step.outputs) {
            let field = format!("jobs.{}.{port}", step.name);
            match binding {
                Binding::ParentInput(name) if !inputs.iter().any(|(n, _)| n == name) => {
                    problems.push(problem(
                        field,
                        format!("refers to the pipeline input '{name}', which is not declared"),
                    ));
                }
                Binding::ParentOutput(name) if !outputs.contains(name) => {
                    problems.push(problem(
                        field,
                        format!("refers to the pipeline output '{name}', which is not declared"),
                    ));
                }
                Binding::StepOutput { step: from, output } => match by_name.get(from.as_str()) {
                    None => problems.push(problem(
                        field,
                        format!("refers to a step '{from}' that does not exist"),
                    )),
                    Some(source) if !source.component.outputs.iter().any(|(n, _)| n == output) => {
                        problems.push(problem(
                            field,
                            format!("step '{from}' has no output '{output}'"),
                        ));
                    }
                    Some(source) => {
                        let made = source
                            .component
                            .outputs
                            .iter()
                            .find(|(n, _)| n == output)
                            .map(|(_, p)| p.kind);
                        let wanted = step
                            .component
                            .inputs
                            .iter()
                            .find(|(n, _)| n == port)
                            .map(|(_, p)| p.kind);
                        if let (Some(made), Some(wanted)) = (made, wanted)
                            && !wanted.accepts(made)
                        {
                            problems.push(problem(
                                field,
                                format!(
                                    "takes a {} but step '{from}' gives a {}",
                                    wanted.as_str(),
                                    made.as_str()
                                ),
                            ));
                        }
                    }
                },
                _ => {}
            }
        }
    }
}

/// For each step, the indices of the steps whose outputs it reads.
pub fn dependencies(steps: &[Step]) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    steps
        .iter()
        .map(|s| {
            s.inputs
                .iter()
                .filter_map(|(_, b)| match b {
                    Binding::StepOutput { step, .. } => index.get(step.as_str()).copied(),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// A cycle among the steps' wiring, as step names, if there is one.
pub fn find_cycle(steps: &[Step]) -> Option<Vec<String>> {
    let after = dependencies(steps);
    // 0 unvisited, 1 on the path, 2 done.
    let mut state = vec![0u8; steps.len()];
    let mut path = Vec::new();
    fn visit(
        i: usize,
        after: &[Vec<usize>],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        path.push(i);
        for &j in &after[i] {
            if state[j] == 1 {
                let start = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(j);
                return Some(cycle);
            }
            if state[j] == 0
                && let Some(cycle) = visit(j, after, state, path)
            {
                return Some(cycle);
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    (0..steps.len()).find_map(|i| {
        (state[i] == 0)
            .then(|| visit(i, &after, &mut state, &mut path))
            .flatten()
            .map(|cycle| cycle.into_iter().map(|i| steps[i].name.clone()).collect())
    })
}

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
            jobs.insert(Value::String(step.name.clone()), Value::Mapping(node));
        }
        set("jobs", Value::Mapping(jobs));
        serde_yaml_ng::to_string(&Value::Mapping(m)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(jobs: &str) -> String {
        format!("type: pipeline\ninputs:\n  rate: 0.1\njobs:\n{jobs}")
    }

    const STEP: &str =
        "    command: echo ${{inputs.x}} > ${{outputs.out}}\n    environment: azureml:python:3\n";

    #[test]
    fn steps_wire_to_parent_inputs_and_each_other() {
        let yaml = pipeline(&format!(
            "  a:\n{STEP}    inputs:\n      x: ${{{{parent.inputs.rate}}}}\n    outputs:\n      out:\n  b:\n{STEP}    inputs:\n      x: ${{{{parent.jobs.a.outputs.out}}}}\n    outputs:\n      out:\n"
        ));
        let p = parse(&yaml, Path::new(".")).unwrap();
        assert_eq!(p.steps.len(), 2);
        assert_eq!(
            p.steps[1].inputs[0].1,
            Binding::StepOutput {
                step: "a".into(),
                output: "out".into()
            }
        );
    }

    #[test]
    fn bad_wiring_and_cycles_are_named() {
        let cases = [
            (
                "x: ${{parent.inputs.nope}}",
                "jobs.a.x: refers to the pipeline input 'nope'",
            ),
            (
                "x: ${{parent.jobs.ghost.outputs.out}}",
                "jobs.a.x: refers to a step 'ghost'",
            ),
            (
                "x: ${{parent.jobs.a.outputs.out}}",
                "jobs: the steps form a cycle: a -> a",
            ),
        ];
        for (input, expected) in cases {
            let yaml = pipeline(&format!(
                "  a:\n{STEP}    inputs:\n      {input}\n    outputs:\n      out:\n"
            ));
            let problems: Vec<String> = parse(&yaml, Path::new("."))
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert!(
                problems.iter().any(|p| p.starts_with(expected)),
                "{expected}: {problems:?}"
            );
        }
    }
}
