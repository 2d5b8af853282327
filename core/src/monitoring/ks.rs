//! The two-sample Kolmogorov-Smirnov test's p-value: a port of scipy 1.17.1's
//! `scipy.stats.ks_2samp(a, b, alternative='two-sided', method='auto')`.
//!
//! What is ported, and from where (paths are inside scipy 1.17.1's sdist):
//!
//! * [`statistic`]: the `cddiffs` computation of `ks_2samp`
//!   (`scipy/stats/_stats_py.py`).
//! * [`p_value`] / [`ks_2samp`]: the `method='auto'` dispatch of `ks_2samp`:
//!   exact when `max(n1, n2) <= 10_000` (`MAX_AUTO_N`), otherwise asymptotic.
//! * Exact path, `_attempt_exact_2kssamp`:
//!   - `n1 == n2`: `_compute_prob_outside_square` (Hodges 1958, Horner form);
//!   - otherwise `_compute_outer_prob_inside_method`
//!     (`scipy/stats/_stats_pythran.py`), Hodges' inside method with
//!     Viehmann's recursion for `1 - p` (T. Viehmann, "Numerically more
//!     stable computation of the p-values for the two-sample
//!     Kolmogorov-Smirnov test", arXiv:2102.08037).
//! * Asymptotic path: `kstwo.sf(d, round(n1*n2/(n1+n2)))`, i.e.
//!   `_kolmogn(n, x, cdf=False)` in `scipy/stats/_ksstats.py`, which follows
//!   Simard & L'Ecuyer (2011), "Computing the Two-Sided Kolmogorov-Smirnov
//!   Distribution", J. Stat. Softw. 39(11):
//!   - Ruben–Gambino closed forms for `n*x <= 1` and `n*x >= n-1`;
//!   - Durbin's matrix algorithm as made practical by Marsaglia, Tsang & Wang
//!     (2003), "Evaluating Kolmogorov's Distribution", J. Stat. Softw. 8(18);
//!   - Pomeranz (1974), "Exact Cumulative Distribution of the
//!     Kolmogorov-Smirnov Statistic for Small Samples (Algorithm 487)", CACM;
//!   - Pelz & Good (1976), "Approximating the Lower Tail-areas of the
//!     Kolmogorov-Smirnov One-sample Statistic", JRSS B 38(2);
//!   - `2 * smirnov(n, x)`, the one-sided Smirnov/Birnbaum–Tingey sum, from
//!     xsf's `xsf/cephes/kolmogorov.h` (`_smirnov`, double-double arithmetic
//!     from `dd_real.h`, `expm1` from `unity.h`).
//!
//! Numerical fidelity: the exact path reproduces scipy's IEEE results bit for
//! bit (same operations in the same order; where the port reorganises the
//! computation for speed it emulates scipy's rounding exactly, see
//! `outer_prob_inside`), including scipy's underflow noise for p < ~1e-300.
//! The asymptotic path differs from scipy only by rounding (scipy uses BLAS
//! for matrix products, x87 `long double` after rescaling in two places,
//! numpy's reduction orders), and where the Smirnov sum has more than 32,768
//! terms by summing it on a lattice (`lattice_sum`, within 1e-14 of the
//! term-by-term sum); measured relative differences are <= 2e-14.

use std::f64::consts::{LN_2, PI};

/// `ks_2samp`'s `MAX_AUTO_N`: `method='auto'` is exact when both sample sizes
/// are at most this.
pub const MAX_AUTO_N: usize = 10_000;

