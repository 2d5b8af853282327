//! `lathe sync push|pull` against a real S3-compatible server (moto's, started once for this
//! test binary): the demo workspace pushed and pulled whole into another, byte for byte; a
//! second push and pull that move nothing; versions mapped by content and numbered locally;
//! a large blob sent in parts, cut off mid-upload and resumed, fetched in ranges; a corrupt
//! object and names the datastore lacks refused by name.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use lathe_core::Store;
use lathe_core::tracking::{metrics, registry, runs};
use lathe_tests::{Sandbox, boto3, s3_server};
use serde_json::Value;

const KEYS: [(&str, &str); 2] = [("TEAM_KEY", "AKIATEST"), ("TEAM_SECRET", "s3cret-value")];

/// Adds datastore `team` at `endpoint`, under `prefix` of bucket lathe-test.
fn datastore(s: &Sandbox, endpoint: &str, prefix: &str) {
    let yaml = format!(
        "name: team\ntype: s3\nendpoint_url: {endpoint}\nbucket: lathe-test\nprefix: {prefix}\n\
         credentials:\n  access_key_id_env: TEAM_KEY\n  secret_access_key_env: TEAM_SECRET\n"
    );
    let file = s.file("team.yml", yaml.as_bytes());
    let verb = if s.lathe(&["datastore", "show", "team"]).code == 0 {
        "update"
    } else {
        "create"
    };
    s.lathe(&["datastore", verb, "-f", file.to_str().unwrap()])
        .ok();
}

fn sync(s: &Sandbox, args: &[&str]) -> lathe_tests::Run {
    let vars: Vec<(&str, &std::ffi::OsStr)> = KEYS
        .iter()
        .map(|(k, v)| (*k, std::ffi::OsStr::new(*v)))
        .collect();
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    s.lathe_with(&all, &vars)
}

fn outcomes(report: &Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in report["items"].as_array().unwrap() {
        *counts
            .entry(format!(
                "{} {}",
                item["kind"].as_str().unwrap(),
                item["outcome"].as_str().unwrap()
            ))
            .or_default() += 1;
    }
    counts
}

/// Everything a workspace holds that sync carries, in a form two workspaces compare by:
/// asset versions by content (with their blobs' bytes), runs by id (params, tags, every
/// metric point, artifacts by relative path and hash), model versions by files.
fn contents(store: &Store) -> (Vec<String>, Vec<String>, Vec<String>) {
    let ws = store.workspace().unwrap();
    let mut assets = Vec::new();
    for asset in ws.list_assets().unwrap() {
        for v in ws.versions(&asset.name).unwrap() {
            let mut blobs: Vec<String> = v.meta.blob.iter().cloned().collect();
            blobs.extend(
                ws.version_files(v.id)
                    .unwrap()
                    .into_iter()
                    .map(|f| format!("{}={}", f.path, f.blob_hash)),
            );
            if let Some(hash) = &v.meta.blob {
                let bytes = std::fs::read(store.blobs().path(hash)).unwrap();
                assert_eq!(blake3::hash(&bytes).to_hex().as_str(), hash, "blob bytes");
            }
            assets.push(format!(
                "{} {} {} rows={} {:?}",
                v.asset_name, v.kind, v.content_hash, v.item_count, blobs
            ));
        }
    }
    assets.sort();
    let tracking = store.tracking();
    let ids: Vec<String> = tracking
        .read(|c| {
            let mut stmt = c.prepare("SELECT uuid FROM runs WHERE lifecycle_stage = 'active'")?;
            let ids = stmt
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(ids)
        })
        .unwrap();
    let mut runs_out = Vec::new();
    for id in ids {
        let run = tracking.read(|c| runs::get(c, &id)).unwrap();
        let row = tracking.read(|c| runs::find(c, &id)).unwrap().id;
        let mut params: Vec<String> = run
            .data
            .params
            .iter()
            .map(|p| format!("{}={}", p.key, p.value))
            .collect();
        params.sort();
        let mut tags: Vec<String> = run
            .data
            .tags
            .iter()
            .map(|t| format!("{}={}", t.key, t.value))
            .collect();
        tags.sort();
        let mut points = Vec::new();
        for m in &run.data.metrics {
            for p in tracking.read(|c| metrics::history(c, row, &m.key)).unwrap() {
                points.push(format!(
                    "{}@{}/{}={:?}",
                    m.key, p.step, p.timestamp, p.value
                ));
            }
        }
        points.sort();
        let files = files_at(&tracking, &run.info.artifact_uri);
        runs_out.push(format!(
            "{id} {} {} {} {:?} {:?} {:?} {:?} inputs={}",
            run.info.run_name,
            run.info.status,
            run.info.start_time.unwrap_or(0),
            params,
            tags,
            points,
            files,
            run.inputs.dataset_inputs.len()
        ));
    }
    runs_out.sort();
    let versions: Vec<(String, String)> = tracking
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT m.name, v.version FROM model_versions v
                 JOIN registered_models m ON m.id = v.model_id",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.to_string())))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .unwrap();
    let mut models = Vec::new();
    for (name, number) in versions {
        let v = tracking
            .read(|c| registry::get_version(c, &name, &number))
            .unwrap();
        let files = files_at(&tracking, &v.source);
        let mut aliases = v.aliases.clone();
        aliases.sort();
        models.push(format!(
            "{name} run={} aliases={aliases:?} signature={} {files:?}",
            v.run_id,
            v.signature.is_some()
        ));
    }
    models.sort();
    (assets, runs_out, models)
}

