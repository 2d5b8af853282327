//! Two tables compared feature by feature — a reference (the training data, an earlier
//! window) and the current data (a data asset version, a window of an endpoint's collected
//! inputs or outputs): each feature's drift metrics, its data quality, and both
//! distributions for drawing them.
//!
//! Definitions (`docs/monitoring.md` has them with their sources):
//! - a feature is numerical when the reference column is floating point, categorical when it
//!   is text, boolean or a date; an integer column is categorical when it has fewer distinct
//!   values than 5% of its rows, as Azure ML decides (`df_utils.py`), unless overridden;
//! - nulls and NaN are left out of drift, column by column (Azure ML drops a row when any
//!   feature is null, which lets one sparse column blind every other; Evidently drops by
//!   column, as here); so are infinities, which fall outside every bin;
//! - numerical features: bins and metrics of [`stats`], KS of [`ks`];
//! - categorical features: a category is a value's text; categories are the union of both
//!   sides', the reference's most frequent first;
//! - data quality over the current data's rows: nulls (and NaN), values that do not read as
//!   the reference's type (a number for a numerical feature), values outside the reference's
//!   range or categories (an infinity is outside), each as a share of all current rows.

use std::collections::BTreeMap;

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::tables::Table;
use super::{FeatureType, Metric, MonitorError, ks, stats};
use crate::Result;

/// Columns collection adds beside a model's inputs and outputs: never features.
pub const BOOKKEEPING: [&str; 4] = ["request_id", "row", "timestamp_ms", "latency_ms"];

/// Values held in memory at once while comparing (a column pair at a time, a few pairs
/// together): bounds memory on wide tables of many rows.
const VALUES_IN_FLIGHT: usize = 8 << 20;

/// What to compare.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The features, in order; `None` compares every column both tables have.
    pub features: Option<Vec<String>>,
    /// Feature types that replace the inferred ones (Azure ML's `feature_type_override`).
    pub types: BTreeMap<String, FeatureType>,
    /// A feature's column in the reference when it is named otherwise there (a prediction
    /// compared with the training data's label column).
    pub reference_columns: BTreeMap<String, String>,
    /// Columns never compared (the reference's label, when features are not named).
    pub exclude: Vec<String>,
    /// Reference columns already prepared (sorted, counted) by earlier comparisons against
    /// the same reference: a backtest compares many windows with one reference.
    pub cache: Option<std::sync::Arc<ReferenceCache>>,
}

/// What a comparison needs of a reference column: its type, its finite values sorted (a
/// numerical feature) or its categories counted (a categorical one).
#[derive(Debug)]
pub struct Prepared {
    dtype: DataType,
    feature_type: FeatureType,
    rows: u64,
    sorted: Vec<f64>,
    counts: PlHashMap<String, u64>,
}

/// A prepared column's key: the reference table's [`Table::key`], the column, the type
/// override.
type PreparedKey = (String, String, Option<FeatureType>);

/// Prepared reference columns.
#[derive(Debug, Default)]
pub struct ReferenceCache(std::sync::Mutex<PlHashMap<PreparedKey, std::sync::Arc<Prepared>>>);

impl ReferenceCache {
    fn get(&self, key: &PreparedKey) -> Option<std::sync::Arc<Prepared>> {
        self.0.lock().ok()?.get(key).cloned()
    }

    fn put(&self, key: PreparedKey, prepared: std::sync::Arc<Prepared>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, prepared);
        }
    }
}

/// Both sides' distribution of one feature, in counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Distribution {
    /// Bins of a numerical feature: `edges.len() - 1` counts per side.
    Histogram {
        edges: Vec<f64>,
        reference: Vec<u64>,
        current: Vec<u64>,
    },
    /// A categorical feature's categories, the reference's most frequent first.
    Categories {
        categories: Vec<String>,
        reference: Vec<u64>,
        current: Vec<u64>,
    },
}

