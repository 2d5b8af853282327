//! Checking a pipeline: every step's values against its component's ports, and the wiring —
//! references to pipeline inputs and other steps' outputs that exist, of types that fit, with
//! no cycle.

use std::collections::HashMap;

use super::{Binding, Pipeline, Step, find_cycle, problem};
use crate::pipeline::component::Problem;

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
