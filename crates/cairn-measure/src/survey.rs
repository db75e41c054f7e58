//! Survey scores: the Net Promoter Score of 0–10 answers and CSAT of 1–5 answers, each
//! with a 95% interval.
//!
//! **NPS** = % promoters (9–10) − % detractors (0–6), in points from −100 to 100. Its
//! interval treats each answer as a score of +1 (promoter), 0 (passive) or −1
//! (detractor): NPS/100 is the mean of those scores, whose variance over the n answers is
//! `v = (p + d) − (p − d)²` with p and d the promoter and detractor shares, so the
//! standard error is `√(v / n)` and the interval `NPS ± z·100·√(v / n)` (normal
//! approximation, the Wald interval; clamped to ±100). Like every Wald interval it is
//! zero-width when every answer is the same; read it with the response count.
//!
//! **CSAT** = the share of 4 and 5 answers among 1–5 answers, with the Wilson score
//! interval ([`crate::stats::wilson`]).

use serde::Serialize;

use crate::MeasureError;
use crate::Ratio;
use crate::stats::{Arm, Interval, wilson, z_critical};

/// The confidence of the intervals reported.
pub const CONFIDENCE: f64 = 0.95;

/// The NPS of a set of 0–10 answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Nps {
    pub responses: u64,
    /// Answers of 9 or 10.
    pub promoters: u64,
    /// Answers of 7 or 8.
    pub passives: u64,
    /// Answers of 0 to 6.
    pub detractors: u64,
    /// In points: `100·(promoters − detractors) / responses`; `None` without answers.
    pub nps: Option<Ratio>,
    /// The 95% interval of the NPS, in points (see the module doc for the method).
    pub interval: Option<Interval>,
}

impl Nps {
    /// Counts 0–10 scores; a score outside 0–10 is refused (the caller decides whether
    /// to skip it and say so).
    pub fn of(scores: &[u8]) -> Result<Nps, MeasureError> {
        let (mut promoters, mut passives, mut detractors) = (0u64, 0u64, 0u64);
        for &s in scores {
            match s {
                9..=10 => promoters += 1,
                7..=8 => passives += 1,
                0..=6 => detractors += 1,
                other => return Err(MeasureError::Input(format!("NPS score {other} is not between 0 and 10"))),
            }
        }
        Ok(Nps::from_counts(promoters, passives, detractors))
    }

    /// The NPS of counted answers.
    pub fn from_counts(promoters: u64, passives: u64, detractors: u64) -> Nps {
        let responses = promoters + passives + detractors;
        let difference = i128::from(promoters) - i128::from(detractors);
        let nps = Ratio::new(100 * difference, responses);
        let interval = (responses > 0).then(|| {
            let n = responses as f64;
            let (p, d) = (promoters as f64 / n, detractors as f64 / n);
            let mean = p - d;
            let variance = ((p + d) - mean * mean).max(0.0);
            let half = z_critical(CONFIDENCE) * (variance / n).sqrt();
            Interval { low: 100.0 * (mean - half).max(-1.0), high: 100.0 * (mean + half).min(1.0) }
        });
        Nps { responses, promoters, passives, detractors, nps, interval }
    }
}

/// CSAT of a set of 1–5 answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Csat {
    pub responses: u64,
    /// Answers of 4 or 5.
    pub satisfied: u64,
    /// `satisfied / responses`; `None` without answers.
    pub csat: Option<Ratio>,
    /// The 95% Wilson interval of the share.
    pub interval: Option<Interval>,
}

impl Csat {
    /// Counts 1–5 scores; a score outside 1–5 is refused.
    pub fn of(scores: &[u8]) -> Result<Csat, MeasureError> {
        let mut satisfied = 0u64;
        for &s in scores {
            match s {
                4..=5 => satisfied += 1,
                1..=3 => {}
                other => return Err(MeasureError::Input(format!("CSAT score {other} is not between 1 and 5"))),
            }
        }
        Csat::from_counts(scores.len() as u64, satisfied)
    }

    /// CSAT of counted answers.
    pub fn from_counts(responses: u64, satisfied: u64) -> Result<Csat, MeasureError> {
        let arm = Arm::new(responses, satisfied)?;
        Ok(Csat { responses, satisfied, csat: Ratio::new(satisfied, responses), interval: wilson(arm, CONFIDENCE) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn nps_counts_and_its_interval_by_hand() {
        // 10 answers: 5 promoters (9, 9, 10, 10, 10), 2 passives (7, 8), 3 detractors
        // (0, 5, 6). NPS = 100·(5 − 3)/10 = 20.
        // Scores +1×5, 0×2, −1×3: mean 0.2; E[s²] = (5 + 3)/10 = 0.8; variance
        // 0.8 − 0.04 = 0.76; SE = √(0.76/10) = 0.275680975...; half-width
        // 1.959963984540054 × 0.275680975 = 0.540324783...; interval 20 ± 54.0324783
        // = [−34.0324783, 74.0324783].
        let n = Nps::of(&[9, 9, 10, 10, 10, 7, 8, 0, 5, 6]).unwrap();
        assert_eq!((n.responses, n.promoters, n.passives, n.detractors), (10, 5, 2, 3));
        assert_eq!(n.nps, Ratio::new(200, 10));
        let i = n.interval.unwrap();
        let half = 1.959963984540054 * (0.76f64 / 10.0).sqrt();
        assert!(close(i.low, 20.0 - 100.0 * half) && close(i.high, 20.0 + 100.0 * half), "{i:?}");
        assert!((i.low - -34.0324783).abs() < 1e-6 && (i.high - 74.0324783).abs() < 1e-6, "{i:?}");
    }

    #[test]
    fn nps_interval_is_clamped_and_empty_without_answers() {
        // 1 promoter, 1 detractor: mean 0, variance 1, SE √(1/2) = 0.7071; half-width
        // 1.386 > 1, so the interval is clamped to the scale: [−100, 100].
        let n = Nps::from_counts(1, 0, 1);
        assert_eq!(n.interval, Some(Interval { low: -100.0, high: 100.0 }));
        let none = Nps::from_counts(0, 0, 0);
        assert_eq!((none.nps, none.interval), (None, None));
        assert!(Nps::of(&[11]).unwrap_err().to_string().contains("not between 0 and 10"));
    }

    #[test]
    fn csat_is_the_share_of_fours_and_fives_with_wilson() {
        // 4 answers, 3 of them 4 or 5: CSAT 3/4. Wilson (z = 1.96): centre
        // (0.75 + z²/8)/(1 + z²/4) and half z·√(0.75·0.25/4 + z²/64)/(1 + z²/4).
        let c = Csat::of(&[5, 4, 4, 2]).unwrap();
        assert_eq!((c.responses, c.satisfied, c.csat), (4, 3, Ratio::new(3, 4)));
        let z = 1.959963984540054f64;
        let denom = 1.0 + z * z / 4.0;
        let centre = (0.75 + z * z / 8.0) / denom;
        let half = z * (0.75 * 0.25 / 4.0 + z * z / 64.0).sqrt() / denom;
        let i = c.interval.unwrap();
        assert!(close(i.low, centre - half) && close(i.high, centre + half), "{i:?}");
        assert!(Csat::of(&[0]).unwrap_err().to_string().contains("not between 1 and 5"));
    }
}
