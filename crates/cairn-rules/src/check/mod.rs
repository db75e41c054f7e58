//! Name resolution and type checking: turns the syntax tree into the evaluable [`Node`]
//! tree, recording the aggregates and definitions a rule reads, and collecting every
//! error rather than stopping at the first.
//!
//! Dates and timestamps compare with each other: the date stands for the instant its day
//! starts in the workspace time zone. Nothing else converts implicitly.

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::Date;

use crate::ast::{BinOp, DurationUnit, Expr, ExprKind};
use crate::eval::{Arith, Cmp, Node};
use crate::suggest::{closest, list_names};

mod behaviour;
mod functions;

use crate::{AggregateSpec, Reference, RuleError, Schema, Span, Subject, Type, Value};
use functions::signature;

/// A type during checking: [`Type`] plus the type of `null` (fits anywhere) and the
/// type of something already reported as wrong (fits anywhere, silently).
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Bool,
    Number,
    String,
    Date,
    Timestamp,
    Duration,
    List(Box<Ty>),
    Null,
    Poison,
}

impl Ty {
    fn from_type(ty: &Type) -> Ty {
        match ty {
            Type::Bool => Ty::Bool,
            Type::Number => Ty::Number,
            Type::String => Ty::String,
            Type::Date => Ty::Date,
            Type::Timestamp => Ty::Timestamp,
            Type::Duration => Ty::Duration,
            Type::List(t) => Ty::List(Box::new(Ty::from_type(t))),
        }
    }

    fn to_type(&self) -> Option<Type> {
        Some(match self {
            Ty::Bool => Type::Bool,
            Ty::Number => Type::Number,
            Ty::String => Type::String,
            Ty::Date => Type::Date,
            Ty::Timestamp => Type::Timestamp,
            Ty::Duration => Type::Duration,
            Ty::List(t) => Type::List(Box::new(t.to_type()?)),
            Ty::Null | Ty::Poison => return None,
        })
    }

    /// Null or already wrong: accepted anywhere without a further error.
    fn is_wildcard(&self) -> bool {
        matches!(self, Ty::Null | Ty::Poison)
    }

    /// Whether values of the two types can meet (in a list, a comparison, `case`).
    fn fits(&self, other: &Ty) -> bool {
        match (self, other) {
            (a, b) if a.is_wildcard() || b.is_wildcard() => true,
            (Ty::List(a), Ty::List(b)) => a.fits(b),
            (a, b) => a == b,
        }
    }

    /// The more precise of two fitting types (`null` and a number make a number).
    fn join(self, other: Ty) -> Ty {
        match (self, other) {
            (Ty::Poison, _) | (_, Ty::Poison) => Ty::Poison,
            (Ty::Null, t) | (t, Ty::Null) => t,
            (Ty::List(a), Ty::List(b)) => Ty::List(Box::new(a.join(*b))),
            (a, _) => a,
        }
    }

    fn plural(&self) -> String {
        match self {
            Ty::Bool => "booleans".to_string(),
            Ty::Number => "numbers".to_string(),
            Ty::String => "strings".to_string(),
            Ty::Date => "dates".to_string(),
            Ty::Timestamp => "timestamps".to_string(),
            Ty::Duration => "durations".to_string(),
            Ty::List(_) => "lists".to_string(),
            Ty::Null => "nulls".to_string(),
            Ty::Poison => "values".to_string(),
        }
    }
}

/// "a number", "a list of strings": the type with its article, as messages use it.
impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Bool => f.write_str("a boolean"),
            Ty::Number => f.write_str("a number"),
            Ty::String => f.write_str("a string"),
            Ty::Date => f.write_str("a date"),
            Ty::Timestamp => f.write_str("a timestamp"),
            Ty::Duration => f.write_str("a duration"),
            Ty::List(t) => write!(f, "a list of {}", t.plural()),
            Ty::Null => f.write_str("null"),
            Ty::Poison => f.write_str("a value"),
        }
    }
}

/// The type as said in "expected …, found …": a boolean is a condition there.
fn noun(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "a condition (true or false)".to_string(),
        other => other.to_string(),
    }
}

