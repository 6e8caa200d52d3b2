//! The history queries: orders and revenue per hour, day or week in the café's time zone,
//! optionally for one store or drink, optionally per store or per drink.
//!
//! One trait, [`History`], with two implementations picked by configuration ([`open`]):
//! [`PgHistory`] reads PostgreSQL's `orders`, [`ClickHouseHistory`] the warehouse's copy
//! (`FROM {db}.orders FINAL`). Both give the same answer to the same query, byte for byte once
//! serialised (apart from `source`): a backend computes only integers and dates (see
//! [`zone`]), and everything else — validation, the starts with their offsets, the order of the
//! buckets, the totals — is done here, once, for both.
//!
//! What an answer holds:
//! - buckets in the café's zone, DST included: a local day is 23, 24 or 25 hours long, and on
//!   the autumn change the repeated hour is two buckets (`02:00+02:00` and `02:00+01:00` in
//!   Paris); weeks are ISO weeks, starting on Monday;
//! - only buckets that hold at least one order: an empty hour, day or week is *omitted*, not
//!   written as zero (a chart fills the gaps);
//! - the range `[from, to)` in whole seconds (sub-second parts are cut, since the warehouse
//!   keeps whole seconds); a bucket at either end covers only its part inside the range;
//! - money as integer cents.

mod ch;
mod pg;
pub mod zone;

use std::{fmt, str::FromStr, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Duration, FixedOffset, SubsecRound, Utc};
use chrono_tz::Tz;
use coffee_store::PgPool;
use serde::{Deserialize, Serialize};

pub use ch::ClickHouseHistory;
pub use pg::PgHistory;
pub use zone::RawStart;

use crate::{
    ClickHouseConfig,
    clickhouse::{ClickHouse, ClickHouseError},
};

/// The longest range a query may cover, per bucket size: at most 9,600 hour buckets (400 days)
/// or about ten years of days or weeks, per group key.
pub const MAX_HOUR_RANGE_DAYS: i64 = 400;
pub const MAX_RANGE_DAYS: i64 = 3_660;

/// How long a bucket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// A local clock hour (the repeated hour of the autumn change is two buckets).
    Hour,
    /// A local calendar day (23, 24 or 25 hours long).
    Day,
    /// An ISO week, Monday 00:00 local to the next Monday.
    Week,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Hour, Bucket::Day, Bucket::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
        }
    }

    /// The longest range, in days, a query with these buckets may cover.
    pub fn max_range_days(self) -> i64 {
        match self {
            Bucket::Hour => MAX_HOUR_RANGE_DAYS,
            Bucket::Day | Bucket::Week => MAX_RANGE_DAYS,
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Bucket {
    type Err = InvalidQuery;

    fn from_str(s: &str) -> Result<Bucket, InvalidQuery> {
        match s {
            "hour" => Ok(Bucket::Hour),
            "day" => Ok(Bucket::Day),
            "week" => Ok(Bucket::Week),
            _ => Err(InvalidQuery::new("bucket", "must be hour, day or week")),
        }
    }
}

/// What the buckets are split by, besides time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Store,
    Drink,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Store => "store",
            Group::Drink => "drink",
        }
    }
}

impl FromStr for Group {
    type Err = InvalidQuery;

    fn from_str(s: &str) -> Result<Group, InvalidQuery> {
        match s {
            "store" => Ok(Group::Store),
            "drink" => Ok(Group::Drink),
            _ => Err(InvalidQuery::new("group", "must be store or drink")),
        }
    }
}

/// One history question: orders with `from <= ordered_at < to`, in buckets of `bucket`,
/// optionally only one store's and/or one drink's, optionally split by store or drink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Bucket,
    #[serde(default)]
    pub store: Option<String>,
    #[serde(default)]
    pub drink: Option<String>,
    #[serde(default)]
    pub group: Option<Group>,
}

