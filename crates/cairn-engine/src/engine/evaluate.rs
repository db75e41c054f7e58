//! Evaluating one account or contact: recording an event in its aggregates, the
//! definitions whose reads moved (segments, milestones with their deadlines, the
//! journey stage, health), and the transitions that come out.
//!
//! `apply(event)` re-evaluates only the definitions whose reads the event moved. Recording it
//! (`AggregatePlan::record`) says what it changed per tracker (`Changes`: a count or sum grew,
//! and whether on a day new to it; a contact's or a listed event's last day moved, and from
//! which day; a first or last time moved, and whether to another day), and
//! `AggregatePlan::moved` tells whether that can have moved one aggregate on the event's day:
//! a count whenever it counts the event; users, events and active days only when one is new
//! to the window; a first or last time only by its day when every rule reading it does so
//! through a day count. Each event plan (per event name, worked out once) lists the account
//! nodes reading an aggregate the event can touch, in evaluation order, with what each reads
//! directly (`Reads`); a node is evaluated when one of its aggregates moved, a node it reads
//! changed on the way, or it reads the instant. Health scores again only the measures whose
//! reads moved (the others keep their raw value under the same model), and the event's own
//! contact evaluates only the segments whose reads moved (`Look::Event`), and works out its
//! next day (below) only when the event moved which days its series hold data. A late event
//! (evaluated on a later day than its own) evaluates everything it can touch. An event
//! re-evaluates, of the other contacts of its account, only the segments that read the
//! account, and only when something of the account they read changed. Health is scored again
//! only when the model or a measure's raw value changed (then in place, by `health::rescore`,
//! without new strings). Stages move forward only. Transitions produced while
//! `set_backfill(true)` carry `backfill: true`.

use super::*;

impl Shard {
    /// An account's state, created empty if new.
    pub(super) fn account_mut(&mut self, sh: &Shared, id: u64) -> &mut AccountState {
        let plan = &sh.plan;
        let (today, touched) = (self.today, &mut self.touched);
        self.accounts.entry(id).or_insert_with(|| {
            // The next day tick looks at it.
            touched.push(id);
            AccountState {
                aggregates: plan.empty_state(Subject::Account),
                since: today,
                touched: true,
                ..Default::default()
            }
        })
    }

    /// Creates or replaces an account's traits and re-evaluates what reads them.
    pub(super) fn upsert_account(&mut self, sh: &Shared, id: u64, traits: BTreeMap<String, Value>) -> Vec<Transition> {
        let anchor_trait = sh.ws.journey().map(|j| j.anchor.clone());
        let tz = sh.ws.time_zone().clone();
        let state = self.account_mut(sh, id);
        let changed: BTreeSet<String> = traits
            .keys()
            .chain(state.traits.keys())
            .filter(|k| traits.get(*k) != state.traits.get(*k))
            .cloned()
            .collect();
        let first = !state.whole;
        state.whole = true;
        state.traits = traits;
        state.anchor = anchor_trait.as_ref().and_then(|t| anchor_day(state.traits.get(t), &tz));
        self.schedule_deadlines(sh, id);
        let nodes: Vec<Node> = if first {
            sh.account_nodes.clone()
        } else {
            sh.nodes_reading(changed.iter().flat_map(|t| sh.readers_of_trait.get(t).into_iter().flatten()))
        };
        let mut out = Vec::new();
        let at = self.now;
        self.evaluate_account(sh, id, &nodes, None, at, &mut out);
        if first || (!nodes.is_empty() && sh.contacts_read_account) {
            self.evaluate_contacts_of(sh, id, at, Look::Everything, None, &mut out);
        }
        out
    }

