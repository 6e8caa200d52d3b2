#!/usr/bin/env bash
# Installs and starts what coffee-rt needs on a Debian machine, idempotently: PostgreSQL and
# Redis from Debian's packages, the Apache Kafka broker from Maven Central (KRaft, one node),
# and, for the tests, Chromium. A service that already answers is used as it is and left alone.
# Sourced by scripts/run and scripts/test.
set -euo pipefail

# Where the services this script starts keep their data (it survives restarts, as a real
# installation's does) and where downloaded jars are cached.
COFFEE_RT_STATE="${COFFEE_RT_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/coffee-rt}"
COFFEE_RT_CACHE="${COFFEE_RT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coffee-rt}"
# The defaults every coffee-rt command uses: a password role, because Debian's PostgreSQL asks
# for a password on 127.0.0.1 (scram-sha-256) and allows only `peer` on the socket.
export DATABASE_URL="${DATABASE_URL:-postgres://coffee:coffee@127.0.0.1:5432/coffee_rt}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' deploy/kafka/pom.xml)"
export COFFEE_RT_KAFKA_LIBS="${COFFEE_RT_KAFKA_LIBS:-$COFFEE_RT_CACHE/kafka-$KAFKA_VERSION-$(sha1sum deploy/kafka/pom.xml | cut -c1-8)/libs}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[1;31mcoffee-rt: %s\033[0m\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -ne 0 ]; then sudo "$@"; else "$@"; fi; }
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
# Seconds since the script started, for the step timings it prints.
step_started=$SECONDS
step() { log "$* (+$((SECONDS - step_started)) s)"; }

ensure_build_tools() {
  command -v cargo >/dev/null || die "cargo (Rust) is required: install it with rustup"
  command -v cc >/dev/null || apt_install build-essential
  # rdkafka builds librdkafka from source: it needs make, perl, zlib headers and pkg-config.
  for p in make perl pkg-config; do command -v "$p" >/dev/null || apt_install "$p"; done
  dpkg -s zlib1g-dev >/dev/null 2>&1 || apt_install zlib1g-dev
}

# host and port of a URL like postgres://user:pw@host:port/db or redis://host:port/0
url_host() { local r="${1#*://}"; r="${r#*@}"; r="${r%%/*}"; echo "${r%%:*}"; }
url_port() { local r="${1#*://}"; r="${r#*@}"; r="${r%%/*}"; [ "${r##*:}" != "$r" ] && echo "${r##*:}" || echo "$2"; }

ensure_postgres() {
  command -v psql >/dev/null || apt_install postgresql-client
  local host port
  host="$(url_host "$DATABASE_URL")"; port="$(url_port "$DATABASE_URL" 5432)"
  if ! port_open "$host" "$port"; then
    case "$host" in 127.0.0.1 | localhost) ;; *) die "nothing answers at $host:$port (DATABASE_URL)";; esac
    if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then step "installing PostgreSQL"; apt_install postgresql; fi
    local version cluster
    version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    cluster="$(pg_lsclusters -h 2>/dev/null | awk -v p="$port" '$3 == p { print $1 "/" $2; exit }')"
    if [ -z "$cluster" ]; then
      step "creating a PostgreSQL $version cluster on port $port"
      as_root pg_createcluster "$version" main --port "$port" >/dev/null
      cluster="$version/main"
    fi
    step "starting PostgreSQL $cluster"
    as_root pg_ctlcluster --skip-systemctl-redirect "${cluster%/*}" "${cluster#*/}" start
    for _ in $(seq 1 60); do pg_isready -q -h "$host" -p "$port" && break; sleep 0.5; done
    pg_isready -q -h "$host" -p "$port" || die "PostgreSQL $cluster did not start (see /var/log/postgresql)"
  fi
  # The default role: only on a local server, made through the socket with Debian's peer
  # authentication. A DATABASE_URL of your own is used as it is. pg_signal_backend lets it
  # `DROP DATABASE … WITH (FORCE)` the scratch databases of tests and benches while an
  # autovacuum worker is in them.
  if [ "$DATABASE_URL" = "postgres://coffee:coffee@127.0.0.1:5432/coffee_rt" ] \
    && [ "$(psql "postgres://coffee:coffee@127.0.0.1:5432/postgres" -tAc "SELECT pg_has_role('pg_signal_backend', 'MEMBER')" 2>/dev/null)" != t ]; then
    step "creating the PostgreSQL role coffee (password coffee, CREATEDB)"
    as_postgres psql -p "$port" -qc "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coffee') THEN CREATE ROLE coffee LOGIN CREATEDB PASSWORD 'coffee';
        ELSE ALTER ROLE coffee LOGIN CREATEDB PASSWORD 'coffee'; END IF; END \$\$;
        GRANT pg_signal_backend TO coffee;"
  fi
  local admin="${DATABASE_URL%/*}/postgres"
  psql "$admin" -tAc 'SELECT 1' >/dev/null || die "cannot log in to PostgreSQL as $admin"
}

