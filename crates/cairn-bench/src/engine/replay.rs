//! cairn's side: the workload replayed through the engine in time order, timed apart for
//! events and day boundaries, with its transitions tallied and its history read by day.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use cairn::demo::EVENTS;
use cairn_engine::days::{Day, start_of_day};
use cairn_engine::{Engine, EngineEvent, SubjectRef, Transition, TransitionKind};
use cairn_rules::Value;
use cairn_workspace::{Band, Workspace};
use jiff::Timestamp;

use super::answer::{Answer, History};
use super::count_bar::CountBar;
use super::workload::{ROLES, Workload};

/// Transitions produced, by kind, and a digest of all of them (in the order produced),
/// so two builds of the engine can be compared on the same workload.
#[derive(Debug, Default, serde::Serialize)]
pub(super) struct Tally {
    pub(super) total: u64,
    pub(super) by_kind: BTreeMap<&'static str, u64>,
    pub(super) digest: String,
    #[serde(skip)]
    pub(super) hash: u64,
}

impl Tally {
    pub(super) fn absorb(&mut self, ts: &[Transition]) {
        if self.hash == 0 {
            self.hash = 0xcbf2_9ce4_8422_2325;
        }
        for t in ts {
            self.total += 1;
            *self.by_kind.entry(t.kind.event_name()).or_default() += 1;
            let line = format!("{} {:?} {:?}", t.at, t.subject, t.kind);
            for b in line.bytes() {
                self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        self.digest = format!("{:016x}", self.hash);
    }
}

/// Cairn's history as it is produced: member counts added up from the segment
/// transitions (each on the day of its instant), health read from the state at the end of
/// each day.
pub(super) struct HistoryTally<'a> {
    /// The first instant of each day, from day 0 to the one after the last.
    pub(super) day_starts: Vec<Timestamp>,
    pub(super) segments: &'a [&'a str],
    /// Entries minus exits per segment and day.
    pub(super) deltas: BTreeMap<(String, i32), i64>,
    pub(super) health: BTreeMap<(i32, u64), Option<f64>>,
    /// Each account's band as its latest band transition says.
    pub(super) band_now: BTreeMap<u64, Band>,
    pub(super) bands: BTreeMap<(i32, u64), Band>,
    pub(super) default_model: String,
}

impl<'a> HistoryTally<'a> {
    pub(super) fn new(w: &Workload, segments: &'a [&'a str], default_model: String) -> HistoryTally<'a> {
        let day_starts = (w.first_day..=w.end_day + 1).map(|d| start_of_day(d, &w.tz)).collect();
        HistoryTally {
            day_starts,
            segments,
            deltas: BTreeMap::new(),
            health: BTreeMap::new(),
            band_now: BTreeMap::new(),
            bands: BTreeMap::new(),
            default_model,
        }
    }

    pub(super) fn absorb(&mut self, ts: &[Transition]) {
        for t in ts {
            let (segment, d) = match (&t.kind, t.subject) {
                (TransitionKind::SegmentEntered { segment }, _) => (segment, 1),
                (TransitionKind::SegmentExited { segment }, _) => (segment, -1),
                (TransitionKind::HealthBandChanged { to, .. }, SubjectRef::Account(id)) => {
                    self.band_now.insert(id, *to);
                    continue;
                }
                _ => continue,
            };
            if !self.segments.contains(&segment.as_str()) {
                continue;
            }
            let day = self.day_starts.partition_point(|s| *s <= t.at).saturating_sub(1) as i32;
            *self.deltas.entry((segment.clone(), day)).or_default() += d;
        }
    }

    /// Reads the health of day `day` from the engine's state.
    pub(super) fn end_of_day(&mut self, day: i32, engine: &Engine) {
        for (id, a) in engine.accounts() {
            if let Some(h) = a.health.as_ref().filter(|h| h.model == self.default_model) {
                self.health.insert((day, id), h.score);
                if let Some(band) = self.band_now.get(&id) {
                    self.bands.insert((day, id), *band);
                }
            }
        }
    }

    pub(super) fn finish(self, last: i32) -> History {
        let mut segments = BTreeMap::new();
        for id in self.segments {
            let mut members = 0;
            for day in 0..=last {
                members += self.deltas.get(&(id.to_string(), day)).copied().unwrap_or(0);
                segments.insert((id.to_string(), day), members);
            }
        }
        History { segments, health: self.health, bands: self.bands }
    }
}