    /// Creates or replaces a contact (its account link and traits) and evaluates its
    /// segments.
    pub(super) fn upsert_contact(
        &mut self,
        sh: &Shared,
        id: u64,
        account: Option<u64>,
        traits: BTreeMap<String, Value>,
    ) -> Vec<Transition> {
        let previous = self.contacts.get(&id).and_then(|c| c.account);
        if previous != account {
            if let Some(p) = previous
                && let Some(a) = self.accounts.get_mut(&p)
            {
                a.contacts.remove(&id);
            }
            if let Some(a) = account {
                self.account_mut(sh, a).contacts.insert(id);
            }
        }
        if let Some(c) = self.contacts.get(&id)
            && c.account == account
            && c.traits == traits
            && c.evaluated
        {
            return Vec::new();
        }
        let empty = sh.plan.empty_state(Subject::Contact);
        let c = self.contacts.entry(id).or_insert_with(|| ContactState { aggregates: empty, ..Default::default() });
        c.account = account;
        c.traits = traits;
        c.evaluated = true;
        let mut out = Vec::new();
        let at = self.now;
        self.evaluate_contact(sh, id, at, &mut out);
        out
    }

    /// Applies one event at the shard's current instant: its contact's aggregates (when
    /// `contact_here`: the contact lives in this shard), its account's, and what reads
    /// them. Returns the instant at which the contact, living in another shard, must be
    /// evaluated, if it must.
    pub(super) fn apply(
        &mut self,
        sh: &Shared,
        event: &EngineEvent,
        (day, date): (Day, Date),
        contact_here: bool,
        out: &mut Vec<Transition>,
    ) -> Option<Timestamp> {
        // Evaluations at the event's own instant need not convert it again.
        self.day_memo = (event.ts, day, date);
        let facts =
            EventFacts { name: &event.name, ts: event.ts, day, contact: event.contact, numbers: &event.numbers };
        self.latest_event_day = self.latest_event_day.max(day);
        // Whether the contact is new here (a contact seen before was evaluated then).
        let new_contact = contact_here && event.contact.is_some_and(|c| !self.contacts.contains_key(&c));
        if contact_here && let Some(c) = event.contact {
            self.record(sh, c, &facts);
        }
        // A contact seen before, whose aggregates this event was just recorded in, needs a
        // look only at what that changed.
        let contact_look = if contact_here && !new_contact { Look::Event } else { Look::Everything };
        let Some(a) = event.account else {
            if let Some(c) = event.contact {
                self.evaluate_contact_segments(sh, c, self.at_for(event.ts, None), contact_look, out);
            }
            return None;
        };
        // Met here for the first time, or only as a placeholder so far (a contact's link):
        // evaluated whole first.
        let new_account = !self.accounts.get(&a).is_some_and(|s| s.whole);
        if new_account {
            out.extend(self.upsert_account(sh, a, BTreeMap::new()));
        }
        let mut changes = std::mem::take(&mut self.account_changes);
        if let Some(state) = self.accounts.get_mut(&a) {
            sh.plan.record(Subject::Account, &mut state.aggregates, &facts, &mut changes);
        }
        let plans = &sh.event_plans;
        let plan = plans.by_name.get(event.name.as_str()).unwrap_or(&plans.other);
        let contacts_read_changed = plan.contacts_read_changed;
        let at = self.at_for(event.ts, Some(a));
        let account_changed = self.evaluate_account(sh, a, &plan.nodes, Some((&plan.reads, &changes)), at, out);
        self.account_changes = changes;
        // Another contact of the account reads only its own state and the account's:
        // unless what it reads of the account changed (or moves within the day), its
        // segments stay as they are, and only the event's contact needs a look.
        // Of the others, only the segments reading the account can have moved.
        let own = event.contact.filter(|c| contact_here && self.contacts.get(c).is_some_and(|x| x.account == Some(a)));
        let all_contacts = sh.contacts_read_account
            && (new_account || sh.contacts_read_instant || contacts_read_changed || account_changed);
        if all_contacts {
            let look = if new_account || sh.contacts_read_instant {
                Look::Everything
            } else {
                Look::Since { day: None, account: true }
            };
            self.evaluate_contacts_of(sh, a, at, look, own, out);
        }
        let c = event.contact?;
        if !contact_here {
            // A contact of another account (in another shard) acting for this one.
            return Some(at);
        }
        if !all_contacts || own.is_none() {
            self.evaluate_contact_segments(sh, c, at, contact_look, out);
        }
        None
    }

