//! The compiled form of a rule and its evaluation. Names and functions are resolved
//! before this point: the tree holds trait names to read, aggregate slots and function
//! tags, never text to look up. Evaluation never panics: a value of an unexpected kind
//! (say, an [`Env`] returning text for a number trait) evaluates to `Null`.

use std::cmp::Ordering;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

use crate::{AggId, Engagement, Env, Value};

const SECONDS_PER_DAY: i64 = 86_400;

/// A node of a compiled rule.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Value),
    AccountTrait(Arc<str>),
    ContactTrait(Arc<str>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Compare(Cmp, Box<Node>, Box<Node>),
    Arith(Arith, Box<Node>, Box<Node>),
    Concat(Box<Node>, Box<Node>),
    /// The right side evaluates to a list.
    In {
        value: Box<Node>,
        list: Box<Node>,
        negated: bool,
    },
    Between {
        value: Box<Node>,
        low: Box<Node>,
        high: Box<Node>,
        negated: bool,
    },
    IsNull {
        value: Box<Node>,
        negated: bool,
    },
    Like {
        value: Box<Node>,
        pattern: Box<Node>,
        negated: bool,
    },
    Case {
        branches: Vec<(Node, Node)>,
        otherwise: Option<Box<Node>>,
    },
    List(Vec<Node>),
    /// The rule's n-th aggregate (an index into [`crate::Rule::aggregates`]).
    Aggregate(usize),
    Segment(Arc<str>),
    Milestone(Arc<str>),
    Stage,
    Health(Option<Arc<str>>),
    /// Engagement with a program's send step.
    Engagement(Engagement, Arc<str>),
    /// The program's goal.
    Goal,
    Now,
    Age,
    /// A date as the instant its day starts in the workspace time zone (so dates and
    /// timestamps compare).
    StartOfDay(Box<Node>),
    Call(Func, Vec<Node>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// The operator with its sides swapped: `a < b` is `b > a`.
    pub(crate) fn mirrored(self) -> Cmp {
        match self {
            Cmp::Eq => Cmp::Eq,
            Cmp::Ne => Cmp::Ne,
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
        }
    }
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// A scalar function, resolved at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Lower,
    Upper,
    Length,
    Trim,
    Contains,
    StartsWith,
    EndsWith,
    Concat,
    Abs,
    Round,
    Floor,
    Ceil,
    Least,
    Greatest,
    Coalesce,
    DaysSince,
    DaysUntil,
    Date,
}

/// Whether evaluating `node` reads the evaluation instant (`now()`, `age()`,
/// `days_since`, `days_until`): such a value can change with the passing of time alone.
pub(crate) fn reads_clock(node: &Node) -> bool {
    matches!(node, Node::Now | Node::Age | Node::Call(Func::DaysSince | Func::DaysUntil, _))
        || children(node).into_iter().any(reads_clock)
}

/// Whether evaluating `node` reads the instant within its day (`now()`, `age()`), not
/// only the day (`days_since`, `days_until`): such a value can change between two
/// moments of one day with nothing else changing.
pub(crate) fn reads_instant(node: &Node) -> bool {
    matches!(node, Node::Now | Node::Age) || children(node).into_iter().any(reads_instant)
}

/// Adds to `out` the slots of the aggregates `node` reads other than as the whole
/// argument of a day count (`days_since(last_seen())` reads only the day of its
/// aggregate: a later time on the same day gives the same count).
pub(crate) fn exact_aggregate_slots(node: &Node, out: &mut Vec<usize>) {
    match node {
        Node::Aggregate(slot) => out.push(*slot),
        Node::Call(Func::DaysSince | Func::DaysUntil, args) if matches!(args.as_slice(), [Node::Aggregate(_)]) => {}
        _ => children(node).into_iter().for_each(|c| exact_aggregate_slots(c, out)),
    }
}

/// The nodes directly under `node`.
fn children(node: &Node) -> Vec<&Node> {
    match node {
        Node::Const(_)
        | Node::AccountTrait(_)
        | Node::ContactTrait(_)
        | Node::Aggregate(_)
        | Node::Segment(_)
        | Node::Milestone(_)
        | Node::Stage
        | Node::Health(_)
        | Node::Engagement(..)
        | Node::Goal
        | Node::Now
        | Node::Age => Vec::new(),
        Node::Not(e) | Node::Neg(e) | Node::StartOfDay(e) => vec![e],
        Node::And(a, b) | Node::Or(a, b) | Node::Compare(_, a, b) | Node::Arith(_, a, b) | Node::Concat(a, b) => {
            vec![a, b]
        }
        Node::In { value, list, .. } => vec![value, list],
        Node::Between { value, low, high, .. } => vec![value, low, high],
        Node::IsNull { value, .. } => vec![value],
        Node::Like { value, pattern, .. } => vec![value, pattern],
        Node::Case { branches, otherwise } => {
            branches.iter().flat_map(|(c, r)| [c, r]).chain(otherwise.as_deref()).collect()
        }
        Node::List(items) | Node::Call(_, items) => items.iter().collect(),
    }
}

/// What one evaluation reads.
pub(crate) struct Context<'a> {
    pub env: &'a dyn Env,
    pub aggregates: &'a [AggId],
}

