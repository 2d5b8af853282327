//! Fitted preprocessing: what the data-preparation built-ins learned from their table (the
//! columns kept, fill values, categories, shifts and scales), carried beside every prepared
//! table as `preprocessing.json` and registered with the model trained on it, so the model
//! scores the raw rows a caller has. This is what Azure ML's designer does when it turns a
//! training pipeline into a real-time inference pipeline: the fitted transforms go in front of
//! the model.
//!
//! A table's [`Chain`] lists the steps in the order they ran. Training compiles it into one
//! [`FeaturePlan`] per model feature: the raw column the feature comes from and the operations
//! that turn one cell of it into the feature's number — every built-in transform works column
//! by column, so a feature never needs more than one raw column.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// The file beside a prepared table (`data.csv`) that holds its chain.
pub const FILE: &str = "preprocessing.json";

/// The preparation a table has been through, in order, and the raw columns it started from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    pub inputs: Vec<Input>,
    pub steps: Vec<Step>,
}

/// A raw column and its MLflow column type (`double`, `long`, `integer`, `string`,
/// `boolean`, `datetime`), as a model signature names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// One fitted preparation step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    SelectColumns {
        columns: Vec<String>,
    },
    /// A fill value per column; `required` columns (the `drop_rows` strategy) had their
    /// incomplete rows dropped, so a missing value there cannot be scored.
    CleanMissingData {
        fill: BTreeMap<String, Fill>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        required: Vec<String>,
    },
    /// Each encoded column's categories, in order; column `c` became `c_<category>` flags.
    OneHotEncode {
        categories: BTreeMap<String, Vec<String>>,
    },
    /// Each scaled column's `[shift, scale]`: `x` became `(x − shift) / scale`.
    Normalize {
        scales: BTreeMap<String, [f64; 2]>,
    },
}

/// What a missing value becomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fill {
    Number(f64),
    Text(String),
}

/// One operation on a cell, in a feature's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A missing value becomes `value`.
    Fill { value: Fill },
    /// A missing value cannot be scored.
    Require,
    /// 1 when the cell is `category`, else 0 (a missing value or an unseen category gives 0,
    /// as scikit-learn's `OneHotEncoder(handle_unknown="ignore")`).
    Indicator { category: String },
    /// `(x − shift) / scale`; a missing value stays missing.
    Affine { shift: f64, scale: f64 },
}

/// How one model feature is computed from one raw column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturePlan {
    pub source: String,
    pub ops: Vec<Op>,
}

/// The preprocessing a model is registered with: the chain it was trained behind, the raw
/// inputs it takes (its signature) and a plan per feature, in the model's feature order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub chain: Chain,
    pub inputs: Vec<Input>,
    pub features: Vec<FeaturePlan>,
}

/// One raw value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Number(f64),
    Text(&'a str),
    Null,
}

/// Why a cell gives no feature value.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    Missing,
    NotANumber(String),
    NotFinite(f64),
}

impl Problem {
    /// The problem in words, naming `column`; the same words a batch job's failed rows use.
    pub fn describe(&self, column: &str) -> String {
        match self {
            Self::Missing => format!("column '{column}' has no value"),
            Self::NotANumber(text) => format!("column '{column}' holds '{text}', not a number"),
            Self::NotFinite(x) => format!("column '{column}' is {x}, not a finite number"),
        }
    }
}

impl Chain {
    /// A chain that starts at `df`: no step yet, its columns as the raw inputs. An integer
    /// column with missing values is a `double` input, as pandas reads it and MLflow's
    /// `infer_signature` types it, so MLflow clients may send it with its gaps.
    pub fn start(df: &DataFrame) -> Self {
        Self {
            inputs: df
                .columns()
                .iter()
                .map(|c| Input {
                    name: c.name().to_string(),
                    kind: if c.dtype().is_integer() && c.null_count() > 0 {
                        "double"
                    } else {
                        column_type(c.dtype())
                    }
                    .to_owned(),
                })
                .collect(),
            steps: Vec::new(),
        }
    }

    /// The chain beside the table at `path` (a folder holding [`FILE`]); `None` for a table
    /// that no preparation step wrote.
    ///
    /// # Errors
    /// A chain file that cannot be read or parsed, naming it.
    pub fn read(path: &Path) -> Result<Option<Self>, String> {
        let file = path.join(FILE);
        if !path.is_dir() || !file.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", file.display()))
    }

