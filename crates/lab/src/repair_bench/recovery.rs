//! The figure itself: from Redis answering again (t0) to each version's metrics being right
//! again.
//!
//! Right at t0 PostgreSQL's order count per version, `C_v`, is read in one snapshot: what
//! was committed before Redis came back. Then each version's `total_orders` in Redis is read
//! every poll (a raw `GET`, not the product's reader), and the version has recovered once it
//! is at least `C_v`: the projection counts everything committed before Redis returned.
//! At least, not equal: orders keep coming, so an exact match with PostgreSQL would be a
//! moment's coincidence; whether the counts are also *exact* is the drift check's question,
//! once the load has stopped (`verify`).
//!
//! A version's time is taken when the read that saw it recovered returned: late by up to one
//! poll, never early.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use crate::ApiVersion;

/// Orders per path in PostgreSQL, all three from one snapshot (one statement).
pub async fn postgres_counts(client: &tokio_postgres::Client) -> anyhow::Result<BTreeMap<ApiVersion, i64>> {
    let mut out: BTreeMap<ApiVersion, i64> = ApiVersion::ALL.iter().map(|v| (*v, 0)).collect();
    for row in client.query("SELECT version, count(*) FROM orders GROUP BY version", &[]).await.context("counting the orders")? {
        let v: String = row.get(0);
        if let Some(v) = ApiVersion::ALL.into_iter().find(|x| x.as_str() == v) {
            out.insert(v, row.get(1));
        }
    }
    Ok(out)
}

/// Each path's `{ns}{v}:metrics:total_orders` (a missing key reads 0).
pub async fn redis_totals(conn: &mut redis::aio::MultiplexedConnection, namespace: &str) -> anyhow::Result<BTreeMap<ApiVersion, i64>> {
    let mut pipe = redis::pipe();
    for v in ApiVersion::ALL {
        pipe.cmd("GET").arg(format!("{namespace}{v}:metrics:total_orders"));
    }
    let totals: Vec<Option<i64>> = pipe.query_async(conn).await.context("reading the Redis totals")?;
    Ok(ApiVersion::ALL.into_iter().zip(totals).map(|(v, n)| (v, n.unwrap_or(0))).collect())
}

/// Which paths have recovered, and when (pure: the readings come from outside).
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// `C_v`: PostgreSQL's count at t0.
    pub targets: BTreeMap<ApiVersion, i64>,
    /// From t0 to the first reading at or past the target.
    pub recovered: BTreeMap<ApiVersion, Duration>,
    /// The first reading after t0 (when, and the totals): that the loss left the totals
    /// below their targets, i.e. that it met something.
    pub first: Option<(Duration, BTreeMap<ApiVersion, i64>)>,
    /// The last totals read, for a path that never recovered.
    pub last: BTreeMap<ApiVersion, i64>,
}

impl Recovery {
    pub fn new(targets: BTreeMap<ApiVersion, i64>) -> Recovery {
        Recovery { targets, recovered: BTreeMap::new(), first: None, last: BTreeMap::new() }
    }

    /// One reading of the Redis totals, `elapsed` after t0.
    pub fn observe(&mut self, elapsed: Duration, totals: &BTreeMap<ApiVersion, i64>) {
        for (v, target) in &self.targets {
            let total = totals.get(v).copied().unwrap_or(0);
            if total >= *target {
                self.recovered.entry(*v).or_insert(elapsed);
            }
        }
        self.first.get_or_insert_with(|| (elapsed, totals.clone()));
        self.last = totals.clone();
    }

    pub fn done(&self) -> bool {
        self.targets.keys().all(|v| self.recovered.contains_key(v))
    }

    /// Seconds to recovery per path, `None` for one that did not recover.
    pub fn seconds(&self) -> BTreeMap<ApiVersion, Option<f64>> {
        self.targets.keys().map(|v| (*v, self.recovered.get(v).map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0))).collect()
    }
}

/// Reads the totals every `poll` from `t0` until every path has recovered or `cap` has passed.
/// A failed read (Redis away again, a connection to open) is retried at the next poll.
pub async fn watch(
    redis_url: String,
    namespace: &'static str,
    targets: BTreeMap<ApiVersion, i64>,
    t0: Instant,
    poll: Duration,
    cap: Duration,
) -> Recovery {
    let mut recovery = Recovery::new(targets);
    let client = match redis::Client::open(redis_url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("the recovery watch cannot use {redis_url}: {e}");
            return recovery;
        }
    };
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut tick = tokio::time::interval_at(t0, poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !recovery.done() && t0.elapsed() < cap {
        tick.tick().await;
        if conn.is_none() {
            conn = client.get_multiplexed_async_connection().await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        match redis_totals(c, namespace).await {
            Ok(totals) => recovery.observe(t0.elapsed(), &totals),
            Err(e) => {
                tracing::debug!("reading the Redis totals failed: {e:#}");
                conn = None;
            }
        }
    }
    recovery
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(v1: i64, v2: i64, v3: i64) -> BTreeMap<ApiVersion, i64> {
        BTreeMap::from([(ApiVersion::V1, v1), (ApiVersion::V2, v2), (ApiVersion::V3, v3)])
    }

    #[test]
    fn a_path_recovers_at_its_first_reading_at_or_past_its_count_at_t0() {
        let mut r = Recovery::new(totals(100, 200, 300));
        let ms = Duration::from_millis;
        r.observe(ms(100), &totals(0, 0, 0));
        r.observe(ms(200), &totals(5, 200, 12));
        assert!(!r.done());
        // A total that falls back (a rebuild overwriting it) does not undo a recovery seen.
        r.observe(ms(300), &totals(99, 150, 301));
        r.observe(ms(1200), &totals(140, 260, 350));
        assert!(r.done());
        assert_eq!(r.recovered, BTreeMap::from([(ApiVersion::V1, ms(1200)), (ApiVersion::V2, ms(200)), (ApiVersion::V3, ms(300))]));
        assert_eq!(r.seconds()[&ApiVersion::V1], Some(1.2));
        assert_eq!(r.first, Some((ms(100), totals(0, 0, 0))));
    }

    #[test]
    fn a_path_that_never_gets_there_is_not_recovered() {
        let mut r = Recovery::new(totals(10, 10, 10));
        r.observe(Duration::from_secs(1), &totals(10, 9, 10));
        assert!(!r.done());
        assert_eq!(r.seconds()[&ApiVersion::V2], None);
        assert_eq!(r.last[&ApiVersion::V2], 9);
    }
}
