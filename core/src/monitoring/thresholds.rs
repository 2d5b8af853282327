//! Thresholds on a comparison's metrics: which features crossed which, and the share of
//! features that drifted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::compare::Comparison;
use super::{FeatureType, Metric, MonitorError};

/// Thresholds per feature type, as a monitor's `metric_thresholds.numerical|categorical`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub numerical: BTreeMap<Metric, f64>,
    pub categorical: BTreeMap<Metric, f64>,
}

impl Thresholds {
    /// Azure ML's out-of-box drift thresholds: normalized Wasserstein distance 0.1 for
    /// numerical features, Jensen-Shannon distance 0.1 for categorical ones (azure-ai-ml's
    /// `DataDriftMetricThreshold._get_default_thresholds`).
    pub fn drift_defaults() -> Self {
        Self {
            numerical: [(Metric::NormalizedWassersteinDistance, 0.1)].into(),
            categorical: [(Metric::JensenShannonDistance, 0.1)].into(),
        }
    }

    /// Azure ML's out-of-box data quality thresholds: every rate at 0, so any null, type
    /// error or out-of-bounds value alerts.
    pub fn quality_defaults() -> Self {
        let all: BTreeMap<Metric, f64> = Metric::QUALITY.iter().map(|&m| (m, 0.0)).collect();
        Self {
            numerical: all.clone(),
            categorical: all,
        }
    }

    pub fn for_type(&self, feature: FeatureType) -> &BTreeMap<Metric, f64> {
        match feature {
            FeatureType::Numerical => &self.numerical,
            FeatureType::Categorical => &self.categorical,
        }
    }

    /// Sets `metric`'s threshold for every feature type it applies to (`--threshold
    /// two_sample_kolmogorov_smirnov_test=0.05`).
    ///
    /// # Errors
    /// The metric applies to neither feature type.
    pub fn set(&mut self, metric: Metric, value: f64) -> Result<(), MonitorError> {
        let mut applied = false;
        for (feature, map) in [
            (FeatureType::Numerical, &mut self.numerical),
            (FeatureType::Categorical, &mut self.categorical),
        ] {
            if Metric::drift_metrics(feature).contains(&metric) || Metric::QUALITY.contains(&metric)
            {
                map.insert(metric, value);
                applied = true;
            }
        }
        if applied {
            Ok(())
        } else {
            Err(MonitorError::Spec(format!(
                "{} is not a drift or data quality metric",
                metric.name()
            )))
        }
    }
}

/// One threshold crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossing {
    pub feature: String,
    pub metric: Metric,
    pub value: f64,
    pub threshold: f64,
}

/// What thresholds say of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub crossings: Vec<Crossing>,
    /// Features with at least one drift metric crossing, over the features compared.
    pub drifted_features: usize,
    pub features: usize,
    pub share_of_drifted_features: f64,
}

/// Checks every feature's drift and quality values against the thresholds of its type. A
/// value that was not computed (a feature with a problem) never crosses.
pub fn evaluate(comparison: &Comparison, thresholds: &Thresholds) -> Verdict {
    let mut crossings = Vec::new();
    let mut drifted = 0;
    for f in &comparison.features {
        let mut feature_drifted = false;
        for (&metric, &threshold) in thresholds.for_type(f.feature_type) {
            let value = f.drift.get(&metric).or_else(|| f.quality.get(&metric));
            if let Some(&value) = value
                && metric.crosses(value, threshold)
            {
                feature_drifted |= f.drift.contains_key(&metric);
                crossings.push(Crossing {
                    feature: f.name.clone(),
                    metric,
                    value,
                    threshold,
                });
            }
        }
        drifted += usize::from(feature_drifted);
    }
    let features = comparison.features.len();
    Verdict {
        crossings,
        drifted_features: drifted,
        features,
        share_of_drifted_features: if features == 0 {
            0.0
        } else {
            drifted as f64 / features as f64
        },
    }
}
