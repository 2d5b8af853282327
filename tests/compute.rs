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