/// One feature compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub feature_type: FeatureType,
    /// The columns' polars types (`f64`, `str`, …).
    pub reference_type: String,
    pub current_type: String,
    /// Values compared on each side (nulls, NaN and infinities left out).
    pub reference_values: u64,
    pub current_values: u64,
    /// The drift metrics of [`Metric::drift_metrics`]; empty when `problem` says why. In
    /// JSON an infinite value (the chi-squared statistic of an unseen category) is `"inf"`.
    pub drift: Values,
    /// The data quality metrics, always.
    pub quality: Values,
    pub distribution: Option<Distribution>,
    /// Why drift could not be computed (a side with no values).
    pub problem: Option<String>,
}

/// Metric values by metric. In JSON a value that is not finite (the chi-squared statistic of
/// an unseen category) is the text `"inf"`, `"-inf"` or `"NaN"` — JSON has no such numbers,
/// and serde_json would write `null` — and is read back from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values(pub BTreeMap<Metric, f64>);

impl std::ops::Deref for Values {
    type Target = BTreeMap<Metric, f64>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Values {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Serialize for Values {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut out = s.serialize_map(Some(self.0.len()))?;
        for (metric, &value) in &self.0 {
            if value.is_finite() {
                out.serialize_entry(metric, &value)?;
            } else {
                out.serialize_entry(metric, &value.to_string())?;
            }
        }
        out.end()
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Number {
            Finite(f64),
            Text(String),
        }
        let map = BTreeMap::<Metric, Number>::deserialize(d)?;
        map.into_iter()
            .map(|(m, n)| match n {
                Number::Finite(x) => Ok((m, x)),
                Number::Text(t) => t
                    .parse::<f64>()
                    .map(|x| (m, x))
                    .map_err(|_| serde::de::Error::custom(format!("'{t}' is not a number"))),
            })
            .collect::<std::result::Result<BTreeMap<_, _>, _>>()
            .map(Values)
    }
}

/// A comparison of two tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub reference: String,
    pub current: String,
    pub reference_rows: u64,
    pub current_rows: u64,
    pub features: Vec<Feature>,
    /// Columns only one side has, when the features were not named.
    pub only_in_reference: Vec<String>,
    pub only_in_current: Vec<String>,
}

/// Compares `current` with `reference`, feature by feature, a few columns at a time.
///
/// # Errors
/// A table cannot be read; a named feature is missing from either side
/// ([`MonitorError::MissingColumn`]); a side has no rows ([`MonitorError::Empty`]); no
/// column is shared ([`MonitorError::NothingInCommon`]).
pub fn compare(reference: &Table, current: &Table, options: &Options) -> Result<Comparison> {
    let (ref_schema, cur_schema) = (reference.schema()?, current.schema()?);
    let names = |s: &Schema| {
        s.iter_names()
            .map(polars::prelude::PlSmallStr::to_string)
            .collect::<Vec<_>>()
    };
    let (ref_names, cur_names) = (names(&ref_schema), names(&cur_schema));
    let in_reference = |f: &String| options.reference_columns.get(f).unwrap_or(f).clone();
    let features: Vec<String> = match &options.features {
        Some(named) => {
            for name in named {
                for (side, have, column) in [
                    ("reference", &ref_names, in_reference(name)),
                    ("current", &cur_names, name.clone()),
                ] {
                    if !have.contains(&column) {
                        return Err(MonitorError::MissingColumn {
                            column,
                            side,
                            available: have.join(", "),
                        }
                        .into());
                    }
                }
            }
            named.clone()
        }
        None => ref_names
            .iter()
            .filter(|n| {
                cur_names.contains(n)
                    && !BOOKKEEPING.contains(&n.as_str())
                    && !options.exclude.contains(n)
            })
            .cloned()
            .collect(),
    };
    if features.is_empty() {
        return Err(MonitorError::NothingInCommon.into());
    }
    let (only_in_reference, only_in_current) = if options.features.is_some() {
        (Vec::new(), Vec::new())
    } else {
        let only = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter()
                .filter(|n| !b.contains(n) && !BOOKKEEPING.contains(&n.as_str()))
                .cloned()
                .collect()
        };
        (only(&ref_names, &cur_names), only(&cur_names, &ref_names))
    };

    let mut compared = Vec::with_capacity(features.len());
    let mut rows = (0u64, 0u64);
    // One column per thread to start with, until the row counts size the groups.
    let mut group = rayon::current_num_threads().max(1);
    let mut start = 0;
    while start < features.len() {
        let names = &features[start..(start + group).min(features.len())];
        let mapped: Vec<String> = names.iter().map(in_reference).collect();
        let keys: Vec<_> = names
            .iter()
            .zip(&mapped)
            .map(|(n, m)| (reference.key(), m.clone(), options.types.get(n).copied()))
            .collect();
        let cached: Option<Vec<_>> = options
            .cache
            .as_ref()
            .and_then(|cache| keys.iter().map(|k| cache.get(k)).collect());
        let c = current.columns(names)?;
        let prepared = match cached {
            Some(prepared) => prepared,
            None => {
                let r = reference.columns(&mapped)?;
                let prepared: Vec<std::sync::Arc<Prepared>> = r
                    .columns()
                    .par_iter()
                    .zip(&keys)
                    .map(|(column, key)| std::sync::Arc::new(prepare(column, key.2)))
                    .collect();
                if let Some(cache) = &options.cache {
                    for (key, p) in keys.iter().zip(&prepared) {
                        cache.put(key.clone(), std::sync::Arc::clone(p));
                    }
                }
                prepared
            }
        };
        rows = (prepared.first().map_or(0, |p| p.rows), c.height() as u64);
        for (side, n) in [("reference", rows.0), ("current", rows.1)] {
            if n == 0 {
                return Err(MonitorError::Empty { side }.into());
            }
        }
        let pairs: Vec<(&std::sync::Arc<Prepared>, &Column)> =
            prepared.iter().zip(c.columns()).collect();
        let mut done: Vec<Feature> = pairs.into_par_iter().map(|(r, c)| feature(r, c)).collect();
        compared.append(&mut done);
        start += names.len();
        group = (VALUES_IN_FLIGHT / (rows.0 as usize + c.height()).max(1)).clamp(1, 64);
    }
    Ok(Comparison {
        reference: reference.label.clone(),
        current: current.label.clone(),
        reference_rows: rows.0,
        current_rows: rows.1,
        features: compared,
        only_in_reference,
        only_in_current,
    })
}

