//! The searches of experiments, registered models and model versions, which differ only in their
//! fields: a [`Fields`] names what a filter or an order may use, and turns MLflow's syntax into
//! SQL conditions and an ORDER BY with the next page's token.

use rusqlite::types::Value as SqlValue;

use super::filter::{self, Entity, Op, Value};
use super::{TrackingError, TrackingResult};

/// The searchable fields of one kind of entity.
pub struct Fields {
    /// "experiments", "registered models", …, for messages.
    pub what: &'static str,
    /// Attribute name, SQL column, and whether it compares as a number.
    pub attributes: &'static [(&'static str, &'static str, bool)],
    /// The SQL giving a tag's value for the row, with `{key}` where the key is bound.
    pub tag: &'static str,
    /// The SQL that holds when the row is an MLflow prompt (a registered model tagged
    /// `mlflow.prompt.is_prompt = 'true'`), for searches that leave prompts out.
    pub prompt: Option<&'static str>,
}

/// The tag MLflow marks prompts with; the registry hides prompts unless a filter asks for them.
const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

impl Fields {
    fn attribute(&self, name: &str) -> TrackingResult<(&'static str, bool)> {
        self.attributes
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, column, numeric)| (*column, *numeric))
            .ok_or_else(|| {
                let known: Vec<&str> = self.attributes.iter().map(|(n, _, _)| *n).collect();
                TrackingError::invalid(format!(
                    "Invalid key '{name}' for {}: use {} or tags.<key>",
                    self.what,
                    known.join(", ")
                ))
            })
    }

    /// The filter as SQL conditions joined by AND (`1` when empty), values bound into `args`.
    ///
    /// Where the entity can be a prompt, MLflow's registry rule applies
    /// (`_update_query_to_exclude_prompts` in its SQL registry store): prompts are left out
    /// unless the first clause on `tags.mlflow.prompt.is_prompt` asks for them (`= 'true'` or
    /// `!= 'false'`), and the other clauses on that tag are then dropped — so the official
    /// client's ``tag.`mlflow.prompt.is_prompt` != 'true'`` finds every model that has no such
    /// tag.
    pub fn conditions(
        &self,
        filter_text: &str,
        args: &mut Vec<SqlValue>,
    ) -> TrackingResult<String> {
        let mut conditions = vec!["1".to_owned()];
        let mut clauses = filter::parse_filter(filter_text)?;
        if let Some(prompt) = self.prompt {
            let is_prompt_clause =
                |c: &filter::Clause| matches!(&c.entity, Entity::Tag(k) if k == PROMPT_TAG);
            let wants_prompts = clauses
                .iter()
                .find(|c| is_prompt_clause(c))
                .is_some_and(|c| {
                    let value = match &c.value {
                        Value::Text(t) => t.to_ascii_lowercase(),
                        _ => String::new(),
                    };
                    matches!((c.op, value.as_str()), (Op::Eq, "true") | (Op::Ne, "false"))
                });
            if !wants_prompts {
                clauses.retain(|c| !is_prompt_clause(c));
                conditions.push(format!("NOT ({prompt})"));
            }
        }
        for clause in clauses {
            let (column, numeric) = match &clause.entity {
                Entity::Attribute(name) => {
                    let (column, numeric) = self.attribute(name)?;
                    (column.to_owned(), numeric)
                }
                Entity::Tag(key) => {
                    args.push(key.clone().into());
                    (
                        self.tag.replace("{key}", &format!("?{}", args.len())),
                        false,
                    )
                }
                other => {
                    return Err(TrackingError::invalid(format!(
                        "Invalid key '{}' for {}: use an attribute or tags.<key>",
                        other.describe(),
                        self.what
                    )));
                }
            };
            conditions.push(comparison(
                &column,
                numeric,
                clause.op,
                &clause.value,
                args,
            )?);
        }
        Ok(conditions.join(" AND "))
    }

    /// `ORDER BY … LIMIT … OFFSET …` for the requested order then `tie_breaks`, one row more
    /// than a page so the caller can tell whether another page follows.
    pub fn order_and_page(
        &self,
        order_by: &[String],
        tie_breaks: &[&str],
        max_results: usize,
        offset: usize,
    ) -> TrackingResult<String> {
        filter::check_order_by_count(order_by)?;
        let mut order = Vec::new();
        for text in order_by {
            let o = filter::parse_order_by(text)?;
            let Entity::Attribute(name) = &o.entity else {
                return Err(TrackingError::invalid(format!(
                    "Invalid order_by key '{}' for {}: order by an attribute",
                    o.entity.describe(),
                    self.what
                )));
            };
            let (column, _) = self.attribute(name)?;
            order.push(format!(
                "{column} {}",
                if o.ascending { "ASC" } else { "DESC" }
            ));
        }
        order.extend(tie_breaks.iter().map(|t| (*t).to_owned()));
        Ok(format!(
            " ORDER BY {} LIMIT {} OFFSET {offset}",
            order.join(", "),
            max_results.saturating_add(1)
        ))
    }
}

