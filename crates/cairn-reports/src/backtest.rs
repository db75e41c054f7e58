//! The health backtest: how well did the health score predict what happened at renewal?
//!
//! For every subscription line whose end date falls in the period and whose renewal was
//! decided by `as_of` (its 30-day renewal window closed: end + 31 days ≤ as_of; the rule of
//! `cairn_measure::renewal`), the account's end-of-day health 30, 60 and 90 days before the
//! end date: overall, per pillar and per measure (0–100 scores). At each horizon:
//!
//! - the ROC AUC of renewed against churned (`cairn_measure::stats::roc_auc`), overall, per
//!   pillar and per measure: the chance that a renewed line's account scored higher than a
//!   churned one's (0.5: no better than a coin; below 0.5: the score points the wrong way).
//!   Withheld, with "too few renewals" or "too few churns", below [`MIN_PER_OUTCOME`] of
//!   either among the lines that have a score;
//! - the churn rate per band (`green_then_churned`: the lines that churned while their
//!   account was green, "green right up to the day they churned");
//! - a calibration table by score decile: the mean score against the observed renewal
//!   rate.
//!
//! Health comes from the daily snapshots in the store (written by the runtime) for the
//! days they cover; where the store holds none (before the runtime wrote any, after the
//! day it wrote through, an account it has none for), the log is replayed through the
//! engine as the runtime's start does (`Runtime::health_history`), up to the end of
//! `as_of`, and that replay gives the health. A line is counted once per line: an account
//! with two lines ending on one day counts twice, as the renewal rate counts it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use cairn_core::FixedClock;
use cairn_measure::renewal::{RENEWAL_GAP_DAYS, renewal_rate};
use cairn_measure::stats::roc_auc;
use cairn_measure::{Period, Ratio};
use cairn_runtime::Runtime;
use cairn_store::{HealthSnapshotRecord, Store};
use cairn_workspace::Workspace;
use jiff::ToSpan;
use jiff::civil::Date;
use serde::Serialize;

use crate::revenue::{ledger, members};
use crate::{Query, ReportError, Result};

/// Days before a line's end date at which its account's health is read.
pub const HORIZONS_DAYS: [i32; 3] = [30, 60, 90];

/// The fewest renewed and the fewest churned lines (each) with a score for which an AUC
/// is given: with fewer, one line more or less swings it by a tenth or more.
pub const MIN_PER_OUTCOME: u64 = 5;

/// The health backtest of a period.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    pub period: Period,
    pub as_of: Date,
    /// Lines ending in the period whose renewal was decided by `as_of`.
    pub lines: u64,
    /// Of those, renewed and churned.
    pub renewed: u64,
    pub churned: u64,
    /// Lines ending in the period whose 30-day renewal window was still open on `as_of`
    /// (left out).
    pub undecided: u64,
    /// [`MIN_PER_OUTCOME`].
    pub min_per_outcome: u64,
    /// Where the health came from.
    pub source: HealthSource,
    /// The figures 30, 60 and 90 days before the end dates.
    pub horizons: Vec<Horizon>,
    /// Each line with its account's health at each horizon.
    pub line_health: Vec<LineHealth>,
}

/// Where the health read came from.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSource {
    /// The last day the store's snapshots cover, if any.
    pub stored_through: Option<Date>,
    /// Readings (line × horizon) taken from stored snapshots.
    pub from_store: u64,
    /// Readings recomputed by replaying the log.
    pub from_replay: u64,
    /// Readings with no health at all (the account was not scored yet then).
    pub missing: u64,
}

/// The figures at one horizon.
#[derive(Debug, Clone, Serialize)]
pub struct Horizon {
    /// Days before the end date.
    pub days_before: i32,
    /// The overall score's AUC.
    pub overall: Auc,
    /// Each pillar's (by id, in the order first met).
    pub pillars: Vec<NamedAuc>,
    /// Each measure's (`pillar.measure`), by its 0–100 score.
    pub measures: Vec<NamedAuc>,
    /// Churn per band.
    pub bands: Vec<BandRow>,
    /// Lines that churned while their account was green at this horizon.
    pub green_then_churned: u64,
    /// Mean score against the renewal rate, per score decile with lines.
    pub calibration: Vec<CalibrationRow>,
}

/// An AUC with what it stands on.
#[derive(Debug, Clone, Serialize)]
pub struct Auc {
    /// Lines with a score, renewed and churned.
    pub renewed: u64,
    pub churned: u64,
    /// The AUC of renewed against churned; `None` with a `note` below the minimum.
    pub auc: Option<f64>,
    /// Why there is no AUC.
    pub note: Option<String>,
}

