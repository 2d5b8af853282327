//! Scoring a table (a batch job's mini batch) rather than a request: the model's inputs read
//! from typed columns, the answers given back as typed columns, and a row that cannot be
//! scored reported by its index instead of failing the rest.

use polars::prelude::*;
use serde_json::Value;

use super::{Frame, Output, Runtime, ScoreError, Scorer, score_in_python};
use crate::ml::model::{Model, Predictions};
use crate::ml::preprocessing;

/// What a table's rows were given: the answer columns (as long as the table, null where a row
/// failed) and the rows that failed, each with why (indices into the table).
#[derive(Debug, Clone)]
pub struct TableScores {
    pub columns: Vec<Column>,
    pub failed: Vec<(usize, String)>,
}

/// A native model's inputs: the matrix of the rows that have every input (`kept`, indices
/// into the table) and the rows that do not, with the input each lacks.
struct Numbers {
    x: ndarray::Array2<f64>,
    kept: Vec<usize>,
    failed: Vec<(usize, String)>,
}

impl Scorer {
    /// Scores every row of `df`, which holds at least the model's inputs (other columns are
    /// passed over; a native model with preprocessing also takes rows already prepared as its
    /// training table was, see [`Model::plans_for`]). A native model scores the rows it can and reports the others, naming the
    /// column: a missing value, text that is not a number, NaN or infinity; a Python model
    /// scores the table as one request.
    ///
    /// # Errors
    /// [`ScoreError::BadRequest`] when the table cannot be scored at all (an input column
    /// missing or neither numbers nor text, a tensor model); a Python model's failure as
    /// [`Scorer::score`] gives it, so the caller can retry it or count its rows as failed.
    pub fn score_table(&self, df: &DataFrame) -> Result<TableScores, ScoreError> {
        match &self.runtime {
            Runtime::Onnx(model) => self.score_tensors(model, df),
            Runtime::Python(model) => {
                let frame = self.frame(df)?;
                let output = score_in_python(model, &frame)?;
                Ok(TableScores {
                    columns: self.output_columns(output, None, df.height())?,
                    failed: Vec::new(),
                })
            }
            Runtime::Native(model) => {
                let Numbers { x, kept, failed } = self.numbers(model, df)?;
                let output = match model.predict_matrix(&x).map_err(ScoreError::Model)? {
                    Predictions::Values(v) => Output::Numbers(v),
                    Predictions::Clusters(c) => {
                        Output::Integers(c.into_iter().map(i64::from).collect())
                    }
                    Predictions::Classes {
                        predicted,
                        positive,
                    } => Output::Labels {
                        labels: predicted.into_iter().map(super::label_value).collect(),
                        probability: positive,
                    },
                };
                let kept = (!failed.is_empty()).then_some(kept.as_slice());
                Ok(TableScores {
                    columns: self.output_columns(output, kept, df.height())?,
                    failed,
                })
            }
        }
    }

    /// A tensor model over a table whose columns are its inputs, one `[N, 1]` (or `[N]`)
    /// tensor each, as scikit-learn's converted pipelines take them; each output becomes a
    /// column of its name (`name[j]` for each value of a wider row). The rows stand or fall
    /// together: a tensor model reports no row on its own.
    fn score_tensors(
        &self,
        model: &super::tensors::OnnxModel,
        df: &DataFrame,
    ) -> Result<TableScores, ScoreError> {
        let rows = df.height();
        let mut given = Vec::with_capacity(model.inputs.len());
        for port in &model.inputs {
            let column = df.column(&port.name).map_err(|_| {
                ScoreError::bad(format!(
                    "{}:{} is a tensor model: a batch job gives each of its inputs ({}) the \
                     table's column of that name, and the table has no column '{}'",
                    self.model_name,
                    self.model_version,
                    model.input_names(),
                    port.name
                ))
            })?;
            let data: Vec<Value> = column
                .as_materialized_series()
                .iter()
                .map(|v| json_cell(&v))
                .collect();
            let shape = if port.shape.len() >= 2 {
                vec![rows, 1]
            } else {
                vec![rows]
            };
            given.push(super::tensors::Tensor {
                name: port.name.clone(),
                datatype: port.datatype.clone(),
                shape,
                data,
            });
        }
        if rows == 0 {
            return Ok(TableScores {
                columns: Vec::new(),
                failed: Vec::new(),
            });
        }
        let outputs = model.run(&given)?;
        let mut columns = Vec::new();
        for t in &outputs {
            let width = t.data.len() / rows;
            if width * rows != t.data.len() || t.shape.first() != Some(&rows) {
                return Err(ScoreError::Model(format!(
                    "output '{}' has shape {:?}, not a row per input row",
                    t.name, t.shape
                )));
            }
            for j in 0..width {
                let name = if width == 1 {
                    t.name.clone()
                } else {
                    format!("{}[{j}]", t.name)
                };
                let cells: Vec<Option<&Value>> =
                    (0..rows).map(|i| t.data.get(i * width + j)).collect();
                columns.push(crate::collection::column(&name, &cells));
            }
        }
        Ok(TableScores {
            columns,
            failed: Vec::new(),
        })
    }

