//! Behaviour hypotheses: for every milestone of the workspace, and for a rule the user
//! writes (checked as a milestone added to the journey), accounts are split by whether it
//! was achieved by its deadline from the anchor, and their retention at the first renewal,
//! NRR at 12 months and survival compared (the maths: `cairn_measure::hypotheses`).
//!
//! Milestones are decided by the engine itself: the log is replayed through a fresh
//! engine as of the end of the `as_of` day (`cairn_runtime::Runtime::evaluate`), so a
//! milestone here is achieved or missed exactly as `cairn serve` decides it. Discovery
//! reads the event log once and counts each event per account from its anchor.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_core::FixedClock;
use cairn_engine::MilestoneStatus;
use cairn_measure::hypotheses::{
    Candidate, DEFAULT_MIN_GROUP, DiscoveryAccount, Excluded, Outcome, SIGNIFICANCE, Verdict, candidate_rule, discover,
    label_all, outcome, verdict,
};
use cairn_rules::Value;
use cairn_runtime::Runtime;
use cairn_store::Store;
use cairn_workspace::{ProbeMilestone, Workspace};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::{Query, ReportError, Result};

/// What the report states about what it shows.
pub const CORRELATION_NOTE: &str = "These are correlations, not causes: accounts that do a behaviour may differ in other ways. \
To prove that a behaviour causes retention, run a program that encourages it with a holdout \
(`holdout:` in the program) and read `cairn report experiments`.";

/// How a hypothesis is labelled, in words.
pub const LABEL_RULE: &str = "positive (negative) indicator: both groups have at least the minimum of accounts due for \
renewal, the Benjamini-Hochberg adjusted p-value over every hypothesis shown is below 0.05 and the 95% interval of \
the difference in retention lies above (below) 0; inconclusive otherwise";

/// Suggestions discovery prints at most (the best candidate of each event name).
pub const MAX_SUGGESTIONS: usize = 20;

/// A hypotheses request as given (CLI flags or URL query parameters).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HypothesesText {
    /// A rule to test beside the milestones (`count('alert_set', since_anchor) >= 3`).
    pub rule: Option<String>,
    /// The rule's deadline from the anchor (`30d`); also the window of milestones that
    /// have no deadline of their own.
    pub within: Option<String>,
    /// The smallest group labelled, in accounts due for renewal.
    pub min_group: Option<u64>,
    /// Scan every event name × count threshold × window.
    #[serde(default)]
    pub discover: bool,
}

/// A checked hypotheses request.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypotheses {
    pub rule: Option<ProbeMilestone>,
    pub within: SignedDuration,
    pub min_group: u64,
    pub discover: bool,
}

impl HypothesesText {
    pub fn resolve(&self) -> Result<Hypotheses> {
        let within = match &self.within {
            None => SignedDuration::from_hours(30 * 24),
            Some(w) => cairn_workspace::parse_within(w).map_err(|e| ReportError::Invalid(format!("within: {e}")))?,
        };
        let min_group = self.min_group.unwrap_or(DEFAULT_MIN_GROUP);
        if min_group == 0 {
            return Err(ReportError::Invalid(
                "min-group must be at least 1 (the default, 30, keeps noise from being labelled)".into(),
            ));
        }
        let rule = match &self.rule {
            Some(r) if r.trim().is_empty() => {
                return Err(ReportError::Invalid(
                    "rule is empty: write a condition, e.g. `count('report_created', since_anchor) >= 3`".into(),
                ));
            }
            Some(r) => Some(ProbeMilestone { rule: r.clone(), within }),
            None => None,
        };
        Ok(Hypotheses { rule, within, min_group, discover: self.discover })
    }
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct HypothesesReport {
    pub as_of: Date,
    pub min_group: u64,
    pub significance: f64,
    pub label_rule: &'static str,
    pub note: &'static str,
    /// Every milestone, then the rule.
    pub hypotheses: Vec<Hypothesis>,
    pub discovery: Option<DiscoveryReport>,
}

/// One milestone or rule, tested.
#[derive(Debug, Clone, Serialize)]
pub struct Hypothesis {
    /// The milestone's id, or `--rule`.
    pub name: String,
    /// The condition.
    pub rule: String,
    /// The window from the anchor, in days.
    pub within_days: f64,
    /// Accounts whose window has not passed by `as_of`: left out.
    pub undecided_accounts: u64,
    /// Accounts without an anchor: left out.
    pub without_anchor: u64,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// What discovery found.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveryReport {
    pub tested: u64,
    pub too_small: u64,
    /// The labelled ones of `top`, each as a milestone ready to paste under a stage's
    /// `milestones:`.
    pub suggestions: Vec<Suggestion>,
    /// The best tested candidate of each event name, labelled or not, best first (at
    /// most [`MAX_SUGGESTIONS`]).
    pub top: Vec<Candidate>,
    pub excluded: Vec<Excluded>,
}

/// A discovered behaviour as a milestone.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub id: String,
    pub rule: String,
    pub within: String,
    /// The milestone in YAML.
    pub yaml: String,
    #[serde(flatten)]
    pub candidate: Candidate,
}

