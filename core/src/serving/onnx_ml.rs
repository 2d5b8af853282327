//! ONNX-ML operators scikit-learn's converter writes and tract does not know, added to tract's
//! ONNX reader as expansions into tract's own operators:
//!
//! - `Scaler` (ai.onnx.ml): `Y = (X - offset) * scale`, per column or one value for all,
//!   as float (StandardScaler, MinMaxScaler).
//! - `Imputer` (ai.onnx.ml), float form: each `replaced_value_float` (NaN by default) in column
//!   `j` becomes `imputed_value_floats[j]` (or the one value given for all) (SimpleImputer).
//! - `OneHotEncoder` (ai.onnx.ml): `X` of shape `S` (strings against `cats_strings`, or
//!   numbers read as int64 against `cats_int64s`) becomes float `S + [C]`, 1.0 where the value
//!   is category `c`. A value in no category gives a row of zeros (`zeros = 1`, the default)
//!   or fails the request (`zeros = 0`).
//! - `FeatureVectorizer` (ai.onnx.ml): its inputs, each `[N, …]` flattened to `[N, F_i]`
//!   (a 1-D input is one row), cut or zero-padded to `inputdimensions[i]` columns, then
//!   concatenated as float `[N, Σ inputdimensions]`.
//! - `TreeEnsembleRegressor` (ai.onnx.ml), float form: `[N, F]` to `[N, n_targets]`, each
//!   target the SUM (or AVERAGE over the trees) of the weights of the leaves the row reaches,
//!   plus `base_values`, then `post_transform` (NONE, LOGISTIC or SOFTMAX). Evaluated by
//!   tract's own tree ensemble (`tract_onnx_opl::ml::tree`, the engine of its
//!   TreeEnsembleClassifier), its classes standing for the targets.
//!
//! (`ArrayFeatureExtractor`, `LinearClassifier`, `Normalizer`, `CategoryMapper` and
//! `TreeEnsembleClassifier` tract reads itself.)
//!
//! Semantics from the ONNX-ML operator specification (onnx/docs/Operators-ml.md), checked
//! against onnxruntime. Any other operator tract lacks still fails the deployment with its name.
//! The encoders are in `onnx_ml/encoding.rs`, the regressor in `onnx_ml/trees.rs`.

mod encoding;
mod trees;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_hir::tract_core::ops::change_axes::wire_with_rank_broadcast;

