//! Models: fitted with linfa, kept as their parameters. A model is saved as `model.json` beside an
//! MLflow `MLmodel` file (flavor `lathe`, with the signature), so it registers like any MLflow
//! model and scores without linfa's types.

use std::collections::BTreeMap;
use std::path::Path;

use linfa::prelude::*;
use ndarray::{Array1, ArrayView1, Axis};
use polars::prelude::*;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use super::features;
use super::preprocessing::{self, FeaturePlan, Input, Preprocessing};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    LinearRegression,
    RidgeRegression,
    LassoRegression,
    LogisticRegression,
    DecisionTree,
    Kmeans,
}

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Regression,
    Classification,
    Clustering,
}

impl Algorithm {
    pub const ALL: [Algorithm; 6] = [
        Self::LinearRegression,
        Self::RidgeRegression,
        Self::LassoRegression,
        Self::LogisticRegression,
        Self::DecisionTree,
        Self::Kmeans,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinearRegression => "linear_regression",
            Self::RidgeRegression => "ridge_regression",
            Self::LassoRegression => "lasso_regression",
            Self::LogisticRegression => "logistic_regression",
            Self::DecisionTree => "decision_tree",
            Self::Kmeans => "kmeans",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "'{text}' is not an algorithm; use one of {}",
                    names.join(", ")
                )
            })
    }

    pub fn task(self) -> Task {
        match self {
            Self::LinearRegression | Self::RidgeRegression | Self::LassoRegression => {
                Task::Regression
            }
            Self::LogisticRegression | Self::DecisionTree => Task::Classification,
            Self::Kmeans => Task::Clustering,
        }
    }

    /// The hyperparameters this algorithm takes, with their defaults.
    pub fn hyperparameters(self) -> &'static [(&'static str, f64)] {
        match self {
            Self::LinearRegression => &[],
            Self::RidgeRegression | Self::LassoRegression => &[("alpha", 1.0)],
            Self::LogisticRegression => &[("alpha", 1.0), ("max_iterations", 100.0)],
            Self::DecisionTree => &[("max_depth", 6.0), ("min_samples_split", 2.0)],
            Self::Kmeans => &[("k", 3.0), ("max_iterations", 300.0), ("seed", 42.0)],
        }
    }

    /// The hyperparameters with defaults filled in; a name the algorithm does not take, or a
    /// value out of its range, is an error naming it.
    pub fn settings(self, given: &BTreeMap<String, f64>) -> Result<BTreeMap<String, f64>, String> {
        let known = self.hyperparameters();
        for (name, value) in given {
            if !known.iter().any(|(k, _)| k == name) {
                let names: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
                return Err(format!(
                    "{} has no hyperparameter '{name}'{}",
                    self.as_str(),
                    if names.is_empty() {
                        String::new()
                    } else {
                        format!("; it takes {}", names.join(", "))
                    }
                ));
            }
            let positive = !matches!(name.as_str(), "seed");
            if !value.is_finite() || (positive && *value <= 0.0) || *value < 0.0 {
                return Err(format!(
                    "{name} = {value}: must be a {} number",
                    if positive { "positive" } else { "non-negative" }
                ));
            }
        }
        Ok(known
            .iter()
            .map(|(k, d)| ((*k).to_owned(), given.get(*k).copied().unwrap_or(*d)))
            .collect())
    }
}

/// One node of a decision tree, in a flat list (children by index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Node {
    Leaf {
        class: usize,
    },
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Linear {
        coefficients: Vec<f64>,
        intercept: f64,
    },
    /// Multinomial logistic regression: a weight row and an intercept per class.
    Softmax {
        classes: Vec<String>,
        weights: Vec<Vec<f64>>,
        intercepts: Vec<f64>,
    },
    Tree {
        classes: Vec<String>,
        nodes: Vec<Node>,
    },
    Centroids {
        centroids: Vec<Vec<f64>>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub algorithm: Algorithm,
    pub features: Vec<String>,
    pub label: Option<String>,
    pub settings: BTreeMap<String, f64>,
    pub body: Body,
    /// The fitted preparation the model was trained behind, when its training table had been
    /// through Lathe's preparation built-ins: the model then takes the raw columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<Preprocessing>,
}

