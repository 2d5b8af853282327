"""Counts rows and missing values per column of a CSV file; writes report.json."""
import argparse
import csv
import json
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--min-rows", type=int, default=1)
parser.add_argument("--report", required=True)
args = parser.parse_args()

with open(args.data, newline="") as f:
    rows = list(csv.DictReader(f))
if len(rows) < args.min_rows:
    sys.exit(f"only {len(rows)} rows, fewer than --min-rows {args.min_rows}")
columns = list(rows[0].keys()) if rows else []
missing = {c: sum(1 for r in rows if not r[c]) for c in columns}
os.makedirs(args.report, exist_ok=True)
with open(os.path.join(args.report, "report.json"), "w") as f:
    json.dump({"rows": len(rows), "missing": missing}, f, indent=2)
print(f"{len(rows)} rows, {len(columns)} columns")
for c, n in missing.items():
    print(f"  {c}: {n} missing")
try:
    import mlflow  # logs to this step's run: Lathe sets MLFLOW_TRACKING_URI and MLFLOW_RUN_ID
    with mlflow.start_run():
        mlflow.log_metric("rows", len(rows))
        mlflow.log_param("min_rows", args.min_rows)
except ImportError:
    print("mlflow is not installed here; nothing logged")
