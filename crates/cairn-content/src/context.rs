//! The data a template is rendered with ([`RenderContext`]), its shape as `cairn check`
//! knows it ([`ContextSchema`]), and the check of a template's variables against it.
//!
//! The context, as templates see it:
//!
//! ```text
//! account      id, name, plan, seats, arr (currency units, from cents), each trait
//!              (built-in: industry, employees, owner_email, start_date, renewal_date;
//!              and the workspace's custom traits, by name), stage, segments (list of ids),
//!              health { score, band, pillars { <pillar>: score } },
//!              milestones { <milestone>: { status, at } }
//! contact      id, email, name, first_name, role, timezone, each trait
//! metrics      { <name>: value }                  named values the caller supplies
//! insights     benchmark   { <id>: { value, percentile, rank, peers, median, p75 } }
//!              leaderboard { <id>: { top: [entry], bottom: [entry] } }
//!                          entry = { rank, name, email, count }
//!              (the ids are the workspace's `insights:` declarations; a benchmark the
//!              caller withholds, e.g. too few peers, is absent)
//! links        unsubscribe_url, preferences_url, nps_survey_url, csat_survey_url, and
//!              any other link the caller names
//! program      id, name
//! step         id, index, variant
//! now          the send instant, "YYYY-MM-DD HH:MM:SS +0000" (usable with `date`)
//! ```
//!
//! A value the caller does not have is *absent*, not empty: referring to it fails the
//! render with [`crate::RenderError::Undefined`] instead of leaving a blank. Templates
//! test optional data with `{% if account.renewal_date %}…{% endif %}` (a condition on
//! something absent is false) or give it a fallback with `default`, which applies to a
//! missing value as Liquid defines it (`{{ contact.name | default: 'there' }}`: a path
//! the template only ever pipes into `default` or tests is nil when absent). Custom
//! traits are flattened beside the built-in fields; a trait named like a built-in field
//! (`stage`, `health`, …) is shadowed by it.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::insights::{Benchmark, Leaderboard};
use crate::source::{ContentError, line_col};
use crate::template::ParsedTemplate;

/// The time format of `now` and milestone times: one liquid's `date` filter reads.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S +0000";

/// `time` as templates see it (`now`, a milestone's `at`).
pub(crate) fn template_time(time: Timestamp) -> String {
    time.strftime(TIME_FORMAT).to_string()
}

/// Built-in account traits other than the fixed fields (the workspace's built-ins).
const ACCOUNT_BUILTIN_TRAITS: [&str; 5] = ["industry", "employees", "owner_email", "start_date", "renewal_date"];
/// The account's built-in fields: a trait of the same name never reaches a template.
pub(crate) const ACCOUNT_FIELDS: [&str; 9] =
    ["id", "name", "plan", "seats", "arr", "stage", "segments", "health", "milestones"];
/// The contact's built-in fields: a trait of the same name never reaches a template.
pub(crate) const CONTACT_FIELDS: [&str; 6] = ["id", "email", "name", "first_name", "role", "timezone"];
/// The links every message may carry.
const STANDARD_LINKS: [&str; 4] = ["unsubscribe_url", "preferences_url", "nps_survey_url", "csat_survey_url"];

/// An account's health as a template sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthData {
    /// Overall score, 0–100.
    pub score: f64,
    /// Band: `red`, `yellow` or `green`.
    pub band: String,
    /// Score per pillar id.
    pub pillars: BTreeMap<String, f64>,
}

/// A milestone's status as a template sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MilestoneData {
    /// `pending`, `achieved` or `missed`.
    pub status: String,
    /// When it was achieved or missed.
    pub at: Option<Timestamp>,
}

/// The account a message is about.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountData {
    /// Account id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Plan.
    pub plan: Option<String>,
    /// Seats.
    pub seats: Option<i64>,
    /// ARR in cents; templates see currency units (`arr`).
    pub arr_cents: Option<i64>,
    /// Other traits, built-in (`industry`, `renewal_date`, …) and custom, by name. `null`
    /// values count as absent.
    pub traits: BTreeMap<String, Value>,
    /// Journey stage id.
    pub stage: Option<String>,
    /// Ids of the segments the account is in.
    pub segments: Vec<String>,
    /// Health, when scored.
    pub health: Option<HealthData>,
    /// Milestones by id.
    pub milestones: BTreeMap<String, MilestoneData>,
}

