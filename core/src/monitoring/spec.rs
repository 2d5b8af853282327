//! A monitor as Azure ML's monitoring schedule YAML describes it (`$schema:
//! http://azureml/sdk-2-0/Schedule.json` with `create_monitor:`), read with every problem named
//! by its field path, and written back.
//!
//! Read as azure-ai-ml 1.35 reads it (unknown fields refused, enum values in any case), with
//! Azure ML's defaults where a setting is left out: without `monitoring_signals`, the
//! out-of-box monitor (data drift, prediction drift and data quality over all features,
//! against the deployment's own earlier window); without `metric_thresholds`, the out-of-box
//! thresholds. Signals Lathe does not compute (`feature_attribution_drift`, `custom`,
//! `generation_safety_quality`, `generation_token_statistics`) are kept — exported as they
//! came — but disabled, and reported by name; so are settings it ignores (`compute`,
//! `alert_notification`, a `pre_processing_component`).

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value as Yaml};

use super::thresholds::Thresholds;
use super::trigger::{Frequency, Trigger, WEEK_DAYS, format_duration, parse_duration};
use super::{FeatureType, Metric, MonitorError};

/// What a signal computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    DataDrift,
    PredictionDrift,
    DataQuality,
    ModelPerformance,
}

impl SignalKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::DataDrift => "data_drift",
            Self::PredictionDrift => "prediction_drift",
            Self::DataQuality => "data_quality",
            Self::ModelPerformance => "model_performance",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "data_drift" => Some(Self::DataDrift),
            "prediction_drift" => Some(Self::PredictionDrift),
            "data_quality" => Some(Self::DataQuality),
            "model_performance" => Some(Self::ModelPerformance),
            _ => None,
        }
    }

    /// What it reads from a deployment's collected data by default.
    pub fn collected_kind(self) -> &'static str {
        match self {
            Self::DataDrift | Self::DataQuality => "model_inputs",
            Self::PredictionDrift | Self::ModelPerformance => "model_outputs",
        }
    }
}

/// Azure ML signal types Lathe keeps but does not compute, with the reason.
const NOT_COMPUTED: [(&str, &str); 4] = [
    (
        "feature_attribution_drift",
        "it needs feature importances from a surrogate model Lathe does not train",
    ),
    (
        "custom",
        "it runs a user's Azure ML component, which Lathe cannot run as a signal",
    ),
    (
        "generation_safety_quality",
        "it is judged by a GPT deployment",
    ),
    (
        "generation_token_statistics",
        "it counts tokens of a generative model's answers",
    ),
];

/// Which features a signal looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Features {
    All,
    List(Vec<String>),
    /// Azure's `top_n_feature_importance: N`: Lathe has no importances, so it looks at all
    /// (reported when read), and writes the setting back as it came.
    TopN(u32),
}

/// A signal's window over a table that grows: the `lookback_window_size` before the run
/// (less the offset), or fixed dates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataWindow {
    pub size_ms: Option<i64>,
    pub offset_ms: Option<i64>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
}

/// A signal's production or reference data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// `azureml:NAME:VERSION`, `NAME:VERSION` or `NAME` (the latest) of a table data asset;
    /// `None` for the monitored deployment's collected data.
    pub asset: Option<String>,
    /// A labeling project whose accepted answers are the ground truth (`path:
    /// labeling:NAME`, Lathe's own): `correlation_id` is each item's key, `actual` its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeling: Option<String>,
    /// Azure's `input_data.type` (`mltable`, `uri_folder`, `uri_file`), written back.
    pub input_type: Option<String>,
    /// `training`, `validation`, `model_inputs`, `model_outputs`, `ground_truth`, …
    pub data_context: Option<String>,
    pub window: DataWindow,
    /// `data_column_names`: `target_column`, `prediction`, `prediction_probability`,
    /// `correlation_id`, `actual`.
    pub column_names: BTreeMap<String, String>,
    /// Kept and written back; not run.
    pub pre_processing_component: Option<String>,
}

/// One monitoring signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The key under `monitoring_signals`.
    pub name: String,
    /// What it computes; `None` for a type Lathe keeps but does not compute.
    pub kind: Option<SignalKind>,
    /// Azure's signal type as written (`data_drift`, `custom`, …).
    pub type_name: String,
    /// Whether Lathe computes it (false for the types it does not).
    pub enabled: bool,
    pub alert_enabled: bool,
    pub features: Features,
    pub production: Option<DataSpec>,
    pub reference: Option<DataSpec>,
    /// Drift and data quality thresholds per feature type.
    pub thresholds: Thresholds,
    /// Model performance thresholds (`classification:` or `regression:` metrics).
    pub performance: BTreeMap<Metric, f64>,
    pub type_overrides: BTreeMap<String, FeatureType>,
    /// A signal Lathe does not compute, exactly as it came.
    pub raw: Option<Yaml>,
}

/// What a monitor watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub endpoint: String,
    pub deployment: String,
    /// `classification`, `regression`, `question_answering`.
    pub ml_task: Option<String>,
}

/// A monitor as its YAML describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSpec {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub trigger: Trigger,
    /// The trigger's `start_time` / `end_time` (milliseconds since the epoch).
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub target: Option<Target>,
    pub signals: Vec<Signal>,
    /// Whether `monitoring_signals` was left out (the out-of-box monitor): exported so again.
    pub out_of_box: bool,
    /// Settings kept and written back but not acted on (`compute`, `alert_notification`).
    pub kept: BTreeMap<String, Yaml>,
}

/// A monitor read: the spec, and what Lathe keeps but does not do, by field.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub spec: MonitorSpec,
    pub notices: Vec<String>,
}

