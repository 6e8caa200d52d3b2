//! The open-loop schedule: request `i` is *intended* to start at `start + i / rate`,
//! whatever happened to earlier requests. Latency is measured from that intended time,
//! so a server that stalls cannot make the generator wait politely and hide its queue
//! (coordinated omission).

use std::time::Duration;

/// Fixed intended send times for `rate` requests/s during `duration`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
    total: u64,
}

impl Schedule {
    /// `rate` must be > 0. The schedule holds `floor(rate × duration)` requests (at least one).
    pub fn new(rate: f64, duration: Duration) -> Self {
        assert!(rate > 0.0 && rate.is_finite(), "rate must be a positive number");
        let total = ((rate * duration.as_secs_f64()).floor() as u64).max(1);
        Self { rate, total }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// How many requests the schedule holds.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Offset of request `i` from the start of the run. Computed from `i` directly rather than
    /// by adding intervals, so rounding never accumulates into drift over a long run.
    pub fn offset(&self, i: u64) -> Duration {
        Duration::from_nanos((i as f64 * 1e9 / self.rate).round() as u64)
    }

    /// The planned length of the run (intended time of the last request plus one interval).
    pub fn span(&self) -> Duration {
        self.offset(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_offsets() {
        let s = Schedule::new(1000.0, Duration::from_secs(2));
        assert_eq!(s.total(), 2000);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(1));
        assert_eq!(s.offset(1999), Duration::from_millis(1999));
        assert_eq!(s.span(), Duration::from_secs(2));
    }

    #[test]
    fn no_drift_at_odd_rates() {
        let s = Schedule::new(3.0, Duration::from_secs(3600));
        assert_eq!(s.total(), 10_800);
        // 3/s: request 10_799 is intended at 3599.666… s, not shifted by accumulated rounding.
        let off = s.offset(10_799).as_secs_f64();
        assert!((off - 3_599.666_666_667).abs() < 1e-6, "{off}");
    }

    #[test]
    fn tiny_runs_still_send_one_request() {
        assert_eq!(Schedule::new(0.5, Duration::from_secs(1)).total(), 1);
    }
}
