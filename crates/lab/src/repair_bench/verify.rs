//! After the load: the pipelines drain, then two checks.
//!
//! * **Drift**: each path's Redis projection against a recomputation from PostgreSQL with the
//!   lab's own SQL (the soak's audit: totals, revenue cents, per drink, per store, per hour),
//!   exact, once nothing moves any more.
//! * **Lost acknowledgements**: every order the load got a 2xx for must be in PostgreSQL. The
//!   one allowed exception is v2's orders acknowledged before Redis lost everything and still
//!   in its stream then: with a Redis that keeps nothing on disk they die with it, by design
//!   of that mode (docs/ARCHITECTURE.md). They are counted apart, as "lost with the stream",
//!   when their acknowledgement arrived before the loss boundary (t0 plus [`BOUNDARY_GRACE`]);
//!   any other missing order is a loss, and v1 and v3 must have none.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::time::Instant;

use super::load::Answer;
use super::recovery::{postgres_counts, redis_totals};
use crate::ApiVersion;
use crate::soak::audit::{self, Drift};

/// How long after t0 an acknowledgement may still be of an order Redis had taken before the
/// loss: its XADD answered before the FLUSHALL (or the kill), the answer on its way through
/// the API. Far longer than any such answer takes here; an order answered later than that was
/// taken by the new, empty Redis, and must survive.
pub const BOUNDARY_GRACE: Duration = Duration::from_secs(1);
/// PostgreSQL's counts unchanged this long, with Redis's totals equal to them, and every
/// acknowledged order there: drained. The outbox need not be empty: after a rebuild it keeps
/// deltas the snapshot already holds (their fence is past them) until the relay's sweep
/// deletes them, seconds later; it is reported, and the drift check would show any delta
/// still to apply.
const STABLE_FOR: Duration = Duration::from_secs(2);
/// The same but with acknowledged orders missing: they are not coming, once nothing has moved
/// for this long.
const SETTLE_FOR: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(500);

/// What came of one path's acknowledgements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Losses {
    pub acked: u64,
    /// Acknowledged, not in PostgreSQL, not excused: must be 0 on every path.
    pub lost: u64,
    /// v2 only: acknowledged before the loss boundary and not in PostgreSQL (they were in the
    /// Redis stream that was lost).
    pub lost_with_stream: u64,
    /// Not acknowledged (503, timeout, broken connection) yet in PostgreSQL: the order landed,
    /// its answer did not arrive.
    pub unacked_stored: u64,
}

/// Counts the load's record against the order ids PostgreSQL holds. `boundary`: v2 orders
/// acknowledged before it may have died with the stream.
pub fn losses(answers: &[Answer], stored: &HashSet<uuid::Uuid>, boundary: Instant) -> BTreeMap<ApiVersion, Losses> {
    let mut out: BTreeMap<ApiVersion, Losses> = ApiVersion::ALL.iter().map(|v| (*v, Losses::default())).collect();
    for a in answers {
        let l = out.get_mut(&a.version).expect("every path");
        let there = stored.contains(&a.order_id);
        if !a.acked() {
            l.unacked_stored += u64::from(there);
            continue;
        }
        l.acked += 1;
        if there {
            continue;
        }
        if a.version == ApiVersion::V2 && a.answered < boundary {
            l.lost_with_stream += 1;
        } else {
            l.lost += 1;
        }
    }
    out
}

