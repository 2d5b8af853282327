//! Run search: MLflow's filter and order syntax turned into one SQL query over runs, joined to
//! the latest metrics, params and tags it names, with offset page tokens.

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use super::experiments::{self, ViewType};
use super::filter::{self, Clause, Entity, Op, Value};
use super::query::comparison;
use super::runs;
use super::types::Run;
use super::{TrackingError, TrackingResult};

pub const DEFAULT_MAX_RESULTS: usize = 1000;
pub const MAX_RESULTS_LIMIT: usize = 50_000;

pub struct RunQuery<'a> {
    pub experiment_ids: &'a [String],
    pub filter: &'a str,
    pub view: ViewType,
    pub order_by: &'a [String],
    pub max_results: usize,
    pub page_token: Option<&'a str>,
}

/// One page of matching runs and the token for the next page, if more match.
pub fn search_runs(conn: &Connection, q: &RunQuery) -> TrackingResult<(Vec<Run>, Option<String>)> {
    let (ids, next) = search_run_ids(conn, q)?;
    Ok((runs::get_many(conn, &ids)?, next))
}

/// The row ids of one page of matching runs, in order, and the next page's token.
pub fn search_run_ids(
    conn: &Connection,
    q: &RunQuery,
) -> TrackingResult<(Vec<i64>, Option<String>)> {
    if q.max_results == 0 || q.max_results > MAX_RESULTS_LIMIT {
        return Err(TrackingError::invalid(format!(
            "Invalid value {} for parameter 'max_results' supplied. It must be at most \
             {MAX_RESULTS_LIMIT} and at least 1",
            q.max_results
        )));
    }
    search_run_ids_unbounded(conn, q)
}

/// As [`search_run_ids`], without the API's page-size limit (the browser reads whole experiments).
pub fn search_run_ids_unbounded(
    conn: &Connection,
    q: &RunQuery,
) -> TrackingResult<(Vec<i64>, Option<String>)> {
    let offset = parse_page_token(q.page_token)?;
    let mut sql = String::from("SELECT r.id FROM runs r");
    let mut wheres = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    let experiment_ids: Vec<i64> = q
        .experiment_ids
        .iter()
        .map(|id| experiments::parse_id(id))
        .collect::<TrackingResult<_>>()?;
    if experiment_ids.is_empty() {
        return Err(TrackingError::invalid(
            "Invalid search: give at least one experiment id",
        ));
    }
    wheres.push(format!(
        "r.experiment_id IN ({})",
        experiment_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    wheres.push(format!("r.lifecycle_stage IN {}", q.view.sql()));
    for (n, clause) in filter::parse_filter(q.filter)?.iter().enumerate() {
        let (join, condition) = clause_sql(conn, n, clause, &mut args)?;
        if let Some(join) = join {
            sql.push_str(&join);
        }
        wheres.push(condition);
    }
    filter::check_order_by_count(q.order_by)?;
    let mut order = Vec::new();
    for (n, text) in q.order_by.iter().enumerate() {
        let o = filter::parse_order_by(text)?;
        let (join, column) = order_sql(conn, n, &o.entity, &mut args)?;
        if let Some(join) = join {
            sql.push_str(&join);
        }
        // Runs without the value sort last either way, as in MLflow.
        order.push(format!("({column}) IS NULL"));
        order.push(format!(
            "{column} {}",
            if o.ascending { "ASC" } else { "DESC" }
        ));
    }
    order.push("r.start_time_ms DESC".into());
    order.push("r.uuid ASC".into());
    sql.push_str(&format!(
        " WHERE {} ORDER BY {} LIMIT {} OFFSET {offset}",
        wheres.join(" AND "),
        order.join(", "),
        q.max_results.saturating_add(1).min(i64::MAX as usize)
    ));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut ids: Vec<i64> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let next = (ids.len() > q.max_results).then(|| (offset + q.max_results).to_string());
    ids.truncate(q.max_results);
    Ok((ids, next))
}

pub fn parse_page_token(token: Option<&str>) -> TrackingResult<usize> {
    match token.map(str::trim) {
        None | Some("") => Ok(0),
        Some(text) => text.parse().map_err(|_| {
            TrackingError::invalid(format!(
                "Invalid page token '{text}': use the token a previous search returned"
            ))
        }),
    }
}

fn bind(args: &mut Vec<SqlValue>, value: impl Into<SqlValue>) -> String {
    args.push(value.into());
    format!("?{}", args.len())
}

/// The metric's key id, or -1 (no run has a metric never logged).
fn metric_key_id(conn: &Connection, key: &str) -> TrackingResult<i64> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT id FROM metric_keys WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?
        .unwrap_or(-1))
}

