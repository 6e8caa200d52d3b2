mod dashboard;
mod health;
mod history;
mod openapi;
mod orders;

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::DefaultBodyLimit,
    middleware::from_fn_with_state,
    routing::{get, post},
};

use crate::{AppState, edge, telemetry};

/// Orders are tiny; anything larger than this is refused with 413 before it is parsed.
pub const MAX_BODY: usize = 16 * 1024;

/// Every route behind the edge's layers; the first listed runs last (closest to the handler):
/// the body deadline, then the tokens, then the whole-request timeout, then the metrics, which
/// therefore count the edge's refusals too.
pub fn router(state: AppState, edge: Arc<edge::Edge>) -> Router {
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
        .route("/openapi.json", get(openapi::spec))
        .fallback(health::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(from_fn_with_state(Arc::clone(&edge), edge::limits::read_body))
        .layer(from_fn_with_state(Arc::clone(&edge), edge::auth::authorize))
        .layer(from_fn_with_state(Arc::clone(&edge), edge::limits::request_timeout))
        .layer(Extension(edge))
        .layer(axum::middleware::from_fn(telemetry::track))
        .layer(telemetry::trace::layer())
        .with_state(state)
}