/// The two-sided two-sample KS statistic `max |ECDF_a(v) - ECDF_b(v)|` over
/// every pooled value `v`, with ties handled as scipy does
/// (`searchsorted(side='right')` on both samples).
///
/// Both inputs must be sorted ascending. The differences are formed exactly as
/// scipy forms them (`count_a/n1 - count_b/n2` in `f64`), so the result is
/// bit-identical to the statistic scipy computes before its exact path
/// re-rounds it (see [`ks_2samp`]).
///
/// Returns NaN if either sample is empty or if any value is NaN (scipy's
/// default `nan_policy='propagate'`). O(n1 + n2), no allocation.
pub fn statistic(sorted_a: &[f64], sorted_b: &[f64]) -> f64 {
    let (n1, n2) = (sorted_a.len(), sorted_b.len());
    if n1 == 0 || n2 == 0 {
        return f64::NAN;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (mut i, mut j) = (0usize, 0usize);
    // max and min of cdf1 - cdf2; the last pooled value gives 0, so 0 is a
    // valid start for both.
    let (mut max_s, mut min_s) = (0.0f64, 0.0f64);
    loop {
        // Take the smallest unconsumed value; consuming it unconditionally
        // guarantees progress even for (precondition-violating) NaNs.
        let v = match (sorted_a.get(i), sorted_b.get(j)) {
            (Some(&x), Some(&y)) => {
                if x <= y {
                    i += 1;
                    x
                } else {
                    j += 1;
                    y
                }
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, Some(&y)) => {
                j += 1;
                y
            }
            (None, None) => break,
        };
        // A NaN is never swallowed by the `<= v` loops below, so every NaN
        // eventually shows up here.
        if v.is_nan() {
            return f64::NAN;
        }
        // searchsorted(side='right'): count everything equal to v as well.
        while sorted_a.get(i).is_some_and(|&x| x <= v) {
            i += 1;
        }
        while sorted_b.get(j).is_some_and(|&y| y <= v) {
            j += 1;
        }
        let diff = i as f64 / n1f - j as f64 / n2f;
        max_s = max_s.max(diff);
        min_s = min_s.min(diff);
    }
    // scipy: minS = clip(-min(cddiffs), 0, 1); d = minS if minS > maxS else maxS
    let min_s = (-min_s).clamp(0.0, 1.0);
    if min_s > max_s { min_s } else { max_s }
}

/// The p-value scipy's `ks_2samp(..., alternative='two-sided', method='auto')`
/// returns for sample sizes `n1`, `n2` and statistic `d` (as computed by
/// [`statistic`]).
///
/// * `max(n1, n2) <= 10_000`: the exact p-value (`_attempt_exact_2kssamp`),
///   which first snaps `d` to the lattice `h / lcm(n1, n2)` with
///   `h = round(d * lcm)`. If scipy's exact computation "fails" (a result
///   outside `[0, 1]`, which happens e.g. for `n1 == n2` and tiny `h`, where
///   rounding yields `1 + 2^-52`), scipy falls back to the asymptotic formula
///   evaluated at the snapped `d`; so does this port.
/// * otherwise: `kstwo.sf(d, round(n1*n2/(n1+n2)))` ([`kstwo_sf`]).
///
/// The result is clipped to `[0, 1]` as scipy does. Returns NaN if `n1` or
/// `n2` is 0, or `d` is NaN or outside `[0, 1]` (not a KS statistic).
pub fn p_value(n1: usize, n2: usize, d: f64) -> f64 {
    statistic_and_p_value(n1, n2, d).1
}

/// Like [`p_value`], but also returns the statistic as scipy reports it:
/// on the exact path that is the snapped `h / lcm(n1, n2)` (which can differ
/// from `d` in the last bits), otherwise `d` itself.
pub fn statistic_and_p_value(n1: usize, n2: usize, d: f64) -> (f64, f64) {
    if n1 == 0 || n2 == 0 || !(0.0..=1.0).contains(&d) {
        return (f64::NAN, f64::NAN);
    }
    let (d, p) = if n1.max(n2) <= MAX_AUTO_N {
        match attempt_exact(n1 as u64, n2 as u64, d) {
            (d, Some(p)) => (d, p),
            // scipy warns "Exact calculation unsuccessful" and uses the
            // asymptotic formula with the *snapped* d.
            (d, None) => (d, asymp(n1 as u64, n2 as u64, d)),
        }
    } else {
        (d, asymp(n1 as u64, n2 as u64, d))
    };
    // np.clip(prob, 0, 1); NaN stays NaN.
    (d, p.clamp(0.0, 1.0))
}

/// `(statistic, p-value)` exactly as scipy's
/// `ks_2samp(a, b, alternative='two-sided', method='auto')` returns them.
///
/// Inputs must be sorted ascending. Note that on the exact path scipy
/// returns the snapped statistic `h / lcm(n1, n2)`, which can differ from
/// [`statistic`] in the last bits; this function does the same.
///
/// Returns `(NaN, NaN)` if either sample is empty or contains NaN (scipy
/// raises for empty input and propagates NaN).
pub fn ks_2samp(sorted_a: &[f64], sorted_b: &[f64]) -> (f64, f64) {
    let d = statistic(sorted_a, sorted_b);
    if d.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    statistic_and_p_value(sorted_a.len(), sorted_b.len(), d)
}

// ---------------------------------------------------------------------------
// Exact path
// ---------------------------------------------------------------------------

/// scipy's `_attempt_exact_2kssamp(n1, n2, g, d, 'two-sided')`.
///
/// Returns `(snapped d, Some(p))`, or `(snapped d, None)` where scipy's
/// attempt fails (p outside `[0, 1]`) and scipy would fall back to the
/// asymptotic p-value. Also `None` if `lcm(n1, n2) > 2^53` (beyond what the
/// float arithmetic represents; scipy never gets there).
///
/// Cost: O(n) for `n1 == n2`; otherwise O(n1 * n2 * min(1, 2d)) time
/// (fewer cells for large d, whose band underflows to zero) and
/// O(n1 + n2) memory, so this is meant for the sizes `method='auto'` uses.
pub fn attempt_exact(n1: u64, n2: u64, d: f64) -> (f64, Option<f64>) {
    if n1 == 0 || n2 == 0 || !(0.0..=1.0).contains(&d) {
        return (f64::NAN, None);
    }
    let g = gcd(n1, n2);
    let Some(lcm) = (n1 / g).checked_mul(n2).filter(|&l| l <= 1 << 53) else {
        return (d, None);
    };
    let lcm_f = lcm as f64;
    // h = int(np.round(d * lcm)); np.round rounds half to even.
    let h = (d * lcm_f).round_ties_even() as u64;
    let d = h as f64 / lcm_f;
    if h == 0 {
        return (d, Some(1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside(n1, n2, g, h)
    };
    if (0.0..=1.0).contains(&p) {
        (d, Some(p))
    } else {
        (d, None)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// scipy's `_compute_prob_outside_square(n, h)`: `Pr(D_{n,n} >= h/n)`
/// = `2 * sum_k (-1)^k binom(2n, n-(k+1)h) / binom(2n, n)` (Hodges 1958),
/// evaluated without cancellation as `2 * A0 * (1 - A1 * (1 - A2 * (...)))`
/// with `A_k = binom(2n, n-(k+1)h) / binom(2n, n-kh)`, in scipy's operation
/// order so the result is bit-identical. O(n + h), no allocation.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i64, h as i64);
    let mut p = 0.0f64;
    // int(np.floor(n / h)) == n / h for these integer ranges.
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0f64;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// scipy's `_compute_outer_prob_inside_method(m, n, g, h)`: the probability
/// that a random lattice path from (0,0) to (m,n) leaves the band
/// `|x/m - y/n| < h/lcm(m,n)` (Hodges' inside method with Viehmann's
/// recursion, arXiv:2102.08037, which propagates `1 - p` directly):
///
/// `A(x,y) = (x*A(x-1,y) + y*A(x,y-1)) / (x+y)` inside the band,
/// `A = 1` outside it, `A(0,y) = 0` for the band part of column 0.
///
/// The result is bit-identical to scipy's, but computed differently, for
/// speed (10000 x 9999 has up to ~1e8 cells):
///
/// * scipy walks column by column; each column is a serial chain through its
///   `val`, so it is latency bound. Cells on one anti-diagonal `x + y = s`
///   are independent, so we sweep anti-diagonals: every cell still gets the
///   identical operands and operation order (`(left*x + below*y) / (x+y)`),
///   but the loop vectorizes and runs at the divider's throughput.
/// * For large d most cells underflow. Subnormal operands cost ~100 cycles
///   each on x86, so values are stored scaled by 2^600 (never subnormal) and
///   IEEE gradual underflow is emulated where the unscaled quotient would be
///   subnormal (see [`scaled_cell`]). Products by the integer weights and
///   sums need no emulation: in the subnormal range they are exact anyway.
/// * A cell whose two inputs are +0 is +0 (scipy computes the same), so the
///   run of exact zeros in the middle of each diagonal is skipped.
///
/// Memory is O(m + n): the column windows plus two diagonals indexed by `y`.
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> f64 {
    // Symmetric in m, n; scipy computes with m >= n.
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as i64, (n / g) as i64);
    let (m, n, h) = (m as usize, n as usize, h as i64);
    let mgf = mg as f64;

    // Column windows [lo[x], hi[x]) of in-band y values, computed with
    // scipy's float divisions and floor/ceil.
    let mut lo: Vec<usize> = Vec::with_capacity(m + 1);
    let mut hi: Vec<usize> = Vec::with_capacity(m + 1);
    lo.push(0);
    hi.push(((h as f64 / mgf).ceil() as usize).min(n + 1));
    for i in 1..=m as i64 {
        let minj = (((ng * i - h) as f64 / mgf).floor() as i64 + 1).clamp(0, n as i64) as usize;
        let maxj = (((ng * i + h) as f64 / mgf).ceil() as i64).clamp(0, n as i64 + 1) as usize;
        if maxj <= minj {
            // scipy returns 1.0 as soon as a column window is empty.
            return 1.0;
        }
        lo.push(minj);
        hi.push(maxj);
    }

    // ys[y] = y as f64, so the vectorized loop needs no int->float conversion.
    let ys: Vec<f64> = (0..=n).map(|y| y as f64).collect();
    // prev/cur hold one anti-diagonal each (scaled by 2^600), indexed by y.
    // Invariant: entries the next diagonal reads but that are out of band
    // hold (scaled) 1.0.
    let mut prev = vec![SCALED_ONE; n + 1];
    let mut cur = vec![SCALED_ONE; n + 1];
    // Known runs of exact zeros (inclusive y ranges) in prev and cur.
    let mut zeros_prev: Option<(usize, usize)> = None;
    let mut zeros_cur: Option<(usize, usize)> = None;
    // In-band x range on diagonal s is [xa, xb]: x + lo[x] and x + hi[x] are
    // strictly increasing in x, so both ends only move forward, by at most
    // one per diagonal.
    let (mut xa, mut xb) = (0usize, 0usize);
    for s in 0..=m + n {
        while hi.get(xa).is_some_and(|&v| xa + v <= s) {
            xa += 1;
        }
        while lo.get(xb + 1).is_some_and(|&v| xb + 1 + v <= s) {
            xb += 1;
        }
        if xa > xb {
            // No in-band cell on this diagonal: every path leaves the band,
            // and scipy's recursion then yields exactly 1.0 ((x+y)/(x+y)).
            return 1.0;
        }
        let sf = s as f64;
        let mut zeros_new = None;
        // Bulk cells with x >= 1 and y >= 1.
        let x_first = xa.max(1);
        let x_last = xb.min(s.saturating_sub(1));
        if s >= 1 && x_first <= x_last {
            let (y0, y1) = (s - x_last, s - x_first);
            // Cells whose inputs prev[y] and prev[y-1] are both known zeros.
            let skip = zeros_prev
                .map(|(a, b)| ((a + 1).max(y0), b.min(y1)))
                .filter(|(a, b)| a <= b);
            match skip {
                Some((a, b)) => {
                    // cur still holds diagonal s-2: zero the part of a..=b
                    // not already known to be zero there (at most two
                    // short intervals, since runs move by <= 1 per diagonal).
                    let fill = |cur: &mut [f64], lo: usize, hi: usize| {
                        if lo <= hi
                            && let Some(c) = cur.get_mut(lo..=hi)
                        {
                            c.fill(0.0);
                        }
                    };
                    match zeros_cur {
                        Some((ka, kb)) if ka <= b && a <= kb => {
                            if ka > a {
                                fill(&mut cur, a, b.min(ka - 1));
                            }
                            if kb < b {
                                fill(&mut cur, a.max(kb + 1), b);
                            }
                        }
                        _ => fill(&mut cur, a, b),
                    }
                    if a > y0 {
                        diagonal_segment(&mut cur, &prev, &ys, y0, a - 1, sf);
                    }
                    if b < y1 {
                        diagonal_segment(&mut cur, &prev, &ys, b + 1, y1, sf);
                    }
                    zeros_new = Some(grow_zero_run(&cur, a, b, y0, y1));
                }
                None => {
                    diagonal_segment(&mut cur, &prev, &ys, y0, y1, sf);
                    // Underflowed cells cluster around the band's centre
                    // line y/n = x/m; probe there for a new run of zeros.
                    let yc = (s * n / (m + n)).clamp(y0, y1);
                    if cur.get(yc) == Some(&0.0) {
                        zeros_new = Some(grow_zero_run(&cur, yc, yc, y0, y1));
                    }
                }
            }
        }
        // y == 0 (x == s >= 1): scipy's `val` is 0.0 there.
        if s >= 1
            && xb == s
            && let (Some(c), Some(&l)) = (cur.first_mut(), prev.first())
        {
            *c = scaled_cell(l, sf, 0.0, 0.0, sf);
        }
        // x == 0: column 0 is initialised to 0 inside the band.
        if xa == 0
            && let Some(c) = cur.get_mut(s)
        {
            *c = 0.0;
        }
        // Out-of-band neighbours the next diagonal may read.
        let (ylo, yhi) = (s - xb, s - xa);
        if let Some(c) = ylo.checked_sub(1).and_then(|y| cur.get_mut(y)) {
            *c = SCALED_ONE;
        }
        if let Some(c) = cur.get_mut(yhi + 1) {
            *c = SCALED_ONE;
        }
        std::mem::swap(&mut prev, &mut cur);
        zeros_cur = zeros_prev;
        zeros_prev = zeros_new;
    }
    // Unscale: exact, because scaled values lie on the grid of the unscaled
    // doubles (including subnormal ones).
    prev.get(n).map_or(f64::NAN, |&v| v * UNSCALE)
}

/// Recursion values are kept multiplied by 2^SCALE_EXP.
const SCALE_EXP: u64 = 600;
const SCALED_ONE: f64 = f64::from_bits((1023 + SCALE_EXP) << 52);
const UNSCALE: f64 = f64::from_bits((1023 - SCALE_EXP) << 52);
/// Scaled image of f64::MIN_POSITIVE (2^-1022): below it the unscaled value
/// is subnormal and must be rounded to a multiple of the scaled quantum.
const SCALED_MIN_NORMAL: f64 = f64::from_bits((1023 + SCALE_EXP - 1022) << 52);
/// Half the scaled subnormal quantum: 2^-1075 * 2^600.
const SCALED_HALF_QUANTUM: f64 = f64::from_bits((1023 + SCALE_EXP - 1075) << 52);

/// `(l*x + b*y) / s` in the scaled domain, rounded exactly as IEEE double
/// arithmetic rounds the unscaled value (including gradual underflow).
///
/// All values are >= 0 and x, y, s are integers. A product `l*x` (x >= 1)
/// below 2^-1022 needs a subnormal `l`, so it is an integer multiple of
/// 2^-1074 that fits in 52 bits: exact. A sum below 2^-1022 of two such
/// multiples is exact too. Above 2^-1022 scaling by 2^600 commutes with
/// rounding. So only the quotient needs care: when the
/// unscaled quotient is subnormal it must be rounded to a multiple of
/// 2^-1074 (ties to even), not to 53 bits. `(q + C) - C` with
/// C = scaled 2^-1022 rounds q to that grid. Rounding twice (53 bits, then
/// the grid) can only go wrong when q lands exactly on a grid midpoint; the
/// exact remainder `sum - q*s` (an FMA) then says which way the true
/// quotient lies.
#[inline]
fn scaled_cell(l: f64, x: f64, b: f64, y: f64, s: f64) -> f64 {
    let sum = l * x + b * y;
    let q = sum / s;
    if q >= SCALED_MIN_NORMAL {
        return q;
    }
    let r = (q + SCALED_MIN_NORMAL) - SCALED_MIN_NORMAL;
    if (q - r).abs() == SCALED_HALF_QUANTUM {
        let rem = (-q).mul_add(s, sum);
        if rem > 0.0 {
            return q + SCALED_HALF_QUANTUM;
        }
        if rem < 0.0 {
            return q - SCALED_HALF_QUANTUM;
        }
    }
    r
}

/// Computes the bulk cells y0..=y1 (x = s - y >= 1, y >= 1) of one
/// anti-diagonal into `cur` from the previous diagonal `prev`.
fn diagonal_segment(cur: &mut [f64], prev: &[f64], ys: &[f64], y0: usize, y1: usize, sf: f64) {
    const CHUNK: usize = 64;
    let (Some(c), Some(left), Some(below), Some(yv)) = (
        cur.get_mut(y0..=y1),
        prev.get(y0..=y1),
        y0.checked_sub(1).and_then(|b0| prev.get(b0..y1)),
        ys.get(y0..=y1),
    ) else {
        return;
    };
    let chunks = c
        .chunks_mut(CHUNK)
        .zip(left.chunks(CHUNK))
        .zip(below.chunks(CHUNK))
        .zip(yv.chunks(CHUNK));
    for (((c, left), below), yv) in chunks {
        // Plain IEEE pass (vectorizes; runs at the divider's throughput),
        // noting whether any quotient is in the (scaled) subnormal range.
        let mut small = false;
        for (((c, &l), &b), &y) in c.iter_mut().zip(left).zip(below).zip(yv) {
            let q = (l * (sf - y) + b * y) / sf;
            small |= (q < SCALED_MIN_NORMAL) & (q > 0.0);
            *c = q;
        }
        // Rare: redo this chunk with gradual-underflow emulation.
        if small {
            for (((c, &l), &b), &y) in c.iter_mut().zip(left).zip(below).zip(yv) {
                *c = scaled_cell(l, sf - y, b, y, sf);
            }
        }
    }
}

/// Extends the zero run a..=b of cur outwards within y0..=y1.
fn grow_zero_run(cur: &[f64], a: usize, b: usize, y0: usize, y1: usize) -> (usize, usize) {
    let (mut za, mut zb) = (a, b);
    while za > y0 && cur.get(za - 1) == Some(&0.0) {
        za -= 1;
    }
    while zb < y1 && cur.get(zb + 1) == Some(&0.0) {
        zb += 1;
    }
    (za, zb)
}

// ---------------------------------------------------------------------------
// Asymptotic path: kstwo.sf
// ---------------------------------------------------------------------------

/// `kstwo.sf(d, np.round(en))` with `en = m*n/(m+n)`, `m >= n`.
fn asymp(n1: u64, n2: u64, d: f64) -> f64 {
    let (a, b) = (n1 as f64, n2 as f64);
    let (m, n) = if a >= b { (a, b) } else { (b, a) };
    let en = m * n / (m + n);
    kstwo_sf(en.round_ties_even(), d)
}

/// `scipy.stats.kstwo.sf(x, n)`: survival function of the two-sided
/// one-sample KS statistic `D_n`, including `rv_continuous.sf`'s support
/// handling (support `[0.5/n, 1]`; `n` must be an integer >= 1, else NaN).
pub fn kstwo_sf(n: f64, x: f64) -> f64 {
    if x.is_nan() || n.is_nan() || n < 1.0 || n != n.round_ties_even() {
        return f64::NAN;
    }
    if x <= 0.5 / n {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    // n is an integer >= 1 here; absurdly large n saturates, harmlessly.
    kolmogn_sf(n as u64, x)
}

const E128: i64 = 128;
/// 2^128 and 2^-128: scipy's rescaling constants `_EP128`, `_EM128`.
const EP128: f64 = f64::from_bits(0x47f0_0000_0000_0000);
const EM128: f64 = f64::from_bits(0x37f0_0000_0000_0000);

/// `_kolmogn(n, x, cdf=False)`: Simard & L'Ecuyer's choice of algorithm.
fn kolmogn_sf(n: u64, x: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben-Gambino: 1/2n <= x <= 1/n, CDF = n!/n^n * (2t-1)^n.
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140 {
            // np.prod(np.arange(1, n+1) * (1.0/n) * (2*t - 1)), sequential.
            let (r, c) = (1.0 / nf, 2.0 * t - 1.0);
            (1..=n).fold(1.0, |acc, i| acc * (i as f64 * r * c))
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip_prob(1.0 - prob);
    }
    if t >= nf - 1.0 {
        // Ruben-Gambino: SF = 2 (1-x)^n.
        return clip_prob(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        // D_n+ >= x and D_n- >= x are disjoint here.
        return clip_prob(2.0 * smirnov(n, x));
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return clip_prob(1.0 - kolmogn_dmtw_cdf(n, x));
        }
        if nxsquared <= 4.0 {
            return clip_prob(1.0 - kolmogn_pomeranz_cdf(n, x));
        }
        return clip_prob(2.0 * smirnov(n, x));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip_prob(2.0 * smirnov(n, x));
    }
    // scipy also has `nxsquared >= 18 -> cdf = 1` here; unreachable after
    // the 2.2 test above for the SF.
    let cdf = if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        kolmogn_dmtw_cdf(n, x)
    } else {
        kolmogn_pelz_good_cdf(n, x)
    };
    clip_prob(1.0 - cdf)
}

/// `_clip_prob`: np.clip(p, 0, 1); NaN stays NaN.
fn clip_prob(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// `_log_nfactorial_div_n_pow_n(n)`: log(n!/n^n) by Stirling's series with
/// n*log(n) removed up front (no cancellation).
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    // B_{2j}/(2j)/(2j-1) for j = 8..1, highest degree first (np.polyval).
    #[allow(clippy::excessive_precision)]
    const STIRLING: [f64; 8] = [
        -2.955065359477124183e-2,
        6.4102564102564102564e-3,
        -1.9175269175269175269e-3,
        8.4175084175084175084e-4,
        -5.952380952380952381e-4,
        7.9365079365079365079e-4,
        -2.7777777777777777778e-3,
        8.3333333333333333333e-2,
    ];
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = STIRLING.iter().fold(0.0, |y, &c| y * x + c);
    n.ln() / 2.0 - n + (2.0 * PI).ln() / 2.0 + rn * poly
}

/// `_kolmogn_DMTW(n, d, cdf=True)`: Durbin's matrix formula
/// `Pr(D_n < d) = n!/n^n * (H^n)_{kk}` computed as in Marsaglia, Tsang &
/// Wang (2003): binary powering of the (2k-1)x(2k-1) matrix H with separate
/// power-of-two exponent bookkeeping. O(m^3 log n) time, O(m^2) memory, with
/// m <= 115 on the paths that use it.
fn kolmogn_dmtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;

    // v[j] = (1 - h^(j+1)) / (j+1)!, w[j] = 1/j!
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0f64; m];
    let mut fac = 1.0f64;
    for (j, (wj, vj)) in w.iter_mut().zip(v.iter_mut()).enumerate() {
        *wj = fac;
        fac /= (j + 1) as f64; // may underflow; harmless
        *vj *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    if let Some(last) = v.last_mut() {
        *last = (1.0 + tt) * fac;
    }

    // H: ones-band of 1/j! below the diagonal, v in column 0, reversed v in
    // the last row. Row-major m x m.
    let mut hm = vec![0.0f64; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }

    let mut hpwr = vec![0.0f64; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let kk = (k - 1) * m + (k - 1);
    let (mut nn, mut expnt, mut hexpnt) = (n, 0i64, 0i64);
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
        }
        nn /= 2;
        if nn == 0 {
            // scipy squares once more here; the result is never used.
            break;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[kk].abs() > EP128 {
            hm.iter_mut().for_each(|e| *e /= EP128);
            hexpnt += E128;
        }
    }

    let mut p = hpwr[kk];
    // Multiply by n!/n^n, rescaling to stay out of underflow.
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    clip_prob(p)
}

/// Dense row-major m x m product, i-k-j order so the inner loop vectorizes.
fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; m * m];
    for (crow, arow) in c.chunks_exact_mut(m).zip(a.chunks_exact(m)) {
        for (&aik, brow) in arow.iter().zip(b.chunks_exact(m)) {
            for (cij, &bkj) in crow.iter_mut().zip(brow) {
                *cij += aik * bkj;
            }
        }
    }
    c
}

/// `_pomeranz_compute_j1j2`: the non-zero index range of row i.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1) / 2, (i + 1) % 2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `_kolmogn_Pomeranz(n, x, cdf=True)`: Pomeranz's (1974) recursion. Each
/// row is the previous one convolved with (unnormalised) Poisson
/// probabilities; only two rows and their non-zero ranges are kept, with
/// 2^128 rescaling against underflow.
fn kolmogn_pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let n = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)).max(1) as usize;
    // gpower[m] = (g/n)^m/m!, twogpower[m] = (2g/n)^m/m!,
    // onem2gpower[m] = ((1-2g)/n)^m/m!
    let mut gpower = vec![1.0f64; npwrs];
    let mut twogpower = vec![1.0f64; npwrs];
    let mut onem2gpower = vec![1.0f64; npwrs];
    let (g_n, two_g_n, one_m2g_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for mi in 1..npwrs {
        let mf = mi as f64;
        gpower[mi] = gpower[mi - 1] * g_n / mf;
        twogpower[mi] = twogpower[mi - 1] * two_g_n / mf;
        onem2gpower[mi] = onem2gpower[mi - 1] * one_m2g_n / mf;
    }

    let mut v0 = vec![0.0f64; npwrs];
    let mut v1 = vec![0.0f64; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let mut expnt = 0i64;
    let (mut j1, _) = pomeranz_j1j2(0, n, ll, ceilf, roundf);
    for i in 1..2 * n + 2 {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let (nj1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        j1 = nj1;
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            // conv = np.convolve(V0[k1-V0s : k1-V0s+ln2], pwrs[:ln2]);
            // V1[:conv_len] = conv[conv_start : conv_start+conv_len]
            let a_start = (k1 - v0s).max(0) as usize;
            let a = v0.get(a_start..).unwrap_or(&[]);
            let a = a.get(..ln2 as usize).unwrap_or(a);
            let b = pwrs.get(..ln2 as usize).unwrap_or(pwrs);
            let conv_start = j1 - k1;
            let conv_len = (j2 - j1 + 1).max(0) as usize;
            for (c, out) in v1.iter_mut().take(conv_len).enumerate() {
                let idx = conv_start + c as i64; // index into the full convolution
                if idx < 0 {
                    continue;
                }
                let idx = idx as usize;
                let p_lo = idx.saturating_sub(b.len().saturating_sub(1));
                let p_hi = idx.min(a.len().saturating_sub(1));
                let mut acc = 0.0f64;
                for p in p_lo..=p_hi {
                    if let (Some(&ap), Some(&bq)) = (a.get(p), b.get(idx - p)) {
                        acc += ap * bq;
                    }
                }
                *out = acc;
            }
            // Rescale to avoid underflow.
            let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < vmax && vmax < EM128 {
                v1.iter_mut().for_each(|e| *e *= EP128);
                expnt -= E128;
            }
            v1s = v0s + j1 - k1;
        }
    }

    // Multiply by n!.
    let mut ans = usize::try_from(n - v1s)
        .ok()
        .and_then(|i| v1.get(i))
        .copied()
        .unwrap_or(f64::NAN);
    for mi in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += E128;
        }
        ans *= mi as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    clip_prob(ans)
}

