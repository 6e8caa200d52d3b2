//! What a soak found, as data: the results file (`docs/soak-results.json`) and the verdict.

use std::collections::BTreeMap;

use serde::Serialize;

use super::audit::{Drift, OrderCheck};
use super::drain::DrainReport;
use super::ledger::PathStats;
use super::plan::FaultKind;
use super::sampler::{Series, Summary};
use crate::ApiVersion;

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// Seconds since the load started.
    pub at_s: f64,
    pub kind: FaultKind,
    /// The process hit: `worker-1`, `processor-0`, `redis`, `postgres`, `kafka`.
    pub target: String,
    /// Its pid before the fault.
    pub pid: Option<u32>,
    /// How long a killed role was left down before it was started again.
    pub pause_s: f64,
    /// From the fault to the process running again (a server: answering again).
    pub down_s: f64,
    /// What went unlike the plan, e.g. a server that did not stop within its grace period and
    /// was killed instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl FaultRecord {
    pub fn planned(at_s: f64, kind: FaultKind, target: &str) -> FaultRecord {
        FaultRecord { at_s, kind, target: target.into(), pid: None, pause_s: 0.0, down_s: 0.0, note: None }
    }
}

/// A role that exited when nobody had stopped it (it was started again).
#[derive(Debug, Clone, Serialize)]
pub struct UnexpectedExit {
    pub at_s: f64,
    pub process: String,
    /// The exit status and the end of its log.
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Closed-loop throughput of the probe (orders/s over all paths); absent with `--rate`.
    pub probe_per_s: Option<f64>,
    /// Orders the probe had acknowledged (they are audited with the others).
    pub probe_acknowledged: u64,
    /// The open loop's rate, over all paths.
    pub offered_per_s: f64,
    pub seconds: f64,
    pub sent: u64,
    /// Orders not offered because the loop was more than a second behind (an outage held
    /// every permit).
    pub skipped: u64,
    pub paths: BTreeMap<ApiVersion, PathStats>,
    /// Orders still unanswered when the wait after the load ended.
    pub unresolved: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub orders: BTreeMap<ApiVersion, OrderCheck>,
    /// Ids on more than one row.
    pub duplicated: u64,
    /// Every Redis value that differs from the recomputation.
    pub drift: Vec<Drift>,
}

impl AuditReport {
    pub fn lost(&self) -> u64 {
        self.orders.values().map(|c| c.missing).sum()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RssReport {
    pub summary: BTreeMap<String, Summary>,
    /// The series as stored here: at most this many points each (bucket peaks).
    pub max_points: usize,
    pub series: BTreeMap<String, Series>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakResults {
    pub command: String,
    pub started_at: String,
    pub passed: bool,
    /// Why not, one line each.
    pub problems: Vec<String>,
    pub seed: u64,
    pub duration_s: f64,
    pub fraction: f64,
    pub redis_persistence: String,
    pub processes: BTreeMap<String, usize>,
    pub machine_cores: usize,
    pub faults_by_kind: BTreeMap<String, usize>,
    pub faults: Vec<FaultRecord>,
    /// Planned faults not injected: slow faults before them had pushed them into the quiet
    /// end of the load.
    pub faults_left_out: usize,
    pub unexpected_exits: Vec<UnexpectedExit>,
    pub load: LoadReport,
    pub drain: DrainReport,
    pub audit: AuditReport,
    /// Whether every role exited cleanly on SIGTERM at the end.
    pub graceful_exit: bool,
    pub rss: RssReport,
}

/// The verdict's reasons: every loss, extra row, mismatch, duplicate, drift and refusal, and a
/// path that saw no acknowledged order (a soak that tested nothing there).
pub fn problems(load: &LoadReport, audit: &AuditReport) -> Vec<String> {
    let mut out = Vec::new();
    for (v, c) in &audit.orders {
        for (n, what) in [
            (c.missing, "acknowledged orders missing from PostgreSQL"),
            (c.extra, "rows never acknowledged"),
            (c.mismatched, "rows unlike the order sent"),
        ] {
            if n > 0 {
                out.push(format!("{v}: {n} {what} (e.g. {})", c.examples.join(", ")));
            }
        }
        if c.acknowledged == 0 {
            out.push(format!("{v}: no order was acknowledged"));
        }
    }
    if audit.duplicated > 0 {
        out.push(format!("{} order ids on more than one row", audit.duplicated));
    }
    for d in &audit.drift {
        let field = if d.field.is_empty() { String::new() } else { format!("[{}]", d.field) };
        out.push(format!("{} {}{field}: Redis {} but PostgreSQL {} ({:+})", d.version, d.metric, d.redis, d.postgres, d.diff));
    }
    for (v, p) in &load.paths {
        for (status, n) in &p.rejected {
            out.push(format!("{v}: {n} orders refused with {status} (the soak sends only valid orders, each body always the same)"));
        }
    }
    out
}

/// `value` as indented JSON with every array of plain numbers or strings on one line: the
/// results file stays readable and diffable without a line per RSS sample.
pub fn to_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_value(value, 0, &mut out);
    out.push('\n');
    out
}

fn write_value(v: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    let pad = |d: usize| "  ".repeat(d);
    match v {
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            out.push_str(&serde_json::to_string(v).expect("JSON values serialize"));
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (k, item) in items.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write_value(item, depth + 1, out);
                out.push_str(if k + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (k, (key, item)) in map.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                out.push_str(&serde_json::to_string(key).expect("a key serializes"));
                out.push_str(": ");
                write_value(item, depth + 1, out);
                out.push_str(if k + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        _ => out.push_str(&serde_json::to_string(v).expect("JSON values serialize")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_of_numbers_stay_on_one_line_and_the_json_reads_back() {
        let v = serde_json::json!({"a": {"t_s": [1.0, 2.5], "names": ["x"]}, "faults": [{"kind": "restart-redis"}], "empty": {}, "e": []});
        let text = to_json(&v);
        assert!(text.contains("\"t_s\": [1.0,2.5]"), "{text}");
        assert!(text.contains("\n  \"faults\": [\n    {\n      \"kind\": \"restart-redis\"\n    }\n  ]"), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
    }
}
