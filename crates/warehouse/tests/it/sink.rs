//! The sink in-process against the shared services: the watermark never skips a transaction
//! that commits out of order, a replayed window doubles nothing, pages cover a window, a new
//! table is filled again, and the hot window on a server without TTL.

use std::time::Duration;

use chrono::{DateTime, Utc};
use coffee_testkit::TestEnv;
use coffee_warehouse::{
    clickhouse::ClickHouse,
    schema::{self, HotWindow},
    sink::{Sink, SinkConfig},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::{ChDatabase, ch_raw_rows, ch_totals, clickhouse_url, pg_totals};

const INSERT: &str = "INSERT INTO orders (order_id, version, drink, store, price_cents, ordered_at, accepted_at)
                      VALUES ($1, $2, 'latte', 'uptown', $3, $4, now())";

async fn insert(client: &impl deadpool_postgres::GenericClient, version: &str, cents: i64, ordered_at: DateTime<Utc>) {
    client.execute(INSERT, &[&Uuid::now_v7(), &version, &cents, &ordered_at]).await.unwrap();
}

async fn insert_many(env: &TestEnv, n: i64) {
    let pool = env.pool().await;
    let client = pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO orders (order_id, version, drink, store, price_cents, ordered_at, accepted_at)
             SELECT gen_random_uuid(), (ARRAY['v1','v2','v3'])[1 + i % 3], 'latte', (ARRAY['uptown','downtown'])[1 + i % 2],
                    100 + i % 500, now() - make_interval(secs => i), now()
             FROM generate_series(1, $1::int8) i",
            &[&n],
        )
        .await
        .unwrap();
}

fn sink(pool: coffee_store::PgPool, ch: &ClickHouse, page_size: usize, hot_days: Option<u32>) -> Sink {
    Sink::new(pool, ch.clone(), SinkConfig { page_size, hot_days, ..SinkConfig::default() })
}

#[tokio::test]
async fn a_transaction_that_commits_out_of_order_is_not_skipped() {
    let env = TestEnv::new();
    let ch = ChDatabase::new(&clickhouse_url(), &env.id);
    let pool = env.pool().await;
    let sink = sink(pool.clone(), &ch.client, 1000, None);
    let hot = sink.prepare().await.unwrap();
    let stop = CancellationToken::new();

    // A long transaction starts first (the lower xid) and commits last.
    let mut long = pool.get().await.unwrap();
    let long_tx = long.transaction().await.unwrap();
    insert(&long_tx, "v2", 111, Utc::now()).await;
    let short = pool.get().await.unwrap();
    insert(&short, "v1", 222, Utc::now()).await;

    let first = sink.run_round(hot, &stop).await.unwrap();
    assert_eq!(first.rows, 0, "the short transaction lies past the xmin the open long one holds: {first:?}");
    long_tx.commit().await.unwrap();
    // Both are below the next round's xmin now (another statement first, so the snapshot is new).
    // (A long transaction elsewhere on the server holds every xmin back: wait for it.)
    let mut copied = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while copied < 2 && tokio::time::Instant::now() < deadline {
        copied += sink.run_round(hot, &stop).await.unwrap().rows;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(copied, 2);
    assert_eq!(ch_totals(&ch.client).await, pg_totals(&env).await);
}

#[tokio::test]
async fn pages_cover_the_window_and_a_replayed_window_doubles_nothing() {
    let env = TestEnv::new();
    let ch = ChDatabase::new(&clickhouse_url(), &env.id);
    insert_many(&env, 1000).await;
    let pool = env.pool().await;
    // 37 a page: 28 pages, the last one short.
    let sink = sink(pool.clone(), &ch.client, 37, None);
    let done = sink.catch_up().await.unwrap();
    assert_eq!(done.rows, 1000);
    assert_eq!(ch_totals(&ch.client).await, pg_totals(&env).await);

    // A crash after ClickHouse took the pages and before the watermark was stored: the window
    // is copied again.
    pool.get().await.unwrap().execute("UPDATE sink_positions SET log_offset = 0 WHERE source = 'warehouse'", &[]).await.unwrap();
    let again = sink.catch_up().await.unwrap();
    assert_eq!(again.rows, 1000, "the whole window replayed");
    // Both copies are on disk until a merge collapses them (a merge may have run already).
    assert!(ch_raw_rows(&ch.client).await >= 1000);
    assert_eq!(ch_totals(&ch.client).await, pg_totals(&env).await, "FINAL counts each order once");
}

#[tokio::test]
async fn an_empty_warehouse_table_is_filled_again_from_the_start() {
    let env = TestEnv::new();
    let ch = ChDatabase::new(&clickhouse_url(), &env.id);
    insert_many(&env, 300).await;
    let sink = sink(env.pool().await, &ch.client, 20_000, None);
    sink.catch_up().await.unwrap();
    assert!(sink.watermark().await.unwrap() > 0);
    ch.client.execute(&format!("DROP DATABASE {}", coffee_warehouse::clickhouse::quote_ident(ch.client.database()))).await.unwrap();
    let again = sink.catch_up().await.unwrap();
    assert_eq!(again.rows, 300, "a new table gets every order, though the watermark had passed them");
    assert_eq!(ch_totals(&ch.client).await, pg_totals(&env).await);
}

#[tokio::test]
async fn without_ttl_the_hot_window_drops_old_months_and_does_not_copy_them() {
    let env = TestEnv::new();
    let ch = ChDatabase::new(&clickhouse_url(), &env.id);
    if ch.client.version().await.unwrap().supports_ttl() {
        // A current ClickHouse keeps the window with a TTL instead; nothing to drop by hand.
        let hot = schema::ensure_schema_with(&ch.client, Some(7)).await.unwrap();
        assert_eq!(hot, HotWindow::Ttl { days: 7 });
        return;
    }
    let pool = env.pool().await;
    let now = Utc::now();
    {
        let client = pool.get().await.unwrap();
        insert(&client, "v1", 100, now - chrono::Duration::days(100)).await;
        insert(&client, "v2", 200, now).await;
    }
    // The old order reached ClickHouse before the window was set (an earlier run without it).
    sink(pool.clone(), &ch.client, 100, None).catch_up().await.unwrap();
    assert_eq!(schema::partitions(&ch.client).await.unwrap().len(), 2);
    pool.get().await.unwrap().execute("UPDATE sink_positions SET log_offset = 0 WHERE source = 'warehouse'", &[]).await.unwrap();

    let hot = sink(pool.clone(), &ch.client, 100, Some(7));
    assert_eq!(hot.prepare().await.unwrap(), HotWindow::DropPartitions { days: 7 });
    let dropped = schema::drop_cold_partitions(&ch.client, HotWindow::DropPartitions { days: 7 }, Utc::now()).await.unwrap();
    assert_eq!(dropped.len(), 1, "the month 100 days ago");
    let replay = hot.catch_up().await.unwrap();
    assert_eq!(replay.rows, 1, "the old order is not copied again");
    let totals = ch_totals(&ch.client).await;
    assert_eq!(totals.keys().collect::<Vec<_>>(), ["v2"], "{totals:?}");
}