/// Reads a monitoring schedule's YAML.
///
/// # Errors
/// [`MonitorError::Spec`] listing every problem, each with its field path
/// (`create_monitor.monitoring_signals.drift.metric_thresholds.numerical.bogus: …`).
pub fn parse(text: &str) -> Result<Parsed, MonitorError> {
    crate::yaml::check_bounds(text).map_err(|e| MonitorError::Spec(format!("monitor: {e}")))?;
    let doc: Yaml = serde_yaml_ng::from_str(text)
        .map_err(|e| MonitorError::Spec(format!("monitor: not valid YAML: {e}")))?;
    let mut r = Reader::default();
    let spec = r.monitor(&doc);
    if !r.problems.is_empty() {
        return Err(MonitorError::Spec(format!(
            "monitor: {} problem(s): {}",
            r.problems.len(),
            r.problems.join("; ")
        )));
    }
    spec.map(|spec| Parsed {
        spec,
        notices: r.notices,
    })
    .ok_or_else(|| MonitorError::Spec("monitor: not a mapping".into()))
}

#[derive(Default)]
struct Reader {
    problems: Vec<String>,
    notices: Vec<String>,
}

/// A mapping being read: the keys taken, so the rest can be named as unknown.
struct Fields<'a> {
    path: String,
    map: &'a Mapping,
    known: &'static [&'static str],
}

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Yaml> {
        debug_assert!(self.known.contains(&key), "{key} is listed as known");
        self.map.get(key)
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

fn describe(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "text",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

impl Reader {
    fn problem(&mut self, path: &str, what: impl std::fmt::Display) {
        self.problems.push(format!("{path}: {what}"));
    }

    /// Opens `value` as a mapping at `path`, naming unknown keys.
    fn fields<'a>(
        &mut self,
        path: &str,
        value: &'a Yaml,
        known: &'static [&'static str],
    ) -> Option<Fields<'a>> {
        let Yaml::Mapping(map) = value else {
            self.problem(
                path,
                format!("expected a mapping, found {}", describe(value)),
            );
            return None;
        };
        for key in map.keys() {
            let name = key.as_str().unwrap_or_default();
            if !known.contains(&name) {
                let at = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                self.problem(
                    &at,
                    format!(
                        "unknown field{}",
                        crate::suggest::did_you_mean(name, known.iter().copied())
                    ),
                );
            }
        }
        Some(Fields {
            path: path.to_owned(),
            map,
            known,
        })
    }

    fn text(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        match f.get(key)? {
            Yaml::String(s) => Some(s.clone()),
            Yaml::Number(n) => Some(n.to_string()),
            Yaml::Bool(b) => Some(b.to_string()),
            other => {
                self.problem(
                    &f.at(key),
                    format!("expected text, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn number(&mut self, path: &str, v: &Yaml) -> Option<f64> {
        match v.as_f64() {
            Some(x) if x.is_finite() => Some(x),
            _ => {
                self.problem(path, format!("expected a number, found {}", describe(v)));
                None
            }
        }
    }

    fn whole(&mut self, path: &str, v: &Yaml, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        match v.as_u64().and_then(|x| u32::try_from(x).ok()) {
            Some(x) if range.contains(&x) => Some(x),
            _ => {
                self.problem(
                    path,
                    format!(
                        "expected a whole number from {} to {}, found {}",
                        range.start(),
                        range.end(),
                        crate::yaml::text(v)
                    ),
                );
                None
            }
        }
    }

    /// An int or a list of ints (`hours: 3` or `hours: [20, 22]`).
    fn wholes(
        &mut self,
        path: &str,
        v: Option<&Yaml>,
        range: std::ops::RangeInclusive<u32>,
    ) -> Vec<u32> {
        match v {
            None => Vec::new(),
            Some(Yaml::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, x)| self.whole(&format!("{path}[{i}]"), x, range.clone()))
                .collect(),
            Some(x) => self.whole(path, x, range).into_iter().collect(),
        }
    }

    fn time(&mut self, path: &str, v: &Yaml) -> Option<i64> {
        match super::trigger::parse_time(&crate::yaml::text(v)) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(path, e);
                None
            }
        }
    }

    fn monitor(&mut self, doc: &Yaml) -> Option<MonitorSpec> {
        let f = self.fields(
            "",
            doc,
            &[
                "$schema",
                "name",
                "display_name",
                "description",
                "tags",
                "properties",
                "trigger",
                "create_monitor",
            ],
        )?;
        let name = self.text(&f, "name");
        if name.is_none() && f.get("name").is_none() {
            self.problem("name", "missing: the monitor's name");
        }
        let name = name.unwrap_or_default();
        if !name.is_empty()
            && !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.problem(
                "name",
                format!("'{name}': letters, digits, '_' and '-' only"),
            );
        }
        let tags = match f.get("tags") {
            Some(Yaml::Mapping(m)) => m
                .iter()
                .map(|(k, v)| (crate::yaml::text(k), crate::yaml::text(v)))
                .collect(),
            Some(other) => {
                self.problem(
                    "tags",
                    format!("expected a mapping, found {}", describe(other)),
                );
                BTreeMap::new()
            }
            None => BTreeMap::new(),
        };
        let (trigger, start_ms, end_ms) = match f.get("trigger") {
            Some(t) => self.trigger(t),
            None => {
                self.problem(
                    "trigger",
                    "missing: when the monitor runs (type: recurrence or cron)",
                );
                (None, None, None)
            }
        };
        let mut spec = MonitorSpec {
            name,
            display_name: self.text(&f, "display_name"),
            description: self.text(&f, "description"),
            tags,
            trigger: trigger.unwrap_or(Trigger::Cron {
                expression: "0 0 * * *".into(),
            }),
            start_ms,
            end_ms,
            target: None,
            signals: Vec::new(),
            out_of_box: false,
            kept: BTreeMap::new(),
        };
        match f.get("create_monitor") {
            Some(c) => self.create_monitor(c, &mut spec),
            None => self.problem("create_monitor", "missing: what the monitor watches"),
        }
        Some(spec)
    }

    fn trigger(&mut self, value: &Yaml) -> (Option<Trigger>, Option<i64>, Option<i64>) {
        let Some(f) = self.fields(
            "trigger",
            value,
            &[
                "type",
                "frequency",
                "interval",
                "schedule",
                "expression",
                "time_zone",
                "start_time",
                "end_time",
            ],
        ) else {
            return (None, None, None);
        };
        if let Some(zone) = self.text(&f, "time_zone")
            && !matches!(
                zone.to_ascii_lowercase().as_str(),
                "utc" | "coordinated universal time"
            )
        {
            self.problem(
                "trigger.time_zone",
                format!("'{zone}': Lathe runs schedules in UTC; write the times in UTC and leave time_zone out (or utc)"),
            );
        }
        let start = f
            .get("start_time")
            .and_then(|v| self.time("trigger.start_time", v));
        let end = f
            .get("end_time")
            .and_then(|v| self.time("trigger.end_time", v));
        let kind = self.text(&f, "type").map(|t| t.to_ascii_lowercase());
        let trigger = match kind.as_deref() {
            Some("cron") => {
                for key in ["frequency", "interval", "schedule"] {
                    if f.get(key).is_some() {
                        self.problem(&f.at(key), "belongs to a recurrence trigger, not cron");
                    }
                }
                let expression = self.text(&f, "expression");
                match expression {
                    Some(e) => match croner::Cron::from_str(&e) {
                        Ok(_) => Some(Trigger::Cron { expression: e }),
                        Err(err) => {
                            self.problem(
                                "trigger.expression",
                                format!("'{e}' is not a cron expression: {err}"),
                            );
                            None
                        }
                    },
                    None => {
                        self.problem(
                            "trigger.expression",
                            "missing: five cron fields, as 15 3 * * *",
                        );
                        None
                    }
                }
            }
            Some("recurrence") => self.recurrence(&f),
            Some(other) => {
                self.problem("trigger.type", format!("'{other}': recurrence or cron"));
                None
            }
            None => {
                self.problem("trigger.type", "missing: recurrence or cron");
                None
            }
        };
        (trigger, start, end)
    }

    fn recurrence(&mut self, f: &Fields<'_>) -> Option<Trigger> {
        if f.get("expression").is_some() {
            self.problem(
                "trigger.expression",
                "belongs to a cron trigger, not a recurrence",
            );
        }
        let frequency = match self.text(f, "frequency") {
            Some(s) => match Frequency::parse(&s) {
                Some(fr) => Some(fr),
                None => {
                    self.problem(
                        "trigger.frequency",
                        format!("'{s}': one of {}", Frequency::NAMES.join(", ")),
                    );
                    None
                }
            },
            None => {
                self.problem(
                    "trigger.frequency",
                    "missing: minute, hour, day, week or month",
                );
                None
            }
        };
        let interval = match f.get("interval") {
            Some(v) => self.whole("trigger.interval", v, 1..=10_000),
            None => {
                self.problem("trigger.interval", "missing: every how many (1 or more)");
                None
            }
        };
        let (mut hours, mut minutes, mut week_days, mut month_days) =
            (vec![], vec![], vec![], vec![]);
        if let Some(s) = f.get("schedule")
            && let Some(s) = self.fields(
                "trigger.schedule",
                s,
                &["hours", "minutes", "week_days", "month_days"],
            )
        {
            hours = self.wholes("trigger.schedule.hours", s.get("hours"), 0..=23);
            minutes = self.wholes("trigger.schedule.minutes", s.get("minutes"), 0..=59);
            month_days = self.wholes("trigger.schedule.month_days", s.get("month_days"), 1..=31);
            let days: Vec<Yaml> = match s.get("week_days") {
                Some(Yaml::Sequence(d)) => d.clone(),
                Some(one) => vec![one.clone()],
                None => vec![],
            };
            for (i, d) in days.iter().enumerate() {
                let text = d.as_str().unwrap_or_default().to_ascii_lowercase();
                match WEEK_DAYS.iter().position(|w| *w == text) {
                    Some(n) => week_days.push(n as u32),
                    None => self.problem(
                        &format!("trigger.schedule.week_days[{i}]"),
                        format!("'{}': monday to sunday", crate::yaml::text(d)),
                    ),
                }
            }
        }
        Some(Trigger::Recurrence {
            frequency: frequency?,
            interval: interval?,
            hours,
            minutes,
            week_days,
            month_days,
        })
    }

    fn create_monitor(&mut self, value: &Yaml, spec: &mut MonitorSpec) {
        let Some(f) = self.fields(
            "create_monitor",
            value,
            &[
                "compute",
                "monitoring_target",
                "monitoring_signals",
                "alert_notification",
            ],
        ) else {
            return;
        };
        for key in ["compute", "alert_notification"] {
            if let Some(v) = f.get(key) {
                spec.kept.insert(key.to_owned(), v.clone());
                self.notices.push(format!(
                    "create_monitor.{key}: kept, not used ({})",
                    if key == "compute" {
                        "signals run on this machine"
                    } else {
                        "alerts are listed in Lathe and run the monitor's actions; no email is sent"
                    }
                ));
            }
        }
        if let Some(t) = f.get("monitoring_target") {
            spec.target = self.target(t);
        }
        match f.get("monitoring_signals") {
            None => {
                spec.out_of_box = true;
                if spec.target.is_none() {
                    self.problem(
                        "create_monitor.monitoring_target",
                        "missing: without monitoring_signals (the out-of-box monitor) the deployment to watch is needed",
                    );
                }
                spec.signals = out_of_box();
            }
            Some(signals) => {
                let Yaml::Mapping(map) = signals else {
                    self.problem(
                        "create_monitor.monitoring_signals",
                        format!(
                            "expected a mapping of signal names, found {}",
                            describe(signals)
                        ),
                    );
                    return;
                };
                for (key, value) in map {
                    let name = crate::yaml::text(key);
                    if let Some(signal) = self.signal(&name, value) {
                        spec.signals.push(signal);
                    }
                }
                if spec.target.is_none() {
                    for s in spec.signals.iter().filter(|s| s.enabled) {
                        if s.production
                            .as_ref()
                            .and_then(|p| p.asset.as_ref())
                            .is_none()
                        {
                            self.problem(
                                &format!("create_monitor.monitoring_signals.{}.production_data", s.name),
                                "missing: without a monitoring_target, each signal names its production data",
                            );
                        }
                    }
                }
            }
        }
    }

    fn target(&mut self, value: &Yaml) -> Option<Target> {
        let f = self.fields(
            "create_monitor.monitoring_target",
            value,
            &["ml_task", "endpoint_deployment_id", "model_id"],
        )?;
        let ml_task = self.text(&f, "ml_task").map(|t| t.to_ascii_lowercase());
        if let Some(task) = &ml_task
            && !matches!(
                task.as_str(),
                "classification" | "regression" | "question_answering"
            )
        {
            self.problem(
                "create_monitor.monitoring_target.ml_task",
                format!("'{task}': classification, regression or question_answering"),
            );
        }
        if f.get("model_id").is_some() {
            self.problem(
                "create_monitor.monitoring_target.model_id",
                "Lathe monitors a deployment: give endpoint_deployment_id (azureml:ENDPOINT:DEPLOYMENT)",
            );
        }
        let id = self.text(&f, "endpoint_deployment_id");
        let Some(id) = id else {
            self.problem(
                "create_monitor.monitoring_target.endpoint_deployment_id",
                "missing: azureml:ENDPOINT:DEPLOYMENT",
            );
            return None;
        };
        let bare = id.strip_prefix("azureml:").unwrap_or(&id);
        match bare.split_once(':') {
            Some((e, d)) if !e.is_empty() && !d.is_empty() && !d.contains(':') => Some(Target {
                endpoint: e.to_owned(),
                deployment: d.to_owned(),
                ml_task,
            }),
            _ => {
                self.problem(
                    "create_monitor.monitoring_target.endpoint_deployment_id",
                    format!("'{id}' is not azureml:ENDPOINT:DEPLOYMENT"),
                );
                None
            }
        }
    }

    fn signal(&mut self, name: &str, value: &Yaml) -> Option<Signal> {
        let path = format!("create_monitor.monitoring_signals.{name}");
        let type_name = value
            .get("type")
            .and_then(Yaml::as_str)
            .map(str::to_ascii_lowercase);
        let Some(type_name) = type_name else {
            self.problem(
                &format!("{path}.type"),
                "missing: data_drift, prediction_drift, data_quality or model_performance",
            );
            return None;
        };
        if let Some((_, why)) = NOT_COMPUTED.iter().find(|(t, _)| *t == type_name) {
            self.notices.push(format!(
                "{path}: kept but disabled: Lathe does not compute {type_name} signals ({why})"
            ));
            return Some(Signal {
                name: name.to_owned(),
                kind: None,
                type_name,
                enabled: false,
                alert_enabled: false,
                features: Features::All,
                production: None,
                reference: None,
                thresholds: Thresholds::default(),
                performance: BTreeMap::new(),
                type_overrides: BTreeMap::new(),
                raw: Some(value.clone()),
            });
        }
        let Some(kind) = SignalKind::parse(&type_name) else {
            let known = [
                "data_drift",
                "prediction_drift",
                "data_quality",
                "model_performance",
            ]
            .into_iter()
            .chain(NOT_COMPUTED.iter().map(|(t, _)| *t));
            self.problem(
                &format!("{path}.type"),
                format!(
                    "unknown signal type '{type_name}'{}",
                    crate::suggest::did_you_mean(&type_name, known)
                ),
            );
            return None;
        };
        let f = self.fields(
            &path,
            value,
            &[
                "type",
                "alert_enabled",
                "features",
                "production_data",
                "reference_data",
                "metric_thresholds",
                "feature_type_override",
                "data_segment",
                "properties",
            ],
        )?;
        let alert_enabled = match f.get("alert_enabled") {
            None => false,
            Some(Yaml::Bool(b)) => *b,
            Some(other) => {
                self.problem(
                    &f.at("alert_enabled"),
                    format!("expected true or false, found {}", describe(other)),
                );
                false
            }
        };
        let features = self.features(&f);
        if kind == SignalKind::ModelPerformance && f.get("features").is_some() {
            self.problem(
                &f.at("features"),
                "model_performance looks at the predictions, not at features",
            );
        }
        if f.get("data_segment").is_some() {
            self.problem(
                &f.at("data_segment"),
                "not supported: monitor a segment with a production data asset that holds only it",
            );
        }
        let mut type_overrides = BTreeMap::new();
        if let Some(o) = f.get("feature_type_override") {
            match o {
                Yaml::Mapping(m) => {
                    for (k, v) in m {
                        let column = crate::yaml::text(k);
                        match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                            Some("numerical") => {
                                type_overrides.insert(column, FeatureType::Numerical);
                            }
                            Some("categorical") => {
                                type_overrides.insert(column, FeatureType::Categorical);
                            }
                            _ => self.problem(
                                &format!("{}.{column}", f.at("feature_type_override")),
                                "numerical or categorical",
                            ),
                        }
                    }
                }
                other => self.problem(
                    &f.at("feature_type_override"),
                    format!("expected a mapping, found {}", describe(other)),
                ),
            }
        }
        let production = f
            .get("production_data")
            .and_then(|v| self.data(&f.at("production_data"), v, false));
        let reference = f
            .get("reference_data")
            .and_then(|v| self.data(&f.at("reference_data"), v, true));
        if kind == SignalKind::ModelPerformance {
            let ground_truth = reference
                .as_ref()
                .is_some_and(|r| r.asset.is_some() || r.labeling.is_some());
            if !ground_truth {
                self.problem(&f.at("reference_data"), "missing: model_performance needs the ground truth (a table asset with the actual values and the correlation id, or labeling:PROJECT)");
            }
        } else if let Some(r) = reference.as_ref().filter(|r| r.labeling.is_some()) {
            self.problem(
                &format!("{}.reference_data.input_data.path", f.path),
                format!(
                    "labeling:{}: a labeling project is ground truth, for a model_performance signal only",
                    r.labeling.as_deref().unwrap_or_default()
                ),
            );
        }
        let (thresholds, performance) = self.thresholds(&f, kind);
        Some(Signal {
            name: name.to_owned(),
            kind: Some(kind),
            type_name,
            enabled: true,
            alert_enabled,
            features,
            production,
            reference,
            thresholds,
            performance,
            type_overrides,
            raw: None,
        })
    }

    fn features(&mut self, f: &Fields<'_>) -> Features {
        match f.get("features") {
            None => Features::All,
            Some(Yaml::String(s)) if s.eq_ignore_ascii_case("all_features") => Features::All,
            Some(Yaml::Sequence(items)) => {
                let names: Vec<String> = items.iter().map(crate::yaml::text).collect();
                if names.is_empty() {
                    self.problem(
                        &f.at("features"),
                        "an empty list: name features, or write all_features",
                    );
                }
                Features::List(names)
            }
            Some(Yaml::Mapping(m)) => {
                match m.get("top_n_feature_importance").and_then(Yaml::as_u64) {
                    Some(n) if m.len() == 1 => {
                        self.notices.push(format!(
                        "{}.top_n_feature_importance: Lathe has no feature importances; all features are monitored",
                        f.at("features")
                    ));
                        Features::TopN(u32::try_from(n).unwrap_or(u32::MAX))
                    }
                    _ => {
                        self.problem(
                            &f.at("features"),
                            "a list of names, all_features, or top_n_feature_importance: N",
                        );
                        Features::All
                    }
                }
            }
            Some(other) => {
                self.problem(
                    &f.at("features"),
                    format!("a list of names or all_features, found {}", describe(other)),
                );
                Features::All
            }
        }
    }

    fn data(&mut self, path: &str, value: &Yaml, reference: bool) -> Option<DataSpec> {
        let f = self.fields(
            path,
            value,
            &[
                "input_data",
                "data_context",
                "data_window",
                "data_column_names",
                "pre_processing_component",
                "target_column_name",
            ],
        )?;
        let mut spec = DataSpec {
            data_context: self
                .text(&f, "data_context")
                .map(|c| c.to_ascii_lowercase()),
            pre_processing_component: self.text(&f, "pre_processing_component"),
            ..DataSpec::default()
        };
        if let Some(c) = &spec.pre_processing_component {
            self.notices.push(format!(
                "{path}.pre_processing_component: '{c}' is kept but not run; the data is read as it is"
            ));
        }
        if let Some(input) = f.get("input_data")
            && let Some(i) = self.fields(&f.at("input_data"), input, &["path", "type", "mode"])
        {
            spec.input_type = self.text(&i, "type");
            match self.text(&i, "path") {
                Some(p) if p.starts_with("labeling:") => {
                    let name = p["labeling:".len()..].trim();
                    if !reference || name.is_empty() {
                        self.problem(&i.at("path"), format!("'{p}': a labeling project is ground truth: name it (labeling:NAME) as a model_performance signal's reference_data"));
                    } else {
                        spec.labeling = Some(name.to_owned());
                    }
                }
                Some(p) => {
                    let bare = p.strip_prefix("azureml:").unwrap_or(&p).to_owned();
                    if bare.contains('/') || bare.contains("://") {
                        self.problem(&i.at("path"), format!("'{p}': a data asset (azureml:NAME:VERSION); paths and URIs are not read by monitors"));
                    } else if let Err(e) = bare.parse::<crate::assets::AssetRef>() {
                        self.problem(&i.at("path"), e);
                    } else {
                        spec.asset = Some(bare);
                    }
                }
                None => self.problem(&i.at("path"), "missing: azureml:NAME:VERSION"),
            }
        }
        if let Some(w) = f.get("data_window")
            && let Some(w) = self.fields(
                &f.at("data_window"),
                w,
                &[
                    "lookback_window_size",
                    "lookback_window_offset",
                    "window_start",
                    "window_end",
                ],
            )
        {
            for (key, slot) in [
                ("lookback_window_size", &mut spec.window.size_ms),
                ("lookback_window_offset", &mut spec.window.offset_ms),
            ] {
                if let Some(text) = self.text(&w, key) {
                    match parse_duration(&text) {
                        Ok(ms) => *slot = Some(ms),
                        Err(e) => self.problem(&w.at(key), e),
                    }
                }
            }
            spec.window.start_ms = w
                .get("window_start")
                .and_then(|v| self.time(&w.at("window_start"), v));
            spec.window.end_ms = w
                .get("window_end")
                .and_then(|v| self.time(&w.at("window_end"), v));
            if let (Some(s), Some(e)) = (spec.window.start_ms, spec.window.end_ms)
                && s >= e
            {
                self.problem(&w.at("window_end"), "comes before window_start");
            }
        }
        match f.get("data_column_names") {
            None => {}
            Some(Yaml::Mapping(m)) => {
                for (k, v) in m {
                    spec.column_names
                        .insert(crate::yaml::text(k), crate::yaml::text(v));
                }
            }
            Some(other) => self.problem(
                &f.at("data_column_names"),
                format!("expected a mapping, found {}", describe(other)),
            ),
        }
        if let Some(t) = self.text(&f, "target_column_name") {
            spec.column_names.insert("target_column".into(), t);
        }
        if !reference
            && spec.asset.is_none()
            && f.get("input_data").is_none()
            && spec.window == DataWindow::default()
        {
            // production_data with only a context: the deployment's collected data.
        }
        Some(spec)
    }

    fn thresholds(
        &mut self,
        f: &Fields<'_>,
        kind: SignalKind,
    ) -> (Thresholds, BTreeMap<Metric, f64>) {
        let path = f.at("metric_thresholds");
        let Some(value) = f.get("metric_thresholds") else {
            return match kind {
                SignalKind::DataDrift | SignalKind::PredictionDrift => {
                    (Thresholds::drift_defaults(), BTreeMap::new())
                }
                SignalKind::DataQuality => (Thresholds::quality_defaults(), BTreeMap::new()),
                SignalKind::ModelPerformance => (Thresholds::default(), BTreeMap::new()),
            };
        };
        let mut thresholds = Thresholds::default();
        let mut performance = BTreeMap::new();
        if kind == SignalKind::ModelPerformance {
            let Some(m) = self.fields(&path, value, &["classification", "regression"]) else {
                return (thresholds, performance);
            };
            for (group, allowed) in [
                (
                    "classification",
                    &[
                        Metric::Accuracy,
                        Metric::Precision,
                        Metric::Recall,
                        Metric::F1Score,
                        Metric::Auc,
                    ][..],
                ),
                (
                    "regression",
                    &[Metric::Mae, Metric::Mse, Metric::Rmse, Metric::R2][..],
                ),
            ] {
                if let Some(g) = m.get(group) {
                    self.metric_map(&m.at(group), g, allowed, &mut performance);
                }
            }
            return (thresholds, performance);
        }
        let Some(m) = self.fields(&path, value, &["numerical", "categorical"]) else {
            return (thresholds, performance);
        };
        for (group, feature) in [
            ("numerical", FeatureType::Numerical),
            ("categorical", FeatureType::Categorical),
        ] {
            let Some(g) = m.get(group) else { continue };
            let allowed: Vec<Metric> = match kind {
                SignalKind::DataQuality => Metric::QUALITY.to_vec(),
                _ => Metric::drift_metrics(feature).to_vec(),
            };
            let target = match feature {
                FeatureType::Numerical => &mut thresholds.numerical,
                FeatureType::Categorical => &mut thresholds.categorical,
            };
            self.metric_map(&m.at(group), g, &allowed, target);
        }
        (thresholds, performance)
    }

    fn metric_map(
        &mut self,
        path: &str,
        value: &Yaml,
        allowed: &[Metric],
        out: &mut BTreeMap<Metric, f64>,
    ) {
        let Yaml::Mapping(map) = value else {
            self.problem(
                path,
                format!(
                    "expected a mapping of metric: threshold, found {}",
                    describe(value)
                ),
            );
            return;
        };
        for (k, v) in map {
            let name = crate::yaml::text(k);
            let at = format!("{path}.{name}");
            match Metric::parse(&name) {
                Some(metric) if allowed.contains(&metric) => {
                    if let Some(x) = self.number(&at, v) {
                        if x < 0.0
                            || (metric.alerts_below() && x > 1.0 && !matches!(metric, Metric::R2))
                        {
                            self.problem(&at, format!("{x} is outside [0, 1]"));
                        } else {
                            out.insert(metric, x);
                        }
                    }
                }
                _ => {
                    let names: Vec<&str> = allowed.iter().map(|m| m.name()).collect();
                    let why = match Metric::parse(&name) {
                        Some(_) => format!("does not apply here (here: {})", names.join(", ")),
                        None => format!(
                            "unknown metric{}",
                            crate::suggest::did_you_mean(&name, names.iter().copied())
                        ),
                    };
                    self.problem(&at, why);
                }
            }
        }
    }
}

