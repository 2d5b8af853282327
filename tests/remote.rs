//! `lathe runs push|pull` against a real `mlflow server` (started once for this test binary),
//! read back and written with the official MLflow client: the demo workspace pushed and read
//! back whole, byte for byte; a second push that sends nothing and a third that sends only
//! what was logged since; runs logged by the client pulled, pulled again and pushed back
//! without a duplicate; an unreachable server, a refused token and missing names said plainly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use lathe_core::Store;
use lathe_core::tracking::{Tracking, metrics, registry, runs};
use lathe_tests::{Sandbox, mlflow_server, peer_python, peer_script};
use serde_json::Value;

/// The official client's view of `experiments` and every registered model (see
/// peers/mlflow_remote.py), with artifacts downloaded under `dest`.
fn read_back(dest: &Path, experiments: &[&str]) -> Value {
    let dest = dest.to_str().unwrap();
    let mut args = vec!["read", dest];
    args.extend_from_slice(experiments);
    client(&args)
}

/// Runs peers/mlflow_remote.py's `args[0]` mode against the server with the other `args`;
/// the JSON it prints.
fn client(args: &[&str]) -> Value {
    let out = std::process::Command::new(peer_python())
        .arg(peer_script("mlflow_remote.py"))
        .arg(args[0])
        .arg(mlflow_server())
        .args(&args[1..])
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_line(&out.stdout)
}

/// The JSON on the last line of a script's output (the client prints links to runs before it).
fn last_line(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.trim_end().lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn runs_cli(s: &Sandbox, args: &[&str]) -> lathe_tests::Run {
    let mut all = vec!["runs"];
    all.extend_from_slice(args);
    s.lathe(&all)
}

/// `kind outcome` → how many, from a `--json` report.
fn outcomes(report: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for item in report["items"].as_array().unwrap() {
        *out.entry(format!(
            "{} {}",
            item["kind"].as_str().unwrap(),
            item["outcome"].as_str().unwrap()
        ))
        .or_default() += 1;
    }
    out
}

/// A run as both sides compare it: name, status, times, params, tags, every metric point as
/// `[step, timestamp, value]` by key, and artifacts by path and size.
#[derive(Debug, PartialEq)]
struct Seen {
    name: String,
    status: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    metrics: BTreeMap<String, Vec<(i64, i64, String)>>,
    artifacts: BTreeSet<(String, u64)>,
}

/// A value as both sides compare it; MLflow's SQL store keeps an infinity as the largest
/// finite number.
fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v >= f64::MAX {
        "inf".into()
    } else if v <= f64::MIN {
        "-inf".into()
    } else {
        format!("{v:?}")
    }
}

fn remote_seen(run: &Value) -> Seen {
    let map = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    };
    Seen {
        name: run["run_name"].as_str().unwrap().to_owned(),
        status: run["status"].as_str().unwrap().to_owned(),
        start_time: run["start_time"].as_i64(),
        end_time: run["end_time"].as_i64(),
        params: map(&run["params"]),
        tags: map(&run["tags"]),
        metrics: run["metrics"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, points)| {
                let mut points: Vec<(i64, i64, String)> = points
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        let v = match &p[2] {
                            Value::String(s) => s.parse().map_or_else(|_| s.clone(), value_text),
                            v => value_text(v.as_f64().unwrap()),
                        };
                        (p[0].as_i64().unwrap(), p[1].as_i64().unwrap(), v)
                    })
                    .collect();
                points.sort();
                (k.clone(), points)
            })
            .collect(),
        artifacts: run["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_owned(),
                    f["size"].as_u64().unwrap(),
                )
            })
            .collect(),
    }
}