/// The person a message is for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactData {
    /// Contact id.
    pub id: String,
    /// Email address.
    pub email: String,
    /// Full name.
    pub name: Option<String>,
    /// First name; when not given, the first word of `name`.
    pub first_name: Option<String>,
    /// Role (`admin`, `user`, …).
    pub role: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
    /// Other traits by name; `null` values count as absent.
    pub traits: BTreeMap<String, Value>,
}

impl ContactData {
    /// The first name templates see: `first_name`, or else the first word of `name`.
    pub(crate) fn shown_first_name(&self) -> Option<&str> {
        self.first_name.as_deref().or_else(|| self.name.as_deref().and_then(|n| n.split_whitespace().next()))
    }
}

/// Everything one message is rendered with. Fill it with plain data; [`crate::render`]
/// escapes what goes into HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderContext {
    /// The account.
    pub account: AccountData,
    /// The contact.
    pub contact: ContactData,
    /// Named values (aggregates, KPIs) by name.
    pub metrics: BTreeMap<String, Value>,
    /// Benchmarks by id.
    pub benchmarks: BTreeMap<String, Benchmark>,
    /// Leaderboards by id.
    pub leaderboards: BTreeMap<String, Leaderboard>,
    /// Links by name (`unsubscribe_url`, …), already signed by the caller.
    pub links: BTreeMap<String, String>,
    /// The program sending (`id`, `name`).
    pub program: BTreeMap<String, String>,
    /// The step sending (`id`, `index`, `variant`).
    pub step: BTreeMap<String, Value>,
    /// The send instant.
    pub now: Timestamp,
}

impl RenderContext {
    /// A context for `account` and `contact` at `now`, with nothing else yet.
    pub fn new(account: AccountData, contact: ContactData, now: Timestamp) -> RenderContext {
        RenderContext {
            account,
            contact,
            metrics: BTreeMap::new(),
            benchmarks: BTreeMap::new(),
            leaderboards: BTreeMap::new(),
            links: BTreeMap::new(),
            program: BTreeMap::new(),
            step: BTreeMap::new(),
            now,
        }
    }

    /// Adds a named value (`metrics.<name>`).
    pub fn metric(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metrics.insert(name.into(), value.into());
        self
    }

    /// Adds a benchmark (`insights.benchmark.<id>`).
    pub fn benchmark(mut self, id: impl Into<String>, benchmark: Benchmark) -> Self {
        self.benchmarks.insert(id.into(), benchmark);
        self
    }

    /// Adds a leaderboard (`insights.leaderboard.<id>`).
    pub fn leaderboard(mut self, id: impl Into<String>, leaderboard: Leaderboard) -> Self {
        self.leaderboards.insert(id.into(), leaderboard);
        self
    }

    /// Adds a link (`links.<name>`).
    pub fn link(mut self, name: impl Into<String>, url: impl Into<String>) -> Self {
        self.links.insert(name.into(), url.into());
        self
    }

    /// Sets the program and step sending the message.
    pub fn sent_by(mut self, program_id: &str, program_name: &str, step_id: &str, step_index: u32) -> Self {
        self.program =
            BTreeMap::from([("id".to_owned(), program_id.to_owned()), ("name".to_owned(), program_name.to_owned())]);
        self.step = BTreeMap::from([("id".to_owned(), json!(step_id)), ("index".to_owned(), json!(step_index))]);
        self
    }

    /// Sets the A/B variant of the step (`step.variant`).
    pub fn variant(mut self, variant: &str) -> Self {
        self.step.insert("variant".to_owned(), json!(variant));
        self
    }

