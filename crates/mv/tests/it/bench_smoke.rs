//! The bench path at a tiny scale, in process: PostgreSQL, topics, both
//! strategies, the WebSocket clients and the report renderer all run.

use super::common::{PG_SERVER, require_broker};
use clap::Parser;
use coffee_mv::Cli;
use coffee_mv::bench::{self, report};
use coffee_mv::config::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_both_strategies_at_tiny_scale() {
    let brokers = require_broker();
    let Command::Bench(mut args) =
        Cli::parse_from(["coffee-mv", "bench", "--scale", "0.001", "--duration-s", "0.6", "--saturation-s", "0.2"]).command
    else {
        unreachable!("parsed as bench")
    };
    // The bench creates (and drops) a scratch database of its own on this server.
    args.services.database_url = PG_SERVER.into();
    args.services.brokers = brokers;
    args.position_events = 300;
    let results = bench::run_in_process(&args).await.unwrap();
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!((r.accounts, r.instruments, r.holdings, r.orders), (5, 5_000, 25_000, 50_000));
        assert_eq!(r.source, "postgres");
        assert_eq!(r.rebuild_topic_events, 5_000 + 300);
        assert!(r.updates_per_s > 100.0, "{r:?}");
        assert_eq!(r.runs.len(), 2);
        assert!(r.update_latency_ms.p99 > 0.0 && r.update_latency_ms.p50 <= r.update_latency_ms.p99);
        assert!(r.output_msgs_per_s > 0.0);
    }
    assert_eq!(results[0].strategy, "A-eager");
    assert_eq!(results[1].watched_accounts, Some(5));
    // Rendering keeps earlier results and the raw block parses back.
    let dir = std::env::temp_dir().join(super::common::unique("mvdoc"));
    let doc = dir.join("MARKET_VALUE.md");
    report::write_doc(&doc, &results).unwrap();
    let mut other = results[0].clone();
    other.scale = 0.5;
    report::write_doc(&doc, &[other]).unwrap();
    let text = std::fs::read_to_string(&doc).unwrap();
    assert_eq!(text.matches("{\"strategy\":").count(), 3, "{text}");
    // Hand-written findings survive a rewrite.
    std::fs::write(
        &doc,
        text.replace(
            "(hand-written, kept when the bench rewrites this file) -->\n",
            "(hand-written, kept when the bench rewrites this file) -->\nA finding.\n",
        ),
    )
    .unwrap();
    report::write_doc(&doc, &results[..1]).unwrap();
    let text = std::fs::read_to_string(&doc).unwrap();
    assert_eq!(text.matches("A finding.").count(), 1, "{text}");
    assert_eq!(text.matches("{\"strategy\":").count(), 3, "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}
