#!/usr/bin/env bash
# Installs the peers the tests check Lathe against, pinned, into venvs outside the checkout
# (PyPI): the official MLflow client, pycocotools, Fairlearn (the fairness gate), Triton's HTTP
# client and onnxruntime (online endpoints), moto's S3 server and boto3 (datastores) in one;
# scipy and Evidently (drift values) in another, since Evidently 0.7.23 needs pandas 2 and MLflow's venv has pandas 3;
# Ray (a real head for compute targets; its workers' Python has MLflow's client, as a team's
# cluster image would) in a third, so its pins never move MLflow's. Idempotent: a
# venv that already has the right versions is left alone. Run by tests/run.sh (the README's
# test command) and .ci/run.
set -euo pipefail
check='
import sys, importlib.metadata as m
wanted = {p.split("==")[0].split("[")[0]: p.split("==")[1] for p in sys.argv[1:]}
sys.exit(any(m.version(n) != v for n, v in wanted.items()))
'
install() {
    local venv="$1"
    shift
    if "$venv/bin/python" -c "$check" "$@" 2>/dev/null; then
        return 0
    fi
    echo "installing $* into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    "$venv/bin/python" -c "$check" "$@"
    echo "peers ready: $*" >&2
}
install "${LATHE_PEER_VENV:-$HOME/.cache/lathe/venv}" \
    "mlflow==3.17.2" "pycocotools==2.0.10" "fairlearn==0.15.0" "tritonclient[http]==2.73.0" \
    "onnxruntime==1.31.1" "moto[server]==5.2.6" "boto3==1.44.18"
install "${LATHE_DRIFT_VENV:-$HOME/.cache/lathe/venv-drift}" \
    "evidently==0.7.23" "pandas==2.3.3" "scipy==1.17.1" "numpy==2.4.6"
install "${LATHE_RAY_VENV:-$HOME/.cache/lathe/venv-ray}" "ray[default]==2.60.0" "mlflow-skinny==3.17.2"