    /// Records an event in the aggregates of contact `c` (created if new), who lives in
    /// this shard.
    pub(super) fn record_contact(&mut self, sh: &Shared, c: u64, event: &EngineEvent, day: Day) {
        let facts =
            EventFacts { name: &event.name, ts: event.ts, day, contact: event.contact, numbers: &event.numbers };
        self.record(sh, c, &facts);
    }

    /// Records an event in the aggregates of contact `c` (created if new), and in
    /// `contact_changes` what it changed there.
    pub(super) fn record(&mut self, sh: &Shared, c: u64, facts: &EventFacts<'_>) {
        let plan = &sh.plan;
        let contact = self
            .contacts
            .entry(c)
            .or_insert_with(|| ContactState { aggregates: plan.empty_state(Subject::Contact), ..Default::default() });
        plan.record(Subject::Contact, &mut contact.aggregates, facts, &mut self.contact_changes);
    }

    /// Re-evaluates everything of this shard at the current instant: accounts, then
    /// contacts, each in id order.
    pub(super) fn evaluate_all(&mut self, sh: &Shared, o: &mut Output) {
        let at = self.now;
        let ids = sorted(self.accounts.keys().copied());
        for id in ids {
            o.mark((0, 0, Timestamp::MIN, 0, 0, id));
            self.evaluate_account(sh, id, &sh.account_nodes, None, at, &mut o.transitions);
        }
        let contacts = sorted(self.contacts.keys().copied());
        for c in contacts {
            o.mark((0, 0, Timestamp::MIN, 0, 1, c));
            self.evaluate_contact(sh, c, at, &mut o.transitions);
        }
    }

    /// The instant an event at `ts` is evaluated at: never before its account's last
    /// evaluation (every day tick counts as one for the accounts it found: a tick that
    /// found nothing of an account to change left it as evaluated then), never after the
    /// clock.
    pub(super) fn at_for(&self, ts: Timestamp, account: Option<u64>) -> Timestamp {
        let state = account.and_then(|a| self.accounts.get(&a));
        let mut floor = state.and_then(|s| s.evaluated_at).unwrap_or(ts);
        if state.is_some_and(|s| s.since < self.today) {
            floor = floor.max(self.today_start);
        }
        ts.max(floor).min(self.now)
    }

    /// The calendar day of `at` in the workspace time zone, as a day number and a date.
    pub(super) fn day_at(&mut self, sh: &Shared, at: Timestamp) -> (Day, Date) {
        if self.day_memo.0 != at {
            let (day, date) = sh.calendar_day(at);
            self.day_memo = (at, day, date);
        }
        (self.day_memo.1, self.day_memo.2)
    }

    pub(super) fn schedule_deadlines(&mut self, sh: &Shared, account: u64) {
        let Some(state) = self.accounts.get_mut(&account) else { return };
        for t in state.deadlines.drain(..) {
            self.deadlines.remove(&(t, account));
        }
        let Some(journey) = sh.ws.journey() else { return };
        let Some(anchor) = state.anchor else { return };
        let tz = sh.ws.time_zone();
        for m in journey.milestones() {
            let pending = matches!(state.milestones.get(m.id.as_str()), None | Some(MilestoneStatus::Pending));
            if let (true, Some(within)) = (pending, m.within) {
                let deadline = deadline(anchor, within, tz);
                if deadline > self.now && self.deadlines.insert((deadline, account)) {
                    state.deadlines.push(deadline);
                }
            }
        }
    }

