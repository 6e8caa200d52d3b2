//! Every flag and environment variable of `coffee-lab`, in one place: [`Cli`] and the argument
//! groups it is made of. The environment variables are the product's own names (`DATABASE_URL`,
//! `REDIS_URL`, `KAFKA_BROKERS`, `COFFEE_RT_*`), so one environment configures both binaries.
//!
//! This module only declares; what the flags mean is in the runner that reads them (`impl`
//! blocks next to the code that uses them, e.g. `SweepArgs::plan` in `sweep/plan.rs`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ApiVersion;

/// The log filter's variable (tracing's `EnvFilter` syntax), read as `coffee-rt` and `coffee-mv`
/// read it, and the filter without it.
pub const LOG_ENV: &str = "COFFEE_RT_LOG";
pub const DEFAULT_LOG: &str = "info,librdkafka=off,rdkafka=off";

/// `coffee-lab`: the load lab of coffee-rt.
#[derive(Debug, Parser)]
#[command(name = "coffee-lab", version, about = "The load lab of coffee-rt: drives each ingestion path until it breaks")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Offer a fixed rate of orders to one path, open loop; report latency and freshness.
    Load(LoadArgs),
    /// Benchmarks: the whole sweep, and the benches of single parts.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Hours of abuse compressed: load on all three paths while workers, processors, Redis,
    /// PostgreSQL and the broker are killed and restarted, then a strict audit of every
    /// acknowledged order and of Redis against PostgreSQL; exits non-zero on any loss or drift.
    Soak(SoakArgs),
}

/// `coffee-lab bench ...`
#[derive(Debug, Clone, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum BenchCommand {
    /// Step the offered rate per path until it breaks; write docs/SCALE.md and SVG plots.
    Sweep(SweepArgs),
    /// The v1 aggregator's own breaking point: full-recompute time against table size
    /// (10k → 10M rows in a scratch database), compared with its interval.
    Aggregator(AggregatorArgs),
    /// The v3 processor alone draining a backlog (1M orders, 8 partitions) with 1, 2 and 4
    /// `coffee-rt processor` instances: records/s and CPU per instance.
    ScaleOut(ScaleOutArgs),
    /// The live dashboard's capacity: N WebSocket clients on one server, orders posted one at
    /// a time, the push latency (order POST → frame read by each client) and the server's RSS.
    Ws(WsArgs),
    /// One v3 processor in this process catching up on a backlog: records/s and peak RSS.
    Backlog(BacklogArgs),
    /// The history queries on PostgreSQL and on ClickHouse against table size (1M, 10M orders
    /// over a year): query times, on-disk size and compression, the warehouse sink's ingest
    /// rate; writes docs/ANALYTICS.md and its plots, and prints one JSON line.
    Analytics(AnalyticsArgs),
    /// v2's acknowledgement durability by Redis persistence mode (no AOF, `appendfsync
    /// everysec`, `always`): kill -9 of a private Redis mid-stream, acknowledged orders counted
    /// against PostgreSQL; and what `always` costs in p99, sustained rate and Redis CPU.
    /// Writes docs/durability-results.json and its section of docs/RELIABILITY.md.
    Durability(DurabilityArgs),
    /// How long after Redis loses everything (SIGKILL and an empty restart, or FLUSHALL) the
    /// metrics of v1, v2 and v3 are right again, under load on all three paths; then drift
    /// and lost acknowledged orders. Writes docs/repair-results.json.
    Repair(RepairArgs),
}

/// Connections of `coffee-lab load`'s pool unless told otherwise: what oha and wrk use by
/// default, order of magnitude, and enough for 40,000/s at 1.5 ms per request.
pub const DEFAULT_CONNECTIONS: usize = 64;

