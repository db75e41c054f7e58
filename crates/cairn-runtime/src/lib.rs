//! cairn-runtime: the engine at run time.
//!
//! [`Runtime::start`] loads accounts and contacts from the store, replays the event log
//! into a fresh [`Engine`] in time order (a backfill: what the definitions say about the
//! past), stores the transitions it produced and brings the engine to "now". Then
//! [`Runtime::run`] keeps it current: new events (in the order they were stored), changed
//! accounts and contacts, and the passing of time (a tick each second) — each transition
//! stored once, under a deterministic key, however often it is recomputed. Each account's
//! end-of-day health is stored the same way, as runs (`HealthSnapshotRecord`: a row from
//! each day it changed), in one batch per replayed chunk or catch-up, with the last day
//! complete; a change of definitions clears them before its replay writes them again.
//! [`Runtime::health_history`] is that replay without writing, for reports that need
//! health the store does not hold.
//!
//! Time comes from the [`Clock`] it is given. It knows nothing of HTTP.
//!
//! Accounts are loaded with the ARR of the subscription lines active today. The store hands
//! out `(seq, ts)` pairs and the sort into time order happens here, so the log needs no index
//! on time and appends stay fast. Transitions are backfill unless the definitions' content
//! hash is the one last recorded. `run` reloads traits when the store signals a data change;
//! `reload` builds a new engine beside the old one and swaps it in. `Runtime::evaluate` is the
//! read-only variant for CLI reports.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

mod replay;
mod traits;
pub mod views;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cairn_core::Clock;
use cairn_engine::days::{date_of_day, day_of};
use cairn_engine::{Engine, EngineEvent, HealthOverride, HealthRun, SubjectRef, Transition};
use cairn_store::{HealthSnapshotRecord, LogEvent, NewTransition, Store, StoreError};
use cairn_workspace::{Band, Workspace};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

pub use traits::{account_traits, contact_traits};

/// Events read from the store per query.
const EVENTS_PER_READ: u32 = 10_000;
/// The least time between two reloads of every account's and contact's traits.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Why the runtime could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such account.
    #[error("no account `{0}`: give its cairn id, CRM id or product id")]
    UnknownAccount(String),
    /// A bad override.
    #[error("{0}")]
    BadOverride(String),
    /// The work was cancelled (the server is shutting down, or whoever asked is gone)
    /// before it finished; nothing was swapped in.
    #[error("cancelled before the engine finished evaluating the workspace")]
    Cancelled,
}

/// A flag that asks a long evaluation (a start, a reload) to stop at its next
/// checkpoint, with [`RuntimeError::Cancelled`]. Clones share the flag: keep one, hand
/// another to [`Runtime::start_cancellable`], and call [`Cancel::cancel`] on SIGTERM.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not raised.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Raises the flag: every evaluation given it stops at its next checkpoint.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn check(&self) -> Result<(), RuntimeError> {
        if self.is_cancelled() { Err(RuntimeError::Cancelled) } else { Ok(()) }
    }
}

/// The live engine and where it stands in the log.
#[derive(Debug)]
pub struct Live {
    /// The engine.
    pub engine: Engine,
    /// The last event seq applied.
    pub last_seq: i64,
    /// The content hash of the definitions it runs.
    pub definitions_hash: String,
    /// The last day whose end-of-day health was stored (see [`HealthSnapshotRecord`]).
    pub health_through: Option<jiff::civil::Date>,
}

/// The engine at run time. Cheap to clone: clones share the engine.
#[derive(Clone)]
pub struct Runtime {
    store: Store,
    clock: Arc<dyn Clock>,
    live: Arc<RwLock<Live>>,
    /// Raised on shutdown: a reload under way stops.
    cancel: Cancel,
}