/// How to turn a value of `ty` into a condition.
fn condition_help(ty: &Ty) -> Option<String> {
    let help = match ty {
        Ty::Number => "compare it: `... > 0`",
        Ty::String => "compare it: `... = 'value'`",
        Ty::Date => "compare it, e.g. `days_until(...) <= 90`",
        Ty::Timestamp => "compare it, e.g. `days_since(...) > 30`",
        Ty::Duration => "compare it: `... > 14d`",
        Ty::List(_) => "test whether it holds a value: `'value' in ...`",
        _ => return None,
    };
    Some(help.to_string())
}

fn is_window_keyword(name: &str) -> bool {
    name.eq_ignore_ascii_case("since_anchor") || name.eq_ignore_ascii_case("all_time")
}

/// A duration literal or a window keyword: what may stand in a window's place.
fn looks_like_window(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Duration { .. } => true,
        ExprKind::Name { qualifier: None, name, .. } => is_window_keyword(name),
        _ => false,
    }
}

fn string_literal(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::String(s) => Some(s),
        _ => None,
    }
}

/// The result of checking a whole rule.
pub(crate) struct Checked {
    pub root: Node,
    pub ty: Type,
    /// Distinct aggregates, in order of first use; `Node::Aggregate(i)` is the i-th.
    pub aggregates: Vec<AggregateSpec>,
    pub references: BTreeSet<Reference>,
}

/// Checks a parsed rule against `schema`, and that it has type `expected` if given.
pub(crate) fn check(
    src: &str,
    expr: &Expr,
    schema: &Schema,
    expected: Option<&Type>,
) -> Result<Checked, Vec<RuleError>> {
    let mut checker = Checker { src, schema, errors: Vec::new(), aggregates: Vec::new(), references: BTreeSet::new() };
    let (root, ty) = checker.expr(expr);
    let final_ty = match (expected, &ty) {
        (_, Ty::Poison) => None,
        (Some(want), Ty::Null) => Some(want.clone()),
        (Some(want), found) if !Ty::from_type(want).fits(found) => {
            let want = Ty::from_type(want);
            let help = match (&want, found) {
                (Ty::Bool, found) => condition_help(found),
                (Ty::Number, Ty::Bool) => Some("turn it into a number: `case when ... then 1 else 0 end`".to_string()),
                (Ty::Number, Ty::Duration) => {
                    Some("divide it by a unit to count it, e.g. `... / 1d` for days".to_string())
                }
                (Ty::Number, Ty::Date | Ty::Timestamp) => {
                    Some("count days with `days_since(...)` or `days_until(...)`".to_string())
                }
                _ => None,
            };
            checker.error(expr.span, format!("expected {}, found {}", noun(&want), noun(found)), help);
            None
        }
        (_, found) => match found.to_type() {
            Some(t) => Some(t),
            None => {
                checker.error(
                    expr.span,
                    "this rule is always null".to_string(),
                    Some("write a condition or a value to compute".to_string()),
                );
                None
            }
        },
    };
    let mut errors = checker.errors;
    match final_ty {
        Some(ty) if errors.is_empty() => {
            Ok(Checked { root, ty, aggregates: checker.aggregates, references: checker.references })
        }
        _ => {
            errors.sort_by_key(|e| e.span.start);
            Err(errors)
        }
    }
}

struct Checker<'a> {
    src: &'a str,
    schema: &'a Schema,
    errors: Vec<RuleError>,
    aggregates: Vec<AggregateSpec>,
    references: BTreeSet<Reference>,
}

fn poison() -> (Node, Ty) {
    (Node::Const(Value::Null), Ty::Poison)
}

fn boxed(node: Node) -> Box<Node> {
    Box::new(node)
}

