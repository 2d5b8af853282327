//! ONNX-ML's encoders: `OneHotEncoder` (over text or integers, as an expansion into tract's
//! comparison, with one small op for `zeros = 0`) and `FeatureVectorizer` (an expansion).
//! Semantics in the parent module's documentation.

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::binary::TypedBinOp;

use super::{as_batch_of_f32, batch_rules};

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct OneHotEncoder {
    /// The categories, 1-D: `String` (`cats_strings`) or `i64` (`cats_int64s`).
    categories: Arc<Tensor>,
    /// `zeros = 1`: a value in no category encodes as zeros; `false`: it fails the request.
    zeros: bool,
}

pub(super) fn one_hot_encoder(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let ints: Option<Vec<i64>> = node
        .get_attr_opt_vec("cats_int64s")?
        .filter(|v: &Vec<i64>| !v.is_empty());
    let strings: Option<Vec<String>> = node
        .get_attr_opt_vec("cats_strings")?
        .filter(|v: &Vec<String>| !v.is_empty());
    let categories = match (ints, strings) {
        (Some(ints), None) => rctensor1(&ints),
        (None, Some(strings)) => rctensor1(&strings),
        _ => return node.bail("expected exactly one of cats_int64s and cats_strings"),
    };
    let zeros: i64 = node.get_attr_opt("zeros")?.unwrap_or(1);
    Ok((
        expand(OneHotEncoder {
            categories,
            zeros: zeros != 0,
        }),
        vec![],
    ))
}

impl Expansion for OneHotEncoder {
    fn name(&self) -> StaticName {
        "OneHotEncoder".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        if self.categories.datum_type() == DatumType::String {
            s.equals(&inputs[0].datum_type, DatumType::String)?;
        }
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(inputs[0].rank.bex() + 1, &outputs[0].rank)?;
        let count = self.categories.len().to_dim();
        s.given(&inputs[0].rank, move |s, rank| {
            let rank = rank as usize;
            for axis in 0..rank {
                s.equals(&inputs[0].shape[axis], &outputs[0].shape[axis])?;
            }
            s.equals(&outputs[0].shape[rank], count.clone())
        })
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        use tract_onnx::tract_hir::tract_core::ops::{cast::cast, logic};
        let fact = model.outlet_fact(inputs[0])?.clone();
        let rank = fact.rank();
        let mut x = inputs[0];
        let categories_dt = self.categories.datum_type();
        if fact.datum_type != categories_dt {
            // cats_int64s over float/double/int32: onnxruntime casts to int64 (2.7 is 2);
            // tract's cast truncates the same way. Strings never convert either way.
            if categories_dt == DatumType::String || fact.datum_type == DatumType::String {
                bail!(
                    "OneHotEncoder: categories are {categories_dt:?}, the input is {:?}",
                    fact.datum_type
                );
            }
            x = model.wire_node(format!("{prefix}.to_i64"), cast(i64::datum_type()), &[x])?[0];
        }
        // x: S + [1] against the categories 1…1 + [C]; comp_eq compares strings too
        // (tract-core ops/logic/comparison.rs, eval_out_of_place's String branch).
        x = model.wire_node(format!("{prefix}.unsqueeze"), AxisOp::Add(rank), &[x])?[0];
        let mut shape = vec![1usize; rank];
        shape.push(self.categories.len());
        let categories = self
            .categories
            .as_ref()
            .clone()
            .into_shape(&shape)?
            .into_arc_tensor();
        let categories = model.add_const(format!("{prefix}.categories"), categories)?;
        let mut hot = model.wire_node(
            format!("{prefix}.eq"),
            TypedBinOp(logic::comp_eq(), None),
            &[x, categories],
        )?;
        if !self.zeros {
            hot = model.wire_node(format!("{prefix}.known"), EveryValueKnown, &hot)?;
        }
        model.wire_node(format!("{prefix}.to_f32"), cast(f32::datum_type()), &hot)
    }
}

/// Passes the one-hot booleans `S + [C]` through unchanged, failing when a value matched no
/// category (a row of `false` on the last axis): `OneHotEncoder` with `zeros = 0`, as
/// onnxruntime ("Unknown Category and zeros = 0.").
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct EveryValueKnown;

impl Op for EveryValueKnown {
    fn name(&self) -> StaticName {
        "OneHotEncoder.EveryValueKnown".into()
    }

    op_as_typed_op!();
}

impl EvalOp for EveryValueKnown {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let hot = args_1!(inputs);
        let unknown = {
            let view = hot.to_plain_array_view::<bool>()?;
            match view.ndim().checked_sub(1) {
                Some(last) => view
                    .lanes(tract_ndarray::Axis(last))
                    .into_iter()
                    .any(|lane| !lane.iter().any(|&b| b)),
                None => false,
            }
        };
        if unknown {
            bail!("OneHotEncoder: a value is in none of the categories, and zeros = 0");
        }
        Ok(tvec!(hot))
    }
}

impl TypedOp for EveryValueKnown {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(bool::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct FeatureVectorizer {
    /// `inputdimensions`: the columns each input gives.
    widths: Vec<usize>,
}

pub(super) fn feature_vectorizer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let widths: Vec<usize> = node
        .get_attr_opt_vec("inputdimensions")?
        .unwrap_or_default();
    node.expect(
        !widths.is_empty() && widths.len() == node.input.len(),
        "one inputdimensions per input",
    )?;
    Ok((expand(FeatureVectorizer { widths }), vec![]))
}

impl Expansion for FeatureVectorizer {
    fn name(&self) -> StaticName {
        "FeatureVectorizer".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, self.widths.len())?;
        batch_rules(s, inputs, outputs, self.widths.iter().sum())
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        use tract_onnx::tract_hir::tract_core::ops::array::{Pad, PadMode, Slice, TypedConcat};
        let mut columns = tvec!();
        for (i, (input, &width)) in inputs.iter().zip(&self.widths).enumerate() {
            let name = format!("{prefix}.{i}");
            let mut x = as_batch_of_f32(&name, model, *input)?;
            let shape = model.outlet_fact(x)?.shape.to_tvec();
            if shape.len() > 2 {
                // [N, a, b, …] to [N, a·b·…], as onnxruntime reads every input.
                let flat: TDim = shape[1..].iter().product();
                x = model.wire_node(
                    format!("{name}.flatten"),
                    AxisOp::Reshape(1, shape[1..].iter().cloned().collect(), tvec![flat]),
                    &[x],
                )?[0];
            }
            let Some(given) = model.outlet_fact(x)?.shape[1].as_usize() else {
                bail!("FeatureVectorizer: input {i} has no fixed number of columns");
            };
            // onnxruntime cuts an input longer than its inputdimensions and pads a shorter
            // one with zeros.
            if given > width {
                x = model.wire_node(format!("{name}.cut"), Slice::new(1, 0, width), &[x])?[0];
            } else if given < width {
                x = model.wire_node(
                    format!("{name}.pad"),
                    Pad::new(
                        vec![(0, 0), (0, width - given)],
                        PadMode::Constant(rctensor0(0f32)),
                    ),
                    &[x],
                )?[0];
            }
            columns.push(x);
        }
        model.wire_node(format!("{prefix}.concat"), TypedConcat::new(1), &columns)
    }
}
