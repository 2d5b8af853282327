"""A Lathe Python worker: one process of an online deployment, answering one request at a time.

Started by Lathe (core/src/serving/python.rs) as `python -c <this file> MODE MODEL_DIR [CODE_DIR
SCRIPT]` inside the deployment's environment. MODE is `pyfunc` (an MLflow model, scored by
MLflow's own scoring function, so every body shape and error is MLflow's) or `script` (an Azure
ML scoring script: `init()` once, `run(raw_data)` per request, AZUREML_MODEL_DIR set).

Frames on stdin and stdout: a JSON header line, then `length` bytes of body.
  request:  {"op": "invocations" | "score", "content_type": "...", "length": N}
  answer:   {"status": 200, "content_type": "...", "length": N}
The first line written is {"ready": true, ...} once the model (or init()) has loaded. Anything
the model or the script prints goes to stderr, which Lathe keeps as the deployment's log.
"""

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

    def answer(op, content_type, body):
        try:
            found = scoring_server.invocations(body, content_type, model, schema)
            return found.status, found.mimetype, found.response.encode()
        except MlflowException as e:
            # As MLflow's server answers one (its _async_catch_mlflow_exception).
            return e.get_http_status_code(), "application/json", e.serialize_as_json().encode()

    return answer, {"mlflow": mlflow.__version__}


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
        try:
            result = module.run(body.decode("utf-8", errors="replace"))
        except Exception as e:
            traceback.print_exc()
            message = {"error": last_line(e), "message": "the scoring script's run() raised"}
            return 500, "application/json", json.dumps(message).encode()
        # Azure's inference server answers the returned value as JSON.
        return 200, "application/json", json.dumps(result, default=str).encode()

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
