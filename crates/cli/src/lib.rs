//! The `coffee-rt` binary as a library: its configuration ([`config`], the one place that
//! declares flags and environment variables) and one module per role ([`commands`]), which wire
//! the crates together and hold no logic of their own.

pub mod commands;
pub mod config;
pub mod logging;
mod shutdown;

pub use config::Cli;

/// Runs the parsed command line to the end.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    use config::Command;
    // The long-running roles export metrics; the one-shot commands have nobody to scrape them.
    let role = match &cli.command {
        Command::Up(_) => Some("up"),
        Command::Serve(_) => Some("serve"),
        Command::Worker(_) => Some("worker"),
        Command::Processor(_) => Some("processor"),
        Command::Aggregate(_) => Some("aggregate"),
        Command::Warehouse(_) => Some("warehouse"),
        Command::Migrate(_) | Command::Reconcile(_) => None,
    };
    if let Some(role) = role {
        coffee_server::telemetry::prometheus();
        coffee_server::telemetry::set_build_info(role, env!("CARGO_PKG_VERSION"), env!("COFFEE_RT_REVISION"));
    }
    match cli.command {
        Command::Up(a) => commands::up::run(a).await,
        Command::Serve(a) => commands::serve::run(a).await,
        Command::Worker(a) => commands::worker::run(a).await,
        Command::Processor(a) => commands::processor::run(a).await,
        Command::Aggregate(a) => commands::aggregate::run(a).await,
        Command::Migrate(a) => commands::migrate::run(a).await,
        Command::Reconcile(a) => commands::reconcile::run(a).await,
        Command::Warehouse(a) => commands::warehouse::run(a).await,
    }
}