/// An AUC of a pillar or measure.
#[derive(Debug, Clone, Serialize)]
pub struct NamedAuc {
    pub id: String,
    #[serde(flatten)]
    pub auc: Auc,
}

/// Churn in one band.
#[derive(Debug, Clone, Serialize)]
pub struct BandRow {
    /// `red`, `yellow`, `green`.
    pub band: String,
    pub lines: u64,
    pub churned: u64,
    /// churned / lines.
    pub churn_rate: Option<Ratio>,
}

/// One score decile of the calibration table.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationRow {
    /// Scores from `from` (included) to `to` (excluded; 100 included in the last).
    pub from: u8,
    pub to: u8,
    pub lines: u64,
    /// The mean overall score of those lines.
    pub mean_score: f64,
    pub renewed: u64,
    /// renewed / lines: what the mean score should be read against.
    pub renewal_rate: Option<Ratio>,
}

/// A line and its account's health before its end.
#[derive(Debug, Clone, Serialize)]
pub struct LineHealth {
    pub line: String,
    pub account: String,
    pub end: Date,
    pub renewed: bool,
    /// At each of [`HORIZONS_DAYS`], in order.
    pub health: Vec<Option<HealthAt>>,
}

/// An account's end-of-day health on a day.
#[derive(Debug, Clone, Serialize)]
pub struct HealthAt {
    pub day: Date,
    pub score: Option<f64>,
    pub band: Option<String>,
    pub pillars: Vec<(String, Option<f64>)>,
    pub measures: Vec<(String, String, Option<f64>)>,
}

impl HealthAt {
    fn of(day: Date, s: &HealthSnapshotRecord) -> HealthAt {
        HealthAt { day, score: s.score, band: s.band.clone(), pillars: s.pillars.clone(), measures: s.measures.clone() }
    }
}

/// The backtest of the lines ending in `query.period`, decided by `query.as_of`.
pub async fn backtest(store: &Store, ws: Arc<Workspace>, query: &Query) -> Result<Backtest> {
    if ws.health().is_none() {
        return Err(ReportError::Invalid(
            "the workspace defines no health score to backtest: add a `health:` section (bands, pillars and measures) to its YAML".into(),
        ));
    }
    let ledger = ledger(store).await?;
    let members = members(store, Some(&ws), query, query.period).await?;
    let not_renewed: BTreeSet<String> =
        renewal_rate(&ledger, query.period, members.as_ref()).not_renewed.into_iter().collect();
    let mut lines = Vec::new();
    let mut undecided = 0;
    for (account, account_lines) in ledger.accounts(members.as_ref()) {
        for line in account_lines.iter().filter(|l| query.period.contains(l.end)) {
            let decided = line.end.checked_add((RENEWAL_GAP_DAYS + 1).days()).is_ok_and(|d| d <= query.as_of);
            if !decided {
                undecided += 1;
                continue;
            }
            let id: i64 = account.parse().map_err(|_| {
                ReportError::Invalid(format!("line {}: account `{account}` is not a cairn id", line.id))
            })?;
            lines.push((line.id.clone(), id, line.end, !not_renewed.contains(&line.id)));
        }
    }
    // Every (account, day) read.
    let day_before = |end: Date, h: i32| end.checked_sub(h.days()).ok();
    let mut wanted: BTreeSet<(i64, Date)> = BTreeSet::new();
    for (_, account, end, _) in &lines {
        for h in HORIZONS_DAYS {
            if let Some(d) = day_before(*end, h) {
                wanted.insert((*account, d));
            }
        }
    }
    let through = store.health_snapshots_through().await?;
    let stored_days: Vec<Date> = {
        let days: BTreeSet<Date> =
            wanted.iter().map(|(_, d)| *d).filter(|d| through.is_some_and(|t| *d <= t)).collect();
        days.into_iter().collect()
    };
    let mut stored: HashMap<(i64, Date), HealthSnapshotRecord> = HashMap::new();
    for days in stored_days.chunks(500) {
        for (day, s) in store.health_snapshots_on(days).await? {
            if wanted.contains(&(s.account_id, day)) {
                stored.insert((s.account_id, day), s);
            }
        }
    }
    let replayed =
        if wanted.iter().any(|k| !stored.contains_key(k)) { Some(replay(store, ws, query.as_of).await?) } else { None };
    let mut source = HealthSource { stored_through: through, from_store: 0, from_replay: 0, missing: 0 };
    let mut line_health = Vec::with_capacity(lines.len());
    for (line, account, end, renewed) in lines {
        let mut health = Vec::with_capacity(HORIZONS_DAYS.len());
        for h in HORIZONS_DAYS {
            let at = day_before(end, h).and_then(|d| {
                if let Some(s) = stored.get(&(account, d)) {
                    source.from_store += 1;
                    return Some(HealthAt::of(d, s));
                }
                let s = replayed.as_ref().and_then(|r| in_force(r, account, d))?;
                source.from_replay += 1;
                Some(HealthAt::of(d, s))
            });
            if at.is_none() {
                source.missing += 1;
            }
            health.push(at);
        }
        line_health.push(LineHealth { line, account: account.to_string(), end, renewed, health });
    }
    let horizons =
        HORIZONS_DAYS.iter().enumerate().map(|(i, h)| horizon(*h, i, &line_health)).collect::<Result<Vec<_>>>()?;
    let renewed = line_health.iter().filter(|l| l.renewed).count() as u64;
    Ok(Backtest {
        period: query.period,
        as_of: query.as_of,
        lines: line_health.len() as u64,
        renewed,
        churned: line_health.len() as u64 - renewed,
        undecided,
        min_per_outcome: MIN_PER_OUTCOME,
        source,
        horizons,
        line_health,
    })
}

