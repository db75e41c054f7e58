//! What the engine knows of each account and contact, and the transitions it emits.
//!
//! Segment memberships are kept as bits by segment index beside the id sets the API shows,
//! achieved and missed milestones as bits by their index among the journey's milestones
//! beside the map by id; names and ids are hashed with FNV (`fast.rs`). A shard keeps its
//! accounts and contacts in hash maps by id (an event looks its account up once per
//! definition: in a B-tree of hundreds of thousands each look walked several cache lines);
//! whatever goes over them in order sorts the ids first.

use std::collections::{BTreeMap, BTreeSet};

use cairn_rules::Value;
use cairn_workspace::Band;
use jiff::Timestamp;
use serde::Serialize;

use crate::aggregates::AggregateState;
use crate::days::Day;
use crate::health::HealthScore;

/// Whom a transition is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum SubjectRef {
    /// An account, by its store id.
    Account(u64),
    /// A contact, by its store id.
    Contact(u64),
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransitionKind {
    /// The subject entered a segment.
    SegmentEntered {
        /// The segment's id.
        segment: String,
    },
    /// The subject left a segment.
    SegmentExited {
        /// The segment's id.
        segment: String,
    },
    /// The account moved to another journey stage.
    StageChanged {
        /// The stage it left (none on entering the journey).
        from: Option<String>,
        /// The stage it entered.
        to: String,
    },
    /// A milestone was achieved in time.
    MilestoneAchieved {
        /// The milestone's id.
        milestone: String,
    },
    /// A milestone's deadline passed without it.
    MilestoneMissed {
        /// The milestone's id.
        milestone: String,
    },
    /// The overall health band changed.
    HealthBandChanged {
        /// The band before (none on the first score).
        from: Option<Band>,
        /// The band now.
        to: Band,
        /// The overall score that put it there.
        score: f64,
    },
}

impl TransitionKind {
    /// The event name a transition is logged under (`segment_entered`, …).
    pub fn event_name(&self) -> &'static str {
        match self {
            TransitionKind::SegmentEntered { .. } => "segment_entered",
            TransitionKind::SegmentExited { .. } => "segment_exited",
            TransitionKind::StageChanged { .. } => "stage_changed",
            TransitionKind::MilestoneAchieved { .. } => "milestone_achieved",
            TransitionKind::MilestoneMissed { .. } => "milestone_missed",
            TransitionKind::HealthBandChanged { .. } => "health_band_changed",
        }
    }
}

/// A change of derived state, stamped with the moment it really happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// When it happened: the event that caused it, the start of the day a window slid
    /// on, or a milestone's deadline.
    pub at: Timestamp,
    /// Whom it is about.
    pub subject: SubjectRef,
    /// What changed.
    #[serde(flatten)]
    pub kind: TransitionKind,
    /// Produced while replaying history after a definition change: programs must not
    /// act on it.
    pub backfill: bool,
}

/// A milestone's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "at", rename_all = "lowercase")]
pub enum MilestoneStatus {
    /// Neither achieved nor past its deadline.
    Pending,
    /// Achieved at this instant.
    Achieved(Timestamp),
    /// Its deadline (this instant) passed first.
    Missed(Timestamp),
}

/// A CSM's override of an account's health: shown beside the computed score, never
/// overwritten by an evaluation, void after `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthOverride {
    /// The score the CSM set (0–100).
    pub score: f64,
    /// Why.
    pub reason: String,
    /// Who set it.
    pub by: String,
    /// When it was set.
    pub set_at: Timestamp,
    /// When it stops applying.
    pub expires_at: Timestamp,
}

/// One day's health, kept for trends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSnapshot {
    /// The overall score at the end of the day.
    pub score: Option<f64>,
    /// Per pillar.
    pub pillars: BTreeMap<String, Option<f64>>,
}

/// An account's end-of-day health from `day` on, as the engine reports it to whoever
/// keeps the history (the runtime stores it): one from each day the health changed, valid
/// until the next (see [`crate::Engine::report_health_runs`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthRun {
    /// The account.
    pub account: u64,
    /// The day (in the workspace time zone) from whose end the health holds.
    pub day: Day,
    /// The model that scored it.
    pub model: String,
    /// The overall score (`None`: no measure has data).
    pub score: Option<f64>,
    /// Its band.
    pub band: Option<Band>,
    /// Each pillar's score, in model order.
    pub pillars: Vec<(String, Option<f64>)>,
    /// Each measure's 0–100 score, in model order: (pillar, measure, score).
    pub measures: Vec<(String, String, Option<f64>)>,
}

