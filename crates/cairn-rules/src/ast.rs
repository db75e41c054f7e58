//! The syntax tree the parser builds: what was written, with exact byte spans, before
//! names are resolved or types checked.

use std::fmt;

use crate::Span;

/// The deepest a rule may nest (parentheses, operators, calls), so that no input can
/// exhaust the stack of the parser, the checker or the evaluator.
pub(crate) const MAX_DEPTH: u16 = 64;

/// The unit of a duration literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl DurationUnit {
    /// Seconds in one unit.
    pub(crate) fn seconds(self) -> u64 {
        match self {
            DurationUnit::Minutes => 60,
            DurationUnit::Hours => 3_600,
            DurationUnit::Days => 86_400,
            DurationUnit::Weeks => 604_800,
        }
    }

    /// The letter written after the number.
    pub(crate) fn suffix(self) -> char {
        match self {
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
        }
    }

    pub(crate) fn from_suffix(suffix: &str) -> Option<DurationUnit> {
        match suffix {
            "m" | "M" => Some(DurationUnit::Minutes),
            "h" | "H" => Some(DurationUnit::Hours),
            "d" | "D" => Some(DurationUnit::Days),
            "w" | "W" => Some(DurationUnit::Weeks),
            _ => None,
        }
    }
}

/// Binary operators written between two operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// How the operator is written (the canonical spelling).
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Concat => "||",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
}

/// An expression and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Levels of nesting below and including this node (a leaf is 1).
    pub height: u16,
}

/// What an expression is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprKind {
    Number(f64),
    String(String),
    Bool(bool),
    Null,
    Duration {
        amount: u64,
        unit: DurationUnit,
    },
    /// `['a', 'b']`, or the tuple on the right of `in`.
    List(Vec<Expr>),
    /// A bare name (`arr`), or a qualified one (`account.arr`).
    Name {
        qualifier: Option<(String, Span)>,
        name: String,
        name_span: Span,
    },
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary {
        op: BinOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    In {
        value: Box<Expr>,
        list: Box<Expr>,
        negated: bool,
    },
    Between {
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    IsNull {
        value: Box<Expr>,
        negated: bool,
    },
    Like {
        value: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
    },
    Case {
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Call {
        name: String,
        name_span: Span,
        args: Vec<Expr>,
    },
}

impl Expr {
    /// Builds a node, computing its height from its direct children.
    pub(crate) fn new(kind: ExprKind, span: Span) -> Expr {
        let below = match &kind {
            ExprKind::Number(_)
            | ExprKind::String(_)
            | ExprKind::Bool(_)
            | ExprKind::Null
            | ExprKind::Duration { .. }
            | ExprKind::Name { .. } => 0,
            ExprKind::List(items) | ExprKind::Call { args: items, .. } => {
                items.iter().map(|e| e.height).max().unwrap_or(0)
            }
            ExprKind::Not(e) | ExprKind::Neg(e) | ExprKind::IsNull { value: e, .. } => e.height,
            ExprKind::Binary { lhs, rhs, .. } => lhs.height.max(rhs.height),
            ExprKind::In { value, list: other, .. } | ExprKind::Like { value, pattern: other, .. } => {
                value.height.max(other.height)
            }
            ExprKind::Between { value, low, high, .. } => value.height.max(low.height).max(high.height),
            ExprKind::Case { branches, otherwise } => branches
                .iter()
                .map(|(c, r)| c.height.max(r.height))
                .chain(otherwise.iter().map(|e| e.height))
                .max()
                .unwrap_or(0),
        };
        Expr { kind, span, height: below.saturating_add(1) }
    }
}

/// Prints an expression back as rule source, fully parenthesised, so that parsing the
/// printed text gives the same tree (spans aside).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Number(n) => write!(f, "{n}"),
            ExprKind::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Null => f.write_str("null"),
            ExprKind::Duration { amount, unit } => write!(f, "{amount}{}", unit.suffix()),
            ExprKind::List(items) => {
                f.write_str("[")?;
                write_list(f, items)?;
                f.write_str("]")
            }
            ExprKind::Name { qualifier, name, .. } => match qualifier {
                Some((q, _)) => write!(f, "{q}.{name}"),
                None => f.write_str(name),
            },
            ExprKind::Not(e) => write!(f, "(not {e})"),
            ExprKind::Neg(e) => write!(f, "(-{e})"),
            ExprKind::Binary { op, lhs, rhs, .. } => write!(f, "({lhs} {} {rhs})", op.symbol()),
            ExprKind::In { value, list, negated } => write!(f, "({value} {}in {list})", not(*negated)),
            ExprKind::Between { value, low, high, negated } => {
                write!(f, "({value} {}between {low} and {high})", not(*negated))
            }
            ExprKind::IsNull { value, negated } => write!(f, "({value} is {}null)", not(*negated)),
            ExprKind::Like { value, pattern, negated } => write!(f, "({value} {}like {pattern})", not(*negated)),
            ExprKind::Case { branches, otherwise } => {
                f.write_str("case")?;
                for (condition, result) in branches {
                    write!(f, " when {condition} then {result}")?;
                }
                if let Some(e) = otherwise {
                    write!(f, " else {e}")?;
                }
                f.write_str(" end")
            }
            ExprKind::Call { name, args, .. } => {
                write!(f, "{name}(")?;
                write_list(f, args)?;
                f.write_str(")")
            }
        }
    }
}

fn not(negated: bool) -> &'static str {
    if negated { "not " } else { "" }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}
