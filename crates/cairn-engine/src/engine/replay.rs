//! Replaying batches of events on every shard at once, one thread each, and putting
//! the shards' transitions back in the order one shard would have given them (see
//! [`Key`]): between two steps of its clock a shard applies its events account by
//! account, each at the instant the clock had for it.
//!
//! `Engine::new` makes one shard per core, at most 8; `Engine::with_shards` a given number.
//! `upsert_contact` moves a contact's state when its account moves to another shard. In
//! `apply_all(events, until)` (what the runtime's backfill and catch-up call) each shard walks
//! the whole batch, moving its clock to every event's instant (day boundaries and its own
//! deadlines) and applying the events of its accounts. Between two steps of its clock (a day
//! boundary, a deadline) its accounts do not read one another, so it applies that stretch's
//! events account by account, each at the instant the clock had for it (an account's state
//! stays in cache across its events); an event whose contact is not known there as its
//! account's runs alone in its place. An event whose contact lives in another shard than its
//! account runs alone between two runs of the others. Each shard marks where each stretch of
//! its transitions falls in the order one shard would give (`Key`: event position, clock
//! step or event, instant, day boundary or deadline, account or orphan contact, id); `merge`
//! sorts the stretches by key, so the output is the same transitions in the same order for
//! any number of shards.

use super::*;

impl Engine {
    /// Replays `events` in order: for each, moves the clock to its instant and applies
    /// it. What [`Engine::advance_to`] and [`Engine::apply`] called in turn give, the same
    /// transitions in the same order, with the shards working at once.
    ///
    /// An event dated after `until` (the caller's now: a client's clock running ahead,
    /// or a date typed wrong, year 9000) is not applied yet: it is held, and applied when
    /// [`Engine::advance_to`] reaches its instant. Until then nothing reads it, so no
    /// day count runs backwards from a day that has not come (`days_since` of an event
    /// in the future would be negative) and no window holds it.
    pub fn apply_all(&mut self, events: &[EngineEvent], until: Timestamp) -> Vec<Transition> {
        if events.iter().any(|e| e.ts > until) {
            let (now, later): (Vec<EngineEvent>, Vec<EngineEvent>) =
                events.iter().cloned().partition(|e| e.ts <= until);
            for e in later {
                self.hold(e);
            }
            return self.apply_all(&now, until);
        }
        let mut routes = Vec::with_capacity(events.len());
        let mut memo: Option<(Timestamp, (Day, Date))> = None;
        for e in events {
            let day = match memo {
                Some((ts, day)) if ts == e.ts => day,
                _ => self.shared.calendar_day(e.ts),
            };
            memo = Some((e.ts, day));
            routes.push(self.route(e, day));
        }
        let mut out = Vec::new();
        let mut start = 0;
        while start < events.len() {
            // Events whose contact lives with their account run shard by shard; one
            // whose contact lives in another shard runs alone, between the others.
            let end =
                routes[start..].iter().position(|r| r.contact_elsewhere.is_some()).map_or(events.len(), |p| start + p);
            if end > start {
                self.replay_run(&events[start..end], &routes[start..end], until, &mut out);
            }
            if let (Some(e), Some(r)) = (events.get(end), routes.get(end)) {
                out.extend(self.advance_to(e.ts.min(until)));
                self.apply_routed(e, *r, &mut out);
            }
            start = end + 1;
        }
        self.refresh_drifting(&mut out);
        out
    }

