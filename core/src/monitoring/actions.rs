//! What a monitor does when it alerts: start a pipeline (retraining) with inputs bound to the
//! alert's window, send the window's most drifted or least confident rows to a labeling
//! project (`ranking.rs`), or POST the alerts as JSON to a webhook. Each is run once per
//! monitor run that opened new alerts (not again for an alert seen within its cooldown), and
//! recorded on those alerts: its state, the pipeline run it started, the project it filled
//! (each item sent keeps the action run that sent it).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::MonitorError;
use super::monitors::{self, ActionRun, Monitor};
use crate::pipeline::job::Binding;
use crate::store::Store;
use crate::{Error, Result};

/// An action a monitor runs when it alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Runs a saved pipeline (`NAME:VERSION`) or a pipeline file. `inputs` bind its inputs:
    /// text with `{window_start}`, `{window_end}` (ISO 8601), `{monitor}` and
    /// `{production_data}` (the newest data asset version the run read as production data)
    /// replaced; a value naming a data asset version binds a data input to it.
    Pipeline {
        pipeline: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        experiment: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        inputs: BTreeMap<String, String>,
    },
    /// Appends the window's `top` production rows, ranked by `rank`, to the row labeling
    /// project `project` (a row already there is not sent again), so people label them and
    /// their accepted labels become ground truth.
    Label {
        project: String,
        rank: super::ranking::Rank,
        #[serde(default = "fifty")]
        top: usize,
    },
    /// POSTs `{"monitor", "run", "window_start", "window_end", "alerts": […]}` to `url`
    /// (http, or https through [`crate::http::agent`]). `secret_env` names the environment
    /// variable whose value is sent as `Authorization: Bearer …`; the workspace never stores
    /// the secret, and messages never show it or the URL's query and last path segments.
    /// `timeout_s` per attempt (default 10), `retries` after the first attempt (default 2,
    /// waiting 1 s, then 2 s, …) while the failure may pass (not a refused certificate, not a
    /// redirect, not a 4xx other than 408 and 429).
    Webhook {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_env: Option<String>,
        #[serde(default = "ten")]
        timeout_s: u64,
        #[serde(default = "two")]
        retries: u32,
    },
}

fn ten() -> u64 {
    10
}

fn two() -> u32 {
    2
}

fn fifty() -> usize {
    50
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Pipeline { .. } => "pipeline",
            Self::Label { .. } => "label",
            Self::Webhook { .. } => "webhook",
        }
    }

    /// One line saying what it does (no secret in it).
    pub fn describe(&self) -> String {
        match self {
            Self::Pipeline {
                pipeline, inputs, ..
            } if inputs.is_empty() => {
                format!("run pipeline {pipeline}")
            }
            Self::Pipeline {
                pipeline, inputs, ..
            } => format!(
                "run pipeline {pipeline} with {}",
                inputs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Label { project, rank, top } => format!(
                "send the {top} {} rows to labeling project {project}",
                match rank {
                    super::ranking::Rank::Drift => "most drifted",
                    super::ranking::Rank::Confidence => "least confident",
                }
            ),
            Self::Webhook {
                url, secret_env, ..
            } => format!(
                "POST to {}{}",
                shown(url),
                secret_env
                    .as_ref()
                    .map(|v| format!(" with the token in ${v}"))
                    .unwrap_or_default()
            ),
        }
    }

    fn check(&self, store: &Store) -> Result<()> {
        match self {
            Self::Pipeline { pipeline, .. } => {
                crate::pipeline::schedule::load(&store.tracking(), store.root(), pipeline)?;
                Ok(())
            }
            Self::Label { project, top, .. } => {
                let ws = store.workspace()?;
                let p = crate::labeling::project::open(&ws, project)?;
                if !p.task.rows() {
                    return Err(MonitorError::Spec(format!(
                        "label: {project} is a {} project; a monitor sends table rows, to a \
                         row_classification or row_value project",
                        p.task.as_str()
                    ))
                    .into());
                }
                if *top == 0 {
                    return Err(MonitorError::Spec("label: --top must be at least 1".into()).into());
                }
                Ok(())
            }
            Self::Webhook {
                url, secret_env, ..
            } => {
                check_url(url)?;
                if let Some(var) = secret_env
                    && !crate::http::is_variable_name(var)
                {
                    return Err(MonitorError::Spec(format!(
                        "webhook: '{var}' is not an environment variable's name (letters, \
                         digits and _, not starting with a digit)"
                    ))
                    .into());
                }
                Ok(())
            }
        }
    }
}

