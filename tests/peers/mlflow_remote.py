"""The official MLflow client against a tracking server, for tests/remote.rs.

Usage:
  python mlflow_remote.py log URI EXPERIMENT   logs two runs the way people do; prints their ids
  python mlflow_remote.py more URI RUN_ID      logs three more points of `loss` and a tag
  python mlflow_remote.py rename URI RUN_ID    renames the run there, as someone would in the UI
  python mlflow_remote.py read URI DEST EXPERIMENT...
      prints every active run of the experiments (params, tags, every metric point, inputs,
      artifacts by path and size) and every registered model version, as JSON; downloads each
      run's artifacts to DEST/runs/<run id>/ and each version's files to
      DEST/models/<name>/<version>/, for the test to compare byte for byte.
Any failure of the client raises and exits non-zero.
"""

import json
import math
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag


def log(client: MlflowClient, experiment: str) -> dict:
    exp = client.create_experiment(experiment)
    ids = []
    for i, (lr, status) in enumerate([(0.1, "FINISHED"), (0.01, "FAILED")]):
        run = client.create_run(exp, run_name=f"trial-{i}", tags={"team": "remote", "note": "R&D"},
                                start_time=1_700_000_000_000 + i)
        rid = run.info.run_id
        points = [Metric("loss", 1.0 / (s + 1), 1_700_000_000_100 + s, s) for s in range(40)]
        points.append(Metric("acc", 0.9 + i / 100, 1_700_000_000_500, 0))
        points.append(Metric("gap", math.nan, 1_700_000_000_600, 0))
        points.append(Metric("bound", math.inf, 1_700_000_000_700, 0))
        client.log_batch(rid, metrics=points, params=[Param("lr", str(lr)), Param("depth", "4")],
                         tags=[RunTag("stage", "dev")])
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "summary.txt"), "w") as f:
                f.write(f"run {i}\n")
            os.makedirs(os.path.join(d, "plots"))
            with open(os.path.join(d, "plots", "R&D loss curve.csv"), "wb") as f:
                f.write(os.urandom(3000 + i))
            client.log_artifacts(rid, d)
        client.set_terminated(rid, status=status, end_time=1_700_000_009_000 + i)
        ids.append(rid)
    return {"experiment_id": exp, "runs": ids}


def more(client: MlflowClient, run_id: str) -> dict:
    points = [Metric("loss", 0.001 * s, 1_700_000_001_000 + s, 100 + s) for s in range(3)]
    client.log_batch(run_id, metrics=points, tags=[RunTag("reviewed", "yes")])
    return {"run": run_id}


def rename(client: MlflowClient, run_id: str) -> dict:
    client.update_run(run_id, name="renamed-there")
    return {"run": run_id}


def walk(client: MlflowClient, run_id: str, path=None) -> list:
    out = []
    for f in client.list_artifacts(run_id, path):
        if f.is_dir:
            out.extend(walk(client, run_id, f.path))
        else:
            out.append({"path": f.path, "size": f.file_size})
    return out


def value(x: float):
    return "NaN" if math.isnan(x) else x


def read(client: MlflowClient, dest: str, experiments: list) -> dict:
    out = {"experiments": {}, "models": {}}
    for name in experiments:
        exp = client.get_experiment_by_name(name)
        runs = []
        if exp is not None:
            for run in client.search_runs([exp.experiment_id], max_results=1000):
                rid = run.info.run_id
                metrics = {}
                for key in run.data.metrics:
                    metrics[key] = sorted(
                        [m.step, m.timestamp, value(m.value)]
                        for m in client.get_metric_history(rid, key)
                    )
                files = walk(client, rid)
                if files:
                    target = os.path.join(dest, "runs", rid)
                    os.makedirs(target, exist_ok=True)
                    client.download_artifacts(rid, "", target)
                runs.append({
                    "run_id": rid,
                    "run_name": run.info.run_name,
                    "status": run.info.status,
                    "user_id": run.info.user_id,
                    "start_time": run.info.start_time,
                    "end_time": run.info.end_time,
                    "params": run.data.params,
                    "tags": run.data.tags,
                    "metrics": metrics,
                    "inputs": sorted([i.dataset.name, i.dataset.digest] for i in run.inputs.dataset_inputs),
                    "artifacts": sorted(files, key=lambda f: f["path"]),
                })
        out["experiments"][name] = runs
    for model in client.search_registered_models():
        versions = []
        for found in client.search_model_versions(f"name = '{model.name}'"):
            # Searches leave aliases out; a get has them.
            v = client.get_model_version(model.name, found.version)
            target = os.path.join(dest, "models", model.name, v.version)
            os.makedirs(target, exist_ok=True)
            mlflow.artifacts.download_artifacts(artifact_uri=v.source, dst_path=target)
            versions.append({"version": v.version, "source": v.source, "run_id": v.run_id,
                             "description": v.description or "", "aliases": sorted(v.aliases),
                             "tags": v.tags})
        out["models"][model.name] = sorted(versions, key=lambda v: int(v["version"]))
    return out


def main() -> None:
    mode, uri = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    if mode == "log":
        result = log(client, sys.argv[3])
    elif mode == "more":
        result = more(client, sys.argv[3])
    elif mode == "rename":
        result = rename(client, sys.argv[3])
    elif mode == "read":
        result = read(client, sys.argv[3], sys.argv[4:])
    else:
        sys.exit(f"unknown mode {mode}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
