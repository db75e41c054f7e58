//! NPS and CSAT from survey answers, for a period, its monthly trend and a segment.
//!
//! **Where answers are.** Every answer is a track event in the log: `nps_submitted` for a
//! 0–10 Net Promoter answer, `csat_submitted` for a 1–5 satisfaction answer, with the
//! score in the `score` property. cairn writes these itself when a survey link in a
//! message is followed (`GET /s`: the engagement `answered`, whose detail carries the
//! survey and the score, is logged as `{survey}_submitted` for the contact), and a
//! product or survey tool may send the same events through the tracking API. Whether an
//! answer is NPS or CSAT is the event's name: cairn's own links carry the survey kind
//! they were signed with, which is the template's choice of link (`links.nps_0`…`nps_10`
//! and `nps_survey_url` for NPS, `links.csat_1`…`csat_5` and `csat_survey_url` for CSAT).
//!
//! **What counts.** An answer counts for the contact it resolves to (identity resolution
//! as of now); one answer per contact and survey per period counts, the latest (by time,
//! then by log order). An answer no contact is known for, or whose score is not a whole
//! number on the survey's scale, is left out and counted in `skipped`. Days are UTC days.
//! With a segment, only answers of contacts whose account is in it count.
//!
//! **The trend** is each calendar month of the period, or, when the period is a single
//! month, the twelve months ending with it.

use std::collections::{BTreeMap, BTreeSet};

use cairn_measure::Period;
use cairn_measure::survey::{Csat, Nps};
use cairn_store::{Store, SurveyAnswerEvent};
use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;

use crate::{Query, ReportError, Result};

/// The event of a 0–10 NPS answer.
pub const NPS_EVENT: &str = "nps_submitted";
/// The event of a 1–5 CSAT answer.
pub const CSAT_EVENT: &str = "csat_submitted";

/// NPS and CSAT of a period with the monthly trend.
#[derive(Debug, Clone, Serialize)]
pub struct NpsReport {
    pub period: Period,
    pub nps: Nps,
    pub csat: Csat,
    /// Month by month, oldest first.
    pub trend: Vec<SurveyMonth>,
    /// Answers in the trend's months that were not counted.
    pub skipped: Skipped,
}

/// One month of the trend.
#[derive(Debug, Clone, Serialize)]
pub struct SurveyMonth {
    pub month: Period,
    pub nps: Nps,
    pub csat: Csat,
}

/// Answers left out, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// No contact is known for the answer.
    pub without_contact: u64,
    /// The score is missing, not a whole number, or off the survey's scale.
    pub bad_score: u64,
}

/// Which survey an answer is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Survey {
    Nps,
    Csat,
}

/// An answer that counts: its contact, its survey, when, its score.
#[derive(Debug, Clone, Copy)]
struct Answer {
    contact: i64,
    survey: Survey,
    day: Date,
    order: (Timestamp, i64),
    score: u8,
}

/// NPS and CSAT for the query's period, its trend and segment.
pub async fn nps(store: &Store, query: &Query) -> Result<NpsReport> {
    let months = trend_months(query.period)?;
    let first = months.first().map_or(query.period.first(), |m| m.first()).min(query.period.first());
    let last = months.last().map_or(query.period.last(), |m| m.last()).max(query.period.last());
    let members = crate::revenue::members(store, None, query, query.period).await?;
    let events =
        store.survey_answer_events(&[NPS_EVENT, CSAT_EVENT], utc_start(first)?, utc_start(day_after(last)?)?).await?;
    let (answers, skipped) = answers(&events, members.as_ref());
    let (nps, csat) = scores(&answers, query.period)?;
    let mut trend = Vec::with_capacity(months.len());
    for month in months {
        let (nps, csat) = scores(&answers, month)?;
        trend.push(SurveyMonth { month, nps, csat });
    }
    Ok(NpsReport { period: query.period, nps, csat, trend, skipped })
}

/// The months of the trend: the period's months, or the twelve ending with a one-month
/// period.
fn trend_months(period: Period) -> Result<Vec<Period>> {
    let months = Period::months(period.first(), period.last())?;
    if months.len() > 1
        || period.first() != period.first().first_of_month()
        || period.last() != period.last().last_of_month()
    {
        return Ok(months);
    }
    let from = period
        .first()
        .checked_sub(11.months())
        .map_err(|e| ReportError::Invalid(format!("the twelve months before {}: {e}", period.first())))?;
    Ok(Period::months(from, period.last())?)
}

/// The answers that count, and how many were left out. With `members`, only answers of
/// contacts whose account is a member.
fn answers(events: &[SurveyAnswerEvent], members: Option<&BTreeSet<String>>) -> (Vec<Answer>, Skipped) {
    let mut skipped = Skipped::default();
    let mut out = Vec::new();
    for e in events {
        let survey = if e.event == NPS_EVENT { Survey::Nps } else { Survey::Csat };
        let Some(contact) = e.contact_id else {
            skipped.without_contact += 1;
            continue;
        };
        if let Some(m) = members
            && !e.account_id.is_some_and(|a| m.contains(&a.to_string()))
        {
            continue;
        }
        let Some(score) = score(&e.properties, survey) else {
            skipped.bad_score += 1;
            continue;
        };
        let day = e.at.to_zoned(jiff::tz::TimeZone::UTC).date();
        out.push(Answer { contact, survey, day, order: (e.at, e.seq), score });
    }
    (out, skipped)
}

