//! Monitoring: how far production data has moved from a reference, and how good the model
//! still is. The metrics and their names are Azure ML model monitoring's (the names its
//! monitor YAML uses as threshold keys), computed the way its monitoring components compute
//! them; the definitions are in `docs/monitoring.md`.
//!
//! - `stats.rs` — one feature's distances and tests over sorted values or counts;
//! - `ks.rs` — scipy's two-sample Kolmogorov-Smirnov p-value;
//! - `tables.rs` — a reference or current table read a few columns at a time;
//! - `compare.rs` — two tables compared feature by feature: drift and data quality;
//! - `thresholds.rs` — which values cross their thresholds, the share of drifted features;
//! - `performance.rs` — predictions joined with later ground truth, scored;
//! - `spec.rs` — a monitor as Azure ML's monitoring schedule YAML, read and written back;
//! - `monitors.rs` — monitors kept in the workspace, due times claimed, alerts listed and
//!   acknowledged;
//! - `run.rs` — one monitor run (signals over windows, a tracked run, alerts) and backtests;
//! - `actions.rs` — what an alert starts: a pipeline, a labeling project's new rows, a webhook;
//! - `ranking.rs` — which rows go to labeling: the most drifted, the least confident;
//! - `runner.rs` — monitors run when due, by one process of those holding the workspace.
//! - `trigger.rs` — when a monitor runs (recurrence or cron, in UTC), ISO 8601 windows.

pub mod actions;
pub mod compare;
pub mod ks;
pub mod monitors;
pub mod performance;
pub mod ranking;
pub mod run;
pub mod runner;
pub mod spec;
pub mod stats;
pub mod tables;
pub mod thresholds;
pub mod trigger;

use serde::{Deserialize, Serialize};

/// How a feature is compared: binned as numbers, or counted as categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    Numerical,
    Categorical,
}

impl FeatureType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Numerical => "numerical",
            Self::Categorical => "categorical",
        }
    }
}

/// A monitoring metric, named as Azure ML's monitor YAML names its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    JensenShannonDistance,
    PopulationStabilityIndex,
    NormalizedWassersteinDistance,
    /// The p-value of the two-sample Kolmogorov-Smirnov test.
    TwoSampleKolmogorovSmirnovTest,
    /// The p-value of Pearson's chi-squared goodness-of-fit test.
    PearsonsChiSquaredTest,
    ChebyshevDistance,
    /// The KS statistic `D` (reported beside the p-value).
    KolmogorovSmirnovStatistic,
    /// The chi-squared statistic (reported beside the p-value).
    ChiSquaredStatistic,
    NullValueRate,
    DataTypeErrorRate,
    OutOfBoundsRate,
    Accuracy,
    Precision,
    Recall,
    F1Score,
    Auc,
    Mae,
    Mse,
    Rmse,
    R2,
}

impl Metric {
    pub const ALL: [Metric; 20] = [
        Self::JensenShannonDistance,
        Self::PopulationStabilityIndex,
        Self::NormalizedWassersteinDistance,
        Self::TwoSampleKolmogorovSmirnovTest,
        Self::PearsonsChiSquaredTest,
        Self::ChebyshevDistance,
        Self::KolmogorovSmirnovStatistic,
        Self::ChiSquaredStatistic,
        Self::NullValueRate,
        Self::DataTypeErrorRate,
        Self::OutOfBoundsRate,
        Self::Accuracy,
        Self::Precision,
        Self::Recall,
        Self::F1Score,
        Self::Auc,
        Self::Mae,
        Self::Mse,
        Self::Rmse,
        Self::R2,
    ];

    /// The name in YAML, JSON and metric keys (`jensen_shannon_distance`).
    pub fn name(self) -> &'static str {
        match self {
            Self::JensenShannonDistance => "jensen_shannon_distance",
            Self::PopulationStabilityIndex => "population_stability_index",
            Self::NormalizedWassersteinDistance => "normalized_wasserstein_distance",
            Self::TwoSampleKolmogorovSmirnovTest => "two_sample_kolmogorov_smirnov_test",
            Self::PearsonsChiSquaredTest => "pearsons_chi_squared_test",
            Self::ChebyshevDistance => "chebyshev_distance",
            Self::KolmogorovSmirnovStatistic => "kolmogorov_smirnov_statistic",
            Self::ChiSquaredStatistic => "chi_squared_statistic",
            Self::NullValueRate => "null_value_rate",
            Self::DataTypeErrorRate => "data_type_error_rate",
            Self::OutOfBoundsRate => "out_of_bounds_rate",
            Self::Accuracy => "accuracy",
            Self::Precision => "precision",
            Self::Recall => "recall",
            Self::F1Score => "f1_score",
            Self::Auc => "auc",
            Self::Mae => "mae",
            Self::Mse => "mse",
            Self::Rmse => "rmse",
            Self::R2 => "r2",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether a value *below* the threshold alerts. The tests' p-values do (a small p says
    /// the two samples differ; Azure ML's `evaluate_metrics_threshold.py` alerts below for
    /// them), and so do the performance metrics where higher is better — where Azure ML's
    /// code alerts above, against its own documentation's example of accuracy dipping below
    /// a threshold. Everything else (distances, PSI, rates, errors) alerts above.
    pub fn alerts_below(self) -> bool {
        matches!(
            self,
            Self::TwoSampleKolmogorovSmirnovTest
                | Self::PearsonsChiSquaredTest
                | Self::Accuracy
                | Self::Precision
                | Self::Recall
                | Self::F1Score
                | Self::Auc
                | Self::R2
        )
    }

    /// Whether `value` crosses `threshold` (see [`Metric::alerts_below`]); NaN never does.
    pub fn crosses(self, value: f64, threshold: f64) -> bool {
        if self.alerts_below() {
            value < threshold
        } else {
            value > threshold
        }
    }

    /// The drift metrics a feature of this type gets.
    pub fn drift_metrics(feature: FeatureType) -> &'static [Metric] {
        match feature {
            FeatureType::Numerical => &[
                Self::JensenShannonDistance,
                Self::PopulationStabilityIndex,
                Self::NormalizedWassersteinDistance,
                Self::TwoSampleKolmogorovSmirnovTest,
                Self::KolmogorovSmirnovStatistic,
            ],
            FeatureType::Categorical => &[
                Self::JensenShannonDistance,
                Self::PopulationStabilityIndex,
                Self::PearsonsChiSquaredTest,
                Self::ChiSquaredStatistic,
                Self::ChebyshevDistance,
            ],
        }
    }

    /// The data quality metrics (every feature type gets all three).
    pub const QUALITY: [Metric; 3] = [
        Self::NullValueRate,
        Self::DataTypeErrorRate,
        Self::OutOfBoundsRate,
    ];
}

/// What a comparison or a monitor could not do, naming the column, signal or field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MonitorError {
    #[error("column '{column}' is not in the {side} data (its columns: {available})")]
    MissingColumn {
        column: String,
        side: &'static str,
        available: String,
    },
    #[error("the {side} data has no rows")]
    Empty { side: &'static str },
    #[error("nothing was collected in {what}")]
    EmptyWindow { what: String },
    #[error("the reference and the current data have no column in common")]
    NothingInCommon,
    /// A monitor's YAML or settings, naming the field at fault.
    #[error("{0}")]
    Spec(String),
}

impl From<MonitorError> for crate::Error {
    fn from(e: MonitorError) -> Self {
        crate::Error::Monitoring(e)
    }
}
