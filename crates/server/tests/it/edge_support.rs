//! Raw HTTP for the edge tests: what a hostile or broken client does cannot be done with
//! reqwest (a byte a second, a handshake with a forged `Origin`, a socket that sends nothing).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

pub async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).await.expect("the server accepts")
}

/// The status, the head (lower-cased) and whatever body arrived with the head of a response.
pub struct Head {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Head {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body expected ({e}): {:?}", self.body))
    }
}

/// Reads one response head (and the body bytes that follow, up to `Content-Length`).
pub async fn read_response(stream: &mut TcpStream, within: Duration) -> Head {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length =
                    head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return (head, String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned());
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed before a full response: {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let (head, body) = tokio::time::timeout(within, read).await.expect("a response in time");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    Head { status, head, body }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether the server closes `stream` within `within` (reads discarded).
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A dashboard WebSocket handshake with these extra header lines; the answer's head.
pub async fn ws_handshake(port: u16, extra: &[(&str, &str)]) -> (TcpStream, Head) {
    let mut stream = connect(port).await;
    let mut req = format!(
        "GET /ws/dashboard HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in extra {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let head = read_response(&mut stream, Duration::from_secs(5)).await;
    (stream, head)
}

/// An order timestamped now.
pub fn order_now() -> Value {
    json!({"drink": "latte", "store": "uptown", "price": 4.5, "timestamp": chrono::Utc::now().to_rfc3339()})
}

/// The value of a Prometheus series whose line contains every one of `parts` (0 if absent).
pub fn metric(text: &str, name: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
