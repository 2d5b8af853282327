//! Drift metrics against their peers: `lathe drift --json` on generated data with known
//! shifts and on the corpus' real pairs, checked against scipy 1.17 (the same definitions,
//! to the last bits) and Evidently 0.7.23 (the same tests; its own binning for JS and PSI,
//! within the tolerance stated below) — computed by `peers/drift_oracle.py` in one process.
//! Also `--fail-on-drift`'s exit codes and the errors naming a column.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lathe_tests::{Sandbox, collected_rows, endpoint_until, iso, peer_script};
use serde_json::{Value, json};

/// The Python with scipy and Evidently: LATHE_DRIFT_PYTHON, else the venv
/// `tests/peers/setup.sh` makes. Fails the test, naming the fix, when they are missing.
fn drift_python() -> PathBuf {
    let python = std::env::var("LATHE_DRIFT_PYTHON").map_or_else(
        |_| {
            let home = std::env::var("HOME").expect("HOME is set");
            PathBuf::from(format!("{home}/.cache/lathe/venv-drift/bin/python"))
        },
        PathBuf::from,
    );
    let ready = Command::new(&python)
        .args(["-c", "import scipy, evidently"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ready,
        "{} lacks scipy and Evidently; run tests/run.sh, which installs them with \
         tests/peers/setup.sh",
        python.display()
    );
    python
}

/// A deterministic sample source (SplitMix64, Box-Muller): the same data on every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn pick<'a>(&mut self, shares: &[(&'a str, f64)]) -> &'a str {
        let mut x = self.uniform();
        for (v, s) in shares {
            if x < *s {
                return v;
            }
            x -= s;
        }
        shares.last().unwrap().0
    }
}

/// Knobs for one generated table.
struct Shape {
    rows: usize,
    mean: f64,
    sd: f64,
    shares: &'static [(&'static str, f64)],
    null_every: usize,
}

/// A CSV with a normal `x`, a wide `y` rounded to 2 decimals (ties), a categorical `c`, a
/// small integer `k` (categorical by Azure ML's rule) and `x` null every `null_every` rows.
fn generate(path: &Path, shape: &Shape, seed: u64) {
    let mut d = Draw(seed);
    let mut text = String::from("x,y,c,k\n");
    for i in 0..shape.rows {
        let x = d.normal(shape.mean, shape.sd);
        let y = (d.normal(10.0 * shape.mean, 20.0) * 100.0).round() / 100.0;
        let c = d.pick(shape.shares);
        let k = (d.uniform() * (4.0 + shape.mean)).floor() as i64;
        if shape.null_every > 0 && i % shape.null_every == 0 {
            writeln!(text, ",{y},{c},{k}").unwrap();
        } else {
            writeln!(text, "{x},{y},{c},{k}").unwrap();
        }
    }
    std::fs::write(path, text).unwrap();
}

const SHARES: &[(&str, f64)] = &[("a", 0.6), ("b", 0.3), ("c", 0.1)];
const SHIFTED: &[(&str, f64)] = &[("a", 0.45), ("b", 0.35), ("c", 0.15), ("d", 0.05)];

fn corpora() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpora/tabular/azureml-examples/cli");
    assert!(
        dir.is_dir(),
        "the shared corpora are missing at {}",
        dir.display()
    );
    dir
}

struct Case {
    name: String,
    reference: PathBuf,
    current: PathBuf,
    /// Evidently's JS and PSI are checked within the stated tolerance (large generated
    /// samples, where the two binnings see the same shape).
    binned_tolerance: bool,
}

fn cases(sandbox: &Sandbox) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut generated = |name: &str, reference: Shape, current: Shape, seed: u64| {
        let (r, c) = (
            sandbox.path(&format!("{name}-ref.csv")),
            sandbox.path(&format!("{name}-cur.csv")),
        );
        generate(&r, &reference, seed);
        generate(&c, &current, seed + 1);
        cases.push(Case {
            name: name.to_owned(),
            reference: r,
            current: c,
            binned_tolerance: reference.rows >= 4000 && current.rows >= 4000,
        });
    };
    let base = |rows| Shape {
        rows,
        mean: 0.0,
        sd: 1.0,
        shares: SHARES,
        null_every: 0,
    };
    // Exact KS path (both sides ≤ 10,000 rows), unequal sizes; a mean shift, a new category,
    // nulls in the current data.
    generated(
        "shifted",
        base(5000),
        Shape {
            mean: 0.3,
            shares: SHIFTED,
            null_every: 50,
            ..base(4000)
        },
        1,
    );
    // Equal sizes, spread changes only.
    generated(
        "spread",
        base(6000),
        Shape {
            sd: 1.5,
            ..base(6000)
        },
        3,
    );
    // Asymptotic KS path (over 10,000 rows), no drift.
    generated("steady-large", base(30000), base(20000), 5);
    // A tiny current window.
    generated("tiny", base(200), base(3), 7);
    let t = corpora();
    let bike = t.join("jobs/automl-standalone-jobs/cli-automl-forecasting-bike-share");
    let heart = t.join("endpoints/batch");
    let bank = t.join("jobs/basics/hello-automl");
    for (name, reference, current) in [
        (
            "bike-share",
            bike.join("training-mltable-folder/bike-share-train.csv"),
            bike.join("test-mltable-folder/bike-share-test.csv"),
        ),
        (
            "heart",
            heart.join("deploy-pipelines/training-with-components/data/train/heart.csv"),
            heart.join("deploy-models/heart-classifier-mlflow/data/heart-unlabeled-0.csv"),
        ),
        (
            "bank",
            bank.join("training-mltable-folder/bank_marketing_train_data.csv"),
            bank.join("test-mltable-folder/bank_marketing_test_data.csv"),
        ),
    ] {
        cases.push(Case {
            name: name.to_owned(),
            reference,
            current,
            binned_tolerance: false,
        });
    }
    cases
}