/// Arguments of `coffee-lab load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Ingestion path to load.
    #[arg(long = "version", value_enum)]
    pub version: ApiVersion,
    /// Offered rate, requests per second (open loop: sent on schedule whatever the server does).
    #[arg(long)]
    pub rate: f64,
    /// How long to offer load, e.g. `10s`, `2m`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8005")]
    pub url: String,
    /// Base URL whose `/metrics` holds the freshness histogram, when the orders are counted by
    /// another process than the one serving `--url` (a `worker` or `processor` started with
    /// `--metrics-listen`). Defaults to `--url`.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Print one JSON line instead of the table (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// How requests reach the server: `pooled` (a gateway's keep-alive pool: a due request
    /// takes the first free connection) or `clients` (independent terminals, one connection and
    /// every N-th request each). Either way a request that finds its connection busy is sent
    /// late, and the lateness counts in its latency.
    #[arg(long, value_enum, default_value = "pooled")]
    pub model: ModelKind,
    /// Connections of the pool, or number of clients.
    #[arg(long, default_value_t = DEFAULT_CONNECTIONS)]
    pub connections: usize,
    /// A request with no response this long after its intended send time is a `timeout`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Offer the same rate this long first, and leave it out of every figure (latency,
    /// errors, freshness): the run then measures the steady state, not its own cold start.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Longest wait after the run for accepted orders to be counted (freshness drain).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,
}

/// The `--model` flag; with `--connections` it makes a
/// [`ConnectionModel`](crate::results::load::ConnectionModel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    Pooled,
    Clients,
}

/// The services the benches use directly (the ceilings, the aggregator bench, the scale-out,
/// the dashboard and backlog benches), each in scratch state of its own: a database, a
/// namespace, a topic, created and removed.
#[derive(Debug, Clone, Args)]
pub struct Services {
    /// PostgreSQL URL of any database on the server; the benches create and drop scratch
    /// databases beside it (from the server's maintenance database `postgres`).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://coffee:coffee@127.0.0.1:5432/coffee_rt")]
    pub database_url: String,
    /// Redis URL (scratch keys and namespaces, removed after).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Kafka bootstrap servers (scratch topics, deleted after).
    #[arg(long = "brokers", value_name = "BROKERS", env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
}

/// Where the product binary is, for the benches that start `coffee-rt` processes.
#[derive(Debug, Clone, Default, Args)]
pub struct CoffeeRtBinary {
    /// The `coffee-rt` binary to start (default: `coffee-rt` in the directory of this
    /// executable, where cargo puts both).
    #[arg(long = "coffee-rt", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

/// The backlog a processor bench drains: orders produced to a scratch topic before any
/// processor runs.
#[derive(Debug, Clone, Args)]
pub struct BacklogSize {
    /// Orders in the backlog.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Partitions of the scratch topic: the most processor instances that can share the work.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
}

/// `coffee-lab bench sweep`
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Paths to sweep, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "v1,v2,v3")]
    pub versions: Vec<ApiVersion>,
    /// Two small steps per path with short durations, and the aggregator up to 100k rows
    /// (about a minute in all).
    #[arg(long)]
    pub quick: bool,
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8005")]
    pub url: String,
    /// Where SCALE.md and the plots go.
    #[arg(long, default_value = "docs")]
    pub out: PathBuf,
    /// Offered rates to step through (overrides the default ladder), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub rates: Option<Vec<f64>>,
    /// Length of each step (default 10s, 3s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub step_duration: Option<Duration>,
    /// p99 latency SLO of an order POST: a step over it breaks the path.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10ms")]
    pub slo_p99: Duration,
    /// Connections of the generator's pool (the connection model of the ladder).
    #[arg(long, default_value_t = DEFAULT_CONNECTIONS)]
    pub connections: usize,
    /// Independent clients (one connection each, like POS terminals) for the second connection
    /// model, run at 1,000/s and at each path's highest held rate; 0 skips it.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Offered before each step and left out of its figures (default 2s, 1s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// The oha binary for the cross-check of each path's highest held rate.
    #[arg(long, default_value = "oha")]
    pub oha: String,
    /// Skip the cross-check with oha (it is skipped with --quick too).
    #[arg(long)]
    pub no_oha: bool,
    /// Skip the processor's scale-out bench (it is skipped with --quick too).
    #[arg(long)]
    pub no_scale_out: bool,
    /// Records of the scale-out bench's backlog.
    #[arg(long, default_value_t = 1_000_000)]
    pub scale_out_records: u64,
    /// Freshness p99 SLO of the streaming paths (v2, v3); v1's freshness is its aggregator
    /// interval by design and is judged by its drain only.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub freshness_slo: Duration,
    /// Backlog gauge per path on /metrics, e.g. `v2=coffee_rt_v2_consumer_lag_entries` (repeatable;
    /// replaces the defaults v2=coffee_rt_v2_consumer_lag_entries, v3=coffee_rt_v3_consumer_lag_records).
    #[arg(long = "backlog-metric", value_parser = parse_gauge_flag)]
    pub backlog_metrics: Vec<(ApiVersion, String)>,
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub coffee_rt: CoffeeRtBinary,
    /// Full URL of a validation-only order route for the HTTP ceiling (default:
    /// `{url}/api/validate`, the server's own).
    #[arg(long)]
    pub validate_url: Option<String>,
    /// Skip the raw ceilings.
    #[arg(long)]
    pub no_ceilings: bool,
    /// Skip the v1 aggregator's table-size bench (run after the paths, in a scratch database).
    #[arg(long)]
    pub no_aggregator: bool,
    /// Largest table for the aggregator bench (default 10M, 100k with --quick).
    #[arg(long)]
    pub aggregator_max_rows: Option<u64>,
    /// Stop stepping when the whole sweep would run past this (default 19m, 170s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub budget: Option<Duration>,
    /// The command SCALE.md gives for reproducing the run (a wrapper script names itself
    /// here); default: this process's command line.
    #[arg(long, env = "COFFEE_RT_LAB_COMMAND", value_name = "COMMAND")]
    pub report_command: Option<String>,
}

