//! Writes and reads of the metrics projection.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffee_core::{Applied, Breakdown, Cents, MetricsDelta, RECENT_LEN, RecentOrder, Version};
use redis::{AsyncCommands, Script, aio::ConnectionManager};
use serde_json::json;

use super::Keys;
use crate::OutboxEntry;

static PROJECT_LUA: &str = include_str!("scripts/project.lua");

/// The Redis side of every path: applies deltas exactly once and reads metrics back.
#[derive(Clone)]
pub struct Projection {
    conn: ConnectionManager,
    namespace: String,
    script: Script,
}

/// What `read_all`'s pipeline returns: totals, the six count and revenue hashes, the recent list.
type AllMetrics = (Option<i64>, Option<i64>, Counts, Counts, Counts, Counts, Counts, Counts, Vec<String>);
type Counts = BTreeMap<String, i64>;

impl Projection {
    pub fn new(conn: ConnectionManager, namespace: &str) -> Projection {
        Projection { conn, namespace: namespace.to_owned(), script: Script::new(PROJECT_LUA) }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn keys(&self, version: Version) -> Keys {
        Keys::new(&self.namespace, version)
    }

    /// Applies an outbox entry (the `seq`-th delta of its source). Safe to call again after a
    /// crash: the fence turns a replay into [`Applied::Duplicate`].
    pub async fn apply(&self, entry: &OutboxEntry) -> redis::RedisResult<Applied> {
        let prev = (entry.seq - 1) as u64;
        self.apply_delta(entry.version, &entry.source, prev, entry.seq as u64, &entry.delta).await
    }

    /// Applies `delta` for `source` if the source's fence stands at `prev`; moves it to `next`.
    pub async fn apply_delta(
        &self,
        version: Version,
        source: &str,
        prev: u64,
        next: u64,
        delta: &MetricsDelta,
    ) -> redis::RedisResult<Applied> {
        let (status, fence): (i64, u64) = self.invoke("apply", version, source, prev, next, delta, &[]).await?;
        Ok(match status {
            1 => Applied::Applied,
            0 => Applied::Duplicate,
            _ => Applied::Gap { fence },
        })
    }

    /// Overwrites `version`'s metrics with absolute values and its fences with `fences`.
    /// Returns false, changing nothing, when some writer's fence is already past the given one
    /// (the caller's snapshot is stale).
    pub async fn replace(&self, version: Version, delta: &MetricsDelta, fences: &[(String, u64)]) -> redis::RedisResult<bool> {
        let (status, _): (i64, u64) = self.invoke("replace", version, "", 0, 0, delta, fences).await?;
        Ok(status == 1)
    }

    /// [`Projection::replace`] without its stale-snapshot check: for a projection that is ahead of
    /// PostgreSQL (its database was reset), with every writer of `version` stopped.
    pub async fn reset(&self, version: Version, delta: &MetricsDelta, fences: &[(String, u64)]) -> redis::RedisResult<()> {
        let _: (i64, u64) = self.invoke("reset", version, "", 0, 0, delta, fences).await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn invoke(
        &self,
        mode: &str,
        version: Version,
        source: &str,
        prev: u64,
        next: u64,
        delta: &MetricsDelta,
        fences: &[(String, u64)],
    ) -> redis::RedisResult<(i64, u64)> {
        let pair = |b: &Breakdown| json!([b.count, b.revenue.0]);
        let map = |m: &BTreeMap<String, Breakdown>| m.iter().map(|(k, v)| (k.clone(), pair(v))).collect::<serde_json::Map<_, _>>();
        let newest = delta.recent.iter().map(|r| r.accepted_at.timestamp_millis()).max().unwrap_or(0);
        let compact = json!({
            "t": pair(&delta.total), "d": map(&delta.drinks), "s": map(&delta.stores), "h": map(&delta.hours),
            "k": RECENT_LEN, "n": newest,
        });
        let keys = self.keys(version);
        let mut inv = self.script.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        inv.arg(mode)
            .arg(source)
            .arg(prev)
            .arg(next)
            .arg(Utc::now().timestamp_millis())
            .arg(Keys::changes_channel(&self.namespace))
            .arg(version.as_str())
            .arg(compact.to_string())
            .arg(fences.len());
        for (s, v) in fences {
            inv.arg(s).arg(*v);
        }
        for r in &delta.recent {
            inv.arg(r.accepted_at.timestamp_micros()).arg(serde_json::to_string(r).expect("recent serialises"));
        }
        let mut conn = self.conn.clone();
        inv.invoke_async(&mut conn).await
    }

    /// Reads every metric of `version` back as a delta from zero, for reconciliation.
    pub async fn read_all(&self, version: Version) -> redis::RedisResult<MetricsDelta> {
        let k = self.keys(version);
        let mut conn = self.conn.clone();
        let (total, revenue, dc, dr, sc, sr, hc, hr, recent): AllMetrics = redis::pipe()
            .get(k.metric("total_orders"))
            .get(k.metric("total_revenue"))
            .hgetall(k.metric("drink_counts"))
            .hgetall(k.metric("drink_revenue"))
            .hgetall(k.metric("store_counts"))
            .hgetall(k.metric("store_revenue"))
            .hgetall(k.metric("hourly_counts"))
            .hgetall(k.metric("hourly_revenue"))
            .zrevrange(k.metric("recent_orders"), 0, RECENT_LEN as isize - 1)
            .query_async(&mut conn)
            .await?;
        let zip = |c: BTreeMap<String, i64>, r: BTreeMap<String, i64>| {
            c.into_iter()
                .map(|(name, count)| {
                    let revenue = Cents(r.get(&name).copied().unwrap_or(0));
                    (name, Breakdown { count, revenue })
                })
                .filter(|(_, b)| b.count != 0 || b.revenue.0 != 0)
                .collect()
        };
        Ok(MetricsDelta {
            total: Breakdown { count: total.unwrap_or(0), revenue: Cents(revenue.unwrap_or(0)) },
            drinks: zip(dc, dr),
            stores: zip(sc, sr),
            hours: zip(hc, hr),
            recent: recent.iter().filter_map(|m| serde_json::from_str::<RecentOrder>(m).ok()).collect(),
        })
    }

    /// The fence of every source of `version`.
    pub async fn fences(&self, version: Version) -> redis::RedisResult<BTreeMap<String, u64>> {
        let mut conn = self.conn.clone();
        conn.hgetall(self.keys(version).metric("fence")).await
    }

    /// Announces that `version`'s projection is being rebuilt from PostgreSQL, to every
    /// dashboard and `/readyz`. It expires by itself (`ttl`) should the rebuilder die.
    pub async fn mark_rebuilding(&self, version: Version, since: DateTime<Utc>, ttl: std::time::Duration) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        conn.pset_ex(self.keys(version).metric("rebuilding"), since.timestamp_millis(), ttl.as_millis() as u64).await
    }

    pub async fn clear_rebuilding(&self, version: Version) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        conn.del(self.keys(version).metric("rebuilding")).await
    }

    /// Since when `version`'s projection is being rebuilt, if it is.
    pub async fn rebuilding_since(&self, version: Version) -> redis::RedisResult<Option<DateTime<Utc>>> {
        let mut conn = self.conn.clone();
        let ms: Option<i64> = conn.get(self.keys(version).metric("rebuilding")).await?;
        Ok(ms.and_then(DateTime::from_timestamp_millis))
    }

    /// When `version`'s projection was last written, if ever.
    pub async fn updated_at(&self, version: Version) -> redis::RedisResult<Option<DateTime<Utc>>> {
        let mut conn = self.conn.clone();
        let ms: Option<i64> = conn.get(self.keys(version).metric("updated_at")).await?;
        Ok(ms.and_then(DateTime::from_timestamp_millis))
    }
}
