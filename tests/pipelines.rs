//! End-to-end tests of pipelines from the CLI: the sample pipelines train and evaluate on the
//! demo data and are fully reused when run again; command components run in their environments
//! with their MLflow logging landing in their step's run; failures, hangs and bad input get
//! clear messages and lose nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use lathe_tests::{Sandbox, peer_python, run_metric};
use serde_json::Value;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/pipelines")
        .join(name)
}

fn run_json(s: &Sandbox, pipeline: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["pipeline", "run", pipeline.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let run = s.lathe(&args);
    let json = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", run.stdout, run.stderr));
    (run.code, json)
}

fn states(outcome: &Value) -> Vec<(String, String)> {
    outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn run_detail(s: &Sandbox, run_id: &str) -> Value {
    s.lathe(&["runs", "show", run_id, "--json"]).ok().json()
}

fn step_run<'a>(outcome: &'a Value, step: &str) -> &'a str {
    outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step)
        .unwrap()["run_id"]
        .as_str()
        .unwrap()
}

#[test]
fn the_churn_sample_trains_evaluates_registers_and_is_fully_reused_on_a_rerun() {
    let s = Sandbox::new();
    let pipeline = sample("churn-classification.yml");
    let (code, first) = run_json(&s, &pipeline, &[]);
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["status"], "FINISHED");
    let states_first = states(&first);
    assert_eq!(states_first.len(), 12);
    assert!(
        states_first.iter().all(|(_, s)| s == "done"),
        "{states_first:?}"
    );
    let evaluation = run_detail(&s, step_run(&first, "evaluate_logistic"));
    let accuracy = run_metric(&evaluation, "accuracy");
    let auc = run_metric(&evaluation, "roc_auc");
    assert!(
        accuracy > 0.7 && auc > 0.6,
        "accuracy {accuracy}, auc {auc}"
    );
    assert!(run_metric(&run_detail(&s, step_run(&first, "evaluate_tree")), "f1") > 0.0);
    // Each step is a child run of the pipeline's run.
    let train = run_detail(&s, step_run(&first, "train_logistic"));
    let tags = train["run"]["data"]["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["key"] == "mlflow.parentRunId" && t["value"] == first["run_id"])
    );
    // The registered model points at the training run (lineage).
    let model = s
        .lathe(&["models", "show", "churn-pipeline-classifier:1", "--json"])
        .ok()
        .json();
    assert_eq!(model[0]["run_id"], step_run(&first, "train_logistic"));

    // The pipeline's output is a data asset, its source naming the run.
    let scored = s
        .lathe(&["data", "show", "churn_test_scored", "--json"])
        .ok()
        .json();
    let source = scored[0]["source"].as_str().unwrap_or_default().to_owned();
    assert!(
        source.contains(first["run_id"].as_str().unwrap()) && source.contains("score_logistic"),
        "{scored}"
    );

    let (code, second) = run_json(&s, &pipeline, &[]);
    assert_eq!(code, 0, "{second}");
    let states_second = states(&second);
    assert!(
        states_second.iter().all(|(_, s)| s == "reused"),
        "{states_second:?}"
    );
    // No new model version: the register step was reused too.
    s.lathe(&["models", "show", "churn-pipeline-classifier:2"])
        .fails_with("churn-pipeline-classifier");
    // The text report names each reused step.
    let text = s
        .lathe(&["pipeline", "run", pipeline.to_str().unwrap()])
        .ok();
    assert!(
        text.stdout.contains("12 step(s), 0 run, 12 reused"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("train_logistic           reused (outputs of run")
    );
    // --force runs everything again.
    let (_, forced) = run_json(&s, &pipeline, &["--force"]);
    assert!(states(&forced).iter().all(|(_, s)| s == "done"));
}

