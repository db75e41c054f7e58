//! The deterministic workload: accounts, contacts and events, generated a day at a time.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use cairn::demo::{EVENTS, Rng};
use cairn_engine::days::{Day, date_of_day, day_of_date, start_of_day};
use cairn_rules::Value;
use cairn_sim::w1::{EVENTS as W1_EVENTS, W1};
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::EngineArgs;
use super::count_bar::CountBar;

/// The fixed last day of the workload (the end instant is its first moment, in the
/// workspace time zone), so every run generates the same data.
pub(super) fn end_date() -> Date {
    Date::constant(2026, 9, 21)
}

pub(super) const PLANS: [&str; 4] = ["starter", "team", "business", "enterprise"];
pub(super) const ROLES: [&str; 4] = ["admin", "user", "champion", "economic_buyer"];
pub(super) const REGIONS: [&str; 3] = ["EMEA", "AMER", "APAC"];

/// Cumulative frequency per million of each of [`EVENTS`], in its order: page views
/// dominate, rare events are rare.
pub(super) const EVENT_MIX: [u64; 10] =
    [570_000, 690_000, 890_000, 925_000, 937_000, 957_000, 992_000, 994_000, 997_000, 1_000_000];

/// One generated account.
#[derive(Debug, Clone)]
pub(super) struct AccountSpec {
    pub(super) plan: &'static str,
    pub(super) seats: u32,
    pub(super) arr: u64,
    pub(super) start: Day,
    pub(super) renewal: Day,
    pub(super) region: &'static str,
    pub(super) pool: &'static str,
    pub(super) nps: Option<u64>,
    /// Relative activity (heavy-tailed: a few accounts carry much of the load).
    pub(super) weight: f64,
    /// Its first contact's id; its contacts are `first_contact..first_contact + contacts`.
    pub(super) first_contact: u64,
    pub(super) contacts: u32,
    /// The day it goes silent, if it does.
    pub(super) stops: Option<Day>,
    /// Whether its usage collapses in the last week.
    pub(super) drops: bool,
}

/// One generated event: epoch second, account index, contact id, index into [`EVENTS`].
#[derive(Debug, Clone, Copy)]
pub(super) struct RawEvent {
    pub(super) ts: i64,
    pub(super) account: u32,
    pub(super) contact: u64,
    pub(super) event: u8,
}

/// Where a workload's events come from.
enum Events {
    /// This module's generator: `per_day[k]` events drawn over the day's active accounts.
    Generated,
    /// Workload W1 (`cairn_sim::w1`), its events regrouped by the workspace's days, with
    /// the index into [`EVENTS`] of each of its event names.
    W1(Arc<W1>, [u8; W1_EVENTS.len()]),
}

/// The deterministic workload: accounts, contacts and a per-day event plan.
pub(crate) struct Workload {
    events: Events,
    pub(super) tz: TimeZone,
    /// The first day with events; the last is `end_day - 1`.
    pub(super) first_day: Day,
    pub(super) end_day: Day,
    pub(super) accounts: Vec<AccountSpec>,
    /// Role (index into [`ROLES`]) of contact `id - 1`.
    pub(super) roles: Vec<u8>,
    /// Events on each day.
    pub(super) per_day: Vec<u64>,
}

pub(super) fn unit(rng: &mut Rng) -> f64 {
    (rng.below(1 << 30) as f64 + 0.5) / f64::from(1u32 << 30)
}

