//! One span per HTTP request (method, route, version, status, latency, order id), through
//! tower-http's trace layer, and one event when the response is ready.
//!
//! Both are at DEBUG under the target `coffee_rt::http`, so the default filter (`info`) creates
//! nothing and costs nothing per request; `COFFEE_RT_LOG=info,coffee_rt::http=debug` turns them
//! on, and with `COFFEE_RT_LOG_FORMAT=json` each event is one JSON line carrying the span's fields.

use std::time::Duration;

use axum::{
    extract::{MatchedPath, Request},
    response::Response,
};
use tower_http::trace::{HttpMakeClassifier, TraceLayer};
use tracing::{Span, field::Empty};

/// tower-http's trace layer with this module's span and response hooks.
pub type RequestTrace = TraceLayer<HttpMakeClassifier, fn(&Request) -> Span, (), fn(&Response, Duration, &Span), (), (), ()>;

/// The layer the router wraps every route in.
pub fn layer() -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(make_span as fn(&Request) -> Span)
        .on_request(())
        .on_response(on_response as fn(&Response, Duration, &Span))
        .on_body_chunk(())
        .on_eos(())
        // 503s under back-pressure are the API working as designed; they are counted in
        // `coffee_rt_http_requests_total`, not logged one by one at ERROR.
        .on_failure(())
}

fn make_span(req: &Request) -> Span {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("unmatched");
    let version = super::version_label(route, req.uri().path());
    tracing::debug_span!(target: "coffee_rt::http", "request", method = %req.method(), route, version, status = Empty, latency_ms = Empty, order_id = Empty)
}

fn on_response(res: &Response, latency: Duration, span: &Span) {
    span.record("status", res.status().as_u16());
    span.record("latency_ms", latency.as_secs_f64() * 1e3);
    tracing::debug!(target: "coffee_rt::http", "response");
}

/// Names the order a request carried in its span (called by the order route once it parsed).
pub fn record_order_id(order_id: &uuid::Uuid) {
    Span::current().record("order_id", tracing::field::display(order_id));
}