/// `coffee-lab bench aggregator`
#[derive(Debug, Clone, Args)]
pub struct AggregatorArgs {
    /// Grow the table only up to 100k rows.
    #[arg(long)]
    pub quick: bool,
    /// Largest table size (default 10M, 100k with --quick); a size off the 10k/100k/1M/10M
    /// ladder is added as the last step.
    #[arg(long)]
    pub max_rows: Option<u64>,
    #[command(flatten)]
    pub services: Services,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `coffee-lab bench scale-out`
#[derive(Debug, Clone, Args)]
pub struct ScaleOutArgs {
    #[command(flatten)]
    pub coffee_rt: CoffeeRtBinary,
    #[command(flatten)]
    pub backlog: BacklogSize,
    /// Instance counts to measure, comma separated; each drains the whole backlog afresh.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub instances: Vec<usize>,
    #[command(flatten)]
    pub services: Services,
    /// A run whose drain takes longer than this fails.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20m")]
    pub drain_timeout: Duration,
}

/// `coffee-lab bench ws`
#[derive(Debug, Clone, Args)]
pub struct WsArgs {
    /// A running server that runs the v2 worker too (as `coffee-rt up` does); without it the
    /// bench starts `coffee-rt serve` and `coffee-rt worker` on a scratch database and
    /// namespace, and removes them after.
    #[arg(long)]
    pub url: Option<String>,
    /// The pid of `--url`'s server, for its RSS.
    #[arg(long)]
    pub pid: Option<u32>,
    /// WebSocket clients of the dashboard.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Orders posted, one at a time.
    #[arg(long, default_value_t = 50)]
    pub orders: usize,
    #[command(flatten)]
    pub services: Services,
    #[command(flatten)]
    pub coffee_rt: CoffeeRtBinary,
}

/// `coffee-lab bench backlog`
#[derive(Debug, Clone, Args)]
pub struct BacklogArgs {
    #[command(flatten)]
    pub backlog: BacklogSize,
    /// The processor's window: longest a record waits in its partition's batch.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// The processor consumer's `fetch.wait.max.ms`.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub fetch_wait: Duration,
    #[command(flatten)]
    pub services: Services,
}

/// `coffee-lab bench analytics`
#[derive(Debug, Clone, Args)]
pub struct AnalyticsArgs {
    /// A smoke run: 20k orders, 3 timed runs per query.
    #[arg(long)]
    pub quick: bool,
    /// Table sizes in orders, comma separated, `k`/`M` suffixes allowed (default 1M,10M;
    /// 20k with --quick). Each size needs free disk for PostgreSQL and ClickHouse, checked
    /// before anything runs: 100M does not fit on a small disk, and the bench says so.
    #[arg(long, value_delimiter = ',', value_parser = parse_rows)]
    pub sizes: Option<Vec<u64>>,
    /// Timed runs of each query on each store, after one warm-up run (default 10, 3 with
    /// --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
    /// Days of history the orders are spread over evenly, ending at today's midnight (at most
    /// 400: the longest range of an hourly history query).
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(31..=400))]
    pub days: u32,
    /// The café's time zone: the buckets' boundaries (as `coffee-rt`'s `--timezone`).
    #[arg(long, env = "COFFEE_RT_TIMEZONE", default_value = "UTC")]
    pub timezone: chrono_tz::Tz,
    /// ClickHouse's HTTP interface; the bench creates and drops scratch databases there.
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    pub clickhouse_url: String,
    /// Where ANALYTICS.md and its plots go.
    #[arg(long, default_value = "docs")]
    pub out: PathBuf,
    /// The command ANALYTICS.md gives for reproducing the run; default: this process's
    /// command line.
    #[arg(long, env = "COFFEE_RT_LAB_COMMAND", value_name = "COMMAND")]
    pub report_command: Option<String>,
    #[command(flatten)]
    pub services: Services,
}

