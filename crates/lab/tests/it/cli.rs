//! The `coffee-lab` command line: the flags parse as documented, and the binary runs.

use clap::Parser;
use coffee_lab::config::{BenchCommand, LoadArgs};
use coffee_lab::{ApiVersion, Cli, Command};

fn load(args: &[&str]) -> Result<LoadArgs, clap::Error> {
    match Cli::try_parse_from(["coffee-lab", "load"].iter().chain(args))?.command {
        Command::Load(a) => Ok(a),
        Command::Bench(_) => panic!("parsed as a bench"),
        Command::Soak(_) => panic!("parsed as a soak"),
    }
}

#[test]
fn load_args_parse() {
    // A top-level `--version` flag must not collide with `load --version v2`.
    let a = load(&["--version", "v2", "--rate", "500", "--duration", "1m 30s", "--json"]).unwrap();
    assert_eq!(a.version, ApiVersion::V2);
    assert_eq!(a.rate, 500.0);
    assert_eq!(a.duration.as_secs(), 90);
    assert!(a.json);
    assert_eq!(a.url, "http://127.0.0.1:8005");
}

#[test]
fn load_args_reject_bad_values() {
    assert!(load(&["--version", "v4", "--rate", "5"]).is_err());
    assert!(load(&["--version", "v1", "--rate", "5", "--duration", "soon"]).is_err());
    assert!(load(&["--rate", "5"]).is_err());
}

#[test]
fn every_bench_is_a_subcommand() {
    for (name, line) in [
        ("sweep", vec!["sweep", "--quick"]),
        ("aggregator", vec!["aggregator", "--quick"]),
        ("scale-out", vec!["scale-out", "--records", "10"]),
        ("ws", vec!["ws", "--clients", "3"]),
        ("backlog", vec!["backlog", "--records", "10"]),
        ("analytics", vec!["analytics", "--quick"]),
        ("durability", vec!["durability", "--quick"]),
        ("repair", vec!["repair", "--rates", "200", "--fault", "flushall"]),
    ] {
        let cli = Cli::try_parse_from(["coffee-lab", "bench"].into_iter().chain(line)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Command::Bench(b) = cli.command else { panic!("{name} is not a bench") };
        let parsed = match b {
            BenchCommand::Sweep(_) => "sweep",
            BenchCommand::Aggregator(_) => "aggregator",
            BenchCommand::ScaleOut(_) => "scale-out",
            BenchCommand::Ws(_) => "ws",
            BenchCommand::Backlog(_) => "backlog",
            BenchCommand::Analytics(_) => "analytics",
            BenchCommand::Durability(_) => "durability",
            BenchCommand::Repair(_) => "repair",
        };
        assert_eq!(parsed, name);
    }
}

#[test]
fn the_services_are_the_products_variables() {
    // Only the product's names: one environment configures coffee-rt and coffee-lab alike.
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut envs = std::collections::BTreeSet::new();
    let mut stack = vec![&cmd];
    while let Some(c) = stack.pop() {
        envs.extend(c.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()));
        stack.extend(c.get_subcommands());
    }
    for e in &envs {
        assert!(
            e.starts_with("COFFEE_RT_") || ["DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS", "CLICKHOUSE_URL"].contains(&e.as_str()),
            "{e}"
        );
    }
    for e in ["DATABASE_URL", "REDIS_URL", "KAFKA_BROKERS", "COFFEE_RT_LAB_COMMAND"] {
        assert!(envs.contains(e), "{e} is not declared: {envs:?}");
    }
}

#[test]
fn the_binary_lists_its_commands() {
    let out = std::process::Command::new(crate::common::coffee_lab()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("load") && help.contains("bench"), "{help}");
    let out = std::process::Command::new(crate::common::coffee_lab()).args(["bench", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for b in ["sweep", "aggregator", "scale-out", "ws", "backlog", "analytics"] {
        assert!(help.contains(b), "bench {b} missing:\n{help}");
    }
}