/// Everything the engine keeps of one account.
#[derive(Debug, Clone, Default)]
pub struct AccountState {
    /// Traits (built-in and custom), as rule values.
    pub traits: BTreeMap<String, Value>,
    /// The journey anchor's day.
    pub anchor: Option<Day>,
    /// Behavioural aggregates over the account's events.
    pub aggregates: AggregateState,
    /// The account segments it is in.
    pub segments: BTreeSet<String>,
    /// The same, by segment index (what the engine checks).
    pub(crate) member_of: Bits,
    /// Milestone statuses (absent: pending).
    pub milestones: BTreeMap<String, MilestoneStatus>,
    /// The milestones achieved or missed, by their index among all the journey's
    /// milestones (stage by stage): what an evaluation checks first.
    pub(crate) milestones_done: Bits,
    /// The milestone deadlines scheduled for it (in its shard's deadline queue).
    pub(crate) deadlines: Vec<Timestamp>,
    /// The current journey stage (index into the journey's stages).
    pub stage: Option<usize>,
    /// When it entered that stage.
    pub stage_since: Option<Timestamp>,
    /// The latest health evaluation.
    pub health: Option<HealthScore>,
    /// A CSM's override, if any.
    pub health_override: Option<HealthOverride>,
    /// End-of-day health as runs: an entry holds from the end of its day until the day
    /// before the next entry (the health was scored again then), the last one until
    /// yesterday. Recorded when the health is scored, so a day on which nothing changes
    /// costs nothing; read through `Engine::health_trend`.
    pub(crate) snapshots: BTreeMap<Day, HealthSnapshot>,
    /// Its contacts.
    pub contacts: BTreeSet<u64>,
    /// Whether every account node has been evaluated for it: set by its first
    /// [`crate::Engine::upsert_account`] (or its first event). An account first met
    /// through a contact linked to it, or an override, is only a placeholder until then,
    /// whatever a day tick looked at meanwhile.
    pub whole: bool,
    /// The last instant it was evaluated at outside the day ticks that found nothing of
    /// it to change (its shard's day start stands for those).
    pub evaluated_at: Option<Timestamp>,
    /// The day its shard's clock was on when it was created.
    pub(crate) since: Day,
    /// Whether it was evaluated (or created) since the last day tick that looked at it:
    /// the next day tick looks at it and works out its `wake` again.
    pub(crate) touched: bool,
    /// The next day on which the days alone can change it, as of its last look (see
    /// `Shard::account_wake` in the engine); none: never.
    pub(crate) wake: Option<Day>,
}

/// Everything the engine keeps of one contact.
#[derive(Debug, Clone, Default)]
pub struct ContactState {
    /// Its account, if known.
    pub account: Option<u64>,
    /// Traits.
    pub traits: BTreeMap<String, Value>,
    /// Behavioural aggregates over the contact's own events.
    pub aggregates: AggregateState,
    /// The contact segments it is in.
    pub segments: BTreeSet<String>,
    /// The same, by segment index (what the engine checks).
    pub(crate) member_of: Bits,
    /// Whether its traits were set (by [`crate::Engine::upsert_contact`]) and evaluated.
    pub evaluated: bool,
    /// The next day on which the days alone can change its segments, as of its last
    /// evaluation (see `DayPlan::by_wake` in the engine), if any.
    pub(crate) wake: Option<crate::days::Day>,
    /// The day it is filed under for the day ticks to look at it (never later than
    /// `wake`: a tick that finds `wake` later files it again there).
    pub(crate) filed: Option<crate::days::Day>,
}

/// A set of small indices (segments, by their index in the workspace), a bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    /// Whether `i` is in the set.
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Puts `i` in the set or takes it out.
    pub(crate) fn set(&mut self, i: usize, on: bool) {
        let word = i / 64;
        if self.0.len() <= word {
            if !on {
                return;
            }
            self.0.resize(word + 1, 0);
        }
        if on {
            self.0[word] |= 1 << (i % 64);
        } else {
            self.0[word] &= !(1 << (i % 64));
        }
    }

    /// The indices in the set, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0
            .iter()
            .enumerate()
            .flat_map(|(w, &bits)| (0..64).filter(move |b| bits & (1 << b) != 0).map(move |b| w * 64 + b))
    }
}

#[cfg(test)]
mod tests {
    use super::Bits;

    #[test]
    fn bits_hold_what_was_set_and_nothing_else() {
        let mut b = Bits::default();
        assert!(!b.contains(0) && !b.contains(200));
        b.set(3, true);
        b.set(130, true);
        b.set(64, false);
        assert!(b.contains(3) && b.contains(130));
        assert!(!b.contains(2) && !b.contains(64) && !b.contains(129) && !b.contains(1000));
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![3, 130]);
        b.set(3, false);
        assert!(!b.contains(3) && b.contains(130));
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![130]);
    }
}
