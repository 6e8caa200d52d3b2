#!/usr/bin/env bash
# Installs and starts what coffee-rt needs on a Debian machine, idempotently:
# PostgreSQL, Redis, the Kafka-protocol broker nisshi, and (with --browser) Chromium.
# Sourced by scripts/run and scripts/test.
set -euo pipefail

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
need_root() { if [ "$(id -u)" -ne 0 ]; then sudo "$@"; else "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then need_root apt-get update -qq; apt_updated=1; fi
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 "${3:-60}"); do port_open "$1" "$2" && return 0; sleep 0.5; done
  echo "nothing answers on $1:$2" >&2; return 1
}

ensure_build_tools() {
  command -v cargo >/dev/null || { echo "cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }
  command -v cc >/dev/null || apt_install build-essential
  # rdkafka builds librdkafka from source: it needs make, perl, zlib headers and pkg-config.
  for p in make perl pkg-config; do command -v "$p" >/dev/null || apt_install "$p"; done
  dpkg -s zlib1g-dev >/dev/null 2>&1 || apt_install zlib1g-dev
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null; then log "installing PostgreSQL"; apt_install postgresql; fi
  if ! port_open 127.0.0.1 5432; then
    log "starting PostgreSQL"
    need_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    wait_port 127.0.0.1 5432
  fi
}

ensure_redis() {
  if ! command -v redis-server >/dev/null; then log "installing Redis"; apt_install redis-server; fi
  if ! port_open 127.0.0.1 6379; then
    log "starting Redis"
    mkdir -p /tmp/coffee-rt-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp/coffee-rt-redis --logfile /tmp/coffee-rt-redis/redis.log
    wait_port 127.0.0.1 6379
  fi
}

# The broker: nisshi (formerly tansu) speaks the Kafka protocol and keeps its log in
# PostgreSQL, so it survives restarts. Any Kafka or Redpanda works in its place (KAFKA_BROKERS).
ensure_broker() {
  local brokers="${KAFKA_BROKERS:-127.0.0.1:9092}"
  local host="${brokers%%:*}" port="${brokers##*:}"
  port="${port%%,*}"
  if port_open "$host" "$port"; then return 0; fi
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v nisshi >/dev/null; then
    log "installing the nisshi broker from crates.io (about 11 minutes on 2 cores)"
    cargo install nisshi --locked --ignore-rust-version --no-default-features --features dynostore,postgres
  fi
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='nisshi'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE nisshi"
  log "starting nisshi on $host:$port"
  mkdir -p /tmp/coffee-rt-broker
  nohup nisshi broker --listener-url "tcp://$host:$port" --advertised-listener-url "tcp://$host:$port" \
    --storage-engine "postgres://postgres@127.0.0.1/nisshi?sslmode=disable" \
    --group-initial-rebalance-delay 0s >/tmp/coffee-rt-broker/nisshi.log 2>&1 &
  wait_port "$host" "$port" 120
}

ensure_browser() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing Chromium and ChromeDriver"
    apt_install chromium chromium-driver
  fi
}

ensure_services() {
  ensure_build_tools
  ensure_postgres
  ensure_redis
  ensure_broker
}
