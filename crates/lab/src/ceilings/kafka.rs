//! Kafka ceiling: produce messages/s into a scratch topic (created for the measurement and
//! deleted after it), with delivery confirmed: a message counts once the broker acked it.

use std::time::Duration;

use anyhow::Context;
use coffee_pipeline::KafkaSettings;
use coffee_pipeline::sources::v3_kafka::{delete_topics, ensure_topic};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::time::Instant;

use super::CeilingOpts;
use crate::order::{self, OrderMix};
use crate::results::ceilings::Ceiling;

/// Partitions of the scratch topic (the design papers' v3 used 4).
const PARTITIONS: i32 = 4;

/// Measure acknowledged produces against `brokers`, e.g. `127.0.0.1:9092`.
/// `opts.batch` is how many messages each producer task keeps awaiting delivery.
pub async fn produce_ceiling(brokers: &str, opts: CeilingOpts) -> anyhow::Result<Ceiling> {
    let topic = format!("coffee-lab-scratch-{}", crate::scratch::suffix());
    let kafka = KafkaSettings { brokers: brokers.to_string(), topic: topic.clone(), ..KafkaSettings::default() };
    ensure_topic(&kafka, &topic, PARTITIONS).await.with_context(|| format!("cannot reach the Kafka broker at {brokers}"))?;
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers).set("message.timeout.ms", "15000").set("socket.timeout.ms", "10000");
    let result = measure(&cfg, &topic, opts).await;
    let deleted = delete_topics(&kafka, &[topic]).await;
    let ceiling = result?;
    deleted.context("delete scratch topic")?;
    Ok(ceiling)
}

async fn measure(cfg: &ClientConfig, topic: &str, opts: CeilingOpts) -> anyhow::Result<Ceiling> {
    let producer: FutureProducer = cfg
        .clone()
        .set("linger.ms", "5")
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .context("create Kafka producer")?;
    // Warm up: the first send waits for metadata and connections, not throughput.
    producer
        .send(FutureRecord::<str, str>::to(topic).payload("warmup"), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("first produce to {topic}: {e}"))?;

    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (producer, topic, window) = (producer.clone(), topic.to_string(), opts.batch.max(1));
        tasks.push(tokio::spawn(async move { produce_until(producer, topic, window, deadline).await }));
    }
    let mut delivered = 0;
    for t in tasks {
        delivered += t.await??;
    }
    let elapsed = start.elapsed();
    Ok(Ceiling::new(
        "kafka_produce",
        "messages/s",
        delivered,
        elapsed,
        format!(
            "acks=all, linger.ms=5, {} partitions, {} tasks × {} in flight, order-sized JSON",
            PARTITIONS, opts.concurrency, opts.batch
        ),
    ))
}

async fn produce_until(producer: FutureProducer, topic: String, window: usize, deadline: Instant) -> anyhow::Result<u64> {
    let mix = OrderMix::default();
    let mut rng = order::rng();
    let mut pending = FuturesUnordered::new();
    let mut delivered = 0u64;
    while Instant::now() < deadline {
        while pending.len() < window {
            let order = mix.next_order(&mut rng);
            let key = order.order_id.to_string();
            let payload = serde_json::to_vec(&order)?;
            match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&payload)) {
                Ok(fut) => pending.push(fut),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => break,
                Err((e, _)) => return Err(e.into()),
            }
        }
        match pending.next().await {
            Some(Ok(Ok(_))) => delivered += 1,
            Some(Ok(Err((e, _)))) => return Err(anyhow::anyhow!("delivery failed: {e}")),
            Some(Err(_)) => return Err(anyhow::anyhow!("producer dropped a delivery")),
            None => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    // Messages still in flight at the deadline are not counted; let them finish quietly.
    while pending.next().await.is_some() {}
    Ok(delivered)
}
