use axum::{Json, extract::State, http::StatusCode};
use chrono::Utc;
use coffee_core::Version;
use serde_json::{Map, Value, json};

use crate::{AppState, error::ApiError};

/// `GET /api/dashboard`: one snapshot of every version.
pub async fn get_dashboard(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    let mut versions = Map::new();
    for v in Version::ALL {
        let snap =
            state.projection.snapshot(v, now).await.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")))?;
        versions.insert(v.as_str().to_owned(), serde_json::to_value(snap).expect("snapshot serialises"));
    }
    Ok(Json(json!({"generated_at": now, "versions": versions})))
}
