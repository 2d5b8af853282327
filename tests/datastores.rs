//! Datastores against a real S3-compatible server (moto's, `peers/s3_server.py`, started once
//! for this test binary and ended with it: [`lathe_tests::s3_server`]): create, list, show, check, update, delete from
//! the CLI, and every way a datastore can be wrong named by its field, bucket, endpoint or
//! variable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lathe_tests::{Sandbox, boto3, s3_server as s3};

fn spec(name: &str, endpoint: &str, bucket: &str, rest: &str) -> String {
    format!(
        "name: {name}\ntype: s3\nendpoint_url: {endpoint}\nbucket: {bucket}\nprefix: team/\n\
         credentials:\n  access_key_id_env: TEAM_KEY\n  secret_access_key_env: TEAM_SECRET\n{rest}"
    )
}

const KEYS: [(&str, &str); 2] = [("TEAM_KEY", "AKIATEST"), ("TEAM_SECRET", "s3cret-value")];

fn with_keys(sandbox: &Sandbox, args: &[&str]) -> lathe_tests::Run {
    let vars: Vec<(&str, &std::ffi::OsStr)> = KEYS
        .iter()
        .map(|(k, v)| (*k, std::ffi::OsStr::new(*v)))
        .collect();
    sandbox.lathe_with(args, &vars)
}

#[test]
fn a_datastore_is_created_checked_and_deleted() {
    let s = Sandbox::new();
    let file = s.file("team.yml", spec("team", s3(), "lathe-test", "").as_bytes());
    let file = file.to_str().unwrap();
    let created = s.lathe(&["datastore", "create", "-f", file]).ok().stdout;
    assert!(
        created.contains("created datastore team: s3://lathe-test/team/"),
        "{created}"
    );
    s.lathe(&["datastore", "create", "-f", file])
        .fails_with("datastore 'team' exists");

    let listed = s.lathe(&["datastore", "list", "--json"]).ok().json();
    assert_eq!(listed[0]["name"], "team");
    assert_eq!(listed[0]["bucket"], "lathe-test");
    let yaml = s
        .lathe(&["datastore", "show", "team", "--yaml"])
        .ok()
        .stdout;
    assert!(yaml.contains("access_key_id_env: TEAM_KEY"), "{yaml}");
    // The workspace holds the variables' names, never their values.
    for file in ["lathe.db", "lathe.db-wal"] {
        let bytes = std::fs::read(s.workspace().join(file)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains("s3cret-value"));
    }

    let checked = with_keys(&s, &["datastore", "check", "team", "--json"])
        .ok()
        .json();
    assert_eq!(checked["credentials"], "$TEAM_KEY");
    assert_eq!(checked["has_objects"], false);
    assert_eq!(checked["endpoint"], s3());

    // Without the variables set: the one missing is named.
    s.lathe(&["datastore", "check", "team"])
        .fails_with("the environment variable TEAM_KEY (named by its credentials) is not set");

    // Another bucket, by update; then one that does not exist.
    let other = s.file(
        "other.yml",
        spec("team", s3(), "lathe-other", "").as_bytes(),
    );
    s.lathe(&["datastore", "update", "-f", other.to_str().unwrap()])
        .ok();
    with_keys(&s, &["datastore", "check", "team"]).ok();
    let missing = s.file(
        "missing.yml",
        spec("team", s3(), "no-such-bucket", "").as_bytes(),
    );
    s.lathe(&["datastore", "update", "-f", missing.to_str().unwrap()])
        .ok();
    with_keys(&s, &["datastore", "check", "team"])
        .fails_with("bucket 'no-such-bucket' does not exist at http://127.0.0.1:");

    s.lathe(&["datastore", "delete", "team"]).ok();
    s.lathe(&["datastore", "check", "team"])
        .fails_with("there is no datastore 'team'");
}

#[test]
fn an_unreachable_store_is_named_within_seconds() {
    let s = Sandbox::new();
    // A port nothing listens on: refused at once, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let file = s.file(
        "down.yml",
        spec("down", &endpoint, "lathe-test", "").as_bytes(),
    );
    s.lathe(&["datastore", "create", "-f", file.to_str().unwrap()])
        .ok();
    let started = std::time::Instant::now();
    with_keys(&s, &["datastore", "check", "down"])
        .fails_with(&format!("cannot reach {endpoint} (connection failed)"));
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