fn local_seen(tracking: &Tracking, id: &str) -> Seen {
    let run = tracking.read(|c| runs::get(c, id)).unwrap();
    let row = tracking.read(|c| runs::find(c, id)).unwrap().id;
    let mut metrics_seen = BTreeMap::new();
    for m in &run.data.metrics {
        let mut points: Vec<(i64, i64, String)> = tracking
            .read(|c| metrics::history(c, row, &m.key))
            .unwrap()
            .into_iter()
            .map(|p| (p.step, p.timestamp, value_text(p.value)))
            .collect();
        points.sort();
        metrics_seen.insert(m.key.clone(), points);
    }
    let dir = tracking
        .artifact_dir(&run.info.artifact_uri)
        .unwrap()
        .unwrap();
    Seen {
        name: run.info.run_name.clone(),
        status: run.info.status.clone(),
        start_time: run.info.start_time,
        end_time: run.info.end_time,
        params: run
            .data
            .params
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        tags: run
            .data
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect(),
        metrics: metrics_seen,
        artifacts: tracking
            .artifact_tree(&dir)
            .unwrap()
            .into_iter()
            .map(|(p, _, size)| (p, size as u64))
            .collect(),
    }
}

/// The bytes of a run's artifact here.
fn local_bytes(store: &Store, id: &str, path: &str) -> Vec<u8> {
    let tracking = store.tracking();
    let run = tracking.read(|c| runs::get(c, id)).unwrap();
    let dir = tracking
        .artifact_dir(&run.info.artifact_uri)
        .unwrap()
        .unwrap();
    let (file, _) = tracking.artifact_file(&format!("{dir}/{path}")).unwrap();
    std::fs::read(file).unwrap()
}

fn demo(s: &Sandbox) {
    let mut ws = lathe_core::Workspace::open(s.workspace()).unwrap();
    lathe_core::demo::seed(&mut ws).unwrap();
    let store = Store::open(s.workspace()).unwrap();
    lathe_core::demo::seed_pipelines(&store).unwrap();
    lathe_core::demo::seed_tracking(&store).unwrap();
}

fn experiment_names(tracking: &Tracking) -> Vec<String> {
    tracking
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT e.name FROM runs r JOIN experiments e ON e.id = r.experiment_id
                 WHERE r.lifecycle_stage = 'active'",
            )?;
            let rows = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(rows)
        })
        .unwrap()
}

