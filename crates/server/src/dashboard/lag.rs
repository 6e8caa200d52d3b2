//! How stale the dashboard is: the newest order this process accepted against the newest one
//! the projection has counted, per path. Published as `coffee_rt_freshness_lag_seconds`, the
//! signal that keeps growing when a worker or processor stops while orders still arrive (the
//! freshness histogram then simply gets no samples).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use coffee_core::Version;

/// Per path, the first and the newest acknowledgement time (ms since the epoch; 0 = none).
#[derive(Default)]
pub struct Accepted {
    first: [AtomicI64; 3],
    newest: [AtomicI64; 3],
}

fn index(v: Version) -> usize {
    match v {
        Version::V1 => 0,
        Version::V2 => 1,
        Version::V3 => 2,
    }
}

impl Accepted {
    /// Called once per acknowledged order.
    pub fn record(&self, version: Version, accepted_at: DateTime<Utc>) {
        let ms = accepted_at.timestamp_millis();
        let i = index(version);
        self.newest[i].fetch_max(ms, Ordering::Relaxed);
        let _ = self.first[i].compare_exchange(0, ms, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Zero when the projection has counted everything this process accepted; otherwise the
    /// time since the newest counted order (or, if none was counted yet, since the first one
    /// accepted): an upper bound on how old the dashboard's view is.
    pub fn lag_seconds(&self, version: Version, counted_newest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
        let i = index(version);
        let newest = self.newest[i].load(Ordering::Relaxed);
        let counted = counted_newest.map(|t| t.timestamp_millis()).unwrap_or(0);
        if newest == 0 || newest <= counted {
            return 0.0;
        }
        let since = counted.max(self.first[i].load(Ordering::Relaxed));
        ((now.timestamp_millis() - since).max(0) as f64) / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use coffee_core::Version;

    use super::Accepted;

    #[test]
    fn lag_grows_only_while_accepted_orders_are_uncounted() {
        let t = |s: i64| Utc.timestamp_opt(1_767_225_600 + s, 0).unwrap();
        let a = Accepted::default();
        assert_eq!(a.lag_seconds(Version::V3, None, t(10)), 0.0);
        a.record(Version::V3, t(0));
        a.record(Version::V3, t(4));
        assert_eq!(a.lag_seconds(Version::V3, None, t(10)), 10.0);
        assert_eq!(a.lag_seconds(Version::V3, Some(t(2)), t(10)), 8.0);
        assert_eq!(a.lag_seconds(Version::V3, Some(t(4)), t(10)), 0.0);
        assert_eq!(a.lag_seconds(Version::V2, None, t(10)), 0.0);
    }
}
