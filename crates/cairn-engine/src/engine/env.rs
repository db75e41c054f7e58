//! What rules read: an account's (and a contact's) state as a rule environment, and
//! what only a program knows (engagement, its goal).

use super::*;

/// The view of one account (and, for contact rules, one contact) that rules read.
pub(super) struct AccountEnv<'a> {
    pub(super) shared: &'a Shared,
    pub(super) account: &'a AccountState,
    pub(super) contact: Option<&'a ContactState>,
    /// The contact's memberships when they are held apart from `contact` while it is
    /// evaluated.
    pub(super) contact_segments: Option<&'a Bits>,
    pub(super) now: Timestamp,
    pub(super) today: Day,
    /// The calendar date of `now` (`today` as a date).
    pub(super) today_date: Date,
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
pub(super) struct ProgramEnv<'a> {
    pub(super) inner: AccountEnv<'a>,
    pub(super) facts: &'a dyn ProgramFacts,
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
