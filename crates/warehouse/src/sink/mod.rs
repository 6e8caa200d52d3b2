//! The warehouse sink: every committed order of every path, copied from PostgreSQL into
//! ClickHouse, exactly once as the queries see it.
//!
//! **Watermark.** Like the v1 aggregator, the sink reads windows of inserting transaction ids
//! (`orders.txid`): a round takes `to = pg_snapshot_xmin(pg_current_snapshot())`, below which
//! every transaction has ended, and copies every order with `from <= txid < to`, where `from`
//! is the watermark the previous round stored. A transaction that commits out of order (a
//! long v2 batch that began before a short v1 one) is below the next round's xmin when it
//! ends, never behind one already passed: no row is skipped, whatever the commit order.
//!
//! **Paging.** A window is read in keyset pages of `page_size` orders by `(txid, order_id)`
//! (`orders_txid_order_id`, migration V3): an index range scan per page, each page a statement
//! of its own (no transaction held open across pages, so nobody's xmin is held back). The set
//! of rows in a window is fixed once its transactions have ended, so pages read at different
//! times still partition it. The next page is read from PostgreSQL while ClickHouse takes the
//! current one.
//!
//! **Commit.** Each page is one `INSERT … FORMAT JSONEachRow`. The watermark (`sink_positions`,
//! source `warehouse`, in `log_offset`) moves to `to` only after ClickHouse acknowledged every
//! page of the window. A crash (kill -9) anywhere replays the window from `from`: the replayed
//! rows are identical to their first copies (an order never changes in PostgreSQL), so
//! ReplacingMergeTree's sorting key collapses them, and every query reads `FINAL`, which
//! collapses at read time too. Two sinks running at once do the same: harmless, and the
//! watermark only moves forward (`GREATEST`).
//!
//! **Retries.** A page ClickHouse does not take for a retriable reason (no answer, 5xx,
//! memory, too many parts) is sent again with backoff (100 ms doubling to `max_backoff`),
//! for as long as it takes: PostgreSQL keeps everything meanwhile. A PostgreSQL error or a
//! non-retriable ClickHouse error ends the round; the next round starts again from the
//! watermark after the same backoff (an unknown table or database re-creates the schema first).
//!
//! **Lag.** `coffee_rt_warehouse_lag_seconds` is how long the oldest order PostgreSQL holds past
//! the watermark has been waiting: now minus its `accepted_at` (the earliest among the first
//! 1,000 past the watermark by txid), 0 when none waits. Measured every second by a task of
//! its own, so it keeps growing while ClickHouse is down; when PostgreSQL is down too, it
//! grows from the last oldest order seen.
//!
//! **Range.** ClickHouse 18.16's DateTime holds 1970-01-01 to 2106-02-07 (UInt32 seconds) and
//! silently turns anything else into 0. An order whose time lies outside is not copied; it is
//! counted in `coffee_rt_warehouse_skipped_total` and logged. Timestamps are floored to whole
//! seconds.
//!
//! **Hot window** (`hot_days`): see [`crate::schema`]. On 18.16 the sink drops whole month
//! partitions older than the window at start and every hour, and does not copy orders older
//! than the cutoff.

mod listener;

pub use listener::serve;

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use coffee_store::{
    PgPool,
    postgres::{self, PageKey, WarehouseOrder, XidWindow},
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    clickhouse::{ClickHouse, ClickHouseError},
    schema::{self, HotWindow, ORDERS},
};

pub const ROWS_TOTAL: &str = "coffee_rt_warehouse_rows_total";
pub const LAG_SECONDS: &str = "coffee_rt_warehouse_lag_seconds";
pub const ERRORS_TOTAL: &str = "coffee_rt_warehouse_errors_total";
pub const SKIPPED_TOTAL: &str = "coffee_rt_warehouse_skipped_total";
pub const PARTITIONS_DROPPED_TOTAL: &str = "coffee_rt_warehouse_partitions_dropped_total";

/// How the sink runs; [`Default`] is what `coffee-rt warehouse` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// Orders per page (one PostgreSQL statement and one ClickHouse insert).
    pub page_size: usize,
    /// A round starts this often when the sink has caught up.
    pub every: Duration,
    /// The papers' hot window in days; `None` keeps everything.
    pub hot_days: Option<u32>,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig { page_size: 20_000, every: Duration::from_secs(1), hot_days: None, max_backoff: Duration::from_secs(5) }
    }
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundReport {
    pub window: XidWindow,
    /// Orders ClickHouse acknowledged in this round.
    pub rows: u64,
    pub pages: u32,
    /// Orders left out because a time of theirs lies outside DateTime's range (those before
    /// the hot window's cutoff are not read at all).
    pub skipped: u64,
    pub took: Duration,
}