    /// Evaluates `nodes` of account `id` at `at`; returns whether a node that contact
    /// segments read changed (a membership, a milestone, the stage, a health score).
    /// After an event, `event` holds what each node reads (as `nodes`) and what the
    /// event changed in the account's aggregates: on the event's day, a node none of
    /// whose reads moved is left as it is.
    pub(super) fn evaluate_account(
        &mut self,
        sh: &Shared,
        id: u64,
        nodes: &[Node],
        event: Option<(&[Reads], &Changes)>,
        at: Timestamp,
        out: &mut Vec<Transition>,
    ) -> bool {
        let mut read_by_contacts_changed = false;
        let shard_today = self.today;
        let (today, today_date) = self.day_at(sh, at);
        let ws = &sh.ws;
        // A late event is evaluated on a later day than its own: everything it can reach.
        let event = event.filter(|(_, changes)| changes.day() == today);
        // The nodes (by position) this evaluation changed.
        let mut changed: u64 = 0;
        // The health measures' raw values, in a buffer kept across evaluations.
        let mut values = std::mem::take(&mut self.health_values);
        for (k, &node) in nodes.iter().enumerate() {
            let Some(state) = self.accounts.get(&id) else { break };
            if let Some((reads, changes)) = event
                && !reads[k].moved(&sh.plan, changes, state.anchor, changed)
            {
                continue;
            }
            let mut rescored = false;
            let env = AccountEnv {
                shared: sh,
                account: state,
                contact: None,
                contact_segments: None,
                now: at,
                today,
                today_date,
            };
            let transitions_before = out.len();
            match node {
                Node::Segment(i) => {
                    let segment = &ws.segments()[i];
                    let inside = segment.rule.eval_bool(&env);
                    let id_str = segment.id.as_str();
                    let was = state.member_of.contains(i);
                    if inside != was {
                        let kind = if inside {
                            TransitionKind::SegmentEntered { segment: id_str.to_string() }
                        } else {
                            TransitionKind::SegmentExited { segment: id_str.to_string() }
                        };
                        out.push(self.transition(at, SubjectRef::Account(id), kind));
                        if let Some(s) = self.accounts.get_mut(&id) {
                            s.member_of.set(i, inside);
                            self.members[i] += if inside { 1 } else { -1 };
                            if inside {
                                s.segments.insert(id_str.to_string());
                            } else {
                                s.segments.remove(id_str);
                            }
                        }
                    }
                }
                Node::Milestone(si, mi) => {
                    let Some(journey) = sh.ws.journey() else { continue };
                    let m = &journey.stages[si].milestones[mi];
                    let flat = sh.milestone_offsets[si] + mi;
                    if state.milestones_done.contains(flat) {
                        continue;
                    }
                    let due = match (state.anchor, m.within) {
                        (Some(anchor), Some(within)) => Some(deadline(anchor, within, sh.ws.time_zone())),
                        _ => None,
                    };
                    let new = match due {
                        Some(due) if at >= due => Some(MilestoneStatus::Missed(due)),
                        _ if m.rule.eval_bool(&env) => Some(MilestoneStatus::Achieved(at)),
                        _ => None,
                    };
                    if let Some(new) = new {
                        let milestone = m.id.as_str().to_string();
                        let kind = match new {
                            MilestoneStatus::Missed(_) => {
                                TransitionKind::MilestoneMissed { milestone: milestone.clone() }
                            }
                            _ => TransitionKind::MilestoneAchieved { milestone: milestone.clone() },
                        };
                        let stamp = match new {
                            MilestoneStatus::Missed(due) => due,
                            _ => at,
                        };
                        out.push(self.transition(stamp, SubjectRef::Account(id), kind));
                        if let Some(s) = self.accounts.get_mut(&id) {
                            s.milestones.insert(milestone, new);
                            s.milestones_done.set(flat, true);
                        }
                    }
                }
                Node::Stage => {
                    let Some(journey) = sh.ws.journey() else { continue };
                    let stages = &journey.stages;
                    let mut current = state.stage;
                    let mut moves = Vec::new();
                    // Forward only, at most once per stage: into the first stage, then on
                    // when the current stage's exit rule holds (if the next stage's entry
                    // rule, when it has one, holds too), or straight to the furthest later
                    // stage whose entry rule holds.
                    for _ in 0..=stages.len() {
                        let from = current;
                        let start = current.map_or(0, |c| c + 1);
                        let jump = (start..stages.len())
                            .rev()
                            .find(|&j| stages[j].entry.as_ref().is_some_and(|r| r.eval_bool(&env)));
                        let next = match (current, jump) {
                            (_, Some(j)) => Some(j),
                            (None, None) => (!stages.is_empty()).then_some(0),
                            (Some(c), None) => {
                                let exits = stages[c].exit.as_ref().is_some_and(|r| r.eval_bool(&env));
                                let n = c + 1;
                                let enters =
                                    stages.get(n).is_some_and(|s| s.entry.as_ref().is_none_or(|r| r.eval_bool(&env)));
                                (exits && enters).then_some(n)
                            }
                        };
                        // A stage entered now is checked again with the same facts: its
                        // exit rule may already hold.
                        match next {
                            Some(n) if Some(n) != from => {
                                moves.push((from, n));
                                current = Some(n);
                            }
                            _ => break,
                        }
                    }
                    if !moves.is_empty() {
                        for (from, to) in &moves {
                            let kind = TransitionKind::StageChanged {
                                from: from.map(|f| stages[f].id.as_str().to_string()),
                                to: stages[*to].id.as_str().to_string(),
                            };
                            out.push(self.transition(at, SubjectRef::Account(id), kind));
                        }
                        if let Some(s) = self.accounts.get_mut(&id) {
                            s.stage = current;
                            s.stage_since = Some(at);
                        }
                    }
                }
                Node::Health => {
                    let Some(health) = ws.health() else { continue };
                    // Models by index: 0 the default, then the segment models in order.
                    let (index, model) = health
                        .models
                        .iter()
                        .enumerate()
                        .find(|(_, m)| m.condition.as_ref().is_some_and(|c| c.eval_bool(&env)))
                        .map_or((0, &health.default), |(i, m)| (i + 1, m));
                    // After an event, scored by the same model before: a measure none of
                    // whose reads moved keeps its value.
                    let kept = event.zip(state.health.as_ref().filter(|h| h.model == model.id.as_str()));
                    let mut before =
                        kept.map(|(_, h)| h.pillars.iter().flat_map(|p| p.measures.iter().map(|m| m.value)));
                    values.clear();
                    for (j, m) in model.pillars.iter().flat_map(|p| p.measures.iter()).enumerate() {
                        let value_before = before.as_mut().and_then(|b| b.next());
                        let value = match (kept, value_before) {
                            (Some(((_, changes), _)), Some(v))
                                if !sh.health_reads[index][j].moved(&sh.plan, changes, state.anchor, 0) =>
                            {
                                v
                            }
                            _ => match m.value.eval(&env) {
                                Value::Number(x) => Some(x),
                                _ => None,
                            },
                        };
                        values.push(value);
                    }
                    if state.health.as_ref().is_some_and(|h| same_inputs(h, model, &values)) {
                        // The same model on the same values: the same score, nothing to
                        // do.
                        continue;
                    }
                    let contacts_read_health = sh.contacts_read_nodes.contains(&Node::Health);
                    let before = if contacts_read_health { state.health.clone() } else { None };
                    let before_band = state.health.as_ref().and_then(|h| h.band);
                    let Some(s) = self.accounts.get_mut(&id) else { continue };
                    rescored = true;
                    // Scored in place when the model is the same (no new strings).
                    if !s.health.as_mut().is_some_and(|h| health::rescore(h, model, &health.bands, &values)) {
                        s.health = Some(health::score(model, &health.bands, &values));
                    }
                    let Some(scored) = s.health.as_ref() else { continue };
                    if record_snapshot(&mut s.snapshots, shard_today, snapshot(scored))
                        && let Some(runs) = self.health_runs.as_mut()
                    {
                        runs.push(health_run(id, shard_today, scored));
                    }
                    if contacts_read_health && !same_scores(before.as_ref(), scored) {
                        read_by_contacts_changed = true;
                    }
                    if let (Some(to), Some(score)) = (scored.band, scored.score)
                        && before_band != Some(to)
                    {
                        let kind = TransitionKind::HealthBandChanged { from: before_band, to, score };
                        out.push(self.transition(at, SubjectRef::Account(id), kind));
                    }
                }
            }
            // Segments, milestones and stages change only with a transition.
            if out.len() > transitions_before && node != Node::Health && sh.contacts_read_nodes.contains(&node) {
                read_by_contacts_changed = true;
            }
            if (rescored || out.len() > transitions_before) && k < 64 {
                changed |= 1 << k;
            }
        }
        self.health_values = values;
        if let Some(s) = self.accounts.get_mut(&id) {
            s.evaluated_at = Some(s.evaluated_at.map_or(at, |e| e.max(at)));
            if !s.touched {
                s.touched = true;
                self.touched.push(id);
            }
        }
        read_by_contacts_changed
    }