impl HistoryQuery {
    /// Every order in `[from, to)`, in `bucket`s, not filtered, not grouped.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, bucket: Bucket) -> HistoryQuery {
        HistoryQuery { from, to, bucket, store: None, drink: None, group: None }
    }

    /// The last `days` local days in `tz`, today's included: from the start of the day `days - 1`
    /// days before the day of `now`, to `now`.
    pub fn last_days(now: DateTime<Utc>, days: u32, bucket: Bucket, tz: Tz) -> HistoryQuery {
        let today = now.with_timezone(&tz).date_naive();
        let first = today - Duration::days(i64::from(days.max(1)) - 1);
        HistoryQuery::new(zone::day_start(first, tz).to_utc(), now, bucket)
    }

    pub fn store(mut self, store: impl Into<String>) -> HistoryQuery {
        self.store = Some(store.into());
        self
    }

    pub fn drink(mut self, drink: impl Into<String>) -> HistoryQuery {
        self.drink = Some(drink.into());
        self
    }

    pub fn group(mut self, group: Group) -> HistoryQuery {
        self.group = Some(group);
        self
    }

    /// The query as the backends run it: the range in whole seconds, and checked — `to` after
    /// `from`, within what the warehouse's `DateTime` holds (1970 to 2105), not longer than
    /// [`Bucket::max_range_days`]; a store or drink, if given, not empty.
    pub fn validated(&self) -> Result<HistoryQuery, InvalidQuery> {
        let (from, to) = (self.from.trunc_subsecs(0), self.to.trunc_subsecs(0));
        let earliest = DateTime::UNIX_EPOCH;
        let latest = DateTime::parse_from_rfc3339("2106-01-01T00:00:00Z").expect("constant").to_utc();
        if from < earliest {
            return Err(InvalidQuery::new("from", "must not be before 1970-01-01T00:00:00Z"));
        }
        if to > latest {
            return Err(InvalidQuery::new("to", "must not be after 2106-01-01T00:00:00Z"));
        }
        if to <= from {
            return Err(InvalidQuery::new("to", "must be after from"));
        }
        let max = self.bucket.max_range_days();
        if to - from > Duration::days(max) {
            let hint = if self.bucket == Bucket::Hour { "; use bucket=day for longer ranges" } else { "" };
            return Err(InvalidQuery::new("from", format!("the range may cover at most {max} days with bucket={}{hint}", self.bucket)));
        }
        for (field, value) in [("store", &self.store), ("drink", &self.drink)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(InvalidQuery::new(field, "must not be empty"));
            }
        }
        Ok(HistoryQuery { from, to, ..self.clone() })
    }
}

/// A query that cannot be answered as asked, naming the parameter to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidQuery {
    pub field: &'static str,
    pub message: String,
}

impl InvalidQuery {
    pub fn new(field: &'static str, message: impl Into<String>) -> InvalidQuery {
        InvalidQuery { field, message: message.into() }
    }
}

/// Why a history query failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Invalid(#[from] InvalidQuery),
    #[error("PostgreSQL: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    /// A backend answered with something that is not a bucket (a bug, not an outage).
    #[error("{backend}: unexpected answer: {message}")]
    Data { backend: Source, message: String },
}

/// Which store answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Postgresql,
    Clickhouse,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Postgresql => "postgresql",
            Source::Clickhouse => "clickhouse",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bucket of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BucketRow {
    /// The bucket's local start in the café's zone, with the offset in force then:
    /// `2025-03-30T00:00:00+01:00`.
    pub start: DateTime<FixedOffset>,
    /// The store or drink, when the query is grouped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub orders: i64,
    pub revenue_cents: i64,
}

/// The sums over every bucket of an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Totals {
    pub orders: i64,
    pub revenue_cents: i64,
}

/// What `GET /api/history` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryAnswer {
    pub source: Source,
    /// The café's zone (IANA name) every start is in.
    pub timezone: String,
    pub bucket: Bucket,
    /// The range `[from, to)` actually queried (whole seconds), written in the café's zone.
    pub from: DateTime<FixedOffset>,
    pub to: DateTime<FixedOffset>,
    pub store: Option<String>,
    pub drink: Option<String>,
    pub group: Option<Group>,
    /// Buckets with at least one order, by start, then by key; empty buckets are omitted.
    pub buckets: Vec<BucketRow>,
    pub totals: Totals,
}

/// One row as a backend returns it: a bucket's key, its group key (`None` when not grouped)
/// and its sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBucket {
    pub start: RawStart,
    pub key: Option<String>,
    pub orders: i64,
    pub revenue_cents: i64,
}

impl HistoryAnswer {
    /// Builds the answer from a backend's rows, in any order: the one place starts are written
    /// and buckets sorted (by instant, then by key as bytes, not by a database's collation).
    pub fn assemble(source: Source, tz: Tz, q: &HistoryQuery, rows: Vec<RawBucket>) -> Result<HistoryAnswer, HistoryError> {
        let mut rows = rows;
        rows.sort_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key)));
        let mut totals = Totals::default();
        let mut buckets = Vec::with_capacity(rows.len());
        for row in rows {
            let start =
                row.start.start(tz).ok_or_else(|| HistoryError::Data { backend: source, message: format!("bucket {:?}", row.start) })?;
            totals.orders += row.orders;
            totals.revenue_cents += row.revenue_cents;
            buckets.push(BucketRow { start, key: row.key, orders: row.orders, revenue_cents: row.revenue_cents });
        }
        Ok(HistoryAnswer {
            source,
            timezone: tz.name().to_owned(),
            bucket: q.bucket,
            from: zone::in_zone(q.from, tz),
            to: zone::in_zone(q.to, tz),
            store: q.store.clone(),
            drink: q.drink.clone(),
            group: q.group,
            buckets,
            totals,
        })
    }
}

/// The history of the café's orders, from one store or the other.
#[async_trait]
pub trait History: Send + Sync {
    /// Which store answers.
    fn source(&self) -> Source;

