//! The history contract: PostgreSQL and ClickHouse give the same answer to the same question,
//! and it is the right one.
//!
//! Real services: PostgreSQL, Redis and Kafka (the three paths), and ClickHouse
//! (`CLICKHOUSE_URL`, by default the local server `scripts/tools/clickhouse.sh` starts). Orders go
//! in through the real API; the real sink copies them into a ClickHouse database of this test's
//! own (dropped at the end); then every query runs on both stores, and on a reference computed
//! here from the orders sent ([`reference`]), and the three must be equal, byte for byte as JSON
//! (apart from `source`).

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use chrono_tz::{America, Europe, Tz, UTC};
use coffee_store::PgPool;
use coffee_testkit::{TestApp, TestEnv, start_processor, wait_until};
use coffee_warehouse::{
    ClickHouseConfig,
    clickhouse::{ClickHouse, quote_ident},
    history::{Bucket, ClickHouseHistory, Group, History, HistoryAnswer, HistoryQuery, PgHistory, RawBucket, Source, zone},
    sink::{Sink, SinkConfig},
};
use futures::StreamExt;
use serde_json::{Value, json};

/// An order as this test sent it.
#[derive(Debug, Clone)]
struct Sent {
    version: &'static str,
    drink: &'static str,
    store: &'static str,
    cents: i64,
    ordered_at: DateTime<Utc>,
}

impl Sent {
    fn body(&self) -> Value {
        json!({
            "drink": self.drink, "store": self.store, "price": self.cents as f64 / 100.0,
            "timestamp": self.ordered_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        })
    }
}

/// A ClickHouse database of the test's own, dropped with it (also on a panic).
struct Warehouse {
    config: ClickHouseConfig,
    ch: ClickHouse,
}

impl Warehouse {
    fn new(env: &TestEnv) -> Warehouse {
        let url = std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into());
        let config = ClickHouseConfig { url, database: format!("coffee_it_{}", env.id) };
        let ch = ClickHouse::new(&config).expect("ClickHouse URL");
        Warehouse { config, ch }
    }

    async fn rows(&self) -> i64 {
        #[derive(serde::Deserialize)]
        struct N {
            n: i64,
        }
        let sql = format!("SELECT toInt64(count()) AS n FROM {} FINAL", self.ch.table("orders"));
        self.ch.query_json::<N>(&sql).await.map(|r| r[0].n).unwrap_or(-1)
    }

    /// Runs the real sink until ClickHouse holds `n` orders. A round copies what committed
    /// before the cluster's oldest running transaction, so another test's long transaction
    /// can delay it: hence a loop, not one catch-up.
    async fn copy(&self, pool: &PgPool, n: i64) {
        self.ch.ping().await.expect("ClickHouse must be running (scripts/tools/clickhouse.sh starts it)");
        let sink = Sink::new(pool.clone(), self.ch.clone(), SinkConfig::default());
        let started = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        loop {
            sink.catch_up().await.expect("sink round");
            let rows = self.rows().await;
            if rows == n {
                break;
            }
            assert!(rows < n, "ClickHouse holds {rows} orders of {n}");
            assert!(tokio::time::Instant::now() < deadline, "ClickHouse holds {rows} of {n} orders after 180 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("the sink copied {n} orders in {:?}", started.elapsed());
    }
}

impl Drop for Warehouse {
    fn drop(&mut self) {
        // A client of its own: the test's pooled connections belong to the test's runtime,
        // which is blocked here.
        let (config, db) = (self.config.clone(), quote_ident(&self.config.database));
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move { ClickHouse::new(&config)?.execute(&format!("DROP DATABASE IF EXISTS {db}")).await })
        })
        .join();
    }
}

/// Posts every order on its path with `concurrency` in flight, retrying a 503 with the same
/// body as a client does.
async fn post(app: &TestApp, orders: &[Sent], concurrency: usize) {
    futures::stream::iter(orders)
        .for_each_concurrent(concurrency, |o| async move {
            let body = o.body();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let (status, reply) = app.post(o.version, &body).await;
                match status {
                    200..=299 => return,
                    503 if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                    _ => panic!("{} answered {status}: {reply}", o.version),
                }
            }
        })
        .await;
}

async fn stored(pool: &PgPool) -> i64 {
    pool.get().await.unwrap().query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0)
}

