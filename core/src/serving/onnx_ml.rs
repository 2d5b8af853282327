//! ONNX-ML operators scikit-learn's converter writes and tract does not know, added to tract's
//! ONNX reader as expansions into tract's own operators:
//!
//! - `Scaler` (ai.onnx.ml): `Y = (X - offset) * scale`, per column or one value for all,
//!   as float (StandardScaler, MinMaxScaler).
//! - `Imputer` (ai.onnx.ml), float form: each `replaced_value_float` (NaN by default) in column
//!   `j` becomes `imputed_value_floats[j]` (or the one value given for all) (SimpleImputer).
//!
//! Semantics from the ONNX-ML operator specification (onnx/docs/Operators-ml.md). Any other
//! operator tract lacks still fails the deployment with its name.

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_hir::tract_core::ops::change_axes::wire_with_rank_broadcast;

/// Adds the operators to `register`.
pub fn register(register: &mut OnnxOpRegister) {
    register.insert("Scaler", scaler);
    register.insert("Imputer", imputer);
}

/// A `[1, C]` (or `[1, 1]`) row of `values`, broadcast over a batch.
fn row(values: &[f32]) -> TractResult<Arc<Tensor>> {
    Ok(tensor1(values)
        .into_shape(&[1, values.len()])?
        .into_arc_tensor())
}

/// `x` as float, with a batch axis when it has none.
fn as_batch_of_f32(prefix: &str, model: &mut TypedModel, x: OutletId) -> TractResult<OutletId> {
    let mut x = x;
    if model.outlet_fact(x)?.rank() == 1 {
        x = model.wire_node(format!("{prefix}.batch"), AxisOp::Add(0), &[x])?[0];
    }
    if model.outlet_fact(x)?.datum_type != f32::datum_type() {
        x = model.wire_node(
            format!("{prefix}.to_f32"),
            tract_onnx::tract_hir::tract_core::ops::cast::cast(f32::datum_type()),
            &[x],
        )?[0];
    }
    Ok(x)
}

fn float_rules<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
) -> InferenceResult {
    check_input_arity(inputs, 1)?;
    check_output_arity(outputs, 1)?;
    s.equals(&outputs[0].datum_type, DatumType::F32)?;
    s.equals(&inputs[0].rank, &outputs[0].rank)?;
    s.equals(&inputs[0].shape, &outputs[0].shape)?;
    Ok(())
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Scaler {
    offset: Arc<Tensor>,
    scale: Arc<Tensor>,
}

fn scaler(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let offset: Vec<f32> = node
        .get_attr_opt_vec("offset")?
        .unwrap_or_else(|| vec![0.0]);
    let scale: Vec<f32> = node.get_attr_opt_vec("scale")?.unwrap_or_else(|| vec![1.0]);
    node.expect(
        !offset.is_empty() && !scale.is_empty(),
        "offset and scale given",
    )?;
    Ok((
        expand(Scaler {
            offset: row(&offset)?,
            scale: row(&scale)?,
        }),
        vec![],
    ))
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "Scaler".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        float_rules(s, inputs, outputs)
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        use tract_onnx::tract_hir::tract_core::ops::math;
        let x = as_batch_of_f32(prefix, model, inputs[0])?;
        let offset = model.add_const(format!("{prefix}.offset"), self.offset.clone())?;
        let scale = model.add_const(format!("{prefix}.scale"), self.scale.clone())?;
        let centred =
            wire_with_rank_broadcast(format!("{prefix}.sub"), model, math::sub(), &[x, offset])?;
        wire_with_rank_broadcast(
            format!("{prefix}.mul"),
            model,
            math::mul(),
            &[centred[0], scale],
        )
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Imputer {
    imputed: Arc<Tensor>,
    /// The value replaced; `None` for NaN (the default).
    replaced: Option<Arc<Tensor>>,
}

fn imputer(
    _ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let imputed: Vec<f32> = node
        .get_attr_opt_vec("imputed_value_floats")?
        .unwrap_or_default();
    node.expect(
        !imputed.is_empty(),
        "imputed_value_floats given (the int64 form is not supported)",
    )?;
    let replaced: f32 = node
        .get_attr_opt("replaced_value_float")?
        .unwrap_or(f32::NAN);
    let replaced = if replaced.is_nan() {
        None
    } else {
        Some(row(&[replaced])?)
    };
    Ok((
        expand(Imputer {
            imputed: row(&imputed)?,
            replaced,
        }),
        vec![],
    ))
}

impl Expansion for Imputer {
    fn name(&self) -> StaticName {
        "Imputer".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        float_rules(s, inputs, outputs)
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        use tract_onnx::tract_hir::tract_core::ops::{logic, math};
        let x = as_batch_of_f32(prefix, model, inputs[0])?;
        let missing = match &self.replaced {
            None => model.wire_node(format!("{prefix}.is_nan"), math::is_nan(), &[x])?[0],
            Some(value) => {
                let value = model.add_const(format!("{prefix}.replaced"), value.clone())?;
                wire_with_rank_broadcast(
                    format!("{prefix}.eq"),
                    model,
                    TypedBinOp(logic::comp_eq(), None),
                    &[x, value],
                )?[0]
            }
        };
        let imputed = model.add_const(format!("{prefix}.imputed"), self.imputed.clone())?;
        wire_with_rank_broadcast(
            format!("{prefix}.iff"),
            model,
            logic::Iff,
            &[missing, imputed, x],
        )
    }
}
