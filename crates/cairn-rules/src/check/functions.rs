//! Calls of the builtin functions other than the behavioural ones: arity, argument types,
//! and the ids of definitions.

use jiff::civil::Date;

use super::{Checker, Ty, looks_like_window, noun, poison, string_literal};
use crate::ast::{Expr, ExprKind};
use crate::eval::{Func, Node};
use crate::suggest::{closest, list_names};
use crate::{Engagement, Reference, Span, Subject, Value};

/// A builtin function's name, how many arguments it takes, and how it is called.
pub(super) struct Signature {
    name: &'static str,
    min: usize,
    max: Option<usize>,
    pub(super) usage: &'static str,
}

const fn sig(name: &'static str, min: usize, max: Option<usize>, usage: &'static str) -> Signature {
    Signature { name, min, max, usage }
}

/// Every function of the language.
const FUNCTIONS: &[Signature] = &[
    sig("count", 0, Some(2), "count(event[, window])"),
    sig("sum", 2, Some(3), "sum(event, property[, window])"),
    sig("distinct_users", 0, Some(2), "distinct_users(event[, window])"),
    sig("distinct_events", 1, Some(2), "distinct_events(['event_a', 'event_b'][, window])"),
    sig("active_users", 0, Some(1), "active_users([window])"),
    sig("active_days", 0, Some(1), "active_days([window])"),
    sig("first_seen", 0, Some(1), "first_seen(event)"),
    sig("last_seen", 0, Some(1), "last_seen(event)"),
    sig("now", 0, Some(0), "now()"),
    sig("days_since", 1, Some(1), "days_since(date_or_timestamp)"),
    sig("days_until", 1, Some(1), "days_until(date_or_timestamp)"),
    sig("age", 0, Some(0), "age()"),
    sig("date", 1, Some(1), "date(x)"),
    sig("segment", 1, Some(1), "segment('id')"),
    sig("milestone", 1, Some(1), "milestone('id')"),
    sig("stage", 0, Some(0), "stage()"),
    sig("health", 0, Some(1), "health(['pillar'])"),
    sig("lower", 1, Some(1), "lower(text)"),
    sig("upper", 1, Some(1), "upper(text)"),
    sig("length", 1, Some(1), "length(text)"),
    sig("trim", 1, Some(1), "trim(text)"),
    sig("contains", 2, Some(2), "contains(text, part)"),
    sig("starts_with", 2, Some(2), "starts_with(text, prefix)"),
    sig("ends_with", 2, Some(2), "ends_with(text, suffix)"),
    sig("concat", 1, None, "concat(value, ...)"),
    sig("abs", 1, Some(1), "abs(x)"),
    sig("round", 1, Some(2), "round(x[, digits])"),
    sig("floor", 1, Some(1), "floor(x)"),
    sig("ceil", 1, Some(1), "ceil(x)"),
    sig("least", 1, None, "least(value, ...)"),
    sig("greatest", 1, None, "greatest(value, ...)"),
    sig("coalesce", 1, None, "coalesce(value, ...)"),
    sig("delivered", 1, Some(1), "delivered('step_id')"),
    sig("opened", 1, Some(1), "opened('step_id')"),
    sig("clicked", 1, Some(1), "clicked('step_id')"),
    sig("answered", 1, Some(1), "answered('step_id')"),
    sig("goal", 0, Some(0), "goal()"),
];

/// Where program-only functions may be used, for messages.
const PROGRAM_RULES: &str = "use it in a program's `if`, `wait` (`until`), `goal` or `exit` rule";

/// The names of every function, for docs and suggestions.
fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|s| s.name)
}

pub(super) fn signature(name: &str) -> Option<&'static Signature> {
    FUNCTIONS.iter().find(|s| s.name == name)
}

fn arity_message(sig: &Signature, found: usize) -> String {
    let arguments = |n: usize| if n == 1 { "argument" } else { "arguments" };
    let takes = match sig.max {
        None => format!("at least {} {}", sig.min, arguments(sig.min)),
        Some(0) => "no arguments".to_string(),
        Some(max) if max == sig.min => format!("{max} {}", arguments(max)),
        Some(max) if max == sig.min + 1 => format!("{} or {max} arguments", sig.min),
        Some(max) => format!("{} to {max} arguments", sig.min),
    };
    format!("`{}` takes {takes}, found {found}", sig.name)
}

