//! `coffee-lab bench scale-out`: the v3 stream processor alone, draining a backlog with 1, 2,
//! 4… instances.
//!
//! Produces `--records` valid orders straight to a fresh topic ([`produce`]: no HTTP, no
//! processor running), spread round-robin over its partitions. Then, for each instance count
//! ([`run`]), starts that many `coffee-rt processor` child processes ([`crate::children`])
//! against a fresh database, Redis namespace and consumer group (the same topic), and times the
//! drain: from the spawn until the v3 order count in Redis reaches the record count. The Redis
//! count is the last thing the processor moves (a window's delta is applied only after its
//! PostgreSQL transaction committed), so it is the cheapest sufficient "done": one `GET` every
//! 100 ms. After a graceful stop (SIGTERM), the run checks ([`verify`]) that PostgreSQL holds
//! every record once and Redis counts each once (rows, revenue and the per-partition fences),
//! then drops the database, the namespace's keys and the group. The topic (and the processors'
//! dead-letter topic) is deleted at the end, whatever happened.

pub mod produce;
pub mod run;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use coffee_pipeline::KafkaSettings;
use coffee_pipeline::sources::v3_kafka::{delete_topics, ensure_topic};
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::ScaleOutArgs;
use crate::report::format::{join, partition_lists};
use crate::report::tables::scale_out_table;
use crate::results::scale_out::{ScaleOutReport, ScaleOutRun};

/// How often the drain reads Redis's count.
const POLL: Duration = Duration::from_millis(100);
/// The services whose CPU each run reports.
const SERVICES: [&str; 3] = ["postgres", "redis-server", "java"];

/// The backlog every run drains.
struct Backlog {
    kafka: KafkaSettings,
    bin: PathBuf,
    records: u64,
    revenue_cents: i64,
}

/// `coffee-lab bench scale-out`: progress on stderr, then the table and one JSON line.
pub async fn scale_out_command(args: ScaleOutArgs) -> anyhow::Result<()> {
    let report = run_scale_out(&args, &|line| eprintln!("{line}")).await?;
    println!("{}", scale_out_table(&report));
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

pub async fn run_scale_out(args: &ScaleOutArgs, progress: &dyn Fn(&str)) -> anyhow::Result<ScaleOutReport> {
    anyhow::ensure!(args.backlog.records > 0, "--records must be at least 1");
    anyhow::ensure!(!args.instances.is_empty() && args.instances.iter().all(|&n| n >= 1), "--instances must list counts ≥ 1");
    let bin = crate::children::locate(&args.coffee_rt)?;
    // Fail before producing a million records if a service is away.
    verify::admin_client(&args.services.database_url).await?;
    let mut redis = coffee_store::redis::connect(&args.services.redis_url)
        .await
        .with_context(|| format!("connecting to Redis at {}", args.services.redis_url))?;
    let _: String = redis::cmd("PING").query_async(&mut redis).await.context("Redis PING")?;

    let id = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let topic = format!("scaleout_{id}");
    let kafka = KafkaSettings {
        brokers: args.services.kafka_brokers.clone(),
        topic: topic.clone(),
        group: topic.clone(),
        partitions: args.backlog.partitions,
        producer_linger: Duration::from_millis(20),
        ..KafkaSettings::default()
    };
    let created =
        ensure_topic(&kafka, &topic, args.backlog.partitions).await.with_context(|| format!("creating topic {topic} on {}", kafka.brokers));
    let result = match created {
        Ok(()) => measure_all(args, &kafka, bin, progress).await,
        Err(e) => Err(e),
    };
    // The processors create `<topic>.dead` when they start.
    let deleted = delete_topics(&kafka, &[topic.clone(), kafka.dead_letter_topic()]).await;
    let (produce_seconds, runs) = result?;
    deleted.with_context(|| format!("deleting topic {topic}"))?;
    Ok(ScaleOutReport {
        records: args.backlog.records,
        partitions: args.backlog.partitions,
        runs,
        produce_seconds,
        machine_cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        topic,
    })
}

async fn measure_all(
    args: &ScaleOutArgs,
    kafka: &KafkaSettings,
    bin: PathBuf,
    progress: &dyn Fn(&str),
) -> anyhow::Result<(f64, Vec<ScaleOutRun>)> {
    progress(&format!("scale-out: producing {} records to {} ({} partitions)", args.backlog.records, kafka.topic, args.backlog.partitions));
    let started = Instant::now();
    let revenue_cents = produce::produce(kafka, args.backlog.records, args.backlog.partitions).await?;
    let produce_seconds = started.elapsed().as_secs_f64();
    progress(&format!(
        "produced {} records in {produce_seconds:.1} s ({:.0} records/s)",
        args.backlog.records,
        args.backlog.records as f64 / produce_seconds
    ));
    let backlog = Backlog { kafka: kafka.clone(), bin, records: args.backlog.records, revenue_cents };
    let mut runs = Vec::new();
    for &n in &args.instances {
        let run = run::run_one(args, &backlog, n).await.with_context(|| format!("scale-out run with {n} instance(s)"))?;
        progress(&format!(
            "n={n}: {} records in {:.1} s: {:.0} records/s ({:.0}/s after the first record at {:.1} s); CPU {:.1} s ({}) = {:.1} µs/record; RSS {} MiB (peak {}); partitions {}; services CPU {}; machine CPU {:.1} s{}",
            run.records,
            run.seconds,
            run.records_per_s,
            run.records_per_s_after_first,
            run.first_record_seconds,
            run.cpu_s_total,
            join(&run.cpu_s_per_instance, 1),
            run.cpu_us_per_record,
            join(&run.rss_mib_per_instance, 0),
            join(&run.peak_rss_mib_per_instance, 0),
            partition_lists(&run.partitions_per_instance),
            run.cpu_s_services.iter().map(|(k, v)| format!("{k} {v:.1} s")).collect::<Vec<_>>().join(", "),
            run.cpu_s_machine,
            other_work(&run),
        ));
        runs.push(run);
    }
    Ok((produce_seconds, runs))
}

/// A warning when something besides the instances and the services kept the machine busy
/// during the drain (another build or test on a shared machine).
fn other_work(run: &ScaleOutRun) -> String {
    let other = run.cpu_s_machine - run.cpu_s_total - run.cpu_s_services.values().sum::<f64>();
    if other > 1.0 && other > 0.2 * run.cpu_s_machine {
        format!(" (WARNING: other work used {other:.1} s of CPU during the drain; the figures are not clean)")
    } else {
        String::new()
    }
}
