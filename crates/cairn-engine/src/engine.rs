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

use std::collections::{BTreeMap, BTreeSet};
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
    AccountState, Bits, ContactState, HealthOverride, HealthSnapshot, MilestoneStatus, SubjectRef, Transition,
    TransitionKind,
};

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
                self.shards[target].contacts.insert(id, state);
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

    /// Replays `events` in order: for each, moves the clock to its instant and applies
    /// it. What [`Engine::advance_to`] and [`Engine::apply`] called in turn give, the same
    /// transitions in the same order, with the shards working at once.
    ///
    /// An event dated after `until` (the caller's now: a client's clock running ahead,
    /// or a date typed wrong, year 9000) is not applied yet: it is held, and applied when
    /// [`Engine::advance_to`] reaches its instant. Until then nothing reads it, so no
    /// day count runs backwards from a day that has not come (`days_since` of an event
    /// in the future would be negative) and no window holds it.
    pub fn apply_all(&mut self, events: &[EngineEvent], until: Timestamp) -> Vec<Transition> {
        if events.iter().any(|e| e.ts > until) {
            let (now, later): (Vec<EngineEvent>, Vec<EngineEvent>) =
                events.iter().cloned().partition(|e| e.ts <= until);
            for e in later {
                self.hold(e);
            }
            return self.apply_all(&now, until);
        }
        let mut routes = Vec::with_capacity(events.len());
        let mut memo: Option<(Timestamp, (Day, Date))> = None;
        for e in events {
            let day = match memo {
                Some((ts, day)) if ts == e.ts => day,
                _ => self.shared.calendar_day(e.ts),
            };
            memo = Some((e.ts, day));
            routes.push(self.route(e, day));
        }
        let mut out = Vec::new();
        let mut start = 0;
        while start < events.len() {
            // Events whose contact lives with their account run shard by shard; one
            // whose contact lives in another shard runs alone, between the others.
            let end =
                routes[start..].iter().position(|r| r.contact_elsewhere.is_some()).map_or(events.len(), |p| start + p);
            if end > start {
                self.replay_run(&events[start..end], &routes[start..end], until, &mut out);
            }
            if let (Some(e), Some(r)) = (events.get(end), routes.get(end)) {
                out.extend(self.advance_to(e.ts.min(until)));
                self.apply_routed(e, *r, &mut out);
            }
            start = end + 1;
        }
        self.refresh_drifting(&mut out);
        out
    }

    /// Replays a run of events that each touch one shard only.
    ///
    /// Between two steps of the clock (a day boundary, a deadline) the accounts of a shard
    /// do not read one another, so a shard applies the events of such a stretch account
    /// by account (each account's in their order, at their own instants): an account's
    /// state stays in cache across its events. The steps are found before the stretch is
    /// applied, which holds because an event schedules no deadline (an account it
    /// creates has no traits, so no anchor). An event whose contact is not (yet) known
    /// as one of its account's runs alone, in its place. Each event's transitions keep
    /// its position as their key, so `merge` puts them in the order one event at a time
    /// gives.
    fn replay_run(&mut self, events: &[EngineEvent], routes: &[Route], until: Timestamp, out: &mut Vec<Transition>) {
        let sh = &self.shared;
        let run = |(k, shard): (usize, &mut Shard)| {
            let mut o = Output::default();
            // This shard's events since the last step of the clock: (account or contact,
            // position, the clock's instant after it).
            let mut group: Vec<(u64, usize, Timestamp)> = Vec::new();
            let mut now = shard.now;
            for (i, (e, r)) in events.iter().zip(routes).enumerate() {
                let to = e.ts.min(until);
                if shard.due(to) {
                    shard.apply_group(sh, &mut group, events, routes, &mut o);
                    shard.now = shard.now.max(now);
                    shard.advance_to(sh, to, i as u32, &mut o);
                }
                now = now.max(to);
                shard.latest_event_day = shard.latest_event_day.max(r.day);
                if r.shard == k {
                    match shard.group_key(e) {
                        Some(key) => group.push((key, i, now)),
                        None => {
                            shard.apply_group(sh, &mut group, events, routes, &mut o);
                            shard.apply_grouped(sh, i, now, events, routes, &mut o);
                        }
                    }
                }
            }
            shard.apply_group(sh, &mut group, events, routes, &mut o);
            shard.now = shard.now.max(now);
            o
        };
        let outputs: Vec<Output> = if self.shards.len() == 1 || events.len() < EVENTS_PER_THREADED_RUN {
            self.shards.iter_mut().enumerate().map(run).collect()
        } else {
            parallel(&mut self.shards, run)
        };
        merge(outputs, out);
    }

    /// Moves the clock to `to`, handling every day boundary on which something can change
    /// (windows slide, day counts move: what the day can change is re-evaluated at the
    /// start of the new day) and every milestone deadline on the way, each at its own
    /// instant, and applying the held events (see [`Engine::apply_all`]) whose instant
    /// comes. Its cost follows the data: a stretch of days on which nothing can change
    /// is crossed in one step.
    pub fn advance_to(&mut self, to: Timestamp) -> Vec<Transition> {
        let mut out = Vec::new();
        // Held events whose instant has come, each at its instant.
        let due = self.pending.partition_point(|e| e.ts <= to);
        if due > 0 {
            let events: Vec<EngineEvent> = self.pending.drain(..due).collect();
            out.extend(self.apply_all(&events, to));
        }
        let sh = &self.shared;
        let due = self.shards.iter().any(|s| s.due(to));
        let run = |(_, shard): (usize, &mut Shard)| {
            let mut o = Output::default();
            shard.advance_to(sh, to, 0, &mut o);
            o
        };
        let outputs: Vec<Output> = if self.shards.len() == 1 || !due {
            self.shards.iter_mut().enumerate().map(run).collect()
        } else {
            parallel(&mut self.shards, run)
        };
        merge(outputs, &mut out);
        self.refresh_drifting(&mut out);
        out
    }

    /// See [`Shard::refresh_drifting`].
    fn refresh_drifting(&mut self, out: &mut Vec<Transition>) {
        for s in &mut self.shards {
            s.refresh_drifting(&self.shared, out);
        }
    }

    /// Re-evaluates everything for every account and contact at the current instant (a
    /// full recompute; what [`Engine::apply`] and [`Engine::advance_to`] keep current
    /// incrementally).
    pub fn evaluate_all(&mut self) -> Vec<Transition> {
        let sh = &self.shared;
        let outputs = self
            .shards
            .iter_mut()
            .map(|shard| {
                let mut o = Output::default();
                shard.evaluate_all(sh, &mut o);
                o
            })
            .collect();
        let mut out = Vec::new();
        merge(outputs, &mut out);
        out
    }
}