#[test]
fn a_model_trained_behind_preparation_scores_raw_rows_as_it_scored_prepared_ones() {
    let s = Sandbox::new();
    let customers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo/customers.csv");
    let step = |name: &str, component: &str, inputs: &str| {
        format!(
            "  {name}:\n    type: command\n    component: lathe:{component}\n    inputs:\n{inputs}"
        )
    };
    let jobs = [
        step(
            "clean",
            "clean_missing_data",
            "      data: ${{parent.inputs.customers}}\n      strategy: median\n",
        ),
        step(
            "encode",
            "one_hot_encode",
            "      data: ${{parent.jobs.clean.outputs.data}}\n      exclude: churned,customer_id,signup_date\n",
        ),
        step(
            "scale",
            "normalize",
            "      data: ${{parent.jobs.encode.outputs.data}}\n      exclude: churned\n",
        ),
        step(
            "train",
            "train_logistic_regression",
            "      data: ${{parent.jobs.scale.outputs.data}}\n      label: churned\n",
        ),
        // The same rows, prepared by the pipeline, and raw: the model prepares those itself.
        step(
            "score_prepared",
            "score_model",
            "      model: ${{parent.jobs.train.outputs.model}}\n      data: ${{parent.jobs.scale.outputs.data}}\n",
        ) + "    outputs:\n      scored: ${{parent.outputs.prepared}}\n",
        step(
            "score_raw",
            "score_model",
            "      model: ${{parent.jobs.train.outputs.model}}\n      data: ${{parent.inputs.customers}}\n",
        ) + "    outputs:\n      scored: ${{parent.outputs.raw}}\n",
        // Rows prepared by other steps (not scaled) are refused, not scored wrongly.
        step(
            "score_half",
            "score_model",
            "      model: ${{parent.jobs.train.outputs.model}}\n      data: ${{parent.jobs.encode.outputs.data}}\n",
        ),
    ];
    let yaml = format!(
        "type: pipeline\nexperiment_name: raw-rows\ninputs:\n  customers:\n    type: uri_file\n    \
         path: {}\noutputs:\n  prepared:\n  raw:\njobs:\n{}",
        customers.display(),
        jobs.concat()
    );
    let file = s.file("raw.yml", yaml.as_bytes());
    let (code, outcome) = run_json(&s, &file, &[]);
    assert_ne!(code, 0, "score_half fails: {outcome}");
    let states = states(&outcome);
    let state = |name: &str| states.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(state("score_raw"), "done", "{outcome}");
    assert_eq!(state("score_prepared"), "done", "{outcome}");
    assert_eq!(state("score_half"), "failed", "{outcome}");
    let half = outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "score_half")
        .unwrap()["status"]["message"]
        .to_string();
    assert!(
        half.contains("other preparation than the model was trained"),
        "{half}"
    );
    let probability = |asset: &str| -> Vec<f64> {
        let ws = lathe_core::Workspace::open(s.workspace()).unwrap();
        let version = ws.resolve(&asset.parse().unwrap()).unwrap();
        let df = lathe_core::profile::load_table(&ws, &version).unwrap();
        let column = df
            .column("probability")
            .unwrap()
            .cast(&polars::prelude::DataType::Float64)
            .unwrap();
        column.f64().unwrap().into_no_null_iter().collect()
    };
    let (prepared, raw) = (probability("prepared:1"), probability("raw:1"));
    assert_eq!(prepared.len(), 2000);
    assert_eq!(raw.len(), 2000);
    for (i, (a, b)) in prepared.iter().zip(&raw).enumerate() {
        // The prepared table travelled between steps as CSV text.
        assert!((a - b).abs() < 1e-12, "row {i}: prepared {a}, raw {b}");
    }
}

