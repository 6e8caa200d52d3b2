use std::time::Duration;

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

/// Checks every backing service at once and answers within a second whatever they do.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let budget = Duration::from_millis(900);
    let pg = async {
        let client = state.pool.get().await.map_err(|e| e.to_string())?;
        client.simple_query("SELECT 1").await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let redis = async {
        let mut conn = state.projection.connection();
        redis::cmd("PING").query_async::<String>(&mut conn).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let kafka = async { state.v3.check().await.map_err(|e| e.to_string()) };
    let timed = |r: Result<Result<(), String>, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".to_owned(),
    };
    let (pg, redis, kafka) =
        tokio::join!(tokio::time::timeout(budget, pg), tokio::time::timeout(budget, redis), tokio::time::timeout(budget, kafka));
    let (pg, redis, kafka) = (timed(pg), timed(redis), timed(kafka));
    // v1 and v2 need PostgreSQL and Redis; v3 degrades alone (it answers 503 while the broker is away).
    let ready = pg == "ok" && redis == "ok";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"ready": ready, "postgres": pg, "redis": redis, "kafka": kafka})))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.prometheus.render())
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}
