//! MLflow's search syntax: filters such as
//! `metrics.rmse < 0.8 and params.model = 'tree' and tags."team name" LIKE 'vision%'`
//! and order clauses such as `metrics.rmse DESC`. Parsing gives a small tree that the run and
//! registry searches check against their own fields and turn into SQL.

use super::{TrackingError, TrackingResult};

/// What a clause compares: a metric, param or tag by key, an attribute, or a dataset field.
#[derive(Debug, Clone, PartialEq)]
pub enum Entity {
    Metric(String),
    Param(String),
    Tag(String),
    Attribute(String),
    Dataset(String),
}

impl Entity {
    pub fn describe(&self) -> String {
        match self {
            Entity::Metric(k) => format!("metrics.{k}"),
            Entity::Param(k) => format!("params.{k}"),
            Entity::Tag(k) => format!("tags.{k}"),
            Entity::Attribute(k) => format!("attributes.{k}"),
            Entity::Dataset(k) => format!("datasets.{k}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl Op {
    pub fn is_numeric(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }

    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Like => "LIKE",
            Op::ILike => "LIKE",
            Op::In => "IN",
            Op::NotIn => "NOT IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    List(Vec<String>),
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub ascending: bool,
}

/// The most comparisons one filter may hold. MLflow sets no number, but each comparison of a
/// metric, param or tag joins a table and SQLite joins at most 64; together with
/// [`MAX_ORDER_BY_KEYS`] this stays below that. Over it, the search is refused with
/// INVALID_PARAMETER_VALUE.
pub const MAX_COMPARISONS: usize = 40;
/// The most `order_by` keys one search may give (each may join a table too).
pub const MAX_ORDER_BY_KEYS: usize = 20;

/// Parses a filter: comparisons joined by AND (MLflow has no OR), at most [`MAX_COMPARISONS`].
/// An empty filter is no clause. An `IN` list may be of any length.
pub fn parse_filter(text: &str) -> TrackingResult<Vec<Clause>> {
    let mut parser = Parser::new(text);
    let mut clauses = Vec::new();
    parser.skip_space();
    if parser.at_end() {
        return Ok(clauses);
    }
    loop {
        if clauses.len() == MAX_COMPARISONS {
            return Err(TrackingError::invalid(format!(
                "Invalid filter: a search takes at most {MAX_COMPARISONS} comparisons joined by AND"
            )));
        }
        clauses.push(parser.clause()?);
        parser.skip_space();
        if parser.at_end() {
            return Ok(clauses);
        }
        let at = parser.pos;
        let word = parser.word();
        if !word.eq_ignore_ascii_case("and") {
            return Err(parser.error_at(
                at,
                "expected AND between comparisons (MLflow's search has no OR)",
            ));
        }
    }
}

/// Refuses more than [`MAX_ORDER_BY_KEYS`] order clauses.
pub fn check_order_by_count(order_by: &[String]) -> TrackingResult<()> {
    if order_by.len() > MAX_ORDER_BY_KEYS {
        return Err(TrackingError::invalid(format!(
            "Invalid value for parameter 'order_by': a search takes at most \
             {MAX_ORDER_BY_KEYS} keys, not {}",
            order_by.len()
        )));
    }
    Ok(())
}

/// Parses one order clause: an entity, then ASC or DESC (ascending when omitted).
pub fn parse_order_by(text: &str) -> TrackingResult<OrderBy> {
    let mut parser = Parser::new(text);
    parser.skip_space();
    let entity = parser.entity()?;
    parser.skip_space();
    let at = parser.pos;
    let direction = parser.word();
    parser.skip_space();
    let ascending = match direction.to_ascii_lowercase().as_str() {
        "" | "asc" => true,
        "desc" => false,
        _ => return Err(parser.error_at(at, "expected ASC or DESC")),
    };
    if !parser.at_end() {
        return Err(parser.error_at(parser.pos, "unexpected text after the order direction"));
    }
    Ok(OrderBy { entity, ascending })
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn error_at(&self, pos: usize, reason: &str) -> TrackingError {
        let column = self.text[..pos.min(self.text.len())].chars().count() + 1;
        TrackingError::invalid(format!(
            "Invalid search expression '{}': {reason} (at character {column})",
            self.text
        ))
    }

    /// A run of identifier characters (letters, digits, `_`), possibly empty.
    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn clause(&mut self) -> TrackingResult<Clause> {
        self.skip_space();
        let entity = self.entity()?;
        self.skip_space();
        let op = self.op()?;
        self.skip_space();
        let value = match op {
            Op::IsNull | Op::IsNotNull => Value::None,
            Op::In | Op::NotIn => Value::List(self.list()?),
            _ => self.value()?,
        };
        Ok(Clause { entity, op, value })
    }

    fn entity(&mut self) -> TrackingResult<Entity> {
        let start = self.pos;
        let kind = self.word();
        if kind.is_empty() {
            return Err(self.error_at(start, "expected a name such as metrics.loss"));
        }
        if self.peek() != Some('.') {
            // A bare name is an attribute, as in `status = 'FINISHED'`.
            return Ok(Entity::Attribute(kind.to_owned()));
        }
        self.pos += 1;
        let key = self.key()?;
        match kind.to_ascii_lowercase().as_str() {
            "metric" | "metrics" => Ok(Entity::Metric(key)),
            "param" | "params" | "parameter" | "parameters" => Ok(Entity::Param(key)),
            "tag" | "tags" => Ok(Entity::Tag(key)),
            "attribute" | "attributes" | "attr" | "run" => Ok(Entity::Attribute(key)),
            "dataset" | "datasets" => Ok(Entity::Dataset(key)),
            _ => Err(self.error_at(
                start,
                &format!(
                    "unknown kind '{kind}'; use metrics., params., tags., attributes. or datasets."
                ),
            )),
        }
    }

    /// A key: quoted with backticks or double quotes, or a run of characters up to a space or
    /// an operator (so `tags.mlflow.runName` and `metrics.val/loss` work unquoted).
    fn key(&mut self) -> TrackingResult<String> {
        let start = self.pos;
        match self.peek() {
            Some(quote @ ('`' | '"')) => self.quoted(quote),
            _ => {
                let rest = self.rest();
                let len = rest
                    .find(|c: char| c.is_whitespace() || "=!<>(),'\"".contains(c))
                    .unwrap_or(rest.len());
                self.pos += len;
                if len == 0 {
                    return Err(self.error_at(start, "expected a key after the dot"));
                }
                Ok(rest[..len].to_owned())
            }
        }
    }

    fn quoted(&mut self, quote: char) -> TrackingResult<String> {
        let start = self.pos;
        self.pos += quote.len_utf8();
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error_at(start, "this quote is never closed"));
            };
            self.pos += c.len_utf8();
            if c == quote {
                // A doubled quote inside the text stands for one quote, as in SQL.
                if self.peek() == Some(quote) {
                    self.pos += c.len_utf8();
                    out.push(c);
                    continue;
                }
                return Ok(out);
            }
            out.push(c);
        }
    }

