//! Each part's raw ceiling on this machine, and each path as a fraction of its real limit.

use std::fmt::Write;

use crate::ApiVersion;
use crate::report::format::{percent, table};
use crate::results::sweep::SweepReport;

/// The ingest part each path writes to synchronously, whose ceiling bounds it.
pub fn ingest_ceiling_of(version: ApiVersion) -> &'static str {
    match version {
        ApiVersion::V1 => "postgres_insert",
        ApiVersion::V2 => "redis_xadd",
        ApiVersion::V3 => "kafka_produce",
    }
}

/// The raw ceilings, and how each was measured.
pub(super) fn ceilings(w: &mut String, report: &SweepReport) {
    let _ = writeln!(w, "## Raw ceilings on this machine\n");
    let mut t = table(&["part", "ceiling", "unit", "how"]);
    if report.ceilings.is_empty() {
        t.add_row(vec!["—", "—", "", "not measured in this run (--no-ceilings)"]);
    }
    for c in &report.ceilings {
        match (&c.ceiling, &c.error) {
            (Some(x), _) => t.add_row(vec![
                x.name.clone(),
                format!("{}{:.0}", if x.lower_bound { "≥ " } else { "" }, x.per_second),
                x.unit.clone(),
                x.method.clone(),
            ]),
            (None, e) => t.add_row(vec![c.name.clone(), "—".into(), String::new(), e.clone().unwrap_or_default()]),
        };
    }
    let _ = writeln!(w, "{t}\n");
}

/// Each path's highest sustained rate against the lower of its HTTP and ingest ceilings.
pub(super) fn against_limits(w: &mut String, report: &SweepReport) {
    let _ = writeln!(w, "## Each path against its real limit\n");
    let _ = writeln!(
        w,
        "A path's limit is the lower of the HTTP layer's ceiling and the ceiling of the part it writes to before answering (v1: PostgreSQL insert, v2: Redis XADD, v3: Kafka produce).\n"
    );
    let mut t = table(&["path", "max sustained/s", "HTTP ceiling/s", "ingest part", "ingest ceiling/s", "fraction of limit"]);
    for path in &report.paths {
        let http = report.ceiling("http_validation");
        let ingest_name = ingest_ceiling_of(path.version);
        let ingest = report.ceiling(ingest_name);
        let limit = [http, ingest].into_iter().flatten().fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.min(c))));
        let fraction = match (path.max_sustained, limit) {
            (Some(s), Some(l)) if l > 0.0 => percent(100.0 * s / l),
            _ => "—".into(),
        };
        t.add_row(vec![
            path.version.to_string(),
            path.max_sustained.map_or("none".into(), |r| format!("{r:.0}")),
            http.map_or("—".into(), |c| format!("{c:.0}")),
            ingest_name.to_string(),
            ingest.map_or("—".into(), |c| format!("{c:.0}")),
            fraction,
        ]);
    }
    let _ = writeln!(w, "{t}\n");
}
