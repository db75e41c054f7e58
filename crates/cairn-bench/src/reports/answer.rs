//! The figures both sides of `cairn-bench reports` give, under one key each (`2023-04
//! kpis.nrr`, `waterfall movements.churned_arr`, `cohort 2022-01 +7 arr_cents`, …), and
//! their comparison: integers (cents, counts) exactly, ratios to 1e-9.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use cairn_measure::Ratio;
use cairn_measure::cohorts::CohortRow;
use cairn_measure::movements::{Movements, Waterfall};
use cairn_measure::renewal::RenewalRate;
use cairn_measure::retention::PeriodKpis;
use jiff::civil::Date;

/// How far two ratios may be apart, relative to the larger (1 for ratios below one).
pub(crate) const RATIO_TOLERANCE: f64 = 1e-9;

/// One figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    /// Cents or a count.
    Int(i128),
    /// A ratio's value; `None` where its denominator is zero (n/a).
    Ratio(Option<f64>),
}

/// Every figure by key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures(pub(crate) BTreeMap<String, Value>);

fn month_key(day: Date) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

impl Figures {
    fn int(&mut self, key: String, v: impl Into<i128>) {
        self.0.insert(key, Value::Int(v.into()));
    }

    fn ratio(&mut self, key: String, r: Option<Ratio>) {
        self.0.insert(key, Value::Ratio(r.map(|r| r.to_f64())));
    }

    /// A figure as the peer's JSON gives it: an integer, a double, or null.
    pub(crate) fn insert_json(&mut self, key: &str, v: &serde_json::Value) -> Result<()> {
        let value = if v.is_null() {
            Value::Ratio(None)
        } else if let Some(i) = v.as_i64() {
            Value::Int(i.into())
        } else if let Some(u) = v.as_u64() {
            Value::Int(u.into())
        } else if let Some(f) = v.as_f64() {
            Value::Ratio(Some(f))
        } else {
            bail!("the peer's figure `{key}` is neither a number nor null: {v}");
        };
        self.0.insert(key.to_string(), value);
        Ok(())
    }

    /// A month's period KPIs.
    pub(crate) fn kpis(&mut self, k: &PeriodKpis) {
        let p = format!("{} kpis.", month_key(k.period.first()));
        self.int(format!("{p}start_arr"), k.start_arr_cents);
        self.int(format!("{p}end_arr"), k.end_arr_cents);
        self.int(format!("{p}cohort_accounts"), k.cohort_accounts);
        self.int(format!("{p}cohort_end"), k.cohort_end_arr_cents);
        self.int(format!("{p}retained"), k.retained_arr_cents);
        self.int(format!("{p}expansion"), k.expansion_cents);
        self.int(format!("{p}contraction"), k.contraction_cents);
        self.int(format!("{p}churned_accounts"), k.churned_accounts);
        self.int(format!("{p}churned_arr"), k.churned_arr_cents);
        self.int(format!("{p}new_accounts"), k.new_accounts);
        self.int(format!("{p}new_arr"), k.new_arr_cents);
        self.int(format!("{p}reactivated_accounts"), k.reactivated_accounts);
        self.int(format!("{p}reactivated_arr"), k.reactivated_arr_cents);
        self.ratio(format!("{p}nrr"), k.nrr);
        self.ratio(format!("{p}grr"), k.grr);
        self.ratio(format!("{p}logo_churn"), k.logo_churn);
    }

    /// A month's renewal rate.
    pub(crate) fn renewal(&mut self, r: &RenewalRate) {
        let p = format!("{} renewal.", month_key(r.period.first()));
        self.int(format!("{p}lines_ending"), r.lines_ending);
        self.int(format!("{p}renewed"), r.renewed);
        self.ratio(format!("{p}rate"), r.rate);
    }