    /// The native `model`'s feature matrix over `df`'s rows (through its preprocessing), see
    /// [`Numbers`].
    fn numbers(&self, model: &Model, df: &DataFrame) -> Result<Numbers, ScoreError> {
        let plans = model.plans_for(|name| df.column(name).is_ok());
        for plan in plans.iter() {
            self.input(df, &plan.source)?;
        }
        let (x, failed) = preprocessing::matrix(df, &plans).map_err(ScoreError::bad)?;
        if failed.is_empty() {
            return Ok(Numbers {
                x,
                kept: (0..df.height()).collect(),
                failed: Vec::new(),
            });
        }
        let kept: Vec<usize> = (0..df.height())
            .filter(|i| !failed.contains_key(i))
            .collect();
        Ok(Numbers {
            x: x.select(ndarray::Axis(0), &kept),
            kept,
            failed: failed.into_iter().collect(),
        })
    }

    fn input<'a>(&self, df: &'a DataFrame, name: &str) -> Result<&'a Column, ScoreError> {
        df.column(name).map_err(|_| {
            ScoreError::bad(format!(
                "column '{name}' is missing: the model takes {}",
                self.input_names().join(", ")
            ))
        })
    }

    /// The model's inputs (every column when its signature names none) as JSON cells.
    fn frame(&self, df: &DataFrame) -> Result<Frame, ScoreError> {
        let names: Vec<String> = if self.inputs.is_empty() {
            df.get_column_names()
                .into_iter()
                .map(ToString::to_string)
                .collect()
        } else {
            self.input_names()
        };
        let mut frame = Frame::default();
        for name in names {
            let column = self.input(df, &name)?.as_materialized_series();
            let cells = column.iter().map(|v| json_cell(&v)).collect();
            frame.push(name, cells)?;
        }
        if frame.names.is_empty() {
            frame.rows = df.height();
        }
        Ok(frame)
    }

    /// `output` as typed columns `rows` long; `kept` says which rows the answers are for
    /// (every row when `None`).
    fn output_columns(
        &self,
        output: Output,
        kept: Option<&[usize]>,
        rows: usize,
    ) -> Result<Vec<Column>, ScoreError> {
        let name = if self.output_kind().0 == "cluster" {
            "cluster"
        } else {
            "prediction"
        };
        let answered = match &output {
            Output::Numbers(v) => v.len(),
            Output::Integers(v) => v.len(),
            Output::Labels { labels, .. } => labels.len(),
        };
        if answered != kept.map_or(rows, <[usize]>::len) {
            return Err(ScoreError::Model(format!(
                "the model answered {answered} rows for {}",
                kept.map_or(rows, <[usize]>::len)
            )));
        }
        Ok(match output {
            Output::Numbers(v) => vec![spread::<Float64Type>(name, v, kept, rows)],
            Output::Integers(v) => vec![spread::<Int64Type>(name, v, kept, rows)],
            Output::Labels {
                labels,
                probability,
            } => {
                let mut columns = vec![label_column(name, &labels, kept, rows)];
                if let Some(p) = probability {
                    columns.push(spread::<Float64Type>("probability", p, kept, rows));
                }
                columns
            }
        })
    }
}

/// Values for the rows in `kept` (all rows when `None`), null elsewhere.
fn spread<T>(name: &str, values: Vec<T::Native>, kept: Option<&[usize]>, rows: usize) -> Column
where
    T: PolarsNumericType,
    ChunkedArray<T>: IntoColumn,
{
    let chunked: ChunkedArray<T> = match kept {
        None => ChunkedArray::from_vec(name.into(), values),
        Some(_) => {
            let full = place(values.into_iter().map(Some).collect(), kept, rows);
            ChunkedArray::from_iter_options(name.into(), full.into_iter())
        }
    };
    chunked.into_column()
}

/// `values` for the rows in `kept` (all rows when `None`), `None` elsewhere.
fn place<T: Clone>(values: Vec<Option<T>>, kept: Option<&[usize]>, rows: usize) -> Vec<Option<T>> {
    let Some(kept) = kept else {
        return values;
    };
    let mut full = vec![None; rows];
    for (&i, v) in kept.iter().zip(values) {
        full[i] = v;
    }
    full
}

/// Class labels as a column of their own kind: integers, booleans, else text.
fn label_column(name: &str, labels: &[Value], kept: Option<&[usize]>, rows: usize) -> Column {
    if labels.iter().all(Value::is_i64) {
        let values = labels.iter().map(Value::as_i64).collect();
        return Column::new(name.into(), place(values, kept, rows));
    }
    if labels.iter().all(Value::is_boolean) {
        let values = labels.iter().map(Value::as_bool).collect();
        return Column::new(name.into(), place(values, kept, rows));
    }
    let values = labels
        .iter()
        .map(|l| {
            Some(match l {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
        .collect();
    Column::new(name.into(), place(values, kept, rows))
}

/// A table cell as the JSON a request would carry.
fn json_cell(value: &AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::Int8(_)
        | AnyValue::Int16(_)
        | AnyValue::Int32(_)
        | AnyValue::Int64(_)
        | AnyValue::UInt8(_)
        | AnyValue::UInt16(_)
        | AnyValue::UInt32(_)
        | AnyValue::UInt64(_) => value.extract::<i64>().map_or(Value::Null, Value::from),
        AnyValue::Float32(_) | AnyValue::Float64(_) => value
            .extract::<f64>()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        other => crate::table::cell_text(other).map_or(Value::Null, Value::String),
    }
}
