//! `GET /ws/dashboard`: one task per socket, fed by the hub's watch channel. Before the
//! upgrade, the page's `Origin` is checked (403) and a client slot taken (503 past
//! `max_ws_clients`); the read token was checked by the edge's middleware.

use std::{sync::Arc, time::Duration};

use axum::{
    Extension,
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use tokio::{
    sync::OwnedSemaphorePermit,
    time::{Instant, interval_at, timeout},
};

use super::{Hub, frame::HEARTBEAT};
use crate::{AppState, edge::Edge, error::ApiError};

/// A heartbeat after this long without a snapshot, so clients and proxies see a live socket.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// A client that cannot take a frame within this long is dropped: it would only ever be
/// further behind, and its buffer is memory the server keeps for nothing.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn ws_dashboard(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    State(state): State<AppState>,
    Extension(edge): Extension<Arc<Edge>>,
    headers: HeaderMap,
) -> Response {
    // Not a WebSocket handshake (400, 426): a JSON error like every other, not axum's text.
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return ApiError::new(e.status(), e.body_text()).into_response(),
    };
    if !edge.origins.allows(&headers) {
        crate::edge::refused("origin");
        let message = "this page's origin may not open the dashboard socket (--allowed-origins lists others)";
        return ApiError::field(StatusCode::FORBIDDEN, "origin", message).into_response();
    }
    // The slot is the socket's until it closes; a refused or failed upgrade drops it at once.
    let Ok(slot) = Arc::clone(&edge.ws_clients).try_acquire_owned() else {
        crate::edge::refused("ws_clients");
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many dashboard clients; retry shortly").into_response();
    };
    let hub = state.dashboard.clone();
    // Clients never send anything large; small buffers keep 1,000 sockets cheap. A socket whose
    // unsent data passes 1 MiB fails its send and is closed.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(socket, hub, slot))
}

/// `_slot` is the socket's place under `max_ws_clients`, given back when the socket ends.
async fn serve(mut socket: WebSocket, hub: Hub, _slot: OwnedSemaphorePermit) {
    let mut frames = hub.subscribe();
    let stopping = hub.stopping();
    let _gauge = ClientGauge::new();
    let first = frames.borrow_and_update().clone();
    if send(&mut socket, first).await.is_err() {
        return;
    }
    let mut heartbeat = interval_at(Instant::now() + HEARTBEAT_EVERY, HEARTBEAT_EVERY);
    loop {
        tokio::select! {
            // Stopping is checked first: the hub drops its sender as it stops, and a socket that
            // saw the closed channel first would vanish without telling the client why.
            biased;
            _ = stopping.cancelled() => return going_away(socket).await,
            changed = frames.changed() => {
                if changed.is_err() {
                    return going_away(socket).await;
                }
                // Only the newest frame is sent; any the socket was too slow for are skipped.
                let frame = frames.borrow_and_update().clone();
                if send(&mut socket, frame).await.is_err() {
                    return;
                }
                heartbeat.reset();
            }
            _ = heartbeat.tick() => {
                if send(&mut socket, Utf8Bytes::from_static(HEARTBEAT)).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {} // pings are answered by the library; nothing else is expected
            },
        }
    }
}

/// Tells the client the server is going away (1001), so it reconnects rather than reports an error.
async fn going_away(mut socket: WebSocket) {
    let bye = CloseFrame { code: close_code::AWAY, reason: Utf8Bytes::from_static("server shutting down") };
    let _ = timeout(Duration::from_secs(1), socket.send(Message::Close(Some(bye)))).await;
}

async fn send(socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), ()> {
    match timeout(SEND_TIMEOUT, socket.send(Message::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Counts open dashboard sockets in `coffee_rt_dashboard_clients`.
struct ClientGauge;

impl ClientGauge {
    fn new() -> ClientGauge {
        metrics::gauge!("coffee_rt_dashboard_clients").increment(1.0);
        ClientGauge
    }
}

impl Drop for ClientGauge {
    fn drop(&mut self) {
        metrics::gauge!("coffee_rt_dashboard_clients").decrement(1.0);
    }
}
