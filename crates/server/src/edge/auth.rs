//! Bearer tokens: one for ingest (the order routes), one for reading (dashboard, WebSocket,
//! `/api/*` reads, `/metrics`). `/livez`, `/readyz`, `/openapi.json` and the static assets stay
//! open: probes carry no token, and the API's description and the page's code hold no data.
//!
//! The page itself needs the read token. A browser gets it once as `/?token=…`; the answer
//! stores it in an HttpOnly, SameSite=Strict cookie and redirects to `/`, so the token leaves
//! the address bar and the page, its fetches and its WebSocket authenticate by cookie. Another
//! site's page cannot send that cookie (SameSite), and its script cannot read it (HttpOnly).

use std::sync::Arc;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{Edge, Token};
use crate::{ServerConfig, error::ApiError};

/// The dashboard's cookie.
pub const COOKIE: &str = "coffee_rt_read";
/// How long a browser keeps the cookie: a wall-mounted dashboard should not need the link
/// again every morning, and a rotated token makes the old cookie useless at once anyway.
const COOKIE_MAX_AGE_SECS: u32 = 30 * 24 * 3600;

/// Which token a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Open,
    Read,
    Ingest,
}

/// The route class of a matched route template. Anything not listed needs the read token:
/// a route added later is closed until someone decides otherwise.
pub fn access(route: &str) -> Access {
    match route {
        "/livez" | "/readyz" | "/assets/{name}" | "/openapi.json" => Access::Open,
        "/api/{version}/order" | "/api/validate" => Access::Ingest,
        _ => Access::Read,
    }
}

/// The configured tokens; a class without one is open.
pub struct Auth {
    ingest: Option<Token>,
    read: Option<Token>,
}

impl Auth {
    /// Off loopback both tokens are required, unless `insecure_no_auth`: anyone who can reach
    /// the port could otherwise post orders and read the revenue.
    pub fn new(config: &ServerConfig) -> anyhow::Result<Auth> {
        let missing: Vec<&str> = [
            (config.ingest_token.is_none(), "--ingest-token (COFFEE_RT_INGEST_TOKEN or COFFEE_RT_INGEST_TOKEN_FILE)"),
            (config.read_token.is_none(), "--read-token (COFFEE_RT_READ_TOKEN or COFFEE_RT_READ_TOKEN_FILE)"),
        ]
        .into_iter()
        .filter_map(|(missing, flag)| missing.then_some(flag))
        .collect();
        if !config.listen.ip().is_loopback() && !missing.is_empty() {
            anyhow::ensure!(
                config.insecure_no_auth,
                "listening on {} (not loopback) needs {}; or pass --insecure-no-auth (COFFEE_RT_INSECURE_NO_AUTH=true) to serve without",
                config.listen,
                missing.join(" and ")
            );
            tracing::warn!(
                listen = %config.listen,
                "--insecure-no-auth: no token for {}; anyone who can reach this port may use those routes",
                missing.join(" and ")
            );
        }
        Ok(Auth { ingest: config.ingest_token.clone(), read: config.read_token.clone() })
    }

    fn token(&self, access: Access) -> Option<&Token> {
        match access {
            Access::Open => None,
            Access::Read => self.read.as_ref(),
            Access::Ingest => self.ingest.as_ref(),
        }
    }
}

/// The middleware: 401 + `WWW-Authenticate: Bearer` for a missing or wrong token, counted in
/// `coffee_rt_http_unauthorized_total{route,reason}`.
pub async fn authorize(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let class = access(&route);
    let Some(expected) = edge.auth.token(class) else { return next.run(req).await };
    if route == "/"
        && let Some(presented) = query_token(req.uri().query())
    {
        return if expected.matches(presented) { store_cookie(expected) } else { unauthorized(route, "wrong") };
    }
    let presented = bearer(req.headers()).or_else(|| if class == Access::Read { cookie(req.headers()) } else { None });
    match presented {
        Some(t) if expected.matches(t) => next.run(req).await,
        Some(_) => unauthorized(route, "wrong"),
        None => unauthorized(route, "missing"),
    }
}

/// `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC 7235).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("token="))
}

/// `303 See Other` to `/`, setting the cookie.
fn store_cookie(token: &Token) -> Response {
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_SECS}", token.expose());
    let mut res = StatusCode::SEE_OTHER.into_response();
    let h = res.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(mut value) = HeaderValue::from_str(&cookie) {
        value.set_sensitive(true);
        h.insert(header::SET_COOKIE, value);
    }
    res
}

fn unauthorized(route: String, reason: &'static str) -> Response {
    let message = match (reason, route.as_str()) {
        ("missing", "/") => "this page needs the read token: open it once as /?token=<read token>",
        ("missing", _) => "this route needs a token: send Authorization: Bearer <token>",
        _ => "wrong token",
    };
    metrics::counter!("coffee_rt_http_unauthorized_total", "route" => route, "reason" => reason).increment(1);
    let mut res = ApiError::field(StatusCode::UNAUTHORIZED, "authorization", message).into_response();
    let challenge = if reason == "wrong" { r#"Bearer realm="coffee-rt", error="invalid_token""# } else { r#"Bearer realm="coffee-rt""# };
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_closed_unless_listed_open() {
        assert_eq!(access("/livez"), Access::Open);
        assert_eq!(access("/openapi.json"), Access::Open);
        assert_eq!(access("/api/{version}/order"), Access::Ingest);
        assert_eq!(access("/metrics"), Access::Read);
        assert_eq!(access("/a/route/added/later"), Access::Read);
    }

    #[test]
    fn tokens_are_found_in_header_cookie_and_query() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; coffee_rt_read=xyz; c=d"));
        assert_eq!(bearer(&h), Some("abc"));
        assert_eq!(cookie(&h), Some("xyz"));
        assert_eq!(query_token(Some("x=1&token=t0k")), Some("t0k"));
        assert_eq!(query_token(Some("notoken=1")), None);
    }
}
