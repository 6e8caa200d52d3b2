//! The CLI surface the lead wires into the `coffee-rt` binary.

use clap::{Parser, Subcommand};
use coffee_lab::{ApiVersion, LoadArgs};

/// Shaped like the `coffee-rt` binary: a top-level `--version` flag must not collide with
/// `load --version v2`.
#[derive(Parser)]
#[command(name = "coffee-rt", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Load(LoadArgs),
}

#[test]
fn load_args_parse() {
    let cli = Cli::try_parse_from(["coffee-rt", "load", "--version", "v2", "--rate", "500", "--duration", "1m 30s", "--json"]).unwrap();
    let Cmd::Load(a) = cli.cmd;
    assert_eq!(a.version, ApiVersion::V2);
    assert_eq!(a.rate, 500.0);
    assert_eq!(a.duration.as_secs(), 90);
    assert!(a.json);
    assert_eq!(a.url, "http://127.0.0.1:8005");
}

#[test]
fn load_args_reject_bad_values() {
    assert!(Cli::try_parse_from(["coffee-rt", "load", "--version", "v4", "--rate", "5"]).is_err());
    assert!(Cli::try_parse_from(["coffee-rt", "load", "--version", "v1", "--rate", "5", "--duration", "soon"]).is_err());
    assert!(Cli::try_parse_from(["coffee-rt", "load", "--rate", "5"]).is_err());
}
