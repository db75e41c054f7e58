//! The company day by day: customers start, their people use the product (more or less,
//! by latent traits and slumps), invite teammates, share dashboards, open tickets, attend
//! webinars; terms end and accounts renew, expand, contract or churn by the truth's logit.
//! What programs do to people ([`crate::reactions`]) changes the same state.

use std::collections::{HashMap, VecDeque};

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::firmographics::{self, Firmographics, Plan, Role, Size};
use crate::reactions::Playbook;
use crate::rng::Rng;
use crate::truth::{self, Outcome, RenewalOutcome};
use crate::{Config, CrmUpdate, Day, Line, ProductEvent};

/// What the company knows of an account and cairn does not.
#[derive(Debug, Clone)]
pub(crate) struct Latent {
    /// How much the account uses the product (0.25 to 0.85).
    pub vigor: f64,
    /// Its admin invites the team in the first weeks.
    pub team_oriented: bool,
    /// Its people share dashboards.
    pub sharer: bool,
    /// Support tickets a working day, whatever the usage: 0.06 to 0.12 when the product
    /// does not fit how the account works (a [`FIT_PROBLEM_SHARE`] of the accounts: a
    /// missing integration, a data model it fights), 0.001 to 0.006 otherwise. The
    /// tickets of a misfit come from the first weeks on, and through the truth's
    /// `heavy_support` it renews less.
    pub friction: f64,
}

/// An account as it stands.
#[derive(Debug, Clone)]
pub(crate) struct AccountState {
    pub firm: Firmographics,
    pub latent: Latent,
    pub plan: Plan,
    pub seats: u32,
    /// The current term: number (1 = first), first and last day.
    pub term: u32,
    pub term_start: Date,
    pub term_end: Date,
    pub introduced: bool,
    pub churned_on: Option<Date>,
    /// From when each contact uses the product (none: not invited yet).
    pub active_from: Vec<Option<Date>>,
    /// Per contact: a boost of activity (a message acted on) until this day.
    pub contact_boost_until: Vec<Option<Date>>,
    /// Per contact: more reports (the welcome's tips) until this day.
    pub report_boost_until: Vec<Option<Date>>,
    /// Per contact: dashboards shared (a business review's call to action) until this day.
    pub share_boost_until: Vec<Option<Date>>,
    /// Per contact: alerts set up (a launch's call to action) until this day.
    pub alert_boost_until: Vec<Option<Date>>,
    pub invites_in_first_14_days: u32,
    pub invited_team_early: Option<bool>,
    pub shared_dashboard_early: Option<bool>,
    pub shared_any: bool,
    pub ticket_days: VecDeque<Date>,
    /// (day, people active) over the last 60 days.
    pub active_counts: VecDeque<(Date, u32)>,
    pub slump_until: Option<Date>,
    pub invite_boost_until: Option<Date>,
    pub recovery_until: Option<Date>,
    pub goodwill: u32,
    pub rescued: bool,
    pub integrations: u32,
    pub webinars: u32,
    pub nps_last: Option<u8>,
}

impl AccountState {
    pub fn arr(&self) -> u64 {
        u64::from(self.seats) * self.plan.seat_price()
    }

    pub fn in_slump(&self, day: Date) -> bool {
        self.slump_until.is_some_and(|u| day <= u)
    }

    /// People active on a working day over the last 60 days, as a share of the activated.
    pub fn activity(&self) -> f64 {
        let activated = self.active_from.iter().filter(|a| a.is_some()).count() as f64;
        let people_days: u32 = self.active_counts.iter().map(|(_, n)| n).sum();
        let days = self.active_counts.len() as f64 * 5.0 / 7.0;
        if activated == 0.0 || days == 0.0 { 0.0 } else { (f64::from(people_days) / (activated * days)).min(1.0) }
    }
}

/// Days since 1970-01-01, the key of a day's random stream.
pub(crate) fn day_number(d: Date) -> u64 {
    d.since(Date::constant(1970, 1, 1)).map(|s| s.get_days()).unwrap_or(0).max(0) as u64
}

