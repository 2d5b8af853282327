//! ONNX-ML's `TreeEnsembleRegressor`, parsed here (tract's own tree parser is private) and
//! evaluated by tract's tree ensemble (`tract_onnx_opl::ml::tree`, the engine of its
//! TreeEnsembleClassifier), its classes standing for the targets. Semantics in the parent
//! module's documentation.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::change_axes::wire_with_rank_broadcast;

use super::{as_batch_of_f32, batch_rules, row};
use tract_onnx_opl::ml::tree::{Aggregate, Cmp, TreeEnsemble, TreeEnsembleData};
use tract_onnx_opl::ml::tree_ensemble_classifier::TreeEnsembleClassifier as TreeScores;

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum PostTransform {
    Identity,
    Logistic,
    Softmax,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct TreeEnsembleRegressor {
    /// tract's ensemble, one "class" per target, aggregated by SUM.
    ensemble: TreeEnsemble,
    n_targets: usize,
    /// AVERAGE: the number of trees the sums are divided by (onnxruntime divides by all the
    /// trees, not by those that voted for the target, unlike tract's own `Aggregate::Avg`).
    average_over: Option<usize>,
    /// `[1, n_targets]`, added after the aggregation.
    base_values: Option<Arc<Tensor>>,
    post_transform: PostTransform,
}

pub(super) fn tree_ensemble_regressor(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    for name in [
        "nodes_values_as_tensor",
        "target_weights_as_tensor",
        "base_values_as_tensor",
    ] {
        node.expect(node.attribute.iter().all(|a| a.name != name), || {
            format!("no {name} (the double-precision form is not supported)")
        })?;
    }
    let tree_ids: Vec<usize> = node.get_attr_vec("nodes_treeids")?;
    let node_ids: Vec<usize> = node.get_attr_vec("nodes_nodeids")?;
    let feature_ids: Vec<usize> = node.get_attr_vec("nodes_featureids")?;
    let values: Vec<f32> = node.get_attr_vec("nodes_values")?;
    let modes: Vec<&str> = node.get_attr_vec("nodes_modes")?;
    let true_ids: Vec<usize> = node.get_attr_vec("nodes_truenodeids")?;
    let false_ids: Vec<usize> = node.get_attr_vec("nodes_falsenodeids")?;
    let nan_true: Vec<bool> = node
        .get_attr_opt_vec("nodes_missing_value_tracks_true")?
        .unwrap_or_default();
    let n = tree_ids.len();
    node.expect(
        n > 0
            && [
                node_ids.len(),
                feature_ids.len(),
                values.len(),
                modes.len(),
                true_ids.len(),
                false_ids.len(),
            ]
            .iter()
            .all(|len| *len == n)
            && (nan_true.is_empty() || nan_true.len() == n),
        "the nodes_* attributes of one length",
    )?;
    let leaf_tree_ids: Vec<usize> = node.get_attr_vec("target_treeids")?;
    let leaf_node_ids: Vec<usize> = node.get_attr_vec("target_nodeids")?;
    let leaf_targets: Vec<usize> = node.get_attr_vec("target_ids")?;
    let leaf_weights: Vec<f32> = node.get_attr_vec("target_weights")?;
    node.expect(
        [leaf_node_ids.len(), leaf_targets.len(), leaf_weights.len()]
            .iter()
            .all(|len| *len == leaf_tree_ids.len()),
        "the target_* attributes of one length",
    )?;
    let n_targets: usize = match node.get_attr_opt::<usize>("n_targets")? {
        Some(count) => count,
        None => leaf_targets.iter().max().map_or(1, |t| t + 1),
    };
    node.expect(
        leaf_targets.iter().all(|t| *t < n_targets),
        "target_ids below n_targets",
    )?;

    // tract's layout (tract-onnx-opl ml/tree.rs, TreeEnsembleData): `trees` the row of each
    // tree's root; `nodes` [_, 5] u32 rows, a branch as
    // [feature, true row, false row, value bits, cmp | 0x100 if NaN goes true] and a leaf as
    // [first vote, end vote, 0, 0, 0]; `leaves` [_, 2] as [target, weight bits].
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (tree_ids[i], node_ids[i]));
    let mut row_of: HashMap<(usize, usize), u32> = HashMap::new();
    for (row, &i) in order.iter().enumerate() {
        let fresh = row_of
            .insert((tree_ids[i], node_ids[i]), row as u32)
            .is_none();
        node.expect(fresh, "each (tree, node) once")?;
    }
    let mut votes: HashMap<(usize, usize), Vec<(u32, f32)>> = HashMap::new();
    for (((tree, leaf), target), weight) in leaf_tree_ids
        .iter()
        .zip(&leaf_node_ids)
        .zip(&leaf_targets)
        .zip(&leaf_weights)
    {
        votes
            .entry((*tree, *leaf))
            .or_default()
            .push((*target as u32, *weight));
    }
    let mut trees: Vec<u32> = vec![];
    let mut nodes: Vec<u32> = Vec::with_capacity(n * 5);
    let mut leaves: Vec<u32> = vec![];
    let mut max_feature: usize = 0;
    let mut tree = None;
    for (row, &i) in order.iter().enumerate() {
        if tree != Some(tree_ids[i]) {
            // A tree's root is its lowest node id (0 from every converter).
            tree = Some(tree_ids[i]);
            trees.push(row as u32);
        }
        if modes[i] == "LEAF" {
            let first = (leaves.len() / 2) as u32;
            let voted = votes.get(&(tree_ids[i], node_ids[i]));
            for (target, weight) in voted.into_iter().flatten() {
                leaves.push(*target);
                leaves.push(weight.to_bits());
            }
            nodes.extend([first, (leaves.len() / 2) as u32, 0, 0, 0]);
            continue;
        }
        // onnxruntime: go true when `x cmp value`, or when x is NaN and
        // nodes_missing_value_tracks_true (a NaN compares false, except for NEQ).
        // tract: a NaN goes wherever its 0x100 flag says, else `x cmp value`.
        // tract's Cmp::try_from takes 1..=5, so GreaterEqual (6) would read as a leaf:
        // BRANCH_GTE becomes LT with its branches swapped (and the NaN flag flipped).
        let nan = nan_true.get(i).copied().unwrap_or(false);
        let (cmp, swap, nan) = match modes[i] {
            "BRANCH_LEQ" => (Cmp::LessEqual, false, nan),
            "BRANCH_LT" => (Cmp::Less, false, nan),
            "BRANCH_GT" => (Cmp::Greater, false, nan),
            "BRANCH_GTE" => (Cmp::Less, true, !nan),
            "BRANCH_EQ" => (Cmp::Equal, false, nan),
            "BRANCH_NEQ" => (Cmp::NotEqual, false, true),
            other => bail!("TreeEnsembleRegressor: node mode {other}"),
        };
        let child = |id: usize| {
            row_of.get(&(tree_ids[i], id)).copied().ok_or_else(|| {
                format_err!(
                    "TreeEnsembleRegressor: no node {id} in tree {}",
                    tree_ids[i]
                )
            })
        };
        let (yes, no) = (child(true_ids[i])?, child(false_ids[i])?);
        let (yes, no) = if swap { (no, yes) } else { (yes, no) };
        max_feature = max_feature.max(feature_ids[i]);
        nodes.extend([
            feature_ids[i] as u32,
            yes,
            no,
            values[i].to_bits(),
            (cmp as u32) | if nan { 0x100 } else { 0 },
        ]);
    }
    let n_trees = trees.len();
    let data = TreeEnsembleData {
        trees: rctensor1(&trees),
        nodes: tensor1(&nodes)
            .into_shape(&[nodes.len() / 5, 5])?
            .into_arc_tensor(),
        leaves: tensor1(&leaves)
            .into_shape(&[leaves.len() / 2, 2])?
            .into_arc_tensor(),
    };
    // SUM in tract in all cases: its Avg divides by the votes a target got and its Min/Max
    // start from 0 rather than from the first vote, both unlike onnxruntime.
    let ensemble = TreeEnsemble::build(data, max_feature, n_targets, Aggregate::Sum)?;
    let average_over = match node
        .get_attr_opt::<&str>("aggregate_function")?
        .unwrap_or("SUM")
    {
        "SUM" => None,
        "AVERAGE" => Some(n_trees),
        other => bail!("TreeEnsembleRegressor: aggregate_function {other} is not supported"),
    };
    let base_values = match node.get_attr_opt_vec::<f32>("base_values")? {
        Some(base) if !base.is_empty() => {
            node.expect(base.len() == n_targets, "one base_values per target")?;
            Some(row(&base)?)
        }
        _ => None,
    };
    let post_transform = match node
        .get_attr_opt::<&str>("post_transform")?
        .unwrap_or("NONE")
    {
        "NONE" => PostTransform::Identity,
        "LOGISTIC" => PostTransform::Logistic,
        "SOFTMAX" => PostTransform::Softmax,
        other => bail!("TreeEnsembleRegressor: post_transform {other} is not supported"),
    };
    Ok((
        expand(TreeEnsembleRegressor {
            ensemble,
            n_targets,
            average_over,
            base_values,
            post_transform,
        }),
        vec![],
    ))
}