    fn op(&mut self) -> TrackingResult<Op> {
        let start = self.pos;
        for (symbol, op) in [
            ("!=", Op::Ne),
            ("<>", Op::Ne),
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
        ] {
            if self.rest().starts_with(symbol) {
                self.pos += symbol.len();
                return Ok(op);
            }
        }
        let word = self.word().to_ascii_lowercase();
        let op = match word.as_str() {
            "like" => Op::Like,
            "ilike" => Op::ILike,
            "in" => Op::In,
            "not" => {
                self.skip_space();
                let next = self.word().to_ascii_lowercase();
                if next != "in" {
                    return Err(self.error_at(start, "expected IN after NOT"));
                }
                Op::NotIn
            }
            "is" => {
                self.skip_space();
                let mut next = self.word().to_ascii_lowercase();
                let negated = next == "not";
                if negated {
                    self.skip_space();
                    next = self.word().to_ascii_lowercase();
                }
                if next != "null" {
                    return Err(self.error_at(start, "expected IS NULL or IS NOT NULL"));
                }
                if negated { Op::IsNotNull } else { Op::IsNull }
            }
            _ => {
                return Err(self.error_at(
                    start,
                    "expected a comparison: =, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN or IS NULL",
                ));
            }
        };
        Ok(op)
    }

    fn value(&mut self) -> TrackingResult<Value> {
        let start = self.pos;
        match self.peek() {
            Some(quote @ ('\'' | '"')) => Ok(Value::Text(self.quoted(quote)?)),
            Some(_) => {
                let rest = self.rest();
                let len = rest
                    .find(|c: char| c.is_whitespace() || c == ')' || c == ',')
                    .unwrap_or(rest.len());
                let token = &rest[..len];
                self.pos += len;
                token.parse::<f64>().map(Value::Number).map_err(|_| {
                    self.error_at(
                        start,
                        &format!("'{token}' is neither a number nor a quoted text"),
                    )
                })
            }
            None => Err(self.error_at(start, "expected a value")),
        }
    }

