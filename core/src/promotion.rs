//! Gated promotion: a policy per registered model says what a version must show before an alias
//! (say `production`) moves to it, and `promote` checks every gate, moves the alias only when all
//! pass, and records the decision either way, so a CI job can use it as a gate.
//!
//! The gates, each optional:
//! - **metrics** of the version's run: a floor (`at_least`) or ceiling (`at_most`), and no worse
//!   than the alias's current holder by more than `max_regression`;
//! - **data quality** of an evaluation table (a data asset version): the largest null rate of any
//!   column (a float NaN counts as null, as pandas' `isnull` counts it), and every input of the
//!   version's signature present in the table with a type that fits;
//! - **fairness** on a scored evaluation table: the largest difference between the groups of a
//!   sensitive column in selection rate, P(ŷ = positive | group), and in true-positive rate,
//!   P(ŷ = positive | y = positive, group) — Fairlearn's `demographic_parity_difference` and
//!   `equal_opportunity_difference` (`true_positive_rate_difference`); a group with no positive
//!   label has no true-positive rate and is left out of that difference;
//! - **signature compatibility** with the current holder: every input the holder takes, the
//!   version takes under the same name and type, and it requires no input the holder did not;
//! - **approvals**: this many people approved this version for this alias.
//!
//! A model with no policy is not promoted: the gate that fails says how to set one.

use std::collections::BTreeMap;

use polars::prelude::{AnyValue, DataFrame, DataType};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::assets::AssetRef;
use crate::store::Store;
use crate::tracking::registry;
use crate::tracking::types::ModelVersion;
use crate::{Error, Result};

/// A registered model's promotion policy, as its YAML says it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The registered model it governs.
    pub model: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricGate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_quality: Option<DataQualityGate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<FairnessGate>,
    /// The version must take what the alias's current holder takes.
    #[serde(default)]
    pub signature_compatible: bool,
    /// Distinct people who approved this version for this alias.
    #[serde(default)]
    pub approvals: u32,
}

/// A metric of the version's run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricGate {
    /// The metric's key, as logged (its latest value is read).
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
    /// How much worse than the alias's current holder it may be, in the metric's units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_regression: Option<f64>,
    /// Which way is better, when neither `at_least` (higher) nor `at_most` (lower) says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub higher_is_better: Option<bool>,
}

impl MetricGate {
    fn higher_is_better(&self) -> Option<bool> {
        self.higher_is_better
            .or(match (self.at_least, self.at_most) {
                (Some(_), None) => Some(true),
                (None, Some(_)) => Some(false),
                _ => None,
            })
    }
}

/// An evaluation table's quality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataQualityGate {
    /// A table data asset version: `NAME:VERSION` (or `azureml:NAME:VERSION`).
    pub data: String,
    /// The largest share of nulls any column may hold, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_null_rate: Option<f64>,
    /// Every input of the version's signature is a column of the table, of a type that fits.
    #[serde(default)]
    pub schema_matches_signature: bool,
}

/// Differences between the groups of a sensitive column on a scored evaluation table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairnessGate {
    /// A table data asset version holding the label and the model's prediction per row.
    pub data: String,
    pub sensitive_column: String,
    pub label_column: String,
    pub prediction_column: String,
    /// The favourable outcome, as the columns write it (`1`, `yes`, `true`).
    pub positive_label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_selection_rate_difference: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_true_positive_rate_difference: Option<f64>,
}

/// One gate's verdict, with what was measured and what it had to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    /// What was checked: `accuracy ≥ 0.8`, `approvals`.
    pub gate: String,
    pub passed: bool,
    /// What was measured, worded (`0.83`, `1 of 2`).
    pub value: String,
    /// What it had to be (`≥ 0.8`).
    pub threshold: String,
    /// Why, when the numbers do not say it (a missing metric, the worst column).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl GateResult {
    fn new(gate: impl Into<String>, passed: bool, value: String, threshold: String) -> Self {
        Self {
            gate: gate.into(),
            passed,
            value,
            threshold,
            detail: String::new(),
        }
    }

    fn failed(gate: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            gate: gate.into(),
            passed: false,
            value: "—".to_owned(),
            threshold: String::new(),
            detail: detail.into(),
        }
    }

    fn because(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// Every gate of a policy for one version and alias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub model: String,
    pub version: String,
    pub alias: String,
    /// The version that holds the alias now, if any.
    pub current: Option<String>,
    pub gates: Vec<GateResult>,
}

impl Evaluation {
    pub fn passed(&self) -> bool {
        !self.gates.is_empty() && self.gates.iter().all(|g| g.passed)
    }
}

/// Someone's approval of a version for an alias.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub approver: String,
    pub comment: String,
    pub created_at_ms: i64,
}

