//! coffee-lab: the load lab that finds where each coffee-rt ingestion path breaks. Its own
//! binary, `coffee-lab`, beside the product's `coffee-rt`.
//!
//! From the flags to the report:
//! * [`config`]: every flag and environment variable ([`Cli`]).
//! * [`load`]: the open-loop load generator (`coffee-lab load`) and the lab's HTTP client.
//! * [`ceilings`]: raw limits of the parts on this machine (PostgreSQL, Redis, Kafka, HTTP), so
//!   each path can be reported as a fraction of its real limit.
//! * [`sweep`]: steps the offered rate per path until it breaks (`coffee-lab bench sweep`).
//! * [`aggregator_bench`]: the v1 aggregator's full recompute against table size
//!   (`coffee-lab bench aggregator`, and part of the sweep).
//! * [`scale_out`]: `coffee-rt processor` instances draining a backlog (`bench scale-out`).
//! * [`backlog_bench`]: one processor in this process draining a backlog (`bench backlog`).
//! * [`dashboard_bench`]: WebSocket clients of the live dashboard (`bench ws`).
//! * [`durability`]: v2's acknowledgement durability by Redis persistence mode, and what
//!   `appendfsync always` costs (`bench durability`, docs/RELIABILITY.md).
//! * [`analytics_bench`]: the history queries on PostgreSQL and on ClickHouse against table
//!   size, and the warehouse sink's ingest rate (`bench analytics`, docs/ANALYTICS.md).
//! * [`repair_bench`]: how long after Redis loses everything the metrics are right again, at
//!   a given load on all three paths (`bench repair`, docs/RELIABILITY.md).
//! * [`soak`]: load on all three paths through random kills and restarts, then an audit of
//!   every acknowledged order (`coffee-lab soak`).
//! * [`results`]: what the benches measured, as data. [`report`] renders it (SCALE.md, ANALYTICS.md, the SVG
//!   plots, the tables); the results never import the report, nor the runners.
//! * Around them: [`procs`] (the one reader of /proc), [`children`] (`coffee-rt` child
//!   processes), [`scratch`] (scratch names and Redis keys), [`order`], [`prom`], [`oha`],
//!   [`machine`], [`api_version`].
//!
//! Pure logic (schedule, percentiles, Prometheus parsing, break detection, verdicts) has no IO
//! and is unit tested; IO lives in small modules around it.

pub mod aggregator_bench;
pub mod analytics_bench;
pub mod api_version;
pub mod backlog_bench;
pub mod ceilings;
pub mod children;
pub mod config;
pub mod dashboard_bench;
pub mod durability;
pub mod load;
pub mod machine;
pub mod oha;
pub mod order;
pub mod procs;
pub mod prom;
pub mod repair_bench;
pub mod report;
pub mod results;
pub mod scale_out;
pub mod scratch;
pub mod soak;
pub mod sweep;

pub use api_version::ApiVersion;
pub use config::{BenchCommand, Cli, Command};

/// Run one `coffee-lab` command.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Load(args) => load::load_command(args).await,
        Command::Bench(BenchCommand::Sweep(args)) => sweep::sweep_command(args).await,
        Command::Bench(BenchCommand::Aggregator(args)) => aggregator_bench::aggregator_command(args).await,
        Command::Bench(BenchCommand::ScaleOut(args)) => scale_out::scale_out_command(args).await,
        Command::Bench(BenchCommand::Ws(args)) => dashboard_bench::ws_command(args).await,
        Command::Bench(BenchCommand::Backlog(args)) => backlog_bench::backlog_command(args).await,
        Command::Bench(BenchCommand::Analytics(args)) => analytics_bench::analytics_command(args).await,
        Command::Bench(BenchCommand::Durability(args)) => durability::durability_command(args).await,
        Command::Bench(BenchCommand::Repair(args)) => repair_bench::repair_command(args).await,
        Command::Soak(args) => soak::soak_command(args).await,
    }
}
