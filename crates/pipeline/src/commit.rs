//! The sink step every log-based path shares: one batch committed exactly once into
//! PostgreSQL, then projected into Redis.
//!
//! The v2 worker and the v3 processor differ in where batches come from (a Redis Stream, Kafka
//! partitions); from here on they are the same: one transaction with the new orders, their
//! metric delta (the outbox) and the writer's position, then the crash-test hook, then the
//! delta applied to Redis through the fenced script. A crash anywhere replays the batch:
//! PostgreSQL skips known ids and offsets, and the fence skips deltas Redis already holds.

use std::{future::Future, time::Duration};

use coffee_core::{Applied, Order, Version};
use coffee_store::{PgPool, Projection, postgres};
use tokio::time::sleep;

use crate::{fault, idempotency::Prior, relay};

/// What became of a committed batch in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Its delta is in Redis now.
    Applied,
    /// Nothing to project: every order was a replay, or Redis already held the delta.
    Duplicate,
    /// Redis missed earlier deltas of this writer; they were applied from the outbox first.
    Gap,
    /// PostgreSQL has it but Redis could not be reached: the outbox keeps the delta, and the
    /// writer's next batch or the relay's sweep applies it.
    Deferred,
}

/// A commit attempt that failed. [`CommitError::is_retriable`] decides what the writer does.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("no PostgreSQL connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

impl CommitError {
    /// True when the error says nothing about the data (connection lost, pool timeout, a
    /// serialization failure): the same batch is retried as it is and no message is blamed.
    /// False when PostgreSQL refused the data itself: retrying it unchanged cannot succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            CommitError::Pool(_) => true,
            CommitError::Postgres(e) => e.as_db_error().is_none_or(|db| {
                let code = db.code().code();
                // 08: connection exception, 53: insufficient resources, 57: operator
                // intervention, 40: transaction rollback (serialization, deadlock).
                ["08", "53", "57", "40"].iter().any(|class| code.starts_with(class))
            }),
        }
    }
}

/// Why [`CommitStep::commit`] gave up on a batch.
#[derive(Debug)]
pub enum Stopped {
    /// PostgreSQL refused the batch for its data ([`CommitError::is_retriable`] is false).
    Refused(CommitError),
    /// Shutdown came while PostgreSQL was unavailable: nothing was committed.
    ShuttingDown,
}

/// One writer's commit step: a v2 consumer, or one v3 partition.
pub struct CommitStep {
    pool: PgPool,
    projection: Projection,
    version: Version,
    source: String,
    /// The last outbox seq Redis was seen to hold; the next commit deletes up to there.
    applied: Option<i64>,
}

impl CommitStep {
    /// `source` names the writer in `sink_positions`, the outbox and the Redis fence.
    pub fn new(pool: PgPool, projection: Projection, version: Version, source: String) -> CommitStep {
        CommitStep { pool, projection, version, source, applied: None }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// One attempt: commit `orders` (each with its log offset, if any) and the position
    /// `consumed_upto`, then project the delta.
    pub async fn try_commit(&mut self, orders: &[(Order, Option<i64>)], consumed_upto: Option<i64>) -> Result<Committed, CommitError> {
        let mut client = self.pool.get().await?;
        let committed = postgres::commit_batch(&mut client, self.version, &self.source, orders, consumed_upto, self.applied).await?;
        if committed.new_orders.len() + committed.skipped_by_offset < orders.len() {
            self.report_conflicts(&client, orders, &committed.new_orders).await?;
        }
        drop(client);
        fault::after_commit();
        let Some(entry) = &committed.entry else { return Ok(Committed::Duplicate) };
        Ok(match relay::apply_committed(&self.pool, &self.projection, entry, &committed.new_orders).await {
            Ok(applied) => {
                self.applied = Some(entry.seq);
                match applied {
                    Applied::Applied => Committed::Applied,
                    Applied::Duplicate => Committed::Duplicate,
                    Applied::Gap { .. } => Committed::Gap,
                }
            }
            Err(e) => {
                tracing::warn!(source = %self.source, error = %e, "applying the delta failed; the outbox keeps it");
                Committed::Deferred
            }
        })
    }

    /// Orders whose id was already stored are skipped; a replay is normal (at-least-once
    /// delivery), but another body under a used id means the API's registry had forgotten the
    /// id (expired, or Redis was away) and acknowledged a second meaning that is not kept. The
    /// first order stays; the second is logged and counted for an operator.
    async fn report_conflicts(
        &self,
        client: &deadpool_postgres::Client,
        orders: &[(Order, Option<i64>)],
        new: &[Order],
    ) -> Result<(), CommitError> {
        let new: std::collections::HashSet<_> = new.iter().map(|o| o.order_id).collect();
        let repeated: Vec<uuid::Uuid> = orders.iter().map(|(o, _)| o.order_id).filter(|id| !new.contains(id)).collect();
        let stored: std::collections::HashMap<_, _> =
            postgres::stored_orders(client, &repeated).await?.into_iter().map(|row| (row.order_id, Prior::stored(&row))).collect();
        for (order, _) in orders {
            let Some(first) = stored.get(&order.order_id) else { continue };
            let fields = first.differences(order);
            if !fields.is_empty() && !new.contains(&order.order_id) {
                tracing::warn!(source = %self.source, order_id = %order.order_id, first = %first.version, ?fields, "order_id reused for another order; the first one is kept");
                metrics::counter!("coffee_rt_commit_conflicts_total", "version" => self.version.as_str()).increment(1);
            }
        }
        Ok(())
    }

    /// [`CommitStep::try_commit`], retrying retriable failures with a backoff (100 ms doubling
    /// to 2 s) until `shutdown` resolves.
    pub async fn commit(
        &mut self,
        orders: &[(Order, Option<i64>)],
        consumed_upto: Option<i64>,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<Committed, Stopped> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.try_commit(orders, consumed_upto).await {
                Ok(c) => return Ok(c),
                Err(e) if !e.is_retriable() => return Err(Stopped::Refused(e)),
                Err(e) => {
                    tracing::warn!(source = %self.source, error = %e, "commit failed; retrying");
                    tokio::select! { _ = &mut *shutdown => return Err(Stopped::ShuttingDown), _ = sleep(backoff) => {} }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