/// The type a feature is compared as, from the reference column: Azure ML's rule.
fn infer_type(reference: &Column) -> FeatureType {
    let dtype = reference.dtype();
    if dtype.is_float() {
        FeatureType::Numerical
    } else if dtype.is_integer() {
        let rows = reference.len() - reference.null_count();
        let distinct = reference.drop_nulls().n_unique().unwrap_or(rows);
        if (distinct as f64) < 0.05 * rows as f64 {
            FeatureType::Categorical
        } else {
            FeatureType::Numerical
        }
    } else {
        FeatureType::Categorical
    }
}

/// Prepares a reference column for comparisons: its type (`typed`, else inferred), and its
/// sorted values or counted categories.
fn prepare(reference: &Column, typed: Option<FeatureType>) -> Prepared {
    let feature_type = typed.unwrap_or_else(|| infer_type(reference));
    let (sorted, counts) = match feature_type {
        FeatureType::Numerical => (sorted_finite(&as_numbers(reference).0), PlHashMap::new()),
        FeatureType::Categorical => (Vec::new(), category_counts(reference)),
    };
    Prepared {
        dtype: reference.dtype().clone(),
        feature_type,
        rows: reference.len() as u64,
        sorted,
        counts,
    }
}

fn feature(reference: &Prepared, current: &Column) -> Feature {
    let feature_type = reference.feature_type;
    let mut out = Feature {
        name: current.name().to_string(),
        feature_type,
        reference_type: reference.dtype.to_string(),
        current_type: current.dtype().to_string(),
        reference_values: 0,
        current_values: 0,
        drift: Values::default(),
        quality: Values::default(),
        distribution: None,
        problem: None,
    };
    let rows = current.len().max(1) as f64;
    let nulls = null_or_nan(current);
    out.quality
        .insert(Metric::NullValueRate, nulls as f64 / rows);
    let outcome = match feature_type {
        FeatureType::Numerical => numerical(reference, current, &mut out),
        FeatureType::Categorical => categorical(reference, current, &mut out),
    };
    if let Err(problem) = outcome {
        out.drift.clear();
        out.problem = Some(problem);
    }
    out
}

