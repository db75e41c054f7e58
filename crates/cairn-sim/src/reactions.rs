//! How people answer what programs send, and what CSMs do with their tasks.
//!
//! - **Email**: opened with probability 0.42 × role (admin 1, champion 1.15, user 0.85,
//!   economic buyer 0.7) × (0.7 + 0.3 × the person's activity) × the variant's lift (the
//!   [`Playbook`] names the subject lines that win, in truth); opened a few hours after the
//!   send. A click follows an open three times in ten.
//! - **In-app**: seen only by people who use the product: 0.25 + 0.6 × their activity,
//!   within two days; clicked 35% of the times seen.
//! - **Surveys** (the steps the playbook lists as carrying one): answered by 55% of those
//!   who opened an email, 40% of those who saw an in-app message; the score follows the
//!   account's usage, slumps and tickets.
//! - **Behaviour changes** when someone acts, as the playbook says per program (and
//!   step): the [`Change`] an open, a click or a completed task makes. A click on a
//!   program the playbook does not know brings a week of more use.
//! - **CSMs** complete three tasks in four (urgent ones 85%), within three days; what a
//!   completed task changes is the playbook's too.
//!
//! Every draw is keyed by the delivery (its enrollment and step) or the task, so the same
//! records get the same answers on every run.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::company::{Company, plus_days};
use crate::firmographics::Role;
use crate::rng::{Rng, text_key};

/// How a message reached someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Email.
    Email,
    /// The product's in-app inbox.
    InApp,
    /// Anything else (SMS, Slack, webhook): never answered in the simulation.
    Other,
}

/// A message a program sent.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// The recipient's address (how the company knows its people).
    pub email: &'a str,
    /// The program's id.
    pub program: &'a str,
    /// The send step's id.
    pub step: &'a str,
    /// Its channel.
    pub channel: Channel,
    /// The A/B arm (template id), if the step splits.
    pub variant: Option<&'a str>,
    /// When it was sent.
    pub at: Timestamp,
    /// A key unique to this send (its enrollment id): the draws are keyed by it.
    pub key: u64,
}

/// A survey a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Survey {
    /// Net Promoter Score, 0–10.
    Nps,
    /// Customer satisfaction, 1–5.
    Csat,
}

impl Survey {
    /// The survey's name as cairn's survey links record it (`nps`, `csat`).
    pub fn as_str(self) -> &'static str {
        match self {
            Survey::Nps => "nps",
            Survey::Csat => "csat",
        }
    }
}

/// What someone did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReactionKind {
    /// Opened (email) or seen (in-app).
    Opened,
    /// Followed a link.
    Clicked,
    /// Answered the survey with this score.
    Answered {
        /// Which survey.
        survey: Survey,
        /// 0 to 10 (NPS) or 1 to 5 (CSAT).
        score: u8,
    },
}

/// A reaction and when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaction {
    /// What.
    pub kind: ReactionKind,
    /// When.
    pub at: Timestamp,
}

/// A task a program created, as a CSM sees it.
#[derive(Debug, Clone)]
pub struct TaskSeen<'a> {
    /// The task's id (the draws are keyed by it).
    pub id: u64,
    /// The program that created it.
    pub program: &'a str,
    /// The account's CRM id, if the task is about an account.
    pub account: Option<&'a str>,
    /// Urgent tasks are done more often.
    pub urgent: bool,
    /// When it was created.
    pub created_at: Timestamp,
}

/// What engaging with a program changes in what people do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The account's admin invites teammates (about one every other day) for this many days.
    InvitesTeam {
        /// How long.
        days: i64,
    },
    /// The person creates reports on 60% of their active days (18% otherwise).
    CreatesReports {
        /// How long.
        days: i64,
    },
    /// The person shares dashboards on 40% of their active days.
    SharesDashboards {
        /// How long.
        days: i64,
    },
    /// The person sets up alerts on 50% of their active days (tries the launched feature).
    SetsAlerts {
        /// How long.
        days: i64,
    },
    /// The person uses the product 30% more often.
    UsesMore {
        /// How long.
        days: i64,
    },
    /// Goodwill towards the renewal: +0.5 log-odds of renewing, twice a term at most.
    Goodwill,
    /// The account's slump ends, it uses the product 30% more for 30 days, and the term
    /// counts as rescued (+0.7 log-odds of renewing).
    Rescue,
}

/// When a [`Change`] happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// The recipient opened (or saw) a message.
    Opened,
    /// The recipient followed a link.
    Clicked,
    /// A CSM completed the program's task.
    TaskDone,
}

