"""Loads a Lathe native model (`model.json`) as an MLflow pyfunc model, so
`mlflow.pyfunc.load_model(PACKAGE/model)` predicts what Lathe predicts.

Written into a package by `lathe models package` (MLflow's python_function flavor with
`loader_module: lathe_pyfunc`, `code: code`, `data: <the model.json>`). Needs numpy and pandas.
The formulas mirror core/src/ml/model.rs: a linear model's dot product plus intercept; a
multinomial logistic regression's class of the largest score (the first on a tie); a decision
tree walked left below its threshold; k-means' nearest centroid.
"""

import json

import numpy as np
import pandas as pd


def _label(text):
    # As Lathe answers a class: an integer or a boolean as itself, anything else as text.
    try:
        return int(text)
    except ValueError:
        return {"true": True, "false": False}.get(text, text)


class _LatheModel:
    def __init__(self, spec):
        self.features = spec["features"]
        self.body = spec["body"]

    def predict(self, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ValueError(f"columns missing: {missing}; the model takes {self.features}")
        x = frame[self.features].to_numpy(dtype=float)
        body = self.body
        kind = body["kind"]
        if kind == "linear":
            return x @ np.array(body["coefficients"]) + body["intercept"]
        if kind == "softmax":
            scores = x @ np.array(body["weights"]).T + np.array(body["intercepts"])
            return np.array([_label(body["classes"][i]) for i in scores.argmax(axis=1)], dtype=object)
        if kind == "tree":
            return np.array([_label(body["classes"][self._walk(row)]) for row in x], dtype=object)
        if kind == "centroids":
            centroids = np.array(body["centroids"])
            distances = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
            return distances.argmin(axis=1)
        raise ValueError(f"a Lathe model of kind {kind!r} is not known to this loader")

    def _walk(self, row):
        nodes, at = self.body["nodes"], 0
        while True:
            node = nodes[at]
            if "class" in node:
                return node["class"]
            at = node["left"] if row[node["feature"]] < node["threshold"] else node["right"]


def _load_pyfunc(path):
    with open(path) as f:
        return _LatheModel(json.load(f))
