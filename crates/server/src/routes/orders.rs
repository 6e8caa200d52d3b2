//! `POST /api/{v1,v2,v3}/order`.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
};
use chrono::Utc;
use coffee_core::{Order, RawOrder, Version};
use coffee_pipeline::Receipt;
use serde::Serialize;
use uuid::Uuid;

use crate::{AppState, error::ApiError, telemetry};

#[derive(Debug, Serialize)]
pub struct Accepted {
    pub order_id: Uuid,
    pub version: Version,
    pub status: &'static str,
}

pub async fn post_order(
    State(state): State<AppState>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let version: Version =
        version.parse().map_err(|e: coffee_core::ParseVersionError| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let _permit = state.in_flight.try_acquire().map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many orders in flight"))?;
    require_json(&headers)?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let raw = parse_body(&body)?;
    let order =
        Order::parse(raw, &state.catalog, Utc::now()).map_err(|e| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.message))?;
    let (order_id, accepted_at) = (order.order_id, order.accepted_at);
    telemetry::trace::record_order_id(&order_id);
    let path = state.path(version);
    let receipt = path.receipt();
    path.submit(order).await?;
    state.accepted.record(version, accepted_at);
    let status = match receipt {
        Receipt::Stored => (StatusCode::CREATED, "created"),
        Receipt::Logged => (StatusCode::ACCEPTED, "accepted"),
    };
    metrics::counter!("coffee_rt_orders_accepted_total", "version" => version.as_str()).increment(1);
    Ok((status.0, Json(Accepted { order_id, version, status: status.1 })))
}

/// `POST /api/validate`: the same checks as an order route, and nothing stored. Clients use it
/// as a dry run; the load lab uses it to measure the HTTP layer's own ceiling (no IO).
pub async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_json(&headers)?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let raw = parse_body(&body)?;
    let order =
        Order::parse(raw, &state.catalog, Utc::now()).map_err(|e| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.message))?;
    Ok(Json(serde_json::json!({"valid": true, "order": order.to_record()})))
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json"))
    }
}

/// 400 when the body is not JSON at all; 422, naming the field, when it is JSON of the wrong
/// shape (unknown or missing field, wrong type).
fn parse_body(body: &[u8]) -> Result<RawOrder, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let raw: RawOrder = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let msg = inner.to_string();
                let field = if path != "." { path } else { quoted_name(&msg).unwrap_or_default() };
                ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, strip_position(&msg))
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {inner}")),
        }
    })?;
    Ok(raw)
}

/// serde names unknown and missing fields in backquotes: "unknown field `tip`, expected ...".
fn quoted_name(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_owned())
}

fn strip_position(msg: &str) -> String {
    msg.split(" at line ").next().unwrap_or(msg).to_owned()
}
