"""The drift oracle: scipy's and Evidently's values for the cases tests/monitoring.rs sends.

Reads JSON from stdin: a list of {"name", "reference", "current" (CSV paths), "features":
[{"name", "type": "numerical"|"categorical"}]}. Writes one JSON object: per case, per feature,

- "scipy": what scipy 1.17 computes on the same data by the definitions in docs/monitoring.md
  (Azure ML's): KS statistic and p-value (ks_2samp, method auto), Wasserstein distance over
  the reference's sample std (ddof=1), the equal-width bins (edges and counts, recomputed here
  with numpy from the definition), Jensen-Shannon distance base 2 on those counts
  (scipy.spatial.distance.jensenshannon), PSI with +1 smoothing; for categories their counts,
  chi-squared goodness of fit (scipy.stats.chisquare), JS, PSI and Chebyshev distance
  (scipy.spatial.distance.chebyshev) on the shares;
- "evidently": Evidently 0.7.23's stattests of the same names (jensenshannon, psi,
  wasserstein, ks, chisquare), with their own binning.

Values are read with pandas; a category is a value's text (an integer 3 is "3"). Nulls, NaN
and infinities are left out per column, as Lathe does.
"""
import json
import math
import sys
import warnings

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance
from evidently.legacy.core import ColumnType
from evidently.legacy.calculations.stattests import (chi_stat_test, jensenshannon_stat_test,
                                                     ks_stat_test, psi_stat_test,
                                                     wasserstein_stat_test)

warnings.simplefilter("ignore")


def finite(x):
    """JSON has no inf or NaN: write them as text."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def psi(rc, cc):
    """Azure ML's PSI: +1 per bin, natural log."""
    k = len(rc)
    p = (np.asarray(rc, float) + 1) / (sum(rc) + k)
    q = (np.asarray(cc, float) + 1) / (sum(cc) + k)
    return float(np.sum((q - p) * np.log(q / p)))


def numerical(r, c):
    r = pd.to_numeric(r, errors="coerce").astype(float)
    c = pd.to_numeric(c, errors="coerce").astype(float)
    r = r[np.isfinite(r)].to_numpy()
    c = c[np.isfinite(c)].to_numpy()
    ks = stats.ks_2samp(r, c)
    std = np.std(r, ddof=1) if len(r) > 1 else float("nan")
    norm = 0.001 if math.isnan(std) else max(std, 0.001)
    lo, hi = min(r.min(), c.min()), max(r.max(), c.max())
    if lo == hi:
        d = 0.005 if lo == 0 else abs(lo * 0.005)
        edges = np.array([lo - d, lo + d])
    else:
        k = max(math.ceil(math.log2(min(len(r), len(c))) + 1), 1)
        w = (hi - lo) / k
        edges = np.array([lo + i * w for i in range(k)] + [hi])
    rc, _ = np.histogram(r, edges)
    cc, _ = np.histogram(c, edges)
    return {
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "wasserstein": float(stats.wasserstein_distance(r, c)),
        "normalized_wasserstein": float(stats.wasserstein_distance(r, c) / norm),
        "edges": [float(e) for e in edges],
        "reference_counts": [int(x) for x in rc],
        "current_counts": [int(x) for x in cc],
        "jensen_shannon": float(distance.jensenshannon(rc, cc, base=2)),
        "psi": psi(rc, cc),
    }


def text(values):
    return values.dropna().map(lambda v: str(v))


def categorical(r, c):
    r, c = text(r), text(c)
    rv, cv = r.value_counts(), c.value_counts()
    cats = sorted(set(rv.index) | set(cv.index))
    rc = np.array([int(rv.get(k, 0)) for k in cats])
    cc = np.array([int(cv.get(k, 0)) for k in cats])
    exp = rc / rc.sum() * cc.sum()
    chi = stats.chisquare(cc, exp) if len(cats) > 1 else None
    return {
        "categories": {k: [int(a), int(b)] for k, a, b in zip(cats, rc, cc)},
        "chi_squared_statistic": finite(chi.statistic) if chi else 0.0,
        "chi_squared_pvalue": finite(chi.pvalue) if chi else 1.0,
        "jensen_shannon": float(distance.jensenshannon(rc, cc, base=2)),
        "psi": psi(rc, cc),
        "chebyshev": float(distance.chebyshev(rc / rc.sum(), cc / cc.sum())),
    }


def evidently(r, c, kind):
    if kind == "numerical":
        r = pd.to_numeric(r, errors="coerce").astype(float)
        c = pd.to_numeric(c, errors="coerce").astype(float)
        tests = [("jensenshannon", jensenshannon_stat_test), ("psi", psi_stat_test),
                 ("wasserstein", wasserstein_stat_test), ("ks", ks_stat_test)]
        column_type = ColumnType.Numerical
    else:
        r, c = text(r), text(c)
        tests = [("jensenshannon", jensenshannon_stat_test), ("psi", psi_stat_test),
                 ("chisquare", chi_stat_test)]
        column_type = ColumnType.Categorical
    r = r.replace([np.inf, -np.inf], np.nan).dropna()
    c = c.replace([np.inf, -np.inf], np.nan).dropna()
    out = {}
    for name, test in tests:
        out[name] = finite(test(r, c, column_type, None).drift_score)
    return out


def main():
    cases = json.load(sys.stdin)
    answer = {}
    for case in cases:
        # round_trip: pandas' default parser can be 1 ulp off the nearest double.
        ref = pd.read_csv(case["reference"], float_precision="round_trip")
        cur = pd.read_csv(case["current"], float_precision="round_trip")
        features = {}
        for f in case["features"]:
            r, c = ref[f["name"]], cur[f["name"]]
            compute = numerical if f["type"] == "numerical" else categorical
            features[f["name"]] = {"scipy": compute(r, c), "evidently": evidently(r, c, f["type"])}
        answer[case["name"]] = features
    json.dump(answer, sys.stdout)


main()