/// What a model says about each row.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    Values(Vec<f64>),
    Classes {
        predicted: Vec<String>,
        /// For two classes: the probability of the second (sorted) class, the "positive" one.
        positive: Option<Vec<f64>>,
    },
    Clusters(Vec<u32>),
}

fn linfa_error(e: impl std::fmt::Display) -> String {
    format!("training failed: {e}")
}

impl Model {
    /// Fits `algorithm` on `df`. `label` is required except for k-means; `features` empty means
    /// every numeric column but the label.
    pub fn fit(
        df: &DataFrame,
        algorithm: Algorithm,
        label: Option<&str>,
        features: &[String],
        settings: &BTreeMap<String, f64>,
    ) -> Result<Model, String> {
        let settings = algorithm.settings(settings)?;
        let label = match (algorithm.task(), label.filter(|l| !l.is_empty())) {
            (Task::Clustering, _) => None,
            (_, Some(label)) => Some(label.to_owned()),
            (_, None) => return Err(format!("{} needs a label column", algorithm.as_str())),
        };
        let (features, _) = features::feature_columns(df, features, label.as_deref())?;
        if df.height() < 2 {
            return Err(format!(
                "the table has {} row(s); training needs at least two",
                df.height()
            ));
        }
        let x = features::matrix(df, &features)?;
        let get = |k: &str| settings.get(k).copied().unwrap_or_default();
        let body = match algorithm {
            Algorithm::LinearRegression
            | Algorithm::RidgeRegression
            | Algorithm::LassoRegression => {
                let label = label.as_deref().unwrap_or_default();
                let y = Array1::from(features::numbers(df, label)?);
                let data = Dataset::new(x, y);
                let (coefficients, intercept) = match algorithm {
                    Algorithm::LinearRegression => {
                        let fitted = linfa_linear::LinearRegression::new()
                            .fit(&data)
                            .map_err(linfa_error)?;
                        (fitted.params().to_vec(), fitted.intercept())
                    }
                    _ => {
                        let params = if algorithm == Algorithm::RidgeRegression {
                            linfa_elasticnet::ElasticNet::ridge()
                        } else {
                            linfa_elasticnet::ElasticNet::lasso()
                        };
                        // linfa's elastic net centres the target but not the features, so
                        // its intercept is only right for centred features: centre them here
                        // and move the intercept back.
                        let means = data.records().mean_axis(Axis(0)).unwrap_or_default();
                        let centred =
                            Dataset::new(data.records() - &means, data.targets().to_owned());
                        let fitted = params
                            .penalty(get("alpha"))
                            .fit(&centred)
                            .map_err(linfa_error)?;
                        let w = fitted.hyperplane();
                        (w.to_vec(), fitted.intercept() - w.dot(&means))
                    }
                };
                Body::Linear {
                    coefficients,
                    intercept,
                }
            }
            Algorithm::LogisticRegression => {
                let (classes, y) = features::classes(df, label.as_deref().unwrap_or_default())?;
                let fitted = linfa_logistic::MultiLogisticRegression::default()
                    .alpha(get("alpha"))
                    .max_iterations(get("max_iterations") as u64)
                    .fit(&Dataset::new(x, y))
                    .map_err(linfa_error)?;
                let params = fitted.params();
                // Columns of `params` follow `fitted.classes()`; rows of ours follow `classes`.
                let mut weights = vec![vec![0.0; features.len()]; classes.len()];
                let mut intercepts = vec![0.0; classes.len()];
                for (column, class) in fitted.classes().iter().enumerate() {
                    weights[*class] = params.column(column).to_vec();
                    intercepts[*class] = fitted.intercept()[column];
                }
                Body::Softmax {
                    classes,
                    weights,
                    intercepts,
                }
            }
            Algorithm::DecisionTree => {
                let (classes, y) = features::classes(df, label.as_deref().unwrap_or_default())?;
                let tree = linfa_trees::DecisionTree::params()
                    .max_depth(Some(get("max_depth") as usize))
                    .min_weight_split(get("min_samples_split") as f32)
                    .fit(&Dataset::new(x, y))
                    .map_err(linfa_error)?;
                let mut nodes = Vec::new();
                flatten(tree.root_node(), &mut nodes);
                Body::Tree { classes, nodes }
            }
            Algorithm::Kmeans => {
                let k = get("k") as usize;
                if k > df.height() {
                    return Err(format!("k = {k} is more than the {} rows", df.height()));
                }
                let rng = Xoshiro256Plus::seed_from_u64(get("seed") as u64);
                let fitted = linfa_clustering::KMeans::params_with_rng(k, rng)
                    .max_n_iterations(get("max_iterations") as u64)
                    .fit(&DatasetBase::from(x))
                    .map_err(linfa_error)?;
                Body::Centroids {
                    centroids: fitted
                        .centroids()
                        .rows()
                        .into_iter()
                        .map(|r| r.to_vec())
                        .collect(),
                }
            }
        };
        Ok(Model {
            algorithm,
            features,
            label,
            settings,
            body,
            preprocessing: None,
        })
    }

