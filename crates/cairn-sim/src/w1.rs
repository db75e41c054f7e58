//! Workload W1 (DESIGN §14): the benchmarks' load — 10,000 accounts, 500,000 contacts and
//! 50 million product events over 180 days, with the subscription ledger — generated from
//! the same customers as the simulated company, fast enough to write at millions of events
//! a second.
//!
//! The customers are the company's: [`Company::new`] draws every account's firmographics
//! (industry, size, plan, seats, region, CSM pool, start date, people with roles and time
//! zones) and its latent traits (vigor, team orientation, sharing, friction). W1 keeps
//! them and adds what a benchmark needs and the company does not have:
//!
//! - **more people**: each account's contacts are its company people scaled so that they
//!   add up to the wanted number (in proportion to the company's head count, at least 3),
//!   the extra ones users modelled on the account's own people (name, time zone, vigor);
//! - **a calibrated event rate**: a person is active on a day with the company's
//!   probability (account vigor × person vigor × role × weekday × slump × onboarding) and
//!   then does what the company's people do (page views, dashboards, reports, alerts,
//!   exports, shares); the number of extra page views per active day is solved so that the
//!   expected total is the wanted number of events (the realised total is within a few
//!   hundredths of a percent of it);
//! - **onboarding**: customers starting in the window bring their first three people, the
//!   admin invites the rest (`user_invited` the day before each joins), early when the
//!   account is team-oriented;
//! - **renewals**: a term ending in the window is renewed, expanded, contracted or lost by
//!   the truth's logit ([`crate::truth`]); a lost customer's people go quiet and its
//!   ledger stops.
//!
//! Unlike [`Company::day`], nothing here allocates per event: an event is four numbers
//! ([`W1Event`]), its ids are written from per-contact byte strings made once, and its
//! instant from a per-day offset of each time zone. Every draw comes from a stream keyed by
//! (seed, purpose, contact or account, day), so a day can be generated on any thread, in
//! any order, and gives the same events.
//!
//! Pure, like the rest of the crate: the `cairn demo --scale` command writes the files.

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use crate::company::plus_days;
use crate::crm::{ACCOUNTS_HEADER, CONTACTS_HEADER, SUBSCRIPTIONS_HEADER};
use crate::firmographics::{Role, Size};
use crate::rng::Rng;
use crate::{Company, Config, Line, truth};

/// The product events of W1, by index (a [`W1Event`] holds the index).
pub const EVENTS: [&str; 10] = [
    "page_viewed",
    "dashboard_viewed",
    "report_created",
    "alert_set",
    "export_downloaded",
    "dashboard_shared",
    "user_invited",
    "ticket_opened",
    "integration_connected",
    "webinar_attended",
];
const PAGE: u8 = 0;
const DASHBOARD_VIEWED: u8 = 1;
const REPORT: u8 = 2;
const ALERT: u8 = 3;
const EXPORT: u8 = 4;
const SHARED: u8 = 5;
const INVITED: u8 = 6;
const TICKET: u8 = 7;
const INTEGRATION: u8 = 8;
const WEBINAR: u8 = 9;

/// Stream tags: what a keyed stream is for.
const TAG_PERSON_DAY: u64 = 0x5731_0001;
const TAG_ACCOUNT_DAY: u64 = 0x5731_0002;
const TAG_ACCOUNT: u64 = 0x5731_0003;
const TAG_CONTACT: u64 = 0x5731_0004;

/// How big a workload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Accounts.
    pub accounts: usize,
    /// Contacts, over all accounts.
    pub contacts: usize,
    /// Product events wanted (the realised count is within a few hundredths of a percent).
    pub events: u64,
    /// Days the events span.
    pub days: u32,
}

impl Scale {
    /// W1 itself.
    pub const W1: Scale = Scale { accounts: 10_000, contacts: 500_000, events: 50_000_000, days: 180 };

    /// W1 divided by `divisor` in accounts, contacts and events (the same density per
    /// account and per contact), over the same 180 days.
    pub fn w1_over(divisor: u32) -> Scale {
        let d = divisor.max(1);
        Scale {
            accounts: (Scale::W1.accounts / d as usize).max(1),
            contacts: (Scale::W1.contacts / d as usize).max(3),
            events: Scale::W1.events / u64::from(d),
            days: Scale::W1.days,
        }
    }
}

/// What workload to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct W1Config {
    /// Its size.
    pub scale: Scale,
    /// The seed: the same seed, the same files, byte for byte.
    pub seed: u64,
    /// The day after the last day of events.
    pub end: Date,
}

