//! Freshness of a load run, from the server's own per-order measurement.
//!
//! The server observes, per order, the delay from the API accepting it to the order being
//! counted in the Redis metrics, into the histogram `coffee_rt_order_freshness_seconds{version}`.
//! A run's freshness is that histogram after the run minus before it, once the pipeline has
//! drained (the `_count` reached the number of accepted orders, or stopped growing).
//! This never watches a shared counter, which other traffic would contaminate.

use std::time::Duration;

use http::Uri;
use tokio::time::Instant;

use super::client::HttpClient;
use crate::ApiVersion;
use crate::prom::{self, HistogramSnapshot};
use crate::results::load::{FreshnessMs, round3};

/// The server's per-order freshness histogram (seconds), labelled `version`.
pub const FRESHNESS_METRIC: &str = "coffee_rt_order_freshness_seconds";

/// How long to wait for orders still in the pipeline after the last response.
#[derive(Debug, Clone, Copy)]
pub struct DrainPolicy {
    /// Give up after this long (the backlog did not drain).
    pub max_wait: Duration,
    /// Stop once `_count` has grown and then not grown for this long.
    pub idle: Duration,
    /// Stop this soon if `/metrics` has no freshness series at all (for any version): the
    /// server does not export it, and waiting the full `max_wait` would learn nothing.
    pub absent_wait: Duration,
    pub poll: Duration,
}

impl Default for DrainPolicy {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(30),
            idle: Duration::from_secs(3),
            absent_wait: Duration::from_secs(10),
            poll: Duration::from_millis(250),
        }
    }
}

/// Freshness over one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreshnessResult {
    /// `None` when the server observed no order of this version during the run.
    pub ms: Option<FreshnessMs>,
    /// Orders the server counted during the run and the drain.
    pub counted: u64,
    /// Whether `counted` reached the number of accepted orders before the drain gave up.
    pub drained: bool,
    /// Time spent waiting after the run.
    pub drain_wait: Duration,
}

/// Reads the freshness histogram of one version from `GET {base}/metrics`.
#[derive(Clone)]
pub struct FreshnessProbe {
    client: HttpClient,
    metrics: Uri,
    version: ApiVersion,
}

impl FreshnessProbe {
    pub fn new(client: HttpClient, base_url: &str, version: ApiVersion) -> anyhow::Result<Self> {
        let metrics = format!("{}/metrics", base_url.trim_end_matches('/')).parse()?;
        Ok(Self { client, metrics, version })
    }

    /// The base URL whose `/metrics` this probe reads.
    pub fn base(&self) -> String {
        self.metrics.to_string().trim_end_matches("/metrics").to_owned()
    }

    /// The histogram now: `Err` if `/metrics` cannot be read, `Ok(None)` if the series does
    /// not exist yet (a labelled histogram appears with its first observation).
    pub async fn snapshot(&self) -> anyhow::Result<Option<HistogramSnapshot>> {
        Ok(self.read().await?.1)
    }

    /// Whether any series of the freshness histogram exists (any version), and this version's.
    async fn read(&self) -> anyhow::Result<(bool, Option<HistogramSnapshot>)> {
        let text = self.client.get_text(self.metrics.clone()).await?;
        let samples = prom::parse(&text);
        let family = samples.iter().any(|s| s.name.starts_with(FRESHNESS_METRIC));
        Ok((family, HistogramSnapshot::from_samples(&samples, FRESHNESS_METRIC, &[("version", self.version.as_str())])))
    }

    /// Wait for the pipeline to drain, then compute the run's freshness against `before`.
    /// `Ok(None)` when the server exports no freshness histogram at all.
    pub async fn measure(
        &self,
        before: Option<&HistogramSnapshot>,
        accepted: u64,
        policy: DrainPolicy,
    ) -> anyhow::Result<Option<FreshnessResult>> {
        self.measure_since(before, before, accepted, policy).await
    }

    /// [`Self::measure`] for a run with a warm-up: the drain counts from `count_from` (before
    /// the warm-up, so every order of the run, warm-up included, must be counted: `accepted`
    /// is all of them), and the percentiles are of what was counted after `quantiles_from`
    /// (when the measured part began).
    pub async fn measure_since(
        &self,
        count_from: Option<&HistogramSnapshot>,
        quantiles_from: Option<&HistogramSnapshot>,
        accepted: u64,
        policy: DrainPolicy,
    ) -> anyhow::Result<Option<FreshnessResult>> {
        let empty = HistogramSnapshot::default();
        let before = count_from.unwrap_or(&empty);
        let quantiles_from = quantiles_from.unwrap_or(&empty);
        let started = Instant::now();
        let mut last_count = 0.0;
        let mut last_growth: Option<Instant> = None;
        let (delta, last_snap) = loop {
            let (family, now_snap) = self.read().await?;
            let snap = now_snap.unwrap_or_default();
            let delta = snap.since(before);
            let now = Instant::now();
            if !family && (now - started >= policy.absent_wait || accepted == 0) {
                return Ok(None);
            }
            if delta.count >= accepted as f64 {
                break (delta, snap);
            }
            if delta.count > last_count {
                last_count = delta.count;
                last_growth = Some(now);
            }
            let stalled = last_growth.is_some_and(|t| now - t >= policy.idle);
            if stalled || now - started >= policy.max_wait {
                break (delta, snap);
            }
            tokio::time::sleep(policy.poll).await;
        };
        let counted = delta.count.round() as u64;
        let measured = last_snap.since(quantiles_from);
        let ms = match (measured.quantile(0.5), measured.quantile(0.99)) {
            (Some(p50), Some(p99)) => {
                Some(FreshnessMs { p50: round3(p50 * 1000.0), p99: round3(p99 * 1000.0), orders: measured.count.round() as u64 })
            }
            _ => None,
        };
        Ok(Some(FreshnessResult { ms, counted, drained: counted >= accepted, drain_wait: started.elapsed() }))
    }
}
