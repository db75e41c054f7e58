//! The behavioural functions: their literal event, property and window arguments, and
//! the aggregates they intern.

use super::functions::signature;
use super::{Checker, Ty, looks_like_window, poison, string_literal};
use crate::ast::{DurationUnit, Expr, ExprKind};
use crate::eval::Node;
use crate::suggest::closest;
use crate::{Aggregate, AggregateSpec, EventFilter, Reference, Subject, Window};

impl Checker<'_> {
    pub(super) fn behaviour(&mut self, e: &Expr, fname: &'static str, args: &[Expr]) -> (Node, Ty) {
        let scope = self.schema.subject;
        if scope == Subject::Contact && matches!(fname, "distinct_users" | "active_users") {
            self.error(
                e.span,
                format!("`{fname}` counts the people of an account, so it is only available in rules of accounts"),
                Some("in a rule of contacts, count the contact's own events with `count(...)`".to_string()),
            );
            return poison();
        }
        // The event argument may be left out where a window comes first.
        let (event_arg, rest) = match fname {
            "active_users" | "active_days" => (None, args),
            "count" | "distinct_users" => match args.split_first() {
                Some((first, rest)) if !looks_like_window(first) => (Some(first), rest),
                _ => (None, args),
            },
            _ => match args.split_first() {
                Some((first, rest)) => (Some(first), rest),
                None => (None, args),
            },
        };
        let events = match event_arg {
            Some(arg) => self.events(fname, arg),
            None => Some(EventFilter::Any),
        };
        let (property, window_arg) = if fname == "sum" {
            match rest.split_first() {
                Some((property, rest)) => (self.property(property), rest.first()),
                None => (None, None),
            }
        } else {
            (Some(String::new()), rest.first())
        };
        if rest.len() > 1 + usize::from(fname == "sum") {
            let sig = signature(fname).map_or(String::new(), |s| s.usage.to_string());
            self.error(e.span, format!("too many arguments for `{fname}`"), Some(format!("usage: `{sig}`")));
            return poison();
        }
        let window = match window_arg {
            Some(arg) => self.window(fname, arg),
            None => Some(Window::AllTime),
        };
        let (Some(events), Some(property), Some(window)) = (events, property, window) else { return poison() };
        let (aggregate, ty) = match fname {
            "count" => (Aggregate::Count { events, window }, Ty::Number),
            "sum" => (Aggregate::Sum { events, property, window }, Ty::Number),
            "distinct_users" => (Aggregate::DistinctUsers { events, window }, Ty::Number),
            "distinct_events" => (Aggregate::DistinctEvents { events, window }, Ty::Number),
            "active_users" => (Aggregate::ActiveUsers { window }, Ty::Number),
            "active_days" => (Aggregate::ActiveDays { window }, Ty::Number),
            "first_seen" => (Aggregate::FirstSeen { events }, Ty::Timestamp),
            _ => (Aggregate::LastSeen { events }, Ty::Timestamp),
        };
        let spec = AggregateSpec { scope, aggregate };
        let slot = match self.aggregates.iter().position(|s| *s == spec) {
            Some(slot) => slot,
            None => {
                self.aggregates.push(spec);
                self.aggregates.len() - 1
            }
        };
        (Node::Aggregate(slot), ty)
    }

    /// The event(s) an aggregate reads, written literally.
    fn events(&mut self, fname: &str, arg: &Expr) -> Option<EventFilter> {
        let mut names = Vec::new();
        let mut any = false;
        let mut ok = true;
        let items = match &arg.kind {
            ExprKind::String(_) => std::slice::from_ref(arg),
            ExprKind::List(items) => items.as_slice(),
            _ => {
                self.error(
                    arg.span,
                    format!("the event of `{fname}` must be written literally"),
                    Some("write an event name in quotes (`'login'`), a list of names (`['login', 'report_created']`) or `'*'` for any event".to_string()),
                );
                return None;
            }
        };
        for item in items {
            match string_literal(item) {
                Some("*") => any = true,
                Some("") => {
                    self.error(
                        item.span,
                        "an event name cannot be empty".to_string(),
                        Some("write the event's name, or `'*'` for any event".to_string()),
                    );
                    ok = false;
                }
                Some(name) => names.push(name.to_string()),
                None => {
                    self.error(item.span, "event names in a list must be written in quotes".to_string(), None);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        if any {
            return Some(EventFilter::Any);
        }
        names.sort();
        names.dedup();
        Some(EventFilter::Named(names))
    }

    fn property(&mut self, arg: &Expr) -> Option<String> {
        match string_literal(arg) {
            Some(name) if !name.is_empty() => Some(name.to_string()),
            _ => {
                self.error(
                    arg.span,
                    "the property of `sum` must be a name in quotes".to_string(),
                    Some("write e.g. `sum('invoice_paid', 'amount', 90d)`".to_string()),
                );
                None
            }
        }
    }

    fn window(&mut self, fname: &str, arg: &Expr) -> Option<Window> {
        const LITERAL_HELP: &str = "write a number of days or weeks (`30d`, `12w`), `since_anchor` or `all_time`";
        match &arg.kind {
            ExprKind::Duration { amount, unit: unit @ (DurationUnit::Days | DurationUnit::Weeks) } => {
                let days = if *unit == DurationUnit::Weeks { amount.checked_mul(7) } else { Some(*amount) };
                match days.and_then(|d| u32::try_from(d).ok()) {
                    Some(0) => {
                        self.error(
                            arg.span,
                            "a window must be at least one day".to_string(),
                            Some("use e.g. `1d`".to_string()),
                        );
                        None
                    }
                    Some(days) => Some(Window::Days(days)),
                    None => {
                        self.error(
                            arg.span,
                            "this window is too long".to_string(),
                            Some("use `all_time` to look at the whole history".to_string()),
                        );
                        None
                    }
                }
            }
            ExprKind::Duration { .. } => {
                self.error(
                    arg.span,
                    format!("the window of `{fname}` must be whole days or weeks, found `{}`", self.text(arg.span)),
                    Some("windows count whole days in the workspace time zone; use e.g. `1d`".to_string()),
                );
                None
            }
            ExprKind::Name { qualifier: None, name, .. } if name.eq_ignore_ascii_case("since_anchor") => {
                self.references.insert(Reference::Anchor);
                Some(Window::SinceAnchor)
            }
            ExprKind::Name { qualifier: None, name, .. } if name.eq_ignore_ascii_case("all_time") => {
                Some(Window::AllTime)
            }
            ExprKind::Name { qualifier: None, name, .. } if closest(name, ["since_anchor", "all_time"]).is_some() => {
                let close = closest(name, ["since_anchor", "all_time"]).unwrap_or("since_anchor");
                self.error(arg.span, format!("unknown window `{name}`"), Some(format!("did you mean `{close}`?")));
                None
            }
            _ => {
                self.error(
                    arg.span,
                    format!("the window of `{fname}` must be written literally"),
                    Some(LITERAL_HELP.to_string()),
                );
                None
            }
        }
    }
}
