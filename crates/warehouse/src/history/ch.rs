//! History from the warehouse: `{db}.orders` in ClickHouse, filled by the sink.
//!
//! Every query reads `FROM {db}.orders FINAL`: a replayed copy of an order (a sink restarted
//! mid-window) has the same sorting key and collapses into one row, so sums are exact before
//! the table's merges too. ClickHouse 18.16 has no query parameters: the zone, store and drink
//! enter the SQL through [`crate::clickhouse::quote`], and the range as integers.
//!
//! Keys, as [`super::zone`] defines them (and as [`super::PgHistory`] computes them):
//! - hour: `ordered_at` minus the local minutes and seconds past the hour, as Unix seconds;
//! - day: `toDate(ordered_at, tz)`; week: `toMonday(ordered_at, tz)` (ISO weeks), as text.
//!
//! `ordered_at` is a `DateTime` (whole seconds) where PostgreSQL keeps microseconds: the sink
//! copies the second an order falls in (it truncates), the range is in whole seconds too, so
//! each order lands in the same bucket in both stores.

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;

use super::{Bucket, Group, History, HistoryAnswer, HistoryError, HistoryQuery, RawBucket, RawStart, Source};
use crate::clickhouse::{ClickHouse, quote};

/// [`History`] on ClickHouse.
#[derive(Clone, Debug)]
pub struct ClickHouseHistory {
    ch: ClickHouse,
    tz: Tz,
}

impl ClickHouseHistory {
    pub fn new(ch: ClickHouse, tz: Tz) -> ClickHouseHistory {
        ClickHouseHistory { ch, tz }
    }

    /// The statement for a validated query.
    pub fn sql(&self, q: &HistoryQuery) -> String {
        let tz = quote(self.tz.name());
        let start = match q.bucket {
            Bucket::Hour => format!("toInt64(toUnixTimestamp(ordered_at)) - toMinute(ordered_at, {tz}) * 60 - toSecond(ordered_at, {tz})"),
            Bucket::Day => format!("toString(toDate(ordered_at, {tz}))"),
            Bucket::Week => format!("toString(toMonday(ordered_at, {tz}))"),
        };
        let (key, group_by) = match q.group {
            None => ("", "start"),
            Some(Group::Store) => (", store AS key", "start, key"),
            Some(Group::Drink) => (", drink AS key", "start, key"),
        };
        let mut filter = format!("ordered_at >= toDateTime({}) AND ordered_at < toDateTime({})", q.from.timestamp(), q.to.timestamp());
        if let Some(store) = &q.store {
            filter.push_str(&format!(" AND store = {}", quote(store)));
        }
        if let Some(drink) = &q.drink {
            filter.push_str(&format!(" AND drink = {}", quote(drink)));
        }
        format!(
            "SELECT {start} AS start{key}, toInt64(count()) AS orders, toInt64(sum(price_cents)) AS revenue_cents \
             FROM {table} FINAL WHERE {filter} GROUP BY {group_by}",
            table = self.ch.table("orders"),
        )
    }
}

#[derive(Deserialize)]
struct Row {
    start: serde_json::Value,
    #[serde(default)]
    key: Option<String>,
    orders: i64,
    revenue_cents: i64,
}

#[async_trait]
impl History for ClickHouseHistory {
    fn source(&self) -> Source {
        Source::Clickhouse
    }

    fn timezone(&self) -> Tz {
        self.tz
    }

    async fn buckets(&self, q: &HistoryQuery) -> Result<HistoryAnswer, HistoryError> {
        let q = q.validated()?;
        let rows: Vec<Row> = self.ch.query_json(&self.sql(&q)).await?;
        let bad = |what: &serde_json::Value| HistoryError::Data { backend: Source::Clickhouse, message: format!("bucket start {what}") };
        let mut raw = Vec::with_capacity(rows.len());
        for row in rows {
            let start = match (q.bucket, &row.start) {
                (Bucket::Hour, serde_json::Value::Number(n)) => RawStart::Instant(n.as_i64().ok_or_else(|| bad(&row.start))?),
                (Bucket::Day | Bucket::Week, serde_json::Value::String(s)) => {
                    RawStart::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad(&row.start))?)
                }
                _ => return Err(bad(&row.start)),
            };
            raw.push(RawBucket { start, key: row.key, orders: row.orders, revenue_cents: row.revenue_cents });
        }
        HistoryAnswer::assemble(Source::Clickhouse, self.tz, &q, raw)
    }
}
