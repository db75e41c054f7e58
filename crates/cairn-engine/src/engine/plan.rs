//! What the engine works out once from a workspace: the account nodes in evaluation
//! order, what each event name and each new day can change, and what each definition
//! reads ([`Shared`]).

use super::*;

impl Shared {
    /// The calendar day of an instant in the workspace time zone, as a day number and a
    /// date.
    pub(super) fn calendar_day(&self, at: Timestamp) -> (Day, Date) {
        let date = self.ws.time_zone().to_datetime(at).date();
        (crate::days::day_of_date(date), date)
    }

    /// Works out everything the engine needs to know once about `ws`.
    pub(super) fn new(ws: Arc<Workspace>) -> Shared {
        let plan = AggregatePlan::new(ws.aggregates());
        let segment_index: BTreeMap<&str, usize> =
            ws.segments().iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let milestone_index: BTreeMap<&str, (usize, usize)> = ws
            .journey()
            .map(|j| {
                j.stages
                    .iter()
                    .enumerate()
                    .flat_map(|(si, s)| s.milestones.iter().enumerate().map(move |(mi, m)| (m.id.as_str(), (si, mi))))
                    .collect()
            })
            .unwrap_or_default();
        let mut account_nodes = Vec::new();
        let mut contact_segments = Vec::new();
        for def in ws.evaluation_order() {
            match def {
                Definition::Segment(id) => {
                    if let Some(&i) = segment_index.get(id.as_str()) {
                        match ws.segments()[i].subject {
                            Subject::Account => account_nodes.push(Node::Segment(i)),
                            Subject::Contact => contact_segments.push(i),
                        }
                    }
                }
                Definition::Milestone(id) => {
                    if let Some(&(s, m)) = milestone_index.get(id.as_str()) {
                        account_nodes.push(Node::Milestone(s, m));
                    }
                }
                Definition::Stage => {
                    if ws.journey().is_some() {
                        account_nodes.push(Node::Stage);
                    }
                }
                Definition::Health => {
                    if ws.health().is_some() {
                        account_nodes.push(Node::Health);
                    }
                }
            }
        }
        let stage_values = ws
            .journey()
            .map(|j| j.stages.iter().map(|s| Value::String(s.id.as_str().into())).collect())
            .unwrap_or_default();
        let milestone_offsets = ws
            .journey()
            .map(|j| {
                j.stages
                    .iter()
                    .scan(0, |next, s| {
                        let first = *next;
                        *next += s.milestones.len();
                        Some(first)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut shared = Shared {
            stage_values,
            milestone_offsets,
            plan,
            account_nodes,
            contact_segments,
            contact_reads: None,
            health_reads: Vec::new(),
            readers_of_aggregate: BTreeMap::new(),
            readers_of_trait: BTreeMap::new(),
            contacts_read_account: false,
            contacts_read_nodes: BTreeSet::new(),
            contacts_read_instant: false,
            event_plans: EventPlans::default(),
            day_plan: DayPlan::default(),
            segment_index: ws.segments().iter().enumerate().map(|(i, s)| (s.id.as_str().to_string(), i)).collect(),
            ws,
        };
        shared.index_readers();
        shared
    }

    /// Works out, once, which nodes each aggregate and trait reaches.
    pub(super) fn index_readers(&mut self) {
        let mut direct_aggs: BTreeMap<Node, BTreeSet<AggId>> = BTreeMap::new();
        let mut direct_traits: BTreeMap<Node, BTreeSet<String>> = BTreeMap::new();
        let mut reads_nodes: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
        for &node in &self.account_nodes {
            let mut aggs = BTreeSet::new();
            let mut traits = BTreeSet::new();
            let mut nodes = BTreeSet::new();
            for rule in self.rules_of(node) {
                aggs.extend(rule.aggregates().iter().copied());
                for r in rule.references() {
                    match r {
                        Reference::AccountTrait(t) => {
                            traits.insert(t.clone());
                        }
                        Reference::Anchor => {
                            if let Some(j) = self.ws.journey() {
                                traits.insert(j.anchor.clone());
                            }
                        }
                        other => nodes.extend(self.node_of_reference(other)),
                    }
                }
            }
            direct_aggs.insert(node, aggs);
            direct_traits.insert(node, traits);
            reads_nodes.insert(node, nodes);
        }
        // Transitive readers: a node is dirty when anything it reads is dirty; the order
        // is topological, so one pass in order suffices.
        let mut all_aggs: BTreeMap<Node, BTreeSet<AggId>> = BTreeMap::new();
        let mut all_traits: BTreeMap<Node, BTreeSet<String>> = BTreeMap::new();
        for &node in &self.account_nodes {
            let mut aggs = direct_aggs.remove(&node).unwrap_or_default();
            let mut traits = direct_traits.remove(&node).unwrap_or_default();
            for dep in reads_nodes.get(&node).into_iter().flatten() {
                aggs.extend(all_aggs.get(dep).into_iter().flatten().copied());
                traits.extend(all_traits.get(dep).into_iter().flatten().cloned());
            }
            for a in &aggs {
                self.readers_of_aggregate.entry(*a).or_default().push(node);
            }
            for t in &traits {
                self.readers_of_trait.entry(t.clone()).or_default().push(node);
            }
            all_aggs.insert(node, aggs);
            all_traits.insert(node, traits);
        }
        self.contacts_read_account = self.contact_segments.iter().any(|&i| {
            let rule = &self.ws.segments()[i].rule;
            rule.references().iter().any(|r| !matches!(r, Reference::ContactTrait(_)))
                || rule.aggregates().iter().any(|a| self.ws.aggregates().get(*a).scope == Subject::Account)
        });
        let mut contact_aggs = BTreeSet::new();
        for &i in &self.contact_segments {
            let rule = &self.ws.segments()[i].rule;
            for r in rule.references() {
                self.contacts_read_nodes.extend(self.node_of_reference(r));
                if matches!(r, Reference::Anchor) {
                    self.contacts_read_instant = true;
                }
            }
            // `now()` leaves no reference behind: look for it in the source.
            if rule.source().to_ascii_lowercase().contains("now") {
                self.contacts_read_instant = true;
            }
            contact_aggs.extend(
                rule.aggregates().iter().copied().filter(|a| self.ws.aggregates().get(*a).scope == Subject::Account),
            );
        }
        let plan_of = |affected: Vec<AggId>| {
            let nodes = self
                .nodes_reading(affected.iter().flat_map(|id| self.readers_of_aggregate.get(id).into_iter().flatten()));
            let reads = nodes
                .iter()
                .map(|node| {
                    let mut reads = Reads::of(&self.rules_of(*node), 0);
                    for dep in reads_nodes.get(node).into_iter().flatten() {
                        match nodes.iter().position(|n| n == dep) {
                            Some(k) if k < 64 => reads.nodes |= 1 << k,
                            Some(_) => reads.instant = true,
                            None => {}
                        }
                    }
                    reads
                })
                .collect();
            EventPlan { nodes, reads, contacts_read_changed: affected.iter().any(|a| contact_aggs.contains(a)) }
        };
        let by_name = self
            .plan
            .listed_names(Subject::Account)
            .map(|name| (name.to_string(), plan_of(self.plan.affected(Subject::Account, name))))
            .collect();
        let other = plan_of(self.plan.affected_by_any(Subject::Account));
        self.event_plans = EventPlans { by_name, other };
        self.day_plan = self.plan_days(&reads_nodes);
        self.health_reads = self
            .ws
            .health()
            .map(|h| {
                std::iter::once(&h.default)
                    .chain(&h.models)
                    .map(|model| {
                        model
                            .pillars
                            .iter()
                            .flat_map(|p| &p.measures)
                            .map(|m| {
                                let mut reads = Reads::of(&[&m.value], 0);
                                reads.instant |=
                                    m.value.references().iter().any(|r| self.node_of_reference(r).is_some());
                                reads
                            })
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.contact_reads = (self.contact_segments.len() <= 64).then(|| {
            self.contact_segments
                .iter()
                .map(|&i| {
                    let rule = &self.ws.segments()[i].rule;
                    let mut nodes = 0u64;
                    for r in rule.references() {
                        if let Reference::Segment(id) = r
                            && let Some(k) =
                                self.contact_segments.iter().position(|&j| self.ws.segments()[j].id.as_str() == id)
                        {
                            nodes |= 1 << k;
                        }
                    }
                    Reads::of(&[rule], nodes)
                })
                .collect()
        });
    }

    /// Works out what a new day can change, given the nodes each account node reads.
    pub(super) fn plan_days(&self, reads_nodes: &BTreeMap<Node, BTreeSet<Node>>) -> DayPlan {
        let slides = |rule: &Rule| rule.aggregates().iter().any(|a| self.plan.slides(*a));
        let mut account_nodes: Vec<Node> = Vec::new();
        for &node in &self.account_nodes {
            let moves = matches!(node, Node::Milestone(..))
                || self.rules_of(node).into_iter().any(|r| r.reads_clock() || slides(r))
                || reads_nodes.get(&node).into_iter().flatten().any(|n| account_nodes.contains(n));
            if moves {
                account_nodes.push(node);
            }
        }
        let contact = self
            .contact_segments
            .iter()
            .map(|&i| {
                let rule = &self.ws.segments()[i].rule;
                let scope = |a: &AggId| self.ws.aggregates().get(*a).scope;
                ContactDay {
                    always: (rule.reads_clock() && !rule.clock_predictable())
                        || rule.aggregates().iter().any(|a| scope(a) == Subject::Account && self.plan.slides(*a)),
                    clock: rule.reads_clock() && rule.clock_predictable(),
                    windows: rule
                        .aggregates()
                        .iter()
                        .copied()
                        .filter(|a| scope(a) == Subject::Contact && self.plan.slides(*a))
                        .collect(),
                    reads_contact_segments: rule.references().iter().any(|r| {
                        matches!(r, Reference::Segment(id)
                            if self.ws.segments().iter().any(|s| s.id.as_str() == id && s.subject == Subject::Contact))
                    }),
                    reads_account: rule.references().iter().any(|r| match r {
                        Reference::ContactTrait(_) => false,
                        Reference::Segment(id) => {
                            self.ws.segments().iter().any(|s| s.id.as_str() == id && s.subject == Subject::Account)
                        }
                        _ => true,
                    }) || rule.aggregates().iter().any(|a| scope(a) == Subject::Account),
                }
            })
            .collect::<Vec<ContactDay>>();
        let by_wake = !self.contacts_read_instant && !contact.iter().any(|d| d.always);
        let account_reads = self.day_reads(&account_nodes);
        DayPlan { account_nodes, contact, by_wake, account_reads }
    }

    /// The rules of `nodes` that move with the days alone (see `DayPlan::account_reads`).
    pub(super) fn day_reads(&self, nodes: &[Node]) -> Vec<DayRead> {
        let moves = |rule: &Rule| rule.reads_clock() || rule.aggregates().iter().any(|a| self.plan.slides(*a));
        let mut reads = Vec::new();
        let mut condition = |at: RuleAt, flat: Option<usize>| {
            if self.rule_at(at).is_some_and(moves) {
                reads.push(DayRead::Condition(at, flat));
            }
        };
        for &node in nodes {
            match node {
                Node::Segment(i) => condition(RuleAt::Segment(i), None),
                Node::Milestone(si, mi) => {
                    let flat = self.milestone_offsets.get(si).map(|o| o + mi);
                    condition(RuleAt::Milestone(si, mi), flat);
                }
                Node::Stage => {
                    let stages = self.ws.journey().map_or(0, |j| j.stages.len());
                    for k in 0..stages {
                        condition(RuleAt::Entry(k), None);
                        condition(RuleAt::Exit(k), None);
                    }
                }
                Node::Health => {
                    let models = self.ws.health().map_or(0, |h| h.models.len());
                    for k in 1..=models {
                        condition(RuleAt::Model(k), None);
                    }
                }
            }
        }
        if nodes.contains(&Node::Health)
            && let Some(h) = self.ws.health()
        {
            for (k, model) in std::iter::once(&h.default).chain(&h.models).enumerate() {
                for (p, pillar) in model.pillars.iter().enumerate() {
                    for (q, m) in pillar.measures.iter().enumerate() {
                        if moves(&m.value) {
                            reads.push(DayRead::Measure(k, p, q));
                        }
                    }
                }
            }
        }
        reads
    }

    /// The rule at `at`, if the workspace has it.
    pub(super) fn rule_at(&self, at: RuleAt) -> Option<&Rule> {
        let journey = || self.ws.journey();
        match at {
            RuleAt::Segment(i) => self.ws.segments().get(i).map(|s| &s.rule),
            RuleAt::Milestone(si, mi) => journey()?.stages.get(si)?.milestones.get(mi).map(|m| &m.rule),
            RuleAt::Entry(k) => journey()?.stages.get(k)?.entry.as_ref(),
            RuleAt::Exit(k) => journey()?.stages.get(k)?.exit.as_ref(),
            RuleAt::Model(k) => self.ws.health()?.models.get(k.checked_sub(1)?)?.condition.as_ref(),
        }
    }

    /// Measure `q` of pillar `p` of health model `k` (0 the default).
    pub(super) fn measure_at(&self, k: usize, p: usize, q: usize) -> Option<&cairn_workspace::Measure> {
        let h = self.ws.health()?;
        let model = if k == 0 { &h.default } else { h.models.get(k - 1)? };
        model.pillars.get(p)?.measures.get(q)
    }

    pub(super) fn node_of_reference(&self, r: &Reference) -> Option<Node> {
        match r {
            Reference::Segment(id) => self
                .ws
                .segments()
                .iter()
                .position(|s| s.id.as_str() == id && s.subject == Subject::Account)
                .map(Node::Segment),
            Reference::Milestone(id) => self.ws.journey().and_then(|j| {
                j.stages.iter().enumerate().find_map(|(si, s)| {
                    s.milestones.iter().position(|m| m.id.as_str() == id).map(|mi| Node::Milestone(si, mi))
                })
            }),
            Reference::Stage => Some(Node::Stage),
            Reference::Health(_) => Some(Node::Health),
            _ => None,
        }
    }

    pub(super) fn rules_of(&self, node: Node) -> Vec<&Rule> {
        match node {
            Node::Segment(i) => vec![&self.ws.segments()[i].rule],
            Node::Milestone(s, m) => {
                self.ws.journey().map(|j| vec![&j.stages[s].milestones[m].rule]).unwrap_or_default()
            }
            Node::Stage => self
                .ws
                .journey()
                .map(|j| j.stages.iter().flat_map(|s| s.entry.iter().chain(s.exit.iter())).collect())
                .unwrap_or_default(),
            Node::Health => self
                .ws
                .health()
                .map(|h| {
                    std::iter::once(&h.default)
                        .chain(h.models.iter())
                        .flat_map(|m| {
                            m.condition.iter().chain(m.pillars.iter().flat_map(|p| p.measures.iter().map(|x| &x.value)))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The workspace being evaluated.
    /// The nodes among `readers`, deduplicated, in evaluation order.
    pub(super) fn nodes_reading<'a>(&self, readers: impl Iterator<Item = &'a Node>) -> Vec<Node> {
        let set: BTreeSet<Node> = readers.copied().collect();
        self.account_nodes.iter().copied().filter(|n| set.contains(n)).collect()
    }
}