/// The cairn side of the run.
pub(super) struct CairnRun {
    pub(super) shards: usize,
    pub(super) setup_secs: f64,
    pub(super) event_secs: f64,
    pub(super) tick_secs: f64,
    pub(super) peak_rss_mb: Option<f64>,
    pub(super) tally: Tally,
    pub(super) answer: Answer,
    /// Accounts scored by the default health model at the end (the SQL computes that
    /// model only).
    pub(super) default_model_accounts: Vec<u64>,
    pub(super) history: History,
}

pub(super) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(super) fn run_cairn(
    w: &Workload,
    ws: Arc<Workspace>,
    shards: Option<u8>,
    total: u64,
    sql_segments: &[&str],
) -> Result<CairnRun> {
    let start = start_of_day(w.first_day, &w.tz);
    let mut engine = match shards {
        Some(n) => Engine::with_shards(ws.clone(), start, usize::from(n)),
        None => Engine::new(ws.clone(), start),
    };
    engine.set_backfill(true);
    let default_model = ws.health().map(|h| h.default.id.as_str().to_string()).unwrap_or_default();
    let mut history = HistoryTally::new(w, sql_segments, default_model.clone());
    let mut tally = Tally::default();
    let t = Instant::now();
    for (i, a) in w.accounts.iter().enumerate() {
        let out = engine.upsert_account(i as u64 + 1, w.account_traits(a));
        tally.absorb(&out);
        history.absorb(&out);
    }
    for (i, a) in w.accounts.iter().enumerate() {
        for c in a.first_contact..a.first_contact + u64::from(a.contacts) {
            let role = ROLES[w.roles.get(c as usize - 1).copied().unwrap_or(1) as usize];
            let traits = BTreeMap::from([("role".to_string(), Value::String(role.into()))]);
            let out = engine.upsert_contact(c, Some(i as u64 + 1), traits);
            tally.absorb(&out);
            history.absorb(&out);
        }
    }
    let setup_secs = t.elapsed().as_secs_f64();
    let (mut event_time, mut tick_time) = (Duration::ZERO, Duration::ZERO);
    let mut bar = CountBar::new(total, "cairn: replaying events");
    let mut raw = Vec::new();
    let mut batch: Vec<EngineEvent> = Vec::new();
    let mut out: Vec<Transition> = Vec::new();
    for k in 0..w.per_day.len() {
        w.day_events(k, &mut raw);
        batch.clear();
        for e in &raw {
            batch.push(EngineEvent {
                ts: Timestamp::from_second(e.ts)?,
                name: EVENTS[e.event as usize].to_string(),
                contact: Some(e.contact),
                account: Some(u64::from(e.account) + 1),
                numbers: Vec::new(),
            });
        }
        // The day boundary (windows slide: everything re-evaluated), timed apart.
        let t = Instant::now();
        out.extend(engine.advance_to(start_of_day(w.first_day + k as Day, &w.tz)));
        tick_time += t.elapsed();
        let t = Instant::now();
        out.extend(engine.apply_all(&batch, Timestamp::MAX));
        event_time += t.elapsed();
        tally.absorb(&out);
        history.absorb(&out);
        history.end_of_day(k as i32, &engine);
        out.clear();
        bar.inc(batch.len() as u64);
    }
    let t = Instant::now();
    out.extend(engine.advance_to(w.end()));
    tick_time += t.elapsed();
    tally.absorb(&out);
    history.absorb(&out);
    let last = w.per_day.len() as i32;
    history.end_of_day(last, &engine);
    bar.finish();
    let peak_rss_mb = peak_rss_mb();
    drop(batch);

    let mut answer = Answer::default();
    for id in sql_segments {
        answer.segments.insert(id.to_string(), engine.segment_members(id).len() as u64);
    }
    let mut default_model_accounts = Vec::new();
    for (id, a) in engine.accounts() {
        if let Some(h) = &a.health {
            answer.health.insert(id, h.score);
            if h.model == default_model {
                default_model_accounts.push(id);
            }
        }
    }
    Ok(CairnRun {
        shards: engine.shards(),
        setup_secs,
        event_secs: event_time.as_secs_f64(),
        tick_secs: tick_time.as_secs_f64(),
        peak_rss_mb,
        tally,
        answer,
        default_model_accounts,
        history: history.finish(last),
    })
}
