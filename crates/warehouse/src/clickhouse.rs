//! A small client for ClickHouse's HTTP interface: statements, `JSONEachRow` inserts and
//! `FORMAT JSON` queries, with a typed error that says whether a retry can help.
//!
//! ClickHouse 18.16 (Debian 12's package) has no server-side query parameters, so every value
//! that goes into SQL goes through [`quote`] (string literals) or [`quote_ident`] (database and
//! table names), and nothing else builds literals by hand.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::{Serialize, de::DeserializeOwned};

use crate::ClickHouseConfig;

/// How long a request may take by default: long enough for a bench's big insert or a history
/// query over 10M rows, short enough that a hung server is noticed. [`ClickHouse::with_timeout`]
/// changes it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A handle on one ClickHouse server and database; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct ClickHouse {
    http: reqwest::Client,
    /// The server's URL without user and password.
    url: Url,
    auth: Option<(String, Option<String>)>,
    config: ClickHouseConfig,
}

impl std::fmt::Debug for ClickHouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouse").field("url", &self.url.as_str()).field("database", &self.config.database).finish()
    }
}

/// What went wrong talking to ClickHouse.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("invalid ClickHouse URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// No answer: connection refused or reset, a timeout, a body cut off.
    #[error("ClickHouse at {url} did not answer: {detail}")]
    Transport {
        url: String,
        /// The error and its causes, e.g. `error sending request: client error (Connect): tcp connect error: Connection refused`.
        detail: String,
        #[source]
        source: reqwest::Error,
    },
    /// ClickHouse (or a proxy before it) answered with an error status.
    #[error("ClickHouse answered {status}{}: {message}", code.map(|c| format!(" (code {c})")).unwrap_or_default())]
    Server { status: u16, code: Option<u32>, message: String },
    #[error("cannot decode ClickHouse's answer: {0}")]
    Decode(String),
    #[error("cannot encode a row as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// ClickHouse exception codes that are about the server's state, not the statement: a retry
/// of the same statement later can succeed.
const RETRIABLE_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (a replica in read-only mode)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    236, // ABORTED
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
    999, // KEEPER_EXCEPTION
];

impl ClickHouseError {
    /// Whether the same request may succeed later: no answer at all, a 5xx without a ClickHouse
    /// exception (a proxy, a server starting), 429, or an exception about the server's state
    /// (memory, too many parts, timeouts). A SQL error (syntax, unknown table, a value that
    /// does not parse) is not: retrying it gives the same error.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClickHouseError::Transport { .. } => true,
            ClickHouseError::Server { status, code, .. } => match code {
                Some(code) => RETRIABLE_CODES.contains(code),
                None => *status >= 500 || *status == 429,
            },
            ClickHouseError::Url { .. } | ClickHouseError::Decode(_) | ClickHouseError::Encode(_) => false,
        }
    }

    /// The ClickHouse exception code, if ClickHouse answered with one (e.g. 60: unknown table).
    pub fn code(&self) -> Option<u32> {
        match self {
            ClickHouseError::Server { code, .. } => *code,
            _ => None,
        }
    }
}

/// A string as a ClickHouse string literal: in single quotes, with backslash, quote and the
/// control characters escaped. The one way values enter SQL in this crate.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A name (database, table, column) as a ClickHouse identifier: in backquotes, escaped alike.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '`' => out.push_str("\\`"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('`');
    out
}

/// The server's version, from `SELECT version()` (e.g. `18.16.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ServerVersion {
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
        Some(ServerVersion { major: parts.next()??, minor: parts.next()??, patch: parts.next().flatten().unwrap_or(0) })
    }

    /// `TTL` clauses on MergeTree tables came with 19.6.
    pub fn supports_ttl(&self) -> bool {
        (self.major, self.minor) >= (19, 6)
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(serde::Deserialize)]
struct JsonAnswer<T> {
    data: Vec<T>,
}

impl ClickHouse {
    /// A client for `config.url` (user and password, if any, in the URL: sent as HTTP basic
    /// authentication). Connects lazily: nothing is sent until the first request.
    pub fn new(config: &ClickHouseConfig) -> Result<ClickHouse, ClickHouseError> {
        Self::with_timeout(config, DEFAULT_TIMEOUT)
    }

