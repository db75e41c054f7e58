//! The root variables a part is rendered with, built straight from a [`RenderContext`] into
//! liquid's values: only the roots a part names, and for the HTML part with every string
//! and object key HTML-escaped.
//!
//! The shape and the values are exactly those of [`RenderContext::to_json`] as
//! `liquid::to_object` would convert it (integers as i64, other numbers as f64, `null`
//! inside a value as nil, an integer above `i64::MAX` refused), without the detour through
//! JSON and serde: this runs once per message. The tests of `render.rs` check the two
//! against each other.

use std::collections::BTreeMap;

use liquid_core::model::{KString, Object, Value};

use crate::context::{ACCOUNT_FIELDS, CONTACT_FIELDS, Number, RenderContext, template_time};
use crate::insights::{Benchmark, Entry, Leaderboard};
use crate::reads::{ROOT_NAMES, Reads, RootReads, Roots};
use crate::render::{escape_html, has_markup};

/// An integer Liquid cannot hold (above `i64::MAX`): what `liquid::to_object` refused with
/// "Cannot fit number".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NumberTooLarge;

impl NumberTooLarge {
    /// liquid's message for it.
    pub(crate) const MESSAGE: &'static str = "Cannot fit number";
}

/// What a template reads, as rendering needs it: worked out once, when it is parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TemplateReads {
    /// What the plain parts (subject, preheader, text) read.
    plain: RootReads,
    /// What the HTML part reads.
    html: RootReads,
    /// What any part reads.
    all: RootReads,
    /// The roots whose name is written anywhere in the template.
    written: Roots,
    /// The paths (root, fields) that are nil rather than missing when the recipient has
    /// no value there: those the template only pipes into `default`.
    defaulted: Vec<(usize, Vec<String>)>,
}

impl TemplateReads {
    /// What a template whose plain parts read `plain`, whose HTML part reads `html` and
    /// whose sources name the roots `written` reads; the `defaulted` paths are nil when
    /// the recipient has no value there.
    pub(crate) fn new(
        plain: RootReads,
        html: RootReads,
        written: Roots,
        defaulted: Vec<(usize, Vec<String>)>,
    ) -> TemplateReads {
        let all = plain.union(&html);
        TemplateReads { plain, html, all, written, defaulted }
    }

    /// The paths that are nil rather than missing when the recipient has no value there.
    #[cfg(test)]
    pub(crate) fn defaulted(&self) -> &[(usize, Vec<String>)] {
        &self.defaulted
    }
}

/// The roots of one message: as they are for the plain parts, escaped for the HTML part.
pub(crate) struct RootValues {
    plain: [Option<Value>; ROOT_NAMES.len()],
    /// A root's escaped value; absent when the HTML part does not name it or when escaping
    /// changes nothing in it (then the HTML part reads the plain value).
    escaped: [Option<Value>; ROOT_NAMES.len()],
}

/// The globals of one part: the roots it names, borrowed from [`RootValues`].
pub(crate) type Globals<'v> = BTreeMap<KString, &'v Value>;

impl RootValues {
    /// Builds what `reads` says the template can read: for the plain parts as it is, for
    /// the HTML part escaped (a root once for both when escaping changes nothing in it).
    ///
    /// An integer above `i64::MAX` anywhere in a root whose name the template has anywhere
    /// (even in text) fails, read or not, as it did when every such root was converted
    /// whole.
    pub(crate) fn build(context: &RenderContext, reads: &TemplateReads) -> Result<RootValues, NumberTooLarge> {
        for root in (0..ROOT_NAMES.len()).filter(|root| reads.written.contains(*root)) {
            check_numbers(context, root)?;
        }
        let mut values = RootValues { plain: Default::default(), escaped: Default::default() };
        for root in 0..ROOT_NAMES.len() {
            let html = reads.html.root(root);
            if *reads.all.root(root) == Reads::Nothing {
                continue;
            }
            let mut escaped_needed = *html != Reads::Nothing;
            if *reads.plain.root(root) != Reads::Nothing {
                // What the HTML part reads too, so that it can share the value.
                let mut builder = Builder { html: false, markup: false, reads: reads.all.root(root) };
                values.plain[root] = Some(builder.root(context, root)?);
                escaped_needed &= builder.markup;
            }
            if escaped_needed {
                values.escaped[root] = Some(Builder { html: true, markup: false, reads: html }.root(context, root)?);
            }
            for (_, fields) in reads.defaulted.iter().filter(|(r, _)| *r == root) {
                for value in [&mut values.plain[root], &mut values.escaped[root]].into_iter().flatten() {
                    fill_nil(value, fields);
                }
            }
        }
        Ok(values)
    }

