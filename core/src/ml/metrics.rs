//! Evaluation metrics: classification (accuracy, macro precision/recall/F1 — of the positive
//! class for two classes — ROC AUC from probabilities, the confusion matrix) and regression
//! (MAE, RMSE, R²).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Only when the model gave probabilities (two classes).
    pub roc_auc: Option<f64>,
    pub classes: Vec<String>,
    /// `confusion[actual][predicted]`, rows and columns in `classes` order.
    pub confusion: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub mae: f64,
    pub rmse: f64,
    pub r2: f64,
}

/// Scores predicted classes against actual ones. `positive` is the probability of the second
/// (sorted) class, when there are two.
pub fn classification(
    actual: &[String],
    predicted: &[String],
    positive: Option<&[f64]>,
) -> Classification {
    let mut classes: Vec<String> = actual.iter().chain(predicted).cloned().collect();
    classes.sort();
    classes.dedup();
    let index = |c: &String| classes.binary_search(c).unwrap_or_default();
    let mut confusion = vec![vec![0u64; classes.len()]; classes.len()];
    for (a, p) in actual.iter().zip(predicted) {
        confusion[index(a)][index(p)] += 1;
    }
    let total = actual.len().max(1) as f64;
    let correct: u64 = (0..classes.len()).map(|i| confusion[i][i]).sum();
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    let per_class = |i: usize| {
        let tp = confusion[i][i];
        let predicted_i: u64 = confusion.iter().map(|row| row[i]).sum();
        let actual_i: u64 = confusion[i].iter().sum();
        let precision = ratio(tp, predicted_i);
        let recall = ratio(tp, actual_i);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        (precision, recall, f1)
    };
    let (precision, recall, f1) = if classes.len() == 2 {
        per_class(1)
    } else {
        let all: Vec<(f64, f64, f64)> = (0..classes.len()).map(per_class).collect();
        let n = all.len().max(1) as f64;
        (
            all.iter().map(|c| c.0).sum::<f64>() / n,
            all.iter().map(|c| c.1).sum::<f64>() / n,
            all.iter().map(|c| c.2).sum::<f64>() / n,
        )
    };
    let roc_auc = positive
        .filter(|_| classes.len() == 2)
        .and_then(|p| roc_auc(&actual.iter().map(|a| index(a) == 1).collect::<Vec<_>>(), p));
    Classification {
        accuracy: correct as f64 / total,
        precision,
        recall,
        f1,
        roc_auc,
        classes,
        confusion,
    }
}

/// The area under the ROC curve: the chance a random positive scores above a random negative
/// (ties count half), from the ranks of the scores.
pub fn roc_auc(positive: &[bool], scores: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| positive[order[k]]).count() as f64 * mean_rank;
        i = j + 1;
    }
    let pos = positive.iter().filter(|p| **p).count() as f64;
    let neg = positive.len() as f64 - pos;
    (pos > 0.0 && neg > 0.0).then(|| (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

pub fn regression(actual: &[f64], predicted: &[f64]) -> Regression {
    let n = actual.len().max(1) as f64;
    let mean = actual.iter().sum::<f64>() / n;
    let mut abs = 0.0;
    let mut squared = 0.0;
    let mut total = 0.0;
    for (a, p) in actual.iter().zip(predicted) {
        abs += (a - p).abs();
        squared += (a - p) * (a - p);
        total += (a - mean) * (a - mean);
    }
    Regression {
        mae: abs / n,
        rmse: (squared / n).sqrt(),
        r2: if total == 0.0 {
            0.0
        } else {
            1.0 - squared / total
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn binary_classification_scores_the_positive_class() {
        let actual = texts(&["no", "no", "yes", "yes", "yes"]);
        let predicted = texts(&["no", "yes", "yes", "yes", "no"]);
        let m = classification(&actual, &predicted, Some(&[0.1, 0.6, 0.8, 0.7, 0.4]));
        assert_eq!(m.classes, ["no", "yes"]);
        assert_eq!(m.confusion, vec![vec![1, 1], vec![1, 2]]);
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        // Positives 0.8, 0.7, 0.4 against negatives 0.1, 0.6: 5 of 6 pairs ordered right.
        assert!((m.roc_auc.unwrap() - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn regression_metrics() {
        let m = regression(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        assert!((m.mae - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.rmse - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((m.r2 - 0.5).abs() < 1e-12);
    }
}