/// A filter clause as an optional join and a condition. Metrics, params and tags join their
/// table on the run and key, so a run lacking the key never matches (MLflow's rule), except
/// under IS NULL, which asks for exactly those runs.
fn clause_sql(
    conn: &Connection,
    n: usize,
    clause: &Clause,
    args: &mut Vec<SqlValue>,
) -> TrackingResult<(Option<String>, String)> {
    let alias = format!("f{n}");
    let (table, key_column, key, value_column, numeric) = match &clause.entity {
        Entity::Metric(key) => {
            let key_id = metric_key_id(conn, key)?;
            (
                "latest_metrics",
                "key_id",
                SqlValue::from(key_id),
                "value",
                true,
            )
        }
        Entity::Param(key) => ("params", "key", SqlValue::from(key.clone()), "value", false),
        Entity::Tag(key) => (
            "run_tags",
            "key",
            SqlValue::from(key.clone()),
            "value",
            false,
        ),
        Entity::Attribute(name) => {
            let (column, numeric) = attribute_column(name)?;
            if matches!(clause.op, Op::In | Op::NotIn) && name != "run_id" && name != "status" {
                return Err(TrackingError::invalid(format!(
                    "Invalid comparison: IN applies to attributes.run_id and attributes.status, not {name}"
                )));
            }
            let condition = comparison(column, numeric, clause.op, &clause.value, args)?;
            return Ok((None, condition));
        }
        Entity::Dataset(field) => {
            let column = match field.as_str() {
                "name" | "digest" => format!("d.{field}"),
                "context" => "(SELECT value FROM json_each(d.tags) WHERE json_extract(value, '$.key') = 'mlflow.data.context')".into(),
                other => {
                    return Err(TrackingError::invalid(format!(
                        "Invalid dataset key '{other}': use datasets.name, datasets.digest or datasets.context"
                    )));
                }
            };
            let condition = comparison(&column, false, clause.op, &clause.value, args)?;
            return Ok((
                None,
                format!(
                    "EXISTS (SELECT 1 FROM run_inputs d WHERE d.run_id = r.id AND {condition})"
                ),
            ));
        }
    };
    if matches!(clause.entity, Entity::Metric(_))
        && !matches!(clause.value, Value::Number(_) | Value::None)
    {
        return Err(TrackingError::invalid(format!(
            "Invalid comparison on {}: metrics compare with numbers, such as metrics.loss < 0.5",
            clause.entity.describe()
        )));
    }
    let key = bind(args, key);
    if clause.op == Op::IsNull {
        return Ok((
            None,
            format!(
                "NOT EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.id AND x.{key_column} = {key})"
            ),
        ));
    }
    let join =
        format!(" JOIN {table} {alias} ON {alias}.run_id = r.id AND {alias}.{key_column} = {key}");
    let condition = match clause.op {
        Op::IsNotNull => "1".to_owned(),
        _ => comparison(
            &format!("{alias}.{value_column}"),
            numeric,
            clause.op,
            &clause.value,
            args,
        )?,
    };
    Ok((Some(join), condition))
}

fn order_sql(
    conn: &Connection,
    n: usize,
    entity: &Entity,
    args: &mut Vec<SqlValue>,
) -> TrackingResult<(Option<String>, String)> {
    let alias = format!("o{n}");
    let (table, key_column, key) = match entity {
        Entity::Metric(key) => (
            "latest_metrics",
            "key_id",
            SqlValue::from(metric_key_id(conn, key)?),
        ),
        Entity::Param(key) => ("params", "key", SqlValue::from(key.clone())),
        Entity::Tag(key) => ("run_tags", "key", SqlValue::from(key.clone())),
        Entity::Attribute(name) => return Ok((None, attribute_column(name)?.0.to_owned())),
        Entity::Dataset(_) => {
            return Err(TrackingError::invalid(
                "Invalid order_by: runs cannot be ordered by a dataset field",
            ));
        }
    };
    let key = bind(args, key);
    Ok((
        Some(format!(
            " LEFT JOIN {table} {alias} ON {alias}.run_id = r.id AND {alias}.{key_column} = {key}"
        )),
        format!("{alias}.value"),
    ))
}

fn attribute_column(name: &str) -> TrackingResult<(&'static str, bool)> {
    Ok(match name {
        "run_id" | "run_uuid" => ("r.uuid", false),
        "run_name" => ("r.name", false),
        "status" => ("r.status", false),
        "user_id" => ("r.user_id", false),
        "artifact_uri" => ("r.artifact_uri", false),
        "lifecycle_stage" => ("r.lifecycle_stage", false),
        "start_time" | "created" => ("r.start_time_ms", true),
        "end_time" => ("r.end_time_ms", true),
        other => {
            return Err(TrackingError::invalid(format!(
                "Invalid attribute key '{other}': use run_id, run_name, status, user_id, \
                 artifact_uri, start_time or end_time"
            )));
        }
    })
}
