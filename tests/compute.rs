//! `lathe compute` against a real Ray head (started once for this test binary, loopback only):
//! a target created, listed beside the built-in `local`, checked (Ray's version and the
//! cluster's CPUs as Ray itself reports them), updated and deleted; bad YAML, an unreachable
//! address, a server that is no Ray dashboard and a token variable unset, each said plainly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};

use lathe_tests::{Sandbox, ray_head, ray_python};

fn target(s: &Sandbox, name: &str, address: &str, extra: &str) -> std::path::PathBuf {
    s.file(
        &format!("{name}.yml"),
        format!("name: {name}\ntype: ray\naddress: {address}\n{extra}").as_bytes(),
    )
}

fn compute(s: &Sandbox, args: &[&str]) -> lathe_tests::Run {
    let mut all = vec!["compute"];
    all.extend_from_slice(args);
    s.lathe(&all)
}

#[test]
fn a_ray_target_is_created_checked_against_the_cluster_and_deleted() {
    let s = Sandbox::new();
    let (url, group) = ray_head();
    let file = target(
        &s,
        "ray-team",
        url,
        "resources: {num_cpus: 1, memory: 1GiB}\n",
    );
    compute(&s, &["create", "-f", file.to_str().unwrap()]).ok();
    let listed = compute(&s, &["list", "--json"]).ok().json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["local", "ray-team"]);
    assert_eq!(listed[0]["built_in"], true);

    // What Ray itself says of its version and of the cluster's CPUs (the head has 2).
    let oracle = std::process::Command::new(ray_python())
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('ray'))",
        ])
        .output()
        .unwrap();
    let version = String::from_utf8(oracle.stdout).unwrap().trim().to_owned();
    let checked = compute(&s, &["check", "ray-team", "--json"]).ok().json();
    assert_eq!(checked["version"], version.as_str(), "{checked}");
    assert_eq!(checked["cpus"], 2.0, "{checked}");
    assert_eq!(checked["nodes"], 1, "{checked}");
    assert!(checked["memory_bytes"].as_u64().unwrap() > 0, "{checked}");
    assert_eq!(checked["warnings"].as_array().unwrap().len(), 0);
    let text = compute(&s, &["check", "ray-team"]).ok().stdout;
    assert!(
        text.contains(&format!("Ray {version} answered in")),
        "{text}"
    );

    // Asking for more than the cluster has is said in the check.
    let file = target(&s, "ray-team", url, "resources: {num_cpus: 8}\n");
    compute(&s, &["update", "-f", file.to_str().unwrap()]).ok();
    let checked = compute(&s, &["check", "ray-team", "--json"]).ok().json();
    assert!(
        checked["warnings"][0]
            .as_str()
            .unwrap()
            .contains("asks 8 CPUs; the cluster has 2"),
        "{checked}"
    );
    let yaml = compute(&s, &["show", "ray-team", "--yaml"]).ok().stdout;
    assert!(yaml.contains("num_cpus: 8"), "{yaml}");

    // The head listens on loopback only.
    let members = std::process::Command::new("ps")
        .args(["-eo", "pid=,pgid="])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8(members.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let pid = parts.next()?;
            (parts.next()? == group.to_string()).then(|| pid.to_owned())
        })
        .collect();
    assert!(pids.len() > 2, "the head's processes: {pids:?}");
    let listening = std::process::Command::new("ss")
        .arg("-ltnpH")
        .output()
        .unwrap();
    let listening = String::from_utf8(listening.stdout).unwrap();
    let mut ours = 0;
    for line in listening.lines() {
        if pids.iter().any(|pid| line.contains(&format!("pid={pid},"))) {
            ours += 1;
            let local = line.split_whitespace().nth(3).unwrap();
            assert!(
                local.starts_with("127.0.0.1:") || local.starts_with("[::ffff:127.0.0.1]:"),
                "the Ray head listens beyond loopback: {line}"
            );
        }
    }
    assert!(ours >= 3, "{listening}");

    compute(&s, &["delete", "ray-team"]).ok();
    compute(&s, &["check", "ray-team"]).fails_with("there is no compute target 'ray-team'");
    compute(&s, &["delete", "local"]).fails_with("built-in target");
    let local = compute(&s, &["check", "local", "--json"]).ok().json();
    assert!(local["cpus"].as_f64().unwrap() >= 1.0);
}