/// `_kolmogn_PelzGood(n, x, cdf=True)`: the Li-Chien/Korolyuk expansion
/// `K0(z) + K1(z)/sqrt(n) + K2(z)/n + K3(z)/n^1.5`, `z = x sqrt(n)`,
/// transformed with Jacobi theta identities into series suited to small z
/// (Pelz & Good 1976).
fn kolmogn_pelz_good_cdf(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let pi2 = PI.powf(2.0);
    let pi4 = PI.powf(4.0);
    let pi6 = PI.powf(6.0);
    let sqrt2pi = (2.0 * PI).sqrt();
    let nf = n as f64;

    let z = nf.sqrt() * x;
    let (zsq, z3, z4, z6) = (z.powf(2.0), z.powf(3.0), z.powf(4.0), z.powf(6.0));
    let qlog = -pi2 / 8.0 / zsq;
    if qlog < -708.0 {
        // z ~ 0.0417: the CDF underflows.
        return 0.0;
    }
    let q = qlog.exp();

    // Coefficients of the terms of the K1, K2, K3 sums.
    let k1a = -zsq;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * zsq) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsq) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * zsq) / 64.0;
    let k3c = pi4 * (-60.0 * zsq + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powf(8.0);

    // Horner scheme for sum_k c_k q^((2k-1)^2).
    let mut kk = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let mi = 2 * k - 1;
        let (msq, m4, m6) = ((mi * mi) as f64, mi.pow(4) as f64, mi.pow(6) as f64);
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msq,
            k2a + k2b * msq + k2c * m4,
            k3a + k3b * msq + k3c * m4 + k3d * m6,
        ];
        for (e, c) in kk.iter_mut().zip(coeffs) {
            *e = *e * qpower + c;
        }
    }
    let denom = [z, 6.0 * z4, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (e, dn) in kk.iter_mut().zip(denom) {
        *e = *e * q * sqrt2pi / dn;
    }

    // The other sums, over all integers k: K2 gets (pi^2 k^2) q^(k^2),
    // K3 gets (3 pi^2 k^2 z^2 - pi^4 k^4) q^(k^2).
    let q = (-pi2 / 2.0 / zsq).exp();
    let sqrt3z = 3.0f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0f64, 0.0f64);
    for k in (1..=maxk).rev() {
        let ksq = (k * k) as f64;
        let kspi = PI * k as f64;
        let qp = q.powf(ksq);
        k2extra += ksq * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    kk[2] += k2extra * (pi2 * sqrt2pi / (-36.0 * z3));
    kk[3] += k3extra * (pi2 * sqrt2pi / (216.0 * z6));
    for (i, e) in kk.iter_mut().enumerate() {
        *e /= nf.powf(i as f64 / 2.0);
    }
    kk.iter().sum()
}

