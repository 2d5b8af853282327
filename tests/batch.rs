//! Batch endpoints end to end, from Azure ML YAML with the CLI: the demo pipeline's model scores
//! its held-out table (each answer equal to the one the model's own weights give and to the
//! pipeline's scoring step), a folder of CSV files with a bad row (named by file and row, the
//! error threshold deciding whether the job fails), summary-only jobs, and every job recorded
//! as an MLflow run with the predictions as a data asset. A scikit-learn model logged by the
//! official MLflow client scores in Python workers with scikit-learn's own answers, and a job
//! started with `--no-wait` is cancelled from another process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use lathe_tests::{
    Sandbox, Server, expected, log_sklearn_model, logistic_weights, peer_python, run_metric,
};
use polars::prelude::*;
use serde_json::Value;

fn table(sandbox: &Sandbox, reference: &str) -> DataFrame {
    let ws = lathe_core::Workspace::open(sandbox.workspace()).unwrap();
    let version = ws.resolve(&reference.parse().unwrap()).unwrap();
    lathe_core::profile::load_table(&ws, &version).unwrap()
}

fn numbers(df: &DataFrame, column: &str) -> Vec<Option<f64>> {
    let cast = df.column(column).unwrap().cast(&DataType::Float64).unwrap();
    let values = cast.f64().unwrap();
    (0..values.len()).map(|i| values.get(i)).collect()
}

fn strings(df: &DataFrame, column: &str) -> Vec<Option<String>> {
    let cast = df.column(column).unwrap().cast(&DataType::String).unwrap();
    let values = cast.str().unwrap();
    (0..values.len())
        .map(|i| values.get(i).map(str::to_owned))
        .collect()
}

fn tag<'a>(run: &'a Value, key: &str) -> &'a str {
    run["run"]["data"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no tag {key}: {run}"))["value"]
        .as_str()
        .unwrap()
}

fn deployment_yaml(name: &str, endpoint: &str, model: &str, settings: &str) -> String {
    format!(
        "$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json\n\
         name: {name}\nendpoint_name: {endpoint}\ntype: model\nmodel: {model}\n\
         compute: azureml:batch-cluster\nresources:\n  instance_count: 2\nsettings:\n{settings}"
    )
}

