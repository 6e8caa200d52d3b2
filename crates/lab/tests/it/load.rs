//! The load generator against small local servers.

use std::time::Duration;

use axum::http::StatusCode;
use coffee_lab::ApiVersion;
use coffee_lab::config::{LoadArgs, ModelKind};
use coffee_lab::load::{run_load, run_load_detailed};
use coffee_lab::report::tables::load_table;
use coffee_lab::results::load::ConnectionModel;

use crate::common;

fn args(version: ApiVersion, rate: f64, secs: f64, url: &str) -> LoadArgs {
    let mut a = LoadArgs::new(version, rate, Duration::from_secs_f64(secs), url);
    a.drain_timeout = Duration::from_secs(3);
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_p99_includes_a_one_second_stall() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let url = common::serve(common::stalling_router()).await;
    let r = run_load(args(ApiVersion::V2, 200.0, 3.0, &url)).await.unwrap();
    // 200 of the 600 requests are due during the stall and wait up to 1 s for it to end.
    // A closed-loop generator would have sent about one request then and reported a p99
    // of a few ms; measured from intended send times, the stall must show.
    assert_eq!(r.scheduled, 600);
    assert_eq!(r.sent, 600, "the schedule must not wait for the stalled server: {r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert!(r.latency_ms.p99 >= 900.0, "p99 hides the stall: {r:?}");
    assert!(r.latency_ms.max >= 950.0 && r.latency_ms.max < 1_500.0, "{r:?}");
    assert!(r.latency_ms.p50 < 100.0, "half the requests never met the stall: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_up_is_offered_but_left_out_of_every_figure() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    // The server stalls from 0.5 s to 1.5 s after its first order: inside a 2 s warm-up.
    let url = common::serve(common::stalling_router()).await;
    let mut a = args(ApiVersion::V2, 200.0, 1.0, &url);
    a.warmup = Duration::from_secs(2);
    let r = run_load(a).await.unwrap();
    assert_eq!(r.scheduled, 200, "only the measured second is scheduled: {r:?}");
    assert_eq!((r.sent, r.ok, r.errors), (200, 200, 0), "{r:?}");
    assert!(r.latency_ms.max < 300.0, "the stall was in the warm-up, not the run: {r:?}");
    assert_eq!(r.worst_ms_per_second.len(), 1, "{r:?}");
    assert!(r.duration_s >= 0.99 && r.duration_s < 1.5, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_points_at_the_second_that_stalled() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let url = common::serve(common::stalling_router()).await;
    let r = run_load(args(ApiVersion::V2, 200.0, 3.0, &url)).await.unwrap();
    let w = &r.worst_ms_per_second;
    assert_eq!(w.len(), 3, "{r:?}");
    assert!(w[0] >= 900.0, "requests due from 0.5 s wait for the stall to end: {w:?}");
    assert!(w[2] < 300.0, "the last second is after the stall: {w:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_server_gets_the_offered_rate() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let url = common::serve(common::fast_router()).await;
    let r = run_load(args(ApiVersion::V1, 1000.0, 2.0, &url)).await.unwrap();
    assert_eq!(r.scheduled, 2000);
    assert_eq!(r.ok, 2000, "every order must pass the API's validation: {r:?}");
    assert_eq!(r.errors, 0);
    assert!(r.achieved_rate > 950.0 && r.achieved_rate <= 1000.5, "{r:?}");
    assert!(r.latency_ms.p50 > 0.0 && r.latency_ms.p99 < 200.0, "{r:?}");
    // No /metrics on this server: freshness is unknown, not zero.
    assert!(r.freshness_ms.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_broken_down_by_status() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let url = common::serve(common::fixed_router(StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO)).await;
    let r = run_load(args(ApiVersion::V3, 100.0, 1.0, &url)).await.unwrap();
    assert_eq!(r.ok, 0);
    assert_eq!(r.errors, 100);
    assert_eq!(r.errors_by_status.get("503"), Some(&100), "{r:?}");
    assert_eq!(r.achieved_rate, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_connections_make_requests_late_and_the_lateness_counts() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    // 10 connections, each answer takes 1 s, 100 requests due within 1 s: the pool serves 10
    // a second, so the rest wait for a connection; those whose deadline (3 s after their
    // intended time) passes first are timeouts, and the run ends by then.
    let url = common::serve(common::fixed_router(StatusCode::ACCEPTED, Duration::from_secs(1))).await;
    let mut a = args(ApiVersion::V2, 100.0, 1.0, &url);
    a.connections = 10;
    a.timeout = Duration::from_secs(3);
    let started = std::time::Instant::now();
    let r = run_load(a).await.unwrap();
    assert!((25..=35).contains(&r.ok), "three rounds of 10 fit in the timeout: {r:?}");
    assert_eq!(r.ok + r.errors_by_status.get("timeout").copied().unwrap_or(0), 100, "{r:?}");
    assert!(r.late_sends >= 80, "every request after the first round waited: {r:?}");
    assert!(r.latency_ms.p50 >= 1900.0, "the wait is in the latency: {r:?}");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_clients_each_send_their_own_slice() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    // Requests alternate between two clients; one answer in ten is slow (300 ms). With a pool,
    // the next request would go out on the other, free connection; a client whose own order is
    // pending sends late, so the slow answers delay that client's following orders too.
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let router = axum::Router::new().route(
        "/api/{version}/order",
        axum::routing::post(move || {
            let n = n.clone();
            async move {
                if n.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(10) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                StatusCode::ACCEPTED
            }
        }),
    );
    let url = common::serve(router).await;
    let mut pooled = args(ApiVersion::V2, 100.0, 2.0, &url);
    pooled.connections = 8;
    let p = run_load(pooled.clone()).await.unwrap();
    let mut clients = pooled;
    clients.model = ModelKind::Clients;
    clients.connections = 2;
    let c = run_load(clients).await.unwrap();
    assert_eq!((p.ok, c.ok), (200, 200), "{p:?} {c:?}");
    assert_eq!(c.connection_model, ConnectionModel::Clients(2));
    // A pool of 8 absorbs the slow answers: what it sends late is scheduling jitter on a busy
    // machine (6 of 200 seen with the whole suite running), a tenth of the clients' own at most.
    assert!(p.late_sends <= 20, "a pool of 8 absorbs one slow answer: {p:?}");
    assert!(c.late_sends >= 40, "each slow answer delays its client's next orders: {c:?}");
    assert!(c.late_sends >= 4 * p.late_sends, "the clients send late far more often than the pool: {p:?} {c:?}");
    assert!(c.latency_ms.p50 > p.latency_ms.p50, "{p:?} {c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_refused_connections_are_errors() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let url = common::serve(common::fixed_router(StatusCode::ACCEPTED, Duration::from_secs(5))).await;
    let mut a = args(ApiVersion::V2, 20.0, 1.0, &url);
    a.timeout = Duration::from_millis(300);
    let r = run_load(a).await.unwrap();
    assert_eq!(r.errors_by_status.get("timeout"), Some(&20), "{r:?}");

    // A port nobody listens on: bind one, learn its number, close it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = run_load(args(ApiVersion::V2, 20.0, 0.5, &format!("http://{closed}"))).await.unwrap();
    assert_eq!(r.errors_by_status.get("connect"), Some(&10), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_comes_from_the_servers_histogram_delta() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let url = common::serve(common::pipeline_router(Duration::from_millis(30))).await;
    // A first run puts earlier observations in the histogram; the second must not see them.
    run_load(args(ApiVersion::V2, 50.0, 0.5, &url)).await.unwrap();
    let run = run_load_detailed(&args(ApiVersion::V2, 200.0, 1.0, &url)).await.unwrap();
    let f = run.freshness.expect("metrics readable");
    assert!(f.drained, "{f:?}");
    assert_eq!(f.counted, 200);
    let ms = run.report.freshness_ms.expect("freshness measured");
    assert_eq!(ms.orders, 200);
    // Every order took 30 ms (+ scheduling): inside the (25, 50] ms bucket for p50.
    assert!(ms.p50 > 25.0 && ms.p50 <= 50.0, "{ms:?}");
    assert!(ms.p99 > 25.0 && ms.p99 <= 100.0, "{ms:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_line_has_the_promised_fields() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let url = common::serve(common::pipeline_router(Duration::from_millis(5))).await;
    let r = run_load(args(ApiVersion::V2, 50.0, 0.5, &url)).await.unwrap();
    let line = r.to_json_line();
    assert!(!line.contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    for key in ["version", "offered_rate", "achieved_rate", "errors", "errors_by_status"] {
        assert!(v.get(key).is_some(), "missing {key} in {line}");
    }
    for key in ["p50", "p95", "p99", "max"] {
        assert!(v["latency_ms"][key].is_number(), "missing latency_ms.{key} in {line}");
    }
    assert!(v["freshness_ms"]["p50"].is_number() && v["freshness_ms"]["p99"].is_number(), "{line}");
    assert_eq!(v["version"], "v2");
    let table = load_table(&r);
    assert!(table.contains("latency p99 (ms)") && table.contains("freshness p99 (ms)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_freshness_metric_is_not_waited_for() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    let router = common::fast_router().route("/metrics", axum::routing::get(|| async { "# TYPE other counter\nother_total 3\n" }));
    let url = common::serve(router).await;
    let started = std::time::Instant::now();
    let run = run_load_detailed(&args(ApiVersion::V2, 100.0, 1.0, &url)).await.unwrap();
    assert_eq!(run.report.ok, 100);
    assert!(run.freshness.is_none(), "{:?}", run.freshness);
    assert!(run.report.freshness_ms.is_none());
    // 1 s of load plus at most the 3 s drain timeout, not the 30 s default.
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_server_scores_what_it_delivered() {
    let _shared = crate::common::EXCLUSIVE.read().await;
    // One order at a time, 5 ms each: about 200/s, offered 400/s for 2 s.
    let lock = std::sync::Arc::new(tokio::sync::Mutex::new(()));
    let router = axum::Router::new().route(
        "/api/{version}/order",
        axum::routing::post(move || {
            let lock = lock.clone();
            async move {
                let _g = lock.lock().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                StatusCode::ACCEPTED
            }
        }),
    );
    let url = common::serve(router).await;
    let r = run_load(args(ApiVersion::V2, 400.0, 2.0, &url)).await.unwrap();
    assert_eq!(r.ok, 800, "{r:?}");
    assert!(r.achieved_rate > 120.0 && r.achieved_rate < 230.0, "{r:?}");
    // The queue grew for 2 s: the last orders waited about 2 s.
    assert!(r.latency_ms.max > 1_500.0, "{r:?}");
}
