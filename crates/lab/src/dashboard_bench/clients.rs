//! One dashboard client: a WebSocket that reads every frame and notes when the v2 total
//! changed. Only the frame fields the bench needs are parsed.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A connected client and the v2 total of its first snapshot.
pub struct Client {
    socket: Socket,
    pub first_total: i64,
}

/// Only what the bench reads of a frame.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    versions: HashMap<String, Totals>,
}

#[derive(Deserialize)]
struct Totals {
    total_orders: i64,
}

fn v2_total(text: &str) -> Option<i64> {
    let f: Frame = serde_json::from_str(text).ok()?;
    (f.kind == "snapshot").then(|| f.versions.get("v2").map(|t| t.total_orders)).flatten()
}

impl Client {
    /// Connects and reads the first snapshot (sent on connect).
    pub async fn connect(url: &str) -> anyhow::Result<Client> {
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.with_context(|| format!("connecting {url}"))?;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.context("no first frame within 10 s")?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Some(total) = v2_total(&t) {
                        return Ok(Client { socket, first_total: total });
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => anyhow::bail!("closed before the first frame"),
            }
        }
    }

    /// Every change of the v2 total this client saw, with when it read it.
    pub async fn read_until(mut self, stop: CancellationToken) -> Vec<(i64, Instant)> {
        let mut seen = Vec::new();
        let mut last = self.first_total;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                msg = self.socket.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        let now = Instant::now();
                        if let Some(total) = v2_total(&t).filter(|t| *t != last) {
                            last = total;
                            seen.push((total, now));
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
            }
        }
        let _ = self.socket.close(None).await;
        seen
    }
}
