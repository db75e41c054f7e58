//! cairn-rules: the rule language of segments, milestones, stages, health measures and
//! programs.
//!
//! A rule is a SQL-style expression (`arr < 20000 and plan in ('starter', 'team')`,
//! `distinct_users('user_invited', since_anchor) >= 5`). [`compile`] lexes, parses (a
//! hand-written Pratt parser keeping exact byte spans), resolves every name against a
//! [`Schema`] and type-checks the whole expression, returning a [`Rule`] or the
//! [`RuleError`]s found, each with its span and, where it can, a suggested fix: every
//! name and type error of a rule, or its first syntax error. A compiled
//! rule lists the behavioural aggregates it needs ([`AggregateSpec`], interned in an
//! [`AggregateTable`] shared by a whole workspace) and the other definitions it refers
//! to ([`Reference`]), so the engine maintains only those aggregates and knows what to
//! re-evaluate when one changes. Evaluation ([`Rule::eval`]) reads everything, including
//! "now", from an [`Env`] the caller provides, follows SQL's three-valued logic, and never
//! panics (division by zero, overflow and values of an unexpected kind give `Null`).
//! A program's rules may also ask about its steps (`opened('welcome')`) and goal
//! (`goal()`) when the [`Schema`] carries a [`ProgramScope`].
//!
//! The language itself is documented for its users in `docs/rules.md`.
//!
//! The way through the crate: `lexer` (tokens, duration literals) → `parser` (Pratt, to
//! the `ast`, nesting bounded at 64 levels) → `check` (names, types, function calls and
//! aggregates, to the resolved `eval::Node` tree; `suggest` finds "did you mean") →
//! `eval` (walks the tree against an [`Env`]). The lexer also reads a program's trigger
//! for the workspace checker ([`lex_trigger`]).
//!
//! Pure: no I/O, no clock of its own, no async.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

mod ast;
mod check;
mod clock;
mod eval;
mod lexer;
mod parser;
mod suggest;

pub use eval::day_number;
use eval::{Context, Node};
pub use lexer::{TriggerToken, lex_trigger};

/// A byte range in a rule's source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// What a rule is about: an account, or a contact (a person at an account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A customer company.
    Account,
    /// A person at an account.
    Contact,
}

/// The static type of an expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// `true` / `false` (a condition).
    Bool,
    /// A number (integers and decimals alike).
    Number,
    /// Text.
    String,
    /// A calendar date (`start_date`, `renewal_date`).
    Date,
    /// An instant (`first_seen('x')`).
    Timestamp,
    /// A length of time (`14d`, `age()`).
    Duration,
    /// A list (`['a', 'b']`, the right side of `in`).
    List(Box<Type>),
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("boolean"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Date => f.write_str("date"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::Duration => f.write_str("duration"),
            Type::List(t) => write!(f, "list of {t}"),
        }
    }
}

/// A run-time value. `Null` is SQL's unknown: comparisons with it are unknown, and a
/// condition that ends unknown counts as false.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Unknown / missing.
    Null,
    /// A truth value.
    Bool(bool),
    /// A number.
    Number(f64),
    /// Text.
    String(Arc<str>),
    /// A calendar date.
    Date(Date),
    /// An instant.
    Timestamp(Timestamp),
    /// A length of time in seconds.
    Duration(i64),
    /// A list of values.
    List(Arc<[Value]>),
}

/// Everything a rule may name, for one kind of [`Subject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// Whom the rule is evaluated for.
    pub subject: Subject,
    /// Account traits and their types (built-in ones and declared custom ones).
    pub account_traits: BTreeMap<String, Type>,
    /// Contact traits and their types (only nameable in contact rules).
    pub contact_traits: BTreeMap<String, Type>,
    /// Segment ids, and whom each segment holds.
    pub segments: BTreeMap<String, Subject>,
    /// Milestone ids.
    pub milestones: BTreeSet<String>,
    /// Journey stage ids.
    pub stages: BTreeSet<String>,
    /// Health pillar ids.
    pub pillars: BTreeSet<String>,
    /// The program a rule belongs to, if any: only a program's rules (`if`, `wait until`,
    /// `goal`, `exit`) may ask about its steps (`opened('step')`) and its goal (`goal()`).
    pub program: Option<ProgramScope>,
}

