//! `lathe drift`: two tables compared, feature by feature, with an exit code for CI gates.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use lathe_core::Workspace;
use lathe_core::assets::AssetRef;
use lathe_core::monitoring::compare::{self, Comparison, Feature, Options};
use lathe_core::monitoring::tables::Table;
use lathe_core::monitoring::thresholds::{self, Thresholds, Verdict};
use lathe_core::monitoring::{FeatureType, Metric};
use serde_json::json;

use crate::cli::{Output, print_json};

/// `lathe drift REFERENCE CURRENT`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The reference: a table file (.csv, .tsv, .parquet, .jsonl) or a data asset NAME[:VERSION].
    reference: String,
    /// The data to compare with it, named the same ways.
    current: String,
    /// The features to compare (default: every column both have).
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// The metrics to report (default: all that apply), e.g.
    /// jensen_shannon_distance,two_sample_kolmogorov_smirnov_test,null_value_rate.
    #[arg(long, value_delimiter = ',', value_parser = parse_metric)]
    metrics: Vec<Metric>,
    /// METRIC=VALUE, for every feature type it applies to; repeatable. Without any: Azure ML's
    /// out-of-box normalized_wasserstein_distance=0.1 (numerical) and
    /// jensen_shannon_distance=0.1 (categorical). P-values alert below their threshold.
    #[arg(long = "threshold", value_parser = parse_threshold)]
    thresholds: Vec<(Metric, f64)>,
    /// Compare these columns as categories (overrides the inferred type).
    #[arg(long, value_delimiter = ',')]
    categorical: Vec<String>,
    /// Compare these columns as numbers (overrides the inferred type).
    #[arg(long, value_delimiter = ',')]
    numerical: Vec<String>,
    /// Exit with status 3 when any threshold is crossed (1 stays for errors).
    #[arg(long)]
    fail_on_drift: bool,
    #[command(flatten)]
    output: Output,
}

/// Drift was found and `--fail-on-drift` asked for a failing exit (status 3); the answer is
/// already printed.
#[derive(Debug)]
pub struct Drifted(pub String);

impl std::fmt::Display for Drifted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Drifted {}

fn parse_metric(s: &str) -> std::result::Result<Metric, String> {
    Metric::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        format!("unknown metric '{s}' (metrics: {})", names.join(", "))
    })
}

fn parse_threshold(s: &str) -> std::result::Result<(Metric, f64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not METRIC=VALUE"))?;
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a number"))?;
    if !value.is_finite() {
        return Err(format!("'{value}' is not a finite number"));
    }
    Ok((parse_metric(name.trim())?, value))
}

/// A table named on the command line: a file when one is there, else a data asset version.
fn table(root: &Path, arg: &str, ws: &mut Option<Workspace>) -> Result<Table> {
    let path = Path::new(arg);
    if path.is_file() {
        return Ok(Table::file(path)?);
    }
    let reference: AssetRef = arg
        .parse()
        .with_context(|| format!("'{arg}' is neither a table file nor a data asset"))?;
    if ws.is_none() {
        *ws = Some(
            Workspace::open(root)
                .with_context(|| format!("cannot open workspace {}", root.display()))?,
        );
    }
    let Some(ws) = ws.as_ref() else {
        anyhow::bail!("cannot open workspace {}", root.display());
    };
    let version = ws.resolve(&reference)?;
    Ok(Table::versions(
        ws,
        std::slice::from_ref(&version),
        version.reference(),
    )?)
}