/// Runs a search query built with [`Fields`], reads each row with `row`, and finishes each row
/// of the page with `complete` (tags, params: what one row cannot hold).
pub fn search_page<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: Vec<SqlValue>,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    complete: impl Fn(T) -> TrackingResult<T>,
    max_results: usize,
    offset: usize,
) -> TrackingResult<(Vec<T>, Option<String>)> {
    let found: Vec<T> = conn
        .prepare(sql)?
        .query_map(rusqlite::params_from_iter(args), row)?
        .collect::<rusqlite::Result<_>>()?;
    let (found, next) = page(found, max_results, offset);
    let found = found
        .into_iter()
        .map(complete)
        .collect::<TrackingResult<_>>()?;
    Ok((found, next))
}

/// Cuts the extra row a query read past the page, and says where the next page starts.
pub fn page<T>(mut found: Vec<T>, max_results: usize, offset: usize) -> (Vec<T>, Option<String>) {
    let next = (found.len() > max_results).then(|| (offset + max_results).to_string());
    found.truncate(max_results);
    (found, next)
}

/// One comparison as SQL over `column`, its value bound as the next argument.
pub fn comparison(
    column: &str,
    numeric: bool,
    op: Op,
    value: &Value,
    args: &mut Vec<SqlValue>,
) -> TrackingResult<String> {
    let mut bind = |v: SqlValue| {
        args.push(v);
        format!("?{}", args.len())
    };
    match (op, value) {
        (Op::IsNull | Op::IsNotNull, _) => Ok(format!("{column} {}", op.sql())),
        (Op::In | Op::NotIn, Value::List(items)) => {
            // One bound JSON array however long the list: SQLite binds at most 32,766 values.
            let list = serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned());
            Ok(format!(
                "{column} {} (SELECT value FROM json_each({}))",
                op.sql(),
                bind(list.into())
            ))
        }
        (Op::Like, Value::Text(pattern)) if !numeric => Ok(format!(
            "{column} GLOB {}",
            bind(filter::like_to_glob(pattern).into())
        )),
        (Op::ILike, Value::Text(pattern)) if !numeric => Ok(format!(
            "{column} LIKE {} ESCAPE '\\'",
            bind(pattern.clone().into())
        )),
        (op, Value::Number(n)) if numeric && op.is_numeric() => {
            Ok(format!("{column} {} {}", op.sql(), bind((*n).into())))
        }
        (Op::Eq | Op::Ne, Value::Text(text)) if !numeric => Ok(format!(
            "{column} {} {}",
            op.sql(),
            bind(text.clone().into())
        )),
        (op, value) => Err(TrackingError::invalid(format!(
            "Invalid comparison: {} does not apply to {} ({})",
            op.sql(),
            if numeric { "a number" } else { "a text" },
            match value {
                Value::Number(_) => "got a number; quote texts",
                Value::Text(_) => "got a text; numbers are not quoted",
                _ => "got a list",
            }
        ))),
    }
}
