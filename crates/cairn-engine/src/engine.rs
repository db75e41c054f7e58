//! The engine: applies events, trait changes and the passing of time to the state of
//! every account and contact, and reports what changed as [`Transition`]s.
//!
//! The state is split into shards by account: an account, its contacts and its
//! milestone deadlines live in one shard, and a contact without an account lives in the
//! shard its own id picks. Nothing a rule reads crosses accounts, so shards evaluate
//! independently: [`Engine::apply_all`] replays a batch of events on every shard at
//! once, one thread each, and the transitions are put back in the order one shard would
//! have given them (see [`Key`]). The answers and their order do not depend on the number
//! of shards.
//!
//! # Days cost what the data makes them cost
//!
//! The clock moves by day ticks (the start of each day in the workspace time zone) and
//! deadlines. A tick looks only at what the day can change: of the accounts, those filed
//! under that day and those evaluated since a tick last looked at them. After each look
//! an account is filed under the first day on which the days alone can change one of its
//! day nodes (`Shard::account_wake`): a sliding window losing its oldest day with data,
//! a comparison of a day count or of `age()` reaching its bound
//! (`Rule::next_clock_change`), a health measure whose value moves steadily with the days
//! reaching a point where its curve bends (`Rule::day_trend`); every day while a measure
//! sits on the slope of its curve, or a rule reads the clock in a way no day can be told
//! for. The days named are never late (a day early at worst, then the account is filed
//! again). Contacts are filed the same way (`Shard::file_wake`). When nothing is filed
//! before a day, the days up to it are crossed in one step (`Shard::skip_quiet_days`),
//! so an event dated in year 1 costs the few hundred days its windows and day counts
//! move on, not the 740,000 days since. What a skipped tick would have kept is kept
//! otherwise: health snapshots are runs (an entry from the day the health changed), and
//! the raw value of a measure that moves while its score cannot (`days_since(...)` past
//! its red point) is brought to the day when the engine hands back control
//! (`Shard::refresh_drifting`). `Engine::day_work` counts the ticks and the accounts
//! they evaluated, which is what tests hold the cost to.
//!
//! An event dated after the clock (`until` of [`Engine::apply_all`], the engine's now for
//! [`Engine::apply`]) is held and applied when [`Engine::advance_to`] reaches its
//! instant: until then nothing reads it, so a year-9000 event makes no day count run
//! backwards.

mod days;
mod env;
mod evaluate;
mod plan;
mod replay;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use cairn_rules::{AggId, Engagement, Env, Reference, Rule, Subject, Value};
use cairn_workspace::{Curve, Definition, HealthModel, Workspace};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::aggregates::{AggregatePlan, Changes, EventFacts};
use crate::days::{Day, day_of, start_of_day};
use crate::fast::FastMap;
use crate::health::{self, HealthScore};
use crate::state::{
    AccountState, Bits, ContactState, HealthOverride, HealthRun, HealthSnapshot, MilestoneStatus, SubjectRef,
    Transition, TransitionKind,
};
use days::{record_snapshot, snapshot_on};
use env::AccountEnv;
use env::ProgramEnv;
pub use env::ProgramFacts;

/// How many days of health snapshots an account keeps.
const SNAPSHOT_DAYS: Day = 400;

/// The most shards an engine splits its state into.
const MAX_SHARDS: usize = 8;

/// Below this many events a batch runs on the calling thread (starting threads would
/// cost more than they save).
const EVENTS_PER_THREADED_RUN: usize = 256;

/// One event as the engine sees it: identity already resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineEvent {
    /// When it happened.
    pub ts: Timestamp,
    /// Its name (`report_created`; `page` / `screen` for those calls).
    pub name: String,
    /// The contact who did it, if known.
    pub contact: Option<u64>,
    /// The account it belongs to, if known.
    pub account: Option<u64>,
    /// Numeric properties the workspace's `sum` aggregates read.
    pub numbers: Vec<(String, f64)>,
}

