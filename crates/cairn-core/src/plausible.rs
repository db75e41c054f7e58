//! The range of dates an event may plausibly carry.
//!
//! An event's timestamp comes from whoever holds a write key (browser sources expose
//! theirs), so it is untrusted. A date far in the past or future is almost always a bug
//! in the sender (a zeroed clock, a seconds-for-milliseconds mix-up), and it would make
//! every day-by-day computation span millennia. Timestamps outside the range are refused
//! at ingestion with an error that names the range and how to widen it.

use std::fmt;

use jiff::{SignedDuration, Timestamp};

/// The environment variable that sets [`PlausibleTimes::earliest`] for `cairn serve` and
/// `cairn import`, as the `--earliest-event` flag does.
pub const EARLIEST_EVENT_ENV: &str = "CAIRN_EARLIEST_EVENT";

/// The dates an event may carry: from `earliest` up to `max_ahead` past the present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlausibleTimes {
    /// The earliest accepted instant.
    pub earliest: Timestamp,
    /// How far past "now" an instant may be (senders' clocks run a little fast).
    pub max_ahead: SignedDuration,
}

impl Default for PlausibleTimes {
    /// From 2000-01-01T00:00:00Z to one day ahead of now.
    fn default() -> Self {
        PlausibleTimes { earliest: DEFAULT_EARLIEST, max_ahead: SignedDuration::from_hours(24) }
    }
}

/// 2000-01-01T00:00:00Z.
const DEFAULT_EARLIEST: Timestamp = Timestamp::constant(946_684_800, 0);

/// A timestamp outside the plausible range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct OutOfRange {
    /// The instant refused.
    pub value: Timestamp,
    /// The range's start.
    pub earliest: Timestamp,
    /// The range's end at the time of the check.
    pub latest: Timestamp,
    /// How far past "now" the range reaches.
    pub max_ahead: SignedDuration,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value < self.earliest {
            write!(
                f,
                "{} is before the earliest accepted date {}; if such old events are real, start cairn with \
                 --earliest-event DATE (or {EARLIEST_EVENT_ENV}=DATE)",
                self.value, self.earliest
            )
        } else {
            write!(
                f,
                "{} is later than {}, the latest accepted instant (now plus {} hours of allowance for clock \
                 skew); check the sender's clock",
                self.value,
                self.latest,
                self.max_ahead.as_hours()
            )
        }
    }
}

impl PlausibleTimes {
    /// Accepts `t` when `earliest <= t <= now + max_ahead`.
    pub fn check(&self, t: Timestamp, now: Timestamp) -> Result<(), OutOfRange> {
        let latest = self.latest(now);
        if t < self.earliest || t > latest {
            return Err(OutOfRange { value: t, earliest: self.earliest, latest, max_ahead: self.max_ahead });
        }
        Ok(())
    }

    /// The latest instant accepted at `now`.
    pub fn latest(&self, now: Timestamp) -> Timestamp {
        now.checked_add(self.max_ahead).unwrap_or(Timestamp::MAX)
    }

    /// The range with `earliest` set from a `YYYY-MM-DD` date or an RFC 3339 instant, as
    /// given to `--earliest-event` or [`EARLIEST_EVENT_ENV`].
    pub fn with_earliest(self, text: &str) -> Result<PlausibleTimes, crate::ValueError> {
        let earliest = crate::tracking::parse_timestamp(text.trim()).ok_or_else(|| {
            crate::ValueError(format!(
                "`{text}` is not a date for the earliest event: expected YYYY-MM-DD or an ISO-8601 instant such as \
                 1995-06-01T00:00:00Z"
            ))
        })?;
        Ok(PlausibleTimes { earliest, ..self })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_runs_from_2000_to_a_day_ahead() {
        let p = PlausibleTimes::default();
        let now = ts("2026-03-01T12:00:00Z");
        assert_eq!(p.earliest, ts("2000-01-01T00:00:00Z"));
        assert!(p.check(ts("2000-01-01T00:00:00Z"), now).is_ok());
        assert!(p.check(ts("2026-03-02T12:00:00Z"), now).is_ok());
        let early = p.check(ts("1999-12-31T23:59:59Z"), now).unwrap_err();
        assert!(early.to_string().contains("before the earliest accepted date 2000-01-01T00:00:00Z"), "{early}");
        assert!(early.to_string().contains("--earliest-event"), "{early}");
        let late = p.check(ts("2026-03-02T12:00:01Z"), now).unwrap_err();
        assert!(late.to_string().contains("later than 2026-03-02T12:00:00Z"), "{late}");
    }

    #[test]
    fn earliest_can_be_widened_by_a_date() {
        let p = PlausibleTimes::default().with_earliest("1990-06-01").unwrap();
        assert!(p.check(ts("1991-01-01T00:00:00Z"), ts("2026-03-01T12:00:00Z")).is_ok());
        assert!(PlausibleTimes::default().with_earliest("June").is_err());
    }

    #[test]
    fn the_far_future_does_not_overflow() {
        let p = PlausibleTimes { earliest: DEFAULT_EARLIEST, max_ahead: SignedDuration::MAX };
        assert!(p.check(Timestamp::MAX, Timestamp::MAX).is_ok());
    }
}
