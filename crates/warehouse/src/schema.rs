//! The warehouse's one table, `{db}.orders`, and the papers' hot window.
//!
//! ```sql
//! CREATE TABLE {db}.orders (
//!     order_id UUID, version Enum8('v1' = 1, 'v2' = 2, 'v3' = 3), store String, drink String,
//!     price_cents Int64, ordered_at DateTime('UTC'), accepted_at DateTime('UTC')
//! ) ENGINE = ReplacingMergeTree()
//! PARTITION BY toYYYYMM(ordered_at)
//! ORDER BY (store, ordered_at, order_id)
//! ```
//!
//! An order's row never changes in PostgreSQL, so a replayed row has the same sorting key as
//! its first copy and ReplacingMergeTree collapses the two in a merge. Until that merge both
//! exist on disk: every query reads `FROM {db}.orders FINAL` ([`orders_final`]), which
//! collapses at read time, so counts and sums are exact at any moment.
//! Partitioned by month (the unit the hot window drops), ordered by store and time (the history
//! queries filter by store and range over time). Timestamps are whole seconds (DateTime; 18.16
//! has no DateTime64): history buckets are hours or longer, so nothing is lost to them.
//!
//! The hot window (`--warehouse-hot-days N`, the papers' "hot data 1–7 days"):
//! - a server with TTL (ClickHouse 19.6 and later) gets `TTL ordered_at + INTERVAL N DAY` on the
//!   table (`ALTER … MODIFY TTL` when the table exists already): rows leave at merges;
//! - ClickHouse 18.16 has no TTL, so the sink drops whole month partitions instead: a month
//!   goes when all of it is older than N days ([`HotWindow::droppable`]). ClickHouse then keeps
//!   at least N days and at most N days plus the current month. The sink says so in its log
//!   at start and for every partition it drops.
//!
//! Either way the sink does not copy orders older than [`HotWindow::cutoff`], so a dropped
//! month is not filled again by a late replay.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};

use crate::clickhouse::{ClickHouse, ClickHouseError, ServerVersion, quote, quote_ident};

/// The table's name in the configured database.
pub const ORDERS: &str = "orders";

/// `{db}.orders FINAL`, quoted: what every query reads.
pub fn orders_final(ch: &ClickHouse) -> String {
    format!("{} FINAL", ch.table(ORDERS))
}

fn columns() -> &'static str {
    "order_id    UUID,
    version     Enum8('v1' = 1, 'v2' = 2, 'v3' = 3),
    store       String,
    drink       String,
    price_cents Int64,
    ordered_at  DateTime('UTC'),
    accepted_at DateTime('UTC')"
}

/// `CREATE DATABASE IF NOT EXISTS {db}` and `CREATE TABLE IF NOT EXISTS {db}.orders`, without a
/// TTL. What the history module, the bench and the tests call.
pub async fn ensure_schema(ch: &ClickHouse) -> Result<(), ClickHouseError> {
    ensure_schema_with(ch, None).await.map(drop)
}

/// How the hot window is kept, decided by the server's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotWindow {
    /// Everything is kept.
    Off,
    /// The table has a TTL of this many days (ClickHouse >= 19.6).
    Ttl { days: u32 },
    /// No TTL on this server: the sink drops month partitions older than this many days.
    DropPartitions { days: u32 },
}

impl HotWindow {
    pub fn for_server(version: ServerVersion, hot_days: Option<u32>) -> HotWindow {
        match hot_days {
            None => HotWindow::Off,
            Some(days) if version.supports_ttl() => HotWindow::Ttl { days },
            Some(days) => HotWindow::DropPartitions { days },
        }
    }

    /// Orders older than this are not copied (they would be dropped, or are gone already).
    pub fn cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match *self {
            HotWindow::Off => None,
            HotWindow::Ttl { days } => Some(now - Duration::days(days.into())),
            HotWindow::DropPartitions { days } => Some(month_start(now - Duration::days(days.into()))),
        }
    }

    /// The month partitions (`toYYYYMM`, e.g. `202501`) among `partitions` that lie wholly
    /// before the window: every second of the month is more than N days old.
    pub fn droppable(&self, partitions: &[u32], now: DateTime<Utc>) -> Vec<u32> {
        let HotWindow::DropPartitions { .. } = self else { return Vec::new() };
        let Some(cutoff) = self.cutoff(now) else { return Vec::new() };
        let first_kept = cutoff.year() as u32 * 100 + cutoff.month();
        partitions.iter().copied().filter(|&p| p < first_kept).collect()
    }
}

