//! A dashboard WebSocket client, reading frames as the page does.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::TestApp;

impl TestApp {
    /// Opens `/ws/dashboard`.
    pub async fn ws(&self) -> WsClient {
        let (socket, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws/dashboard", self.port)).await.expect("WebSocket connects");
        WsClient { socket }
    }
}

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// A text frame, parsed, or what else arrived.
#[derive(Debug)]
pub enum Frame {
    Snapshot(Value),
    Heartbeat,
    Closed(Option<u16>),
}

impl WsClient {
    /// The next frame, or None after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        let deadline = Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("frames are JSON");
                    return Some(match v["type"].as_str() {
                        Some("snapshot") => Frame::Snapshot(v),
                        Some("heartbeat") => Frame::Heartbeat,
                        other => panic!("unexpected frame type {other:?}"),
                    });
                }
                Some(Ok(Message::Close(c))) => return Some(Frame::Closed(c.map(|c| u16::from(c.code)))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Some(Frame::Closed(None)),
            }
        }
    }

    /// The next snapshot (heartbeats skipped), or None after `within`.
    pub async fn next_snapshot(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())).await? {
                Frame::Snapshot(v) => return Some(v),
                Frame::Heartbeat => {}
                Frame::Closed(code) => panic!("socket closed ({code:?})"),
            }
        }
    }

    /// Waits for a snapshot whose `version` total is `n`.
    pub async fn until_total(&mut self, version: &str, n: i64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.next_snapshot(left).await.unwrap_or_else(|| panic!("no snapshot with {version} total {n} within {within:?}"));
            if total(&v, version) == n {
                return v;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.send(Message::Close(None)).await;
    }
}

pub fn total(snapshot: &Value, version: &str) -> i64 {
    snapshot["versions"][version]["total_orders"].as_i64().expect("total_orders")
}