fn truth(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn from_truth(truth: Option<bool>) -> Value {
    truth.map_or(Value::Null, Value::Bool)
}

/// A number result, with "not a number" (e.g. infinity minus infinity) as `Null`.
fn number(n: f64) -> Value {
    if n.is_nan() { Value::Null } else { Value::Number(n) }
}

fn duration_from_f64(seconds: f64) -> Value {
    let rounded = seconds.round();
    if rounded.is_finite() && rounded.abs() < i64::MAX as f64 { Value::Duration(rounded as i64) } else { Value::Null }
}

/// Orders two values of the same kind; `None` when either is `Null` or they differ.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        (Value::Duration(x), Value::Duration(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// SQL `=`: unknown when either side is `Null`.
fn equals(a: &Value, b: &Value) -> Option<bool> {
    compare(a, b).map(|o| o == Ordering::Equal)
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub(crate) fn days_between(from: Date, to: Date) -> i64 {
    i64::from(day_number(to)) - i64::from(day_number(from))
}

/// A civil date (proleptic Gregorian) as the number of days since 1970-01-01, negative
/// before, by the days-from-civil formula: a few integer operations, where asking jiff
/// for the span between two dates is far slower (rules count days often).
pub fn day_number(date: Date) -> i32 {
    let (y, m, d) = (i32::from(date.year()), i32::from(date.month()), i32::from(date.day()));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn add_days(date: Date, days: i64) -> Value {
    jiff::Span::new().try_days(days).ok().and_then(|span| date.checked_add(span).ok()).map_or(Value::Null, Value::Date)
}

fn add_seconds(ts: Timestamp, seconds: i64) -> Value {
    ts.checked_add(SignedDuration::from_secs(seconds)).map_or(Value::Null, Value::Timestamp)
}

fn arith(op: Arith, a: Value, b: Value) -> Value {
    use Value::{Date as D, Duration as Dur, Number as N, Timestamp as Ts};
    match (op, a, b) {
        (Arith::Add, N(x), N(y)) => number(x + y),
        (Arith::Sub, N(x), N(y)) => number(x - y),
        (Arith::Mul, N(x), N(y)) => number(x * y),
        (Arith::Div, N(x), N(y)) => {
            if y == 0.0 {
                Value::Null
            } else {
                number(x / y)
            }
        }
        (Arith::Rem, N(x), N(y)) => {
            if y == 0.0 {
                Value::Null
            } else {
                number(x % y)
            }
        }
        // A date moves by whole days; a part day is dropped.
        (Arith::Add, D(d), Dur(s)) | (Arith::Add, Dur(s), D(d)) => add_days(d, s / SECONDS_PER_DAY),
        (Arith::Sub, D(d), Dur(s)) => add_days(d, -(s / SECONDS_PER_DAY)),
        (Arith::Sub, D(x), D(y)) => days_between(y, x).checked_mul(SECONDS_PER_DAY).map_or(Value::Null, Dur),
        (Arith::Add, Ts(t), Dur(s)) | (Arith::Add, Dur(s), Ts(t)) => add_seconds(t, s),
        (Arith::Sub, Ts(t), Dur(s)) => s.checked_neg().map_or(Value::Null, |s| add_seconds(t, s)),
        (Arith::Sub, Ts(x), Ts(y)) => x.as_second().checked_sub(y.as_second()).map_or(Value::Null, Dur),
        (Arith::Add, Dur(x), Dur(y)) => x.checked_add(y).map_or(Value::Null, Dur),
        (Arith::Sub, Dur(x), Dur(y)) => x.checked_sub(y).map_or(Value::Null, Dur),
        (Arith::Mul, Dur(s), N(n)) | (Arith::Mul, N(n), Dur(s)) => duration_from_f64(s as f64 * n),
        (Arith::Div, Dur(s), N(n)) => {
            if n == 0.0 {
                Value::Null
            } else {
                duration_from_f64(s as f64 / n)
            }
        }
        (Arith::Div, Dur(x), Dur(y)) => {
            if y == 0 {
                Value::Null
            } else {
                number(x as f64 / y as f64)
            }
        }
        _ => Value::Null,
    }
}

/// SQL `LIKE`: `%` matches any run of characters, `_` exactly one; case-sensitive.
pub(crate) fn like(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    // Greedy matching with backtracking to the last `%`: linear in practice, never
    // exponential.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('%') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '_' || Some(c) == text.get(t) => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).is_some_and(|rest| rest.iter().all(|c| *c == '%'))
}

/// Text of a value for `concat` (`Null` is empty).
fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.to_string(),
        Value::Date(d) => d.to_string(),
        Value::Timestamp(t) => t.to_string(),
        Value::Duration(s) => {
            for (unit, suffix) in [(604_800, 'w'), (SECONDS_PER_DAY, 'd'), (3_600, 'h'), (60, 'm')] {
                if *s != 0 && s % unit == 0 {
                    return format!("{}{suffix}", s / unit);
                }
            }
            format!("{s}s")
        }
        Value::List(items) => {
            let inner: Vec<String> = items.iter().map(to_text).collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

impl Context<'_> {
    /// The calendar day of a date or of a timestamp in the workspace time zone.
    pub(crate) fn day_of(&self, value: &Value) -> Option<Date> {
        match value {
            Value::Date(d) => Some(*d),
            Value::Timestamp(t) => Some(self.env.time_zone().to_datetime(*t).date()),
            _ => None,
        }
    }

    fn today(&self) -> Date {
        self.env.today()
    }

    pub(crate) fn eval(&self, node: &Node) -> Value {
        match node {
            Node::Const(v) => v.clone(),
            Node::AccountTrait(name) => self.env.account_trait(name),
            Node::ContactTrait(name) => self.env.contact_trait(name),
            Node::Not(e) => from_truth(truth(&self.eval(e)).map(|b| !b)),
            Node::Neg(e) => match self.eval(e) {
                Value::Number(n) => number(-n),
                Value::Duration(s) => s.checked_neg().map_or(Value::Null, Value::Duration),
                _ => Value::Null,
            },
            Node::And(a, b) => match truth(&self.eval(a)) {
                Some(false) => Value::Bool(false),
                left => match (left, truth(&self.eval(b))) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                },
            },
            Node::Or(a, b) => match truth(&self.eval(a)) {
                Some(true) => Value::Bool(true),
                left => match (left, truth(&self.eval(b))) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                },
            },
            Node::Compare(op, a, b) => {
                // A constant side is read in place: cloning it would bump the count of an
                // `Arc` every thread evaluating this rule shares.
                let ordering = match (a.as_ref(), b.as_ref()) {
                    (x, Node::Const(c)) => compare(&self.eval(x), c),
                    (Node::Const(c), y) => compare(c, &self.eval(y)),
                    _ => compare(&self.eval(a), &self.eval(b)),
                };
                from_truth(ordering.map(|o| match op {
                    Cmp::Eq => o == Ordering::Equal,
                    Cmp::Ne => o != Ordering::Equal,
                    Cmp::Lt => o == Ordering::Less,
                    Cmp::Le => o != Ordering::Greater,
                    Cmp::Gt => o == Ordering::Greater,
                    Cmp::Ge => o != Ordering::Less,
                }))
            }
            Node::Arith(op, a, b) => arith(*op, self.eval(a), self.eval(b)),
            Node::Concat(a, b) => match (self.eval(a), self.eval(b)) {
                (Value::String(x), Value::String(y)) => Value::String(format!("{x}{y}").into()),
                _ => Value::Null,
            },
            Node::In { value, list, negated } => {
                let found = match list.as_ref() {
                    Node::Const(list) => self.member(&self.eval(value), list),
                    _ => self.member(&self.eval(value), &self.eval(list)),
                };
                from_truth(found.map(|f| f != *negated))
            }
            Node::Between { value, low, high, negated } => {
                let value = self.eval(value);
                let above = compare(&value, &self.eval(low)).map(|o| o != Ordering::Less);
                let below = compare(&value, &self.eval(high)).map(|o| o != Ordering::Greater);
                let inside = match (above, below) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                from_truth(inside.map(|i| i != *negated))
            }
            Node::IsNull { value, negated } => Value::Bool((self.eval(value) == Value::Null) != *negated),
            Node::Like { value, pattern, negated } => match (self.eval(value), self.eval(pattern)) {
                (Value::String(text), Value::String(pattern)) => Value::Bool(like(&text, &pattern) != *negated),
                _ => Value::Null,
            },
            Node::Case { branches, otherwise } => {
                for (condition, result) in branches {
                    if truth(&self.eval(condition)) == Some(true) {
                        return self.eval(result);
                    }
                }
                otherwise.as_ref().map_or(Value::Null, |e| self.eval(e))
            }
            Node::List(items) => Value::List(items.iter().map(|e| self.eval(e)).collect()),
            Node::Aggregate(slot) => self.aggregates.get(*slot).map_or(Value::Null, |id| self.env.aggregate(*id)),
            Node::Segment(id) => Value::Bool(self.env.segment(id)),
            Node::Milestone(id) => Value::Bool(self.env.milestone_achieved(id)),
            Node::Stage => self.env.stage_value(),
            Node::Health(pillar) => self.env.health(pillar.as_deref()).map_or(Value::Null, number),
            Node::Engagement(kind, step) => Value::Bool(self.env.engagement(step, *kind)),
            Node::Goal => Value::Bool(self.env.goal_met()),
            Node::Now => Value::Timestamp(self.env.now()),
            Node::Age => match self.env.anchor() {
                Some(anchor) => {
                    self.env.now().as_second().checked_sub(anchor.as_second()).map_or(Value::Null, Value::Duration)
                }
                None => Value::Null,
            },
            Node::StartOfDay(e) => match self.eval(e) {
                Value::Date(d) => {
                    d.to_zoned(self.env.time_zone().clone()).map_or(Value::Null, |z| Value::Timestamp(z.timestamp()))
                }
                other => other,
            },
            Node::Call(func, args) => self.call(*func, args),
        }
    }

    /// SQL `IN`: true if found; unknown if not found but the value or an item is `Null`.
    fn member(&self, value: &Value, list: &Value) -> Option<bool> {
        let Value::List(items) = list else { return None };
        if *value == Value::Null {
            return None;
        }
        let mut unknown = false;
        for item in items.iter() {
            match equals(value, item) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => unknown = true,
            }
        }
        if unknown { None } else { Some(false) }
    }

    fn call(&self, func: Func, args: &[Node]) -> Value {
        let mut values = args.iter().map(|a| self.eval(a));
        match func {
            Func::Coalesce => values.find(|v| *v != Value::Null).unwrap_or(Value::Null),
            Func::Concat => Value::String(values.map(|v| to_text(&v)).collect::<String>().into()),
            Func::Least | Func::Greatest => {
                let want = if func == Func::Least { Ordering::Less } else { Ordering::Greater };
                let mut best = Value::Null;
                for value in values.filter(|v| *v != Value::Null) {
                    if best == Value::Null || compare(&value, &best) == Some(want) {
                        best = value;
                    }
                }
                best
            }
            _ => {
                let first = values.next().unwrap_or(Value::Null);
                let second = values.next();
                self.scalar(func, first, second)
            }
        }
    }

    /// Functions that are `Null` when their first argument is.
    fn scalar(&self, func: Func, first: Value, second: Option<Value>) -> Value {
        let text = |f: fn(&str) -> Value| match &first {
            Value::String(s) => f(s),
            _ => Value::Null,
        };
        let text_pair = |f: fn(&str, &str) -> bool| match (&first, &second) {
            (Value::String(a), Some(Value::String(b))) => Value::Bool(f(a, b)),
            _ => Value::Null,
        };
        let num = |f: fn(f64) -> f64| match first {
            Value::Number(n) => number(f(n)),
            _ => Value::Null,
        };
        match func {
            Func::Lower => text(|s| Value::String(s.to_lowercase().into())),
            Func::Upper => text(|s| Value::String(s.to_uppercase().into())),
            Func::Trim => text(|s| Value::String(s.trim().into())),
            Func::Length => text(|s| Value::Number(s.chars().count() as f64)),
            Func::Contains => text_pair(|a, b| a.contains(b)),
            Func::StartsWith => text_pair(|a, b| a.starts_with(b)),
            Func::EndsWith => text_pair(|a, b| a.ends_with(b)),
            Func::Floor => num(f64::floor),
            Func::Ceil => num(f64::ceil),
            Func::Abs => match first {
                Value::Duration(s) => s.checked_abs().map_or(Value::Null, Value::Duration),
                _ => num(f64::abs),
            },
            Func::Round => match (first, second) {
                (Value::Number(x), None) => number(x.round()),
                (Value::Number(x), Some(Value::Number(digits))) => {
                    let scale = 10f64.powi(digits.round().clamp(-15.0, 15.0) as i32);
                    let rounded = (x * scale).round() / scale;
                    number(if rounded.is_finite() { rounded } else { x })
                }
                _ => Value::Null,
            },
            Func::DaysSince => match self.day_of(&first) {
                Some(day) => Value::Number(days_between(day, self.today()) as f64),
                None => Value::Null,
            },
            Func::DaysUntil => match self.day_of(&first) {
                Some(day) => Value::Number(days_between(self.today(), day) as f64),
                None => Value::Null,
            },
            Func::Date => match first {
                Value::String(s) => s.trim().parse::<Date>().map_or(Value::Null, Value::Date),
                other => self.day_of(&other).map_or(Value::Null, Value::Date),
            },
            Func::Coalesce | Func::Concat | Func::Least | Func::Greatest => Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_count_the_days_jiff_counts() {
        let epoch = Date::constant(1970, 1, 1);
        assert_eq!(day_number(epoch), 0);
        let mut dates = vec![Date::MIN, Date::MAX, Date::constant(1900, 2, 28), Date::constant(2000, 2, 29)];
        let mut d = Date::constant(1999, 12, 1);
        while d < Date::constant(2001, 3, 31) {
            dates.push(d);
            d = d.tomorrow().unwrap();
        }
        for from in [epoch, Date::MIN, Date::constant(2026, 3, 27)] {
            for &to in &dates {
                let jiff = i64::from(from.until(to).unwrap().get_days());
                assert_eq!(days_between(from, to), jiff, "{from} to {to}");
            }
        }
    }

    #[test]
    fn like_patterns() {
        assert!(like("acme.com", "%.com"));
        assert!(like("acme.com", "a_me%"));
        assert!(like("", "%"));
        assert!(like("100%", "100%"));
        assert!(!like("acme.io", "%.com"));
        assert!(!like("Acme", "acme"));
        assert!(like("aaa", "%a%a%a%"));
        assert!(!like("aa", "%a%a%a%"));
        assert!(like("abc", "___"));
        assert!(!like("abc", "__"));
    }

    #[test]
    fn arithmetic_never_panics_at_the_edges() {
        assert_eq!(arith(Arith::Div, Value::Number(1.0), Value::Number(0.0)), Value::Null);
        assert_eq!(arith(Arith::Rem, Value::Number(1.0), Value::Number(0.0)), Value::Null);
        assert_eq!(arith(Arith::Add, Value::Duration(i64::MAX), Value::Duration(1)), Value::Null);
        assert_eq!(arith(Arith::Mul, Value::Duration(i64::MAX), Value::Number(2.0)), Value::Null);
        assert_eq!(arith(Arith::Div, Value::Duration(5), Value::Duration(0)), Value::Null);
        assert_eq!(arith(Arith::Sub, Value::Timestamp(Timestamp::MAX), Value::Duration(i64::MIN)), Value::Null);
        assert_eq!(arith(Arith::Add, Value::Date(Date::MAX), Value::Duration(SECONDS_PER_DAY)), Value::Null);
        assert_eq!(arith(Arith::Add, Value::Number(1.0), Value::String("x".into())), Value::Null);
    }

    #[test]
    fn durations_print_in_their_largest_whole_unit() {
        assert_eq!(to_text(&Value::Duration(14 * SECONDS_PER_DAY)), "2w");
        assert_eq!(to_text(&Value::Duration(3 * SECONDS_PER_DAY)), "3d");
        assert_eq!(to_text(&Value::Duration(90 * 60)), "90m");
        assert_eq!(to_text(&Value::Duration(0)), "0s");
    }
}
