//! `bench sweep --quick` end to end against the real services: `coffee-rt up` (the server, a v2
//! worker, a v3 processor and the v1 aggregator in one process, as `scripts/sweep` runs it) on
//! PostgreSQL, Redis and the Kafka broker, in a database, namespace, topic and consumer group of
//! its own, all removed afterwards.

use std::time::Duration;

use clap::Parser;
use coffee_lab::config::BenchCommand;
use coffee_lab::load::client::HttpClient;
use coffee_lab::sweep::run_sweep;
use coffee_lab::{ApiVersion, Cli, Command};
use coffee_testkit::TestEnv;

use crate::common::{self, REDIS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_sweep_against_the_real_services_writes_the_whole_report() {
    let _alone = crate::common::EXCLUSIVE.write().await;
    let started = std::time::Instant::now();
    // Dropped last: removes the database, the namespace and the topics whatever happens.
    let env = TestEnv::new();
    common::coffee_rt();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let mut up = env
        .spawn(&["up"], &[("COFFEE_RT_LISTEN", &listen), ("COFFEE_RT_PG_POOL", "8"), ("COFFEE_RT_LOG", "warn,librdkafka=off,rdkafka=off")]);

    let out = std::env::temp_dir().join(format!("coffee-lab-e2e-{}", env.id));
    let out_s = out.to_string_lossy().to_string();
    let brokers = common::brokers();
    let line = ["coffee-lab", "bench", "sweep", "--quick", "--url", &url, "--out", &out_s, "--redis-url", REDIS, "--brokers", &brokers];
    let Command::Bench(BenchCommand::Sweep(args)) = Cli::try_parse_from(line).unwrap().command else { panic!("parsed as sweep") };
    let result = async {
        let ready: http::Uri = format!("{url}/readyz").parse()?;
        let client = HttpClient::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while client.get_text(ready.clone()).await.is_err() {
            if let Some(status) = up.try_wait()? {
                anyhow::bail!("coffee-rt up exited: {status}");
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "coffee-rt up did not get ready within 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        run_sweep(&args, args.backlog_probe()?).await
    }
    .await;
    let stopped = coffee_lab::children::terminate(&mut up).await;
    let report = result.unwrap_or_else(|e| panic!("the quick sweep runs: {e:#}"));
    assert!(stopped.is_ok_and(|s| s.success()), "coffee-rt up stops cleanly on SIGTERM");

    // Every path was stepped, and the real pipeline counted every order it accepted.
    let versions: Vec<ApiVersion> = report.paths.iter().map(|p| p.version).collect();
    assert_eq!(versions, vec![ApiVersion::V1, ApiVersion::V2, ApiVersion::V3]);
    for p in &report.paths {
        let first = p.steps.first().unwrap_or_else(|| panic!("{}: no step", p.version));
        assert_eq!(first.offered_rate, 50.0);
        assert_eq!(first.errors, 0, "{}: {:?}", p.version, first.errors_by_status);
        assert!(first.accepted >= 100, "{}: {} accepted", p.version, first.accepted);
        assert_eq!(first.counted, Some(first.accepted), "{}: every accepted order is counted by its pipeline", p.version);
        let fresh = first.freshness_p99_ms.expect("freshness measured");
        assert!(fresh > 0.0 && fresh < 10_000.0, "{}: freshness p99 {fresh}", p.version);
        assert!(first.procs.contains_key("load-generator"));
    }
    // v1 orders wait for the next run of the 1 s aggregator (half an interval on average).
    let v1_fresh = report.paths[0].steps[0].freshness_p50_ms.unwrap();
    assert!(v1_fresh >= 100.0, "v1 freshness p50 {v1_fresh} ms");

    // All four ceilings, the HTTP one against the server's /api/validate without a flag.
    for c in &report.ceilings {
        assert!(c.ceiling.is_some(), "ceiling {} failed: {:?}", c.name, c.error);
    }
    assert!(report.ceilings.iter().any(|c| c.name == "http_validation"));

    // The aggregator bench ran through the quick ladder.
    let agg =
        report.aggregator.as_ref().and_then(|a| a.report.as_ref()).unwrap_or_else(|| panic!("aggregator bench: {:?}", report.aggregator));
    let rows: Vec<u64> = agg.sizes.iter().map(|s| s.rows).collect();
    assert_eq!(rows, vec![10_000, 100_000]);
    for s in &agg.sizes {
        assert_eq!(s.full_counted, s.rows as i64);
        assert_eq!(s.incremental_counted, 1_000);
    }

    let md = std::fs::read_to_string(out.join("SCALE.md")).unwrap();
    for needle in
        ["### v1", "### v2", "### v3", "http_validation", "## The v1 aggregator against table size", "| 100k ", "scale-aggregator.svg"]
    {
        assert!(md.contains(needle), "SCALE.md lacks {needle}:\n{md}");
    }
    for v in ["v1", "v2", "v3"] {
        let section = md.split(&format!("### {v}\n")).nth(1).unwrap();
        assert!(section.lines().any(|l| l.starts_with("| 50 ")), "no 50/s row for {v}:\n{section}");
    }
    for (svg, needle) in [("scale-latency.svg", "v3 p99"), ("scale-freshness.svg", "v1 p99"), ("scale-aggregator.svg", "full recompute")] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains(needle), "{svg}");
    }
    assert!(out.join("scale-results.json").exists());
    std::fs::remove_dir_all(&out).unwrap();
    eprintln!("quick sweep end to end in {:.0} s", started.elapsed().as_secs_f64());
}
