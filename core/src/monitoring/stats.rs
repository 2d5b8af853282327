//! The drift statistics on one feature: distances between two distributions and the tests'
//! statistics and p-values, as pure functions over sorted values or counts.
//!
//! Each follows the formula Azure ML's monitoring components compute (azureml-assets,
//! `assets/model_monitoring/components/src/data_drift_compute_metrics/`), which calls scipy;
//! where scipy is called, the arithmetic is scipy 1.17's, so the values agree with it to the
//! last few bits (`tests/monitoring.rs` checks them against scipy and Evidently).

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Equal-width bins for a numerical feature, as Azure ML bins it
/// (`shared_utilities/histogram_utils.py`): `ceil(log2(n) + 1)` bins (Sturges' rule on `n`,
/// the row count of the smaller of the two samples) spanning the smallest to the largest value
/// of both samples. Bins are right-open, the last one closed; the last edge is the largest
/// value itself (Azure adds the width `k` times, which can fall a rounding short of it). When
/// every value is the same there is one bin, `v ± 0.005` (`± |v|·0.005` when `v ≠ 0`).
///
/// Returns the `k + 1` edges; `None` when either sample is empty. Inputs are sorted ascending,
/// finite.
pub fn bin_edges(sorted_ref: &[f64], sorted_cur: &[f64]) -> Option<Vec<f64>> {
    let (lo, hi) = (
        sorted_ref.first()?.min(*sorted_cur.first()?),
        sorted_ref.last()?.max(*sorted_cur.last()?),
    );
    if lo == hi {
        let delta = if lo == 0.0 { 0.005 } else { (lo * 0.005).abs() };
        return Some(vec![lo - delta, lo + delta]);
    }
    let smaller = sorted_ref.len().min(sorted_cur.len()) as f64;
    let bins = ((smaller.log2() + 1.0).ceil() as usize).max(1);
    let width = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..bins).map(|i| lo + i as f64 * width).collect();
    edges.push(hi);
    Some(edges)
}

/// How many of `sorted` values fall in each bin of `edges` (right-open, the last closed):
/// `edges.len() - 1` counts. Values outside the edges are not counted.
pub fn bin_counts(sorted: &[f64], edges: &[f64]) -> Vec<u64> {
    let Some((&last, inner)) = edges.split_last() else {
        return Vec::new();
    };
    let below = |edge: f64| sorted.partition_point(|&v| v < edge);
    let mut counts = Vec::with_capacity(inner.len());
    for (i, &start) in inner.iter().enumerate() {
        let end = match inner.get(i + 1) {
            Some(&next) => below(next),
            None => sorted.partition_point(|&v| v <= last),
        };
        counts.push((end - below(start)) as u64);
    }
    counts
}

/// Jensen-Shannon distance in base 2 (so in `[0, 1]`) between the distributions given as
/// counts or weights (each normalized to sum to 1): `sqrt((KL(p‖m) + KL(q‖m)) / (2 ln 2))`
/// with `m = (p + q)/2`, a zero share contributing nothing — scipy's
/// `spatial.distance.jensenshannon(p, q, base=2)`, which Azure ML calls.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    jensen_shannon_base(p, q, 2.0)
}

/// [`jensen_shannon`] with the logarithm's base given (`std::f64::consts::E` is Evidently's).
pub fn jensen_shannon_base(p: &[f64], q: &[f64], base: f64) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    // scipy.special.rel_entr(x, y) = x ln(x/y), 0 when x is 0.
    let rel_entr = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let (mut left, mut right) = (0.0, 0.0);
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        left += rel_entr(a, m);
        right += rel_entr(b, m);
    }
    ((left + right) / base.ln() / 2.0).sqrt()
}

/// Population stability index with Laplace smoothing, as Azure ML computes it: each count
/// gets 1 added (so an empty bin or an unseen category stays finite), shares are
/// `(count + 1) / (n + k)`, and `PSI = Σ (q_i − p_i) ln(q_i / p_i)` in the natural log, `p`
/// the reference's shares and `q` the current's.
pub fn population_stability_index(reference: &[u64], current: &[u64]) -> f64 {
    let k = reference.len() as f64;
    let (nr, nc) = (
        reference.iter().sum::<u64>() as f64,
        current.iter().sum::<u64>() as f64,
    );
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let p = (r as f64 + 1.0) / (nr + k);
            let q = (c as f64 + 1.0) / (nc + k);
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Chebyshev distance between the two distributions' shares: `max_i |p_i − q_i|`, in
/// `[0, 1]` — the largest change in any one class's share (Azure ML lists it for prediction
/// drift).
pub fn chebyshev(reference: &[u64], current: &[u64]) -> f64 {
    let (nr, nc) = (
        reference.iter().sum::<u64>().max(1) as f64,
        current.iter().sum::<u64>().max(1) as f64,
    );
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| (r as f64 / nr - c as f64 / nc).abs())
        .fold(0.0, f64::max)
}

