//! Groups concurrent v1 requests into one INSERT … UNNEST per batch.
//!
//! Requests wait on a bounded queue; each of a few writer tasks takes everything waiting (up to
//! `max_batch`) and inserts it in one round trip. Under light load a batch is one order and adds
//! no delay; under heavy load batches grow by themselves. A full queue is refused at once
//! (503), so memory stays bounded.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use coffee_core::{Order, Version};
use coffee_store::{PgPool, postgres};
use tokio::{
    sync::{Mutex, mpsc, oneshot},
    task::JoinSet,
};
use uuid::Uuid;

use crate::{
    Ingest, IngestError, Receipt,
    idempotency::{Prior, Submitted},
};

#[derive(Debug, Clone)]
pub struct BatcherConfig {
    pub queue: usize,
    pub max_batch: usize,
    pub writers: usize,
    pub timeout: Duration,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig { queue: 20_000, max_batch: 1_000, writers: 4, timeout: Duration::from_secs(3) }
    }
}

type Reply = oneshot::Sender<Result<Submitted, IngestError>>;

/// The handle the API holds. Dropping every clone lets the writers drain the queue and stop.
#[derive(Clone)]
pub struct V1Ingest {
    tx: mpsc::Sender<(Order, Reply)>,
}

impl V1Ingest {
    /// Starts the writer tasks; they finish once every handle is dropped and the queue is empty.
    pub fn start(pool: PgPool, config: BatcherConfig) -> (V1Ingest, JoinSet<()>) {
        let (tx, rx) = mpsc::channel(config.queue);
        let rx = Arc::new(Mutex::new(rx));
        let mut tasks = JoinSet::new();
        for _ in 0..config.writers.max(1) {
            tasks.spawn(writer(pool.clone(), rx.clone(), config.clone()));
        }
        (V1Ingest { tx }, tasks)
    }
}

#[async_trait::async_trait]
impl Ingest for V1Ingest {
    fn receipt(&self) -> Receipt {
        Receipt::Stored
    }

    /// Resolves once the order is committed (or could not be), saying whether its id was
    /// already stored, by any path.
    async fn submit(&self, order: Order) -> Result<Submitted, IngestError> {
        let (reply, done) = oneshot::channel();
        self.tx.try_send((order, reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => IngestError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => IngestError::ShuttingDown,
        })?;
        done.await.unwrap_or(Err(IngestError::ShuttingDown))
    }
}

async fn writer(pool: PgPool, rx: Arc<Mutex<mpsc::Receiver<(Order, Reply)>>>, config: BatcherConfig) {
    let mut batch = Vec::with_capacity(config.max_batch);
    loop {
        let n = rx.lock().await.recv_many(&mut batch, config.max_batch).await;
        if n == 0 {
            return; // every sender is gone and the queue is empty
        }
        let (orders, replies): (Vec<Order>, Vec<Reply>) = batch.drain(..).unzip();
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(config.timeout, insert(&pool, &orders)).await;
        let outcome = match result {
            Ok(Ok(submitted)) => Ok(submitted),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(IngestError::unavailable("postgres", "insert timed out")),
        };
        metrics::histogram!("coffee_rt_batch_orders", "stage" => "v1_insert").record(orders.len() as f64);
        metrics::histogram!("coffee_rt_flush_duration_seconds", "stage" => "v1_insert").record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, orders = orders.len(), "v1 batch failed");
        }
        match outcome {
            Ok(submitted) => {
                for (reply, s) in replies.into_iter().zip(submitted) {
                    let _ = reply.send(Ok(s));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(IngestError::unavailable("postgres", &e)));
                }
            }
        }
    }
}

/// Inserts the batch and says, per order, whether it was new or its id already stored (by an
/// earlier request on any path, or by an earlier copy in this same batch).
async fn insert(pool: &PgPool, orders: &[Order]) -> Result<Vec<Submitted>, IngestError> {
    let client = pool.get().await.map_err(|e| IngestError::unavailable("postgres", e))?;
    let new = postgres::insert_orders(&client, Version::V1, orders).await.map_err(|e| IngestError::unavailable("postgres", e))?;
    if new.len() == orders.len() {
        return Ok(vec![Submitted::New; orders.len()]);
    }
    let mut fresh: HashSet<Uuid> = new.into_iter().collect();
    let known: Vec<Uuid> = orders.iter().map(|o| o.order_id).filter(|id| !fresh.contains(id)).collect();
    let mut stored: HashMap<Uuid, Prior> = postgres::stored_orders(&client, &known)
        .await
        .map_err(|e| IngestError::unavailable("postgres", e))?
        .iter()
        .map(|row| (row.order_id, Prior::stored(row)))
        .collect();
    Ok(orders
        .iter()
        .map(|o| {
            if fresh.remove(&o.order_id) {
                // The first copy in this batch; a later copy compares with it.
                stored.insert(o.order_id, Prior { done: true, ..Prior::of(o, Version::V1) });
                Submitted::New
            } else {
                stored.get(&o.order_id).cloned().map(Submitted::AlreadyStored).unwrap_or(Submitted::New)
            }
        })
        .collect())
}