    /// [`ClickHouse::new`] with a request timeout of its own.
    pub fn with_timeout(config: &ClickHouseConfig, timeout: Duration) -> Result<ClickHouse, ClickHouseError> {
        let bad = |reason: String| ClickHouseError::Url { url: config.url.clone(), reason };
        let mut url = Url::parse(&config.url).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        let auth = (!url.username().is_empty()).then(|| (percent_decode(url.username()), url.password().map(percent_decode)));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(ClickHouse { http, url, auth, config: config.clone() })
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// The configured database's name (unquoted).
    pub fn database(&self) -> &str {
        &self.config.database
    }

    /// `table` in the configured database, quoted for SQL: `` `coffee_rt`.`orders` ``.
    pub fn table(&self, table: &str) -> String {
        format!("{}.{}", quote_ident(&self.config.database), quote_ident(table))
    }

    /// The server's URL without user and password, for logs.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    fn request(&self, method: reqwest::Method, path: &str, params: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let mut url = self.url.clone();
        url.set_path(path);
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        let mut request = self.http.request(method, url);
        if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, password.as_deref());
        }
        request
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<bytes::Bytes, ClickHouseError> {
        let transport = |source: reqwest::Error| {
            let source = source.without_url();
            let mut detail = source.to_string();
            let mut cause = std::error::Error::source(&source);
            while let Some(c) = cause {
                detail.push_str(": ");
                detail.push_str(&c.to_string());
                cause = c.source();
            }
            ClickHouseError::Transport { url: self.url.to_string(), detail, source }
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            return Err(server_error(status.as_u16(), text.trim()));
        }
        Ok(body)
    }

    /// `GET /ping`: the server answers `Ok.` when it is up. Checks no database.
    pub async fn ping(&self) -> Result<(), ClickHouseError> {
        let body = self.send(self.request(reqwest::Method::GET, "/ping", &[])).await?;
        if body.trim_ascii() == b"Ok." {
            Ok(())
        } else {
            Err(ClickHouseError::Decode(format!("/ping answered {:?}", String::from_utf8_lossy(&body))))
        }
    }

    /// Runs one statement (DDL, `INSERT … SELECT`, `ALTER`, `OPTIMIZE`) and discards its output.
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.send(self.request(reqwest::Method::POST, "/", &[]).body(sql.to_owned())).await.map(drop)
    }

    /// Runs a query and returns its output as text, e.g. `SELECT version()` (`FORMAT
    /// TabSeparated` unless the query says otherwise). The whole result is computed before the
    /// answer starts (`wait_end_of_query`), so an error mid-query is an error status, not a
    /// truncated body.
    pub async fn query_text(&self, sql: &str) -> Result<String, ClickHouseError> {
        let body = self.send(self.request(reqwest::Method::POST, "/", &[("wait_end_of_query", "1")]).body(sql.to_owned())).await?;
        String::from_utf8(body.to_vec()).map_err(|e| ClickHouseError::Decode(e.to_string()))
    }

    /// Runs a `SELECT` (without a FORMAT clause; `FORMAT JSON` is appended) and decodes the
    /// rows of its `data`. 64-bit integers come as JSON numbers (`output_format_json_quote_64bit_integers=0`).
    pub async fn query_json<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        let body = self
            .send(
                self.request(reqwest::Method::POST, "/", &[("wait_end_of_query", "1"), ("output_format_json_quote_64bit_integers", "0")])
                    .body(format!("{} FORMAT JSON", sql.trim_end().trim_end_matches(';'))),
            )
            .await?;
        let answer: JsonAnswer<T> = serde_json::from_slice(&body).map_err(|e| ClickHouseError::Decode(e.to_string()))?;
        Ok(answer.data)
    }

    /// Inserts rows into `table` (a name in the configured database, unquoted) as `JSONEachRow`,
    /// one request for all of them. Columns missing from a row take their defaults.
    pub async fn insert_json_rows<R: Serialize>(&self, table: &str, rows: impl IntoIterator<Item = R>) -> Result<u64, ClickHouseError> {
        let mut body = Vec::with_capacity(4096);
        let mut count = 0;
        for row in rows {
            serde_json::to_writer(&mut body, &row)?;
            body.push(b'\n');
            count += 1;
        }
        if count > 0 {
            self.insert_json_lines(table, body).await?;
        }
        Ok(count)
    }

    /// Inserts already encoded `JSONEachRow` lines (one JSON object per line) into `table`.
    pub async fn insert_json_lines(&self, table: &str, lines: impl Into<reqwest::Body>) -> Result<(), ClickHouseError> {
        let query = format!("INSERT INTO {} FORMAT JSONEachRow", self.table(table));
        // Inserts go whole or not at all: the server parses and writes the body as one block
        // when it is under max_insert_block_size (1,048,576 rows), which the sink's pages are.
        self.send(self.request(reqwest::Method::POST, "/", &[("query", &query), ("input_format_skip_unknown_fields", "0")]).body(lines))
            .await
            .map(drop)
    }

    /// `SELECT version()`.
    pub async fn version(&self) -> Result<ServerVersion, ClickHouseError> {
        let text = self.query_text("SELECT version()").await?;
        ServerVersion::parse(&text).ok_or_else(|| ClickHouseError::Decode(format!("version() answered {text:?}")))
    }
}