/// An account-level definition, resolved to indices into the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Segment(usize),
    Milestone(usize, usize),
    Stage,
    Health,
}

/// What an event of one name makes the engine re-evaluate, worked out once.
#[derive(Debug, Clone, Default)]
struct EventPlan {
    /// The account nodes reading an aggregate the event can change, in evaluation order.
    nodes: Vec<Node>,
    /// What each of `nodes` reads, for skipping those the event did not change after
    /// all (see [`Reads::moved`]); `nodes` of another node are positions in `nodes`.
    reads: Vec<Reads>,
    /// Whether it can change an account aggregate that contact segments read.
    contacts_read_changed: bool,
}

/// The [`EventPlan`] of every event name.
#[derive(Debug, Default)]
struct EventPlans {
    /// Per name listed by some account tracker.
    by_name: FastMap<String, EventPlan>,
    /// Any other name (only trackers of every event see it).
    other: EventPlan,
}

/// What the passing of a day (and nothing else) can change, worked out once: windows
/// slide (`30d`), `days_since`, `age()` and `now()` move, deadlines pass.
#[derive(Debug, Default)]
struct DayPlan {
    /// The account nodes a new day can change, in evaluation order: those reading the
    /// clock or a sliding window, every milestone (its deadline), and what reads them.
    account_nodes: Vec<Node>,
    /// Per contact segment, in evaluation order (as `Shared::contact_segments`).
    contact: Vec<ContactDay>,
    /// Whether a day tick looks only at the contacts filed under its day (and at those of
    /// accounts that changed): no contact segment is `always`, so the next day on which
    /// the days alone can change a contact's segments is known when it is evaluated (see
    /// `Shard::file_wake`). Otherwise every contact is looked at every day.
    by_wake: bool,
    /// What of the account nodes a new day can change moves with the days alone: the
    /// rules reading the clock or a sliding window, and the health measures. An account
    /// is looked at on a day tick only when one of them can have moved (see
    /// `Shard::account_wake`), or when it changed since the last tick that looked at it.
    account_reads: Vec<DayRead>,
}

/// One rule of the account nodes a new day can change (see `DayPlan::account_reads`).
#[derive(Debug, Clone, Copy)]
enum DayRead {
    /// A condition: a segment's, a milestone's (with its index among all the journey's
    /// milestones: none once achieved or missed), a stage's entry or exit rule, a health
    /// model's condition.
    Condition(RuleAt, Option<usize>),
    /// A health measure (model, 0 the default; pillar; measure): what moves is its
    /// score, through the measure's curve.
    Measure(usize, usize, usize),
}

/// Where a rule of the workspace is.
#[derive(Debug, Clone, Copy)]
enum RuleAt {
    Segment(usize),
    Milestone(usize, usize),
    Entry(usize),
    Exit(usize),
    /// The condition of health model `n` (from 1; 0 is the default, which has none).
    Model(usize),
}

/// How a new day can change one contact segment, when nothing of the account that
/// contact segments read changed.
#[derive(Debug, Default)]
struct ContactDay {
    /// It reads a sliding window of the account, or the clock other than through day
    /// counts compared with values: evaluated every day.
    always: bool,
    /// It reads the clock through day counts compared with values only
    /// ([`Rule::clock_predictable`]): evaluated on the days [`Rule::next_clock_change`]
    /// names.
    clock: bool,
    /// The sliding windows of the contact's own events it reads: evaluated when a day
    /// with data leaves one of them.
    windows: Vec<AggId>,
    /// It reads other contact segments: evaluated when one of them changed.
    reads_contact_segments: bool,
    /// It reads something of the account (a trait, an aggregate, a segment, a milestone,
    /// the stage, health, the anchor): evaluated when that changed.
    reads_account: bool,
}

