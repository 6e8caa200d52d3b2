//! The backlog a processor bench drains: valid orders produced straight to a scratch topic
//! (no HTTP, no processor running), round-robin over its partitions, acknowledged.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use coffee_core::{Catalog, Cents, Order};
use coffee_pipeline::KafkaSettings;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use uuid::Uuid;

/// Delivery futures the producer keeps at most.
const IN_FLIGHT: usize = 100_000;

/// Record `i` of the backlog: its key (the store, as the API's producer keys it), its value
/// (the wire form the processor parses, [`coffee_core::OrderRecord`]) and its price. A record
/// the processor could not parse would be dead-lettered and never counted, so a drain that
/// completes proves the shape.
pub fn record(i: u64, now: DateTime<Utc>, catalog: &Catalog) -> (&str, Vec<u8>, i64) {
    let store = &catalog.stores[(i % catalog.stores.len() as u64) as usize];
    // 3.50 to 6.75 in 5-cent steps, like a menu's.
    let price_cents = 350 + ((i / 7) % 66) as i64 * 5;
    let order = Order {
        order_id: Uuid::now_v7(),
        drink: catalog.drinks[((i / 4) % catalog.drinks.len() as u64) as usize].clone(),
        store: store.clone(),
        price: Cents(price_cents),
        ordered_at: now,
        accepted_at: now,
    };
    (store, serde_json::to_vec(&order.to_record()).expect("record serialises"), price_cents)
}

/// Produces the backlog, round-robin over the partitions (the store key alone would fill at
/// most four of them), and checks the log holds exactly `records`. Returns the revenue.
pub async fn produce(kafka: &KafkaSettings, records: u64, partitions: i32) -> anyhow::Result<i64> {
    let producer: FutureProducer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "none")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000")
        .create()
        .context("creating the Kafka producer")?;
    let catalog = Catalog::default();
    let mut pending = FuturesUnordered::new();
    let mut revenue = 0i64;
    let mut now = Utc::now();
    for i in 0..records {
        if i % 10_000 == 0 {
            now = Utc::now();
        }
        let (key, payload, price) = record(i, now, &catalog);
        revenue += price;
        let partition = (i % partitions as u64) as i32;
        loop {
            match producer.send_result(FutureRecord::to(&kafka.topic).key(key).payload(&payload).partition(partition)) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        delivered(pending.next().await)?;
                    }
                }
                Err((e, _)) => return Err(anyhow::anyhow!("producing to {}: {e}", kafka.topic)),
            }
        }
        while pending.len() >= IN_FLIGHT {
            delivered(pending.next().await)?;
        }
    }
    while !pending.is_empty() {
        delivered(pending.next().await)?;
    }
    let topic = kafka.topic.clone();
    let in_log: i64 = tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
        let mut sum = 0;
        for p in 0..partitions {
            let (low, high) = producer.client().fetch_watermarks(&topic, p, Duration::from_secs(10))?;
            sum += high - low;
        }
        Ok(sum)
    })
    .await??;
    anyhow::ensure!(in_log == records as i64, "the topic holds {in_log} records after producing {records}");
    Ok(revenue)
}

/// A delivery report: the broker acknowledged the record, or why not.
fn delivered(r: Option<Result<OwnedDeliveryResult, futures::channel::oneshot::Canceled>>) -> anyhow::Result<()> {
    match r {
        Some(Ok(Ok(_))) | None => Ok(()),
        Some(Ok(Err((e, _)))) => Err(anyhow::anyhow!("delivery failed: {e}")),
        Some(Err(_)) => Err(anyhow::anyhow!("the producer dropped a delivery")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_orders_the_processor_accepts() {
        let catalog = Catalog::default();
        for i in [0, 12, 999] {
            let (store, payload, price) = record(i, Utc::now(), &catalog);
            let rec: coffee_core::OrderRecord = serde_json::from_slice(&payload).unwrap();
            let order = Order::from_record(rec, &catalog).expect("a valid record");
            assert_eq!((order.store.as_str(), order.price.0), (store, price));
            assert!((350..=675).contains(&price));
        }
    }
}
