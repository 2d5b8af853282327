"""Runs an ONNX model with onnxruntime, the oracle for Lathe's in-process ONNX serving.

Run by tests/endpoints.rs as `onnx_run.py MODEL INPUTS.json`, INPUTS.json holding
{input name: nested lists}; prints {output name: nested lists} (a ZipMap output as onnxruntime
gives it: a list of {class: probability}).
"""

import json
import sys

import numpy as np
import onnxruntime


def main():
    model, inputs = sys.argv[1:3]
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    types = {i.name: i.type for i in session.get_inputs()}
    given = {
        name: np.array(value, dtype=np.float32 if types[name] == "tensor(float)" else None)
        for name, value in json.load(open(inputs)).items()
    }
    outputs = session.run(None, given)
    names = [o.name for o in session.get_outputs()]
    print(json.dumps({n: o if isinstance(o, list) else o.tolist() for n, o in zip(names, outputs)}))


if __name__ == "__main__":
    main()
