//! Agreement between annotators on the items more than one of them labeled: Cohen's kappa for
//! two annotators' class labels, Fleiss' kappa for more, and the mean IoU of matched boxes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Shape;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// "cohen_kappa", "fleiss_kappa" or "mean_iou".
    pub measure: String,
    pub value: f64,
    /// Items it was measured on (labeled by two or more annotators).
    pub items: usize,
}

/// Each item's latest shapes by annotator.
pub type Ratings = BTreeMap<i64, BTreeMap<String, Vec<Shape>>>;

pub fn measure(ratings: &Ratings) -> Option<Agreement> {
    let shared: Vec<&BTreeMap<String, Vec<Shape>>> =
        ratings.values().filter(|r| r.len() >= 2).collect();
    if shared.is_empty() {
        return None;
    }
    let boxes = shared
        .iter()
        .flat_map(|r| r.values().flatten())
        .any(|s| matches!(s, Shape::Box { .. }));
    if boxes {
        let ious: Vec<f64> = shared.iter().map(|r| item_iou(r)).collect();
        return Some(Agreement {
            measure: "mean_iou".into(),
            value: ious.iter().sum::<f64>() / ious.len() as f64,
            items: ious.len(),
        });
    }
    // One class per rating (the first), as text.
    let class = |shapes: &Vec<Shape>| {
        shapes
            .first()
            .map_or(String::new(), |s| s.label().to_owned())
    };
    let annotators: BTreeSet<&String> = shared.iter().flat_map(|r| r.keys()).collect();
    if annotators.len() == 2 {
        let (a, b) = {
            let mut it = annotators.iter();
            (*it.next()?, *it.next()?)
        };
        let pairs: Vec<(String, String)> = shared
            .iter()
            .filter_map(|r| Some((class(r.get(a)?), class(r.get(b)?))))
            .collect();
        return Some(Agreement {
            measure: "cohen_kappa".into(),
            value: cohen(&pairs),
            items: pairs.len(),
        });
    }
    let items: Vec<Vec<String>> = shared
        .iter()
        .map(|r| r.values().map(class).collect())
        .collect();
    Some(Agreement {
        measure: "fleiss_kappa".into(),
        value: fleiss(&items),
        items: items.len(),
    })
}

/// Cohen's kappa of two raters' labels.
pub fn cohen(pairs: &[(String, String)]) -> f64 {
    let n = pairs.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    let observed = pairs.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let mut left: BTreeMap<&str, f64> = BTreeMap::new();
    let mut right: BTreeMap<&str, f64> = BTreeMap::new();
    for (a, b) in pairs {
        *left.entry(a).or_default() += 1.0;
        *right.entry(b).or_default() += 1.0;
    }
    let expected: f64 = left
        .iter()
        .map(|(k, v)| v * right.get(k).copied().unwrap_or(0.0))
        .sum::<f64>()
        / (n * n);
    if expected == 1.0 {
        1.0
    } else {
        (observed - expected) / (1.0 - expected)
    }
}

/// Fleiss' kappa, each item rated by the raters present on it (at least two).
pub fn fleiss(items: &[Vec<String>]) -> f64 {
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    let mut all = 0.0;
    let mut agreement = 0.0;
    for ratings in items {
        let n = ratings.len() as f64;
        let mut counts: BTreeMap<&str, f64> = BTreeMap::new();
        for r in ratings {
            *counts.entry(r).or_default() += 1.0;
            *totals.entry(r).or_default() += 1.0;
            all += 1.0;
        }
        agreement += counts.values().map(|c| c * (c - 1.0)).sum::<f64>() / (n * (n - 1.0));
    }
    let observed = agreement / items.len().max(1) as f64;
    let expected: f64 = totals.values().map(|t| (t / all).powi(2)).sum();
    if expected == 1.0 {
        1.0
    } else {
        (observed - expected) / (1.0 - expected)
    }
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let (x0, y0) = (a[0].max(b[0]), a[1].max(b[1]));
    let (x1, y1) = (
        (a[0] + a[2]).min(b[0] + b[2]),
        (a[1] + a[3]).min(b[1] + b[3]),
    );
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// The mean, over pairs of annotators, of their boxes' IoU: boxes matched greedily by IoU
/// within a label, an unmatched box counting 0.
fn item_iou(ratings: &BTreeMap<String, Vec<Shape>>) -> f64 {
    let boxes = |shapes: &Vec<Shape>| -> Vec<(String, [f64; 4])> {
        shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Box {
                    label, x, y, w, h, ..
                } => Some((label.clone(), [*x, *y, *w, *h])),
                _ => None,
            })
            .collect()
    };
    let sets: Vec<Vec<(String, [f64; 4])>> = ratings.values().map(boxes).collect();
    let mut scores = Vec::new();
    for i in 0..sets.len() {
        for j in i + 1..sets.len() {
            let (a, b) = (&sets[i], &sets[j]);
            let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
            for (ia, (la, ba)) in a.iter().enumerate() {
                for (ib, (lb, bb)) in b.iter().enumerate() {
                    if la == lb {
                        candidates.push((iou(*ba, *bb), ia, ib));
                    }
                }
            }
            candidates.sort_by(|x, y| y.0.total_cmp(&x.0));
            let (mut used_a, mut used_b, mut sum) = (BTreeSet::new(), BTreeSet::new(), 0.0);
            for (score, ia, ib) in candidates {
                if used_a.insert(ia) && used_b.insert(ib) {
                    sum += score;
                } else {
                    used_a.remove(&ia);
                }
            }
            let count = a.len().max(b.len());
            scores.push(if count == 0 { 1.0 } else { sum / count as f64 });
        }
    }
    scores.iter().sum::<f64>() / scores.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn kappas_match_worked_examples() {
        // Two raters, 4 items: agree on 3; marginals a: {x:2, y:2}, b: {x:3, y:1}.
        let k = cohen(&text(&[("x", "x"), ("x", "x"), ("y", "y"), ("y", "x")]));
        // p_o = 0.75, p_e = (2·3 + 2·1) / 16 = 0.5 → 0.5.
        assert!((k - 0.5).abs() < 1e-12, "{k}");
        let all_same = vec![vec!["a".to_owned(); 3]; 4];
        assert_eq!(fleiss(&all_same), 1.0);
        let split = vec![vec!["a".to_owned(), "b".to_owned()]; 4];
        assert!(fleiss(&split) < 0.0);
    }

    #[test]
    fn boxes_agree_by_iou() {
        let b = |x: f64| Shape::Box {
            label: "cat".into(),
            x,
            y: 0.0,
            w: 10.0,
            h: 10.0,
            confidence: None,
            attributes: Default::default(),
        };
        let mut ratings = Ratings::new();
        ratings.insert(
            0,
            [
                ("ana".to_owned(), vec![b(0.0)]),
                ("ben".to_owned(), vec![b(5.0)]),
            ]
            .into(),
        );
        let a = measure(&ratings).unwrap();
        assert_eq!(a.measure, "mean_iou");
        // Overlap 5 × 10 = 50 over a union of 150.
        assert!((a.value - 1.0 / 3.0).abs() < 1e-12, "{a:?}");
    }
}
