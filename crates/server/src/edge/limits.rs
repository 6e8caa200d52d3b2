//! Per-request time limits. hyper bounds the headers ([`super::connections`]); these bound
//! the rest, so no request holds a connection, a task and its buffers for longer than a
//! configured time, whatever the client or a stalled dependency does.

use std::sync::Arc;

use axum::{
    body::{Body, HttpBody},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;

use super::{Edge, refused};
use crate::{error::ApiError, routes::MAX_BODY};

/// The whole request, body and handler, within `request_timeout`; past it `503` with
/// `Retry-After`. The work is dropped, but a v1 order already queued for its batch may still be
/// committed: the client does not know, and retries with the same `order_id`.
pub async fn request_timeout(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(edge.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            refused("request_timeout");
            let message =
                format!("no answer within {:?}; an order may still be stored: retry it with the same order_id", edge.request_timeout);
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).into_response()
        }
    }
}

/// Reads the body (at most [`MAX_BODY`]) within `body_timeout` before the handler runs, so a
/// client that sends a byte a second is answered `408` and its connection closed. hyper's own
/// limits apply per read, not per body: without this such a client holds a task for ever.
pub async fn read_body(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    if req.body().size_hint().lower() > MAX_BODY as u64 {
        return closing(too_large());
    }
    let (parts, body) = req.into_parts();
    let mut chunks = body.into_data_stream();
    let read = async {
        let mut buf = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("could not read the body: {e}")))?;
            if buf.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    };
    match tokio::time::timeout(edge.body_timeout, read).await {
        Ok(Ok(buf)) => next.run(Request::from_parts(parts, Body::from(buf))).await,
        Ok(Err(e)) => closing(e),
        Err(_) => {
            refused("body_timeout");
            let message = format!("the body did not arrive within {:?}", edge.body_timeout);
            closing(ApiError::new(StatusCode::REQUEST_TIMEOUT, message))
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {MAX_BODY} bytes"))
}

/// The rest of the body was not read: the connection cannot carry another request.
fn closing(e: ApiError) -> Response {
    let mut res = e.into_response();
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}