/// A recorded promotion attempt: its gates as they were, and whether the alias moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub id: i64,
    pub evaluation: Evaluation,
    pub promoted: bool,
    pub decided_by: String,
    pub created_at_ms: i64,
}

/// Reads a policy, refusing unknown fields and naming the field at fault
/// (`metrics[0].at_lest: unknown field`).
///
/// # Errors
/// [`Error::Policy`] naming the field, or the YAML's own fault.
pub fn parse_policy(text: &str) -> Result<Policy> {
    let invalid = |reason: String| Error::Policy(reason);
    crate::yaml::check_bounds(text).map_err(invalid)?;
    let policy: Policy = serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(
        text,
    ))
    .map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        invalid(if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        })
    })?;
    if policy.model.trim().is_empty() {
        return Err(invalid("model: names the registered model".to_owned()));
    }
    for (i, m) in policy.metrics.iter().enumerate() {
        if m.metric.trim().is_empty() {
            return Err(invalid(format!("metrics[{i}].metric: names a metric")));
        }
        if m.at_least.is_none() && m.at_most.is_none() && m.max_regression.is_none() {
            return Err(invalid(format!(
                "metrics[{i}]: give at_least, at_most or max_regression"
            )));
        }
        if m.max_regression.is_some() && m.higher_is_better().is_none() {
            return Err(invalid(format!(
                "metrics[{i}]: say higher_is_better: true or false for max_regression"
            )));
        }
    }
    let rates = [
        (
            "data_quality.max_null_rate",
            policy.data_quality.as_ref().and_then(|d| d.max_null_rate),
        ),
        (
            "fairness.max_selection_rate_difference",
            policy
                .fairness
                .as_ref()
                .and_then(|f| f.max_selection_rate_difference),
        ),
        (
            "fairness.max_true_positive_rate_difference",
            policy
                .fairness
                .as_ref()
                .and_then(|f| f.max_true_positive_rate_difference),
        ),
    ];
    for (field, rate) in rates {
        if let Some(r) = rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err(invalid(format!("{field}: {r} is not between 0 and 1")));
        }
    }
    for (field, data) in [
        (
            "data_quality.data",
            policy.data_quality.as_ref().map(|d| &d.data),
        ),
        ("fairness.data", policy.fairness.as_ref().map(|f| &f.data)),
    ] {
        if let Some(data) = data {
            asset_ref(data).map_err(|e| invalid(format!("{field}: {e}")))?;
        }
    }
    Ok(policy)
}

fn asset_ref(text: &str) -> Result<AssetRef> {
    text.strip_prefix("azureml:").unwrap_or(text).parse()
}

/// Who is approving or deciding: the login name (`USER`, else `LOGNAME`), or `unknown`.
pub fn current_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Sets the policy of the model its YAML names (which must be registered); returns it.
///
/// # Errors
/// A policy that does not read ([`parse_policy`]), or an unknown model.
pub fn set_policy(store: &Store, text: &str) -> Result<Policy> {
    let policy = parse_policy(text)?;
    let (model, yaml) = (policy.model.clone(), text.to_owned());
    store.tracking().write(move |c| {
        registry::get_model(c, &model)?;
        c.execute(
            "INSERT INTO promotion_policies (model, yaml, updated_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (model) DO UPDATE SET yaml = ?2, updated_at_ms = ?3",
            params![model, yaml, crate::db::now_millis()],
        )?;
        Ok(())
    })?;
    Ok(policy)
}

/// The model's policy and its YAML as written, if it has one.
pub fn policy(store: &Store, model: &str) -> Result<Option<(Policy, String)>> {
    let model = model.to_owned();
    let text: Option<String> = store.tracking().read(|c| {
        Ok(c.query_row(
            "SELECT yaml FROM promotion_policies WHERE model = ?1",
            [&model],
            |r| r.get(0),
        )
        .optional()?)
    })?;
    text.map(|t| Ok((parse_policy(&t)?, t))).transpose()
}