    /// The globals of a part reading `reads`; `html` for the HTML part.
    pub(crate) fn globals(&self, reads: &RootReads, html: bool) -> Globals<'_> {
        let roots = reads.roots();
        (0..ROOT_NAMES.len())
            .filter(|root| roots.contains(*root))
            .filter_map(|root| {
                let escaped = if html { self.escaped[root].as_ref() } else { None };
                Some((KString::from_static(ROOT_NAMES[root]), escaped.or(self.plain[root].as_ref())?))
            })
            .collect()
    }
}

/// Sets the first field of `fields` missing under `value` to nil (a missing value, as
/// Liquid defines it); leaves the value alone where it is not an object.
fn fill_nil(value: &mut Value, fields: &[String]) {
    let (Some((first, rest)), Value::Object(object)) = (fields.split_first(), value) else { return };
    match object.get_mut(first.as_str()) {
        Some(inner) => fill_nil(inner, rest),
        None => {
            object.insert(KString::from_ref(first), Value::Nil);
        }
    }
}

/// Fails when the root at `root` holds an integer Liquid cannot hold (traits a built-in
/// field replaces do not count: they never reached `liquid::to_object`).
fn check_numbers(context: &RenderContext, root: usize) -> Result<(), NumberTooLarge> {
    fn fits(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(n) => n.is_i64() || !n.is_u64(),
            serde_json::Value::Array(items) => items.iter().all(fits),
            serde_json::Value::Object(fields) => fields.values().all(fits),
            _ => true,
        }
    }
    let small = |n: usize| i64::try_from(n).is_ok();
    let traits_fit = |traits: &BTreeMap<String, serde_json::Value>, fields: &[&str]| {
        traits.iter().all(|(name, value)| fits(value) || fields.contains(&name.as_str()))
    };
    let fit = match ROOT_NAMES[root] {
        "account" => traits_fit(&context.account.traits, &ACCOUNT_FIELDS),
        "contact" => traits_fit(&context.contact.traits, &CONTACT_FIELDS),
        "metrics" => context.metrics.values().all(fits),
        "step" => context.step.values().all(fits),
        "insights" => {
            context.benchmarks.values().all(|b| small(b.rank) && small(b.peers))
                && context
                    .leaderboards
                    .values()
                    .flat_map(|l| l.top.iter().chain(&l.bottom))
                    .all(|e| small(e.rank) && i64::try_from(e.count).is_ok())
        }
        _ => true,
    };
    if fit { Ok(()) } else { Err(NumberTooLarge) }
}

/// Builds liquid values from the context's data, escaping strings and keys when `html`,
/// leaving out the fields of the root that the template cannot read.
struct Builder<'r> {
    html: bool,
    /// Whether a string or key seen so far has an HTML-significant character (so that an
    /// escaped copy would differ).
    markup: bool,
    /// What the template reads of the root being built.
    reads: &'r Reads,
}

type Built = Result<Value, NumberTooLarge>;