    /// The context as the JSON tree templates read (see the module documentation).
    /// [`crate::render()`] does not go through it: it builds Liquid's values directly, and
    /// only what the template reads; its tests hold the two to the same output.
    pub fn to_json(&self) -> Value {
        let a = &self.account;
        let mut account = traits(&a.traits);
        insert(&mut account, "id", Some(json!(a.id)));
        insert(&mut account, "name", a.name.as_ref().map(|v| json!(v)));
        insert(&mut account, "plan", a.plan.as_ref().map(|v| json!(v)));
        insert(&mut account, "seats", a.seats.map(|v| json!(v)));
        insert(&mut account, "arr", a.arr_cents.map(cents_to_units));
        insert(&mut account, "stage", a.stage.as_ref().map(|v| json!(v)));
        insert(&mut account, "segments", Some(json!(a.segments)));
        insert(
            &mut account,
            "health",
            a.health.as_ref().map(|h| {
                let pillars: Map<String, Value> =
                    h.pillars.iter().filter_map(|(k, v)| Some((k.clone(), number(*v)?))).collect();
                let mut health = Map::new();
                insert(&mut health, "score", number(h.score));
                insert(&mut health, "band", Some(json!(h.band)));
                health.insert("pillars".to_owned(), Value::Object(pillars));
                Value::Object(health)
            }),
        );
        let milestones: Map<String, Value> = a
            .milestones
            .iter()
            .map(|(id, m)| {
                let mut milestone = Map::new();
                milestone.insert("status".to_owned(), json!(m.status));
                insert(&mut milestone, "at", m.at.map(|t| json!(template_time(t))));
                (id.clone(), Value::Object(milestone))
            })
            .collect();
        account.insert("milestones".to_owned(), Value::Object(milestones));

        let c = &self.contact;
        let mut contact = traits(&c.traits);
        insert(&mut contact, "id", Some(json!(c.id)));
        insert(&mut contact, "email", Some(json!(c.email)));
        insert(&mut contact, "name", c.name.as_ref().map(|v| json!(v)));
        insert(&mut contact, "first_name", c.shown_first_name().map(|v| json!(v)));
        insert(&mut contact, "role", c.role.as_ref().map(|v| json!(v)));
        insert(&mut contact, "timezone", c.timezone.as_ref().map(|v| json!(v)));

        let benchmark: Map<String, Value> = self
            .benchmarks
            .iter()
            .map(|(metric, b)| {
                let mut fields = Map::new();
                insert(&mut fields, "value", number(b.value));
                insert(&mut fields, "percentile", number(b.percentile.round()));
                fields.insert("rank".to_owned(), json!(b.rank));
                fields.insert("peers".to_owned(), json!(b.peers));
                insert(&mut fields, "median", number(b.median));
                insert(&mut fields, "p75", number(b.p75));
                (metric.clone(), Value::Object(fields))
            })
            .collect();
        let leaderboard: Map<String, Value> = self
            .leaderboards
            .iter()
            .map(|(event, l)| (event.clone(), serde_json::to_value(l).unwrap_or(Value::Null)))
            .collect();

        json!({
            "account": account,
            "contact": contact,
            "metrics": self.metrics.iter().filter(|(_, v)| !v.is_null()).collect::<BTreeMap<_, _>>(),
            "insights": { "benchmark": benchmark, "leaderboard": leaderboard },
            "links": self.links,
            "program": self.program,
            "step": self.step,
            "now": template_time(self.now),
        })
    }
}

fn traits(traits: &BTreeMap<String, Value>) -> Map<String, Value> {
    traits.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(value) => {
            map.insert(key.to_owned(), value);
        }
        None => {
            map.remove(key);
        }
    }
}

/// A number as templates see it: whole numbers as integers (so `24000`, not `24000.0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    /// A whole number.
    Whole(i64),
    /// Any other finite number.
    Fraction(f64),
}

impl Number {
    /// `value` as templates see it; `None` when it is not finite (then it is absent).
    pub(crate) fn of(value: f64) -> Option<Number> {
        if !value.is_finite() {
            return None;
        }
        if value.fract() == 0.0 && value.abs() < 9.0e15 {
            Some(Number::Whole(value as i64))
        } else {
            Some(Number::Fraction(value))
        }
    }

    /// An amount in cents as currency units.
    pub(crate) fn of_cents(cents: i64) -> Number {
        if cents % 100 == 0 { Number::Whole(cents / 100) } else { Number::Fraction(cents as f64 / 100.0) }
    }