/// `coffee-lab bench durability`
#[derive(Debug, Clone, Args)]
pub struct DurabilityArgs {
    /// A smoke run: one trial per mode and scenario, short phases, a two-step rate ladder
    /// (about a minute for the three modes).
    #[arg(long)]
    pub quick: bool,
    /// Redis persistence modes to measure, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "none,everysec,always")]
    pub modes: Vec<RedisAof>,
    /// Kill scenarios, comma separated: `live` (the worker consumes as the orders arrive, as in
    /// production) and `backlog` (the worker starts only after Redis is back, so every
    /// acknowledged order is still in the stream at the kill: Redis's own durability).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "live,backlog")]
    pub scenarios: Vec<KillScenario>,
    /// Kill trials per mode and scenario (default 3, 1 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub trials: Option<u32>,
    /// Offered rate of v2 orders during a kill trial, orders/s (default 1000, 300 with --quick).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Posting before the kill (default 3s, 1s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub before_kill: Option<Duration>,
    /// Posting after Redis answers again (default 2s, 1s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub after_restart: Option<Duration>,
    /// Longest wait after the posting for the worker to drain into PostgreSQL.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub drain_timeout: Duration,
    /// Skip the cost of `always` (p99, sustained rate, Redis CPU per order).
    #[arg(long)]
    pub no_cost: bool,
    /// The fixed moderate rate of the cost's p99 and CPU runs, orders/s.
    #[arg(long, default_value_t = 1000.0)]
    pub cost_rate: f64,
    /// Length of each fixed-rate cost run (default 10s, 2s with --quick); each mode runs three
    /// times, alternating, and the median is reported.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub cost_duration: Option<Duration>,
    /// Offered rates of the sustained-rate ladder, comma separated (default
    /// 250,500,1000,2000,4000,6000,8000,12000,16000; 1000,2000 with --quick); it stops at the
    /// first rate whose p99 passes `--slo-p99` or that sheds anything, twice in a row.
    #[arg(long, value_delimiter = ',')]
    pub ladder: Option<Vec<f64>>,
    /// Length of each ladder step after its 1 s warm-up (default 4s, 1s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub step_duration: Option<Duration>,
    /// p99 bound of the sustained rate.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10ms")]
    pub slo_p99: Duration,
    /// Skip the raw Redis loop (XADD alone, XADD + WAITAOF 1 0, XADD + WAIT 1 to a replica).
    #[arg(long)]
    pub no_raw: bool,
    /// Length of each raw loop (default 3s, 1s with --quick).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub raw_duration: Option<Duration>,
    /// Concurrent connections of the raw loop, each one command (or pair) at a time.
    #[arg(long, default_value_t = 8)]
    pub raw_clients: usize,
    /// Where the results go (JSON).
    #[arg(long, default_value = "docs/durability-results.json")]
    pub out: PathBuf,
    /// The document whose section "v2 durability by Redis persistence mode" is (re)written;
    /// the rest of it is kept.
    #[arg(long, default_value = "docs/RELIABILITY.md")]
    pub doc: PathBuf,
    /// The command the document gives for reproducing the run; default: this process's
    /// command line.
    #[arg(long, env = "COFFEE_RT_LAB_COMMAND", value_name = "COMMAND")]
    pub report_command: Option<String>,
    /// PostgreSQL URL of any database on the server: each trial creates a scratch database
    /// beside it and drops it after. (Redis is a private `redis-server` per trial.)
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://coffee:coffee@127.0.0.1:5432/coffee_rt")]
    pub database_url: String,
    /// Kafka bootstrap servers: `serve` creates its v3 topic at start, a scratch one here,
    /// deleted after.
    #[arg(long = "brokers", value_name = "BROKERS", env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    #[command(flatten)]
    pub coffee_rt: CoffeeRtBinary,
}

