//! The passing of days: day ticks that look only at what the day can change, the days on
//! which each account and contact can next change (their wakes), the quiet stretches
//! crossed in one step, health snapshots kept as runs (see the engine's module doc).
//!
//! `advance_to(t)` handles each day boundary and each milestone deadline at its own
//! instant. Of an account woken by a day tick, only what the day can change is re-evaluated
//! (the `DayPlan`, worked out once): account nodes that read the clock
//! (`Rule::reads_clock`) or a sliding window (`30d`), every milestone (deadlines), and what
//! reads them; of a contact, the segments reading the clock or the account's sliding
//! windows, those whose own sliding windows lose a day with data
//! (`AggregatePlan::changes_overnight`), those reading the account when something of it
//! changed, and what reads a segment that changed (`Look::Since`) — and everything when
//! events dated on the new day were already recorded. When no contact segment reads the
//! clock other than through day counts compared with values (`days_since(last_seen()) >
//! 30`: `Rule::clock_predictable`) nor an account's sliding window (`DayPlan::by_wake`), a
//! day boundary does not look at every contact: each evaluation of a contact files it under
//! the next day on which the days alone can change one of its segments
//! (`Rule::next_clock_change`: a day count reaching a bound;
//! `AggregatePlan::next_change_overnight`: a day with data leaving a window), and the day
//! tick takes the contacts filed under it (`Shard::file_wake`, `take_woken`; a contact is
//! filed again only when its day comes earlier, and a tick that finds it moved later files
//! it there), plus all contacts of an account that changed.

use super::*;

impl Shard {
    /// Whether moving the clock to `to` crosses a day boundary or a deadline.
    pub(super) fn due(&self, to: Timestamp) -> bool {
        self.deadlines.first().is_some_and(|(t, _)| *t <= to) || self.next_day <= to
    }

