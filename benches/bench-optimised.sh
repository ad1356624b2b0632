#!/usr/bin/env bash
# The critical-path bench (benches/critical_path.rs) built optimised, for the real-time figures of
# its part 2 (the engine alone: a 10,000-step plan validated and run) and BENCHMARKS.md's table.
#
# The profile `engine` inherits `release` (opt-level 3, no debug assertions) for teardown itself and
# every dependency on the engine's path (toml, toml_edit, winnow, serde, petgraph, indexmap,
# tokio, ...), but builds the AWS SDK service crates and aws-lc at opt-level 0: the engine never
# calls them, and optimising them is most of the ~12 minutes a clean release build takes on a
# 2-core machine. The profile is defined here with --config, so Cargo.toml stays as it is; its
# build lives in target/engine/. The first build takes ~20 minutes of a 2-core machine shared
# with other builds; later ones only rebuild teardown.
#
#   bash benches/engine-optimised.sh           # the full bench (all three parts)
#   bash benches/engine-optimised.sh --no-run  # build only
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--config 'profile.engine.inherits="release"')
for crate in aws-sdk-ec2 aws-sdk-cloudformation aws-sdk-ecs aws-sdk-ecr aws-sdk-secretsmanager \
  aws-sdk-sns aws-sdk-eventbridge aws-sdk-sts aws-sdk-sso aws-sdk-ssooidc aws-lc-sys aws-lc-rs; do
  args+=(--config "profile.engine.package.$crate.opt-level=0")
done
if [ "${1:-}" = "--no-run" ]; then
  exec cargo bench "${args[@]}" --profile engine --bench critical_path --no-run
fi
exec cargo bench "${args[@]}" --profile engine --bench critical_path
