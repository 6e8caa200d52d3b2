//! The `coffee-rt mv …` command surface.

use crate::bench::{self, BenchArgs};
use crate::eager_service::{self, EagerArgs};
use crate::serve::{self, ServeArgs};

#[derive(clap::Subcommand, Clone, Debug)]
pub enum MvCommand {
    /// Generate the paper-scale data set, run both strategies, report.
    Bench(BenchArgs),
    /// Run strategy B with the HTTP/WebSocket API.
    Serve(ServeArgs),
    /// Run strategy A, publishing per-account changes to a topic.
    Eager(EagerArgs),
}

pub async fn run(cmd: MvCommand) -> anyhow::Result<()> {
    match cmd {
        MvCommand::Bench(a) => bench::run(a).await,
        MvCommand::Serve(a) => serve::run(a).await,
        MvCommand::Eager(a) => eager_service::run(a).await,
    }
}
