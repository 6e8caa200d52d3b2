//! The accept loop, in place of `axum::serve` (which exposes no header-read timeout).
//!
//! - **A cap on connections.** Each served connection holds one of `max_connections` permits.
//!   Past the cap a connection is still read, for one request, and answered `503` with
//!   `Retry-After` and `Connection: close`: a client sees why, instead of a reset or a hang.
//!   Those answers are themselves capped ([`refusing_cap`]); past that, the loop stops
//!   accepting until a connection ends, and new ones wait in the kernel's accept queue (then
//!   their SYNs are retried): a delay, never an answer the client cannot read. (Writing a
//!   canned 503 at accept, before the request, was tried: hyper clients report it as
//!   `UnexpectedMessage`.) Memory stays bounded either way.
//! - **hyper's header-read timeout**, which runs from the connection's start and again
//!   whenever a keep-alive connection waits for its next request: a client that sends nothing,
//!   or a byte a second, is closed after `header_timeout`; so is an idle keep-alive connection.
//! - **A small read buffer** (hyper's would grow to ~400 KB per connection); a request head
//!   larger than it is answered `431`.
//! - TCP_NODELAY and graceful shutdown: on shutdown the listener closes, each connection
//!   finishes the request it is serving and closes, and `serve` returns when all have.
//!   Upgraded connections (dashboard WebSockets) leave this loop once upgraded; the hub closes
//!   them on shutdown.

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{HeaderValue, Request, StatusCode, header},
    response::IntoResponse,
};
use futures::StreamExt;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::refused;
use crate::{error::ApiError, routes::MAX_BODY};

/// hyper's read buffer per connection, and so the largest request head: far above what the
/// API's clients send (a token, a cookie and a few headers), far below hyper's 400 KB default.
const READ_BUFFER: usize = 32 * 1024;
/// How long a connection past the cap may take to send the request it is refused.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// What the accept loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// What an accepted connection holds: a place among the served or among the refused.
enum Slot {
    Serve(OwnedSemaphorePermit),
    Refuse(OwnedSemaphorePermit),
}

/// Connections answered `503` at once, at most: an eighth of the cap, and at least 16.
pub fn refusing_cap(max_connections: usize) -> usize {
    (max_connections / 8).max(16)
}

/// Serves `router` on `listener` until `shutdown`, then drains (see the module's notes).
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let serving = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(refusing_cap(limits.max_connections)));
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: a busy loop would only make it worse.
                    if !is_connection_error(&e) {
                        tracing::error!(error = %e, "accept failed; retrying in 1 s");
                        tokio::select! { () = &mut shutdown => break, () = tokio::time::sleep(Duration::from_secs(1)) => {} }
                    }
                    continue;
                }
            },
        };
        // TCP_NODELAY: without it a small response written while the previous one is unacked
        // waits for the client's delayed ACK (~40 ms); at low rates that was the API's p99.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
        let slot = match Arc::clone(&serving).try_acquire_owned() {
            Ok(permit) => Slot::Serve(permit),
            Err(_) => match Arc::clone(&refusing).try_acquire_owned() {
                Ok(permit) => Slot::Refuse(permit),
                // Both full: accept nothing more until one frees (see the module's notes).
                Err(_) => {
                    refused("accept_paused");
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        permit = Arc::clone(&serving).acquire_owned() => Slot::Serve(permit.expect("never closed")),
                        permit = Arc::clone(&refusing).acquire_owned() => Slot::Refuse(permit.expect("never closed")),
                    }
                }
            },
        };
        match slot {
            Slot::Serve(permit) => {
                tracker.spawn(serve_one(tcp, router.clone(), limits.header_timeout, stop.clone(), permit));
            }
            Slot::Refuse(permit) => {
                refused("connections");
                tracker.spawn(refuse_one(tcp, limits.max_connections, permit));
            }
        }
    }
    // New clients now get "connection refused" from the kernel while the others finish.
    drop(listener);
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

async fn serve_one(tcp: TcpStream, router: Router, header_timeout: Duration, stop: CancellationToken, _permit: OwnedSemaphorePermit) {
    let _open = OpenGauge::new();
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(READ_BUFFER)
        .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router))
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    match result {
        Err(e) if e.is_timeout() => refused("header_timeout"),
        Err(e) => tracing::debug!(error = %e, "connection ended with an error"),
        Ok(()) => {}
    }
}

/// Reads one request (and its body, so the answer is not lost to a reset) and answers `503`.
async fn refuse_one(tcp: TcpStream, max_connections: usize, _permit: OwnedSemaphorePermit) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| async move {
        let mut body = Body::new(req.into_body()).into_data_stream();
        let mut read = 0;
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
            while let Some(Ok(chunk)) = body.next().await {
                read += chunk.len();
                if read > MAX_BODY {
                    break;
                }
            }
        })
        .await;
        let mut res = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, refusal_message(max_connections)).into_response();
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        Ok::<_, Infallible>(res)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_TIMEOUT)
        .max_buf_size(READ_BUFFER)
        .keep_alive(false)
        .serve_connection(TokioIo::new(tcp), service);
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT * 3, conn).await;
}

fn refusal_message(max_connections: usize) -> String {
    format!("too many connections (this server serves {max_connections} at once); retry shortly")
}

/// Errors of one connection (it was reset before we took it), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// `coffee_rt_http_connections`: connections being served now.
struct OpenGauge;

impl OpenGauge {
    fn new() -> OpenGauge {
        metrics::gauge!("coffee_rt_http_connections").increment(1.0);
        OpenGauge
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!("coffee_rt_http_connections").decrement(1.0);
    }
}