/// The `score` property as a whole number on the survey's scale (0–10 or 1–5).
fn score(properties: &serde_json::Value, survey: Survey) -> Option<u8> {
    let n = properties.get("score")?.as_f64()?;
    let (low, high) = match survey {
        Survey::Nps => (0.0, 10.0),
        Survey::Csat => (1.0, 5.0),
    };
    (n.fract() == 0.0 && (low..=high).contains(&n)).then_some(n as u8)
}

/// NPS and CSAT of the answers in `period`: per contact and survey, the latest answer.
fn scores(answers: &[Answer], period: Period) -> Result<(Nps, Csat)> {
    let mut latest: BTreeMap<(Survey, i64), &Answer> = BTreeMap::new();
    for a in answers.iter().filter(|a| period.contains(a.day)) {
        let slot = latest.entry((a.survey, a.contact)).or_insert(a);
        if a.order > slot.order {
            *slot = a;
        }
    }
    let pick = |s: Survey| latest.iter().filter(move |((k, _), _)| *k == s).map(|(_, a)| a.score).collect::<Vec<u8>>();
    Ok((Nps::of(&pick(Survey::Nps))?, Csat::of(&pick(Survey::Csat))?))
}

fn day_after(day: Date) -> Result<Date> {
    day.tomorrow().map_err(|e| ReportError::Invalid(format!("the day after {day}: {e}")))
}

fn utc_start(day: Date) -> Result<Timestamp> {
    day.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| ReportError::Invalid(format!("the start of {day}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use serde_json::json;

    fn event(seq: i64, name: &str, at: &str, contact: Option<i64>, score: serde_json::Value) -> SurveyAnswerEvent {
        SurveyAnswerEvent {
            seq,
            event: name.into(),
            at: at.parse().unwrap(),
            contact_id: contact,
            account_id: contact.map(|c| c * 100),
            properties: json!({ "score": score }),
        }
    }

    #[test]
    fn the_latest_answer_of_a_contact_in_the_period_counts() {
        let events = [
            // Contact 1 answers 3 then 10 in March: only the 10 counts in March.
            event(1, NPS_EVENT, "2026-03-02T10:00:00Z", Some(1), json!(3)),
            event(2, NPS_EVENT, "2026-03-20T10:00:00Z", Some(1), json!(10)),
            // Contact 2: 6 in February, 8 in March.
            event(3, NPS_EVENT, "2026-02-10T10:00:00Z", Some(2), json!(6)),
            event(4, NPS_EVENT, "2026-03-05T10:00:00Z", Some(2), json!(8)),
            // Contact 3: a CSAT 4 and an NPS 0 in March.
            event(5, CSAT_EVENT, "2026-03-06T10:00:00Z", Some(3), json!(4)),
            event(6, NPS_EVENT, "2026-03-06T10:00:00Z", Some(3), json!(0)),
            // Left out: nobody known, a score off the scale, a fraction.
            event(7, NPS_EVENT, "2026-03-06T10:00:00Z", None, json!(9)),
            event(8, CSAT_EVENT, "2026-03-07T10:00:00Z", Some(4), json!(0)),
            event(9, NPS_EVENT, "2026-03-07T10:00:00Z", Some(5), json!(7.5)),
        ];
        let (answers, skipped) = answers(&events, None);
        assert_eq!(skipped, Skipped { without_contact: 1, bad_score: 2 });
        // March: NPS answers 10 (promoter), 8 (passive), 0 (detractor): NPS 100·(1−1)/3 = 0.
        let march = Period::new(date(2026, 3, 1), date(2026, 3, 31)).unwrap();
        let (nps, csat) = scores(&answers, march).unwrap();
        assert_eq!((nps.responses, nps.promoters, nps.passives, nps.detractors), (3, 1, 1, 1));
        assert_eq!(nps.nps.map(|r| r.to_f64()), Some(0.0));
        assert_eq!((csat.responses, csat.satisfied), (1, 1));
        // February and March together: contact 2's latest is the 8 of March; still 3.
        let both = Period::new(date(2026, 2, 1), date(2026, 3, 31)).unwrap();
        assert_eq!(scores(&answers, both).unwrap().0.responses, 3);
        // February alone: contact 2's 6, a detractor: NPS −100.
        let feb = Period::new(date(2026, 2, 1), date(2026, 2, 28)).unwrap();
        assert_eq!(scores(&answers, feb).unwrap().0.nps.map(|r| r.to_f64()), Some(-100.0));
        // A segment holding only account 300 (contact 3's): its NPS answer alone.
        let members: BTreeSet<String> = ["300".to_string()].into();
        let (only, _) = super::answers(&events, Some(&members));
        let (nps, csat) = scores(&only, march).unwrap();
        assert_eq!((nps.responses, nps.detractors, csat.responses), (1, 1, 1));
    }

    #[test]
    fn a_one_month_period_trends_over_twelve_months_and_a_longer_one_over_its_own() {
        let march = Period::new(date(2026, 3, 1), date(2026, 3, 31)).unwrap();
        let months = trend_months(march).unwrap();
        assert_eq!((months.len(), months[0].first(), months[11].last()), (12, date(2025, 4, 1), date(2026, 3, 31)));
        let quarter = Period::new(date(2026, 1, 1), date(2026, 3, 31)).unwrap();
        assert_eq!(trend_months(quarter).unwrap().len(), 3);
        let days = Period::new(date(2026, 3, 5), date(2026, 3, 20)).unwrap();
        assert_eq!(trend_months(days).unwrap().len(), 1, "a part of a month is not stretched to a year");
    }
}
