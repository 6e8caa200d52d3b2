//! History from PostgreSQL's `orders`, the source of truth (no warehouse needed).
//!
//! The zone is a query parameter (`AT TIME ZONE $3`): PostgreSQL's own tz database converts
//! each `ordered_at` to the café's wall clock. Keys, as [`super::zone`] defines them:
//! - hour: `ordered_at` minus the local time elapsed since the local clock hour began, as
//!   Unix seconds (the two 02:00 hours of the autumn change stay apart: they are different
//!   instants);
//! - day: the local date; week: the local date of the ISO week's Monday (`date_trunc('week')`
//!   on the local timestamp is Monday-based).

use async_trait::async_trait;
use chrono::NaiveDate;
use chrono_tz::Tz;
use coffee_store::PgPool;

use super::{Bucket, Group, History, HistoryAnswer, HistoryError, HistoryQuery, RawBucket, RawStart, Source};

/// [`History`] on PostgreSQL.
#[derive(Clone)]
pub struct PgHistory {
    pool: PgPool,
    tz: Tz,
}

impl PgHistory {
    pub fn new(pool: PgPool, tz: Tz) -> PgHistory {
        PgHistory { pool, tz }
    }
}

/// The statement for one query shape. Values are parameters: `$1`/`$2` the range, `$3` the
/// zone's name, `$4` the store, `$5` the drink (NULL: any).
fn sql(bucket: Bucket, group: Option<Group>) -> String {
    const LOCAL: &str = "(ordered_at AT TIME ZONE $3::text)";
    let start = match bucket {
        Bucket::Hour => format!("extract(epoch FROM ordered_at - ({LOCAL} - date_trunc('hour', {LOCAL})))::bigint"),
        Bucket::Day => format!("{LOCAL}::date"),
        Bucket::Week => format!("date_trunc('week', {LOCAL})::date"),
    };
    let key = match group {
        None => "NULL::text",
        Some(Group::Store) => "store",
        Some(Group::Drink) => "drink",
    };
    format!(
        "SELECT {start} AS start, {key} AS key, count(*)::bigint AS orders, sum(price_cents)::bigint AS revenue_cents \
         FROM orders \
         WHERE ordered_at >= $1 AND ordered_at < $2 \
           AND ($4::text IS NULL OR store = $4) AND ($5::text IS NULL OR drink = $5) \
         GROUP BY 1, 2"
    )
}

#[async_trait]
impl History for PgHistory {
    fn source(&self) -> Source {
        Source::Postgresql
    }

    fn timezone(&self) -> Tz {
        self.tz
    }

    async fn buckets(&self, q: &HistoryQuery) -> Result<HistoryAnswer, HistoryError> {
        let q = q.validated()?;
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&sql(q.bucket, q.group)).await?;
        let rows = client.query(&statement, &[&q.from, &q.to, &self.tz.name(), &q.store, &q.drink]).await?;
        let mut raw = Vec::with_capacity(rows.len());
        for row in rows {
            let start = match q.bucket {
                Bucket::Hour => RawStart::Instant(row.try_get::<_, i64>(0)?),
                Bucket::Day | Bucket::Week => RawStart::Date(row.try_get::<_, NaiveDate>(0)?),
            };
            raw.push(RawBucket { start, key: row.try_get(1)?, orders: row.try_get(2)?, revenue_cents: row.try_get(3)? });
        }
        HistoryAnswer::assemble(Source::Postgresql, self.tz, &q, raw)
    }
}
