#!/usr/bin/env bash
# Installs the peers the tests check Lathe against — the official MLflow client, pycocotools,
# Fairlearn (the fairness gate), Triton's HTTP client and onnxruntime (online endpoints),
# pinned — into one venv outside the checkout (PyPI). Idempotent: a venv that already has the
# right versions is left alone. Run by tests/run.sh (the README's test command) and .ci/run.
set -euo pipefail
venv="${LATHE_PEER_VENV:-$HOME/.cache/lathe/venv}"
pins=("mlflow==3.17.2" "pycocotools==2.0.10" "fairlearn==0.15.0" "tritonclient[http]==2.73.0" "onnxruntime==1.31.1")
check='
import sys, importlib.metadata as m
wanted = {p.split("==")[0].split("[")[0]: p.split("==")[1] for p in sys.argv[1:]}
sys.exit(any(m.version(n) != v for n, v in wanted.items()))
'
if "$venv/bin/python" -c "$check" "${pins[@]}" 2>/dev/null; then
    exit 0
fi
echo "installing ${pins[*]} into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
"$venv/bin/python" -c "$check" "${pins[@]}"
echo "peers ready: ${pins[*]}" >&2
