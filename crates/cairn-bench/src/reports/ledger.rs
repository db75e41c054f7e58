//! The deterministic subscription ledger of `cairn-bench reports`: accounts with annual
//! and monthly terms, renewals that expand or contract, mid-term add-on lines, late
//! renewals on both sides of the 30-day gap, churn, lapse and return, short pilots, free
//! trials at zero ARR, and new logos in every month of the range.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use cairn::demo::Rng;
use jiff::ToSpan;
use jiff::civil::Date;

/// One generated contract line (ids and accounts are indexes; the CSV names them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenLine {
    pub(crate) id: u64,
    pub(crate) account: u32,
    pub(crate) start: Date,
    pub(crate) end: Date,
    pub(crate) arr_cents: i64,
}

/// The ledger and the range it covers: `first` to `last`, whole calendar months.
pub(crate) struct GenLedger {
    pub(crate) accounts: u32,
    pub(crate) first: Date,
    pub(crate) last: Date,
    pub(crate) lines: Vec<GenLine>,
}

/// The first day of the range: every run generates the same data.
pub(crate) const FIRST_DAY: Date = Date::constant(2021, 1, 1);

fn add_days(d: Date, n: i64) -> Result<Date> {
    d.checked_add(n.days()).with_context(|| format!("{d} + {n} days is out of range"))
}

fn add_months(d: Date, n: i64) -> Result<Date> {
    d.checked_add(n.months()).with_context(|| format!("{d} + {n} months is out of range"))
}

/// A whole number of dollars in `lo..hi` plus random cents, in cents.
fn dollars(rng: &mut Rng, lo: u64, hi: u64) -> i64 {
    let whole = lo + rng.below(hi.saturating_sub(lo).max(1));
    (whole * 100 + rng.below(100)) as i64
}

/// `cents × percent / 100`, rounded down, at least one cent.
fn scale(cents: i64, percent: u64) -> i64 {
    (cents.saturating_mul(percent as i64) / 100).max(1)
}

/// Generates `accounts` accounts over `years` years from [`FIRST_DAY`].
pub(crate) fn generate(accounts: u32, years: u32, seed: u64) -> Result<GenLedger> {
    if accounts == 0 || years == 0 {
        bail!("the ledger needs at least one account and one year (--accounts, --years)");
    }
    if years > 50 {
        bail!("--years {years} is more than 50: give a shorter range");
    }
    let months = i64::from(years) * 12;
    let first = FIRST_DAY;
    let last = add_days(add_months(first, months)?, -1)?;
    let mut rng = Rng::new(seed);
    let mut lines = Vec::new();
    let mut next_id = 1u64;
    let mut push = |lines: &mut Vec<GenLine>, account: u32, start: Date, end: Date, arr_cents: i64| {
        lines.push(GenLine { id: next_id, account, start, end, arr_cents });
        next_id += 1;
    };
    for account in 0..accounts {
        // 12% were customers before the range (so its first months have a cohort); the
        // rest start spread evenly over its months: new logos every month.
        let mut start = if rng.below(100) < 12 {
            add_days(first, -1 - rng.below(365) as i64)?
        } else {
            let month = i64::from(account) * months / i64::from(accounts);
            add_days(add_months(first, month)?, rng.below(28) as i64)?
        };
        // 2%: a short pilot inside one month, months before the contract: the contract
        // then comes back as a reactivation.
        if rng.below(100) < 2 {
            let pilot = add_months(start, -(2 + rng.below(4) as i64))?.first_of_month();
            push(&mut lines, account, add_days(pilot, 2)?, add_days(pilot, 12)?, dollars(&mut rng, 500, 3_000));
        }
        // 3%: a free trial at zero ARR just before the contract.
        if rng.below(100) < 3 {
            push(&mut lines, account, add_days(start, -14)?, add_days(start, -1)?, 0);
        }
        let monthly = rng.below(100) < 40;
        let mut arr = match rng.below(100) {
            0..60 if monthly => dollars(&mut rng, 600, 6_000),
            0..60 => dollars(&mut rng, 1_200, 12_000),
            60..90 => dollars(&mut rng, 12_000, 60_000),
            _ => dollars(&mut rng, 60_000, 250_000),
        };
        while start <= last {
            let end = if monthly { add_months(start, 1)? } else { add_months(start, 12)? };
            let end = add_days(end, -1)?;
            push(&mut lines, account, start, end, arr);
            // 15% of annual terms get an add-on line that runs to the term's end.
            if !monthly && rng.below(100) < 15 {
                let addon = add_days(start, 1 + rng.below(330) as i64)?;
                if addon <= end {
                    push(&mut lines, account, addon, end, scale(arr, 5 + rng.below(30)));
                }
            }
            let churns = if monthly { rng.below(1000) < 15 } else { rng.below(100) < 12 };
            if churns {
                // A third of the churned come back (lapse and return) 1 to 15 months later.
                if rng.below(100) < 33 {
                    start = add_days(add_months(end, 1 + rng.below(15) as i64)?, rng.below(28) as i64)?;
                    arr = scale(arr, 50 + rng.below(100));
                    continue;
                }
                break;
            }
            // Renewal: the next term, sometimes after a gap (1 to 45 days: renewed within
            // 30, a lapse beyond), with expansion or contraction.
            let gap = if rng.below(100) < 6 { 1 + rng.below(45) as i64 } else { 0 };
            start = add_days(end, 1 + gap)?;
            let change = rng.below(100);
            arr = match (monthly, change) {
                (false, 0..25) | (true, 0..3) => scale(arr, 105 + rng.below(55)),
                (false, 25..37) | (true, 3..5) => scale(arr, 60 + rng.below(35)),
                _ => arr,
            };
        }
    }
    Ok(GenLedger { accounts, first, last, lines })
}