/// `coffee-lab bench repair`
#[derive(Debug, Clone, Args)]
pub struct RepairArgs {
    /// Offered rates, orders/s over all three paths together (a third each), comma separated;
    /// each rate and fault is a trial in a world of its own.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    pub rates: Vec<f64>,
    /// How Redis loses everything, comma separated: `kill` (SIGKILL, down `--down`, started
    /// again empty on the same port) and `flushall` (FLUSHALL on the running Redis).
    #[arg(long = "fault", value_enum, value_delimiter = ',', default_value = "kill,flushall")]
    pub faults: Vec<RedisLoss>,
    /// Load before the fault.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub warmup: Duration,
    /// Load after Redis is back (longer while a version has not recovered, up to
    /// `--recovery-cap`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s")]
    pub after: Duration,
    /// How long a killed Redis stays down before it is started again.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub down: Duration,
    /// How often Redis's totals are read while waiting for the recovery.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "100ms")]
    pub poll: Duration,
    /// A version not recovered this long after Redis is back is reported "not recovered".
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub recovery_cap: Duration,
    /// Longest wait after the load for the pipelines to drain before the drift check.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub drain_timeout: Duration,
    /// Interval of `coffee-rt up`'s v1 aggregator (its `--aggregate-every`; the product's
    /// default).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub aggregate_every: Duration,
    /// Keep-alive connections of each path's load.
    #[arg(long, default_value_t = DEFAULT_CONNECTIONS)]
    pub connections: usize,
    /// Where the results go (JSON).
    #[arg(long, default_value = "docs/repair-results.json")]
    pub out: PathBuf,
    /// The command the results give for reproducing the run; default: this process's
    /// command line.
    #[arg(long, env = "COFFEE_RT_LAB_COMMAND", value_name = "COMMAND")]
    pub report_command: Option<String>,
    /// PostgreSQL URL of any database on the server: each trial creates a scratch database
    /// beside it and drops it after. (Redis is a private `redis-server` per trial.)
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://coffee:coffee@127.0.0.1:5432/coffee_rt")]
    pub database_url: String,
    /// Kafka bootstrap servers: each trial's `coffee-rt up` uses a scratch topic and group
    /// there; the topic is deleted after.
    #[arg(long = "brokers", value_name = "BROKERS", env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    #[command(flatten)]
    pub coffee_rt: CoffeeRtBinary,
}

