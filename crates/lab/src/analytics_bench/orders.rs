//! The orders of a size: the aggregator bench's generator (`aggregator_bench::history`: the
//! load generator's drink, store and price mix, time-ordered ids, in SQL with
//! generate_series), with the rows spread evenly over the whole history instead of 10 ms apart.

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::aggregator_bench::history::{GENERATE_SQL, SPACING_MS};

/// Rows per INSERT statement (one transaction each, as the sink sees them).
const CHUNK: u64 = 1_000_000;

/// [`GENERATE_SQL`] with its 10 ms spacing replaced by `spacing_us` microseconds.
pub fn spaced_sql(spacing_us: i64) -> anyhow::Result<String> {
    anyhow::ensure!(spacing_us > 0, "orders must be at least 1 µs apart");
    let step = format!("i * interval '{SPACING_MS} ms'");
    anyhow::ensure!(
        GENERATE_SQL.matches(&step).count() == 1,
        "the aggregator bench's generator no longer spaces rows by `{step}`: update analytics_bench::orders"
    );
    Ok(GENERATE_SQL.replacen(&step, &format!("i * interval '{spacing_us} microseconds'"), 1))
}

/// The spacing that puts `rows` orders in `[start, end)`, in microseconds.
pub fn spacing_us(rows: u64, start: DateTime<Utc>, end: DateTime<Utc>) -> anyhow::Result<i64> {
    let span = (end - start).num_microseconds().context("history span")?;
    anyhow::ensure!(rows > 0 && span > 0, "no history to generate");
    Ok(span / rows as i64)
}

/// Fills the (migrated, empty) `orders` table with `rows` v1 orders evenly spread over
/// `[start, end)`, then rebuilds its indexes (so they are as compact as a bulk load's) and
/// runs VACUUM ANALYZE.
pub async fn generate(client: &tokio_postgres::Client, rows: u64, start: DateTime<Utc>, end: DateTime<Utc>) -> anyhow::Result<()> {
    let sql = spaced_sql(spacing_us(rows, start, end)?)?;
    let statement = client.prepare(&sql).await.context("prepare the generator")?;
    let mut i = 0u64;
    while i < rows {
        let last = (i + CHUNK).min(rows) - 1;
        let n = client.execute(&statement, &[&(i as i64), &(last as i64), &start]).await.context("generate orders")?;
        anyhow::ensure!(n == last - i + 1, "inserted {n} of {} orders", last - i + 1);
        i = last + 1;
    }
    client.batch_execute("REINDEX TABLE orders").await.context("REINDEX orders")?;
    client.batch_execute("VACUUM (ANALYZE) orders").await.context("VACUUM orders")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_respaced() {
        let sql = spaced_sql(31_536_000).unwrap();
        assert!(sql.contains("i * interval '31536000 microseconds'"));
        assert!(!sql.contains("interval '10 ms'"));
        assert!(sql.contains("interval '50 ms'"), "accepted_at keeps its delay");
        assert!(spaced_sql(0).is_err());
    }

    #[test]
    fn spacing_fills_the_span() {
        let end = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap().to_utc();
        let start = end - chrono::Duration::days(365);
        let s = spacing_us(1_000_000, start, end).unwrap();
        assert_eq!(s, 31_536_000);
        // The last row is before the end.
        assert!(start + chrono::Duration::microseconds(s * 999_999) < end);
        assert!(spacing_us(0, start, end).is_err());
    }
}
