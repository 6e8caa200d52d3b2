//! What the lab measured, as plain data: the runners fill these types, [`crate::report`]
//! renders them, and `scale-results.json` is their serialisation. Nothing here imports a runner
//! or the report; the only logic is what a result says about itself (did a step hold, where a
//! path broke).

pub mod aggregator;
pub mod analytics;
pub mod backlog;
pub mod breaks;
pub mod ceilings;
pub mod dashboard;
pub mod load;
pub mod scale_out;
pub mod sweep;

use std::time::Duration;

/// Durations in the JSON are seconds.
pub(crate) fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