/// Nulls and NaN: what a data quality check counts as missing.
fn null_or_nan(column: &Column) -> usize {
    let nan = match column.dtype() {
        DataType::Float64 | DataType::Float32 => column
            .cast(&DataType::Float64)
            .ok()
            .and_then(|c| c.f64().ok().map(|ca| count_values(ca, f64::is_nan)))
            .unwrap_or(0),
        _ => 0,
    };
    column.null_count() + nan
}

/// The non-null values for which `test` holds.
fn count_values(values: &Float64Chunked, test: impl Fn(f64) -> bool) -> usize {
    let mut count = 0;
    each_value(values, |v| count += usize::from(test(v)));
    count
}

/// Calls `f` with each non-null value, reading a chunk without nulls as a plain slice.
fn each_value(values: &Float64Chunked, mut f: impl FnMut(f64)) {
    for chunk in values.downcast_iter() {
        match chunk.validity().filter(|v| v.unset_bits() > 0) {
            None => chunk.values().iter().for_each(|&v| f(v)),
            Some(_) => chunk.iter().flatten().for_each(|&v| f(v)),
        }
    }
}

/// A column's values as numbers (nulls where a value is not one), and how many non-null
/// values did not read as a number.
fn as_numbers(column: &Column) -> (Float64Chunked, usize) {
    let before = column.len() - column.null_count();
    let cast = column
        .cast(&DataType::Float64)
        .ok()
        .and_then(|c| c.f64().ok().cloned())
        .unwrap_or_else(|| Float64Chunked::full_null(column.name().clone(), column.len()));
    let after = cast.len() - cast.null_count();
    (cast, before.saturating_sub(after))
}

/// The finite values, sorted ascending.
fn sorted_finite(values: &Float64Chunked) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::with_capacity(values.len() - values.null_count());
    each_value(values, |v| {
        if v.is_finite() {
            out.push(v);
        }
    });
    // On a million normal values here: voracious 17 ms, pdqsort with `<` 27 ms, with
    // `total_cmp` 37 ms, radsort (an 11-bit LSD) slower still.
    voracious_radix_sort::RadixSort::voracious_sort(&mut out);
    out
}

fn numerical(
    reference: &Prepared,
    current: &Column,
    out: &mut Feature,
) -> std::result::Result<(), String> {
    let rows = current.len().max(1) as f64;
    let (cur_values, type_errors) = as_numbers(current);
    let r = &reference.sorted;
    let c = sorted_finite(&cur_values);
    out.reference_values = r.len() as u64;
    out.current_values = c.len() as u64;
    out.quality
        .insert(Metric::DataTypeErrorRate, type_errors as f64 / rows);
    if let (Some(&lo), Some(&hi)) = (r.first(), r.last()) {
        let infinite = count_values(&cur_values, f64::is_infinite);
        let outside = c.partition_point(|&v| v < lo) + (c.len() - c.partition_point(|&v| v <= hi));
        out.quality
            .insert(Metric::OutOfBoundsRate, (outside + infinite) as f64 / rows);
    }
    if r.is_empty() {
        return Err("the reference has no values (all null)".to_owned());
    }
    if c.is_empty() {
        return Err("the current data has no values (all null)".to_owned());
    }
    let edges = stats::bin_edges(r, &c).ok_or("no values")?;
    let (rc, cc) = (stats::bin_counts(r, &edges), stats::bin_counts(&c, &edges));
    shares(out, &rc, &cc);
    let (d, w) = stats::ecdf_distances(r, &c);
    out.drift.insert(
        Metric::NormalizedWassersteinDistance,
        stats::normalized_wasserstein(w, r),
    );
    // scipy's exact path reports D on the lattice of h / lcm(n1, n2), as the p-value reads it.
    let (d, p) = ks::statistic_and_p_value(r.len(), c.len(), d);
    out.drift.insert(Metric::KolmogorovSmirnovStatistic, d);
    out.drift.insert(Metric::TwoSampleKolmogorovSmirnovTest, p);
    out.distribution = Some(Distribution::Histogram {
        edges,
        reference: rc,
        current: cc,
    });
    Ok(())
}

