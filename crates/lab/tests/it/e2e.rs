//! `bench sweep --quick` end to end against the real services: the coffee-rt server, a v2
//! worker, a v3 processor and the v1 aggregator run in this process (as `coffee-rt up` runs
//! them) on PostgreSQL, Redis and the Kafka broker, in a database, namespace, topic and
//! consumer group of their own.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use coffee_lab::ApiVersion;
use coffee_lab::sweep::{BenchCommand, run_sweep};
use coffee_pipeline::v1::{AggregateMode, Aggregator};
use coffee_pipeline::v2::{Worker, WorkerConfig};
use coffee_pipeline::v3::{Processor, ProcessorConfig};
use coffee_server::{Application, Settings};
use tokio::sync::watch;

const PG_ADMIN: &str = "postgres://coffee:coffee@127.0.0.1:5432/postgres";
const REDIS: &str = "redis://127.0.0.1:6379/0";

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    settings: Settings,
}

#[derive(Parser)]
struct Bench {
    #[command(subcommand)]
    cmd: BenchCommand,
}

/// The isolated world; dropping it removes the database, the Redis keys and the topics.
struct World {
    id: String,
    settings: Settings,
}

impl World {
    fn new() -> World {
        let id = format!("lab{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let settings = Wrapper::parse_from([
            "test",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &format!("postgres://coffee:coffee@127.0.0.1:5432/coffee_{id}"),
            "--redis-url",
            REDIS,
            "--namespace",
            &format!("{id}:"),
            "--topic",
            &format!("orders_{id}"),
            "--brokers",
            &brokers,
            "--group",
            &format!("processors_{id}"),
            "--pg-pool",
            "8",
        ])
        .settings;
        World { id, settings }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let db = format!("coffee_{}", self.id);
        let ns = self.settings.namespace.clone();
        let kafka = self.settings.kafka.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await;
                }
                if let Ok(client) = redis::Client::open(REDIS)
                    && let Ok(mut c) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{ns}*")).query_async(&mut c).await.unwrap_or_default();
                    if !keys.is_empty() {
                        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut c).await;
                    }
                }
                use rdkafka::admin::{AdminClient, AdminOptions};
                use rdkafka::client::DefaultClientContext;
                if let Ok(admin) =
                    rdkafka::ClientConfig::new().set("bootstrap.servers", &kafka.brokers).create::<AdminClient<DefaultClientContext>>()
                {
                    let dead = kafka.dead_letter_topic();
                    let _ = tokio::time::timeout(Duration::from_secs(5), admin.delete_topics(&[&kafka.topic, &dead], &AdminOptions::new()))
                        .await;
                }
            });
        })
        .join();
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_sweep_against_the_real_services_writes_the_whole_report() {
    let _alone = crate::common::EXCLUSIVE.write().await;
    let started = std::time::Instant::now();
    let world = World::new();
    let s = &world.settings;

    // What `coffee-rt up` starts, in this process.
    let app = Application::build(s).await.expect("the server builds (needs PostgreSQL and Redis)");
    let url = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let (stop, stop_rx) = watch::channel(false);
    let worker = Worker::new(
        WorkerConfig::new(format!("{}-worker", world.id)),
        state.pool.clone(),
        state.projection.clone(),
        Arc::clone(&state.catalog),
        &s.redis_url,
    );
    let worker = tokio::spawn(worker.run(stopped(stop_rx.clone())));
    let processor = Processor::new(
        ProcessorConfig::default(),
        s.kafka.clone(),
        &s.database_url,
        state.pool.clone(),
        state.projection.clone(),
        Arc::clone(&state.catalog),
    );
    let processor = tokio::spawn(processor.run(stopped(stop_rx.clone())));
    let aggregator = Aggregator::new(state.pool.clone(), state.projection.clone());
    let agg_stop = stopped(stop_rx.clone());
    let aggregator = tokio::spawn(async move { aggregator.run_every(Duration::from_secs(1), AggregateMode::Incremental, agg_stop).await });
    drop(state);
    let server = tokio::spawn(app.run_until(stopped(stop_rx.clone())));

    let out = std::env::temp_dir().join(format!("coffee-lab-e2e-{}", world.id));
    let out_s = out.to_string_lossy().to_string();
    let Bench { cmd: BenchCommand::Sweep(args) } = Bench::try_parse_from([
        "bench",
        "sweep",
        "--quick",
        "--url",
        &url,
        "--out",
        &out_s,
        "--pg-url",
        PG_ADMIN,
        "--redis-url",
        REDIS,
        "--kafka-brokers",
        &s.kafka.brokers,
    ])
    .unwrap() else {
        panic!("parsed as sweep")
    };
    let report = run_sweep(&args, args.backlog_probe().unwrap()).await.expect("the quick sweep runs");

    let _ = stop.send(true);
    server.await.unwrap().unwrap();
    worker.await.unwrap().unwrap();
    processor.await.unwrap().unwrap();
    aggregator.await.unwrap();

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
