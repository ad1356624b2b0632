#!/usr/bin/env bash
# Part 3 of BENCHMARKS.md: the workshop's teardown end to end, with real calls against a local
# moto server, by teardown and by the alternatives a user would pick:
#   (a) the workshop's instructions scripted with the AWS CLI (benches/peers/cleanup.sh);
#   (b) Cloud Custodian policies for the deletions it has actions for (benches/peers/custodian.yml).
#
# Every tool talks to moto through a counting proxy on loopback (benches/peers/proxy.py), which
# counts the calls and can add a fixed latency to each. Before every run moto is reset, ECS tasks
# are kept RUNNING until someone stops them, and the workshop (with its look-alike bystanders) is
# provisioned again, straight to moto; only the tool's own run is timed. After every run the
# account is checked (benches/peers/check.py): a run that left something of its scope behind, or
# touched a bystander, or exited non-zero, is reported as failed and not timed.
#
#   bash benches/peers.sh       # 5 runs of each tool at 0, 50, 100 and 200 ms per call (~30 min)
#   PEERS_RUNS=7 PEERS_LATENCIES="0 20 50" bash benches/peers.sh
#   PEERS_TOOLS="teardown awscli" bash benches/peers.sh     # a subset of the tools
#
# Needs cargo and python3 (with venv). Installs, once, into ~/.cache/teardown/ (TEARDOWN_CACHE):
# the pinned moto server (scripts/ensure-moto), awscli and c7n, each in a virtual environment of
# its own. Only loopback traffic. Results: a table on stdout; raw data in $PEERS_OUT (default: a
# temporary directory, printed at the end, kept).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${PEERS_RUNS:-5}
latencies=${PEERS_LATENCIES:-0 50 100 200}
AWSCLI_VERSION=1.46.3
C7N_VERSION=0.9.53
cache=${TEARDOWN_CACHE:-$HOME/.cache/teardown}

# ---- tools ----------------------------------------------------------------------------------
ensure_venv() { # NAME PIP-SPEC EXECUTABLE: installs once, prints the venv's bin directory
  local venv="$cache/$1"
  mkdir -p "$cache"
  (
    flock 9
    if [ ! -x "$venv/bin/$3" ]; then
      echo "installing $2 into $venv" >&2
      rm -rf "$venv"
      python3 -m venv "$venv" >&2
      "$venv/bin/pip" install --quiet --disable-pip-version-check "$2" >&2
    fi
  ) 9>"$venv.lock"
  echo "$venv/bin"
}
moto_server=$(bash scripts/ensure-moto)
moto_python=$(dirname "$moto_server")/python # has boto3: used by the checks
awscli_bin=$(ensure_venv "awscli-$AWSCLI_VERSION" "awscli==$AWSCLI_VERSION" aws)
c7n_bin=$(ensure_venv "c7n-$C7N_VERSION" "c7n==$C7N_VERSION" custodian)
echo "== building teardown (dev profile)" >&2
cargo build --quiet --bin teardown --example provision-workshop
rustc_version=$(rustc --version | cut -d' ' -f1-2)
target_dir="${CARGO_TARGET_DIR:-target}"
# Copies, so that a rebuild in the work tree during the bench cannot swap the binary under it.
work=$(mktemp -d)
cp "$target_dir/debug/teardown" "$work/teardown"
cp "$target_dir/debug/examples/provision-workshop" "$work/provision-workshop"
teardown="$work/teardown"
provision="$work/provision-workshop"

# ---- moto and the proxies -------------------------------------------------------------------
out=${PEERS_OUT:-$(mktemp -d -t teardown-peers.XXXXXX)}
mkdir -p "$out"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}
moto_port=$(free_port)
"$moto_server" -H 127.0.0.1 -p "$moto_port" >"$out/moto.log" 2>&1 &
pids+=($!)
wait_port "$moto_port"
moto="http://127.0.0.1:$moto_port"
declare -A proxy
for latency in $latencies; do
  python3 benches/peers/proxy.py --upstream "$moto" --port-file "$work/proxy-$latency.port" \
    --latency-ms "$latency" 2>"$out/proxy-$latency.log" &
  pids+=($!)
  for _ in $(seq 200); do [ -s "$work/proxy-$latency.port" ] && break; sleep 0.05; done
  proxy[$latency]="http://127.0.0.1:$(cat "$work/proxy-$latency.port")"
  wait_port "${proxy[$latency]##*:}"
done

