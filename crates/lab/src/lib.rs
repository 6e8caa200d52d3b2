//! coffee-lab: the load lab that finds where each coffee-rt ingestion path breaks.
//!
//! * [`load`] — an open-loop load generator (`coffee-rt load ...`).
//! * [`sweep`] — steps the offered rate per path until it breaks (`coffee-rt bench sweep ...`)
//!   and writes `docs/SCALE.md` with SVG plots.
//! * [`aggregator`] — the v1 aggregator's full-recompute time against table size
//!   (`coffee-rt bench aggregator`, and part of the sweep).
//! * [`ceilings`] — raw limits of the parts on this machine (PostgreSQL, Redis, Kafka, HTTP),
//!   so each path can be reported as a fraction of its real limit.
//!
//! Pure logic (schedule, percentiles, Prometheus parsing, break detection) has no IO and is
//! unit tested; IO lives in small modules around it.

pub mod aggregator;
pub mod api_version;
pub mod ceilings;
pub mod freshness;
pub mod load;
pub mod oha;
pub mod order;
pub mod plot;
pub mod procs;
pub mod prom;
pub mod report;
pub mod sweep;

pub use api_version::ApiVersion;
pub use load::{LoadArgs, run_load};
pub use report::LoadReport;

pub use sweep::{BenchCommand, SweepArgs, run_bench, run_sweep};
