//! Buckets in the café's time zone: where a bucket starts, and how its start is written.
//!
//! The backends never format a time. Each one returns a bucket's *key* ([`RawStart`]): for
//! hour buckets the UTC instant the local clock hour began (`t` minus the local minutes and
//! seconds past the hour), for day and week buckets the local calendar date (of the order, or of
//! the Monday of its ISO week). This module turns a key into the start the API shows, with the
//! zone's offset at that instant, so both backends' answers are written by the same code.
//!
//! Why hours are instants and days are dates: on the autumn change the local hour 02:00 happens
//! twice (Europe/Paris on 2025-10-26: 02:00+02:00, then 02:00+01:00) and the two must stay two
//! buckets; a local date never repeats, and its first instant is decided here, once, including
//! the zones whose clocks jump over midnight (America/Santiago: the day of the spring change
//! starts at 01:00).

use chrono::{DateTime, Datelike, Duration, FixedOffset, LocalResult, NaiveDate, NaiveTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::Bucket;

/// A bucket's key as a backend computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RawStart {
    /// Hour buckets: the UTC instant (Unix seconds) the local clock hour began.
    Instant(i64),
    /// Day and week buckets: the local date of the day (of the Monday, for weeks).
    Date(NaiveDate),
}

impl RawStart {
    /// The bucket's start in `tz`, with the offset in force at that instant.
    pub fn start(self, tz: Tz) -> Option<DateTime<FixedOffset>> {
        match self {
            RawStart::Instant(secs) => DateTime::from_timestamp(secs, 0).map(|t| in_zone(t, tz)),
            RawStart::Date(date) => Some(day_start(date, tz)),
        }
    }
}

/// `t` as the local time of `tz`, with its offset.
pub fn in_zone(t: DateTime<Utc>, tz: Tz) -> DateTime<FixedOffset> {
    t.with_timezone(&tz).fixed_offset()
}

/// The first instant of the local date `date` in `tz`: local midnight, or, where the clocks
/// jump over midnight, the instant of the jump (the first local time that exists that day).
/// On an ambiguous midnight (clocks going back over it) the earlier one.
pub fn day_start(date: NaiveDate, tz: Tz) -> DateTime<FixedOffset> {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(t) => t.fixed_offset(),
        LocalResult::Ambiguous(earlier, _) => earlier.fixed_offset(),
        LocalResult::None => {
            // Midnight falls in a gap: with the offset in force before the jump, local
            // midnight is the instant of the jump itself.
            let before = tz.offset_from_utc_datetime(&(midnight - Duration::days(1))).fix();
            let jump = midnight - Duration::seconds(i64::from(before.local_minus_utc()));
            in_zone(jump.and_utc(), tz)
        }
    }
}

/// The key of the bucket that holds the instant `t`: the reference the backends' SQL follows
/// (and that the tests hold them to).
pub fn raw_start(t: DateTime<Utc>, bucket: Bucket, tz: Tz) -> RawStart {
    let local = t.with_timezone(&tz);
    match bucket {
        Bucket::Hour => RawStart::Instant(t.timestamp() - i64::from(local.minute() * 60 + local.second())),
        Bucket::Day => RawStart::Date(local.date_naive()),
        Bucket::Week => {
            let date = local.date_naive();
            RawStart::Date(date - Duration::days(i64::from(date.weekday().num_days_from_monday())))
        }
    }
}

/// The start, in `tz`, of the bucket that holds `t`.
pub fn bucket_start(t: DateTime<Utc>, bucket: Bucket, tz: Tz) -> DateTime<FixedOffset> {
    raw_start(t, bucket, tz).start(tz).expect("an instant chrono holds")
}

#[cfg(test)]
mod tests {
    use chrono_tz::{America, Asia, Europe, UTC};

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn starts(tz: Tz, bucket: Bucket, from: &str, to: &str) -> Vec<String> {
        // Every bucket start met by minute-by-minute instants over [from, to).
        let (from, to) = (utc(from), utc(to));
        let mut out: Vec<String> = Vec::new();
        let mut t = from;
        while t < to {
            let s = bucket_start(t, bucket, tz).to_rfc3339();
            if out.last() != Some(&s) {
                out.push(s);
            }
            t += Duration::minutes(1);
        }
        out
    }

    #[test]
    fn paris_spring_day_has_23_hours_and_no_two_oclock() {
        let hours = starts(Europe::Paris, Bucket::Hour, "2025-03-29T23:00:00Z", "2025-03-30T22:00:00Z");
        assert_eq!(hours.len(), 23, "{hours:#?}");
        assert_eq!(hours[0], "2025-03-30T00:00:00+01:00");
        assert_eq!(hours[1], "2025-03-30T01:00:00+01:00");
        assert_eq!(hours[2], "2025-03-30T03:00:00+02:00", "02:00 does not exist that night");
        assert_eq!(hours[22], "2025-03-30T23:00:00+02:00");
        let days = starts(Europe::Paris, Bucket::Day, "2025-03-29T23:00:00Z", "2025-03-31T00:00:00Z");
        assert_eq!(days, ["2025-03-30T00:00:00+01:00", "2025-03-31T00:00:00+02:00"]);
        let length = day_start(NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(), Europe::Paris)
            - day_start(NaiveDate::from_ymd_opt(2025, 3, 30).unwrap(), Europe::Paris);
        assert_eq!(length, Duration::hours(23));
    }