/// Azure ML's out-of-box signals: drift of the inputs, drift of the outputs, and the inputs'
/// quality, over all features, against the deployment's own earlier data.
fn out_of_box() -> Vec<Signal> {
    let signal = |name: &str, kind: SignalKind, thresholds: Thresholds| Signal {
        name: name.to_owned(),
        kind: Some(kind),
        type_name: kind.name().to_owned(),
        enabled: true,
        alert_enabled: true,
        features: Features::All,
        production: None,
        reference: None,
        thresholds,
        performance: BTreeMap::new(),
        type_overrides: BTreeMap::new(),
        raw: None,
    };
    vec![
        signal(
            "data-drift-signal",
            SignalKind::DataDrift,
            Thresholds::drift_defaults(),
        ),
        signal(
            "prediction-drift-signal",
            SignalKind::PredictionDrift,
            Thresholds::drift_defaults(),
        ),
        signal(
            "data-quality-signal",
            SignalKind::DataQuality,
            Thresholds::quality_defaults(),
        ),
    ]
}

fn y(s: &str) -> Yaml {
    Yaml::String(s.to_owned())
}

fn number(x: f64) -> Yaml {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        Yaml::Number((x as i64).into())
    } else {
        Yaml::Number(x.into())
    }
}

fn time(ms: i64) -> Yaml {
    y(&chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default())
}

