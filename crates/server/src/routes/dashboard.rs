use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use coffee_core::Version;
use coffee_store::VersionSnapshot;
use serde::Serialize;

use crate::{AppState, error::ApiError};

/// What `GET /api/dashboard` returns.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    pub generated_at: DateTime<Utc>,
    pub versions: Versions,
}

/// Each path's snapshot, by version.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Versions {
    pub v1: VersionSnapshot,
    pub v2: VersionSnapshot,
    pub v3: VersionSnapshot,
}

/// `GET /api/dashboard`: one snapshot of every version.
#[utoipa::path(
    get, path = "/api/dashboard", tag = "dashboard", description = "One snapshot of every path's figures, read from Redis.",
    responses(
        (status = 200, description = "The figures of v1, v2 and v3", body = Dashboard),
        (status = 503, description = "Redis is unavailable", body = crate::error::ErrorBody),
    )
)]
pub async fn get_dashboard(State(state): State<AppState>) -> Result<Json<Dashboard>, ApiError> {
    let now = Utc::now();
    let projection = &state.projection;
    let snapshot = |v: Version| async move {
        projection.snapshot(v, now).await.map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}")))
    };
    let versions = Versions { v1: snapshot(Version::V1).await?, v2: snapshot(Version::V2).await?, v3: snapshot(Version::V3).await? };
    Ok(Json(Dashboard { generated_at: now, versions }))
}