/// One rule of the playbook: what `act` on `program`'s messages (of `step` only, when
/// given) changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProgramEffect {
    /// The program's id.
    pub program: &'static str,
    /// Its send or task step, or every step.
    pub step: Option<&'static str>,
    /// The act.
    pub on: Act,
    /// What it changes.
    pub change: Change,
}

/// How the simulated people respond to a workspace's programs: the effects of acting on
/// them, the steps that carry a survey, the subject lines that win. Keyed by program,
/// step and variant ids, so a program's effect is stated, not guessed from its name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Playbook {
    /// Effects, the first matching one applying.
    pub effects: Vec<ProgramEffect>,
    /// Send steps (program, step) whose message carries a survey.
    pub surveys: Vec<(&'static str, &'static str, Survey)>,
    /// Variants (template ids) opened more often, and by what factor.
    pub variant_open_lift: Vec<(&'static str, f64)>,
}

impl Playbook {
    /// The example workspace's programs (`examples/workspace/programs.yaml`).
    pub fn example_workspace() -> Playbook {
        use Act::*;
        use Change::*;
        let effect = |program, step, on, change| ProgramEffect { program, step, on, change };
        Playbook {
            effects: vec![
                effect("onboarding_welcome", None, Clicked, CreatesReports { days: 7 }),
                effect("invite_your_team", None, Clicked, InvitesTeam { days: 10 }),
                effect("invite_your_team", None, TaskDone, InvitesTeam { days: 10 }),
                effect("renewal_sequence", None, Opened, Goodwill),
                effect("renewal_sequence", None, TaskDone, Goodwill),
                effect("at_risk_rescue", None, TaskDone, Rescue),
                effect("renewal_risk_handoff", None, TaskDone, Rescue),
                effect("alerts_launch", None, Clicked, SetsAlerts { days: 5 }),
                effect("business_review", None, Clicked, SharesDashboards { days: 10 }),
            ],
            surveys: vec![
                ("nps_survey", "nps", Survey::Nps),
                ("nps_survey", "nps_reminder", Survey::Nps),
                ("alerts_launch", "thank_you", Survey::Csat),
            ],
            variant_open_lift: vec![("invite_team_b", VARIANT_B_OPEN_LIFT), ("business_review_b", VARIANT_B_OPEN_LIFT)],
        }
    }

    fn change(&self, program: &str, step: &str, on: Act) -> Option<Change> {
        self.effects
            .iter()
            .find(|e| e.program == program && e.on == on && e.step.is_none_or(|s| s == step))
            .map(|e| e.change)
    }

    fn survey(&self, program: &str, step: &str) -> Option<Survey> {
        self.surveys.iter().find(|(p, s, _)| *p == program && *s == step).map(|(.., survey)| *survey)
    }

    fn open_lift(&self, variant: Option<&str>) -> f64 {
        let Some(v) = variant else { return 1.0 };
        self.variant_open_lift.iter().find(|(name, _)| *name == v).map_or(1.0, |(_, lift)| *lift)
    }
}

fn hours(h: f64) -> SignedDuration {
    SignedDuration::from_secs((h * 3600.0) as i64)
}

