//! The three ingestion paths, as the CLI and the reports name them.

use std::fmt;

use serde::Serialize;

/// One of the server's ingestion paths: `/api/v1/order`, `/api/v2/order`, `/api/v3/order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    V1,
    V2,
    V3,
}

impl ApiVersion {
    pub const ALL: [ApiVersion; 3] = [ApiVersion::V1, ApiVersion::V2, ApiVersion::V3];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
            ApiVersion::V3 => "v3",
        }
    }

    /// The order endpoint of this path under a server base URL (`http://host:port`).
    pub fn order_url(self, base: &str) -> String {
        format!("{}/api/{}/order", base.trim_end_matches('/'), self.as_str())
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
