//! How people answer what programs send, and what CSMs do with their tasks.
//!
//! - **Email**: opened with probability 0.42 × role (admin 1, champion 1.15, user 0.85,
//!   economic buyer 0.7) × (0.7 + 0.3 × the person's activity) × 1.3 for a `_b` variant
//!   (the personal subject line wins, in truth); opened a few hours after the send. A
//!   click follows an open three times in ten.
//! - **In-app**: seen only by people who use the product: 0.25 + 0.6 × their activity,
//!   within two days; clicked 35% of the times seen.
//! - **Surveys** (a program or step named `nps…`): answered by 55% of those who opened an
//!   email, 40% of those who saw an in-app message; the score follows the account's
//!   usage, slumps and tickets.
//! - **Behaviour changes** when someone acts: a click on the invite program's messages
//!   makes the admin invite teammates for ten days; on the welcome, reports for a week;
//!   opening a renewal message adds goodwill; any other click, a week of more use.
//! - **CSMs** complete three tasks in four (urgent ones 85%), within three days; a
//!   completed at-risk call ends the account's slump and counts as a rescue; a renewal
//!   call adds goodwill; an invite call, ten days of invites.
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
        /// 0 to 10.
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
        let survey = delivery.program.contains("nps") || delivery.step.contains("nps");
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
                let variant =
                    if delivery.variant.is_some_and(|v| v.ends_with("_b")) { VARIANT_B_OPEN_LIFT } else { 1.0 };
                (0.42 * role * (0.7 + 0.3 * activity) * variant, r.log_normal(3.0, 1.0).min(72.0), 0.3, 0.55)
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
        let a = &mut self.accounts[i];
        if delivery.program.contains("renewal") {
            a.goodwill += 1;
        }
        if survey {
            if r.chance(p_answer) {
                let slump = if a.in_slump(day) { 3.0 } else { 0.0 };
                let tickets = a.ticket_days.len().min(4) as f64 * 0.5;
                let mean = 3.5 + 7.0 * a.latent.vigor - slump - tickets;
                let score = (mean + 1.5 * r.normal()).round().clamp(0.0, 10.0) as u8;
                a.nps_last = Some(score);
                self.nps_changed.push(i);
                out.push(Reaction { kind: ReactionKind::Answered { score }, at: opened + hours(r.between(0.01, 0.2)) });
            }
            return out;
        }
        if r.chance(p_click) {
            out.push(Reaction { kind: ReactionKind::Clicked, at: opened + hours(r.between(0.01, 0.5)) });
            if delivery.program.contains("invite") {
                a.invite_boost_until = Some(plus_days(day, 10));
            } else if delivery.program.contains("welcome") || delivery.program.contains("onboarding") {
                a.report_boost_until[j] = Some(plus_days(day, 7));
            } else {
                a.contact_boost_until[j] = Some(plus_days(day, 7));
            }
        }
        out
    }

    /// Whether and when a CSM completes a task (`None`: never).
    pub fn work_task(&self, task: &TaskSeen<'_>) -> Option<Timestamp> {
        let mut r = Rng::keyed(self.config.seed, &[6, task.id]);
        let p = if task.urgent { 0.85 } else { 0.75 };
        r.chance(p).then(|| task.created_at + hours(r.between(2.0, 72.0)))
    }

    /// A CSM completed a task about the account: what the call changes.
    pub fn task_done(&mut self, task: &TaskSeen<'_>, at: Timestamp) {
        let Some(i) = task.account.and_then(|x| self.account_index(x)) else { return };
        let day = at.to_zoned(jiff::tz::TimeZone::UTC).date();
        let a = &mut self.accounts[i];
        if task.program.contains("risk") || task.program.contains("rescue") {
            a.rescued = true;
            a.slump_until = None;
            a.recovery_until = Some(plus_days(day, 30));
        } else if task.program.contains("renewal") {
            a.goodwill += 1;
        } else if task.program.contains("invite") {
            a.invite_boost_until = Some(plus_days(day, 10));
        } else {
            a.recovery_until = Some(plus_days(day, 14));
        }
    }
}

/// How much more often a `_b` subject line is opened.
pub(crate) const VARIANT_B_OPEN_LIFT: f64 = 1.3;