#[test]
fn what_is_wrong_with_a_target_is_said_by_field_and_address() {
    let s = Sandbox::new();
    let bad = s.file(
        "bad.yml",
        b"name: t\ntype: ray\naddress: http://h:1\ntoken: abc\n",
    );
    compute(&s, &["create", "-f", bad.to_str().unwrap()])
        .fails_with("token: a token is never stored in the workspace");
    let no_store = target(&s, "t", "http://127.0.0.1:1", "datastore: team\n");
    compute(&s, &["create", "-f", no_store.to_str().unwrap()])
        .fails_with("datastore: there is no datastore 'team'");

    // Nothing listens on a port just freed: said at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = target(&s, "down", &format!("http://127.0.0.1:{port}"), "");
    compute(&s, &["create", "-f", down.to_str().unwrap()]).ok();
    let started = std::time::Instant::now();
    compute(&s, &["check", "down"]).fails_with("cannot reach the Ray cluster at http://127.0.0.1:");
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());

    // A server that is not a Ray dashboard.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    std::thread::Builder::new()
        .spawn(move || {
            for stream in listener.incoming().take(1) {
                let mut stream = stream.unwrap();
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        })
        .unwrap();
    let file = target(&s, "web", &other, "");
    compute(&s, &["create", "-f", file.to_str().unwrap()]).ok();
    compute(&s, &["check", "web"])
        .fails_with("answered 404 to /api/version: is it a Ray dashboard");

    // A token by a variable that is not set.
    let file = target(
        &s,
        "tok",
        "http://127.0.0.1:1",
        "token_env: LATHE_TEST_NO_SUCH_TOKEN\n",
    );
    compute(&s, &["create", "-f", file.to_str().unwrap()]).ok();
    compute(&s, &["check", "tok"])
        .fails_with("token_env: $LATHE_TEST_NO_SUCH_TOKEN is not set in this environment");
}

/// A workspace with the Ray head as target `ray-team`, and a project folder with a code
/// folder (`src/count.py`, which logs with the MLflow client and writes its output) and a
/// three-line input.
fn ray_project(s: &Sandbox) -> std::path::PathBuf {
    let (url, _) = ray_head();
    let file = target(s, "ray-team", url, "");
    compute(s, &["create", "-f", file.to_str().unwrap()]).ok();
    let project = s.path("project");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("rows.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(
        project.join("src/count.py"),
        "import mlflow, os, sys\n\
         rows = open(sys.argv[1]).read().splitlines()\n\
         with mlflow.start_run():\n\
         \x20   mlflow.log_metric('rows', len(rows))\n\
         \x20   mlflow.log_param('cwd', os.getcwd())\n\
         open(os.path.join(sys.argv[2], 'count.txt'), 'w').write(str(len(rows)))\n\
         print('counted', len(rows), flush=True)\n",
    )
    .unwrap();
    project
}

fn outcome_of(run: &lathe_tests::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", run.stdout, run.stderr))
}

fn step<'a>(outcome: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    outcome["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {outcome}"))
}

fn step_log(s: &Sandbox, run_id: &str) -> String {
    let store = lathe_core::Store::open(s.workspace()).unwrap();
    let tracking = store.tracking();
    let run = tracking
        .read(|c| lathe_core::tracking::runs::get(c, run_id))
        .unwrap();
    let dir = tracking
        .artifact_dir(&run.info.artifact_uri)
        .unwrap()
        .unwrap();
    let (file, _) = tracking
        .artifact_file(&format!("{dir}/logs/std_log.txt"))
        .unwrap();
    std::fs::read_to_string(file).unwrap()
}