/// The `--fault` flag of `bench repair`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisLoss {
    Kill,
    Flushall,
}

/// The `--scenarios` flag of `bench durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillScenario {
    Live,
    Backlog,
}

/// `coffee-lab soak`
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// How long the load and the faults last (the audit comes after), e.g. `5m`, `30m`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30m")]
    pub duration: Duration,
    /// Offered rate as a fraction of the capacity a short closed-loop probe measures.
    #[arg(long, default_value_t = 0.5)]
    pub fraction: f64,
    /// Offered rate in orders/s over all three paths (replaces the probe and `--fraction`).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seed of the fault schedule and of the order mix (default: drawn, and printed in the
    /// results so a run can be repeated).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the results go (JSON).
    #[arg(long, default_value = "docs/soak-results.json")]
    pub out: PathBuf,
    /// Where the plot of every process's RSS over time goes (SVG, the faults marked).
    #[arg(long, default_value = "docs/soak-rss.svg")]
    pub plot: PathBuf,
    /// Shortest time between two faults.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    pub fault_min_gap: Duration,
    /// Longest time between two faults.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub fault_max_gap: Duration,
    /// The private Redis's persistence: `always` (appendfsync always), `everysec`, or `none`
    /// (no AOF: a restart loses every key, and the audit shows what that costs).
    #[arg(long, value_enum, default_value = "always")]
    pub redis_aof: RedisAof,
    /// `coffee-rt serve` processes (the load alternates between them).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub servers: u8,
    /// `coffee-rt worker` processes (v2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub workers: u8,
    /// `coffee-rt processor` processes (v3).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub processors: u8,
    /// Longest wait after the load for the workers and processors to drain before the audit.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3m")]
    pub drain_timeout: Duration,
    #[command(flatten)]
    pub coffee_rt: CoffeeRtBinary,
}

/// The `--redis-aof` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RedisAof {
    Always,
    Everysec,
    None,
}

/// Parse a row count: `20000`, `20k`, `1M`, `2.5M` (the `--sizes` flag).
pub fn parse_rows(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| format!("expected a row count like 20k, 1M or 1000000, got {s:?}"))?;
    let rows = v * mult;
    if !(rows >= 1.0 && rows.fract() == 0.0 && rows <= 1e12) {
        return Err(format!("{s:?} is not a whole number of rows ≥ 1"));
    }
    Ok(rows as u64)
}

/// Parse `v2=coffee_rt_v2_consumer_lag_entries` (the `--backlog-metric` flag).
pub fn parse_gauge_flag(s: &str) -> Result<(ApiVersion, String), String> {
    let (v, name) = s.split_once('=').ok_or_else(|| format!("expected VERSION=METRIC, got {s:?}"))?;
    let version = <ApiVersion as ValueEnum>::from_str(v.trim(), true)?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("empty metric name in {s:?}"));
    }
    Ok((version, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_flag() {
        assert_eq!(
            parse_gauge_flag("v2=coffee_rt_v2_consumer_lag_entries").unwrap(),
            (ApiVersion::V2, "coffee_rt_v2_consumer_lag_entries".into())
        );
        assert!(parse_gauge_flag("v9=x").is_err());
        assert!(parse_gauge_flag("v2=").is_err());
        assert!(parse_gauge_flag("v2").is_err());
    }

    #[test]
    fn row_counts() {
        assert_eq!(parse_rows("20k").unwrap(), 20_000);
        assert_eq!(parse_rows("1M").unwrap(), 1_000_000);
        assert_eq!(parse_rows("2.5M").unwrap(), 2_500_000);
        assert_eq!(parse_rows(" 1000 ").unwrap(), 1_000);
        assert!(parse_rows("0").is_err());
        assert!(parse_rows("1.5").is_err());
        assert!(parse_rows("M").is_err());
        assert!(parse_rows("ten").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
