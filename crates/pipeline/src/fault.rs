//! Fault injection for the crash tests.
//!
//! `COFFEE_RT_CRASH_AFTER_COMMIT=N` makes a v2 worker or v3 processor abort the whole process
//! (no destructors, no flush, like SIGKILL) right after its N-th PostgreSQL commit and before
//! Redis or the log hear about it: the exact window in which "committed but not acknowledged"
//! must not turn into "counted twice". Unset, it costs one relaxed atomic load per batch.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

static COMMITS: AtomicU64 = AtomicU64::new(0);

fn crash_at() -> Option<u64> {
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    *AT.get_or_init(|| std::env::var("COFFEE_RT_CRASH_AFTER_COMMIT").ok().and_then(|v| v.parse().ok()))
}

/// Call right after a sink commit.
pub fn after_commit() {
    if let Some(at) = crash_at()
        && COMMITS.fetch_add(1, Ordering::Relaxed) + 1 >= at
    {
        eprintln!("fault injection: aborting after commit {at}");
        std::process::abort();
    }
}