#[test]
fn a_command_step_runs_on_ray_logs_to_its_run_and_a_rerun_reuses_it() {
    let s = Sandbox::new();
    let project = ray_project(&s);
    let pipeline = project.join("pipeline.yml");
    std::fs::write(
        &pipeline,
        format!("type: pipeline\nexperiment_name: on-ray\nsettings:\n  default_compute: azureml:ray-team\n\
         inputs:\n  data:\n    type: uri_file\n    path: {}\n\
         jobs:\n  count:\n    type: command\n    code: ./src\n    \
         command: python count.py ${{{{inputs.data}}}} ${{{{outputs.out}}}}\n    environment: system\n    \
         inputs:\n      data: ${{{{parent.inputs.data}}}}\n    outputs:\n      out:\n        type: uri_folder\n  \
         show:\n    command: cat ${{{{inputs.x}}}}/count.txt\n    compute: azureml:cpu-cluster\n    \
         environment: system\n    inputs:\n      x: ${{{{parent.jobs.count.outputs.out}}}}\n",
            project.join("rows.txt").display()
        ),
    )
    .unwrap();
    let run = s.lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"]);
    let outcome = outcome_of(&run);
    assert_eq!(run.code, 0, "{outcome}{}", run.stderr);
    let count = step(&outcome, "count");
    assert_eq!(count["status"]["state"], "done", "{outcome}");
    let count_run = count["run_id"].as_str().unwrap();
    let shown = s.lathe(&["runs", "show", count_run, "--json"]).ok().json();
    let data = &shown["run"]["data"];
    let value = |list: &str, key: &str| -> serde_json::Value {
        data[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == key)
            .unwrap_or_else(|| panic!("no {list} {key}: {shown}"))["value"]
            .clone()
    };
    // The MLflow client inside the Ray job logged to the step's own run.
    assert_eq!(value("metrics", "rows"), 3.0, "{shown}");
    assert!(
        value("params", "cwd")
            .as_str()
            .unwrap()
            .contains("_ray_pkg_"),
        "ran in Ray's unpacked working folder: {shown}"
    );
    assert_eq!(value("tags", "lathe.compute"), "ray-team");
    let log = step_log(&s, count_run);
    assert!(log.contains("counted 3"), "the job's log followed: {log}");
    assert!(
        log.contains("on compute 'ray-team' (Ray at http://127.0.0.1:"),
        "{log}"
    );

    // A compute the workspace does not know runs here, and says so; it read the Ray output.
    let show = step(&outcome, "show");
    assert_eq!(show["status"]["state"], "done", "{outcome}");
    let log = step_log(&s, show["run_id"].as_str().unwrap());
    assert!(
        log.contains("compute 'cpu-cluster' is not a compute target of this workspace"),
        "{log}"
    );
    assert!(log.lines().any(|l| l == "3"), "{log}");

    // Where a step runs is not part of its fingerprint: a rerun reuses both.
    let again = outcome_of(&s.lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"]));
    for name in ["count", "show"] {
        assert_eq!(step(&again, name)["status"]["state"], "reused", "{again}");
    }
}

#[test]
fn a_failed_ray_job_names_its_exit_code_and_last_lines_and_cancel_stops_the_job() {
    use lathe_core::pipeline::executor::{self, Event, RunOptions, StepStatus};
    use std::sync::atomic::{AtomicBool, Ordering};

    let s = Sandbox::new();
    let project = ray_project(&s);
    let pipeline = project.join("fails.yml");
    std::fs::write(
        &pipeline,
        "type: pipeline\njobs:\n  bad:\n    compute: ray-team\n    environment: system\n    \
         command: python -c \"import sys; print('no rows in the input', flush=True); sys.exit(3)\"\n",
    )
    .unwrap();
    let run = s.lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"]);
    let outcome = outcome_of(&run);
    let message = step(&outcome, "bad")["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("the Ray job failed with exit code 3"),
        "{outcome}"
    );
    assert!(message.contains("no rows in the input"), "{outcome}");

    // Cancel while the job sleeps: the step is cancelled and Ray stops the job.
    let sleepy = project.join("sleepy.yml");
    std::fs::write(
        &sleepy,
        "type: pipeline\njobs:\n  sleepy:\n    compute: ray-team\n    environment: system\n    \
         command: python -c \"import time; print('waiting', flush=True); time.sleep(120)\"\n",
    )
    .unwrap();
    let store = lathe_core::Store::open(s.workspace()).unwrap();
    let root = s.workspace();
    let tracking = lathe_core::tracking::Tracking::open(&root).unwrap();
    let parsed =
        lathe_core::pipeline::job::parse(&std::fs::read_to_string(&sleepy).unwrap(), &project)
            .unwrap();
    let options = RunOptions::new("cancel-ray").with_targets(&store).unwrap();
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
        &tracking, &root, &parsed, &project, &options, &cancel, &observe,
    )
    .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(90));
    assert_eq!(
        outcome.steps[0].status,
        StepStatus::Cancelled,
        "{:?}",
        outcome.steps
    );
    let (url, _) = ray_head();
    let (_, jobs) = lathe_tests::call(&lathe_tests::http(), "GET", &format!("{url}/api/jobs/"), "");
    let job = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["metadata"]["lathe.step"] == "sleepy")
        .unwrap_or_else(|| panic!("no sleepy job: {jobs}"));
    assert_eq!(job["status"], "STOPPED", "{job}");
}
