//! One step: resolving its inputs to values and files, its fingerprint and reuse, and running
//! it (natively for built-ins, as a process for command components).

use crate::pipeline::{PipelineError, PipelineResult};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use rusqlite::OptionalExtension;
use serde_json::json;

use super::{Context, Event, Produced, create_run, end_run, files, process};
use crate::assets::AssetRef;
use crate::pipeline::builtins::{self, DataInput, Origin, StepIo};
use crate::pipeline::component::{Port, PortType};
use crate::pipeline::environment::{self, EnvSpec};
use crate::pipeline::job::{Binding, Step};
use crate::tracking::api::ARTIFACTS_SCHEME;
use crate::tracking::types::RunStatus;

pub enum Prepared<'a> {
    Reused {
        run_id: String,
        from_run: String,
        outputs: BTreeMap<String, Produced>,
    },
    Run(Job<'a>),
}

pub struct Job<'a> {
    pub run_id: String,
    artifacts: String,
    step: &'a Step,
    env: EnvSpec,
    values: BTreeMap<String, String>,
    data: BTreeMap<String, DataInput>,
    fingerprint: String,
    /// The data asset versions this step's outputs are made from (see `Produced::lineage`).
    lineage: Vec<(String, String)>,
}

/// A data input, resolved: where its files are and what they hash to.
struct Resolved {
    input: DataInput,
    hash: String,
    /// A data asset version (`name`, `version`) read directly, for the run's lineage.
    asset: Option<(String, String)>,
    /// The data asset versions an upstream output was made from.
    upstream: Vec<(String, String)>,
}

/// Part of a built-in step's fingerprint: bumped when a built-in's outputs change, so outputs
/// made before are not reused (2: prepared tables carry their preprocessing chain).
const BUILTINS_REVISION: &str = concat!(env!("CARGO_PKG_VERSION"), "+2");

fn is_remote(path: &str) -> bool {
    [
        "http://",
        "https://",
        "wasbs://",
        "abfss://",
        "azureml://",
        "s3://",
        "gs://",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// A path or data asset reference given in the pipeline, as local files.
fn data_path(cx: &Context<'_>, step: &Step, input: &str, path: &str) -> PipelineResult<Resolved> {
    if let Some(reference) = path.strip_prefix("azureml:") {
        let reference = reference.split('@').next().unwrap_or(reference);
        let asset = AssetRef::from_str(reference)?;
        let ws = cx.tracking.store().workspace()?;
        let version = ws.resolve(&asset)?;
        let dest = cx.work.join(&step.name).join("inputs").join(input);
        std::fs::create_dir_all(&dest).map_err(|e| PipelineError::io(&dest, e))?;
        if let Some(blob) = &version.meta.blob {
            let ext = version.meta.format.map_or("txt", |f| f.extension());
            std::fs::copy(ws.blobs().path(blob), dest.join(format!("data.{ext}")))
                .map_err(|e| format!("data asset {}: {e}", version.reference()))?;
        } else {
            for file in ws.version_files(version.id)? {
                let target = dest.join(&file.path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent, e))?;
                }
                std::fs::copy(ws.blobs().path(&file.blob_hash), &target)
                    .map_err(|e| format!("data asset {}: {e}", version.reference()))?;
            }
        }
        return Ok(Resolved {
            input: DataInput {
                path: dest,
                origin: None,
            },
            hash: version.content_hash.clone(),
            asset: Some((version.asset_name.clone(), version.version.to_string())),
            upstream: Vec::new(),
        });
    }
    if is_remote(path) {
        return Err(format!(
            "'{path}' is remote; Lathe runs on local files and data assets (import it with `lathe data import`)"
        ).into());
    }
    let given = cx.base.join(path.strip_prefix("file:").unwrap_or(path));
    // Absolute, since a command runs in its own folder.
    let local = std::fs::canonicalize(&given)
        .map_err(|e| format!("input '{input}': {}: {e}", given.display()))?;
    let hash = files::tree_hash(&local)?;
    Ok(Resolved {
        input: DataInput {
            path: local,
            origin: None,
        },
        hash,
        asset: None,
        upstream: Vec::new(),
    })
}

