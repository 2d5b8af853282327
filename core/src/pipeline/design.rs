//! Editing a pipeline as the designer does: adding and removing steps and data inputs,
//! connecting ports (refusing a type mismatch with the reason), setting parameters, laying the
//! graph out, and listing what stops it from running, each issue tied to its node.

use crate::pipeline::{PipelineError, PipelineResult};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::component::{Component, PortType};
use super::job::{self, Binding, Pipeline, Step, StepSource};

/// Something that stops the pipeline from running, on a node (a step) or on the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub step: Option<String>,
    pub message: String,
}

/// Where an edge starts: a step's output or a pipeline input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Step { step: String, output: String },
    Input(String),
}

/// A node of the designer's graph: a step, or a pipeline input (a data input the steps read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    Step(&'a str),
    Input(&'a str),
}

impl<'a> Node<'a> {
    /// The node a layout key names: inputs' keys are `$<name>` (as saved in a pipeline's
    /// `properties`, where a step's name can never start with `$`), steps' are their names.
    pub fn of(key: &'a str) -> Node<'a> {
        match key.strip_prefix('$') {
            Some(input) => Node::Input(input),
            None => Node::Step(key),
        }
    }

    /// The step's or input's own name.
    pub fn name(&self) -> &'a str {
        match self {
            Node::Step(name) | Node::Input(name) => name,
        }
    }
}

/// The layout key of a pipeline input's node (see [`Node::of`]).
pub fn input_key(name: &str) -> String {
    format!("${name}")
}

/// A new, empty pipeline.
pub fn empty(name: &str) -> Pipeline {
    Pipeline {
        display_name: Some(name.to_owned()),
        experiment_name: None,
        description: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        steps: Vec::new(),
        settings: BTreeMap::new(),
        layout: BTreeMap::new(),
    }
}

/// The issues of a pipeline, each with the step it concerns when there is one.
pub fn issues(pipeline: &Pipeline) -> Vec<Issue> {
    let mut out: Vec<Issue> = job::check(pipeline)
        .into_iter()
        .map(|p| {
            let step = p
                .field
                .strip_prefix("jobs.")
                .and_then(|rest| rest.split('.').next())
                .map(str::to_owned);
            let port = p.field.rsplit('.').next().unwrap_or_default();
            let message = if step.is_some() {
                format!("{port}: {}", p.message)
            } else {
                p.message
            };
            Issue { step, message }
        })
        .collect();
    if pipeline.steps.is_empty() {
        out.push(Issue {
            step: None,
            message: "add a step from the palette".into(),
        });
    }
    out
}

/// A step name not yet taken, from `base`.
fn fresh_name(pipeline: &Pipeline, base: &str) -> String {
    let taken = |n: &str| {
        pipeline.steps.iter().any(|s| s.name == n) || pipeline.inputs.iter().any(|(i, _)| i == n)
    };
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| !taken(n))
        .unwrap_or_default()
}