pub fn drift(root: &Path, args: &DriftArgs) -> Result<()> {
    let mut ws = None;
    let reference = table(root, &args.reference, &mut ws)?;
    let current = table(root, &args.current, &mut ws)?;
    let mut options = Options {
        features: (!args.columns.is_empty()).then(|| args.columns.clone()),
        ..Options::default()
    };
    for (names, kind) in [
        (&args.categorical, FeatureType::Categorical),
        (&args.numerical, FeatureType::Numerical),
    ] {
        for name in names {
            options.types.insert(name.clone(), kind);
        }
    }
    let mut comparison = compare::compare(&reference, &current, &options)?;
    let thresholds = if args.thresholds.is_empty() {
        Thresholds::drift_defaults()
    } else {
        let mut t = Thresholds::default();
        for &(metric, value) in &args.thresholds {
            t.set(metric, value)?;
        }
        t
    };
    if !args.metrics.is_empty() {
        for f in &mut comparison.features {
            f.drift.retain(|m, _| args.metrics.contains(m));
            f.quality.retain(|m, _| args.metrics.contains(m));
        }
    }
    let verdict = thresholds::evaluate(&comparison, &thresholds);
    if args.output.json {
        print_json(&json!({
            "comparison": comparison,
            "thresholds": thresholds,
            "verdict": verdict,
        }))?;
    } else {
        print_comparison(&comparison, &thresholds, &verdict, &args.metrics);
    }
    if args.fail_on_drift && !verdict.crossings.is_empty() {
        return Err(Drifted(format!(
            "{} threshold(s) crossed in {} feature(s)",
            verdict.crossings.len(),
            verdict
                .crossings
                .iter()
                .map(|c| c.feature.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        ))
        .into());
    }
    Ok(())
}

/// The columns of the text table: each metric's short heading.
const SHOWN: [(Metric, &str); 8] = [
    (Metric::JensenShannonDistance, "JS"),
    (Metric::PopulationStabilityIndex, "PSI"),
    (Metric::NormalizedWassersteinDistance, "WASSERSTEIN"),
    (Metric::TwoSampleKolmogorovSmirnovTest, "KS P"),
    (Metric::PearsonsChiSquaredTest, "CHI2 P"),
    (Metric::NullValueRate, "NULLS"),
    (Metric::DataTypeErrorRate, "TYPE ERR"),
    (Metric::OutOfBoundsRate, "OUT OF RANGE"),
];

fn print_comparison(c: &Comparison, t: &Thresholds, v: &Verdict, metrics: &[Metric]) {
    let fmt = lathe_core::format::count;
    println!(
        "reference {} ({} rows)  vs  current {} ({} rows)",
        c.reference,
        fmt(c.reference_rows as i64),
        c.current,
        fmt(c.current_rows as i64)
    );
    let shown: Vec<(Metric, &str)> = SHOWN
        .iter()
        .copied()
        .filter(|(m, _)| metrics.is_empty() || metrics.contains(m))
        .collect();
    let width = c
        .features
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut header = format!("{:<width$}  {:<11}", "FEATURE", "TYPE");
    for (_, h) in &shown {
        header.push_str(&format!("  {h:>12}"));
    }
    println!("\n{header}");
    for f in &c.features {
        println!("{}", feature_line(f, &shown, v, width));
    }
    for (side, names) in [
        ("reference", &c.only_in_reference),
        ("current", &c.only_in_current),
    ] {
        if !names.is_empty() {
            println!("only in the {side}: {}", names.join(", "));
        }
    }
    let rule = |map: &std::collections::BTreeMap<Metric, f64>| {
        map.iter()
            .map(|(m, x)| {
                format!(
                    "{} {} {x}",
                    m.name(),
                    if m.alerts_below() { "<" } else { ">" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\n{} of {} features drifted (share {:.2}); alerting when numerical {}; categorical {}",
        v.drifted_features,
        v.features,
        v.share_of_drifted_features,
        rule(&t.numerical),
        rule(&t.categorical)
    );
}

fn feature_line(f: &Feature, shown: &[(Metric, &str)], v: &Verdict, width: usize) -> String {
    let mut line = format!("{:<width$}  {:<11}", f.name, f.feature_type.name());
    for (m, _) in shown {
        let value = f.drift.get(m).or_else(|| f.quality.get(m));
        let crossed = v
            .crossings
            .iter()
            .any(|c| c.feature == f.name && c.metric == *m);
        let text = match value {
            Some(x) => format!(
                "{}{}",
                lathe_core::format::metric(*x, 4),
                if crossed { "*" } else { "" }
            ),
            None => "-".to_owned(),
        };
        line.push_str(&format!("  {text:>12}"));
    }
    if let Some(problem) = &f.problem {
        line.push_str(&format!("  ({problem})"));
    }
    line
}