/// The account's external id.
pub(crate) fn account_id(account: u32) -> String {
    format!("A{account:06}")
}

/// Writes `accounts.csv` and `subscriptions.csv` (the columns `cairn import` reads);
/// returns the two paths.
pub(crate) fn write_csv(ledger: &GenLedger, dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let accounts = dir.join("accounts.csv");
    let mut w = BufWriter::new(std::fs::File::create(&accounts).with_context(|| accounts.display().to_string())?);
    writeln!(w, "external_id,name")?;
    for a in 0..ledger.accounts {
        writeln!(w, "{},Account {a}", account_id(a))?;
    }
    w.flush()?;
    let subscriptions = dir.join("subscriptions.csv");
    let mut w =
        BufWriter::new(std::fs::File::create(&subscriptions).with_context(|| subscriptions.display().to_string())?);
    writeln!(w, "id,account_id,start_date,end_date,arr")?;
    for l in &ledger.lines {
        writeln!(
            w,
            "L{:07},{},{},{},{}.{:02}",
            l.id,
            account_id(l.account),
            l.start,
            l.end,
            l.arr_cents / 100,
            l.arr_cents % 100
        )?;
    }
    w.flush()?;
    Ok((accounts, subscriptions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_is_deterministic_and_covers_every_case_the_reports_classify() {
        let a = generate(2_000, 5, 7).unwrap();
        let b = generate(2_000, 5, 7).unwrap();
        assert_eq!(a.lines, b.lines);
        assert_eq!((a.first, a.last), (date(2021, 1, 1), date(2025, 12, 31)));
        // Every line is well formed.
        assert!(a.lines.iter().all(|l| l.start <= l.end && l.arr_cents >= 0));
        // Monthly and annual terms, zero-ARR trials, late renewals on both sides of 30 days.
        let length = |l: &GenLine| (l.end - l.start).get_days();
        assert!(a.lines.iter().any(|l| (27..=30).contains(&length(l))));
        assert!(a.lines.iter().any(|l| (364..=365).contains(&length(l))));
        assert!(a.lines.iter().any(|l| l.arr_cents == 0));
        let mut gaps = Vec::new();
        for w in a.lines.windows(2) {
            if w[0].account == w[1].account && w[1].start > w[0].end {
                gaps.push((w[1].start - w[0].end).get_days() - 1);
            }
        }
        assert!(gaps.iter().any(|g| (1..=30).contains(g)), "a late renewal within 30 days");
        assert!(gaps.iter().any(|g| (31..=45).contains(g)), "a late renewal beyond 30 days");
        assert!(gaps.iter().any(|g| *g > 45), "a lapse and return");
        // New logos in every month of the range: each account's first paid day.
        let mut first_paid = std::collections::BTreeMap::new();
        for l in a.lines.iter().filter(|l| l.arr_cents > 0) {
            let day = first_paid.entry(l.account).or_insert(l.start);
            *day = (*day).min(l.start);
        }
        let months: std::collections::BTreeSet<Date> =
            first_paid.values().filter(|d| **d >= a.first).map(|d| d.first_of_month()).collect();
        assert_eq!(months.len(), 60);
    }

    fn date(y: i16, m: i8, d: i8) -> Date {
        Date::constant(y, m, d)
    }
}
