"""Loads a Lathe native model (`model.json`) as an MLflow pyfunc model, so
`mlflow.pyfunc.load_model(PACKAGE/model)` predicts what Lathe predicts.

Written into a package by `lathe models package` (MLflow's python_function flavor with
`loader_module: lathe_pyfunc`, `code: code`, `data: <the model.json>`). Needs numpy and pandas.
The formulas mirror core/src/ml/model.rs: a linear model's dot product plus intercept; a
multinomial logistic regression's class of the largest score (the first on a tie); a decision
tree walked left below its threshold; k-means' nearest centroid. A model trained behind Lathe's
preparation steps carries a plan per feature (core/src/ml/preprocessing.rs): the raw column it
is read from, and fill, indicator (one-hot) and affine (normalize) operations on each cell.
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


def _is_missing(value):
    return value is None or (isinstance(value, float) and np.isnan(value))


def _is_category(value, category):
    # As polars writes a number as text: 3 for a whole number, else its shortest form.
    if isinstance(value, str):
        return value == category
    if isinstance(value, (bool, np.bool_)):
        return str(value).lower() == category
    number = float(value)
    if number.is_integer():
        return category in (str(int(number)), f"{number:.1f}")
    return category == repr(number)


def _cell(value, op):
    kind = op["op"]
    if kind == "fill":
        return op["value"] if _is_missing(value) else value
    if kind == "require":
        if _is_missing(value):
            raise ValueError("has no value")
        return value
    if kind == "indicator":
        return 0.0 if _is_missing(value) else float(_is_category(value, op["category"]))
    if kind == "affine":
        return value if _is_missing(value) else (float(value) - op["shift"]) / op["scale"]
    raise ValueError(f"a preprocessing operation {kind!r} is not known to this loader")


def _feature(column, plan):
    out = []
    for row, value in enumerate(column.tolist()):
        try:
            for op in plan["ops"]:
                value = _cell(value, op)
            if _is_missing(value):
                raise ValueError("has no value")
            out.append(float(value))
        except ValueError as e:
            raise ValueError(f"column {plan['source']!r}, row {row}: {e}") from None
    return out


class _LatheModel:
    def __init__(self, spec):
        self.features = spec["features"]
        self.body = spec["body"]
        pre = spec.get("preprocessing")
        self.plans = pre["features"] if pre else [{"source": f, "ops": []} for f in self.features]
        self.inputs = list(dict.fromkeys(p["source"] for p in self.plans))

    def predict(self, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [f for f in self.inputs if f not in frame.columns]
        if missing:
            raise ValueError(f"columns missing: {missing}; the model takes {self.inputs}")
        x = np.array([_feature(frame[p["source"]], p) for p in self.plans], dtype=float).T
        x = x.reshape(len(frame), len(self.plans))
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
