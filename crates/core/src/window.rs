//! How far from the server's clock an order's own time may be when a client posts it.
//!
//! A timestamp in year 1900 or 9999 parses as RFC 3339 and would land in an hourly bucket
//! nobody looks at, inflating the totals with an order no café took. The API refuses such
//! times; the logs' readers (v2 worker, v3 processor) never apply the window, because an entry
//! accepted inside it may be read back much later from a backlog.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::ValidationError;

/// The accepted range of `ordered_at` around the server's clock at acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderWindow {
    /// How far ahead of the server's clock an order may be (clients' clocks drift).
    pub max_future: Duration,
    /// How old an order may be (a till that was offline and posts its backlog).
    pub max_age: Duration,
}

impl Default for OrderWindow {
    fn default() -> Self {
        OrderWindow { max_future: Duration::from_secs(5 * 60), max_age: Duration::from_secs(30 * 24 * 3600) }
    }
}

impl OrderWindow {
    /// A window that refuses nothing a `DateTime` can hold: for tests and imports of history.
    pub const UNBOUNDED: OrderWindow = OrderWindow { max_future: Duration::MAX, max_age: Duration::MAX };

    /// Whether `ordered_at` is within the window around `now`; the error names `timestamp`.
    pub fn check(&self, ordered_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ValidationError> {
        // The difference of two `DateTime`s always fits in a `TimeDelta`; a sum could overflow.
        let ahead = ordered_at.signed_duration_since(now);
        if ahead > delta(self.max_future) {
            return Err(ValidationError::new(
                "timestamp",
                format!("is more than {} ahead of the server's clock ({})", humantime::format_duration(self.max_future), now.to_rfc3339()),
            ));
        }
        if -ahead > delta(self.max_age) {
            return Err(ValidationError::new(
                "timestamp",
                format!("is more than {} before the server's clock ({})", humantime::format_duration(self.max_age), now.to_rfc3339()),
            ));
        }
        Ok(())
    }
}

/// `d` as a `TimeDelta`, saturating: a window too wide to express is no bound at all.
fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_default_window_is_five_minutes_ahead_and_thirty_days_back() {
        let now = at("2026-06-01T12:00:00Z");
        let w = OrderWindow::default();
        for ok in ["2026-06-01T12:05:00Z", "2026-05-02T12:00:00Z", "2026-05-31T12:00:00Z", "2026-06-01T12:00:00Z"] {
            assert_eq!(w.check(at(ok), now), Ok(()), "{ok}");
        }
        for bad in ["2026-06-01T12:05:00.001Z", "2026-05-02T11:59:59Z", "1900-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            let e = w.check(at(bad), now).unwrap_err();
            assert_eq!(e.field, "timestamp", "{bad}");
        }
        assert!(w.check(at("2026-06-01T12:10:00Z"), now).unwrap_err().message.contains("5m ahead"));
        assert!(w.check(at("2026-04-01T12:00:00Z"), now).unwrap_err().message.contains("30days before"));
    }

    #[test]
    fn an_unbounded_window_takes_any_time_without_overflow() {
        let now = at("2026-06-01T12:00:00Z");
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            assert_eq!(OrderWindow::UNBOUNDED.check(t, now), Ok(()));
            assert!(OrderWindow::default().check(t, now).is_err());
        }
    }
}
