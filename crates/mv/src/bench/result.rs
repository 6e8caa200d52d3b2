//! What one strategy's bench run measured: the JSON line each child prints
//! and docs/MARKET_VALUE.md keeps.

use super::pace::Percentiles;
use serde::{Deserialize, Serialize};

/// One paced run at a multiple of the paper's update rate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RateRun {
    pub rate_x: f64,
    pub offered_per_s: f64,
    pub achieved_per_s: f64,
    pub updates: u64,
    pub latency_ms: Percentiles,
    pub output_msgs_per_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StrategyResult {
    pub strategy: String,
    pub scale: f64,
    /// Resident set of the strategy's own process after rebuild and runs.
    pub rss_mb: f64,
    /// RSS growth caused by building the state (RSS after − before rebuild).
    pub state_mb: f64,
    /// Peak RSS of the process (includes transient load buffers).
    pub peak_rss_mb: f64,
    /// Latency at 10× the paper's rate (A: update applied and its account
    /// changes shipped; B: update published to overview received by a
    /// WebSocket client).
    pub update_latency_ms: Percentiles,
    /// Saturation throughput: updates applied back to back.
    pub updates_per_s: f64,
    /// Output messages per second during the 10× run.
    pub output_msgs_per_s: f64,
    pub rebuild_s: f64,
    pub rebuild_pg_or_gen_s: f64,
    pub rebuild_topic_s: f64,
    pub rebuild_topic_events: u64,
    pub source: String,
    pub accounts: u32,
    pub instruments: u32,
    pub holdings: u64,
    pub orders: u64,
    pub runs: Vec<RateRun>,
    /// B only: on-demand `GET /api/accounts/{id}/overview`, client-side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overview_get_ms: Option<Percentiles>,
    /// B only: WebSocket subscriptions (accounts watched) during the runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched_accounts: Option<u32>,
    pub command: String,
    pub machine: String,
    /// Load averages (1/5/15 min) when the strategy finished.
    #[serde(default)]
    pub load_avg: String,
}
