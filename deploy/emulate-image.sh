#!/usr/bin/env bash
# Emulates the Dockerfile's runtime stage where there is no Docker engine, and runs teardown in it
# against a local AWS emulator (moto on loopback). Manual: needs root (chroot, mount namespaces),
# debootstrap, Debian's package mirror and moto from PyPI; not run by CI. About 2 minutes the first
# time (the Debian root), seconds after that.
#
#   sudo bash deploy/emulate-image.sh
#
# What it does, following the Dockerfile (deploy/tools/checks.py runtime-stage reads it):
#   1. a minimal Debian bookworm root (debootstrap) in ~/.cache/teardown/image-root, in which the
#      runtime stage's RUN line runs verbatim (ca-certificates, user 10001, /var/lib/teardown);
#   2. the teardown binary (as cargo builds it here, or $TEARDOWN_BIN) and plans/ copied as the
#      Dockerfile's COPY lines do;
#   3. in a private mount namespace: the root remounted read-only, a tmpfs owned by the image's
#      user on the VOLUME (as Kubernetes' emptyDir and Fargate's task storage are), and then, as
#      that user, in the WORKDIR, with the image's ENV and a clean environment: `teardown run` of
#      the workshop plan against moto, with the emulated workshop provisioned first; then the
#      Indexed Job's `sh -c` command from deploy/kubernetes/indexed-job.yaml, verbatim, as pod 1
#      (a sweep of shard 2/4 that finds no lab there, writing its report on the volume).
# It checks that the run succeeds, that nothing can be written outside the volume, and that the
# audit log lands in TEARDOWN_RUNS_DIR. It is not the image: the base is debootstrap's, not the
# debian:bookworm-slim image, and the binary is this machine's build, not the builder stage's.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=deploy/lib.sh
. deploy/lib.sh

if [ "$(id -u)" != 0 ]; then
  echo "error: needs root (chroot, mount namespaces)" >&2
  exit 1
fi
for tool in debootstrap unshare chroot; do
  command -v "$tool" >/dev/null || {
    echo "error: needs $tool (apt-get install debootstrap util-linux coreutils)" >&2
    exit 1
  }
done
deploy_ensure_venv
stage=$("$DEPLOY_VENV/bin/python" deploy/tools/checks.py runtime-stage)
field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$stage" "$1"; }
run_line=$(field 'v["runs"][0]')
user=$(field 'v["user"]')
workdir=$(field 'v["workdir"]')
volume=$(field 'v["volumes"][0]')
runs_dir=$(field 'v["env"]["TEARDOWN_RUNS_DIR"]')
uid=${user%%:*}
job=$("$DEPLOY_VENV/bin/python" deploy/tools/checks.py indexed-job-script)
job_script=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["script"])' "$job")
job_runs_dir=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["env"]["TEARDOWN_RUNS_DIR"])' "$job")

root=${TEARDOWN_IMAGE_ROOT:-$HOME/.cache/teardown/image-root}
want=$(printf '%s' "$run_line" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$root.stamp" 2>/dev/null)" != "$want" ]; then
  echo "== a Debian bookworm root in $root, with the runtime stage's RUN line"
  rm -rf "$root" "$root.stamp"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # shellcheck disable=SC2016 # expanded by the inner shell
  RUN_LINE=$run_line unshare -m sh -c 'mount -t proc proc "$0/proc" && chroot "$0" /bin/sh -ec "$RUN_LINE"' \
    "$root" >/dev/null
  echo "$want" >"$root.stamp"
fi

echo "== the binary and the plans (the Dockerfile's COPY lines)"
bin=${TEARDOWN_BIN:-}
if [ -z "$bin" ]; then
  cargo build --quiet --bin teardown
  bin=target/debug/teardown
fi
cargo build --quiet --example provision-workshop
install -m 0755 "$bin" "$root/usr/local/bin/teardown"
rm -rf "${root:?}$workdir/plans"
mkdir -p "$root$workdir"
cp -r plans "$root$workdir/plans"

moto=$(bash scripts/ensure-moto)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
aws_env=(AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-west-2 AWS_ACCESS_KEY_ID=testing
  AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true)
env "${aws_env[@]}" HOME="$(mktemp -d)" target/debug/examples/provision-workshop >/dev/null
echo "== the emulated workshop is provisioned (moto on 127.0.0.1:$port)"

# Inside: a read-only root, the volume on a tmpfs, the image's user, WORKDIR and ENV only.
inside=$(cat <<INSIDE
set -euo pipefail
mount --make-rprivate /
mount --bind '$root' '$root'
mount -o remount,bind,ro '$root'
mount -t proc proc '$root/proc'
mount -t tmpfs -o uid=$uid,gid=$uid,mode=0755,size=64m tmpfs '$root$volume'
as_image() {
  chroot --userspec='$user' '$root' /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/nonexistent TEARDOWN_RUNS_DIR='$runs_dir' NO_COLOR=1 ${aws_env[*]} \
    /bin/sh -c "cd '$workdir' && \$1"
}
echo "-- id: \$(as_image id)"
if as_image 'touch $workdir/probe' 2>/dev/null || as_image 'touch /tmp/probe' 2>/dev/null; then
  echo "FAIL the root filesystem is writable"; exit 1
fi
echo "-- the root filesystem is read-only (touch in $workdir and /tmp refused)"
as_image 'teardown run plans/secrets-manager-fargate-workshop.toml --yes --output plain' | tail -4
as_image "test -s $runs_dir/*/audit.jsonl" || { echo "FAIL no audit log in $runs_dir"; exit 1; }
echo "-- audit log: \$(as_image "ls $runs_dir/*/audit.jsonl") (\$(as_image "cat $runs_dir/*/audit.jsonl" | wc -l) changes)"
if [ -f '$root$workdir/plans/stale-labs-sweep.toml' ]; then
  echo "-- the Indexed Job's command, verbatim, as pod 1 of 4 (JOB_COMPLETION_INDEX=1): a sweep"
  as_image 'JOB_COMPLETION_INDEX=1 TEARDOWN_RUNS_DIR=$job_runs_dir; export JOB_COMPLETION_INDEX TEARDOWN_RUNS_DIR; $job_script' | tail -3
  as_image 'grep -q "\"shard\": \"2/4\"" /var/lib/teardown/report-2.json' \
    || { echo "FAIL no report of shard 2/4 at /var/lib/teardown/report-2.json"; exit 1; }
  echo "-- its report: /var/lib/teardown/report-2.json (shard 2/4)"
fi
INSIDE
)
unshare -m bash -c "$inside"
echo "ok: teardown ran in the emulated runtime stage as $user with a read-only root"