/// What [`Sink::catch_up`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct CatchUp {
    pub rows: u64,
    pub rounds: u32,
    pub took: Duration,
}

impl CatchUp {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("PostgreSQL pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("stopped")]
    Stopped,
}

impl SinkError {
    fn store(&self) -> &'static str {
        match self {
            SinkError::ClickHouse(_) => "clickhouse",
            _ => "postgres",
        }
    }

    /// The table or database is gone (dropped by hand, a new server): create the schema again.
    fn needs_schema(&self) -> bool {
        // 60 UNKNOWN_TABLE, 81 UNKNOWN_DATABASE
        matches!(self, SinkError::ClickHouse(e) if matches!(e.code(), Some(60 | 81)))
    }
}

/// An order as the warehouse table takes it (`JSONEachRow`).
#[derive(Debug, Serialize)]
struct Row<'a> {
    order_id: uuid::Uuid,
    version: &'a str,
    store: &'a str,
    drink: &'a str,
    price_cents: i64,
    ordered_at: String,
    accepted_at: String,
}

/// The DateTime range ClickHouse stores (UInt32 seconds since the epoch).
fn in_datetime_range(t: DateTime<Utc>) -> bool {
    (0..=i64::from(u32::MAX)).contains(&t.timestamp())
}

/// `2025-01-15 10:00:00`: DateTime's text form, in the column's zone (UTC), floored to the second.
fn datetime_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The page as `JSONEachRow` lines, and how many orders were left out.
fn encode(page: &[WarehouseOrder]) -> (Vec<u8>, u64, u64) {
    let mut body = Vec::with_capacity(page.len() * 180);
    let (mut rows, mut skipped) = (0, 0);
    for o in page {
        if !in_datetime_range(o.ordered_at) || !in_datetime_range(o.accepted_at) {
            tracing::warn!(order_id = %o.order_id, ordered_at = %o.ordered_at, "order outside ClickHouse's DateTime range (1970 to 2106): not copied");
            skipped += 1;
            continue;
        }
        let row = Row {
            order_id: o.order_id,
            version: &o.version,
            store: &o.store,
            drink: &o.drink,
            price_cents: o.price_cents,
            ordered_at: datetime_text(o.ordered_at),
            accepted_at: datetime_text(o.accepted_at),
        };
        serde_json::to_writer(&mut body, &row).expect("a row encodes");
        body.push(b'\n');
        rows += 1;
    }
    (body, rows, skipped)
}

struct Shared {
    /// The `accepted_at` of the oldest order waiting, as last measured.
    oldest_waiting: Mutex<Option<DateTime<Utc>>>,
}

/// The warehouse role. Cheap to clone.
#[derive(Clone)]
pub struct Sink {
    pool: PgPool,
    clickhouse: ClickHouse,
    config: SinkConfig,
    shared: Arc<Shared>,
}

impl Sink {
    pub fn new(pool: PgPool, clickhouse: ClickHouse, config: SinkConfig) -> Sink {
        assert!(config.page_size > 0, "page_size must be positive");
        let shared = Shared { oldest_waiting: Mutex::new(None) };
        Sink { pool, clickhouse, config, shared: Arc::new(shared) }
    }

