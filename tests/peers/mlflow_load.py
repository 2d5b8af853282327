"""The official MLflow client's own speed against a server, for the tracking benchmark.

Usage: mlflow_load.py URI [RUN_ID]. Without RUN_ID it creates a run (a null server that answers
`{}` to everything cannot). Logs BATCHES log_batch calls of 1000 points and SINGLES log_metric
calls, and prints {"points_per_s": …, "batch_ms_median": …, "log_metric_ms_median": …}.
"""

import json
import statistics
import sys
import time

from mlflow import MlflowClient
from mlflow.entities import Metric

BATCHES = 20
SINGLES = 200


def main():
    client = MlflowClient(tracking_uri=sys.argv[1])
    if len(sys.argv) > 2:
        run_id = sys.argv[2]
    else:
        experiment = client.create_experiment(f"load-{time.time_ns()}")
        run_id = client.create_run(experiment).info.run_id
    now = int(time.time() * 1000)
    batches = [
        [Metric("loss", 1.0 / (s + 1), now + s, s) for s in range(b * 1000, (b + 1) * 1000)]
        for b in range(BATCHES)
    ]
    batch_times = []
    start = time.perf_counter()
    for metrics in batches:
        t = time.perf_counter()
        client.log_batch(run_id, metrics=metrics)
        batch_times.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    single_times = []
    for s in range(SINGLES):
        t = time.perf_counter()
        client.log_metric(run_id, "single", float(s), step=s)
        single_times.append(time.perf_counter() - t)
    json.dump(
        {
            "points_per_s": BATCHES * 1000 / total,
            "batch_ms_median": statistics.median(batch_times) * 1000,
            "log_metric_ms_median": statistics.median(single_times) * 1000,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