/// The answer computed here, from the orders as sent, with the bucketing of [`zone`]: what
/// both stores must agree with.
fn reference(orders: &[Sent], q: &HistoryQuery, tz: Tz) -> HistoryAnswer {
    let q = q.validated().expect("a valid query");
    let mut sums: BTreeMap<(zone::RawStart, Option<String>), (i64, i64)> = BTreeMap::new();
    for o in orders {
        // PostgreSQL keeps microseconds, as the API stores them.
        let t = o.ordered_at.trunc_subsecs(6);
        if t < q.from || t >= q.to || q.store.as_deref().is_some_and(|s| s != o.store) || q.drink.as_deref().is_some_and(|d| d != o.drink) {
            continue;
        }
        let key = q.group.map(|g| match g {
            Group::Store => o.store.to_owned(),
            Group::Drink => o.drink.to_owned(),
        });
        let sum = sums.entry((zone::raw_start(t, q.bucket, tz), key)).or_default();
        sum.0 += 1;
        sum.1 += o.cents;
    }
    let rows = sums.into_iter().map(|((start, key), (orders, revenue_cents))| RawBucket { start, key, orders, revenue_cents }).collect();
    HistoryAnswer::assemble(Source::Postgresql, tz, &q, rows).unwrap()
}

fn without_source(a: &HistoryAnswer) -> Value {
    let mut v = serde_json::to_value(a).unwrap();
    v.as_object_mut().unwrap().remove("source");
    v
}