/// The files under an artifact URI, as `path=hash`, sorted.
fn files_at(tracking: &lathe_core::tracking::Tracking, uri: &str) -> Vec<String> {
    let dir = tracking.artifact_dir(uri).unwrap().unwrap();
    let mut files: Vec<String> = tracking
        .artifact_tree(&dir)
        .unwrap()
        .into_iter()
        .map(|(p, h, _)| format!("{p}={h}"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_workspace_pushed_is_pulled_whole_into_another() {
    let a = Sandbox::new();
    {
        let mut ws = lathe_core::Workspace::open(a.workspace()).unwrap();
        lathe_core::demo::seed(&mut ws).unwrap();
        let store = Store::open(a.workspace()).unwrap();
        lathe_core::demo::seed_pipelines(&store).unwrap();
        lathe_core::demo::seed_tracking(&store).unwrap();
    }
    datastore(&a, s3_server(), "whole/");
    let pushed = sync(&a, &["push", "--to", "team", "--json"]).ok().json();
    let sent = outcomes(&pushed);
    assert!(sent["asset sent"] >= 4, "{sent:?}");
    assert!(sent["run sent"] >= 5, "{sent:?}");
    assert!(sent["model sent"] >= 1, "{sent:?}");
    assert_eq!(sent.len(), 3, "nothing but sent: {sent:?}");
    assert!(pushed["blobs_moved"].as_u64().unwrap() > 20);

    // A second push sends nothing: every blob is there, every manifest unchanged.
    let again = sync(&a, &["push", "--to", "team", "--json"]).ok().json();
    assert_eq!(again["blobs_moved"], 0);
    assert!(
        outcomes(&again).keys().all(|k| k.ends_with("unchanged")),
        "{again}"
    );

    // B has the demo's imported assets already (the same content), and a version of its own
    // under a name A also has.
    let b = Sandbox::new();
    {
        let mut ws = lathe_core::Workspace::open(b.workspace()).unwrap();
        lathe_core::demo::seed(&mut ws).unwrap();
    }
    let own = b.file("reviews.txt", b"only in b\n");
    b.lathe(&[
        "data",
        "import",
        own.to_str().unwrap(),
        "--name",
        "reviews",
        "--kind",
        "text",
    ])
    .ok();
    datastore(&b, s3_server(), "whole/");
    let pulled = sync(&b, &["pull", "--from", "team", "--json"]).ok().json();
    let got = outcomes(&pulled);
    assert_eq!(got["asset already_here"], 3, "the demo's imports: {got:?}");
    assert_eq!(got["run created"], sent["run sent"], "{got:?}");
    assert_eq!(got["model created"], sent["model sent"], "{got:?}");

    let store_a = Store::open(a.workspace()).unwrap();
    let store_b = Store::open(b.workspace()).unwrap();
    let (assets_a, runs_a, models_a) = contents(&store_a);
    let (assets_b, runs_b, models_b) = contents(&store_b);
    for asset in &assets_a {
        assert!(assets_b.contains(asset), "{asset} missing from B");
    }
    assert_eq!(assets_b.len(), assets_a.len() + 1, "B's own version stays");
    assert_eq!(runs_a, runs_b);
    assert_eq!(models_a, models_b);
    // B's own version kept its number; A's reviews:1 has the same content as B's and maps to it.
    let reviews = store_b.workspace().unwrap().versions("reviews").unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0].source, own.to_str().unwrap());
    drop((store_a, store_b));

    // A second pull finds everything here and fetches nothing.
    let again = sync(&b, &["pull", "--from", "team", "--json"]).ok().json();
    assert_eq!(again["blobs_moved"], 0);
    assert!(
        outcomes(&again).keys().all(|k| k.ends_with("already_here")),
        "{again}"
    );
    let text = sync(&b, &["pull", "--from", "team"]).ok().stdout;
    assert!(
        text.contains("already here  model churn-classifier:1"),
        "{text}"
    );
    assert!(text.contains("0 files (0 B) fetched"), "{text}");
}

/// A loopback proxy to `upstream` that cuts every connection once `limit` bytes went up
/// through it, and refuses new ones after: a network cut in the middle of an upload.
fn cutting_proxy(upstream: &str, limit: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let sent = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    #[allow(clippy::disallowed_methods)]
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            if cut.load(Ordering::SeqCst) {
                continue;
            }
            let server = TcpStream::connect(&upstream).unwrap();
            let (sent, cut) = (sent.clone(), cut.clone());
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            #[allow(clippy::disallowed_methods)]
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || cut.load(Ordering::SeqCst) {
                        break;
                    }
                    if sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > limit {
                        cut.store(true, Ordering::SeqCst);
                        break;
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_in.shutdown(std::net::Shutdown::Both);
                let _ = s_out.shutdown(std::net::Shutdown::Both);
            });
            let (mut s_in, mut c_out) = (server, client);
            #[allow(clippy::disallowed_methods)]
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_in, &mut c_out);
                let _ = c_out.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    address
}

