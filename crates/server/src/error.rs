//! Every error the API returns is JSON: `{"error": "...", "field": "..."}`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use coffee_pipeline::IngestError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<String>,
}

/// The body of every error answer (`ErrorBody` in the OpenAPI description).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    /// What is wrong, in words a client can act on.
    error: &'a str,
    /// The input at fault, when there is one: a body field (`price`), a query parameter
    /// (`bucket`), `authorization` for a token, `order_id` for a conflicting reuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), field: None }
    }

    pub fn field(status: StatusCode, field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), field: Some(field.into()) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(ErrorBody { error: &self.message, field: self.field.as_deref() })).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}
