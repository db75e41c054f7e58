//! A Pratt parser from tokens to [`Expr`], keeping exact spans. It stops at the first
//! syntax error (later errors in a broken expression are mostly echoes of the first).
//!
//! Binding powers, loosest first: `or`; `and`; prefix `not`; comparisons, `[not] in`,
//! `[not] between`, `is [not] null`, `[not] like` (which do not chain); `||`; `+ -`;
//! `* / %`; prefix `-`; calls and parentheses.

use crate::ast::{BinOp, Expr, ExprKind, MAX_DEPTH};
use crate::lexer::{Keyword, Tok, Token, lex};
use crate::{RuleError, Span};

/// Parses a whole rule.
pub(crate) fn parse(src: &str) -> Result<Expr, RuleError> {
    let tokens = lex(src)?;
    let eof = Token { tok: Tok::Eof, span: Span { start: src.len(), end: src.len() } };
    let mut parser = Parser { src, tokens, pos: 0, depth: 0, eof };
    if parser.peek().tok == Tok::Eof {
        return Err(RuleError {
            span: parser.peek().span,
            message: "this rule is empty".to_string(),
            help: Some("write a condition such as `plan = 'team'`".to_string()),
        });
    }
    let expr = parser.expr(0)?;
    let next = parser.peek();
    match next.tok {
        Tok::Eof => Ok(expr),
        Tok::RParen => Err(err(next.span, "this `)` has no matching `(`", Some("remove it"))),
        _ => Err(RuleError {
            span: next.span,
            message: format!("unexpected {} after the end of the expression", parser.describe(next)),
            help: Some("join conditions with `and` or `or`".to_string()),
        }),
    }
}

const OR: u8 = 1;
const AND: u8 = 3;
const NOT: u8 = 5;
const COMPARE: u8 = 7;
const CONCAT: u8 = 9;
const SUM: u8 = 11;
const PRODUCT: u8 = 13;
const NEGATE: u8 = 15;

/// What may follow a complete operand.
enum Infix {
    Binary(BinOp),
    In,
    Between,
    Is,
    Like,
    /// `not in`, `not between`, `not like`.
    Not,
}

fn infix(tok: &Tok) -> Option<(u8, Infix)> {
    let found = match tok {
        Tok::Kw(Keyword::Or) => (OR, Infix::Binary(BinOp::Or)),
        Tok::Kw(Keyword::And) => (AND, Infix::Binary(BinOp::And)),
        Tok::Eq => (COMPARE, Infix::Binary(BinOp::Eq)),
        Tok::Ne => (COMPARE, Infix::Binary(BinOp::Ne)),
        Tok::Lt => (COMPARE, Infix::Binary(BinOp::Lt)),
        Tok::Le => (COMPARE, Infix::Binary(BinOp::Le)),
        Tok::Gt => (COMPARE, Infix::Binary(BinOp::Gt)),
        Tok::Ge => (COMPARE, Infix::Binary(BinOp::Ge)),
        Tok::Kw(Keyword::In) => (COMPARE, Infix::In),
        Tok::Kw(Keyword::Between) => (COMPARE, Infix::Between),
        Tok::Kw(Keyword::Is) => (COMPARE, Infix::Is),
        Tok::Kw(Keyword::Like) => (COMPARE, Infix::Like),
        Tok::Kw(Keyword::Not) => (COMPARE, Infix::Not),
        Tok::Concat => (CONCAT, Infix::Binary(BinOp::Concat)),
        Tok::Plus => (SUM, Infix::Binary(BinOp::Add)),
        Tok::Minus => (SUM, Infix::Binary(BinOp::Sub)),
        Tok::Star => (PRODUCT, Infix::Binary(BinOp::Mul)),
        Tok::Slash => (PRODUCT, Infix::Binary(BinOp::Div)),
        Tok::Percent => (PRODUCT, Infix::Binary(BinOp::Rem)),
        _ => return None,
    };
    Some(found)
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    depth: u16,
    eof: Token,
}

