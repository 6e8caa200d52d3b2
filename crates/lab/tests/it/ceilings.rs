//! The raw ceilings against the real services of this machine. A missing service fails the
//! test with the connection error: these are never skipped.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use coffee_lab::ceilings::{CeilingOpts, http, kafka, postgres, redis};
use coffee_lab::results::load::ConnectionModel;

use crate::common::{self, PG, REDIS};

fn short() -> CeilingOpts {
    CeilingOpts { duration: Duration::from_secs(1), batch: 500, concurrency: 2 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_batched_insert_ceiling() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let c = postgres::insert_ceiling(PG, short()).await.expect("PostgreSQL must run on 127.0.0.1:5432 (user coffee)");
    assert_eq!(c.name, "postgres_insert");
    assert!(c.items >= 1000 && c.items % 500 == 0, "{c:?}");
    assert!(c.per_second > 1000.0, "batched inserts below 1000 rows/s: {c:?}");
    let left = postgres::scratch_databases(PG).await.unwrap();
    assert!(left.iter().all(|d| !d.contains(&format!("_{}_", std::process::id()))), "scratch database left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ceiling_fails_loudly_without_a_server() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let err = postgres::insert_ceiling("postgres://coffee:coffee@127.0.0.1:1/postgres", short()).await.unwrap_err();
    assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pipelined_xadd_ceiling() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let c = redis::xadd_ceiling(REDIS, short()).await.expect("Redis must run on 127.0.0.1:6379");
    assert_eq!(c.name, "redis_xadd");
    assert!(c.per_second > 10_000.0, "pipelined XADD below 10k/s: {c:?}");
    // The scratch stream is gone.
    let client = ::redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        ::redis::cmd("KEYS").arg(format!("coffee-lab:scratch:{}_*", std::process::id())).query_async(&mut conn).await.unwrap();
    assert!(keys.is_empty(), "scratch stream left behind: {keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_produce_ceiling() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let brokers = common::brokers();
    let opts = CeilingOpts { batch: 5_000, ..short() };
    let c = kafka::produce_ceiling(&brokers, opts).await.unwrap_or_else(|e| panic!("Kafka broker must run at {brokers}: {e:#}"));
    assert_eq!(c.name, "kafka_produce");
    assert!(c.per_second > 1_000.0, "acknowledged produce below 1000/s: {c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_ceiling_fails_loudly_without_a_broker() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let err =
        tokio::time::timeout(Duration::from_secs(30), kafka::produce_ceiling("127.0.0.1:1", short())).await.expect("gives up by itself");
    assert!(err.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ceiling_holds_on_a_fast_route_and_breaks_on_a_slow_one() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let fast = common::serve(common::fast_router()).await;
    let pool = ConnectionModel::Pooled(16);
    let calibrate = |url: String, rates: &'static [f64]| async move {
        http::validation_ceiling(&url, rates, Duration::from_secs(1), Duration::ZERO, pool, 100.0).await.unwrap()
    };
    let cal = calibrate(format!("{fast}/api/v2/order"), &[500.0, 1_000.0, 2_000.0]).await;
    assert_eq!(cal.steps.len(), 3, "{cal:?}");
    let cpu = cal.generator_cpu_us_per_request().expect("the generator's own CPU is measured");
    assert!(cpu > 0.0 && cpu < 10_000.0, "{cal:?}");
    let c = cal.ceiling;
    assert!(c.lower_bound, "the fast route held every step: {c:?}");
    assert!(c.per_second >= 1_900.0, "{c:?}");

    // One request at a time, 5 ms each: at most ~200/s.
    let lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    let slow = common::serve(Router::new().route(
        "/validate",
        post(move || {
            let lock = lock.clone();
            async move {
                let _g = lock.lock().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                StatusCode::ACCEPTED
            }
        }),
    ))
    .await;
    let c = calibrate(format!("{slow}/validate"), &[50.0, 100.0, 1_000.0, 2_000.0]).await.ceiling;
    assert!(!c.lower_bound, "{c:?}");
    assert!(c.per_second > 90.0 && c.per_second <= 101.0, "ceiling is the last rate that held: {c:?}");
    assert!(c.method.contains("1000→"), "{c:?}");

    // Saturated from the first step: what it achieved is the ceiling, not an error.
    let c = calibrate(format!("{slow}/validate"), &[1_000.0, 2_000.0]).await.ceiling;
    assert!(!c.lower_bound && c.method.contains("saturated"), "{c:?}");
    assert!(c.per_second > 90.0 && c.per_second < 300.0, "{c:?}");
}
