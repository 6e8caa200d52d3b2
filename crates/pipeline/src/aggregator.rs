//! The v1 aggregator: metrics recomputed from PostgreSQL with GROUP BY, written to Redis.
//!
//! `Full` recomputes everything and overwrites the projection with absolute values; its cost
//! grows with the table, which is exactly the breaking point the design papers predict. `Incremental`
//! aggregates only the rows committed since the last run: the window is bounded by snapshot
//! xmins (see [`coffee_store::postgres::XidWindow`]) and the new bound is stored as the fence
//! of source `aggregator` in the same Lua call that adds the delta, so a crash never counts a
//! window twice.

use std::time::{Duration, Instant};

use chrono::Utc;
use coffee_core::{Applied, Version};
use coffee_store::{
    PgPool, Projection,
    postgres::{self, XidWindow},
};
use tokio_postgres::IsolationLevel;

use crate::freshness;

/// The fence source the aggregator writes under `v1:metrics:fence`.
pub const SOURCE_NAME: &str = "aggregator";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateMode {
    Full,
    Incremental,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub mode: AggregateMode,
    pub orders_counted: i64,
    pub window: XidWindow,
    pub took: Duration,
}

#[derive(Clone)]
pub struct Aggregator {
    pool: PgPool,
    projection: Projection,
}

impl Aggregator {
    pub fn new(pool: PgPool, projection: Projection) -> Aggregator {
        Aggregator { pool, projection }
    }

    /// One run. `Incremental` falls back to `Full` when the projection has no fence yet.
    pub async fn run_once(&self, mode: AggregateMode) -> anyhow::Result<RunReport> {
        let started = Instant::now();
        let fence = self.projection.fences(Version::V1).await?.get(SOURCE_NAME).copied();
        let mode = if fence.is_none() { AggregateMode::Full } else { mode };
        let mut client = self.pool.get().await?;
        let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let xmin = postgres::snapshot_xmin(&tx).await?;
        let window = XidWindow { from: if mode == AggregateMode::Full { 0 } else { fence.unwrap_or(0) }, to: xmin };
        let delta = postgres::compute_metrics(&tx, Version::V1, Some(window)).await?;
        // The orders this run makes visible for the first time: those past the previous fence.
        let ages = match fence {
            Some(from) => postgres::acceptance_ages(&tx, Version::V1, XidWindow { from, to: xmin }).await?,
            None => Vec::new(),
        };
        tx.commit().await?;

        match mode {
            AggregateMode::Full => {
                let done = self.projection.replace(Version::V1, &delta, &[(SOURCE_NAME.to_owned(), xmin)]).await?;
                anyhow::ensure!(done, "another aggregator moved the v1 fence; this run is dropped");
            }
            AggregateMode::Incremental if window.to > window.from && !delta.is_empty() => {
                match self.projection.apply_delta(Version::V1, SOURCE_NAME, window.from, window.to, &delta).await? {
                    Applied::Applied => {}
                    other => anyhow::bail!("another aggregator moved the v1 fence ({other:?}); this run is dropped"),
                }
            }
            AggregateMode::Incremental => {}
        }
        // Freshness of v1 is honest: the orders just counted waited for this run.
        let visible = Utc::now();
        for (accepted_at, count) in ages {
            freshness::record(Version::V1, accepted_at, visible, count);
        }
        let took = started.elapsed();
        metrics::histogram!("coffee_rt_flush_duration_seconds", "stage" => "v1_aggregate").record(took.as_secs_f64());
        metrics::histogram!("coffee_rt_batch_orders", "stage" => "v1_aggregate").record(delta.total.count as f64);
        Ok(RunReport { mode, orders_counted: delta.total.count, window, took })
    }

    /// Runs every `every` until `shutdown` resolves. Errors are logged and the next run retries.
    pub async fn run_every(&self, every: Duration, mode: AggregateMode, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            match self.run_once(mode).await {
                Ok(r) => tracing::debug!(counted = r.orders_counted, took_ms = r.took.as_millis() as u64, "v1 aggregate"),
                Err(e) => tracing::warn!(error = %e, "v1 aggregate failed"),
            }
        }
    }
}