fn month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0).single().expect("the first of a month exists in UTC")
}

/// [`ensure_schema`] with the hot window: on a server with TTL the table gets (or is altered
/// to) `TTL ordered_at + INTERVAL N DAY`. Returns how the window is kept.
pub async fn ensure_schema_with(ch: &ClickHouse, hot_days: Option<u32>) -> Result<HotWindow, ClickHouseError> {
    let version = ch.version().await?;
    let window = HotWindow::for_server(version, hot_days);
    ch.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(ch.database()))).await?;
    let ttl = match window {
        HotWindow::Ttl { days } => format!("\nTTL ordered_at + INTERVAL {days} DAY"),
        _ => String::new(),
    };
    ch.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} (\n    {}\n) ENGINE = ReplacingMergeTree()\nPARTITION BY toYYYYMM(ordered_at)\nORDER BY (store, ordered_at, order_id){ttl}",
        ch.table(ORDERS),
        columns()
    ))
    .await?;
    if let HotWindow::Ttl { days } = window {
        ch.execute(&format!("ALTER TABLE {} MODIFY TTL ordered_at + INTERVAL {days} DAY", ch.table(ORDERS))).await?;
    }
    Ok(window)
}

/// Rows in `{db}.orders` on disk (replays not collapsed): 0 for a new or emptied table.
pub async fn stored_rows(ch: &ClickHouse) -> Result<u64, ClickHouseError> {
    let text = ch.query_text(&format!("SELECT count() FROM {}", ch.table(ORDERS))).await?;
    text.trim().parse().map_err(|_| ClickHouseError::Decode(format!("count() answered {text:?}")))
}

/// The active month partitions of `{db}.orders`, oldest first.
pub async fn partitions(ch: &ClickHouse) -> Result<Vec<u32>, ClickHouseError> {
    #[derive(serde::Deserialize)]
    struct Row {
        partition: String,
    }
    let rows: Vec<Row> = ch
        .query_json(&format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = {} AND table = {} AND active ORDER BY partition",
            quote(ch.database()),
            quote(ORDERS)
        ))
        .await?;
    Ok(rows.iter().filter_map(|r| r.partition.trim_matches('\'').parse().ok()).collect())
}

/// Drops the month partitions that lie wholly before the hot window (18.16's stand-in for TTL)
/// and returns them.
pub async fn drop_cold_partitions(ch: &ClickHouse, window: HotWindow, now: DateTime<Utc>) -> Result<Vec<u32>, ClickHouseError> {
    let cold = window.droppable(&partitions(ch).await?, now);
    for p in &cold {
        ch.execute(&format!("ALTER TABLE {} DROP PARTITION {p}", ch.table(ORDERS))).await?;
    }
    Ok(cold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_window_follows_the_server() {
        let old = ServerVersion { major: 18, minor: 16, patch: 1 };
        let new = ServerVersion { major: 24, minor: 8, patch: 0 };
        assert_eq!(HotWindow::for_server(old, None), HotWindow::Off);
        assert_eq!(HotWindow::for_server(old, Some(7)), HotWindow::DropPartitions { days: 7 });
        assert_eq!(HotWindow::for_server(new, Some(7)), HotWindow::Ttl { days: 7 });
    }

    #[test]
    fn only_months_wholly_older_than_the_window_are_dropped() {
        let w = HotWindow::DropPartitions { days: 7 };
        let parts = [202411, 202412, 202501, 202502, 202503];
        // 7 days before 2025-02-05 is 2025-01-29: January still has hot days.
        assert_eq!(w.droppable(&parts, at("2025-02-05T12:00:00Z")), vec![202411, 202412]);
        assert_eq!(w.cutoff(at("2025-02-05T12:00:00Z")), Some(at("2025-01-01T00:00:00Z")));
        // 7 days before 2025-02-08 is 2025-02-01: all of January is older.
        assert_eq!(w.droppable(&parts, at("2025-02-08T00:00:01Z")), vec![202411, 202412, 202501]);
        assert_eq!(HotWindow::Off.droppable(&parts, at("2030-01-01T00:00:00Z")), Vec::<u32>::new());
        assert_eq!(HotWindow::Ttl { days: 1 }.droppable(&parts, at("2030-01-01T00:00:00Z")), Vec::<u32>::new());
        assert_eq!(HotWindow::Ttl { days: 1 }.cutoff(at("2025-02-08T00:00:00Z")), Some(at("2025-02-07T00:00:00Z")));
    }
}