// ---------------------------------------------------------------------------
// One-sided Smirnov survival function (xsf/cephes/kolmogorov.h)
// ---------------------------------------------------------------------------

/// `scipy.special.smirnov(n, x)` = `Pr(D_n^+ >= x)`, the one-sided
/// one-sample KS survival function: xsf's `_smirnov(n, x).sf`.
///
/// Smirnov (1944) / Birnbaum & Tingey (1951):
/// `Pr(D_n^+ > x) = x * sum_{v=0}^{floor(n(1-x))} C(n,v) (x + v/n)^(v-1)
/// (1 - x - v/n)^(n-v)`, summed in double-double with an explicit binomial
/// exponent (van Mulbregt, arXiv:1802.06966), plus xsf's closed forms for
/// `x <= 1/n` and `x >= 1 - 1/n` and its approximation for `n > 1e6`.
/// Returns NaN for `n == 0` or `x` outside `[0, 1]`.
pub fn smirnov(n: u64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    // xsf takes an `int`; beyond i64 the n > 1e6 approximation applies anyway.
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let nf = n as f64;
    let (alpha, nxfl) = mod_nx(n, x);
    let mut n1mxfl = n - nxfl - i64::from(alpha != 0.0);
    let mut n1mxceil = n - nxfl;
    // If alpha is 0 the last term belongs to neither summation.
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }

    // x <= 1/n: closed form.
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        let t = pow2(1.0, x, n - 1);
        let cdf = x * t;
        return 1.0 - cdf;
    }
    // The SF underflows double.
    if -2.0 * nf * x * x < MINLOG {
        return 0.0;
    }
    // x >= 1 - 1/n: closed form.
    if nxfl >= n - 1 {
        return pow2(1.0, -x, n);
    }
    // n too big to sum: p ~ exp(-(6nx+1)^2 / 18n).
    if n > SMIRNOV_MAX_COMPUTE_N {
        let logp = -(6.0 * nf * x + 1.0).powf(2.0) / 18.0 / nf;
        let sf = if logp < -LN_2 {
            logp.exp()
        } else {
            1.0 - (-cephes_expm1(logp))
        };
        return sf;
    }

    // Use the upper sum if n is large enough, x small enough and it has few
    // terms (it alternates in sign, losing ~1.6 bits per term).
    let n_upper_terms = n - n1mxceil + 1;
    let use_upper = (n_upper_terms <= 1 && x < 0.5)
        || (n >= SM_UPPERSUM_MIN_N && n_upper_terms <= SM_UPPER_MAX_TERMS && x <= 0.5 / nf.sqrt());

    let (start, step, n_terms, first) = if use_upper {
        (n, -1i64, n - n1mxceil + 1, pow4_d(1.0, x, 1.0, 0.0, n - 1))
    } else {
        let t2 = pow4_d(1.0, -x, 1.0, 0.0, n);
        (0, 1i64, n1mxfl + 1, t2.div_f(x))
    };
    if !use_upper && let Some(sum) = lattice_sum(n, x, n_terms, first) {
        return Dd::f_mul(x, sum).hi.clamp(0.0, 1.0);
    }
    let aj_sum = term_sum(n, x, (start, step, n_terms), first);
    let prob = Dd::f_mul(x, aj_sum).hi;
    let sf = if step < 0 { 1.0 - prob } else { prob };
    sf.clamp(0.0, 1.0)
}

