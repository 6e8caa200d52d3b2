//! `coffee-mv`: the market-value engine's own program. `bench` measures both strategies,
//! `serve` runs strategy B behind its HTTP/WebSocket API, `eager` runs strategy A.

/// mimalloc, measured against glibc's malloc at 1 % (`coffee-mv bench --scale 0.01 --duration-s 3
/// --saturation-s 2 --no-doc`, two runs each, load average 1.5–3): strategy B, the one served,
/// p50 0.30 ms against 0.39 ms at 10× and 376–380 k against 272–335 k updates/s, as its many
/// small overviews and frames are allocated and freed across threads. It costs ~14 MB of RSS,
/// and A's back-to-back rate (1.1 M against 1.8 M updates/s, 13,000× the paper's rate either
/// way). The published figures in docs/MARKET_VALUE.md were measured with it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use coffee_mv::config::Command;
use coffee_mv::{Cli, bench, eager_service, serve, shutdown};

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
        let stop = shutdown::on_signal();
        match cli.command {
            Command::Bench(a) => bench::run(a, stop).await,
            Command::Serve(a) => serve::run(a, stop).await,
            Command::Eager(a) => eager_service::run(a, stop).await,
        }
    })
}
