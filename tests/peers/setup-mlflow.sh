#!/usr/bin/env bash
# Installs the official MLflow client, pinned, into a venv for the tests that drive Lathe's
# tracking server with it (tests/mlflow.rs) and for the tracking benchmark. Idempotent: an
# existing venv with the right version is left alone.
set -euo pipefail
venv="${LATHE_MLFLOW_VENV:-$HOME/.cache/lathe/venv}"
version="3.17.2"
if "$venv/bin/python" -c "import sys, mlflow; sys.exit(mlflow.__version__ != '$version')" 2>/dev/null; then
    exit 0
fi
echo "installing mlflow $version into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "mlflow==$version"
"$venv/bin/python" -c "import mlflow; print('mlflow', mlflow.__version__, 'ready')" >&2
