//! Every flag and environment variable of `coffee-mv`, in one place.
//!
//! Environment variables are the project's families only: `DATABASE_URL` and `KAFKA_BROKERS`
//! (declared once, in [`Services`]) and `COFFEE_RT_MV_*`. The service flags (`serve`, `eager`)
//! all have one, for deployments; the bench's flags are for the command line.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Set by the bench on the copy of itself it starts for each strategy (JSON of the child's job).
/// Not configuration: nobody sets it by hand.
pub(crate) const BENCH_CHILD_ENV: &str = "COFFEE_RT_MV_BENCH_CHILD";

#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "coffee-mv",
    version,
    about = "Market value engine: values every holding and open order at live prices, eagerly (strategy A) or on demand (strategy B)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Clone, Debug)]
pub enum Command {
    /// Generate the paper-scale data set, run both strategies, report.
    Bench(BenchArgs),
    /// Run strategy B with the HTTP/WebSocket API.
    Serve(ServeArgs),
    /// Run strategy A, publishing per-account changes to a topic.
    Eager(EagerArgs),
}

/// Where PostgreSQL and the broker are.
#[derive(clap::Args, Clone, Debug)]
pub struct Services {
    /// PostgreSQL URL. `serve` and `eager` rebuild from its `mv_holdings` and `mv_orders` (created
    /// when missing); `bench` creates a scratch database on the same server and drops it after.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://coffee:coffee@127.0.0.1:5432/coffee_mv")]
    pub database_url: String,
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
}

/// Where a strategy's state comes from: the PostgreSQL snapshot and two topics.
#[derive(clap::Args, Clone, Debug)]
pub struct SourceArgs {
    #[command(flatten)]
    pub services: Services,
    /// Price updates, keyed by instrument.
    #[arg(long, env = "COFFEE_RT_MV_PRICE_TOPIC", default_value = "mv.prices")]
    pub price_topic: String,
    /// Holding and order changes, keyed by account / order id.
    #[arg(long, env = "COFFEE_RT_MV_POSITION_TOPIC", default_value = "mv.positions")]
    pub position_topic: String,
    /// Partitions for topics this process has to create.
    #[arg(long, env = "COFFEE_RT_MV_PARTITIONS", default_value_t = 4)]
    pub partitions: i32,
}

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Address for the HTTP/WebSocket API.
    #[arg(long, env = "COFFEE_RT_MV_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
}

#[derive(clap::Args, Clone, Debug)]
pub struct EagerArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Where per-account changes go.
    #[arg(long, env = "COFFEE_RT_MV_OUTPUT_TOPIC", default_value = "mv.account-changes")]
    pub output_topic: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Eager hierarchical aggregation.
    A,
    /// Hybrid lazy with WebSocket push.
    B,
}

impl Strategy {
    pub fn label(self) -> &'static str {
        match self {
            Strategy::A => "A-eager",
            Strategy::B => "B-lazy",
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// 0.01, 0.1 or 1 (1 = 5,000 accounts × 5,000 instruments, 25 M
    /// holdings, 50 M orders). Other values are accepted for smoke tests.
    #[arg(long, default_value_t = 0.01)]
    pub scale: f64,
    /// Print one JSON line per strategy.
    #[arg(long)]
    pub json: bool,
    /// Seed of the generated data set and price updates.
    #[arg(long, default_value_t = 6)]
    pub seed: u64,
    /// Seconds per paced run (paper rate, then 10×).
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Seconds of the back-to-back saturation run.
    #[arg(long, default_value_t = 3.0)]
    pub saturation_s: f64,
    #[command(flatten)]
    pub services: Services,
    /// Go through PostgreSQL even at full scale.
    #[arg(long)]
    pub via_postgres: bool,
    /// Intraday position changes published for the rebuild to replay.
    #[arg(long, default_value_t = 20_000)]
    pub position_events: u64,
    /// Strategy B: WebSocket clients, each watching this many accounts.
    #[arg(long, default_value_t = 10)]
    pub ws_clients: usize,
    #[arg(long, default_value_t = 5)]
    pub accounts_per_client: usize,
    /// Report to (re)write; results for other scales already in it are kept.
    #[arg(long, default_value = "docs/MARKET_VALUE.md")]
    pub doc: PathBuf,
    #[arg(long)]
    pub no_doc: bool,
    #[arg(long, value_delimiter = ',', default_value = "a,b")]
    pub strategies: Vec<Strategy>,
    /// Keep the bench's scratch database afterwards (its name is logged).
    #[arg(long)]
    pub keep_db: bool,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn environment_variables_are_the_projects_families() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
                    assert!(
                        matches!(env, "DATABASE_URL" | "KAFKA_BROKERS") || env.starts_with("COFFEE_RT_MV_"),
                        "{} --{}: {env}",
                        sub.get_name(),
                        arg.get_id()
                    );
                }
            }
        }
    }
}