impl MonitorSpec {
    /// The monitor as Azure ML's schedule YAML (what `lathe monitor show --yaml` and export
    /// write): it reads back to the same spec.
    pub fn to_yaml(&self) -> String {
        let mut doc = Mapping::new();
        doc.insert(y("$schema"), y("http://azureml/sdk-2-0/Schedule.json"));
        doc.insert(y("name"), y(&self.name));
        if let Some(d) = &self.display_name {
            doc.insert(y("display_name"), y(d));
        }
        if let Some(d) = &self.description {
            doc.insert(y("description"), y(d));
        }
        if !self.tags.is_empty() {
            let tags: Mapping = self.tags.iter().map(|(k, v)| (y(k), y(v))).collect();
            doc.insert(y("tags"), Yaml::Mapping(tags));
        }
        let mut trigger = Mapping::new();
        match &self.trigger {
            Trigger::Cron { expression } => {
                trigger.insert(y("type"), y("cron"));
                trigger.insert(y("expression"), y(expression));
            }
            Trigger::Recurrence {
                frequency,
                interval,
                hours,
                minutes,
                week_days,
                month_days,
            } => {
                trigger.insert(y("type"), y("recurrence"));
                trigger.insert(y("frequency"), y(frequency.name()));
                trigger.insert(y("interval"), Yaml::Number((*interval).into()));
                let mut schedule = Mapping::new();
                let list = |v: &[u32]| {
                    Yaml::Sequence(v.iter().map(|x| Yaml::Number((*x).into())).collect())
                };
                if !hours.is_empty() {
                    schedule.insert(y("hours"), list(hours));
                }
                if !minutes.is_empty() {
                    schedule.insert(y("minutes"), list(minutes));
                }
                if !week_days.is_empty() {
                    let days = week_days
                        .iter()
                        .filter_map(|d| WEEK_DAYS.get(*d as usize))
                        .map(|d| y(d))
                        .collect();
                    schedule.insert(y("week_days"), Yaml::Sequence(days));
                }
                if !month_days.is_empty() {
                    schedule.insert(y("month_days"), list(month_days));
                }
                if !schedule.is_empty() {
                    trigger.insert(y("schedule"), Yaml::Mapping(schedule));
                }
            }
        }
        if let Some(s) = self.start_ms {
            trigger.insert(y("start_time"), time(s));
        }
        if let Some(e) = self.end_ms {
            trigger.insert(y("end_time"), time(e));
        }
        doc.insert(y("trigger"), Yaml::Mapping(trigger));
        let mut create = Mapping::new();
        if let Some(c) = self.kept.get("compute") {
            create.insert(y("compute"), c.clone());
        }
        if let Some(t) = &self.target {
            let mut target = Mapping::new();
            if let Some(task) = &t.ml_task {
                target.insert(y("ml_task"), y(task));
            }
            target.insert(
                y("endpoint_deployment_id"),
                y(&format!("azureml:{}:{}", t.endpoint, t.deployment)),
            );
            create.insert(y("monitoring_target"), Yaml::Mapping(target));
        }
        if !self.out_of_box {
            let signals: Mapping = self
                .signals
                .iter()
                .map(|s| (y(&s.name), s.to_yaml()))
                .collect();
            create.insert(y("monitoring_signals"), Yaml::Mapping(signals));
        }
        if let Some(a) = self.kept.get("alert_notification") {
            create.insert(y("alert_notification"), a.clone());
        }
        doc.insert(y("create_monitor"), Yaml::Mapping(create));
        serde_yaml_ng::to_string(&Yaml::Mapping(doc)).unwrap_or_default()
    }
}

