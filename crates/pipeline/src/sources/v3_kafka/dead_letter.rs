use std::time::Duration;

use rdkafka::{
    Message,
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
};

/// Copies a record that carries no valid order to the dead-letter topic (`<topic>.dead`), with
/// the reason and its origin (`topic:partition:offset`) as headers. The processor moves past it
/// only once the broker has the copy.
pub async fn dead_letter(producer: &FutureProducer, topic: &str, m: &OwnedMessage, reason: &str) -> anyhow::Result<()> {
    let origin = format!("{}:{}:{}", m.topic(), m.partition(), m.offset());
    let headers = OwnedHeaders::new()
        .insert(Header { key: "reason", value: Some(reason) })
        .insert(Header { key: "source", value: Some(origin.as_str()) });
    let mut record = FutureRecord::to(topic).payload(m.payload().unwrap_or_default()).headers(headers);
    if let Some(k) = m.key() {
        record = record.key(k);
    }
    producer.send(record, Timeout::After(Duration::from_secs(5))).await.map_err(|(e, _)| anyhow::anyhow!("dead-letter produce: {e}"))?;
    metrics::counter!("coffee_rt_dead_letters_total", "version" => "v3").increment(1);
    Ok(())
}
