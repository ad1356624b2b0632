#!/usr/bin/env bash
# Validates the deployment examples (Dockerfile, deploy/) without network access, as CI does
# (tests/it/deploy.rs runs this script). Installs its pinned validators into a virtual environment
# the first time (deploy/requirements.txt; that install needs PyPI, nothing after it does).
#
#   bash deploy/check.sh            # exit 0 when every check passed, 1 otherwise
#
# Checks, each reported as ok or FAIL (all of them run, then the exit code sums them up):
#   parse        every YAML and JSON file under deploy/ parses, with no duplicate key
#   workflow     the GitHub Actions workflows (the sweep's, and the release's in .github/) against
#                GitHub's workflow schema (vendored by check-jsonschema), and that every job has a
#                timeout
#   release      the release workflow: musl and macOS targets, static Linux binaries, checksums,
#                the image from the Dockerfile, pinned actions (checks.py release)
#   kubernetes   the manifests against the Kubernetes schemas (vendored by kubernetes-validate),
#                strictly (unknown fields are errors), for Kubernetes 1.30 and 1.37
#   cfn-lint     the CloudFormation template (cfn-lint ships AWS's resource specifications)
#   policy       the template's task role policy is `teardown permissions PLAN`
#   hadolint     the Dockerfile
#   shell        these scripts (shellcheck), the workflows' run: blocks, the Kubernetes sh -c command
#   consistency  the files agree (user id, writable paths under a read-only root, shard counts...)
#   sweep        once plans/stale-labs-sweep.toml exists: it validates, and `teardown sweep --help`
#                has every flag the examples pass
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=deploy/lib.sh
. deploy/lib.sh

failed=()
passed=0
check() {
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "FAIL $name" >&2
    failed+=("$name")
  fi
}

deploy_ensure_venv || {
  echo "error: could not install the validators (deploy/requirements.txt)" >&2
  exit 1
}
VENV_BIN=$DEPLOY_VENV/bin
PY=$VENV_BIN/python
TOOLS=deploy/tools/checks.py
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

mapfile -t data_files < <(find deploy .github -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | sort)
check parse "$PY" "$TOOLS" parse "${data_files[@]}"

workflow() {
  "$VENV_BIN/check-jsonschema" --builtin-schema vendor.github-workflows \
    deploy/github-actions/*.yml .github/workflows/*.yml &&
    "$VENV_BIN/check-jsonschema" --builtin-schema custom.github-workflows-require-timeout \
      deploy/github-actions/*.yml .github/workflows/*.yml
}
check workflow workflow

check release "$PY" "$TOOLS" release

kubernetes() {
  local v rc=0
  for v in 1.30.0 1.37.0; do
    "$VENV_BIN/kubernetes-validate" --strict --kubernetes-version "$v" deploy/kubernetes/*.yaml || rc=1
  done
  return $rc
}
check kubernetes kubernetes

check cfn-lint "$VENV_BIN/cfn-lint" --regions us-east-1 us-west-2 eu-west-1 -- deploy/eventbridge/*.yaml

policy() {
  local plan
  plan=$(deploy_policy_plan)
  if [ "$plan" = "$DEPLOY_SWEEP_PLAN" ]; then
    echo "comparing with the sweep plan, $plan"
  else
    echo "note: $DEPLOY_SWEEP_PLAN does not exist yet: comparing with $plan instead"
  fi
  deploy_teardown permissions "$plan" >"$scratch/policy.json" &&
    "$PY" "$TOOLS" policy-check "$plan" "$scratch/policy.json"
}
check policy policy

check hadolint "$VENV_BIN/hadolint" Dockerfile

shellcheck_all() {
  local snippets=()
  mapfile -t snippets < <("$PY" "$TOOLS" shell-snippets "$scratch/snippets") || return 1
  "$VENV_BIN/shellcheck" -x deploy/*.sh "${snippets[@]}"
}
check shell shellcheck_all

check consistency "$PY" "$TOOLS" consistency

sweep() {
  if [ ! -f "$DEPLOY_SWEEP_PLAN" ]; then
    echo "error: $DEPLOY_SWEEP_PLAN does not exist: the recipes sweep with it"
    return 1
  fi
  deploy_teardown validate "$DEPLOY_SWEEP_PLAN" || return 1
  local help flag missing=0
  help=$(deploy_teardown sweep --help) || return 1
  while read -r flag; do
    if ! grep -q -- "$flag\b" <<<"$help"; then
      echo "FAIL the examples pass $flag, which \`teardown sweep --help\` does not list"
      missing=1
    fi
  done < <("$PY" "$TOOLS" sweep-flags)
  [ $missing = 0 ] && echo "ok   every flag the examples pass is in \`teardown sweep --help\`"
}
check sweep sweep

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "deploy checks: $passed passed, ${#failed[@]} failed (${failed[*]})"
  exit 1
fi
echo "deploy checks: $passed passed, 0 failed"