impl Signal {
    fn to_yaml(&self) -> Yaml {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut m = Mapping::new();
        m.insert(y("type"), y(&self.type_name));
        if self.alert_enabled {
            m.insert(y("alert_enabled"), Yaml::Bool(true));
        }
        match &self.features {
            Features::All => {}
            Features::List(names) => {
                m.insert(
                    y("features"),
                    Yaml::Sequence(names.iter().map(|n| y(n)).collect()),
                );
            }
            Features::TopN(n) => {
                let mut t = Mapping::new();
                t.insert(y("top_n_feature_importance"), Yaml::Number((*n).into()));
                m.insert(y("features"), Yaml::Mapping(t));
            }
        }
        for (key, data) in [
            ("production_data", &self.production),
            ("reference_data", &self.reference),
        ] {
            if let Some(d) = data {
                m.insert(y(key), d.to_yaml());
            }
        }
        let metrics = |map: &BTreeMap<Metric, f64>| -> Yaml {
            Yaml::Mapping(map.iter().map(|(k, v)| (y(k.name()), number(*v))).collect())
        };
        let mut thresholds = Mapping::new();
        if self.kind == Some(SignalKind::ModelPerformance) {
            let (class, reg): (BTreeMap<Metric, f64>, BTreeMap<Metric, f64>) =
                self.performance.iter().partition(|(m, _)| {
                    matches!(
                        m,
                        Metric::Accuracy
                            | Metric::Precision
                            | Metric::Recall
                            | Metric::F1Score
                            | Metric::Auc
                    )
                });
            if !class.is_empty() {
                thresholds.insert(y("classification"), metrics(&class));
            }
            if !reg.is_empty() {
                thresholds.insert(y("regression"), metrics(&reg));
            }
        } else {
            if !self.thresholds.numerical.is_empty() {
                thresholds.insert(y("numerical"), metrics(&self.thresholds.numerical));
            }
            if !self.thresholds.categorical.is_empty() {
                thresholds.insert(y("categorical"), metrics(&self.thresholds.categorical));
            }
        }
        if !thresholds.is_empty() {
            m.insert(y("metric_thresholds"), Yaml::Mapping(thresholds));
        }
        if !self.type_overrides.is_empty() {
            let o: Mapping = self
                .type_overrides
                .iter()
                .map(|(k, v)| (y(k), y(v.name())))
                .collect();
            m.insert(y("feature_type_override"), Yaml::Mapping(o));
        }
        Yaml::Mapping(m)
    }
}

