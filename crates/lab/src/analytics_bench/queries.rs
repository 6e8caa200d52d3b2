//! The four history queries, as the dashboard's history tab asks them: the history
//! module's own [`HistoryQuery`] values, run through [`History`] on both stores, timed, and
//! their answers compared.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use coffee_warehouse::history::zone::day_start;
use coffee_warehouse::history::{Bucket, Group, History, HistoryAnswer, HistoryQuery};
use tokio::time::Instant;

use super::timing::{ms, timing};
use crate::results::analytics::QueryResult;

/// One query of the bench.
#[derive(Debug, Clone)]
pub struct BenchQuery {
    pub key: &'static str,
    pub title: &'static str,
    pub whole_range: bool,
    pub query: HistoryQuery,
}

impl BenchQuery {
    /// The query as `/api/history` parameters, without the range (the title says it).
    pub fn params(&self) -> String {
        let q = &self.query;
        let mut p = vec![format!("bucket={}", q.bucket)];
        for (k, v) in [("store", q.store.as_deref()), ("drink", q.drink.as_deref()), ("group", q.group.map(|g| g.as_str()))] {
            if let Some(v) = v {
                p.push(format!("{k}={v}"));
            }
        }
        p.join("&")
    }
}

/// The store and drink of the filtered query: the catalog's busiest store, its best seller.
pub const ONE_STORE: &str = "downtown";
pub const ONE_DRINK: &str = "latte";

/// The queries over the history `[start, end)` (`end` a local midnight in `tz`):
/// 1. revenue per store per day, the last 30 days (the history tab's first chart);
/// 2. the drink mix per week, the whole range (its second);
/// 3. orders per hour over the whole range, which the hour-of-day × weekday heat map folds;
/// 4. one store's sales of one drink per day, the whole range: the API's `store=` and `drink=`
///    filters, the question of a café owner looking at one shop's best seller.
pub fn queries(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> Vec<BenchQuery> {
    let end_date = end.with_timezone(&tz).date_naive();
    let last_30 = day_start(end_date - Duration::days(30), tz).to_utc();
    vec![
        BenchQuery {
            key: "revenue_per_store_per_day",
            title: "revenue per store per day, last 30 days",
            whole_range: false,
            query: HistoryQuery::new(last_30, end, Bucket::Day).group(Group::Store),
        },
        BenchQuery {
            key: "drink_mix_per_week",
            title: "drink mix per week, whole range",
            whole_range: true,
            query: HistoryQuery::new(start, end, Bucket::Week).group(Group::Drink),
        },
        BenchQuery {
            key: "hour_of_day_by_weekday",
            title: "orders per hour (the hour × weekday heat map), whole range",
            whole_range: true,
            query: HistoryQuery::new(start, end, Bucket::Hour),
        },
        BenchQuery {
            key: "one_store_one_drink_per_day",
            title: "one store's lattes per day, whole range",
            whole_range: true,
            query: HistoryQuery::new(start, end, Bucket::Day).store(ONE_STORE).drink(ONE_DRINK),
        },
    ]
}

/// Where two answers differ, or None if they are the same (apart from which store answered).
pub fn difference(pg: &HistoryAnswer, ch: &HistoryAnswer) -> Option<String> {
    let mut ch = ch.clone();
    ch.source = pg.source;
    if *pg == ch {
        return None;
    }
    if pg.totals != ch.totals {
        return Some(format!("totals differ: PostgreSQL {:?}, ClickHouse {:?}", pg.totals, ch.totals));
    }
    if pg.buckets.len() != ch.buckets.len() {
        return Some(format!("PostgreSQL has {} buckets, ClickHouse {}", pg.buckets.len(), ch.buckets.len()));
    }
    if let Some((a, b)) = pg.buckets.iter().zip(&ch.buckets).find(|(a, b)| a != b) {
        return Some(format!("first differing bucket: PostgreSQL {a:?}, ClickHouse {b:?}"));
    }
    Some("the answers' headers differ (range, zone or filters)".into())
}

/// Runs `q` once on each store as a warm-up, checks that the answers are equal, then `runs`
/// times on each store, alternating, each answer checked against the warm-up's.
pub async fn measure(pg: &dyn History, ch: &dyn History, q: &BenchQuery, runs: u64) -> anyhow::Result<QueryResult> {
    let fail = |store: &str, e: &dyn std::fmt::Display| anyhow::anyhow!("{} on {store}: {e}", q.title);
    let pg_answer = pg.buckets(&q.query).await.map_err(|e| fail("PostgreSQL", &e))?;
    let ch_answer = ch.buckets(&q.query).await.map_err(|e| fail("ClickHouse", &e))?;
    if let Some(d) = difference(&pg_answer, &ch_answer) {
        anyhow::bail!("{}: PostgreSQL and ClickHouse answer differently: {d}", q.title);
    }
    anyhow::ensure!(pg_answer.totals.orders > 0, "{}: no orders in the range", q.title);
    let (mut pg_ms, mut ch_ms) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for (store, history, reference, times) in [("PostgreSQL", pg, &pg_answer, &mut pg_ms), ("ClickHouse", ch, &ch_answer, &mut ch_ms)] {
            let t = Instant::now();
            let answer = history.buckets(&q.query).await.map_err(|e| fail(store, &e))?;
            times.push(ms(t.elapsed()));
            anyhow::ensure!(answer == *reference, "{}: {store} answered differently from its warm-up run", q.title);
        }
    }
    let orders = pg_answer.totals.orders as u64;
    Ok(QueryResult {
        key: q.key.into(),
        title: q.title.into(),
        params: q.params(),
        whole_range: q.whole_range,
        buckets: pg_answer.buckets.len(),
        orders,
        postgres: timing(pg_ms, orders),
        clickhouse: timing(ch_ms, orders),
        answers_equal: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_queries_over_the_history() {
        let tz = chrono_tz::Europe::Paris;
        let end = day_start(chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(), tz).to_utc();
        let start = day_start(chrono::NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(), tz).to_utc();
        let qs = queries(start, end, tz);
        assert_eq!(qs.len(), 4);
        for q in &qs {
            q.query.validated().unwrap_or_else(|e| panic!("{}: {e}", q.key));
            assert_eq!(q.query.to, end);
            assert_eq!(q.query.from == start, q.whole_range, "{}", q.key);
        }
        // The last 30 local days: from a local midnight 30 days before the end.
        assert_eq!(qs[0].query.from.with_timezone(&tz).to_rfc3339(), "2026-11-01T00:00:00+01:00");
        assert_eq!(qs[0].params(), "bucket=day&group=store");
        assert_eq!(qs[3].params(), "bucket=day&store=downtown&drink=latte");
    }
}