/// Another step's output as local files, unpacking them when that step was reused.
fn upstream_output(
    cx: &Context<'_>,
    producer: &str,
    output: &str,
    produced: &Produced,
) -> PipelineResult<Resolved> {
    let path = match &produced.local {
        Some(local) => local.clone(),
        None => {
            let dest = cx.work.join(producer).join("outputs").join(output);
            if !dest.exists() {
                let dir = produced.artifact_uri.trim_start_matches(ARTIFACTS_SCHEME);
                files::unpack(cx.tracking, dir, &dest)?;
            }
            dest
        }
    };
    Ok(Resolved {
        input: DataInput {
            path,
            origin: Some(Origin {
                run_id: produced.run_id.clone(),
                artifact_uri: produced.artifact_uri.clone(),
            }),
        },
        hash: produced.hash.clone(),
        asset: None,
        upstream: produced.lineage.clone(),
    })
}

/// A uri_file input given a folder holding one file gets that file.
fn fit_to_port(mut resolved: Resolved, port: &Port) -> Resolved {
    if port.kind == PortType::UriFile && resolved.input.path.is_dir() {
        let inside: Vec<PathBuf> = std::fs::read_dir(&resolved.input.path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        if let [only] = inside.as_slice()
            && only.is_file()
        {
            resolved.input.path = only.clone();
        }
    }
    resolved
}

pub fn prepare<'a>(
    cx: &Context<'a>,
    step: &'a Step,
    upstream: &BTreeMap<String, BTreeMap<String, Produced>>,
) -> PipelineResult<Prepared<'a>> {
    let env = environment::resolve(cx.tracking, &step.component.environment, &step.origin)
        .map_err(|e| format!("environment: {e}"))?;
    let mut values = BTreeMap::new();
    let mut data = BTreeMap::new();
    let mut keys = BTreeMap::new();
    let mut assets = Vec::new();
    let mut made_from = Vec::new();
    for (name, port) in &step.component.inputs {
        let binding = step
            .inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone());
        // A pipeline input stands for what it is bound to.
        let binding = match binding {
            Some(Binding::ParentInput(p)) => cx
                .pipeline
                .inputs
                .iter()
                .find(|(n, _)| *n == p)
                .map(|(_, b)| b.clone()),
            other => other,
        };
        let resolved = match binding {
            Some(Binding::Literal(v)) | Some(Binding::Data { path: v, .. })
                if port.kind.is_data() =>
            {
                Some(data_path(cx, step, name, &v)?)
            }
            Some(Binding::Data { path, .. }) | Some(Binding::Literal(path)) => {
                port.check(&path)
                    .map_err(|e| format!("input '{name}': {e}"))?;
                keys.insert(name.clone(), format!("v:{path}"));
                values.insert(name.clone(), path);
                None
            }
            Some(Binding::StepOutput { step: from, output }) => {
                let produced = upstream
                    .get(&from)
                    .and_then(|outputs| outputs.get(&output))
                    .ok_or_else(|| {
                        format!("input '{name}': step '{from}' left no output '{output}'")
                    })?;
                Some(upstream_output(cx, &from, &output, produced)?)
            }
            _ => {
                match &port.default {
                    Some(default) => {
                        keys.insert(name.clone(), format!("v:{default}"));
                        values.insert(name.clone(), default.clone());
                    }
                    None if port.optional => {}
                    None => {
                        return Err(PipelineError::Invalid(format!(
                            "input '{name}' is required but has no value"
                        )));
                    }
                }
                None
            }
        };
        if let Some(resolved) = resolved {
            let resolved = fit_to_port(resolved, port);
            keys.insert(name.clone(), format!("d:{}", resolved.hash));
            if let Some(asset) = resolved.asset {
                assets.push(asset);
            }
            made_from.extend(resolved.upstream);
            data.insert(name.clone(), resolved.input);
        }
    }
    let code = match &step.component.code {
        Some(code) => {
            files::tree_hash(&step.origin.join(code)).map_err(|e| format!("code: {e}"))?
        }
        None => String::new(),
    };
    let native = step.source.builtin().is_some();
    let fingerprint = crate::blobs::hash_bytes(
        json!({
            "component": step.component,
            "code": code,
            "environment": env,
            "inputs": keys,
            // A new Lathe may compute a built-in differently.
            "lathe": if native { BUILTINS_REVISION } else { "" },
        })
        .to_string()
        .as_bytes(),
    );
    let component = format!(
        "{}:{}",
        step.component.name,
        step.component.version.as_deref().unwrap_or("-")
    );
    let mut tags = vec![
        ("mlflow.parentRunId", cx.run_id.clone()),
        ("lathe.step", step.name.clone()),
        ("lathe.component", component),
        ("lathe.fingerprint", fingerprint.clone()),
        ("lathe.environment", env.describe()),
    ];
    // What this step's outputs are made from: what it reads, and what that was made from.
    let mut lineage: Vec<(String, String)> = assets.iter().chain(&made_from).cloned().collect();
    lineage.sort();
    lineage.dedup();
    if !cx.options.force
        && step.component.is_deterministic
        && let Some((from_run, mut outputs)) = cached(cx, &fingerprint)?
    {
        tags.push(("lathe.reused_from", from_run.clone()));
        let (run_id, _) = create_run(cx.tracking, &cx.experiment_id, &step.name, &tags)?;
        log_lineage(cx, &run_id, &assets, &lineage)?;
        end_run(cx.tracking, &run_id, RunStatus::Finished)?;
        for produced in outputs.values_mut() {
            produced.lineage.clone_from(&lineage);
        }
        return Ok(Prepared::Reused {
            run_id,
            from_run,
            outputs,
        });
    }
    let (run_id, artifacts) = create_run(cx.tracking, &cx.experiment_id, &step.name, &tags)?;
    if native {
        let params: Vec<(String, String)> =
            values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        builtins::log_batch(cx.tracking, &run_id, &[], &params)?;
    }
    log_lineage(cx, &run_id, &assets, &lineage)?;
    Ok(Prepared::Run(Job {
        run_id,
        artifacts,
        step,
        env,
        values,
        data,
        fingerprint,
        lineage,
    }))
}

