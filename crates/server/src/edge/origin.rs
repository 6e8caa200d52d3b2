//! Which pages may open `/ws/dashboard`. A browser lets any site open a WebSocket to any
//! address and sends the user's cookies with it; only the `Origin` header tells the server
//! which page asks. Without this check, any web page a café's staff opened could read the
//! live revenue from a dashboard on their network.

use axum::http::{HeaderMap, header};

/// The allow-list, normalised (lower case, no trailing slash).
pub struct Origins(Vec<String>);

impl Origins {
    /// Each entry is a full origin, `scheme://host[:port]`.
    pub fn new(allowed: &[String]) -> anyhow::Result<Origins> {
        let mut list = Vec::with_capacity(allowed.len());
        for o in allowed.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
            let normal = o.trim_end_matches('/').to_ascii_lowercase();
            let valid = normal
                .split_once("://")
                .is_some_and(|(scheme, authority)| matches!(scheme, "http" | "https") && !authority.is_empty() && !authority.contains('/'));
            anyhow::ensure!(valid, "--allowed-origins: {o:?} is not an origin like https://dashboard.example.com[:port]");
            list.push(normal);
        }
        Ok(Origins(list))
    }

    /// No `Origin` (a non-browser client, which no other page can steer): allowed. The page's
    /// own origin (its host and port are the request's `Host`) or a listed one: allowed.
    /// Anything else, `null` included: refused.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else { return true };
        let Ok(origin) = origin.to_str() else { return false };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.0.contains(&origin) {
            return true;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        match (origin.split_once("://"), host) {
            (Some(("http" | "https", authority)), Some(host)) => authority.eq_ignore_ascii_case(host),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8005"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn only_the_pages_own_origin_and_listed_ones_pass() {
        let o = Origins::new(&["https://Dash.example.com/".into()]).unwrap();
        assert!(o.allows(&headers(None)));
        assert!(o.allows(&headers(Some("http://127.0.0.1:8005"))));
        assert!(o.allows(&headers(Some("https://dash.example.com"))));
        assert!(!o.allows(&headers(Some("http://evil.example"))));
        assert!(!o.allows(&headers(Some("http://127.0.0.1:8006"))));
        assert!(!o.allows(&headers(Some("null"))));
        assert!(Origins::new(&["dash.example.com".into()]).is_err());
    }
}