/// What one definition reads that an event can change: an event re-evaluates it only
/// when one of these moved.
#[derive(Debug, Clone, Default)]
struct Reads {
    /// It reads the instant within the day (`now()`, `age()`): re-evaluated at every
    /// event that can change what it reads.
    instant: bool,
    /// The aggregates it reads directly, each with whether exactly (not only through a
    /// day count: [`Rule::reads_exactly`]).
    aggregates: Vec<(AggId, bool)>,
    /// The other definitions of its list it reads directly, as bits by position (an
    /// account node's event plan; contact segments' own list).
    nodes: u64,
}

impl Reads {
    /// What the rules `rules` read directly, with `nodes` the bits of the definitions
    /// they read.
    fn of(rules: &[&Rule], nodes: u64) -> Reads {
        let mut aggregates: Vec<(AggId, bool)> = Vec::new();
        for rule in rules {
            for &id in rule.aggregates() {
                let exactly = rule.reads_exactly(id);
                match aggregates.iter_mut().find(|(a, _)| *a == id) {
                    Some((_, e)) => *e |= exactly,
                    None => aggregates.push((id, exactly)),
                }
            }
        }
        Reads { instant: rules.iter().any(|r| r.reads_instant()), aggregates, nodes }
    }

    /// Whether an event that changed what `changes` says (of the scope these aggregates
    /// are in), and the definitions in `changed` (bits by position), can have changed
    /// the value of this definition on the event's day.
    fn moved(&self, plan: &AggregatePlan, changes: &Changes, anchor: Option<Day>, changed: u64) -> bool {
        self.instant
            || self.nodes & changed != 0
            || self.aggregates.iter().any(|&(id, exactly)| plan.moved(id, changes, anchor, exactly))
    }
}

/// Which of a contact's segments an evaluation looks at.
#[derive(Debug, Clone, Copy)]
enum Look {
    /// All of them.
    Everything,
    /// Only those that can have changed since the last evaluation: with `day` (the new
    /// day), those it can change (`Shared::day_plan`); with `account`, those reading the
    /// account (something of it changed); and those reading a contact segment that
    /// changed on the way.
    Since { day: Option<Day>, account: bool },
    /// Only those that the event just recorded in the contact's aggregates
    /// (`Shard::contact_changes`) can have changed (`Shared::contact_reads`), on the
    /// event's day, the contact having been evaluated before.
    Event,
}

/// What the engine works out once from the workspace and every shard reads.
#[derive(Debug)]
struct Shared {
    ws: Arc<Workspace>,
    plan: AggregatePlan,
    /// Account-level definitions in evaluation order.
    account_nodes: Vec<Node>,
    /// Contact segments (indices into the workspace's segments) in evaluation order.
    contact_segments: Vec<usize>,
    /// What each health measure reads, per model (0 the default, then the segment
    /// models in order), measure by measure in model order (one reading another
    /// definition counts as reading the instant: it is always evaluated).
    health_reads: Vec<Vec<Reads>>,
    /// What each contact segment reads, in that order (`nodes`: the contact segments
    /// it reads, by position), for [`Look::Event`]; `None` when there are more than 64.
    contact_reads: Option<Vec<Reads>>,
    /// The journey's stage ids as rule values, by stage index.
    stage_values: Vec<Value>,
    /// Per stage, the index its first milestone has among all the journey's milestones
    /// (stage by stage; `AccountState::milestones_done`).
    milestone_offsets: Vec<usize>,
    /// Per account aggregate: the account nodes that read it (directly or through
    /// another node), in evaluation order.
    readers_of_aggregate: BTreeMap<AggId, Vec<Node>>,
    /// Per account trait: the account nodes that read it, in evaluation order.
    readers_of_trait: BTreeMap<String, Vec<Node>>,
    /// Whether contact segments read anything of the account (its traits, aggregates,
    /// segments, milestones, stage or health).
    contacts_read_account: bool,
    /// The account nodes contact segments read directly.
    contacts_read_nodes: BTreeSet<Node>,
    /// Whether contact segments read the account's anchor or the instant (`age()`,
    /// `now()`), which move within a day: then every event of an account re-evaluates
    /// all its contacts.
    contacts_read_instant: bool,
    /// What each event name re-evaluates.
    event_plans: EventPlans,
    /// What a new day re-evaluates.
    day_plan: DayPlan,
    /// Each segment's index in the workspace, by id.
    segment_index: FastMap<String, usize>,
}

