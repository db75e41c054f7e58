//! The hidden truth: what really drives renewal in the simulated company, and what
//! happened to each account at each term end. cairn never reads this; tests and the demo's
//! summary compare what cairn concludes from the records against it.
//!
//! At a term's end an account renews with probability σ(logit), where
//!
//! ```text
//! logit = 1.7 + 2.0·invited_team_early + 1.8·shared_dashboard_early − 2.5·heavy_support
//!       + 2.0·(activity − 0.35) + 0.5·min(goodwill, 2) + 0.7·rescued − 0.6·in_a_slump
//! ```
//!
//! - `invited_team_early`: five teammates invited within 14 days of the start (the
//!   example journey's `invited_team` milestone) — **raises** renewal;
//! - `shared_dashboard_early`: a dashboard shared within 30 days (`first_value`) —
//!   **raises** it;
//! - `heavy_support`: four or more support tickets in the 90 days before the term's end —
//!   **lowers** it. Tickets do not follow usage: three accounts in ten have a product-fit
//!   problem and open a ticket on 6% to 12% of the working days from their first weeks,
//!   the others on 0.1% to 0.6% (`company::Latent::friction`), so heavy support is a
//!   trait of the account, visible early, and not a by-product of activity;
//! - `activity`: the share of the activated people active on a working day over the last
//!   60 days;
//! - `goodwill`: renewal messages opened and renewal calls made; `rescued`: a CSM completed
//!   the at-risk task this term; `in_a_slump`: usage collapsed and never recovered.
//!
//! **Decoys**: connecting an integration and attending a webinar happen more often at
//! larger companies (rates by size band) and have no effect at all: a behaviour that
//! merely correlates with company size. Size itself does not enter the logit, and the
//! early facts do not follow the number of people (early sharing is the admin's and the
//! champion's).
//!
//! A renewed account expands (seats × 1.2–1.7; 65 times in 100) when its people are
//! active on at least 30% of the working days, contracts (seats × 0.75–0.9; three times
//! in ten) when fewer than 40% of its people use the product or they are barely active,
//! and otherwise renews flat. Over a year of 300 accounts (seeds 1 to 5, the company
//! alone, without programs) this gives logo churn of 13% to 18%, GRR of 70% to 83% and
//! NRR of 84% to 97%: about 30 large customers carry half the ARR, so a handful of
//! their churns moves GRR by several points from one seed to the next.

use jiff::civil::Date;
use serde::Serialize;

use crate::firmographics::Size;

/// The weights of the renewal logit (see the module doc).
pub(crate) mod weight {
    pub const BASE: f64 = 1.7;
    pub const INVITED_TEAM_EARLY: f64 = 2.0;
    pub const SHARED_DASHBOARD_EARLY: f64 = 1.8;
    pub const HEAVY_SUPPORT: f64 = -2.5;
    pub const ACTIVITY: f64 = 2.0;
    pub const ACTIVITY_PIVOT: f64 = 0.35;
    pub const GOODWILL: f64 = 0.5;
    pub const RESCUED: f64 = 0.7;
    pub const SLUMP: f64 = -0.6;
}

/// How a behaviour bears on renewal, in truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Doing it raises the chance to renew and expand.
    Raises,
    /// Doing it lowers the chance.
    Lowers,
    /// No effect; it only correlates with company size.
    Decoy,
}

/// One behaviour of the truth.
#[derive(Debug, Clone, Serialize)]
pub struct BehaviourTruth {
    /// A short name.
    pub behaviour: &'static str,
    /// The product event it is made of.
    pub event: &'static str,
    /// Its effect.
    pub effect: Effect,
    /// Its weight in the renewal logit (0 for decoys).
    pub log_odds: f64,
}