/// Every `order_id` in `orders`.
pub async fn stored(client: &tokio_postgres::Client) -> anyhow::Result<HashSet<uuid::Uuid>> {
    let rows = client.query("SELECT order_id FROM orders", &[]).await.context("reading the order ids")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// How the drain ended.
#[derive(Debug, Clone, Serialize)]
pub struct Drained {
    /// `complete` (every acknowledged order there, Redis's totals equal to PostgreSQL's,
    /// nothing moving),
    /// `settled` (the same with orders missing: they are lost) or `timeout`.
    pub outcome: &'static str,
    pub seconds: f64,
    pub postgres: BTreeMap<ApiVersion, i64>,
    pub redis: BTreeMap<ApiVersion, i64>,
    /// Rows left in `metrics_outbox` at the end.
    pub outbox: i64,
}

/// Waits until the pipelines have finished what they were given (see [`Drained::outcome`]).
pub async fn drain(
    client: &tokio_postgres::Client,
    redis: &mut redis::aio::MultiplexedConnection,
    namespace: &str,
    answers: &[Answer],
    boundary: Instant,
    timeout: Duration,
) -> anyhow::Result<(Drained, HashSet<uuid::Uuid>)> {
    let started = Instant::now();
    let (mut last, mut unchanged_since) = (BTreeMap::new(), Instant::now());
    loop {
        let postgres = postgres_counts(client).await?;
        let redis_now = redis_totals(redis, namespace).await?;
        let outbox: i64 = client.query_one("SELECT count(*) FROM metrics_outbox", &[]).await?.get(0);
        if postgres != last {
            (last, unchanged_since) = (postgres.clone(), Instant::now());
        }
        let still = unchanged_since.elapsed();
        let quiet = still >= STABLE_FOR && redis_now == postgres;
        let timed_out = started.elapsed() >= timeout;
        if quiet || timed_out {
            let ids = stored(client).await?;
            let missing = losses(answers, &ids, boundary).values().any(|l| l.lost > 0);
            let outcome = match (missing, quiet) {
                (false, true) => Some("complete"),
                (true, true) if still >= SETTLE_FOR => Some("settled"),
                _ if timed_out => Some("timeout"),
                _ => None,
            };
            if let Some(outcome) = outcome {
                let seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
                return Ok((Drained { outcome, seconds, postgres, redis: redis_now, outbox }, ids));
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Every value on which a path's Redis projection and the recomputation from PostgreSQL
/// differ, all three paths.
pub async fn drift(
    client: &tokio_postgres::Client,
    redis: &mut redis::aio::MultiplexedConnection,
    namespace: &str,
) -> anyhow::Result<Vec<Drift>> {
    let mut out = Vec::new();
    for v in ApiVersion::ALL {
        let truth = audit::recompute(client, v).await?;
        let held = audit::read_redis(redis, namespace, v).await?;
        out.extend(audit::compare_metrics(v, &held, &truth));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::client::Outcome;

    #[test]
    fn only_v2_acknowledged_before_the_boundary_may_die_with_the_stream() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let ok = Outcome::Status(http::StatusCode::ACCEPTED);
        let shed = Outcome::Status(http::StatusCode::SERVICE_UNAVAILABLE);
        let mut answers = Vec::new();
        let mut stored = HashSet::new();
        let mut add = |version, ms, outcome, there: bool| {
            let order_id = uuid::Uuid::now_v7();
            if there {
                stored.insert(order_id);
            }
            answers.push(Answer { order_id, version, answered: at(ms), took_us: 1000, outcome });
        };
        add(ApiVersion::V2, 100, ok, true); // acknowledged, stored
        add(ApiVersion::V2, 400, ok, false); // in the lost stream
        add(ApiVersion::V2, 1500, ok, false); // after the boundary: a loss
        add(ApiVersion::V2, 600, shed, true); // 503 yet stored
        add(ApiVersion::V2, 700, shed, false); // 503, not stored: nothing to count
        add(ApiVersion::V1, 100, ok, false); // v1 is never excused
        add(ApiVersion::V3, 200, ok, true);
        add(ApiVersion::V3, 300, Outcome::Timeout, false);
        let l = losses(&answers, &stored, at(1000));
        assert_eq!(l[&ApiVersion::V2], Losses { acked: 3, lost: 1, lost_with_stream: 1, unacked_stored: 1 });
        assert_eq!(l[&ApiVersion::V1], Losses { acked: 1, lost: 1, lost_with_stream: 0, unacked_stored: 0 });
        assert_eq!(l[&ApiVersion::V3], Losses { acked: 1, lost: 0, lost_with_stream: 0, unacked_stored: 0 });
    }
}