    /// How each feature is read from the columns a caller gives: through the model's
    /// preprocessing, or as the column of the feature's name.
    pub fn plans(&self) -> std::borrow::Cow<'_, [FeaturePlan]> {
        match &self.preprocessing {
            Some(p) => std::borrow::Cow::Borrowed(p.features.as_slice()),
            None => self.identity_plans(),
        }
    }

    /// Each feature read as it is from the column of its name.
    fn identity_plans(&self) -> std::borrow::Cow<'_, [FeaturePlan]> {
        self.features
            .iter()
            .map(|f| FeaturePlan::identity(f))
            .collect()
    }

    /// How each feature is read from a table with columns `has`: through the preprocessing
    /// ([`Model::plans`]), except that rows already prepared as the training table was — they
    /// hold a feature that is no raw input, such as a one-hot flag — are read as they are.
    pub fn plans_for(&self, has: impl Fn(&str) -> bool) -> std::borrow::Cow<'_, [FeaturePlan]> {
        let prepared = self.preprocessing.as_ref().is_some_and(|p| {
            self.features
                .iter()
                .any(|f| has(f) && !p.inputs.iter().any(|i| &i.name == f))
        });
        if prepared {
            self.identity_plans()
        } else {
            self.plans()
        }
    }

    /// The columns the model takes from a caller, with their MLflow types (its signature).
    pub fn inputs(&self) -> Vec<Input> {
        match &self.preprocessing {
            Some(p) => p.inputs.clone(),
            None => self
                .features
                .iter()
                .map(|f| Input {
                    name: f.clone(),
                    kind: "double".into(),
                })
                .collect(),
        }
    }

    /// Predicts every row of `df`, raw rows holding the model's inputs: its preprocessing,
    /// if it has one, runs first.
    ///
    /// # Errors
    /// A missing input column; the first row that gives no value, named with its column.
    pub fn predict(&self, df: &DataFrame) -> Result<Predictions, String> {
        let (x, failed) = preprocessing::matrix(df, &self.plans())?;
        if let Some((row, why)) = failed.first_key_value() {
            return Err(format!("row {row}: {why}"));
        }
        self.predict_matrix(&x)
    }

    /// Predicts every row of `df`, a table already prepared as the model's training table
    /// was: it holds the feature columns themselves.
    pub fn predict_prepared(&self, df: &DataFrame) -> Result<Predictions, String> {
        self.predict_matrix(&features::matrix(df, &self.features)?)
    }

    /// Each row's probability of every class (the classes in the model's order), for a
    /// logistic regression: the softmax of its scores. `None` for a model that gives no
    /// probabilities (a decision tree keeps only its leaves' classes; a regression or k-means
    /// has no classes).
    pub fn probabilities(&self, x: &ndarray::Array2<f64>) -> Option<(Vec<String>, Vec<Vec<f64>>)> {
        let Body::Softmax {
            classes,
            weights,
            intercepts,
        } = &self.body
        else {
            return None;
        };
        let rows = x
            .rows()
            .into_iter()
            .map(|row| softmax(weights, intercepts, row))
            .collect();
        Some((classes.clone(), rows))
    }

    /// Predicts every row of `x`, its columns the model's features in order.
    ///
    /// # Errors
    /// A matrix with another number of columns than the model has features.
    pub fn predict_matrix(&self, x: &ndarray::Array2<f64>) -> Result<Predictions, String> {
        if x.ncols() != self.features.len() {
            return Err(format!(
                "{} columns given where the model has {} features",
                x.ncols(),
                self.features.len()
            ));
        }
        Ok(match &self.body {
            Body::Linear {
                coefficients,
                intercept,
            } => {
                let w = ArrayView1::from(coefficients.as_slice());
                Predictions::Values(
                    x.rows()
                        .into_iter()
                        .map(|r| r.dot(&w) + intercept)
                        .collect(),
                )
            }
            Body::Softmax {
                classes,
                weights,
                intercepts,
            } => {
                let mut predicted = Vec::with_capacity(x.nrows());
                let mut positive = Vec::with_capacity(x.nrows());
                for row in x.rows() {
                    let p = softmax(weights, intercepts, row);
                    predicted.push(classes[argmax(&p)].clone());
                    if classes.len() == 2 {
                        positive.push(p[1]);
                    }
                }
                Predictions::Classes {
                    predicted,
                    positive: (classes.len() == 2).then_some(positive),
                }
            }
            Body::Tree { classes, nodes } => Predictions::Classes {
                predicted: x
                    .rows()
                    .into_iter()
                    .map(|row| classes[walk(nodes, row)].clone())
                    .collect(),
                positive: None,
            },
            Body::Centroids { centroids } => Predictions::Clusters(
                x.rows()
                    .into_iter()
                    .map(|row| {
                        let distances: Vec<f64> = centroids
                            .iter()
                            .map(|c| {
                                -c.iter()
                                    .zip(row)
                                    .map(|(a, b)| (a - b) * (a - b))
                                    .sum::<f64>()
                            })
                            .collect();
                        argmax(&distances) as u32
                    })
                    .collect(),
            ),
        })
    }

    /// The model's predictions for raw rows (see [`Model::predict`]) as columns added to the
    /// table: `prediction`, and for two classes `probability` (of the second class); k-means
    /// gives `cluster`.
    pub fn score(&self, df: &DataFrame) -> Result<DataFrame, String> {
        Self::scored(df, self.predict(df)?)
    }

    /// As [`Model::score`], for a table prepared as the training table was.
    pub fn score_prepared(&self, df: &DataFrame) -> Result<DataFrame, String> {
        Self::scored(df, self.predict_prepared(df)?)
    }

    fn scored(df: &DataFrame, predictions: Predictions) -> Result<DataFrame, String> {
        let mut out = df.clone();
        let mut add = |s: Series| {
            out.with_column(s.into_column())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        match predictions {
            Predictions::Values(values) => add(Series::new("prediction".into(), values))?,
            Predictions::Classes {
                predicted,
                positive,
            } => {
                add(features::class_column("prediction", &predicted))?;
                if let Some(p) = positive {
                    add(Series::new("probability".into(), p))?;
                }
            }
            Predictions::Clusters(clusters) => add(Series::new("cluster".into(), clusters))?,
        }
        Ok(out)
    }

    /// Writes `model.json` and an `MLmodel` file into `dir`.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("model.json"), json)?;
        std::fs::write(dir.join("MLmodel"), self.mlmodel())
    }

    pub fn load(dir: &Path) -> Result<Model, String> {
        let file = dir.join("model.json");
        let bytes = std::fs::read(&file).map_err(|e| {
            format!(
                "{}: {e} (is this a model trained by Lathe's built-ins?)",
                file.display()
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", file.display()))
    }

    fn mlmodel(&self) -> String {
        let inputs: Vec<serde_json::Value> = self
            .inputs()
            .iter()
            .map(|i| serde_json::json!({ "type": i.kind, "name": i.name }))
            .collect();
        let output = match &self.body {
            Body::Linear { .. } => "double",
            Body::Centroids { .. } => "long",
            Body::Softmax { classes, .. } | Body::Tree { classes, .. } => {
                match features::class_column("", classes).dtype() {
                    DataType::Int64 => "long",
                    DataType::Boolean => "boolean",
                    _ => "string",
                }
            }
        };
        let outputs = serde_json::json!([{ "type": output, "name": "prediction" }]);
        format!(
            "artifact_path: model\nflavors:\n  lathe:\n    model_file: model.json\n    algorithm: {}\n    lathe_version: {}\nsignature:\n  inputs: '{}'\n  outputs: '{}'\n",
            self.algorithm.as_str(),
            env!("CARGO_PKG_VERSION"),
            serde_json::Value::Array(inputs),
            outputs
        )
    }
}

/// Each class's probability for `row`: the softmax of its scores (weights · row + intercept),
/// shifted by the largest score so no exponent overflows.
fn softmax(weights: &[Vec<f64>], intercepts: &[f64], row: ArrayView1<'_, f64>) -> Vec<f64> {
    let scores: Vec<f64> = weights
        .iter()
        .zip(intercepts)
        .map(|(w, b)| row.dot(&ArrayView1::from(w.as_slice())) + b)
        .collect();
    let top = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
}

fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

fn flatten(node: &linfa_trees::TreeNode<f64, usize>, nodes: &mut Vec<Node>) -> usize {
    let at = nodes.len();
    nodes.push(Node::Leaf { class: 0 });
    nodes[at] = match (node.prediction(), node.children().as_slice()) {
        (None, [Some(left), Some(right)]) => {
            let (feature, threshold, _) = node.split();
            let left = flatten(left, nodes);
            let right = flatten(right, nodes);
            Node::Split {
                feature,
                threshold,
                left,
                right,
            }
        }
        (prediction, _) => Node::Leaf {
            class: prediction.unwrap_or_default(),
        },
    };
    at
}

fn walk(nodes: &[Node], row: ArrayView1<f64>) -> usize {
    let mut at = 0;
    loop {
        match nodes.get(at) {
            Some(Node::Split {
                feature,
                threshold,
                left,
                right,
            }) => {
                at = if row[*feature] < *threshold {
                    *left
                } else {
                    *right
                }
            }
            Some(Node::Leaf { class }) => return *class,
            None => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> DataFrame {
        let x: Vec<f64> = (0..40).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 * v + 2.0).collect();
        let class: Vec<&str> = x
            .iter()
            .map(|v| if *v < 20.0 { "low" } else { "high" })
            .collect();
        df!("x" => x, "y" => y, "class" => class).unwrap()
    }

    #[test]
    fn every_algorithm_fits_and_predicts_what_it_learned() {
        let df = line();
        for algorithm in Algorithm::ALL {
            let label = match algorithm.task() {
                Task::Regression => Some("y"),
                Task::Classification => Some("class"),
                Task::Clustering => None,
            };
            let mut settings = BTreeMap::new();
            if matches!(
                algorithm,
                Algorithm::RidgeRegression | Algorithm::LassoRegression
            ) {
                settings.insert("alpha".into(), 0.001);
            }
            if algorithm == Algorithm::Kmeans {
                settings.insert("k".into(), 2.0);
            }
            let features = if algorithm.task() == Task::Regression {
                vec!["x".to_owned()]
            } else {
                Vec::new()
            };
            let features = if algorithm == Algorithm::Kmeans {
                vec!["x".to_owned()]
            } else {
                features
            };
            let model = Model::fit(&df, algorithm, label, &features, &settings)
                .unwrap_or_else(|e| panic!("{}: {e}", algorithm.as_str()));
            let json = serde_json::to_string(&model).unwrap();
            let model: Model = serde_json::from_str(&json).unwrap();
            match model.predict(&df).unwrap() {
                Predictions::Values(v) => {
                    assert!((v[10] - 32.0).abs() < 0.5, "{}: {v:?}", algorithm.as_str());
                }
                Predictions::Classes { predicted, .. } => {
                    assert_eq!(
                        (predicted[0].as_str(), predicted[39].as_str()),
                        ("low", "high")
                    );
                }
                Predictions::Clusters(c) => assert_ne!(c[0], c[39]),
            }
        }
    }

    #[test]
    fn bad_settings_and_labels_are_named() {
        let df = line();
        let mut settings = BTreeMap::new();
        settings.insert("depth".into(), 3.0);
        let e =
            Model::fit(&df, Algorithm::DecisionTree, Some("class"), &[], &settings).unwrap_err();
        assert!(
            e.contains("no hyperparameter 'depth'; it takes max_depth"),
            "{e}"
        );
        let e = Model::fit(
            &df,
            Algorithm::LinearRegression,
            None,
            &[],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(e.contains("needs a label"), "{e}");
        let e = Model::fit(
            &df,
            Algorithm::LinearRegression,
            Some("class"),
            &[],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(e.contains("column 'class'"), "{e}");
    }
}
