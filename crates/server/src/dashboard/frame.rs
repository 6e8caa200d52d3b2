//! The JSON frames the WebSocket sends.
//!
//! A snapshot carries, per version, exactly what `GET /api/dashboard` returns plus that path's
//! freshness summary, and the orders/s series. Names from the catalog and orders travel as JSON
//! strings; the page puts them in the DOM with `textContent` only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffee_pipeline::freshness::{self, Summary};
use coffee_store::VersionSnapshot;
use serde::Serialize;

use super::series::RatesFrame;

pub const HEARTBEAT: &str = r#"{"type":"heartbeat"}"#;

#[derive(Serialize)]
pub struct Snapshot<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Increases by one per pushed snapshot, so a client can tell it skipped some.
    pub seq: u64,
    pub generated_at: DateTime<Utc>,
    pub versions: BTreeMap<&'static str, VersionView>,
    pub freshness_window_s: u64,
    pub rates: &'a RatesFrame,
}

#[derive(Serialize)]
pub struct VersionView {
    #[serde(flatten)]
    pub metrics: VersionSnapshot,
    pub freshness: Summary,
}

/// What decides whether a rebuilt snapshot is worth pushing: the projection was written, the
/// freshness window took samples or the rate chart moved. Clock-derived fields (`age_ms`,
/// `generated_at`) are left out, so an idle system pushes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub written: Vec<(Option<DateTime<Utc>>, i64, i64)>,
    pub current_hour: String,
    pub freshness: u64,
    pub rates: u64,
}

impl Fingerprint {
    pub fn of(versions: &[VersionSnapshot], rates_generation: u64) -> Fingerprint {
        Fingerprint {
            written: versions.iter().map(|v| (v.updated_at, v.total_orders, v.total_revenue_cents)).collect(),
            current_hour: versions.first().map(|v| v.current_hour.name.clone()).unwrap_or_default(),
            freshness: freshness::generation(),
            rates: rates_generation,
        }
    }
}
