//! The v3 processor alone, catching up on a backlog.
//!
//! Produces `--records` orders straight to a fresh topic (no HTTP, no processor running), then
//! starts one processor in this process against a fresh database and Redis namespace and times
//! how long it takes until PostgreSQL and Redis both hold every record. Prints one JSON line.
//!
//! `cargo run --release -p coffee-pipeline --example v3_backlog -- --records 1000000`

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use clap::Parser;
use coffee_core::{Catalog, Cents, Order, Version};
use coffee_pipeline::v3::{KafkaSettings, Processor, ProcessorConfig, ensure_topic};
use coffee_store::{Projection, postgres};
use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    window: Duration,
    /// The consumer's `fetch.wait.max.ms`.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    fetch_wait: Duration,
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let id = Uuid::new_v4().simple().to_string()[..10].to_owned();
    let kafka = KafkaSettings {
        brokers: args.brokers.clone(),
        topic: format!("backlog_{id}"),
        group: format!("backlog_{id}"),
        partitions: args.partitions,
        replication_factor: 1,
        producer_linger: Duration::from_millis(20),
    };
    ensure_topic(&kafka, &kafka.topic, kafka.partitions).await?;

    let producer: FutureProducer = kafka
        .client_config()
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let catalog = Catalog::default();
    let started = Instant::now();
    let mut pending = futures::stream::FuturesUnordered::new();
    use futures::StreamExt;
    for i in 0..args.records {
        let o = Order {
            order_id: Uuid::now_v7(),
            drink: catalog.drinks[i % catalog.drinks.len()].clone(),
            store: catalog.stores[i % catalog.stores.len()].clone(),
            price: Cents(300 + (i % 400) as i64),
            ordered_at: Utc::now(),
            accepted_at: Utc::now(),
        };
        let payload = serde_json::to_vec(&o.to_record())?;
        let store = o.store.clone();
        let p = producer.clone();
        let topic = kafka.topic.clone();
        pending.push(async move {
            p.send(FutureRecord::to(&topic).key(&store).payload(&payload), Duration::from_secs(60)).await.map(|_| ()).map_err(|(e, _)| e)
        });
        if pending.len() >= 50_000 {
            while pending.len() > 25_000 {
                pending.next().await.expect("pending")?;
            }
        }
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    let produce_s = started.elapsed().as_secs_f64();

    let database_url = format!("postgres://coffee:coffee@127.0.0.1:5432/backlog_{id}");
    let pool = postgres::connect(&database_url, 8).await?;
    postgres::migrate(&pool).await?;
    let projection = Projection::new(coffee_store::redis::connect("redis://127.0.0.1:6379/0").await?, &format!("backlog_{id}:"));
    let config = ProcessorConfig { window: args.window, fetch_wait: args.fetch_wait, ..Default::default() };
    let processor = Processor::new(config, kafka.clone(), &database_url, pool.clone(), projection.clone(), Arc::new(catalog));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(processor.run(async move {
        let _ = stopped.await;
    }));
    let mut peak_rss: f64 = 0.0;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak_rss = peak_rss.max(rss_mb());
        let counted = projection.read_all(Version::V3).await?.total.count;
        if counted as usize >= args.records {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(1800), "no catch-up within 30 min ({counted} counted)");
    }
    let catch_up = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await??;
    let rows: i64 = pool.get().await?.query_one("SELECT count(*) FROM orders", &[]).await?.get(0);
    println!(
        "{}",
        serde_json::json!({
            "records": args.records, "rows": rows, "produce_s": produce_s, "catch_up_s": catch_up,
            "records_per_s": args.records as f64 / catch_up, "window_ms": args.window.as_millis() as u64, "fetch_wait_ms": args.fetch_wait.as_millis() as u64,
            "peak_rss_mb_incl_producer": peak_rss, "brokers": args.brokers,
        })
    );
    drop(pool);
    let (client, conn) = tokio_postgres::connect("postgres://coffee:coffee@127.0.0.1:5432/postgres", tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS backlog_{id} WITH (FORCE)")).await?;
    coffee_pipeline::v3::delete_topics(&kafka, &[kafka.topic.clone(), kafka.dead_letter_topic()]).await?;
    let mut conn = coffee_store::redis::connect("redis://127.0.0.1:6379/0").await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("backlog_{id}:*")).query_async(&mut conn).await?;
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut conn).await?;
    }
    Ok(())
}
