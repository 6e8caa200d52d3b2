//! The sweep end to end against a local stand-in server: steps, breaks, SCALE.md, plots.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use clap::Parser;
use coffee_lab::config::{BenchCommand, SweepArgs};
use coffee_lab::sweep::run_sweep;
use coffee_lab::{ApiVersion, Cli, Command};

use crate::common;

fn parse(args: &[&str]) -> SweepArgs {
    let cli = Cli::try_parse_from(["coffee-lab", "bench"].iter().chain(args)).unwrap();
    let Command::Bench(BenchCommand::Sweep(a)) = cli.command else { panic!("not a sweep") };
    a
}

#[test]
fn quick_plan_is_small_and_default_plan_fits_20_minutes() {
    let quick = parse(&["sweep", "--quick"]).plan();
    assert!(quick.rates.len() <= 4 && quick.rates.iter().all(|r| *r <= 500.0));
    assert!(quick.budget <= Duration::from_secs(180));
    let full = parse(&["sweep"]);
    assert_eq!(full.versions, vec![ApiVersion::V1, ApiVersion::V2, ApiVersion::V3]);
    let plan = full.plan();
    assert!(plan.budget < Duration::from_secs(20 * 60));
    assert_eq!(plan.rates.first(), Some(&500.0));
    assert_eq!(full.criteria(ApiVersion::V2).slo_p99_ms, 10.0);
    assert_eq!(plan.model, coffee_lab::results::load::ConnectionModel::Pooled(64));
    // The aggregator bench is part of the sweep, inside the same budget.
    assert_eq!(plan.aggregator_sizes.last(), Some(&10_000_000));
    assert!(plan.aggregator_reserve > Duration::ZERO && plan.aggregator_reserve < plan.budget / 2);
    assert_eq!(quick.aggregator_sizes, vec![10_000, 100_000]);
    assert!(parse(&["sweep", "--no-aggregator"]).plan().aggregator_sizes.is_empty());
    assert_eq!(parse(&["sweep", "--aggregator-max-rows", "1000000"]).plan().aggregator_sizes, vec![10_000, 100_000, 1_000_000]);
    // The HTTP ceiling measures the server's own validation route without a flag.
    assert_eq!(full.validate_url(), "http://127.0.0.1:8005/api/validate");
    assert_eq!(parse(&["sweep", "--url", "http://h:1/"]).validate_url(), "http://h:1/api/validate");
    let a = parse(&["sweep", "--versions", "v2,v3", "--rates", "10,20", "--backlog-metric", "v2=lag", "--slo-p99", "250ms"]);
    assert_eq!(a.versions, vec![ApiVersion::V2, ApiVersion::V3]);
    assert_eq!(a.plan().rates, vec![10.0, 20.0]);
    assert_eq!(a.backlog_metrics, vec![(ApiVersion::V2, "lag".to_string())]);
    assert_eq!(a.criteria(ApiVersion::V2).slo_p99_ms, 250.0);
    assert_eq!(a.criteria(ApiVersion::V1).freshness_slo_ms, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_steps_until_a_path_breaks_and_writes_the_report() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    // v2: a working fake pipeline with a freshness histogram; v1: always 503.
    let router: Router =
        common::pipeline_router(Duration::from_millis(20)).route("/api/v1/order", post(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    let url = common::serve(router).await;
    let out = tempdir();
    let validate = format!("{}/api/v2/order", common::serve(common::fast_router()).await);
    let mut args = parse(&[
        "sweep",
        "--quick",
        "--versions",
        "v1,v2",
        "--rates",
        "20,40",
        "--step-duration",
        "1s",
        "--url",
        &url,
        "--validate-url",
        &validate,
        "--no-aggregator",
    ]);
    args.out = out.clone();
    // Keep the test short: the real ceilings are measured, briefly.
    let probe = args.backlog_probe().unwrap();
    let report = run_sweep(&args, probe).await.expect("sweep runs (needs PostgreSQL, Redis and the Kafka broker)");

    let v1 = &report.paths[0];
    assert_eq!(v1.version, ApiVersion::V1);
    assert_eq!(v1.steps.len(), 1, "v1 must stop at its first, failing, step");
    assert_eq!(v1.broke_at, Some(20.0));
    assert!(v1.steps[0].errors_by_status.contains_key("503"));

    let v2 = &report.paths[1];
    assert_eq!(v2.steps.len(), 2, "v2 holds through the ladder");
    assert!(v2.broke_at.is_none());
    assert!(v2.max_sustained.unwrap() > 35.0);
    let s = &v2.steps[1];
    assert_eq!(s.counted, Some(s.accepted), "every accepted order was counted");
    assert!(s.freshness_p99_ms.unwrap() >= 20.0);
    assert!(s.procs.contains_key("load-generator"), "{:?}", s.procs);

    for c in &report.ceilings {
        assert!(c.ceiling.is_some(), "ceiling {} failed: {:?}", c.name, c.error);
    }

    let md = std::fs::read_to_string(out.join("SCALE.md")).unwrap();
    for needle in [
        "## Machine",
        "## Raw ceilings",
        "postgres_insert",
        "## Each path against its real limit",
        "### v1",
        "### v2",
        "**broke**",
        "scale-latency.svg",
        "Not measured in this run (`--no-aggregator`)",
        "<!-- analysis:start -->",
    ] {
        assert!(md.contains(needle), "SCALE.md lacks {needle}:\n{md}");
    }
    for svg in ["scale-latency.svg", "scale-freshness.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("v2 p99"), "{svg}: {}", &text[..text.len().min(300)]);
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("scale-results.json")).unwrap()).unwrap();
    assert_eq!(json["paths"][1]["version"], "v2");

    // A rerun keeps the analysis a person wrote.
    let edited = md.replace("_To be written from the numbers above", "v2 held; v1 was down._\n\n_Old note");
    std::fs::write(out.join("SCALE.md"), edited).unwrap();
    args.versions = vec![ApiVersion::V1];
    args.no_ceilings = true;
    run_sweep(&args, args.backlog_probe().unwrap()).await.unwrap();
    let md2 = std::fs::read_to_string(out.join("SCALE.md")).unwrap();
    assert!(md2.contains("v2 held; v1 was down."), "{md2}");
    std::fs::remove_dir_all(&out).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("coffee-lab-sweep-{}", coffee_lab::scratch::suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