/// The Smirnov sum term by term from `v = start` in steps of `step` (`n_terms` terms, `a_start` =
/// `first`), stopping once the rest cannot change it: xsf's loop.
fn term_sum(n: i64, x: f64, (start, step, n_terms): (i64, i64, i64), first: Dd) -> Dd {
    let mut aj_sum = Dd::from(0.0).add(first);
    let (mut cman, mut cexpt) = (Dd::from(1.0), 0i64);
    update_binomial(&mut cman, &mut cexpt, n, 0);
    let vmid = n / 2;
    for j in 1..n_terms {
        let v = start + j * step;
        let aj = compute_av(n, x, v, cman, cexpt);
        if aj.hi.is_finite() && aj.ne_f(0.0) {
            aj_sum = aj_sum.add(aj);
        }
        // Safe to terminate early?
        if aj.ne_f(0.0) {
            if (4 * (n_terms - j)) as f64 * aj.hi.abs() < f64::EPSILON * aj_sum.hi
                && j != n_terms - 1
            {
                break;
            }
        } else if j > vmid {
            break;
        }
        update_binomial(&mut cman, &mut cexpt, n, j);
    }
    aj_sum
}

/// Sums of at least this many terms are tried on a lattice first ([`lattice_sum`]).
const LATTICE_MIN_TERMS: i64 = 1 << 15;
/// Terms evaluated on each of [`lattice_sum`]'s two lattices.
const LATTICE_POINTS: i64 = 2048;