/// `a` equals `b` to a relative `rel` (infinities and "inf" text equal each other).
fn close(a: &Value, b: &Value, rel: f64) -> bool {
    let number = |v: &Value| match v {
        Value::String(s) => s.parse::<f64>().ok(),
        v => v.as_f64(),
    };
    match (number(a), number(b)) {
        (Some(x), Some(y)) if x.is_infinite() || y.is_infinite() => x == y,
        (Some(x), Some(y)) => (x - y).abs() <= rel * x.abs().max(y.abs()) || (x - y).abs() < 1e-300,
        _ => false,
    }
}

struct Checks {
    failures: Vec<String>,
    gaps: String,
}

impl Checks {
    fn equal(&mut self, what: &str, lathe: &Value, peer: &Value, rel: f64) {
        if !close(lathe, peer, rel) {
            self.failures.push(format!(
                "{what}: lathe {lathe}, peer {peer} (tolerance {rel:e})"
            ));
        }
    }
}

#[test]
fn drift_metrics_equal_scipy_and_match_evidently() {
    let sandbox = Sandbox::new();
    let cases = cases(&sandbox);
    let mut lathe: Vec<Value> = Vec::new();
    let mut oracle_input = Vec::new();
    for case in &cases {
        let run = sandbox
            .lathe(&[
                "drift",
                case.reference.to_str().unwrap(),
                case.current.to_str().unwrap(),
                "--json",
            ])
            .ok();
        let answer = run.json();
        let features: Vec<Value> = answer["comparison"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["problem"].is_null())
            .map(|f| json!({"name": f["name"], "type": f["feature_type"]}))
            .collect();
        oracle_input.push(json!({
            "name": case.name,
            "reference": case.reference,
            "current": case.current,
            "features": features,
        }));
        lathe.push(answer);
    }
    let mut child = Command::new(drift_python())
        .arg(peer_script("drift_oracle.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the drift oracle starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&oracle_input).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the drift oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle: Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut checks = Checks {
        failures: Vec::new(),
        gaps: String::new(),
    };
    let mut compared = 0;
    for (case, answer) in cases.iter().zip(&lathe) {
        for f in answer["comparison"]["features"].as_array().unwrap() {
            if !f["problem"].is_null() {
                continue;
            }
            let name = f["name"].as_str().unwrap();
            let what = format!("{}/{name}", case.name);
            let peer = &oracle[&case.name][name];
            let (scipy, ev, drift, dist) = (
                &peer["scipy"],
                &peer["evidently"],
                &f["drift"],
                &f["distribution"],
            );
            compared += 1;
            let js = &drift["jensen_shannon_distance"];
            let psi = &drift["population_stability_index"];
            // Summed in another order: a distance near 0 is the root of a sum that cancels.
            checks.equal(&format!("{what} JS"), js, &scipy["jensen_shannon"], 1e-9);
            checks.equal(&format!("{what} PSI"), psi, &scipy["psi"], 1e-9);
            if f["feature_type"] == "numerical" {
                for (e, p) in dist["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(scipy["edges"].as_array().unwrap())
                {
                    checks.equal(&format!("{what} edge"), e, p, 1e-15);
                }
                if dist["reference"] != scipy["reference_counts"]
                    || dist["current"] != scipy["current_counts"]
                {
                    checks.failures.push(format!(
                        "{what} bin counts: lathe {} / {}, numpy {} / {}",
                        dist["reference"],
                        dist["current"],
                        scipy["reference_counts"],
                        scipy["current_counts"]
                    ));
                }
                let p = &drift["two_sample_kolmogorov_smirnov_test"];
                checks.equal(
                    &format!("{what} KS D"),
                    &drift["kolmogorov_smirnov_statistic"],
                    &scipy["ks_statistic"],
                    1e-12,
                );
                checks.equal(&format!("{what} KS p"), p, &scipy["ks_pvalue"], 1e-9);
                checks.equal(&format!("{what} KS p vs Evidently"), p, &ev["ks"], 1e-9);
                let nwd = &drift["normalized_wasserstein_distance"];
                checks.equal(
                    &format!("{what} NWD"),
                    nwd,
                    &scipy["normalized_wasserstein"],
                    1e-9,
                );
                // Evidently divides by the population std: a factor sqrt(n / (n - 1)) apart.
                let n = f["reference_values"].as_f64().unwrap();
                let scaled = json!(nwd.as_f64().unwrap() * (n / (n - 1.0)).sqrt());
                checks.equal(
                    &format!("{what} NWD vs Evidently"),
                    &scaled,
                    &ev["wasserstein"],
                    1e-9,
                );
            } else {
                let categories = dist["categories"].as_array().unwrap();
                for (i, k) in categories.iter().enumerate() {
                    let expected = &scipy["categories"][k.as_str().unwrap()];
                    let got = json!([dist["reference"][i], dist["current"][i]]);
                    if &got != expected {
                        checks.failures.push(format!(
                            "{what} category {k}: lathe {got}, pandas {expected}"
                        ));
                    }
                }
                let p = &drift["pearsons_chi_squared_test"];
                checks.equal(
                    &format!("{what} chi2"),
                    &drift["chi_squared_statistic"],
                    &scipy["chi_squared_statistic"],
                    1e-10,
                );
                checks.equal(
                    &format!("{what} chi2 p"),
                    p,
                    &scipy["chi_squared_pvalue"],
                    1e-9,
                );
                checks.equal(
                    &format!("{what} chi2 p vs Evidently"),
                    p,
                    &ev["chisquare"],
                    1e-9,
                );
                checks.equal(
                    &format!("{what} Chebyshev"),
                    &drift["chebyshev_distance"],
                    &scipy["chebyshev"],
                    1e-12,
                );
            }
            // Evidently's JS is in the natural log over its own bins; PSI fills empty bins
            // with 1e-4 instead of smoothing. Stated tolerance on large samples: within 10%
            // of the larger value, plus 0.01.
            let ev_js = ev["jensenshannon"].as_f64().unwrap() / std::f64::consts::LN_2.sqrt();
            let ev_psi = ev["psi"].as_f64().unwrap_or(f64::NAN);
            let (js, psi) = (js.as_f64().unwrap(), psi.as_f64().unwrap());
            writeln!(
                checks.gaps,
                "{what}: JS {js:.4} vs Evidently {ev_js:.4} (base 2); PSI {psi:.4} vs {ev_psi:.4}"
            )
            .unwrap();
            if case.binned_tolerance {
                for (m, a, b) in [("JS", js, ev_js), ("PSI", psi, ev_psi)] {
                    if (a - b).abs() > 0.1 * a.max(b) + 0.01 {
                        checks.failures.push(format!(
                            "{what} {m}: lathe {a}, Evidently {b} (beyond 10% + 0.01)"
                        ));
                    }
                }
            }
        }
    }
    println!(
        "Lathe vs Evidently on JS and PSI (different binnings):\n{}",
        checks.gaps
    );
    assert!(compared >= 50, "only {compared} features compared");
    assert!(
        checks.failures.is_empty(),
        "{} value(s) differ from the peers:\n{}",
        checks.failures.len(),
        checks.failures.join("\n")
    );
}

#[test]
fn known_shifts_are_found_and_steady_data_is_not() {
    let sandbox = Sandbox::new();
    let cases = cases(&sandbox);
    let run = |case: &str, extra: &[&str]| {
        let case = cases.iter().find(|c| c.name == case).unwrap();
        let mut args = vec![
            "drift",
            case.reference.to_str().unwrap(),
            case.current.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        sandbox.lathe(&args)
    };
    let shifted = run("shifted", &["--json"]).ok().json();
    let feature = |name: &str| {
        shifted["comparison"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(feature("x")["feature_type"], "numerical");
    assert_eq!(feature("k")["feature_type"], "categorical");
    // 1 in 50 current rows has no x.
    assert_eq!(
        feature("x")["quality"]["null_value_rate"],
        json!(80.0 / 4000.0)
    );
    // "d" was never seen: chi-squared p is 0 and d's share is out of bounds.
    assert_eq!(
        feature("c")["drift"]["pearsons_chi_squared_test"],
        json!(0.0)
    );
    assert!(
        feature("c")["quality"]["out_of_bounds_rate"]
            .as_f64()
            .unwrap()
            > 0.03
    );
    // The CI gate: drift exits 3, steady data 0, an error 1 naming the column.
    let gate = run("shifted", &["--fail-on-drift"]);
    assert_eq!(gate.code, 3, "{}{}", gate.stdout, gate.stderr);
    assert!(gate.stdout.contains("features drifted"), "{}", gate.stdout);
    let steady = run(
        "steady-large",
        &[
            "--fail-on-drift",
            "--threshold",
            "two_sample_kolmogorov_smirnov_test=0.001",
        ],
    );
    assert_eq!(steady.code, 0, "{}{}", steady.stdout, steady.stderr);
    run("steady-large", &["--columns", "x,nope"])
        .fails_with("column 'nope' is not in the reference data");
    run("steady-large", &["--threshold", "accuracy=0.5"])
        .fails_with("accuracy is not a drift or data quality metric");
}

/// The requests [`hook`] received: each one's Authorization header and body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A webhook receiver: https on loopback with a certificate from a private CA, as a team's
/// internal service has. Returns its URL (a secret in the path and query, as webhook URLs
/// carry), what it received, and the CA's certificate in PEM for `SSL_CERT_FILE`.
fn hook() -> (String, Received, String) {
    use std::io::{BufRead, BufReader, Read};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Lathe test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://{}/hooks/secret-path?token=in-the-url",
        listener.local_addr().unwrap()
    );
    let got: Received = Default::default();
    let keep = std::sync::Arc::clone(&got);
    // One request per connection; a client that refuses the certificate ends its connection
    // without one.
    let serve = move |stream| -> std::io::Result<(String, String)> {
        let tls = rustls::ServerConnection::new(std::sync::Arc::clone(&config))
            .map_err(std::io::Error::other)?;
        let mut reader = BufReader::new(rustls::StreamOwned::new(tls, stream));
        let (mut auth, mut length) = (String::new(), 0usize);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().map_err(std::io::Error::other)?;
            }
            if lower.starts_with("authorization:") {
                auth = line["authorization:".len()..].trim().to_owned();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let stream = reader.get_mut();
        stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")?;
        stream.conn.send_close_notify();
        stream.flush()?;
        Ok((auth, String::from_utf8_lossy(&body).into_owned()))
    };
    #[allow(clippy::disallowed_methods)] // a test's receiver, ended with the process
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Ok(request) = serve(stream) {
                keep.lock().unwrap().push(request);
            }
        }
    });
    (url, got, ca_pem)
}

/// https trusts the system's roots (or SSL_CERT_FILE's), not any certificate: a webhook
/// behind a private CA is refused with rustls' reason and the fix, naming neither the
/// URL's path nor its query.
#[test]
fn an_untrusted_certificate_is_refused_by_name() {
    let (url, received, _) = hook();
    let agent = lathe_core::http::agent(std::time::Duration::from_secs(10));
    let err = agent.post(&url).send(&b"{}"[..]).unwrap_err();
    let failure = lathe_core::http::failure(&err);
    assert!(failure.lasting, "{failure:?}");
    let why = failure.reason;
    assert!(why.contains("UnknownIssuer"), "{why}");
    assert!(why.contains("SSL_CERT_FILE"), "{why}");
    assert!(!why.contains("secret") && !why.contains("token="), "{why}");
    assert!(received.lock().unwrap().is_empty());
}

/// A monitor from YAML over an endpoint's collected data: drift against the training data,
/// prediction drift against its labels, data quality, and performance against ground truth
/// that arrives later; alerts grouped across runs, acknowledged; a retraining pipeline and a
/// webhook started once per new alert; a backtest alerting in the windows runs do.
#[test]
fn a_monitor_watches_collected_data_and_its_alerts_act() {
    let sandbox = Sandbox::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pipeline = root.join("assets/pipelines/churn-classification.yml");
    sandbox
        .lathe(&["pipeline", "run", pipeline.to_str().unwrap(), "--json"])
        .ok();
    let customers = root.join("assets/demo/customers.csv");
    sandbox
        .lathe(&[
            "data",
            "import",
            customers.to_str().unwrap(),
            "--name",
            "customers",
        ])
        .ok();
    let endpoint = sandbox.file("endpoint.yml", b"name: churn\n");
    sandbox
        .lathe(&[
            "online-endpoint",
            "create",
            "-f",
            endpoint.to_str().unwrap(),
        ])
        .ok();
    let deployment = sandbox.file(
        "blue.yml",
        b"name: blue\nendpoint_name: churn\nmodel: azureml:churn-pipeline-classifier:1\n\
          data_collector:\n  collections:\n    model_inputs:\n      enabled: 'true'\n    \
          model_outputs:\n      enabled: 'true'\n",
    );
    sandbox
        .lathe(&[
            "online-deployment",
            "create",
            "-f",
            deployment.to_str().unwrap(),
        ])
        .ok();

    // Unknown names are refused by field before anything is kept.
    let bad = sandbox.file(
        "bad.yml",
        b"name: m\ntrigger: {type: recurrence, frequency: minute, interval: 1}\ncreate_monitor:\n  \
          monitoring_target: {endpoint_deployment_id: 'azureml:churn:bleu'}\n  monitoring_signals:\n    \
          d:\n      type: data_drift\n      reference_data: {input_data: {path: 'azureml:custmers:1'}}\n",
    );
    sandbox
        .lathe(&["monitor", "create", "-f", bad.to_str().unwrap()])
        .fails_with("endpoint 'churn' has no deployment 'bleu'; did you mean 'blue'?");
    let e = sandbox.lathe(&["monitor", "create", "-f", bad.to_str().unwrap()]);
    assert!(
        e.stderr
            .contains("reference_data.input_data.path: no data asset named 'custmers'"),
        "{}",
        e.stderr
    );

    let server = lathe_tests::Server::start(&sandbox.workspace(), &[]);
    let shown = endpoint_until(&sandbox, "churn", "the deployment never served", |s| {
        s["deployments"][0]["provisioning_state"] == "ready"
    });
    let url = shown["scoring_uri"]
        .as_str()
        .unwrap()
        .replace("/score", "/invocations");
    let text = std::fs::read_to_string(&customers).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.take(120).map(|l| l.split(',').collect()).collect();
    let features = [
        "region",
        "plan",
        "age",
        "monthly_spend",
        "tenure_months",
        "support_tickets",
        "satisfaction",
    ];
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let agent = lathe_tests::http();
    // Sends one row; with `probabilities` the answer carries the class probabilities.
    let send = |id: &str, row: &[&str], drifted: bool, probabilities: bool| -> Value {
        let values: Vec<Value> = features
            .iter()
            .map(|f| {
                let v = row[at(f)];
                match (*f, drifted) {
                    _ if v.is_empty() => Value::Null,
                    ("plan", true) => json!("platinum"),
                    ("age", true) => json!(v.parse::<f64>().unwrap() + 40.0),
                    ("region" | "plan", _) => json!(v),
                    _ => json!(v.parse::<f64>().unwrap()),
                }
            })
            .collect();
        let mut body = json!({"dataframe_split": {"columns": features, "data": [values]}});
        if probabilities {
            body["params"] = json!({"probabilities": true});
        }
        let request = ureq::http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("content-type", "application/json")
            .header("x-request-id", id)
            .header("azureml-model-deployment", "blue")
            .body(body.to_string())
            .unwrap();
        let mut answer = agent.run(request).unwrap();
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    };
    let start = lathe_core::db::now_millis() - 1;
    for (i, row) in rows.iter().enumerate() {
        send(&format!("r{i}"), row, true, false);
    }
    let end = lathe_core::db::now_millis() + 1;
    endpoint_until(
        &sandbox,
        "churn",
        "the requests were never collected",
        |s| collected_rows(s, "model_outputs") == rows.len() as i64,
    );
    // Ground truth arrives for the first 100 requests.
    let mut truth = String::from("request,churned\n");
    for (i, row) in rows.iter().take(100).enumerate() {
        writeln!(truth, "r{i},{}", row[at("churned")]).unwrap();
    }
    let truth = sandbox.file("truth.csv", truth.as_bytes());
    sandbox
        .lathe(&[
            "data",
            "import",
            truth.to_str().unwrap(),
            "--name",
            "churn-truth",
        ])
        .ok();

    let monitor = sandbox.file(
        "monitor.yml",
        br"$schema: http://azureml/sdk-2-0/Schedule.json
name: churn-watch
trigger:
  type: recurrence
  frequency: minute
  interval: 1
create_monitor:
  compute: {instance_type: standard_e4s_v3, runtime_version: '3.4'}
  monitoring_target:
    ml_task: classification
    endpoint_deployment_id: azureml:churn:blue
  monitoring_signals:
    inputs-drift:
      type: data_drift
      reference_data:
        input_data: {path: 'azureml:customers:1', type: mltable}
        data_context: training
        data_column_names: {target_column: churned}
      features: [region, plan, age, monthly_spend]
      feature_type_override: {age: numerical}
      alert_enabled: true
      metric_thresholds:
        numerical: {normalized_wasserstein_distance: 0.1, two_sample_kolmogorov_smirnov_test: 0.01}
        categorical: {jensen_shannon_distance: 0.1}
    outputs-drift:
      type: prediction_drift
      reference_data:
        input_data: {path: 'azureml:customers:1', type: mltable}
        data_column_names: {target_column: churned}
      metric_thresholds:
        categorical: {pearsons_chi_squared_test: 0.05}
    quality:
      type: data_quality
      reference_data:
        input_data: {path: 'azureml:customers:1', type: mltable}
      features: [age, plan]
      feature_type_override: {age: numerical}
      alert_enabled: true
      metric_thresholds:
        numerical: {out_of_bounds_rate: 0.1}
        categorical: {out_of_bounds_rate: 0.1}
    performance:
      type: model_performance
      reference_data:
        input_data: {path: 'azureml:churn-truth:1', type: mltable}
        data_context: ground_truth
        data_column_names: {actual: churned, correlation_id: request}
      alert_enabled: true
      metric_thresholds:
        classification: {accuracy: 0.99, precision: 0.0}
    attribution:
      type: feature_attribution_drift
      metric_thresholds: {normalized_discounted_cumulative_gain: 0.9}
  alert_notification:
    emails: [someone@example.com]
",
    );
    let created = sandbox
        .lathe(&["monitor", "create", "-f", monitor.to_str().unwrap()])
        .ok();
    assert!(
        created.stdout.contains("attribution: kept but disabled"),
        "{}",
        created.stdout
    );
    assert!(
        created
            .stdout
            .contains("alert_notification: kept, not used"),
        "{}",
        created.stdout
    );
    // Exported, it reads back the same.
    let exported = sandbox
        .lathe(&["monitor", "show", "churn-watch", "--yaml"])
        .ok()
        .stdout;
    assert!(
        exported.contains("normalized_discounted_cumulative_gain: 0.9"),
        "{exported}"
    );

    let (hook_url, received, ca_pem) = hook();
    let ca_file = sandbox.path("private-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let secret = std::ffi::OsStr::new("s3cret-value");
    sandbox
        .lathe(&[
            "monitor",
            "action",
            "add",
            "churn-watch",
            "--pipeline",
            pipeline.to_str().unwrap(),
            "--input",
            "label=churned",
        ])
        .ok();
    let add_hook = [
        "monitor",
        "action",
        "add",
        "churn-watch",
        "--webhook",
        &hook_url,
        "--secret-env",
        "HOOK_TOKEN",
    ];
    sandbox.lathe(&add_hook).ok();
    // The same hook twice would post every alert twice.
    sandbox
        .lathe(&add_hook)
        .fails_with("churn-watch already has this action");
    // Alerts send rows to labeling: the least confident to one project, the most drifted to
    // another (both start empty).
    for (project, rank, top) in [
        ("churn-review", "confidence", "10"),
        ("churn-drifted", "drift", "5"),
    ] {
        sandbox
            .lathe(&[
                "label",
                "create",
                project,
                "--task",
                "row_classification",
                "--asset",
                "customers:1",
                "--labels",
                "true,false",
                "--empty",
            ])
            .ok();
        sandbox
            .lathe(&[
                "monitor",
                "action",
                "add",
                "churn-watch",
                "--label",
                project,
                "--rank",
                rank,
                "--top",
                top,
            ])
            .ok();
    }
    sandbox
        .lathe(&[
            "monitor",
            "action",
            "add",
            "churn-watch",
            "--label",
            "customers-typo",
        ])
        .fails_with("there is no labeling project 'customers-typo'");
    let window = format!("{}/{}", iso(start), iso(end));
    let first = sandbox
        .lathe_with(
            &[
                "monitor",
                "run",
                "churn-watch",
                "--window",
                &window,
                "--json",
            ],
            &[
                ("HOOK_TOKEN", secret),
                ("SSL_CERT_FILE", ca_file.as_os_str()),
            ],
        )
        .ok()
        .json();
    assert_eq!(first["state"], "completed", "{first}");
    let signal = |run: &Value, name: &str| -> Value {
        run["signals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["signal"] == name)
            .unwrap()
            .clone()
    };
    let crossed = |run: &Value, name: &str| -> Vec<String> {
        signal(run, name)["crossings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["feature"].as_str().unwrap(),
                    c["metric"].as_str().unwrap()
                )
            })
            .collect()
    };
    // Ages 40 years older and an unseen plan drift; region and spend do not.
    let drift = crossed(&first, "inputs-drift");
    for expected in [
        "age normalized_wasserstein_distance",
        "age two_sample_kolmogorov_smirnov_test",
        "plan jensen_shannon_distance",
    ] {
        assert!(drift.contains(&expected.to_owned()), "{drift:?}");
    }
    assert!(!drift.iter().any(|c| c.starts_with("region")), "{drift:?}");
    assert_eq!(
        signal(&first, "inputs-drift")["values"]["plan"]["out_of_bounds_rate"],
        Value::Null,
        "drift reports drift metrics only"
    );
    assert_eq!(
        crossed(&first, "quality"),
        ["age out_of_bounds_rate", "plan out_of_bounds_rate"]
    );
    assert_eq!(
        signal(&first, "quality")["values"]["plan"]["out_of_bounds_rate"],
        json!(1.0)
    );
    // The performance signal scored the 100 requests with ground truth.
    let accuracy = signal(&first, "performance")["values"][""]["accuracy"]
        .as_f64()
        .unwrap();
    assert!((0.3..0.99).contains(&accuracy), "{accuracy}");
    assert_eq!(crossed(&first, "performance"), [" accuracy"]);
    // Prediction drift is computed but does not alert (alert_enabled left out).
    assert!(
        signal(&first, "outputs-drift")["values"]["prediction"]["pearsons_chi_squared_test"]
            .is_number()
    );
    let opened = first["opened"].as_array().unwrap().len();
    assert_eq!(opened, drift.len() + 3, "{first}");
    // Each action ran once for the run's new alerts.
    let actions = first["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 4, "{first}");
    assert!(
        actions.iter().all(|a| a["state"] == "completed"),
        "{actions:?}"
    );
    let retraining = actions.iter().find(|a| a["kind"] == "pipeline").unwrap();
    let retrain_run = retraining["pipeline_run_id"].as_str().unwrap();
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "Bearer s3cret-value");
    let posted: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(posted["monitor"], "churn-watch");
    assert_eq!(posted["alerts"].as_array().unwrap().len(), opened);
    check_rows_sent_to_labeling(&sandbox, &rows, &send, &window);

    // The values are a tracked run in the monitor's experiment.
    let run_id = first["run_id"].as_str().unwrap();
    let tracked = sandbox
        .lathe(&["runs", "show", run_id, "--json"])
        .ok()
        .json();
    assert!(
        tracked
            .to_string()
            .contains("inputs-drift.age.normalized_wasserstein_distance"),
        "{tracked}"
    );

    // The same window again: the same alerts seen again, no action repeated.
    let second = sandbox
        .lathe_with(
            &[
                "monitor",
                "run",
                "churn-watch",
                "--window",
                &window,
                "--json",
            ],
            &[
                ("HOOK_TOKEN", secret),
                ("SSL_CERT_FILE", ca_file.as_os_str()),
            ],
        )
        .ok()
        .json();
    assert_eq!(second["opened"].as_array().unwrap().len(), 0, "{second}");
    assert_eq!(second["seen_again"].as_array().unwrap().len(), opened);
    assert!(second["actions"].as_array().unwrap().is_empty());
    assert_eq!(received.lock().unwrap().len(), 1);
    let alerts = sandbox
        .lathe(&["alert", "list", "--monitor", "churn-watch", "--json"])
        .ok()
        .json();
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), opened);
    assert!(alerts.iter().all(|a| a["occurrences"] == 2));
    let age = alerts
        .iter()
        .find(|a| a["feature"] == "age" && a["signal"] == "quality")
        .unwrap();
    assert_eq!(
        age["actions"][0]["pipeline_run_id"].as_str(),
        Some(retrain_run)
    );
    let id = age["id"].to_string();
    sandbox.lathe(&["alert", "ack", &id, "--by", "ana"]).ok();
    let open = sandbox
        .lathe(&["alert", "list", "--open", "--json"])
        .ok()
        .json();
    assert_eq!(open.as_array().unwrap().len(), opened - 1);
    let all = sandbox.lathe(&["alert", "list", "--json"]).ok().json();
    let acked = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == age["id"])
        .unwrap();
    assert_eq!(acked["acknowledged_by"], "ana");

    // A window with nothing collected fails, naming it, and raises nothing.
    let empty = format!("{}/{}", iso(start - 7_200_000), iso(start - 3_600_000));
    let failed = sandbox.lathe(&[
        "monitor",
        "run",
        "churn-watch",
        "--window",
        &empty,
        "--json",
    ]);
    assert_ne!(failed.code, 0);
    let failed = failed.json();
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("nothing was collected in churn-blue-model_inputs"),
        "{failed}"
    );
    assert!(failed["opened"].as_array().unwrap().is_empty());

    // A backtest alerts in exactly the windows that running the monitor does.
    let backtest = sandbox
        .lathe(&[
            "monitor",
            "backtest",
            "churn-watch",
            "--windows",
            "3",
            "--json",
        ])
        .ok()
        .json();
    let windows = backtest.as_array().unwrap();
    assert_eq!(windows.len(), 3);
    for w in windows {
        let due = w["due_ms"].as_i64().unwrap();
        let ran = sandbox
            .lathe(&["monitor", "run", "churn-watch", "--at", &iso(due), "--json"])
            .json();
        for s in w["signals"].as_array().unwrap() {
            let name = s["signal"].as_str().unwrap();
            assert_eq!(
                s["crossings"],
                signal(&ran, name)["crossings"],
                "window {due}, signal {name}"
            );
            assert_eq!(
                s["problem"],
                signal(&ran, name)["problem"],
                "window {due}, signal {name}"
            );
        }
    }
    drop(server);
}