/// `%40` → `@`: the URL keeps user and password percent-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses ClickHouse's error body: `Code: 60, e.displayText() = DB::Exception: Table x doesn't exist, e.what() = DB::Exception`.
fn server_error(status: u16, text: &str) -> ClickHouseError {
    let code = text.strip_prefix("Code: ").and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()).and_then(|c| c.parse().ok());
    let message = text
        .split_once("DB::Exception: ")
        .map(|(_, m)| m.split(", e.what() = ").next().unwrap_or(m))
        .unwrap_or(text)
        .chars()
        .take(2000)
        .collect();
    ClickHouseError::Server { status, code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_what_would_end_or_bend_a_literal() {
        assert_eq!(quote("latte"), "'latte'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("o'clock"), r"'o\'clock'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(quote("x\\'; DROP TABLE t; --"), r"'x\\\'; DROP TABLE t; --'");
        assert_eq!(quote("line\nnext\ttab\r\0"), r"'line\nnext\ttab\r\0'");
        assert_eq!(quote("café ☕"), "'café ☕'");
    }

    #[test]
    fn quote_ident_uses_backquotes() {
        assert_eq!(quote_ident("coffee_rt"), "`coffee_rt`");
        assert_eq!(quote_ident("we`ird"), r"`we\`ird`");
        assert_eq!(quote_ident(r"back\slash"), r"`back\\slash`");
    }

    #[test]
    fn server_errors_carry_their_code_and_are_retriable_by_it() {
        let e = server_error(404, "Code: 60, e.displayText() = DB::Exception: Table a.b doesn't exist., e.what() = DB::Exception");
        assert_eq!(e.code(), Some(60));
        assert!(e.to_string().contains("Table a.b doesn't exist"), "{e}");
        assert!(!e.is_retriable());
        assert!(!server_error(400, "Code: 62, e.displayText() = DB::Exception: Syntax error").is_retriable());
        // A SQL error ClickHouse 18.16 reports as 500 is still not retriable: the code decides.
        assert!(!server_error(500, "Code: 27, e.displayText() = DB::Exception: Cannot parse input").is_retriable());
        assert!(server_error(500, "Code: 241, e.displayText() = DB::Exception: Memory limit exceeded").is_retriable());
        assert!(server_error(500, "Code: 252, e.displayText() = DB::Exception: Too many parts").is_retriable());
        assert!(server_error(502, "Bad Gateway").is_retriable());
        assert!(server_error(503, "").is_retriable());
        assert!(!server_error(403, "forbidden").is_retriable());
    }

    #[test]
    fn versions_parse_and_know_ttl() {
        let v = ServerVersion::parse("18.16.1\n").unwrap();
        assert_eq!(v, ServerVersion { major: 18, minor: 16, patch: 1 });
        assert!(!v.supports_ttl());
        assert!(ServerVersion::parse("19.6.2.11").unwrap().supports_ttl());
        assert!(ServerVersion::parse("24.8.4.13").unwrap().supports_ttl());
        assert_eq!(ServerVersion::parse("nonsense"), None);
    }

    #[test]
    fn credentials_leave_the_url_and_become_basic_auth() {
        let ch = ClickHouse::new(&ClickHouseConfig { url: "http://u:p%40ss@127.0.0.1:8123/".into(), database: "db".into() }).unwrap();
        assert_eq!(ch.url(), "http://127.0.0.1:8123/");
        assert_eq!(ch.auth, Some(("u".to_owned(), Some("p@ss".to_owned()))));
        assert_eq!(ch.table("orders"), "`db`.`orders`");
        assert!(ClickHouse::new(&ClickHouseConfig { url: "postgres://x".into(), database: "db".into() }).is_err());
    }
}
