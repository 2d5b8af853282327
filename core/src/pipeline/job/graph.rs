//! The graph of a pipeline's steps: which steps each step waits for, and a cycle if there is
//! one. The executor orders its runs by it; the designer refuses an edge that would close a
//! cycle.

use std::collections::HashMap;

use super::{Binding, Step};

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
