//! `coffee-lab`: the load lab's binary; `coffee-lab --help` lists its commands.

/// The allocator of `coffee-rt` (crates/cli/src/main.rs), for the same reason: glibc's malloc
/// cost a fifth of the API's CPU under many small cross-thread allocations, and the generator
/// makes the same kind per request. Its CPU per request, which the sweep calibrates and reports,
/// is then measured as it was when the lab ran inside `coffee-rt`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use coffee_lab::config::{DEFAULT_LOG, LOG_ENV};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| DEFAULT_LOG.into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = coffee_lab::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(coffee_lab::run(cli.command))
}
