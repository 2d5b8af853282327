"""Lists experiments with the official MLflow client; MLFLOW_TRACKING_TOKEN carries the token."""

import json
import sys

from mlflow import MlflowClient

names = sorted(e.name for e in MlflowClient().search_experiments())
json.dump({"experiments": names}, sys.stdout)