#[test]
fn a_pushed_workspace_reads_back_whole_with_the_official_client_and_a_second_push_sends_only_what_is_new()
 {
    let a = Sandbox::new();
    demo(&a);
    let pushed = runs_cli(&a, &["push", "--to", mlflow_server(), "--json"])
        .ok()
        .json();
    let sent = outcomes(&pushed);
    assert!(sent["run sent"] >= 5, "{sent:?}");
    assert!(sent["model sent"] >= 1, "{sent:?}");
    assert_eq!(sent.len(), 2, "nothing but sent: {pushed}");
    assert!(pushed["blobs_moved"].as_u64().unwrap() > 5, "{pushed}");

    let store = Store::open(a.workspace()).unwrap();
    let tracking = store.tracking();
    let names = experiment_names(&tracking);
    let dest = a.path("read-back");
    let names_ref: Vec<&str> = names.iter().map(String::as_str).collect();
    let back = read_back(&dest, &names_ref);
    let remote_of: BTreeMap<String, String> = pushed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "run")
        .map(|i| {
            (
                i["local"].as_str().unwrap().to_owned(),
                i["remote"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut compared = 0;
    for name in &names {
        for run in back["experiments"][name].as_array().unwrap() {
            let remote_id = run["run_id"].as_str().unwrap();
            let local_id = remote_of
                .iter()
                .find(|(_, r)| *r == remote_id)
                .map(|(l, _)| l.clone())
                .unwrap_or_else(|| panic!("remote run {remote_id} was not pushed by this push"));
            let mut there = remote_seen(run);
            let here = local_seen(&tracking, &local_id);
            // The server names a run in a tag of its own when the run has none.
            if !here.tags.contains_key("mlflow.runName") {
                there.tags.remove("mlflow.runName");
            }
            // A pushed run carries its id here; a nested one its parent's id there.
            assert_eq!(
                there.tags.remove("lathe.source_run_id").as_deref(),
                Some(local_id.as_str())
            );
            if let Some(parent) = there.tags.get_mut("mlflow.parentRunId") {
                let (local_parent, _) = remote_of
                    .iter()
                    .find(|(_, r)| *r == parent)
                    .unwrap_or_else(|| {
                        panic!("parent {parent} of {remote_id} is not a pushed run")
                    });
                *parent = local_parent.clone();
            }
            assert_eq!(here, there, "run {local_id} against its copy {remote_id}");
            for (path, _) in &here.artifacts {
                let copy = std::fs::read(dest.join("runs").join(remote_id).join(path)).unwrap();
                assert!(
                    copy == local_bytes(&store, &local_id, path),
                    "artifact {path} of run {local_id} differs"
                );
            }
            compared += 1;
        }
    }
    assert_eq!(compared, remote_of.len(), "every pushed run read back");

    // Model versions: as many there as here, the same aliases, files byte for byte.
    let versions: Vec<(String, String)> = tracking
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT m.name, v.version FROM model_versions v
                 JOIN registered_models m ON m.id = v.model_id ORDER BY m.name, v.version",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.to_string())))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .unwrap();
    for (i, (name, number)) in versions.iter().enumerate() {
        let v = tracking
            .read(|c| registry::get_version(c, name, number))
            .unwrap();
        let there = back["models"][name]
            .as_array()
            .unwrap_or_else(|| panic!("model {name} is not there: {}", back["models"]))
            .iter()
            .find(|t| {
                pushed["items"].as_array().unwrap().iter().any(|item| {
                    item["local"] == format!("{name}:{number}")
                        && item["remote"] == format!("{name}:{}", t["version"].as_str().unwrap())
                })
            })
            .unwrap_or_else(|| panic!("version {name}:{number} is not there ({i})"));
        let mut aliases = v.aliases.clone();
        aliases.sort();
        let there_aliases: Vec<String> = there["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(aliases, there_aliases, "{name}:{number}");
        let dir = tracking.artifact_dir(&v.source).unwrap().unwrap();
        let folder = dest
            .join("models")
            .join(name)
            .join(there["version"].as_str().unwrap());
        let downloaded = std::fs::read_dir(&folder)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for (path, _, _) in tracking.artifact_tree(&dir).unwrap() {
            let (file, _) = tracking.artifact_file(&format!("{dir}/{path}")).unwrap();
            assert!(
                std::fs::read(downloaded.join(&path)).unwrap() == std::fs::read(file).unwrap(),
                "file {path} of {name}:{number}"
            );
        }
        if let Some(run_remote) = remote_of.get(&v.run_id) {
            assert_eq!(
                there["run_id"].as_str().unwrap(),
                run_remote,
                "{name}:{number}"
            );
        }
    }

    // A second push sends nothing.
    let again = runs_cli(&a, &["push", "--to", mlflow_server(), "--json"])
        .ok()
        .json();
    assert_eq!(again["blobs_moved"], 0, "{again}");
    assert!(
        outcomes(&again).keys().all(|k| k.ends_with("unchanged")),
        "{again}"
    );

    // Points and a tag logged here later go, and only they.
    let (local_id, remote_id) = remote_of.iter().next().unwrap();
    let before = read_back(&a.path("before"), &names_ref);
    let count = |back: &Value| -> usize {
        back["experiments"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|runs| runs.as_array().unwrap())
            .find(|r| r["run_id"] == remote_id.as_str())
            .map(|r| {
                r["metrics"]
                    .as_object()
                    .unwrap()
                    .values()
                    .map(|p| p.as_array().unwrap().len())
                    .sum()
            })
            .unwrap()
    };
    let points_before = count(&before);
    let batch = runs::Batch {
        metrics: (0..5)
            .map(|i| lathe_core::tracking::types::Metric {
                key: "late".into(),
                value: f64::from(i) / 2.0,
                timestamp: 1_800_000_000_000 + i64::from(i),
                step: i64::from(i),
                ..Default::default()
            })
            .collect(),
        tags: vec![lathe_core::tracking::types::Tag {
            key: "reviewed".into(),
            value: "yes".into(),
        }],
        ..Default::default()
    };
    tracking.log_batch(local_id, batch).unwrap();
    let third = runs_cli(&a, &["push", "--to", mlflow_server(), "--json"])
        .ok()
        .json();
    let item = third["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["local"] == local_id.as_str())
        .unwrap();
    assert_eq!(item["outcome"], "sent", "{third}");
    assert_eq!(item["note"], "added 5 metric points, 1 tags", "{third}");
    assert_eq!(item["remote"], remote_id.as_str());
    assert_eq!(
        outcomes(&third)["run unchanged"],
        remote_of.len() - 1,
        "{third}"
    );
    let after = read_back(&a.path("after"), &names_ref);
    assert_eq!(count(&after), points_before + 5);

    // Renamed there, the run keeps its new name when more is pushed from here.
    client(&["rename", remote_id]);
    log_late(&tracking, local_id, 5);
    let fourth = runs_cli(&a, &["push", "--to", mlflow_server(), "--json"])
        .ok()
        .json();
    let item = fourth["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["local"] == local_id.as_str())
        .unwrap();
    let note = item["note"].as_str().unwrap();
    assert!(note.starts_with("added 1 metric points"), "{fourth}");
    assert!(
        note.contains("tag 'mlflow.runName' is 'renamed-there' there"),
        "{fourth}"
    );
    let renamed = read_back(&a.path("renamed"), &names_ref);
    let there = renamed["experiments"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|runs| runs.as_array().unwrap())
        .find(|r| r["run_id"] == remote_id.as_str())
        .unwrap();
    assert_eq!(there["run_name"], "renamed-there");

    // The same server by another name is the same server: nothing is made twice.
    let port = mlflow_server().rsplit(':').next().unwrap();
    let other = runs_cli(
        &a,
        &[
            "push",
            "--to",
            &format!("http://localhost:{port}/"),
            "--json",
        ],
    )
    .ok()
    .json();
    assert!(
        outcomes(&other).keys().all(|k| k.ends_with("unchanged")),
        "{other}"
    );
    let total = |back: &Value| -> usize {
        back["experiments"]
            .as_object()
            .unwrap()
            .values()
            .map(|runs| runs.as_array().unwrap().len())
            .sum()
    };
    assert_eq!(
        total(&read_back(&a.path("again"), &names_ref)),
        total(&renamed)
    );
}

/// Logs `n` more points of `late` after the ones logged before.
fn log_late(tracking: &Tracking, run_id: &str, step: i64) {
    let batch = runs::Batch {
        metrics: vec![lathe_core::tracking::types::Metric {
            key: "late".into(),
            value: 9.0,
            timestamp: 1_800_000_001_000,
            step,
            ..Default::default()
        }],
        ..Default::default()
    };
    tracking.log_batch(run_id, batch).unwrap();
}

#[test]
fn runs_logged_with_the_official_client_are_pulled_beside_local_ones_and_pulled_again_add_only_what_is_new()
 {
    let logged = client(&["log", "team-remote"]);
    let ids: Vec<String> = logged["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let b = Sandbox::new();
    let pulled = runs_cli(
        &b,
        &[
            "pull",
            "--from",
            mlflow_server(),
            "--experiment",
            "team-remote",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(outcomes(&pulled)["run created"], 2, "{pulled}");
    assert_eq!(pulled["blobs_moved"], 4, "{pulled}");

    let store = Store::open(b.workspace()).unwrap();
    let tracking = store.tracking();
    let dest = b.path("read-back");
    let back = read_back(&dest, &["team-remote"]);
    for run in back["experiments"]["team-remote"].as_array().unwrap() {
        let id = run["run_id"].as_str().unwrap();
        assert!(ids.iter().any(|i| i == id));
        // Kept under the server's id, in an experiment of the same name here.
        let here = local_seen(&tracking, id);
        assert_eq!(here, remote_seen(run), "run {id}");
        for (path, _) in &here.artifacts {
            let copy = std::fs::read(dest.join("runs").join(id).join(path)).unwrap();
            assert!(
                copy == local_bytes(&store, id, path),
                "artifact {path} of {id}"
            );
        }
        let experiment = tracking
            .read(|c| runs::get(c, id))
            .unwrap()
            .info
            .experiment_id;
        let named = tracking
            .read(|c| lathe_core::tracking::experiments::get(c, &experiment))
            .unwrap()
            .name;
        assert_eq!(named, "team-remote");
    }
    // Searchable beside local runs, with MLflow's filter syntax.
    let found = b
        .lathe(&["runs", "search", "params.lr = '0.1'", "--json"])
        .ok()
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");

    // Again: nothing new. Then the server's run gets three points and a tag: only they come.
    let again = runs_cli(
        &b,
        &[
            "pull",
            "--from",
            mlflow_server(),
            "-e",
            "team-remote",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(outcomes(&again)["run already_here"], 2, "{again}");
    assert_eq!(again["blobs_moved"], 0);
    client(&["more", &ids[0]]);
    let third = runs_cli(
        &b,
        &[
            "pull",
            "--from",
            mlflow_server(),
            "-e",
            "team-remote",
            "--json",
        ],
    )
    .ok()
    .json();
    let item = third["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["remote"] == ids[0].as_str())
        .unwrap();
    assert_eq!(item["outcome"], "updated", "{third}");
    assert_eq!(item["note"], "added 3 metric points, 1 tags", "{third}");

    // Pushed back, the pulled runs are the server's own runs: nothing is made twice.
    let pushed = runs_cli(&b, &["push", "--to", mlflow_server(), "--json"])
        .ok()
        .json();
    assert!(
        outcomes(&pushed).keys().all(|k| k.ends_with("unchanged")),
        "{pushed}"
    );
    let after = read_back(&b.path("after"), &["team-remote"]);
    assert_eq!(
        after["experiments"]["team-remote"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn an_unreachable_server_a_refused_token_and_missing_names_are_said_plainly() {
    let s = Sandbox::new();
    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    runs_cli(&s, &["pull", "--from", "http://127.0.0.1:1"]).fails_with("name what to pull");
    let started = std::time::Instant::now();
    runs_cli(
        &s,
        &[
            "pull",
            "--from",
            &format!("http://127.0.0.1:{port}"),
            "-e",
            "x",
        ],
    )
    .fails_with("cannot reach the tracking server at http://127.0.0.1:");
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    runs_cli(
        &s,
        &[
            "pull",
            "--from",
            mlflow_server(),
            "-e",
            "no-such-experiment",
        ],
    )
    .fails_with("has no experiment named 'no-such-experiment'");
    runs_cli(&s, &["push", "--to", "ftp://example.com"])
        .fails_with("is not a tracking server's URL");
    runs_cli(&s, &["push", "--to", "http://user:secret@127.0.0.1:1"])
        .fails_with("holds a user or password");

    // A server that wants a token (Lathe's own, which speaks MLflow's API) refuses another.
    let other = Sandbox::new();
    let mut server =
        lathe_tests::Server::start_with(&other.workspace(), &["--token", "right-token"], &[]);
    let url = server.url.clone();
    let run = s.lathe_with(
        &["runs", "push", "--to", &url],
        &[("MLFLOW_TRACKING_TOKEN", std::ffi::OsStr::new("wrong-token"))],
    );
    run.fails_with("refused the credentials (401)");
    server.kill();

    // A file the server refuses fails its run, named; the other run still goes, and the
    // command says it did not all go.
    let store = Store::open(s.workspace()).unwrap();
    let tracking = store.tracking();
    let experiment_id = tracking.experiment_named("refusals").unwrap();
    for (name, file) in [("odd", "deep#1/100%.txt"), ("plain", "notes.txt")] {
        let run = tracking
            .create_run(runs::NewRun {
                experiment_id: experiment_id.clone(),
                user_id: "ada".into(),
                start_time: Some(1_700_000_000_000),
                run_name: Some(name.into()),
                tags: Vec::new(),
            })
            .unwrap();
        let dir = tracking
            .artifact_dir(&run.info.artifact_uri)
            .unwrap()
            .unwrap();
        tracking
            .put_artifact(&format!("{dir}/{file}"), &mut &b"text"[..])
            .unwrap();
    }
    let run = runs_cli(&s, &["push", "--to", mlflow_server(), "-e", "refusals"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("1 of 2 not pushed: see above"),
        "{}",
        run.stderr
    );
    let failed = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("failed"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        failed.contains("run odd") && failed.contains("deep#1/100%.txt"),
        "{failed}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("sent  run plain")),
        "{}",
        run.stdout
    );
}