/// Records on the step's run the data asset versions it reads (context `input`) and those its
/// inputs were made from by earlier steps (context `upstream`), so the lineage view shows them
/// for every step, as a script would with `mlflow.log_input`.
fn log_lineage(
    cx: &Context<'_>,
    run_id: &str,
    direct: &[(String, String)],
    lineage: &[(String, String)],
) -> PipelineResult<()> {
    if lineage.is_empty() {
        return Ok(());
    }
    use crate::tracking::types::{Dataset, DatasetInput, Tag};
    let datasets = lineage
        .iter()
        .map(|(name, version)| {
            let context = if direct.iter().any(|d| d.0 == *name && d.1 == *version) {
                "input"
            } else {
                "upstream"
            };
            DatasetInput {
                tags: vec![Tag {
                    key: "mlflow.data.context".to_owned(),
                    value: context.to_owned(),
                }],
                dataset: Dataset {
                    name: name.clone(),
                    digest: format!("{name}-{version}"),
                    source_type: "lathe".to_owned(),
                    source: format!("{name}:{version}"),
                    schema: None,
                    profile: None,
                },
            }
        })
        .collect();
    cx.tracking
        .log_inputs(run_id, datasets)
        .map_err(|e| format!("runs/log-inputs: {e}"))?;
    Ok(())
}

/// An earlier run of the same step, and what it produced.
type Earlier = (String, BTreeMap<String, Produced>);

