//! After the catch-up: exactly once, checked on the final state, by SQL and Redis commands of
//! the lab's own (not the pipeline's `reconcile`, which is what is being measured).
//!
//! PostgreSQL must hold one row per produced record (every produced id is distinct and the id
//! is the primary key) with the produced revenue; Redis must count the same orders and cents;
//! its per-drink, per-store and per-hour metrics must equal a `GROUP BY` over the rows (no
//! drift); and each partition's Redis fence must equal its outbox seq in PostgreSQL (every
//! committed delta applied, none twice).

use std::collections::{BTreeMap, BTreeSet};

use coffee_pipeline::KafkaSettings;
use coffee_pipeline::sources::v3_kafka::source_of;
use coffee_store::PgPool;
use redis::aio::ConnectionManager;

/// What the check found; every field agreed with the produced backlog.
pub(super) struct Verified {
    pub(super) revenue_cents: i64,
    /// Drink, store and hour entries compared (all equal).
    pub(super) breakdowns: usize,
}

type Sums = BTreeMap<String, (i64, i64)>;

/// Fails, naming every difference, unless PostgreSQL and Redis hold exactly the `records`
/// produced orders worth `revenue_cents`.
pub(super) async fn exactly_once(
    pool: &PgPool,
    redis: &ConnectionManager,
    namespace: &str,
    kafka: &KafkaSettings,
    records: u64,
    revenue_cents: i64,
) -> anyhow::Result<Verified> {
    let client = pool.get().await?;
    // One statement, so one snapshot: the total, then per drink, store and UTC hour (the
    // projection's `2025-01-15T10` buckets of the order's own time).
    let rows = client
        .query(
            "SELECT GROUPING(drink, store, hour), COALESCE(drink, store, hour, ''), count(*), sum(price_cents)::int8
             FROM (SELECT drink, store, price_cents, to_char(ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24') AS hour
                   FROM orders WHERE version = 'v3') o
             GROUP BY GROUPING SETS ((), (drink), (store), (hour))",
            &[],
        )
        .await?;
    let (mut pg_total, mut pg) = ((0i64, 0i64), BTreeMap::<&str, Sums>::new());
    for r in &rows {
        let sums = (r.get::<_, i64>(2), r.get::<_, Option<i64>>(3).unwrap_or(0));
        let kind = match r.get::<_, i32>(0) {
            0b111 => {
                pg_total = sums;
                continue;
            }
            0b011 => "drink",
            0b101 => "store",
            _ => "hour",
        };
        pg.entry(kind).or_default().insert(r.get(1), sums);
    }
    let positions: BTreeMap<String, i64> = client
        .query("SELECT source, seq FROM sink_positions WHERE source LIKE $1", &[&format!("v3:{}:%", kafka.topic)])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    drop(client);

    let metric = |m: &str| format!("{namespace}v3:metrics:{m}");
    type Hash = BTreeMap<String, i64>;
    let mut conn = redis.clone();
    let (orders, revenue, dc, dr, sc, sr, hc, hr, fences): (Option<i64>, Option<i64>, Hash, Hash, Hash, Hash, Hash, Hash, Hash) =
        redis::pipe()
            .cmd("GET")
            .arg(metric("total_orders"))
            .cmd("GET")
            .arg(metric("total_revenue"))
            .cmd("HGETALL")
            .arg(metric("drink_counts"))
            .cmd("HGETALL")
            .arg(metric("drink_revenue"))
            .cmd("HGETALL")
            .arg(metric("store_counts"))
            .cmd("HGETALL")
            .arg(metric("store_revenue"))
            .cmd("HGETALL")
            .arg(metric("hourly_counts"))
            .cmd("HGETALL")
            .arg(metric("hourly_revenue"))
            .cmd("HGETALL")
            .arg(metric("fence"))
            .query_async(&mut conn)
            .await?;

    let mut wrong = Vec::new();
    let produced = (records as i64, revenue_cents);
    if pg_total != produced {
        wrong.push(format!("PostgreSQL holds {pg_total:?} (orders, cents), {produced:?} produced"));
    }
    let redis_total = (orders.unwrap_or(0), revenue.unwrap_or(0));
    if redis_total != produced {
        wrong.push(format!("Redis counts {redis_total:?} (orders, cents), {produced:?} produced"));
    }
    let mut breakdowns = 0;
    for (kind, counts, cents) in [("drink", dc, dr), ("store", sc, sr), ("hour", hc, hr)] {
        let empty = Sums::new();
        let expected = pg.get(kind).unwrap_or(&empty);
        let names: BTreeSet<&String> = expected.keys().chain(counts.keys()).chain(cents.keys()).collect();
        for name in names {
            let want = expected.get(name).copied().unwrap_or((0, 0));
            let got = (counts.get(name).copied().unwrap_or(0), cents.get(name).copied().unwrap_or(0));
            if want != got {
                wrong.push(format!("{kind} {name}: PostgreSQL {want:?}, Redis {got:?}"));
            }
            breakdowns += 1;
        }
    }
    for p in 0..kafka.partitions {
        let source = source_of(&kafka.topic, p);
        let (seq, fence) = (positions.get(&source).copied().unwrap_or(0), fences.get(&source).copied().unwrap_or(0));
        if seq != fence {
            wrong.push(format!("partition {p}: Redis fence {fence}, PostgreSQL outbox seq {seq}"));
        }
    }
    anyhow::ensure!(wrong.is_empty(), "not exactly once:\n  {}", wrong.join("\n  "));
    Ok(Verified { revenue_cents, breakdowns })
}