/// Every account's health runs by replaying the log to the end of `as_of` (nothing later
/// is known), by account.
async fn replay(store: &Store, ws: Arc<Workspace>, as_of: Date) -> Result<BTreeMap<i64, Vec<HealthSnapshotRecord>>> {
    let end = as_of
        .tomorrow()
        .and_then(|d| d.to_zoned(ws.time_zone().clone()))
        .map(|z| z.timestamp())
        .map_err(|e| ReportError::Invalid(format!("as-of {as_of}: {e}")))?;
    let clock = FixedClock::new(end);
    let mut by_account: BTreeMap<i64, Vec<HealthSnapshotRecord>> = BTreeMap::new();
    for r in Runtime::health_history(store, &clock, ws).await? {
        by_account.entry(r.account_id).or_default().push(r);
    }
    Ok(by_account)
}

/// The run in force on `day` (runs in day order).
fn in_force(runs: &BTreeMap<i64, Vec<HealthSnapshotRecord>>, account: i64, day: Date) -> Option<&HealthSnapshotRecord> {
    let runs = runs.get(&account)?;
    let after = runs.partition_point(|r| r.day <= day);
    after.checked_sub(1).and_then(|i| runs.get(i))
}

/// The AUC of `(score, renewed)` pairs, withheld below the minimum.
fn auc(pairs: &[(f64, bool)]) -> Result<Auc> {
    let renewed = pairs.iter().filter(|(_, r)| *r).count() as u64;
    let churned = pairs.len() as u64 - renewed;
    let short = |what: &str| {
        Some(format!(
            "{what}: {renewed} renewed and {churned} churned lines have a score; the AUC needs at least {MIN_PER_OUTCOME} of each"
        ))
    };
    let note = if renewed < MIN_PER_OUTCOME {
        short("too few renewals")
    } else if churned < MIN_PER_OUTCOME {
        short("too few churns")
    } else {
        None
    };
    let auc = match note {
        Some(_) => None,
        None => {
            let scores: Vec<f64> = pairs.iter().map(|(s, _)| *s).collect();
            let positive: Vec<bool> = pairs.iter().map(|(_, r)| *r).collect();
            roc_auc(&scores, &positive)?
        }
    };
    Ok(Auc { renewed, churned, auc, note })
}