/// The lower Smirnov sum `sum_{v=0}^{n_terms-1} a_v` (`first` = `a_0`) from every `h`-th
/// term: `h * sum_m a_{mh}`, and the same on the lattice shifted by `h/2`, which both equal
/// the sum when they agree to 1e-13 (the terms themselves are evaluated to ~1e-15); then the
/// finer lattice's is returned.
///
/// Why this holds: the terms are the values at the integers of a smooth, positive function
/// of `v` (binomial-like, of width ~`n / (4 sqrt(n x^2))` terms, ~7,000 for n = 500,000 at
/// the largest `x` summed) that is negligible at both ends of the range. By Poisson
/// summation a lattice of step `h` then misses the integral (and the sum over all integers
/// with it) only by terms of order `exp(-2 pi^2 width^2 / h^2)`, vanishingly small while `h`
/// is well below the width. Where that fails — a narrow peak, a term at either end that
/// counts — the two shifted lattices disagree, or an end term is too large, and `None` sends
/// the caller to the term-by-term sum. Terms are evaluated as that sum evaluates them
/// (`compute_av`), the binomial coefficient stepped through every `v` by products of
/// integers ([`binomial_step`], cheap); the powers, the cost, only on the lattice.
fn lattice_sum(n: i64, x: f64, n_terms: i64, first: Dd) -> Option<Dd> {
    if n_terms < LATTICE_MIN_TERMS {
        return None;
    }
    let half = n_terms / (2 * LATTICE_POINTS);
    let (mut even, mut odd) = (first, Dd::from(0.0));
    // C(n, at) as mantissa and exponent.
    let (mut binomial, mut at) = ((Dd::from(1.0), 0i64), 0i64);
    let mut term = |v: i64| {
        binomial = binomial_step(binomial, n, at, v);
        at = v;
        let av = compute_av(n, x, v, binomial.0, binomial.1);
        av.hi.is_finite().then_some(av)
    };
    for (k, v) in (half..n_terms).step_by(half as usize).enumerate() {
        let av = term(v)?;
        if k % 2 == 1 {
            even = even.add(av);
        } else {
            odd = odd.add(av);
        }
    }
    let last = term(n_terms - 1)?;
    let step = (2 * half) as f64;
    let (even, odd) = (Dd::f_mul(step, even), Dd::f_mul(step, odd));
    let scale = even.hi.max(odd.hi);
    let negligible = |term: Dd| step * term.hi.abs() <= 1e-20 * scale;
    // Below 1e-300 the terms are subnormal, known only to ~1e-318 apart: what agrees that
    // closely is the sum (scipy's own is no closer), down to all terms underflowing to 0.
    let agree = (even.hi - odd.hi).abs() <= 1e-13 * scale.max(1e-300);
    (agree && negligible(first) && negligible(last)).then(|| Dd::f_mul(0.5, even.add(odd)))
}

/// `C(n, to)` from `C(n, from)` (a mantissa and a binary exponent, as [`update_binomial`]
/// keeps them): the ratios `(n - i) / (i + 1)` multiplied as two products of integers in
/// double-double, normalized every 16 factors (each below 2^20 for n <= 1e6), one division
/// at the end — a few times cheaper per step than dividing at every step.
fn binomial_step((mantissa, exponent): (Dd, i64), n: i64, from: i64, to: i64) -> (Dd, i64) {
    let (mut num, mut den, mut exponent) = (Dd::from(1.0), Dd::from(1.0), exponent);
    for (k, i) in (from..to).enumerate() {
        num = Dd::f_mul((n - i) as f64, num);
        den = Dd::f_mul((i + 1) as f64, den);
        if k % 16 == 15 {
            let ((m1, e1), (m2, e2)) = (num.frexp(), den.frexp());
            (num, den, exponent) = (m1, m2, exponent + e1 - e2);
        }
    }
    let (mantissa, e) = mantissa.mul(num.div(den)).frexp();
    (mantissa, exponent + e)
}

/// xsf `SMIRNOV_MAX_COMPUTE_N`.
const SMIRNOV_MAX_COMPUTE_N: i64 = 1_000_000;
/// xsf `SM_UPPER_MAX_TERMS`, `SM_UPPERSUM_MIN_N`.
const SM_UPPER_MAX_TERMS: i64 = 3;
const SM_UPPERSUM_MIN_N: i64 = 10;
/// cephes `MINLOG` = log(2^-1074) as xsf defines it.
#[allow(clippy::excessive_precision)]
const MINLOG: f64 = -7.451332191019412076235e2;
/// xsf `SM_MAX_EXPONENT`: keep both halves of a double-double normal.
const SM_MAX_EXPONENT: i64 = 960;

/// `modNX`: floor(n*x) and the fractional part, computed exactly in
/// double-double. Returns (alpha, floor(n*x)).
fn mod_nx(n: i64, x: f64) -> (f64, i64) {
    let nxd = Dd::f_mul(n as f64, Dd::from(x));
    let nxfloord = nxd.floor();
    let alphad = nxd.sub(nxfloord);
    let mut alpha = alphad.hi;
    let mut nxfloor = nxfloord.hi as i64;
    if alpha == 1.0 {
        nxfloor += 1;
        alpha = 0.0;
    }
    (alpha, nxfloor)
}

/// `updateBinomial`: C(n, j+1) = C(n, j) * (n-j)/(j+1), mantissa in
/// double-double and a separate integer exponent.
fn update_binomial(cman: &mut Dd, cexpt: &mut i64, n: i64, j: i64) {
    let rat = Dd::from((n - j) as f64).div_f(j as f64 + 1.0);
    let (man2, expt) = cman.mul(rat).frexp();
    *cexpt += expt;
    *cman = man2;
}

/// `pow_D`: a^m for double-double a, using pow() on the high part and a
/// first-order (or expm1/log1p) correction for the low part.
fn pow_d(a: Dd, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::from(1.0);
        }
        return Dd::from(1.0).div(pow_d(a, -m));
    }
    if a.eq_f(0.0) {
        return Dd::from(0.0);
    }
    let mf = m as f64;
    let ans = a.hi.powf(mf);
    let r = a.lo / a.hi;
    let mut adj = mf * r;
    if adj.abs() > 1e-8 {
        if adj.abs() < 1e-4 {
            // First two terms of the Taylor series of (1+r)^m.
            adj += (mf * r) * ((m - 1) as f64 / 2.0 * r);
        } else {
            adj = cephes_expm1(mf * r.ln_1p());
        }
    }
    Dd::from(ans).add_f(ans * adj)
}

/// `pow2(a, b, m)` = (a + b)^m evaluated in double-double.
fn pow2(a: f64, b: f64, m: i64) -> f64 {
    pow_d(Dd::from(a).add_f(b), m).hi
}

