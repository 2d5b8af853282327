//! EDA profiles of table versions, computed with polars and cached in the workspace: per column
//! its type, counts, nulls, distinct values, summary statistics, top values and a histogram.

use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::assets::{AssetKind, AssetVersion};
use crate::jobs::Progress;
use crate::table;
use crate::workspace::Workspace;
use crate::{Error, Result};

/// Bump when [`TableProfile`] changes shape or meaning; cached profiles of other formats are
/// recomputed.
pub const PROFILE_FORMAT: i64 = 1;
pub const QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];
const HISTOGRAM_BINS: usize = 20;
const TOP_VALUES: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProfile {
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    pub dtype: String,
    /// Non-null values.
    pub count: u64,
    pub null_count: u64,
    pub null_pct: f64,
    pub distinct: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericStats>,
    /// Smallest and largest value as text, for columns that are ordered but not numeric (dates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_values: Vec<(String, u64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    /// `(q, value)` for each of [`QUANTILES`].
    pub quantiles: Vec<(f64, f64)>,
}

/// Equal-width bins: `edges` has one more entry than `counts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// The profile of a table version: from the cache, or computed and cached.
pub fn profile_version(
    ws: &Workspace,
    version: &AssetVersion,
    progress: &Progress,
) -> Result<TableProfile> {
    if version.kind != AssetKind::Table {
        return Err(Error::WrongKind {
            name: version.asset_name.clone(),
            actual: version.kind.to_string(),
            expected: "table".to_owned(),
        });
    }
    if let Some(body) = ws.cached_profile(version.id, PROFILE_FORMAT)? {
        return Ok(serde_json::from_str(&body)?);
    }
    let df = load_table(ws, version)?;
    let profile = profile_frame(&df, progress)?;
    ws.store_profile(
        version.id,
        PROFILE_FORMAT,
        &serde_json::to_string(&profile)?,
    )?;
    Ok(profile)
}

/// Where a table version's file is, and its format.
///
/// # Errors
/// The version is not a table, or its blob is missing.
pub fn table_file(
    ws: &Workspace,
    version: &AssetVersion,
) -> Result<(std::path::PathBuf, table::TableFormat)> {
    let (Some(blob), Some(format)) = (&version.meta.blob, version.meta.format) else {
        return Err(Error::WrongKind {
            name: version.asset_name.clone(),
            actual: version.kind.to_string(),
            expected: "table".to_owned(),
        });
    };
    if !ws.blobs().contains(blob) {
        return Err(Error::MissingBlob { hash: blob.clone() });
    }
    Ok((ws.blobs().path(blob), format))
}

/// Reads a table version back from its blob.
pub fn load_table(ws: &Workspace, version: &AssetVersion) -> Result<DataFrame> {
    let (path, format) = table_file(ws, version)?;
    table::read(&path, Path::new(&version.source), format)
}

pub fn profile_frame(df: &DataFrame, progress: &Progress) -> Result<TableProfile> {
    progress.start_stage("profiling", df.width() as u64);
    let columns = df
        .columns()
        .iter()
        .map(|column| {
            progress.check()?;
            let profile = profile_column(column.as_materialized_series());
            progress.advance(1);
            profile
        })
        .collect::<Result<_>>()?;
    Ok(TableProfile {
        rows: df.height() as u64,
        columns,
    })
}