ensure_redis() {
  local host port dir="$COFFEE_RT_STATE/redis"
  host="$(url_host "$REDIS_URL")"; port="$(url_port "$REDIS_URL" 6379)"
  if port_open "$host" "$port"; then return 0; fi
  case "$host" in 127.0.0.1 | localhost) ;; *) die "nothing answers at $host:$port (REDIS_URL)";; esac
  if ! command -v redis-server >/dev/null; then step "installing Redis"; apt_install redis-server; fi
  step "starting Redis on $host:$port (append-only file in $dir)"
  mkdir -p "$dir"
  # appendonly: an acknowledged v2 order is in the AOF before the stream entry is read, and a
  # restarted Redis replays it; everysec bounds the loss on a crash of the machine to ~1 s.
  redis-server --daemonize yes --bind "$host" --port "$port" --dir "$dir" --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" --save "" --appendonly yes --appendfsync everysec
  for _ in $(seq 1 60); do [ "$(redis-cli -h "$host" -p "$port" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.25; done
  die "Redis did not start (see $dir/redis.log)"
}

kafka_java() { java -Dlog4j2.configurationFile="$PWD/deploy/kafka/tools-log4j2.yaml" -cp "$COFFEE_RT_KAFKA_LIBS/*" "$@"; }

# Deletes the topics matching a regular expression (a bench's own), on the configured brokers.
kafka_delete_topics() {
  kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --delete --if-exists --topic "$1"
}

# Empties the world a bench runs in, named by DATABASE_URL, COFFEE_RT_NAMESPACE and COFFEE_RT_KAFKA_TOPIC:
# a fresh database needs a fresh namespace (the writers refuse a projection ahead of
# PostgreSQL) and a fresh topic (the old one would be replayed from offset 0 into it).
fresh_world() {
  psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS \"${DATABASE_URL##*/}\" WITH (FORCE)"
  redis-cli -u "$REDIS_URL" --scan --pattern "$COFFEE_RT_NAMESPACE*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null
  kafka_delete_topics "$COFFEE_RT_KAFKA_TOPIC(\.dead)?"
  sleep 1
}

# Ready means the broker answers a metadata request (an admin client's describe), not an open port.
kafka_ready() {
  kafka_java kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BROKERS" --describe --entity-type brokers \
    --entity-default >/dev/null 2>&1
}

ensure_kafka_jars() {
  [ -f "$COFFEE_RT_KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] && return 0
  mkdir -p "$(dirname "$COFFEE_RT_KAFKA_LIBS")"
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  step "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $COFFEE_RT_KAFKA_LIBS"
  local tmp="$COFFEE_RT_KAFKA_LIBS.partial"
  rm -rf "$tmp"
  mvn -B -q -f deploy/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
    || die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (the error is above); no stand-in broker is used"
  mv "$tmp" "$COFFEE_RT_KAFKA_LIBS"
}

ensure_kafka() {
  local host port dir="$COFFEE_RT_STATE/kafka"
  host="${KAFKA_BROKERS%%,*}"; port="${host##*:}"; host="${host%%:*}"
  ensure_kafka_jars
  if port_open "$host" "$port"; then
    for _ in $(seq 1 30); do kafka_ready && return 0; sleep 1; done
    die "something listens at $host:$port (KAFKA_BROKERS) but answers no Kafka metadata request"
  fi
  case "$host" in 127.0.0.1 | localhost) ;; *) die "nothing answers at $host:$port (KAFKA_BROKERS)";; esac
  mkdir -p "$dir/data"
  sed -e "s|@LOG_DIRS@|$dir/data|" -e "s|@PORT@|$port|" -e "s|@CONTROLLER_PORT@|$((port + 1))|" \
    deploy/kafka/server.properties >"$dir/server.properties"
  if [ ! -f "$dir/data/meta.properties" ]; then
    step "formatting the Kafka log directory $dir/data (KRaft)"
    kafka_java kafka.tools.StorageTool format -t "$(kafka_java kafka.tools.StorageTool random-uuid)" \
      -c "$dir/server.properties" >/dev/null
  fi
  step "starting Apache Kafka $KAFKA_VERSION on $host:$port (log in $dir/server.log)"
  local started=$SECONDS
  nohup java -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir" -Dlog4j2.configurationFile="$PWD/deploy/kafka/log4j2.yaml" \
    -cp "$COFFEE_RT_KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
  for _ in $(seq 1 90); do
    kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null || die "Kafka exited at start: $(tail -5 "$dir/stdout.log" "$dir/server.log" 2>/dev/null)"
    if kafka_ready; then step "Kafka answers metadata requests after $((SECONDS - started)) s"; return 0; fi
    sleep 0.5
  done
  die "Kafka did not become ready (see $dir/server.log)"
}

ensure_browser() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    step "installing Chromium and ChromeDriver"
    apt_install chromium chromium-driver
  fi
}

ensure_services() {
  ensure_build_tools
  ensure_postgres
  ensure_redis
  ensure_kafka
  ensure_clickhouse
}

# The warehouse's ClickHouse (ensure_clickhouse, CLICKHOUSE_URL).
. "$(dirname "${BASH_SOURCE[0]}")/tools/clickhouse.sh"