fn err(span: Span, message: &str, help: Option<&str>) -> RuleError {
    RuleError { span, message: message.to_string(), help: help.map(str::to_string) }
}

fn join(a: Span, b: Span) -> Span {
    Span { start: a.start.min(b.start), end: a.end.max(b.end) }
}

fn too_deep(span: Span) -> RuleError {
    err(
        span,
        &format!("this rule is nested too deeply (more than {MAX_DEPTH} levels)"),
        Some("simplify it, e.g. move a part into a segment and use `segment('id')`"),
    )
}

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&self.eof)
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn at(&self, tok: &Tok) -> bool {
        &self.peek().tok == tok
    }

    /// How a token is named in a message: its text, or "the end of the rule".
    fn describe(&self, token: &Token) -> String {
        match token.tok {
            Tok::Eof => "the end of the rule".to_string(),
            _ => format!("`{}`", self.src.get(token.span.start..token.span.end).unwrap_or("")),
        }
    }

    fn text(&self, span: Span) -> &'s str {
        self.src.get(span.start..span.end).unwrap_or("")
    }

    /// Builds a node, refusing one nested deeper than [`MAX_DEPTH`].
    fn node(&self, kind: ExprKind, span: Span) -> Result<Expr, RuleError> {
        let expr = Expr::new(kind, span);
        if expr.height > MAX_DEPTH { Err(too_deep(span)) } else { Ok(expr) }
    }

    /// An expression whose operators bind at least as tightly as `min_bp`.
    fn expr(&mut self, min_bp: u8) -> Result<Expr, RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(too_deep(self.peek().span));
        }
        let mut lhs = self.prefix()?;
        while let Some((bp, op)) = infix(&self.peek().tok) {
            if bp < min_bp {
                break;
            }
            let op_token = self.bump();
            lhs = self.infix(lhs, op, op_token)?;
            if bp == COMPARE
                && let Some((COMPARE, _)) = infix(&self.peek().tok)
                && min_bp <= COMPARE
            {
                let next = self.peek().span;
                return Err(err(
                    next,
                    "comparisons cannot be chained",
                    Some("combine them with `and`, e.g. `a < b and b < c`"),
                ));
            }
        }
        self.depth -= 1;
        Ok(lhs)
    }

    /// The right operand of `op_token`, with a clear error when nothing follows it.
    fn operand_after(&mut self, op_token: &Token, min_bp: u8) -> Result<Expr, RuleError> {
        if self.at(&Tok::Eof) {
            let op = self.text(op_token.span).to_string();
            return Err(RuleError {
                span: op_token.span,
                message: format!("`{op}` has nothing on its right"),
                help: Some(format!("complete the expression after `{op}`, or remove it")),
            });
        }
        self.expr(min_bp)
    }

    fn infix(&mut self, lhs: Expr, op: Infix, op_token: Token) -> Result<Expr, RuleError> {
        match op {
            Infix::Binary(op) => {
                let rbp = match op {
                    BinOp::Or => OR + 1,
                    BinOp::And => AND + 1,
                    BinOp::Concat => CONCAT + 1,
                    BinOp::Add | BinOp::Sub => SUM + 1,
                    BinOp::Mul | BinOp::Div | BinOp::Rem => PRODUCT + 1,
                    _ => COMPARE + 1,
                };
                let rhs = self.operand_after(&op_token, rbp)?;
                let span = join(lhs.span, rhs.span);
                let kind = ExprKind::Binary { op, op_span: op_token.span, lhs: Box::new(lhs), rhs: Box::new(rhs) };
                self.node(kind, span)
            }
            Infix::Not => {
                let next = self.bump();
                let negated = match next.tok {
                    Tok::Kw(Keyword::In) => Infix::In,
                    Tok::Kw(Keyword::Between) => Infix::Between,
                    Tok::Kw(Keyword::Like) => Infix::Like,
                    _ => {
                        return Err(RuleError {
                            span: next.span,
                            message: format!(
                                "expected `in`, `between` or `like` after `not`, found {}",
                                self.describe(&next)
                            ),
                            help: Some("to negate a condition, put `not` before it: `not a = b`".to_string()),
                        });
                    }
                };
                self.negatable(lhs, negated, next, true)
            }
            other => self.negatable(lhs, other, op_token, false),
        }
    }

    /// `in`, `between`, `like` (each maybe after `not`) and `is [not] null`.
    fn negatable(&mut self, lhs: Expr, op: Infix, op_token: Token, negated: bool) -> Result<Expr, RuleError> {
        let value = Box::new(lhs);
        match op {
            Infix::In => {
                let list =
                    if self.at(&Tok::LParen) { self.tuple()? } else { self.operand_after(&op_token, COMPARE + 1)? };
                let span = join(value.span, list.span);
                self.node(ExprKind::In { value, list: Box::new(list), negated }, span)
            }
            Infix::Between => {
                let low = self.operand_after(&op_token, COMPARE + 1)?;
                let and = self.bump();
                if and.tok != Tok::Kw(Keyword::And) {
                    return Err(RuleError {
                        span: and.span,
                        message: format!(
                            "expected `and` between the bounds of `between`, found {}",
                            self.describe(&and)
                        ),
                        help: Some("write `x between 1 and 10`".to_string()),
                    });
                }
                let high = self.operand_after(&and, COMPARE + 1)?;
                let span = join(value.span, high.span);
                self.node(ExprKind::Between { value, low: Box::new(low), high: Box::new(high), negated }, span)
            }
            Infix::Like => {
                let pattern = self.operand_after(&op_token, COMPARE + 1)?;
                let span = join(value.span, pattern.span);
                self.node(ExprKind::Like { value, pattern: Box::new(pattern), negated }, span)
            }
            _ => {
                let mut negated = false;
                let mut next = self.bump();
                if next.tok == Tok::Kw(Keyword::Not) {
                    negated = true;
                    next = self.bump();
                }
                if next.tok != Tok::Kw(Keyword::Null) {
                    return Err(RuleError {
                        span: next.span,
                        message: format!("expected `null` after `is`, found {}", self.describe(&next)),
                        help: Some("write `x is null` or `x is not null`; compare values with `=`".to_string()),
                    });
                }
                let span = join(value.span, next.span);
                self.node(ExprKind::IsNull { value, negated }, span)
            }
        }
    }

    /// `(a, b, c)` on the right of `in`.
    fn tuple(&mut self) -> Result<Expr, RuleError> {
        let open = self.bump();
        if self.at(&Tok::RParen) {
            let close = self.bump();
            return Err(err(
                join(open.span, close.span),
                "the list after `in` is empty",
                Some("put at least one value between the parentheses: `in ('a', 'b')`"),
            ));
        }
        let (items, close) = self.items(&open, &Tok::RParen, "`,` or `)` in the list")?;
        self.node(ExprKind::List(items), join(open.span, close))
    }

    /// Comma-separated expressions up to `close`, after `open` was consumed.
    fn items(&mut self, open: &Token, close: &Tok, expected: &str) -> Result<(Vec<Expr>, Span), RuleError> {
        let mut items = Vec::new();
        loop {
            if self.at(&Tok::Eof) {
                return Err(self.unclosed(open));
            }
            items.push(self.expr(0)?);
            let next = self.bump();
            if &next.tok == close {
                return Ok((items, next.span));
            }
            match next.tok {
                Tok::Comma => {}
                Tok::Eof => return Err(self.unclosed(open)),
                _ => {
                    return Err(RuleError {
                        span: next.span,
                        message: format!("expected {expected}, found {}", self.describe(&next)),
                        help: None,
                    });
                }
            }
        }
    }

    fn unclosed(&self, open: &Token) -> RuleError {
        let (what, close) = if open.tok == Tok::LBracket { ("[", "]") } else { ("(", ")") };
        RuleError {
            span: open.span,
            message: format!("this `{what}` is never closed"),
            help: Some(format!("add a `{close}` to close it")),
        }
    }

    fn prefix(&mut self) -> Result<Expr, RuleError> {
        let token = self.bump();
        let span = token.span;
        let kind = match token.tok {
            Tok::Number(n) => ExprKind::Number(n),
            Tok::Duration { amount, unit } => ExprKind::Duration { amount, unit },
            Tok::Str(s) => ExprKind::String(s),
            Tok::Kw(Keyword::True) => ExprKind::Bool(true),
            Tok::Kw(Keyword::False) => ExprKind::Bool(false),
            Tok::Kw(Keyword::Null) => ExprKind::Null,
            Tok::Kw(Keyword::Not) => {
                let operand = self.operand_after(&token, NOT)?;
                let span = join(span, operand.span);
                return self.node(ExprKind::Not(Box::new(operand)), span);
            }
            Tok::Minus => {
                let operand = self.operand_after(&token, NEGATE)?;
                let span = join(span, operand.span);
                return self.node(ExprKind::Neg(Box::new(operand)), span);
            }
            Tok::LParen => {
                if self.at(&Tok::RParen) {
                    return Err(err(
                        join(span, self.peek().span),
                        "empty parentheses",
                        Some("put an expression inside them"),
                    ));
                }
                if self.at(&Tok::Eof) {
                    return Err(self.unclosed(&token));
                }
                let mut inner = self.expr(0)?;
                let close = self.bump();
                match close.tok {
                    Tok::RParen => {}
                    Tok::Eof => return Err(self.unclosed(&token)),
                    _ => {
                        return Err(RuleError {
                            span: close.span,
                            message: format!("expected `)`, found {}", self.describe(&close)),
                            help: Some("join conditions with `and` or `or`".to_string()),
                        });
                    }
                }
                inner.span = join(span, close.span);
                return Ok(inner);
            }
            Tok::LBracket => {
                if self.at(&Tok::RBracket) {
                    let close = self.bump();
                    return Err(err(
                        join(span, close.span),
                        "a list needs at least one value",
                        Some("write the values between the brackets: `['a', 'b']`"),
                    ));
                }
                let (items, close) = self.items(&token, &Tok::RBracket, "`,` or `]` in the list")?;
                return self.node(ExprKind::List(items), join(span, close));
            }
            Tok::Kw(Keyword::Case) => return self.case(token),
            Tok::Ident(name) => return self.name_or_call(name, span),
            Tok::Eof => return Err(err(span, "expected a value, found the end of the rule", None)),
            _ => {
                return Err(RuleError {
                    span,
                    message: format!("expected a value, found {}", self.describe(&token)),
                    help: None,
                });
            }
        };
        self.node(kind, span)
    }

    fn name_or_call(&mut self, name: String, span: Span) -> Result<Expr, RuleError> {
        match self.peek().tok {
            Tok::Dot => {
                self.bump();
                let member = self.bump();
                let member_name = match &member.tok {
                    Tok::Ident(n) => n.clone(),
                    Tok::Kw(_) => self.text(member.span).to_string(),
                    _ => {
                        return Err(RuleError {
                            span: member.span,
                            message: format!("expected a trait name after `{name}.`, found {}", self.describe(&member)),
                            help: Some(format!("write e.g. `{name}.plan`")),
                        });
                    }
                };
                let kind = ExprKind::Name { qualifier: Some((name, span)), name: member_name, name_span: member.span };
                self.node(kind, join(span, member.span))
            }
            Tok::LParen => {
                let open = self.bump();
                let (args, close) = if self.at(&Tok::RParen) {
                    (Vec::new(), self.bump().span)
                } else {
                    let expected = format!("`,` or `)` after an argument of `{name}`");
                    self.items(&open, &Tok::RParen, &expected)?
                };
                self.node(ExprKind::Call { name, name_span: span, args }, join(span, close))
            }
            _ => self.node(ExprKind::Name { qualifier: None, name, name_span: span }, span),
        }
    }

    /// `case when c then x [when ...] [else y] end`, after `case`.
    fn case(&mut self, case: Token) -> Result<Expr, RuleError> {
        if self.peek().tok != Tok::Kw(Keyword::When) {
            let next = self.peek().clone();
            return Err(RuleError {
                span: next.span,
                message: format!("expected `when` after `case`, found {}", self.describe(&next)),
                help: Some("write `case when condition then value [else value] end`".to_string()),
            });
        }
        let mut branches = Vec::new();
        let mut otherwise = None;
        loop {
            let next = self.bump();
            match next.tok {
                Tok::Kw(Keyword::When) if otherwise.is_none() => {
                    let condition = self.operand_after(&next, 0)?;
                    let then = self.bump();
                    if then.tok != Tok::Kw(Keyword::Then) {
                        return Err(RuleError {
                            span: then.span,
                            message: format!(
                                "expected `then` after the condition of `when`, found {}",
                                self.describe(&then)
                            ),
                            help: Some("write `when condition then value`".to_string()),
                        });
                    }
                    let result = self.operand_after(&then, 0)?;
                    branches.push((condition, result));
                }
                Tok::Kw(Keyword::Else) if otherwise.is_none() => {
                    otherwise = Some(Box::new(self.operand_after(&next, 0)?));
                }
                Tok::Kw(Keyword::End) => {
                    let span = join(case.span, next.span);
                    return self.node(ExprKind::Case { branches, otherwise }, span);
                }
                Tok::Eof => {
                    return Err(err(case.span, "this `case` has no `end`", Some("close it with `end`")));
                }
                _ => {
                    let expected = if otherwise.is_some() { "`end`" } else { "`when`, `else` or `end`" };
                    return Err(RuleError {
                        span: next.span,
                        message: format!("expected {expected} in `case`, found {}", self.describe(&next)),
                        help: None,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::DurationUnit;

    /// The parse, printed fully parenthesised.
    fn shape(src: &str) -> String {
        match parse(src) {
            Ok(e) => e.to_string(),
            Err(e) => format!("error: {}", e.message),
        }
    }

    fn span(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(shape("a or b and c"), "(a or (b and c))");
        assert_eq!(shape("a and b or c"), "((a and b) or c)");
    }

    #[test]
    fn not_binds_looser_than_comparison_and_tighter_than_and() {
        assert_eq!(shape("not a = 1 and b"), "((not (a = 1)) and b)");
        assert_eq!(shape("NOT not x"), "(not (not x))");
    }

    #[test]
    fn arithmetic_precedence_and_left_associativity() {
        assert_eq!(shape("1 + 2 * 3"), "(1 + (2 * 3))");
        assert_eq!(shape("10 - 4 - 3"), "((10 - 4) - 3)");
        assert_eq!(shape("8 / 4 / 2 % 3"), "(((8 / 4) / 2) % 3)");
        assert_eq!(shape("-a * b"), "((-a) * b)");
        assert_eq!(shape("- - 1"), "(-(-1))");
        assert_eq!(shape("(1 + 2) * 3"), "((1 + 2) * 3)");
    }

    #[test]
    fn concat_binds_looser_than_plus_and_tighter_than_comparison() {
        assert_eq!(shape("a || b || c = d"), "(((a || b) || c) = d)");
        assert_eq!(shape("a || 1 + 2"), "(a || (1 + 2))");
    }

    #[test]
    fn comparison_binds_looser_than_arithmetic() {
        assert_eq!(shape("active_users(7d) / seats >= 0.6"), "((active_users(7d) / seats) >= 0.6)");
        assert_eq!(shape("a <> b"), "(a != b)");
    }

    #[test]
    fn comparisons_do_not_chain() {
        assert_eq!(shape("1 < a < 3"), "error: comparisons cannot be chained");
        assert_eq!(shape("a = 1 is null"), "error: comparisons cannot be chained");
    }

    #[test]
    fn in_with_a_tuple_or_a_list_and_negated() {
        assert_eq!(shape("plan in ('starter', 'team')"), "(plan in ['starter', 'team'])");
        assert_eq!(shape("plan NOT IN ('a')"), "(plan not in ['a'])");
        assert_eq!(shape("plan in ['a', 'b'] and x"), "((plan in ['a', 'b']) and x)");
        assert_eq!(shape("'admin' in roles"), "('admin' in roles)");
    }

    #[test]
    fn between_takes_its_own_and() {
        assert_eq!(shape("arr between 1 and 2 and x"), "((arr between 1 and 2) and x)");
        assert_eq!(shape("arr not between 1 + 1 and 2 * 3"), "(arr not between (1 + 1) and (2 * 3))");
    }

    #[test]
    fn is_null_and_like() {
        assert_eq!(shape("x is null or y is not null"), "((x is null) or (y is not null))");
        assert_eq!(shape("email not like '%@acme.com'"), "(email not like '%@acme.com')");
    }

    #[test]
    fn case_expressions() {
        assert_eq!(
            shape("case when a > 1 then 'big' when a > 0 then 'small' else 'none' end"),
            "case when (a > 1) then 'big' when (a > 0) then 'small' else 'none' end"
        );
        assert_eq!(shape("CASE WHEN a THEN 1 END + 1"), "(case when a then 1 end + 1)");
    }

    #[test]
    fn durations_lists_calls_and_qualified_names() {
        assert_eq!(shape("count('x', 12w)"), "count('x', 12w)");
        assert_eq!(shape("distinct_events(['a','b'], 30d)"), "distinct_events(['a', 'b'], 30d)");
        assert_eq!(shape("now()"), "now()");
        assert_eq!(shape("account.end = contact.role"), "(account.end = contact.role)");
        assert_eq!(shape("'it''s'"), "'it''s'");
        match parse("30m").map(|e| e.kind) {
            Ok(ExprKind::Duration { amount: 30, unit: DurationUnit::Minutes }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn spans_cover_what_was_written() {
        let Ok(e) = parse("arr < 20000 and  plan = 'team'") else { panic!("parse failed") };
        assert_eq!(e.span, span(0, 30));
        let ExprKind::Binary { op_span, lhs, rhs, .. } = &e.kind else { panic!("not binary") };
        assert_eq!(*op_span, span(12, 15));
        assert_eq!(lhs.span, span(0, 11));
        assert_eq!(rhs.span, span(17, 30));
        let Ok(e) = parse(" ( a ) ") else { panic!("parse failed") };
        assert_eq!(e.span, span(1, 6));
        let Ok(e) = parse("count('x')") else { panic!("parse failed") };
        let ExprKind::Call { name_span, args, .. } = &e.kind else { panic!("not a call") };
        assert_eq!((*name_span, e.span, args[0].span), (span(0, 5), span(0, 10), span(6, 9)));
    }

    #[test]
    fn nesting_is_limited() {
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(shape(&deep), "error: this rule is nested too deeply (more than 64 levels)");
        let long_chain = vec!["a"; 200].join(" + ");
        assert_eq!(shape(&long_chain), "error: this rule is nested too deeply (more than 64 levels)");
        let ok = format!("{}1{}", "(".repeat(30), ")".repeat(30));
        assert_eq!(shape(&ok), "1");
    }

    mod roundtrip {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = String> {
            "[a-z_][a-z0-9_]{0,6}".prop_filter("not a keyword", |s| {
                crate::lexer::lex(s).is_ok_and(|t| matches!(t.first().map(|t| &t.tok), Some(Tok::Ident(_))))
            })
        }

        fn leaf() -> impl Strategy<Value = ExprKind> {
            prop_oneof![
                (0u32..100_000).prop_map(|n| ExprKind::Number(f64::from(n))),
                (0u32..1000).prop_map(|n| ExprKind::Number(f64::from(n) / 8.0)),
                "[ -~]{0,8}".prop_map(ExprKind::String),
                any::<bool>().prop_map(ExprKind::Bool),
                Just(ExprKind::Null),
                (
                    0u64..1000,
                    prop_oneof![
                        Just(DurationUnit::Minutes),
                        Just(DurationUnit::Hours),
                        Just(DurationUnit::Days),
                        Just(DurationUnit::Weeks)
                    ]
                )
                    .prop_map(|(amount, unit)| ExprKind::Duration { amount, unit }),
                name().prop_map(|name| ExprKind::Name { qualifier: None, name, name_span: Span::default() }),
                (prop_oneof![Just("account"), Just("contact")], name()).prop_map(|(q, name)| ExprKind::Name {
                    qualifier: Some((q.to_string(), Span::default())),
                    name,
                    name_span: Span::default()
                }),
            ]
        }

        fn e(kind: ExprKind) -> Expr {
            Expr::new(kind, Span::default())
        }

        fn expr() -> impl Strategy<Value = Expr> {
            leaf().prop_map(e).prop_recursive(5, 48, 4, |inner| {
                let op = prop_oneof![
                    Just(BinOp::Or),
                    Just(BinOp::And),
                    Just(BinOp::Eq),
                    Just(BinOp::Ne),
                    Just(BinOp::Lt),
                    Just(BinOp::Le),
                    Just(BinOp::Gt),
                    Just(BinOp::Ge),
                    Just(BinOp::Concat),
                    Just(BinOp::Add),
                    Just(BinOp::Sub),
                    Just(BinOp::Mul),
                    Just(BinOp::Div),
                    Just(BinOp::Rem),
                ];
                let b = |x: Expr| Box::new(x);
                prop_oneof![
                    (op, inner.clone(), inner.clone()).prop_map(move |(op, l, r)| e(ExprKind::Binary {
                        op,
                        op_span: Span::default(),
                        lhs: b(l),
                        rhs: b(r)
                    })),
                    inner.clone().prop_map(move |x| e(ExprKind::Not(b(x)))),
                    inner.clone().prop_map(move |x| e(ExprKind::Neg(b(x)))),
                    prop::collection::vec(inner.clone(), 1..4).prop_map(|items| e(ExprKind::List(items))),
                    // The right of `in` is a list or a name: a parenthesised expression
                    // there is SQL's one-value tuple.
                    (
                        inner.clone(),
                        prop_oneof![
                            prop::collection::vec(inner.clone(), 1..3).prop_map(|items| e(ExprKind::List(items))),
                            name().prop_map(|name| e(ExprKind::Name {
                                qualifier: None,
                                name,
                                name_span: Span::default()
                            })),
                        ],
                        any::<bool>()
                    )
                        .prop_map(move |(v, l, negated)| e(ExprKind::In {
                            value: b(v),
                            list: b(l),
                            negated
                        })),
                    (inner.clone(), inner.clone(), inner.clone(), any::<bool>()).prop_map(move |(v, l, h, negated)| e(
                        ExprKind::Between { value: b(v), low: b(l), high: b(h), negated }
                    )),
                    (inner.clone(), any::<bool>())
                        .prop_map(move |(v, negated)| e(ExprKind::IsNull { value: b(v), negated })),
                    (inner.clone(), inner.clone(), any::<bool>()).prop_map(move |(v, p, negated)| e(ExprKind::Like {
                        value: b(v),
                        pattern: b(p),
                        negated
                    })),
                    (prop::collection::vec((inner.clone(), inner.clone()), 1..3), prop::option::of(inner.clone()))
                        .prop_map(move |(branches, otherwise)| e(ExprKind::Case {
                            branches,
                            otherwise: otherwise.map(b)
                        })),
                    (name(), prop::collection::vec(inner, 0..3)).prop_map(|(name, args)| e(ExprKind::Call {
                        name,
                        name_span: Span::default(),
                        args
                    })),
                ]
            })
        }

        proptest! {
            #[test]
            fn printing_then_parsing_gives_the_same_tree(tree in expr()) {
                let printed = tree.to_string();
                let reparsed = parse(&printed);
                prop_assert!(reparsed.is_ok(), "{printed} failed: {reparsed:?}");
                let reprinted = reparsed.map(|e| e.to_string()).unwrap_or_default();
                prop_assert_eq!(reprinted, printed);
            }
        }
    }
}