/// A webhook URL Lathe can POST to: http or https (any case, RFC 3986 §3.1), a host, no
/// spaces, and no user or password in it (a token goes in `secret_env`, not in the store).
fn check_url(url: &str) -> Result<()> {
    let refuse = |why: &str| -> Result<()> {
        Err(MonitorError::Spec(format!("webhook: '{}' {why}", shown(url))).into())
    };
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return refuse("is not a URL (is there a space in it?)");
    };
    if !matches!(
        uri.scheme_str().map(str::to_ascii_lowercase).as_deref(),
        Some("http" | "https")
    ) {
        return refuse("is not an http:// or https:// URL");
    }
    if uri.host().is_none_or(str::is_empty) {
        return refuse("names no host");
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return refuse(
            "holds a user or password, which would be stored in the workspace; give the token \
             with --secret-env (the GUI's Token variable) instead",
        );
    }
    Ok(())
}

/// A webhook URL as messages show it: scheme and host, then its first path segment when
/// more follow, the rest elided — paths and queries of webhook URLs often hold secrets, yet
/// two hooks on one host should look different.
fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest[..end].rsplit('@').next().unwrap_or_default();
    let tail = &rest[end..];
    let path = tail.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let site = if scheme.is_empty() {
        authority.to_owned()
    } else {
        format!("{scheme}://{authority}")
    };
    match segments.as_slice() {
        [] if tail.len() <= 1 => format!("{site}{tail}"),
        [first, _, ..] => format!("{site}/{first}/…"),
        _ => format!("{site}/…"),
    }
}

/// Adds an action to a monitor after checking it can run (its pipeline loads; an http or https URL).
///
/// # Errors
/// An unknown monitor; an action that cannot run.
pub fn add(store: &Store, monitor: &str, action: &Action) -> Result<i64> {
    let m = monitors::get(store, monitor)?;
    action.check(store)?;
    if let Some((id, _)) = list(store, &m)?.into_iter().find(|(_, a)| a == action) {
        return Err(
            MonitorError::Spec(format!("{monitor} already has this action (action {id})")).into(),
        );
    }
    let (kind, config) = (action.kind(), serde_json::to_string(action)?);
    store.write::<_, Error>(move |c| {
        c.execute(
            "INSERT INTO monitor_actions (monitor_id, kind, config) VALUES (?1, ?2, ?3)",
            params![m.id, kind, config],
        )?;
        Ok(c.last_insert_rowid())
    })
}

