//! The HTTP edge: what every connection and request passes before a handler sees it, so that
//! overload, slow or hostile clients and strangers are refused in bounded memory.
//!
//! - [`connections`]: the accept loop. A cap on TCP connections, hyper's header-read timeout
//!   (which also closes idle keep-alive connections), TCP_NODELAY, graceful shutdown.
//! - [`limits`]: a whole-request timeout (`503`) and a body-read deadline (`408`).
//! - [`auth`]: bearer tokens per route class (ingest, read), the dashboard's cookie.
//! - [`origin`]: which pages may open `/ws/dashboard`.
//!
//! Every refusal is counted in `coffee_rt_http_refused_total{reason}` (401s in
//! `coffee_rt_http_unauthorized_total{route,reason}`) and answered as JSON by `ApiError`.

pub mod auth;
pub mod connections;
pub mod limits;
pub mod origin;
mod token;

use std::{sync::Arc, time::Duration};

pub use token::Token;
use tokio::sync::Semaphore;

use crate::ServerConfig;

/// The request-level edge shared by the middleware and the WebSocket handler.
pub struct Edge {
    pub auth: auth::Auth,
    pub origins: origin::Origins,
    /// One permit per open dashboard socket.
    pub ws_clients: Arc<Semaphore>,
    pub request_timeout: Duration,
    pub body_timeout: Duration,
}

impl Edge {
    /// Checks the configuration: off loopback, both tokens are required unless
    /// `insecure_no_auth` is set (and then the log warns).
    pub fn new(config: &ServerConfig) -> anyhow::Result<Arc<Edge>> {
        let auth = auth::Auth::new(config)?;
        let origins = origin::Origins::new(&config.allowed_origins)?;
        anyhow::ensure!(config.max_connections >= 1, "--max-connections must be at least 1");
        for (name, d) in [
            ("--request-timeout", config.request_timeout),
            ("--header-timeout", config.header_timeout),
            ("--body-timeout", config.body_timeout),
        ] {
            anyhow::ensure!(!d.is_zero(), "{name} must be longer than 0");
        }
        Ok(Arc::new(Edge {
            auth,
            origins,
            ws_clients: Arc::new(Semaphore::new(config.max_ws_clients)),
            request_timeout: config.request_timeout,
            body_timeout: config.body_timeout,
        }))
    }
}

/// Counts one refusal in `coffee_rt_http_refused_total{reason}`.
pub(crate) fn refused(reason: &'static str) {
    metrics::counter!("coffee_rt_http_refused_total", "reason" => reason).increment(1);
}
