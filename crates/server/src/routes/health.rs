use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use serde_json::Value;

use crate::{AppState, error::ApiError};

/// `/livez`'s answer: the process serves requests.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Live {
    /// Always `ok`.
    status: &'static str,
}

#[utoipa::path(
    get, path = "/livez", tag = "operations", description = "The process is alive (no service is checked).",
    responses((status = 200, description = "Alive", body = Live))
)]
pub async fn livez() -> Json<Live> {
    Json(Live { status: "ok" })
}

/// Checks every backing service at once and answers within a second whatever they do. v1 and
/// v2 need PostgreSQL and Redis; v3 degrades alone (it answers 503 while the broker is away).
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    description = "Checks PostgreSQL, Redis and Kafka at once and answers within a second.",
    responses(
        (status = 200, description = "Ready: each service checked is `ok`", body = super::openapi::Readiness),
        (status = 503, description = "Not ready: a required service is not `ok` (its value is the error)", body = super::openapi::Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (ready, body) = state.readiness.check().await;
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

#[utoipa::path(
    get, path = "/metrics", tag = "operations", description = "Every metric (`coffee_rt_*`) in Prometheus' text format.",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.prometheus.render())
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}