    /// Evaluates the contacts of an account, in id order, looking at what `look` says;
    /// `whole` (one of them) at everything.
    pub(super) fn evaluate_contacts_of(
        &mut self,
        sh: &Shared,
        account: u64,
        at: Timestamp,
        look: Look,
        whole: Option<u64>,
        out: &mut Vec<Transition>,
    ) {
        let contacts: Vec<u64> =
            self.accounts.get(&account).map(|a| a.contacts.iter().copied().collect()).unwrap_or_default();
        for c in contacts {
            let look = if whole == Some(c) { Look::Everything } else { look };
            self.evaluate_contact_segments(sh, c, at, look, out);
        }
    }

    pub(super) fn evaluate_contact(&mut self, sh: &Shared, id: u64, at: Timestamp, out: &mut Vec<Transition>) {
        self.evaluate_contact_segments(sh, id, at, Look::Everything, out);
    }

    /// Evaluates a contact's segments at `at`, those `look` says (with a day plan, `at`
    /// is the new day's first instant).
    pub(super) fn evaluate_contact_segments(
        &mut self,
        sh: &Shared,
        id: u64,
        at: Timestamp,
        look: Look,
        out: &mut Vec<Transition>,
    ) {
        if sh.contact_segments.is_empty() {
            return;
        }
        let (today, today_date) = self.day_at(sh, at);
        // After an event: only on the event's own day, and with each segment's reads.
        let event = match look {
            Look::Event => sh.contact_reads.as_deref().filter(|_| self.contact_changes.day() == today),
            _ => None,
        };
        let look = if matches!(look, Look::Event) && event.is_none() { Look::Everything } else { look };
        let ws = &sh.ws;
        let empty = AccountState::default();
        // Later segments read the earlier ones' new answers: once one changes, the
        // memberships are a copy, stored back at the end.
        let mut updated: Option<Bits> = None;
        let mut changes: Vec<(usize, bool)> = Vec::new();
        // The segments (by position) changed so far.
        let mut changed: u64 = 0;
        if let Some(contact) = self.contacts.get(&id) {
            let account = contact.account.and_then(|a| self.accounts.get(&a)).unwrap_or(&empty);
            for (k, &i) in sh.contact_segments.iter().enumerate() {
                if let Some(reads) = event
                    && !reads[k].moved(&sh.plan, &self.contact_changes, account.anchor, changed)
                {
                    continue;
                }
                if let Look::Since { day, account } = look {
                    let d = &sh.day_plan.contact[k];
                    let moves = (!changes.is_empty() && d.reads_contact_segments)
                        || (account && d.reads_account)
                        || day.is_some_and(|new_day| {
                            d.always
                                || d.clock
                                || d.windows.iter().any(|w| sh.plan.changes_overnight(*w, &contact.aggregates, new_day))
                        });
                    if !moves {
                        continue;
                    }
                }
                let env = AccountEnv {
                    shared: sh,
                    account,
                    contact: Some(contact),
                    contact_segments: updated.as_ref(),
                    now: at,
                    today,
                    today_date,
                };
                let segment = &ws.segments()[i];
                let inside = segment.rule.eval_bool(&env);
                if inside != updated.as_ref().unwrap_or(&contact.member_of).contains(i) {
                    let sid = segment.id.as_str();
                    let kind = if inside {
                        TransitionKind::SegmentEntered { segment: sid.to_string() }
                    } else {
                        TransitionKind::SegmentExited { segment: sid.to_string() }
                    };
                    out.push(self.transition(at, SubjectRef::Contact(id), kind));
                    changes.push((i, inside));
                    if k < 64 {
                        changed |= 1 << k;
                    }
                    updated.get_or_insert_with(|| contact.member_of.clone()).set(i, inside);
                }
            }
        }
        if let Some(bits) = updated
            && let Some(c) = self.contacts.get_mut(&id)
        {
            c.member_of = bits;
            for (i, inside) in changes {
                let sid = ws.segments()[i].id.as_str();
                self.members[i] += if inside { 1 } else { -1 };
                if inside {
                    c.segments.insert(sid.to_string());
                } else {
                    c.segments.remove(sid);
                }
            }
        }
        // The next day the days alone can change its segments depends on the days its
        // series hold data and its first and last days (and on traits, which no event
        // changes): when the event moved none of them, the day filed last still holds.
        if sh.day_plan.by_wake && (event.is_none() || self.contact_changes.days_moved()) {
            self.file_wake(sh, id, at, today, today_date);
        }
    }

