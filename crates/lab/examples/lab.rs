//! The lab's commands as a stand-alone binary, wired exactly as the `coffee-rt` binary should
//! wire them:
//!
//! `cargo run --release -p coffee-lab --example lab -- load --version v2 --rate 500 --duration 10s`
//! `cargo run --release -p coffee-lab --example lab -- bench sweep --quick`

use clap::{Parser, Subcommand};
use coffee_lab::{BenchCommand, LoadArgs};

#[derive(Parser)]
#[command(name = "coffee-lab", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Cmd {
    /// Offer a fixed rate of orders to one path, open loop.
    Load(LoadArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Load(args) => coffee_lab::load::load_command(args).await,
        Cmd::Bench(cmd) => coffee_lab::run_bench(cmd).await,
    }
}