    /// Writes the chain into the folder `dir`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(FILE), json)
    }

    /// The plan of each of `features` (columns of the prepared table) back to the raw columns.
    ///
    /// # Errors
    /// A feature no raw column leads to, naming it.
    pub fn compile(&self, features: &[String]) -> Result<Preprocessing, String> {
        let plans = features
            .iter()
            .map(|feature| self.plan(feature))
            .collect::<Result<Vec<_>, _>>()?;
        let inputs = self
            .inputs
            .iter()
            .filter(|i| plans.iter().any(|p| p.source == i.name))
            .cloned()
            .collect();
        Ok(Preprocessing {
            chain: self.clone(),
            inputs,
            features: plans,
        })
    }

    fn plan(&self, feature: &str) -> Result<FeaturePlan, String> {
        let mut name = feature.to_owned();
        let mut ops = Vec::new();
        for step in self.steps.iter().rev() {
            match step {
                Step::SelectColumns { columns } => {
                    if !columns.contains(&name) {
                        return Err(format!(
                            "feature '{feature}': column '{name}' was not selected"
                        ));
                    }
                }
                Step::CleanMissingData { fill, required } => {
                    if let Some(value) = fill.get(&name) {
                        ops.push(Op::Fill {
                            value: value.clone(),
                        });
                    } else if required.contains(&name) {
                        ops.push(Op::Require);
                    }
                }
                Step::OneHotEncode { categories } => {
                    let encoded = categories.iter().find_map(|(column, categories)| {
                        categories
                            .iter()
                            .find(|c| format!("{column}_{c}") == name)
                            .map(|c| (column, c))
                    });
                    if let Some((column, category)) = encoded {
                        ops.push(Op::Indicator {
                            category: category.clone(),
                        });
                        name = column.clone();
                    }
                }
                Step::Normalize { scales } => {
                    if let Some([shift, scale]) = scales.get(&name) {
                        ops.push(Op::Affine {
                            shift: *shift,
                            scale: *scale,
                        });
                    }
                }
            }
        }
        if !self.inputs.iter().any(|i| i.name == name) {
            return Err(format!(
                "feature '{feature}' comes from no raw column (its preparation starts at \
                 '{name}')"
            ));
        }
        ops.reverse();
        Ok(FeaturePlan { source: name, ops })
    }
}

impl FeaturePlan {
    /// A feature read as it is from the column of its name.
    pub fn identity(name: &str) -> Self {
        Self {
            source: name.to_owned(),
            ops: Vec::new(),
        }
    }

    /// The feature's value for one raw cell.
    ///
    /// # Errors
    /// A missing value with no fill, text that is not a number, NaN or infinity.
    pub fn value(&self, cell: Cell<'_>) -> Result<f64, Problem> {
        let mut cell = cell;
        for op in &self.ops {
            cell = match (op, cell) {
                (Op::Fill { value }, Cell::Null) => match value {
                    Fill::Number(n) => Cell::Number(*n),
                    Fill::Text(t) => Cell::Text(t),
                },
                (Op::Require, Cell::Null) => return Err(Problem::Missing),
                (Op::Indicator { category }, cell) => {
                    Cell::Number(f64::from(u8::from(is_category(cell, category))))
                }
                (Op::Affine { .. }, Cell::Null) => Cell::Null,
                (Op::Affine { shift, scale }, cell) => {
                    Cell::Number((number(cell)? - shift) / scale)
                }
                (_, cell) => cell,
            };
        }
        let x = number(cell)?;
        if x.is_finite() {
            Ok(x)
        } else {
            Err(Problem::NotFinite(x))
        }
    }
}

/// A cell as a number: text is parsed; a missing value is a problem.
fn number(cell: Cell<'_>) -> Result<f64, Problem> {
    match cell {
        Cell::Number(x) => Ok(x),
        Cell::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| Problem::NotANumber(t.to_owned())),
        Cell::Null => Err(Problem::Missing),
    }
}

/// Whether `cell` is `category`, comparing a number as polars writes it as text (`3`, `3.5`).
fn is_category(cell: Cell<'_>, category: &str) -> bool {
    match cell {
        Cell::Text(t) => t == category,
        Cell::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
            category == format!("{}", x as i64) || category == format!("{x:.1}")
        }
        Cell::Number(x) => category == x.to_string(),
        Cell::Null => false,
    }
}

/// A polars type as an MLflow column type.
pub fn column_type(dtype: &DataType) -> &'static str {
    match dtype {
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            "integer"
        }
        dtype if dtype.is_integer() => "long",
        DataType::Float32 => "float",
        dtype if dtype.is_float() => "double",
        DataType::Date | DataType::Datetime(..) => "datetime",
        _ => "string",
    }
}