/// Runs `q` on both stores and on the reference; all three must be equal. Returns the answer.
async fn same_everywhere(pg: &PgHistory, ch: &ClickHouseHistory, orders: &[Sent], q: &HistoryQuery) -> HistoryAnswer {
    let tz = pg.timezone();
    let from_pg = pg.buckets(q).await.unwrap_or_else(|e| panic!("PostgreSQL, {q:?}: {e}"));
    let from_ch = ch.buckets(q).await.unwrap_or_else(|e| panic!("ClickHouse, {q:?}: {e}"));
    assert_eq!((from_pg.source, from_ch.source), (Source::Postgresql, Source::Clickhouse));
    let expected = without_source(&reference(orders, q, tz));
    let (p, c) = (without_source(&from_pg), without_source(&from_ch));
    if p != c || p != expected {
        let dump = |name: &str, v: &Value| {
            let path = std::env::temp_dir().join(format!("history-contract-{name}.json"));
            std::fs::write(&path, serde_json::to_string_pretty(v).unwrap()).unwrap();
            path.display().to_string()
        };
        panic!(
            "answers differ for {q:?} in {tz}: PostgreSQL {}, ClickHouse {}, reference {}",
            dump("postgresql", &p),
            dump("clickhouse", &c),
            dump("reference", &expected)
        );
    }
    from_pg
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

const DRINKS: [&str; 3] = ["cappuccino", "americano", "latte"];
const STORES: [&str; 4] = ["uptown", "downtown", "central", "southend"];

/// 10,000 orders over the three paths with times spread over 60 days (2025-09-15 to
/// 2025-11-14, the autumn changes of Paris and New York inside), a third of them with a
/// fraction of a second, some exactly on or just before a local midnight or hour.
fn ten_thousand_orders() -> Vec<Sent> {
    let mut rng = Rng(0x00C0_FFEE_2025);
    let base = utc("2025-09-15T00:00:00Z");
    let sixty_days_ms = 60 * 86_400_000;
    let versions = ["v1", "v2", "v3"];
    let mut orders: Vec<Sent> = (0..10_000usize)
        .map(|i| {
            let mut ms = rng.below(sixty_days_ms) as i64;
            if !i.is_multiple_of(3) {
                ms -= ms % 1000; // whole seconds for two thirds
            }
            Sent {
                version: versions[i % 3],
                drink: DRINKS[rng.below(3) as usize],
                store: STORES[rng.below(4) as usize],
                cents: 100 + rng.below(900) as i64,
                ordered_at: base + chrono::Duration::milliseconds(ms),
            }
        })
        .collect();
    // Edges: a local midnight in Paris and in New York, exactly and 1 ms before; both 02:00
    // hours of the Paris change; the last millisecond of a UTC hour.
    let edges = [
        "2025-10-01T00:00:00+02:00",
        "2025-09-30T23:59:59.999+02:00",
        "2025-10-27T00:00:00+01:00",
        "2025-10-26T23:59:59.999+01:00",
        "2025-11-03T00:00:00-05:00",
        "2025-11-02T23:59:59.999-05:00",
        "2025-10-26T02:00:00+02:00",
        "2025-10-26T02:59:59.999+02:00",
        "2025-10-26T02:00:00+01:00",
        "2025-10-26T02:59:59.999+01:00",
        "2025-10-13T09:59:59.999Z",
        "2025-10-13T10:00:00Z",
    ];
    for (i, edge) in edges.iter().enumerate() {
        orders[i * 7] = Sent { ordered_at: utc(edge), ..orders[i * 7].clone() };
    }
    orders
}

/// The queries every pair of stores is held to: every bucket, every filter and group shape, over
/// the whole set and over a range with odd ends.
fn queries(tz: Tz) -> Vec<HistoryQuery> {
    let ranges = [
        (utc("2025-09-01T00:00:00Z"), utc("2025-12-01T00:00:00Z")),
        (utc("2025-10-02T13:17:45.25Z"), utc("2025-10-29T04:00:00.5Z")),
        (HistoryQuery::last_days(utc("2025-11-10T15:00:00Z"), 30, Bucket::Day, tz).from, utc("2025-11-10T15:00:00Z")),
    ];
    let mut out = Vec::new();
    for (from, to) in ranges {
        for bucket in Bucket::ALL {
            let q = HistoryQuery::new(from, to, bucket);
            out.extend([
                q.clone(),
                q.clone().group(Group::Store),
                q.clone().group(Group::Drink),
                q.clone().store("uptown"),
                q.clone().drink("latte").group(Group::Store),
                q.clone().store("central").drink("americano"),
                q.clone().store("downtown").group(Group::Drink),
            ]);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_orders_over_three_paths_have_the_same_history_in_both_stores() {
    let mut env = TestEnv::new();
    // The orders span past years on purpose, older than the API's default window.
    env.config.order_window = coffee_core::OrderWindow::UNBOUNDED;
    let warehouse = Warehouse::new(&env);
    // This app's API reads its history from the warehouse.
    env.config.warehouse = Some(warehouse.config.clone());
    env.config.timezone = Europe::Paris;
    let app = TestApp::up(env).await;
    let env = app.env();
    let pool = env.pool().await;
    let (stop_processor, processor) = start_processor(env, pool.clone(), env.projection().await);

    let orders = ten_thousand_orders();
    let started = std::time::Instant::now();
    post(&app, &orders, 32).await;
    let n = orders.len() as i64;
    assert!(
        wait_until(Duration::from_secs(120), || async { stored(&pool).await == n }).await,
        "PostgreSQL holds {} of {n}",
        stored(&pool).await
    );
    eprintln!("{n} orders through v1, v2 and v3 into PostgreSQL in {:?}", started.elapsed());
    warehouse.copy(&pool, n).await;

    let started = std::time::Instant::now();
    let mut compared = 0;
    for tz in [UTC, Europe::Paris, America::New_York] {
        let pg = PgHistory::new(pool.clone(), tz);
        let ch = ClickHouseHistory::new(warehouse.ch.clone(), tz);
        for q in queries(tz) {
            let answer = same_everywhere(&pg, &ch, &orders, &q).await;
            if q.store.is_none() && q.drink.is_none() && q.from == utc("2025-09-01T00:00:00Z") {
                assert_eq!(answer.totals.orders, n, "every order is in the full range");
                assert_eq!(answer.totals.revenue_cents, orders.iter().map(|o| o.cents).sum::<i64>());
            }
            compared += 1;
        }
    }
    eprintln!("{compared} queries equal in both stores and the reference, in {:?}", started.elapsed());

    // The API of a server configured with the warehouse answers from ClickHouse, the same.
    let (status, api) = app.get("/api/history?from=2025-10-20&to=2025-11-03&bucket=hour&group=drink").await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["source"], "clickhouse");
    let q = HistoryQuery::new(utc("2025-10-19T22:00:00Z"), utc("2025-11-02T23:00:00Z"), Bucket::Hour).group(Group::Drink);
    let mut from_pg = serde_json::to_value(PgHistory::new(pool.clone(), Europe::Paris).buckets(&q).await.unwrap()).unwrap();
    from_pg["source"] = json!("clickhouse");
    assert_eq!(api, from_pg);

    let _ = stop_processor.send(());
    processor.await.unwrap().unwrap();
    app.stop().await;
}

/// A time-zone change: the day it happens on and its neighbours, one order every 10 minutes
/// (6 in every local hour), at `store`; plus one order half a second before each local
/// midnight (a cappuccino, the grid's orders are lattes).
struct Change {
    tz: Tz,
    store: &'static str,
    /// The local date that is 23 or 25 hours long.
    date: NaiveDate,
    hours: i64,
}

fn changes() -> [Change; 6] {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    [
        Change { tz: Europe::Paris, store: "uptown", date: d("2025-03-30"), hours: 23 },
        Change { tz: Europe::Paris, store: "uptown", date: d("2025-10-26"), hours: 25 },
        Change { tz: America::New_York, store: "downtown", date: d("2025-03-09"), hours: 23 },
        Change { tz: America::New_York, store: "downtown", date: d("2025-11-02"), hours: 25 },
        // Chile changes at midnight: 2024-09-08 begins at 01:00; on 2025-04-05, 23:00 repeats.
        Change { tz: America::Santiago, store: "central", date: d("2024-09-08"), hours: 23 },
        Change { tz: America::Santiago, store: "central", date: d("2025-04-05"), hours: 25 },
    ]
}

impl Change {
    fn day(&self, offset: i64) -> DateTime<Utc> {
        zone::day_start(self.date + chrono::Duration::days(offset), self.tz).to_utc()
    }

    fn orders(&self) -> Vec<Sent> {
        let (from, to) = (self.day(-1), self.day(2));
        let latte = |t| Sent { version: "v1", drink: "latte", store: self.store, cents: 350, ordered_at: t };
        let mut out: Vec<Sent> =
            std::iter::successors(Some(from), |t| Some(*t + chrono::Duration::minutes(10))).take_while(|t| *t < to).map(latte).collect();
        for day in 0..3 {
            let t = self.day(day) - chrono::Duration::milliseconds(500);
            out.push(Sent { drink: "cappuccino", cents: 420, ..latte(t) });
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_of_23_and_25_hours_bucket_alike_in_both_stores() {
    let mut env = TestEnv::new();
    // Past clock changes, older than the API's default window.
    env.config.order_window = coffee_core::OrderWindow::UNBOUNDED;
    let warehouse = Warehouse::new(&env);
    let app = env.spawn_app().await;
    let pool = env.pool().await;
    let orders: Vec<Sent> = changes().iter().flat_map(Change::orders).collect();
    post(&app, &orders, 32).await;
    let n = orders.len() as i64;
    assert!(wait_until(Duration::from_secs(60), || async { stored(&pool).await == n }).await);
    warehouse.copy(&pool, n).await;

    for change in changes() {
        let (tz, date) = (change.tz, change.date.to_string());
        let pg = PgHistory::new(pool.clone(), tz);
        let ch = ClickHouseHistory::new(warehouse.ch.clone(), tz);
        let q = |bucket| HistoryQuery::new(change.day(-1), change.day(2), bucket).store(change.store);
        for bucket in Bucket::ALL {
            for q in [q(bucket), q(bucket).group(Group::Drink), q(bucket).drink("latte")] {
                same_everywhere(&pg, &ch, &orders, &q).await;
            }
        }

        // The day is 23 or 25 hours long: 6 lattes an hour, and its neighbours have 24 hours.
        let days = pg.buckets(&q(Bucket::Day).drink("latte")).await.unwrap();
        let per_day: Vec<(String, i64)> = days.buckets.iter().map(|b| (b.start.to_rfc3339(), b.orders)).collect();
        let starts: Vec<String> = (-1..2).map(|d| zone::in_zone(change.day(d), tz).to_rfc3339()).collect();
        assert_eq!(per_day, [(starts[0].clone(), 144), (starts[1].clone(), change.hours * 6), (starts[2].clone(), 144)], "{tz} {date}");
        // The cappuccino half a second before midnight belongs to the day before.
        let cappuccinos = pg.buckets(&q(Bucket::Day).drink("cappuccino")).await.unwrap();
        let got: Vec<String> = cappuccinos.buckets.iter().map(|b| b.start.to_rfc3339()).collect();
        assert_eq!(got, starts, "{tz} {date}: an order at 23:59:59.5 is the day's, not the next one's");

        let hours = pg.buckets(&q(Bucket::Hour).drink("latte")).await.unwrap();
        let on_the_day: Vec<String> = hours.buckets.iter().map(|b| b.start.to_rfc3339()).filter(|s| s.starts_with(&date)).collect();
        assert_eq!(on_the_day.len() as i64, change.hours, "{tz} {date}: {on_the_day:#?}");
        assert!(hours.buckets.iter().all(|b| b.orders == 6), "{tz} {date}: every local hour has 6 orders");
        let repeated: Vec<&str> = match change.hours {
            25 => match tz {
                Europe::Paris => vec!["2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00"],
                America::New_York => vec!["2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00"],
                _ => vec!["2025-04-05T23:00:00-03:00", "2025-04-05T23:00:00-04:00"],
            },
            _ => vec![],
        };
        for hour in &repeated {
            assert!(on_the_day.iter().any(|s| s == hour), "{tz} {date}: {hour} is a bucket of its own: {on_the_day:#?}");
        }
        if change.hours == 23 {
            let skipped = match tz {
                Europe::Paris => "2025-03-30T02:",
                America::New_York => "2025-03-09T02:",
                _ => "2024-09-08T00:",
            };
            assert!(!on_the_day.iter().any(|s| s.starts_with(skipped)), "{tz} {date}: no bucket at {skipped}: {on_the_day:#?}");
        }
    }
    app.stop().await;
}