/// One shard's state: some accounts with their contacts and deadlines, and the clock
/// (every shard's clock reads the same).
#[derive(Debug)]
struct Shard {
    /// The latest day of any event applied, on any shard (a new day re-evaluates
    /// everything when it brings events dated on it into the windows).
    latest_event_day: Day,
    /// The last instant converted to a calendar day, with its day and date: an event's
    /// instant is converted once for recording it and evaluating what it changes.
    day_memo: (Timestamp, Day, Date),
    /// A buffer for health measures' raw values (kept to spare an allocation per score).
    health_values: Vec<Option<f64>>,
    /// What the event being applied changed in its account's aggregates, and in its
    /// contact's (buffers kept across events).
    account_changes: Changes,
    contact_changes: Changes,
    /// By id, hashed (an event looks its account and contact up many times; in a
    /// B-tree of a few hundred thousand, each look walks several cache lines). Whatever
    /// goes over them in order sorts the ids first.
    accounts: FastMap<u64, AccountState>,
    contacts: FastMap<u64, ContactState>,
    now: Timestamp,
    today: Day,
    /// The first instant of the day after `today` (worked out once a day).
    next_day: Timestamp,
    /// Milestone deadlines still pending: (instant, account).
    deadlines: BTreeSet<(Timestamp, u64)>,
    /// With `DayPlan::by_wake`: per day, the contacts filed under it (a contact filed
    /// again under an earlier day stays listed here too; its `filed` says which holds).
    wakes: BTreeMap<Day, Vec<u64>>,
    /// Per day, the accounts whose `wake` it is (an entry whose account's `wake` moved
    /// since is skipped).
    account_wakes: BTreeMap<Day, Vec<u64>>,
    /// The accounts evaluated or created since the last day tick that looked at them
    /// (an entry whose account's `touched` is false is skipped).
    touched: Vec<u64>,
    /// The first instant of `today`.
    today_start: Timestamp,
    /// The accounts whose health measures' raw values move with the days while their
    /// scores do not (see [`Shard::account_wake`]), with the day their values are of.
    drifting: BTreeMap<u64, Day>,
    /// What the day ticks did.
    work: DayWork,
    backfill: bool,
    /// With [`Engine::report_health_runs`]: the health runs recorded since the last
    /// [`Engine::take_health_runs`].
    health_runs: Option<Vec<HealthRun>>,
    /// Per segment (by its index in the workspace), how many of this shard's accounts or
    /// contacts are in it: moved wherever a `member_of` bit is, so the sizes are read
    /// without passing over every subject.
    members: Vec<i64>,
}

/// What the engine's day ticks did: the measure of what the passing of days cost, which
/// follows the data (days on which something can change) rather than the calendar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayWork {
    /// Day boundaries handled one by one (a stretch of days on which nothing can change
    /// is crossed in one step and counts none).
    pub ticks: u64,
    /// Accounts evaluated at those ticks.
    pub accounts: u64,
}

/// Where a stretch of one shard's transitions falls in the order a single shard would
/// have produced them: (position of the event in the batch, 0 for the clock moving to
/// it and 1 for the event itself, the instant of the clock's step, 0 for a day boundary
/// and 1 for a deadline, 0 for an account and its contacts and 1 for a contact without
/// an account, the account's or contact's id). Within one key, transitions keep their
/// order; one key never spans two shards.
type Key = (u32, u8, Timestamp, u8, u8, u64);