#[test]
fn the_regression_sample_reads_a_data_asset_and_sweeps_with_trial_runs() {
    let s = Sandbox::new();
    let customers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo/customers.csv");
    s.lathe(&[
        "data",
        "import",
        customers.to_str().unwrap(),
        "--name",
        "customers",
    ])
    .ok();
    let (code, outcome) = run_json(&s, &sample("spend-regression.yml"), &[]);
    assert_eq!(code, 0, "{outcome}");
    let evaluation = run_detail(&s, step_run(&outcome, "evaluate"));
    assert!(run_metric(&evaluation, "r2") > 0.5);
    assert!(run_metric(&evaluation, "rmse") > 0.0);
    // The step that read the asset records it as an input (lineage).
    let select = run_detail(&s, step_run(&outcome, "select"));
    assert_eq!(
        select["run"]["inputs"]["dataset_inputs"][0]["dataset"]["source"],
        "customers:1"
    );
    // So does every step after it, the asset being what its inputs were made from: the
    // lineage of the evaluation reaches the data without any mlflow.log_input.
    let lineage = |run: &Value| {
        let input = &run["run"]["inputs"]["dataset_inputs"][0];
        let context = input["tags"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["key"] == "mlflow.data.context"))
            .map(|t| t["value"].clone());
        (input["dataset"]["source"].clone(), context)
    };
    assert_eq!(lineage(&select).1, Some("input".into()));
    assert_eq!(
        lineage(&evaluation),
        ("customers:1".into(), Some("upstream".into()))
    );
    // A rerun reuses every step, and the reused runs name it too.
    let (_, again) = run_json(&s, &sample("spend-regression.yml"), &[]);
    let reused = run_detail(&s, step_run(&again, "evaluate"));
    assert_eq!(lineage(&reused).0, "customers:1");
    let sweep = step_run(&outcome, "sweep");
    let runs = s
        .lathe(&[
            "runs",
            "search",
            "--experiment",
            "spend-pipeline",
            &format!("tags.mlflow.parentRunId = '{sweep}'"),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(runs.as_array().unwrap().len(), 5, "{runs}");
    assert!(run_metric(&run_detail(&s, sweep), "best_rmse") > 0.0);
}

/// A pipeline of command steps in a folder of its own.
fn command_pipeline(s: &Sandbox, jobs: &str) -> PathBuf {
    let dir = s.path("project");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipeline.yml");
    std::fs::write(
        &path,
        format!("type: pipeline\nexperiment_name: commands\njobs:\n{jobs}"),
    )
    .unwrap();
    path
}

#[test]
fn a_command_step_logs_to_its_own_run_with_the_mlflow_client() {
    let s = Sandbox::new();
    let python = peer_python();
    let script = s.file(
        "log.py",
        b"import mlflow, os, sys\nwith mlflow.start_run():\n    mlflow.log_metric('score', 0.75)\n    mlflow.log_param('source', 'script')\nopen(os.path.join(sys.argv[1], 'done.txt'), 'w').write('ok')\nprint('logged')\n",
    );
    let pipeline = command_pipeline(
        &s,
        &format!(
            "  log:\n    command: {} {} ${{{{outputs.out}}}}\n    environment: system\n    outputs:\n      out:\n",
            python.display(),
            script.display()
        ),
    );
    let (code, outcome) = run_json(&s, &pipeline, &[]);
    assert_eq!(code, 0, "{outcome}");
    let run = run_detail(&s, step_run(&outcome, "log"));
    assert_eq!(run_metric(&run, "score"), 0.75);
    let artifacts = s
        .lathe(&["runs", "show", step_run(&outcome, "log")])
        .ok()
        .stdout;
    assert!(artifacts.contains("source"), "{artifacts}");
}

#[test]
fn a_failed_step_skips_its_dependents_keeps_the_others_and_is_rerun_alone() {
    let s = Sandbox::new();
    let flag = s.path("fixed");
    let jobs = format!(
        "  good:\n    command: echo fine > ${{{{outputs.out}}}}/f.txt\n    environment: system\n    outputs:\n      out:\n  \
         bad:\n    command: test -e {flag} || (echo 'no such thing' >&2; exit 4)\n    environment: system\n    outputs:\n      out:\n  \
         after_bad:\n    command: ls ${{{{inputs.x}}}}\n    environment: system\n    inputs:\n      x: ${{{{parent.jobs.bad.outputs.out}}}}\n  \
         after_good:\n    command: cat ${{{{inputs.x}}}}/f.txt\n    environment: system\n    inputs:\n      x: ${{{{parent.jobs.good.outputs.out}}}}\n",
        flag = flag.display()
    );
    let pipeline = command_pipeline(&s, &jobs);
    let run = s.lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"]);
    assert_ne!(run.code, 0);
    assert_eq!(run.stderr.trim(), "error: the pipeline failed");
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    let by_name: std::collections::BTreeMap<_, _> = states(&outcome).into_iter().collect();
    assert_eq!(by_name["good"], "done");
    assert_eq!(by_name["after_good"], "done");
    assert_eq!(by_name["bad"], "failed");
    assert_eq!(by_name["after_bad"], "skipped");
    let bad = outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bad")
        .unwrap();
    assert_eq!(
        bad["status"]["message"],
        "the command exited with status 4: no such thing"
    );
    // The failure's log is kept on its run.
    let log_run = bad["run_id"].as_str().unwrap();
    let shown = s.lathe(&["runs", "show", log_run]).ok().stdout;
    assert!(shown.contains("logs/std_log.txt"), "{shown}");

    std::fs::write(&flag, "").unwrap();
    let (code, again) = run_json(&s, &pipeline, &[]);
    assert_eq!(code, 0, "{again}");
    let by_name: std::collections::BTreeMap<_, _> = states(&again).into_iter().collect();
    assert_eq!(by_name["good"], "reused");
    assert_eq!(by_name["after_good"], "reused");
    assert_eq!(by_name["bad"], "done");
    assert_eq!(by_name["after_bad"], "done");
}

#[test]
fn a_python_component_runs_in_a_virtual_environment_built_once() {
    let s = Sandbox::new();
    let pipeline = sample("profile-customers.yml");
    let (code, first) = run_json(&s, &pipeline, &[]);
    assert_eq!(code, 0, "{first}");
    let run_id = step_run(&first, "profile");
    let shown = s.lathe(&["runs", "show", run_id]).ok().stdout;
    assert!(shown.contains("environment/packages.txt"), "{shown}");
    assert!(shown.contains("outputs/report/report.json"), "{shown}");
    // Built once for the whole machine (shared by workspaces), not inside the workspace.
    assert!(!s.workspace().join("envs").exists());
    let spec = lathe_core::pipeline::environment::EnvSpec::Python {
        requirements: Vec::new(),
    };
    let built = lathe_core::pipeline::environment::cache_root()
        .join("envs")
        .join(spec.hash());
    let ready = built.join(".lathe-ready");
    let stamp = std::fs::metadata(&ready).unwrap().modified().unwrap();
    // Forced to run again, the step reuses the built environment (not built again).
    let (code, _) = run_json(&s, &pipeline, &["--force"]);
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::metadata(&ready).unwrap().modified().unwrap(),
        stamp
    );
}