impl W1Config {
    /// The workload of `scale` and `seed`, ending on W1's fixed day (2026-09-21, so every
    /// run makes the same data whatever the date).
    pub fn new(scale: Scale, seed: u64) -> W1Config {
        W1Config { scale, seed, end: Date::constant(2026, 9, 21) }
    }
}

/// One product event: its instant (Unix seconds), account and contact (indexes into
/// [`W1::accounts`] and [`W1::contacts`]) and event (index into [`EVENTS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct W1Event {
    /// Unix seconds.
    pub ts: i64,
    /// Account index.
    pub account: u32,
    /// Contact index (over all accounts).
    pub contact: u32,
    /// Index into [`EVENTS`].
    pub event: u8,
}

/// An account of the workload.
#[derive(Debug, Clone)]
pub struct W1Account {
    /// CRM id (`A0001`).
    pub external_id: String,
    /// Product id, the `groupId` of its events (`acct-A0001`).
    pub product_id: String,
    /// Company name.
    pub name: String,
    /// Email domain.
    pub domain: String,
    /// Industry.
    pub industry: &'static str,
    /// Employees.
    pub employees: u32,
    /// Size band.
    pub size: Size,
    /// Plan name.
    pub plan: &'static str,
    /// Seats at the end of the window.
    pub seats: u32,
    /// ARR in dollars at the end of the window (0 when lost).
    pub arr: u64,
    /// EMEA, AMER or APAC.
    pub region: &'static str,
    /// `digital`, `pooled` or `named`.
    pub csm_pool: &'static str,
    /// The owning CSM.
    pub owner_email: &'static str,
    /// First day of the first contract.
    pub start_date: Date,
    /// Last day of the current (or last) term.
    pub renewal_date: Date,
    /// The day it was lost, when it was (the day after its last term).
    pub churned_on: Option<Date>,
    /// The latest NPS answer.
    pub nps_last: Option<u8>,
    /// Its contacts: `first_contact..first_contact + contacts`.
    pub first_contact: u32,
    /// How many.
    pub contacts: u32,
    vigor: f64,
    sharer: bool,
    friction: f64,
    /// Day index (from the window's first day) of the start; negative before the window.
    start_day: i32,
    /// Day index from which it is quiet (lost).
    quiet_from: i32,
    /// Slumps as day-index ranges `[from, to]`.
    slumps: Vec<(i32, i32)>,
}

/// A contact of the workload.
#[derive(Debug, Clone)]
pub struct W1Contact {
    /// Account index.
    pub account: u32,
    /// Number within the account (1 = the admin).
    pub number: u32,
    /// Role.
    pub role: Role,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// IANA time zone.
    pub time_zone: &'static str,
    zone: u8,
    vigor: f64,
    /// Day index from which the person uses the product (`i32::MAX`: never).
    active_from: i32,
}

/// The generated workload: customers, people and ledger in memory; events a day at a
/// time ([`W1::day_events`]).
#[derive(Debug, Clone)]
pub struct W1 {
    config: W1Config,
    first_day: Date,
    /// Every account.
    pub accounts: Vec<W1Account>,
    /// Every contact, grouped by account.
    pub contacts: Vec<W1Contact>,
    /// The subscription ledger, by account.
    pub lines: Vec<Line>,
    /// Unix second of local midnight of each day, per time zone (`[zone][day]`).
    midnights: Vec<Vec<i64>>,
    /// The contacts' product ids (`u-A0001-03`), one after another; `contact_id_at[i]..[i+1]`.
    contact_ids: Vec<u8>,
    contact_id_at: Vec<u32>,
    /// Poisson mean of the page views after the first on an active day (calibrated).
    extra_pages: f64,
    /// A factor on every person's chance to be active (1 unless the events asked for are
    /// too few for the company's activity).
    activity: f64,
}

/// How much a role uses the product (the company's factors: the economic buyer rarely
/// logs in).
fn role_activity(role: Role) -> f64 {
    match role {
        Role::Admin => 1.0,
        Role::Champion => 1.1,
        Role::User => 0.75,
        Role::EconomicBuyer => 0.08,
    }
}

fn weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

