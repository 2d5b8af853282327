"""Trains a scikit-learn classifier and logs and registers it into a Lathe tracking server with
the official MLflow client, as a data scientist would.

Run by tests/endpoints_python.rs as `sklearn_model.py NAME` with MLFLOW_TRACKING_URI pointing at
`lathe server`. Prints {"columns": [...], "data": [[...], ...], "predict": [...], "version": V}:
rows held out of training and scikit-learn's own predictions for them, the oracle an endpoint
serving the model must equal.
"""

import json
import sys

import mlflow
import mlflow.sklearn
import pandas as pd
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main():
    name = sys.argv[1]
    iris = load_iris()
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    frame = pd.DataFrame(iris.data, columns=columns)
    held_out = frame.iloc[::7]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(frame.drop(held_out.index), iris.target[frame.drop(held_out.index).index])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=held_out.head(3),
            registered_model_name=name,
            # Named, so the client does not start a process to infer them.
            pip_requirements=[f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}"],
        )
    print(json.dumps({
        "columns": columns,
        "data": held_out.values.tolist(),
        "predict": [int(p) for p in model.predict(held_out)],
        "version": str(info.registered_model_version),
    }))


if __name__ == "__main__":
    main()
