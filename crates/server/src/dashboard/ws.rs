//! `GET /ws/dashboard`: one task per socket, fed by the hub's watch channel.

use std::time::Duration;

use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code},
    },
    response::Response,
};
use tokio::time::{Instant, interval_at, timeout};

use super::{Hub, frame::HEARTBEAT};
use crate::AppState;

/// A heartbeat after this long without a snapshot, so clients and proxies see a live socket.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// A client that cannot take a frame within this long is dropped: it would only ever be
/// further behind, and its buffer is memory the server keeps for nothing.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn ws_dashboard(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let hub = state.dashboard.clone();
    // Clients never send anything large; small buffers keep 1,000 sockets cheap. A socket whose
    // unsent data passes 1 MiB fails its send and is closed.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(socket, hub))
}

async fn serve(mut socket: WebSocket, hub: Hub) {
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
