//! Data preparation: select columns, clean missing data, normalize, one-hot encode, split.

use crate::pipeline::{PipelineError, PipelineResult};
use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use super::StepIo;
use crate::ml::features;
use crate::ml::preprocessing::{Chain, Fill, Step};

fn err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Invalid(e.to_string())
}

/// The columns named in input `name`, each checked to exist; `None` when not given.
fn named_columns(
    io: &StepIo<'_>,
    df: &DataFrame,
    name: &str,
) -> PipelineResult<Option<Vec<String>>> {
    let names = io.list(name);
    if names.is_empty() {
        return Ok(None);
    }
    for column in &names {
        if df.column(column).is_err() {
            let all: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
            return Err(format!(
                "input '{name}': there is no column '{column}'; the table has {}",
                all.join(", ")
            )
            .into());
        }
    }
    Ok(Some(names))
}

fn series<'a>(df: &'a DataFrame, name: &str) -> &'a Series {
    df.column(name)
        .map(Column::as_materialized_series)
        .unwrap_or_else(|_| unreachable!("columns are checked before use"))
}

pub fn select_columns(io: &StepIo<'_>) -> PipelineResult<()> {
    let df = io.table("data")?;
    let columns = named_columns(io, &df, "columns")?
        .ok_or("input 'columns' is required: the column names, separated by commas")?;
    let mut out = df.select(columns.clone()).map_err(err)?;
    let mut chain = io.chain("data", &df)?;
    chain.steps.push(Step::SelectColumns { columns });
    io.write_prepared("data", &mut out, &chain)
}

const STRATEGIES: [&str; 5] = ["mean", "median", "mode", "constant", "drop_rows"];

pub fn clean_missing_data(io: &StepIo<'_>) -> PipelineResult<()> {
    let mut df = io.table("data")?;
    let mut chain = io.chain("data", &df)?;
    let strategy = io.value("strategy").unwrap_or("mean");
    if !STRATEGIES.contains(&strategy) {
        return Err(format!(
            "input 'strategy': '{strategy}' is not one of {}",
            STRATEGIES.join(", ")
        )
        .into());
    }
    let columns = named_columns(io, &df, "columns")?.unwrap_or_else(|| {
        df.get_column_names()
            .iter()
            .map(ToString::to_string)
            .collect()
    });
    if strategy == "drop_rows" {
        let before = df.height();
        let mut out = df.drop_nulls(Some(&columns)).map_err(err)?;
        io.say(&format!(
            "dropped {} of {before} rows with missing values",
            before - out.height()
        ));
        chain.steps.push(Step::CleanMissingData {
            fill: BTreeMap::new(),
            required: columns,
        });
        return io.write_prepared("data", &mut out, &chain);
    }
    // Every column's fill is kept, not only where this table lacks values: a row scored
    // later may lack any of them.
    let mut fills = BTreeMap::new();
    for name in &columns {
        let s = series(&df, name);
        let missing = s.null_count();
        let fill = match fill_for(io, strategy, name, s) {
            Ok(Some(fill)) => fill,
            Ok(None) => continue,
            // A constant that does not suit a column only matters where it is used.
            Err(_) if missing == 0 => continue,
            Err(e) => return Err(e),
        };
        fills.insert(name.clone(), fill.clone());
        if missing == 0 {
            continue;
        }
        let filled = fill_nulls(s, &fill)?;
        io.say(&format!(
            "{name}: filled {missing} missing with {}",
            match &fill {
                Fill::Number(v) => format!("{v}"),
                Fill::Text(t) => format!("'{t}'"),
            }
        ));
        df.with_column(filled.into_column()).map_err(err)?;
    }
    chain.steps.push(Step::CleanMissingData {
        fill: fills,
        required: Vec::new(),
    });
    io.write_prepared("data", &mut df, &chain)
}