/// A content hash of a workspace's files (name and text), for the definitions log and to
/// tell a changed definition from a restart.
pub fn definitions_hash(files: &[cairn_workspace::SourceFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

/// A duration in days, with fractions.
pub fn days_between(d: jiff::SignedDuration) -> f64 {
    d.as_secs_f64() / 86_400.0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Runtime {
    /// Builds the engine for `ws` from the store: loads accounts and contacts, replays
    /// the log in time order and advances to the clock's now, storing every transition.
    /// Transitions are marked as backfill unless these definitions (by `hash`) are the
    /// ones last recorded — then the replay only recomputes what was already stored, and
    /// whatever is new (a deadline that passed while cairn was down) is live.
    pub async fn start(
        store: Store,
        clock: Arc<dyn Clock>,
        ws: Arc<Workspace>,
        hash: String,
    ) -> Result<Runtime, RuntimeError> {
        Runtime::start_cancellable(store, clock, ws, hash, Cancel::new()).await
    }

    /// [`Runtime::start`], stopping with [`RuntimeError::Cancelled`] at the next
    /// checkpoint (every few thousand events replayed) once `cancel` is raised; a later
    /// [`Runtime::reload`] stops the same way. What it stored before stopping is kept (a
    /// transition is stored once under its key, so the next start recomputes the rest).
    pub async fn start_cancellable(
        store: Store,
        clock: Arc<dyn Clock>,
        ws: Arc<Workspace>,
        hash: String,
        cancel: Cancel,
    ) -> Result<Runtime, RuntimeError> {
        let live = build(&store, clock.as_ref(), ws, hash, Persist::Yes, &cancel, None).await?;
        Ok(Runtime { store, clock, live: Arc::new(RwLock::new(live)), cancel })
    }

    /// Evaluates `ws` over the store as of the clock's now without writing anything (for
    /// read-only tools: `cairn show account`, `cairn segments`, a program preview). It
    /// yields to the async runtime between batches of events, so dropping the future
    /// (a client gone) stops the work there.
    pub async fn evaluate(store: &Store, clock: &dyn Clock, ws: Arc<Workspace>) -> Result<Live, RuntimeError> {
        build(store, clock, ws, String::new(), Persist::No, &Cancel::new(), None).await
    }

    /// Every account's health history as `ws` computes it, by replaying the log as
    /// [`Runtime::start`] does up to the clock's now, writing nothing: for days the store
    /// holds no snapshot of. Runs by account and day, as the store keeps them.
    pub async fn health_history(
        store: &Store,
        clock: &dyn Clock,
        ws: Arc<Workspace>,
    ) -> Result<Vec<HealthSnapshotRecord>, RuntimeError> {
        let mut runs = Vec::new();
        build(store, clock, ws, String::new(), Persist::No, &Cancel::new(), Some(&mut runs)).await?;
        // The last report of an account's day is its end-of-day health.
        let mut records: Vec<HealthSnapshotRecord> = Vec::with_capacity(runs.len());
        for r in runs.iter().map(snapshot_record) {
            match records.last_mut() {
                Some(last) if (last.account_id, last.day) == (r.account_id, r.day) => *last = r,
                _ => records.push(r),
            }
        }
        Ok(records)
    }

    /// The flag that stops this runtime's reloads (raise it on shutdown).
    pub fn cancel_handle(&self) -> Cancel {
        self.cancel.clone()
    }

    /// Reads the live state.
    pub async fn read<T>(&self, f: impl FnOnce(&Live) -> T) -> T {
        f(&*self.live.read().await)
    }

    /// The store it runs on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Replaces the definitions: builds a new engine by replaying the log (a backfill),
    /// then swaps it in. The old engine keeps serving until the new one is ready.
    /// It stops with [`RuntimeError::Cancelled`] once the runtime's [`Cancel`] is raised,
    /// the old engine still in place.
    pub async fn reload(&self, ws: Arc<Workspace>, hash: String) -> Result<(), RuntimeError> {
        let live = build(&self.store, self.clock.as_ref(), ws, hash, Persist::Yes, &self.cancel, None).await?;
        let mut guard = self.live.write().await;
        *guard = live;
        drop(guard);
        // Catch up with what arrived during the rebuild.
        self.catch_up().await
    }

    /// Applies everything new: events stored since the last one applied, then the clock.
    pub async fn catch_up(&self) -> Result<(), RuntimeError> {
        loop {
            let after = self.live.read().await.last_seq;
            let events = self.store.events_after(after, EVENTS_PER_READ).await?;
            let now = self.clock.now();
            let mut out = Vec::new();
            let mut live = self.live.write().await;
            out.extend(live.engine.advance_to(now));
            let props = live.engine.sum_properties().to_vec();
            let batch: Vec<EngineEvent> = events.iter().filter_map(|e| engine_event(e, &props)).collect();
            out.extend(live.engine.apply_all(&batch, now));
            live.last_seq = events.iter().map(|e| e.seq).fold(live.last_seq, i64::max);
            let health = health_to_store(&mut live);
            drop(live);
            store_transitions(&self.store, &out).await?;
            if let Some((runs, through)) = health {
                store_health(&self.store, runs, through).await?;
            }
            if events.len() < EVENTS_PER_READ as usize {
                return Ok(());
            }
        }
    }

    /// Reloads accounts and contacts from the store and applies what changed.
    pub async fn refresh_traits(&self) -> Result<(), RuntimeError> {
        let today = self.traits_day().await;
        let accounts = self.store.engine_accounts(today).await?;
        let contacts = self.store.engine_contacts().await?;
        self.refresh_traits_from(&accounts, &contacts).await
    }

    /// The day [`Runtime::refresh_traits`] reads accounts on (their ARR is the lines
    /// active that day): today in the workspace's time zone.
    pub async fn traits_day(&self) -> jiff::civil::Date {
        let tz = self.live.read().await.engine.workspace().time_zone().clone();
        tz.to_datetime(self.clock.now()).date()
    }

    /// [`Runtime::refresh_traits`] with the records read by the caller (who needs them
    /// too): `engine_accounts` on [`Runtime::traits_day`] and `engine_contacts`.
    pub async fn refresh_traits_from(
        &self,
        accounts: &[cairn_store::AccountRecord],
        contacts: &[cairn_store::ContactRecord],
    ) -> Result<(), RuntimeError> {
        let mut out = Vec::new();
        let mut live = self.live.write().await;
        let now = self.clock.now();
        out.extend(live.engine.advance_to(now));
        let ws = Arc::clone(live.engine.workspace_arc());
        for a in accounts {
            let traits = account_traits(a, &ws);
            let unchanged = live.engine.account(a.id as u64).is_some_and(|s| s.traits == traits && s.whole);
            if !unchanged {
                out.extend(live.engine.upsert_account(a.id as u64, traits));
            }
        }
        for c in contacts {
            out.extend(live.engine.upsert_contact(c.id as u64, c.account_id.map(|a| a as u64), contact_traits(c, &ws)));
        }
        let health = health_to_store(&mut live);
        drop(live);
        store_transitions(&self.store, &out).await?;
        if let Some((runs, through)) = health {
            store_health(&self.store, runs, through).await?;
        }
        Ok(())
    }

    /// Sets (or, with `score: None`, clears) a CSM's override of an account's health:
    /// recorded in the audit trail, shown beside the computed score, never overwritten
    /// by an evaluation, void after `expires_at`.
    pub async fn set_health_override(
        &self,
        account: i64,
        score: Option<f64>,
        reason: &str,
        by: &str,
        expires_at: Timestamp,
    ) -> Result<(), RuntimeError> {
        if let Some(s) = score
            && !(0.0..=100.0).contains(&s)
        {
            return Err(RuntimeError::BadOverride(format!("score {s} is outside 0–100")));
        }
        if reason.trim().is_empty() {
            return Err(RuntimeError::BadOverride("a reason is required: say why the score is overridden".into()));
        }
        let now = self.clock.now();
        if expires_at <= now {
            return Err(RuntimeError::BadOverride(format!("expires_at {expires_at} is not in the future")));
        }
        self.store.insert_health_override(account, score, reason, by, now, Some(expires_at)).await?;
        let o = score.map(|score| HealthOverride {
            score,
            reason: reason.to_string(),
            by: by.to_string(),
            set_at: now,
            expires_at,
        });
        self.live.write().await.engine.set_health_override(account as u64, o);
        Ok(())
    }

    /// Keeps the engine current until `shutdown` resolves (or the runtime's [`Cancel`] is
    /// raised): wakes on new events, on changed accounts or contacts, and every second
    /// for the clock.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut appends = self.store.event_appends();
        let mut changes = self.store.data_changes();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Reloading traits reads every account and contact: under a stream of identify
        // and group calls it runs at most once per `REFRESH_EVERY`, the rest waits for
        // the next tick (operational pacing, not domain time).
        let mut last_refresh: Option<tokio::time::Instant> = None;
        let mut refresh_pending = false;
        tokio::pin!(shutdown);
        loop {
            let refresh_now = |last: Option<tokio::time::Instant>| last.is_none_or(|t| t.elapsed() >= REFRESH_EVERY);
            if self.cancel.is_cancelled() {
                return;
            }
            let result = tokio::select! {
                _ = &mut shutdown => return,
                r = appends.changed() => match r {
                    Ok(()) => self.catch_up().await,
                    Err(_) => return,
                },
                r = changes.changed() => match r {
                    Ok(()) if refresh_now(last_refresh) => {
                        last_refresh = Some(tokio::time::Instant::now());
                        refresh_pending = false;
                        self.refresh_then_catch_up().await
                    }
                    Ok(()) => {
                        refresh_pending = true;
                        Ok(())
                    }
                    Err(_) => return,
                },
                _ = tick.tick() => {
                    if refresh_pending && refresh_now(last_refresh) {
                        last_refresh = Some(tokio::time::Instant::now());
                        refresh_pending = false;
                        self.refresh_then_catch_up().await
                    } else {
                        self.catch_up().await
                    }
                }
            };
            if let Err(e) = result {
                tracing::warn!("engine: {e}");
            }
        }
    }

    async fn refresh_then_catch_up(&self) -> Result<(), RuntimeError> {
        self.refresh_traits().await?;
        self.catch_up().await
    }
}

/// Whether a build stores its transitions and definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persist {
    Yes,
    No,
}

/// Loads, replays and advances a fresh engine.
async fn build(
    store: &Store,
    clock: &dyn Clock,
    ws: Arc<Workspace>,
    hash: String,
    persist: Persist,
    cancel: &Cancel,
    mut collect: Option<&mut Vec<HealthRun>>,
) -> Result<Live, RuntimeError> {
    let backfill = persist == Persist::No || store.last_definitions_hash().await?.as_deref() != Some(hash.as_str());
    if backfill && persist == Persist::Yes {
        // The stored health history is the current definitions' view of the past: the
        // replay below writes it again.
        store.clear_health_snapshots().await?;
    }
    let save = |transitions: Vec<Transition>| async move {
        match persist {
            Persist::Yes => store_transitions(store, &transitions).await,
            Persist::No => Ok(()),
        }
    };
    let last_seq = store.last_seq().await?;
    let times = store.event_times(last_seq).await?;
    let order = replay::time_order(times);
    let now = clock.now();
    let start = order.first().map(|(_, ts)| (*ts).min(now)).unwrap_or(now);
    let mut engine = Engine::new(Arc::clone(&ws), start);
    engine.set_backfill(backfill);
    engine.report_health_runs(persist == Persist::Yes || collect.is_some());
    let mut health_through = None;
    // The health runs reported so far: stored (with how far they go), or collected.
    let health = |engine: &mut Engine, collect: &mut Option<&mut Vec<HealthRun>>| {
        let runs = engine.take_health_runs();
        match (persist, collect.as_deref_mut()) {
            (Persist::Yes, _) => Some((runs, complete_day(engine))),
            (Persist::No, Some(c)) => {
                c.extend(runs);
                None
            }
            (Persist::No, None) => None,
        }
    };
    let today = ws.time_zone().to_datetime(now).date();
    let mut out: Vec<Transition> = Vec::new();
    for a in store.engine_accounts(today).await? {
        out.extend(engine.upsert_account(a.id as u64, account_traits(&a, &ws)));
    }
    for c in store.engine_contacts().await? {
        out.extend(engine.upsert_contact(c.id as u64, c.account_id.map(|a| a as u64), contact_traits(&c, &ws)));
    }
    for o in store.latest_health_overrides().await? {
        if let (Some(score), Some(expires_at)) = (o.score, o.expires_at) {
            engine.set_health_override(
                o.account_id as u64,
                Some(HealthOverride { score, reason: o.reason, by: o.set_by, set_at: o.set_at, expires_at }),
            );
        }
    }
    let props = engine.sum_properties().to_vec();
    for chunk in order.chunks(EVENTS_PER_READ as usize) {
        cancel.check()?;
        let seqs: Vec<i64> = chunk.iter().map(|(seq, _)| *seq).collect();
        let batch: Vec<EngineEvent> =
            store.events_by_seq(&seqs).await?.iter().filter_map(|e| engine_event(e, &props)).collect();
        out.extend(engine.apply_all(&batch, now));
        save(std::mem::take(&mut out)).await?;
        if let Some((runs, through)) = health(&mut engine, &mut collect) {
            store_health(store, runs, through).await?;
        }
        // A checkpoint for whoever drops this future (a preview whose client is gone).
        tokio::task::yield_now().await;
    }
    cancel.check()?;
    out.extend(engine.advance_to(now));
    save(out).await?;
    if let Some((runs, through)) = health(&mut engine, &mut collect) {
        health_through = through;
        store_health(store, runs, through).await?;
    }
    // Only a runtime that stores them keeps reporting (what nobody collects piles up).
    engine.report_health_runs(persist == Persist::Yes);
    engine.set_backfill(false);
    let held = engine.pending_events();
    if held > 0 {
        tracing::info!("engine: {held} event(s) dated after now ({now}) are held: each is applied when its time comes");
    }
    if backfill && persist == Persist::Yes {
        let summary = ws.summary().to_string();
        store.record_definitions(&hash, &summary, now).await?;
    }
    Ok(Live { engine, last_seq, definitions_hash: hash, health_through })
}

/// The engine's view of a stored event; `None` for calls that are not behaviour.
fn engine_event(e: &LogEvent, props: &[String]) -> Option<EngineEvent> {
    let name = match e.kind.as_str() {
        "track" => e.name.clone()?,
        "page" => "page".to_string(),
        "screen" => "screen".to_string(),
        _ => return None,
    };
    let mut numbers = Vec::new();
    if !props.is_empty()
        && let Some(text) = &e.properties
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text)
    {
        for p in props {
            if let Some(x) = map.get(p).and_then(serde_json::Value::as_f64) {
                numbers.push((p.clone(), x));
            }
        }
    }
    Some(EngineEvent {
        ts: e.ts,
        name,
        contact: e.contact_id.map(|c| c as u64),
        account: e.account_id.map(|a| a as u64),
        numbers,
    })
}