impl Workload {
    pub(super) fn new(args: &EngineArgs, tz: TimeZone) -> Result<Workload> {
        if args.accounts == 0 || args.days == 0 {
            bail!("--accounts and --days must be at least 1");
        }
        if args.contacts < args.accounts {
            bail!(
                "--contacts ({}) must be at least --accounts ({}): every account has a contact",
                args.contacts,
                args.accounts
            );
        }
        let end_day = day_of_date(end_date());
        let days = args.days as Day;
        let first_day = end_day - days;
        let mut rng = Rng::new(0xE6_1BE5);
        let mut accounts = Vec::with_capacity(args.accounts);
        for _ in 0..args.accounts {
            let plan = PLANS[rng.below(4) as usize];
            let (seats, lo, hi, pool) = match plan {
                "starter" => (5, 2_000, 15_000, "digital"),
                "team" => (20, 5_000, 30_000, "digital"),
                "business" => (50, 20_000, 90_000, "pooled"),
                _ => (200, 60_000, 250_000, "named"),
            };
            let arr = lo + rng.below(hi - lo);
            // Start dates from 400 days before the first event day to its last day: about
            // a third start while the events run (their onboarding milestones are
            // achieved or missed in the replay), the rest earlier.
            let start = end_day - 1 - rng.below(days as u64 + 400) as Day;
            let mut renewal = start + 365;
            while renewal < end_day {
                renewal += 365;
            }
            let region = REGIONS[rng.below(3) as usize];
            let nps = (rng.below(10) < 7).then(|| rng.below(11));
            let weight = (1.0 - unit(&mut rng)).powf(-0.7).min(300.0);
            let stops = (rng.below(100) < 8).then(|| first_day + rng.below(days as u64) as Day);
            let drops = rng.below(100) < 10;
            accounts.push(AccountSpec {
                plan,
                seats,
                arr,
                start,
                renewal,
                region,
                pool,
                nps,
                weight,
                first_contact: 0,
                contacts: 0,
                stops,
                drops,
            });
        }
        // Contacts in proportion to the square root of activity, at least two an account
        // (one when there are fewer than two per account), adding up to --contacts.
        let min = if args.contacts >= 2 * args.accounts { 2 } else { 1 };
        let root: Vec<f64> = accounts.iter().map(|a| a.weight.sqrt()).collect();
        let total: f64 = root.iter().sum();
        let mut counts: Vec<u64> = root.iter().map(|r| ((args.contacts as f64 * r / total) as u64).max(min)).collect();
        let mut sum: u64 = counts.iter().sum();
        let target = args.contacts as u64;
        let mut i = 0;
        while sum != target {
            let k = i % counts.len();
            if sum < target {
                counts[k] += 1;
                sum += 1;
            } else if counts[k] > min {
                counts[k] -= 1;
                sum -= 1;
            }
            i += 1;
        }
        let mut next = 1u64;
        let mut roles = Vec::with_capacity(args.contacts);
        let mut role_rng = Rng::new(0x20_1E5);
        for (a, n) in accounts.iter_mut().zip(&counts) {
            a.first_contact = next;
            a.contacts = *n as u32;
            next += n;
            for j in 0..*n {
                roles.push(if j == 0 { 0 } else { role_rng.below(4) as u8 });
            }
        }
        // Events per day: weekends are quieter.
        let day_weight: Vec<f64> = (first_day..end_day)
            .map(|d| if matches!(date_of_day(d).weekday(), Weekday::Saturday | Weekday::Sunday) { 0.35 } else { 1.0 })
            .collect();
        let total_weight: f64 = day_weight.iter().sum();
        let mut per_day = Vec::with_capacity(day_weight.len());
        let (mut cum, mut given) = (0.0, 0u64);
        for w in &day_weight {
            cum += w;
            let upto = ((args.events as f64 * cum / total_weight).round() as u64).min(args.events);
            per_day.push(upto - given);
            given = upto;
        }
        if let Some(last) = per_day.last_mut() {
            *last += args.events - given;
        }
        Ok(Workload { events: Events::Generated, tz, first_day, end_day, accounts, roles, per_day })
    }