/// About `mib` MiB of distinct text lines.
fn corpus(mib: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity((mib + 1) << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while text.len() < mib << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        writeln!(text, "line {x:016x} of a corpus too large for one request").unwrap();
    }
    text
}

/// Imports [`corpus`]`(mib)` as the text asset `big`; its bytes.
fn import_corpus(s: &Sandbox, mib: usize) -> Vec<u8> {
    let text = corpus(mib);
    let file = s.file("big.txt", &text);
    s.lathe(&[
        "data",
        "import",
        file.to_str().unwrap(),
        "--name",
        "big",
        "--kind",
        "text",
    ])
    .ok();
    text
}

#[test]
fn a_large_blob_goes_in_parts_resumes_after_a_cut_and_comes_back_whole() {
    const MIB: u64 = 1 << 20;
    let a = Sandbox::new();
    // 40 MiB of text lines: three parts of 16 MiB, the last shorter.
    let text = import_corpus(&a, 40);
    let size = text.len() as u64;

    // Through a proxy that cuts the connection after 36 MiB: two parts arrive, the third
    // breaks off. One request at a time, so which parts arrived is certain.
    datastore(&a, &cutting_proxy(s3_server(), 36 * MIB), "large/");
    let cut = sync(&a, &["push", "--to", "team", "--parallel", "1"]);
    assert_ne!(cut.code, 0, "{}", cut.stdout);
    assert!(
        cut.stderr.contains("broke off") && cut.stderr.contains("run the command again"),
        "{}",
        cut.stderr
    );
    let manifests = s3_keys("large/lathe/assets/");
    assert!(
        manifests.is_empty(),
        "no manifest before its blobs: {manifests:?}"
    );

    // The next push, with the network back, sends only the third part.
    datastore(&a, s3_server(), "large/");
    let resumed = sync(&a, &["push", "--to", "team", "--json"]).ok().json();
    assert_eq!(resumed["bytes_moved"].as_u64().unwrap(), size - 32 * MIB);
    assert_eq!(outcomes(&resumed)["asset sent"], 1);

    let b = Sandbox::new();
    datastore(&b, s3_server(), "large/");
    let pulled = sync(&b, &["pull", "--from", "team", "--assets", "big", "--json"])
        .ok()
        .json();
    assert_eq!(pulled["bytes_moved"].as_u64().unwrap(), size);
    let store = Store::open(b.workspace()).unwrap();
    let version = store
        .workspace()
        .unwrap()
        .versions("big")
        .unwrap()
        .remove(0);
    let blob = store.blobs().path(version.meta.blob.as_ref().unwrap());
    assert!(std::fs::read(blob).unwrap() == text, "byte for byte");
}

