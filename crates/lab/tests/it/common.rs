//! What the lab's tests share: small HTTP servers they start on port 0, standing in for the
//! coffee-rt server where a test needs a behaviour a real server can't be asked to show (a
//! stall, a fixed status, a pipeline of a known delay); the binaries and the services (from
//! `coffee-testkit`, the workspace's one test kit); the lock that keeps timing-sensitive tests
//! apart.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use coffee_core::{Catalog, Order, RawOrder};
use tokio::time::Instant;

pub use coffee_testkit::{PG_ADMIN as PG, REDIS, brokers, wait_until};

/// The `coffee-lab` binary cargo built for these tests.
pub fn coffee_lab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_coffee-lab"))
}

/// The `coffee-rt` binary, beside `coffee-lab` in `target/<profile>/`: cargo builds it only
/// when asked (scripts/test builds every binary first), and a test that needs it says so.
pub fn coffee_rt() -> PathBuf {
    coffee_testkit::bin::path("coffee-rt")
}

/// The end-to-end sweep takes this for writing, so it runs alone; every other timing-sensitive
/// test takes it for reading (they still run in parallel with each other). On two cores, a
/// whole sweep beside a latency test would fail the latency test, not measure it.
pub static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Serve `router` on 127.0.0.1:0 and return its base URL. The server lives until the runtime ends.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// Whether the real API would accept `o`: [`coffee_core::Order::parse`] with the default catalog.
pub fn valid(o: RawOrder) -> bool {
    Order::parse(o, &Catalog::default(), chrono::Utc::now()).is_ok()
}

/// Answers every order at once, after validating it like the real API.
pub fn fast_router() -> Router {
    Router::new().route(
        "/api/{version}/order",
        post(|Path(v): Path<String>, axum::Json(o): axum::Json<RawOrder>| async move {
            if !valid(o) {
                return (StatusCode::UNPROCESSABLE_ENTITY, "{}").into_response();
            }
            let code = if v == "v1" { StatusCode::CREATED } else { StatusCode::ACCEPTED };
            (code, "{}").into_response()
        }),
    )
}

/// Stalls every request that arrives between 0.5 s and 1.5 s after the first one, until
/// 1.5 s: a 1 s pause, like a GC pause or a blocked event loop.
pub fn stalling_router() -> Router {
    let first: Arc<tokio::sync::OnceCell<Instant>> = Arc::default();
    Router::new().route(
        "/api/{version}/order",
        post(move || {
            let first = first.clone();
            async move {
                let t0 = *first.get_or_init(|| async { Instant::now() }).await;
                let (from, until) = (t0 + Duration::from_millis(500), t0 + Duration::from_millis(1500));
                let now = Instant::now();
                if now >= from && now < until {
                    tokio::time::sleep_until(until).await;
                }
                StatusCode::ACCEPTED
            }
        }),
    )
}

/// Answers every request with `status` after `delay`.
pub fn fixed_router(status: StatusCode, delay: Duration) -> Router {
    Router::new().route(
        "/api/{version}/order",
        post(move || async move {
            tokio::time::sleep(delay).await;
            status
        }),
    )
}

/// A server with a fake pipeline: each accepted order is "counted" `pipeline_delay` later,
/// and the delay is exported as `coffee_rt_order_freshness_seconds{version}` like the real one.
pub fn pipeline_router(pipeline_delay: Duration) -> Router {
    let hist = Arc::new(FakeHistogram::default());
    let h2 = hist.clone();
    Router::new()
        .route(
            "/api/{version}/order",
            post(move |Path(v): Path<String>, axum::Json(o): axum::Json<RawOrder>| {
                let hist = hist.clone();
                async move {
                    if !valid(o) || v != "v2" {
                        return StatusCode::UNPROCESSABLE_ENTITY;
                    }
                    let accepted = Instant::now();
                    tokio::spawn(async move {
                        tokio::time::sleep(pipeline_delay).await;
                        hist.observe(accepted.elapsed().as_secs_f64());
                    });
                    StatusCode::ACCEPTED
                }
            }),
        )
        .route("/metrics", get(move || async move { h2.render() }))
        .route("/readyz", get(|| async { "ok" }))
}

pub const BOUNDS: [f64; 7] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Default)]
pub struct FakeHistogram {
    buckets: [AtomicU64; 7],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl FakeHistogram {
    fn observe(&self, secs: f64) {
        for (i, b) in BOUNDS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self) -> String {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            // Like a real labelled histogram: no series before the first observation.
            return "# TYPE coffee_rt_order_freshness_seconds histogram\n".into();
        }
        let mut out = String::from("# TYPE coffee_rt_order_freshness_seconds histogram\n");
        for (i, b) in BOUNDS.iter().enumerate() {
            out += &format!(
                "coffee_rt_order_freshness_seconds_bucket{{version=\"v2\",le=\"{b}\"}} {}\n",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        out += &format!("coffee_rt_order_freshness_seconds_bucket{{version=\"v2\",le=\"+Inf\"}} {count}\n");
        out +=
            &format!("coffee_rt_order_freshness_seconds_sum{{version=\"v2\"}} {}\n", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        out += &format!("coffee_rt_order_freshness_seconds_count{{version=\"v2\"}} {count}\n");
        out
    }
}