    #[test]
    fn paris_autumn_day_has_25_hours_and_two_oclock_twice() {
        let hours = starts(Europe::Paris, Bucket::Hour, "2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z");
        assert_eq!(hours.len(), 25, "{hours:#?}");
        assert_eq!(hours[0], "2025-10-26T00:00:00+02:00");
        assert_eq!(hours[2], "2025-10-26T02:00:00+02:00");
        assert_eq!(hours[3], "2025-10-26T02:00:00+01:00", "the second 02:00, an hour later");
        assert_eq!(hours[4], "2025-10-26T03:00:00+01:00");
        assert_eq!(hours[24], "2025-10-26T23:00:00+01:00");
        let length = day_start(NaiveDate::from_ymd_opt(2025, 10, 27).unwrap(), Europe::Paris)
            - day_start(NaiveDate::from_ymd_opt(2025, 10, 26).unwrap(), Europe::Paris);
        assert_eq!(length, Duration::hours(25));
        // Both 02:00 hours belong to the same day and the same ISO week (Monday 2025-10-20).
        let (first, second) = (utc("2025-10-26T00:30:00Z"), utc("2025-10-26T01:30:00Z"));
        assert_eq!(bucket_start(first, Bucket::Day, Europe::Paris).to_rfc3339(), "2025-10-26T00:00:00+02:00");
        assert_eq!(bucket_start(second, Bucket::Day, Europe::Paris).to_rfc3339(), "2025-10-26T00:00:00+02:00");
        assert_eq!(bucket_start(second, Bucket::Week, Europe::Paris).to_rfc3339(), "2025-10-20T00:00:00+02:00");
        // The Monday after the change starts with the winter offset.
        assert_eq!(bucket_start(utc("2025-10-27T10:00:00Z"), Bucket::Week, Europe::Paris).to_rfc3339(), "2025-10-27T00:00:00+01:00");
    }

    #[test]
    fn new_york_changes_at_two_in_the_morning() {
        // 2025-03-09: 02:00 EST jumps to 03:00 EDT; 2025-11-02: 02:00 EDT back to 01:00 EST.
        let spring = starts(America::New_York, Bucket::Hour, "2025-03-09T05:00:00Z", "2025-03-10T04:00:00Z");
        assert_eq!(spring.len(), 23);
        assert_eq!(&spring[1..3], ["2025-03-09T01:00:00-05:00", "2025-03-09T03:00:00-04:00"]);
        let autumn = starts(America::New_York, Bucket::Hour, "2025-11-02T04:00:00Z", "2025-11-03T05:00:00Z");
        assert_eq!(autumn.len(), 25);
        assert_eq!(&autumn[1..3], ["2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00"]);
        let days = starts(America::New_York, Bucket::Day, "2025-11-01T04:00:00Z", "2025-11-03T06:00:00Z");
        assert_eq!(days, ["2025-11-01T00:00:00-04:00", "2025-11-02T00:00:00-04:00", "2025-11-03T00:00:00-05:00"]);
        // An order at 23:30 local on Sunday evening is Sunday's, though it is Monday in UTC.
        let sunday_night = utc("2025-11-03T04:30:00Z");
        assert_eq!(bucket_start(sunday_night, Bucket::Day, America::New_York).to_rfc3339(), "2025-11-02T00:00:00-04:00");
        assert_eq!(bucket_start(sunday_night, Bucket::Week, America::New_York).to_rfc3339(), "2025-10-27T00:00:00-04:00");
    }

    #[test]
    fn half_hour_zones_start_hours_at_their_local_hour() {
        // India is UTC+05:30: a local hour starts at half past in UTC.
        let t = utc("2025-01-01T10:59:59.7Z");
        assert_eq!(raw_start(t, Bucket::Hour, Asia::Kolkata), RawStart::Instant(utc("2025-01-01T10:30:00Z").timestamp()));
        assert_eq!(bucket_start(t, Bucket::Hour, Asia::Kolkata).to_rfc3339(), "2025-01-01T16:00:00+05:30");
    }

    #[test]
    fn a_day_whose_midnight_does_not_exist_starts_at_the_jump() {
        // Chile's spring change is at 24:00: 2024-09-08 begins at 01:00 -03:00.
        let date = NaiveDate::from_ymd_opt(2024, 9, 8).unwrap();
        assert_eq!(day_start(date, America::Santiago).to_rfc3339(), "2024-09-08T01:00:00-03:00");
        // And the autumn one repeats 23:00: midnight of 2025-04-06 is unambiguous (-04:00).
        let date = NaiveDate::from_ymd_opt(2025, 4, 6).unwrap();
        assert_eq!(day_start(date, America::Santiago).to_rfc3339(), "2025-04-06T00:00:00-04:00");
    }

    #[test]
    fn utc_is_written_with_an_explicit_offset() {
        let t = utc("2025-01-15T10:42:00Z");
        assert_eq!(bucket_start(t, Bucket::Hour, UTC).to_rfc3339(), "2025-01-15T10:00:00+00:00");
        assert_eq!(bucket_start(t, Bucket::Week, UTC).to_rfc3339(), "2025-01-13T00:00:00+00:00");
    }
}