    pub fn clickhouse(&self) -> &ClickHouse {
        &self.clickhouse
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The stored watermark (read from PostgreSQL).
    pub async fn watermark(&self) -> Result<u64, SinkError> {
        let client = self.pool.get().await?;
        Ok(postgres::warehouse_watermark(&client).await?)
    }

    /// Creates the database and table (with the hot window's TTL where the server has one).
    /// A table found empty while the watermark is past 0 (a new ClickHouse, a database
    /// dropped by hand) gets every order again: the watermark goes back to 0.
    pub async fn prepare(&self) -> Result<HotWindow, SinkError> {
        let hot = schema::ensure_schema_with(&self.clickhouse, self.config.hot_days).await?;
        let client = self.pool.get().await?;
        let watermark = postgres::warehouse_watermark(&client).await?;
        if watermark > 0 && schema::stored_rows(&self.clickhouse).await? == 0 {
            tracing::warn!(
                watermark,
                table = self.clickhouse.table(ORDERS),
                "the warehouse table is empty but the watermark says otherwise: copying every order again"
            );
            postgres::reset_warehouse_watermark(&client).await?;
        }
        Ok(hot)
    }

    /// One round: the window from the stored watermark to the current snapshot xmin, copied
    /// page by page, then the watermark stored. A retriable ClickHouse error is retried in
    /// place until `stop` is cancelled.
    pub async fn run_round(&self, hot: HotWindow, stop: &CancellationToken) -> Result<RoundReport, SinkError> {
        let started = Instant::now();
        let client = self.pool.get().await?;
        let from = postgres::warehouse_watermark(&client).await?;
        let to = postgres::snapshot_xmin(&client).await?;
        drop(client);
        let window = XidWindow { from, to };
        let mut report = RoundReport { window, rows: 0, pages: 0, skipped: 0, took: Duration::ZERO };
        if to <= from {
            report.took = started.elapsed();
            return Ok(report);
        }
        let cutoff = hot.cutoff(Utc::now());
        let limit = self.config.page_size as i64;
        let mut page = self.page(window, None, cutoff, limit).await?;
        loop {
            if page.is_empty() {
                break;
            }
            let full = page.len() == self.config.page_size;
            let last: PageKey = page.last().map(|o| (o.txid, o.order_id));
            let (body, rows, skipped) = encode(&page);
            // The next page is read while ClickHouse takes this one.
            let insert = self.insert_retrying(body, rows, stop);
            let next = async { if full { self.page(window, last, cutoff, limit).await.map(Some) } else { Ok(None) } };
            let (inserted, next) = tokio::join!(insert, next);
            inserted?;
            report.rows += rows;
            report.skipped += skipped;
            report.pages += 1;
            if skipped > 0 {
                metrics::counter!(SKIPPED_TOTAL).increment(skipped);
            }
            match next? {
                Some(p) => page = p,
                None => break,
            }
        }
        let client = self.pool.get().await?;
        postgres::set_warehouse_watermark(&client, to).await?;
        report.took = started.elapsed();
        Ok(report)
    }

    async fn page(
        &self,
        window: XidWindow,
        after: PageKey,
        cutoff: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<WarehouseOrder>, SinkError> {
        let client = self.pool.get().await?;
        Ok(postgres::warehouse_page(&client, window, after, cutoff, limit).await?)
    }

    async fn insert_retrying(&self, body: Vec<u8>, rows: u64, stop: &CancellationToken) -> Result<(), SinkError> {
        if rows == 0 {
            return Ok(());
        }
        let body = bytes::Bytes::from(body);
        let mut backoff = Backoff::new(self.config.max_backoff);
        loop {
            match self.clickhouse.insert_json_lines(ORDERS, body.clone()).await {
                Ok(()) => {
                    metrics::counter!(ROWS_TOTAL).increment(rows);
                    return Ok(());
                }
                Err(e) if e.is_retriable() => {
                    metrics::counter!(ERRORS_TOTAL, "store" => "clickhouse").increment(1);
                    let wait = backoff.next();
                    if backoff.attempts == 1 || backoff.attempts.is_multiple_of(10) {
                        tracing::warn!(error = %e, attempts = backoff.attempts, retry_in_ms = wait.as_millis() as u64, "ClickHouse did not take a page; retrying (PostgreSQL keeps the orders)");
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return Err(SinkError::Stopped),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Rounds until the warehouse holds every order committed before this call (the watermark
    /// reaches the snapshot xmax at the start): the bench's ingest measurement. A transaction
    /// still open somewhere on the server holds the watermark back until it ends (rounds then
    /// wait `every` between them). Errors are returned, not retried.
    pub async fn catch_up(&self) -> Result<CatchUp, SinkError> {
        let started = Instant::now();
        let hot = self.prepare().await?;
        let target = postgres::snapshot_xmax(&self.pool.get().await?).await?;
        let never = CancellationToken::new();
        let (mut rows, mut rounds) = (0, 0);
        loop {
            let r = self.run_round(hot, &never).await?;
            rows += r.rows;
            rounds += 1;
            if r.window.to >= target {
                return Ok(CatchUp { rows, rounds, took: started.elapsed() });
            }
            if r.rows == 0 {
                tokio::time::sleep(self.config.every).await;
            }
        }
    }

    /// The role: rounds every `every` until `shutdown`, with the lag gauge measured beside
    /// them and, on a server without TTL, the hot window's partitions dropped every hour.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let stop = CancellationToken::new();
        let lag = tokio::spawn(self.clone().measure_lag(stop.clone()));
        tokio::select! {
            _ = shutdown => {}
            _ = self.rounds(&stop) => {}
        }
        stop.cancel();
        let _ = lag.await;
    }

    async fn rounds(&self, stop: &CancellationToken) {
        let mut backoff = Backoff::new(self.config.max_backoff.max(Duration::from_secs(1)));
        let hot = loop {
            match self.prepare().await {
                Ok(hot) => break hot,
                Err(e) => {
                    metrics::counter!(ERRORS_TOTAL, "store" => e.store()).increment(1);
                    let wait = backoff.next();
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, url = self.clickhouse.url(), "cannot create the warehouse schema yet");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        match hot {
            HotWindow::Off => {
                tracing::info!(url = self.clickhouse.url(), database = self.clickhouse.database(), "warehouse sink: keeping every order")
            }
            HotWindow::Ttl { days } => tracing::info!(days, "warehouse sink: hot window kept by the table's TTL"),
            HotWindow::DropPartitions { days } => tracing::info!(
                days,
                "warehouse sink: this ClickHouse has no TTL (before 19.6); month partitions wholly older than the hot window are dropped every hour, so it keeps {days} days up to a month more"
            ),
        }
        let mut last_drop: Option<Instant> = None;
        let mut tick = tokio::time::interval(self.config.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = Backoff::new(self.config.max_backoff);
        loop {
            tick.tick().await;
            if matches!(hot, HotWindow::DropPartitions { .. }) && last_drop.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                match schema::drop_cold_partitions(&self.clickhouse, hot, Utc::now()).await {
                    Ok(dropped) => {
                        last_drop = Some(Instant::now());
                        for p in &dropped {
                            tracing::info!(partition = p, "warehouse: dropped a month partition older than the hot window");
                        }
                        metrics::counter!(PARTITIONS_DROPPED_TOTAL).increment(dropped.len() as u64);
                    }
                    Err(e) => tracing::warn!(error = %e, "warehouse: could not drop old partitions; trying again next round"),
                }
            }
            match self.run_round(hot, stop).await {
                Ok(r) => {
                    backoff = Backoff::new(self.config.max_backoff);
                    if r.rows > 0 {
                        tracing::debug!(
                            rows = r.rows,
                            pages = r.pages,
                            took_ms = r.took.as_millis() as u64,
                            to = r.window.to,
                            "warehouse round"
                        );
                    }
                }
                Err(SinkError::Stopped) => return,
                Err(e) => {
                    metrics::counter!(ERRORS_TOTAL, "store" => e.store()).increment(1);
                    let wait = backoff.next();
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "warehouse round failed; it starts again from the watermark");
                    if e.needs_schema()
                        && let Err(e) = self.prepare().await
                    {
                        tracing::warn!(error = %e, "cannot create the warehouse schema");
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Sets the lag gauge every second until `stop`.
    async fn measure_lag(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let measured = tokio::time::timeout(Duration::from_secs(2), async {
                let client = self.pool.get().await?;
                let watermark = postgres::warehouse_watermark(&client).await?;
                Ok::<_, SinkError>(postgres::oldest_unwarehoused(&client, watermark).await?)
            })
            .await;
            let mut oldest = self.shared.oldest_waiting.lock().expect("lag lock");
            match measured {
                Ok(Ok(o)) => *oldest = o,
                // PostgreSQL is away: the oldest order seen keeps aging.
                Ok(Err(e)) => tracing::debug!(error = %e, "warehouse lag: PostgreSQL did not answer"),
                Err(_) => tracing::debug!("warehouse lag: PostgreSQL timed out"),
            }
            let lag = oldest.map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1e3).unwrap_or(0.0);
            metrics::gauge!(LAG_SECONDS).set(lag);
        }
    }
}

/// Exponential backoff from 100 ms to a cap.
struct Backoff {
    next: Duration,
    max: Duration,
    attempts: u32,
}

impl Backoff {
    fn new(max: Duration) -> Backoff {
        Backoff { next: Duration::from_millis(100).min(max), max, attempts: 0 }
    }

    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempts += 1;
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(ordered_at: &str) -> WarehouseOrder {
        WarehouseOrder {
            txid: 7,
            order_id: "0195c3a4-0000-7000-8000-000000000001".parse().unwrap(),
            version: "v2".into(),
            store: "up\"town".into(),
            drink: "latte".into(),
            price_cents: 450,
            ordered_at: ordered_at.parse().unwrap(),
            accepted_at: "2025-01-15T10:00:00.999999Z".parse().unwrap(),
        }
    }

    #[test]
    fn rows_encode_as_json_lines_with_floored_seconds() {
        let (body, rows, skipped) = encode(&[order("2025-01-15T09:59:59.999999Z")]);
        assert_eq!((rows, skipped), (1, 0));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"order_id\":\"0195c3a4-0000-7000-8000-000000000001\",\"version\":\"v2\",\"store\":\"up\\\"town\",\"drink\":\"latte\",\"price_cents\":450,\"ordered_at\":\"2025-01-15 09:59:59\",\"accepted_at\":\"2025-01-15 10:00:00\"}\n"
        );
    }

    #[test]
    fn times_outside_datetime_are_skipped() {
        let (body, rows, skipped) = encode(&[
            order("1969-12-31T23:59:59Z"),
            order("1970-01-01T00:00:00Z"),
            order("2106-02-07T06:28:15Z"),
            order("2106-02-07T06:28:16Z"),
        ]);
        assert_eq!((rows, skipped), (2, 2));
        assert_eq!(String::from_utf8(body).unwrap().lines().count(), 2);
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let mut b = Backoff::new(Duration::from_millis(500));
        let waits: Vec<u64> = (0..5).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(b.attempts, 5);
    }
}
