//! The kill trial's client: v2 orders at a fixed rate, open loop (each sent on schedule,
//! whether or not the earlier ones were answered, so an outage does not slow the offered
//! load), and a record of what came of each one: its `order_id` and when its answer arrived.
//! The record, not the server, says which orders were acknowledged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Uri;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::load::client::{HttpClient, Outcome};
use crate::order::{self, OrderMix};

/// A request unanswered this long is a timeout (longer than any Redis restart here).
const TIMEOUT: Duration = Duration::from_secs(10);

/// What came of one order.
#[derive(Debug, Clone)]
pub struct Sent {
    pub order_id: uuid::Uuid,
    /// When its answer arrived (or the timeout passed).
    pub answered: Instant,
    pub outcome: Outcome,
}

impl Sent {
    /// The API acknowledged it: v2 answers 202 once the order is in the stream (any 2xx
    /// counts, so that an answer the API may add later cannot hide a loss).
    pub fn acked(&self) -> bool {
        self.outcome.is_success()
    }
}

/// A running poster.
pub struct Poster {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Vec<Sent>>,
}

impl Poster {
    /// Starts posting to `{base_url}/api/v2/order` at `rate` per second.
    pub fn start(base_url: &str, rate: f64) -> anyhow::Result<Poster> {
        let url: Uri = format!("{}/api/v2/order", base_url.trim_end_matches('/')).parse()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(post(url, rate, stop.clone()));
        Ok(Poster { stop, task })
    }

    /// Stops sending and waits for every request in flight to be answered or time out.
    pub async fn finish(self) -> anyhow::Result<Vec<Sent>> {
        self.stop.cancel();
        Ok(self.task.await?)
    }
}

async fn post(url: Uri, rate: f64, stop: CancellationToken) -> Vec<Sent> {
    let client = HttpClient::new();
    let record: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let (mix, mut rng) = (OrderMix::default(), order::rng());
    let start = Instant::now();
    let mut in_flight = tokio::task::JoinSet::new();
    for i in 0u64.. {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(due) => {}
        }
        let order = mix.next_order(&mut rng);
        let body = bytes::Bytes::from(serde_json::to_vec(&order).expect("an order serializes"));
        let (client, url, record) = (client.clone(), url.clone(), record.clone());
        in_flight.spawn(async move {
            let outcome = tokio::time::timeout(TIMEOUT, client.post_json(url, body)).await.unwrap_or(Outcome::Timeout);
            record.lock().expect("record lock").push(Sent { order_id: order.order_id, answered: Instant::now(), outcome });
        });
        // Reap the finished ones as we go, so a long run does not hold every handle.
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
    std::mem::take(&mut *record.lock().expect("record lock"))
}