impl Expansion for TreeEnsembleRegressor {
    fn name(&self) -> StaticName {
        "TreeEnsembleRegressor".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        batch_rules(s, inputs, outputs, self.n_targets)
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        use tract_onnx::tract_hir::tract_core::ops::{math, nn};
        let x = as_batch_of_f32(prefix, model, inputs[0])?;
        // [N, F] -> [N, n_targets] (tract-onnx-opl ml/tree_ensemble_classifier.rs).
        let mut y = model.wire_node(
            format!("{prefix}.trees"),
            TreeScores {
                ensemble: self.ensemble.clone(),
            },
            &[x],
        )?;
        if let Some(trees) = self.average_over {
            let count = model.add_const(format!("{prefix}.tree_count"), row(&[trees as f32])?)?;
            y = wire_with_rank_broadcast(
                format!("{prefix}.average"),
                model,
                math::div(),
                &[y[0], count],
            )?;
        }
        if let Some(base) = &self.base_values {
            let base = model.add_const(format!("{prefix}.base_values"), base.clone())?;
            y = wire_with_rank_broadcast(
                format!("{prefix}.base"),
                model,
                math::add(),
                &[y[0], base],
            )?;
        }
        match self.post_transform {
            PostTransform::Identity => Ok(y),
            PostTransform::Logistic => {
                model.wire_node(format!("{prefix}.logistic"), nn::sigmoid(), &y)
            }
            PostTransform::Softmax => tract_onnx::tract_hir::ops::nn::LayerSoftmax::new(1, false)
                .wire(&format!("{prefix}.softmax"), model, &y),
        }
    }
}
