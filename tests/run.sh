#!/usr/bin/env bash
# The test command: installs the peers the tests check Lathe against (tests/peers/setup.sh,
# into ~/.cache/lathe, while cargo builds), then runs the whole suite. Extra arguments go to
# `cargo test` (e.g. `tests/run.sh -p lathe-tests --test mlflow`).
set -euo pipefail
cd "$(dirname "$0")/.."
export LATHE_PEER_PYTHON="${LATHE_PEER_VENV:-$HOME/.cache/lathe/venv}/bin/python"
export LATHE_DRIFT_PYTHON="${LATHE_DRIFT_VENV:-$HOME/.cache/lathe/venv-drift}/bin/python"
export LATHE_RAY_PYTHON="${LATHE_RAY_VENV:-$HOME/.cache/lathe/venv-ray}/bin/python"

started=$SECONDS
bash tests/peers/setup.sh &
peers=$!
cargo test --workspace --locked --no-run "$@"
echo "== built in $((SECONDS - started)) s"
wait "$peers" || { echo "the peers could not be installed (tests/peers/setup.sh)" >&2; exit 1; }
echo "== peers ready after $((SECONDS - started)) s"
cargo test --workspace --locked "$@"
echo "== tests done after $((SECONDS - started)) s"
