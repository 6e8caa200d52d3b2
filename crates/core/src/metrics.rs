//! The metrics fold: orders in, counters out. Every path (the v1 aggregator's SQL, the v2
//! worker and the v3 processor through Lua) computes exactly this.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Cents, Order, OrderRecord};

/// How many recent orders the projection keeps.
pub const RECENT_LEN: usize = 20;

/// A count and the revenue behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    pub count: i64,
    pub revenue: Cents,
}

impl Breakdown {
    fn add(&mut self, other: Breakdown) {
        self.count += other.count;
        self.revenue.0 += other.revenue.0;
    }
}

/// An entry of the recent-orders list: the order as it travels in the logs.
pub type RecentOrder = OrderRecord;

/// Newest first; the order id breaks ties so the list is a pure function of the set.
fn newest_first(a: &RecentOrder, b: &RecentOrder) -> std::cmp::Ordering {
    b.accepted_at.cmp(&a.accepted_at).then(b.order_id.cmp(&a.order_id))
}

/// The change a set of orders makes to the metrics. Folding is commutative and associative,
/// which is what lets batches be applied in any grouping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsDelta {
    pub total: Breakdown,
    pub drinks: BTreeMap<String, Breakdown>,
    pub stores: BTreeMap<String, Breakdown>,
    /// Keyed by [`hour_bucket`] of the order's own timestamp.
    pub hours: BTreeMap<String, Breakdown>,
    /// The newest [`RECENT_LEN`] orders, newest first.
    pub recent: Vec<RecentOrder>,
}

/// The per-hour bucket of a timestamp: `2025-01-15T10` (UTC). Date and hour together, so
/// buckets never mix days.
pub fn hour_bucket(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H").to_string()
}

impl MetricsDelta {
    pub fn from_orders<'a>(orders: impl IntoIterator<Item = &'a Order>) -> MetricsDelta {
        let mut delta = MetricsDelta::default();
        for o in orders {
            delta.add_order(o);
        }
        delta
    }

    pub fn add_order(&mut self, o: &Order) {
        let one = Breakdown { count: 1, revenue: o.price };
        self.total.add(one);
        self.drinks.entry(o.drink.clone()).or_default().add(one);
        self.stores.entry(o.store.clone()).or_default().add(one);
        self.hours.entry(hour_bucket(o.ordered_at)).or_default().add(one);
        self.push_recent(std::iter::once(o.to_record()));
    }

    pub fn merge(&mut self, other: &MetricsDelta) {
        self.total.add(other.total);
        for (map, theirs) in [(&mut self.drinks, &other.drinks), (&mut self.stores, &other.stores), (&mut self.hours, &other.hours)] {
            for (k, v) in theirs {
                map.entry(k.clone()).or_default().add(*v);
            }
        }
        self.push_recent(other.recent.iter().cloned());
    }

    fn push_recent(&mut self, items: impl Iterator<Item = RecentOrder>) {
        self.recent.extend(items);
        self.recent.sort_by(newest_first);
        self.recent.dedup_by_key(|r| r.order_id);
        self.recent.truncate(RECENT_LEN);
    }

    pub fn is_empty(&self) -> bool {
        self.total.count == 0
    }

    /// The top `n` drinks by count (ties by name), for the dashboard.
    pub fn top_drinks(&self, n: usize) -> Vec<(String, Breakdown)> {
        let mut v: Vec<_> = self.drinks.iter().map(|(k, b)| (k.clone(), *b)).collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}
