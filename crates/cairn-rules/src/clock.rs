//! When the passing of days alone can next change a rule's value.
//!
//! A rule that reads the clock only through day counts (`days_since(x)`,
//! `days_until(x)`, with `x` not reading the clock) compared with values that do not read
//! it (`days_since(last_seen()) > 30`, `days_until(renewal_date) between 0 and 90`) is a
//! step function of the day: while nothing it reads changes, a day count moves by one a
//! day, and the comparison can flip only on the days the count reaches or passes a
//! bound. The engine asks for that day instead of evaluating such rules every day.
//!
//! A compiled rule also says whether it reads the instant within a day
//! (`Rule::reads_instant`: `now()`, `age()`) and which aggregates it reads other than as the
//! whole argument of a day count (`Rule::reads_exactly`: `days_since(last_seen())` reads only
//! the last event's day). `Rule::reads_clock` (`now()`, `age()`, `days_since`, `days_until`),
//! `Rule::clock_predictable` (the clock is read only through day counts compared with
//! values) and `Rule::next_clock_change` (the next day on which a day count reaches a bound)
//! are what let the engine skip, at a day boundary, what the day cannot change.

use crate::Value;
use crate::eval::{Arith, Cmp, Context, Func, Node, days_between, reads_clock};

/// Whether every clock read of `node` is a day count compared with values that do not
/// read the clock (inside `not`, `and`, `or`), so that [`next_change`] can tell the day.
pub(crate) fn predictable(node: &Node) -> bool {
    if !reads_clock(node) {
        return true;
    }
    match node {
        Node::Not(e) => predictable(e),
        Node::And(a, b) | Node::Or(a, b) => predictable(a) && predictable(b),
        Node::Compare(_, a, b) => {
            (day_count(a).is_some() && !reads_clock(b)) || (day_count(b).is_some() && !reads_clock(a))
        }
        Node::Between { value, low, high, .. } => day_count(value).is_some() && !reads_clock(low) && !reads_clock(high),
        Node::In { value, list, .. } => day_count(value).is_some() && !reads_clock(list),
        // Whether a day count is null does not depend on the day.
        Node::IsNull { value, .. } => day_count(value).is_some(),
        _ => false,
    }
}

/// A day count whose argument does not read the clock: whether it counts up
/// (`days_since`) and its argument.
fn day_count(node: &Node) -> Option<(bool, &Node)> {
    match node {
        Node::Call(f @ (Func::DaysSince | Func::DaysUntil), args) if args.len() == 1 && !reads_clock(&args[0]) => {
            Some((*f == Func::DaysSince, &args[0]))
        }
        _ => None,
    }
}

/// For a [`predictable`] node: the fewest days (at least 1) after the context's day on
/// which the value can differ from today's when nothing else changes, or `None` when it
/// cannot. A day it names may turn out to change nothing (the caller evaluates again
/// then); a day on which the value changes is never later than the one it names.
pub(crate) fn next_change(cx: &Context<'_>, node: &Node) -> Option<i64> {
    if !reads_clock(node) {
        return None;
    }
    match node {
        Node::Not(e) => next_change(cx, e),
        Node::And(a, b) | Node::Or(a, b) => earliest(next_change(cx, a), next_change(cx, b)),
        Node::Compare(cmp, a, b) => match day_count(a) {
            Some(count) if !reads_clock(b) => crossings(cx, count, &[(cx.eval(b), flips(*cmp))]),
            _ => day_count(b).and_then(|count| crossings(cx, count, &[(cx.eval(a), flips(cmp.mirrored()))])),
        },
        Node::Between { value, low, high, .. } => day_count(value)
            .and_then(|count| crossings(cx, count, &[(cx.eval(low), Flips::AtLeast), (cx.eval(high), Flips::Above)])),
        Node::In { value, list, .. } => day_count(value).and_then(|count| match cx.eval(list) {
            Value::List(items) => {
                let bounds: Vec<(Value, Flips)> = items.iter().map(|v| (v.clone(), Flips::Both)).collect();
                crossings(cx, count, &bounds)
            }
            _ => None,
        }),
        Node::IsNull { .. } => None,
        // Not predictable: every day.
        _ => Some(1),
    }
}

/// Which test against a bound `c` a comparison of the count `v` with `c` makes, so on
/// which day it flips: `v >= c` and `v < c` when the count starts or stops being at
/// least `c`; `v > c` and `v <= c` when it starts or stops being above `c`; `=` and `<>`
/// on both.
#[derive(Debug, Clone, Copy)]
enum Flips {
    AtLeast,
    Above,
    Both,
}

