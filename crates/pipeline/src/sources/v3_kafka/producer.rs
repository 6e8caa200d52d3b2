use std::time::Duration;

use coffee_core::Order;
use rdkafka::{
    producer::{FutureProducer, FutureRecord, Producer},
    util::Timeout,
};

use super::{KafkaSettings, TopicProbe};
use crate::{Ingest, IngestError, Receipt, idempotency::Submitted};

/// Produces accepted v3 orders. The API answers 202 only after the broker acknowledged the
/// record: idempotent producer, `acks=all`, keyed by store (one store's orders stay in order).
#[derive(Clone)]
pub struct V3Ingest {
    producer: FutureProducer,
    topic: String,
}

impl V3Ingest {
    /// Creating the producer does not contact the broker; `submit` fails (503) until it answers.
    pub fn new(settings: &KafkaSettings) -> anyhow::Result<V3Ingest> {
        let producer: FutureProducer = settings
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", format!("{}", settings.producer_linger.as_secs_f64() * 1000.0))
            .set("compression.type", "none")
            // A record not acknowledged within this is reported failed, so the API answers 503
            // within 2 s when the broker is away instead of hanging.
            .set("message.timeout.ms", "1200")
            .set("request.timeout.ms", "1200")
            .create()?;
        Ok(V3Ingest { producer, topic: settings.topic.clone() })
    }

    /// A readiness probe of the broker on this producer's own client.
    pub fn probe(&self) -> TopicProbe {
        TopicProbe::sharing(self.producer.clone(), &self.topic)
    }
}

#[async_trait::async_trait]
impl Ingest for V3Ingest {
    fn receipt(&self) -> Receipt {
        Receipt::Logged
    }

    /// Resolves once the broker acknowledged the record (all in-sync replicas).
    async fn submit(&self, order: Order) -> Result<Submitted, IngestError> {
        let payload = serde_json::to_vec(&order.to_record()).expect("record serialises");
        let record = FutureRecord::to(&self.topic).key(order.store.as_bytes()).payload(&payload);
        match tokio::time::timeout(Duration::from_millis(1500), self.producer.send(record, Timeout::After(Duration::from_millis(200))))
            .await
        {
            Ok(Ok(_)) => Ok(Submitted::New),
            Ok(Err((e, _))) => Err(IngestError::unavailable("kafka", e)),
            Err(_) => Err(IngestError::unavailable("kafka", "no acknowledgement within 1.5 s")),
        }
    }

    /// Waits up to 2 s for records still in flight.
    async fn close(&self) {
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Timeout::After(Duration::from_secs(2)))).await;
    }
}
