//! The order in which definitions are evaluated, and the cycles that forbid one.
//!
//! Definitions read each other through their rules' [`cairn_rules::Reference`]s: a
//! segment may read another segment, a milestone, the stage or health; the journey's
//! stage rules read milestones; health model conditions read the stage and segments.
//! The journey stage (`stage()`) is one definition, computed from every stage's entry and
//! exit rule; health (`health()`, `health('pillar')`) is one, computed from every model's
//! condition and measures.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cairn_rules::Reference;

/// A definition other definitions can depend on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Definition {
    /// A segment.
    Segment(String),
    /// A milestone.
    Milestone(String),
    /// The current journey stage.
    Stage,
    /// Health scores.
    Health,
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Definition::Segment(id) => write!(f, "segment `{id}`"),
            Definition::Milestone(id) => write!(f, "milestone `{id}`"),
            Definition::Stage => f.write_str("the journey stage"),
            Definition::Health => f.write_str("health"),
        }
    }
}

impl Definition {
    /// The definition a rule reference reads, if it is one (traits and the anchor are not).
    pub fn of_reference(reference: &Reference) -> Option<Definition> {
        match reference {
            Reference::Segment(id) => Some(Definition::Segment(id.clone())),
            Reference::Milestone(id) => Some(Definition::Milestone(id.clone())),
            Reference::Stage => Some(Definition::Stage),
            Reference::Health(_) => Some(Definition::Health),
            Reference::Anchor
            | Reference::AccountTrait(_)
            | Reference::ContactTrait(_)
            | Reference::Engagement { .. }
            | Reference::Goal => None,
        }
    }
}

/// A dependency cycle: each definition reads the next, and the last reads the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<Definition>);

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            write!(f, "{d} → ")?;
        }
        match self.0.first() {
            Some(first) => write!(f, "{first}"),
            None => Ok(()),
        }
    }
}

/// Orders definitions so each comes after everything it depends on (ties broken by
/// `Definition`'s order, so the result is deterministic), or returns every cycle, one per
/// strongly connected group, starting from its smallest member. Dependencies on
/// definitions not in the map are ignored.
pub fn evaluation_order(
    dependencies: &BTreeMap<Definition, BTreeSet<Definition>>,
) -> Result<Vec<Definition>, Vec<Cycle>> {
    let mut remaining: BTreeMap<&Definition, usize> = dependencies
        .iter()
        .map(|(d, deps)| (d, deps.iter().filter(|x| dependencies.contains_key(*x)).count()))
        .collect();
    let mut dependents: BTreeMap<&Definition, Vec<&Definition>> = BTreeMap::new();
    for (d, deps) in dependencies {
        for dep in deps.iter().filter(|x| dependencies.contains_key(*x)) {
            dependents.entry(dep).or_default().push(d);
        }
    }
    let mut ready: BTreeSet<&Definition> = remaining.iter().filter(|(_, n)| **n == 0).map(|(d, _)| *d).collect();
    let mut order = Vec::with_capacity(dependencies.len());
    while let Some(d) = ready.pop_first() {
        order.push(d.clone());
        remaining.remove(d);
        for dependent in dependents.get(d).into_iter().flatten() {
            if let Some(n) = remaining.get_mut(dependent) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(dependent);
                }
            }
        }
    }
    if remaining.is_empty() {
        return Ok(order);
    }
    Err(cycles(dependencies, &remaining.keys().map(|d| (*d).clone()).collect()))
}