    /// The café's zone the buckets are in.
    fn timezone(&self) -> Tz;

    /// Orders and revenue per bucket. The query is validated first ([`HistoryQuery::validated`]).
    async fn buckets(&self, q: &HistoryQuery) -> Result<HistoryAnswer, HistoryError>;
}

/// The history the configuration asks for: from ClickHouse when a warehouse is configured,
/// else from PostgreSQL. Connects lazily; nothing is sent before the first query.
pub fn open(pool: PgPool, warehouse: Option<&ClickHouseConfig>, tz: Tz) -> Result<Arc<dyn History>, ClickHouseError> {
    Ok(match warehouse {
        Some(config) => Arc::new(ClickHouseHistory::new(ClickHouse::new(config)?, tz)),
        None => Arc::new(PgHistory::new(pool, tz)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn validation_names_the_parameter_to_change() {
        let from = utc("2025-01-01T00:00:00Z");
        let ok = HistoryQuery::new(from, from + Duration::days(400), Bucket::Hour);
        assert!(ok.validated().is_ok());
        let long = HistoryQuery::new(from, from + Duration::days(401), Bucket::Hour);
        assert_eq!(long.validated().unwrap_err().field, "from");
        assert!(HistoryQuery { bucket: Bucket::Day, ..long.clone() }.validated().is_ok());
        assert_eq!(HistoryQuery::new(from, from, Bucket::Day).validated().unwrap_err().field, "to");
        assert_eq!(HistoryQuery::new(from, from - Duration::hours(1), Bucket::Day).validated().unwrap_err().field, "to");
        let before_1970 = HistoryQuery::new(utc("1969-12-31T23:00:00Z"), from, Bucket::Week);
        assert_eq!(before_1970.validated().unwrap_err().field, "from");
        assert_eq!(HistoryQuery::new(from, from + Duration::days(1), Bucket::Day).store(" ").validated().unwrap_err().field, "store");
        assert_eq!(HistoryQuery::new(from, from + Duration::days(1), Bucket::Day).drink("").validated().unwrap_err().field, "drink");
        assert_eq!("month".parse::<Bucket>().unwrap_err().field, "bucket");
        assert_eq!("city".parse::<Group>().unwrap_err().field, "group");
    }

    #[test]
    fn the_range_is_cut_to_whole_seconds() {
        let q = HistoryQuery::new(utc("2025-01-01T00:00:00.9Z"), utc("2025-01-02T00:00:00.5Z"), Bucket::Day);
        let v = q.validated().unwrap();
        assert_eq!((v.from, v.to), (utc("2025-01-01T00:00:00Z"), utc("2025-01-02T00:00:00Z")));
    }

    #[test]
    fn last_days_starts_at_a_local_midnight() {
        let now = utc("2025-03-31T10:00:00Z");
        let q = HistoryQuery::last_days(now, 30, Bucket::Day, chrono_tz::Europe::Paris);
        assert_eq!(zone::in_zone(q.from, chrono_tz::Europe::Paris).to_rfc3339(), "2025-03-02T00:00:00+01:00");
        assert_eq!(q.to, now);
    }

    #[test]
    fn answers_are_sorted_and_written_in_the_zone() {
        let tz = chrono_tz::Europe::Paris;
        let q = HistoryQuery::new(utc("2025-10-25T00:00:00Z"), utc("2025-10-27T00:00:00Z"), Bucket::Hour).group(Group::Store);
        let row = |secs: i64, key: &str, orders| RawBucket {
            start: RawStart::Instant(secs),
            key: Some(key.into()),
            orders,
            revenue_cents: orders * 100,
        };
        let second_two = utc("2025-10-26T01:00:00Z").timestamp();
        let first_two = utc("2025-10-26T00:00:00Z").timestamp();
        let a = HistoryAnswer::assemble(
            Source::Postgresql,
            tz,
            &q,
            vec![row(second_two, "b", 1), row(first_two, "b", 2), row(second_two, "a", 3)],
        )
        .unwrap();
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["timezone"], "Europe/Paris");
        assert_eq!(json["from"], "2025-10-25T02:00:00+02:00");
        assert_eq!(json["buckets"][0]["start"], "2025-10-26T02:00:00+02:00");
        assert_eq!(json["buckets"][1]["start"], "2025-10-26T02:00:00+01:00");
        assert_eq!(json["buckets"][1]["key"], "a");
        assert_eq!(json["buckets"][2]["key"], "b");
        assert_eq!(json["totals"], serde_json::json!({"orders": 6, "revenue_cents": 600}));
        let ungrouped =
            HistoryAnswer::assemble(Source::Clickhouse, tz, &q, vec![RawBucket { key: None, ..row(first_two, "", 1) }]).unwrap();
        assert!(serde_json::to_value(&ungrouped).unwrap()["buckets"][0].get("key").is_none(), "no key when not grouped");
    }
}