    /// Workload W1 as the engine sees it: its accounts' traits and contacts' roles, its
    /// events by day of the workspace's time zone `tz`. Its days span one more day on
    /// each side than W1's (an event is at a working hour of its person's own time zone,
    /// which can be the day before or after in `tz`), and `per_day` counts what each holds.
    pub(super) fn from_w1(w1: Arc<W1>, tz: TimeZone) -> Result<Workload> {
        let mut names = [0u8; W1_EVENTS.len()];
        for (i, name) in W1_EVENTS.iter().enumerate() {
            let Some(at) = EVENTS.iter().position(|e| e == name) else {
                bail!("W1's event {name} is not one the engine benchmark knows");
            };
            names[i] = at as u8;
        }
        let first_day = day_of_date(w1.first_day()) - 1;
        let end_day = day_of_date(w1.first_day()) + w1.days() as Day + 1;
        let accounts = w1
            .accounts
            .iter()
            .map(|a| AccountSpec {
                plan: a.plan,
                seats: a.seats,
                arr: a.arr,
                start: day_of_date(a.start_date),
                renewal: day_of_date(a.renewal_date),
                region: a.region,
                pool: a.csm_pool,
                nps: a.nps_last.map(u64::from),
                weight: 0.0,
                first_contact: u64::from(a.first_contact) + 1,
                contacts: a.contacts,
                stops: None,
                drops: false,
            })
            .collect();
        let roles =
            w1.contacts.iter().map(|c| ROLES.iter().position(|r| *r == c.role.as_str()).unwrap_or(1) as u8).collect();
        let mut w =
            Workload { events: Events::W1(w1, names), tz, first_day, end_day, accounts, roles, per_day: Vec::new() };
        // Counting the events of each day: on every core, as each day's events depend on
        // its number alone.
        let days = (end_day - first_day) as usize;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let mut per_day = vec![0u64; days];
        std::thread::scope(|scope| {
            let w = &w;
            let parts: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        (t..days).step_by(threads).map(|k| (k, w.w1_day(k, &mut out))).collect::<Vec<_>>()
                    })
                })
                .collect();
            for p in parts {
                for (k, n) in p.join().unwrap_or_default() {
                    per_day[k] = n as u64;
                }
            }
        });
        w.per_day = per_day;
        Ok(w)
    }

    /// W1's events of day `k` (from `first_day`) in `tz`, sorted by time; their count.
    fn w1_day(&self, k: usize, out: &mut Vec<RawEvent>) -> usize {
        out.clear();
        let Events::W1(w1, names) = &self.events else { return 0 };
        let day = self.first_day + k as Day;
        let (from, to) = (start_of_day(day, &self.tz).as_second(), start_of_day(day + 1, &self.tz).as_second());
        // W1's days that can hold an event of `day`: the one before, itself, the one after.
        let w1_first = day_of_date(w1.first_day());
        let mut raw = Vec::new();
        for d in day - 1..=day + 1 {
            let Ok(i) = u32::try_from(d - w1_first) else { continue };
            w1.day_events(i, &mut raw);
            out.extend(raw.iter().filter(|e| from <= e.ts && e.ts < to).map(|e| RawEvent {
                ts: e.ts,
                account: e.account,
                contact: u64::from(e.contact) + 1,
                event: names.get(e.event as usize).copied().unwrap_or(0),
            }));
        }
        out.sort_by_key(|e| (e.ts, e.contact, e.event));
        out.len()
    }

    /// The last day, after the last event: what the end instant's SQL calls today.
    pub(super) fn end_date(&self) -> Date {
        date_of_day(self.end_day)
    }

    /// The end instant: the first moment of the end day, after the last event.
    pub(super) fn end(&self) -> Timestamp {
        start_of_day(self.end_day, &self.tz)
    }

    /// The events of day number `k` (from 0), sorted by time.
    pub(super) fn day_events(&self, k: usize, out: &mut Vec<RawEvent>) {
        out.clear();
        if let Events::W1(..) = self.events {
            self.w1_day(k, out);
            return;
        }
        let day = self.first_day + k as Day;
        let n = self.per_day.get(k).copied().unwrap_or(0);
        let from = start_of_day(day, &self.tz).as_second();
        let len = (start_of_day(day + 1, &self.tz).as_second() - from).max(1) as u64;
        // Who is active today, and how much: started, not gone silent, ramping up over
        // the first two weeks, collapsing in the last week if usage drops.
        let mut cumulative = Vec::with_capacity(self.accounts.len());
        let mut total = 0.0;
        for (i, a) in self.accounts.iter().enumerate() {
            if a.start > day || a.stops.is_some_and(|s| day >= s) {
                continue;
            }
            let ramp = (f64::from(day - a.start + 1) / 14.0).min(1.0);
            let drop = if a.drops && day >= self.end_day - 8 { 0.03 } else { 1.0 };
            total += a.weight * ramp * drop;
            cumulative.push((total, i as u32));
        }
        if cumulative.is_empty() {
            return;
        }
        let mut rng = Rng::new(0xDA7 ^ ((k as u64) << 20));
        for _ in 0..n {
            let x = unit(&mut rng) * total;
            let at = cumulative.partition_point(|(c, _)| *c < x).min(cumulative.len() - 1);
            let i = cumulative[at].1;
            let a = &self.accounts[i as usize];
            let u = unit(&mut rng);
            let j = ((f64::from(a.contacts) * u * u) as u64).min(u64::from(a.contacts) - 1);
            let r = rng.below(1_000_000);
            let event = EVENT_MIX.iter().position(|c| r < *c).unwrap_or(0) as u8;
            let ts = from + rng.below(len) as i64;
            out.push(RawEvent { ts, account: i, contact: a.first_contact + j, event });
        }
        out.sort_by_key(|e| e.ts);
    }

    pub(super) fn account_traits(&self, a: &AccountSpec) -> BTreeMap<String, Value> {
        let mut t = BTreeMap::from([
            ("plan".to_string(), Value::String(a.plan.into())),
            ("seats".to_string(), Value::Number(f64::from(a.seats))),
            ("arr".to_string(), Value::Number(a.arr as f64)),
            ("start_date".to_string(), Value::Date(date_of_day(a.start))),
            ("renewal_date".to_string(), Value::Date(date_of_day(a.renewal))),
            ("region".to_string(), Value::String(a.region.into())),
            ("csm_pool".to_string(), Value::String(a.pool.into())),
        ]);
        if let Some(n) = a.nps {
            t.insert("nps_last".to_string(), Value::Number(n as f64));
        }
        t
    }
}