/// The outputs of an earlier run with this fingerprint, if that run is still there.
fn cached(cx: &Context<'_>, fingerprint: &str) -> PipelineResult<Option<Earlier>> {
    let key = fingerprint.to_owned();
    let found: Option<(String, String)> = cx.tracking.read(move |c| {
        Ok(c.query_row(
            "SELECT s.run_uuid, s.outputs FROM step_cache s
                 JOIN runs r ON r.uuid = s.run_uuid AND r.lifecycle_stage = 'active'
                 WHERE s.fingerprint = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
    })?;
    let Some((run_id, outputs)) = found else {
        return Ok(None);
    };
    let outputs: BTreeMap<String, (String, String)> = serde_json::from_str(&outputs)?;
    let outputs = outputs
        .into_iter()
        .map(|(name, (hash, artifact_uri))| {
            (
                name,
                Produced {
                    hash,
                    run_id: run_id.clone(),
                    artifact_uri,
                    local: None,
                    lineage: Vec::new(),
                },
            )
        })
        .collect();
    Ok(Some((run_id, outputs)))
}

/// Runs the step; stores its outputs and log as its run's artifacts and ends the run.
pub fn execute(cx: &Context<'_>, job: &Job<'_>) -> PipelineResult<BTreeMap<String, Produced>> {
    let step = job.step;
    let work = cx.work.join(&step.name);
    let log_path = work.join("std_log.txt");
    std::fs::create_dir_all(&work).map_err(|e| PipelineError::io(&work, e))?;
    let log_file =
        Mutex::new(std::fs::File::create(&log_path).map_err(|e| PipelineError::io(&log_path, e))?);
    let log = |line: &str| {
        if let Ok(mut file) = log_file.lock() {
            let _ = writeln!(file, "{line}");
        }
        (cx.observe)(Event::Log {
            step: step.name.clone(),
            line: line.to_owned(),
        });
    };
    let mut outputs = BTreeMap::new();
    for (name, port) in &step.component.outputs {
        let path = work.join("outputs").join(name);
        let dir = if port.kind == PortType::UriFile {
            work.join("outputs")
        } else {
            path.clone()
        };
        std::fs::create_dir_all(&dir).map_err(|e| PipelineError::io(&dir, e))?;
        outputs.insert(name.clone(), path);
    }
    let result = match step.source.builtin() {
        Some(name) => builtins::run(
            name,
            &StepIo {
                values: &job.values,
                data: &job.data,
                outputs: &outputs,
                tracking: cx.tracking,
                run_id: &job.run_id,
                experiment_id: &cx.experiment_id,
                cancel: cx.cancel,
                log: &log,
            },
        ),
        None => command(cx, job, &work, &outputs, &log),
    };
    if let Err(message) = &result {
        log(&format!("error: {message}"));
    }
    let stored = result.and_then(|()| store_outputs(cx, job, &outputs));
    if let Ok(mut file) = log_file.lock() {
        let _ = file.flush();
    }
    if let Ok(mut file) = std::fs::File::open(&log_path) {
        let _ = cx
            .tracking
            .put_artifact(&format!("{}/logs/std_log.txt", job.artifacts), &mut file);
    }
    let status = match &stored {
        Ok(_) => RunStatus::Finished,
        Err(_) if cx.cancel.load(Ordering::Relaxed) => RunStatus::Killed,
        Err(_) => RunStatus::Failed,
    };
    end_run(cx.tracking, &job.run_id, status)?;
    stored
}

/// Stores each output as artifacts and records the step for reuse.
fn store_outputs(
    cx: &Context<'_>,
    job: &Job<'_>,
    outputs: &BTreeMap<String, PathBuf>,
) -> PipelineResult<BTreeMap<String, Produced>> {
    let mut produced = BTreeMap::new();
    let mut record = BTreeMap::new();
    for (name, local) in outputs {
        let dir = format!("{}/outputs/{name}", job.artifacts);
        let hash = files::store(cx.tracking, local, &dir)?;
        let artifact_uri = format!("{ARTIFACTS_SCHEME}{dir}");
        record.insert(name.clone(), (hash.clone(), artifact_uri.clone()));
        produced.insert(
            name.clone(),
            Produced {
                hash,
                run_id: job.run_id.clone(),
                artifact_uri,
                local: Some(local.clone()),
                lineage: job.lineage.clone(),
            },
        );
    }
    if job.step.component.is_deterministic {
        let (key, run, json) = (
            job.fingerprint.clone(),
            job.run_id.clone(),
            serde_json::to_string(&record)?,
        );
        cx.tracking.write(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO step_cache (fingerprint, run_uuid, outputs, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![key, run, json, crate::db::now_millis()],
            )?;
            Ok(())
        })?;
    }
    Ok(produced)
}

/// Quotes a value for `sh` when it holds anything but plain characters.
fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=,@%+-".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The command line with `${{inputs.x}}` / `${{outputs.y}}` filled in; a `$[[ … ]]` part is kept
/// only when every input it names has a value.
pub fn render(command: &str, values: &BTreeMap<String, String>) -> PipelineResult<String> {
    let mut text = String::new();
    let mut rest = command;
    while let Some(start) = rest.find("$[[") {
        text.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after
            .find("]]")
            .ok_or("command: a '$[[' has no closing ']]'")?;
        let part = &after[..end];
        let complete = super::super::component::placeholders(part)
            .iter()
            .all(|(kind, name)| values.contains_key(&format!("{kind}.{name}")));
        if complete {
            text.push_str(part);
        }
        rest = &after[end + 2..];
    }
    text.push_str(rest);
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after
            .find("}}")
            .ok_or("command: a '${{' has no closing '}}'")?;
        let key = after[..end].trim();
        let value = values
            .get(key)
            .ok_or_else(|| format!("command: ${{{{{key}}}}} has no value"))?;
        out.push_str(&shell_quote(value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn command(
    cx: &Context<'_>,
    job: &Job<'_>,
    work: &Path,
    outputs: &BTreeMap<String, PathBuf>,
    log: &(dyn Fn(&str) + Sync),
) -> PipelineResult<()> {
    let step = job.step;
    let built = environment::materialize(&environment::cache_root(), &job.env, log, cx.cancel)?;
    let cwd = match &step.component.code {
        Some(code) => {
            let snapshot = work.join("code");
            files::copy(&step.origin.join(code), &snapshot).map_err(|e| format!("code: {e}"))?;
            snapshot
        }
        None => work.to_path_buf(),
    };
    let mut values = BTreeMap::new();
    let mut env: Vec<(String, String)> = Vec::new();
    for (name, value) in &job.values {
        values.insert(format!("inputs.{name}"), value.clone());
    }
    for (name, input) in &job.data {
        let path = input.path.display().to_string();
        env.push((format!("AZURE_ML_INPUT_{name}"), path.clone()));
        values.insert(format!("inputs.{name}"), path);
    }
    for (name, path) in outputs {
        let path = path.display().to_string();
        env.push((format!("AZURE_ML_OUTPUT_{name}"), path.clone()));
        values.insert(format!("outputs.{name}"), path);
    }
    let line = render(&step.component.command, &values)?;
    if built.bin.is_some() {
        cx.tracking.put_artifact(
            &format!("{}/environment/packages.txt", job.artifacts),
            &mut built.packages.as_bytes(),
        )?;
    }
    if let Some(uri) = &cx.options.tracking_uri {
        env.push(("MLFLOW_TRACKING_URI".into(), uri.clone()));
    }
    env.push(("MLFLOW_RUN_ID".into(), job.run_id.clone()));
    env.push(("MLFLOW_EXPERIMENT_ID".into(), cx.experiment_id.clone()));
    log(&format!("$ {line}"));
    if let Some(target) = target(cx, step, log) {
        let tag = crate::tracking::types::Tag {
            key: "lathe.compute".to_owned(),
            value: target.name.clone(),
        };
        let batch = crate::tracking::runs::Batch {
            tags: vec![tag],
            ..Default::default()
        };
        cx.tracking
            .log_batch(&job.run_id, batch)
            .map_err(|e| format!("runs/log-batch: {e}"))?;
        let command = super::ray::Command {
            step: &step.name,
            run_id: &job.run_id,
            line: &line,
            code: step.component.code.as_ref().map(|_| cwd.as_path()),
            env: &env,
            built: &built,
        };
        return super::ray::run(target, &command, log, cx.cancel);
    }
    env.extend(environment::variables(&built));
    process::run(&line, &cwd, &env, log, cx.cancel)
}

/// The Ray target a step runs on, `None` for this machine; a compute the workspace does not
/// know (Azure ML's `cpu-cluster`, `serverless`…) is this machine, said in the step's log.
/// A step run on Ray is tagged with its target (`lathe.compute`); where a step runs is not
/// part of its fingerprint.
fn target<'a>(
    cx: &'a Context<'_>,
    step: &Step,
    log: &(dyn Fn(&str) + Sync),
) -> Option<&'a crate::compute::ComputeSpec> {
    let name = cx.pipeline.compute_of(step);
    let found = cx.options.targets.get(&name);
    if found.is_none() && name != crate::compute::LOCAL {
        log(&format!(
            "compute '{name}' is not a compute target of this workspace (lathe compute list); \
             the step runs on this machine"
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_render_with_optional_parts_and_quoting() {
        let mut values = BTreeMap::new();
        values.insert("inputs.data".to_owned(), "/tmp/my data".to_owned());
        values.insert("outputs.out".to_owned(), "/tmp/out".to_owned());
        let line = render(
            "python run.py --data ${{inputs.data}} $[[--rate ${{inputs.rate}}]] --out ${{outputs.out}}",
            &values,
        )
        .unwrap();
        assert_eq!(line, "python run.py --data '/tmp/my data'  --out /tmp/out");
        values.insert("inputs.rate".to_owned(), "0.1".to_owned());
        let line = render("x $[[--rate ${{inputs.rate}}]]", &values).unwrap();
        assert_eq!(line, "x --rate 0.1");
        assert!(
            render("x ${{inputs.nope}}", &values)
                .unwrap_err()
                .to_string()
                .contains("inputs.nope")
        );
    }
}
