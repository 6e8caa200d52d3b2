//! `coffee-lab bench backlog`: one v3 processor, in this process, catching up on a backlog.
//!
//! Produces `--records` orders to a scratch topic ([`crate::scale_out::produce`]: no HTTP, no
//! processor running), then starts one [`coffee_pipeline::Processor`] against a scratch
//! database and Redis namespace and times how long it takes until Redis counts every record,
//! with this process's peak RSS. Prints one JSON line. Where the scale-out bench measures
//! `coffee-rt processor` processes, this one tunes the processor itself (`--window`,
//! `--fetch-wait`) with nothing between it and the measurement.
//!
//! Then it checks exactly once on the final state ([`verify`]): PostgreSQL holds every record
//! once with the produced revenue, and Redis equals a recomputation from the rows, per drink,
//! store and hour, with every partition's fence at its outbox seq. A difference fails the run.
//!
//! The topic, the database and the namespace are removed afterwards, whatever happens.

mod verify;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use coffee_core::{Catalog, Version};
use coffee_pipeline::sources::v3_kafka::{delete_topics, ensure_topic};
use coffee_pipeline::{KafkaSettings, Processor, ProcessorConfig};
use coffee_store::Projection;
use coffee_store::postgres::{self, ScratchDatabase};
use tokio::time::Instant;

use crate::config::BacklogArgs;
use crate::results::backlog::BacklogReport;

/// A catch-up that takes longer than this fails.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often the catch-up reads Redis's count and this process's RSS.
const POLL: Duration = Duration::from_millis(200);

/// `coffee-lab bench backlog`: progress on stderr, the result as one JSON line.
pub async fn backlog_command(args: BacklogArgs) -> anyhow::Result<()> {
    let report = run_backlog(&args).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

pub async fn run_backlog(args: &BacklogArgs) -> anyhow::Result<BacklogReport> {
    anyhow::ensure!(args.backlog.records > 0, "--records must be at least 1");
    let suffix = crate::scratch::suffix();
    let topic = format!("coffee-lab-backlog-{suffix}");
    let kafka = KafkaSettings {
        brokers: args.services.kafka_brokers.clone(),
        topic: topic.clone(),
        group: topic.clone(),
        partitions: args.backlog.partitions,
        producer_linger: Duration::from_millis(20),
        ..KafkaSettings::default()
    };
    ensure_topic(&kafka, &topic, args.backlog.partitions).await.with_context(|| format!("creating topic {topic} on {}", kafka.brokers))?;
    let namespace = format!("coffee-lab:backlog:{suffix}:");
    let result = match ScratchDatabase::create(&args.services.database_url, &format!("coffee_lab_backlog_{}_", std::process::id())).await {
        Ok(db) => {
            let r = catch_up(args, &kafka, &db.url(), &namespace).await;
            let dropped = db.drop_now().await;
            r.and_then(|r| dropped.map(|()| r))
        }
        Err(e) => Err(e),
    };
    // The processor creates `<topic>.dead` when it starts.
    let deleted = delete_topics(&kafka, &[topic.clone(), kafka.dead_letter_topic()]).await;
    let cleaned = crate::scratch::delete_redis_keys(&args.services.redis_url, &namespace).await;
    let report = result?;
    deleted.with_context(|| format!("deleting topic {topic}"))?;
    cleaned.with_context(|| format!("deleting Redis keys {namespace}*"))?;
    Ok(report)
}

async fn catch_up(args: &BacklogArgs, kafka: &KafkaSettings, database_url: &str, namespace: &str) -> anyhow::Result<BacklogReport> {
    let started = Instant::now();
    let revenue_cents = crate::scale_out::produce::produce(kafka, args.backlog.records, args.backlog.partitions).await?;
    let produce_s = started.elapsed().as_secs_f64();
    eprintln!("produced {} records in {produce_s:.1} s", args.backlog.records);

    let pool = postgres::connect(database_url, 8).await?;
    postgres::migrate(&pool).await?;
    let redis = coffee_store::redis::connect(&args.services.redis_url)
        .await
        .with_context(|| format!("connecting to Redis at {}", args.services.redis_url))?;
    let projection = Projection::new(redis, namespace);
    let config = ProcessorConfig { window: args.window, fetch_wait: args.fetch_wait, ..ProcessorConfig::default() };
    let processor = Processor::new(config, kafka.clone(), database_url, pool.clone(), projection.clone(), Arc::new(Catalog::default()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(processor.run(async move {
        let _ = stopped.await;
    }));
    let own_rss = || crate::procs::memory(std::process::id()).map_or(0.0, |m| m.rss_mib);
    let mut peak_rss: f64 = 0.0;
    let caught_up = loop {
        tokio::time::sleep(POLL).await;
        peak_rss = peak_rss.max(own_rss());
        let counted = projection.read_all(Version::V3).await?.total.count;
        if counted as u64 >= args.backlog.records {
            break Ok(started.elapsed().as_secs_f64());
        }
        if task.is_finished() {
            break Err(anyhow::anyhow!("the processor stopped with {counted} of {} records counted", args.backlog.records));
        }
        if started.elapsed() >= CATCH_UP_TIMEOUT {
            break Err(anyhow::anyhow!("no catch-up within {CATCH_UP_TIMEOUT:?} ({counted} counted)"));
        }
    };
    let _ = stop.send(());
    let ran = task.await.context("the processor task panicked")?;
    let catch_up_s = caught_up?;
    ran?;
    let rows: i64 = pool.get().await?.query_one("SELECT count(*) FROM orders WHERE version = 'v3'", &[]).await?.get(0);
    let verified = verify::exactly_once(&pool, &projection.connection(), namespace, kafka, args.backlog.records, revenue_cents).await?;
    Ok(BacklogReport {
        records: args.backlog.records,
        rows,
        revenue_cents: verified.revenue_cents,
        breakdowns_checked: verified.breakdowns,
        produce_s,
        catch_up_s,
        records_per_s: args.backlog.records as f64 / catch_up_s,
        window_ms: args.window.as_millis() as u64,
        fetch_wait_ms: args.fetch_wait.as_millis() as u64,
        peak_rss_mb_incl_producer: peak_rss,
        brokers: kafka.brokers.clone(),
    })
}