/// Adds the operators to `register`.
pub fn register(register: &mut OnnxOpRegister) {
    register.insert("Scaler", scaler);
    register.insert("Imputer", imputer);
    register.insert("OneHotEncoder", encoding::one_hot_encoder);
    register.insert("FeatureVectorizer", encoding::feature_vectorizer);
    register.insert("TreeEnsembleRegressor", trees::tree_ensemble_regressor);
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

/// Rules for an output `[N, width]` of float from a batch `[N, …]` (or one row `[F]`).
fn batch_rules<'r, 'p: 'r>(
    s: &mut Solver<'r>,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
    width: usize,
) -> InferenceResult {
    check_output_arity(outputs, 1)?;
    s.equals(&outputs[0].datum_type, DatumType::F32)?;
    s.equals(&outputs[0].rank, 2)?;
    s.equals(&outputs[0].shape[1], width.to_dim())?;
    s.given(&inputs[0].rank, move |s, rank| {
        if rank == 1 {
            s.equals(&outputs[0].shape[0], 1.to_dim())
        } else {
            s.equals(&outputs[0].shape[0], &inputs[0].shape[0])
        }
    })
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::tensors::{OnnxModel, Tensor};

    fn model(file: &str) -> OnnxModel {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpora/onnx/sklearn-onnx")
            .join(file);
        OnnxModel::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    fn tensor(name: &str, datatype: &str, shape: &[usize], data: Vec<Value>) -> Tensor {
        Tensor {
            name: name.to_owned(),
            datatype: datatype.to_owned(),
            shape: shape.to_vec(),
            data,
        }
    }

    fn column<T: serde::Serialize>(name: &str, datatype: &str, values: &[T]) -> Tensor {
        let data = values.iter().map(|v| json!(v)).collect();
        tensor(name, datatype, &[values.len(), 1], data)
    }

    fn assert_close(what: &str, got: &Tensor, shape: &[usize], want: &[f64]) {
        assert_eq!(got.shape, shape, "{what}: {got:?}");
        let got: Vec<f64> = got.data.iter().map(|v| v.as_f64().unwrap()).collect();
        for (a, b) in got.iter().zip(want) {
            assert!(
                (a - b).abs() < 1e-5,
                "{what}: Lathe {got:?}, onnxruntime {want:?}"
            );
        }
    }

    #[test]
    fn one_hot_encoder_over_int64_and_feature_vectorizer_agree_with_onnxruntime() {
        let m = model("tests/tests/SklearnOneHotEncoderInt64-SkipDim1.model.onnx");
        assert_eq!(m.output_names(), ["variable"]);
        // cats_int64s per column: [0, 1, 4], [1, 2, 3, 5], [0, 3, 4, 6]; 7 is in none.
        let cases: [([i64; 3], [f64; 11]); 6] = [
            ([0, 1, 0], [1., 0., 0., 1., 0., 0., 0., 1., 0., 0., 0.]),
            ([1, 2, 3], [0., 1., 0., 0., 1., 0., 0., 0., 1., 0., 0.]),
            ([4, 5, 6], [0., 0., 1., 0., 0., 0., 1., 0., 0., 0., 1.]),
            ([1, 3, 4], [0., 1., 0., 0., 0., 1., 0., 0., 0., 1., 0.]),
            ([4, 1, 7], [0., 0., 1., 1., 0., 0., 0., 0., 0., 0., 0.]),
            ([7, 7, 7], [0.; 11]),
        ];
        for (row, want) in cases {
            let input = tensor(
                "input",
                "INT64",
                &[1, 3],
                row.iter().map(|x| json!(x)).collect(),
            );
            let out = m.run(&[input]).unwrap();
            assert_eq!(out[0].datatype, "FP32");
            assert_close(&format!("{row:?}"), &out[0], &[1, 11], &want);
        }
    }

    #[test]
    fn tree_ensemble_regressor_agrees_with_onnxruntime() {
        let m = model("tests/tests/SklearnMRgRandomForestRegressor.model.onnx");
        // Two targets, though the graph declares its output [1, 1] (onnxruntime warns and
        // gives [1, 2] too).
        let cases: [([f64; 2], [f64; 2]); 5] = [
            ([0.0, 0.0], [100.0, 99.0]),
            ([0.0, 1.0], [100.0, 49.333_335_876_464_844]),
            ([1.0, 0.0], [100.0, 99.0]),
            ([1.0, 1.0], [100.0, 49.0]),
            ([0.5, 0.5], [100.0, 99.0]),
        ];
        for (row, want) in cases {
            let input = tensor(
                "input",
                "FP32",
                &[1, 2],
                row.iter().map(|x| json!(x)).collect(),
            );
            let out = m.run(&[input]).unwrap();
            assert_close(&format!("{row:?}"), &out[0], &[1, 2], &want);
        }
    }

    /// Rows of the Titanic pipelines: the last has a class, a sex and a port in no category.
    fn titanic(pclass: Tensor) -> Vec<Tensor> {
        vec![
            pclass,
            column(
                "sex",
                "BYTES",
                &["female", "male", "male", "female", "other"],
            ),
            column("age", "FP32", &[29.0, 2.0, 40.0, 2.0, 60.0]),
            column("fare", "FP32", &[211.3375, 8.05, 13.0, 21.075, 0.0]),
            column("embarked", "BYTES", &["S", "Q", "C", "missing", "X"]),
        ]
    }

    #[test]
    fn one_hot_encoder_over_strings_agrees_with_onnxruntime() {
        let m = model("docs/examples/pipeline_titanic.onnx");
        assert_eq!(m.output_names(), ["output_label", "probabilities"]);
        let pclass = column("pclass", "BYTES", &["1", "3", "2", "3", "9"]);
        let out = m.run(&titanic(pclass)).unwrap();
        assert_eq!(out[0].data, [1, 0, 0, 1, 0].map(|x| json!(x)));
        let want = [
            0.097_499_370_574_951_17,
            0.902_500_629_425_048_8,
            0.815_740_585_327_148_4,
            0.184_259_444_475_173_95,
            0.721_651_911_735_534_7,
            0.278_348_088_264_465_33,
            0.193_085_819_482_803_34,
            0.806_914_210_319_519,
            0.683_482_646_942_138_7,
            0.316_517_353_057_861_33,
        ];
        assert_close("titanic", &out[1], &[5, 2], &want);
    }

    #[test]
    fn one_hot_encoder_over_int64_in_a_pipeline_agrees_with_onnxruntime() {
        let m = model("docs/examples/pipeline_titanic_nozipmap.onnx");
        assert_eq!(m.output_names(), ["label", "probabilities"]);
        let pclass = column("pclass", "INT64", &[1, 3, 2, 3, 9]);
        let out = m.run(&titanic(pclass)).unwrap();
        assert_eq!(out[0].data, [1, 0, 0, 1, 0].map(|x| json!(x)));
        let want = [
            0.119_401_067_495_346_07,
            0.880_598_902_702_331_5,
            0.807_196_140_289_306_6,
            0.192_803_889_513_015_75,
            0.718_801_975_250_244_1,
            0.281_197_994_947_433_47,
            0.205_731_451_511_383_06,
            0.794_268_548_488_616_9,
            0.637_640_416_622_161_9,
            0.362_359_583_377_838_13,
        ];
        assert_close("titanic nozipmap", &out[1], &[5, 2], &want);
    }
}