impl W1 {
    /// The workload of `config`: accounts, contacts, ledger and calibration. Events come
    /// from [`W1::day_events`].
    pub fn new(config: W1Config) -> W1 {
        let scale = config.scale;
        let days = scale.days.max(1);
        let first_day = plus_days(config.end, -i64::from(days));
        let company =
            Company::new(Config { accounts: scale.accounts, seed: config.seed, first_day, days, history_days: 0 });

        // Contacts per account: the company's people, scaled to the wanted total.
        let people: Vec<usize> = company.accounts.iter().map(|a| a.firm.contacts.len().max(1)).collect();
        let counts = apportion(&people, scale.contacts);

        let zone_names: Vec<&'static str> = crate::firmographics::time_zones().collect();
        let zone_of = |name: &str| zone_names.iter().position(|z| *z == name).unwrap_or(0) as u8;

        let mut accounts = Vec::with_capacity(scale.accounts);
        let mut contacts = Vec::with_capacity(scale.contacts);
        let mut lines = Vec::new();
        for (i, (a, count)) in company.accounts.iter().zip(&counts).enumerate() {
            let firm = &a.firm;
            let mut r = Rng::keyed(config.seed, &[TAG_ACCOUNT, i as u64]);
            let start_day = days_between(first_day, firm.start_date);
            let existing = start_day < 0;
            // Slumps: on a Monday, one account in forty loses most of its use for 30–75 days.
            let mut slumps = Vec::new();
            let mut k = 0;
            while k < days as i32 {
                let d = plus_days(first_day, i64::from(k));
                if d.weekday() == Weekday::Monday && !slumps.iter().any(|&(_, to)| k <= to) && r.chance(0.025) {
                    slumps.push((k, k + r.int(30, 75) as i32));
                }
                k += 1;
            }
            // The people, the company's first; the extra ones modelled on them.
            let first_contact = contacts.len() as u32;
            let base = &firm.contacts;
            let mut team_invites_in_14 = 0;
            for j in 0..*count {
                let Some(b) = base.get(j % base.len().max(1)) else { break };
                let mut cr = Rng::keyed(config.seed, &[TAG_CONTACT, i as u64, j as u64]);
                let (role, vigor) = if j < base.len() {
                    (b.role, b.vigor)
                } else {
                    (Role::User, (b.vigor * cr.between(0.85, 1.15)).clamp(0.5, 1.3))
                };
                let local =
                    b.email.split('@').next().unwrap_or("person").trim_end_matches(|c: char| c.is_ascii_digit());
                // Who uses the product from when: the first three from the start; at an
                // old customer nine in ten of the others from the start and the rest when
                // invited during the window; at a new one the admin invites the others,
                // mostly in the first two weeks when the account is team-oriented.
                let active_from = if j < 3 {
                    start_day
                } else if existing {
                    if cr.chance(0.9) { start_day } else { cr.int(0, days.saturating_sub(1)) as i32 }
                } else if a.latent.team_oriented && cr.chance(0.7) {
                    start_day + cr.int(1, 13) as i32
                } else {
                    start_day + cr.int(14, 150) as i32
                };
                if !existing && j >= 3 && active_from - start_day < 14 {
                    team_invites_in_14 += 1;
                }
                contacts.push(W1Contact {
                    account: i as u32,
                    number: j as u32 + 1,
                    role,
                    name: b.name.clone(),
                    email: format!("{local}{}@{}", j + 1, firm.domain),
                    time_zone: b.time_zone,
                    zone: zone_of(b.time_zone),
                    vigor,
                    active_from,
                });
            }
            // The ledger: yearly terms from the start; a term ending in the window is
            // decided by the truth's logit, those before it were renewed as they were.
            let mut seats = a.seats;
            let plan = a.plan;
            let mut term_start = firm.start_date;
            let mut term = 1;
            let mut churned_on = None;
            let end = config.end;
            let invited = if existing {
                r.chance(if a.latent.team_oriented { 0.75 } else { 0.1 })
            } else {
                team_invites_in_14 >= 5
            };
            let shared = r.chance(if a.latent.sharer { 0.7 } else { 0.1 });
            let heavy = r.poisson(a.latent.friction * 64.0) >= 4;
            let activity = (a.latent.vigor * 0.85).min(1.0);
            loop {
                let term_end = plus_days(term_start.checked_add(1.year()).unwrap_or(term_start), -1);
                lines.push(Line {
                    id: format!("S-{}-{term}", firm.external_id),
                    account: i,
                    start: term_start,
                    end: term_end,
                    arr: u64::from(seats) * plan.seat_price(),
                    seats,
                });
                let next = plus_days(term_end, 1);
                if next >= end {
                    break;
                }
                if next >= first_day {
                    let k = days_between(first_day, next);
                    let slump = slumps.iter().any(|&(from, to)| from <= k && k <= to);
                    let p = truth::p_renew(invited, shared, heavy, activity, 0, false, slump);
                    if !r.chance(p) {
                        churned_on = Some(next);
                        break;
                    }
                    if r.chance(0.3) {
                        seats = ((f64::from(seats) * r.between(1.15, 1.5)).round() as u32).max(seats + 1);
                    } else if r.chance(0.2) {
                        seats = ((f64::from(seats) * r.between(0.6, 0.85)).round() as u32).max(3);
                    }
                }
                term_start = next;
                term += 1;
            }
            let renewal_date = lines.last().map_or(term_start, |l| l.end);
            let nps_last = r.chance(0.4).then(|| {
                (a.latent.vigor * 12.0 + 2.0 * r.normal() - if heavy { 2.0 } else { 0.0 }).round().clamp(0.0, 10.0)
                    as u8
            });
            accounts.push(W1Account {
                external_id: firm.external_id.clone(),
                product_id: firm.product_id.clone(),
                name: firm.name.clone(),
                domain: firm.domain.clone(),
                industry: firm.industry,
                employees: firm.employees,
                size: firm.size,
                plan: plan.as_str(),
                seats,
                arr: if churned_on.is_some() { 0 } else { u64::from(seats) * plan.seat_price() },
                region: firm.region,
                csm_pool: firm.csm_pool,
                owner_email: firm.owner_email,
                start_date: firm.start_date,
                renewal_date,
                churned_on,
                nps_last,
                first_contact,
                contacts: contacts.len() as u32 - first_contact,
                vigor: a.latent.vigor,
                sharer: a.latent.sharer,
                friction: a.latent.friction,
                start_day,
                quiet_from: churned_on.map_or(i32::MAX, |d| days_between(first_day, d)),
                slumps,
            });
        }

        // Local midnights, one more day on each side for the offsets' sake.
        let midnights = zone_names
            .iter()
            .map(|name| {
                let tz = TimeZone::get(name).unwrap_or(TimeZone::UTC);
                (0..=days as i64)
                    .map(|k| {
                        let d = plus_days(first_day, k);
                        d.to_zoned(tz.clone()).map(|z| z.timestamp().as_second()).unwrap_or(0)
                    })
                    .collect()
            })
            .collect();
        let mut contact_ids = Vec::with_capacity(contacts.len() * 14);
        let mut contact_id_at = Vec::with_capacity(contacts.len() + 1);
        for c in &contacts {
            contact_id_at.push(contact_ids.len() as u32);
            let a = &accounts[c.account as usize];
            contact_ids.extend_from_slice(format!("u-{}-{:02}", a.external_id, c.number).as_bytes());
        }
        contact_id_at.push(contact_ids.len() as u32);

        let mut w1 = W1 {
            config,
            first_day,
            accounts,
            contacts,
            lines,
            midnights,
            contact_ids,
            contact_id_at,
            extra_pages: 0.0,
            activity: 1.0,
        };
        w1.calibrate();
        w1
    }