/// `pow4_D(a, b, c, d, m)` = ((a + b) / (c + d))^m.
fn pow4_d(a: f64, b: f64, c: f64, d: f64, m: i64) -> Dd {
    if m <= 0 {
        if m == 0 {
            return Dd::from(1.0);
        }
        return pow4_d(c, d, a, b, -m);
    }
    let aa = Dd::from(a).add_f(b);
    let cc = Dd::from(c).add_f(d);
    if aa.eq_f(0.0) {
        return if cc.eq_f(0.0) {
            Dd::new(f64::NAN, f64::NAN)
        } else {
            Dd::from(0.0)
        };
    }
    if cc.eq_f(0.0) {
        let inf = if aa.lt_f(0.0) {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Dd::new(inf, inf);
    }
    pow_d(aa.div(cc), m)
}

/// xsf's `nextPowerOf2`. Despite the name it returns |x + x*2^-52| (or |x|
/// if that sum is 0); ported literally because it sets the split exponent.
fn next_power_of_2(x: f64) -> f64 {
    let q = ldexp(x, 1 - 53);
    let l = (q + x).abs();
    if l == 0.0 { x.abs() } else { l }
}

/// `pow2Scaled_D`: a^m as (significand, exponent), splitting the power so
/// that intermediate double-doubles stay normal. Returns (significand, exp).
fn pow2_scaled_d(a: Dd, m: i64) -> (Dd, i64) {
    if m <= 0 {
        if m == 0 {
            return (Dd::from(1.0), 0);
        }
        let (ans, ae1) = pow2_scaled_d(a, -m);
        let (ans, ae2) = Dd::from(1.0).div(ans).frexp();
        return (ans, -ae1 + ae2);
    }
    let (y, ye) = a.frexp();
    if m == 1 {
        return (y, ye);
    }
    let mut max_expt = SM_MAX_EXPONENT;
    // y^maxExpt >= 2^-960; quick check whether the power must be split.
    if m as f64 * (y.hi - 1.0) / y.hi < -(SM_MAX_EXPONENT as f64) * LN_2 {
        let lg2y = y.hi.ln() / LN_2;
        let lg_ans = m as f64 * lg2y;
        if lg_ans <= -(SM_MAX_EXPONENT as f64) {
            max_expt = (next_power_of_2(-(SM_MAX_EXPONENT as f64) / lg2y + 1.0) / 2.0) as i64;
        }
    }
    if m <= max_expt || max_expt <= 0 {
        let (ans, anse) = pow_d(y, m).frexp();
        return (ans, anse + m * ye);
    }
    let (q, r) = (m / max_expt, m % max_expt);
    // y^m = (y^maxExpt)^q * y^r
    let (y2r, y2re) = pow2_scaled_d(y, r);
    let (y2m, y2me) = pow2_scaled_d(y, max_expt);
    let (y2mq, y2mqe) = pow2_scaled_d(y2m, q);
    let (ans, anse) = y2r.mul(y2mq).frexp();
    let y2mqe = y2mqe + y2me * q;
    (ans, anse + y2mqe + y2re + m * ye)
}

/// `computeAv`: A_v(n, x) = C(n,v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1),
/// with C(n,v) = cman * 2^cexpt.
fn compute_av(n: i64, x: f64, v: i64, cman: Dd, cexpt: i64) -> Dd {
    let nf = n as f64;
    let t2x = Dd::from((n - v) as f64).div_f(nf).sub_f(x);
    let (t2, t2e) = pow2_scaled_d(t2x, n - v);
    let t1x = Dd::from(v as f64).div_f(nf).add_f(x);
    let (t1, t1e) = pow2_scaled_d(t1x, v - 1);
    let ans = t1.mul(t2).mul(cman);
    ans.ldexp(cexpt + t1e + t2e)
}

/// cephes `expm1` (xsf `unity.h`): rational approximation on [-0.5, 0.5].
fn cephes_expm1(x: f64) -> f64 {
    #[allow(clippy::excessive_precision)]
    const EP: [f64; 3] = [
        1.2617719307481059087798e-4,
        3.0299440770744196129956e-2,
        9.9999999999999999991025e-1,
    ];
    #[allow(clippy::excessive_precision)]
    const EQ: [f64; 4] = [
        3.0019850513866445504159e-6,
        2.5244834034968410419224e-3,
        2.2726554820815502876593e-1,
        2.0000000000000000000897e0,
    ];
    if !x.is_finite() {
        if x.is_nan() || x > 0.0 {
            return x;
        }
        return -1.0;
    }
    if !(-0.5..=0.5).contains(&x) {
        return x.exp() - 1.0;
    }
    let xx = x * x;
    let r = x * polevl(xx, &EP);
    let r = r / (polevl(xx, &EQ) - r);
    r + r
}

/// cephes `polevl`: Horner evaluation, highest degree first.
fn polevl(x: f64, coef: &[f64]) -> f64 {
    let mut it = coef.iter();
    let first = it.next().copied().unwrap_or(0.0);
    it.fold(first, |ans, &c| ans * x + c)
}

/// C `frexp`: x = m * 2^e with 0.5 <= |m| < 1 (0, inf and NaN pass through
/// with e = 0).
fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (x, bias) = if x.abs() < f64::MIN_POSITIVE {
        (x * f64::from_bits(0x43f0_0000_0000_0000), -64) // * 2^64
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7ff) as i64 - 1022;
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, e + bias)
}

/// C `ldexp` (musl's `scalbn`): x * 2^n, correctly rounded, including
/// subnormal results.
fn ldexp(x: f64, n: i64) -> f64 {
    let p1023 = f64::from_bits(0x7fe0_0000_0000_0000); // 2^1023
    let pm969 = f64::from_bits(0x0360_0000_0000_0000); // 2^-1022 * 2^53
    let (mut y, mut n) = (x, n);
    if n > 1023 {
        y *= p1023;
        n -= 1023;
        if n > 1023 {
            y *= p1023;
            n -= 1023;
            n = n.min(1023);
        }
    } else if n < -1022 {
        // Keep the final scale < 2^-53 away from double rounding in the
        // subnormal range.
        y *= pm969;
        n += 1022 - 53;
        if n < -1022 {
            y *= pm969;
            n += 1022 - 53;
            n = n.max(-1022);
        }
    }
    y * f64::from_bits(((0x3ff + n) as u64) << 52)
}

/// Double-double number (hi + lo, |lo| <= ulp(hi)/2): the subset of xsf's
/// `dd_real.h` (from the QD library, Hida/Li/Bailey) that `_smirnov` uses.
/// Each operation mirrors the corresponding C++ overload exactly, because
/// e.g. `dd + double` and `dd + dd` round differently.
#[derive(Clone, Copy, Debug)]
struct Dd {
    hi: f64,
    lo: f64,
}

impl From<f64> for Dd {
    fn from(hi: f64) -> Self {
        Dd { hi, lo: 0.0 }
    }
}

/// fl(a+b) and its error, assuming |a| >= |b|.
fn quick_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    (s, b - c)
}

/// fl(a+b) and its error (Knuth).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let c = s - a;
    let d = b - c;
    let e = s - c;
    (s, (a - e) + d)
}