/// What a rule of a program may ask about: the program's steps as seen from where the
/// rule is. Built by the caller (the workspace checker), which knows the step order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramScope {
    /// Ids of the `send` steps the rule may name, in program order.
    pub sends: Vec<String>,
    /// The step `previous` stands for (the latest send step before the rule), if any.
    pub previous: Option<String>,
    /// Other step ids of the program, each with why the rule cannot name it (`it is a
    /// `wait` step`), said after "step `x` cannot be used here: ".
    pub unavailable: BTreeMap<String, String>,
    /// Whether `goal()` may be used (not in the goal's own rule).
    pub goal: bool,
}

/// How a contact engaged with a program's send step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engagement {
    /// `delivered('step')`: the message reached the contact.
    Delivered,
    /// `opened('step')`: the contact opened (or, in-app, saw) it.
    Opened,
    /// `clicked('step')`: the contact clicked a link in it.
    Clicked,
    /// `answered('step')`: the contact answered it (a survey).
    Answered,
}

impl Engagement {
    /// The function's name in rules (`opened`).
    pub fn name(self) -> &'static str {
        match self {
            Engagement::Delivered => "delivered",
            Engagement::Opened => "opened",
            Engagement::Clicked => "clicked",
            Engagement::Answered => "answered",
        }
    }
}

/// How far back a behavioural function looks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// The last N days up to now (`30d`, `12w` = 84 days), in the workspace time zone.
    Days(u32),
    /// From the journey anchor (account start date by default) up to now.
    SinceAnchor,
    /// The whole history.
    AllTime,
}

/// Which events an aggregate counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventFilter {
    /// Every event.
    Any,
    /// Events with one of these names (sorted, deduplicated).
    Named(Vec<String>),
}

/// A behavioural aggregate over the event log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aggregate {
    /// `count(event, window)`: number of events.
    Count { events: EventFilter, window: Window },
    /// `sum(event, property, window)`: sum of a numeric property.
    Sum { events: EventFilter, property: String, window: Window },
    /// `distinct_users(event, window)`: distinct contacts who did it.
    DistinctUsers { events: EventFilter, window: Window },
    /// `distinct_events(list, window)`: how many of the named events occurred at all.
    DistinctEvents { events: EventFilter, window: Window },
    /// `active_users(window)`: distinct contacts with any event.
    ActiveUsers { window: Window },
    /// `active_days(window)`: days with any event.
    ActiveDays { window: Window },
    /// `first_seen(event)`: the first time it happened.
    FirstSeen { events: EventFilter },
    /// `last_seen(event)`: the last time it happened.
    LastSeen { events: EventFilter },
}

/// An aggregate and whose events it reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggregateSpec {
    /// The account's events, or the contact's own.
    pub scope: Subject,
    /// What is computed.
    pub aggregate: Aggregate,
}

/// The index of an aggregate in its [`AggregateTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AggId(pub u32);

/// The distinct aggregates a workspace's rules need, interned: two rules that count
/// the same thing share one aggregate.
#[derive(Debug, Clone, Default)]
pub struct AggregateTable {
    specs: Vec<AggregateSpec>,
    index: HashMap<AggregateSpec, AggId>,
}

impl AggregateTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `spec`, adding it if new.
    pub fn intern(&mut self, spec: AggregateSpec) -> AggId {
        if let Some(id) = self.index.get(&spec) {
            return *id;
        }
        let id = AggId(self.specs.len() as u32);
        self.specs.push(spec.clone());
        self.index.insert(spec, id);
        id
    }

    /// Every aggregate, indexed by [`AggId`].
    pub fn specs(&self) -> &[AggregateSpec] {
        &self.specs
    }

    /// The spec of one aggregate.
    pub fn get(&self, id: AggId) -> &AggregateSpec {
        &self.specs[id.0 as usize]
    }
}

/// Another definition a rule depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `segment('id')`.
    Segment(String),
    /// `milestone('id')`.
    Milestone(String),
    /// `stage()`.
    Stage,
    /// `health('pillar')`, or `health()` (overall) as `None`.
    Health(Option<String>),
    /// The journey anchor (`since_anchor`, `age()`).
    Anchor,
    /// An account trait.
    AccountTrait(String),
    /// A contact trait.
    ContactTrait(String),
    /// `opened('step')`, `clicked('step')`, …: engagement with a send step of the
    /// program the rule belongs to (`previous` resolved to its step id).
    Engagement {
        /// The send step's id.
        step: String,
        /// What is asked.
        kind: Engagement,
    },
    /// `goal()`: whether the enrollment's program goal is met.
    Goal,
}