fn profile_column(s: &Series) -> Result<ColumnProfile> {
    let len = s.len() as u64;
    let null_count = s.null_count() as u64;
    let dtype = s.dtype();
    let mut profile = ColumnProfile {
        name: s.name().to_string(),
        dtype: dtype.to_string(),
        count: len - null_count,
        null_count,
        null_pct: if len == 0 {
            0.0
        } else {
            100.0 * null_count as f64 / len as f64
        },
        distinct: s.drop_nulls().n_unique()? as u64,
        numeric: None,
        range: None,
        top_values: Vec::new(),
        histogram: None,
    };
    if profile.count == 0 {
        return Ok(profile);
    }
    if dtype.is_primitive_numeric() {
        let values = s.cast(&DataType::Float64)?;
        let values = values.f64()?;
        let (Some(min), Some(max)) = (values.min(), values.max()) else {
            return Ok(profile);
        };
        let quantiles = values.quantiles(&QUANTILES, QuantileMethod::Linear)?;
        profile.numeric = Some(NumericStats {
            min,
            max,
            mean: values.mean().unwrap_or(f64::NAN),
            std: values.std(1).unwrap_or(0.0),
            quantiles: QUANTILES
                .iter()
                .zip(quantiles)
                .map(|(q, v)| (*q, v.unwrap_or(f64::NAN)))
                .collect(),
        });
        profile.histogram = Some(histogram(values, min, max));
    } else if dtype.is_temporal() {
        let text = |v: Scalar| table::cell_text(v.value()).unwrap_or_default();
        profile.range = Some((text(s.min_reduce()?), text(s.max_reduce()?)));
    }
    if !dtype.is_primitive_numeric() || profile.distinct <= TOP_VALUES as u64 {
        profile.top_values = top_values(s)?;
    }
    Ok(profile)
}

fn top_values(s: &Series) -> Result<Vec<(String, u64)>> {
    let counts = s
        .drop_nulls()
        .value_counts(true, true, "count".into(), false)?;
    let values = counts.column(s.name())?.as_materialized_series().clone();
    let tallies = counts.column("count")?.cast(&DataType::UInt64)?;
    let tallies = tallies.u64()?;
    Ok((0..counts.height().min(TOP_VALUES))
        .filter_map(|i| {
            let value = values.get(i).ok().and_then(|v| table::cell_text(&v))?;
            Some((value, tallies.get(i)?))
        })
        .collect())
}

fn histogram(values: &Float64Chunked, min: f64, max: f64) -> Histogram {
    let bins = if min == max { 1 } else { HISTOGRAM_BINS };
    let width = if min == max {
        1.0
    } else {
        (max - min) / bins as f64
    };
    let mut counts = vec![0u64; bins];
    for v in values.iter().flatten().filter(|v| v.is_finite()) {
        let bin = (((v - min) / width) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    let edges = (0..=bins).map(|i| min + width * i as f64).collect();
    Histogram { edges, counts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_numbers_strings_and_nulls() {
        let df = df! {
            "x" => [Some(1.0), Some(2.0), Some(3.0), None, Some(4.0)],
            "s" => [Some("a"), Some("b"), Some("a"), Some("a"), None],
        }
        .unwrap();
        let p = profile_frame(&df, &Progress::default()).unwrap();
        assert_eq!(p.rows, 5);
        let x = &p.columns[0];
        assert_eq!((x.count, x.null_count, x.distinct), (4, 1, 4));
        assert!((x.null_pct - 20.0).abs() < 1e-9);
        let n = x.numeric.as_ref().unwrap();
        assert_eq!((n.min, n.max, n.mean), (1.0, 4.0, 2.5));
        assert!((n.std - 1.290_994).abs() < 1e-5, "{}", n.std);
        assert_eq!(n.quantiles[2], (0.5, 2.5));
        let h = x.histogram.as_ref().unwrap();
        assert_eq!(h.counts.iter().sum::<u64>(), 4);
        assert_eq!((h.edges[0], *h.edges.last().unwrap()), (1.0, 4.0));
        let s = &p.columns[1];
        assert_eq!(s.top_values, vec![("a".to_owned(), 3), ("b".to_owned(), 1)]);
        assert_eq!(s.distinct, 2);
    }

    #[test]
    fn an_all_null_column_has_counts_only() {
        let df = df! { "x" => [None::<f64>, None] }.unwrap();
        let p = profile_frame(&df, &Progress::default()).unwrap();
        assert_eq!((p.columns[0].count, p.columns[0].null_count), (0, 2));
        assert!(p.columns[0].numeric.is_none());
    }
}
