//! Exact ratios: a numerator and a denominator kept as integers, so a KPI such as
//! NRR = 10,450,000 / 10,000,000 stays exact in JSON and is rounded only when printed.

use serde::{Serialize, Serializer, ser::SerializeStruct};
use std::fmt;

/// An exact fraction `numerator / denominator` with a positive denominator.
///
/// Built only through [`Ratio::new`], which refuses a zero denominator: a KPI whose
/// denominator is zero (no cohort, no line up for renewal) is `None`, not a ratio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    numerator: i128,
    denominator: i128,
}

impl Ratio {
    /// 0/1: the fallback where a denominator is known to be positive.
    pub const ZERO: Ratio = Ratio { numerator: 0, denominator: 1 };

    /// `numerator / denominator`, or `None` when the denominator is zero. A negative
    /// denominator moves its sign to the numerator.
    pub fn new(numerator: impl Into<i128>, denominator: impl Into<i128>) -> Option<Ratio> {
        let (n, d) = (numerator.into(), denominator.into());
        match d {
            0 => None,
            d if d < 0 => Some(Ratio { numerator: n.checked_neg()?, denominator: d.checked_neg()? }),
            d => Some(Ratio { numerator: n, denominator: d }),
        }
    }

    pub fn numerator(&self) -> i128 {
        self.numerator
    }

    pub fn denominator(&self) -> i128 {
        self.denominator
    }

    /// The nearest `f64` (exact ratios of money can exceed f64's 53-bit mantissa only
    /// beyond ninety trillion dollars).
    pub fn to_f64(&self) -> f64 {
        self.numerator as f64 / self.denominator as f64
    }

    /// The ratio as a percentage with one decimal, rounded half away from zero, computed
    /// in integers so 0.3335 prints `33.4%` however binary floating point would round it.
    pub fn percent_one_decimal(&self) -> String {
        format!("{}%", Self::one_decimal(self.numerator.saturating_mul(1000), self.denominator))
    }

    /// The ratio itself with one decimal, for amounts (for example a lifetime value in
    /// cents divided by 100 is printed by the caller).
    pub fn one_decimal_string(&self) -> String {
        Self::one_decimal(self.numerator.saturating_mul(10), self.denominator)
    }

    /// `tenths / denominator` where `tenths` is already scaled by ten: `12.3`.
    fn one_decimal(tenths_numerator: i128, denominator: i128) -> String {
        let negative = tenths_numerator < 0;
        let n = tenths_numerator.unsigned_abs();
        let d = denominator.unsigned_abs();
        // Round half away from zero: (2n + d) / 2d.
        let tenths = n.saturating_mul(2).saturating_add(d) / d.saturating_mul(2).max(1);
        let sign = if negative && tenths > 0 { "-" } else { "" };
        format!("{sign}{}.{}", tenths / 10, tenths % 10)
    }
}

impl fmt::Display for Ratio {
    /// `numerator/denominator`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

impl Serialize for Ratio {
    /// `{"numerator": n, "denominator": d, "value": n/d}`: the exact pair for machines
    /// that need it, and the `f64` for those that do not.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Ratio", 3)?;
        s.serialize_field("numerator", &self.numerator)?;
        s.serialize_field("denominator", &self.denominator)?;
        s.serialize_field("value", &self.to_f64())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_denominator_is_no_ratio_and_sign_moves_up() {
        assert_eq!(Ratio::new(1, 0), None);
        let r = Ratio::new(3, -4).unwrap();
        assert_eq!((r.numerator(), r.denominator()), (-3, 4));
        assert_eq!(r.to_f64(), -0.75);
    }

    #[test]
    fn percentages_round_half_away_from_zero_in_integers() {
        // 2/3 = 66.666…% → 66.7%; 1/8 = 12.5% exactly; 667/2000 = 33.35% → 33.4% (f64
        // holds 0.3335 as 0.33349999…, which would print 33.3%).
        assert_eq!(Ratio::new(2, 3).unwrap().percent_one_decimal(), "66.7%");
        assert_eq!(Ratio::new(1, 8).unwrap().percent_one_decimal(), "12.5%");
        assert_eq!(Ratio::new(667, 2000).unwrap().percent_one_decimal(), "33.4%");
        assert_eq!(Ratio::new(-667, 2000).unwrap().percent_one_decimal(), "-33.4%");
        assert_eq!(Ratio::new(0, 7).unwrap().percent_one_decimal(), "0.0%");
        assert_eq!(Ratio::new(-1, 100_000).unwrap().percent_one_decimal(), "0.0%");
        assert_eq!(Ratio::new(21, 20).unwrap().percent_one_decimal(), "105.0%");
        assert_eq!(Ratio::new(1234, 100).unwrap().one_decimal_string(), "12.3");
    }

    #[test]
    fn json_carries_the_exact_pair_and_the_value() {
        let json = serde_json::to_value(Ratio::new(1, 4).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"numerator": 1, "denominator": 4, "value": 0.25}));
    }
}
