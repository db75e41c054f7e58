//! A small workspace for tests: a schema like a real one and an [`Env`] over plain maps
//! with a fixed clock.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cairn_rules::{
    AggId, Aggregate, AggregateTable, Engagement, Env, ProgramScope, Rule, RuleError, Schema, Subject, Type, Value,
    compile,
};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Traits, segments, milestones, stages and pillars of a typical B2B SaaS workspace.
pub fn schema(subject: Subject) -> Schema {
    let account_traits: BTreeMap<String, Type> = [
        ("arr", Type::Number),
        ("seats", Type::Number),
        ("plan", Type::String),
        ("name", Type::String),
        ("start_date", Type::Date),
        ("renewal_date", Type::Date),
        ("is_paying", Type::Bool),
        ("domains", Type::List(Box::new(Type::String))),
        ("last_login_at", Type::Timestamp),
        ("trial_length", Type::Duration),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let contact_traits: BTreeMap<String, Type> =
        [("role", Type::String), ("email", Type::String), ("signed_up_at", Type::Timestamp), ("plan", Type::String)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
    Schema {
        subject,
        account_traits,
        contact_traits,
        segments: [("smb", Subject::Account), ("enterprise", Subject::Account), ("power_admins", Subject::Contact)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        milestones: set(&["invited_team", "first_value"]),
        stages: set(&["onboarding", "adoption", "renewal"]),
        pillars: set(&["adoption", "support"]),
        program: None,
    }
}

/// The schema of a rule in a contact program whose steps are `welcome` (send),
/// `pause` (wait), `reminder` (send), then the rule, then `later` (send) and `call` (task).
pub fn program_schema() -> Schema {
    let unavailable = [
        ("pause", "it is a `wait` step, not a `send`"),
        ("later", "it comes after this rule"),
        ("call", "it is a `task` step, not a `send`"),
    ];
    Schema {
        program: Some(ProgramScope {
            sends: vec!["welcome".to_string(), "reminder".to_string()],
            previous: Some("reminder".to_string()),
            unavailable: unavailable.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            goal: true,
        }),
        ..schema(Subject::Contact)
    }
}

/// Everything an evaluation reads, as plain data.
pub struct World {
    pub now: Timestamp,
    pub tz: TimeZone,
    pub account: HashMap<String, Value>,
    pub contact: HashMap<String, Value>,
    /// Aggregate values by what they compute (whatever the scope).
    pub aggregates: Vec<(Aggregate, Value)>,
    pub table: AggregateTable,
    pub segments: BTreeSet<String>,
    pub milestones: BTreeSet<String>,
    pub stage: Option<String>,
    pub health: HashMap<Option<String>, f64>,
    pub anchor: Option<Timestamp>,
    /// Engagement of the enrollment with send steps, and whether its goal is met.
    pub engaged: BTreeSet<(String, Engagement)>,
    pub goal_met: bool,
}

pub fn ts(text: &str) -> Timestamp {
    text.parse().expect("a test timestamp")
}

impl World {
    /// Friday 27 March 2026, 23:30 in Berlin; summer time starts on Sunday the 29th.
    pub fn new() -> World {
        World {
            now: ts("2026-03-27T22:30:00Z"),
            tz: TimeZone::get("Europe/Berlin").expect("Europe/Berlin in the bundled tzdb"),
            account: HashMap::new(),
            contact: HashMap::new(),
            aggregates: Vec::new(),
            table: AggregateTable::new(),
            segments: BTreeSet::new(),
            milestones: BTreeSet::new(),
            stage: None,
            health: HashMap::new(),
            anchor: None,
            engaged: BTreeSet::new(),
            goal_met: false,
        }
    }

    pub fn account(mut self, name: &str, value: Value) -> World {
        self.account.insert(name.to_string(), value);
        self
    }

    pub fn contact(mut self, name: &str, value: Value) -> World {
        self.contact.insert(name.to_string(), value);
        self
    }

    pub fn aggregate(mut self, aggregate: Aggregate, value: Value) -> World {
        self.aggregates.push((aggregate, value));
        self
    }

    /// Compiles `source` for `subject` (no expected type) into this world's table.
    pub fn compile(&mut self, subject: Subject, source: &str) -> Result<Rule, Vec<RuleError>> {
        compile(source, &schema(subject), None, &mut self.table)
    }

    /// Compiles and evaluates an account rule; panics with the errors if it does not compile.
    pub fn eval(&mut self, source: &str) -> Value {
        self.eval_for(Subject::Account, source)
    }

    pub fn eval_for(&mut self, subject: Subject, source: &str) -> Value {
        match self.compile(subject, source) {
            Ok(rule) => rule.eval(self),
            Err(errors) => panic!("`{source}` did not compile: {errors:?}"),
        }
    }
}

impl Env for World {
    fn now(&self) -> Timestamp {
        self.now
    }

    fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    fn account_trait(&self, name: &str) -> Value {
        self.account.get(name).cloned().unwrap_or(Value::Null)
    }

    fn contact_trait(&self, name: &str) -> Value {
        self.contact.get(name).cloned().unwrap_or(Value::Null)
    }

    fn aggregate(&self, id: AggId) -> Value {
        let wanted = &self.table.get(id).aggregate;
        self.aggregates.iter().find(|(a, _)| a == wanted).map_or(Value::Null, |(_, v)| v.clone())
    }

    fn segment(&self, id: &str) -> bool {
        self.segments.contains(id)
    }

    fn milestone_achieved(&self, id: &str) -> bool {
        self.milestones.contains(id)
    }

    fn stage(&self) -> Option<String> {
        self.stage.clone()
    }

    fn health(&self, pillar: Option<&str>) -> Option<f64> {
        self.health.get(&pillar.map(str::to_string)).copied()
    }

    fn anchor(&self) -> Option<Timestamp> {
        self.anchor
    }

    fn engagement(&self, step: &str, kind: Engagement) -> bool {
        self.engaged.contains(&(step.to_string(), kind))
    }

    fn goal_met(&self) -> bool {
        self.goal_met
    }
}
