//! The sink under faults, as child processes on real services: SIGKILL mid-window, and
//! ClickHouse itself gone for 30 s under load.

use std::time::{Duration, Instant};

use coffee_testkit::{TestEnv, free_port, wait_until};
use coffee_warehouse::sink::LAG_SECONDS;

use crate::support::{
    ChDatabase, PrivateClickHouse, Stream, assert_stores_agree, below_watermark, ch_orders, ch_raw_rows, clickhouse_url, metric, pg_totals,
    sigkill, spawn_sink, spawn_writers, wait_for_postgres,
};

/// Three SIGKILLs of `coffee-rt warehouse` while orders stream in over v1, v2 and v3, each at a
/// moment ClickHouse holds orders past the stored watermark (a window in flight: pages
/// acknowledged, watermark not yet moved). After the stream, ClickHouse's count and sum per
/// version, read FINAL, equal PostgreSQL's exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_the_sink_three_times_during_a_stream_sums_stay_exact() {
    let started = Instant::now();
    let env = TestEnv::new();
    let ch = ChDatabase::new(&clickhouse_url(), &env.id);
    let app = env.spawn_app().await;
    let _writers = spawn_writers(&env);
    // Small pages and rounds 200 ms apart: a round takes a dozen inserts, so a kill can land
    // inside one.
    let sink_args = ["--warehouse-page", "10", "--warehouse-every", "200ms"];
    let mut sink = spawn_sink(&env, &ch, &sink_args);
    let stream = Stream::start(&app, Duration::from_millis(5));

    let mut in_flight = Vec::new();
    for kill in 1..=3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Wait for a moment when ClickHouse holds orders past the watermark (ClickHouse read
        // first: the watermark only grows, so the comparison is not fooled by a round ending
        // in between), then kill at once.
        wait_until(Duration::from_secs(30), || async {
            let in_ch = ch_orders(&ch.client).await;
            in_ch > below_watermark(&env).await.1
        })
        .await;
        sigkill(&mut sink).await;
        // Nothing moves now: what ClickHouse holds past the stored watermark was written by the
        // killed process in a window it never finished.
        let (watermark, below) = below_watermark(&env).await;
        let in_ch = ch_orders(&ch.client).await;
        let pg_rows: i64 = pg_totals(&env).await.values().map(|(n, _)| n).sum();
        let hit = in_ch > below;
        eprintln!(
            "kill {kill}: watermark {watermark}; PostgreSQL {pg_rows} orders, {below} below the watermark; ClickHouse {in_ch}: {}",
            if hit { "a window in flight" } else { "between windows" }
        );
        assert!(pg_rows > below, "kill {kill}: PostgreSQL holds orders past the watermark");
        in_flight.push(hit);
        tokio::time::sleep(Duration::from_millis(300)).await;
        sink = spawn_sink(&env, &ch, &sink_args);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (acked, _) = stream.finish().await;
    assert!(in_flight.iter().any(|&c| c), "at least one kill hit a window in flight: {in_flight:?}");
    wait_for_postgres(&env, &acked, Duration::from_secs(60)).await;
    assert_stores_agree(&env, &ch.client, Duration::from_secs(120)).await;
    let totals = pg_totals(&env).await;
    assert_eq!(totals.len(), 3, "all three paths: {totals:?}");
    eprintln!(
        "{} orders acknowledged; PostgreSQL = ClickHouse FINAL {totals:?}; {} replayed rows on disk not merged away yet; {:.1} s",
        acked.len(),
        ch_raw_rows(&ch.client).await - ch_orders(&ch.client).await,
        started.elapsed().as_secs_f64()
    );
    sigkill(&mut sink).await;
}

/// A private ClickHouse is SIGKILLed for 30 s while orders stream in: the API keeps answering
/// 2xx, the sink's lag on /metrics grows and its /readyz says ClickHouse is gone, and after the
/// restart the sink catches up with every order, counts and sums equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_stopped_for_30_seconds_under_load_the_sink_catches_up() {
    let started = Instant::now();
    let env = TestEnv::new();
    let mut server = PrivateClickHouse::start(&env.id).await;
    let ch = ChDatabase::new(&server.url(), &env.id);
    let app = env.spawn_app().await;
    let _writers = spawn_writers(&env);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut sink = spawn_sink(&env, &ch, &["--metrics-listen", &listen]);
    let (metrics, readyz) = (format!("http://{listen}/metrics"), format!("http://{listen}/readyz"));
    let stream = Stream::start(&app, Duration::from_millis(10));

    let copying = wait_until(Duration::from_secs(30), || async { ch_orders(&ch.client).await > 100 }).await;
    assert!(copying, "the sink copies before the outage");
    server.kill().await;
    let down_at = Instant::now();
    let sent_before = stream.sent.load(std::sync::atomic::Ordering::SeqCst);

    tokio::time::sleep(Duration::from_secs(20)).await;
    let lag = metric(&metrics, LAG_SECONDS).await.expect("the sink exports its lag");
    assert!(lag >= 15.0, "after 20 s without ClickHouse the lag is {lag} s");
    let ready = reqwest::get(&readyz).await.unwrap();
    assert_eq!(ready.status().as_u16(), 503, "the sink is not ready without ClickHouse");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["postgres"], "ok", "{body}");
    assert!(body["clickhouse"].as_str().unwrap().starts_with("error"), "{body}");
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down_at.elapsed())).await;
    let sent_during = stream.sent.load(std::sync::atomic::Ordering::SeqCst) - sent_before;
    let lag_at_restart = metric(&metrics, LAG_SECONDS).await.unwrap_or(f64::NAN);

    server.run().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (acked, refused) = stream.finish().await;
    assert_eq!(refused, 0, "the API answered every order 2xx through the outage");
    wait_for_postgres(&env, &acked, Duration::from_secs(60)).await;
    assert_stores_agree(&env, &ch.client, Duration::from_secs(60)).await;
    let caught_up = wait_until(Duration::from_secs(10), || async { metric(&metrics, LAG_SECONDS).await.is_some_and(|l| l < 3.0) }).await;
    assert!(caught_up, "the lag falls back once the sink caught up: {:?}", metric(&metrics, LAG_SECONDS).await);
    eprintln!(
        "{} orders acknowledged ({sent_during} sent while ClickHouse was down, none refused); lag {lag:.1} s at 20 s, {lag_at_restart:.1} s at the restart; PostgreSQL = ClickHouse {:?}; {:.1} s",
        acked.len(),
        pg_totals(&env).await,
        started.elapsed().as_secs_f64()
    );
    sigkill(&mut sink).await;
}