/// What a rule's evaluation reads. The engine implements it over its state; tests
/// implement it over plain maps.
pub trait Env {
    /// The evaluation instant.
    fn now(&self) -> Timestamp;
    /// The workspace time zone, in which days are counted.
    fn time_zone(&self) -> &TimeZone;
    /// The calendar day of [`Env::now`] in [`Env::time_zone`]. An environment that
    /// evaluates many rules at one instant may return a value it computed once.
    fn today(&self) -> Date {
        self.time_zone().to_datetime(self.now()).date()
    }
    /// An account trait (`Null` when missing).
    fn account_trait(&self, name: &str) -> Value;
    /// A contact trait (`Null` when missing; only asked in contact rules).
    fn contact_trait(&self, name: &str) -> Value;
    /// The current value of an aggregate (`Null` when it has no data, e.g. `first_seen`
    /// of an event that never happened; counts are 0, not `Null`).
    fn aggregate(&self, id: AggId) -> Value;
    /// Whether the subject (or, for an account segment in a contact rule, the contact's
    /// account) is in a segment.
    fn segment(&self, id: &str) -> bool;
    /// Whether a milestone is achieved.
    fn milestone_achieved(&self, id: &str) -> bool;
    /// The current journey stage.
    fn stage(&self) -> Option<String>;
    /// The current journey stage as a rule value (`Null` outside the journey). An
    /// environment that keeps the stage ids as values may return one without building it.
    fn stage_value(&self) -> Value {
        self.stage().map_or(Value::Null, |s| Value::String(s.into()))
    }
    /// A pillar's health score, or the overall one for `None`.
    fn health(&self, pillar: Option<&str>) -> Option<f64>;
    /// The journey anchor instant.
    fn anchor(&self) -> Option<Timestamp>;
    /// Whether the enrollment the rule is evaluated for engaged with a send step of its
    /// program that way (only asked by program rules). Outside a program: false.
    fn engagement(&self, step: &str, kind: Engagement) -> bool {
        let _ = (step, kind);
        false
    }
    /// Whether the enrollment's program goal is met (only asked by program rules).
    fn goal_met(&self) -> bool {
        false
    }
}

/// A problem found while compiling a rule, with where it is and, if known, the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    /// Where in the rule's source.
    pub span: Span,
    /// What is wrong, for the person who wrote the rule.
    pub message: String,
    /// A suggestion (`did you mean `count`?`).
    pub help: Option<String>,
}

/// A compiled, type-checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    source: Arc<str>,
    ty: Type,
    aggregates: Vec<AggId>,
    references: Vec<Reference>,
    /// The resolved, type-checked tree; `Node::Aggregate(i)` reads `aggregates[i]`.
    root: Node,
    /// Whether the tree reads the evaluation instant (see [`Rule::reads_clock`]).
    reads_clock: bool,
    /// Whether [`Rule::next_clock_change`] can tell the day (see there).
    clock_predictable: bool,
    /// Whether the tree reads the instant within the day (see [`Rule::reads_instant`]).
    reads_instant: bool,
    /// The aggregates read other than through a day count (see
    /// [`Rule::reads_exactly`]), sorted.
    read_exactly: Vec<AggId>,
}

impl Rule {
    /// The source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The static type of the whole expression.
    pub fn ty(&self) -> &Type {
        &self.ty
    }

    /// The aggregates it reads (distinct, ids into the workspace's [`AggregateTable`]).
    pub fn aggregates(&self) -> &[AggId] {
        &self.aggregates
    }

    /// The other definitions and traits it reads (distinct, sorted).
    pub fn references(&self) -> &[Reference] {
        &self.references
    }

    /// Whether the rule reads the evaluation instant (`now()`, `age()`, `days_since`,
    /// `days_until`), so that its value can change with the passing of time alone. A rule
    /// that does not can change only when what it reads changes (a trait, an aggregate —
    /// whose sliding windows, `30d`, move with the day —, another definition).
    pub fn reads_clock(&self) -> bool {
        self.reads_clock
    }

    /// Whether the days passing alone change the value only on days
    /// [`Rule::next_clock_change`] can tell: every clock read is a day count
    /// (`days_since(x)`, `days_until(x)`, `x` not reading the clock) compared with values
    /// that do not read the clock, under `not`, `and` and `or`. True of a rule that does not
    /// read the clock.
    pub fn clock_predictable(&self) -> bool {
        self.clock_predictable
    }

