//! Prometheus metrics: one recorder per process, histograms with real buckets.

use std::{sync::OnceLock, time::Instant};

use axum::{extract::MatchedPath, extract::Request, middleware::Next, response::Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the global recorder once and returns its handle (tests build many apps per process).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];
            let freshness = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0];
            let sizes = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("coffee_http_request_duration_seconds".into()), &latency)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("coffee_flush_duration_seconds".into()), &latency))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(coffee_pipeline::freshness::HISTOGRAM.into()), &freshness))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("coffee_batch_size".into()), &sizes))
                .expect("valid buckets")
                .install_recorder()
                .expect("one recorder per process")
        })
        .clone()
}

/// Counts requests and times them per route template and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("route", route), ("status", status)];
    metrics::counter!("coffee_http_requests_total", &labels).increment(1);
    metrics::histogram!("coffee_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    res
}