    /// Moves the clock to `to`, handling every day boundary on which something can change
    /// (windows slide, day counts move: what the day can change is re-evaluated at the
    /// start of the new day) and every milestone deadline on the way, each at its own
    /// instant. The days on which nothing can change are crossed in one step (see
    /// [`Shard::skip_quiet_days`]).
    pub(super) fn advance_to(&mut self, sh: &Shared, to: Timestamp, pos: u32, o: &mut Output) {
        let tz = sh.ws.time_zone();
        loop {
            self.skip_quiet_days(sh, to);
            let next_day = self.next_day;
            let next_deadline = self.deadlines.first().map(|(t, _)| *t);
            let next = match next_deadline {
                Some(d) if d < next_day => d,
                _ => next_day,
            };
            if next > to {
                break;
            }
            if next == next_day {
                let key = |group: u8, id: u64| (pos, 0, next_day, 0, group, id);
                self.now = next_day;
                self.today += 1;
                self.today_start = next_day;
                self.next_day = start_of_day(self.today + 1, tz);
                self.work.ticks += 1;
                let today = self.today;
                let day_nodes = &sh.day_plan.account_nodes;
                if self.latest_event_day >= today {
                    // Events dated today are already recorded: every window can change.
                    // (Every contact is evaluated, and filed again: a filing under today
                    // counts as none; every account too.)
                    self.wakes.remove(&today);
                    self.take_due_accounts(today);
                    let ids = sorted(self.accounts.keys().copied());
                    for id in ids {
                        o.mark(key(0, id));
                        self.evaluate_account(sh, id, &sh.account_nodes, None, next_day, &mut o.transitions);
                        self.file_account_wake(sh, id, next_day);
                        self.work.accounts += 1;
                        self.evaluate_contacts_of(sh, id, next_day, Look::Everything, None, &mut o.transitions);
                    }
                    for c in self.orphans() {
                        o.mark(key(1, c));
                        self.evaluate_contact(sh, c, next_day, &mut o.transitions);
                    }
                } else if sh.day_plan.by_wake {
                    // Only what the day can change: of the accounts, those it can change
                    // (the others would give the answers they gave), and of the contacts
                    // those filed under today, unless what they read of their account
                    // changed.
                    let due = self.take_due_accounts(today);
                    let (mut woken, mut orphans) = self.take_woken(today);
                    let mut ids: Vec<u64> = due
                        .iter()
                        .copied()
                        .chain(woken.keys().copied().filter(|a| self.accounts.contains_key(a)))
                        .collect();
                    ids.sort_unstable();
                    ids.dedup();
                    for id in ids {
                        o.mark(key(0, id));
                        let changed = due.binary_search(&id).is_ok()
                            && self.evaluate_due_account(sh, id, day_nodes, next_day, &mut o.transitions);
                        let look = Look::Since { day: Some(today), account: changed };
                        let contacts = woken.remove(&id);
                        if changed && sh.contacts_read_account {
                            self.evaluate_contacts_of(sh, id, next_day, look, None, &mut o.transitions);
                        } else if let Some(mut contacts) = contacts {
                            // The order `evaluate_contacts_of` takes.
                            contacts.sort_unstable();
                            for c in contacts {
                                self.evaluate_contact_segments(sh, c, next_day, look, &mut o.transitions);
                            }
                        }
                    }
                    orphans.sort_unstable();
                    for c in orphans {
                        o.mark(key(1, c));
                        let look = Look::Since { day: Some(today), account: false };
                        self.evaluate_contact_segments(sh, c, next_day, look, &mut o.transitions);
                    }
                } else {
                    // Only what the day can change: everything else reads what it read
                    // yesterday and would give the same answers. Every contact is looked
                    // at (some contact segment reads the clock in a way no day can be
                    // told for).
                    let due = self.take_due_accounts(today);
                    let ids = sorted(self.accounts.keys().copied());
                    for id in ids {
                        o.mark(key(0, id));
                        let changed = due.binary_search(&id).is_ok()
                            && self.evaluate_due_account(sh, id, day_nodes, next_day, &mut o.transitions);
                        let look = if sh.contacts_read_instant {
                            Look::Everything
                        } else {
                            Look::Since { day: Some(today), account: changed }
                        };
                        self.evaluate_contacts_of(sh, id, next_day, look, None, &mut o.transitions);
                    }
                    for c in self.orphans() {
                        o.mark(key(1, c));
                        let look = Look::Since { day: Some(today), account: false };
                        self.evaluate_contact_segments(sh, c, next_day, look, &mut o.transitions);
                    }
                }
            }
            while let Some(&(t, account)) = self.deadlines.first() {
                if t > next {
                    break;
                }
                self.deadlines.pop_first();
                self.now = self.now.max(t);
                o.mark((pos, 0, t, 1, 0, account));
                self.evaluate_account(sh, account, &sh.account_nodes, None, t, &mut o.transitions);
                let look =
                    if sh.contacts_read_instant { Look::Everything } else { Look::Since { day: None, account: true } };
                self.evaluate_contacts_of(sh, account, t, look, None, &mut o.transitions);
            }
        }
        if to > self.now {
            self.now = to;
        }
    }

    /// Brings the raw values of the health measures that move with the days while their
    /// scores do not (`drifting`) to today, for whoever reads the state next: the
    /// health is scored again at the day's first instant, as a tick would have, and what
    /// the account was evaluated at is left as it was (nothing else of it can have
    /// changed). Called when the engine hands back control, so a replay pays for it once
    /// a batch, not once a day.
    pub(super) fn refresh_drifting(&mut self, sh: &Shared, out: &mut Vec<Transition>) {
        if !sh.account_nodes.contains(&Node::Health) {
            return;
        }
        let today = self.today;
        let stale: Vec<u64> = self.drifting.iter().filter(|(_, d)| **d < today).map(|(id, _)| *id).collect();
        let at = self.today_start;
        for id in stale {
            self.drifting.insert(id, today);
            let Some(a) = self.accounts.get(&id) else { continue };
            let kept = (a.evaluated_at, a.touched);
            self.evaluate_account(sh, id, &[Node::Health], None, at, out);
            if let Some(a) = self.accounts.get_mut(&id) {
                (a.evaluated_at, a.touched) = kept;
            }
        }
    }

    /// Evaluates what a new day can change of account `id` at `at` (the day's first
    /// instant) and files it under the next day that can change it; returns what
    /// [`Shard::evaluate_account`] returns.
    pub(super) fn evaluate_due_account(
        &mut self,
        sh: &Shared,
        id: u64,
        day_nodes: &[Node],
        at: Timestamp,
        out: &mut Vec<Transition>,
    ) -> bool {
        let changed = self.evaluate_account(sh, id, day_nodes, None, at, out);
        self.file_account_wake(sh, id, at);
        self.work.accounts += 1;
        changed
    }