/// The keys under `prefix` in bucket lathe-test, read with boto3.
fn s3_keys(prefix: &str) -> Vec<String> {
    let out = boto3(&format!(
        "r = s3.list_objects_v2(Bucket='lathe-test', Prefix='{prefix}')\n\
         print('\\n'.join(o['Key'] for o in r.get('Contents', [])))"
    ));
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_corrupt_object_and_missing_names_are_refused_by_name() {
    let a = Sandbox::new();
    let file = a.file("notes.txt", b"one\ntwo\nthree\n");
    a.lathe(&[
        "data",
        "import",
        file.to_str().unwrap(),
        "--name",
        "notes",
        "--kind",
        "text",
    ])
    .ok();
    datastore(&a, s3_server(), "corrupt/");
    sync(&a, &["push", "--to", "team", "--assets", "notes"]).ok();
    sync(&a, &["push", "--to", "team", "--assets", "nope"])
        .fails_with("no data asset named 'nope'");

    let b = Sandbox::new();
    datastore(&b, s3_server(), "corrupt/");
    sync(&b, &["pull", "--from", "team", "--assets", "notez"])
        .fails_with("s3://lathe-test/corrupt/ has no asset notez");
    sync(&b, &["pull", "--from", "team", "--assets", "notes:7"]).fails_with("has no asset notes:7");
    sync(&b, &["pull", "--from", "team", "--runs", "0123abcd"]).fails_with("has no run 0123abcd");

    let blob = blake3::hash(b"one\ntwo\nthree\n").to_hex().to_string();
    boto3(&format!(
        "s3.put_object(Bucket='lathe-test', Key='corrupt/lathe/blobs/{blob}', Body=b'one\\ntwo\\n')"
    ));
    sync(&b, &["pull", "--from", "team"]).fails_with(&format!(
        "corrupt/lathe/blobs/{blob} holds bytes that hash to"
    ));
    // Nothing was recorded, and the workspace holds no asset.
    let listed = b.lathe(&["data", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
}

/// A run in experiment `exp` of the workspace at `s` with `points` of metric `loss`, a model
/// registered from it by a `runs:/` URI as MLflow's client does; the run's id.
fn run_with_model(s: &Sandbox, points: i64) -> String {
    use lathe_core::tracking::types::Tag;
    let store = Store::open(s.workspace()).unwrap();
    let tracking = store.tracking();
    let experiment_id = tracking.experiment_named("exp").unwrap();
    let run = tracking
        .create_run(runs::NewRun {
            experiment_id,
            user_id: "ada".into(),
            start_time: Some(1_700_000_000_000),
            run_name: Some("fit".into()),
            tags: vec![Tag {
                key: "team".into(),
                value: "a".into(),
            }],
        })
        .unwrap();
    let id = run.info.run_id.clone();
    log_points(&tracking, &id, 0..points);
    let dir = tracking
        .artifact_dir(&run.info.artifact_uri)
        .unwrap()
        .unwrap();
    tracking
        .put_artifact(&format!("{dir}/model/MLmodel"), &mut &b"flavors: {}\n"[..])
        .unwrap();
    let source = format!("runs:/{id}/model");
    tracking
        .write(move |c| {
            registry::create_model(c, "fitted", "", &[])?;
            registry::create_version(
                c,
                registry::NewVersion {
                    name: "fitted".into(),
                    source,
                    run_id: None,
                    run_link: String::new(),
                    description: String::new(),
                    user_id: "ada".into(),
                    tags: Vec::new(),
                    signature: None,
                    model_id: None,
                },
            )?;
            Ok(())
        })
        .unwrap();
    id
}

fn log_points(tracking: &lathe_core::tracking::Tracking, id: &str, steps: std::ops::Range<i64>) {
    use lathe_core::tracking::types::Metric;
    let metrics = steps
        .map(|step| Metric {
            key: "loss".into(),
            value: 1.0 / (step + 1) as f64,
            timestamp: 1_700_000_000_000 + step,
            step,
            ..Default::default()
        })
        .collect();
    tracking
        .log_batch(
            id,
            runs::Batch {
                metrics,
                ..Default::default()
            },
        )
        .unwrap();
}

fn import_csv(s: &Sandbox, name: &str, body: &str) {
    let file = s.file(&format!("{name}-{}.csv", body.len()), body.as_bytes());
    s.lathe(&["data", "import", file.to_str().unwrap(), "--name", name])
        .ok();
}

#[test]
fn the_datastore_numbers_versions_once_and_a_run_is_never_overwritten_by_a_stale_copy() {
    let a = Sandbox::new();
    import_csv(&a, "customers", "x\n1\n");
    let run = run_with_model(&a, 10);
    datastore(&a, s3_server(), "numbers/");
    let pushed = sync(&a, &["push", "--to", "team", "--json"]).ok().json();
    // The model came from a runs:/ source; its files are the run's.
    assert_eq!(outcomes(&pushed)["model sent"], 1, "{pushed}");

    // F has its own customers:1, pulls A's (its customers:2), and pushes both back: A's keeps
    // its number there, F's own content takes the next one.
    let f = Sandbox::new();
    import_csv(&f, "customers", "x\n2\n");
    datastore(&f, s3_server(), "numbers/");
    let pulled = sync(&f, &["pull", "--from", "team", "--json"]).ok().json();
    let customers = pulled["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "asset")
        .unwrap()
        .clone();
    assert_eq!(customers["remote"], "customers:1");
    assert_eq!(customers["local"], "customers:2");
    let text = sync(&f, &["push", "--to", "team", "--assets", "customers"])
        .ok()
        .stdout;
    assert!(
        text.contains("unchanged  asset customers:2 as customers:1 there"),
        "{text}"
    );
    assert!(
        text.contains("sent  asset customers:1 as customers:2 there"),
        "{text}"
    );
    // A fresh workspace asks by the datastore's numbers.
    let g = Sandbox::new();
    datastore(&g, s3_server(), "numbers/");
    sync(&g, &["pull", "--from", "team", "--assets", "customers:2"]).ok();
    let out = g.path("c2.csv");
    g.lathe(&["data", "export", "customers:1", out.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read_to_string(out).unwrap(), "x\n2\n");

    // B pulls the run; A logs ten more points and pushes; B's stale copy is not pushed over
    // it, and B's next pull adds what it lacks.
    let b = Sandbox::new();
    datastore(&b, s3_server(), "numbers/");
    sync(&b, &["pull", "--from", "team", "--runs", &run]).ok();
    {
        let store = Store::open(a.workspace()).unwrap();
        log_points(&store.tracking(), &run, 10..20);
    }
    sync(&a, &["push", "--to", "team", "--runs", &run]).ok();
    {
        let store = Store::open(b.workspace()).unwrap();
        log_points(&store.tracking(), &run, 100..101);
    }
    let stale = sync(&b, &["push", "--to", "team", "--runs", &run, "--json"])
        .ok()
        .json();
    assert_eq!(stale["items"][0]["outcome"], "skipped", "{stale}");
    assert!(
        stale["items"][0]["note"]
            .as_str()
            .unwrap()
            .contains("pull it first"),
        "{stale}"
    );
    let merged = sync(&b, &["pull", "--from", "team", "--runs", &run, "--json"])
        .ok()
        .json();
    assert_eq!(merged["items"][0]["outcome"], "updated", "{merged}");
    assert_eq!(
        merged["items"][0]["note"], "added 10 metric points",
        "{merged}"
    );
    let store = Store::open(b.workspace()).unwrap();
    let row = store.tracking().read(|c| runs::find(c, &run)).unwrap().id;
    let points = store
        .tracking()
        .read(|c| metrics::history(c, row, "loss"))
        .unwrap();
    assert_eq!(points.len(), 21, "A's twenty and B's own");
    drop(store);
    // Now up to date with the datastore, B's push goes through.
    let pushed = sync(&b, &["push", "--to", "team", "--runs", &run, "--json"])
        .ok()
        .json();
    assert_eq!(pushed["items"][0]["outcome"], "sent", "{pushed}");
}

#[test]
fn a_cancelled_push_stops_in_the_middle_of_a_part_and_the_next_goes_on() {
    use lathe_core::datastores::{self, DatastoreSpec};
    use lathe_core::jobs::Progress;
    use lathe_core::sync::{self, Selection};
    const MIB: u64 = 1 << 20;
    let a = Sandbox::new();
    let text = import_corpus(&a, 40);
    let store = Store::open(a.workspace()).unwrap();
    // moto takes any credentials: these name variables every process has.
    let spec = DatastoreSpec::from_yaml(&format!(
        "name: team\ntype: s3\nendpoint_url: {}\nbucket: lathe-test\nprefix: cancel/\n\
         credentials:\n  access_key_id_env: HOME\n  secret_access_key_env: PATH\n",
        s3_server()
    ))
    .unwrap();
    datastores::put(&store, &spec, false).unwrap();
    let progress = Progress::default();
    let pushed = std::thread::scope(|scope| {
        let watcher = std::thread::Builder::new()
            .spawn_scoped(scope, || {
                // Cancel in the middle of the second part.
                while progress.snapshot().done < 20 * MIB && !progress.is_cancelled() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                progress.cancel();
            })
            .unwrap();
        let pushed = sync::push(&store, "team", &Selection::default(), 1, &progress);
        progress.cancel();
        watcher.join().unwrap();
        pushed
    });
    assert!(
        matches!(pushed, Err(lathe_core::Error::Cancelled)),
        "{pushed:?}"
    );
    assert!(s3_keys("cancel/lathe/assets/").is_empty());
    let again = sync::push(
        &store,
        "team",
        &Selection::default(),
        4,
        &Progress::default(),
    )
    .unwrap();
    assert_eq!(
        again.bytes_moved,
        text.len() as u64 - 16 * MIB,
        "the first part was kept"
    );
}