/// The deterministic key of a transition: the same transition recomputed (after a
/// restart, by a second node) is stored once.
pub fn transition_key(t: &Transition) -> String {
    let detail = serde_json::to_string(&t.kind).unwrap_or_default();
    let subject = match t.subject {
        SubjectRef::Account(id) => format!("account:{id}"),
        SubjectRef::Contact(id) => format!("contact:{id}"),
    };
    let mut h = Sha256::new();
    h.update(format!("{subject}|{detail}|{}", t.at.as_millisecond()).as_bytes());
    hex(&h.finalize())
}

async fn store_transitions(store: &Store, transitions: &[Transition]) -> Result<(), RuntimeError> {
    if transitions.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewTransition> = transitions
        .iter()
        .map(|t| {
            let (subject_kind, subject_id) = match t.subject {
                SubjectRef::Account(id) => ("account", id as i64),
                SubjectRef::Contact(id) => ("contact", id as i64),
            };
            NewTransition {
                key: transition_key(t),
                at: t.at,
                subject_kind: subject_kind.to_string(),
                subject_id,
                kind: t.kind.event_name().to_string(),
                detail: serde_json::to_string(&t.kind).unwrap_or_else(|_| "{}".into()),
                backfill: t.backfill,
            }
        })
        .collect();
    for chunk in rows.chunks(1000) {
        store.append_transitions(chunk).await?;
    }
    Ok(())
}

