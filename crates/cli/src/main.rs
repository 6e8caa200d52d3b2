//! `coffee-rt`: one binary, one subcommand per process role.

mod commands;
mod shutdown;

/// glibc's malloc was a fifth of the API's CPU time under load (many small, short-lived
/// allocations per request across threads); mimalloc's thread-local free lists are cheaper.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "coffee-rt", version, about = "Real-time café order analytics over three ingestion paths, and the lab that measures them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process: HTTP API and dashboard, v2 worker, v1 aggregator, v3 processor.
    Up(commands::up::Args),
    /// The HTTP API and dashboard only.
    Serve(commands::serve::Args),
    /// A v2 stream worker (consumer group `order-workers`). Run as many as you like.
    Worker(commands::worker::Args),
    /// A v3 stream processor (consumer group `coffee-processors`). Run as many as there are partitions.
    Processor(commands::processor::Args),
    /// The v1 aggregator: recompute metrics from PostgreSQL into Redis.
    Aggregate(commands::aggregate::Args),
    /// Run the database migrations.
    Migrate(commands::migrate::Args),
    /// Offer a fixed rate of orders to one path, open loop, and report latency and freshness.
    Load(coffee_lab::LoadArgs),
    /// Benchmarks: `bench sweep` finds where each path breaks and writes docs/SCALE.md.
    #[command(subcommand)]
    Bench(coffee_lab::BenchCommand),
    /// The market-value engine of seed 002: `mv bench`, `mv serve` (lazy), `mv eager`.
    #[command(subcommand)]
    Mv(coffee_mv::cli::MvCommand),
    /// Compare the Redis metrics with PostgreSQL and print the drift; `--fix` repairs Redis.
    Reconcile(commands::reconcile::Args),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COFFEE_RT_LOG").unwrap_or_else(|_| "info,librdkafka=off,rdkafka=off".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up(a) => commands::up::run(a).await,
            Command::Serve(a) => commands::serve::run(a).await,
            Command::Worker(a) => commands::worker::run(a).await,
            Command::Processor(a) => commands::processor::run(a).await,
            Command::Aggregate(a) => commands::aggregate::run(a).await,
            Command::Migrate(a) => commands::migrate::run(a).await,
            Command::Reconcile(a) => commands::reconcile::run(a).await,
            Command::Load(a) => coffee_lab::load::load_command(a).await,
            Command::Bench(c) => coffee_lab::run_bench(c).await,
            Command::Mv(c) => coffee_mv::cli::run(c).await,
        }
    })
}