pub(crate) fn plus_days(d: Date, n: i64) -> Date {
    d.checked_add(n.days()).unwrap_or(d)
}

/// One year after `d`, less a day: the last day of a yearly term starting on `d`.
fn term_end_from(start: Date) -> Date {
    plus_days(start.checked_add(1.year()).unwrap_or(start), -1)
}

/// The share of the customers who started during the history (the others start during
/// the simulated days).
pub(crate) const HISTORY_CUSTOMERS: f64 = 0.8;

/// The share of the accounts the product does not fit (see [`Latent::friction`]).
pub(crate) const FIT_PROBLEM_SHARE: f64 = 0.3;

/// The simulated company.
#[derive(Debug, Clone)]
pub struct Company {
    pub(crate) config: Config,
    pub(crate) accounts: Vec<AccountState>,
    zones: HashMap<&'static str, TimeZone>,
    pub(crate) by_email: HashMap<String, (usize, usize)>,
    pub(crate) renewals: Vec<RenewalOutcome>,
    /// Accounts whose latest NPS answer changed: in the next day's CRM update.
    pub(crate) nps_changed: Vec<usize>,
    /// How people respond to the programs.
    pub(crate) playbook: Playbook,
}

impl Company {
    /// The company of `config`: its customers, their contracts, their people. Nothing has
    /// happened yet; [`Company::day`] makes each day happen.
    pub fn new(config: Config) -> Company {
        let mut accounts = Vec::with_capacity(config.accounts);
        for i in 0..config.accounts {
            let mut r = Rng::keyed(config.seed, &[2, i as u64]);
            // Eight in ten became customers during the history, the rest start during the
            // simulated days: every customer's life, from its first day, is in the log
            // (what the journey's milestones and the behaviour hypotheses read).
            let start = if config.history_days > 0 && r.chance(HISTORY_CUSTOMERS) {
                plus_days(config.first_day, -i64::from(r.int(1, config.history_days)))
            } else {
                plus_days(config.first_day, i64::from(r.int(0, config.days.saturating_sub(1))))
            };
            let firm = firmographics::account(config.seed, i, start);
            let fit_problem = r.chance(FIT_PROBLEM_SHARE);
            let latent = Latent {
                vigor: 0.25 + 0.6 * r.unit().powf(0.8),
                team_oriented: r.chance(0.45),
                sharer: r.chance(0.4),
                friction: if fit_problem { r.between(0.06, 0.12) } else { r.between(0.001, 0.006) },
            };
            let people = firm.contacts.len();
            // The first three people use the product from the start; the others once
            // someone invites them.
            let active_from: Vec<Option<Date>> = (0..people).map(|j| if j <= 2 { Some(start) } else { None }).collect();
            accounts.push(AccountState {
                plan: firm.plan,
                seats: firm.seats,
                firm,
                latent,
                term: 1,
                term_start: start,
                term_end: term_end_from(start),
                introduced: false,
                churned_on: None,
                contact_boost_until: vec![None; people],
                report_boost_until: vec![None; people],
                share_boost_until: vec![None; people],
                alert_boost_until: vec![None; people],
                active_from,
                invites_in_first_14_days: 0,
                invited_team_early: None,
                shared_dashboard_early: None,
                shared_any: false,
                ticket_days: VecDeque::new(),
                active_counts: VecDeque::new(),
                slump_until: None,
                invite_boost_until: None,
                recovery_until: None,
                goodwill: 0,
                rescued: false,
                integrations: 0,
                webinars: 0,
                nps_last: None,
            });
        }
        let mut by_email = HashMap::new();
        for (i, a) in accounts.iter().enumerate() {
            for (j, c) in a.firm.contacts.iter().enumerate() {
                by_email.insert(c.email.clone(), (i, j));
            }
        }
        let zones =
            firmographics::time_zones().map(|name| (name, TimeZone::get(name).unwrap_or(TimeZone::UTC))).collect();
        Company {
            config,
            accounts,
            zones,
            by_email,
            renewals: Vec::new(),
            nps_changed: Vec::new(),
            playbook: Playbook::example_workspace(),
        }
    }