    fn to_json(self) -> Value {
        match self {
            Number::Whole(n) => json!(n),
            Number::Fraction(x) => json!(x),
        }
    }
}

/// A finite number as JSON, whole numbers as integers (so `24000`, not `24000.0`).
fn number(value: f64) -> Option<Value> {
    Number::of(value).map(Number::to_json)
}

fn cents_to_units(cents: i64) -> Value {
    Number::of_cents(cents).to_json()
}

/// What can exist in a render context, for `cairn check`: the built-in shape plus the
/// workspace's names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextSchema {
    /// Custom account traits declared in the workspace.
    pub account_traits: BTreeSet<String>,
    /// Custom contact traits declared in the workspace.
    pub contact_traits: BTreeSet<String>,
    /// Milestone ids.
    pub milestones: BTreeSet<String>,
    /// Health pillar ids.
    pub pillars: BTreeSet<String>,
    /// Names of the metrics the caller supplies.
    pub metrics: BTreeSet<String>,
    /// Ids of the benchmarks the caller may supply.
    pub benchmarks: BTreeSet<String>,
    /// Ids of the leaderboards the caller may supply.
    pub leaderboards: BTreeSet<String>,
    /// Links beyond the standard ones (`unsubscribe_url`, `preferences_url`,
    /// `nps_survey_url`, `csat_survey_url`).
    pub links: BTreeSet<String>,
}

/// The shape of a value, as far as checking needs it.
#[derive(Debug, Clone)]
enum Shape {
    /// A scalar; `text` allows `.size`.
    Scalar { text: bool },
    /// Anything (trait values, metrics): not checked further.
    Any,
    /// A list of `element`.
    List(Box<Shape>),
    /// An object with exactly these fields.
    Record(BTreeMap<String, Shape>),
}

fn record<'a>(fields: impl IntoIterator<Item = (&'a str, Shape)>) -> Shape {
    Shape::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn keyed<'a>(keys: impl IntoIterator<Item = &'a String>, shape: &Shape) -> Shape {
    Shape::Record(keys.into_iter().map(|k| (k.clone(), shape.clone())).collect())
}

const TEXT: Shape = Shape::Scalar { text: true };
const NUMBER: Shape = Shape::Scalar { text: false };

impl ContextSchema {
    fn shape(&self) -> Shape {
        let mut account: BTreeMap<String, Shape> = BTreeMap::new();
        for name in self.account_traits.iter().map(String::as_str).chain(ACCOUNT_BUILTIN_TRAITS) {
            account.insert(name.to_owned(), Shape::Any);
        }
        let milestone = record([("status", TEXT), ("at", TEXT)]);
        let health = record([("score", NUMBER), ("band", TEXT), ("pillars", keyed(&self.pillars, &NUMBER))]);
        for (name, shape) in [
            ("id", TEXT),
            ("name", TEXT),
            ("plan", TEXT),
            ("seats", NUMBER),
            ("arr", NUMBER),
            ("stage", TEXT),
            ("segments", Shape::List(Box::new(TEXT))),
            ("health", health),
            ("milestones", keyed(&self.milestones, &milestone)),
        ] {
            account.insert(name.to_owned(), shape);
        }
        let mut contact: BTreeMap<String, Shape> =
            self.contact_traits.iter().map(|n| (n.clone(), Shape::Any)).collect();
        for name in CONTACT_FIELDS {
            contact.insert(name.to_owned(), TEXT);
        }
        let benchmark =
            record(["value", "percentile", "rank", "peers", "median", "p75"].into_iter().map(|field| (field, NUMBER)));
        let entry = record([("rank", NUMBER), ("name", TEXT), ("email", TEXT), ("count", NUMBER)]);
        let board = record([("top", Shape::List(Box::new(entry.clone()))), ("bottom", Shape::List(Box::new(entry)))]);
        let links: Vec<String> =
            STANDARD_LINKS.iter().map(|l| (*l).to_owned()).chain(self.links.iter().cloned()).collect();
        record([
            ("account", Shape::Record(account)),
            ("contact", Shape::Record(contact)),
            ("metrics", keyed(&self.metrics, &Shape::Any)),
            (
                "insights",
                record([
                    ("benchmark", keyed(&self.benchmarks, &benchmark)),
                    ("leaderboard", keyed(&self.leaderboards, &board)),
                ]),
            ),
            ("links", keyed(&links, &TEXT)),
            ("program", record([("id", TEXT), ("name", TEXT)])),
            ("step", record([("id", TEXT), ("index", NUMBER), ("variant", TEXT)])),
            ("now", TEXT),
        ])
    }
}