/// What a missing value of column `name` becomes under `strategy` (not `drop_rows`); `None`
/// when there is nothing to fill with (every value missing).
fn fill_for(
    io: &StepIo<'_>,
    strategy: &str,
    name: &str,
    s: &Series,
) -> PipelineResult<Option<Fill>> {
    let numeric = s.dtype().is_primitive_numeric();
    Ok(Some(match strategy {
        "constant" => {
            let value = io
                .required("value")
                .map_err(|_| "the constant strategy needs input 'value'".to_owned())?;
            match (numeric, value.parse::<f64>()) {
                (true, Ok(v)) => Fill::Number(v),
                (true, Err(_)) => {
                    return Err(format!(
                        "column '{name}' holds numbers; '{value}' is not a number"
                    )
                    .into());
                }
                (false, _) => Fill::Text(value.to_owned()),
            }
        }
        "mean" | "median" if numeric => {
            let values = s.cast(&DataType::Float64).map_err(err)?;
            let values = values.f64().map_err(err)?;
            let centre = if strategy == "mean" {
                values.mean()
            } else {
                values.median()
            };
            match centre {
                Some(v) => Fill::Number(v),
                None => {
                    io.say(&format!("{name}: every value is missing; left as it is"));
                    return Ok(None);
                }
            }
        }
        _ => match mode(s)? {
            Some(m) if numeric => Fill::Number(m.parse().map_err(err)?),
            Some(m) => Fill::Text(m),
            None => return Ok(None),
        },
    }))
}

/// The most common value, as text.
fn mode(s: &Series) -> PipelineResult<Option<String>> {
    let text = s.cast(&DataType::String).map_err(err)?;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in text.str().map_err(err)?.iter().flatten() {
        *counts.entry(v).or_default() += 1;
    }
    Ok(counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(v, _)| v.to_owned()))
}

fn fill_nulls(s: &Series, fill: &Fill) -> PipelineResult<Series> {
    match fill {
        Fill::Number(v) => {
            let values = s.cast(&DataType::Float64).map_err(err)?;
            let filled = values
                .f64()
                .map_err(err)?
                .fill_null_with_values(*v)
                .map_err(err)?
                .into_series();
            // Integers stay integers when the fill is a whole number.
            if s.dtype().is_integer() && v.fract() == 0.0 {
                filled.cast(s.dtype()).map_err(err)
            } else {
                Ok(filled)
            }
        }
        Fill::Text(t) => {
            let text = s.cast(&DataType::String).map_err(err)?;
            let filled: StringChunked = text
                .str()
                .map_err(err)?
                .iter()
                .map(|v| Some(v.unwrap_or(t)))
                .collect();
            let filled = filled.with_name(s.name().clone()).into_series();
            // Back to the column's own type (a date, a boolean) when the fill reads as one.
            Ok(filled.strict_cast(s.dtype()).unwrap_or(filled))
        }
    }
}

/// Numeric (not boolean) columns, or those named, less those excluded.
fn numeric_columns(io: &StepIo<'_>, df: &DataFrame) -> PipelineResult<Vec<String>> {
    let exclude = io.list("exclude");
    let columns = match named_columns(io, df, "columns")? {
        Some(named) => named,
        None => df
            .columns()
            .iter()
            .filter(|c| c.dtype().is_primitive_numeric())
            .map(|c| c.name().to_string())
            .collect(),
    };
    Ok(columns
        .into_iter()
        .filter(|c| !exclude.contains(c))
        .collect())
}

pub fn normalize(io: &StepIo<'_>) -> PipelineResult<()> {
    let mut df = io.table("data")?;
    let mut chain = io.chain("data", &df)?;
    let mut scales = BTreeMap::new();
    let method = io.value("method").unwrap_or("zscore");
    for name in numeric_columns(io, &df)? {
        let s = series(&df, &name);
        if !s.dtype().is_primitive_numeric() {
            return Err(PipelineError::Invalid(format!(
                "column '{name}' holds {}, not numbers",
                s.dtype()
            )));
        }
        let values = s.cast(&DataType::Float64).map_err(err)?;
        let values = values.f64().map_err(err)?;
        let (shift, scale) = match method {
            "zscore" => (values.mean(), values.std(1)),
            "minmax" => (
                values.min(),
                values.max().zip(values.min()).map(|(a, b)| a - b),
            ),
            other => {
                return Err(
                    format!("input 'method': '{other}' is not one of zscore, minmax").into(),
                );
            }
        };
        let (shift, scale) = (shift.unwrap_or(0.0), scale.unwrap_or(1.0));
        let scale = if scale == 0.0 { 1.0 } else { scale };
        let scaled: Float64Chunked = values
            .iter()
            .map(|v| v.map(|v| (v - shift) / scale))
            .collect();
        io.say(&format!("{name}: (x − {shift:.4}) / {scale:.4}"));
        df.with_column(scaled.with_name(name.as_str().into()).into_column())
            .map_err(err)?;
        scales.insert(name, [shift, scale]);
    }
    chain.steps.push(Step::Normalize { scales });
    io.write_prepared("data", &mut df, &chain)
}