    /// Crosses, in one step, the days before the next one on which a day tick can
    /// change something: the day an account or a contact is filed under, the day of the
    /// next deadline, the day of `to`. Nothing is crossed while an account changed since
    /// a tick last looked at it, while events dated after today are recorded (each such
    /// day re-evaluates everything), or when contacts are looked at every day
    /// (`DayPlan::by_wake` false). Skipped ticks would have re-evaluated what the days
    /// cannot change: the answers, and what is kept (health snapshots are runs, see
    /// `AccountState::snapshots`), are those of a tick each day.
    pub(super) fn skip_quiet_days(&mut self, sh: &Shared, to: Timestamp) {
        if !sh.day_plan.by_wake || self.latest_event_day > self.today || self.next_day > to {
            return;
        }
        let accounts = &self.accounts;
        self.touched.retain(|id| accounts.get(id).is_some_and(|a| a.touched));
        if !self.touched.is_empty() {
            return;
        }
        let mut target = sh.calendar_day(to).0;
        if let Some((&day, _)) = self.account_wakes.first_key_value() {
            target = target.min(day);
        }
        if let Some((&day, _)) = self.wakes.first_key_value() {
            target = target.min(day);
        }
        if let Some(&(t, _)) = self.deadlines.first() {
            target = target.min(sh.calendar_day(t).0);
        }
        // The tick of `target` runs; the days before it are crossed.
        let last_quiet = target.saturating_sub(1);
        if last_quiet > self.today {
            let tz = sh.ws.time_zone();
            self.today = last_quiet;
            self.today_start = start_of_day(last_quiet, tz);
            self.next_day = start_of_day(target, tz);
            self.now = self.now.max(self.today_start);
        }
    }

    /// The contacts without an account, in id order (a pass over every contact).
    pub(super) fn orphans(&self) -> Vec<u64> {
        sorted(self.contacts.iter().filter(|(_, c)| c.account.is_none()).map(|(id, _)| *id))
    }

    /// The accounts a day tick on `day` looks at, in id order: those whose `wake` it is,
    /// and those evaluated or created since a tick last looked at them.
    pub(super) fn take_due_accounts(&mut self, day: Day) -> Vec<u64> {
        let mut due: Vec<u64> = Vec::new();
        for id in self.account_wakes.remove(&day).unwrap_or_default() {
            if self.accounts.get(&id).is_some_and(|a| a.wake == Some(day)) {
                due.push(id);
            }
        }
        for id in std::mem::take(&mut self.touched) {
            if let Some(a) = self.accounts.get_mut(&id)
                && a.touched
            {
                a.touched = false;
                due.push(id);
            }
        }
        due.sort_unstable();
        due.dedup();
        due
    }

    /// After account `id` was looked at on a day tick at `at`: files it under the next
    /// day on which the days alone can change it (see [`Shard::account_wake`]).
    pub(super) fn file_account_wake(&mut self, sh: &Shared, id: u64, at: Timestamp) {
        let (wake, drifts) = self.account_wake(sh, id, at);
        if drifts {
            self.drifting.insert(id, self.today);
        } else {
            self.drifting.remove(&id);
        }
        let Some(a) = self.accounts.get_mut(&id) else { return };
        a.touched = false;
        if a.wake != wake {
            a.wake = wake;
            if let Some(w) = wake {
                self.account_wakes.entry(w).or_default().push(id);
            }
        }
    }