impl Company {
    /// How the recipient answers a delivery, and what it changes in what they do next.
    /// Nothing for an unknown address or a churned account.
    pub fn respond(&mut self, delivery: &Delivery<'_>) -> Vec<Reaction> {
        let Some(&(i, j)) = self.by_email.get(delivery.email) else { return Vec::new() };
        let mut r = Rng::keyed(self.config.seed, &[5, delivery.key, text_key(delivery.step)]);
        let Some(a) = self.accounts.get(i) else { return Vec::new() };
        let Some(c) = a.firm.contacts.get(j) else { return Vec::new() };
        if a.churned_on.is_some() {
            return Vec::new();
        }
        let survey = self.playbook.survey(delivery.program, delivery.step);
        let activity = (a.latent.vigor * c.vigor).min(1.0);
        let mut out = Vec::new();
        let (p_open, open_after, p_click, p_answer) = match delivery.channel {
            Channel::Email => {
                let role = match c.role {
                    Role::Admin => 1.0,
                    Role::Champion => 1.15,
                    Role::User => 0.85,
                    Role::EconomicBuyer => 0.7,
                };
                let lift = self.playbook.open_lift(delivery.variant);
                (0.42 * role * (0.7 + 0.3 * activity) * lift, r.log_normal(3.0, 1.0).min(72.0), 0.3, 0.55)
            }
            Channel::InApp => {
                let p = if c.role == Role::EconomicBuyer { 0.05 } else { 0.25 + 0.6 * activity };
                (p, r.between(1.0, 48.0), 0.35, 0.4)
            }
            Channel::Other => return out,
        };
        if !r.chance(p_open) {
            return out;
        }
        let opened = delivery.at + hours(open_after);
        out.push(Reaction { kind: ReactionKind::Opened, at: opened });
        let day = opened.to_zoned(jiff::tz::TimeZone::UTC).date();
        if let Some(change) = self.playbook.change(delivery.program, delivery.step, Act::Opened) {
            self.apply(i, Some(j), day, change);
        }
        if let Some(survey) = survey {
            if r.chance(p_answer) {
                let a = &mut self.accounts[i];
                let slump = if a.in_slump(day) { 3.0 } else { 0.0 };
                let tickets = a.ticket_days.len().min(4) as f64 * 0.5;
                let mean = 3.5 + 7.0 * a.latent.vigor - slump - tickets;
                let nps = (mean + 1.5 * r.normal()).round().clamp(0.0, 10.0) as u8;
                let score = match survey {
                    Survey::Nps => {
                        a.nps_last = Some(nps);
                        self.nps_changed.push(i);
                        nps
                    }
                    // The same satisfaction on a five-point scale.
                    Survey::Csat => (1 + nps / 2).min(5),
                };
                let at = opened + hours(r.between(0.01, 0.2));
                out.push(Reaction { kind: ReactionKind::Answered { survey, score }, at });
            }
            return out;
        }
        if r.chance(p_click) {
            out.push(Reaction { kind: ReactionKind::Clicked, at: opened + hours(r.between(0.01, 0.5)) });
            let change = self
                .playbook
                .change(delivery.program, delivery.step, Act::Clicked)
                .unwrap_or(Change::UsesMore { days: 7 });
            self.apply(i, Some(j), day, change);
        }
        out
    }

    /// Whether and when a CSM completes a task (`None`: never).
    pub fn work_task(&self, task: &TaskSeen<'_>) -> Option<Timestamp> {
        let mut r = Rng::keyed(self.config.seed, &[6, task.id]);
        let p = if task.urgent { 0.85 } else { 0.75 };
        r.chance(p).then(|| task.created_at + hours(r.between(2.0, 72.0)))
    }

    /// A CSM completed a task about the account: what the call changes (the playbook's
    /// effect of the program, else two weeks of more use).
    pub fn task_done(&mut self, task: &TaskSeen<'_>, at: Timestamp) {
        let Some(i) = task.account.and_then(|x| self.account_index(x)) else { return };
        let day = at.to_zoned(jiff::tz::TimeZone::UTC).date();
        let change = self.playbook.change(task.program, "", Act::TaskDone).unwrap_or(Change::UsesMore { days: 14 });
        self.apply(i, None, day, change);
    }

    /// Applies a change to account `i` (and its person `j`; without one, the admin's
    /// changes go to the account and a person's to everyone in the product).
    fn apply(&mut self, i: usize, j: Option<usize>, day: jiff::civil::Date, change: Change) {
        let Some(a) = self.accounts.get_mut(i) else { return };
        let people: Vec<usize> = match j {
            Some(j) => vec![j],
            None => (0..a.firm.contacts.len()).collect(),
        };
        let until = |days: i64| Some(plus_days(day, days));
        match change {
            Change::InvitesTeam { days } => a.invite_boost_until = until(days),
            Change::CreatesReports { days } => set(&mut a.report_boost_until, &people, until(days)),
            Change::SharesDashboards { days } => set(&mut a.share_boost_until, &people, until(days)),
            Change::SetsAlerts { days } => set(&mut a.alert_boost_until, &people, until(days)),
            Change::UsesMore { days } => set(&mut a.contact_boost_until, &people, until(days)),
            Change::Goodwill => a.goodwill += 1,
            Change::Rescue => {
                a.rescued = true;
                a.slump_until = None;
                a.recovery_until = Some(plus_days(day, 30));
            }
        }
    }
}

/// Sets the people's slots to `value`.
fn set(slots: &mut [Option<jiff::civil::Date>], people: &[usize], value: Option<jiff::civil::Date>) {
    for p in people {
        if let Some(slot) = slots.get_mut(*p) {
            *slot = value;
        }
    }
}

/// How much more often a winning subject line is opened.
pub(crate) const VARIANT_B_OPEN_LIFT: f64 = 1.3;
