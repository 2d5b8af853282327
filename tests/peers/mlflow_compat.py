"""What MLflow's own server tests found Lathe answering differently from MLflow 3.17.2's server,
checked with the official client (and plain HTTP where the client hides the answer).

Imported by mlflow_client.py, in the same process (importing mlflow takes seconds), with
MLFLOW_TRACKING_URI pointing at `lathe server`: `run()` returns the names of the checks that
ran; any difference raises.
"""

import os
import tempfile

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelInput
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.rest_store import RestStore


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def refused(call, code, fragment):
    try:
        call()
    except MlflowException as e:
        check(e.error_code == code, f"{fragment}: code {e.error_code}: {e.message}")
        check(fragment in e.message, f"'{fragment}' not in '{e.message}'")
        return
    raise AssertionError(f"accepted, but MLflow refuses: {fragment}")


def registered_model_search(client, base):
    # The client adds ``tag.`mlflow.prompt.is_prompt` != 'true'``: a model without the tag matches.
    before = {m.name for m in client.search_registered_models()}
    for name in ("plain-model", "other-model"):
        client.create_registered_model(name)
    # A prompt, as MLflow's prompt registry stores one (the client refuses to make it a model).
    made = requests.post(
        f"{base}/api/2.0/mlflow/registered-models/create",
        json={"name": "a-prompt", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
    )
    check(made.status_code == 200, made.text)
    names = sorted({m.name for m in client.search_registered_models()} - before)
    check(names == ["other-model", "plain-model"], f"search_registered_models: {names}")
    names = [m.name for m in client.search_registered_models("name = 'plain-model'")]
    check(names == ["plain-model"], f"filtered: {names}")
    prompts = [
        m.name
        for m in client.search_registered_models("tags.`mlflow.prompt.is_prompt` = 'true'")
    ]
    check(prompts == ["a-prompt"], f"prompts on request: {prompts}")


def model_version_sources(client, base):
    exp = client.create_experiment("sources")
    run = client.create_run(exp)
    client.create_registered_model("sourced")
    # A runs:/ source names its run by id: not looked up, as MLflow does.
    v = client.create_model_version("sourced", "runs:/0123456789abcdef/model", run_id="0123456789abcdef")
    check(v.version == "1", f"unknown run in runs:/ accepted: {v}")
    url = f"{base}/api/2.0/mlflow/model-versions/create"
    for source, run_id, fragment in [
        ("runs:/abc/model", "def", "run_id request parameter must identify"),
        ("s3://bucket/../etc", None, "without relative path references"),
        ("s3://bucket/x%00y", None, "without relative path references"),
        ("s3://bucket/..%2fsecret", None, "without relative path references"),
        ("/etc/passwd", None, "To use a local path as a model version source"),
        (f"{run.info.artifact_uri}/../../other", run.info.run_id, "without relative path"),
    ]:
        body = {"name": "sourced", "source": source}
        if run_id:
            body["run_id"] = run_id
        answer = requests.post(url, json=body)
        check(answer.status_code == 400, f"{source}: {answer.status_code} {answer.text}")
        check(answer.json()["error_code"] == "INVALID_PARAMETER_VALUE", f"{source}: {answer.text}")
        check(fragment in answer.json()["message"], f"{source}: {answer.text}")
    ok = requests.post(
        url,
        json={"name": "sourced", "source": f"{run.info.artifact_uri}/model", "run_id": run.info.run_id},
    )
    check(ok.status_code == 200, f"a source under its run: {ok.text}")


def logged_models(client):
    exp = client.create_experiment("logged")
    run = client.create_run(exp)
    model = client.create_logged_model(exp)
    other = client.create_logged_model(exp)
    client.log_metric(
        run.info.run_id, "acc", 0.5, timestamp=123456789, step=1,
        dataset_name="eval", dataset_digest="d1", model_id=model.model_id,
    )
    got = client.get_logged_model(model.model_id).metrics
    check(len(got) == 1, f"model metrics: {got}")
    m = got[0]
    check(
        (m.key, m.value, m.step, m.dataset_name, m.dataset_digest, m.model_id, m.run_id)
        == ("acc", 0.5, 1, "eval", "d1", model.model_id, run.info.run_id),
        f"model metric: {m}",
    )
    found = client.search_logged_models(
        experiment_ids=[exp], datasets=[{"dataset_name": "eval", "dataset_digest": "d1"}]
    )
    check([f.model_id for f in found] == [model.model_id], f"datasets filter: {found}")
    both = client.search_logged_models(experiment_ids=[exp])
    check({f.model_id for f in both} == {model.model_id, other.model_id}, "no filter: both")
    # Inputs of a run: datasets and models.
    dataset = Dataset(name="d", digest="x", source_type="t", source="s")
    client.log_inputs(
        run.info.run_id,
        datasets=[DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])],
        models=[LoggedModelInput(model_id=model.model_id)],
    )
    inputs = client.get_run(run.info.run_id).inputs
    check([i.model_id for i in inputs.model_inputs] == [model.model_id], f"model inputs: {inputs}")
    # A version made from a logged model is listed on it, as MLflow writes the list.
    client.create_registered_model("from-logged")
    for _ in range(2):
        client.create_model_version("from-logged", model.artifact_location, model_id=model.model_id)
    tag = client.get_logged_model(model.model_id).tags["mlflow.modelVersions"]
    check(
        tag == '[{"name": "from-logged", "version": 1}, {"name": "from-logged", "version": 2}]',
        f"mlflow.modelVersions: {tag}",
    )
    # Created from a run this server does not know: accepted, as in MLflow.
    elsewhere = client.create_logged_model(exp, source_run_id="run-logged-elsewhere")
    check(elsewhere.source_run_id == "run-logged-elsewhere", "unknown source run kept")
    # Deleting a tag that is not there: 404.
    refused(
        lambda: client.delete_logged_model_tag(model.model_id, "nope"),
        "RESOURCE_DOES_NOT_EXIST",
        "No tag with key 'nope'",
    )