    fn list(&mut self) -> TrackingResult<Vec<String>> {
        let start = self.pos;
        if self.peek() != Some('(') {
            return Err(self.error_at(start, "expected a list such as ('a', 'b')"));
        }
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.value()? {
                Value::Text(text) => items.push(text),
                _ => return Err(self.error_at(start, "list items must be quoted texts")),
            }
            self.skip_space();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return Err(self.error_at(self.pos, "expected ',' or ')' in the list")),
            }
        }
    }
}

/// Turns an SQL LIKE pattern into a case-sensitive GLOB pattern (SQLite's LIKE ignores case,
/// MLflow's does not): `%` becomes `*`, `_` becomes `?`, and GLOB's own specials are escaped.
pub fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Clause {
        let mut clauses = parse_filter(text).unwrap();
        assert_eq!(clauses.len(), 1, "{text}");
        clauses.remove(0)
    }

    #[test]
    fn parses_each_kind_of_comparison() {
        let cases = [
            (
                "metrics.rmse < 0.8",
                Entity::Metric("rmse".into()),
                Op::Lt,
                Value::Number(0.8),
            ),
            (
                "params.model = 'tree'",
                Entity::Param("model".into()),
                Op::Eq,
                Value::Text("tree".into()),
            ),
            (
                "tags.mlflow.runName LIKE \"big%\"",
                Entity::Tag("mlflow.runName".into()),
                Op::Like,
                Value::Text("big%".into()),
            ),
            (
                "tags.`team name` != 'a''b'",
                Entity::Tag("team name".into()),
                Op::Ne,
                Value::Text("a'b".into()),
            ),
            (
                "metrics.\"val/loss\">=-1e3",
                Entity::Metric("val/loss".into()),
                Op::Ge,
                Value::Number(-1000.0),
            ),
            (
                "attributes.run_id IN ('a', 'b')",
                Entity::Attribute("run_id".into()),
                Op::In,
                Value::List(vec!["a".into(), "b".into()]),
            ),
            (
                "status NOT IN ('FAILED')",
                Entity::Attribute("status".into()),
                Op::NotIn,
                Value::List(vec!["FAILED".into()]),
            ),
            (
                "params.lr IS NOT NULL",
                Entity::Param("lr".into()),
                Op::IsNotNull,
                Value::None,
            ),
            (
                "datasets.name ILIKE 'iris%'",
                Entity::Dataset("name".into()),
                Op::ILike,
                Value::Text("iris%".into()),
            ),
        ];
        for (text, entity, op, value) in cases {
            assert_eq!(one(text), Clause { entity, op, value }, "{text}");
        }
    }

    #[test]
    fn joins_with_and_in_any_case() {
        let clauses =
            parse_filter("metrics.a > 1 and params.b = 'x' AND tags.c LIKE '%y'").unwrap();
        assert_eq!(clauses.len(), 3);
        assert!(parse_filter("   ").unwrap().is_empty());
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases = [
            ("metrics.a > 1 or metrics.b < 2", "AND", 15),
            ("metrics.a ~ 1", "comparison", 11),
            ("metrics.a > one", "neither a number", 13),
            ("foo.bar = 'x'", "unknown kind 'foo'", 1),
            ("params.x = 'open", "never closed", 12),
            ("tags.x IN 'a'", "list", 11),
        ];
        for (text, fragment, column) in cases {
            let err = parse_filter(text).unwrap_err().message;
            assert!(err.contains(fragment), "{text}: {err}");
            assert!(
                err.contains(&format!("character {column})")),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn order_clauses() {
        assert_eq!(
            parse_order_by("metrics.`val loss` DESC").unwrap(),
            OrderBy {
                entity: Entity::Metric("val loss".into()),
                ascending: false
            }
        );
        assert!(parse_order_by("start_time").unwrap().ascending);
        assert!(parse_order_by("start_time sideways").is_err());
    }

    #[test]
    fn like_patterns_become_case_sensitive_globs() {
        assert_eq!(like_to_glob("a%b_c*[d]?"), "a*b?c[*][[]d][?]");
    }
}
