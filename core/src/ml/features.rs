//! From a table to what a learner takes: a matrix of numbers, class labels, numeric targets.

use ndarray::{Array1, Array2};
use polars::prelude::*;

fn series<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Series, String> {
    df.column(name)
        .map(Column::as_materialized_series)
        .map_err(|_| {
            format!(
                "there is no column '{name}'; the table has {}",
                column_list(df)
            )
        })
}

fn column_list(df: &DataFrame) -> String {
    df.get_column_names()
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column holds numbers or booleans, which a model can take as they are.
pub fn is_numeric(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric() || dtype.is_bool()
}

/// The columns to learn from: those given, or else every numeric column but the label. Also
/// returns the text columns left out, so the step can say why.
pub fn feature_columns(
    df: &DataFrame,
    given: &[String],
    label: Option<&str>,
) -> Result<(Vec<String>, Vec<String>), String> {
    if !given.is_empty() {
        for name in given {
            series(df, name)?;
        }
        return Ok((given.to_vec(), Vec::new()));
    }
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    for column in df.columns() {
        let name = column.name().to_string();
        if Some(name.as_str()) == label {
            continue;
        }
        if is_numeric(column.dtype()) {
            used.push(name);
        } else {
            skipped.push(name);
        }
    }
    if used.is_empty() {
        return Err(format!(
            "no numeric columns to learn from (text columns: {}); one-hot encode them first",
            skipped.join(", ")
        ));
    }
    Ok((used, skipped))
}

/// The named columns as a rows × columns matrix. Text and missing values are refused by name.
pub fn matrix(df: &DataFrame, columns: &[String]) -> Result<Array2<f64>, String> {
    let mut out = Array2::zeros((df.height(), columns.len()));
    for (j, name) in columns.iter().enumerate() {
        let values = numbers(df, name)?;
        for (i, v) in values.into_iter().enumerate() {
            out[[i, j]] = v;
        }
    }
    Ok(out)
}

/// A numeric column's values; text or missing values are an error naming the column.
pub fn numbers(df: &DataFrame, name: &str) -> Result<Vec<f64>, String> {
    let series = series(df, name)?;
    if !is_numeric(series.dtype()) {
        return Err(format!(
            "column '{name}' holds {}, not numbers; one-hot encode it or leave it out",
            series.dtype()
        ));
    }
    if series.null_count() > 0 {
        return Err(format!(
            "column '{name}' has {} missing values; clean missing data first",
            series.null_count()
        ));
    }
    let cast = series
        .cast(&DataType::Float64)
        .map_err(|e| format!("column '{name}': {e}"))?;
    let values = cast.f64().map_err(|e| format!("column '{name}': {e}"))?;
    Ok(values.into_no_null_iter().collect())
}

/// A column as text, one value per row; missing values are an error naming the column.
pub fn texts(df: &DataFrame, name: &str) -> Result<Vec<String>, String> {
    let series = series(df, name)?;
    if series.null_count() > 0 {
        return Err(format!(
            "column '{name}' has {} missing values; clean missing data first",
            series.null_count()
        ));
    }
    let cast = series
        .cast(&DataType::String)
        .map_err(|e| format!("column '{name}': {e}"))?;
    let values = cast.str().map_err(|e| format!("column '{name}': {e}"))?;
    Ok(values
        .iter()
        .map(|v| v.unwrap_or_default().to_owned())
        .collect())
}

/// A column as text, one value per row, missing values as `None`.
pub fn texts_or_null(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, String> {
    let cast = series(df, name)?
        .cast(&DataType::String)
        .map_err(|e| format!("column '{name}': {e}"))?;
    let values = cast.str().map_err(|e| format!("column '{name}': {e}"))?;
    Ok(values.iter().map(|v| v.map(str::to_owned)).collect())
}

/// Class labels: the sorted distinct values, and each row's index into them.
pub fn classes(df: &DataFrame, label: &str) -> Result<(Vec<String>, Array1<usize>), String> {
    let values = texts(df, label)?;
    let mut classes = values.clone();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(format!(
            "label column '{label}' has {} distinct value(s); a classifier needs at least two",
            classes.len()
        ));
    }
    let index: Array1<usize> = values
        .iter()
        .map(|v| classes.binary_search(v).unwrap_or_default())
        .collect();
    Ok((classes, index))
}

/// Class names back as a column of the label's own kind: integers stay integers, booleans
/// booleans, anything else text.
pub fn class_column(name: &str, values: &[String]) -> Series {
    if values.iter().all(|v| v.parse::<i64>().is_ok()) {
        let ints: Vec<i64> = values.iter().filter_map(|v| v.parse().ok()).collect();
        return Series::new(name.into(), ints);
    }
    if values.iter().all(|v| v == "true" || v == "false") {
        let bools: Vec<bool> = values.iter().map(|v| v == "true").collect();
        return Series::new(name.into(), bools);
    }
    Series::new(name.into(), values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!(
            "x" => [1.0, 2.0, 3.0],
            "flag" => [true, false, true],
            "plan" => ["a", "b", "a"],
            "gap" => [Some(1.0), None, Some(2.0)],
        )
        .unwrap()
    }

    #[test]
    fn default_features_are_the_numeric_columns_but_the_label() {
        let (used, skipped) = feature_columns(&frame(), &[], Some("flag")).unwrap();
        assert_eq!(used, ["x", "gap"]);
        assert_eq!(skipped, ["plan"]);
    }

    #[test]
    fn text_and_missing_values_are_refused_by_name() {
        let df = frame();
        let text = matrix(&df, &["plan".into()]).unwrap_err();
        assert!(text.contains("column 'plan'"), "{text}");
        let gap = matrix(&df, &["gap".into()]).unwrap_err();
        assert!(gap.contains("'gap' has 1 missing"), "{gap}");
        let m = matrix(&df, &["x".into(), "flag".into()]).unwrap();
        assert_eq!(m.row(1).to_vec(), [2.0, 0.0]);
    }

    #[test]
    fn classes_are_sorted_and_come_back_in_the_label_kind() {
        let (classes, index) = classes(&frame(), "flag").unwrap();
        assert_eq!(classes, ["false", "true"]);
        assert_eq!(index.to_vec(), [1, 0, 1]);
        assert_eq!(class_column("p", &classes).dtype(), &DataType::Boolean);
    }
}