impl DataSpec {
    fn to_yaml(&self) -> Yaml {
        let mut m = Mapping::new();
        let path = match (&self.asset, &self.labeling) {
            (Some(a), _) => Some(format!("azureml:{a}")),
            (None, Some(p)) => Some(format!("labeling:{p}")),
            (None, None) => None,
        };
        if let Some(path) = path {
            let mut input = Mapping::new();
            input.insert(y("path"), y(&path));
            input.insert(
                y("type"),
                y(self.input_type.as_deref().unwrap_or("mltable")),
            );
            m.insert(y("input_data"), Yaml::Mapping(input));
        }
        if let Some(c) = &self.data_context {
            m.insert(y("data_context"), y(c));
        }
        if let Some(c) = &self.pre_processing_component {
            m.insert(y("pre_processing_component"), y(c));
        }
        let mut w = Mapping::new();
        if let Some(s) = self.window.size_ms {
            w.insert(y("lookback_window_size"), y(&format_duration(s)));
        }
        if let Some(o) = self.window.offset_ms {
            w.insert(y("lookback_window_offset"), y(&format_duration(o)));
        }
        if let Some(s) = self.window.start_ms {
            w.insert(y("window_start"), time(s));
        }
        if let Some(e) = self.window.end_ms {
            w.insert(y("window_end"), time(e));
        }
        if !w.is_empty() {
            m.insert(y("data_window"), Yaml::Mapping(w));
        }
        if !self.column_names.is_empty() {
            let c: Mapping = self
                .column_names
                .iter()
                .map(|(k, v)| (y(k), y(v)))
                .collect();
            m.insert(y("data_column_names"), Yaml::Mapping(c));
        }
        Yaml::Mapping(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/corpora/azureml/azureml-examples/cli/monitoring");
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn the_corpus_monitors_read_and_name_what_is_not_computed() {
        let advanced = parse(&corpus("advanced-model-monitoring.yaml")).unwrap();
        let s = &advanced.spec;
        assert_eq!(s.name, "fraud_detection_model_monitoring");
        assert_eq!(s.target.as_ref().unwrap().endpoint, "credit-default");
        let names: Vec<(&str, bool)> = s
            .signals
            .iter()
            .map(|x| (x.name.as_str(), x.enabled))
            .collect();
        assert_eq!(
            names,
            [
                ("advanced_data_drift", true),
                ("advanced_data_quality", true),
                ("feature_attribution_drift_signal", false)
            ]
        );
        assert_eq!(
            s.signals[0].thresholds.categorical[&Metric::PearsonsChiSquaredTest],
            0.02
        );
        assert_eq!(
            s.signals[0].reference.as_ref().unwrap().asset.as_deref(),
            Some("credit-reference:1")
        );
        assert!(
            advanced
                .notices
                .iter()
                .any(|n| n.contains("feature_attribution_drift")),
            "{:?}",
            advanced.notices
        );
        // Written back, it reads to the same monitor.
        assert_eq!(parse(&s.to_yaml()).unwrap().spec, *s);

        let oob = parse(&corpus("out-of-box-monitoring.yaml")).unwrap().spec;
        assert!(oob.out_of_box);
        let kinds: Vec<_> = oob.signals.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                Some(SignalKind::DataDrift),
                Some(SignalKind::PredictionDrift),
                Some(SignalKind::DataQuality)
            ]
        );
        assert_eq!(
            oob.signals[2].thresholds.numerical[&Metric::NullValueRate],
            0.0
        );
        assert_eq!(parse(&oob.to_yaml()).unwrap().spec, oob);

        for file in [
            "custom-monitoring.yaml",
            "model-monitoring-with-collected-data.yaml",
        ] {
            let parsed = parse(&corpus(file)).unwrap();
            assert_eq!(
                parse(&parsed.spec.to_yaml()).unwrap().spec,
                parsed.spec,
                "{file}"
            );
        }
        // The generation safety monitor names no real deployment: refused by that field
        // alone (its signal would be kept, disabled).
        let gsq = parse(&corpus("generation-safety-quality-monitoring.yaml"))
            .unwrap_err()
            .to_string();
        assert!(gsq.ends_with("monitor: 1 problem(s): create_monitor.monitoring_target.endpoint_deployment_id: 'fake_endpoint_id' is not azureml:ENDPOINT:DEPLOYMENT"), "{gsq}");
        let fixed = corpus("generation-safety-quality-monitoring.yaml")
            .replace("fake_endpoint_id", "azureml:chat:blue");
        let gsq = parse(&fixed).unwrap().spec;
        assert!(!gsq.signals[0].enabled);
        assert!(
            matches!(gsq.trigger, Trigger::Recurrence { ref week_days, .. } if week_days.len() == 5)
        );
        assert_eq!(parse(&gsq.to_yaml()).unwrap().spec, gsq);
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        let text = r"
name: bad monitor
trigger:
  type: recurrence
  frequency: fortnight
  interval: 0
  time_zone: Pacific Standard Time
create_monitor:
  monitoring_target:
    endpoint_deployment_id: azureml:churn
  monitoring_signals:
    drift:
      type: data_drift
      bogus_field: 1
      metric_thresholds:
        numerical:
          pearsons_chi_squared_test: 0.05
          jensen_shanon_distance: 0.1
    other:
      type: data_drfit
";
        let e = parse(text).unwrap_err().to_string();
        for needle in [
            "name: 'bad monitor'",
            "trigger.frequency: 'fortnight'",
            "trigger.interval: expected a whole number from 1",
            "trigger.time_zone: 'Pacific Standard Time'",
            "endpoint_deployment_id: 'azureml:churn' is not azureml:ENDPOINT:DEPLOYMENT",
            "monitoring_signals.drift.bogus_field: unknown field",
            "numerical.pearsons_chi_squared_test: does not apply here",
            "numerical.jensen_shanon_distance: unknown metric; did you mean 'jensen_shannon_distance'",
            "monitoring_signals.other.type: unknown signal type 'data_drfit'; did you mean 'data_drift'",
        ] {
            assert!(e.contains(needle), "'{needle}' missing from: {e}");
        }
    }
}