    fn movement(&mut self, p: &str, m: &Movements) {
        self.int(format!("{p}start_arr"), m.start_arr_cents);
        self.int(format!("{p}new_arr"), m.new_cents);
        self.int(format!("{p}expansion"), m.expansion_cents);
        self.int(format!("{p}reactivated_arr"), m.reactivation_cents);
        self.int(format!("{p}contraction"), m.contraction_cents);
        self.int(format!("{p}churned_arr"), m.churn_cents);
        self.int(format!("{p}end_arr"), m.end_arr_cents);
        self.int(format!("{p}new_accounts"), m.new_accounts);
        self.int(format!("{p}expansion_accounts"), m.expansion_accounts);
        self.int(format!("{p}reactivated_accounts"), m.reactivation_accounts);
        self.int(format!("{p}contraction_accounts"), m.contraction_accounts);
        self.int(format!("{p}churned_accounts"), m.churn_accounts);
        self.ratio(format!("{p}quick_ratio"), m.quick_ratio);
    }

    /// The movements of every month and the waterfall.
    pub(crate) fn waterfall(&mut self, w: &Waterfall) {
        for m in &w.months {
            self.movement(&format!("{} movements.", month_key(m.period.first())), m);
        }
        self.movement("waterfall movements.", &w.total);
    }

    /// The cohort triangle.
    pub(crate) fn cohorts(&mut self, rows: &[CohortRow]) {
        for r in rows {
            let p = format!("cohort {} ", month_key(r.start_month.first()));
            self.int(format!("{p}accounts"), r.accounts);
            self.int(format!("{p}initial"), r.initial_arr_cents);
            for c in &r.months {
                let p = format!("{p}+{} ", c.offset);
                self.int(format!("{p}retained_accounts"), c.retained_accounts);
                self.int(format!("{p}arr_cents"), c.arr_cents);
                self.ratio(format!("{p}logo_retention"), c.logo_retention);
                self.ratio(format!("{p}revenue_retention"), c.revenue_retention);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Whether two values agree: integers exactly, ratios to [`RATIO_TOLERANCE`] (relative to
/// the larger when above one), n/a only with n/a.
pub(crate) fn agree(a: Value, b: Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Ratio(None), Value::Ratio(None)) => true,
        (Value::Ratio(Some(x)), Value::Ratio(Some(y))) => {
            (x - y).abs() <= RATIO_TOLERANCE * x.abs().max(y.abs()).max(1.0)
        }
        _ => false,
    }
}

/// The keys whose figures differ or that one side lacks, as lines to print.
pub(crate) fn differences(cairn: &Figures, peer: &Figures) -> Vec<String> {
    let mut out = Vec::new();
    for (k, a) in &cairn.0 {
        match peer.0.get(k) {
            None => out.push(format!("{k}: cairn {a:?}, the peer has no such figure")),
            Some(b) if !agree(*a, *b) => out.push(format!("{k}: cairn {a:?}, the peer {b:?}")),
            Some(_) => {}
        }
    }
    for (k, b) in &peer.0 {
        if !cairn.0.contains_key(k) {
            out.push(format!("{k}: the peer {b:?}, cairn has no such figure"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_agree_exactly_ratios_to_a_billionth_and_n_a_only_with_n_a() {
        assert!(agree(Value::Int(1_000_000_000_001), Value::Int(1_000_000_000_001)));
        assert!(!agree(Value::Int(100), Value::Int(101)));
        assert!(agree(Value::Ratio(Some(0.95)), Value::Ratio(Some(0.95 + 5e-10))));
        assert!(!agree(Value::Ratio(Some(0.95)), Value::Ratio(Some(0.95 + 2e-9))));
        // Relative above one: a quick ratio of 40.
        assert!(agree(Value::Ratio(Some(40.0)), Value::Ratio(Some(40.0 + 3e-8))));
        assert!(!agree(Value::Ratio(None), Value::Ratio(Some(0.0))));
        assert!(!agree(Value::Int(0), Value::Ratio(Some(0.0))));
        let mut a = Figures::default();
        let mut b = Figures::default();
        a.int("x".into(), 5);
        b.int("x".into(), 5);
        b.int("y".into(), 1);
        let d = differences(&a, &b);
        assert_eq!(d, ["y: the peer Int(1), cairn has no such figure"]);
    }
}