    /// The configuration.
    pub fn config(&self) -> &W1Config {
        &self.config
    }

    /// The first day of events.
    pub fn first_day(&self) -> Date {
        self.first_day
    }

    /// Days of events.
    pub fn days(&self) -> u32 {
        self.config.scale.days.max(1)
    }

    /// A contact's product id (the `userId` of its events).
    pub fn contact_product_id(&self, contact: u32) -> &[u8] {
        let i = contact as usize;
        match (self.contact_id_at.get(i), self.contact_id_at.get(i + 1)) {
            (Some(&a), Some(&b)) => self.contact_ids.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The expected events of a day, per account-level and person-level part, used to
    /// solve the page-view rate: (Σ p over person-days, Σ p × the non-page events of an
    /// active day, expected account and invitation events).
    fn expected_parts(&self) -> (f64, f64, f64) {
        let (mut sum_p, mut sum_other, mut fixed) = (0.0, 0.0, 0.0);
        for k in 0..self.days() as i32 {
            let d = plus_days(self.first_day, i64::from(k));
            let working = !weekend(d);
            for a in &self.accounts {
                if k < a.start_day || k >= a.quiet_from {
                    continue;
                }
                let base = self.account_factor(a, k, working);
                let (integration, webinar) = size_rates(a.size);
                fixed += if working { a.friction + webinar * 2.0 } else { 0.0 } + integration;
                let age = k - a.start_day;
                for c in self.account_contacts(a) {
                    if c.active_from == k + 1 && c.active_from > a.start_day {
                        fixed += 1.0;
                    }
                    if c.active_from > k {
                        continue;
                    }
                    let p = (base * c.vigor * role_activity(c.role)).min(0.95);
                    sum_p += p;
                    sum_other += p * other_events(a.sharer, age, c.role);
                }
            }
        }
        (sum_p, sum_other, fixed)
    }

    /// Solves the page-view rate so that the expected total is the events asked for.
    fn calibrate(&mut self) {
        let (sum_p, sum_other, fixed) = self.expected_parts();
        let target = self.config.scale.events as f64;
        if sum_p <= 0.0 {
            return;
        }
        let extra = (target - fixed - sum_other) / sum_p - 1.0;
        if extra >= 0.0 {
            self.extra_pages = extra;
        } else {
            // Fewer events than the company's people make with one page view each:
            // fewer people active (approximately; the chance is capped at 0.95).
            self.activity = ((target - fixed).max(0.0) / (sum_p + sum_other)).clamp(0.0, 1.0);
        }
    }

    fn account_contacts(&self, a: &W1Account) -> &[W1Contact] {
        let from = a.first_contact as usize;
        self.contacts.get(from..from + a.contacts as usize).unwrap_or(&[])
    }

    /// The part of a person's chance to be active that belongs to the account and the day.
    fn account_factor(&self, a: &W1Account, k: i32, working: bool) -> f64 {
        let slump = if a.slumps.iter().any(|&(from, to)| from <= k && k <= to) { 0.35 } else { 1.0 };
        let onboarding = if k - a.start_day < 30 { 1.2 } else { 1.0 };
        let weekday = if working { 1.0 } else { 0.12 };
        a.vigor * slump * onboarding * weekday * self.activity
    }

    /// The events of day `k` (0 = the first day), in account order, each at a moment of
    /// its person's working day in its person's time zone. The same `k` gives the same
    /// events, on any thread.
    pub fn day_events(&self, k: u32, out: &mut Vec<W1Event>) {
        out.clear();
        let k = k as i32;
        if k < 0 || k >= self.days() as i32 {
            return;
        }
        let d = plus_days(self.first_day, i64::from(k));
        let working = !weekend(d);
        let seed = self.config.seed;
        for (i, a) in self.accounts.iter().enumerate() {
            if k < a.start_day || k >= a.quiet_from {
                continue;
            }
            let base = self.account_factor(a, k, working);
            let age = k - a.start_day;
            let people = self.account_contacts(a);
            let admin = a.first_contact;
            for (j, c) in people.iter().enumerate() {
                let contact = a.first_contact + j as u32;
                let mut r = Rng::keyed(seed, &[TAG_PERSON_DAY, u64::from(contact), k as u64]);
                // The admin invites a person the day before they join.
                if c.active_from == k + 1 && c.active_from > a.start_day {
                    let who = self.contacts.get(admin as usize).map_or(c.zone, |x| x.zone);
                    out.push(self.event(&mut r, who, k, i, admin, INVITED));
                }
                if c.active_from > k {
                    continue;
                }
                let p = (base * c.vigor * role_activity(c.role)).min(0.95);
                if !r.chance(p) {
                    continue;
                }
                for _ in 0..1 + r.poisson(self.extra_pages) {
                    out.push(self.event(&mut r, c.zone, k, i, contact, PAGE));
                }
                let mut maybe = |r: &mut Rng, p: f64, e: u8| {
                    if r.chance(p) {
                        out.push(self.event(r, c.zone, k, i, contact, e));
                    }
                };
                maybe(&mut r, 0.45, DASHBOARD_VIEWED);
                maybe(&mut r, 0.18, REPORT);
                maybe(&mut r, if age < 60 { 0.1 } else { 0.02 }, ALERT);
                maybe(&mut r, if a.sharer { 0.09 } else { 0.05 }, EXPORT);
                maybe(&mut r, share_rate(a.sharer, age, c.role), SHARED);
            }
            // The account's own events, by one of its people.
            let mut r = Rng::keyed(seed, &[TAG_ACCOUNT_DAY, i as u64, k as u64]);
            let who = a.first_contact + r.int(0, a.contacts.saturating_sub(1));
            let zone = self.contacts.get(who as usize).map_or(0, |c| c.zone);
            let (integration, webinar) = size_rates(a.size);
            if working && r.chance(a.friction) {
                out.push(self.event(&mut r, zone, k, i, who, TICKET));
            }
            if r.chance(integration) {
                out.push(self.event(&mut r, zone, k, i, who, INTEGRATION));
            }
            if working && r.chance(webinar * 2.0) {
                out.push(self.event(&mut r, zone, k, i, who, WEBINAR));
            }
        }
    }

    /// An event at a moment of the working day (08:00–19:00) of day `k` in `zone`.
    fn event(&self, r: &mut Rng, zone: u8, k: i32, account: usize, contact: u32, event: u8) -> W1Event {
        let midnight = self.midnights.get(zone as usize).and_then(|m| m.get(k as usize)).copied().unwrap_or(0);
        let second = 8 * 3600 + (r.next_u64() % (11 * 3600)) as i64;
        W1Event { ts: midnight + second, account: account as u32, contact, event }
    }

    /// `accounts.csv`, as `cairn import accounts` reads it.
    pub fn accounts_csv(&self) -> String {
        let mut out = format!("{ACCOUNTS_HEADER}\n");
        for a in &self.accounts {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                a.external_id,
                a.name,
                a.industry,
                a.employees,
                a.plan,
                a.seats,
                a.owner_email,
                a.start_date,
                a.renewal_date,
                a.domain,
                a.product_id,
                a.region,
                a.csm_pool,
                a.nps_last.map(|n| n.to_string()).unwrap_or_default(),
            ));
        }
        out
    }

