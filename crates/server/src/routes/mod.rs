mod dashboard;
mod health;
mod history;
mod orders;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};

use crate::{AppState, telemetry};

/// Orders are tiny; anything larger than this is refused with 413 before it is parsed.
pub const MAX_BODY: usize = 16 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/{version}/order", post(orders::post_order))
        .route("/api/validate", post(orders::validate))
        .route("/api/dashboard", get(dashboard::get_dashboard))
        .route("/api/history", get(history::get_history))
        .route("/", get(crate::dashboard::index))
        .route("/assets/{name}", get(crate::dashboard::asset))
        .route("/ws/dashboard", get(crate::dashboard::ws_dashboard))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(health::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(telemetry::track))
        .layer(telemetry::trace::layer())
        .with_state(state)
}