/// A shard's transitions, with the [`Key`] of each stretch (the index where it starts).
#[derive(Debug, Default)]
struct Output {
    transitions: Vec<Transition>,
    marks: Vec<(Key, usize)>,
}

impl Output {
    /// Starts a stretch: what is pushed from now on falls under `key`.
    fn mark(&mut self, key: Key) {
        self.marks.push((key, self.transitions.len()));
    }
}

/// Where one event of a batch is applied.
#[derive(Debug, Clone, Copy)]
struct Route {
    /// Its calendar day, as a number and a date (worked out once for routing, recording
    /// and evaluating).
    day: Day,
    date: Date,
    /// The shard of its account (of its contact when it has no account).
    shard: usize,
    /// The shard its contact lives in, when it is another one.
    contact_elsewhere: Option<usize>,
}

/// The incremental evaluator of one workspace.
#[derive(Debug)]
pub struct Engine {
    shared: Shared,
    shards: Vec<Shard>,
    /// The shard each known contact lives in.
    homes: FastMap<u64, usize>,
    /// Events dated after the clock when they came, in time order (ties in the order
    /// they came): each is applied when the clock reaches its instant.
    pending: Vec<EngineEvent>,
}

impl Engine {
    /// An engine for `ws` with its clock at `now` and no accounts yet, its state split
    /// into one shard per available core.
    pub fn new(ws: Arc<Workspace>, now: Timestamp) -> Engine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Engine::with_shards(ws, now, cores)
    }

    /// An engine whose state is split into `shards` shards (at least 1, at most 8): the
    /// most threads [`Engine::apply_all`] and [`Engine::advance_to`] use. The answers do
    /// not depend on it.
    pub fn with_shards(ws: Arc<Workspace>, now: Timestamp, shards: usize) -> Engine {
        let shared = Shared::new(ws);
        let tz = shared.ws.time_zone().clone();
        let today = day_of(now, &tz);
        let shard = || Shard {
            latest_event_day: Day::MIN,
            day_memo: (now, today, tz.to_datetime(now).date()),
            health_values: Vec::new(),
            account_changes: Changes::default(),
            contact_changes: Changes::default(),
            accounts: FastMap::default(),
            contacts: FastMap::default(),
            now,
            today,
            next_day: start_of_day(today + 1, &tz),
            deadlines: BTreeSet::new(),
            wakes: BTreeMap::new(),
            account_wakes: BTreeMap::new(),
            touched: Vec::new(),
            today_start: start_of_day(today, &tz),
            drifting: BTreeMap::new(),
            work: DayWork::default(),
            backfill: false,
            health_runs: None,
            members: vec![0; shared.ws.segments().len()],
        };
        Engine {
            shards: (0..shards.clamp(1, MAX_SHARDS)).map(|_| shard()).collect(),
            shared,
            homes: FastMap::default(),
            pending: Vec::new(),
        }
    }

    /// What the day ticks did so far, over every shard.
    pub fn day_work(&self) -> DayWork {
        self.shards.iter().fold(DayWork::default(), |w, s| DayWork {
            ticks: w.ticks.max(s.work.ticks),
            accounts: w.accounts + s.work.accounts,
        })
    }

    /// How many events dated after the clock wait for it to reach them.
    pub fn pending_events(&self) -> usize {
        self.pending.len()
    }

    /// Keeps `event`, dated after the clock, until the clock reaches it.
    fn hold(&mut self, event: EngineEvent) {
        let at = self.pending.partition_point(|e| e.ts <= event.ts);
        self.pending.insert(at, event);
    }

    /// How many shards the state is split into.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The shard an account (or a contact without an account) lives in.
    fn shard_of(&self, id: u64) -> usize {
        let n = self.shards.len();
        if n == 1 { 0 } else { ((id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % n as u64) as usize }
    }

    /// The shard a contact lives in, if it is known.
    fn home_of(&self, contact: u64) -> Option<usize> {
        self.homes.get(&contact).copied()
    }

    /// The workspace being evaluated.
    pub fn workspace(&self) -> &Workspace {
        &self.shared.ws
    }

    /// The workspace being evaluated, shared.
    pub fn workspace_arc(&self) -> &Arc<Workspace> {
        &self.shared.ws
    }

    /// The numeric event properties that `sum` aggregates read: the caller extracts only
    /// these into [`EngineEvent::numbers`].
    pub fn sum_properties(&self) -> &[String] {
        self.shared.plan.properties()
    }

    /// The engine's current instant.
    pub fn now(&self) -> Timestamp {
        self.shards[0].now
    }

    /// Marks what follows as a backfill (replay of history after a definition change):
    /// transitions produced carry `backfill: true`.
    pub fn set_backfill(&mut self, backfill: bool) {
        for s in &mut self.shards {
            s.backfill = backfill;
        }
    }

    /// Whether the engine reports each change of an account's end-of-day health as a
    /// [`HealthRun`], to be collected with [`Engine::take_health_runs`] (off by default:
    /// what nobody collects would pile up). A day whose health changed again reports
    /// again: the last report of a day is its end-of-day health.
    pub fn report_health_runs(&mut self, on: bool) {
        for s in &mut self.shards {
            s.health_runs = on.then(|| s.health_runs.take().unwrap_or_default());
        }
    }

    /// The health runs reported since the last call, by account and day (a day reported
    /// more than once keeps its order: the last is the day's latest health).
    pub fn take_health_runs(&mut self) -> Vec<HealthRun> {
        let mut all: Vec<HealthRun> =
            self.shards.iter_mut().filter_map(|s| s.health_runs.as_mut()).flat_map(std::mem::take).collect();
        all.sort_by_key(|r| (r.account, r.day));
        all
    }

    /// An account's state.
    pub fn account(&self, id: u64) -> Option<&AccountState> {
        self.shards[self.shard_of(id)].accounts.get(&id)
    }

    /// Every account's state, by id.
    pub fn accounts(&self) -> impl Iterator<Item = (u64, &AccountState)> {
        in_id_order(self.shards.iter().map(|s| &s.accounts))
    }

    /// A contact's state.
    pub fn contact(&self, id: u64) -> Option<&ContactState> {
        self.shards[self.home_of(id)?].contacts.get(&id)
    }

    /// Every contact's state, by id.
    pub fn contacts(&self) -> impl Iterator<Item = (u64, &ContactState)> {
        in_id_order(self.shards.iter().map(|s| &s.contacts))
    }

    /// Every segment's member count (0 for one with no member): each shard keeps its
    /// counts as members enter and leave, so this reads a number per segment and shard.
    pub fn segment_sizes(&self) -> HashMap<&str, usize> {
        self.shared
            .ws
            .segments()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n: i64 = self.shards.iter().map(|sh| sh.members[i]).sum();
                debug_assert!(n >= 0, "segment {} counted {n} members", s.id.as_str());
                (s.id.as_str(), usize::try_from(n).unwrap_or(0))
            })
            .collect()
    }

    /// The members of a segment, in id order.
    pub fn segment_members(&self, segment: &str) -> Vec<SubjectRef> {
        let of = self.shared.ws.segments().iter().find(|s| s.id.as_str() == segment).map(|s| s.subject);
        match of {
            Some(Subject::Account) => self
                .accounts()
                .filter(|(_, a)| a.segments.contains(segment))
                .map(|(id, _)| SubjectRef::Account(id))
                .collect(),
            Some(Subject::Contact) => self
                .contacts()
                .filter(|(_, c)| c.segments.contains(segment))
                .map(|(id, _)| SubjectRef::Contact(id))
                .collect(),
            None => Vec::new(),
        }
    }

    /// The journey stage id of an account.
    pub fn stage_of(&self, account: u64) -> Option<&str> {
        let stage = self.account(account)?.stage?;
        Some(self.shared.ws.journey()?.stages.get(stage)?.id.as_str())
    }

    /// Time to Value of an account: from the anchor to the value milestone, if achieved.
    pub fn time_to_value(&self, account: u64) -> Option<SignedDuration> {
        let a = self.account(account)?;
        let value = self.shared.ws.journey()?.value_milestone()?;
        let anchor = start_of_day(a.anchor?, self.shared.ws.time_zone());
        match a.milestones.get(value.id.as_str())? {
            MilestoneStatus::Achieved(at) => Some(at.duration_since(anchor)),
            _ => None,
        }
    }

    /// The change of an account's overall health score over `days` days (today's score
    /// minus the snapshot of `days` days ago), when both are known.
    pub fn health_trend(&self, account: u64, days: Day) -> Option<f64> {
        let a = self.account(account)?;
        let now = a.health.as_ref()?.score?;
        let today = self.shards[0].today;
        let then = snapshot_on(&a.snapshots, today.saturating_sub(days), today)?.score?;
        Some(now - then)
    }

    /// Sets a CSM override of an account's health. It never changes the computed score.
    pub fn set_health_override(&mut self, account: u64, o: Option<HealthOverride>) {
        let k = self.shard_of(account);
        self.shards[k].account_mut(&self.shared, account).health_override = o;
    }

    /// The override in force for an account now (none once expired).
    pub fn health_override(&self, account: u64) -> Option<&HealthOverride> {
        self.account(account)?.health_override.as_ref().filter(|o| o.expires_at > self.now())
    }

    /// Evaluates a rule for one subject at the engine's now, as the definitions see it:
    /// a program's audience, `if`, `wait until`, goal and exit rules. `facts` answers what
    /// only a program knows (engagement with its sends, its goal). `None` when the subject
    /// is unknown; a contact without an account is evaluated with an empty account.
    pub fn evaluate_rule(&self, subject: SubjectRef, rule: &Rule, facts: Option<&dyn ProgramFacts>) -> Option<Value> {
        let empty = AccountState::default();
        let (shard, account, contact) = match subject {
            SubjectRef::Account(id) => {
                let shard = &self.shards[self.shard_of(id)];
                (shard, shard.accounts.get(&id)?, None)
            }
            SubjectRef::Contact(id) => {
                let shard = &self.shards[self.home_of(id)?];
                let contact = shard.contacts.get(&id)?;
                (shard, contact.account.and_then(|a| shard.accounts.get(&a)).unwrap_or(&empty), Some(contact))
            }
        };
        let env = AccountEnv {
            shared: &self.shared,
            account,
            contact,
            contact_segments: None,
            now: shard.now,
            today: shard.today,
            today_date: self.shared.ws.time_zone().to_datetime(shard.now).date(),
        };
        Some(match facts {
            Some(facts) => rule.eval(&ProgramEnv { inner: env, facts }),
            None => rule.eval(&env),
        })
    }

    /// Creates or replaces an account's traits and re-evaluates what reads them.
    pub fn upsert_account(&mut self, id: u64, traits: BTreeMap<String, Value>) -> Vec<Transition> {
        let k = self.shard_of(id);
        self.shards[k].upsert_account(&self.shared, id, traits)
    }

    /// Creates or replaces a contact (its account link and traits) and evaluates its
    /// segments.
    pub fn upsert_contact(
        &mut self,
        id: u64,
        account: Option<u64>,
        traits: BTreeMap<String, Value>,
    ) -> Vec<Transition> {
        let home = self.home_of(id);
        let target = match (account, home) {
            (Some(a), _) => self.shard_of(a),
            (None, Some(h)) => h,
            (None, None) => self.shard_of(id),
        };
        if let Some(h) = home
            && h != target
        {
            // Its account is in another shard now: it moves there with its state.
            let old = &mut self.shards[h];
            if let Some(mut state) = old.contacts.remove(&id) {
                if let Some(a) = state.account.and_then(|p| old.accounts.get_mut(&p)) {
                    a.contacts.remove(&id);
                }
                // Filed in the old shard's days: filed again when evaluated below.
                state.wake = None;
                state.filed = None;
                // Its segments' counts move with it.
                for i in state.member_of.iter() {
                    old.members[i] -= 1;
                }
                let new = &mut self.shards[target];
                for i in state.member_of.iter() {
                    new.members[i] += 1;
                }
                new.contacts.insert(id, state);
            }
        }
        self.homes.insert(id, target);
        self.shards[target].upsert_contact(&self.shared, id, account, traits)
    }

    /// Where `event` is applied; a contact seen for the first time gets its home.
    fn route(&mut self, event: &EngineEvent, (day, date): (Day, Date)) -> Route {
        let contact_home = event.contact.map(|c| match self.home_of(c) {
            Some(h) => h,
            None => {
                let h = self.shard_of(c);
                self.homes.insert(c, h);
                h
            }
        });
        let shard = match (event.account, contact_home) {
            (Some(a), _) => self.shard_of(a),
            (None, Some(h)) => h,
            (None, None) => 0,
        };
        Route { day, date, shard, contact_elsewhere: contact_home.filter(|h| *h != shard) }
    }

    /// Applies one event at the engine's current instant (call [`Engine::advance_to`]
    /// first). Updates only the aggregates that read its name and re-evaluates only what
    /// reads them. An event dated after the clock is held until the clock reaches it
    /// (see [`Engine::apply_all`]).
    pub fn apply(&mut self, event: &EngineEvent) -> Vec<Transition> {
        if event.ts > self.now() {
            self.hold(event.clone());
            return Vec::new();
        }
        let route = self.route(event, self.shared.calendar_day(event.ts));
        let mut out = Vec::new();
        self.apply_routed(event, route, &mut out);
        out
    }

    fn apply_routed(&mut self, event: &EngineEvent, route: Route, out: &mut Vec<Transition>) {
        for s in &mut self.shards {
            s.latest_event_day = s.latest_event_day.max(route.day);
        }
        let sh = &self.shared;
        match route.contact_elsewhere {
            None => {
                self.shards[route.shard].apply(sh, event, (route.day, route.date), true, out);
            }
            Some(home) => {
                if let Some(c) = event.contact {
                    self.shards[home].record_contact(sh, c, event, route.day);
                }
                let evaluate = self.shards[route.shard].apply(sh, event, (route.day, route.date), false, out);
                if let (Some(at), Some(c)) = (evaluate, event.contact) {
                    self.shards[home].evaluate_contact(sh, c, at, out);
                }
            }
        }
    }
}