    /// The first day after the day of `at` on which the days alone (no event, no trait
    /// change) can change what the day nodes of account `id` give: a sliding window
    /// losing a day with data ([`AggregatePlan::next_change_overnight`]), a rule's clock
    /// read flipping a comparison ([`Rule::next_clock_change`]), a health measure's score
    /// moving on its curve (its value moving steadily with the days, [`Rule::day_trend`],
    /// reaches a point where the score bends; every day while it is between them); and
    /// whether a measure's raw value moves while its score does not (that value is
    /// brought to the day when the engine hands back control, see
    /// [`Shard::refresh_drifting`]: it holds no day up). A milestone's deadline is a step of the clock of its own. A day
    /// named may change nothing; none is later than the first change.
    pub(super) fn account_wake(&mut self, sh: &Shared, id: u64, at: Timestamp) -> (Option<Day>, bool) {
        let (today, today_date) = self.day_at(sh, at);
        let Some(state) = self.accounts.get(&id) else { return (None, false) };
        let env = AccountEnv {
            shared: sh,
            account: state,
            contact: None,
            contact_segments: None,
            now: at,
            today,
            today_date,
        };
        let mut wake: Option<Day> = None;
        let mut drifts = false;
        let mut on = |day: Day| wake = Some(wake.map_or(day, |w| w.min(day)));
        let in_days = |n: i64| today.saturating_add(Day::try_from(n).unwrap_or(Day::MAX));
        let windows = |rule: &Rule, on: &mut dyn FnMut(Day)| {
            for &a in rule.aggregates() {
                if sh.ws.aggregates().get(a).scope == Subject::Account
                    && let Some(day) = sh.plan.next_change_overnight(a, &state.aggregates, today)
                {
                    on(day);
                }
            }
        };
        for read in &sh.day_plan.account_reads {
            match *read {
                DayRead::Condition(at, milestone) => {
                    if milestone.is_some_and(|flat| state.milestones_done.contains(flat)) {
                        continue;
                    }
                    let Some(rule) = sh.rule_at(at) else { continue };
                    windows(rule, &mut on);
                    if let Some(n) = rule.next_clock_change(&env) {
                        on(in_days(n));
                    }
                }
                DayRead::Measure(k, p, q) => {
                    let Some(m) = sh.measure_at(k, p, q) else { continue };
                    windows(&m.value, &mut on);
                    if !m.value.reads_clock() {
                        continue;
                    }
                    match m.value.day_trend(&env) {
                        // It reads the clock in a way the days cannot be told for.
                        None => on(in_days(1)),
                        Some((Some(value), per_day)) if per_day != 0.0 => {
                            drifts = true;
                            if let Some(n) = next_score_change(&m.curve, value, per_day) {
                                on(in_days(n));
                            }
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        (wake, drifts)
    }

    /// The contacts filed under `day` (and still filed there) whose segments the day
    /// can change, unfiled: those of each account, and those without an account. One
    /// filed there whose day has moved later since is filed again under it.
    pub(super) fn take_woken(&mut self, day: Day) -> (FastMap<u64, Vec<u64>>, Vec<u64>) {
        let mut by_account: FastMap<u64, Vec<u64>> = FastMap::default();
        let mut orphans = Vec::new();
        let mut later = Vec::new();
        for c in self.wakes.remove(&day).unwrap_or_default() {
            let Some(state) = self.contacts.get_mut(&c) else { continue };
            if state.filed != Some(day) {
                continue;
            }
            state.filed = None;
            match state.wake {
                Some(w) if w <= day => {
                    state.wake = None;
                    match state.account {
                        Some(a) => by_account.entry(a).or_default().push(c),
                        None => orphans.push(c),
                    }
                }
                Some(w) => {
                    state.filed = Some(w);
                    later.push((w, c));
                }
                None => {}
            }
        }
        for (w, c) in later {
            self.wakes.entry(w).or_default().push(c);
        }
        (by_account, orphans)
    }

    /// With `DayPlan::by_wake`, after contact `id` was evaluated at `at` (on `today`):
    /// files it under the first day after the shard's day on which the days alone can
    /// change one of its segments, a day count reaching a bound or a day with data
    /// leaving a sliding window, as it is now. Whatever else could change them (its
    /// events, its traits, what they read of its account) evaluates it again, and files
    /// it again.
    pub(super) fn file_wake(&mut self, sh: &Shared, id: u64, at: Timestamp, today: Day, today_date: Date) {
        let Some(contact) = self.contacts.get(&id) else { return };
        let empty = AccountState::default();
        let account = contact.account.and_then(|a| self.accounts.get(&a)).unwrap_or(&empty);
        let env = AccountEnv {
            shared: sh,
            account,
            contact: Some(contact),
            contact_segments: None,
            now: at,
            today,
            today_date,
        };
        let mut wake: Option<Day> = None;
        let mut earliest = |day: Day| wake = Some(wake.map_or(day, |w| w.min(day)));
        for (k, &i) in sh.contact_segments.iter().enumerate() {
            let d = &sh.day_plan.contact[k];
            if d.clock
                && let Some(n) = sh.ws.segments()[i].rule.next_clock_change(&env)
            {
                earliest(today.saturating_add(Day::try_from(n).unwrap_or(Day::MAX)));
            }
            for w in &d.windows {
                if let Some(day) = sh.plan.next_change_overnight(*w, &contact.aggregates, today) {
                    earliest(day);
                }
            }
        }
        // A day already begun (a late event evaluated at its own instant) is looked at
        // on the next day tick.
        let shard_today = self.today;
        let wake = wake.map(|w| w.max(shard_today.saturating_add(1)));
        if let Some(c) = self.contacts.get_mut(&id) {
            c.wake = wake;
            // Filed again only when the day came earlier (or the filing was used up): a
            // day that moved later is found when the earlier one comes.
            if let Some(w) = wake
                && c.filed.is_none_or(|f| f <= shard_today || w < f)
            {
                c.filed = Some(w);
                self.wakes.entry(w).or_default().push(id);
            }
        }
    }
}

/// In how many days (at least 1) the score a curve gives a value moving from `value` by
/// `per_day` a day can next change: every day while the value is between a linear
/// curve's red and green points, else when it reaches one (or a band's limit); `None`
/// when it moves away from them all.
pub(super) fn next_score_change(curve: &Curve, value: f64, per_day: f64) -> Option<i64> {
    let reaching = |bound: f64| Rule::days_until_reaching(value, per_day, bound);
    match curve {
        Curve::Linear { red, green } => {
            let (low, high) = (red.min(*green), red.max(*green));
            if (low..=high).contains(&value) {
                return Some(1);
            }
            [reaching(low), reaching(high)].into_iter().flatten().min()
        }
        Curve::Bands(bands) => bands.iter().filter_map(|b| b.below).filter_map(reaching).min(),
    }
}

/// Records that the end-of-day health is `s` from day `today` on (see
/// `AccountState::snapshots`), forgetting the runs that end before the oldest day kept.
/// Returns whether today's end-of-day health as the runs tell it changed.
pub(super) fn record_snapshot(snapshots: &mut BTreeMap<Day, HealthSnapshot>, today: Day, s: HealthSnapshot) -> bool {
    // One entry per change: the same history gives the same runs however often it was
    // scored.
    let changed = if snapshots.range(..today).next_back().is_some_and(|(_, before)| *before == s) {
        snapshots.remove(&today).is_some()
    } else if snapshots.get(&today) == Some(&s) {
        false
    } else {
        snapshots.insert(today, s);
        true
    };
    let oldest = today.saturating_sub(SNAPSHOT_DAYS);
    while snapshots.keys().nth(1).is_some_and(|d| *d <= oldest) {
        snapshots.pop_first();
    }
    changed
}

/// The end-of-day health of day `day`, seen on day `today`: kept for the last
/// `SNAPSHOT_DAYS` days before today.
pub(super) fn snapshot_on(snapshots: &BTreeMap<Day, HealthSnapshot>, day: Day, today: Day) -> Option<&HealthSnapshot> {
    if day >= today || day < today.saturating_sub(SNAPSHOT_DAYS) {
        return None;
    }
    snapshots.range(..=day).next_back().map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f64) -> HealthSnapshot {
        HealthSnapshot { score: Some(score), pillars: BTreeMap::new() }
    }

    #[test]
    fn recording_says_whether_the_days_health_changed() {
        let mut runs = BTreeMap::new();
        assert!(record_snapshot(&mut runs, 10, s(20.0)), "a first run");
        assert!(!record_snapshot(&mut runs, 10, s(20.0)), "scored again, the same");
        assert!(!record_snapshot(&mut runs, 11, s(20.0)), "the next day, unchanged: no run");
        assert!(record_snapshot(&mut runs, 12, s(30.0)), "changed on day 12");
        assert!(record_snapshot(&mut runs, 12, s(40.0)), "again the same day: the day's health changed");
        // Back to day 10's value later on day 12: the day's entry goes, and day 12's
        // health (20) differs from what was reported for it (40).
        assert!(record_snapshot(&mut runs, 12, s(20.0)));
        assert_eq!(runs.keys().copied().collect::<Vec<_>>(), [10]);
        assert!(!record_snapshot(&mut runs, 12, s(20.0)));
    }
}
