//! `coffee-rt`: one binary, one subcommand per process role.

/// glibc's malloc was a fifth of the API's CPU time under load (many small, short-lived
/// allocations per request across threads); mimalloc's thread-local free lists are cheaper.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COFFEE_RT_LOG").unwrap_or_else(|_| "info,librdkafka=off,rdkafka=off".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = coffee_rt::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(coffee_rt::run(cli))
}
