"""The drift benchmark's peer side: times and peak memory of each contender, each run as its
own child process so its peak resident memory is its own (ru_maxrss of the waited child).

    drift_bench.py LATHE_BIN REF.parquet CUR.parquet [--evidently]

Contenders: `lathe drift --json` (every drift and data quality metric, all columns; the median
of three runs); scipy
(`ks_2samp` and `wasserstein_distance` per numerical column, chi-squared per categorical one,
and a numpy PSI on 10 quantile bins, as a hand-written scipy check would); Evidently 0.7.23's
DataDriftPreset (its default tests). Prints one JSON object: seconds and peak MiB of each.
"""
import json
import subprocess
import sys
import time

SCIPY = r'''
import sys, numpy as np, pandas as pd
from scipy import stats
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
out = {}
for col in ref.columns:
    r, c = ref[col].dropna(), cur[col].dropna()
    if r.dtype.kind == "f":
        r, c = r.to_numpy(), c.to_numpy()
        ks = stats.ks_2samp(r, c)
        w = stats.wasserstein_distance(r, c) / max(np.std(r, ddof=1), 1e-3)
        edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)))
        p = np.histogram(r, edges)[0] / len(r) + 1e-4
        q = np.histogram(c, edges)[0] / len(c) + 1e-4
        out[col] = (ks.pvalue, w, float(np.sum((q - p) * np.log(q / p))))
    else:
        rv, cv = r.value_counts(), c.value_counts()
        cats = sorted(set(rv.index) | set(cv.index))
        rc = np.array([rv.get(k, 0) for k in cats], float); cc = np.array([cv.get(k, 0) for k in cats], float)
        out[col] = stats.chisquare(cc, rc / rc.sum() * cc.sum()).pvalue
print(len(out))
'''

EVIDENTLY = r'''
import sys, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
print(len(snapshot.dict()["metrics"]))
'''


# Runs a command and prints the peak resident memory of it alone (ru_maxrss of this
# wrapper's only child, in KiB on Linux).
WRAPPER = r'''
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
if proc.returncode != 0:
    sys.exit(proc.stderr.decode()[-2000:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
'''


def measure(args):
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{args[0]} failed: {proc.stderr.decode()}")
    return {"seconds": seconds, "peak_mib": int(proc.stdout) / 1024}


def main():
    lathe, ref, cur = sys.argv[1:4]
    # Lathe's run is short enough for the machine's noise to matter: the median of three.
    runs = sorted((measure([lathe, "drift", ref, cur, "--json"]) for _ in range(3)),
                  key=lambda m: m["seconds"])
    result = {"lathe": runs[1]}
    result["scipy"] = measure([sys.executable, "-c", SCIPY, ref, cur])
    if "--evidently" in sys.argv:
        result["evidently"] = measure([sys.executable, "-c", EVIDENTLY, ref, cur])
    json.dump(result, sys.stdout)


main()