    pub(super) fn transition(&self, at: Timestamp, subject: SubjectRef, kind: TransitionKind) -> Transition {
        Transition { at, subject, kind, backfill: self.backfill }
    }
}

/// Whether two health evaluations give every rule the same answers (the overall and
/// each pillar's score: what `health()` and `health('pillar')` read).
pub(super) fn same_scores(before: Option<&HealthScore>, after: &HealthScore) -> bool {
    let Some(before) = before else { return false };
    before.score == after.score
        && before.pillars.len() == after.pillars.len()
        && before.pillars.iter().zip(&after.pillars).all(|(a, b)| a.id == b.id && a.score == b.score)
}

/// Whether `h` is what [`health::score`] gives for `model` on `values` (the same model
/// and, bit for bit, the same measure values as it keeps them), so scoring again would
/// change nothing.
pub(super) fn same_inputs(h: &HealthScore, model: &HealthModel, values: &[Option<f64>]) -> bool {
    h.model == model.id.as_str()
        && h.pillars.len() == model.pillars.len()
        && h.pillars.iter().zip(&model.pillars).all(|(p, mp)| p.measures.len() == mp.measures.len())
        && h.pillars.iter().flat_map(|p| &p.measures).count() == values.len()
        && h.pillars
            .iter()
            .flat_map(|p| &p.measures)
            .zip(values)
            .all(|(m, v)| m.value.map(f64::to_bits) == v.filter(|v| v.is_finite()).map(f64::to_bits))
}

pub(super) fn anchor_day(value: Option<&Value>, tz: &TimeZone) -> Option<Day> {
    match value? {
        Value::Date(d) => Some(crate::days::day_of_date(*d)),
        Value::Timestamp(t) => Some(day_of(*t, tz)),
        _ => None,
    }
}

/// A milestone's deadline: whole days count calendar days from the anchor's day (the
/// deadline is the start of day anchor + N); other durations count from the anchor's
/// first instant.
pub(super) fn deadline(anchor: Day, within: SignedDuration, tz: &TimeZone) -> Timestamp {
    let secs = within.as_secs();
    if secs % 86_400 == 0 {
        start_of_day(anchor.saturating_add((secs / 86_400).clamp(0, i64::from(i32::MAX)) as i32), tz)
    } else {
        start_of_day(anchor, tz).checked_add(within).unwrap_or(Timestamp::MAX)
    }
}