post() { # URL [JSON]
  python3 - "$@" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=(sys.argv[2] if len(sys.argv) > 2 else "").encode(),
                             method="POST", headers={"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY
}
get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' "$1"; }

# Throwaway credentials and an empty HOME, so that no real profile or config is read (cargo has
# run already: it needs the real HOME).
export AWS_REGION=us-west-2 AWS_DEFAULT_REGION=us-west-2 AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true AWS_PAGER="" NO_COLOR=1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
export HOME="$work/home" TEARDOWN_RUNS_DIR="$work/home/runs"
mkdir -p "$HOME"

# The workshop plan without the two steps Cloud Custodian has no action for, for pair (b).
plan=tests/it/plans/named-workshop.toml
subset_plan="$out/workshop-no-cluster-repo.toml"
awk '
  /^\[steps\.(delete-cluster|delete-repository)\]/ { skip = 1; next }
  /^\[/ || /^# ----/ { skip = 0 }
  !skip
' "$plan" >"$subset_plan"
"$teardown" validate "$subset_plan" >/dev/null

# ---- the tools, as each is run (AWS_ENDPOINT_URL points at the proxy) ------------------------
run_tool() { # TOOL LOG
  case $1 in
    teardown) "$teardown" run "$plan" --yes --output plain ;;
    teardown-subset) "$teardown" run "$subset_plan" --yes --output plain ;;
    awscli) AWS="$awscli_bin/aws" bash benches/peers/cleanup.sh ;;
    custodian)
      rm -rf "$work/c7n-out"
      "$c7n_bin/custodian" run --cache-period 0 -s "$work/c7n-out" -r us-west-2 \
        benches/peers/custodian.yml
      ;;
    custodian+cli) # what a user of Custodian would add for the two deletions it cannot do
      rm -rf "$work/c7n-out"
      "$c7n_bin/custodian" run --cache-period 0 -s "$work/c7n-out" -r us-west-2 \
        benches/peers/custodian.yml
      "$awscli_bin/aws" ecs delete-cluster --cluster FargateClusterDemo >/dev/null
      "$awscli_bin/aws" ecr delete-repository --repository-name secrets-manager-rds-demo --force >/dev/null
      ;;
  esac >"$2" 2>&1
}
scope_of() { case $1 in teardown-subset | custodian) echo no-cluster-repo ;; *) echo full ;; esac; }

results="$out/results.tsv"
printf 'latency_ms\ttool\trun\tseconds\tcpu_seconds\tcalls\terrors\texit\tcheck\tnotes\n' >"$results"
one_run() { # LATENCY TOOL RUN (run 0 is the warm-up: recorded, left out of the tables)
  local latency=$1 tool=$2 n=$3 id="$1ms-$2-$3"
  post "$moto/moto-api/reset"
  post "$moto/moto-api/state-manager/set-transition" \
    '{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}'
  AWS_ENDPOINT_URL="$moto" "$provision" --named >"$out/$id.provision.log" 2>&1
  MOTO_ENDPOINT="$moto" "$moto_python" benches/peers/check.py snapshot "$out/$id.snapshot.json"
  post "${proxy[$latency]}/__proxy/reset"
  local rc=0 check=0 TIMEFORMAT='%3R %3U %3S' seconds user sys
  # Wall time, and the CPU time (user + system) of the tool and every process it started: the
  # latter hardly depends on what else the machine is doing.
  { time AWS_ENDPOINT_URL="${proxy[$latency]}" run_tool "$tool" "$out/$id.log"; } \
    2>"$out/$id.time" || rc=$?
  read -r seconds user sys <"$out/$id.time"
  get "${proxy[$latency]}/__proxy/counts" >"$out/$id.calls.json"
  MOTO_ENDPOINT="$moto" "$moto_python" benches/peers/check.py check "$out/$id.snapshot.json" \
    --scope "$(scope_of "$tool")" >"$out/$id.check.txt" 2>&1 || check=$?
  AWS_ENDPOINT_URL="$moto" "$provision" --list >"$out/$id.after.txt" 2>&1 || true
  local cpu calls errors notes
  cpu=$(python3 -c "print(f'{$user + $sys:.3f}')")
  read -r calls errors < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["total"], d["errors"])' "$out/$id.calls.json")
  notes=$(grep -c '^NOTE' "$out/$id.check.txt" || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$latency" "$tool" "$n" "$seconds" "$cpu" \
    "$calls" "$errors" "$rc" "$check" "$notes" >>"$results"
  local verdict=ok
  [ "$rc" = 0 ] && [ "$check" = 0 ] || verdict="FAILED (exit $rc, check $check: see $out/$id.*)"
  printf '  %-4s ms  %-16s run %s  %8ss  (CPU %7ss)  %4s calls  %s\n' "$latency" "$tool" "$n" \
    "$seconds" "$cpu" "$calls" "$verdict" >&2
}

tools=${PEERS_TOOLS:-teardown awscli teardown-subset custodian custodian+cli}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== moto at $moto; raw results in $out" >&2
first=1
for latency in $latencies; do
  echo "== $latency ms added per call: $runs runs of each tool, interleaved" >&2
  if [ "$first" = 1 ]; then # one warm-up run of each (page cache, first imports), not in the table
    for tool in $tools; do one_run "$latency" "$tool" 0; done
    first=0
  fi
  for n in $(seq "$runs"); do
    for tool in $tools; do one_run "$latency" "$tool" "$n"; done
  done
done

{
  echo "### Machine and versions"
  echo
  echo "- $(nproc) vCPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -h | awk '/^Mem:/ {print $2}') memory, $(uname -sr)"
  echo "- load average (1, 5, 15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- teardown $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (with uncommitted changes in src/)'), debug build (dev profile), $rustc_version"
  echo "- $("$awscli_bin/aws" --version 2>&1)"
  echo "- c7n $("$c7n_bin/custodian" version 2>&1 | tail -1), moto $("$moto_python" -c 'import moto; print(moto.__version__)')"
  echo "- $runs runs of each tool per latency (plus one warm-up run of each, not counted), interleaved"
  echo
} | tee "$out/machine.md"
python3 benches/peers/summarize.py "$out" | tee "$out/summary.md"
echo >&2
echo "raw results: $out (results.tsv; per run: .log, .calls.json, .check.txt, .after.txt)" >&2