impl Checker<'_> {
    pub(super) fn call(&mut self, e: &Expr, name: &str, name_span: Span, args: &[Expr]) -> (Node, Ty) {
        let lower = name.to_ascii_lowercase();
        let Some(sig) = signature(&lower) else {
            let is_trait = self.schema.account_traits.contains_key(name)
                || self.subject_is_contact() && self.schema.contact_traits.contains_key(name);
            let help = if is_trait {
                format!("`{name}` is a trait: write it without parentheses")
            } else {
                match closest(name, function_names()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => "see docs/rules.md for the functions cairn knows".to_string(),
                }
            };
            self.error(name_span, format!("unknown function `{name}`"), Some(help));
            for arg in args.iter().filter(|a| !looks_like_window(a)) {
                self.expr(arg);
            }
            return poison();
        };
        if args.len() < sig.min || sig.max.is_some_and(|max| args.len() > max) {
            self.error(e.span, arity_message(sig, args.len()), Some(format!("usage: `{}`", sig.usage)));
            return poison();
        }
        let fname = sig.name;
        if matches!(fname, "delivered" | "opened" | "clicked" | "answered" | "goal") && self.schema.program.is_none() {
            let what = if fname == "goal" { "the goal of the program" } else { "a step of the program" };
            self.error(
                name_span,
                format!("`{fname}` is only available in a program's rules"),
                Some(format!("it asks about {what} a contact is enrolled in: {PROGRAM_RULES}")),
            );
            return poison();
        }
        match fname {
            "count" | "distinct_users" | "sum" | "distinct_events" | "active_users" | "active_days" | "first_seen"
            | "last_seen" => self.behaviour(e, fname, args),
            "now" => (Node::Now, Ty::Timestamp),
            "age" => {
                self.references.insert(Reference::Anchor);
                (Node::Age, Ty::Duration)
            }
            "days_since" | "days_until" => {
                let func = if fname == "days_since" { Func::DaysSince } else { Func::DaysUntil };
                self.typed_call(func, fname, args, &[("x", &[Ty::Date, Ty::Timestamp])], Ty::Number)
            }
            "date" => self.date(args),
            "segment" => self.segment(args),
            "milestone" => {
                let Some((id, span)) = self.literal_id(fname, args) else { return poison() };
                if !self.schema.milestones.contains(&id) {
                    let known = self.schema.milestones.iter().map(String::as_str);
                    self.unknown_id("milestone", "milestones", &id, span, known);
                    return poison();
                }
                self.references.insert(Reference::Milestone(id.clone()));
                (Node::Milestone(id.into()), Ty::Bool)
            }
            "stage" => {
                self.references.insert(Reference::Stage);
                (Node::Stage, Ty::String)
            }
            "health" => {
                if args.is_empty() {
                    self.references.insert(Reference::Health(None));
                    return (Node::Health(None), Ty::Number);
                }
                let Some((id, span)) = self.literal_id(fname, args) else { return poison() };
                if !self.schema.pillars.contains(&id) {
                    let known = self.schema.pillars.iter().map(String::as_str);
                    self.unknown_id("health pillar", "health pillars", &id, span, known);
                    return poison();
                }
                self.references.insert(Reference::Health(Some(id.clone())));
                (Node::Health(Some(id.into())), Ty::Number)
            }
            "lower" | "upper" | "trim" => {
                let func = match fname {
                    "lower" => Func::Lower,
                    "upper" => Func::Upper,
                    _ => Func::Trim,
                };
                self.typed_call(func, fname, args, &[("text", &[Ty::String])], Ty::String)
            }
            "length" => self.typed_call(Func::Length, fname, args, &[("text", &[Ty::String])], Ty::Number),
            "contains" | "starts_with" | "ends_with" => {
                let (func, second) = match fname {
                    "contains" => (Func::Contains, "part"),
                    "starts_with" => (Func::StartsWith, "prefix"),
                    _ => (Func::EndsWith, "suffix"),
                };
                self.typed_call(func, fname, args, &[("text", &[Ty::String]), (second, &[Ty::String])], Ty::Bool)
            }
            "floor" | "ceil" => {
                let func = if fname == "floor" { Func::Floor } else { Func::Ceil };
                self.typed_call(func, fname, args, &[("x", &[Ty::Number])], Ty::Number)
            }
            "round" => self.typed_call(
                Func::Round,
                fname,
                args,
                &[("x", &[Ty::Number]), ("digits", &[Ty::Number])],
                Ty::Number,
            ),
            "abs" => {
                let (node, ty) = self.argument(fname, "x", args.first(), &[Ty::Number, Ty::Duration]);
                (Node::Call(Func::Abs, vec![node]), ty)
            }
            "concat" => {
                let mut nodes = Vec::with_capacity(args.len());
                let mut failed = false;
                for arg in args {
                    let (node, ty) = self.expr(arg);
                    if let Ty::List(_) = ty {
                        self.error(arg.span, format!("`concat` joins single values, found {ty}"), None);
                        failed = true;
                    }
                    failed |= ty == Ty::Poison;
                    nodes.push(node);
                }
                if failed { poison() } else { (Node::Call(Func::Concat, nodes), Ty::String) }
            }
            "delivered" | "opened" | "clicked" | "answered" => self.engagement(fname, args),
            "goal" => {
                if self.schema.program.as_ref().is_some_and(|p| !p.goal) {
                    self.error(
                        name_span,
                        "`goal()` cannot be used in the goal's own rule".to_string(),
                        Some("the goal rule says when the goal is met; write that condition itself".to_string()),
                    );
                    return poison();
                }
                self.references.insert(Reference::Goal);
                (Node::Goal, Ty::Bool)
            }
            "least" | "greatest" | "coalesce" => {
                let func = match fname {
                    "least" => Func::Least,
                    "greatest" => Func::Greatest,
                    _ => Func::Coalesce,
                };
                self.same_type_call(func, fname, args)
            }
            _ => poison(),
        }
    }

    /// Checks one argument against the types it may have.
    fn argument(&mut self, fname: &str, arg_name: &str, arg: Option<&Expr>, allowed: &[Ty]) -> (Node, Ty) {
        let Some(arg) = arg else { return (Node::Const(Value::Null), Ty::Null) };
        let (node, ty) = self.expr(arg);
        if ty.is_wildcard() || allowed.contains(&ty) {
            return (node, ty);
        }
        let expected: Vec<String> = allowed.iter().map(noun).collect();
        let help = match (&arg.kind, allowed.first()) {
            (ExprKind::String(s), Some(Ty::Number)) if s.trim().parse::<f64>().is_ok() => {
                Some("remove the quotes to use it as a number".to_string())
            }
            _ => None,
        };
        self.error(
            arg.span,
            format!("argument `{arg_name}` of `{fname}` must be {}, found {}", expected.join(" or "), noun(&ty)),
            help,
        );
        poison()
    }

    /// A function whose arguments each have fixed allowed types, `Null` when any is.
    fn typed_call(
        &mut self,
        func: Func,
        fname: &str,
        args: &[Expr],
        params: &[(&str, &[Ty])],
        result: Ty,
    ) -> (Node, Ty) {
        let mut nodes = Vec::with_capacity(args.len());
        let mut failed = false;
        for (arg, (arg_name, allowed)) in args.iter().zip(params) {
            let (node, ty) = self.argument(fname, arg_name, Some(arg), allowed);
            failed |= ty == Ty::Poison;
            nodes.push(node);
        }
        if failed { poison() } else { (Node::Call(func, nodes), result) }
    }

    /// `least`, `greatest`, `coalesce`: every argument of one type, which is the result's.
    fn same_type_call(&mut self, func: Func, fname: &str, args: &[Expr]) -> (Node, Ty) {
        let mut ty = Ty::Null;
        let mut nodes = Vec::with_capacity(args.len());
        let mut failed = false;
        for (i, arg) in args.iter().enumerate() {
            let (node, arg_ty) = self.expr(arg);
            if !ty.fits(&arg_ty) {
                self.error(
                    arg.span,
                    format!("argument {} of `{fname}` is {arg_ty}, but an earlier one is {ty}", i + 1),
                    Some(format!("all arguments of `{fname}` must have the same type")),
                );
                failed = true;
            } else if func != Func::Coalesce && !failed && matches!(arg_ty, Ty::Bool | Ty::List(_)) {
                self.error(
                    arg.span,
                    format!("`{fname}` compares numbers, strings, dates, timestamps or durations, found {arg_ty}"),
                    None,
                );
                failed = true;
            }
            ty = ty.join(arg_ty);
            nodes.push(node);
        }
        if failed { poison() } else { (Node::Call(func, nodes), ty) }
    }

    fn date(&mut self, args: &[Expr]) -> (Node, Ty) {
        if let Some(arg) = args.first()
            && let Some(text) = string_literal(arg)
        {
            return match text.trim().parse::<Date>() {
                Ok(date) => (Node::Const(Value::Date(date)), Ty::Date),
                Err(_) => {
                    self.error(
                        arg.span,
                        format!("`{text}` is not a date"),
                        Some("write dates as YYYY-MM-DD, e.g. `date('2026-01-31')`".to_string()),
                    );
                    poison()
                }
            };
        }
        self.typed_call(Func::Date, "date", args, &[("x", &[Ty::Timestamp, Ty::Date, Ty::String])], Ty::Date)
    }

    /// `opened('step')`, `opened(previous)`, …: a send step of the program, named by id.
    fn engagement(&mut self, fname: &str, args: &[Expr]) -> (Node, Ty) {
        let kind = match fname {
            "delivered" => Engagement::Delivered,
            "opened" => Engagement::Opened,
            "clicked" => Engagement::Clicked,
            _ => Engagement::Answered,
        };
        let Some(scope) = self.schema.program.as_ref() else { return poison() };
        let Some(arg) = args.first() else { return poison() };
        let id = match &arg.kind {
            ExprKind::String(id) => id.clone(),
            ExprKind::Name { qualifier: None, name, .. } if name.eq_ignore_ascii_case("previous") => {
                match &scope.previous {
                    Some(id) => id.clone(),
                    None => {
                        self.error(
                            arg.span,
                            "no send step comes before this rule, so `previous` names nothing here".to_string(),
                            Some(format!(
                                "`previous` is the latest `send` step before an `if` or a `wait`; elsewhere name the step, e.g. `{fname}('welcome')`"
                            )),
                        );
                        return poison();
                    }
                }
            }
            _ => {
                self.error(
                    arg.span,
                    format!("the step in `{fname}(...)` must be a step id in quotes, or `previous`"),
                    Some(format!("write e.g. `{fname}('welcome')` or `{fname}(previous)`")),
                );
                return poison();
            }
        };
        if scope.sends.contains(&id) {
            self.references.insert(Reference::Engagement { step: id.clone(), kind });
            return (Node::Engagement(kind, id.into()), Ty::Bool);
        }
        if let Some(reason) = scope.unavailable.get(&id) {
            let reason = reason.clone();
            self.error(
                arg.span,
                format!("step `{id}` cannot be used here: {reason}"),
                Some(format!("`{fname}` asks about a `send` step that runs before this rule")),
            );
            return poison();
        }
        let known: Vec<String> = scope.sends.iter().chain(scope.unavailable.keys()).cloned().collect();
        let help = match closest(&id, known.iter().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if scope.sends.is_empty() => "no send step comes before this rule".to_string(),
            None => format!("the send steps it may name are {}", list_names(scope.sends.iter().map(String::as_str))),
        };
        self.error(arg.span, format!("unknown step `{id}`"), Some(help));
        poison()
    }

    /// The quoted id that is the only argument of `segment`, `milestone` or `health`.
    fn literal_id(&mut self, fname: &str, args: &[Expr]) -> Option<(String, Span)> {
        let arg = args.first()?;
        match string_literal(arg) {
            Some(id) => Some((id.to_string(), arg.span)),
            None => {
                self.error(
                    arg.span,
                    format!("the id in `{fname}(...)` must be written in quotes"),
                    Some(format!("write e.g. `{fname}('some_id')`")),
                );
                None
            }
        }
    }

    pub(super) fn unknown_id<'s>(
        &mut self,
        kind: &str,
        plural: &str,
        id: &str,
        span: Span,
        known: impl Iterator<Item = &'s str>,
    ) {
        let known: Vec<&str> = known.collect();
        let help = match closest(id, known.iter().copied()) {
            Some(close) => format!("did you mean `{close}`?"),
            None if known.is_empty() => format!("no {plural} are defined"),
            None => format!("the {plural} are {}", list_names(known)),
        };
        self.error(span, format!("unknown {kind} `{id}`"), Some(help));
    }

    fn segment(&mut self, args: &[Expr]) -> (Node, Ty) {
        let Some((id, span)) = self.literal_id("segment", args) else { return poison() };
        match self.schema.segments.get(&id) {
            None => {
                let known = self.schema.segments.keys().map(String::as_str);
                self.unknown_id("segment", "segments", &id, span, known);
                poison()
            }
            Some(Subject::Contact) if !self.subject_is_contact() => {
                self.error(
                    span,
                    format!("`{id}` is a segment of contacts; a rule of accounts can only use segments of accounts"),
                    None,
                );
                poison()
            }
            Some(_) => {
                self.references.insert(Reference::Segment(id.clone()));
                (Node::Segment(id.into()), Ty::Bool)
            }
        }
    }
}
