# syntax=docker/dockerfile:1
#
# teardown as a small, non-root container image, for unattended sweeps (deploy/README.md).
#
#   docker build -t teardown .
#   docker run --rm -e AWS_REGION=us-west-2 -e AWS_ACCESS_KEY_ID ... teardown \
#       sweep plans/stale-labs-sweep.toml            # a dry run; add --apply --yes to delete
#
# Not built on the machine this was written on (it has no Docker engine); it is linted with
# hadolint by deploy/check.sh.

# The locked AWS SDK crates need Rust 1.94.1 or newer (Cargo.lock); keep the two Debian releases
# equal so that the binary's glibc is the runtime's.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# The SDK's TLS (rustls with aws-lc-rs) builds its C part with the gcc that the rust image has.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin teardown \
 && install -D -m 0755 target/release/teardown /out/teardown

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: the SDK trusts the system's roots (rustls-native-certs). Not pinned to a version
# (DL3008): Debian replaces it with each security update, and an old pin would stop the build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 teardown \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin teardown \
 && mkdir -p /var/lib/teardown/runs \
 && chown -R 10001:10001 /var/lib/teardown
COPY --from=builder /out/teardown /usr/local/bin/teardown
WORKDIR /opt/teardown
COPY plans/ ./plans/
# Audit logs and run journals go here; it is a volume so that the image also runs with a read-only
# root filesystem (docker run --read-only; ECS Fargate bind mounts take this owner from the image).
ENV TEARDOWN_RUNS_DIR=/var/lib/teardown/runs
VOLUME ["/var/lib/teardown"]
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/teardown"]
CMD ["--help"]