/// Sends one row `(id, row, drifted, with probabilities)` to the endpoint; its answer.
type Send<'a> = dyn Fn(&str, &[&str], bool, bool) -> Value + 'a;

/// The label actions of `a_monitor_watches_collected_data_and_its_alerts_act`: the review
/// project holds the window's ten least confident rows, least first — as the endpoint's own
/// probabilities for the same rows order them —; the drift project the five most drifted,
/// highest score first; and the review project's accepted labels are ground truth a
/// model_performance signal scores exactly.
fn check_rows_sent_to_labeling(
    sandbox: &Sandbox,
    rows: &[Vec<&str>],
    send: &Send<'_>,
    window: &str,
) {
    use lathe_core::labeling::project::{self, Filter};
    use lathe_core::labeling::{Shape, rows as row_items};
    // The same rows again, asking for probabilities (outside the window, under other ids).
    let mut answers: Vec<(f64, String, String)> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let answer = send(&format!("again-{i}"), row, true, true);
            let p = &answer["predictions"][0];
            let top = p["probabilities"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_f64().unwrap())
                .fold(f64::MIN, f64::max);
            let class = match &p["prediction"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (top, format!("r{i}"), class)
        })
        .collect();
    answers.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ws = lathe_core::Workspace::open(sandbox.workspace()).unwrap();
    let review = project::open(&ws, "churn-review").unwrap();
    let items = project::items(&ws, &review, &Filter::default()).unwrap();
    let keys: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
    let expected: Vec<&str> = answers[..10].iter().map(|a| a.1.as_str()).collect();
    assert_eq!(keys, expected, "the least confident rows, least first");
    let first = row_items::row(&ws, &review, 0).unwrap();
    assert!(
        first
            .reason
            .as_deref()
            .unwrap()
            .contains(&format!("{:.3}", answers[0].0)),
        "{first:?}"
    );
    assert!(
        first
            .fields
            .iter()
            .any(|(n, v)| n == "plan" && v.as_deref() == Some("platinum"))
    );
    let drifted = project::open(&ws, "churn-drifted").unwrap();
    let scores: Vec<f64> = (0..5)
        .map(|i| {
            let reason = row_items::row(&ws, &drifted, i).unwrap().reason.unwrap();
            assert!(
                reason.contains("age") || reason.contains("plan"),
                "{reason}"
            );
            reason
                .split("drift score ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(
        project::items(&ws, &drifted, &Filter::default())
            .unwrap()
            .len(),
        5
    );

    // People label the ten: the model's own answer, but for three; all accepted.
    for (position, (_, _, class)) in answers[..10].iter().enumerate() {
        let other = if class == "true" { "false" } else { "true" };
        let label = if position < 3 { other } else { class.as_str() };
        let shape = Shape::Class {
            label: label.to_owned(),
            confidence: None,
            attributes: Default::default(),
        };
        project::submit(&ws, &review, position as i64, "ana", &[shape], "human").unwrap();
        project::review(&ws, &review, position as i64, "bo", true, "").unwrap();
    }
    let truth = sandbox
        .lathe(&["label", "ground-truth", "churn-review", "--json"])
        .ok()
        .json();
    assert_eq!(truth.as_array().unwrap().len(), 10, "{truth}");
    let monitor = sandbox.file(
        "labeled.yml",
        b"name: churn-labeled\ntrigger: {type: recurrence, frequency: day, interval: 1}\n\
          create_monitor:\n  monitoring_target: {endpoint_deployment_id: 'azureml:churn:blue'}\n  \
          monitoring_signals:\n    performance:\n      type: model_performance\n      \
          reference_data:\n        input_data: {path: 'labeling:churn-review'}\n      \
          metric_thresholds:\n        classification: {accuracy: 0.9}\n",
    );
    sandbox
        .lathe(&["monitor", "create", "-f", monitor.to_str().unwrap()])
        .ok();
    let shown = sandbox
        .lathe(&["monitor", "show", "churn-labeled", "--yaml"])
        .ok()
        .stdout;
    assert!(shown.contains("path: labeling:churn-review"), "{shown}");
    let ran = sandbox
        .lathe(&[
            "monitor",
            "run",
            "churn-labeled",
            "--window",
            window,
            "--json",
        ])
        .ok()
        .json();
    let performance = &ran["signals"][0];
    assert_eq!(performance["values"][""]["accuracy"], json!(0.7), "{ran}");
    assert_eq!(performance["crossings"][0]["metric"], "accuracy", "{ran}");
}