#[test]
fn bad_datastore_yaml_is_refused_by_field() {
    let s = Sandbox::new();
    for (name, yaml, expected) in [
        (
            "secret",
            "name: x\ntype: s3\nbucket: lathe-test\ncredentials:\n  secret_access_key: abc\n",
            "credentials.secret_access_key: a secret is never stored in the workspace",
        ),
        (
            "type",
            "name: x\ntype: azure_blob\nbucket: lathe-test\n",
            "type: 'azure_blob' is not a type Lathe speaks",
        ),
        (
            "bucket",
            "name: x\ntype: s3\nbucket: Bad_Bucket\n",
            "bucket: 'Bad_Bucket' is not a bucket name",
        ),
        (
            "prefix",
            "name: x\ntype: s3\nbucket: lathe-test\nprefix: a/../b\n",
            "prefix: must be a relative key prefix",
        ),
        (
            "endpoint",
            "name: x\ntype: s3\nbucket: lathe-test\nendpoint_url: ftp://h\n",
            "endpoint_url: 'ftp://h' must be an http:// or https:// URL",
        ),
        (
            "half",
            "name: x\ntype: s3\nbucket: lathe-test\ncredentials:\n  access_key_id_env: K\n",
            "access_key_id_env and secret_access_key_env go together",
        ),
        (
            "pasted",
            "name: x\ntype: s3\nbucket: lathe-test\ncredentials:\n  access_key_id_env: K\n  \
             secret_access_key_env: wJalrXUtnFEMI/K7MDENG\n",
            "credentials.secret_access_key_env: not an environment variable's name",
        ),
        (
            "typed",
            "name: x\ntype: s3\nbucket: lathe-test\ncredentials: AKIAEXAMPLE:wJalrXUtnFEMI\n",
            "credentials: a mapping of access_key_id_env",
        ),
        (
            "reserved",
            "name: x\ntype: s3\nbucket: lathe..test\n",
            "bucket: 'lathe..test' has two periods in a row",
        ),
        (
            "path",
            "name: x\ntype: s3\nbucket: lathe-test\nendpoint_url: http://127.0.0.1:9/lathe-test\n",
            "endpoint_url: 'http://127.0.0.1:9' must be the service's address alone",
        ),
        (
            "unknown",
            "name: x\ntype: s3\nbucket: lathe-test\nbukcet: y\n",
            "unknown field `bukcet`",
        ),
    ] {
        let file = s.file(&format!("{name}.yml"), yaml.as_bytes());
        let run = s.lathe(&["datastore", "create", "-f", file.to_str().unwrap()]);
        assert!(
            !run.stderr.contains("wJalr"),
            "a secret echoed: {}",
            run.stderr
        );
        run.fails_with(expected);
    }
    let listed = s.lathe(&["datastore", "list", "--json"]).ok().json();
    assert_eq!(listed, serde_json::json!([]), "nothing half-made");
}

#[test]
fn data_is_imported_from_s3_and_azureml_uris() {
    let s = Sandbox::new();
    let shapes =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/demo/shapes/circle");
    boto3(&format!(
        r#"s3.put_object(Bucket="lathe-test", Key="raw/churn.csv", Body=b"a,b\n1,2\n3,4\n")
import glob
for i, f in enumerate(sorted(glob.glob("{}/*.png"))[:3]):
    s3.upload_file(f, "lathe-test", f"raw/shapes/{{i}}.png")"#,
        shapes.display()
    ));
    let file = s.file("team.yml", spec("team", s3(), "lathe-test", "").as_bytes());
    s.lathe(&["datastore", "create", "-f", file.to_str().unwrap()])
        .ok();
    // team's prefix is team/; an s3:// URI names any key of its bucket.
    let table = with_keys(
        &s,
        &[
            "data",
            "import",
            "s3://lathe-test/raw/churn.csv",
            "--name",
            "churn",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(table["version"]["item_count"], 2);
    assert_eq!(table["version"]["source"], "s3://lathe-test/raw/churn.csv");
    let images = with_keys(
        &s,
        &[
            "data",
            "import",
            "s3://lathe-test/raw/shapes/",
            "--name",
            "shapes",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(images["version"]["kind"], "images");
    assert_eq!(images["version"]["item_count"], 3);
    // Azure ML's form names a path under the datastore's prefix.
    boto3(r#"s3.put_object(Bucket="lathe-test", Key="team/t.csv", Body=b"x\n1\n")"#);
    let azure = with_keys(
        &s,
        &[
            "data",
            "import",
            "azureml://datastores/team/paths/t.csv",
            "--name",
            "t",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(azure["version"]["item_count"], 1);

    with_keys(
        &s,
        &[
            "data",
            "import",
            "s3://lathe-test/raw/nothing",
            "--name",
            "n",
        ],
    )
    .fails_with("there is no object at or under s3://lathe-test/raw/nothing");
    with_keys(
        &s,
        &["data", "import", "s3://elsewhere/x.csv", "--name", "n"],
    )
    .fails_with("no datastore is of bucket 'elsewhere'");
    with_keys(
        &s,
        &["data", "import", "s3://lathe-test/../x.csv", "--name", "n"],
    )
    .fails_with("a key with '..' is refused");
    // Nothing was left in the workspace's folder by the imports.
    let left: Vec<_> = std::fs::read_dir(s.workspace())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("lathe.db") && n != "blobs")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
