//! `GET /` and `GET /assets/{name}`: the page, compiled into the binary.
//!
//! Everything the page needs ships inside the executable (uPlot is vendored under
//! `crates/server/assets/vendor/`), so the dashboard works offline and cannot drift from the
//! server that feeds it. The Content-Security-Policy allows scripts and styles from this origin
//! only: even if some data were ever put into the DOM as markup, no inline script could run.

use axum::{
    extract::Path,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

pub const INDEX_HTML: &str = include_str!("../../assets/index.html");
pub const DASHBOARD_JS: &str = include_str!("../../assets/dashboard.js");
pub const DASHBOARD_CSS: &str = include_str!("../../assets/dashboard.css");
const UPLOT_JS: &str = include_str!("../../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/vendor/uplot/uPlot.min.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn index() -> Response {
    respond(INDEX_HTML, "text/html; charset=utf-8")
}

pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "dashboard.js" => (DASHBOARD_JS, "text/javascript; charset=utf-8"),
        "dashboard.css" => (DASHBOARD_CSS, "text/css; charset=utf-8"),
        "uplot.min.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        "uplot.min.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        _ => return crate::error::ApiError::new(StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    respond(body, content_type)
}

fn respond(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets change with the binary: revalidate rather than serve a stale page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The escaping rule, checked on the source: data reaches the DOM through `textContent`
    /// and attribute-free element creation only.
    #[test]
    fn the_page_never_parses_data_as_markup() {
        for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!DASHBOARD_JS.contains(banned), "dashboard.js uses {banned}");
        }
        assert!(DASHBOARD_JS.contains("textContent"));
        assert!(!INDEX_HTML.contains("<script>"), "no inline script: the CSP forbids it");
    }
}