/// Pearson's chi-squared goodness-of-fit test of the current counts against the reference's
/// shares, as Azure ML and Evidently run it: `scipy.stats.chisquare(f_obs = current,
/// f_exp = reference share × n_current)` over the union of categories, `k − 1` degrees of
/// freedom. Returns `(statistic, p-value)`. A category the reference never saw expects 0, so
/// the statistic is infinite and p is 0 (the current data holds something the reference
/// cannot produce). With one category there is nothing to test: `(0, 1)` (scipy gives NaN).
pub fn chi_squared(reference: &[u64], current: &[u64]) -> (f64, f64) {
    let nr = reference.iter().sum::<u64>() as f64;
    let nc = current.iter().sum::<u64>() as f64;
    let mut statistic = 0.0;
    for (&r, &c) in reference.iter().zip(current) {
        let expected = r as f64 / nr * nc;
        let observed = c as f64;
        statistic += if expected == 0.0 {
            if observed == 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            (observed - expected) * (observed - expected) / expected
        };
    }
    if reference.len() < 2 {
        return (statistic, 1.0);
    }
    if statistic.is_infinite() {
        return (statistic, 0.0);
    }
    let p = ChiSquared::new((reference.len() - 1) as f64)
        .map(|d| d.sf(statistic))
        .unwrap_or(f64::NAN);
    (statistic, p)
}

/// The first Wasserstein distance between two samples (sorted ascending, finite, non-empty):
/// the area between their empirical CDFs, `∫ |U(x) − V(x)| dx` — scipy's
/// `stats.wasserstein_distance(u, v)`, in the features' own units.
pub fn wasserstein(u: &[f64], v: &[f64]) -> f64 {
    ecdf_distances(u, v).1
}

/// The two distances between the empirical CDFs of two samples (sorted ascending, finite,
/// non-empty) in one merge, without allocating: `(max |U − V|, ∫ |U − V| dx)` — the
/// Kolmogorov-Smirnov statistic (scipy's `ks_2samp`, the CDFs evaluated at every pooled
/// value, ties included) and the first Wasserstein distance. NaN for an empty sample.
pub fn ecdf_distances(u: &[f64], v: &[f64]) -> (f64, f64) {
    let (nu, nv) = (u.len() as f64, v.len() as f64);
    // Past its end a sample reads as +inf. Each step takes the smaller head or both when
    // equal, without a branch on which (the two samples interleave at random, so such a
    // branch mispredicts half the time); a gap counts once a run of equal values is past.
    let at = |s: &[f64], k: usize| s.get(k).copied().unwrap_or(f64::INFINITY);
    if u.is_empty() || v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let (mut i, mut j) = (0, 0);
    let (mut d, mut area) = (0.0f64, 0.0);
    let mut x = at(u, 0).min(at(v, 0));
    loop {
        i += usize::from(at(u, i) <= x);
        j += usize::from(at(v, j) <= x);
        let gap = (i as f64 / nu - j as f64 / nv).abs();
        let next = at(u, i).min(at(v, j));
        if next == f64::INFINITY {
            return (d.max(gap), area);
        }
        d = d.max(if next > x { gap } else { 0.0 });
        area += gap * (next - x);
        x = next;
    }
}

