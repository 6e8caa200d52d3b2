//! `docs/CONFIGURATION.md` is generated from the clap definitions of the three programs; this
//! test fails when the file and the code disagree. `COFFEE_RT_UPDATE_DOCS=1 cargo test -p
//! coffee-rt --test it configuration` rewrites it.

use clap::CommandFactory;

const INTRO: &str = "# Configuration

Every setting of the three programs, generated from their command-line definitions (the test
`configuration` in `crates/cli/tests/it` fails when this file is out of date; run it with
`COFFEE_RT_UPDATE_DOCS=1` to rewrite it). Each flag can be given as the environment variable
beside it. The names are `COFFEE_RT_*`, plus the ecosystem's `DATABASE_URL`, `REDIS_URL` and
`KAFKA_BROKERS`, which the three programs read alike.

";

#[test]
fn the_configuration_document_is_up_to_date() {
    let mut expected = INTRO.to_owned();
    for program in [coffee_rt::Cli::command(), coffee_lab::Cli::command(), coffee_mv::Cli::command()] {
        expected.push_str(&coffee_testkit::config_doc::render(&program));
        expected.push('\n');
    }
    let expected = expected.trim_end().to_owned() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CONFIGURATION.md");
    if std::env::var_os("COFFEE_RT_UPDATE_DOCS").is_some() {
        std::fs::write(path, &expected).expect("write docs/CONFIGURATION.md");
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/CONFIGURATION.md is out of date; rewrite it with `COFFEE_RT_UPDATE_DOCS=1 cargo test -p coffee-rt --test it configuration`"
    );
}
