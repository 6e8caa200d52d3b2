//! The raw ceilings of the parts, and the generator's calibration against the HTTP layer.

use std::time::Duration;

use serde::Serialize;

use super::load::ConnectionModel;

/// One measured ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// e.g. `postgres_insert`.
    pub name: String,
    /// Items per second (rows, entries, messages or requests).
    pub per_second: f64,
    pub unit: String,
    /// Items completed during the measurement.
    pub items: u64,
    pub seconds: f64,
    /// How it was measured (batch size, concurrency, target), for SCALE.md.
    pub method: String,
    /// True when the part was never driven to its limit (the highest step still held), so
    /// the number is only a lower bound.
    pub lower_bound: bool,
}

impl Ceiling {
    /// `items` done in `elapsed`: the rate, rounded to whole items per second.
    pub fn new(name: &str, unit: &str, items: u64, elapsed: Duration, method: String) -> Self {
        let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Self {
            name: name.into(),
            per_second: (items as f64 / seconds).round(),
            unit: unit.into(),
            items,
            seconds: (seconds * 1000.0).round() / 1000.0,
            method,
            lower_bound: false,
        }
    }
}

/// A ceiling, or why it could not be measured.
#[derive(Debug, Clone, Serialize)]
pub struct CeilingResult {
    pub name: String,
    pub ceiling: Option<Ceiling>,
    pub error: Option<String>,
}

impl CeilingResult {
    pub fn of(name: &str, r: anyhow::Result<Ceiling>) -> Self {
        match r {
            Ok(c) => CeilingResult { name: name.into(), ceiling: Some(c), error: None },
            Err(e) => CeilingResult { name: name.into(), ceiling: None, error: Some(format!("{e:#}")) },
        }
    }
}

/// One step of the generator's calibration.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationStep {
    pub offered: f64,
    pub achieved: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// CPU of the load generator (this process) per request sent, µs.
    pub generator_cpu_us_per_request: Option<f64>,
    /// CPU of the server (`coffee-rt`) per request, µs.
    pub server_cpu_us_per_request: Option<f64>,
}

/// The calibration: the ceiling, and every step that led to it.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub ceiling: Ceiling,
    pub model: ConnectionModel,
    pub steps: Vec<CalibrationStep>,
}

impl Calibration {
    /// The generator's CPU per request, median over the steps that held.
    pub fn generator_cpu_us_per_request(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.steps.iter().filter(|s| s.errors == 0).filter_map(|s| s.generator_cpu_us_per_request).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
}
