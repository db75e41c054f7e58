//! Reporting periods: a month, a quarter, a year, or any `from..=to` range of days.

use crate::MeasureError;
use jiff::ToSpan;
use jiff::civil::Date;
use serde::Serialize;

/// A closed range of days `[first, last]`, both inclusive, with `first <= last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Period {
    first: Date,
    last: Date,
}

/// The calendar unit a report's `--period` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
}

impl Period {
    /// The days from `first` to `last`, both included.
    pub fn new(first: Date, last: Date) -> Result<Period, MeasureError> {
        if last < first {
            return Err(MeasureError::Period(format!(
                "the period ends on {last}, before it starts on {first}: give --to on or after --from"
            )));
        }
        Ok(Period { first, last })
    }

    /// The calendar month, quarter or year that contains `day`.
    pub fn containing(kind: PeriodKind, day: Date) -> Period {
        let first = match kind {
            PeriodKind::Month => day.first_of_month(),
            PeriodKind::Quarter => {
                let month = (day.month() - 1) / 3 * 3 + 1;
                // Infallible: month is 1, 4, 7 or 10 and day 1 exists in every month.
                day.first_of_month().with().month(month).build().unwrap_or(day.first_of_month())
            }
            PeriodKind::Year => day.first_of_year(),
        };
        let last = match kind {
            PeriodKind::Month => day.last_of_month(),
            PeriodKind::Quarter => {
                first.checked_add(2.months()).map(|d| d.last_of_month()).unwrap_or(first.last_of_year())
            }
            PeriodKind::Year => day.last_of_year(),
        };
        Period { first, last }
    }

    /// Every calendar month that overlaps `[from, to]`, whole, oldest first: the months of
    /// a time series.
    pub fn months(from: Date, to: Date) -> Result<Vec<Period>, MeasureError> {
        let span = Period::new(from, to)?;
        let mut months = Vec::new();
        let mut first = span.first.first_of_month();
        while first <= span.last {
            months.push(Period { first, last: first.last_of_month() });
            first = match first.checked_add(1.month()) {
                Ok(next) => next,
                Err(_) => break,
            };
        }
        Ok(months)
    }

    pub fn first(&self) -> Date {
        self.first
    }

    pub fn last(&self) -> Date {
        self.last
    }

    /// The day before `first`, on which a period's start ARR is taken; `None` only for
    /// the first day jiff can represent.
    pub fn day_before(&self) -> Option<Date> {
        self.first.yesterday().ok()
    }

    pub fn contains(&self, day: Date) -> bool {
        self.first <= day && day <= self.last
    }

    /// Whether the period is exactly one year: from a day to the day before the same
    /// date a year later (2025-03-01..=2026-02-28, or a calendar year).
    pub fn is_one_year(&self) -> bool {
        self.first.checked_add(1.year()).and_then(|d| d.yesterday()).is_ok_and(|d| d == self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn calendar_units_contain_the_day() {
        let q = Period::containing(PeriodKind::Quarter, date(2026, 5, 17));
        assert_eq!((q.first(), q.last()), (date(2026, 4, 1), date(2026, 6, 30)));
        let q = Period::containing(PeriodKind::Quarter, date(2026, 12, 31));
        assert_eq!((q.first(), q.last()), (date(2026, 10, 1), date(2026, 12, 31)));
        let m = Period::containing(PeriodKind::Month, date(2024, 2, 10));
        assert_eq!((m.first(), m.last()), (date(2024, 2, 1), date(2024, 2, 29)));
        let y = Period::containing(PeriodKind::Year, date(2026, 7, 4));
        assert_eq!((y.first(), y.last()), (date(2026, 1, 1), date(2026, 12, 31)));
        assert!(y.is_one_year());
        assert!(Period::new(date(2025, 3, 1), date(2026, 2, 28)).unwrap().is_one_year());
        assert!(!q.is_one_year());
    }

    #[test]
    fn months_cover_the_range_whole_and_backwards_ranges_are_refused() {
        let months = Period::months(date(2026, 1, 15), date(2026, 3, 1)).unwrap();
        let firsts: Vec<_> = months.iter().map(|m| m.first().to_string()).collect();
        assert_eq!(firsts, ["2026-01-01", "2026-02-01", "2026-03-01"]);
        assert_eq!(months[1].last(), date(2026, 2, 28));
        let e = Period::new(date(2026, 2, 1), date(2026, 1, 1)).unwrap_err();
        assert!(e.to_string().contains("before it starts"), "{e}");
    }
}