#[test]
fn registered_components_and_environments_are_used_by_name() {
    let s = Sandbox::new();
    let dir = s.path("comp");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("src/hello.sh"),
        "echo hello from $1 > $2/greeting.txt\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("component.yml"),
        "name: greet\ntype: command\ncode: ./src\nenvironment: azureml:shell:1\ninputs:\n  who: {type: string, default: lathe}\noutputs:\n  out: {type: uri_folder}\ncommand: sh hello.sh ${{inputs.who}} ${{outputs.out}}\n",
    )
    .unwrap();
    std::fs::write(dir.join("env.yml"), "name: shell\nimage: ubuntu:22.04\n").unwrap();
    let registered = s
        .lathe(&[
            "component",
            "register",
            dir.join("component.yml").to_str().unwrap(),
        ])
        .ok();
    assert!(
        registered
            .stdout
            .contains("registered greet:1 (1 code file(s))"),
        "{}",
        registered.stdout
    );
    // The code snapshot is taken now: a later edit does not change the registered version.
    std::fs::write(dir.join("src/hello.sh"), "exit 9\n").unwrap();
    let pipeline = command_pipeline(
        &s,
        "  greet:\n    component: azureml:greet:1\n    inputs:\n      who: tests\n",
    );
    let run = s.lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stdout
            .contains("environment 'azureml:shell:1' is not registered"),
        "{}",
        run.stdout
    );
    s.lathe(&[
        "environment",
        "register",
        dir.join("env.yml").to_str().unwrap(),
        "--name",
        "shell",
    ])
    .ok();
    let (code, outcome) = run_json(&s, &pipeline, &[]);
    assert_eq!(code, 0, "{outcome}");
    let shown = s
        .lathe(&["runs", "show", step_run(&outcome, "greet")])
        .ok()
        .stdout;
    assert!(shown.contains("outputs/out/greeting.txt"), "{shown}");
    let list = s.lathe(&["component", "list"]).ok().stdout;
    assert!(
        list.contains("split_data") && list.contains("greet"),
        "{list}"
    );
    let yaml = s.lathe(&["component", "show", "lathe:sweep"]).ok().stdout;
    assert!(yaml.contains("name: sweep"), "{yaml}");
}

