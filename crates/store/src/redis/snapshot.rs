//! The dashboard's view of one version, read in one pipelined round trip.

use chrono::{DateTime, Duration, Utc};
use coffee_core::{Breakdown, MetricsDelta, RecentOrder, Version, hour_bucket};
use redis::RedisResult;
use serde::Serialize;

use super::Projection;

/// A named count and revenue (a drink, a store or an hour).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Named {
    pub name: String,
    pub count: i64,
    pub revenue_cents: i64,
}

impl Named {
    fn new(name: String, b: Breakdown) -> Named {
        Named { name, count: b.count, revenue_cents: b.revenue.0 }
    }
}

/// What `/api/dashboard` and the WebSocket show for one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VersionSnapshot {
    pub version: Version,
    pub total_orders: i64,
    pub total_revenue_cents: i64,
    pub drinks: Vec<Named>,
    pub stores: Vec<Named>,
    pub top_drinks: Vec<Named>,
    /// The current UTC hour's bucket.
    pub current_hour: Named,
    /// The last 24 hourly buckets, oldest first (only those with orders).
    pub hours: Vec<Named>,
    pub recent: Vec<RecentOrder>,
    /// When the newest counted order was accepted, and how long ago that was.
    pub newest_accepted_at: Option<DateTime<Utc>>,
    pub age_ms: Option<i64>,
    /// When the projection was last written.
    pub updated_at: Option<DateTime<Utc>>,
    /// Set while the projection is being rebuilt from PostgreSQL after Redis lost it: the
    /// figures are then incomplete, and the dashboard says "rebuilding".
    pub rebuilding_since: Option<DateTime<Utc>>,
}

impl Projection {
    pub async fn snapshot(&self, version: Version, now: DateTime<Utc>) -> RedisResult<VersionSnapshot> {
        let m: MetricsDelta = self.read_all(version).await?;
        let updated_at = self.updated_at(version).await?;
        let mut snapshot = VersionSnapshot::from_metrics(version, m, updated_at, now);
        snapshot.rebuilding_since = self.rebuilding_since(version).await?;
        Ok(snapshot)
    }
}

impl VersionSnapshot {
    pub fn from_metrics(version: Version, m: MetricsDelta, updated_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        let current = hour_bucket(now);
        let first = hour_bucket(now - Duration::hours(23));
        let hours = m.hours.range(first..).map(|(k, b)| Named::new(k.clone(), *b)).collect();
        let newest = m.recent.first().map(|r| r.accepted_at);
        VersionSnapshot {
            version,
            total_orders: m.total.count,
            total_revenue_cents: m.total.revenue.0,
            top_drinks: m.top_drinks(5).into_iter().map(|(k, b)| Named::new(k, b)).collect(),
            current_hour: Named::new(current.clone(), m.hours.get(&current).copied().unwrap_or_default()),
            drinks: m.drinks.into_iter().map(|(k, b)| Named::new(k, b)).collect(),
            stores: m.stores.into_iter().map(|(k, b)| Named::new(k, b)).collect(),
            hours,
            recent: m.recent,
            newest_accepted_at: newest,
            age_ms: newest.map(|t| (now - t).num_milliseconds()),
            updated_at,
            rebuilding_since: None,
        }
    }
}