/// Writes the peers' files: events (ts, account_id, contact_id, event), accounts and
/// contacts. Returns the events file's size.
pub(super) fn write_csv(w: &Workload, dir: &Path, total: u64) -> Result<u64> {
    let path = dir.join("events.csv");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    writeln!(out, "ts,account_id,contact_id,event")?;
    let mut bar = CountBar::new(total, "writing the peers' CSV");
    let mut day = Vec::new();
    for k in 0..w.per_day.len() {
        w.day_events(k, &mut day);
        for e in &day {
            let ts = Timestamp::from_second(e.ts)?;
            writeln!(out, "{ts},{},{},{}", e.account + 1, e.contact, EVENTS[e.event as usize])?;
        }
        bar.inc(day.len() as u64);
    }
    out.flush()?;
    bar.finish();
    let mut out = BufWriter::new(std::fs::File::create(dir.join("accounts.csv"))?);
    writeln!(out, "account_id,plan,seats,arr,start_date,renewal_date,region,csm_pool,nps_last")?;
    for (i, a) in w.accounts.iter().enumerate() {
        let nps = a.nps.map(|n| n.to_string()).unwrap_or_default();
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{nps}",
            i + 1,
            a.plan,
            a.seats,
            a.arr,
            date_of_day(a.start),
            date_of_day(a.renewal),
            a.region,
            a.pool
        )?;
    }
    out.flush()?;
    let mut out = BufWriter::new(std::fs::File::create(dir.join("contacts.csv"))?);
    writeln!(out, "contact_id,account_id,role")?;
    for (i, a) in w.accounts.iter().enumerate() {
        for c in a.first_contact..a.first_contact + u64::from(a.contacts) {
            let role = ROLES[w.roles.get(c as usize - 1).copied().unwrap_or(1) as usize];
            writeln!(out, "{c},{},{role}", i + 1)?;
        }
    }
    out.flush()?;
    Ok(std::fs::metadata(&path)?.len())
}
