"""A Lathe Python worker: one process of an online deployment, answering one request at a time.

Started by Lathe (core/src/serving/python.rs) as `python -c <this file> MODE MODEL_DIR [CODE_DIR
SCRIPT]` inside the deployment's environment. MODE is `pyfunc` (an MLflow model, scored by
MLflow's own scoring function, so every body shape and error is MLflow's) or `script` (an Azure
ML scoring script: `init()` once, `run(raw_data)` per request, AZUREML_MODEL_DIR set; for a
batch deployment `run(mini_batch)`, as Azure's batch endpoints call it).

Frames on stdin and stdout: a JSON header line, then `length` bytes of body.
  request:  {"op": "invocations" | "score" | "batch", "content_type": "...", "length": N}
A batch request's body is {"files": [path, ...]} (run() gets the list of paths) or
{"table": path of a CSV file} (run() gets its rows as a pandas DataFrame); the answer is
{"rows": [...]}: one element per row run() returned (a DataFrame's rows as objects).
  answer:   {"status": 200, "content_type": "...", "length": N}
The first line written is {"ready": true, ...} once the model (or init()) has loaded. Anything
the model or the script prints goes to stderr, which Lathe keeps as the deployment's log.
"""

import io
import json
import os
import sys
import traceback

answers = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
sys.stdout = sys.stderr
requests = sys.stdin.buffer


def send(header, body):
    header["length"] = len(body)
    answers.write(json.dumps(header).encode() + b"\n" + body)
    answers.flush()


def last_line(error):
    lines = traceback.format_exception_only(type(error), error)
    return lines[-1].strip() if lines else repr(error)


def pyfunc(model_dir):
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(model_dir)
    schema = model.metadata.get_input_schema()
    frame_of = split_reader(schema)

    def answer(op, content_type, body):
        try:
            frame = frame_of(content_type, body)
            if frame is not None:
                out = io.StringIO()
                scoring_server.predictions_to_json(model.predict(frame), out)
                return 200, "application/json", out.getvalue().encode()
            found = scoring_server.invocations(body, content_type, model, schema)
            return found.status, found.mimetype, found.response.encode()
        except MlflowException as e:
            # As MLflow's server answers one (its _async_catch_mlflow_exception).
            return e.get_http_status_code(), "application/json", e.serialize_as_json().encode()

    return answer, {"mlflow": mlflow.__version__}


# MLflow column types whose pandas dtype a JSON list of rows gives as is.
DTYPES = {"double": "float64", "long": "int64", "boolean": "bool", "string": "object"}


def split_reader(schema):
    """A faster reading of the commonest body, `{"dataframe_split": {"columns", "data"}}` with
    the signature's columns in order, each of the dtype its type asks for. Only the parsing is
    skipped: model.predict still enforces the schema, as MLflow's server does. Anything else
    (params, other shapes, another dtype, a tensor signature) returns None and takes MLflow's
    own path, so its answers and errors stay MLflow's."""
    import pandas as pd

    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return lambda content_type, body: None
    names = schema.input_names()
    dtypes = [DTYPES.get(getattr(spec.type, "name", None)) for spec in schema.inputs]
    if None in dtypes or any(getattr(spec, "optional", False) for spec in schema.inputs):
        return lambda content_type, body: None

    def read(content_type, body):
        if content_type.split(";")[0].strip() != "application/json":
            return None
        try:
            request = json.loads(body)
        except ValueError:
            return None
        if not isinstance(request, dict) or list(request) != ["dataframe_split"]:
            return None
        split = request["dataframe_split"]
        if not isinstance(split, dict) or set(split) != {"columns", "data"}:
            return None
        if split["columns"] != names or not isinstance(split["data"], list):
            return None
        try:
            frame = pd.DataFrame(split["data"], columns=names)
        except (ValueError, TypeError):
            return None
        if len(frame) == 0 or [str(t) for t in frame.dtypes] != dtypes:
            return None
        return frame

    return read


def script(model_dir, code_dir, name):
    import importlib.util

    os.environ["AZUREML_MODEL_DIR"] = model_dir
    sys.path.insert(0, code_dir)
    spec = importlib.util.spec_from_file_location("score", os.path.join(code_dir, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "init"):
        module.init()

    def answer(op, content_type, body):
        if op == "batch":
            return batch(body)
        try:
            result = module.run(body.decode("utf-8", errors="replace"))
        except Exception as e:
            traceback.print_exc()
            message = {"error": last_line(e), "message": "the scoring script's run() raised"}
            return 500, "application/json", json.dumps(message).encode()
        # Azure's inference server answers the returned value as JSON.
        return 200, "application/json", json.dumps(result, default=str).encode()

    def batch(body):
        request = json.loads(body)
        try:
            if "table" in request:
                import pandas as pd

                mini_batch = pd.read_csv(request["table"])
            else:
                mini_batch = request["files"]
            result = module.run(mini_batch)
        except Exception as e:
            traceback.print_exc()
            message = {"error": last_line(e), "message": "the scoring script's run() raised"}
            return 500, "application/json", json.dumps(message).encode()
        if hasattr(result, "to_dict") and hasattr(result, "columns"):
            rows = result.to_dict(orient="records")
        elif hasattr(result, "tolist"):
            rows = result.tolist()
        else:
            rows = list(result)
        return 200, "application/json", json.dumps({"rows": rows}, default=str).encode()

    return answer, {}


def main():
    mode = sys.argv[1]
    if mode == "pyfunc":
        answer, info = pyfunc(sys.argv[2])
    else:
        answer, info = script(sys.argv[2], sys.argv[3], sys.argv[4])
    send({"ready": True, "python": sys.version.split()[0], **info}, b"")
    while True:
        line = requests.readline()
        if not line:
            return
        header = json.loads(line)
        body = requests.read(header["length"])
        try:
            status, content_type, out = answer(header["op"], header["content_type"], body)
        except Exception as e:
            traceback.print_exc()
            status, content_type = 500, "application/json"
            out = json.dumps({"error": last_line(e)}).encode()
        send({"status": status, "content_type": content_type}, out)


main()