impl Builder<'_> {
    fn root(&mut self, context: &RenderContext, root: usize) -> Built {
        match ROOT_NAMES[root] {
            "account" => self.account(context),
            "contact" => self.contact(context),
            "metrics" => self.traits(&context.metrics, &[]).map(Value::Object),
            "insights" => self.insights(context),
            "links" => Ok(self.strings(&context.links)),
            "program" => Ok(self.strings(&context.program)),
            "step" => {
                let fields = wanted(self.reads, &context.step).map(|(k, v)| Ok((self.key(k), self.json(v)?)));
                Ok(Value::Object(fields.collect::<Result<Object, NumberTooLarge>>()?))
            }
            _ => Ok(self.text(&template_time(context.now))), // `now`
        }
    }

    fn account(&mut self, context: &RenderContext) -> Built {
        let a = &context.account;
        let mut account = self.traits(&a.traits, &ACCOUNT_FIELDS)?;
        self.field(&mut account, "id", |b| Some(b.text(&a.id)));
        self.field(&mut account, "name", |b| a.name.as_deref().map(|v| b.text(v)));
        self.field(&mut account, "plan", |b| a.plan.as_deref().map(|v| b.text(v)));
        self.field(&mut account, "seats", |_| a.seats.map(Value::scalar));
        self.field(&mut account, "arr", |_| a.arr_cents.map(|cents| number(Number::of_cents(cents))));
        self.field(&mut account, "stage", |b| a.stage.as_deref().map(|v| b.text(v)));
        self.field(&mut account, "segments", |b| Some(Value::Array(a.segments.iter().map(|s| b.text(s)).collect())));
        self.field(&mut account, "health", |b| {
            let h = a.health.as_ref()?;
            let mut health = Object::new();
            set(&mut health, "score", Number::of(h.score).map(number));
            set(&mut health, "band", Some(b.text(&h.band)));
            let pillars =
                h.pillars.iter().filter_map(|(k, v)| Some((b.key(k), number(Number::of(*v)?)))).collect::<Object>();
            set(&mut health, "pillars", Some(Value::Object(pillars)));
            Some(Value::Object(health))
        });
        self.field(&mut account, "milestones", |b| {
            let milestones = a.milestones.iter().map(|(id, m)| {
                let mut milestone = Object::new();
                set(&mut milestone, "status", Some(b.text(&m.status)));
                set(&mut milestone, "at", m.at.map(|t| b.text(&template_time(t))));
                (b.key(id), Value::Object(milestone))
            });
            Some(Value::Object(milestones.collect()))
        });
        Ok(Value::Object(account))
    }

    fn contact(&mut self, context: &RenderContext) -> Built {
        let c = &context.contact;
        let mut contact = self.traits(&c.traits, &CONTACT_FIELDS)?;
        self.field(&mut contact, "id", |b| Some(b.text(&c.id)));
        self.field(&mut contact, "email", |b| Some(b.text(&c.email)));
        self.field(&mut contact, "name", |b| c.name.as_deref().map(|v| b.text(v)));
        self.field(&mut contact, "first_name", |b| c.shown_first_name().map(|v| b.text(v)));
        self.field(&mut contact, "role", |b| c.role.as_deref().map(|v| b.text(v)));
        self.field(&mut contact, "timezone", |b| c.timezone.as_deref().map(|v| b.text(v)));
        Ok(Value::Object(contact))
    }

    fn insights(&mut self, context: &RenderContext) -> Built {
        let mut insights = Object::new();
        if self.reads.field("benchmark") {
            let benchmarks = context.benchmarks.iter().map(|(metric, b)| Ok((self.key(metric), benchmark(b)?)));
            let benchmarks = benchmarks.collect::<Result<Object, NumberTooLarge>>()?;
            set(&mut insights, "benchmark", Some(Value::Object(benchmarks)));
        }
        if self.reads.field("leaderboard") {
            let leaderboards =
                context.leaderboards.iter().map(|(event, l)| Ok((self.key(event), self.leaderboard(l)?)));
            let leaderboards = leaderboards.collect::<Result<Object, NumberTooLarge>>()?;
            set(&mut insights, "leaderboard", Some(Value::Object(leaderboards)));
        }
        Ok(Value::Object(insights))
    }

    fn leaderboard(&mut self, leaderboard: &Leaderboard) -> Built {
        let mut board = Object::new();
        for (name, entries) in [("top", &leaderboard.top), ("bottom", &leaderboard.bottom)] {
            let entries = entries.iter().map(|e| self.entry(e)).collect::<Result<Vec<Value>, NumberTooLarge>>()?;
            set(&mut board, name, Some(Value::Array(entries)));
        }
        Ok(Value::Object(board))
    }

    fn entry(&mut self, entry: &Entry) -> Built {
        let mut fields = Object::new();
        set(&mut fields, "rank", Some(whole(entry.rank)?));
        set(&mut fields, "name", Some(self.text(&entry.name)));
        set(&mut fields, "email", Some(self.text(&entry.email)));
        set(&mut fields, "count", Some(whole(entry.count)?));
        Ok(Value::Object(fields))
    }

    /// Sets a field of the root to what `value` builds, when the template can read it.
    fn field(&mut self, root: &mut Object, field: &'static str, value: impl FnOnce(&mut Self) -> Option<Value>) {
        if self.reads.field(field) {
            let value = value(self);
            set(root, field, value);
        }
    }

    /// Traits (or metrics) by name, `null` ones left out, and those named like one of the
    /// built-in `fields` (which replace them).
    fn traits(
        &mut self,
        traits: &BTreeMap<String, serde_json::Value>,
        fields: &[&str],
    ) -> Result<Object, NumberTooLarge> {
        wanted(self.reads, traits)
            .filter(|(k, v)| !v.is_null() && !fields.contains(&k.as_str()))
            .map(|(k, v)| Ok((self.key(k), self.json(v)?)))
            .collect()
    }

    fn strings(&mut self, strings: &BTreeMap<String, String>) -> Value {
        Value::Object(wanted(self.reads, strings).map(|(k, v)| (self.key(k), self.text(v))).collect())
    }

    /// A JSON value as `liquid::to_object` converts it.
    fn json(&mut self, value: &serde_json::Value) -> Built {
        use serde_json::Value as Json;
        Ok(match value {
            Json::Null => Value::Nil,
            Json::Bool(b) => Value::scalar(*b),
            Json::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::scalar(i),
                _ if n.is_u64() => return Err(NumberTooLarge),
                (None, Some(x)) => Value::scalar(x),
                (None, None) => Value::Nil,
            },
            Json::String(s) => self.text(s),
            Json::Array(items) => {
                Value::Array(items.iter().map(|v| self.json(v)).collect::<Result<Vec<Value>, NumberTooLarge>>()?)
            }
            Json::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((self.key(k), self.json(v)?)))
                    .collect::<Result<Object, NumberTooLarge>>()?,
            ),
        })
    }

    fn text(&mut self, text: &str) -> Value {
        Value::scalar(self.key(text))
    }

    fn key(&mut self, text: &str) -> KString {
        if has_markup(text) {
            self.markup = true;
            if self.html {
                return KString::from_string(escape_html(text));
            }
        }
        KString::from_ref(text)
    }
}

