//! The lab's one HTTP client, lean HTTP/1.1 on hyper with nothing on top, in two forms:
//!
//! * [`HttpClient`]: hyper-util's pooled client, for everything but the load itself (reading
//!   `/metrics`, warming connections up, the dashboard bench's orders).
//! * [`Connection`]: one keep-alive connection owned by one task, which is how the load engine
//!   sends (as wrk2 and oha do: see `engine.rs` for why).
//!
//! Chosen over reqwest after measuring both against the same local server on the same 2 cores:
//! reqwest wraps this same client and adds URL parsing, header maps and a boxed body per
//! request, costing rate the server needs on a machine the generator shares with it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What came of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Any HTTP response; success is a 2xx status.
    Status(StatusCode),
    /// No response before the deadline.
    Timeout,
    /// The TCP connection could not be opened (server down, port closed, backlog full).
    Connect,
    /// The connection broke mid-request.
    Io,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Status(s) if s.is_success())
    }

    /// The key under which a failure is counted in the error breakdown: the status code
    /// (`"503"`) or the transport failure (`"timeout"`, `"connect"`, `"io"`).
    pub fn error_key(&self) -> String {
        match self {
            Outcome::Status(s) => s.as_u16().to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Connect => "connect".into(),
            Outcome::Io => "io".into(),
        }
    }
}

/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            // Keep every connection an open-loop burst needed; reopening costs the server too.
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        Self { inner }
    }

    /// POST a JSON body and read the whole response (so the connection returns to the pool).
    pub async fn post_json(&self, uri: Uri, body: Bytes) -> Outcome {
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .expect("static request parts are valid");
        match self.inner.request(req).await {
            Ok(resp) => {
                let status = resp.status();
                match resp.into_body().collect().await {
                    Ok(_) => Outcome::Status(status),
                    Err(_) => Outcome::Io,
                }
            }
            Err(e) if e.is_connect() => Outcome::Connect,
            Err(_) => Outcome::Io,
        }
    }

    /// Opens `n` connections to `uri`'s server and leaves them idle in the pool, as wrk and k6
    /// do before they measure: a run that starts cold opens hundreds of connections in its
    /// first milliseconds (every early request finds none free), and that burst, not the
    /// server's steady state, became the p99. Sends `GET /livez`; any answer will do.
    pub async fn warm_up(&self, uri: &Uri, n: usize) {
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/livez"));
        let Ok(livez) = Uri::from_parts(parts) else { return };
        let one = |livez: Uri| async move {
            let req = Request::get(livez).body(Full::new(Bytes::new())).expect("static request");
            if let Ok(resp) = self.inner.request(req).await {
                let _ = resp.into_body().collect().await;
            }
        };
        let all = futures::future::join_all((0..n).map(|_| one(livez.clone())));
        let _ = tokio::time::timeout(Duration::from_secs(5), all).await;
    }

    /// GET a text resource (e.g. `/metrics`); errors on non-2xx.
    pub async fn get_text(&self, uri: Uri) -> anyhow::Result<String> {
        let req = Request::get(uri.clone()).body(Full::new(Bytes::new()))?;
        let resp = self.inner.request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "GET {uri} answered {status}");
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// One HTTP/1 keep-alive connection; its I/O runs on a task of its own.
pub struct Connection {
    tx: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to `addr` (5 s at most) with Nagle's algorithm off; `None` if it cannot.
    pub async fn open(addr: SocketAddr) -> Option<Self> {
        let stream = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await.ok()?.ok()?;
        stream.set_nodelay(true).ok()?;
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Some(Self { tx })
    }

    /// The server closed it (or it broke): of no more use.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// POST a JSON body to `path` and read the whole response. [`Outcome::Io`] means the
    /// connection is of no more use.
    pub async fn post_json(&mut self, host: HeaderValue, path: Uri, body: Bytes) -> Outcome {
        let req = Request::post(path)
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .expect("static request parts are valid");
        if self.tx.ready().await.is_err() {
            return Outcome::Io;
        }
        match self.tx.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                match resp.into_body().collect().await {
                    Ok(_) => Outcome::Status(status),
                    Err(_) => Outcome::Io,
                }
            }
            Err(_) => Outcome::Io,
        }
    }
}