/// A monitor's actions: `(id, action)`.
pub fn list(store: &Store, monitor: &Monitor) -> Result<Vec<(i64, Action)>> {
    let id = monitor.id;
    let rows: Vec<(i64, String)> = store.read::<_, Error>(move |c| {
        let mut stmt =
            c.prepare("SELECT id, config FROM monitor_actions WHERE monitor_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })?;
    rows.into_iter()
        .map(|(id, config)| Ok((id, serde_json::from_str(&config)?)))
        .collect()
}

/// Removes an action (the runs it made stay recorded on their alerts).
///
/// # Errors
/// No such action.
pub fn remove(store: &Store, id: i64) -> Result<()> {
    let removed = store.write::<_, Error>(move |c| {
        Ok(c.execute("DELETE FROM monitor_actions WHERE id = ?1", [id])?)
    })?;
    if removed == 0 {
        return Err(MonitorError::Spec(format!("there is no action {id}")).into());
    }
    Ok(())
}

/// Runs `monitor`'s actions for the alerts `opened` by monitor run `run` (whose results are
/// `signals`), recording each on them. An action that fails is recorded failed with its
/// reason; the others still run.
///
/// # Errors
/// The store cannot be written.
pub fn start(
    store: &Store,
    monitor: &Monitor,
    run: i64,
    opened: &[i64],
    signals: &[super::run::SignalResult],
    window_start: i64,
    window_end: i64,
) -> Result<Vec<ActionRun>> {
    let mut done = Vec::new();
    for (action_id, action) in list(store, monitor)? {
        let kind = action.kind();
        let alerts = opened.to_vec();
        let id = store.write::<_, Error>(move |c| {
            c.execute(
                "INSERT INTO action_runs (action_id, monitor_run_id, kind, state, started_at_ms)
                 VALUES (?1, ?2, ?3, 'running', ?4)",
                params![action_id, run, kind, crate::db::now_millis()],
            )?;
            let id = c.last_insert_rowid();
            for alert in alerts {
                c.execute(
                    "INSERT INTO alert_action_runs (alert_id, action_run_id) VALUES (?1, ?2)",
                    params![alert, id],
                )?;
            }
            Ok(id)
        })?;
        let mut project = None;
        let outcome = match &action {
            Action::Label {
                project: name,
                rank,
                top,
            } => {
                project = Some(name.clone());
                send_to_labeling(
                    store,
                    monitor,
                    id,
                    name,
                    *rank,
                    *top,
                    signals,
                    (window_start, window_end),
                )
                .map(|m| (m, None))
            }
            Action::Pipeline {
                pipeline,
                experiment,
                inputs,
            } => run_pipeline(
                store,
                monitor,
                run,
                pipeline,
                experiment.as_deref(),
                inputs,
                window_start,
                window_end,
            ),
            Action::Webhook {
                url,
                secret_env,
                timeout_s,
                retries,
            } => post(
                store,
                monitor,
                run,
                opened,
                url,
                secret_env.as_deref(),
                *timeout_s,
                *retries,
                window_start,
                window_end,
            )
            .map(|m| (m, None)),
        };
        let (state, message, pipeline_run) = match outcome {
            Ok((message, pipeline_run)) => ("completed", message, pipeline_run),
            Err(e) => ("failed", e.to_string(), None),
        };
        let (m, p, l) = (message.clone(), pipeline_run.clone(), project.clone());
        store.write::<_, Error>(move |c| {
            c.execute(
                "UPDATE action_runs SET state = ?1, message = ?2, pipeline_run_id = ?3,
                     labeling_project = ?4, finished_at_ms = ?5
                 WHERE id = ?6",
                params![state, m, p, l, crate::db::now_millis(), id],
            )?;
            Ok(())
        })?;
        done.push(ActionRun {
            id,
            kind: kind.to_owned(),
            state: state.to_owned(),
            message,
            pipeline_run_id: pipeline_run,
            labeling_project: project,
        });
    }
    Ok(done)
}

/// The label action: ranks the window's production rows and appends the top ones to
/// `project`, credited to action run `action_run`.
#[allow(clippy::too_many_arguments)]
fn send_to_labeling(
    store: &Store,
    monitor: &Monitor,
    action_run: i64,
    project: &str,
    rank: super::ranking::Rank,
    top: usize,
    signals: &[super::run::SignalResult],
    (start, end): (i64, i64),
) -> Result<String> {
    use super::ranking::{self, Rank};
    use super::spec::SignalKind;
    let everything = |t: &super::tables::Table| -> Result<polars::prelude::DataFrame> {
        let names: Vec<String> = t
            .schema()?
            .iter_names()
            .map(polars::prelude::PlSmallStr::to_string)
            .collect();
        t.columns(&names)
    };
    let (rows, scores) = match rank {
        Rank::Drift => {
            // The drift signal that alerted, and its features that crossed a threshold.
            let drifted = signals.iter().find_map(|r| {
                let kind = matches!(r.kind, SignalKind::DataDrift | SignalKind::PredictionDrift);
                let names: Vec<&str> = r
                    .crossings
                    .iter()
                    .filter(|c| !c.feature.is_empty())
                    .map(|c| c.feature.as_str())
                    .collect();
                let features: Vec<&super::compare::Feature> = r
                    .comparison
                    .as_ref()?
                    .features
                    .iter()
                    .filter(|f| names.contains(&f.name.as_str()))
                    .collect();
                (kind && !features.is_empty()).then_some((r, features))
            });
            let Some((result, features)) = drifted else {
                return Err(MonitorError::Spec(
                    "rank by drift: no feature drifted past a threshold in this run".into(),
                )
                .into());
            };
            let signal = monitor
                .spec
                .signals
                .iter()
                .find(|s| s.name == result.signal)
                .ok_or_else(|| MonitorError::Spec(format!("no signal {}", result.signal)))?;
            let (production, _, _) = super::run::tables(store, monitor, signal, start, end)?;
            let rows = everything(&production)?;
            let scores = ranking::drift_scores(&rows, &features)
                .into_iter()
                .map(|(s, why)| (s, why.join(", ")))
                .collect::<Vec<_>>();
            (rows, scores)
        }
        Rank::Confidence => {
            let target = monitor.spec.target.as_ref().ok_or_else(|| {
                MonitorError::Spec(
                    "rank by confidence: the monitor has no deployment whose answers to rank"
                        .into(),
                )
            })?;
            let (inputs, _) = super::run::collected(store, monitor, "model_inputs", start, end)?;
            let inputs = everything(&inputs)?;
            let outputs = match super::run::collected(store, monitor, "model_outputs", start, end) {
                Ok((t, _)) => everything(&t)?,
                Err(_) => polars::prelude::DataFrame::default(),
            };
            let scorer = ranking::deployed_model(store, &target.endpoint, &target.deployment).ok();
            let scores = ranking::confidences(&inputs, &outputs, scorer.as_ref())?;
            (inputs, scores)
        }
    };
    let items = ranking::pick(&rows, rank, &scores, top)?;
    let ws = store.workspace()?;
    let p = crate::labeling::project::open(&ws, project)?;
    let added = crate::labeling::rows::add(&ws, &p, &items, Some(action_run))?;
    let again = items.len() - added.len();
    Ok(format!(
        "sent {} row(s) of {} to labeling project {project}, ranked by {}{}",
        added.len(),
        rows.height(),
        rank.as_str(),
        if again > 0 {
            format!(" ({again} already there)")
        } else {
            String::new()
        }
    ))
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The newest asset version monitor run `run` read as production data (`name:version`).
fn production_data(store: &Store, run: i64) -> Result<Option<String>> {
    store.read::<_, Error>(move |c| {
        use rusqlite::OptionalExtension;
        Ok(c.query_row(
            "SELECT a.name || ':' || v.version FROM monitor_run_inputs i
             JOIN asset_versions v ON v.id = i.asset_version_id JOIN assets a ON a.id = v.asset_id
             WHERE i.monitor_run_id = ?1 AND i.role = 'production'
             ORDER BY v.created_at DESC, v.id DESC LIMIT 1",
            [run],
            |r| r.get(0),
        )
        .optional()?)
    })
}

#[allow(clippy::too_many_arguments)]
fn run_pipeline(
    store: &Store,
    monitor: &Monitor,
    run: i64,
    reference: &str,
    experiment: Option<&str>,
    inputs: &BTreeMap<String, String>,
    window_start: i64,
    window_end: i64,
) -> Result<(String, Option<String>)> {
    let tracking = store.tracking();
    let (mut pipeline, base) = crate::pipeline::schedule::load(&tracking, store.root(), reference)?;
    let production = production_data(store, run)?.unwrap_or_default();
    let expand = |template: &str| {
        template
            .replace("{window_start}", &iso(window_start))
            .replace("{window_end}", &iso(window_end))
            .replace("{monitor}", &monitor.spec.name)
            .replace("{production_data}", &production)
    };
    for (name, template) in inputs {
        let value = expand(template);
        let Some((_, binding)) = pipeline.inputs.iter_mut().find(|(n, _)| n == name) else {
            let known: Vec<&str> = pipeline.inputs.iter().map(|(n, _)| n.as_str()).collect();
            return Err(MonitorError::Spec(format!(
                "the pipeline has no input '{name}'{}",
                crate::suggest::did_you_mean(name, known.iter().copied())
            ))
            .into());
        };
        let is_data = matches!(binding, Binding::Data { .. } | Binding::Unbound);
        *binding = if is_data {
            let path =
                if value.starts_with("azureml:") || std::path::Path::new(&value).is_absolute() {
                    value
                } else {
                    format!("azureml:{value}")
                };
            Binding::Data { kind: None, path }
        } else {
            Binding::Literal(value)
        };
    }
    let experiment = experiment
        .map(str::to_owned)
        .or_else(|| pipeline.experiment_name.clone())
        .unwrap_or_else(|| format!("{}-actions", monitor.experiment()));
    let mut options = crate::pipeline::executor::RunOptions::new(&experiment);
    options.run_name = Some(format!("{} alert, run {run}", monitor.spec.name));
    let cancel = AtomicBool::new(false);
    let outcome = crate::pipeline::executor::run(
        &tracking,
        store.root(),
        &pipeline,
        &base,
        &options,
        &cancel,
        &|_| {},
    )?;
    let message = if outcome.succeeded() {
        format!("pipeline {reference} ran")
    } else {
        format!("pipeline {reference} ended {:?}", outcome.status)
    };
    Ok((message, Some(outcome.run_id)))
}

#[allow(clippy::too_many_arguments)]
fn post(
    store: &Store,
    monitor: &Monitor,
    run: i64,
    opened: &[i64],
    url: &str,
    secret_env: Option<&str>,
    timeout_s: u64,
    retries: u32,
    window_start: i64,
    window_end: i64,
) -> Result<String> {
    let action = Action::Webhook {
        url: url.to_owned(),
        secret_env: secret_env.map(str::to_owned),
        timeout_s,
        retries,
    };
    action.check(store)?;
    let token = match secret_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            MonitorError::Spec(format!(
                "webhook: the environment variable {var} (its token) is not set"
            ))
        })?),
        None => None,
    };
    let alerts: Vec<monitors::Alert> = monitors::alerts(
        store,
        &monitors::AlertFilter {
            monitor: Some(monitor.spec.name.clone()),
            ..Default::default()
        },
    )?
    .into_iter()
    .filter(|a| opened.contains(&a.id))
    .collect();
    let body = serde_json::to_vec(&serde_json::json!({
        "monitor": monitor.spec.name,
        "run": run,
        "window_start": iso(window_start),
        "window_end": iso(window_end),
        "alerts": alerts,
    }))?;
    let agent = crate::http::agent(Duration::from_secs(timeout_s.max(1)));
    let shown = shown(url);
    let mut last = String::new();
    let mut attempts = 0;
    for attempt in 0..=retries {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(u64::from(attempt)));
        }
        attempts += 1;
        let mut request = agent.post(url).header("content-type", "application/json");
        if let Some(t) = &token {
            request = request.header("authorization", &format!("Bearer {t}"));
        }
        // Asking again helps only when the failure may pass: a timeout, a refused connection,
        // a 5xx, 408 or 429 — not a refused certificate, a redirect or another 4xx.
        let lasting = match request.send(&body[..]) {
            Ok(answer) if answer.status().is_success() => {
                return Ok(format!("{shown} answered {}", answer.status().as_u16()));
            }
            Ok(answer) => {
                let status = answer.status().as_u16();
                last = format!("{shown} answered {status}");
                status < 500 && status != 408 && status != 429
            }
            Err(e) => {
                let failure = crate::http::failure(&e);
                last = if failure.lasting {
                    format!("{shown}: {}", failure.reason)
                } else {
                    format!("{shown} did not answer ({})", failure.reason)
                };
                failure.lasting
            }
        };
        if lasting {
            break;
        }
    }
    Err(MonitorError::Spec(format!("{last} (after {attempts} attempt(s))")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_shown_without_what_may_be_secret() {
        for (url, expected) in [
            ("https://h.example:9443", "https://h.example:9443"),
            ("https://h.example/", "https://h.example/"),
            ("https://h.example/x", "https://h.example/…"),
            ("https://h.example/hooks/abc", "https://h.example/hooks/…"),
            ("https://h.example/?token=s", "https://h.example/…"),
            ("https://user:pw@h.example/a/b/c", "https://h.example/a/…"),
            ("hooks.example.com", "hooks.example.com"),
        ] {
            assert_eq!(shown(url), expected, "{url}");
        }
    }

    #[test]
    fn webhook_urls_are_checked_by_their_parts() {
        for good in [
            "https://h.example/hooks/abc?token=x",
            "HTTPS://127.0.0.1:9443/x",
            "http://127.0.0.1/",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("ftp://x/y", "is not an http:// or https:// URL"),
            ("hooks.example.com", "is not an http:// or https:// URL"),
            ("https://", "is not a URL"),
            ("https://exa mple.com/x", "is not a URL"),
            ("https://user:pw@h.example/x", "holds a user or password"),
        ] {
            let message = check_url(bad).unwrap_err().to_string();
            assert!(message.contains(why), "{bad}: {message}");
            assert!(!message.contains("pw"), "{message}");
        }
        use crate::http::is_variable_name;
        assert!(is_variable_name("HOOK_TOKEN") && is_variable_name("_t1"));
        assert!(
            !is_variable_name("HOOK TOKEN") && !is_variable_name("1A") && !is_variable_name("$X")
        );
    }
}