#[test]
fn bad_pipelines_are_refused_naming_the_step_and_field() {
    let s = Sandbox::new();
    let cases = [
        (
            "  a:\n    component: lathe:split_dat\n",
            "jobs.a.component: 'lathe:split_dat' is not a built-in component",
        ),
        (
            "  a:\n    component: lathe:split_data\n    inputs:\n      data: ./x.csv\n      fraction: 2\n",
            "jobs.a.inputs.fraction: 2 is above the maximum 0.99",
        ),
        (
            "  a:\n    component: lathe:score_model\n    inputs:\n      data: ./x.csv\n",
            "jobs.a.inputs.model: required by the component, but not given",
        ),
        (
            "  a:\n    component: lathe:split_data\n    inputs:\n      data: ./x.csv\n      seed: ${{parent.jobs.a.outputs.train}}\n",
            "takes a integer but step 'a' gives a mltable",
        ),
    ];
    for (jobs, expected) in cases {
        let pipeline = command_pipeline(&s, jobs);
        s.lathe(&["pipeline", "run", pipeline.to_str().unwrap()])
            .fails_with(expected);
    }
    let pipeline = command_pipeline(
        &s,
        "  a:\n    component: lathe:select_columns\n    inputs:\n      data: ./missing.csv\n      columns: x\n",
    );
    let run = s.lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stdout.contains("input 'data'") && run.stdout.contains("missing.csv"),
        "{}",
        run.stdout
    );
}