/// The behaviours of the truth, positive, negative and decoys.
pub fn behaviours() -> Vec<BehaviourTruth> {
    vec![
        BehaviourTruth {
            behaviour: "invited_team_early",
            event: "user_invited",
            effect: Effect::Raises,
            log_odds: weight::INVITED_TEAM_EARLY,
        },
        BehaviourTruth {
            behaviour: "shared_dashboard_early",
            event: "dashboard_shared",
            effect: Effect::Raises,
            log_odds: weight::SHARED_DASHBOARD_EARLY,
        },
        BehaviourTruth {
            behaviour: "heavy_support",
            event: "ticket_opened",
            effect: Effect::Lowers,
            log_odds: weight::HEAVY_SUPPORT,
        },
        BehaviourTruth {
            behaviour: "integration_connected",
            event: "integration_connected",
            effect: Effect::Decoy,
            log_odds: 0.0,
        },
        BehaviourTruth {
            behaviour: "webinar_attended",
            event: "webinar_attended",
            effect: Effect::Decoy,
            log_odds: 0.0,
        },
    ]
}

/// What happened at a term's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Renewed with the same seats.
    Renewed,
    /// Renewed with more seats.
    Expanded,
    /// Renewed with fewer seats.
    Contracted,
    /// Did not renew.
    Churned,
}

impl Outcome {
    /// Renewed in any form.
    pub fn renewed(self) -> bool {
        self != Outcome::Churned
    }
}

/// One account's term end, with the facts that decided it.
#[derive(Debug, Clone, Serialize)]
pub struct RenewalOutcome {
    /// The account's CRM id.
    pub account: String,
    /// Its size band.
    pub size: Size,
    /// The last day of the term that ended.
    pub term_end: Date,
    /// What happened.
    pub outcome: Outcome,
    /// The probability it had to renew.
    pub p_renew: f64,
    /// ARR in dollars before and after (0 after a churn).
    pub arr_before: u64,
    /// ARR after.
    pub arr_after: u64,
    /// The facts of the logit.
    pub invited_team_early: bool,
    /// Shared a dashboard within 30 days of the start.
    pub shared_dashboard_early: bool,
    /// Four or more tickets in the last 90 days.
    pub heavy_support: bool,
    /// Activity share over the last 60 days.
    pub activity: f64,
    /// Integrations connected this term (a decoy).
    pub integrations: u32,
    /// Webinars attended this term (a decoy).
    pub webinars: u32,
}

/// The whole truth.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// What drives renewal.
    pub behaviours: Vec<BehaviourTruth>,
    /// Every term end so far, in order.
    pub renewals: Vec<RenewalOutcome>,
    /// What engaging with each program (or a CSM completing its task) changes.
    pub program_effects: Vec<crate::ProgramEffect>,
    /// The subject lines (template ids) opened more often than their siblings, and by how much.
    pub winning_variants: Vec<(&'static str, f64)>,
}

/// The renewal probability of the logit's facts.
#[allow(clippy::too_many_arguments, reason = "the logit's terms, named at the one call")]
pub(crate) fn p_renew(
    invited: bool,
    shared: bool,
    heavy: bool,
    activity: f64,
    goodwill: u32,
    rescued: bool,
    slump: bool,
) -> f64 {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    let logit = weight::BASE
        + weight::INVITED_TEAM_EARLY * b(invited)
        + weight::SHARED_DASHBOARD_EARLY * b(shared)
        + weight::HEAVY_SUPPORT * b(heavy)
        + weight::ACTIVITY * (activity - weight::ACTIVITY_PIVOT)
        + weight::GOODWILL * f64::from(goodwill.min(2))
        + weight::RESCUED * b(rescued)
        + weight::SLUMP * b(slump);
    1.0 / (1.0 + (-logit).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logit_moves_the_way_the_truth_says() {
        // All facts off at the pivot activity: σ(1.7) = 1 / (1 + e^-1.7) = 0.845535.
        assert!((p_renew(false, false, false, 0.35, 0, false, false) - 0.845_535).abs() < 1e-6);
        // Both positives: σ(1.7 + 2.0 + 1.8) = σ(5.5) = 0.995930.
        assert!((p_renew(true, true, false, 0.35, 0, false, false) - 0.995_930).abs() < 1e-6);
        // Heavy support alone: σ(1.7 − 2.5) = σ(−0.8) = 0.310026.
        assert!((p_renew(false, false, true, 0.35, 0, false, false) - 0.310_026).abs() < 1e-6);
        // Goodwill counts at most twice.
        assert_eq!(
            p_renew(false, false, false, 0.3, 2, false, false),
            p_renew(false, false, false, 0.3, 9, false, false)
        );
    }
}