/// The last day the engine's clock has passed the end of (its runs up to it are final).
fn complete_day(engine: &Engine) -> Option<jiff::civil::Date> {
    let tz = engine.workspace().time_zone();
    Some(date_of_day(day_of(engine.now(), tz).checked_sub(1)?))
}

/// What the live engine reported of health since the last time, with the day it is
/// complete through when that moved; `None` when there is nothing to write.
fn health_to_store(live: &mut Live) -> Option<(Vec<HealthRun>, Option<jiff::civil::Date>)> {
    let runs = live.engine.take_health_runs();
    let through = complete_day(&live.engine).filter(|d| live.health_through.is_none_or(|t| t < *d));
    if runs.is_empty() && through.is_none() {
        return None;
    }
    if through.is_some() {
        live.health_through = through;
    }
    Some((runs, through))
}

/// A health run as the store keeps it.
pub fn snapshot_record(r: &HealthRun) -> HealthSnapshotRecord {
    HealthSnapshotRecord {
        account_id: r.account as i64,
        day: date_of_day(r.day),
        model: r.model.clone(),
        score: r.score,
        band: r.band.map(|b| {
            match b {
                Band::Red => "red",
                Band::Yellow => "yellow",
                Band::Green => "green",
            }
            .to_string()
        }),
        pillars: r.pillars.clone(),
        measures: r.measures.clone(),
    }
}

/// Stores health runs in one batch (a day reported twice keeps its last report) and how
/// far they go.
async fn store_health(
    store: &Store,
    runs: Vec<HealthRun>,
    through: Option<jiff::civil::Date>,
) -> Result<(), RuntimeError> {
    let mut rows: Vec<HealthSnapshotRecord> = Vec::with_capacity(runs.len());
    for r in runs.iter().map(snapshot_record) {
        match rows.last_mut() {
            Some(last) if (last.account_id, last.day) == (r.account_id, r.day) => *last = r,
            _ => rows.push(r),
        }
    }
    store.write_health_snapshots(&rows, through).await?;
    Ok(())
}

/// For tests and tools: the engine's transitions grouped by subject.
pub fn by_subject(transitions: &[Transition]) -> BTreeMap<SubjectRef, Vec<&Transition>> {
    let mut out: BTreeMap<SubjectRef, Vec<&Transition>> = BTreeMap::new();
    for t in transitions {
        out.entry(t.subject).or_default().push(t);
    }
    out
}
