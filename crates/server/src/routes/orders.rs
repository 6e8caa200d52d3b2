//! `POST /api/{v1,v2,v3}/order`.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use coffee_core::{Order, RawOrder, Version};
use coffee_pipeline::{Outcome, Receipt};
use serde::Serialize;
use uuid::Uuid;

use crate::{AppState, error::ApiError, telemetry};

/// The answer to an accepted order, and to a replay of one (`replayed: true`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub order_id: Uuid,
    pub version: Version,
    #[schema(schema_with = super::openapi::accepted_status)]
    pub status: &'static str,
    /// Present, and `true`, when this answers a repeat of an order already accepted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

#[utoipa::path(
    post, path = "/api/{version}/order", tag = "orders", description = super::openapi::ORDER_DESCRIPTION,
    params(("version" = Version, Path, description = "The ingestion path")),
    request_body(content = RawOrder, content_type = "application/json"),
    responses(
        (status = 201, description = "v1: stored in PostgreSQL (or a replay of such an acceptance)", body = Accepted,
         headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 202, description = "v2, v3: in the log, stored shortly (or a replay of such an acceptance)", body = Accepted,
         headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "The body is not JSON", body = crate::error::ErrorBody),
        (status = 404, description = "No such version", body = crate::error::ErrorBody),
        (status = 409, description = "This `order_id` was accepted with another body (`field` is `order_id`); nothing changed", body = crate::error::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = crate::error::ErrorBody),
        (status = 422, description = "A field is missing, unknown or invalid (`field` names it)", body = crate::error::ErrorBody),
        (status = 503, description = "Too many orders in flight, or the path's service (PostgreSQL, Redis, Kafka) is unavailable", body = crate::error::ErrorBody),
    )
)]
pub async fn post_order(
    State(state): State<AppState>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let version: Version =
        version.parse().map_err(|e: coffee_core::ParseVersionError| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let _permit = state.in_flight.try_acquire().map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many orders in flight"))?;
    require_json(&headers)?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let raw = parse_body(&body)?;
    let client_id = raw.order_id.is_some();
    let order = Order::parse_within(raw, &state.catalog, Utc::now(), &state.order_window)
        .map_err(|e| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.message))?;
    let (order_id, accepted_at) = (order.order_id, order.accepted_at);
    telemetry::trace::record_order_id(&order_id);
    let outcome = state.registry.submit(state.path(version), version, order, client_id).await?;
    let (first, replayed) = match outcome {
        Outcome::Accepted => {
            state.accepted.record(version, accepted_at);
            metrics::counter!("coffee_rt_orders_accepted_total", "version" => version.as_str()).increment(1);
            (version, false)
        }
        Outcome::Replayed { version: first } => (first, true),
        Outcome::Conflict { version: first, fields } => {
            return Err(ApiError::field(
                StatusCode::CONFLICT,
                "order_id",
                format!("order_id {order_id} was already used on {first} for another order (different {})", fields.join(", ")),
            ));
        }
    };
    // A replay answers as the first acceptance did, on whichever path that was.
    let (status, text) = match state.path(first).receipt() {
        Receipt::Stored => (StatusCode::CREATED, "created"),
        Receipt::Logged => (StatusCode::ACCEPTED, "accepted"),
    };
    let mut response = (status, Json(Accepted { order_id, version: first, status: text, replayed })).into_response();
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `POST /api/validate`: the same checks as an order route, and nothing stored. Clients use it
/// as a dry run; the load lab uses it to measure the HTTP layer's own ceiling (no IO).
#[utoipa::path(
    post, path = "/api/validate", tag = "orders",
    description = "The same checks as `POST /api/{version}/order`, and nothing stored: a dry run.",
    request_body(content = RawOrder, content_type = "application/json"),
    responses(
        (status = 200, description = "The order is valid: here it is as it would be stored", body = super::openapi::Validated),
        (status = 400, description = "The body is not JSON", body = crate::error::ErrorBody),
        (status = 415, description = "`Content-Type` is not `application/json`", body = crate::error::ErrorBody),
        (status = 422, description = "A field is missing, unknown or invalid (`field` names it)", body = crate::error::ErrorBody),
    )
)]
pub async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_json(&headers)?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let raw = parse_body(&body)?;
    let order = Order::parse_within(raw, &state.catalog, Utc::now(), &state.order_window)
        .map_err(|e| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, e.field, e.message))?;
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
