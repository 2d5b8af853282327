"""Loads a model folder with the official `mlflow.pyfunc.load_model` and predicts rows.

Run by tests/endpoints_python.rs as `pyfunc_predict.py MODEL_DIR ROWS.json`, ROWS.json holding
{"columns": [...], "data": [[...], ...]}; prints the predictions as a JSON list.
"""

import json
import sys

import mlflow.pyfunc
import pandas as pd


def main():
    model_dir, rows_path = sys.argv[1:3]
    rows = json.load(open(rows_path))
    model = mlflow.pyfunc.load_model(model_dir)
    predictions = model.predict(pd.DataFrame(rows["data"], columns=rows["columns"]))
    print(json.dumps([p.item() if hasattr(p, "item") else p for p in predictions]))


if __name__ == "__main__":
    main()
