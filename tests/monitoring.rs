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

use lathe_tests::{Sandbox, peer_script};
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