    /// Replays a run of events that each touch one shard only.
    ///
    /// Between two steps of the clock (a day boundary, a deadline) the accounts of a shard
    /// do not read one another, so a shard applies the events of such a stretch account
    /// by account (each account's in their order, at their own instants): an account's
    /// state stays in cache across its events. The steps are found before the stretch is
    /// applied, which holds because an event schedules no deadline (an account it
    /// creates has no traits, so no anchor). An event whose contact is not (yet) known
    /// as one of its account's runs alone, in its place. Each event's transitions keep
    /// its position as their key, so `merge` puts them in the order one event at a time
    /// gives.
    pub(super) fn replay_run(
        &mut self,
        events: &[EngineEvent],
        routes: &[Route],
        until: Timestamp,
        out: &mut Vec<Transition>,
    ) {
        let sh = &self.shared;
        let run = |(k, shard): (usize, &mut Shard)| {
            let mut o = Output::default();
            // This shard's events since the last step of the clock: (account or contact,
            // position, the clock's instant after it).
            let mut group: Vec<(u64, usize, Timestamp)> = Vec::new();
            let mut now = shard.now;
            for (i, (e, r)) in events.iter().zip(routes).enumerate() {
                let to = e.ts.min(until);
                if shard.due(to) {
                    shard.apply_group(sh, &mut group, events, routes, &mut o);
                    shard.now = shard.now.max(now);
                    shard.advance_to(sh, to, i as u32, &mut o);
                }
                now = now.max(to);
                shard.latest_event_day = shard.latest_event_day.max(r.day);
                if r.shard == k {
                    match shard.group_key(e) {
                        Some(key) => group.push((key, i, now)),
                        None => {
                            shard.apply_group(sh, &mut group, events, routes, &mut o);
                            shard.apply_grouped(sh, i, now, events, routes, &mut o);
                        }
                    }
                }
            }
            shard.apply_group(sh, &mut group, events, routes, &mut o);
            shard.now = shard.now.max(now);
            o
        };
        let outputs: Vec<Output> = if self.shards.len() == 1 || events.len() < EVENTS_PER_THREADED_RUN {
            self.shards.iter_mut().enumerate().map(run).collect()
        } else {
            parallel(&mut self.shards, run)
        };
        merge(outputs, out);
    }

    /// Moves the clock to `to`, handling every day boundary on which something can change
    /// (windows slide, day counts move: what the day can change is re-evaluated at the
    /// start of the new day) and every milestone deadline on the way, each at its own
    /// instant, and applying the held events (see [`Engine::apply_all`]) whose instant
    /// comes. Its cost follows the data: a stretch of days on which nothing can change
    /// is crossed in one step.
    pub fn advance_to(&mut self, to: Timestamp) -> Vec<Transition> {
        let mut out = Vec::new();
        // Held events whose instant has come, each at its instant.
        let due = self.pending.partition_point(|e| e.ts <= to);
        if due > 0 {
            let events: Vec<EngineEvent> = self.pending.drain(..due).collect();
            out.extend(self.apply_all(&events, to));
        }
        let sh = &self.shared;
        let due = self.shards.iter().any(|s| s.due(to));
        let run = |(_, shard): (usize, &mut Shard)| {
            let mut o = Output::default();
            shard.advance_to(sh, to, 0, &mut o);
            o
        };
        let outputs: Vec<Output> = if self.shards.len() == 1 || !due {
            self.shards.iter_mut().enumerate().map(run).collect()
        } else {
            parallel(&mut self.shards, run)
        };
        merge(outputs, &mut out);
        self.refresh_drifting(&mut out);
        out
    }

    /// See [`Shard::refresh_drifting`].
    pub(super) fn refresh_drifting(&mut self, out: &mut Vec<Transition>) {
        for s in &mut self.shards {
            s.refresh_drifting(&self.shared, out);
        }
    }

    /// Re-evaluates everything for every account and contact at the current instant (a
    /// full recompute; what [`Engine::apply`] and [`Engine::advance_to`] keep current
    /// incrementally).
    pub fn evaluate_all(&mut self) -> Vec<Transition> {
        let sh = &self.shared;
        let outputs = self
            .shards
            .iter_mut()
            .map(|shard| {
                let mut o = Output::default();
                shard.evaluate_all(sh, &mut o);
                o
            })
            .collect();
        let mut out = Vec::new();
        merge(outputs, &mut out);
        out
    }
}