/// One cycle per strongly connected group among `stuck` (the definitions Kahn's
/// algorithm could not order: every one is on a cycle or depends on one).
fn cycles(dependencies: &BTreeMap<Definition, BTreeSet<Definition>>, stuck: &BTreeSet<Definition>) -> Vec<Cycle> {
    let mut covered: BTreeSet<Definition> = BTreeSet::new();
    let mut found = Vec::new();
    for start in stuck {
        if covered.contains(start) {
            continue;
        }
        // Shortest path from `start` back to itself (breadth first), if it is on a cycle.
        let mut parent: BTreeMap<&Definition, &Definition> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(d) = queue.pop_front() {
            for next in dependencies.get(d).into_iter().flatten().filter(|x| stuck.contains(*x)) {
                if next == start {
                    closing = Some(d);
                    break 'search;
                }
                if !parent.contains_key(next) {
                    parent.insert(next, d);
                    queue.push_back(next);
                }
            }
        }
        let Some(mut last) = closing else { continue };
        let mut path = vec![last.clone()];
        while last != start {
            last = parent[last];
            path.push(last.clone());
        }
        path.reverse();
        // Everything on a cycle through `start` shares its group; mark the whole group.
        covered.extend(reachable_both_ways(dependencies, stuck, start));
        found.push(Cycle(path));
    }
    found
}

fn reachable_both_ways(
    dependencies: &BTreeMap<Definition, BTreeSet<Definition>>,
    stuck: &BTreeSet<Definition>,
    start: &Definition,
) -> BTreeSet<Definition> {
    let walk = |forward: bool| {
        let mut seen = BTreeSet::from([start.clone()]);
        let mut stack = vec![start.clone()];
        while let Some(d) = stack.pop() {
            let next: Vec<&Definition> = if forward {
                dependencies.get(&d).into_iter().flatten().collect()
            } else {
                dependencies.iter().filter(|(_, deps)| deps.contains(&d)).map(|(x, _)| x).collect()
            };
            for n in next {
                if stuck.contains(n) && seen.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
        seen
    };
    let forward = walk(true);
    walk(false).intersection(&forward).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(id: &str) -> Definition {
        Definition::Segment(id.into())
    }

    fn graph(edges: &[(Definition, &[Definition])]) -> BTreeMap<Definition, BTreeSet<Definition>> {
        edges.iter().map(|(d, deps)| (d.clone(), deps.iter().cloned().collect())).collect()
    }

    #[test]
    fn dependencies_come_first() {
        let g = graph(&[
            (seg("a"), &[seg("b"), Definition::Health]),
            (seg("b"), &[]),
            (Definition::Health, &[Definition::Stage]),
            (Definition::Stage, &[Definition::Milestone("m".into())]),
            (Definition::Milestone("m".into()), &[]),
        ]);
        assert_eq!(
            evaluation_order(&g).unwrap(),
            vec![seg("b"), Definition::Milestone("m".into()), Definition::Stage, Definition::Health, seg("a")]
        );
    }

    #[test]
    fn a_two_segment_cycle_is_named_from_its_smallest_member() {
        let g = graph(&[(seg("b"), &[seg("a")]), (seg("a"), &[seg("b")]), (seg("c"), &[seg("a")])]);
        let cycles = evaluation_order(&g).unwrap_err();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].to_string(), "segment `a` → segment `b` → segment `a`");
    }

    #[test]
    fn a_definition_reading_itself_is_a_cycle() {
        let g = graph(&[(Definition::Health, &[Definition::Health])]);
        assert_eq!(evaluation_order(&g).unwrap_err()[0].to_string(), "health → health");
    }

    #[test]
    fn separate_cycles_are_each_reported_once() {
        let g = graph(&[
            (seg("a"), &[seg("b")]),
            (seg("b"), &[seg("c")]),
            (seg("c"), &[seg("a")]),
            (Definition::Stage, &[Definition::Milestone("m".into())]),
            (Definition::Milestone("m".into()), &[Definition::Stage]),
        ]);
        let text: Vec<String> = evaluation_order(&g).unwrap_err().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "segment `a` → segment `b` → segment `c` → segment `a`",
                "milestone `m` → the journey stage → milestone `m`",
            ]
        );
    }

    #[test]
    fn unknown_dependencies_are_ignored() {
        let g = graph(&[(seg("a"), &[seg("nowhere")])]);
        assert_eq!(evaluation_order(&g).unwrap(), vec![seg("a")]);
    }
}