    /// The same company, its people responding to programs as `playbook` says (the
    /// default is [`Playbook::example_workspace`]).
    pub fn with_playbook(mut self, playbook: Playbook) -> Company {
        self.playbook = playbook;
        self
    }

    /// How its people respond to programs.
    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }

    /// The configuration it was made from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every account as generated (its firmographics at the start).
    pub fn accounts(&self) -> impl Iterator<Item = &Firmographics> {
        self.accounts.iter().map(|a| &a.firm)
    }

    /// The account with this CRM id, by index.
    pub fn account_index(&self, external_id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| a.firm.external_id == external_id)
    }

    /// Makes day `d` happen: customers starting that day arrive in the CRM, terms ending
    /// the day before are renewed or lost, people use the product. Days must be given in
    /// order, each once.
    pub fn day(&mut self, d: Date) -> Day {
        let mut out = Day::default();
        out.crm.accounts.append(&mut self.nps_changed);
        let seed = self.config.seed;
        let history_start = self.config.history_start();
        for i in 0..self.accounts.len() {
            let a = &mut self.accounts[i];
            if !a.introduced {
                if a.firm.start_date > d || d < history_start {
                    continue;
                }
                a.introduced = true;
                introduce(i, a, &mut out.crm);
            }
            if a.churned_on.is_some() {
                continue;
            }
            let mut r = Rng::keyed(seed, &[3, i as u64, day_number(d)]);
            if d > a.term_end {
                let outcome = renew(i, a, d, &mut r, &mut out.crm);
                self.renewals.push(outcome);
                let a = &mut self.accounts[i];
                if a.churned_on.is_some() {
                    continue;
                }
            }
            let a = &mut self.accounts[i];
            let zones = &self.zones;
            step_account(i, a, d, &mut r, zones, seed, &mut out);
        }
        out
    }
}

/// The CRM rows of an account arriving: the account, its people, its lines so far.
fn introduce(i: usize, a: &AccountState, crm: &mut CrmUpdate) {
    crm.accounts.push(i);
    crm.contacts.push(i);
    let arr = a.arr();
    let mut start = a.firm.start_date;
    for term in 1..=a.term {
        crm.lines.push(Line {
            id: format!("S-{}-{term}", a.firm.external_id),
            account: i,
            start,
            end: term_end_from(start),
            arr,
            seats: a.seats,
        });
        start = start.checked_add(1.year()).unwrap_or(start);
    }
}

/// Renewed accounts whose people are in the product this share of the working days
/// may expand.
const EXPAND_ACTIVITY: f64 = 0.3;

