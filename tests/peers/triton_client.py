"""Scores rows on a Lathe online endpoint with the official Triton HTTP client, unchanged.

Run by tests/endpoints.rs as `triton_client.py URL MODEL KEY ROWS.json [OUTPUT]`, ROWS.json holding
{"columns": [...], "data": [[...], ...]}. Checks health and metadata, then infers the rows three
ways — one FP64 tensor per column with binary data (the client's default), the same as JSON, and
one [N, F] tensor — and prints {"metadata": ..., "binary": [...], "json": [...], "matrix": [...],
"probability": [...]} (the probability when the model's metadata lists one). OUTPUT names the
predictions' tensor (`prediction` by default).
"""

import json
import sys

import numpy as np
import tritonclient.http as triton


def main():
    url, model, key, rows_path = sys.argv[1:5]
    output = sys.argv[5] if len(sys.argv) > 5 else "prediction"
    rows = json.load(open(rows_path))
    # A fresh dict per call: the client writes Inference-Header-Content-Length into the one it
    # is given, and a stale length would cut the next request's JSON (on Triton too).
    def headers():
        return {"Authorization": f"Bearer {key}"}

    client = triton.InferenceServerClient(url=url)
    assert client.is_server_live(headers=headers())
    assert client.is_server_ready(headers=headers())
    assert client.is_model_ready(model, headers=headers())
    metadata = client.get_model_metadata(model, headers=headers())
    data = np.array(rows["data"], dtype=np.float64)

    def columns(binary):
        inputs = []
        for j, name in enumerate(rows["columns"]):
            tensor = triton.InferInput(name, [len(data)], "FP64")
            tensor.set_data_from_numpy(data[:, j].copy(), binary_data=binary)
            inputs.append(tensor)
        return inputs

    def labels(result, name=output):
        values = result.as_numpy(name)
        def plain(v):
            if isinstance(v, bytes):
                return v.decode()
            return v if isinstance(v, str) else v.item()

        return [plain(v) for v in values]

    binary = client.infer(model, columns(True), headers=headers())
    as_json = client.infer(
        model,
        columns(False),
        outputs=[triton.InferRequestedOutput(output, binary_data=False)],
        headers=headers(),
    )
    matrix = triton.InferInput("features", list(data.shape), "FP64")
    matrix.set_data_from_numpy(data)
    by_matrix = client.infer(model, [matrix], headers=headers())
    print(json.dumps({
        "metadata": metadata,
        "binary": labels(binary),
        "json": labels(as_json),
        "matrix": labels(by_matrix),
        "probability": [float(p) for p in binary.as_numpy("probability")]
        if any(o["name"] == "probability" for o in metadata["outputs"])
        else None,
    }))


if __name__ == "__main__":
    main()