/// The entries of `fields` (traits, metrics, links, …) that a template reading `reads` of
/// their root can read.
fn wanted<'m, V>(reads: &'m Reads, fields: &'m BTreeMap<String, V>) -> impl Iterator<Item = (&'m String, &'m V)> {
    let names = reads.fields();
    let named = names.into_iter().flatten().filter_map(|name| fields.get_key_value(name));
    let all = names.is_none().then(|| fields.iter()).into_iter().flatten();
    named.chain(all)
}

/// Sets `field` to `value`; a field without a value is absent (and so is a trait of the
/// same name: [`Builder::traits`] leaves those out).
fn set(object: &mut Object, field: &'static str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(KString::from_static(field), value);
    }
}

fn number(number: Number) -> Value {
    match number {
        Number::Whole(n) => Value::scalar(n),
        Number::Fraction(x) => Value::scalar(x),
    }
}

/// A count or rank, which liquid holds as an i64.
fn whole(n: impl TryInto<i64>) -> Built {
    n.try_into().map(Value::scalar).map_err(|_| NumberTooLarge)
}

fn benchmark(b: &Benchmark) -> Built {
    let mut fields = Object::new();
    set(&mut fields, "value", Number::of(b.value).map(number));
    set(&mut fields, "percentile", Number::of(b.percentile.round()).map(number));
    set(&mut fields, "rank", Some(whole(b.rank)?));
    set(&mut fields, "peers", Some(whole(b.peers)?));
    set(&mut fields, "median", Number::of(b.median).map(number));
    set(&mut fields, "p75", Number::of(b.p75).map(number));
    Ok(Value::Object(fields))
}