/// Tests every milestone of `ws` and the request's rule, and runs discovery if asked.
pub async fn hypotheses(
    store: &Store,
    ws: &Workspace,
    query: &Query,
    request: &Hypotheses,
) -> Result<HypothesesReport> {
    let (ws, probe_id) = match &request.rule {
        None => (ws.clone(), None),
        Some(probe) => {
            let (ws, id) = ws.with_probe(probe).map_err(|diagnostics| {
                let text: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
                ReportError::Invalid(format!("the rule does not check:\n{}", text.join("\n")))
            })?;
            (ws, Some(id))
        }
    };
    let ws = Arc::new(ws);
    let Some(journey) = ws.journey() else {
        return Err(ReportError::Invalid(
            "the workspace has no journey: hypotheses are tested from the journey's anchor and its milestones; add a `journey:`"
                .into(),
        ));
    };
    let tz = ws.time_zone().clone();
    let end_of_as_of = start_of(query.as_of.tomorrow().map_err(|e| ReportError::Invalid(format!("as-of: {e}")))?, &tz)?;
    let anchor_trait = journey.anchor.clone();
    let clock = FixedClock::new(end_of_as_of);
    let live = Runtime::evaluate(store, &clock, Arc::clone(&ws)).await.map_err(|e| match e {
        cairn_runtime::RuntimeError::Store(s) => ReportError::Store(s),
        other => ReportError::Invalid(other.to_string()),
    })?;
    let ledger = crate::revenue::ledger(store).await?;
    let engine = &live.engine;
    let anchors: BTreeMap<u64, Option<Date>> =
        engine.accounts().map(|(id, a)| (id, anchor_of(a.traits.get(&anchor_trait), &tz))).collect();

    let mut hypotheses = Vec::new();
    let journey = ws.journey().into_iter().flat_map(|j| j.milestones());
    for m in journey {
        let within = m.within.unwrap_or(request.within);
        let days = window_days(within);
        let (mut held, mut not_held) = (Vec::<Outcome>::new(), Vec::<Outcome>::new());
        let (mut undecided, mut without_anchor) = (0u64, 0u64);
        for (id, a) in engine.accounts() {
            let Some(anchor) = anchors.get(&id).copied().flatten() else {
                without_anchor += 1;
                continue;
            };
            let Some(decided) = anchor.checked_add(days.days()).ok().filter(|d| *d <= query.as_of) else {
                undecided += 1;
                continue;
            };
            let deadline = start_of(decided, &tz)?;
            let did = matches!(a.milestones.get(m.id.as_str()), Some(MilestoneStatus::Achieved(t)) if *t < deadline);
            let o = outcome(ledger.lines(&id.to_string()), anchor, decided, query.as_of);
            if did { held.push(o) } else { not_held.push(o) }
        }
        let is_probe = probe_id.as_deref() == Some(m.id.as_str());
        hypotheses.push(Hypothesis {
            name: if is_probe { cairn_workspace::PROBE_FILE.to_string() } else { m.id.to_string() },
            rule: m.rule.source().to_string(),
            within_days: within.as_secs_f64() / 86_400.0,
            undecided_accounts: undecided,
            without_anchor,
            verdict: verdict(&held, &not_held, request.min_group)?,
        });
    }
    let mut refs: Vec<&mut Verdict> = hypotheses.iter_mut().map(|h| &mut h.verdict).collect();
    label_all(&mut refs)?;

    let discovery = if request.discover {
        Some(discovery(store, &ledger, &anchors, &tz, query.as_of, end_of_as_of, request.min_group).await?)
    } else {
        None
    };
    Ok(HypothesesReport {
        as_of: query.as_of,
        min_group: request.min_group,
        significance: SIGNIFICANCE,
        label_rule: LABEL_RULE,
        note: CORRELATION_NOTE,
        hypotheses,
        discovery,
    })
}

