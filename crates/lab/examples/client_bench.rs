//! Which HTTP client can drive the most load on 2 shared cores?
//!
//! Starts a trivial axum server (JSON validation, no IO) on its own 1-thread runtime in this
//! process, then on a 1-thread client runtime:
//! 1. closed loop, 64 concurrent loops, 3 s each: raw requests/s of hyper-util's legacy
//!    client vs reqwest (same pool underneath), i.e. the client's cost per request;
//! 2. the open-loop engine (hyper-util) stepping its offered rate until it falls below 95 %.
//!
//! `cargo run --release -p coffee-lab --example client_bench`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use coffee_lab::load::client::HttpClient;
use coffee_lab::load::engine::{self, LoadPlan};
use coffee_lab::order::OrderMix;
use rand::SeedableRng;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct OrderBody {
    order_id: Option<uuid::Uuid>,
    drink: String,
    store: String,
    price: f64,
    timestamp: String,
}

fn main() {
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let url = server_rt.block_on(async {
        let app = Router::new().route(
            "/api/v2/order",
            post(|axum::Json(o): axum::Json<OrderBody>| async move {
                if o.price > 0.0 { StatusCode::ACCEPTED } else { StatusCode::UNPROCESSABLE_ENTITY }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        format!("http://{addr}/api/v2/order")
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    client_rt.block_on(async move {
        let d = Duration::from_secs(3);
        let hyper = HttpClient::new();
        let uri: http::Uri = url.parse().unwrap();
        let n = closed_loop(d, {
            let (c, u) = (hyper.clone(), uri.clone());
            move |body| {
                let (c, u) = (c.clone(), u.clone());
                async move { c.post_json(u, body).await.is_success() }
            }
        })
        .await;
        println!("closed loop hyper-util legacy: {:>8.0} req/s", n as f64 / d.as_secs_f64());

        let rq = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
        let n = closed_loop(d, {
            let (c, u) = (rq.clone(), url.clone());
            move |body| {
                let (c, u) = (c.clone(), u.clone());
                async move {
                    match c.post(&u).header("content-type", "application/json").body(body).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    }
                }
            }
        })
        .await;
        println!("closed loop reqwest:           {:>8.0} req/s", n as f64 / d.as_secs_f64());

        for rate in [5_000.0, 10_000.0, 15_000.0, 20_000.0, 30_000.0, 40_000.0] {
            let plan = LoadPlan { target: uri.clone(), rate, duration: d, max_in_flight: 20_000, connections: 512, timeout: Duration::from_secs(5), workers: 0, warmup: Duration::ZERO };
            let live = engine::live_for(&plan);
            let out = engine::run(&plan, hyper.clone(), live).await;
            let r = coffee_lab::load::build_report("v2", &url, rate, &out, None);
            println!(
                "open loop offered {rate:>6.0}/s: achieved {:>8.0}/s  p50 {:>7.2} ms  p99 {:>8.2} ms  errors {:?}  queued {}  send lag p99 {:.2} ms",
                r.achieved_rate, r.latency_ms.p50, r.latency_ms.p99, r.errors_by_status, r.queued_for_connection, r.send_lag_ms_p99
            );
            if r.achieved_rate < 0.95 * rate || r.errors > 0 {
                break;
            }
        }
    });
}

async fn closed_loop<F, Fut>(d: Duration, f: F) -> u64
where
    F: Fn(bytes::Bytes) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + d;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (f, done) = (f.clone(), done.clone());
            tokio::spawn(async move {
                let mix = OrderMix::default();
                let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
                while Instant::now() < end {
                    if f(mix.next_body(&mut rng)).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed)
}