/// At most this many distinct values for a column to be encoded unless named.
const MAX_CATEGORIES: usize = 50;

pub fn one_hot_encode(io: &StepIo<'_>) -> PipelineResult<()> {
    let df = io.table("data")?;
    let mut chain = io.chain("data", &df)?;
    let mut encoded = BTreeMap::new();
    let exclude = io.list("exclude");
    let named = named_columns(io, &df, "columns")?;
    let mut out: Vec<Column> = Vec::new();
    for column in df.columns() {
        let name = column.name().to_string();
        let text = matches!(column.dtype(), DataType::String);
        let chosen = match &named {
            Some(named) => named.contains(&name),
            None => text && !exclude.contains(&name),
        };
        if !chosen {
            out.push(column.clone());
            continue;
        }
        let values = features::texts_or_null(&df, &name)?;
        let mut categories: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
        categories.sort_unstable();
        categories.dedup();
        if named.is_none() && categories.len() > MAX_CATEGORIES {
            io.say(&format!(
                "{name}: left as it is ({} distinct values; name it in 'columns' to encode it anyway)",
                categories.len()
            ));
            out.push(column.clone());
            continue;
        }
        io.say(&format!("{name}: {} columns", categories.len()));
        for category in &categories {
            let flags: Vec<i32> = values
                .iter()
                .map(|v| i32::from(v.as_deref() == Some(*category)))
                .collect();
            out.push(Column::new(format!("{name}_{category}").into(), flags));
        }
        encoded.insert(name, categories.into_iter().map(str::to_owned).collect());
    }
    let mut out = DataFrame::new(df.height(), out).map_err(err)?;
    chain.steps.push(Step::OneHotEncode {
        categories: encoded,
    });
    io.write_prepared("data", &mut out, &chain)
}

pub fn split_data(io: &StepIo<'_>) -> PipelineResult<()> {
    let df = io.table("data")?;
    let fraction = io.number("fraction")?.unwrap_or(0.8);
    let seed = io.number("seed")?.unwrap_or(42.0) as u64;
    let stratify = io.value("stratify");
    let (train, test) = split_rows(&df, fraction, seed, stratify)?;
    let mut train = df.take(&train).map_err(err)?;
    let mut test = df.take(&test).map_err(err)?;
    // Both parts were prepared as the whole table was.
    match Chain::read(&io.data("data")?.path)? {
        Some(chain) => {
            io.write_prepared("train", &mut train, &chain)?;
            io.write_prepared("test", &mut test, &chain)
        }
        None => {
            io.write_table("train", &mut train)?;
            io.write_table("test", &mut test)
        }
    }
}

/// Row indices for a random split (by class of `stratify` when given), each part in row order.
pub fn split_rows(
    df: &DataFrame,
    fraction: f64,
    seed: u64,
    stratify: Option<&str>,
) -> PipelineResult<(IdxCa, IdxCa)> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(PipelineError::Invalid(format!(
            "fraction {fraction} must be between 0 and 1"
        )));
    }
    let mut groups: Vec<Vec<IdxSize>> = match stratify {
        None => vec![(0..df.height() as IdxSize).collect()],
        Some(column) => {
            let values = features::texts(df, column)?;
            let mut by_class: HashMap<&str, Vec<IdxSize>> = HashMap::new();
            for (i, v) in values.iter().enumerate() {
                by_class.entry(v).or_default().push(i as IdxSize);
            }
            let mut groups: Vec<(&str, Vec<IdxSize>)> = by_class.into_iter().collect();
            groups.sort_by(|a, b| a.0.cmp(b.0));
            groups.into_iter().map(|(_, g)| g).collect()
        }
    };
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for group in &mut groups {
        for i in (1..group.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            group.swap(i, j);
        }
        let cut = (group.len() as f64 * fraction).round() as usize;
        train.extend_from_slice(&group[..cut]);
        test.extend_from_slice(&group[cut..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((
        IdxCa::from_vec("train".into(), train),
        IdxCa::from_vec("test".into(), test),
    ))
}