/// Reads the event log up to the end of `as_of` into per-account event times from the
/// anchor, and scans it.
async fn discovery(
    store: &Store,
    ledger: &cairn_measure::Ledger,
    anchors: &BTreeMap<u64, Option<Date>>,
    tz: &TimeZone,
    as_of: Date,
    end_of_as_of: Timestamp,
    min_group: u64,
) -> Result<DiscoveryReport> {
    let mut starts: BTreeMap<u64, (Date, Timestamp)> = BTreeMap::new();
    for (id, anchor) in anchors {
        if let Some(anchor) = anchor {
            starts.insert(*id, (*anchor, start_of(*anchor, tz)?));
        }
    }
    let mut events: BTreeMap<u64, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let last = store.last_seq().await?;
    let seqs: Vec<i64> =
        store.event_times(last).await?.into_iter().filter(|(_, ts)| *ts < end_of_as_of).map(|(s, _)| s).collect();
    for chunk in seqs.chunks(10_000) {
        for e in store.events_by_seq(chunk).await? {
            let name = match e.kind.as_str() {
                "track" => match e.name {
                    Some(n) => n,
                    None => continue,
                },
                "page" | "screen" => e.kind.clone(),
                _ => continue,
            };
            let Some(account) = e.account_id.and_then(|a| u64::try_from(a).ok()) else { continue };
            let Some((_, start)) = starts.get(&account) else { continue };
            let days = e.ts.duration_since(*start).as_secs_f64() / 86_400.0;
            events.entry(account).or_default().entry(name).or_default().push(days);
        }
        tokio::task::yield_now().await;
    }
    let ids: Vec<String> = starts.keys().map(u64::to_string).collect();
    let accounts: Vec<DiscoveryAccount<'_>> = starts
        .iter()
        .zip(&ids)
        .map(|((id, (anchor, _)), key)| {
            let mut ev = events.remove(id).unwrap_or_default();
            for times in ev.values_mut() {
                times.sort_by(f64::total_cmp);
            }
            DiscoveryAccount { anchor: *anchor, lines: ledger.lines(key), events: ev }
        })
        .collect();
    let found = discover(&accounts, as_of, min_group)?;
    // The best candidate of each event name (its threshold and window that predict best).
    let mut seen = std::collections::BTreeSet::new();
    let top: Vec<Candidate> =
        found.candidates.into_iter().filter(|c| seen.insert(c.event.clone())).take(MAX_SUGGESTIONS).collect();
    let suggestions = top.iter().filter(|c| c.verdict.label.is_indicator()).map(|c| suggestion(c.clone())).collect();
    Ok(DiscoveryReport { tested: found.tested, too_small: found.too_small, suggestions, top, excluded: found.excluded })
}

/// A candidate as a milestone definition.
fn suggestion(c: Candidate) -> Suggestion {
    let slug: String = c
        .event
        .to_lowercase()
        .chars()
        .map(|ch| if ch.is_ascii_lowercase() || ch.is_ascii_digit() { ch } else { '_' })
        .collect();
    let slug = slug.split('_').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("_");
    let slug: String = if slug.is_empty() { "behaviour".to_string() } else { slug.chars().take(40).collect() };
    let id = format!("{slug}_{}x_{}d", c.threshold, c.window_days);
    let rule = candidate_rule(&c.event, c.threshold);
    let within = format!("{}d", c.window_days);
    let direction = c.verdict.label.text();
    let retention = |g: &cairn_measure::hypotheses::Group| {
        g.retention.map_or_else(|| "n/a".to_string(), |r| r.percent_one_decimal())
    };
    let yaml = format!(
        "# {direction}: retention {} with, {} without (adjusted p = {:.2e})\n- id: {id}\n  name: {}\n  when: {}\n  within: {within}\n",
        retention(&c.verdict.held),
        retention(&c.verdict.not_held),
        c.verdict.adjusted_p.unwrap_or(1.0),
        yaml_string(&format!(
            "{} {} in the first {} days",
            c.event,
            if c.threshold == 1 { "at least once".to_string() } else { format!("at least {} times", c.threshold) },
            c.window_days
        )),
        yaml_string(&rule),
    );
    Suggestion { id, rule, within, yaml, candidate: c }
}

/// A YAML double-quoted scalar.
fn yaml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whole days of a window, rounded up (a `12h` window is decided the next day).
fn window_days(within: SignedDuration) -> i32 {
    let secs = within.as_secs().max(0);
    i32::try_from((secs + 86_399) / 86_400).unwrap_or(i32::MAX)
}

fn start_of(day: Date, tz: &TimeZone) -> Result<Timestamp> {
    day.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| ReportError::Invalid(format!("{day}: {e}")))
}

fn anchor_of(value: Option<&Value>, tz: &TimeZone) -> Option<Date> {
    match value? {
        Value::Date(d) => Some(*d),
        Value::Timestamp(t) => Some(t.to_zoned(tz.clone()).date()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        let r = HypothesesText::default().resolve().unwrap();
        assert_eq!((r.within, r.min_group, r.rule.is_none()), (SignedDuration::from_hours(720), 30, true));
        let bad = |t: HypothesesText| t.resolve().unwrap_err().to_string();
        assert!(bad(HypothesesText { within: Some("30".into()), ..Default::default() }).starts_with("within: `30` is"));
        assert!(bad(HypothesesText { min_group: Some(0), ..Default::default() }).contains("at least 1"));
        assert!(bad(HypothesesText { rule: Some(" ".into()), ..Default::default() }).contains("rule is empty"));
    }

    #[test]
    fn suggestions_are_yaml_with_escapes() {
        assert_eq!(yaml_string("say \"hi\" \\ now"), "\"say \\\"hi\\\" \\\\ now\"");
        assert_eq!(window_days(SignedDuration::from_hours(12)), 1);
        assert_eq!(window_days(SignedDuration::from_hours(30 * 24)), 30);
    }
}