/// Runs `work` on every shard, one thread each (the first on the calling thread), and
/// returns their outputs in shard order.
fn parallel<F>(shards: &mut [Shard], work: F) -> Vec<Output>
where
    F: Fn((usize, &mut Shard)) -> Output + Sync,
{
    let work = &work;
    std::thread::scope(|scope| {
        let mut iter = shards.iter_mut().enumerate();
        let first = iter.next();
        let handles: Vec<_> = iter.map(|s| scope.spawn(move || work(s))).collect();
        let mut outputs = Vec::with_capacity(handles.len() + 1);
        outputs.extend(first.map(work));
        for h in handles {
            // A panic on a shard's thread is a bug in the engine: raise it here.
            outputs.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        outputs
    })
}

/// Puts the shards' transitions in the order one shard would have given: by key,
/// stretches with equal keys (only ever from one shard) in the order they came.
fn merge(outputs: Vec<Output>, out: &mut Vec<Transition>) {
    let busy = outputs.iter().filter(|o| !o.transitions.is_empty()).count();
    if busy <= 1 && outputs.iter().all(|o| o.marks.windows(2).all(|w| w[0].0 <= w[1].0)) {
        // One shard's stretches in key order.
        for o in outputs {
            out.extend(o.transitions);
        }
        return;
    }
    let mut stretches: Vec<(Key, usize, usize, usize)> = Vec::new();
    let mut sources: Vec<Vec<Option<Transition>>> = Vec::with_capacity(outputs.len());
    for (k, o) in outputs.into_iter().enumerate() {
        let len = o.transitions.len();
        for (j, (key, start)) in o.marks.iter().enumerate() {
            let end = o.marks.get(j + 1).map_or(len, |(_, s)| *s);
            if end > *start {
                stretches.push((*key, k, *start, end));
            }
        }
        sources.push(o.transitions.into_iter().map(Some).collect());
    }
    stretches.sort_by_key(|(key, ..)| *key);
    for (_, k, start, end) in stretches {
        if let Some(source) = sources.get_mut(k) {
            out.extend(source[start..end].iter_mut().filter_map(Option::take));
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

impl Shared {
    /// The calendar day of an instant in the workspace time zone, as a day number and a
    /// date.
    fn calendar_day(&self, at: Timestamp) -> (Day, Date) {
        let date = self.ws.time_zone().to_datetime(at).date();
        (crate::days::day_of_date(date), date)
    }

    /// Works out everything the engine needs to know once about `ws`.
    fn new(ws: Arc<Workspace>) -> Shared {
        let plan = AggregatePlan::new(ws.aggregates());
        let segment_index: BTreeMap<&str, usize> =
            ws.segments().iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let milestone_index: BTreeMap<&str, (usize, usize)> = ws
            .journey()
            .map(|j| {
                j.stages
                    .iter()
                    .enumerate()
                    .flat_map(|(si, s)| s.milestones.iter().enumerate().map(move |(mi, m)| (m.id.as_str(), (si, mi))))
                    .collect()
            })
            .unwrap_or_default();
        let mut account_nodes = Vec::new();
        let mut contact_segments = Vec::new();
        for def in ws.evaluation_order() {
            match def {
                Definition::Segment(id) => {
                    if let Some(&i) = segment_index.get(id.as_str()) {
                        match ws.segments()[i].subject {
                            Subject::Account => account_nodes.push(Node::Segment(i)),
                            Subject::Contact => contact_segments.push(i),
                        }
                    }
                }
                Definition::Milestone(id) => {
                    if let Some(&(s, m)) = milestone_index.get(id.as_str()) {
                        account_nodes.push(Node::Milestone(s, m));
                    }
                }
                Definition::Stage => {
                    if ws.journey().is_some() {
                        account_nodes.push(Node::Stage);
                    }
                }
                Definition::Health => {
                    if ws.health().is_some() {
                        account_nodes.push(Node::Health);
                    }
                }
            }
        }
        let stage_values = ws
            .journey()
            .map(|j| j.stages.iter().map(|s| Value::String(s.id.as_str().into())).collect())
            .unwrap_or_default();
        let milestone_offsets = ws
            .journey()
            .map(|j| {
                j.stages
                    .iter()
                    .scan(0, |next, s| {
                        let first = *next;
                        *next += s.milestones.len();
                        Some(first)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut shared = Shared {
            stage_values,
            milestone_offsets,
            plan,
            account_nodes,
            contact_segments,
            contact_reads: None,
            health_reads: Vec::new(),
            readers_of_aggregate: BTreeMap::new(),
            readers_of_trait: BTreeMap::new(),
            contacts_read_account: false,
            contacts_read_nodes: BTreeSet::new(),
            contacts_read_instant: false,
            event_plans: EventPlans::default(),
            day_plan: DayPlan::default(),
            segment_index: ws.segments().iter().enumerate().map(|(i, s)| (s.id.as_str().to_string(), i)).collect(),
            ws,
        };
        shared.index_readers();
        shared
    }

    /// Works out, once, which nodes each aggregate and trait reaches.
    fn index_readers(&mut self) {
        let mut direct_aggs: BTreeMap<Node, BTreeSet<AggId>> = BTreeMap::new();
        let mut direct_traits: BTreeMap<Node, BTreeSet<String>> = BTreeMap::new();
        let mut reads_nodes: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
        for &node in &self.account_nodes {
            let mut aggs = BTreeSet::new();
            let mut traits = BTreeSet::new();
            let mut nodes = BTreeSet::new();
            for rule in self.rules_of(node) {
                aggs.extend(rule.aggregates().iter().copied());
                for r in rule.references() {
                    match r {
                        Reference::AccountTrait(t) => {
                            traits.insert(t.clone());
                        }
                        Reference::Anchor => {
                            if let Some(j) = self.ws.journey() {
                                traits.insert(j.anchor.clone());
                            }
                        }
                        other => nodes.extend(self.node_of_reference(other)),
                    }
                }
            }
            direct_aggs.insert(node, aggs);
            direct_traits.insert(node, traits);
            reads_nodes.insert(node, nodes);
        }
        // Transitive readers: a node is dirty when anything it reads is dirty; the order
        // is topological, so one pass in order suffices.
        let mut all_aggs: BTreeMap<Node, BTreeSet<AggId>> = BTreeMap::new();
        let mut all_traits: BTreeMap<Node, BTreeSet<String>> = BTreeMap::new();
        for &node in &self.account_nodes {
            let mut aggs = direct_aggs.remove(&node).unwrap_or_default();
            let mut traits = direct_traits.remove(&node).unwrap_or_default();
            for dep in reads_nodes.get(&node).into_iter().flatten() {
                aggs.extend(all_aggs.get(dep).into_iter().flatten().copied());
                traits.extend(all_traits.get(dep).into_iter().flatten().cloned());
            }
            for a in &aggs {
                self.readers_of_aggregate.entry(*a).or_default().push(node);
            }
            for t in &traits {
                self.readers_of_trait.entry(t.clone()).or_default().push(node);
            }
            all_aggs.insert(node, aggs);
            all_traits.insert(node, traits);
        }
        self.contacts_read_account = self.contact_segments.iter().any(|&i| {
            let rule = &self.ws.segments()[i].rule;
            rule.references().iter().any(|r| !matches!(r, Reference::ContactTrait(_)))
                || rule.aggregates().iter().any(|a| self.ws.aggregates().get(*a).scope == Subject::Account)
        });
        let mut contact_aggs = BTreeSet::new();
        for &i in &self.contact_segments {
            let rule = &self.ws.segments()[i].rule;
            for r in rule.references() {
                self.contacts_read_nodes.extend(self.node_of_reference(r));
                if matches!(r, Reference::Anchor) {
                    self.contacts_read_instant = true;
                }
            }
            // `now()` leaves no reference behind: look for it in the source.
            if rule.source().to_ascii_lowercase().contains("now") {
                self.contacts_read_instant = true;
            }
            contact_aggs.extend(
                rule.aggregates().iter().copied().filter(|a| self.ws.aggregates().get(*a).scope == Subject::Account),
            );
        }
        let plan_of = |affected: Vec<AggId>| {
            let nodes = self
                .nodes_reading(affected.iter().flat_map(|id| self.readers_of_aggregate.get(id).into_iter().flatten()));
            let reads = nodes
                .iter()
                .map(|node| {
                    let mut reads = Reads::of(&self.rules_of(*node), 0);
                    for dep in reads_nodes.get(node).into_iter().flatten() {
                        match nodes.iter().position(|n| n == dep) {
                            Some(k) if k < 64 => reads.nodes |= 1 << k,
                            Some(_) => reads.instant = true,
                            None => {}
                        }
                    }
                    reads
                })
                .collect();
            EventPlan { nodes, reads, contacts_read_changed: affected.iter().any(|a| contact_aggs.contains(a)) }
        };
        let by_name = self
            .plan
            .listed_names(Subject::Account)
            .map(|name| (name.to_string(), plan_of(self.plan.affected(Subject::Account, name))))
            .collect();
        let other = plan_of(self.plan.affected_by_any(Subject::Account));
        self.event_plans = EventPlans { by_name, other };
        self.day_plan = self.plan_days(&reads_nodes);
        self.health_reads = self
            .ws
            .health()
            .map(|h| {
                std::iter::once(&h.default)
                    .chain(&h.models)
                    .map(|model| {
                        model
                            .pillars
                            .iter()
                            .flat_map(|p| &p.measures)
                            .map(|m| {
                                let mut reads = Reads::of(&[&m.value], 0);
                                reads.instant |=
                                    m.value.references().iter().any(|r| self.node_of_reference(r).is_some());
                                reads
                            })
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.contact_reads = (self.contact_segments.len() <= 64).then(|| {
            self.contact_segments
                .iter()
                .map(|&i| {
                    let rule = &self.ws.segments()[i].rule;
                    let mut nodes = 0u64;
                    for r in rule.references() {
                        if let Reference::Segment(id) = r
                            && let Some(k) =
                                self.contact_segments.iter().position(|&j| self.ws.segments()[j].id.as_str() == id)
                        {
                            nodes |= 1 << k;
                        }
                    }
                    Reads::of(&[rule], nodes)
                })
                .collect()
        });
    }

    /// Works out what a new day can change, given the nodes each account node reads.
    fn plan_days(&self, reads_nodes: &BTreeMap<Node, BTreeSet<Node>>) -> DayPlan {
        let slides = |rule: &Rule| rule.aggregates().iter().any(|a| self.plan.slides(*a));
        let mut account_nodes: Vec<Node> = Vec::new();
        for &node in &self.account_nodes {
            let moves = matches!(node, Node::Milestone(..))
                || self.rules_of(node).into_iter().any(|r| r.reads_clock() || slides(r))
                || reads_nodes.get(&node).into_iter().flatten().any(|n| account_nodes.contains(n));
            if moves {
                account_nodes.push(node);
            }
        }
        let contact = self
            .contact_segments
            .iter()
            .map(|&i| {
                let rule = &self.ws.segments()[i].rule;
                let scope = |a: &AggId| self.ws.aggregates().get(*a).scope;
                ContactDay {
                    always: (rule.reads_clock() && !rule.clock_predictable())
                        || rule.aggregates().iter().any(|a| scope(a) == Subject::Account && self.plan.slides(*a)),
                    clock: rule.reads_clock() && rule.clock_predictable(),
                    windows: rule
                        .aggregates()
                        .iter()
                        .copied()
                        .filter(|a| scope(a) == Subject::Contact && self.plan.slides(*a))
                        .collect(),
                    reads_contact_segments: rule.references().iter().any(|r| {
                        matches!(r, Reference::Segment(id)
                            if self.ws.segments().iter().any(|s| s.id.as_str() == id && s.subject == Subject::Contact))
                    }),
                    reads_account: rule.references().iter().any(|r| match r {
                        Reference::ContactTrait(_) => false,
                        Reference::Segment(id) => {
                            self.ws.segments().iter().any(|s| s.id.as_str() == id && s.subject == Subject::Account)
                        }
                        _ => true,
                    }) || rule.aggregates().iter().any(|a| scope(a) == Subject::Account),
                }
            })
            .collect::<Vec<ContactDay>>();
        let by_wake = !self.contacts_read_instant && !contact.iter().any(|d| d.always);
        let account_reads = self.day_reads(&account_nodes);
        DayPlan { account_nodes, contact, by_wake, account_reads }
    }

    /// The rules of `nodes` that move with the days alone (see `DayPlan::account_reads`).
    fn day_reads(&self, nodes: &[Node]) -> Vec<DayRead> {
        let moves = |rule: &Rule| rule.reads_clock() || rule.aggregates().iter().any(|a| self.plan.slides(*a));
        let mut reads = Vec::new();
        let mut condition = |at: RuleAt, flat: Option<usize>| {
            if self.rule_at(at).is_some_and(moves) {
                reads.push(DayRead::Condition(at, flat));
            }
        };
        for &node in nodes {
            match node {
                Node::Segment(i) => condition(RuleAt::Segment(i), None),
                Node::Milestone(si, mi) => {
                    let flat = self.milestone_offsets.get(si).map(|o| o + mi);
                    condition(RuleAt::Milestone(si, mi), flat);
                }
                Node::Stage => {
                    let stages = self.ws.journey().map_or(0, |j| j.stages.len());
                    for k in 0..stages {
                        condition(RuleAt::Entry(k), None);
                        condition(RuleAt::Exit(k), None);
                    }
                }
                Node::Health => {
                    let models = self.ws.health().map_or(0, |h| h.models.len());
                    for k in 1..=models {
                        condition(RuleAt::Model(k), None);
                    }
                }
            }
        }
        if nodes.contains(&Node::Health)
            && let Some(h) = self.ws.health()
        {
            for (k, model) in std::iter::once(&h.default).chain(&h.models).enumerate() {
                for (p, pillar) in model.pillars.iter().enumerate() {
                    for (q, m) in pillar.measures.iter().enumerate() {
                        if moves(&m.value) {
                            reads.push(DayRead::Measure(k, p, q));
                        }
                    }
                }
            }
        }
        reads
    }

    /// The rule at `at`, if the workspace has it.
    fn rule_at(&self, at: RuleAt) -> Option<&Rule> {
        let journey = || self.ws.journey();
        match at {
            RuleAt::Segment(i) => self.ws.segments().get(i).map(|s| &s.rule),
            RuleAt::Milestone(si, mi) => journey()?.stages.get(si)?.milestones.get(mi).map(|m| &m.rule),
            RuleAt::Entry(k) => journey()?.stages.get(k)?.entry.as_ref(),
            RuleAt::Exit(k) => journey()?.stages.get(k)?.exit.as_ref(),
            RuleAt::Model(k) => self.ws.health()?.models.get(k.checked_sub(1)?)?.condition.as_ref(),
        }
    }

    /// Measure `q` of pillar `p` of health model `k` (0 the default).
    fn measure_at(&self, k: usize, p: usize, q: usize) -> Option<&cairn_workspace::Measure> {
        let h = self.ws.health()?;
        let model = if k == 0 { &h.default } else { h.models.get(k - 1)? };
        model.pillars.get(p)?.measures.get(q)
    }

    fn node_of_reference(&self, r: &Reference) -> Option<Node> {
        match r {
            Reference::Segment(id) => self
                .ws
                .segments()
                .iter()
                .position(|s| s.id.as_str() == id && s.subject == Subject::Account)
                .map(Node::Segment),
            Reference::Milestone(id) => self.ws.journey().and_then(|j| {
                j.stages.iter().enumerate().find_map(|(si, s)| {
                    s.milestones.iter().position(|m| m.id.as_str() == id).map(|mi| Node::Milestone(si, mi))
                })
            }),
            Reference::Stage => Some(Node::Stage),
            Reference::Health(_) => Some(Node::Health),
            _ => None,
        }
    }

    fn rules_of(&self, node: Node) -> Vec<&Rule> {
        match node {
            Node::Segment(i) => vec![&self.ws.segments()[i].rule],
            Node::Milestone(s, m) => {
                self.ws.journey().map(|j| vec![&j.stages[s].milestones[m].rule]).unwrap_or_default()
            }
            Node::Stage => self
                .ws
                .journey()
                .map(|j| j.stages.iter().flat_map(|s| s.entry.iter().chain(s.exit.iter())).collect())
                .unwrap_or_default(),
            Node::Health => self
                .ws
                .health()
                .map(|h| {
                    std::iter::once(&h.default)
                        .chain(h.models.iter())
                        .flat_map(|m| {
                            m.condition.iter().chain(m.pillars.iter().flat_map(|p| p.measures.iter().map(|x| &x.value)))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The workspace being evaluated.
    /// The nodes among `readers`, deduplicated, in evaluation order.
    fn nodes_reading<'a>(&self, readers: impl Iterator<Item = &'a Node>) -> Vec<Node> {
        let set: BTreeSet<Node> = readers.copied().collect();
        self.account_nodes.iter().copied().filter(|n| set.contains(n)).collect()
    }
}

impl Shard {
    /// An account's state, created empty if new.
    fn account_mut(&mut self, sh: &Shared, id: u64) -> &mut AccountState {
        let plan = &sh.plan;
        let (today, touched) = (self.today, &mut self.touched);
        self.accounts.entry(id).or_insert_with(|| {
            // The next day tick looks at it.
            touched.push(id);
            AccountState {
                aggregates: plan.empty_state(Subject::Account),
                since: today,
                touched: true,
                ..Default::default()
            }
        })
    }

    /// Creates or replaces an account's traits and re-evaluates what reads them.
    fn upsert_account(&mut self, sh: &Shared, id: u64, traits: BTreeMap<String, Value>) -> Vec<Transition> {
        let anchor_trait = sh.ws.journey().map(|j| j.anchor.clone());
        let tz = sh.ws.time_zone().clone();
        let state = self.account_mut(sh, id);
        let changed: BTreeSet<String> = traits
            .keys()
            .chain(state.traits.keys())
            .filter(|k| traits.get(*k) != state.traits.get(*k))
            .cloned()
            .collect();
        let first = state.evaluated_at.is_none();
        state.traits = traits;
        state.anchor = anchor_trait.as_ref().and_then(|t| anchor_day(state.traits.get(t), &tz));
        self.schedule_deadlines(sh, id);
        let nodes: Vec<Node> = if first {
            sh.account_nodes.clone()
        } else {
            sh.nodes_reading(changed.iter().flat_map(|t| sh.readers_of_trait.get(t).into_iter().flatten()))
        };
        let mut out = Vec::new();
        let at = self.now;
        self.evaluate_account(sh, id, &nodes, None, at, &mut out);
        if first || (!nodes.is_empty() && sh.contacts_read_account) {
            self.evaluate_contacts_of(sh, id, at, Look::Everything, None, &mut out);
        }
        out
    }

    /// Creates or replaces a contact (its account link and traits) and evaluates its
    /// segments.
    fn upsert_contact(
        &mut self,
        sh: &Shared,
        id: u64,
        account: Option<u64>,
        traits: BTreeMap<String, Value>,
    ) -> Vec<Transition> {
        let previous = self.contacts.get(&id).and_then(|c| c.account);
        if previous != account {
            if let Some(p) = previous
                && let Some(a) = self.accounts.get_mut(&p)
            {
                a.contacts.remove(&id);
            }
            if let Some(a) = account {
                self.account_mut(sh, a).contacts.insert(id);
            }
        }
        if let Some(c) = self.contacts.get(&id)
            && c.account == account
            && c.traits == traits
            && c.evaluated
        {
            return Vec::new();
        }
        let empty = sh.plan.empty_state(Subject::Contact);
        let c = self.contacts.entry(id).or_insert_with(|| ContactState { aggregates: empty, ..Default::default() });
        c.account = account;
        c.traits = traits;
        c.evaluated = true;
        let mut out = Vec::new();
        let at = self.now;
        self.evaluate_contact(sh, id, at, &mut out);
        out
    }

    /// Applies one event at the shard's current instant: its contact's aggregates (when
    /// `contact_here`: the contact lives in this shard), its account's, and what reads
    /// them. Returns the instant at which the contact, living in another shard, must be
    /// evaluated, if it must.
    fn apply(
        &mut self,
        sh: &Shared,
        event: &EngineEvent,
        (day, date): (Day, Date),
        contact_here: bool,
        out: &mut Vec<Transition>,
    ) -> Option<Timestamp> {
        // Evaluations at the event's own instant need not convert it again.
        self.day_memo = (event.ts, day, date);
        let facts =
            EventFacts { name: &event.name, ts: event.ts, day, contact: event.contact, numbers: &event.numbers };
        self.latest_event_day = self.latest_event_day.max(day);
        // Whether the contact is new here (a contact seen before was evaluated then).
        let new_contact = contact_here && event.contact.is_some_and(|c| !self.contacts.contains_key(&c));
        if contact_here && let Some(c) = event.contact {
            self.record(sh, c, &facts);
        }
        // A contact seen before, whose aggregates this event was just recorded in, needs a
        // look only at what that changed.
        let contact_look = if contact_here && !new_contact { Look::Event } else { Look::Everything };
        let Some(a) = event.account else {
            if let Some(c) = event.contact {
                self.evaluate_contact_segments(sh, c, self.at_for(event.ts, None), contact_look, out);
            }
            return None;
        };
        let new_account = !self.accounts.contains_key(&a);
        if new_account {
            out.extend(self.upsert_account(sh, a, BTreeMap::new()));
        }
        let mut changes = std::mem::take(&mut self.account_changes);
        if let Some(state) = self.accounts.get_mut(&a) {
            sh.plan.record(Subject::Account, &mut state.aggregates, &facts, &mut changes);
        }
        let plans = &sh.event_plans;
        let plan = plans.by_name.get(event.name.as_str()).unwrap_or(&plans.other);
        let contacts_read_changed = plan.contacts_read_changed;
        let at = self.at_for(event.ts, Some(a));
        let account_changed = self.evaluate_account(sh, a, &plan.nodes, Some((&plan.reads, &changes)), at, out);
        self.account_changes = changes;
        // Another contact of the account reads only its own state and the account's:
        // unless what it reads of the account changed (or moves within the day), its
        // segments stay as they are, and only the event's contact needs a look.
        // Of the others, only the segments reading the account can have moved.
        let own = event.contact.filter(|c| contact_here && self.contacts.get(c).is_some_and(|x| x.account == Some(a)));
        let all_contacts = sh.contacts_read_account
            && (new_account || sh.contacts_read_instant || contacts_read_changed || account_changed);
        if all_contacts {
            let look = if new_account || sh.contacts_read_instant {
                Look::Everything
            } else {
                Look::Since { day: None, account: true }
            };
            self.evaluate_contacts_of(sh, a, at, look, own, out);
        }
        let c = event.contact?;
        if !contact_here {
            // A contact of another account (in another shard) acting for this one.
            return Some(at);
        }
        if !all_contacts || own.is_none() {
            self.evaluate_contact_segments(sh, c, at, contact_look, out);
        }
        None
    }

    /// Records an event in the aggregates of contact `c` (created if new), who lives in
    /// this shard.
    fn record_contact(&mut self, sh: &Shared, c: u64, event: &EngineEvent, day: Day) {
        let facts =
            EventFacts { name: &event.name, ts: event.ts, day, contact: event.contact, numbers: &event.numbers };
        self.record(sh, c, &facts);
    }

    /// Records an event in the aggregates of contact `c` (created if new), and in
    /// `contact_changes` what it changed there.
    fn record(&mut self, sh: &Shared, c: u64, facts: &EventFacts<'_>) {
        let plan = &sh.plan;
        let contact = self
            .contacts
            .entry(c)
            .or_insert_with(|| ContactState { aggregates: plan.empty_state(Subject::Contact), ..Default::default() });
        plan.record(Subject::Contact, &mut contact.aggregates, facts, &mut self.contact_changes);
    }

    /// What an event of a replayed run is grouped by (see `Engine::replay_run`): the
    /// account whose state it reads and changes (its own, or its contact's when it has
    /// none), or its contact when neither has one; `None` when it must run alone (its
    /// contact is not known here, or is another account's). Two groups that share a key
    /// by chance (an account's id is a contact's) merely run together.
    fn group_key(&self, e: &EngineEvent) -> Option<u64> {
        match (e.account, e.contact) {
            (Some(a), Some(c)) => self.contacts.get(&c).is_some_and(|x| x.account == Some(a)).then_some(a),
            (Some(a), None) => Some(a),
            (None, Some(c)) => self.contacts.get(&c).map(|x| x.account.unwrap_or(c)),
            (None, None) => None,
        }
    }

    /// Applies the grouped events, account by account, each at the instant the clock had
    /// when it came, and empties the group.
    fn apply_group(
        &mut self,
        sh: &Shared,
        group: &mut Vec<(u64, usize, Timestamp)>,
        events: &[EngineEvent],
        routes: &[Route],
        o: &mut Output,
    ) {
        group.sort_unstable_by_key(|(key, i, _)| (*key, *i));
        for &(_, i, now) in group.iter() {
            self.apply_grouped(sh, i, now, events, routes, o);
        }
        group.clear();
    }

    /// Applies event `i` of a replayed run with the clock at `now`.
    fn apply_grouped(
        &mut self,
        sh: &Shared,
        i: usize,
        now: Timestamp,
        events: &[EngineEvent],
        routes: &[Route],
        o: &mut Output,
    ) {
        let (Some(e), Some(r)) = (events.get(i), routes.get(i)) else { return };
        self.now = now;
        o.mark((i as u32, 1, Timestamp::MIN, 0, 0, 0));
        self.apply(sh, e, (r.day, r.date), true, &mut o.transitions);
    }

    /// Whether moving the clock to `to` crosses a day boundary or a deadline.
    fn due(&self, to: Timestamp) -> bool {
        self.deadlines.first().is_some_and(|(t, _)| *t <= to) || self.next_day <= to
    }

    /// Moves the clock to `to`, handling every day boundary on which something can change
    /// (windows slide, day counts move: what the day can change is re-evaluated at the
    /// start of the new day) and every milestone deadline on the way, each at its own
    /// instant. The days on which nothing can change are crossed in one step (see
    /// [`Shard::skip_quiet_days`]).
    fn advance_to(&mut self, sh: &Shared, to: Timestamp, pos: u32, o: &mut Output) {
        let tz = sh.ws.time_zone();
        loop {
            self.skip_quiet_days(sh, to);
            let next_day = self.next_day;
            let next_deadline = self.deadlines.first().map(|(t, _)| *t);
            let next = match next_deadline {
                Some(d) if d < next_day => d,
                _ => next_day,
            };
            if next > to {
                break;
            }
            if next == next_day {
                let key = |group: u8, id: u64| (pos, 0, next_day, 0, group, id);
                self.now = next_day;
                self.today += 1;
                self.today_start = next_day;
                self.next_day = start_of_day(self.today + 1, tz);
                self.work.ticks += 1;
                let today = self.today;
                let day_nodes = &sh.day_plan.account_nodes;
                if self.latest_event_day >= today {
                    // Events dated today are already recorded: every window can change.
                    // (Every contact is evaluated, and filed again: a filing under today
                    // counts as none; every account too.)
                    self.wakes.remove(&today);
                    self.take_due_accounts(today);
                    let ids = sorted(self.accounts.keys().copied());
                    for id in ids {
                        o.mark(key(0, id));
                        self.evaluate_account(sh, id, &sh.account_nodes, None, next_day, &mut o.transitions);
                        self.file_account_wake(sh, id, next_day);
                        self.work.accounts += 1;
                        self.evaluate_contacts_of(sh, id, next_day, Look::Everything, None, &mut o.transitions);
                    }
                    for c in self.orphans() {
                        o.mark(key(1, c));
                        self.evaluate_contact(sh, c, next_day, &mut o.transitions);
                    }
                } else if sh.day_plan.by_wake {
                    // Only what the day can change: of the accounts, those it can change
                    // (the others would give the answers they gave), and of the contacts
                    // those filed under today, unless what they read of their account
                    // changed.
                    let due = self.take_due_accounts(today);
                    let (mut woken, mut orphans) = self.take_woken(today);
                    let mut ids: Vec<u64> = due
                        .iter()
                        .copied()
                        .chain(woken.keys().copied().filter(|a| self.accounts.contains_key(a)))
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    for id in ids {
                        o.mark(key(0, id));
                        let changed = due.binary_search(&id).is_ok()
                            && self.evaluate_due_account(sh, id, day_nodes, next_day, &mut o.transitions);
                        let look = Look::Since { day: Some(today), account: changed };
                        let contacts = woken.remove(&id);
                        if changed && sh.contacts_read_account {
                            self.evaluate_contacts_of(sh, id, next_day, look, None, &mut o.transitions);
                        } else if let Some(mut contacts) = contacts {
                            // The order `evaluate_contacts_of` takes.
                            contacts.sort_unstable();
                            for c in contacts {
                                self.evaluate_contact_segments(sh, c, next_day, look, &mut o.transitions);
                            }
                        }
                    }
                    orphans.sort_unstable();
                    for c in orphans {
                        o.mark(key(1, c));
                        let look = Look::Since { day: Some(today), account: false };
                        self.evaluate_contact_segments(sh, c, next_day, look, &mut o.transitions);
                    }
                } else {
                    // Only what the day can change: everything else reads what it read
                    // yesterday and would give the same answers. Every contact is looked
                    // at (some contact segment reads the clock in a way no day can be
                    // told for).
                    let due = self.take_due_accounts(today);
                    let ids = sorted(self.accounts.keys().copied());
                    for id in ids {
                        o.mark(key(0, id));
                        let changed = due.binary_search(&id).is_ok()
                            && self.evaluate_due_account(sh, id, day_nodes, next_day, &mut o.transitions);
                        let look = if sh.contacts_read_instant {
                            Look::Everything
                        } else {
                            Look::Since { day: Some(today), account: changed }
                        };
                        self.evaluate_contacts_of(sh, id, next_day, look, None, &mut o.transitions);
                    }
                    for c in self.orphans() {
                        o.mark(key(1, c));
                        let look = Look::Since { day: Some(today), account: false };
                        self.evaluate_contact_segments(sh, c, next_day, look, &mut o.transitions);
                    }
                }
            }
            while let Some(&(t, account)) = self.deadlines.first() {
                if t > next {
                    break;
                }
                self.deadlines.pop_first();
                self.now = self.now.max(t);
                o.mark((pos, 0, t, 1, 0, account));
                self.evaluate_account(sh, account, &sh.account_nodes, None, t, &mut o.transitions);
                let look =
                    if sh.contacts_read_instant { Look::Everything } else { Look::Since { day: None, account: true } };
                self.evaluate_contacts_of(sh, account, t, look, None, &mut o.transitions);
            }
        }
        if to > self.now {
            self.now = to;
        }
    }

    /// Brings the raw values of the health measures that move with the days while their
    /// scores do not (`drifting`) to today, for whoever reads the state next: the
    /// health is scored again at the day's first instant, as a tick would have, and what
    /// the account was evaluated at is left as it was (nothing else of it can have
    /// changed). Called when the engine hands back control, so a replay pays for it once
    /// a batch, not once a day.
    fn refresh_drifting(&mut self, sh: &Shared, out: &mut Vec<Transition>) {
        if !sh.account_nodes.contains(&Node::Health) {
            return;
        }
        let today = self.today;
        let stale: Vec<u64> = self.drifting.iter().filter(|(_, d)| **d < today).map(|(id, _)| *id).collect();
        let at = self.today_start;
        for id in stale {
            self.drifting.insert(id, today);
            let Some(a) = self.accounts.get(&id) else { continue };
            let kept = (a.evaluated_at, a.touched);
            self.evaluate_account(sh, id, &[Node::Health], None, at, out);
            if let Some(a) = self.accounts.get_mut(&id) {
                (a.evaluated_at, a.touched) = kept;
            }
        }
    }

    /// Evaluates what a new day can change of account `id` at `at` (the day's first
    /// instant) and files it under the next day that can change it; returns what
    /// [`Shard::evaluate_account`] returns.
    fn evaluate_due_account(
        &mut self,
        sh: &Shared,
        id: u64,
        day_nodes: &[Node],
        at: Timestamp,
        out: &mut Vec<Transition>,
    ) -> bool {
        let changed = self.evaluate_account(sh, id, day_nodes, None, at, out);
        self.file_account_wake(sh, id, at);
        self.work.accounts += 1;
        changed
    }

    /// Crosses, in one step, the days before the next one on which a day tick can
    /// change something: the day an account or a contact is filed under, the day of the
    /// next deadline, the day of `to`. Nothing is crossed while an account changed since
    /// a tick last looked at it, while events dated after today are recorded (each such
    /// day re-evaluates everything), or when contacts are looked at every day
    /// (`DayPlan::by_wake` false). Skipped ticks would have re-evaluated what the days
    /// cannot change: the answers, and what is kept (health snapshots are runs, see
    /// `AccountState::snapshots`), are those of a tick each day.
    fn skip_quiet_days(&mut self, sh: &Shared, to: Timestamp) {
        if !sh.day_plan.by_wake || self.latest_event_day > self.today || self.next_day > to {
            return;
        }
        let accounts = &self.accounts;
        self.touched.retain(|id| accounts.get(id).is_some_and(|a| a.touched));
        if !self.touched.is_empty() {
            return;
        }
        let mut target = sh.calendar_day(to).0;
        if let Some((&day, _)) = self.account_wakes.first_key_value() {
            target = target.min(day);
        }
        if let Some((&day, _)) = self.wakes.first_key_value() {
            target = target.min(day);
        }
        if let Some(&(t, _)) = self.deadlines.first() {
            target = target.min(sh.calendar_day(t).0);
        }
        // The tick of `target` runs; the days before it are crossed.
        let last_quiet = target.saturating_sub(1);
        if last_quiet > self.today {
            let tz = sh.ws.time_zone();
            self.today = last_quiet;
            self.today_start = start_of_day(last_quiet, tz);
            self.next_day = start_of_day(target, tz);
            self.now = self.now.max(self.today_start);
        }
    }

    /// The contacts without an account, in id order (a pass over every contact).
    fn orphans(&self) -> Vec<u64> {
        sorted(self.contacts.iter().filter(|(_, c)| c.account.is_none()).map(|(id, _)| *id))
    }

    /// The accounts a day tick on `day` looks at, in id order: those whose `wake` it is,
    /// and those evaluated or created since a tick last looked at them.
    fn take_due_accounts(&mut self, day: Day) -> Vec<u64> {
        let mut due: Vec<u64> = Vec::new();
        for id in self.account_wakes.remove(&day).unwrap_or_default() {
            if self.accounts.get(&id).is_some_and(|a| a.wake == Some(day)) {
                due.push(id);
            }
        }
        for id in std::mem::take(&mut self.touched) {
            if let Some(a) = self.accounts.get_mut(&id)
                && a.touched
            {
                a.touched = false;
                due.push(id);
            }
        }
        due.sort_unstable();
        due.dedup();
        due
    }

    /// After account `id` was looked at on a day tick at `at`: files it under the next
    /// day on which the days alone can change it (see [`Shard::account_wake`]).
    fn file_account_wake(&mut self, sh: &Shared, id: u64, at: Timestamp) {
        let (wake, drifts) = self.account_wake(sh, id, at);
        if drifts {
            self.drifting.insert(id, self.today);
        } else {
            self.drifting.remove(&id);
        }
        let Some(a) = self.accounts.get_mut(&id) else { return };
        a.touched = false;
        if a.wake != wake {
            a.wake = wake;
            if let Some(w) = wake {
                self.account_wakes.entry(w).or_default().push(id);
            }
        }
    }

    /// The first day after the day of `at` on which the days alone (no event, no trait
    /// change) can change what the day nodes of account `id` give: a sliding window
    /// losing a day with data ([`AggregatePlan::next_change_overnight`]), a rule's clock
    /// read flipping a comparison ([`Rule::next_clock_change`]), a health measure's score
    /// moving on its curve (its value moving steadily with the days, [`Rule::day_trend`],
    /// reaches a point where the score bends; every day while it is between them); and
    /// whether a measure's raw value moves while its score does not (that value is
    /// brought to the day when the engine hands back control, see
    /// [`Shard::refresh_drifting`]: it holds no day up). A milestone's deadline is a step of the clock of its own. A day
    /// named may change nothing; none is later than the first change.
    fn account_wake(&mut self, sh: &Shared, id: u64, at: Timestamp) -> (Option<Day>, bool) {
        let (today, today_date) = self.day_at(sh, at);
        let Some(state) = self.accounts.get(&id) else { return (None, false) };
        let env = AccountEnv {
            shared: sh,
            account: state,
            contact: None,
            contact_segments: None,
            now: at,
            today,
            today_date,
        };
        let mut wake: Option<Day> = None;
        let mut drifts = false;
        let mut on = |day: Day| wake = Some(wake.map_or(day, |w| w.min(day)));
        let in_days = |n: i64| today.saturating_add(Day::try_from(n).unwrap_or(Day::MAX));
        let windows = |rule: &Rule, on: &mut dyn FnMut(Day)| {
            for &a in rule.aggregates() {
                if sh.ws.aggregates().get(a).scope == Subject::Account
                    && let Some(day) = sh.plan.next_change_overnight(a, &state.aggregates, today)
                {
                    on(day);
                }
            }
        };
        for read in &sh.day_plan.account_reads {
            match *read {
                DayRead::Condition(at, milestone) => {
                    if milestone.is_some_and(|flat| state.milestones_done.contains(flat)) {
                        continue;
                    }
                    let Some(rule) = sh.rule_at(at) else { continue };
                    windows(rule, &mut on);
                    if let Some(n) = rule.next_clock_change(&env) {
                        on(in_days(n));
                    }
                }
                DayRead::Measure(k, p, q) => {
                    let Some(m) = sh.measure_at(k, p, q) else { continue };
                    windows(&m.value, &mut on);
                    if !m.value.reads_clock() {
                        continue;
                    }
                    match m.value.day_trend(&env) {
                        // It reads the clock in a way the days cannot be told for.
                        None => on(in_days(1)),
                        Some((Some(value), per_day)) if per_day != 0.0 => {
                            drifts = true;
                            if let Some(n) = next_score_change(&m.curve, value, per_day) {
                                on(in_days(n));
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        (wake, drifts)
    }

    /// The contacts filed under `day` (and still filed there) whose segments the day
    /// can change, unfiled: those of each account, and those without an account. One
    /// filed there whose day has moved later since is filed again under it.
    fn take_woken(&mut self, day: Day) -> (FastMap<u64, Vec<u64>>, Vec<u64>) {
        let mut by_account: FastMap<u64, Vec<u64>> = FastMap::default();
        let mut orphans = Vec::new();
        let mut later = Vec::new();
        for c in self.wakes.remove(&day).unwrap_or_default() {
            let Some(state) = self.contacts.get_mut(&c) else { continue };
            if state.filed != Some(day) {
                continue;
            }
            state.filed = None;
            match state.wake {
                Some(w) if w <= day => {
                    state.wake = None;
                    match state.account {
                        Some(a) => by_account.entry(a).or_default().push(c),
                        None => orphans.push(c),
                    }
                }
                Some(w) => {
                    state.filed = Some(w);
                    later.push((w, c));
                }
                None => {}
            }
        }
        for (w, c) in later {
            self.wakes.entry(w).or_default().push(c);
        }
        (by_account, orphans)
    }

    /// With `DayPlan::by_wake`, after contact `id` was evaluated at `at` (on `today`):
    /// files it under the first day after the shard's day on which the days alone can
    /// change one of its segments, a day count reaching a bound or a day with data
    /// leaving a sliding window, as it is now. Whatever else could change them (its
    /// events, its traits, what they read of its account) evaluates it again, and files
    /// it again.
    fn file_wake(&mut self, sh: &Shared, id: u64, at: Timestamp, today: Day, today_date: Date) {
        let Some(contact) = self.contacts.get(&id) else { return };
        let empty = AccountState::default();
        let account = contact.account.and_then(|a| self.accounts.get(&a)).unwrap_or(&empty);
        let env = AccountEnv {
            shared: sh,
            account,
            contact: Some(contact),
            contact_segments: None,
            now: at,
            today,
            today_date,
        };
        let mut wake: Option<Day> = None;
        let mut earliest = |day: Day| wake = Some(wake.map_or(day, |w| w.min(day)));
        for (k, &i) in sh.contact_segments.iter().enumerate() {
            let d = &sh.day_plan.contact[k];
            if d.clock
                && let Some(n) = sh.ws.segments()[i].rule.next_clock_change(&env)
            {
                earliest(today.saturating_add(Day::try_from(n).unwrap_or(Day::MAX)));
            }
            for w in &d.windows {
                if let Some(day) = sh.plan.next_change_overnight(*w, &contact.aggregates, today) {
                    earliest(day);
                }
            }
        }
        // A day already begun (a late event evaluated at its own instant) is looked at
        // on the next day tick.
        let shard_today = self.today;
        let wake = wake.map(|w| w.max(shard_today.saturating_add(1)));
        if let Some(c) = self.contacts.get_mut(&id) {
            c.wake = wake;
            // Filed again only when the day came earlier (or the filing was used up): a
            // day that moved later is found when the earlier one comes.
            if let Some(w) = wake
                && c.filed.is_none_or(|f| f <= shard_today || w < f)
            {
                c.filed = Some(w);
                self.wakes.entry(w).or_default().push(id);
            }
        }
    }

    /// Re-evaluates everything of this shard at the current instant: accounts, then
    /// contacts, each in id order.
    fn evaluate_all(&mut self, sh: &Shared, o: &mut Output) {
        let at = self.now;
        let ids = sorted(self.accounts.keys().copied());
        for id in ids {
            o.mark((0, 0, Timestamp::MIN, 0, 0, id));
            self.evaluate_account(sh, id, &sh.account_nodes, None, at, &mut o.transitions);
        }
        let contacts = sorted(self.contacts.keys().copied());
        for c in contacts {
            o.mark((0, 0, Timestamp::MIN, 0, 1, c));
            self.evaluate_contact(sh, c, at, &mut o.transitions);
        }
    }

    /// The instant an event at `ts` is evaluated at: never before its account's last
    /// evaluation (every day tick counts as one for the accounts it found: a tick that
    /// found nothing of an account to change left it as evaluated then), never after the
    /// clock.
    fn at_for(&self, ts: Timestamp, account: Option<u64>) -> Timestamp {
        let state = account.and_then(|a| self.accounts.get(&a));
        let mut floor = state.and_then(|s| s.evaluated_at).unwrap_or(ts);
        if state.is_some_and(|s| s.since < self.today) {
            floor = floor.max(self.today_start);
        }
        ts.max(floor).min(self.now)
    }

    /// The calendar day of `at` in the workspace time zone, as a day number and a date.
    fn day_at(&mut self, sh: &Shared, at: Timestamp) -> (Day, Date) {
        if self.day_memo.0 != at {
            let (day, date) = sh.calendar_day(at);
            self.day_memo = (at, day, date);
        }
        (self.day_memo.1, self.day_memo.2)
    }

    fn schedule_deadlines(&mut self, sh: &Shared, account: u64) {
        let Some(state) = self.accounts.get_mut(&account) else { return };
        for t in state.deadlines.drain(..) {
            self.deadlines.remove(&(t, account));
        }
        let Some(journey) = sh.ws.journey() else { return };
        let Some(anchor) = state.anchor else { return };
        let tz = sh.ws.time_zone();
        for m in journey.milestones() {
            let pending = matches!(state.milestones.get(m.id.as_str()), None | Some(MilestoneStatus::Pending));
            if let (true, Some(within)) = (pending, m.within) {
                let deadline = deadline(anchor, within, tz);
                if deadline > self.now && self.deadlines.insert((deadline, account)) {
                    state.deadlines.push(deadline);
                }
            }
        }
    }

    /// Evaluates `nodes` of account `id` at `at`; returns whether a node that contact
    /// segments read changed (a membership, a milestone, the stage, a health score).
    /// After an event, `event` holds what each node reads (as `nodes`) and what the
    /// event changed in the account's aggregates: on the event's day, a node none of
    /// whose reads moved is left as it is.
    fn evaluate_account(
        &mut self,
        sh: &Shared,
        id: u64,
        nodes: &[Node],
        event: Option<(&[Reads], &Changes)>,
        at: Timestamp,
        out: &mut Vec<Transition>,
    ) -> bool {
        let mut read_by_contacts_changed = false;
        let shard_today = self.today;
        let (today, today_date) = self.day_at(sh, at);
        let ws = &sh.ws;
        // A late event is evaluated on a later day than its own: everything it can reach.
        let event = event.filter(|(_, changes)| changes.day() == today);
        // The nodes (by position) this evaluation changed.
        let mut changed: u64 = 0;
        // The health measures' raw values, in a buffer kept across evaluations.
        let mut values = std::mem::take(&mut self.health_values);
        for (k, &node) in nodes.iter().enumerate() {
            let Some(state) = self.accounts.get(&id) else { break };
            if let Some((reads, changes)) = event
                && !reads[k].moved(&sh.plan, changes, state.anchor, changed)
            {
                continue;
            }
            let mut rescored = false;
            let env = AccountEnv {
                shared: sh,
                account: state,
                contact: None,
                contact_segments: None,
                now: at,
                today,
                today_date,
            };
            let transitions_before = out.len();
            match node {
                Node::Segment(i) => {
                    let segment = &ws.segments()[i];
                    let inside = segment.rule.eval_bool(&env);
                    let id_str = segment.id.as_str();
                    let was = state.member_of.contains(i);
                    if inside != was {
                        let kind = if inside {
                            TransitionKind::SegmentEntered { segment: id_str.to_string() }
                        } else {
                            TransitionKind::SegmentExited { segment: id_str.to_string() }
                        };
                        out.push(self.transition(at, SubjectRef::Account(id), kind));
                        if let Some(s) = self.accounts.get_mut(&id) {
                            s.member_of.set(i, inside);
                            if inside {
                                s.segments.insert(id_str.to_string());
                            } else {
                                s.segments.remove(id_str);
                            }
                        }
                    }
                }
                Node::Milestone(si, mi) => {
                    let Some(journey) = sh.ws.journey() else { continue };
                    let m = &journey.stages[si].milestones[mi];
                    let flat = sh.milestone_offsets[si] + mi;
                    if state.milestones_done.contains(flat) {
                        continue;
                    }
                    let due = match (state.anchor, m.within) {
                        (Some(anchor), Some(within)) => Some(deadline(anchor, within, sh.ws.time_zone())),
                        _ => None,
                    };
                    let new = match due {
                        Some(due) if at >= due => Some(MilestoneStatus::Missed(due)),
                        _ if m.rule.eval_bool(&env) => Some(MilestoneStatus::Achieved(at)),
                        _ => None,
                    };
                    if let Some(new) = new {
                        let milestone = m.id.as_str().to_string();
                        let kind = match new {
                            MilestoneStatus::Missed(_) => {
                                TransitionKind::MilestoneMissed { milestone: milestone.clone() }
                            }
                            _ => TransitionKind::MilestoneAchieved { milestone: milestone.clone() },
                        };
                        let stamp = match new {
                            MilestoneStatus::Missed(due) => due,
                            _ => at,
                        };
                        out.push(self.transition(stamp, SubjectRef::Account(id), kind));
                        if let Some(s) = self.accounts.get_mut(&id) {
                            s.milestones.insert(milestone, new);
                            s.milestones_done.set(flat, true);
                        }
                    }
                }
                Node::Stage => {
                    let Some(journey) = sh.ws.journey() else { continue };
                    let stages = &journey.stages;
                    let mut current = state.stage;
                    let mut moves = Vec::new();
                    // Forward only, at most once per stage: into the first stage, then on
                    // when the current stage's exit rule holds (if the next stage's entry
                    // rule, when it has one, holds too), or straight to the furthest later
                    // stage whose entry rule holds.
                    for _ in 0..=stages.len() {
                        let from = current;
                        let start = current.map_or(0, |c| c + 1);
                        let jump = (start..stages.len())
                            .rev()
                            .find(|&j| stages[j].entry.as_ref().is_some_and(|r| r.eval_bool(&env)));
                        let next = match (current, jump) {
                            (_, Some(j)) => Some(j),
                            (None, None) => (!stages.is_empty()).then_some(0),
                            (Some(c), None) => {
                                let exits = stages[c].exit.as_ref().is_some_and(|r| r.eval_bool(&env));
                                let n = c + 1;
                                let enters =
                                    stages.get(n).is_some_and(|s| s.entry.as_ref().is_none_or(|r| r.eval_bool(&env)));
                                (exits && enters).then_some(n)
                            }
                        };
                        // A stage entered now is checked again with the same facts: its
                        // exit rule may already hold.
                        match next {
                            Some(n) if Some(n) != from => {
                                moves.push((from, n));
                                current = Some(n);
                            }
                            _ => break,
                        }
                    }
                    if !moves.is_empty() {
                        for (from, to) in &moves {
                            let kind = TransitionKind::StageChanged {
                                from: from.map(|f| stages[f].id.as_str().to_string()),
                                to: stages[*to].id.as_str().to_string(),
                            };
                            out.push(self.transition(at, SubjectRef::Account(id), kind));
                        }
                        if let Some(s) = self.accounts.get_mut(&id) {
                            s.stage = current;
                            s.stage_since = Some(at);
                        }
                    }
                }
                Node::Health => {
                    let Some(health) = ws.health() else { continue };
                    // Models by index: 0 the default, then the segment models in order.
                    let (index, model) = health
                        .models
                        .iter()
                        .enumerate()
                        .find(|(_, m)| m.condition.as_ref().is_some_and(|c| c.eval_bool(&env)))
                        .map_or((0, &health.default), |(i, m)| (i + 1, m));
                    // After an event, scored by the same model before: a measure none of
                    // whose reads moved keeps its value.
                    let kept = event.zip(state.health.as_ref().filter(|h| h.model == model.id.as_str()));
                    let mut before =
                        kept.map(|(_, h)| h.pillars.iter().flat_map(|p| p.measures.iter().map(|m| m.value)));
                    values.clear();
                    for (j, m) in model.pillars.iter().flat_map(|p| p.measures.iter()).enumerate() {
                        let value_before = before.as_mut().and_then(|b| b.next());
                        let value = match (kept, value_before) {
                            (Some(((_, changes), _)), Some(v))
                                if !sh.health_reads[index][j].moved(&sh.plan, changes, state.anchor, 0) =>
                            {
                                v
                            }
                            _ => match m.value.eval(&env) {
                                Value::Number(x) => Some(x),
                                _ => None,
                            },
                        };
                        values.push(value);
                    }
                    if state.health.as_ref().is_some_and(|h| same_inputs(h, model, &values)) {
                        // The same model on the same values: the same score, nothing to
                        // do.
                        continue;
                    }
                    let contacts_read_health = sh.contacts_read_nodes.contains(&Node::Health);
                    let before = if contacts_read_health { state.health.clone() } else { None };
                    let before_band = state.health.as_ref().and_then(|h| h.band);
                    let Some(s) = self.accounts.get_mut(&id) else { continue };
                    rescored = true;
                    // Scored in place when the model is the same (no new strings).
                    if !s.health.as_mut().is_some_and(|h| health::rescore(h, model, &health.bands, &values)) {
                        s.health = Some(health::score(model, &health.bands, &values));
                    }
                    let Some(scored) = s.health.as_ref() else { continue };
                    record_snapshot(&mut s.snapshots, shard_today, snapshot(scored));
                    if contacts_read_health && !same_scores(before.as_ref(), scored) {
                        read_by_contacts_changed = true;
                    }
                    if let (Some(to), Some(score)) = (scored.band, scored.score)
                        && before_band != Some(to)
                    {
                        let kind = TransitionKind::HealthBandChanged { from: before_band, to, score };
                        out.push(self.transition(at, SubjectRef::Account(id), kind));
                    }
                }
            }
            // Segments, milestones and stages change only with a transition.
            if out.len() > transitions_before && node != Node::Health && sh.contacts_read_nodes.contains(&node) {
                read_by_contacts_changed = true;
            }
            if (rescored || out.len() > transitions_before) && k < 64 {
                changed |= 1 << k;
            }
        }
        self.health_values = values;
        if let Some(s) = self.accounts.get_mut(&id) {
            s.evaluated_at = Some(s.evaluated_at.map_or(at, |e| e.max(at)));
            if !s.touched {
                s.touched = true;
                self.touched.push(id);
            }
        }
        read_by_contacts_changed
    }

    /// Evaluates the contacts of an account, in id order, looking at what `look` says;
    /// `whole` (one of them) at everything.
    fn evaluate_contacts_of(
        &mut self,
        sh: &Shared,
        account: u64,
        at: Timestamp,
        look: Look,
        whole: Option<u64>,
        out: &mut Vec<Transition>,
    ) {
        let contacts: Vec<u64> =
            self.accounts.get(&account).map(|a| a.contacts.iter().copied().collect()).unwrap_or_default();
        for c in contacts {
            let look = if whole == Some(c) { Look::Everything } else { look };
            self.evaluate_contact_segments(sh, c, at, look, out);
        }
    }

    fn evaluate_contact(&mut self, sh: &Shared, id: u64, at: Timestamp, out: &mut Vec<Transition>) {
        self.evaluate_contact_segments(sh, id, at, Look::Everything, out);
    }

    /// Evaluates a contact's segments at `at`, those `look` says (with a day plan, `at`
    /// is the new day's first instant).
    fn evaluate_contact_segments(
        &mut self,
        sh: &Shared,
        id: u64,
        at: Timestamp,
        look: Look,
        out: &mut Vec<Transition>,
    ) {
        if sh.contact_segments.is_empty() {
            return;
        }
        let (today, today_date) = self.day_at(sh, at);
        // After an event: only on the event's own day, and with each segment's reads.
        let event = match look {
            Look::Event => sh.contact_reads.as_deref().filter(|_| self.contact_changes.day() == today),
            _ => None,
        };
        let look = if matches!(look, Look::Event) && event.is_none() { Look::Everything } else { look };
        let ws = &sh.ws;
        let empty = AccountState::default();
        // Later segments read the earlier ones' new answers: once one changes, the
        // memberships are a copy, stored back at the end.
        let mut updated: Option<Bits> = None;
        let mut changes: Vec<(usize, bool)> = Vec::new();
        // The segments (by position) changed so far.
        let mut changed: u64 = 0;
        if let Some(contact) = self.contacts.get(&id) {
            let account = contact.account.and_then(|a| self.accounts.get(&a)).unwrap_or(&empty);
            for (k, &i) in sh.contact_segments.iter().enumerate() {
                if let Some(reads) = event
                    && !reads[k].moved(&sh.plan, &self.contact_changes, account.anchor, changed)
                {
                    continue;
                }
                if let Look::Since { day, account } = look {
                    let d = &sh.day_plan.contact[k];
                    let moves = (!changes.is_empty() && d.reads_contact_segments)
                        || (account && d.reads_account)
                        || day.is_some_and(|new_day| {
                            d.always
                                || d.clock
                                || d.windows.iter().any(|w| sh.plan.changes_overnight(*w, &contact.aggregates, new_day))
                        });
                    if !moves {
                        continue;
                    }
                }
                let env = AccountEnv {
                    shared: sh,
                    account,
                    contact: Some(contact),
                    contact_segments: updated.as_ref(),
                    now: at,
                    today,
                    today_date,
                };
                let segment = &ws.segments()[i];
                let inside = segment.rule.eval_bool(&env);
                if inside != updated.as_ref().unwrap_or(&contact.member_of).contains(i) {
                    let sid = segment.id.as_str();
                    let kind = if inside {
                        TransitionKind::SegmentEntered { segment: sid.to_string() }
                    } else {
                        TransitionKind::SegmentExited { segment: sid.to_string() }
                    };
                    out.push(self.transition(at, SubjectRef::Contact(id), kind));
                    changes.push((i, inside));
                    if k < 64 {
                        changed |= 1 << k;
                    }
                    updated.get_or_insert_with(|| contact.member_of.clone()).set(i, inside);
                }
            }
        }
        if let Some(bits) = updated
            && let Some(c) = self.contacts.get_mut(&id)
        {
            c.member_of = bits;
            for (i, inside) in changes {
                let sid = ws.segments()[i].id.as_str();
                if inside {
                    c.segments.insert(sid.to_string());
                } else {
                    c.segments.remove(sid);
                }
            }
        }
        // The next day the days alone can change its segments depends on the days its
        // series hold data and its first and last days (and on traits, which no event
        // changes): when the event moved none of them, the day filed last still holds.
        if sh.day_plan.by_wake && (event.is_none() || self.contact_changes.days_moved()) {
            self.file_wake(sh, id, at, today, today_date);
        }
    }

    fn transition(&self, at: Timestamp, subject: SubjectRef, kind: TransitionKind) -> Transition {
        Transition { at, subject, kind, backfill: self.backfill }
    }
}

/// Whether two health evaluations give every rule the same answers (the overall and
/// each pillar's score: what `health()` and `health('pillar')` read).
fn same_scores(before: Option<&HealthScore>, after: &HealthScore) -> bool {
    let Some(before) = before else { return false };
    before.score == after.score
        && before.pillars.len() == after.pillars.len()
        && before.pillars.iter().zip(&after.pillars).all(|(a, b)| a.id == b.id && a.score == b.score)
}

/// Whether `h` is what [`health::score`] gives for `model` on `values` (the same model
/// and, bit for bit, the same measure values as it keeps them), so scoring again would
/// change nothing.
fn same_inputs(h: &HealthScore, model: &HealthModel, values: &[Option<f64>]) -> bool {
    h.model == model.id.as_str()
        && h.pillars.len() == model.pillars.len()
        && h.pillars.iter().zip(&model.pillars).all(|(p, mp)| p.measures.len() == mp.measures.len())
        && h.pillars.iter().flat_map(|p| &p.measures).count() == values.len()
        && h.pillars
            .iter()
            .flat_map(|p| &p.measures)
            .zip(values)
            .all(|(m, v)| m.value.map(f64::to_bits) == v.filter(|v| v.is_finite()).map(f64::to_bits))
}

/// In how many days (at least 1) the score a curve gives a value moving from `value` by
/// `per_day` a day can next change: every day while the value is between a linear
/// curve's red and green points, else when it reaches one (or a band's limit); `None`
/// when it moves away from them all.
fn next_score_change(curve: &Curve, value: f64, per_day: f64) -> Option<i64> {
    let reaching = |bound: f64| Rule::days_until_reaching(value, per_day, bound);
    match curve {
        Curve::Linear { red, green } => {
            let (low, high) = (red.min(*green), red.max(*green));
            if (low..=high).contains(&value) {
                return Some(1);
            }
            [reaching(low), reaching(high)].into_iter().flatten().min()
        }
        Curve::Bands(bands) => bands.iter().filter_map(|b| b.below).filter_map(reaching).min(),
    }
}

/// Records that the end-of-day health is `s` from day `today` on (see
/// `AccountState::snapshots`), forgetting the runs that end before the oldest day kept.
fn record_snapshot(snapshots: &mut BTreeMap<Day, HealthSnapshot>, today: Day, s: HealthSnapshot) {
    // One entry per change: the same history gives the same runs however often it was
    // scored.
    if snapshots.range(..today).next_back().is_some_and(|(_, before)| *before == s) {
        snapshots.remove(&today);
    } else {
        snapshots.insert(today, s);
    }
    let oldest = today.saturating_sub(SNAPSHOT_DAYS);
    while snapshots.keys().nth(1).is_some_and(|d| *d <= oldest) {
        snapshots.pop_first();
    }
}

/// The end-of-day health of day `day`, seen on day `today`: kept for the last
/// `SNAPSHOT_DAYS` days before today.
fn snapshot_on(snapshots: &BTreeMap<Day, HealthSnapshot>, day: Day, today: Day) -> Option<&HealthSnapshot> {
    if day >= today || day < today.saturating_sub(SNAPSHOT_DAYS) {
        return None;
    }
    snapshots.range(..=day).next_back().map(|(_, s)| s)
}

fn snapshot(h: &HealthScore) -> HealthSnapshot {
    HealthSnapshot { score: h.score, pillars: h.pillars.iter().map(|p| (p.id.clone(), p.score)).collect() }
}

fn anchor_day(value: Option<&Value>, tz: &TimeZone) -> Option<Day> {
    match value? {
        Value::Date(d) => Some(crate::days::day_of_date(*d)),
        Value::Timestamp(t) => Some(day_of(*t, tz)),
        _ => None,
    }
}

/// A milestone's deadline: whole days count calendar days from the anchor's day (the
/// deadline is the start of day anchor + N); other durations count from the anchor's
/// first instant.
fn deadline(anchor: Day, within: SignedDuration, tz: &TimeZone) -> Timestamp {
    let secs = within.as_secs();
    if secs % 86_400 == 0 {
        start_of_day(anchor.saturating_add((secs / 86_400).clamp(0, i64::from(i32::MAX)) as i32), tz)
    } else {
        start_of_day(anchor, tz).checked_add(within).unwrap_or(Timestamp::MAX)
    }
}

/// The view of one account (and, for contact rules, one contact) that rules read.
struct AccountEnv<'a> {
    shared: &'a Shared,
    account: &'a AccountState,
    contact: Option<&'a ContactState>,
    /// The contact's memberships when they are held apart from `contact` while it is
    /// evaluated.
    contact_segments: Option<&'a Bits>,
    now: Timestamp,
    today: Day,
    /// The calendar date of `now` (`today` as a date).
    today_date: Date,
}

impl Env for AccountEnv<'_> {
    fn now(&self) -> Timestamp {
        self.now
    }

    fn today(&self) -> Date {
        self.today_date
    }

    fn time_zone(&self) -> &TimeZone {
        self.shared.ws.time_zone()
    }

    fn account_trait(&self, name: &str) -> Value {
        self.account.traits.get(name).cloned().unwrap_or(Value::Null)
    }

    fn contact_trait(&self, name: &str) -> Value {
        self.contact.and_then(|c| c.traits.get(name).cloned()).unwrap_or(Value::Null)
    }

    fn aggregate(&self, id: AggId) -> Value {
        let state = match self.shared.ws.aggregates().get(id).scope {
            Subject::Account => &self.account.aggregates,
            Subject::Contact => match self.contact {
                Some(c) => &c.aggregates,
                None => return Value::Null,
            },
        };
        self.shared.plan.value(id, state, self.today, self.account.anchor)
    }

    fn segment(&self, id: &str) -> bool {
        let Some(&i) = self.shared.segment_index.get(id) else { return false };
        self.account.member_of.contains(i)
            || match self.contact_segments {
                Some(s) => s.contains(i),
                None => self.contact.is_some_and(|c| c.member_of.contains(i)),
            }
    }

    fn milestone_achieved(&self, id: &str) -> bool {
        matches!(self.account.milestones.get(id), Some(MilestoneStatus::Achieved(_)))
    }

    fn stage(&self) -> Option<String> {
        let stage = self.account.stage?;
        Some(self.shared.ws.journey()?.stages.get(stage)?.id.as_str().to_string())
    }

    fn stage_value(&self) -> Value {
        self.account.stage.and_then(|s| self.shared.stage_values.get(s)).cloned().unwrap_or(Value::Null)
    }

    fn health(&self, pillar: Option<&str>) -> Option<f64> {
        let h = self.account.health.as_ref()?;
        match pillar {
            None => h.score,
            Some(p) => h.pillars.iter().find(|x| x.id == p)?.score,
        }
    }

    fn anchor(&self) -> Option<Timestamp> {
        Some(start_of_day(self.account.anchor?, self.shared.ws.time_zone()))
    }
}

/// What a program rule may ask beyond the engine's state: how the enrollment's recipient
/// engaged with the program's sends, and whether its goal is met. The program runner
/// answers it from the store.
pub trait ProgramFacts {
    /// Whether the recipient engaged with send step `step` in this way.
    fn engagement(&self, step: &str, kind: Engagement) -> bool;
    /// Whether the enrollment's goal is met.
    fn goal_met(&self) -> bool;
}

/// An account's (or contact's) view plus a program's facts.
struct ProgramEnv<'a> {
    inner: AccountEnv<'a>,
    facts: &'a dyn ProgramFacts,
}

impl Env for ProgramEnv<'_> {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }

    fn time_zone(&self) -> &TimeZone {
        self.inner.time_zone()
    }

    fn account_trait(&self, name: &str) -> Value {
        self.inner.account_trait(name)
    }

    fn contact_trait(&self, name: &str) -> Value {
        self.inner.contact_trait(name)
    }

    fn aggregate(&self, id: AggId) -> Value {
        self.inner.aggregate(id)
    }

    fn segment(&self, id: &str) -> bool {
        self.inner.segment(id)
    }

    fn milestone_achieved(&self, id: &str) -> bool {
        self.inner.milestone_achieved(id)
    }

    fn stage(&self) -> Option<String> {
        self.inner.stage()
    }

    fn health(&self, pillar: Option<&str>) -> Option<f64> {
        self.inner.health(pillar)
    }

    fn anchor(&self) -> Option<Timestamp> {
        self.inner.anchor()
    }

    fn engagement(&self, step: &str, kind: Engagement) -> bool {
        self.facts.engagement(step, kind)
    }

    fn goal_met(&self) -> bool {
        self.facts.goal_met()
    }
}