/// The end of a term, decided on the day after it.
fn renew(i: usize, a: &mut AccountState, d: Date, r: &mut Rng, crm: &mut CrmUpdate) -> RenewalOutcome {
    let heavy = a.ticket_days.iter().filter(|t| **t > plus_days(d, -90)).count() >= 4;
    let invited = a.invited_team_early.unwrap_or(false);
    let shared = a.shared_dashboard_early.unwrap_or(false);
    let activity = a.activity();
    let p = truth::p_renew(invited, shared, heavy, activity, a.goodwill, a.rescued, a.in_slump(d));
    let arr_before = a.arr();
    let activated = a.active_from.iter().filter(|x| x.is_some()).count() as f64;
    let utilisation = activated / a.firm.contacts.len().max(1) as f64;
    let outcome = if !r.chance(p) {
        Outcome::Churned
    } else if activity >= EXPAND_ACTIVITY && r.chance(0.65) {
        Outcome::Expanded
    } else if (utilisation < 0.4 || activity < 0.2) && r.chance(0.3) {
        Outcome::Contracted
    } else {
        Outcome::Renewed
    };
    match outcome {
        Outcome::Churned => a.churned_on = Some(d),
        Outcome::Expanded => a.seats = ((f64::from(a.seats) * r.between(1.2, 1.7)).round() as u32).max(a.seats + 1),
        Outcome::Contracted => a.seats = ((f64::from(a.seats) * r.between(0.75, 0.9)).round() as u32).max(3),
        Outcome::Renewed => {}
    }
    let result = RenewalOutcome {
        account: a.firm.external_id.clone(),
        size: a.firm.size,
        term_end: a.term_end,
        outcome,
        p_renew: p,
        arr_before,
        arr_after: if outcome.renewed() { a.arr() } else { 0 },
        invited_team_early: invited,
        shared_dashboard_early: shared,
        heavy_support: heavy,
        activity,
        integrations: a.integrations,
        webinars: a.webinars,
    };
    if outcome.renewed() {
        a.term += 1;
        a.term_start = d;
        a.term_end = term_end_from(d);
        crm.lines.push(Line {
            id: format!("S-{}-{}", a.firm.external_id, a.term),
            account: i,
            start: a.term_start,
            end: a.term_end,
            arr: a.arr(),
            seats: a.seats,
        });
        crm.accounts.push(i);
    }
    a.goodwill = 0;
    a.rescued = false;
    a.integrations = 0;
    a.webinars = 0;
    result
}

/// How much a role uses the product.
fn role_factor(role: Role) -> f64 {
    match role {
        Role::Admin => 1.0,
        Role::Champion => 1.1,
        Role::User => 0.75,
        Role::EconomicBuyer => 0.08,
    }
}