#[test]
fn a_batch_job_scores_a_table_and_files_as_the_model_does_and_records_its_run() {
    let sandbox = Sandbox::new();
    sandbox.run_churn_pipeline();
    let endpoint = sandbox.file(
        "endpoint.yml",
        b"$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\n\
          name: churn-batch\ndescription: Scores customers overnight\nauth_mode: aad_token\n",
    );
    sandbox
        .lathe(&["batch-endpoint", "create", "-f", endpoint.to_str().unwrap()])
        .ok();
    sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--input",
            "churn_test_scored:1",
        ])
        .fails_with("has no deployments");
    let model = "azureml:churn-pipeline-classifier@latest";
    let logistic = sandbox.file(
        "logistic.yml",
        deployment_yaml(
            "logistic",
            "churn-batch",
            model,
            "  mini_batch_size: 37\n  max_concurrency_per_instance: 2\n  \
             output_action: append_row\n  output_file_name: predictions.parquet\n  \
             retry_settings:\n    max_retries: 2\n    timeout: 60\n  error_threshold: -1\n",
        )
        .as_bytes(),
    );
    let made = sandbox
        .lathe(&[
            "batch-deployment",
            "create",
            "-f",
            logistic.to_str().unwrap(),
        ])
        .ok();
    assert!(
        made.stderr.contains("compute") && made.stderr.contains("ignored"),
        "{}",
        made.stderr
    );
    let shown = sandbox
        .lathe(&["batch-endpoint", "show", "churn-batch", "--json"])
        .ok()
        .json();
    assert_eq!(
        shown["defaults"]["deployment_name"], "logistic",
        "the first deployment is the default: {shown}"
    );
    assert_eq!(
        shown["deployments"][0]["model"],
        "azureml:churn-pipeline-classifier:1"
    );

    // The held-out table the pipeline scored, scored again by the batch endpoint.
    let job = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--input",
            "azureml:churn_test_scored:1",
            "--json",
        ])
        .ok()
        .json();
    let input = table(&sandbox, "churn_test_scored:1");
    let rows = input.height();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["input"], "churn_test_scored:1");
    assert_eq!(job["rows_total"], rows as u64);
    assert_eq!(job["rows_done"], rows as u64);
    assert_eq!(job["rows_failed"], 0);
    assert_eq!(job["output_version"], "churn-batch-predictions:1", "{job}");
    let predicted = table(&sandbox, "churn-batch-predictions:1");
    assert_eq!(predicted.height(), rows);
    // The input's own scored columns stay; the endpoint's answers come beside them.
    assert_eq!(
        strings(&predicted, "prediction_2"),
        strings(&input, "prediction"),
        "the batch answers equal the pipeline's scoring step's"
    );
    let (features, classes, w, b) = logistic_weights(&sandbox);
    let labels = strings(&predicted, "prediction_2");
    let probability = numbers(&predicted, "probability_2");
    let feature_values: Vec<Vec<Option<f64>>> =
        features.iter().map(|f| numbers(&predicted, f)).collect();
    for i in 0..rows {
        let row: Vec<f64> = feature_values.iter().map(|c| c[i].unwrap()).collect();
        let (label, p) = expected(&classes, &w, &b, &row);
        assert_eq!(labels[i].as_deref(), Some(label.as_str()), "row {i}");
        assert!((probability[i].unwrap() - p).abs() < 1e-9, "row {i}");
    }
    // And to what an online deployment answers: the same rows as one request, scored the way
    // the endpoint server scores it.
    let store = lathe_core::Store::open(sandbox.workspace()).unwrap();
    let tracking = store.tracking();
    let version = tracking
        .read(|c| lathe_core::tracking::registry::get_version(c, "churn-pipeline-classifier", "1"))
        .unwrap();
    let scorer = lathe_core::serving::Scorer::load(&tracking, &version).unwrap();
    let mut request = lathe_core::serving::Frame::default();
    for (name, column) in features.iter().zip(&feature_values) {
        request
            .push(
                name.clone(),
                column.iter().map(|x| Value::from(x.unwrap())).collect(),
            )
            .unwrap();
    }
    let lathe_core::serving::Output::Labels {
        labels: online,
        probability: Some(online_probability),
    } = scorer.score(&request).unwrap()
    else {
        panic!("a two-class classifier answers labels and probabilities");
    };
    let online: Vec<Option<String>> = online
        .iter()
        .map(|v| Some(v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect();
    assert_eq!(
        labels, online,
        "batch answers equal the online ones, row for row"
    );
    let probability: Vec<f64> = probability.iter().map(|p| p.unwrap()).collect();
    assert_eq!(probability, online_probability);
    let run = sandbox
        .lathe(&["runs", "show", job["run_id"].as_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(run["run"]["info"]["status"], "FINISHED");
    assert_eq!(run_metric(&run, "rows"), rows as f64);
    assert_eq!(run_metric(&run, "failed_rows"), 0.0);
    assert_eq!(tag(&run, "lathe.model"), "churn-pipeline-classifier:1");
    assert_eq!(tag(&run, "lathe.batch.endpoint"), "churn-batch");
    assert_eq!(
        tag(&run, "lathe.output.predictions"),
        "churn-batch-predictions:1"
    );
    assert_eq!(
        run["run"]["inputs"]["dataset_inputs"][0]["dataset"]["name"],
        "churn_test_scored"
    );

    // A folder of CSV files, one row missing a value: named by file and row, the others kept.
    let header: Vec<&str> = features.iter().map(String::as_str).collect();
    let mut lines = vec![header.join(",")];
    for i in 0..10 {
        lines.push(
            feature_values
                .iter()
                .map(|c| c[i].unwrap().to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let good = lines.join("\n");
    let mut bad_lines = lines.clone();
    let mut cells: Vec<&str> = bad_lines[3].split(',').collect();
    cells[1] = "";
    bad_lines[3] = cells.join(",");
    sandbox.file("incoming/a.csv", good.as_bytes());
    sandbox.file("incoming/b.csv", bad_lines.join("\n").as_bytes());
    sandbox.file("incoming/notes.txt", b"not a table");
    let folder = sandbox.path("data/incoming");
    let job = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--input",
            folder.to_str().unwrap(),
            "--output-name",
            "incoming-scored",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["rows_total"], 20);
    assert_eq!(job["rows_failed"], 1);
    let failure = &job["failures"][0];
    assert_eq!(failure["file"], "b.csv", "{job}");
    assert_eq!(failure["row"], 3, "{job}");
    assert!(
        failure["error"].as_str().unwrap().contains(&features[1]),
        "the error names the column: {job}"
    );
    let scored = table(&sandbox, "incoming-scored:1");
    assert_eq!(scored.height(), 20);
    assert_eq!(
        strings(&scored, "file")[10..],
        vec![Some("b.csv".to_owned()); 10]
    );
    let mut answers = strings(&scored, "prediction");
    assert_eq!(answers[12], None, "the bad row has no answer");
    answers[12] = answers[2].clone();
    assert_eq!(
        answers[..10],
        answers[10..],
        "the same rows, the same answers"
    );

    // With no failed row allowed the same input fails the job, and says why.
    let strict = sandbox.file(
        "strict.yml",
        deployment_yaml("strict", "churn-batch", model, "  error_threshold: 0\n").as_bytes(),
    );
    sandbox
        .lathe(&["batch-deployment", "create", "-f", strict.to_str().unwrap()])
        .ok();
    let failed = sandbox.lathe(&[
        "batch-endpoint",
        "invoke",
        "churn-batch",
        "--deployment-name",
        "strict",
        "--input",
        folder.to_str().unwrap(),
        "--json",
    ]);
    assert_ne!(failed.code, 0);
    let job = failed.json();
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["message"]
            .as_str()
            .unwrap()
            .contains("more than error_threshold 0"),
        "{job}"
    );
    let run = sandbox
        .lathe(&["runs", "show", job["run_id"].as_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(run["run"]["info"]["status"], "FAILED");

    // Summary only: the run's figures, no predictions asset.
    let summary = sandbox.file(
        "summary.yml",
        deployment_yaml(
            "summary",
            "churn-batch",
            model,
            "  output_action: summary_only\n",
        )
        .as_bytes(),
    );
    sandbox
        .lathe(&[
            "batch-deployment",
            "create",
            "-f",
            summary.to_str().unwrap(),
            "--set-default",
        ])
        .ok();
    let job = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--input",
            "churn_test_scored",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(job["deployment"], "summary");
    assert_eq!(job["output_version"], Value::Null);
    let jobs = sandbox
        .lathe(&[
            "batch-job",
            "list",
            "--endpoint-name",
            "churn-batch",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(jobs.as_array().unwrap().len(), 4);

    // Bad invocations are refused before a job is recorded, naming what is wrong.
    for (input, needle) in [
        ("no-such-asset:1", "no-such-asset"),
        ("incoming-scored:7", "incoming-scored:7"),
        ("/no/such/folder", "/no/such/folder"),
    ] {
        sandbox
            .lathe(&["batch-endpoint", "invoke", "churn-batch", "--input", input])
            .fails_with(needle);
    }
    sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--input",
            "churn_test_scored",
            "--deployment-name",
            "nope",
        ])
        .fails_with("nope");
    let jobs = sandbox.lathe(&["batch-job", "list", "--json"]).ok().json();
    assert_eq!(jobs.as_array().unwrap().len(), 4);
    let bad = sandbox.file(
        "bad.yml",
        deployment_yaml("worse", "churn-batch", model, "  mini_batch_size: 0\n").as_bytes(),
    );
    sandbox
        .lathe(&["batch-deployment", "create", "-f", bad.to_str().unwrap()])
        .fails_with("mini_batch_size");

    // Files that differ: a cell of text and an infinity fail their rows; a file without an
    // input fails once, its rows counted and left out; columns in another order, or one more,
    // line up by name.
    let row = |i: usize| -> Vec<String> {
        feature_values
            .iter()
            .map(|c| c[i].unwrap().to_string())
            .collect()
    };
    let mut odd = vec![header.join(","), row(0).join(",")];
    let mut text = row(1);
    text[0] = "high".into();
    odd.push(text.join(","));
    let mut infinite = row(2);
    infinite[0] = "inf".into();
    odd.push(infinite.join(","));
    sandbox.file("odd/c.csv", odd.join("\n").as_bytes());
    let lacking: Vec<String> = [features.clone(), row(3), row(4)]
        .iter()
        .map(|cells| {
            cells[..1]
                .iter()
                .chain(&cells[2..])
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    sandbox.file("odd/d.csv", lacking.join("\n").as_bytes());
    let reordered: Vec<String> = [features.clone(), row(5), row(6)]
        .iter()
        .enumerate()
        .map(|(i, cells)| {
            let mut cells: Vec<String> = cells.iter().rev().map(ToString::to_string).collect();
            cells.push(if i == 0 {
                "note".into()
            } else {
                format!("n{i}")
            });
            cells.join(",")
        })
        .collect();
    sandbox.file("odd/e.csv", reordered.join("\n").as_bytes());
    let job = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--deployment-name",
            "logistic",
            "--input",
            sandbox.path("data/odd").to_str().unwrap(),
            "--output-name",
            "odd-scored",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["rows_total"], 7, "{job}");
    assert_eq!(job["rows_failed"], 4, "{job}");
    let failures: Vec<(String, Value, String)> = job["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_owned(),
                f["row"].clone(),
                f["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let first = &features[0];
    assert_eq!(failures.len(), 3, "{job}");
    assert!(failures.contains(&(
        "c.csv".into(),
        Value::from(2),
        format!("column '{first}' holds 'high', not a number")
    )));
    assert!(
        failures.contains(&(
            "c.csv".into(),
            Value::from(3),
            format!("column '{first}' holds 'inf', not a number")
        )) || failures.contains(&(
            "c.csv".into(),
            Value::from(3),
            format!("column '{first}' is inf, not a finite number")
        )),
        "{job}"
    );
    assert!(
        failures.iter().any(|(file, row, error)| file == "d.csv"
            && row.is_null()
            && error.contains(&features[1])),
        "{job}"
    );
    let scored = table(&sandbox, "odd-scored:1");
    assert_eq!(scored.height(), 5, "d.csv's rows are left out");
    assert_eq!(
        strings(&scored, "note"),
        vec![None, None, None, Some("n1".into()), Some("n2".into())]
    );
    assert_eq!(
        strings(&scored, "prediction")[3..],
        labels[5..7],
        "reordered columns are read by name"
    );

    // A job id is never given twice, even once its endpoint is gone.
    sandbox
        .lathe(&["batch-endpoint", "delete", "churn-batch"])
        .ok();
    sandbox
        .lathe(&["batch-endpoint", "create", "-f", endpoint.to_str().unwrap()])
        .ok();
    sandbox
        .lathe(&[
            "batch-deployment",
            "create",
            "-f",
            logistic.to_str().unwrap(),
        ])
        .ok();
    let again = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--input",
            "churn_test_scored:1",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(again["id"], 6, "{again}");
}

/// Waits until job `id` has ended and returns it.
fn ended(sandbox: &Sandbox, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = sandbox
            .lathe(&["batch-job", "show", id, "--json"])
            .ok()
            .json();
        if ["completed", "failed", "cancelled"].contains(&job["state"].as_str().unwrap()) {
            return job;
        }
        assert!(Instant::now() < deadline, "the job never ended: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_mlflow_model_scores_in_python_workers_and_a_job_in_the_background_is_cancelled() {
    let sandbox = Sandbox::new();
    let python = peer_python();
    let server = Server::start(&sandbox.workspace(), &[]);
    let oracle = log_sklearn_model(&server.url, "iris-classifier");
    let version = oracle["version"].as_str().unwrap();
    let columns: Vec<&str> = oracle["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let rows: Vec<String> = oracle["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap().to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let csv = format!("{}\n{}\n", columns.join(","), rows.join("\n"));
    let held_out = sandbox.file("held-out.csv", csv.as_bytes());
    sandbox
        .lathe(&[
            "data",
            "import",
            held_out.to_str().unwrap(),
            "--name",
            "iris-held-out",
        ])
        .ok();
    let endpoint = sandbox.file("endpoint.yml", b"name: iris-batch\n");
    sandbox
        .lathe(&["batch-endpoint", "create", "-f", endpoint.to_str().unwrap()])
        .ok();
    // The system's Python (an image alone), one worker taking one row at a time.
    let deployment = sandbox.file(
        "deployment.yml",
        format!(
            "name: sklearn\nendpoint_name: iris-batch\nmodel: azureml:iris-classifier:{version}\n\
             environment:\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n\
             resources:\n  instance_count: 1\nsettings:\n  mini_batch_size: 1\n  \
             max_concurrency_per_instance: 1\n"
        )
        .as_bytes(),
    );
    sandbox
        .lathe(&[
            "batch-deployment",
            "create",
            "-f",
            deployment.to_str().unwrap(),
        ])
        .ok();
    let vars = [
        ("LATHE_PYTHON", python.as_os_str()),
        ("PIP_NO_INDEX", OsStr::new("1")),
    ];
    let job = sandbox
        .lathe_with(
            &[
                "batch-endpoint",
                "invoke",
                "iris-batch",
                "--input",
                "iris-held-out",
                "--json",
            ],
            &vars,
        )
        .ok()
        .json();
    assert_eq!(job["state"], "completed", "{job}");
    let predicted = table(&sandbox, job["output_version"].as_str().unwrap());
    let answers = numbers(&predicted, "prediction");
    let oracle_answers: Vec<Option<f64>> = oracle["predict"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::as_f64)
        .collect();
    assert_eq!(answers, oracle_answers, "scikit-learn's own predictions");

    // Thousands of one-row mini batches through one worker take seconds: cancelled from another
    // process once it has begun, it stops without writing predictions.
    let many = format!(
        "{}\n{}\n",
        columns.join(","),
        vec![rows.join("\n"); 200].join("\n")
    );
    let big = sandbox.file("many.csv", many.as_bytes());
    sandbox
        .lathe(&[
            "data",
            "import",
            big.to_str().unwrap(),
            "--name",
            "iris-many",
        ])
        .ok();
    let started = sandbox
        .lathe_with(
            &[
                "batch-endpoint",
                "invoke",
                "iris-batch",
                "--input",
                "iris-many",
                "--no-wait",
                "--json",
            ],
            &vars,
        )
        .ok()
        .json();
    let id = started["id"].to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = sandbox
            .lathe(&["batch-job", "show", &id, "--json"])
            .ok()
            .json();
        if job["rows_done"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the job never began: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
    sandbox.lathe(&["batch-job", "cancel", &id]).ok();
    let job = ended(&sandbox, &id);
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(job["rows_done"].as_u64().unwrap() < job["rows_total"].as_u64().unwrap());
    assert_eq!(job["output_version"], Value::Null);
    let run = sandbox
        .lathe(&["runs", "show", job["run_id"].as_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(run["run"]["info"]["status"], "KILLED");
    sandbox
        .lathe(&["batch-job", "cancel", &id])
        .fails_with("has ended");
}

#[test]
fn the_endpoints_section_starts_a_batch_job_and_follows_one_started_by_the_cli() {
    use egui_kittest::kittest::Queryable;
    let sandbox = Sandbox::new();
    sandbox.run_churn_pipeline();
    let endpoint = sandbox.file("endpoint.yml", b"name: churn-batch\n");
    sandbox
        .lathe(&["batch-endpoint", "create", "-f", endpoint.to_str().unwrap()])
        .ok();
    for name in ["logistic", "strict"] {
        let file = sandbox.file(
            &format!("{name}.yml"),
            deployment_yaml(
                name,
                "churn-batch",
                "azureml:churn-pipeline-classifier:1",
                "  error_threshold: 0\n",
            )
            .as_bytes(),
        );
        sandbox
            .lathe(&["batch-deployment", "create", "-f", file.to_str().unwrap()])
            .ok();
    }
    let mut h = egui_kittest::Harness::builder()
        .with_size([1280.0, 1400.0])
        .build_ui_state(
            |ui, wb: &mut lathe_ui::Workbench| wb.ui(ui),
            sandbox.workbench(),
        );
    let wait = Duration::from_secs(30);
    h.get_by_label("Endpoints").click();
    lathe_tests::run_until(&mut h, wait, "the batch endpoint", |h| {
        h.query_by_label("churn-batch  ·  0 job(s)").is_some()
    });
    h.get_by_label("churn-batch  ·  0 job(s)").click();
    lathe_tests::run_until(&mut h, wait, "its deployments", |h| {
        h.query_by_label("Start batch job").is_some()
    });
    assert!(
        h.query_by_label("default").is_some(),
        "the default is marked"
    );
    h.get_by_label("Make default").click();
    lathe_tests::run_until(&mut h, wait, "the new default", |h| {
        h.query_by_label("churn-batch now scores with strict by default")
            .is_some()
    });
    // The input's list of tables is the first combo box (the deployment's the second).
    h.get_all_by_role(egui::accesskit::Role::ComboBox)
        .next()
        .unwrap()
        .click();
    h.run();
    h.get_by_label("churn_test_scored:1").click();
    h.run();
    h.get_by_label("Start batch job").click();
    lathe_tests::run_until(&mut h, wait, "the job's end", |h| {
        h.query_by_label_contains(
            "Batch job 1 scored 400 rows; predictions in churn-batch-predictions:1",
        )
        .is_some()
    });
    lathe_tests::run_until(
        &mut h,
        wait,
        "the job in the list, its predictions linked",
        |h| h.query_by_label("churn-batch-predictions:1").is_some(),
    );
    assert_eq!(
        table(&sandbox, "churn-batch-predictions:1").height(),
        400,
        "the window's job wrote the predictions"
    );
    // A job started from the CLI shows up, with its run, without anything clicked.
    let started = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "churn-batch",
            "--input",
            "churn_test_scored",
            "--json",
        ])
        .ok()
        .json();
    lathe_tests::run_until(&mut h, wait, "the CLI's job", |h| {
        h.query_by_label("churn-batch  ·  2 job(s)").is_some()
    });
    h.get_by_label("2").click();
    lathe_tests::run_until(&mut h, wait, "its details", |h| {
        h.query_by_label(started["run_id"].as_str().unwrap())
            .is_some()
    });
}

#[test]
fn a_pipeline_deployment_runs_its_pipeline_component_over_the_input() {
    let sandbox = Sandbox::new();
    let customers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo/customers.csv");
    sandbox
        .lathe(&[
            "data",
            "import",
            customers.to_str().unwrap(),
            "--name",
            "customers",
        ])
        .ok();
    // A pipeline component as Azure writes one: its data input left for the invocation.
    sandbox.file(
        "clean/clean.yml",
        b"$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json\n\
          name: clean_customers\nversion: 1\ntype: pipeline\n\
          inputs:\n  customers:\n    type: uri_file\n  strategy: median\n\
          outputs:\n  cleaned:\n\
          jobs:\n  clean:\n    type: command\n    component: lathe:clean_missing_data\n\
          \x20   inputs:\n      data: ${{parent.inputs.customers}}\n\
          \x20     strategy: ${{parent.inputs.strategy}}\n\
          \x20   outputs:\n      data: ${{parent.outputs.cleaned}}\n",
    );
    let endpoint = sandbox.file("endpoint.yml", b"name: cleaning\n");
    sandbox
        .lathe(&["batch-endpoint", "create", "-f", endpoint.to_str().unwrap()])
        .ok();
    let deployment = sandbox.file(
        "deployment.yml",
        b"$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json\n\
          name: median\nendpoint_name: cleaning\ntype: pipeline\ncomponent: clean/clean.yml\n\
          settings:\n  continue_on_step_failure: false\n  default_compute: batch-cluster\n",
    );
    let made = sandbox
        .lathe(&[
            "batch-deployment",
            "create",
            "-f",
            deployment.to_str().unwrap(),
        ])
        .ok();
    assert!(made.stdout.contains("pipeline"), "{}", made.stdout);
    assert!(
        made.stderr.contains("settings.default_compute"),
        "{}",
        made.stderr
    );
    // Given by a bare file name, from its own folder, its component path starts there.
    let updated = std::process::Command::new(lathe_tests::lathe_bin())
        .current_dir(deployment.parent().unwrap())
        .arg("--workspace")
        .arg(sandbox.workspace())
        .args(["batch-deployment", "update", "-f", "deployment.yml"])
        .output()
        .unwrap();
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    sandbox
        .lathe(&["batch-endpoint", "invoke", "cleaning"])
        .fails_with("input 'customers'");
    let job = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "cleaning",
            "--input",
            "azureml:customers:1",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["output_version"], "cleaned:1", "{job}");
    assert_eq!(job["rows_done"], 2000, "the output's rows: {job}");
    let raw = table(&sandbox, "customers:1");
    let cleaned = table(&sandbox, "cleaned:1");
    assert_eq!(cleaned.height(), raw.height());
    assert!(
        ["age", "monthly_spend", "satisfaction"].iter().any(|c| raw
            .column(c)
            .unwrap()
            .null_count()
            > 0),
        "the demo table has missing values to clean"
    );
    for column in ["age", "monthly_spend", "satisfaction"] {
        assert_eq!(cleaned.column(column).unwrap().null_count(), 0, "{column}");
    }
    let run = sandbox
        .lathe(&["runs", "show", job["run_id"].as_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(run["run"]["info"]["status"], "FINISHED");
    assert_eq!(tag(&run, "lathe.batch.endpoint"), "cleaning");
    // Azure's own example names a pipeline component registered in its workspace.
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/corpora/azureml/azureml-examples/cli/endpoints/batch/deploy-pipelines/hello-batch/deployment.yml",
    );
    let text = std::fs::read_to_string(hello)
        .unwrap()
        .replace("hello-pipeline-batch", "cleaning");
    let hello = sandbox.file("hello.yml", text.as_bytes());
    sandbox
        .lathe(&["batch-deployment", "create", "-f", hello.to_str().unwrap()])
        .fails_with("azureml:hello_batch@latest");
}

/// A batch scoring script as Azure's batch endpoints run it: `init()` once per worker, then
/// `run(mini_batch)`: a list of file paths for a folder of any files, a DataFrame for a
/// table asset's rows. What it returns becomes the output table; a mini batch that raises is
/// counted against the threshold with the script's error.
const BATCH_SCRIPT: &str = r#"
import json
import os

import pandas as pd


def init():
    global scale
    # A model folder sits under its own name in AZUREML_MODEL_DIR, as in Azure.
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "weights.json")) as f:
        scale = json.load(f)["scale"]


def run(mini_batch):
    if isinstance(mini_batch, pd.DataFrame):
        if (mini_batch["x"] < 0).any():
            raise ValueError("a negative x")
        return pd.DataFrame({"x": mini_batch["x"], "scaled": mini_batch["x"] * scale})
    out = []
    for path in mini_batch:
        with open(path) as f:
            out.append(f"{os.path.basename(path)} {len(f.read().split()) * scale}")
    return out
"#;

#[test]
fn a_batch_scoring_script_runs_over_files_and_table_rows() {
    let sandbox = Sandbox::new();
    let python = peer_python();
    let vars = [("LATHE_PYTHON", python.as_os_str())];
    sandbox.file("deploy/model/weights.json", br#"{"scale": 3}"#);
    sandbox.file("deploy/code/batch_driver.py", BATCH_SCRIPT.as_bytes());
    let endpoint = sandbox.file("deploy/endpoint.yml", b"name: words\n");
    sandbox
        .lathe(&["batch-endpoint", "create", "-f", endpoint.to_str().unwrap()])
        .ok();
    // As the corpus' custom batch deployment writes it.
    let deployment = sandbox.file(
        "deploy/deployment.yml",
        b"name: driver\nendpoint_name: words\ntype: model\nmodel:\n  path: model/\n\
          code_configuration:\n  code: code\n  scoring_script: batch_driver.py\n\
          environment:\n  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest\n\
          resources:\n  instance_count: 1\nsettings:\n  max_concurrency_per_instance: 2\n  \
          mini_batch_size: 2\n  error_threshold: -1\n",
    );
    sandbox
        .lathe(&[
            "batch-deployment",
            "create",
            "-f",
            deployment.to_str().unwrap(),
        ])
        .ok();

    // A folder of text files: the script reads each path it is given.
    for (name, text) in [
        ("a.txt", "one"),
        ("b.txt", "one two"),
        ("c.txt", "one two three"),
        ("sub/d.txt", "four words in here"),
        ("e.md", ""),
    ] {
        sandbox.file(&format!("texts/{name}"), text.as_bytes());
    }
    let folder = sandbox.path("data").join("texts");
    let job = sandbox
        .lathe_with(
            &[
                "batch-endpoint",
                "invoke",
                "words",
                "--input",
                folder.to_str().unwrap(),
                "--json",
            ],
            &vars,
        )
        .ok()
        .json();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(
        (job["rows_total"].as_u64(), job["rows_failed"].as_u64()),
        (Some(5), Some(0))
    );
    let out = table(&sandbox, job["output_version"].as_str().unwrap());
    let mut results: Vec<String> = strings(&out, "result").into_iter().flatten().collect();
    results.sort();
    assert_eq!(
        results,
        ["a.txt 3", "b.txt 6", "c.txt 9", "d.txt 12", "e.md 0"]
    );

    // A table asset: each mini batch a DataFrame; the one holding a negative x fails whole.
    let csv = sandbox.file("nums.csv", b"x\n1\n2\n3\n4\n-5\n6\n7\n");
    sandbox
        .lathe(&["data", "import", csv.to_str().unwrap(), "--name", "nums"])
        .ok();
    let job = sandbox
        .lathe_with(
            &[
                "batch-endpoint",
                "invoke",
                "words",
                "--input",
                "nums:1",
                "--json",
            ],
            &vars,
        )
        .ok()
        .json();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(
        (job["rows_total"].as_u64(), job["rows_failed"].as_u64()),
        (Some(7), Some(2))
    );
    let failure = job["failures"][0]["error"].as_str().unwrap();
    assert!(
        failure.starts_with("rows 5–6: ValueError: a negative x"),
        "{failure}"
    );
    let out = table(&sandbox, job["output_version"].as_str().unwrap());
    let pairs: Vec<(Option<f64>, Option<f64>)> = numbers(&out, "x")
        .into_iter()
        .zip(numbers(&out, "scaled"))
        .collect();
    let mut pairs: Vec<(f64, f64)> = pairs
        .into_iter()
        .map(|(a, b)| (a.unwrap(), b.unwrap()))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(
        pairs,
        [(1.0, 3.0), (2.0, 6.0), (3.0, 9.0), (4.0, 12.0), (7.0, 21.0)]
    );
}

/// A tensor model whose inputs are the table's columns (scikit-learn's Titanic pipeline, one
/// `[N, 1]` tensor per column) scores a batch job's rows as onnxruntime does.
#[test]
fn an_onnx_model_scores_a_tables_columns_as_onnxruntime_does() {
    let sandbox = Sandbox::new();
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../shared/corpora/onnx/sklearn-onnx/docs/examples/pipeline_titanic_nozipmap.onnx",
    );
    sandbox
        .lathe(&[
            "models",
            "register",
            model.to_str().unwrap(),
            "--name",
            "titanic",
        ])
        .ok();
    let endpoint = sandbox.file("endpoint.yml", b"name: titanic\n");
    sandbox
        .lathe(&["batch-endpoint", "create", "-f", endpoint.to_str().unwrap()])
        .ok();
    let deployment = sandbox.file(
        "deployment.yml",
        b"name: onnx\nendpoint_name: titanic\nmodel: azureml:titanic:1\nsettings:\n  mini_batch_size: 2\n",
    );
    sandbox
        .lathe(&[
            "batch-deployment",
            "create",
            "-f",
            deployment.to_str().unwrap(),
        ])
        .ok();
    let csv = sandbox.file(
        "people.csv",
        b"pclass,sex,age,fare,embarked\n1,female,29,211.3375,S\n3,male,2,8.05,Q\n2,male,40,13.0,C\n\
          3,female,2,21.075,missing\n9,other,60,0.0,X\n",
    );
    sandbox
        .lathe(&["data", "import", csv.to_str().unwrap(), "--name", "people"])
        .ok();
    let job = sandbox
        .lathe(&[
            "batch-endpoint",
            "invoke",
            "titanic",
            "--input",
            "people:1",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["rows_failed"], 0, "{job}");
    let out = table(&sandbox, job["output_version"].as_str().unwrap());
    let inputs = sandbox.file(
        "people.json",
        serde_json::json!({
            "pclass": [[1], [3], [2], [3], [9]],
            "sex": [["female"], ["male"], ["male"], ["female"], ["other"]],
            "age": [[29.0], [2.0], [40.0], [2.0], [60.0]],
            "fare": [[211.3375], [8.05], [13.0], [21.075], [0.0]],
            "embarked": [["S"], ["Q"], ["C"], ["missing"], ["X"]],
        })
        .to_string()
        .as_bytes(),
    );
    let oracle = std::process::Command::new(peer_python())
        .arg(lathe_tests::peer_script("onnx_run.py"))
        .arg(&model)
        .arg(&inputs)
        .output()
        .unwrap();
    assert!(
        oracle.status.success(),
        "{}",
        String::from_utf8_lossy(&oracle.stderr)
    );
    let oracle: Value = serde_json::from_slice(&oracle.stdout).unwrap();
    let labels: Vec<f64> = oracle["label"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let served: Vec<f64> = numbers(&out, "label")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(served, labels);
    for j in 0..2 {
        let want: Vec<f64> = oracle["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row[j].as_f64().unwrap())
            .collect();
        let got = numbers(&out, &format!("probabilities[{j}]"));
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a.unwrap() - b).abs() < 1e-6,
                "probabilities[{j}]: {got:?} vs {want:?}"
            );
        }
    }
}