fn horizon(days_before: i32, i: usize, lines: &[LineHealth]) -> Result<Horizon> {
    let read: Vec<(&HealthAt, bool)> =
        lines.iter().filter_map(|l| l.health.get(i).and_then(Option::as_ref).map(|h| (h, l.renewed))).collect();
    let overall: Vec<(f64, bool)> = read.iter().filter_map(|(h, r)| h.score.map(|s| (s, *r))).collect();
    // Pillars and measures by id, in the order first met.
    let mut pillar_ids: Vec<String> = Vec::new();
    let mut pillars: HashMap<String, Vec<(f64, bool)>> = HashMap::new();
    let mut measure_ids: Vec<String> = Vec::new();
    let mut measures: HashMap<String, Vec<(f64, bool)>> = HashMap::new();
    for (h, r) in &read {
        for (id, score) in &h.pillars {
            if !pillars.contains_key(id) {
                pillar_ids.push(id.clone());
            }
            let e = pillars.entry(id.clone()).or_default();
            if let Some(s) = score {
                e.push((*s, *r));
            }
        }
        for (pillar, measure, score) in &h.measures {
            let id = format!("{pillar}.{measure}");
            if !measures.contains_key(&id) {
                measure_ids.push(id.clone());
            }
            let e = measures.entry(id).or_default();
            if let Some(s) = score {
                e.push((*s, *r));
            }
        }
    }
    let named = |ids: Vec<String>, by: &HashMap<String, Vec<(f64, bool)>>| -> Result<Vec<NamedAuc>> {
        ids.into_iter()
            .map(|id| {
                let pairs = by.get(&id).map(Vec::as_slice).unwrap_or_default();
                Ok(NamedAuc { auc: auc(pairs)?, id })
            })
            .collect()
    };
    let mut bands = Vec::new();
    for band in ["red", "yellow", "green"] {
        let in_band: Vec<bool> =
            read.iter().filter(|(h, _)| h.band.as_deref() == Some(band)).map(|(_, r)| *r).collect();
        let churned = in_band.iter().filter(|r| !**r).count() as u64;
        bands.push(BandRow {
            band: band.to_string(),
            lines: in_band.len() as u64,
            churned,
            churn_rate: Ratio::new(churned, in_band.len() as u64),
        });
    }
    let green_then_churned = bands.iter().find(|b| b.band == "green").map_or(0, |b| b.churned);
    let mut calibration = Vec::new();
    for decile in 0..10u8 {
        let (from, to) = (decile * 10, decile * 10 + 10);
        let in_bin: Vec<&(f64, bool)> = overall
            .iter()
            .filter(|(s, _)| *s >= f64::from(from) && (*s < f64::from(to) || (decile == 9 && *s <= 100.0)))
            .collect();
        if in_bin.is_empty() {
            continue;
        }
        let renewed = in_bin.iter().filter(|(_, r)| *r).count() as u64;
        calibration.push(CalibrationRow {
            from,
            to,
            lines: in_bin.len() as u64,
            mean_score: in_bin.iter().map(|(s, _)| s).sum::<f64>() / in_bin.len() as f64,
            renewed,
            renewal_rate: Ratio::new(renewed, in_bin.len() as u64),
        });
    }
    Ok(Horizon {
        days_before,
        overall: auc(&overall)?,
        pillars: named(pillar_ids, &pillars)?,
        measures: named(measure_ids, &measures)?,
        bands,
        green_then_churned,
        calibration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auc_is_withheld_below_the_minimum_of_either_outcome() {
        // 5 renewed at 80, 4 churned at 20: too few churns.
        let mut pairs: Vec<(f64, bool)> = (0..5).map(|_| (80.0, true)).collect();
        pairs.extend((0..4).map(|_| (20.0, false)));
        let a = auc(&pairs).unwrap();
        assert_eq!((a.renewed, a.churned, a.auc), (5, 4, None));
        assert!(a.note.unwrap().starts_with("too few churns: 5 renewed and 4 churned"));
        // One more churn, and every renewed line outscores every churned one: AUC 1.
        pairs.push((30.0, false));
        assert_eq!(auc(&pairs).unwrap().auc, Some(1.0));
        let a = auc(&pairs[4..]).unwrap();
        assert!(a.note.unwrap().starts_with("too few renewals: 1 renewed"));
    }

    #[test]
    fn the_run_in_force_is_the_last_starting_on_or_before_the_day() {
        let run = |day: &str, score: f64| HealthSnapshotRecord {
            account_id: 1,
            day: day.parse().unwrap(),
            model: "default".into(),
            score: Some(score),
            band: None,
            pillars: vec![],
            measures: vec![],
        };
        let runs = BTreeMap::from([(1, vec![run("2026-01-03", 0.0), run("2026-02-01", 80.0)])]);
        let d = |s: &str| s.parse::<Date>().unwrap();
        assert!(in_force(&runs, 1, d("2026-01-02")).is_none());
        assert_eq!(in_force(&runs, 1, d("2026-01-03")).unwrap().score, Some(0.0));
        assert_eq!(in_force(&runs, 1, d("2026-01-31")).unwrap().score, Some(0.0));
        assert_eq!(in_force(&runs, 1, d("2026-02-01")).unwrap().score, Some(80.0));
        assert!(in_force(&runs, 2, d("2026-02-01")).is_none());
    }
}
