# shellcheck shell=bash
# Shared by deploy/check.sh and deploy/update-policy.sh (sourced, from the repository's top).

# The plan whose permissions the CloudFormation task role carries: the sweep plan once it exists,
# the workshop plan until then.
DEPLOY_SWEEP_PLAN=plans/stale-labs-sweep.toml
DEPLOY_FALLBACK_PLAN=plans/secrets-manager-fargate-workshop.toml
deploy_policy_plan() {
  if [ -f "$DEPLOY_SWEEP_PLAN" ]; then
    echo "$DEPLOY_SWEEP_PLAN"
  else
    echo "$DEPLOY_FALLBACK_PLAN"
  fi
}

# How to run teardown: $TEARDOWN_BIN (tests/it/deploy.rs passes the binary cargo built), or cargo.
deploy_teardown() {
  if [ -n "${TEARDOWN_BIN:-}" ]; then
    "$TEARDOWN_BIN" "$@"
  else
    cargo run --quiet --bin teardown -- "$@"
  fi
}

# The validators' virtual environment, (re)installed when deploy/requirements.txt changes.
DEPLOY_VENV=${TEARDOWN_DEPLOY_VENV:-$HOME/.cache/teardown/deploy-venv}
deploy_ensure_venv() {
  local stamp want
  if ! command -v python3 >/dev/null; then
    echo "error: python3 (with the venv module) is needed" >&2
    return 1
  fi
  # python3 rather than sha256sum, which macOS does not have.
  want="$(python3 --version 2>&1) $(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' deploy/requirements.txt)"
  stamp="$DEPLOY_VENV/.teardown-requirements"
  mkdir -p "$(dirname "$DEPLOY_VENV")"
  (
    # One installer at a time (two checks started together share the venv).
    if command -v flock >/dev/null; then
      flock 9
    fi
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
      exit 0
    fi
    echo "installing the validators into $DEPLOY_VENV (deploy/requirements.txt)" >&2
    rm -rf "$DEPLOY_VENV"
    python3 -m venv "$DEPLOY_VENV"
    "$DEPLOY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      --only-binary :all: -r deploy/requirements.txt
    echo "$want" >"$stamp"
  ) 9>"$DEPLOY_VENV.lock"
}