/// Adds a step running `component` (from `source`, e.g. the built-in `lathe:split_data`) at
/// `at`; returns its name.
pub fn add_step(
    pipeline: &mut Pipeline,
    source: StepSource,
    component: &Component,
    origin: PathBuf,
    at: [f32; 2],
) -> String {
    let name = fresh_name(pipeline, &component.name);
    pipeline.steps.push(Step {
        name: name.clone(),
        source,
        origin,
        component: component.clone(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        compute: None,
    });
    pipeline.layout.insert(name.clone(), at);
    name
}

/// Adds a pipeline input bound to data at `path` (a file, or `azureml:name@latest`).
pub fn add_data_input(pipeline: &mut Pipeline, base: &str, path: &str, at: [f32; 2]) -> String {
    let name = fresh_name(pipeline, &base.replace(['-', '.', ' '], "_"));
    pipeline.inputs.push((
        name.clone(),
        Binding::Data {
            kind: Some("uri_folder".into()),
            path: path.to_owned(),
        },
    ));
    pipeline.layout.insert(input_key(&name), at);
    name
}

/// Removes a step (or a pipeline input) and every binding that read from it.
pub fn remove(pipeline: &mut Pipeline, name: &str) {
    pipeline.steps.retain(|s| s.name != name);
    pipeline.inputs.retain(|(n, _)| n != name);
    pipeline.layout.remove(name);
    pipeline.layout.remove(&input_key(name));
    for step in &mut pipeline.steps {
        step.inputs.retain(|(_, b)| match b {
            Binding::StepOutput { step, .. } => step != name,
            Binding::ParentInput(input) => input != name,
            _ => true,
        });
    }
}

fn set_binding(step: &mut Step, input: &str, binding: Option<Binding>) {
    step.inputs.retain(|(n, _)| n != input);
    if let Some(binding) = binding {
        step.inputs.push((input.to_owned(), binding));
    }
}

/// Connects `from` to `to_step`'s input `input`, replacing what it was bound to. Refused, with
/// the reason, when the types do not meet or the edge would close a cycle.
pub fn connect(
    pipeline: &mut Pipeline,
    from: &Source,
    to_step: &str,
    input: &str,
) -> PipelineResult<()> {
    let wanted = pipeline
        .steps
        .iter()
        .find(|s| s.name == to_step)
        .and_then(|s| s.component.inputs.iter().find(|(n, _)| n == input))
        .map(|(_, p)| p.kind)
        .ok_or_else(|| format!("step '{to_step}' has no input '{input}'"))?;
    let (made, binding) = match from {
        Source::Step { step, output } => {
            let made = pipeline
                .steps
                .iter()
                .find(|s| s.name == *step)
                .and_then(|s| s.component.outputs.iter().find(|(n, _)| n == output))
                .map(|(_, p)| p.kind)
                .ok_or_else(|| format!("step '{step}' has no output '{output}'"))?;
            (
                made,
                Binding::StepOutput {
                    step: step.clone(),
                    output: output.clone(),
                },
            )
        }
        Source::Input(name) => (PortType::UriFolder, Binding::ParentInput(name.clone())),
    };
    // The type first: a mismatch is the more useful thing to hear, even when the edge would
    // also close a loop.
    if !wanted.accepts(made) {
        return Err(format!(
            "{to_step}.{input} takes a {} but this gives a {}",
            wanted.as_str(),
            made.as_str()
        )
        .into());
    }
    if matches!(from, Source::Step { step, .. } if step == to_step) {
        return Err("a step cannot take its own output".into());
    }
    let mut next = pipeline.clone();
    if let Some(step) = next.steps.iter_mut().find(|s| s.name == to_step) {
        set_binding(step, input, Some(binding));
    }
    if let Some(cycle) = job::find_cycle(&next.steps) {
        return Err(PipelineError::Invalid(format!(
            "that would make a cycle: {}",
            cycle.join(" -> ")
        )));
    }
    *pipeline = next;
    Ok(())
}

/// Unbinds a step's input.
pub fn disconnect(pipeline: &mut Pipeline, step: &str, input: &str) {
    if let Some(step) = pipeline.steps.iter_mut().find(|s| s.name == step) {
        set_binding(step, input, None);
    }
}

/// Sets a parameter (a literal input) of a step; empty text unsets it (the default applies).
pub fn set_value(pipeline: &mut Pipeline, step: &str, input: &str, value: &str) {
    if let Some(step) = pipeline.steps.iter_mut().find(|s| s.name == step) {
        let binding = (!value.is_empty()).then(|| Binding::Literal(value.to_owned()));
        set_binding(step, input, binding);
    }
}

/// Sets the value of a pipeline parameter (an input that is a value).
pub fn set_pipeline_input(pipeline: &mut Pipeline, name: &str, value: &str) {
    if let Some((_, binding)) = pipeline.inputs.iter_mut().find(|(n, _)| n == name) {
        *binding = Binding::Literal(value.to_owned());
    }
}

/// Places every node without a position: a row per depth (pipeline inputs first), nodes of a
/// depth side by side, each row shifted a little right so the flow reads downwards.
pub fn auto_layout(pipeline: &mut Pipeline) {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    for (name, _) in &pipeline.inputs {
        depth.insert(input_key(name), 0);
    }
    // Relax until stable: a step sits one column right of its deepest input.
    for _ in 0..=pipeline.steps.len() {
        for step in &pipeline.steps {
            let d = step
                .inputs
                .iter()
                .filter_map(|(_, b)| match b {
                    Binding::StepOutput { step, .. } => depth.get(step).map(|d| d + 1),
                    Binding::ParentInput(_) => Some(1),
                    _ => None,
                })
                .max()
                .unwrap_or(1);
            depth.insert(step.name.clone(), d);
        }
    }
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let keys: Vec<String> = pipeline
        .inputs
        .iter()
        .map(|(n, _)| input_key(n))
        .chain(pipeline.steps.iter().map(|s| s.name.clone()))
        .collect();
    for key in keys {
        let column = depth.get(&key).copied().unwrap_or(0);
        let row = rows.entry(column).or_default();
        pipeline.layout.entry(key).or_insert([
            40.0 + *row as f32 * 240.0 + column as f32 * 40.0,
            40.0 + column as f32 * 110.0,
        ]);
        *row += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keys_name_their_node() {
        assert_eq!(Node::of(&input_key("raw")), Node::Input("raw"));
        assert_eq!(Node::of("train"), Node::Step("train"));
        assert_eq!(Node::of(&input_key("raw")).name(), "raw");
    }
    use crate::pipeline::builtin;

    fn component(name: &str) -> Component {
        builtin::find(name).unwrap().clone()
    }

    #[test]
    fn a_pipeline_built_by_hand_validates_connects_and_refuses_bad_edges() {
        let mut p = empty("t");
        assert_eq!(issues(&p)[0].message, "add a step from the palette");
        let data = add_data_input(&mut p, "customers", "azureml:customers@latest", [0.0, 0.0]);
        let split = add_step(
            &mut p,
            StepSource::Builtin("lathe:split_data".into()),
            &component("split_data"),
            ".".into(),
            [1.0, 0.0],
        );
        let train = add_step(
            &mut p,
            StepSource::Builtin("lathe:train_kmeans".into()),
            &component("train_kmeans"),
            ".".into(),
            [2.0, 0.0],
        );
        let found = issues(&p);
        assert!(
            found.iter().any(|i| i.step.as_deref() == Some("split_data")
                && i.message.starts_with("data: required")),
            "{found:?}"
        );
        connect(&mut p, &Source::Input(data), &split, "data").unwrap();
        connect(
            &mut p,
            &Source::Step {
                step: split.clone(),
                output: "train".into(),
            },
            &train,
            "data",
        )
        .unwrap();
        assert_eq!(issues(&p), []);
        let mismatch = connect(
            &mut p,
            &Source::Step {
                step: split.clone(),
                output: "test".into(),
            },
            &train,
            "k",
        )
        .unwrap_err();
        assert_eq!(
            mismatch.to_string(),
            "train_kmeans.k takes a integer but this gives a mltable"
        );
        // A model is not a table: the type is named, before the loop the edge would close.
        let model_into_table = connect(
            &mut p,
            &Source::Step {
                step: train.clone(),
                output: "model".into(),
            },
            &split,
            "data",
        )
        .unwrap_err();
        assert_eq!(
            model_into_table.to_string(),
            "split_data.data takes a mltable but this gives a mlflow_model"
        );
        let scale = add_step(
            &mut p,
            StepSource::Builtin("lathe:normalize".into()),
            &component("normalize"),
            ".".into(),
            [3.0, 0.0],
        );
        let from = |step: &str, output: &str| Source::Step {
            step: step.to_owned(),
            output: output.to_owned(),
        };
        connect(&mut p, &from(&split, "test"), &scale, "data").unwrap();
        let cycle = connect(&mut p, &from(&scale, "data"), &split, "data")
            .unwrap_err()
            .to_string();
        assert!(cycle.starts_with("that would make a cycle"), "{cycle}");
        set_value(&mut p, &train, "k", "0");
        assert_eq!(issues(&p)[0].message, "k: 0 is below the minimum 1");
        set_value(&mut p, &train, "k", "4");
        // Through YAML and back, layout included.
        let again = job::parse(&p.to_yaml(), std::path::Path::new(".")).unwrap();
        assert_eq!(again.layout, p.layout);
        assert_eq!(again.steps[1].inputs, p.steps[1].inputs);
        remove(&mut p, &split);
        assert!(p.steps[0].inputs.iter().all(|(n, _)| n != "data"));
    }
}