/// The metrics of two distributions given as counts per bin or category: Jensen-Shannon
/// distance and PSI.
fn shares(out: &mut Feature, reference: &[u64], current: &[u64]) {
    let floats = |v: &[u64]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    out.drift.insert(
        Metric::JensenShannonDistance,
        stats::jensen_shannon(&floats(reference), &floats(current)),
    );
    out.drift.insert(
        Metric::PopulationStabilityIndex,
        stats::population_stability_index(reference, current),
    );
}

/// Counts of each value's text, nulls left out.
fn category_counts(column: &Column) -> PlHashMap<String, u64> {
    let mut counts: PlHashMap<String, u64> = PlHashMap::new();
    let text = column.cast(&DataType::String);
    if let Ok(Ok(ca)) = text.as_ref().map(|c| c.str()) {
        let mut borrowed: PlHashMap<&str, u64> = PlHashMap::new();
        for v in ca.iter().flatten() {
            *borrowed.entry(v).or_default() += 1;
        }
        counts.extend(borrowed.into_iter().map(|(k, v)| (k.to_owned(), v)));
    }
    counts
}

fn categorical(
    reference: &Prepared,
    current: &Column,
    out: &mut Feature,
) -> std::result::Result<(), String> {
    let rows = current.len().max(1) as f64;
    // A value that does not read as the reference's type is a type error (and is left out).
    let (current, type_errors) =
        if &reference.dtype == current.dtype() || reference.dtype == DataType::String {
            (current.clone(), 0)
        } else {
            let cast = current.cast(&reference.dtype).unwrap_or_else(|_| {
                Column::full_null(current.name().clone(), current.len(), &reference.dtype)
            });
            let lost = cast.null_count().saturating_sub(current.null_count());
            (cast, lost)
        };
    out.quality
        .insert(Metric::DataTypeErrorRate, type_errors as f64 / rows);
    let (ref_counts, cur_counts) = (&reference.counts, category_counts(&current));
    out.reference_values = ref_counts.values().sum();
    out.current_values = cur_counts.values().sum();
    if !ref_counts.is_empty() {
        let unseen: u64 = cur_counts
            .iter()
            .filter(|(k, _)| !ref_counts.contains_key(*k))
            .map(|(_, v)| v)
            .sum();
        out.quality
            .insert(Metric::OutOfBoundsRate, unseen as f64 / rows);
    }
    if ref_counts.is_empty() {
        return Err("the reference has no values (all null)".to_owned());
    }
    if cur_counts.is_empty() {
        return Err("the current data has no values (all null)".to_owned());
    }
    let by_count = |m: &PlHashMap<String, u64>| {
        let mut v: Vec<(&String, &u64)> = m.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    };
    let mut categories = by_count(ref_counts);
    categories.extend(
        by_count(&cur_counts)
            .into_iter()
            .filter(|k| !ref_counts.contains_key(k)),
    );
    let count = |m: &PlHashMap<String, u64>| {
        categories
            .iter()
            .map(|k| m.get(k).copied().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    let (rc, cc) = (count(ref_counts), count(&cur_counts));
    shares(out, &rc, &cc);
    let (chi, p) = stats::chi_squared(&rc, &cc);
    out.drift.insert(Metric::ChiSquaredStatistic, chi);
    out.drift.insert(Metric::PearsonsChiSquaredTest, p);
    out.drift
        .insert(Metric::ChebyshevDistance, stats::chebyshev(&rc, &cc));
    out.distribution = Some(Distribution::Categories {
        categories,
        reference: rc,
        current: cc,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(dir: &std::path::Path, name: &str, text: &str) -> Table {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Table::file(&path).unwrap()
    }

    /// The radix sort orders every kind of finite double as `<` does, and drops the rest.
    #[test]
    fn finite_values_are_sorted_as_numbers() {
        let mut state = 7u64;
        let mut values: Vec<Option<f64>> = (0..100_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let bits = state >> 11;
                Some(match i % 5 {
                    0 => f64::from_bits(state),
                    1 => (bits % 17) as f64 - 8.0,
                    2 => (bits as f64 / (1u64 << 53) as f64 - 0.5) * 1e-300,
                    _ => (bits as f64 / (1u64 << 53) as f64 - 0.5) * 10.0,
                })
            })
            .collect();
        values.extend([
            None,
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(-0.0),
            Some(0.0),
            Some(f64::MIN_POSITIVE / 4.0),
            Some(f64::MAX),
            Some(f64::MIN),
        ]);
        let sorted = sorted_finite(&Float64Chunked::from_iter_options(
            "v".into(),
            values.iter().copied(),
        ));
        let mut expected: Vec<f64> = values
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite())
            .collect();
        expected.sort_unstable_by(f64::total_cmp);
        assert_eq!(sorted.len(), expected.len());
        assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
        assert!(sorted.iter().zip(&expected).all(|(a, b)| a == b));
    }

    #[test]
    fn features_are_typed_and_compared() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = String::from("x,k,n,id\n");
        let mut b = String::from("x,k,n,id\n");
        for i in 0..400 {
            a.push_str(&format!(
                "{},{},{},{i}\n",
                i as f64 / 10.0,
                ["a", "b"][i % 2],
                i % 3
            ));
            b.push_str(&format!(
                "{},{},{},{i}\n",
                i as f64 / 10.0 + 10.0,
                ["a", "c"][i % 2],
                i % 3
            ));
        }
        b.push_str(",a,7,400\n");
        let r = table(dir.path(), "r.csv", &a);
        let c = table(dir.path(), "c.csv", &b);
        let cmp = compare(&r, &c, &Options::default()).unwrap();
        let get = |n: &str| cmp.features.iter().find(|f| f.name == n).unwrap();
        let x = get("x");
        assert_eq!(x.feature_type, FeatureType::Numerical);
        assert_eq!((x.reference_values, x.current_values), (400, 400));
        assert!(x.drift[&Metric::TwoSampleKolmogorovSmirnovTest] < 1e-3);
        assert!((x.quality[&Metric::NullValueRate] - 1.0 / 401.0).abs() < 1e-15);
        // 10.0..49.9 against a reference of 0..39.9: values above 39.9 are out of bounds.
        assert!((x.quality[&Metric::OutOfBoundsRate] - 100.0 / 401.0).abs() < 1e-15);
        let k = get("k");
        assert_eq!(k.feature_type, FeatureType::Categorical);
        assert_eq!(k.drift[&Metric::PearsonsChiSquaredTest], 0.0);
        assert!((k.quality[&Metric::OutOfBoundsRate] - 200.0 / 401.0).abs() < 1e-15);
        // Three values in 400 rows: categorical by Azure ML's rule; 7 was never seen.
        let n = get("n");
        assert_eq!(n.feature_type, FeatureType::Categorical);
        assert_eq!(
            n.distribution,
            Some(Distribution::Categories {
                categories: vec!["0".into(), "1".into(), "2".into(), "7".into()],
                reference: vec![134, 133, 133, 0],
                current: vec![134, 133, 133, 1],
            })
        );
        assert_eq!(get("id").feature_type, FeatureType::Numerical);
    }

    #[test]
    fn missing_columns_and_empty_sides_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let r = table(dir.path(), "r.csv", "a,b\n1,2\n");
        let c = table(dir.path(), "c.csv", "a,z\n,2\n");
        let options = Options {
            features: Some(vec!["b".into()]),
            ..Options::default()
        };
        let e = compare(&r, &c, &options).unwrap_err().to_string();
        assert!(e.contains("column 'b' is not in the current data"), "{e}");
        let cmp = compare(&r, &c, &Options::default()).unwrap();
        assert_eq!(
            (cmp.only_in_reference.clone(), cmp.only_in_current.clone()),
            (vec!["b".to_owned()], vec!["z".to_owned()])
        );
        let a = &cmp.features[0];
        assert_eq!(
            a.problem.as_deref(),
            Some("the current data has no values (all null)")
        );
        assert!(a.drift.is_empty());
        assert_eq!(a.quality[&Metric::NullValueRate], 1.0);
    }
}
