//! The `coffee-rt` binary as a library: its configuration ([`config`], the one place that
//! declares flags and environment variables) and one module per role ([`commands`]), which wire
//! the crates together and hold no logic of their own.

pub mod commands;
pub mod config;
mod shutdown;

pub use config::Cli;

/// Runs the parsed command line to the end.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    use config::Command;
    match cli.command {
        Command::Up(a) => commands::up::run(a).await,
        Command::Serve(a) => commands::serve::run(a).await,
        Command::Worker(a) => commands::worker::run(a).await,
        Command::Processor(a) => commands::processor::run(a).await,
        Command::Aggregate(a) => commands::aggregate::run(a).await,
        Command::Migrate(a) => commands::migrate::run(a).await,
        Command::Reconcile(a) => commands::reconcile::run(a).await,
    }
}
