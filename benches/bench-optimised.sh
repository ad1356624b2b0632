#!/usr/bin/env bash
# A bench binary built optimised, for real-time figures: part 2 of benches/critical_path.rs (the
# engine alone: a 10,000-step plan validated and run) and benches/sweep_scale.rs (the CLI sweeping
# many labs on moto). See BENCHMARKS.md.
#
# The profile `engine` inherits `release` (opt-level 3, no debug assertions) for teardown itself and
# every dependency on the engine's path (toml, toml_edit, winnow, serde, petgraph, indexmap,
# tokio, hyper, the smithy runtime, ...), but builds the AWS SDK service crates and aws-lc at
# opt-level 0: the engine never calls them, and optimising them is most of the ~12 minutes a clean
# release build takes on a 2-core machine. (The CLI does call them: sweep_scale's figures in this
# profile are for a binary whose generated SDK operation code is unoptimised.) The profile is
# defined here with --config, so Cargo.toml stays as it is; its build lives in target/engine/.
# The first build took ~20 minutes on a 2-core machine shared with other builds; later ones
# rebuild only teardown (~2 minutes).
#
#   bash benches/bench-optimised.sh                      # critical_path, all three parts
#   bash benches/bench-optimised.sh sweep_scale          # the sweep at scale (env as documented there)
#   bash benches/bench-optimised.sh critical_path --no-run   # build only
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${1:-critical_path}
args=(--config 'profile.engine.inherits="release"')
for crate in aws-sdk-ec2 aws-sdk-cloudformation aws-sdk-ecs aws-sdk-ecr aws-sdk-secretsmanager \
  aws-sdk-sns aws-sdk-eventbridge aws-sdk-cloudwatchlogs aws-sdk-sts aws-sdk-sso aws-sdk-ssooidc \
  aws-lc-sys aws-lc-rs; do
  args+=(--config "profile.engine.package.$crate.opt-level=0")
done
exec cargo bench "${args[@]}" --profile engine --bench "$bench" "${@:2}"