/// Each feature of `plans` for every row of `df`, as a rows × features matrix, and the rows
/// that give no value, each with the first problem (by feature) in words.
///
/// # Errors
/// A source column `df` lacks, or one that holds neither numbers nor text, naming it.
pub fn matrix(
    df: &DataFrame,
    plans: &[FeaturePlan],
) -> Result<(ndarray::Array2<f64>, BTreeMap<usize, String>), String> {
    let rows = df.height();
    let mut x = ndarray::Array2::zeros((rows, plans.len()));
    let mut failed: BTreeMap<usize, String> = BTreeMap::new();
    for (j, plan) in plans.iter().enumerate() {
        let column = df.column(&plan.source).map_err(|_| {
            format!(
                "column '{}' is missing: the model takes {}",
                plan.source,
                sources(plans).join(", ")
            )
        })?;
        let mut put = |i: usize, cell: Cell<'_>, x: &mut f64| match plan.value(cell) {
            Ok(v) => *x = v,
            Err(problem) => {
                failed
                    .entry(i)
                    .or_insert_with(|| problem.describe(&plan.source));
            }
        };
        let mut target = x.column_mut(j);
        match column.dtype() {
            DataType::String => {
                let text = column.str().map_err(|e| e.to_string())?;
                for (i, (cell, v)) in target.iter_mut().zip(text.iter()).enumerate() {
                    put(i, v.map_or(Cell::Null, Cell::Text), cell);
                }
            }
            dtype if dtype.is_primitive_numeric() || dtype == &DataType::Boolean => {
                let cast = column
                    .cast(&DataType::Float64)
                    .map_err(|e| format!("column '{}': {e}", plan.source))?;
                let values = cast.f64().map_err(|e| e.to_string())?;
                if plan.ops.is_empty() && values.null_count() == 0 {
                    for (i, (cell, v)) in target
                        .iter_mut()
                        .zip(values.into_no_null_iter())
                        .enumerate()
                    {
                        if v.is_finite() {
                            *cell = v;
                        } else {
                            put(i, Cell::Number(v), cell);
                        }
                    }
                } else {
                    for (i, (cell, v)) in target.iter_mut().zip(values.iter()).enumerate() {
                        put(i, v.map_or(Cell::Null, Cell::Number), cell);
                    }
                }
            }
            DataType::Null => {
                for (i, cell) in target.iter_mut().enumerate() {
                    put(i, Cell::Null, cell);
                }
            }
            dtype => {
                return Err(format!(
                    "column '{}' holds {dtype}; the model takes numbers{}",
                    plan.source,
                    if plan.ops.is_empty() { "" } else { " or text" }
                ));
            }
        }
    }
    Ok((x, failed))
}

/// The raw columns `plans` read, each once, in order.
pub fn sources(plans: &[FeaturePlan]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for plan in plans {
        if !names.contains(&plan.source.as_str()) {
            names.push(&plan.source);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        Chain {
            inputs: vec![
                Input {
                    name: "region".into(),
                    kind: "string".into(),
                },
                Input {
                    name: "age".into(),
                    kind: "long".into(),
                },
                Input {
                    name: "id".into(),
                    kind: "long".into(),
                },
            ],
            steps: vec![
                Step::SelectColumns {
                    columns: vec!["region".into(), "age".into(), "churned".into()],
                },
                Step::CleanMissingData {
                    fill: [
                        ("age".into(), Fill::Number(40.0)),
                        ("region".into(), Fill::Text("north".into())),
                    ]
                    .into(),
                    required: Vec::new(),
                },
                Step::OneHotEncode {
                    categories: [("region".into(), vec!["north".into(), "south".into()])].into(),
                },
                Step::Normalize {
                    scales: [
                        ("age".into(), [40.0, 10.0]),
                        ("region_south".into(), [0.5, 0.5]),
                    ]
                    .into(),
                },
            ],
        }
    }

    #[test]
    fn features_trace_back_to_one_raw_column_each() {
        let features = vec!["age".to_owned(), "region_south".to_owned()];
        let p = chain().compile(&features).unwrap();
        let names: Vec<&str> = p.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["region", "age"],
            "id is not used, the label not an input"
        );
        assert_eq!(p.features[0].value(Cell::Number(60.0)), Ok(2.0));
        assert_eq!(
            p.features[0].value(Cell::Null),
            Ok(0.0),
            "filled, then scaled"
        );
        assert_eq!(p.features[1].value(Cell::Text("south")), Ok(1.0));
        assert_eq!(p.features[1].value(Cell::Text("north")), Ok(-1.0));
        assert_eq!(
            p.features[1].value(Cell::Null),
            Ok(-1.0),
            "filled with north"
        );
        assert_eq!(
            p.features[1].value(Cell::Text("west")),
            Ok(-1.0),
            "an unseen category is no category"
        );
        assert_eq!(
            p.features[0].value(Cell::Text("old")),
            Err(Problem::NotANumber("old".into()))
        );
        let err = chain().compile(&["tenure".to_owned()]).unwrap_err();
        assert!(err.contains("'tenure' was not selected"), "{err}");
    }

    #[test]
    fn a_table_becomes_its_matrix_and_its_failed_rows() {
        let p = chain()
            .compile(&["age".to_owned(), "region_south".to_owned()])
            .unwrap();
        let df = df!(
            "region" => [Some("south"), None, Some("north")],
            "age" => [Some("50"), Some("x"), None],
        )
        .unwrap();
        let (x, failed) = matrix(&df, &p.features).unwrap();
        assert_eq!(x.row(0).to_vec(), [1.0, 1.0]);
        assert_eq!(x.row(2).to_vec(), [0.0, -1.0]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[&1], "column 'age' holds 'x', not a number");
    }
}
