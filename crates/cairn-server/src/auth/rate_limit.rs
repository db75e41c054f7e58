//! Sign-in attempts, limited per address and per network address.
//!
//! Kept in memory on each node, not in the database: a check costs no round trip, and an
//! attacker spreading attempts over N nodes gets N times the budget, which at a handful
//! of failures per quarter hour stays far from guessing a password. A restart forgets the
//! counts. Memory is bounded: at most [`MAX_TRACKED`] addresses per map; at the bound,
//! windows that ended are dropped, then the oldest.
//!
//! Only failures count, in fixed windows of [`WINDOW`]: [`PER_EMAIL`] failures for one
//! address, [`PER_NETWORK`] from one IPv4 address or IPv6 /64. A success clears the
//! address's count (not the network's). Time comes from the caller.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// The window failures are counted in.
pub const WINDOW: SignedDuration = SignedDuration::from_mins(15);
/// Failures allowed per address and window.
pub const PER_EMAIL: u32 = 5;
/// Failures allowed per network address and window.
pub const PER_NETWORK: u32 = 20;
/// Addresses (and networks) tracked at most.
pub const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Timestamp,
    failures: u32,
}

struct Counts<K> {
    windows: HashMap<K, Window>,
}

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Counts { windows: HashMap::new() }
    }
}

impl<K: Hash + Eq + Clone> Counts<K> {
    /// When the key may try again, if it is over `max` now.
    fn blocked_until(&self, key: &K, max: u32, now: Timestamp) -> Option<Timestamp> {
        let w = self.windows.get(key)?;
        let ends = w.started + WINDOW;
        (w.failures >= max && now < ends).then_some(ends)
    }

    fn fail(&mut self, key: K, now: Timestamp) {
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_TRACKED {
            self.windows.retain(|_, w| now < w.started + WINDOW);
            if self.windows.len() >= MAX_TRACKED
                && let Some(oldest) = self.windows.iter().min_by_key(|(_, w)| w.started).map(|(k, _)| k.clone())
            {
                self.windows.remove(&oldest);
            }
        }
        let w = self.windows.entry(key).or_insert(Window { started: now, failures: 0 });
        if now >= w.started + WINDOW {
            *w = Window { started: now, failures: 0 };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

/// Why an attempt is refused before the password is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures for this address.
    Email {
        /// When it may try again.
        until: Timestamp,
    },
    /// Too many failures from this network address.
    Network {
        /// When it may try again.
        until: Timestamp,
    },
}

impl Refusal {
    /// What the person at the sign-in form is told.
    pub fn message(self, now: Timestamp) -> String {
        let (what, until) = match self {
            Refusal::Email { until } => ("for this address", until),
            Refusal::Network { until } => ("from your network", until),
        };
        let mins = (until.duration_since(now).as_secs() + 59) / 60;
        format!(
            "Too many failed sign-ins {what}. Try again in {mins} minute{}, or ask an admin to check your account.",
            if mins == 1 { "" } else { "s" }
        )
    }
}

/// The sign-in attempt counts of one node.
#[derive(Default)]
pub struct SignInLimiter {
    by_email: Mutex<Counts<String>>,
    by_network: Mutex<Counts<IpAddr>>,
}

/// The network an address belongs to for counting: itself (IPv4) or its /64 (IPv6, where
/// one client holds a whole /64).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

impl SignInLimiter {
    /// Whether an attempt for `email` (lowercased by the caller) from `ip` may be tried now.
    pub fn check(&self, email: &str, ip: Option<IpAddr>, now: Timestamp) -> Result<(), Refusal> {
        let by_email = self.by_email.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = by_email.blocked_until(&email.to_string(), PER_EMAIL, now) {
            return Err(Refusal::Email { until });
        }
        drop(by_email);
        if let Some(ip) = ip {
            let by_network = self.by_network.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(until) = by_network.blocked_until(&network(ip), PER_NETWORK, now) {
                return Err(Refusal::Network { until });
            }
        }
        Ok(())
    }

    /// Counts a failed attempt.
    pub fn failed(&self, email: &str, ip: Option<IpAddr>, now: Timestamp) {
        self.by_email.lock().unwrap_or_else(|e| e.into_inner()).fail(email.to_string(), now);
        if let Some(ip) = ip {
            self.by_network.lock().unwrap_or_else(|e| e.into_inner()).fail(network(ip), now);
        }
    }

    /// Clears the address's failures after a successful sign-in.
    pub fn succeeded(&self, email: &str) {
        self.by_email.lock().unwrap_or_else(|e| e.into_inner()).windows.remove(email);
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let e = self.by_email.lock().unwrap().windows.len();
        let n = self.by_network.lock().unwrap().windows.len();
        (e, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(mins: i64) -> Timestamp {
        "2026-03-01T09:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(mins)
    }

    #[test]
    fn an_address_is_refused_after_five_failures_until_the_window_ends() {
        let l = SignInLimiter::default();
        let ip: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        for i in 0..PER_EMAIL {
            assert_eq!(l.check("ana@x.io", ip, t(i64::from(i))), Ok(()));
            l.failed("ana@x.io", ip, t(i64::from(i)));
        }
        assert_eq!(l.check("ana@x.io", ip, t(5)), Err(Refusal::Email { until: t(15) }));
        assert_eq!(
            Refusal::Email { until: t(15) }.message(t(5)),
            "Too many failed sign-ins for this address. Try again in 10 minutes, or ask an admin to check your account."
        );
        // Another address from the same network is still let through.
        assert_eq!(l.check("bob@x.io", ip, t(5)), Ok(()));
        // The window ends; the count starts again.
        assert_eq!(l.check("ana@x.io", ip, t(15)), Ok(()));
        l.failed("ana@x.io", ip, t(15));
        assert_eq!(l.check("ana@x.io", ip, t(15)), Ok(()));
    }

    #[test]
    fn a_success_clears_the_address_but_not_the_network() {
        let l = SignInLimiter::default();
        let ip: Option<IpAddr> = Some("2001:db8::1".parse().unwrap());
        for i in 0..PER_EMAIL - 1 {
            l.failed("ana@x.io", ip, t(i64::from(i)));
        }
        l.succeeded("ana@x.io");
        l.failed("ana@x.io", ip, t(5));
        assert_eq!(l.check("ana@x.io", ip, t(5)), Ok(()));
        // A network is refused after twenty failures over any addresses, IPv6 by /64.
        for i in 0..PER_NETWORK {
            let other: IpAddr = format!("2001:db8::{:x}", i + 2).parse().unwrap();
            l.failed(&format!("user{i}@x.io"), Some(other), t(6));
        }
        assert!(matches!(l.check("new@x.io", ip, t(6)), Err(Refusal::Network { .. })));
        assert_eq!(l.check("new@x.io", Some("2001:db9::1".parse().unwrap()), t(6)), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let l = SignInLimiter::default();
        for i in 0..MAX_TRACKED + 50 {
            l.failed(&format!("u{i}@x.io"), Some(IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8])), t(0));
        }
        let (e, n) = l.tracked();
        assert!(e <= MAX_TRACKED && n <= MAX_TRACKED, "{e} {n}");
        // The newest address is still counted.
        assert!(l.tracked().0 > 0);
    }
}