    /// `contacts.csv`, as `cairn import contacts` reads it.
    pub fn contacts_csv(&self) -> String {
        let mut out = String::with_capacity(self.contacts.len() * 100);
        out.push_str(CONTACTS_HEADER);
        out.push('\n');
        for (i, c) in self.contacts.iter().enumerate() {
            let Some(a) = self.accounts.get(c.account as usize) else { continue };
            out.push_str(&format!(
                "{}-{:02},{},{},{},{},{},{}\n",
                a.external_id,
                c.number,
                a.external_id,
                c.email,
                c.name,
                c.role.as_str(),
                c.time_zone,
                String::from_utf8_lossy(self.contact_product_id(i as u32)),
            ));
        }
        out
    }

    /// `subscriptions.csv`, as `cairn import subscriptions` reads it.
    pub fn subscriptions_csv(&self) -> String {
        let mut out = format!("{SUBSCRIPTIONS_HEADER}\n");
        for l in &self.lines {
            let Some(a) = self.accounts.get(l.account) else { continue };
            out.push_str(&format!("{},{},{},{},{}.00,{},core\n", l.id, a.external_id, l.start, l.end, l.arr, l.seats));
        }
        out
    }

    /// The header of the events CSV ([`W1::push_csv`]).
    pub const EVENTS_CSV_HEADER: &'static str = "ts,group_id,user_id,event,message_id";