impl Shard {
    /// What an event of a replayed run is grouped by (see `Engine::replay_run`): the
    /// account whose state it reads and changes (its own, or its contact's when it has
    /// none), or its contact when neither has one; `None` when it must run alone (its
    /// contact is not known here, or is another account's). Two groups that share a key
    /// by chance (an account's id is a contact's) merely run together.
    pub(super) fn group_key(&self, e: &EngineEvent) -> Option<u64> {
        match (e.account, e.contact) {
            (Some(a), Some(c)) => self.contacts.get(&c).is_some_and(|x| x.account == Some(a)).then_some(a),
            (Some(a), None) => Some(a),
            (None, Some(c)) => self.contacts.get(&c).map(|x| x.account.unwrap_or(c)),
            (None, None) => None,
        }
    }

    /// Applies the grouped events, account by account, each at the instant the clock had
    /// when it came, and empties the group.
    pub(super) fn apply_group(
        &mut self,
        sh: &Shared,
        group: &mut Vec<(u64, usize, Timestamp)>,
        events: &[EngineEvent],
        routes: &[Route],
        o: &mut Output,
    ) {
        group.sort_unstable_by_key(|(key, i, _)| (*key, *i));
        for &(_, i, now) in group.iter() {
            self.apply_grouped(sh, i, now, events, routes, o);
        }
        group.clear();
    }

    /// Applies event `i` of a replayed run with the clock at `now`.
    pub(super) fn apply_grouped(
        &mut self,
        sh: &Shared,
        i: usize,
        now: Timestamp,
        events: &[EngineEvent],
        routes: &[Route],
        o: &mut Output,
    ) {
        let (Some(e), Some(r)) = (events.get(i), routes.get(i)) else { return };
        self.now = now;
        o.mark((i as u32, 1, Timestamp::MIN, 0, 0, 0));
        self.apply(sh, e, (r.day, r.date), true, &mut o.transitions);
    }
}

/// Runs `work` on every shard, one thread each (the first on the calling thread), and
/// returns their outputs in shard order.
pub(super) fn parallel<F>(shards: &mut [Shard], work: F) -> Vec<Output>
where
    F: Fn((usize, &mut Shard)) -> Output + Sync,
{
    let work = &work;
    std::thread::scope(|scope| {
        let mut iter = shards.iter_mut().enumerate();
        let first = iter.next();
        let handles: Vec<_> = iter.map(|s| scope.spawn(move || work(s))).collect();
        let mut outputs = Vec::with_capacity(handles.len() + 1);
        outputs.extend(first.map(work));
        for h in handles {
            // A panic on a shard's thread is a bug in the engine: raise it here.
            outputs.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        outputs
    })
}

/// Puts the shards' transitions in the order one shard would have given: by key,
/// stretches with equal keys (only ever from one shard) in the order they came.
pub(super) fn merge(outputs: Vec<Output>, out: &mut Vec<Transition>) {
    let busy = outputs.iter().filter(|o| !o.transitions.is_empty()).count();
    if busy <= 1 && outputs.iter().all(|o| o.marks.windows(2).all(|w| w[0].0 <= w[1].0)) {
        // One shard's stretches in key order.
        for o in outputs {
            out.extend(o.transitions);
        }
        return;
    }
    let mut stretches: Vec<(Key, usize, usize, usize)> = Vec::new();
    let mut sources: Vec<Vec<Option<Transition>>> = Vec::with_capacity(outputs.len());
    for (k, o) in outputs.into_iter().enumerate() {
        let len = o.transitions.len();
        for (j, (key, start)) in o.marks.iter().enumerate() {
            let end = o.marks.get(j + 1).map_or(len, |(_, s)| *s);
            if end > *start {
                stretches.push((*key, k, *start, end));
            }
        }
        sources.push(o.transitions.into_iter().map(Some).collect());
    }
    stretches.sort_by_key(|(key, ..)| *key);
    for (_, k, start, end) in stretches {
        if let Some(source) = sources.get_mut(k) {
            out.extend(source[start..end].iter_mut().filter_map(Option::take));
        }
    }
}