impl Checker<'_> {
    fn error(&mut self, span: Span, message: String, help: Option<String>) {
        self.errors.push(RuleError { span, message, help });
    }

    fn text(&self, span: Span) -> &str {
        self.src.get(span.start..span.end).unwrap_or("")
    }

    fn subject_is_contact(&self) -> bool {
        self.schema.subject == Subject::Contact
    }

    fn expr(&mut self, e: &Expr) -> (Node, Ty) {
        match &e.kind {
            ExprKind::Number(n) => (Node::Const(Value::Number(*n)), Ty::Number),
            ExprKind::String(s) => (Node::Const(Value::String(s.as_str().into())), Ty::String),
            ExprKind::Bool(b) => (Node::Const(Value::Bool(*b)), Ty::Bool),
            ExprKind::Null => (Node::Const(Value::Null), Ty::Null),
            ExprKind::Duration { amount, unit } => {
                // The lexer guarantees the product fits an i64.
                let seconds = amount.saturating_mul(unit.seconds()).min(i64::MAX as u64) as i64;
                (Node::Const(Value::Duration(seconds)), Ty::Duration)
            }
            ExprKind::List(items) => self.list(items),
            ExprKind::Name { qualifier, name, name_span } => self.name(e, qualifier.as_ref(), name, *name_span),
            ExprKind::Not(inner) => (Node::Not(boxed(self.condition(inner))), Ty::Bool),
            ExprKind::Neg(inner) => {
                let (node, ty) = self.expr(inner);
                match (node, ty) {
                    (Node::Const(Value::Number(n)), ty) => (Node::Const(Value::Number(-n)), ty),
                    (node, ty @ (Ty::Number | Ty::Duration | Ty::Null | Ty::Poison)) => (Node::Neg(boxed(node)), ty),
                    (_, ty) => {
                        self.error(
                            e.span,
                            format!("cannot negate {ty}"),
                            Some("only numbers and durations have a minus sign".to_string()),
                        );
                        poison()
                    }
                }
            }
            ExprKind::Binary { op, op_span, lhs, rhs } => self.binary(e, *op, *op_span, lhs, rhs),
            ExprKind::In { value, list, negated } => self.in_list(e, value, list, *negated),
            ExprKind::Between { value, low, high, negated } => {
                let items = [self.expr(value), self.expr(low), self.expr(high)];
                let exprs = [&**value, &**low, &**high];
                match self.comparable(e.span, "`between`", true, items, exprs) {
                    Some([value, low, high]) => (
                        Node::Between { value: boxed(value), low: boxed(low), high: boxed(high), negated: *negated },
                        Ty::Bool,
                    ),
                    None => poison(),
                }
            }
            ExprKind::IsNull { value, negated } => {
                let (node, _) = self.expr(value);
                (Node::IsNull { value: boxed(node), negated: *negated }, Ty::Bool)
            }
            ExprKind::Like { value, pattern, negated } => {
                let value = self.string_operand(value, "`like` matches strings");
                let pattern = self.string_operand(pattern, "the pattern of `like` must be a string");
                match (value, pattern) {
                    (Some(value), Some(pattern)) => {
                        (Node::Like { value: boxed(value), pattern: boxed(pattern), negated: *negated }, Ty::Bool)
                    }
                    _ => poison(),
                }
            }
            ExprKind::Case { branches, otherwise } => self.case(branches, otherwise.as_deref()),
            ExprKind::Call { name, name_span, args } => self.call(e, name, *name_span, args),
        }
    }

    /// A string operand; `None` after reporting anything else.
    fn string_operand(&mut self, e: &Expr, what: &str) -> Option<Node> {
        let (node, ty) = self.expr(e);
        match ty {
            Ty::String | Ty::Null => Some(node),
            Ty::Poison => None,
            other => {
                self.error(e.span, format!("{what}, found {other}"), None);
                None
            }
        }
    }

    /// An operand that must be a condition.
    fn condition(&mut self, e: &Expr) -> Node {
        let (node, ty) = self.expr(e);
        if !ty.fits(&Ty::Bool) {
            self.error(
                e.span,
                format!("expected a condition (true or false), found {}", noun(&ty)),
                condition_help(&ty),
            );
        }
        node
    }

    fn list(&mut self, items: &[Expr]) -> (Node, Ty) {
        let mut nodes = Vec::with_capacity(items.len());
        let mut ty = Ty::Null;
        for item in items {
            let (node, item_ty) = self.expr(item);
            if !ty.fits(&item_ty) {
                self.error(
                    item.span,
                    format!("a list holds values of one type, but this is {item_ty} among {}", ty.plural()),
                    None,
                );
                ty = Ty::Poison;
            }
            ty = ty.join(item_ty);
            nodes.push(node);
        }
        if ty == Ty::Poison {
            return poison();
        }
        let constants: Option<Vec<Value>> = nodes
            .iter()
            .map(|n| match n {
                Node::Const(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        let node = match constants {
            Some(values) => Node::Const(Value::List(values.into())),
            None => Node::List(nodes),
        };
        (node, Ty::List(Box::new(ty)))
    }

    // ---- names ------------------------------------------------------------------------

    fn account_trait(&mut self, name: &str) -> Option<(Node, Ty)> {
        let ty = self.schema.account_traits.get(name)?;
        self.references.insert(Reference::AccountTrait(name.to_string()));
        Some((Node::AccountTrait(name.into()), Ty::from_type(ty)))
    }

    fn contact_trait(&mut self, name: &str) -> Option<(Node, Ty)> {
        let ty = self.schema.contact_traits.get(name)?;
        self.references.insert(Reference::ContactTrait(name.to_string()));
        Some((Node::ContactTrait(name.into()), Ty::from_type(ty)))
    }

    /// What exists, and how to declare more, for when a name matches nothing.
    fn traits_help(&self, account: bool, contact: bool) -> String {
        let mut parts = Vec::new();
        let mut places = Vec::new();
        if contact {
            places.push("traits.contact");
            if !self.schema.contact_traits.is_empty() {
                parts.push(format!(
                    "the contact traits are {}",
                    list_names(self.schema.contact_traits.keys().map(String::as_str))
                ));
            }
        }
        if account {
            places.push("traits.account");
            if !self.schema.account_traits.is_empty() {
                parts.push(format!(
                    "the account traits are {}",
                    list_names(self.schema.account_traits.keys().map(String::as_str))
                ));
            }
        }
        parts.push(format!("declare custom traits under {} in workspace.yaml", places.join(" or ")));
        parts.join("; ")
    }

    fn name(&mut self, e: &Expr, qualifier: Option<&(String, Span)>, name: &str, name_span: Span) -> (Node, Ty) {
        let Some((qualifier, qualifier_span)) = qualifier else {
            return self.bare_name(name, name_span);
        };
        match qualifier.to_ascii_lowercase().as_str() {
            "account" => {
                if let Some(found) = self.account_trait(name) {
                    return found;
                }
                let help = match closest(name, self.schema.account_traits.keys().map(String::as_str)) {
                    Some(close) => format!("did you mean `account.{close}`?"),
                    None => self.traits_help(true, false),
                };
                self.error(name_span, format!("unknown account trait `{name}`"), Some(help));
            }
            "contact" if !self.subject_is_contact() => {
                self.error(
                    e.span,
                    format!(
                        "`{}` cannot be used here: contact traits are only available in rules of contacts",
                        self.text(e.span)
                    ),
                    Some("this rule is evaluated for an account, which has no single contact".to_string()),
                );
            }
            "contact" => {
                if let Some(found) = self.contact_trait(name) {
                    return found;
                }
                let help = match closest(name, self.schema.contact_traits.keys().map(String::as_str)) {
                    Some(close) => format!("did you mean `contact.{close}`?"),
                    None => self.traits_help(false, true),
                };
                self.error(name_span, format!("unknown contact trait `{name}`"), Some(help));
            }
            _ => {
                let help = match closest(qualifier, ["account", "contact"]) {
                    Some(close) => format!("did you mean `{close}.{name}`?"),
                    None => "qualify a trait with `account.` or `contact.`".to_string(),
                };
                self.error(*qualifier_span, format!("unknown qualifier `{qualifier}`"), Some(help));
            }
        }
        poison()
    }

    fn bare_name(&mut self, name: &str, span: Span) -> (Node, Ty) {
        let contact_rule = self.subject_is_contact();
        if contact_rule && let Some(found) = self.contact_trait(name) {
            return found;
        }
        if let Some(found) = self.account_trait(name) {
            return found;
        }
        let lower = name.to_ascii_lowercase();
        if is_window_keyword(&lower) {
            self.error(
                span,
                format!("`{lower}` is a window, not a value"),
                Some(format!("use it as the window of a behavioural function, e.g. `count('login', {lower})`")),
            );
        } else if !contact_rule && self.schema.contact_traits.contains_key(name) {
            self.error(
                span,
                format!("`{name}` is a contact trait: contact traits are only available in rules of contacts"),
                Some("this rule is evaluated for an account, which has no single contact".to_string()),
            );
        } else if signature(&lower).is_some() {
            self.error(span, format!("`{name}` is a function"), Some(format!("call it with parentheses: `{lower}()`")));
        } else {
            let mut candidates: Vec<&str> = Vec::new();
            if contact_rule {
                candidates.extend(self.schema.contact_traits.keys().map(String::as_str));
            }
            candidates.extend(self.schema.account_traits.keys().map(String::as_str));
            let help = match closest(name, candidates) {
                Some(close) => format!("did you mean `{close}`?"),
                None => self.traits_help(true, contact_rule),
            };
            self.error(span, format!("unknown trait `{name}`"), Some(help));
        }
        poison()
    }

    // ---- operators --------------------------------------------------------------------

    fn binary(&mut self, e: &Expr, op: BinOp, op_span: Span, lhs: &Expr, rhs: &Expr) -> (Node, Ty) {
        match op {
            BinOp::And | BinOp::Or => {
                let (l, r) = (self.condition(lhs), self.condition(rhs));
                let node = if op == BinOp::And { Node::And(boxed(l), boxed(r)) } else { Node::Or(boxed(l), boxed(r)) };
                (node, Ty::Bool)
            }
            op if op.is_comparison() => self.comparison(e, op, op_span, lhs, rhs),
            BinOp::Concat => {
                let (l, lt) = self.expr(lhs);
                let (r, rt) = self.expr(rhs);
                if lt.fits(&Ty::String) && rt.fits(&Ty::String) {
                    if lt == Ty::Poison || rt == Ty::Poison {
                        return poison();
                    }
                    return (Node::Concat(boxed(l), boxed(r)), Ty::String);
                }
                self.error(
                    e.span,
                    format!("cannot join {lt} and {rt} with `||`"),
                    Some("`||` joins strings; `concat(...)` turns any value into text".to_string()),
                );
                poison()
            }
            _ => self.arithmetic(e, op, lhs, rhs),
        }
    }

    fn comparison(&mut self, e: &Expr, op: BinOp, op_span: Span, lhs: &Expr, rhs: &Expr) -> (Node, Ty) {
        if matches!(lhs.kind, ExprKind::Null) || matches!(rhs.kind, ExprKind::Null) {
            let other = if matches!(lhs.kind, ExprKind::Null) { rhs } else { lhs };
            let help = match op {
                BinOp::Eq => format!("write `{} is null`", self.text(other.span)),
                BinOp::Ne => format!("write `{} is not null`", self.text(other.span)),
                _ => "test for a missing value with `is null`".to_string(),
            };
            self.error(op_span, format!("a comparison with `null` is never true (`{}`)", op.symbol()), Some(help));
            return poison();
        }
        self.stage_literals(lhs, std::slice::from_ref(rhs));
        self.stage_literals(rhs, std::slice::from_ref(lhs));
        let items = [self.expr(lhs), self.expr(rhs)];
        let ordering = !matches!(op, BinOp::Eq | BinOp::Ne);
        match self.comparable(e.span, &format!("`{}`", op.symbol()), ordering, items, [lhs, rhs]) {
            Some([l, r]) => {
                let cmp = match op {
                    BinOp::Eq => Cmp::Eq,
                    BinOp::Ne => Cmp::Ne,
                    BinOp::Lt => Cmp::Lt,
                    BinOp::Le => Cmp::Le,
                    BinOp::Gt => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                (Node::Compare(cmp, boxed(l), boxed(r)), Ty::Bool)
            }
            None => poison(),
        }
    }

    /// Checks that values can be compared with each other, converting dates to the start
    /// of their day when they meet timestamps. `None` after reporting a problem (or when
    /// an operand was already wrong).
    fn comparable<const N: usize>(
        &mut self,
        span: Span,
        op: &str,
        ordering: bool,
        items: [(Node, Ty); N],
        exprs: [&Expr; N],
    ) -> Option<[Node; N]> {
        if items.iter().any(|(_, t)| *t == Ty::Poison) {
            return None;
        }
        let known: Vec<(&Ty, &Expr)> =
            items.iter().zip(exprs.iter()).filter(|((_, t), _)| *t != Ty::Null).map(|((_, t), e)| (t, *e)).collect();
        let mixes_days = known.iter().any(|(t, _)| **t == Ty::Timestamp) && known.iter().any(|(t, _)| **t == Ty::Date);
        let mismatch = known.iter().find(|(t, _)| {
            let first = known.first().map_or(&Ty::Null, |(t, _)| *t);
            !(t.fits(first)
                || mixes_days && matches!(t, Ty::Date | Ty::Timestamp) && matches!(first, Ty::Date | Ty::Timestamp))
        });
        if let (Some((first, first_e)), Some((other, other_e))) = (known.first(), mismatch) {
            let help = compare_help(first, other, other_e).or_else(|| compare_help(other, first, first_e));
            self.error(span, format!("cannot compare {first} with {other}"), help);
            return None;
        }
        match known.first().map(|(t, _)| *t) {
            Some(Ty::List(_)) => {
                self.error(
                    span,
                    "lists cannot be compared".to_string(),
                    Some("test whether a list holds a value with `in`: `'value' in ...`".to_string()),
                );
                return None;
            }
            Some(Ty::Bool) if ordering => {
                self.error(
                    span,
                    format!("conditions (true or false) cannot be ordered with {op}"),
                    Some("compare them with `=` or `!=`".to_string()),
                );
                return None;
            }
            _ => {}
        }
        Some(items.map(|(node, ty)| if mixes_days && ty == Ty::Date { Node::StartOfDay(boxed(node)) } else { node }))
    }

    fn arithmetic(&mut self, e: &Expr, op: BinOp, lhs: &Expr, rhs: &Expr) -> (Node, Ty) {
        let (l, lt) = self.expr(lhs);
        let (r, rt) = self.expr(rhs);
        let arith = match op {
            BinOp::Add => Arith::Add,
            BinOp::Sub => Arith::Sub,
            BinOp::Mul => Arith::Mul,
            BinOp::Div => Arith::Div,
            _ => Arith::Rem,
        };
        if lt == Ty::Poison || rt == Ty::Poison {
            return poison();
        }
        if lt == Ty::Null || rt == Ty::Null {
            // Arithmetic with null is null whatever the other side is.
            return (Node::Arith(arith, boxed(l), boxed(r)), Ty::Null);
        }
        use Ty::{Date as D, Duration as Dur, Number as N, Timestamp as Ts};
        let result = match (arith, &lt, &rt) {
            (_, N, N) => Some(N),
            (Arith::Add, D, Dur) | (Arith::Add, Dur, D) | (Arith::Sub, D, Dur) => Some(D),
            (Arith::Sub, D, D) | (Arith::Sub, Ts, Ts) => Some(Dur),
            (Arith::Add, Ts, Dur) | (Arith::Add, Dur, Ts) | (Arith::Sub, Ts, Dur) => Some(Ts),
            (Arith::Add | Arith::Sub, Dur, Dur) => Some(Dur),
            (Arith::Mul, Dur, N) | (Arith::Mul, N, Dur) | (Arith::Div, Dur, N) => Some(Dur),
            (Arith::Div, Dur, Dur) => Some(N),
            _ => None,
        };
        if let Some(ty) = result {
            return (Node::Arith(arith, boxed(l), boxed(r)), ty);
        }
        let help = match (&lt, &rt, &rhs.kind) {
            (Ty::String, Ty::String, _) if op == BinOp::Add => Some("join strings with `||`".to_string()),
            (D | Ts, N, ExprKind::Number(n)) => Some(format!("write a duration: `{n}d` for {n} days")),
            (D, Ts, _) | (Ts, D, _) => Some("convert the timestamp to a date with `date(...)`".to_string()),
            (N, Ty::String, ExprKind::String(s)) | (Ty::String, N, ExprKind::String(s))
                if s.trim().parse::<f64>().is_ok() =>
            {
                Some("remove the quotes to use it as a number".to_string())
            }
            _ => None,
        };
        self.error(e.span, format!("cannot apply `{}` to {lt} and {rt}", op.symbol()), help);
        poison()
    }

    fn in_list(&mut self, e: &Expr, value: &Expr, list: &Expr, negated: bool) -> (Node, Ty) {
        if let ExprKind::List(items) = &list.kind {
            self.stage_literals(value, items);
        }
        let (value_node, value_ty) = self.expr(value);
        let (list_node, list_ty) = self.expr(list);
        let node = Node::In { value: boxed(value_node), list: boxed(list_node), negated };
        match &list_ty {
            Ty::Poison | Ty::Null => (node, if value_ty == Ty::Poison { Ty::Poison } else { Ty::Bool }),
            Ty::List(item) if value_ty.fits(item) => (node, Ty::Bool),
            Ty::List(item) => {
                let literal_strings = match &list.kind {
                    ExprKind::List(items) => items.iter().all(|i| string_literal(i).is_some()),
                    _ => false,
                };
                let help = match (&value_ty, &**item) {
                    (Ty::Number, Ty::String) if literal_strings => {
                        Some("remove the quotes to compare as numbers".to_string())
                    }
                    (Ty::String, Ty::Number) => Some("put the values in quotes: `('a', 'b')`".to_string()),
                    _ => None,
                };
                self.error(e.span, format!("cannot look for {value_ty} in {list_ty}"), help);
                poison()
            }
            other => {
                self.error(
                    list.span,
                    format!("the right side of `in` must be a list, found {other}"),
                    Some("write the values in parentheses: `plan in ('starter', 'team')`".to_string()),
                );
                poison()
            }
        }
    }

    /// Reports stage ids that do not exist when `stage()` meets string literals.
    fn stage_literals(&mut self, call: &Expr, others: &[Expr]) {
        let is_stage = matches!(&call.kind, ExprKind::Call { name, args, .. }
            if name.eq_ignore_ascii_case("stage") && args.is_empty());
        if !is_stage {
            return;
        }
        for other in others {
            if let Some(id) = string_literal(other)
                && !self.schema.stages.contains(id)
            {
                let stages = self.schema.stages.iter().map(String::as_str);
                self.unknown_id("stage", "stages", id, other.span, stages);
            }
        }
    }

    fn case(&mut self, branches: &[(Expr, Expr)], otherwise: Option<&Expr>) -> (Node, Ty) {
        let mut ty = Ty::Null;
        let mut nodes = Vec::with_capacity(branches.len());
        let mut failed = false;
        let results = branches.iter().map(|(_, r)| r).chain(otherwise);
        let mut result_nodes = Vec::new();
        for (condition, _) in branches {
            nodes.push(self.condition(condition));
        }
        for result in results {
            let (node, result_ty) = self.expr(result);
            if !ty.fits(&result_ty) {
                self.error(
                    result.span,
                    format!(
                        "the results of `case` must have one type, but this is {result_ty} and an earlier one {ty}"
                    ),
                    None,
                );
                failed = true;
            }
            ty = ty.join(result_ty);
            result_nodes.push(node);
        }
        if failed {
            return poison();
        }
        let otherwise_node = if otherwise.is_some() { result_nodes.pop() } else { None };
        let branches = nodes.into_iter().zip(result_nodes).collect();
        (Node::Case { branches, otherwise: otherwise_node.map(boxed) }, ty)
    }
}

/// A hint for comparing a value of type `a` with `b_e` (of type `b`), if an obvious fix
/// exists.
fn compare_help(a: &Ty, b: &Ty, b_e: &Expr) -> Option<String> {
    let help = match (a, b, &b_e.kind) {
        (Ty::Number, Ty::String, ExprKind::String(s)) if s.trim().parse::<f64>().is_ok() => {
            "remove the quotes to compare as a number".to_string()
        }
        (Ty::Date | Ty::Timestamp, Ty::String, ExprKind::String(s)) if s.trim().parse::<Date>().is_ok() => {
            format!("write `date('{}')` to compare with a date", s.trim())
        }
        (Ty::Bool, Ty::String, ExprKind::String(s))
            if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
        {
            "remove the quotes to compare with a boolean".to_string()
        }
        (Ty::Duration, Ty::Number, ExprKind::Number(n)) => format!("write `{n}d` for a duration of {n} days"),
        (Ty::Number, Ty::Duration, ExprKind::Duration { amount, unit: DurationUnit::Days }) => {
            format!("write the plain number `{amount}`")
        }
        (Ty::Date | Ty::Timestamp, Ty::Duration | Ty::Number, _) => {
            "count days with `days_since(...)` or `days_until(...)`, e.g. `days_since(...) > 30`".to_string()
        }
        _ => return None,
    };
    Some(help)
}