#[test]
fn cancel_stops_a_hanging_step_and_keeps_what_finished() {
    use std::sync::atomic::{AtomicBool, Ordering};

    use lathe_core::pipeline::executor::{self, Event, RunOptions, StepStatus};

    let s = Sandbox::new();
    let pipeline = command_pipeline(
        &s,
        "  first:\n    command: echo kept > ${{outputs.out}}/f.txt\n    environment: system\n    outputs:\n      out:\n  \
         hang:\n    command: echo waiting; sleep 60\n    environment: system\n    inputs:\n      x: ${{parent.jobs.first.outputs.out}}\n    outputs:\n      out:\n  \
         never:\n    command: 'true'\n    environment: system\n    inputs:\n      x: ${{parent.jobs.hang.outputs.out}}\n",
    );
    let root = s.workspace();
    let tracking = lathe_core::tracking::Tracking::open(&root).unwrap();
    let parsed = lathe_core::pipeline::job::parse(
        &std::fs::read_to_string(&pipeline).unwrap(),
        pipeline.parent().unwrap(),
    )
    .unwrap();
    let cancel = AtomicBool::new(false);
    let observe = |event: Event| {
        if let Event::Log { line, .. } = event
            && line == "waiting"
        {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let started = std::time::Instant::now();
    let outcome = executor::run(
        &tracking,
        &root,
        &parsed,
        pipeline.parent().unwrap(),
        &RunOptions::new("cancel"),
        &cancel,
        &observe,
    )
    .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(outcome.status, "KILLED");
    let status: Vec<&StepStatus> = outcome.steps.iter().map(|s| &s.status).collect();
    assert_eq!(
        status,
        [
            &StepStatus::Done,
            &StepStatus::Cancelled,
            &StepStatus::Cancelled
        ]
    );
    // The finished step's output is kept, and reused by the next run.
    cancel.store(false, Ordering::Relaxed);
    let quiet = |_: Event| {};
    let again = std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            executor::run(
                &tracking,
                &root,
                &parsed,
                pipeline.parent().unwrap(),
                &RunOptions::new("cancel"),
                &cancel,
                &quiet,
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        cancel.store(true, Ordering::Relaxed);
        run.join().unwrap().unwrap()
    });
    assert!(
        matches!(again.steps[0].status, StepStatus::Reused { .. }),
        "{:?}",
        again.steps
    );
}

#[test]
fn schedules_are_added_listed_and_removed_from_the_cli() {
    let s = Sandbox::new();
    let pipeline = sample("churn-classification.yml");
    let added = s
        .lathe(&[
            "pipeline",
            "schedule",
            "add",
            pipeline.to_str().unwrap(),
            "--cron",
            "0 3 * * *",
        ])
        .ok()
        .stdout;
    assert!(added.starts_with("schedule 1: "), "{added}");
    assert!(
        added.contains("into experiment churn-pipeline; next run"),
        "{added}"
    );
    let listed = s
        .lathe(&["pipeline", "schedule", "list", "--json"])
        .ok()
        .json();
    assert_eq!(listed[0]["cron"], "0 3 * * *");
    assert!(listed[0]["next_run_at"].as_i64().unwrap() > listed[0]["created_at"].as_i64().unwrap());
    s.lathe(&[
        "pipeline",
        "schedule",
        "add",
        pipeline.to_str().unwrap(),
        "--cron",
        "0 25 * * *",
    ])
    .fails_with("'0 25 * * *' is not a cron pattern");
    s.lathe(&[
        "pipeline",
        "schedule",
        "add",
        "nothing:1",
        "--cron",
        "0 3 * * *",
    ])
    .fails_with("no saved pipeline nothing version 1");
    s.lathe(&["pipeline", "schedule", "remove", "1"]).ok();
    s.lathe(&["pipeline", "schedule", "remove", "1"])
        .fails_with("there is no schedule 1");
}

#[test]
fn a_non_deterministic_component_runs_every_time() {
    let s = Sandbox::new();
    let component = |name: &str, deterministic: bool| {
        format!(
            "    component:\n      name: {name}\n      is_deterministic: {deterministic}\n      environment: system\n      command: date +%N > ${{{{outputs.out}}}}/now.txt\n      outputs:\n        out: {{type: uri_folder}}\n"
        )
    };
    let pipeline = command_pipeline(
        &s,
        &format!(
            "  steady:\n{}  fresh:\n{}",
            component("steady", true),
            component("fresh", false)
        ),
    );
    let (code, _) = run_json(&s, &pipeline, &[]);
    assert_eq!(code, 0);
    let (_, again) = run_json(&s, &pipeline, &[]);
    let by_name: std::collections::BTreeMap<_, _> = states(&again).into_iter().collect();
    assert_eq!(by_name["steady"], "reused");
    assert_eq!(by_name["fresh"], "done");
}

#[test]
fn a_nested_pipeline_component_runs_as_its_steps() {
    let s = Sandbox::new();
    let dir = s.path("project");
    std::fs::create_dir_all(dir.join("parts")).unwrap();
    std::fs::write(
        dir.join("parts/make.yml"),
        "type: pipeline\nname: make\ninputs:\n  word: {type: string, default: hello}\noutputs:\n  made: {type: uri_folder}\njobs:\n  write:\n    command: echo ${{inputs.w}} > ${{outputs.out}}/word.txt\n    environment: system\n    inputs:\n      w: ${{parent.inputs.word}}\n    outputs:\n      out: ${{parent.outputs.made}}\n",
    )
    .unwrap();
    let pipeline = command_pipeline(
        &s,
        "  first:\n    type: pipeline\n    component: ./parts/make.yml\n    inputs:\n      word: nested\n  \
         read:\n    command: grep nested ${{inputs.x}}/word.txt\n    environment: system\n    inputs:\n      x: ${{parent.jobs.first.outputs.made}}\n",
    );
    let (code, outcome) = run_json(&s, &pipeline, &[]);
    assert_eq!(code, 0, "{outcome}");
    let names: Vec<(String, String)> = states(&outcome);
    assert_eq!(
        names,
        [
            ("first_write".to_owned(), "done".to_owned()),
            ("read".to_owned(), "done".to_owned())
        ]
    );
}

#[test]
fn ports_are_typed_and_register_takes_only_a_model() {
    let s = Sandbox::new();
    let dir = s.path("project");
    std::fs::create_dir_all(dir.join("metrics")).unwrap();
    std::fs::write(dir.join("data.csv"), "x,y\n1,0\n2,1\n3,0\n4,1\n5,1\n6,0\n").unwrap();
    std::fs::write(dir.join("metrics/metrics.json"), "{}").unwrap();
    // An evaluation's metrics folder wired into Register model: refused before anything runs.
    let pipeline = command_pipeline(
        &s,
        "  train:\n    component: lathe:train_logistic_regression\n    inputs:\n      data: ./data.csv\n      label: y\n  \
         score:\n    component: lathe:score_model\n    inputs:\n      model: ${{parent.jobs.train.outputs.model}}\n      data: ./data.csv\n  \
         evaluate:\n    component: lathe:evaluate_model\n    inputs:\n      scored: ${{parent.jobs.score.outputs.scored}}\n      label: y\n  \
         register:\n    component: lathe:register_model\n    inputs:\n      model: ${{parent.jobs.evaluate.outputs.metrics}}\n      name: wrong\n",
    );
    s.lathe(&["pipeline", "validate", pipeline.to_str().unwrap()])
        .fails_with(
            "jobs.register.model: takes a mlflow_model but step 'evaluate' gives a uri_folder",
        );
    // A folder given as the model that holds no MLmodel: refused when the step runs, and
    // nothing is registered.
    let pipeline = command_pipeline(
        &s,
        "  register:\n    component: lathe:register_model\n    inputs:\n      model:\n        type: mlflow_model\n        path: ./metrics\n      name: wrong\n",
    );
    let (code, outcome) = run_json(&s, &pipeline, &[]);
    assert_ne!(code, 0);
    let message = outcome["steps"][0]["status"]["message"].to_string();
    assert!(
        message.contains("is not a model (no MLmodel file in it)"),
        "{outcome}"
    );
    s.lathe(&["models", "show", "wrong"])
        .fails_with("no registered model named 'wrong'");
}

#[test]
fn pipeline_components_that_include_each_other_are_named_not_recursed() {
    let s = Sandbox::new();
    let dir = s.path("loop");
    std::fs::create_dir_all(&dir).unwrap();
    let nested = |inner: &str| {
        format!(
            "$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json\ntype: pipeline\n\
             jobs:\n  inner:\n    type: pipeline\n    component: ./{inner}\n"
        )
    };
    std::fs::write(dir.join("self.yml"), nested("self.yml")).unwrap();
    std::fs::write(dir.join("a.yml"), nested("b.yml")).unwrap();
    std::fs::write(dir.join("b.yml"), nested("a.yml")).unwrap();
    for verb in ["validate", "run", "export"] {
        let run = s.lathe(&["pipeline", verb, dir.join("self.yml").to_str().unwrap()]);
        assert_ne!(run.code, 0, "{verb}");
        assert!(
            run.stderr.contains("include each other") && run.stderr.contains("self.yml -> "),
            "{verb}: {}",
            run.stderr
        );
        let run = s.lathe(&["pipeline", verb, dir.join("a.yml").to_str().unwrap()]);
        assert!(
            run.stderr.contains("a.yml -> ") && run.stderr.contains("b.yml -> "),
            "{verb}: {}",
            run.stderr
        );
    }
}

#[test]
fn deeply_nested_yaml_is_refused_at_once() {
    let s = Sandbox::new();
    let deep = s.file(
        "deep.yml",
        format!(
            "type: pipeline\njobs: {}{}\n",
            "[".repeat(200_000),
            "]".repeat(200_000)
        )
        .as_bytes(),
    );
    // The bound's own message: the parser (quadratic in the depth) never saw it.
    s.lathe(&["pipeline", "validate", deep.to_str().unwrap()])
        .fails_with("nests deeper than 64 levels (line 2)");
    let component = s.file(
        "deep-component.yml",
        format!("name: x\ncommand: {}\n", "{".repeat(100_000)).as_bytes(),
    );
    s.lathe(&["component", "validate", component.to_str().unwrap()])
        .fails_with("nests deeper than 64 levels");
}
