//! When to try a failed delivery again: plain functions of the attempt number.

use jiff::SignedDuration;

use crate::error::ChannelError;

/// Exponential backoff with a cap and a bounded number of attempts. Deterministic: the
/// same attempt always waits the same time, or with [`RetryPolicy::backoff_jittered`] the
/// same time for the same seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure.
    pub base: SignedDuration,
    /// No wait is longer than this.
    pub cap: SignedDuration,
    /// Attempts in all, the first included; after the last failure the message is
    /// dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 30 s, 1 min, 2 min, … capped at 6 h, 8 attempts (about 2 h 7 min of retrying).
    fn default() -> Self {
        RetryPolicy { base: SignedDuration::from_secs(30), cap: SignedDuration::from_hours(6), max_attempts: 8 }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1 for the first try):
    /// `base × 2^(attempt−1)`, at most `cap`, never negative.
    pub fn backoff(&self, attempt: u32) -> SignedDuration {
        let base = self.base.as_millis().max(0);
        let cap = self.cap.as_millis().max(0);
        let doublings = attempt.saturating_sub(1).min(64);
        let wait = base.checked_mul(1i128 << doublings).unwrap_or(i128::MAX).min(cap);
        SignedDuration::from_millis(i64::try_from(wait).unwrap_or(i64::MAX))
    }

    /// [`RetryPolicy::backoff`] spread between half and all of it by `seed` (a hash of
    /// the ledger key, say), so that messages failing together do not retry together.
    pub fn backoff_jittered(&self, attempt: u32, seed: u64) -> SignedDuration {
        let full = self.backoff(attempt).as_millis();
        let half = full / 2;
        let fraction = splitmix64(seed ^ u64::from(attempt)) as i128 % 1_000_001;
        SignedDuration::from_millis(i64::try_from(half + (full - half) * fraction / 1_000_000).unwrap_or(i64::MAX))
    }

    /// Whether a delivery that failed with `error` on attempt number `attempt` should be
    /// tried again (otherwise: dead-letter).
    pub fn should_retry(&self, attempt: u32, error: &ChannelError) -> bool {
        error.is_transient() && attempt < self.max_attempts
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let p = RetryPolicy::default();
        let secs: Vec<i64> = (1..=12).map(|a| p.backoff(a).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600]);
        assert_eq!(p.backoff(0).as_secs(), 30);
        assert_eq!(p.backoff(u32::MAX), SignedDuration::from_hours(6));
    }

    #[test]
    fn absurd_policies_do_not_overflow() {
        let p = RetryPolicy { base: SignedDuration::MAX, cap: SignedDuration::MAX, max_attempts: u32::MAX };
        let _ = p.backoff(u32::MAX);
        let _ = p.backoff_jittered(u32::MAX, u64::MAX);
        let negative = RetryPolicy { base: SignedDuration::from_secs(-5), ..RetryPolicy::default() };
        assert_eq!(negative.backoff(3), SignedDuration::ZERO);
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            for seed in [0, 1, 42, u64::MAX] {
                let j = p.backoff_jittered(attempt, seed);
                assert_eq!(j, p.backoff_jittered(attempt, seed));
                assert!(j <= p.backoff(attempt) && j >= p.backoff(attempt) / 2, "{attempt} {seed} {j:?}");
            }
        }
        assert_ne!(p.backoff_jittered(5, 1), p.backoff_jittered(5, 2));
    }

    #[test]
    fn only_transient_failures_retry_and_only_while_attempts_remain() {
        let p = RetryPolicy::default();
        let transient = ChannelError::Transient { code: Some(421), detail: "busy".into() };
        let permanent = ChannelError::Permanent { code: Some(550), detail: "no such mailbox".into() };
        assert!(p.should_retry(1, &transient));
        assert!(p.should_retry(7, &transient));
        assert!(!p.should_retry(8, &transient));
        assert!(!p.should_retry(1, &permanent));
    }
}