/// The sample standard deviation (`n − 1` in the denominator, as Spark's `stddev` that Azure
/// ML divides the Wasserstein distance by); NaN for fewer than two values. Two passes, for
/// accuracy on large means.
pub fn sample_std(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 2 {
        return f64::NAN;
    }
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// The Wasserstein distance `w` normalized by the reference's spread, as Azure ML computes
/// it: `W1(ref, cur) / max(stddev(ref), 0.001)` with the sample standard deviation (Evidently
/// divides by the population one, `n` in the denominator — a relative difference of about
/// `1/(2n)`). A constant reference divides by 0.001.
pub fn normalized_wasserstein(w: f64, reference: &[f64]) -> f64 {
    let std = sample_std(reference);
    let norm = if std.is_nan() { 0.001 } else { std.max(0.001) };
    w / norm
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values: scipy 1.17.1 on bike-share train (609 rows) vs test (122 rows), from
    // the research (compare_metrics.json).
    const REF_BINS: [u64; 8] = [10, 53, 105, 93, 80, 102, 120, 46];
    const CUR_BINS: [u64; 8] = [0, 10, 36, 23, 23, 23, 7, 0];

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    fn floats(counts: &[u64]) -> Vec<f64> {
        counts.iter().map(|&c| c as f64).collect()
    }

    #[test]
    fn jensen_shannon_and_psi_match_scipy_on_the_same_bins() {
        let js = jensen_shannon(&floats(&REF_BINS), &floats(&CUR_BINS));
        assert!(close(js, 0.304190750936889, 1e-12), "{js}");
        let js_e = jensen_shannon_base(&floats(&REF_BINS), &floats(&CUR_BINS), std::f64::consts::E);
        assert!(close(js_e, 0.2532554123640297, 1e-12), "{js_e}");
        let psi = population_stability_index(&REF_BINS, &CUR_BINS);
        assert!(close(psi, 0.4047192636769946, 1e-12), "{psi}");
    }

    #[test]
    fn categorical_values_match_scipy() {
        // weathersit: ref 393/198/18, cur 70/49/3.
        let (r, c) = ([393, 198, 18], [70, 49, 3]);
        let (stat, p) = chi_squared(&r, &c);
        assert!(close(stat, 3.2665877900516875, 1e-12), "{stat}");
        assert!(close(p, 0.1952852644041221, 1e-10), "{p}");
        assert!(close(chebyshev(&r, &c), 0.07651619155293549, 1e-12));
        assert!(close(
            population_stability_index(&r, &c),
            0.025023289835750254,
            1e-12
        ));
        // season: far in the tail.
        let (stat, p) = chi_squared(&[170, 184, 166, 89], &[11, 0, 22, 89]);
        assert!(close(stat, 340.3778955745838, 1e-12), "{stat}");
        assert!(close(p, 1.8074661551121367e-73, 1e-9), "{p}");
        // A category the reference never saw.
        assert_eq!(
            chi_squared(&[50, 50, 0], &[40, 40, 20]),
            (f64::INFINITY, 0.0)
        );
        assert_eq!(chi_squared(&[5], &[7]), (0.0, 1.0));
    }

    #[test]
    fn edges_follow_azure_and_cover_both_samples() {
        let r = [1.0, 2.0, 3.0, 4.0];
        let c = [0.5, 9.0];
        let e = bin_edges(&r, &c).unwrap();
        // ceil(log2(2) + 1) = 2 bins over [0.5, 9].
        assert_eq!(e, vec![0.5, 4.75, 9.0]);
        assert_eq!(bin_counts(&r, &e), vec![4, 0]);
        assert_eq!(bin_counts(&c, &e), vec![1, 1]);
        assert_eq!(bin_edges(&[3.0, 3.0], &[3.0]).unwrap(), vec![2.985, 3.015]);
        assert_eq!(bin_edges(&[], &[1.0]), None);
    }

    #[test]
    fn wasserstein_is_the_area_between_the_cdfs() {
        assert_eq!(wasserstein(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]), 5.0);
        // scipy: wasserstein_distance([0, 1, 1, 2], [0, 2, 2]) = 0.5
        assert_eq!(wasserstein(&[0.0, 1.0, 1.0, 2.0], &[0.0, 2.0, 2.0]), 0.5);
        assert!(close(
            sample_std(&[1.0, 2.0, 3.0, 4.0]),
            1.2909944487358056,
            1e-15
        ));
        assert_eq!(normalized_wasserstein(1.0, &[2.0, 2.0]), 1000.0);
        assert_eq!(ecdf_distances(&[1.0, 2.0], &[2.0, 3.0]), (0.5, 1.0));
        assert!(ecdf_distances(&[], &[1.0]).0.is_nan());
    }

    /// The merge's KS statistic is the scipy port's, bit for bit, with ties within and
    /// across the samples; its area is the integral of the CDFs' gap on a fine grid.
    #[test]
    fn ecdf_distances_match_the_ks_statistic_with_ties() {
        let mut state = 11u64;
        let mut draw = |levels: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) % levels) as f64 / 4.0
        };
        for (n, m, levels) in [(1, 1, 3), (5, 3, 4), (200, 150, 20), (1000, 999, 5000)] {
            let mut u: Vec<f64> = (0..n).map(|_| draw(levels)).collect();
            let mut v: Vec<f64> = (0..m).map(|_| draw(levels) + 0.5).collect();
            u.sort_unstable_by(f64::total_cmp);
            v.sort_unstable_by(f64::total_cmp);
            let (d, area) = ecdf_distances(&u, &v);
            assert_eq!(d, super::super::ks::statistic(&u, &v), "{n}×{m}");
            let cdf = |s: &[f64], x: f64| s.partition_point(|&a| a <= x) as f64 / s.len() as f64;
            let (lo, hi) = (u[0].min(v[0]), u[n - 1].max(v[m - 1]));
            // The CDFs are steps on the quarter grid: the midpoint rule is exact.
            let steps = ((hi - lo) * 4.0).round() as usize;
            let grid: f64 = (0..steps)
                .map(|k| lo + (k as f64 + 0.5) / 4.0)
                .map(|x| (cdf(&u, x) - cdf(&v, x)).abs() / 4.0)
                .sum();
            assert!(close(area, grid, 1e-12), "{n}×{m}: {area} vs {grid}");
        }
    }
}