def artifacts(client, base):
    exp = client.create_experiment("downloads")
    run = client.create_run(exp)
    rid = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in [("a.json", "{}"), ("c.png", "png"), ("b.pkl", "pkl"), ("MLmodel", "x: 1")]:
            with open(os.path.join(tmp, name), "w") as f:
                f.write(body)
            client.log_artifact(rid, os.path.join(tmp, name), "dir")
    root = run.info.artifact_uri.replace("mlflow-artifacts:", f"{base}/api/2.0/mlflow-artifacts/artifacts")
    for name, kind in [("a.json", "text/plain"), ("c.png", "image/png"), ("b.pkl", "application/octet-stream"), ("MLmodel", "text/plain")]:
        for url, params in [
            (f"{root}/dir/{name}", None),
            (f"{base}/get-artifact", {"run_id": rid, "path": f"dir/{name}"}),
        ]:
            answer = requests.get(url, params=params, headers={"Accept": "text/html"})
            answer.raise_for_status()
            check(answer.headers["Content-Type"] == kind, f"{url} {name}: {answer.headers}")
            check(answer.headers["X-Content-Type-Options"] == "nosniff", f"{name}: nosniff")
            check(
                answer.headers["Content-Disposition"] == f"attachment; filename={name}",
                f"{name}: {answer.headers['Content-Disposition']}",
            )
    # The whole run at once: the client lists the path ".".
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path=".", dst_path=tmp)
        check(os.path.exists(os.path.join(local, "dir", "a.json")), f"download '.': {os.listdir(local)}")
    # A logged model's files are served, under /api and /ajax-api.
    model = client.create_logged_model(exp)
    client.log_model_artifact(model.model_id, os.path.abspath(__file__))
    for prefix in ("api", "ajax-api"):
        answer = requests.get(
            f"{base}/{prefix}/2.0/mlflow/logged-models/{model.model_id}/artifacts/files",
            params={"artifact_file_path": os.path.basename(__file__)},
        )
        check(answer.status_code == 200 and b"mlflow_compat" in answer.content, f"{prefix}: {answer.status_code}")
        check(answer.headers["Content-Type"] == "text/plain", f"{prefix}: {answer.headers}")


def validation(client, base):
    run = client.create_run("0")
    url = f"{base}/api/2.0/mlflow"
    for endpoint, body, fragment in [
        ("runs/log-batch", {"run_id": run.info.run_id, "metrics": [{"key": "m", "value": 1}]},
         "Missing value for required parameter 'metrics[0].timestamp'"),
        ("runs/log-batch", {"run_id": run.info.run_id, "params": "foo"},
         "Invalid value \"foo\" for parameter 'params' supplied"),
        ("runs/log-metric", {"run_id": 31, "key": "m", "value": 1, "timestamp": 1},
         "Invalid value 31 for parameter 'run_id' supplied"),
        ("experiments/create", {"name": 123}, "Invalid value 123 for parameter 'name' supplied"),
        ("experiments/create", {}, "Missing value for required parameter 'name'."),
    ]:
        answer = requests.post(f"{url}/{endpoint}", json=body)
        check(answer.status_code == 400, f"{endpoint}: {answer.status_code}")
        check(fragment in answer.json()["message"], f"{endpoint}: {answer.text}")
        check("/" not in answer.json()["message"].split("parameter")[0], f"a path shown: {answer.text}")
    answer = requests.get(f"{url}/artifacts/list", params={"run_id": run.info.run_id, "path": "../x"})
    check(answer.status_code == 400 and answer.json()["message"] == "Invalid path", answer.text)


def experiments_and_version(client, base):
    exp = client.create_experiment("relative", artifact_location="my_location")
    location = client.get_experiment(exp).artifact_location
    check(os.path.isabs(location) and location.endswith("/my_location"), f"location: {location}")
    check(requests.get(f"{base}/version").text == "3.3.2", "version")
    version = RestStore._get_server_version(client._tracking_client.store.get_host_creds())
    check(str(version) == "3.3.2", f"client reads the version: {version}")
    info = requests.get(f"{base}/api/3.0/mlflow/server-info").json()
    check(info["multipart_uploads_enabled"] is False, f"server-info: {info}")


def run(client):
    base = os.environ["MLFLOW_TRACKING_URI"]
    done = []
    for check_ in (registered_model_search, model_version_sources, logged_models, artifacts,
                   validation, experiments_and_version):
        args = (client, base) if check_.__code__.co_argcount == 2 else (client,)
        check_(*args)
        done.append(check_.__name__)
    return done