/// fl(a*b) and its error via fused multiply-add.
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Dd {
    fn new(hi: f64, lo: f64) -> Self {
        Dd { hi, lo }
    }
    fn neg(self) -> Self {
        Dd::new(-self.hi, -self.lo)
    }
    /// dd + dd (IEEE-style bound, Briggs/Kahan).
    fn add(self, rhs: Dd) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs.hi);
        let (t1, t2) = two_sum(self.lo, rhs.lo);
        let (s1, s2) = quick_two_sum(s1, s2 + t1);
        let (s1, s2) = quick_two_sum(s1, s2 + t2);
        Dd::new(s1, s2)
    }
    /// dd + double.
    fn add_f(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, rhs);
        let (s1, s2) = quick_two_sum(s1, s2 + self.lo);
        Dd::new(s1, s2)
    }
    /// dd - dd.
    fn sub(self, rhs: Dd) -> Dd {
        self.add(rhs.neg())
    }
    /// dd - double.
    fn sub_f(self, rhs: f64) -> Dd {
        let (s1, s2) = two_sum(self.hi, -rhs);
        let (s1, s2) = quick_two_sum(s1, s2 + self.lo);
        Dd::new(s1, s2)
    }
    /// dd * dd.
    fn mul(self, rhs: Dd) -> Dd {
        let (p1, p2) = two_prod(self.hi, rhs.hi);
        let p2 = p2 + (self.hi * rhs.lo + self.lo * rhs.hi);
        let (p1, p2) = quick_two_sum(p1, p2);
        Dd::new(p1, p2)
    }
    /// double * dd.
    fn f_mul(lhs: f64, rhs: Dd) -> Dd {
        let (p1, e1) = two_prod(lhs, rhs.hi);
        let (p2, e2) = two_prod(lhs, rhs.lo);
        let (p1, e1) = quick_two_sum(p1, e2 + p2 + e1);
        Dd::new(p1, e1)
    }
    /// dd / dd (long division, three partial quotients).
    fn div(self, rhs: Dd) -> Dd {
        let q1 = self.hi / rhs.hi;
        let r = self.sub(Dd::f_mul(q1, rhs));
        let q2 = r.hi / rhs.hi;
        let r = r.sub(Dd::f_mul(q2, rhs));
        let q3 = r.hi / rhs.hi;
        let (q1, q2) = quick_two_sum(q1, q2);
        Dd::new(q1, q2).add_f(q3)
    }
    /// dd / double (promotes the double, as xsf does).
    fn div_f(self, rhs: f64) -> Dd {
        self.div(Dd::from(rhs))
    }
    fn eq_f(self, rhs: f64) -> bool {
        self.hi == rhs && self.lo == 0.0
    }
    fn ne_f(self, rhs: f64) -> bool {
        self.hi != rhs || self.lo != 0.0
    }
    fn lt_f(self, rhs: f64) -> bool {
        self.hi < rhs || (self.hi == rhs && self.lo < 0.0)
    }
    fn floor(self) -> Dd {
        let hi = self.hi.floor();
        if hi == self.hi {
            // High word is an integer already: round the low word.
            let (hi, lo) = quick_two_sum(hi, self.lo.floor());
            Dd::new(hi, lo)
        } else {
            Dd::new(hi, 0.0)
        }
    }
    fn ldexp(self, e: i64) -> Dd {
        Dd::new(ldexp(self.hi, e), ldexp(self.lo, e))
    }
    /// (b, l) with self = b * 2^l, 0.5 <= |b.hi| < 1, or |b.hi| == 1 with
    /// b.hi * b.lo < 0.
    fn frexp(self) -> (Dd, i64) {
        let (mut man, mut exponent) = frexp(self.hi);
        let mut b1 = ldexp(self.lo, -exponent);
        if man.abs() == 0.5 && man * b1 < 0.0 {
            man *= 2.0;
            b1 *= 2.0;
            exponent -= 1;
        }
        (Dd::new(man, b1), exponent)
    }
}

// Quick sanity checks; the scipy comparison lives in tests/.

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_ldexp_roundtrip() {
        for &x in &[1.0, 0.75, -3.5, 1e-310, 5e-324, 1.7e308, -2.2e-308] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m.abs()), "{x}: {m}");
            assert_eq!(ldexp(m, e), x);
        }
        assert_eq!(ldexp(1.0, -1074), 5e-324);
        assert_eq!(ldexp(1.0, -1075), 0.0);
        assert_eq!(ldexp(1.5, -1074), 1e-323); // ties-to-even: 1.5 ulp -> 2 ulp
        assert_eq!(ldexp(1.0, 1024), f64::INFINITY);
    }

    #[test]
    fn dd_arithmetic() {
        let third = Dd::from(1.0).div_f(3.0);
        let one = Dd::f_mul(3.0, third);
        assert!((one.hi - 1.0).abs() + one.lo.abs() < 1e-31);
    }

    #[test]
    fn edge_cases() {
        assert!(statistic(&[], &[1.0]).is_nan());
        assert!(ks_2samp(&[1.0], &[]).0.is_nan());
        assert!(ks_2samp(&[1.0, f64::NAN], &[2.0]).1.is_nan());
        assert_eq!(ks_2samp(&[1.0, 2.0], &[1.0, 2.0]), (0.0, 1.0));
        assert!(p_value(0, 3, 0.5).is_nan());
        assert!(p_value(3, 3, f64::NAN).is_nan());
        assert!(p_value(3, 3, 1.5).is_nan());
    }

    /// Run in a debug build too: arithmetic overflow would panic there.
    #[test]
    fn no_panics_on_extreme_inputs() {
        let sizes = [1usize, 2, 3, 140, 141, 10_000, 10_001, 1 << 40, usize::MAX];
        let ds = [
            0.0,
            1e-300,
            1e-9,
            1e-4,
            0.01,
            0.3,
            0.5,
            0.75,
            1.0 - 1e-16,
            1.0,
        ];
        for &n1 in &sizes {
            for &n2 in &sizes {
                for &d in &ds {
                    if n1.max(n2) <= 10_000 && n1.min(n2) > 3 && d > 0.0 && cfg!(debug_assertions) {
                        continue; // the exact path is slow unoptimized
                    }
                    let p = p_value(n1, n2, d);
                    assert!((0.0..=1.0).contains(&p), "{n1} {n2} {d}: {p}");
                }
            }
        }
        assert_eq!(attempt_exact(u64::MAX, u64::MAX - 1, 0.5).1, None);
        for n in [2u64, 10, 1_000_001, u64::MAX] {
            for x in [0.0, 1e-12, 0.3, 0.5, 1.0] {
                let v = smirnov(n, x);
                assert!((0.0..=1.0).contains(&v), "smirnov({n}, {x}) = {v}");
            }
        }
        assert!(kstwo_sf(0.5, 0.3).is_nan() && kstwo_sf(2.5, 0.3).is_nan());
    }

    /// The lattice sum equals the term-by-term sum over the range the asymptotic path sums
    /// (n from the lattice's threshold to 1e6, n x^2 from 2.2 to 370), and is taken there.
    #[test]
    fn the_lattice_sum_equals_the_term_by_term_sum() {
        let mut worst = 0.0f64;
        let grid = [40_000i64, 123_457, 500_000]
            .into_iter()
            .flat_map(|n| [2.2, 4.0, 8.0, 50.0, 250.0].map(|nx2| (n, nx2)));
        for (n, nx2) in grid.chain([(999_999, 8.0), (500_000, 364.0), (500_000, 369.9)]) {
            let x = (nx2 / n as f64).sqrt();
            let (alpha, nxfl) = mod_nx(n, x);
            let n_terms = n - nxfl - i64::from(alpha != 0.0) + 1;
            let first = pow4_d(1.0, -x, 1.0, 0.0, n).div_f(x);
            let lattice = lattice_sum(n, x, n_terms, first)
                .unwrap_or_else(|| panic!("no lattice sum at n={n}, n x^2={nx2}"));
            let terms = term_sum(n, x, (0, 1, n_terms), first);
            // Relative, and absolute in the subnormal tail (as the scipy comparison measures).
            let error = (lattice.hi - terms.hi).abs() / terms.hi.max(1e-300);
            worst = worst.max(error);
        }
        // Terms are evaluated to ~1e-15 (relative) at n = 1e6: neither sum is closer than that.
        assert!(worst <= 1e-14, "worst relative difference {worst:e}");
    }

    #[test]
    fn p_values_equal_scipy_on_every_branch() {
        let mut worst = (0.0f64, "");
        for &(branch, n1, n2, d_in, d_out, p) in super::vectors::P_CASES {
            let (d, q) = statistic_and_p_value(n1, n2, d_in);
            assert_eq!(d, d_out, "{branch} {n1}×{n2} d={d_in}: the D scipy reports");
            let error = if p == q {
                0.0
            } else {
                (p - q).abs() / p.abs().max(1e-300)
            };
            if error > worst.0 {
                worst = (error, branch);
            }
        }
        // scipy uses BLAS and long double in Durbin's and Pomeranz's matrices.
        assert!(worst.0 <= 1e-12, "worst relative error {worst:?}");
    }
}