    /// Whether the rule reads the instant within the day (`now()`, `age()`), so that its
    /// value can change between two moments of one day with nothing else changing. A
    /// rule that reads the clock only through day counts (`days_since`, `days_until`)
    /// does not.
    pub fn reads_instant(&self) -> bool {
        self.reads_instant
    }

    /// Whether the rule reads aggregate `id` other than as the whole argument of a day
    /// count: `days_since(last_seen())` reads only the day of the last event, so a later
    /// event on the same day cannot change the rule's value through it. False for an
    /// aggregate the rule does not read.
    pub fn reads_exactly(&self, id: AggId) -> bool {
        self.read_exactly.binary_search(&id).is_ok()
    }

    /// In how many days (at least 1) after `env.today()` the passing of days alone can
    /// next change the value, while nothing else the rule reads changes; `None` when it
    /// cannot (the rule does not read the clock, or its day counts are null). The value
    /// never changes earlier than the day named, and may stay the same on it. For a rule
    /// that is not [`Rule::clock_predictable`]: a day no later than the first on which
    /// one of its comparisons of values moving steadily with the days (`age() > 45d`,
    /// `days_since(a) - days_since(b) > 3`) can flip, and 1 (any day) when a clock read
    /// sits anywhere else.
    pub fn next_clock_change(&self, env: &dyn Env) -> Option<i64> {
        if !self.reads_clock {
            return None;
        }
        let cx = Context { env, aggregates: &self.aggregates };
        if !self.clock_predictable {
            return clock::next_change_affine(&cx, &self.root);
        }
        clock::next_change(&cx, &self.root)
    }

    /// How the value moves with the passing of days alone, while nothing else it reads
    /// changes: `(today, per_day)`, its value today (a number, or a duration in seconds;
    /// `None` when unknown, which the days do not change) and its change per day, when it
    /// is an affine function of the day (`days_since(last_seen())`: +1 a day;
    /// `days_since(start_date) - days_since(first_seen('x'))`: 0). `None` when it reads
    /// the clock any other way. A rule that does not read the clock moves by 0.
    pub fn day_trend(&self, env: &dyn Env) -> Option<(Option<f64>, f64)> {
        clock::trend(&Context { env, aggregates: &self.aggregates }, &self.root)
    }

    /// In how many days (at least 1) a value moving from `today` by `per_day` (see
    /// [`Rule::day_trend`]) reaches `bound`, named a day early so never late; `None` when it
    /// never does.
    pub fn days_until_reaching(today: f64, per_day: f64, bound: f64) -> Option<i64> {
        clock::reaches(today, per_day, bound)
    }

    /// Evaluates the rule.
    pub fn eval(&self, env: &dyn Env) -> Value {
        Context { env, aggregates: &self.aggregates }.eval(&self.root)
    }

    /// Evaluates a condition: unknown (`Null`) counts as false.
    pub fn eval_bool(&self, env: &dyn Env) -> bool {
        matches!(self.eval(env), Value::Bool(true))
    }
}

/// Compiles `source` against `schema`. `expected` is the type the rule must have
/// (`Some(Type::Bool)` for conditions, `Some(Type::Number)` for measures). Aggregates are
/// interned into `table`. Returns every error found, not just the first.
pub fn compile(
    source: &str,
    schema: &Schema,
    expected: Option<Type>,
    table: &mut AggregateTable,
) -> Result<Rule, Vec<RuleError>> {
    let expr = parser::parse(source).map_err(|e| vec![e])?;
    let checked = check::check(source, &expr, schema, expected.as_ref())?;
    // Interned only now, so that a rule that fails to compile leaves the table untouched.
    let aggregates: Vec<AggId> = checked.aggregates.into_iter().map(|spec| table.intern(spec)).collect();
    let mut exact_slots = Vec::new();
    eval::exact_aggregate_slots(&checked.root, &mut exact_slots);
    let mut read_exactly: Vec<AggId> =
        exact_slots.into_iter().filter_map(|slot| aggregates.get(slot).copied()).collect();
    read_exactly.sort_unstable();
    read_exactly.dedup();
    Ok(Rule {
        source: source.into(),
        ty: checked.ty,
        aggregates,
        references: checked.references.into_iter().collect(),
        reads_clock: eval::reads_clock(&checked.root),
        clock_predictable: clock::predictable(&checked.root),
        reads_instant: eval::reads_instant(&checked.root),
        read_exactly,
        root: checked.root,
    })
}
