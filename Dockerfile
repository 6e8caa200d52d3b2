# syntax=docker/dockerfile:1
# The coffee-rt image: one binary, every role chosen by its subcommand
# (`up`, `serve`, `worker`, `processor`, `aggregate`, `migrate`, `reconcile`).
#
#   docker build -t coffee-rt .                       # from the repository root
#   docker run --rm coffee-rt --version
#   docker run --rm -p 8005:8005 -e COFFEE_RT_INGEST_TOKEN=$(openssl rand -hex 32) \
#     -e COFFEE_RT_READ_TOKEN=$(openssl rand -hex 32) coffee-rt serve
#
# The image listens on 0.0.0.0, so `serve` and `up` refuse to start without their two tokens
# (COFFEE_RT_INGEST_TOKEN and COFFEE_RT_READ_TOKEN, or their *_FILE variants); no token is
# baked into the image.
#
# deploy/compose.yaml builds it; deploy/helm/coffee-rt runs it on Kubernetes. The build is the
# one scripts/run does (`cargo build --release --locked -p coffee-rt`), checked by the test
# `deploy_manifests` in crates/cli/tests/it.

# ---- build ---------------------------------------------------------------------------------
# The toolchain the workspace is built and tested with (rust-version in Cargo.toml is the floor).
FROM rust:1.95-bookworm AS build
# rdkafka builds librdkafka from source with its own configure script: it needs make, perl,
# pkg-config and zlib's headers (as scripts/services.sh installs on a bare machine). The rust
# image has them already; the line keeps the build honest if the base image slims down.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends make perl pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates crates
COPY migrations migrations
# `--version` and coffee_rt_build_info show the git revision, which crates/cli/build.rs takes
# from COFFEE_RT_REVISION when .git is absent (it is not in the build context):
#   docker build --build-arg COFFEE_RT_REVISION=$(git rev-parse --short=12 HEAD) .
# A build argument is in the environment of the RUN below, and in no layer of the image.
ARG COFFEE_RT_REVISION=
# The registry and the target directory live in BuildKit caches, so a rebuild compiles only
# what changed; the binary is copied out of the cache mount. The release profile keeps line
# tables (for backtraces); they are compressed instead of stripped, which halves the binary.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p coffee-rt \
 && objcopy --compress-debug-sections=zlib target/release/coffee-rt /usr/local/bin/coffee-rt \
 && /usr/local/bin/coffee-rt --version

# ---- run -----------------------------------------------------------------------------------
# The binary needs only glibc, libgcc_s and zlib (ldd), all in bookworm-slim already. busybox
# (0.8 MB, needs only libc) gives the Compose health checks an HTTP client (`busybox wget`);
# Kubernetes probes need nothing in the image.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 coffee \
 && useradd --system --uid 10001 --gid coffee --home-dir /nonexistent --shell /usr/sbin/nologin coffee
COPY --from=build /usr/local/bin/coffee-rt /usr/local/bin/coffee-rt
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# In a container the API must listen on every interface; the metrics listener of the other
# roles is off unless COFFEE_RT_METRICS_LISTEN is set (Compose and the chart set 0.0.0.0:9105).
ENV COFFEE_RT_LISTEN=0.0.0.0:8005
# 8005: the API, dashboard, /livez, /readyz, /metrics of `up` and `serve`;
# 9105: /livez, /readyz, /metrics of `worker`, `processor` and `aggregate --every`.
EXPOSE 8005 9105
STOPSIGNAL SIGTERM
ENTRYPOINT ["coffee-rt"]
CMD ["up"]
