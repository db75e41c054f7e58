//! The data-driven insights messages quote (`insights:`): named account metrics, an
//! account's benchmark against its peers, and a leaderboard of an account's own people.
//! The definitions only; the program runner evaluates them on the engine's state when it
//! renders a message (`metrics.<id>`, `insights.benchmark.<id>`,
//! `insights.leaderboard.<id>` in templates).

use cairn_rules::Rule;

use crate::diagnostic::Location;
use crate::model::Id;

/// `insights:` — every rule compiled as a number, the benchmarks' peers checked.
#[derive(Debug, Clone, Default)]
pub struct Insights {
    /// `metrics:`, in file order.
    pub metrics: Vec<Metric>,
    /// `benchmarks:`, in file order.
    pub benchmarks: Vec<BenchmarkDef>,
    /// `leaderboards:`, in file order.
    pub leaderboards: Vec<LeaderboardDef>,
}

impl Insights {
    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty() && self.benchmarks.is_empty() && self.leaderboards.is_empty()
    }
}

/// A named value of the account, as templates read it (`metrics.<id>`).
#[derive(Debug, Clone)]
pub struct Metric {
    /// Its id.
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// The value: a number rule over the account (`count('report_created', 30d)`).
    pub value: Rule,
    /// Where it is defined (its `id`).
    pub location: Location,
}

/// Whom an account is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peers {
    /// Every other account.
    All,
    /// The other members of an account segment (an account outside it has no peers).
    Segment(Id),
    /// The other accounts with the same value of an account trait (`plan`, `industry`);
    /// an account without a value has no peers.
    Trait(String),
    /// The other accounts in the same size band by seats (1–10, 11–50, 51–200,
    /// 201–1,000, more; `cairn_content::size_band`).
    SizeBand,
}

/// Where an account's value of a metric stands among its peers
/// (`insights.benchmark.<id>`).
#[derive(Debug, Clone)]
pub struct BenchmarkDef {
    /// Its id.
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// The value compared: a number rule over the account.
    pub value: Rule,
    /// Whom it is compared with.
    pub peers: Peers,
    /// The fewest peers (the account not counted) worth a comparison: with fewer, the
    /// benchmark is withheld (absent), so a message never ranks an account among two
    /// others it could identify.
    pub min_peers: usize,
    /// Where it is defined (its `id`).
    pub location: Location,
}

/// The account's own people ranked by a value (`insights.leaderboard.<id>`): only its
/// contacts, only those whose value, rounded to a whole number, is 1 or more.
#[derive(Debug, Clone)]
pub struct LeaderboardDef {
    /// Its id.
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// The value ranked: a number rule over the contact (`active_days(30d)`), shown as a
    /// whole number (rounded).
    pub value: Rule,
    /// How many people the top list (and the bottom list) holds.
    pub top: usize,
    /// Where it is defined (its `id`).
    pub location: Location,
}