/// The references of `template` to things that can never exist in a context of `schema`:
/// an unknown root variable (`{{ acount.name }}`), an unknown field of a built-in object
/// (`{{ account.nme }}`), an undeclared trait, milestone, pillar, metric, benchmark,
/// leaderboard or link. Each error points at the name, with a "did you mean" when one is
/// close. Names the template binds itself (`assign`, `capture`, `for`) are its own and
/// not checked; nor is anything inside a trait or metric value.
pub fn check_variables(template: &ParsedTemplate, schema: &ContextSchema) -> Vec<ContentError> {
    let shape = schema.shape();
    let Shape::Record(roots) = &shape else { return Vec::new() };
    let mut errors = Vec::new();
    for part in &template.parts {
        let source_of = |offset: usize| line_col_in(part, offset);
        for path in &part.scan.paths {
            let (root, root_at) = &path.root;
            if part.scan.bindings.contains(root) {
                continue;
            }
            let Some(mut current) = roots.get(root) else {
                let known = roots.keys().map(String::as_str).chain(part.scan.bindings.iter().map(String::as_str));
                let suggestion = crate::suggest::closest(root, known);
                let message = match suggestion {
                    Some(near) => format!("unknown variable `{root}`, did you mean `{near}`?"),
                    None => format!("unknown variable `{root}`"),
                };
                let help = format!("the variables are {}", quoted(roots.keys()));
                errors.push(ContentError::at(&part.origin, part.part, source_of(*root_at), message, Some(help)));
                continue;
            };
            let mut walked = root.clone();
            for (segment, at) in &path.segments {
                let problem = match current {
                    Shape::Any => break,
                    Shape::Record(fields) => match fields.get(segment) {
                        Some(next) => {
                            current = next;
                            None
                        }
                        None if segment == "size" => break,
                        None => {
                            let suggestion = crate::suggest::closest(segment, fields.keys().map(String::as_str));
                            let message = match suggestion {
                                Some(near) => format!("`{walked}` has no field `{segment}`, did you mean `{near}`?"),
                                None => format!("`{walked}` has no field `{segment}`"),
                            };
                            let help = if fields.is_empty() {
                                format!("nothing is declared under `{walked}` in the workspace")
                            } else {
                                format!("the fields of `{walked}` are {}", quoted(fields.keys()))
                            };
                            Some((message, help))
                        }
                    },
                    Shape::List(element) => match segment.as_str() {
                        "first" | "last" => {
                            current = element;
                            None
                        }
                        "size" => break,
                        _ => Some((
                            format!("`{walked}` is a list; it has no field `{segment}`"),
                            format!(
                                "use `{walked}.first`, `{walked}[0]`, `{walked}.size` or loop with `{{% for item in {walked} %}}`"
                            ),
                        )),
                    },
                    Shape::Scalar { text } => {
                        if *text && segment == "size" {
                            break;
                        }
                        Some((
                            format!("`{walked}` is a value; it has no field `{segment}`"),
                            format!("write `{{{{ {walked} }}}}`"),
                        ))
                    }
                };
                if let Some((message, help)) = problem {
                    errors.push(ContentError::at(&part.origin, part.part, source_of(*at), message, Some(help)));
                    break;
                }
                walked.push('.');
                walked.push_str(segment);
            }
        }
    }
    errors
}

fn line_col_in(part: &crate::template::ParsedPart, offset: usize) -> (u32, u32) {
    line_col(&part.source, offset)
}

fn quoted<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if names.len() > 12 {
        format!("{}, … ({} in all)", names[..12].join(", "), names.len())
    } else {
        names.join(", ")
    }
}