/// Records `approver`'s approval of `model:version` for `alias` (a second approval by the same
/// person replaces the first).
///
/// # Errors
/// An unknown model or version, or an empty approver.
pub fn approve(
    store: &Store,
    model: &str,
    version: &str,
    alias: &str,
    approver: &str,
    comment: &str,
) -> Result<()> {
    if approver.trim().is_empty() {
        return Err(Error::Policy(
            "an approval needs the approver's name".into(),
        ));
    }
    let row = (
        model.to_owned(),
        version.to_owned(),
        alias.to_owned(),
        approver.trim().to_owned(),
        comment.to_owned(),
    );
    store.tracking().write(move |c| {
        registry::get_version(c, &row.0, &row.1)?;
        c.execute(
            "INSERT INTO promotion_approvals
                 (model, version, alias, approver, comment, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (model, version, alias, approver)
             DO UPDATE SET comment = ?5, created_at_ms = ?6",
            params![row.0, row.1, row.2, row.3, row.4, crate::db::now_millis()],
        )?;
        Ok(())
    })?;
    Ok(())
}

/// The approvals of `model:version` for `alias`, oldest first.
pub fn approvals(store: &Store, model: &str, version: &str, alias: &str) -> Result<Vec<Approval>> {
    let key = (model.to_owned(), version.to_owned(), alias.to_owned());
    Ok(store.tracking().read(|c| {
        let mut stmt = c.prepare(
            "SELECT approver, comment, created_at_ms FROM promotion_approvals
             WHERE model = ?1 AND version = ?2 AND alias = ?3 ORDER BY created_at_ms",
        )?;
        let rows = stmt.query_map(params![key.0, key.1, key.2], |r| {
            Ok(Approval {
                approver: r.get(0)?,
                comment: r.get(1)?,
                created_at_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?)
}

/// Checks every gate of the model's policy for `version` and `alias`, changing nothing.
///
/// # Errors
/// An unknown model or version, or a store fault. A gate that cannot be measured (a missing
/// metric, an unknown data asset) fails with the reason instead.
pub fn evaluate(store: &Store, model: &str, version: &str, alias: &str) -> Result<Evaluation> {
    let tracking = store.tracking();
    let candidate = tracking.read(|c| registry::get_version(c, model, version))?;
    let current = tracking
        .read(|c| registry::version_by_alias(c, model, alias))
        .ok();
    let mut evaluation = Evaluation {
        model: model.to_owned(),
        version: candidate.version.clone(),
        alias: alias.to_owned(),
        current: current.as_ref().map(|v| v.version.clone()),
        gates: Vec::new(),
    };
    let Some((policy, _)) = policy(store, model)? else {
        evaluation.gates.push(GateResult::failed(
            "policy",
            format!(
                "{model} has no promotion policy; set one with `lathe models policy set FILE` \
                 or in the window's Models section"
            ),
        ));
        return Ok(evaluation);
    };
    let gates = &mut evaluation.gates;
    if !policy.metrics.is_empty() {
        let mine = run_metrics(store, &candidate)?;
        let theirs = match &current {
            Some(v) => run_metrics(store, v)?,
            None => BTreeMap::new(),
        };
        for gate in &policy.metrics {
            gates.extend(metric_gate(gate, &mine, current.as_ref(), &theirs));
        }
    }
    if let Some(gate) = &policy.data_quality {
        gates.extend(data_quality(store, gate, &candidate));
    }
    if let Some(gate) = &policy.fairness {
        gates.extend(fairness(store, gate));
    }
    if policy.signature_compatible {
        gates.push(signature_gate(&candidate, current.as_ref()));
    }
    if policy.approvals > 0 {
        let given = approvals(store, model, &candidate.version, alias)?;
        let names: Vec<&str> = given.iter().map(|a| a.approver.as_str()).collect();
        gates.push(
            GateResult::new(
                "approvals",
                given.len() >= policy.approvals as usize,
                format!("{} of {}", given.len(), policy.approvals),
                format!("≥ {}", policy.approvals),
            )
            .because(if names.is_empty() {
                "nobody has approved yet".to_owned()
            } else {
                format!("approved by {}", names.join(", "))
            }),
        );
    }
    if gates.is_empty() {
        gates.push(GateResult::failed(
            "policy",
            "the policy has no gates; give it at least one",
        ));
    }
    Ok(evaluation)
}

/// Evaluates the gates and, when all pass, points `alias` at the version; records the decision
/// either way, by `decided_by`.
///
/// # Errors
/// As [`evaluate`]; a refused promotion is not an error but a decision with `promoted: false`.
pub fn promote(
    store: &Store,
    model: &str,
    version: &str,
    alias: &str,
    decided_by: &str,
) -> Result<Decision> {
    let evaluation = evaluate(store, model, version, alias)?;
    let promoted = evaluation.passed();
    let gates = serde_json::to_string(&evaluation)?;
    let (m, v, a, by) = (
        model.to_owned(),
        evaluation.version.clone(),
        alias.to_owned(),
        decided_by.to_owned(),
    );
    let created_at_ms = crate::db::now_millis();
    // The alias moves and the decision is recorded in one transaction: neither without the
    // other.
    let id = store.tracking().write(move |c| {
        if promoted {
            registry::set_alias(c, &m, &a, &v)?;
        }
        c.execute(
            "INSERT INTO promotion_decisions
                 (model, version, alias, promoted, evaluation, decided_by, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![m, v, a, promoted, gates, by, created_at_ms],
        )?;
        Ok(c.last_insert_rowid())
    })?;
    Ok(Decision {
        id,
        evaluation,
        promoted,
        decided_by: decided_by.to_owned(),
        created_at_ms,
    })
}

/// The model's recorded decisions, newest first.
pub fn decisions(store: &Store, model: &str) -> Result<Vec<Decision>> {
    let model = model.to_owned();
    let rows: Vec<(i64, String, bool, String, i64)> = store.tracking().read(|c| {
        let mut stmt = c.prepare(
            "SELECT id, evaluation, promoted, decided_by, created_at_ms
             FROM promotion_decisions WHERE model = ?1 ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([&model], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    rows.into_iter()
        .map(|(id, evaluation, promoted, decided_by, created_at_ms)| {
            Ok(Decision {
                id,
                evaluation: serde_json::from_str(&evaluation)?,
                promoted,
                decided_by,
                created_at_ms,
            })
        })
        .collect()
}

/// The latest value of each metric of the version's run; none when it has no run.
fn run_metrics(store: &Store, version: &ModelVersion) -> Result<BTreeMap<String, f64>> {
    if version.run_id.is_empty() {
        return Ok(BTreeMap::new());
    }
    let run_id = version.run_id.clone();
    let run = store
        .tracking()
        .read(|c| crate::tracking::runs::get(c, &run_id))?;
    Ok(run
        .data
        .metrics
        .into_iter()
        .map(|m| (m.key, m.value))
        .collect())
}

/// A metric's floor or ceiling, and its regression against the current holder.
fn metric_gate(
    gate: &MetricGate,
    mine: &BTreeMap<String, f64>,
    current: Option<&ModelVersion>,
    theirs: &BTreeMap<String, f64>,
) -> Vec<GateResult> {
    let key = &gate.metric;
    let Some(&value) = mine.get(key) else {
        let known: Vec<&str> = mine.keys().map(String::as_str).collect();
        return vec![GateResult::failed(
            format!("metric {key}"),
            if known.is_empty() {
                "the version's run logged no metrics (or it has no run)".to_owned()
            } else {
                format!(
                    "the version's run has no metric '{key}'{}",
                    crate::suggest::did_you_mean(key, known)
                )
            },
        )];
    };
    let mut results = Vec::new();
    if let Some(floor) = gate.at_least {
        results.push(GateResult::new(
            format!("{key} ≥ {floor}"),
            value >= floor,
            number(value),
            format!("≥ {floor}"),
        ));
    }
    if let Some(ceiling) = gate.at_most {
        results.push(GateResult::new(
            format!("{key} ≤ {ceiling}"),
            value <= ceiling,
            number(value),
            format!("≤ {ceiling}"),
        ));
    }
    if let (Some(margin), Some(higher)) = (gate.max_regression, gate.higher_is_better()) {
        let name = format!("{key} no worse than the current holder by more than {margin}");
        results.push(match (current, theirs.get(key)) {
            (None, _) => GateResult::new(name, true, number(value), String::new())
                .because("no version holds the alias yet"),
            (Some(v), None) => GateResult::new(name, true, number(value), String::new()).because(
                format!("version {} has no metric '{key}' to compare", v.version),
            ),
            (Some(v), Some(&held)) => {
                let regression = if higher { held - value } else { value - held };
                GateResult::new(
                    name,
                    regression <= margin,
                    number(value),
                    format!(
                        "{} {}",
                        if higher { "≥" } else { "≤" },
                        number(if higher { held - margin } else { held + margin })
                    ),
                )
                .because(format!("version {} has {}", v.version, number(held)))
            }
        });
    }
    results
}

/// A number as a gate shows it: up to four significant decimals, no float noise.
fn number(x: f64) -> String {
    let text = format!("{x:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

fn load_table(store: &Store, data: &str) -> Result<DataFrame> {
    let ws = store.workspace()?;
    let version = ws.resolve(&asset_ref(data)?)?;
    crate::profile::load_table(&ws, &version)
}

fn data_quality(store: &Store, gate: &DataQualityGate, version: &ModelVersion) -> Vec<GateResult> {
    let table = match load_table(store, &gate.data) {
        Ok(table) => table,
        Err(e) => {
            return vec![GateResult::failed(
                format!("data quality of {}", gate.data),
                e.to_string(),
            )];
        }
    };
    let mut results = Vec::new();
    if let Some(max) = gate.max_null_rate {
        let worst = table
            .columns()
            .iter()
            .map(|c| {
                let column = c.as_materialized_series();
                let nulls = column.null_count()
                    + column
                        .is_nan()
                        .map(|nan| nan.sum().unwrap_or(0) as usize)
                        .unwrap_or(0);
                let rate = if table.height() == 0 {
                    0.0
                } else {
                    nulls as f64 / table.height() as f64
                };
                (rate, c.name().to_string())
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let (rate, column) = worst.unwrap_or((0.0, String::new()));
        results.push(
            GateResult::new(
                format!("null rate of {} ≤ {max}", gate.data),
                rate <= max,
                number(rate),
                format!("≤ {max}"),
            )
            .because(if column.is_empty() {
                String::new()
            } else {
                format!("largest in column '{column}'")
            }),
        );
    }
    if gate.schema_matches_signature {
        let name = format!("{} matches the signature", gate.data);
        results.push(match signature_columns(version.signature.as_ref()) {
            Err(why) => GateResult::failed(name, why),
            Ok(inputs) => {
                let faults: Vec<String> = inputs
                    .iter()
                    .filter_map(|input| match table.column(&input.name) {
                        Err(_) => Some(format!("no column '{}'", input.name)),
                        Ok(c) if !fits(&input.kind, c.dtype()) => Some(format!(
                            "column '{}' holds {}, the signature says {}",
                            input.name,
                            c.dtype(),
                            input.kind
                        )),
                        Ok(_) => None,
                    })
                    .collect();
                GateResult::new(
                    name,
                    faults.is_empty(),
                    format!(
                        "{} of {} inputs fit",
                        inputs.len() - faults.len(),
                        inputs.len()
                    ),
                    "all".to_owned(),
                )
                .because(faults.join("; "))
            }
        });
    }
    results
}

/// A column input of a signature: its name, MLflow type and whether it is required.
#[derive(Debug, Clone, PartialEq)]
struct Input {
    name: String,
    kind: String,
    required: bool,
}

/// The column inputs of an MLflow signature (`{"inputs": [{"name", "type"}…]}`).
fn signature_columns(
    signature: Option<&serde_json::Value>,
) -> std::result::Result<Vec<Input>, String> {
    let Some(signature) = signature else {
        return Err("the version has no signature".to_owned());
    };
    let inputs = signature["inputs"]
        .as_array()
        .ok_or("the signature has no inputs")?;
    inputs
        .iter()
        .map(|field| {
            let kind = field["type"].as_str().unwrap_or_default();
            match (kind, field["name"].as_str()) {
                ("tensor", _) => Err(
                    "the signature's inputs are tensors, not named columns; there is nothing to \
                     compare by name"
                        .to_owned(),
                ),
                (_, Some(name)) => Ok(Input {
                    name: name.to_owned(),
                    kind: kind.to_owned(),
                    required: field["required"].as_bool().unwrap_or(true),
                }),
                (_, None) => Err("a signature input has no name".to_owned()),
            }
        })
        .collect()
}

/// Whether a table column of `dtype` can feed an input of MLflow type `kind`.
fn fits(kind: &str, dtype: &DataType) -> bool {
    match kind {
        "double" | "float" => dtype.is_primitive_numeric(),
        "long" | "integer" => dtype.is_integer(),
        "boolean" => matches!(dtype, DataType::Boolean),
        "string" => matches!(dtype, DataType::String | DataType::Categorical(..)),
        "datetime" => dtype.is_temporal() || matches!(dtype, DataType::String),
        _ => true,
    }
}

fn fairness(store: &Store, gate: &FairnessGate) -> Vec<GateResult> {
    let failed = |e: String| vec![GateResult::failed(format!("fairness on {}", gate.data), e)];
    let table = match load_table(store, &gate.data) {
        Ok(table) => table,
        Err(e) => return failed(e.to_string()),
    };
    let rates = match group_rates(
        &table,
        &gate.sensitive_column,
        &gate.label_column,
        &gate.prediction_column,
        &gate.positive_label,
    ) {
        Ok(rates) => rates,
        Err(e) => return failed(e),
    };
    let mut results = Vec::new();
    let spread = |values: Vec<(f64, &str)>| -> Option<(f64, String)> {
        let lo = values.iter().min_by(|a, b| a.0.total_cmp(&b.0))?;
        let hi = values.iter().max_by(|a, b| a.0.total_cmp(&b.0))?;
        Some((
            hi.0 - lo.0,
            format!("{} {} vs {} {}", hi.1, number(hi.0), lo.1, number(lo.0)),
        ))
    };
    let column = &gate.sensitive_column;
    if let Some(max) = gate.max_selection_rate_difference {
        let (difference, detail) = spread(
            rates
                .iter()
                .map(|(g, r)| (r.selection_rate(), g.as_str()))
                .collect(),
        )
        .unwrap_or((0.0, String::new()));
        results.push(
            GateResult::new(
                format!("selection rate difference across {column} ≤ {max}"),
                difference <= max,
                number(difference),
                format!("≤ {max}"),
            )
            .because(detail),
        );
    }
    if let Some(max) = gate.max_true_positive_rate_difference {
        let with_positives: Vec<(f64, &str)> = rates
            .iter()
            .filter_map(|(g, r)| Some((r.true_positive_rate()?, g.as_str())))
            .collect();
        let (difference, detail) = spread(with_positives).unwrap_or((0.0, String::new()));
        results.push(
            GateResult::new(
                format!("true-positive rate difference across {column} ≤ {max}"),
                difference <= max,
                number(difference),
                format!("≤ {max}"),
            )
            .because(detail),
        );
    }
    results
}

/// Counts per group of the sensitive column.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupCounts {
    pub rows: u64,
    /// Rows predicted positive.
    pub selected: u64,
    /// Rows labelled positive.
    pub positives: u64,
    /// Rows labelled and predicted positive.
    pub true_positives: u64,
}

impl GroupCounts {
    /// P(ŷ = positive | group).
    pub fn selection_rate(&self) -> f64 {
        if self.rows == 0 {
            0.0
        } else {
            self.selected as f64 / self.rows as f64
        }
    }

    /// P(ŷ = positive | y = positive, group); none without positive labels.
    pub fn true_positive_rate(&self) -> Option<f64> {
        (self.positives > 0).then(|| self.true_positives as f64 / self.positives as f64)
    }
}

/// Counts per group (in the column's text form; a null is its own group `null`); labels and
/// predictions are compared to `positive` as text, so `1`, `1.0`-free integers and `yes` all
/// work as the table writes them.
///
/// # Errors
/// A column that is not in the table, named with the columns there are.
pub fn group_rates(
    table: &DataFrame,
    sensitive: &str,
    label: &str,
    prediction: &str,
    positive: &str,
) -> std::result::Result<BTreeMap<String, GroupCounts>, String> {
    let column = |name: &str| {
        table.column(name).map_err(|_| {
            let names: Vec<String> = table
                .get_column_names()
                .iter()
                .map(ToString::to_string)
                .collect();
            format!("no column '{name}' (columns: {})", names.join(", "))
        })
    };
    let (groups, labels, predictions) = (column(sensitive)?, column(label)?, column(prediction)?);
    let text = |v: AnyValue<'_>| match v {
        AnyValue::Null => "null".to_owned(),
        AnyValue::String(s) => s.to_owned(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float64(x) if x.fract() == 0.0 => format!("{}", x as i64),
        AnyValue::Float32(x) if x.fract() == 0.0 => format!("{}", x as i64),
        other => other.to_string(),
    };
    let mut counts: BTreeMap<String, GroupCounts> = BTreeMap::new();
    for i in 0..table.height() {
        let cell = |c: &polars::prelude::Column| c.get(i).map(text).unwrap_or_default();
        let group = counts.entry(cell(groups)).or_default();
        let is_positive = cell(labels) == positive;
        let predicted = cell(predictions) == positive;
        group.rows += 1;
        group.selected += u64::from(predicted);
        group.positives += u64::from(is_positive);
        group.true_positives += u64::from(is_positive && predicted);
    }
    Ok(counts)
}

fn signature_gate(candidate: &ModelVersion, current: Option<&ModelVersion>) -> GateResult {
    let name = "signature compatible with the current holder";
    let Some(current) = current else {
        return GateResult::new(name, true, "—".into(), String::new())
            .because("no version holds the alias yet");
    };
    let theirs = match signature_columns(current.signature.as_ref()) {
        Ok(inputs) => inputs,
        Err(why) if current.signature.is_none() => {
            return GateResult::new(name, true, "—".into(), String::new()).because(format!(
                "version {} has no signature to keep ({why})",
                current.version
            ));
        }
        Err(why) => return GateResult::failed(name, format!("version {}: {why}", current.version)),
    };
    let mine = match signature_columns(candidate.signature.as_ref()) {
        Ok(inputs) => inputs,
        Err(why) => return GateResult::failed(name, why),
    };
    let mut faults = Vec::new();
    for input in &theirs {
        match mine.iter().find(|m| m.name == input.name) {
            None => faults.push(format!("it does not take '{}'", input.name)),
            Some(m) if m.kind != input.kind => faults.push(format!(
                "'{}' is {} where version {} takes {}",
                input.name, m.kind, current.version, input.kind
            )),
            Some(_) => {}
        }
    }
    for input in mine.iter().filter(|m| m.required) {
        if !theirs.iter().any(|t| t.name == input.name) {
            faults.push(format!(
                "it requires '{}', which callers of version {} do not send",
                input.name, current.version
            ));
        }
    }
    GateResult::new(
        name,
        faults.is_empty(),
        if faults.is_empty() {
            "compatible".into()
        } else {
            format!("{} difference(s)", faults.len())
        },
        format!("takes what version {} takes", current.version),
    )
    .because(faults.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_names_the_field_at_fault() {
        let e = parse_policy("model: m\nmetrics:\n  - metric: accuracy\n    at_lest: 0.8\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics[0]: unknown field `at_lest`"), "{e}");
        let e = parse_policy("model: m\nmetrics:\n  - metric: loss\n    max_regression: 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("higher_is_better"), "{e}");
        let e = parse_policy("model: m\ndata_quality:\n  data: t:1\n  max_null_rate: 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_quality.max_null_rate: 5 is not between 0 and 1"),
            "{e}"
        );
        let ok = parse_policy(
            "model: m\nmetrics:\n  - metric: accuracy\n    at_least: 0.8\n    max_regression: 0.02\napprovals: 2\n",
        )
        .unwrap();
        assert_eq!(ok.metrics[0].higher_is_better(), Some(true));
        assert_eq!(ok.approvals, 2);
    }

    #[test]
    fn group_rates_are_counted_as_fairlearn_defines_them() {
        let table = polars::df!(
            "group" => ["a", "a", "a", "b", "b", "b", "b"],
            "label" => [1, 1, 0, 1, 0, 0, 0],
            "pred" => [1, 0, 1, 1, 1, 0, 0],
        )
        .unwrap();
        let rates = group_rates(&table, "group", "label", "pred", "1").unwrap();
        let (a, b) = (rates["a"], rates["b"]);
        assert_eq!((a.selection_rate(), b.selection_rate()), (2.0 / 3.0, 0.5));
        assert_eq!(
            (a.true_positive_rate(), b.true_positive_rate()),
            (Some(0.5), Some(1.0))
        );
        let e = group_rates(&table, "sex", "label", "pred", "1").unwrap_err();
        assert!(
            e.starts_with("no column 'sex' (columns: group, label, pred)"),
            "{e}"
        );
    }

    use crate::import::{ImportRequest, import};
    use crate::jobs::Progress;
    use crate::tracking::VersionRequest;
    use crate::tracking::runs::{Batch, NewRun};
    use crate::tracking::types::Metric;

    const MLMODEL: &str = "artifact_path: model\nflavors: {}\nsignature:\n  inputs: '{INPUTS}'\n  outputs: '[{\"type\": \"long\"}]'\n";

    /// A version of `churn` trained by a run that logged `accuracy`, with `signature` (the
    /// MLmodel's `inputs` line).
    fn version(store: &Store, accuracy: f64, inputs: &str) -> String {
        let t = store.tracking();
        let run = t
            .create_run(NewRun {
                experiment_id: "0".into(),
                user_id: "test".into(),
                start_time: None,
                run_name: None,
                tags: Vec::new(),
            })
            .unwrap();
        let id = run.info.run_id.clone();
        t.log_batch(
            &id,
            Batch {
                metrics: vec![Metric {
                    key: "accuracy".into(),
                    value: accuracy,
                    timestamp: 1,
                    ..Metric::default()
                }],
                params: Vec::new(),
                tags: Vec::new(),
            },
        )
        .unwrap();
        let root = run
            .info
            .artifact_uri
            .strip_prefix("mlflow-artifacts:/")
            .unwrap();
        let mlmodel = MLMODEL.replace("{INPUTS}", inputs);
        t.put_artifact(&format!("{root}/model/MLmodel"), &mut mlmodel.as_bytes())
            .unwrap();
        t.register_version(VersionRequest {
            name: "churn".into(),
            source: format!("{}/model", run.info.artifact_uri),
            run_id: Some(id),
            ..VersionRequest::default()
        })
        .unwrap()
        .version
    }

    fn table(store: &Store, dir: &std::path::Path, name: &str, csv: &str) {
        let path = dir.join(format!("{name}.csv"));
        std::fs::write(&path, csv).unwrap();
        let mut ws = store.workspace().unwrap();
        import(
            &mut ws,
            &ImportRequest {
                path,
                name: name.into(),
                kind: None,
                text_column: None,
                source_label: None,
            },
            &Progress::default(),
        )
        .unwrap();
    }

    fn failed(e: &Evaluation) -> Vec<String> {
        e.gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| g.gate.clone())
            .collect()
    }

    #[test]
    fn each_gate_refuses_on_its_own_and_approvals_let_it_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("ws")).unwrap();
        let inputs =
            r#"[{"type": "double", "name": "tenure"}, {"type": "string", "name": "plan"}]"#;
        let v1 = version(&store, 0.90, inputs);
        // Without a policy nothing is promoted.
        let refused = promote(&store, "churn", &v1, "production", "ci").unwrap();
        assert!(!refused.promoted);
        assert!(
            refused.evaluation.gates[0]
                .detail
                .contains("no promotion policy")
        );
        table(
            &store,
            dir.path(),
            "eval",
            "tenure,plan,churned\n1.5,basic,0\n2.5,pro,1\n,basic,0\n4.0,pro,1\n",
        );
        table(
            &store,
            dir.path(),
            "scored",
            "region,churned,predicted\nnorth,1,1\nnorth,1,1\nnorth,0,1\nsouth,1,0\nsouth,1,1\nsouth,0,0\n",
        );
        let policy = |null_rate: f64, selection: f64, approvals: u32| {
            format!(
                "model: churn\nmetrics:\n  - metric: accuracy\n    at_least: 0.8\n    max_regression: 0.02\n\
                 data_quality:\n  data: azureml:eval:1\n  max_null_rate: {null_rate}\n  schema_matches_signature: true\n\
                 fairness:\n  data: scored:1\n  sensitive_column: region\n  label_column: churned\n  prediction_column: predicted\n  positive_label: '1'\n  max_selection_rate_difference: {selection}\n  max_true_positive_rate_difference: 0.6\n\
                 signature_compatible: true\napprovals: {approvals}\n"
            )
        };
        // One null in four cells of `tenure`: 0.25; north selects 3/3, south 1/3: 0.667.
        set_policy(&store, &policy(0.3, 0.7, 0)).unwrap();
        let first = promote(&store, "churn", &v1, "production", "ci").unwrap();
        assert!(first.promoted, "{:?}", failed(&first.evaluation));
        assert_eq!(first.evaluation.current, None);
        // Each gate alone refuses.
        set_policy(&store, &policy(0.2, 0.7, 0)).unwrap();
        let v2 = version(&store, 0.91, inputs);
        let e = evaluate(&store, "churn", &v2, "production").unwrap();
        assert_eq!(failed(&e), ["null rate of azureml:eval:1 ≤ 0.2"]);
        let null_gate = e.gates.iter().find(|g| !g.passed).unwrap();
        assert_eq!(
            (null_gate.value.as_str(), null_gate.detail.as_str()),
            ("0.25", "largest in column 'tenure'")
        );
        set_policy(&store, &policy(0.3, 0.5, 0)).unwrap();
        let e = evaluate(&store, "churn", &v2, "production").unwrap();
        assert_eq!(
            failed(&e),
            ["selection rate difference across region ≤ 0.5"]
        );
        assert_eq!(e.gates.iter().find(|g| !g.passed).unwrap().value, "0.6667");
        set_policy(&store, &policy(0.3, 0.7, 0)).unwrap();
        let worse = version(&store, 0.85, inputs);
        let e = evaluate(&store, "churn", &worse, "production").unwrap();
        assert_eq!(
            failed(&e),
            ["accuracy no worse than the current holder by more than 0.02"]
        );
        let low = version(&store, 0.7, inputs);
        assert!(
            failed(&evaluate(&store, "churn", &low, "production").unwrap())
                .contains(&"accuracy ≥ 0.8".to_owned())
        );
        let narrower = version(
            &store,
            0.95,
            r#"[{"type": "double", "name": "tenure"}, {"type": "long", "name": "plan"}]"#,
        );
        let e = evaluate(&store, "churn", &narrower, "production").unwrap();
        assert_eq!(
            failed(&e),
            [
                "eval:1 matches the signature"
                    .to_owned()
                    .replace("eval", "azureml:eval"),
                "signature compatible with the current holder".to_owned()
            ]
        );
        // Approvals: refused with one of two, promoted with two; every decision on record.
        set_policy(&store, &policy(0.3, 0.7, 2)).unwrap();
        approve(&store, "churn", &v2, "production", "ana", "looks good").unwrap();
        let one = promote(&store, "churn", &v2, "production", "ana").unwrap();
        assert!(!one.promoted);
        assert_eq!(failed(&one.evaluation), ["approvals"]);
        approve(&store, "churn", &v2, "production", "ben", "").unwrap();
        let two = promote(&store, "churn", &v2, "production", "ben").unwrap();
        assert!(two.promoted, "{:?}", failed(&two.evaluation));
        let holder = store
            .tracking()
            .read(|c| registry::version_by_alias(c, "churn", "production"))
            .unwrap();
        assert_eq!(holder.version, v2);
        let history = decisions(&store, "churn").unwrap();
        assert_eq!(
            history.iter().map(|d| d.promoted).collect::<Vec<_>>(),
            [true, false, true, false]
        );
        assert_eq!(history[0].evaluation.current.as_deref(), Some(v1.as_str()));
    }
}
