//! Pipeline jobs in Azure ML's CLI v2 YAML (`type: pipeline`): pipeline inputs and outputs, and
//! steps that run a component — from a file beside the pipeline, inline, or an inline command
//! job — wired with `${{parent.inputs.x}}`, `${{parent.outputs.y}}` and
//! `${{parent.jobs.<step>.outputs.<o>}}`. Importing checks every reference and the graph, and
//! names what it cannot take (registered components, nested pipelines, sweeps, parallel jobs).

//!
//! This module holds the types; `parse` reads the YAML, `check` checks a pipeline's wiring and
//! values, `graph` orders steps (shared by the designer and the executor), `yaml` writes it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::builtin;
use super::component::{Component, Problem};

mod check;
mod graph;
mod parse;
mod yaml;

pub use check::{check, check_step};
pub use graph::{dependencies, find_cycle};
pub use parse::{Registry, parse, parse_draft, parse_with};

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
    /// The compute target the step asks for (`compute:`, an `azureml:` prefix taken off); the
    /// pipeline's `settings.default_compute` when it names none.
    pub compute: Option<String>,
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

impl Pipeline {
    /// The compute target a step runs on: its own, else the pipeline's default, else `local`
    /// (as written, an `azureml:` prefix taken off).
    pub fn compute_of(&self, step: &Step) -> String {
        step.compute
            .clone()
            .or_else(|| {
                self.settings
                    .get("default_compute")
                    .map(|c| compute_name(c))
            })
            .unwrap_or_else(|| crate::compute::LOCAL.to_owned())
    }
}

/// A compute reference as Azure ML writes it (`azureml:cpu-cluster`, `cpu-cluster`) by name.
pub fn compute_name(reference: &str) -> String {
    reference
        .trim()
        .strip_prefix("azureml:")
        .unwrap_or(reference.trim())
        .to_owned()
}

/// The `properties` key that holds the designer's layout.
const LAYOUT_PROPERTY: &str = "lathe.layout";

pub(super) fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
