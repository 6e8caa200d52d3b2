use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde_json::{Value, json};

use crate::{AppState, error::ApiError};

pub async fn livez() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Checks every backing service at once and answers within a second whatever they do. v1 and
/// v2 need PostgreSQL and Redis; v3 degrades alone (it answers 503 while the broker is away).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (ready, body) = state.readiness.check().await;
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.prometheus.render())
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}
