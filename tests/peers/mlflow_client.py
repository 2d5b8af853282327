"""Drives a Lathe tracking server with the official MLflow client, the way people log today.

Run by tests/mlflow.rs with MLFLOW_TRACKING_URI pointing at `lathe server`. Prints one JSON
object with the ids it created, for the test to check through the `lathe` CLI. Any failure of
the client raises and exits non-zero.
"""

import json
import math
import os
import sys
import tempfile

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

import mlflow_compat

MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.0
  sklearn:
    pickled_model: model.pkl
    sklearn_version: 1.3.0
signature:
  inputs: '[{"type": "double", "name": "sepal_length"}, {"type": "double", "name": "sepal_width"}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
"""


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[list[float]]) -> list[list[float]]:
        return model_input


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def main():
    client = MlflowClient()
    out = {}

    # Experiments: create, get by name, a duplicate is refused with MLflow's error code.
    exp_id = client.create_experiment("churn", tags={"team": "growth"})
    check(client.get_experiment_by_name("churn").experiment_id == exp_id, "get-by-name")
    check(client.get_experiment_by_name("no-such-experiment") is None, "missing experiment is None")
    try:
        client.create_experiment("churn")
        raise AssertionError("a duplicate experiment was accepted")
    except MlflowException as e:
        check(e.error_code == "RESOURCE_ALREADY_EXISTS", f"duplicate code: {e.error_code}")
    mlflow.set_experiment("churn")
    out["experiment_id"] = exp_id

    # Runs with the fluent API: params, single and batched metrics, tags, artifacts.
    run_ids = []
    for i, (lr, depth) in enumerate([(0.1, 3), (0.01, 5), (0.001, 8)]):
        with mlflow.start_run(run_name=f"trial-{i}") as run:
            mlflow.log_param("lr", lr)
            mlflow.log_params({"depth": depth, "model": "tree" if depth < 8 else "forest"})
            mlflow.set_tag("stage", "tuning")
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1) + lr, step=step)
            mlflow.log_metrics({"auc": 0.7 + 0.05 * i, "f1": 0.6 + 0.04 * i})
            run_ids.append(run.info.run_id)
    out["run_ids"] = run_ids

    # A batch through the client API, with a NaN value.
    batch_run = client.create_run(exp_id, run_name="batch")
    metrics = [Metric("curve", float(s) / 10, 1700000000000 + s, s) for s in range(1000)]
    client.log_batch(
        batch_run.info.run_id,
        metrics=metrics,
        params=[Param("optimizer", "adam")],
        tags=[RunTag("kind", "batch")],
    )
    client.log_metric(batch_run.info.run_id, "odd", math.nan, step=0)
    # Artifacts: a file and a directory (with a model that is then registered).
    with tempfile.TemporaryDirectory() as tmp:
        notes = os.path.join(tmp, "notes.txt")
        with open(notes, "w") as f:
            f.write("hello from the mlflow client\n")
        client.log_artifact(batch_run.info.run_id, notes)
        model_dir = os.path.join(tmp, "model")
        os.makedirs(os.path.join(model_dir, "extra"))
        with open(os.path.join(model_dir, "MLmodel"), "w") as f:
            f.write(MLMODEL)
        with open(os.path.join(model_dir, "model.pkl"), "wb") as f:
            f.write(b"\x80\x04not really a pickle")
        with open(os.path.join(model_dir, "extra", "README.md"), "w") as f:
            f.write("# model\n")
        client.log_artifacts(batch_run.info.run_id, model_dir, artifact_path="model")
    client.set_terminated(batch_run.info.run_id)
    out["batch_run_id"] = batch_run.info.run_id

    # Reading back: artifacts listed and downloaded, history, a logged param cannot change.
    names = sorted(f.path for f in client.list_artifacts(batch_run.info.run_id))
    check(names == ["model", "notes.txt"], f"artifact listing: {names}")
    inner = sorted(f.path for f in client.list_artifacts(batch_run.info.run_id, "model"))
    check(inner == ["model/MLmodel", "model/extra", "model/model.pkl"], f"model listing: {inner}")
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(batch_run.info.run_id, "notes.txt", tmp)
        with open(local) as f:
            check(f.read() == "hello from the mlflow client\n", "downloaded artifact")
        folder = client.download_artifacts(batch_run.info.run_id, "model", tmp)
        check(os.path.exists(os.path.join(folder, "extra", "README.md")), "downloaded folder")
    history = client.get_metric_history(batch_run.info.run_id, "curve")
    check(len(history) == 1000, f"history length {len(history)}")
    check([m.step for m in history] == list(range(1000)), "history order")
    check(math.isnan(client.get_run(batch_run.info.run_id).data.metrics["odd"]), "NaN kept")
    try:
        client.log_param(run_ids[0], "lr", 99)
        raise AssertionError("a changed param was accepted")
    except MlflowException as e:
        check(e.error_code == "INVALID_PARAMETER_VALUE", f"param change code: {e.error_code}")

    # Search with filters and ordering.
    found = client.search_runs(
        [exp_id], "params.model = 'tree' and metrics.auc > 0.6", order_by=["metrics.auc DESC"]
    )
    check([r.info.run_id for r in found] == [run_ids[1], run_ids[0]], "filtered, ordered search")
    tagged = client.search_runs([exp_id], "tags.stage = 'tuning'", order_by=["params.lr ASC"])
    check([r.info.run_name for r in tagged] == ["trial-2", "trial-1", "trial-0"], "order by param")
    page = client.search_runs([exp_id], "", max_results=2)
    check(len(page) == 2 and page.token, "first page has a token")
    rest = client.search_runs([exp_id], "", max_results=2, page_token=page.token)
    check(len(rest) == 2 and not rest.token, "second page ends")
    check(
        len({r.info.run_id for r in page} | {r.info.run_id for r in rest}) == 4, "pages do not overlap"
    )
    try:
        client.search_runs([exp_id], "metrics.auc >> 1")
        raise AssertionError("a bad filter was accepted")
    except MlflowException as e:
        check(e.error_code == "INVALID_PARAMETER_VALUE", f"bad filter code: {e.error_code}")

    # Registry: a version from the run's artifact, an alias, tags.
    version = mlflow.register_model(f"runs:/{batch_run.info.run_id}/model", "churn-model")
    check(version.version == "1", f"first version is 1, got {version.version}")
    client.set_registered_model_alias("churn-model", "champion", version.version)
    client.set_model_version_tag("churn-model", version.version, "validated", "yes")
    by_alias = client.get_model_version_by_alias("churn-model", "champion")
    check(by_alias.version == "1" and by_alias.run_id == batch_run.info.run_id, "alias lookup")
    check(client.get_registered_model("churn-model").aliases == {"champion": "1"}, "aliases")
    out["model"] = "churn-model"
    out["model_source"] = by_alias.source

    # MLflow 3's way: log a model (a logged model with its own artifacts) and register it.
    mlflow.set_experiment("serving")
    with mlflow.start_run(run_name="pyfunc") as run:
        info = mlflow.pyfunc.log_model(
            name="echo",
            python_model=Echo(),
            registered_model_name="echo-model",
            input_example=[[1.0, 2.0]],
        )
    loaded = mlflow.pyfunc.load_model("models:/echo-model/1")
    check(loaded.predict([[3.0, 4.0]]) == [[3.0, 4.0]], "the registered model loads and predicts")
    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    check([o.model_id for o in outputs] == [info.model_id], f"run outputs: {outputs}")
    out["echo_model_id"] = info.model_id
    out["echo_run_id"] = run.info.run_id

    artifact_names(client)
    out["compat"] = mlflow_compat.run(client)

    json.dump(out, sys.stdout)


# Every printable ASCII character in a name, and some beyond ASCII, must reach the store as
# itself: the path is percent-decoded as a path, not as a query ('&' and '=' are letters there,
# '+' is not a space). Left out: '/' (the separator), and '#' and '?', which the client puts in
# the URL unescaped, so they end its path for every server (MLflow's too); nor does the client
# escape '%', so a name holding '%2F' reaches every server as a '/'.
ODD_NAMES = [f"c{c}e.txt" for c in map(chr, range(0x20, 0x7F)) if c not in "/#?"] + [
    "R&D notes.txt",
    "R",
    "a+b=c;d,e.txt",
    "100%.txt",
    "ünïcødé — 日本語.txt",
    "Cafe\u0301.txt",
    "😀.txt",
]


def artifact_names(client):
    run = client.create_run(client.create_experiment("artifact-names"), run_name="odd-names")
    rid = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(ODD_NAMES):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(f"{i}:{name}")
        client.log_artifacts(rid, tmp, artifact_path="reports")
    listed = sorted(f.path for f in client.list_artifacts(rid, "reports"))
    wanted = sorted(f"reports/{name}" for name in ODD_NAMES)
    missing = sorted(set(wanted) - set(listed))
    extra = sorted(set(listed) - set(wanted))
    check(not missing and not extra, f"odd names: missing {missing}, unexpected {extra}")
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(ODD_NAMES):
            local = client.download_artifacts(rid, f"reports/{name}", tmp)
            with open(local) as f:
                got = f.read()
            check(got == f"{i}:{name}", f"{name!r} came back as {got!r}")


if __name__ == "__main__":
    main()