/// The comparison `count CMP bound`.
fn flips(cmp: Cmp) -> Flips {
    match cmp {
        Cmp::Ge | Cmp::Lt => Flips::AtLeast,
        Cmp::Gt | Cmp::Le => Flips::Above,
        Cmp::Eq | Cmp::Ne => Flips::Both,
    }
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The first day (at least 1 from today) on which the day count's comparison with one of
/// `bounds` flips. A count that is null today (no date to count from) stays null; a bound
/// that is not a number compares as unknown every day.
fn crossings(cx: &Context<'_>, (up, arg): (bool, &Node), bounds: &[(Value, Flips)]) -> Option<i64> {
    let day = cx.day_of(&cx.eval(arg))?;
    let today = cx.env.today();
    // The count today; k days later it is `now + k` counting up, `now - k` counting down.
    let now = if up { days_between(day, today) } else { days_between(today, day) };
    let mut best = None;
    for (bound, test) in bounds {
        let Value::Number(c) = bound else { continue };
        if !c.is_finite() {
            continue;
        }
        let (floor, ceil) = (c.floor() as i64, c.ceil() as i64);
        // Counting up, `v >= c` starts at v = ceil(c) and `v > c` at v = floor(c) + 1;
        // counting down, `v >= c` stops at v = ceil(c) - 1 and `v > c` at v = floor(c).
        let at_least = if up { ceil.saturating_sub(now) } else { now.saturating_sub(ceil).saturating_add(1) };
        let above = if up { floor.saturating_add(1).saturating_sub(now) } else { now.saturating_sub(floor) };
        let candidates = match test {
            Flips::AtLeast => [Some(at_least), None],
            Flips::Above => [Some(above), None],
            Flips::Both => [Some(at_least), Some(above)],
        };
        for k in candidates.into_iter().flatten() {
            if k >= 1 {
                best = earliest(best, Some(k));
            }
        }
    }
    best
}

/// How a value moves with the days alone, while nothing else it reads changes: its value
/// today (`None`: unknown, which no passing of days changes here) and its change per
/// day, for a value that is an affine function of the day — day counts and `age()` (in
/// seconds) added, subtracted, negated, multiplied or divided by values that do not read
/// the clock (`days_since(start_date) - days_since(first_seen('x'))` moves by 0 a day).
/// `None` for any other value that reads the clock.
pub(crate) fn trend(cx: &Context<'_>, node: &Node) -> Option<(Option<f64>, f64)> {
    let today = match cx.eval(node) {
        Value::Number(x) => Some(x),
        Value::Duration(s) => Some(s as f64),
        _ => None,
    };
    let per_day = slope(cx, node)?;
    Some((today, if today.is_some() { per_day } else { 0.0 }))
}

/// The change per day of an affine value (see [`trend`]).
fn slope(cx: &Context<'_>, node: &Node) -> Option<f64> {
    if !reads_clock(node) {
        return Some(0.0);
    }
    let number = |n: &Node| match cx.eval(n) {
        Value::Number(x) => Some(x),
        _ => None,
    };
    match node {
        Node::Call(Func::DaysSince, _) if day_count(node).is_some() => Some(1.0),
        Node::Call(Func::DaysUntil, _) if day_count(node).is_some() => Some(-1.0),
        // Measured at the start of each day: a day's length apart (an hour off on the
        // days clocks change, which callers allow for).
        Node::Age => Some(86_400.0),
        Node::Neg(e) => slope(cx, e).map(|s| -s),
        Node::Arith(Arith::Add, a, b) => Some(slope(cx, a)? + slope(cx, b)?),
        Node::Arith(Arith::Sub, a, b) => Some(slope(cx, a)? - slope(cx, b)?),
        Node::Arith(Arith::Mul, a, b) if !reads_clock(a) => Some(slope(cx, b)? * number(a).unwrap_or(0.0)),
        Node::Arith(Arith::Mul, a, b) if !reads_clock(b) => Some(slope(cx, a)? * number(b).unwrap_or(0.0)),
        Node::Arith(Arith::Div, a, b) if !reads_clock(b) => match number(b) {
            Some(d) if d != 0.0 => Some(slope(cx, a)? / d),
            // Unknown or a division by zero: unknown every day.
            _ => Some(0.0),
        },
        _ => None,
    }
}

/// In how many days (at least 1, or never: `None`) an affine value moving from `today`
/// by `per_day` reaches `bound`, named a day early (so never late: `age()` is off by an
/// hour on the days clocks change, and floating point by a hair). A value at the bound
/// today can leave it tomorrow.
pub(crate) fn reaches(today: f64, per_day: f64, bound: f64) -> Option<i64> {
    if per_day == 0.0 || !per_day.is_finite() || !today.is_finite() || !bound.is_finite() {
        return None;
    }
    let days = (bound - today) / per_day;
    if days < 0.0 {
        return None;
    }
    Some((days.floor() as i64).saturating_sub(1).max(1))
}

/// For a rule that is not [`predictable`]: the fewest days (at least 1) after the
/// context's day on which the value can differ from today's, when every clock read sits
/// in comparisons of affine values (see [`trend`]) under `not`, `and`, `or`; 1 (any
/// day) otherwise, `None` when it cannot change. Like [`next_change`], never late.
pub(crate) fn next_change_affine(cx: &Context<'_>, node: &Node) -> Option<i64> {
    if !reads_clock(node) {
        return None;
    }
    let crossing = |a: &Node, b: &Node| -> Option<Option<i64>> {
        let (va, sa) = trend(cx, a)?;
        let (vb, sb) = trend(cx, b)?;
        Some(match (va, vb) {
            (Some(va), Some(vb)) => reaches(va - vb, sa - sb, 0.0),
            // Unknown on one side: unknown every day.
            _ => None,
        })
    };
    let any_day = Some(1);
    match node {
        Node::Not(e) => next_change_affine(cx, e),
        Node::And(a, b) | Node::Or(a, b) => earliest(next_change_affine(cx, a), next_change_affine(cx, b)),
        Node::Compare(_, a, b) => crossing(a, b).unwrap_or(any_day),
        Node::Between { value, low, high, .. } => match (crossing(value, low), crossing(value, high)) {
            (Some(x), Some(y)) => earliest(x, y),
            _ => any_day,
        },
        _ => any_day,
    }
}