/// One day of one account: its people's product use and the account's own events.
fn step_account(
    i: usize,
    a: &mut AccountState,
    d: Date,
    r: &mut Rng,
    zones: &HashMap<&'static str, TimeZone>,
    seed: u64,
    out: &mut Day,
) {
    let age = d.since(a.firm.start_date).map(|s| s.get_days()).unwrap_or(0);
    let working = !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
    // Onboarding facts are settled once their window has passed.
    if a.invited_team_early.is_none() && age >= 14 {
        a.invited_team_early = Some(a.invites_in_first_14_days >= 5);
    }
    if a.shared_dashboard_early.is_none() && age >= 30 {
        a.shared_dashboard_early = Some(a.shared_any);
    }
    // Slumps: a reorganisation, a champion leaving; on Mondays, one in forty accounts.
    if d.weekday() == Weekday::Monday && !a.in_slump(d) && r.chance(0.025) {
        a.slump_until = Some(plus_days(d, i64::from(r.int(30, 75))));
    }
    let slump = if a.in_slump(d) && a.recovery_until.is_none_or(|u| d > u) { 0.35 } else { 1.0 };
    let recovery = if a.recovery_until.is_some_and(|u| d <= u) { 1.3 } else { 1.0 };
    let onboarding = if age < 30 { 1.2 } else { 1.0 };
    let weekday = if working { 1.0 } else { 0.12 };
    let day_key = day_number(d);
    let mut k = 0u32;
    let mut emit = |out: &mut Day, r: &mut Rng, contact: usize, name: &'static str| {
        let Some(c) = a.firm.contacts.get(contact) else { return };
        let at = local_time(d, zones.get(c.time_zone), r);
        out.events.push(ProductEvent {
            at,
            user_id: c.product_id.clone(),
            group_id: a.firm.product_id.clone(),
            name,
            message_id: format!("sim-{seed}-{i}-{day_key}-{k}"),
        });
        k += 1;
    };
    let mut active_today = 0;
    let mut activated = Vec::new();
    for j in 0..a.firm.contacts.len() {
        if a.active_from[j].is_none_or(|f| f > d) {
            continue;
        }
        activated.push(j);
        let mut cr = Rng::keyed(seed, &[4, i as u64, j as u64, day_key]);
        let c = &a.firm.contacts[j];
        let boost = if a.contact_boost_until[j].is_some_and(|u| d <= u) { 1.3 } else { 1.0 };
        let p = a.latent.vigor * c.vigor * role_factor(c.role) * weekday * slump * recovery * onboarding * boost;
        if !cr.chance(p.min(0.95)) {
            continue;
        }
        active_today += 1;
        for _ in 0..1 + cr.poisson(1.0) {
            emit(out, &mut cr, j, "page_viewed");
        }
        if cr.chance(0.45) {
            emit(out, &mut cr, j, "dashboard_viewed");
        }
        let report = if a.report_boost_until[j].is_some_and(|u| d <= u) { 0.6 } else { 0.18 };
        if cr.chance(report) {
            emit(out, &mut cr, j, "report_created");
        }
        let alert = if a.alert_boost_until[j].is_some_and(|u| d <= u) {
            0.5
        } else if age < 60 {
            0.1
        } else {
            0.02
        };
        if cr.chance(alert) {
            emit(out, &mut cr, j, "alert_set");
        }
        if cr.chance(if a.latent.sharer { 0.09 } else { 0.05 }) {
            emit(out, &mut cr, j, "export_downloaded");
        }
        // Early on, the admin and the champion share (or not); the other people share
        // little, so the number of people does not decide `shared_dashboard_early`.
        let leads = matches!(c.role, Role::Admin | Role::Champion);
        let share = match (a.latent.sharer, age < 30, leads) {
            _ if a.share_boost_until[j].is_some_and(|u| d <= u) => 0.4,
            (true, true, true) => 0.12,
            (_, true, _) => 0.004,
            (true, false, _) => 0.05,
            (false, false, _) => 0.008,
        };
        if cr.chance(share) {
            emit(out, &mut cr, j, "dashboard_shared");
            if age < 30 {
                a.shared_any = true;
            }
        }
        if c.role == Role::Admin {
            let rate = if a.invite_boost_until.is_some_and(|u| d <= u) {
                0.5
            } else if age < 21 {
                if a.latent.team_oriented { 0.6 } else { 0.06 }
            } else {
                0.03
            };
            let invites = if cr.chance(rate) { 1 + cr.poisson(0.6) } else { 0 };
            for _ in 0..invites {
                emit(out, &mut cr, j, "user_invited");
                if age < 14 {
                    a.invites_in_first_14_days += 1;
                }
                // The next person not yet in the product starts tomorrow.
                if let Some(next) = a.active_from.iter_mut().find(|x| x.is_none()) {
                    *next = Some(plus_days(d, 1));
                }
            }
        }
    }
    // The account's own events, by someone in the product.
    if let Some(&who) = r.pick(&activated) {
        if working && r.chance(a.latent.friction) {
            emit(out, r, who, "ticket_opened");
            a.ticket_days.push_back(d);
        }
        // The decoys: rates by size only.
        let (integration, webinar) = match a.firm.size {
            Size::Small => (0.002, 0.003),
            Size::Mid => (0.005, 0.008),
            Size::Large => (0.012, 0.02),
        };
        if r.chance(integration) {
            emit(out, r, who, "integration_connected");
            a.integrations += 1;
        }
        if working && r.chance(webinar * 2.0) {
            emit(out, r, who, "webinar_attended");
            a.webinars += 1;
        }
    }
    while a.ticket_days.front().is_some_and(|t| *t <= plus_days(d, -120)) {
        a.ticket_days.pop_front();
    }
    a.active_counts.push_back((d, active_today));
    while a.active_counts.len() > 60 {
        a.active_counts.pop_front();
    }
}

/// A moment of the working day (08:00–19:00) of `d` in time zone `tz`.
fn local_time(d: Date, tz: Option<&TimeZone>, r: &mut Rng) -> Timestamp {
    let (h, m, s) = (r.int(8, 18) as i8, r.int(0, 59) as i8, r.int(0, 59) as i8);
    let tz = tz.cloned().unwrap_or(TimeZone::UTC);
    d.at(h, m, s, 0).to_zoned(tz).map(|z| z.timestamp()).unwrap_or_else(|_| Timestamp::UNIX_EPOCH)
}
