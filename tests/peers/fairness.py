"""Fairlearn's differences between groups for a scored table, the oracle for Lathe's fairness gate.

Run by tests/promotion.rs as `fairness.py TABLE.csv SENSITIVE LABEL PREDICTION POSITIVE`; prints
{"selection_rate_difference": x, "true_positive_rate_difference": y, "groups": {...}}.
"""

import json
import sys

import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate


def main():
    path, sensitive, label, prediction, positive = sys.argv[1:6]
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    y_true = (table[label] == positive).astype(int)
    y_pred = (table[prediction] == positive).astype(int)
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=table[sensitive],
    )
    difference = frame.difference(method="between_groups")
    print(json.dumps({
        "selection_rate_difference": float(difference["selection_rate"]),
        "true_positive_rate_difference": float(difference["true_positive_rate"]),
        "groups": {str(g): row for g, row in frame.by_group.to_dict(orient="index").items()},
    }))


if __name__ == "__main__":
    main()
