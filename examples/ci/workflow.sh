#!/usr/bin/env bash
# An example CI workflow for a model, with the lathe CLI alone: train (the churn pipeline),
# evaluate and gate the new version (the promotion policy; a failed gate fails the job), deploy
# it to a staging endpoint, and smoke-test the endpoint. Run by tests/ci_workflow.rs.
#
#   LATHE_WORKSPACE=ws examples/ci/workflow.sh        # LATHE=path/to/lathe to pick the program
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lathe="${LATHE:-lathe}"
model=churn-pipeline-classifier

echo "== train"
"$lathe" pipeline run "$here/../../assets/pipelines/churn-classification.yml" > /dev/null
version="$("$lathe" models show "$model" --json | python3 -c \
    'import json, sys; print(max(int(v["version"]) for v in json.load(sys.stdin)))')"
echo "trained $model:$version"

echo "== gate"
"$lathe" models policy set "$here/policy.yml"
# Exits non-zero, each failed gate printed, unless every gate passes.
"$lathe" models promote "$model:$version" --alias staging --approve --comment "CI: $0"

echo "== deploy"
"$lathe" online-endpoint show churn-staging > /dev/null 2>&1 ||
    "$lathe" online-endpoint create -f "$here/endpoint.yml"
if "$lathe" online-deployment show --endpoint-name churn-staging --name candidate > /dev/null 2>&1; then
    "$lathe" online-deployment update -f "$here/deployment.yml"
else
    "$lathe" online-deployment create -f "$here/deployment.yml" --all-traffic
fi

echo "== smoke test"
# A CI runner has no window open: a server serves the endpoints while the job runs.
"$lathe" server --port 0 > /dev/null &
server=$!
trap 'kill "$server" 2> /dev/null || true' EXIT
for _ in $(seq 1 60); do
    if answer="$("$lathe" online-endpoint invoke churn-staging --request-file "$here/request.json" 2> /dev/null)"; then
        echo "churn-staging answered: $answer"
        python3 -c 'import json, sys; p = json.loads(sys.argv[1])["predictions"]; assert len(p) == 2, p' "$answer"
        exit 0
    fi
    sleep 0.5
done
echo "churn-staging never answered" >&2
exit 1
