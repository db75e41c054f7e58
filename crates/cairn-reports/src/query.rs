//! What every report is asked for: a period, the day it is made on, and optionally a
//! segment. The text comes from CLI flags (`--period`, `--from/--to`, `--as-of`,
//! `--segment`) or from the URL's query parameters (`period`, `from`, `to`, `as_of`,
//! `segment`); both parse here, so both give the same errors.

use cairn_measure::{Period, PeriodKind};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::{ReportError, Result};

/// A report's request as given, before it is checked.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueryText {
    /// `month`, `quarter` or `year`: the last such calendar period complete on `as_of`.
    pub period: Option<String>,
    /// First day of the period (YYYY-MM-DD), with `to`.
    pub from: Option<String>,
    /// Last day of the period, included, with `from`.
    pub to: Option<String>,
    /// The day the report is made on (default: today, UTC).
    pub as_of: Option<String>,
    /// A segment id: only accounts in it (membership as of the period's first day).
    pub segment: Option<String>,
}

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Query {
    /// The period measured.
    pub period: Period,
    /// The day the report is made on: nothing after it is known.
    pub as_of: Date,
    /// Only accounts in this segment, when given.
    pub segment: Option<String>,
}

impl QueryText {
    /// Checks the request. `default_kind` is the period used when neither `period` nor
    /// `from/to` is given; `today` is the clock's day, the default `as_of`.
    pub fn resolve(&self, default_kind: PeriodKind, today: Date) -> Result<Query> {
        let as_of = match &self.as_of {
            Some(d) => day(d, "as-of")?,
            None => today,
        };
        let period = match (&self.from, &self.to, &self.period) {
            (Some(_), Some(_), Some(_)) => {
                return Err(ReportError::Invalid("give either a period or from and to, not both".into()));
            }
            (Some(from), Some(to), None) => Period::new(day(from, "from")?, day(to, "to")?)?,
            (Some(_), None, _) => return Err(ReportError::Invalid("from needs to: give the period's last day".into())),
            (None, Some(_), _) => {
                return Err(ReportError::Invalid("to needs from: give the period's first day".into()));
            }
            (None, None, kind) => {
                let kind = match kind.as_deref() {
                    None => default_kind,
                    Some(k) => period_kind(k)?,
                };
                last_complete(kind, as_of)?
            }
        };
        let segment = match &self.segment {
            Some(s) if s.trim().is_empty() => {
                return Err(ReportError::Invalid("segment is empty: give a segment id from `cairn segments`".into()));
            }
            other => other.clone(),
        };
        Ok(Query { period, as_of, segment })
    }
}

/// `month`, `quarter` or `year`.
pub fn period_kind(text: &str) -> Result<PeriodKind> {
    match text {
        "month" => Ok(PeriodKind::Month),
        "quarter" => Ok(PeriodKind::Quarter),
        "year" => Ok(PeriodKind::Year),
        other => Err(ReportError::Invalid(format!("period `{other}` is not one of month, quarter, year"))),
    }
}

/// A `YYYY-MM-DD` day; the error names the parameter.
pub fn day(text: &str, name: &str) -> Result<Date> {
    cairn_core::values::parse_date(text).map_err(|e| ReportError::Invalid(format!("{name}: {e}")))
}

/// The last calendar period of a kind that is complete on `as_of` (the one containing
/// it when `as_of` is its last day).
pub fn last_complete(kind: PeriodKind, as_of: Date) -> Result<Period> {
    let current = Period::containing(kind, as_of);
    if current.last() <= as_of {
        return Ok(current);
    }
    match current.day_before() {
        Some(before) => Ok(Period::containing(kind, before)),
        None => Err(ReportError::Invalid(format!("there is no complete period before {as_of}: give from and to"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn text(period: Option<&str>, from: Option<&str>, to: Option<&str>) -> QueryText {
        QueryText {
            period: period.map(str::to_string),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            ..QueryText::default()
        }
    }

    #[test]
    fn the_default_is_the_last_complete_period_on_the_day() {
        let q = text(None, None, None).resolve(PeriodKind::Month, date(2026, 12, 2)).unwrap();
        assert_eq!((q.period.first(), q.period.last()), (date(2026, 11, 1), date(2026, 11, 30)));
        let q = text(Some("quarter"), None, None).resolve(PeriodKind::Month, date(2026, 12, 31)).unwrap();
        assert_eq!((q.period.first(), q.period.last()), (date(2026, 10, 1), date(2026, 12, 31)));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let err = |t: QueryText| t.resolve(PeriodKind::Month, date(2026, 12, 2)).unwrap_err().to_string();
        assert!(err(text(Some("week"), None, None)).contains("`week` is not one of month, quarter, year"));
        assert!(err(text(None, Some("2026-01-01"), None)).contains("from needs to"));
        assert!(err(text(None, Some("2026-13-01"), Some("2026-12-01"))).starts_with("from:"));
        assert!(err(text(Some("month"), Some("2026-01-01"), Some("2026-02-01"))).contains("not both"));
        assert!(err(text(None, Some("2026-03-01"), Some("2026-02-01"))).contains("invalid period"));
    }
}