/// The entries of several maps keyed by id (no id is in two), in id order.
fn in_id_order<'a, V: 'a>(maps: impl Iterator<Item = &'a FastMap<u64, V>>) -> impl Iterator<Item = (u64, &'a V)> {
    let mut all: Vec<(u64, &V)> = maps.flat_map(|m| m.iter().map(|(id, v)| (*id, v))).collect();
    all.sort_unstable_by_key(|(id, _)| *id);
    all.into_iter()
}

/// Ids, in order.
fn sorted(ids: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut ids: Vec<u64> = ids.collect();
    ids.sort_unstable();
    ids
}

fn health_run(account: u64, day: Day, h: &HealthScore) -> HealthRun {
    HealthRun {
        account,
        day,
        model: h.model.clone(),
        score: h.score,
        band: h.band,
        pillars: h.pillars.iter().map(|p| (p.id.clone(), p.score)).collect(),
        measures: h
            .pillars
            .iter()
            .flat_map(|p| p.measures.iter().map(|m| (p.id.clone(), m.id.clone(), m.score)))
            .collect(),
    }
}

fn snapshot(h: &HealthScore) -> HealthSnapshot {
    HealthSnapshot { score: h.score, pillars: h.pillars.iter().map(|p| (p.id.clone(), p.score)).collect() }
}