    /// Appends event `e`, the `n`th of day `k`, as an NDJSON line: a Segment track call,
    /// as `cairn import events` and `POST /v1/batch` read it.
    pub fn push_ndjson(&self, out: &mut Vec<u8>, stamp: &mut Stamp, k: u32, n: usize, e: &W1Event) {
        out.extend_from_slice(br#"{"type":"track","messageId":""#);
        self.push_message_id(out, k, n);
        out.extend_from_slice(br#"","userId":""#);
        out.extend_from_slice(self.contact_product_id(e.contact));
        out.extend_from_slice(br#"","event":""#);
        out.extend_from_slice(EVENTS.get(e.event as usize).unwrap_or(&"page_viewed").as_bytes());
        out.extend_from_slice(br#"","timestamp":""#);
        stamp.push(out, e.ts);
        out.extend_from_slice(br#"","context":{"groupId":""#);
        if let Some(a) = self.accounts.get(e.account as usize) {
            out.extend_from_slice(a.product_id.as_bytes());
        }
        out.extend_from_slice(b"\"}}\n");
    }

    /// Appends event `e`, the `n`th of day `k`, as a line of the events CSV
    /// ([`W1::EVENTS_CSV_HEADER`]): for DuckDB's `read_csv` and PostgreSQL's `COPY`.
    pub fn push_csv(&self, out: &mut Vec<u8>, stamp: &mut Stamp, k: u32, n: usize, e: &W1Event) {
        stamp.push(out, e.ts);
        out.push(b',');
        if let Some(a) = self.accounts.get(e.account as usize) {
            out.extend_from_slice(a.product_id.as_bytes());
        }
        out.push(b',');
        out.extend_from_slice(self.contact_product_id(e.contact));
        out.push(b',');
        out.extend_from_slice(EVENTS.get(e.event as usize).unwrap_or(&"page_viewed").as_bytes());
        out.push(b',');
        self.push_message_id(out, k, n);
        out.push(b'\n');
    }

    /// `w1-{seed}-{day}-{n}`: unique within the workload, the same on every run.
    fn push_message_id(&self, out: &mut Vec<u8>, k: u32, n: usize) {
        out.extend_from_slice(b"w1-");
        push_u64(out, self.config.seed);
        out.push(b'-');
        push_u64(out, u64::from(k));
        out.push(b'-');
        push_u64(out, n as u64);
    }
}

/// The non-page events an active person makes on average on a day.
fn other_events(sharer: bool, age: i32, role: Role) -> f64 {
    0.45 + 0.18 + if age < 60 { 0.1 } else { 0.02 } + if sharer { 0.09 } else { 0.05 } + share_rate(sharer, age, role)
}

/// The chance an active person shares a dashboard: sharers share, their admin most in
/// the first month.
fn share_rate(sharer: bool, age: i32, role: Role) -> f64 {
    match (sharer, age < 30 && role == Role::Admin) {
        (true, true) => 0.15,
        (true, false) => 0.05,
        (false, _) => 0.008,
    }
}

/// The decoys' daily rates by size (integrations, webinars): larger companies do more of
/// both, and neither changes renewal.
fn size_rates(size: Size) -> (f64, f64) {
    match size {
        Size::Small => (0.002, 0.003),
        Size::Mid => (0.005, 0.008),
        Size::Large => (0.012, 0.02),
    }
}

/// Days from `from` to `to` (negative when `to` is earlier).
fn days_between(from: Date, to: Date) -> i32 {
    to.since(from).map(|s| s.get_days()).unwrap_or(0)
}

/// `total` shared in proportion to `weights`, at least 3 each (1 when there are too few
/// to go round), adding up to `total` exactly.
fn apportion(weights: &[usize], total: usize) -> Vec<usize> {
    if weights.is_empty() {
        return Vec::new();
    }
    let min = if total >= 3 * weights.len() { 3 } else { 1 };
    let sum: usize = weights.iter().sum::<usize>().max(1);
    let mut counts: Vec<usize> =
        weights.iter().map(|w| ((total as f64 * *w as f64 / sum as f64).round() as usize).max(min)).collect();
    let mut have: usize = counts.iter().sum();
    let mut i = 0;
    let mut stuck = 0;
    while have != total && stuck <= counts.len() {
        let k = i % counts.len();
        if have < total {
            counts[k] += 1;
            have += 1;
            stuck = 0;
        } else if counts[k] > min {
            counts[k] -= 1;
            have -= 1;
            stuck = 0;
        } else {
            stuck += 1;
        }
        i += 1;
    }
    counts
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes Unix seconds as RFC 3339 UTC (`2026-03-24T10:11:12Z`), the date part cached
/// for the day it was last asked for.
#[derive(Debug, Default)]
pub struct Stamp {
    day: Option<i64>,
    date: [u8; 11],
}

impl Stamp {
    /// Appends `ts` (Unix seconds).
    pub fn push(&mut self, out: &mut Vec<u8>, ts: i64) {
        let day = ts.div_euclid(86_400);
        let second = ts.rem_euclid(86_400);
        if self.day != Some(day) {
            let (y, m, d) = civil_from_days(day);
            let y = y.clamp(0, 9999) as u32;
            let text = [
                b'0' + (y / 1000) as u8,
                b'0' + (y / 100 % 10) as u8,
                b'0' + (y / 10 % 10) as u8,
                b'0' + (y % 10) as u8,
                b'-',
                b'0' + m / 10,
                b'0' + m % 10,
                b'-',
                b'0' + d / 10,
                b'0' + d % 10,
                b'T',
            ];
            self.date = text;
            self.day = Some(day);
        }
        out.extend_from_slice(&self.date);
        let (h, mi, s) = ((second / 3600) as u8, (second / 60 % 60) as u8, (second % 60) as u8);
        out.extend_from_slice(&[
            b'0' + h / 10,
            b'0' + h % 10,
            b':',
            b'0' + mi / 10,
            b'0' + mi % 10,
            b':',
            b'0' + s / 10,
            b'0' + s % 10,
            b'Z',
        ]);
    }
}

/// The civil date of a day count from 1970-01-01 (Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> W1 {
        W1::new(W1Config::new(Scale::w1_over(1000), 7))
    }

    #[test]
    fn timestamps_are_written_as_jiff_writes_them() {
        let mut stamp = Stamp::default();
        for ts in [0i64, 951_782_400, 1_774_000_000, 1_774_086_399, 4_102_444_800, 1_709_164_800] {
            let mut out = Vec::new();
            stamp.push(&mut out, ts);
            let want = jiff::Timestamp::from_second(ts).unwrap().to_string();
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn counts_add_up_and_the_events_are_near_the_number_asked_for() {
        let w = small();
        let scale = w.config().scale;
        assert_eq!(w.accounts.len(), scale.accounts);
        assert_eq!(w.contacts.len(), scale.contacts);
        assert_eq!(w.accounts.iter().map(|a| a.contacts as usize).sum::<usize>(), scale.contacts);
        let mut day = Vec::new();
        let mut total = 0u64;
        let mut by_event = [0u64; EVENTS.len()];
        for k in 0..w.days() {
            w.day_events(k, &mut day);
            total += day.len() as u64;
            for e in &day {
                by_event[e.event as usize] += 1;
                let c = &w.contacts[e.contact as usize];
                assert_eq!(c.account, e.account);
            }
        }
        // 50,000 asked for; a Poisson-like total has a standard deviation near √50,000 ≈ 224
        // (more with the per-person draws); 2 % is far outside chance.
        assert!((total as f64 - 50_000.0).abs() < 1_000.0, "{total}");
        // The shape: page views lead, every kind occurs, rare ones are rare.
        assert!(by_event[0] > total / 3, "{by_event:?}");
        assert!(by_event.iter().all(|n| *n > 0), "{by_event:?}");
        assert!(by_event[TICKET as usize] < total / 50, "{by_event:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_workload_and_another_seed_another() {
        let (a, b) = (small(), small());
        let other = W1::new(W1Config::new(Scale::w1_over(1000), 8));
        assert_eq!(a.accounts_csv(), b.accounts_csv());
        assert_eq!(a.contacts_csv(), b.contacts_csv());
        assert_eq!(a.subscriptions_csv(), b.subscriptions_csv());
        assert_ne!(a.accounts_csv(), other.accounts_csv());
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for k in [0, 17, 179] {
            a.day_events(k, &mut x);
            b.day_events(k, &mut y);
            assert_eq!(x, y);
        }
    }

    #[test]
    fn events_fall_in_the_working_day_of_their_persons_zone() {
        let w = small();
        let mut day = Vec::new();
        w.day_events(40, &mut day);
        let date = plus_days(w.first_day(), 40);
        assert!(!day.is_empty());
        for e in &day {
            let tz = TimeZone::get(w.contacts[e.contact as usize].time_zone).unwrap();
            let local = jiff::Timestamp::from_second(e.ts).unwrap().to_zoned(tz);
            assert_eq!(local.date(), date);
            assert!((8..19).contains(&local.hour()), "{local}");
        }
    }

    #[test]
    fn lines_and_files_are_what_the_importers_expect() {
        let w = small();
        let lines = w.subscriptions_csv();
        assert!(lines.starts_with("id,account_id,start_date,end_date,arr,seats,product\n"));
        // Every account has a line; each account's lines follow each other without a gap.
        for (i, a) in w.accounts.iter().enumerate() {
            let mine: Vec<&Line> = w.lines.iter().filter(|l| l.account == i).collect();
            assert!(!mine.is_empty());
            for pair in mine.windows(2) {
                assert_eq!(plus_days(pair[0].end, 1), pair[1].start);
            }
            assert_eq!(mine.last().unwrap().end, a.renewal_date);
        }
        let contacts = w.contacts_csv();
        assert_eq!(contacts.lines().count(), w.contacts.len() + 1);
        // Emails are unique (the importer matches contacts by email too).
        let mut emails: Vec<&str> = w.contacts.iter().map(|c| c.email.as_str()).collect();
        emails.sort_unstable();
        emails.dedup();
        assert_eq!(emails.len(), w.contacts.len());
        let mut line = Vec::new();
        let mut day = Vec::new();
        // The first day anyone is active (customers start during the window).
        let first = (0..400).find(|&d| {
            w.day_events(d, &mut day);
            !day.is_empty()
        });
        let first = first.expect("someone is active within the window");
        w.push_ndjson(&mut line, &mut Stamp::default(), first, 0, &day[0]);
        let text = String::from_utf8(line).unwrap();
        let start = format!(r#"{{"type":"track","messageId":"w1-7-{first}-0","userId":"u-"#);
        assert!(text.starts_with(&start), "{text}");
        assert!(text.ends_with("\"}}\n"), "{text}");
    }

    #[test]
    fn apportion_adds_up_exactly() {
        assert_eq!(apportion(&[1, 1, 2], 8).iter().sum::<usize>(), 8);
        assert_eq!(apportion(&[10, 3, 60], 500).iter().sum::<usize>(), 500);
        let few = apportion(&[10, 3, 60], 5);
        assert_eq!(few.iter().sum::<usize>(), 5);
        assert!(few.iter().all(|n| *n >= 1));
    }
}
