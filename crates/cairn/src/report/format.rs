//! How figures are printed in every report: money with thousands and cents, exact
//! ratios as percentages to one decimal, and their CSV forms at full precision.

use cairn_measure::Ratio;

/// Cents as `-1,234.56`.
pub(crate) fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// Cents as a plain decimal for CSV: `-1234.56`.
pub(crate) fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

/// An exact amount of cents rounded to the cent, halves away from zero.
pub(crate) fn cents(r: Ratio) -> i64 {
    let (n, d) = (r.numerator(), r.denominator());
    let (n, d) = if d < 0 { (-n, -d) } else { (n, d) };
    let rounded = if n >= 0 { (2 * n + d) / (2 * d) } else { -((-2 * n + d) / (2 * d)) };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

pub(crate) fn percent(r: Option<Ratio>) -> String {
    r.map_or_else(|| "n/a".to_string(), |r| r.percent_one_decimal())
}

/// A ratio's value at full precision for CSV; empty when there is none.
pub(crate) fn value(r: Option<Ratio>) -> String {
    r.map_or_else(String::new, |r| r.to_f64().to_string())
}

pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_groups_thousands_and_keeps_cents() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(123_456_789), "1,234,567.89");
        assert_eq!(money(-100_000), "-1,000.00");
        assert_eq!(decimal(-123_456), "-1234.56");
    }

    #[test]
    fn exact_cents_round_half_away_from_zero() {
        let r = |n: i128, d: i128| Ratio::new(n, d).unwrap();
        assert_eq!(cents(r(7_600_000, 3)), 2_533_333); // 2,533,333.33… cents
        assert_eq!(cents(r(5, 2)), 3);
        assert_eq!(cents(r(-5, 2)), -3);
        assert_eq!(cents(r(9, 4)), 2);
    }
}
