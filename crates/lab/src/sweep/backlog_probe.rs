//! The server's backlog, read while a step runs, so the sweep sees a pipeline falling
//! behind even while the API still answers fast.
//!
//! How a path exposes its queue is the server's business, so the source is a trait object;
//! [`MetricsGaugeProbe`] covers the common case of a gauge on `/metrics`, and a test can plug
//! in another.

use std::collections::BTreeMap;

use async_trait::async_trait;
use http::Uri;

use crate::ApiVersion;
use crate::load::client::HttpClient;
use crate::prom;

/// A source of "how many orders are waiting to be processed" for a path.
#[async_trait]
pub trait BacklogProbe: Send + Sync {
    /// The backlog of `version`'s pipeline now; `Ok(None)` if this probe has no measure
    /// for that path (then only freshness and the drain judge its backlog).
    async fn backlog(&self, version: ApiVersion) -> anyhow::Result<Option<f64>>;

    /// A short description for SCALE.md, e.g. `v2: coffee_rt_v2_consumer_lag_entries`.
    fn describe(&self) -> String;
}

/// Reads one gauge per path from `GET {url}/metrics` (summed over its label sets).
pub struct MetricsGaugeProbe {
    client: HttpClient,
    metrics: Uri,
    gauges: BTreeMap<ApiVersion, String>,
}

impl MetricsGaugeProbe {
    pub fn new(base_url: &str, gauges: BTreeMap<ApiVersion, String>) -> anyhow::Result<Self> {
        Ok(Self { client: HttpClient::new(), metrics: format!("{}/metrics", base_url.trim_end_matches('/')).parse()?, gauges })
    }

    /// The gauges the sweep looks for unless told otherwise.
    pub fn default_gauges() -> BTreeMap<ApiVersion, String> {
        BTreeMap::from([
            (ApiVersion::V2, "coffee_rt_v2_consumer_lag_entries".to_string()),
            (ApiVersion::V3, "coffee_rt_v3_consumer_lag_records".to_string()),
        ])
    }
}

#[async_trait]
impl BacklogProbe for MetricsGaugeProbe {
    async fn backlog(&self, version: ApiVersion) -> anyhow::Result<Option<f64>> {
        let Some(name) = self.gauges.get(&version) else {
            return Ok(None);
        };
        let text = self.client.get_text(self.metrics.clone()).await?;
        Ok(prom::gauge(&prom::parse(&text), name, &[]))
    }

    fn describe(&self) -> String {
        if self.gauges.is_empty() {
            return "none".into();
        }
        let parts: Vec<String> = self.gauges.iter().map(|(v, g)| format!("{v}: `{g}`")).collect();
        format!("gauges on /metrics — {}", parts.join(", "))
    }
}
