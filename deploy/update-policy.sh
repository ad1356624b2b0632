#!/usr/bin/env bash
# Regenerates the task role's IAM policy in deploy/eventbridge/scheduler.yaml from
# `teardown permissions PLAN` (the sweep plan if it exists, else the workshop plan).
# deploy/check.sh fails while the two differ.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=deploy/lib.sh
. deploy/lib.sh
plan=$(deploy_policy_plan)
if [ "$plan" != "$DEPLOY_SWEEP_PLAN" ]; then
  echo "note: $DEPLOY_SWEEP_PLAN does not exist yet; using $plan" >&2
fi
policy=$(mktemp)
trap 'rm -f "$policy"' EXIT
deploy_teardown permissions "$plan" >"$policy"
deploy_ensure_venv
"$DEPLOY_VENV/bin/python" deploy/tools/checks.py policy-write "$plan" "$policy"
