//! Turns rule source into tokens with byte spans. Keywords are case-insensitive; a number
//! immediately followed by `d`, `w`, `h` or `m` is a duration.
//!
//! The same scanner reads a program's trigger for the workspace checker ([`lex_trigger`]),
//! which has a grammar of its own (`health_band_changed(to: 'red')`,
//! `account.renewal_date - 90d`) and reports its own errors, so that reading never fails.

use crate::ast::DurationUnit;
use crate::{RuleError, Span};

/// Words with a meaning of their own (case-insensitive); they cannot name a trait bare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    And,
    Or,
    Not,
    In,
    Between,
    Is,
    Null,
    Like,
    True,
    False,
    Case,
    When,
    Then,
    Else,
    End,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        const WORDS: [(&str, Keyword); 15] = [
            ("and", Keyword::And),
            ("or", Keyword::Or),
            ("not", Keyword::Not),
            ("in", Keyword::In),
            ("between", Keyword::Between),
            ("is", Keyword::Is),
            ("null", Keyword::Null),
            ("like", Keyword::Like),
            ("true", Keyword::True),
            ("false", Keyword::False),
            ("case", Keyword::Case),
            ("when", Keyword::When),
            ("then", Keyword::Then),
            ("else", Keyword::Else),
            ("end", Keyword::End),
        ];
        WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)).map(|(_, k)| *k)
    }
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Number(f64),
    Duration { amount: u64, unit: DurationUnit },
    Str(String),
    Ident(String),
    Kw(Keyword),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Concat,
    Eof,
}

/// A token and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Splits `src` into tokens ending with [`Tok::Eof`], or returns the first lexical error.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, RuleError> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut tokens = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let done = token.tok == Tok::Eof;
        tokens.push(token);
        if done {
            return Ok(tokens);
        }
    }
}

/// A token of a program trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerToken {
    /// An ASCII name, dots included: `account.renewal_date`.
    Ident(String),
    /// A single-quoted string, `''` read as one quote.
    Str(String),
    /// A number and the ASCII letters and digits glued to it, as written: `90d`, or `90x`
    /// for the checker to refuse with the text in hand.
    Duration(String),
    /// One of `( ) , : + -`.
    Punct(char),
    /// Any other character, a non-ASCII letter included; a string never closed is a `'`
    /// spanning to the end.
    Bad(char),
}

/// Splits a program trigger into tokens with their byte spans. Spaces and strings read as
/// in a rule; names are ASCII and may hold dots, a number keeps its letters unread, `:`
/// is a token, and a character a trigger has no use for is a [`TriggerToken::Bad`]
/// rather than an error.
pub fn lex_trigger(src: &str) -> Vec<(TriggerToken, Span)> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_trigger_token() {
        tokens.push(token);
    }
    tokens
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

const DURATION_HELP: &str =
    "a duration is a whole number followed by d (days), w (weeks), h (hours) or m (minutes), e.g. `14d`";

impl<'s> Lexer<'s> {
    fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    /// The character `n` characters ahead.
    fn peek_at(&self, n: usize) -> Option<char> {
        self.src.get(self.pos..).and_then(|rest| rest.chars().nth(n))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat_while(&mut self, keep: impl Fn(char) -> bool) {
        while let Some(c) = self.peek() {
            if !keep(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }

    fn text(&self, start: usize) -> &'s str {
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn span(&self, start: usize) -> Span {
        Span { start, end: self.pos }
    }

    fn next_token(&mut self) -> Result<Token, RuleError> {
        self.eat_while(char::is_whitespace);
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Ok(Token { tok: Tok::Eof, span: self.span(start) });
        };
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '%' => Tok::Percent,
            '=' => {
                if self.peek() == Some('=') {
                    self.bump();
                    return Err(error(self.span(start), "`==` is not an operator", "use a single `=` to compare"));
                }
                Tok::Eq
            }
            '!' => {
                if self.peek() == Some('=') {
                    self.bump();
                    Tok::Ne
                } else {
                    return Err(error(self.span(start), "`!` is not an operator", "write `not` to negate a condition"));
                }
            }
            '<' => match self.peek() {
                Some('=') => {
                    self.bump();
                    Tok::Le
                }
                Some('>') => {
                    self.bump();
                    Tok::Ne
                }
                _ => Tok::Lt,
            },
            '>' => {
                if self.peek() == Some('=') {
                    self.bump();
                    Tok::Ge
                } else {
                    Tok::Gt
                }
            }
            '|' => {
                if self.peek() == Some('|') {
                    self.bump();
                    Tok::Concat
                } else {
                    return Err(error(self.span(start), "`|` is not an operator", "write `or` to join conditions"));
                }
            }
            '&' => {
                self.eat_while(|c| c == '&');
                return Err(error(self.span(start), "`&` is not an operator", "write `and` to join conditions"));
            }
            '\'' => return self.string(start),
            '"' => return Err(self.double_quoted(start)),
            c if c.is_ascii_digit() => return self.number(start),
            c if is_ident_start(c) => {
                self.eat_while(is_ident_char);
                let word = self.text(start);
                match Keyword::from_word(word) {
                    Some(k) => Tok::Kw(k),
                    None => Tok::Ident(word.to_string()),
                }
            }
            other => {
                return Err(RuleError {
                    span: self.span(start),
                    message: format!("unexpected character `{other}`"),
                    help: None,
                });
            }
        };
        Ok(Token { tok, span: self.span(start) })
    }

    fn next_trigger_token(&mut self) -> Option<(TriggerToken, Span)> {
        self.eat_while(char::is_whitespace);
        let start = self.pos;
        let token = match self.bump()? {
            '\'' => self.quoted().map_or(TriggerToken::Bad('\''), TriggerToken::Str),
            c if c.is_ascii_alphabetic() || c == '_' => {
                self.eat_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
                TriggerToken::Ident(self.text(start).to_string())
            }
            c if c.is_ascii_digit() => {
                self.eat_while(|c| c.is_ascii_alphanumeric());
                TriggerToken::Duration(self.text(start).to_string())
            }
            c @ ('(' | ')' | ',' | ':' | '+' | '-') => TriggerToken::Punct(c),
            other => TriggerToken::Bad(other),
        };
        Some((token, self.span(start)))
    }

    /// A single-quoted string; `''` inside it is one quote.
    fn string(&mut self, start: usize) -> Result<Token, RuleError> {
        match self.quoted() {
            Some(text) => Ok(Token { tok: Tok::Str(text), span: self.span(start) }),
            None => Err(error(
                self.span(start),
                "this string is never closed",
                "end it with a single quote `'` (write `''` for a quote inside the text)",
            )),
        }
    }

    /// The text of a string whose opening quote has been read, up to and past its closing
    /// quote; `None`, at the end of the source, if it is never closed.
    fn quoted(&mut self) -> Option<String> {
        let mut text = String::new();
        loop {
            match self.bump()? {
                '\'' if self.peek() == Some('\'') => {
                    self.bump();
                    text.push('\'');
                }
                '\'' => return Some(text),
                c => text.push(c),
            }
        }
    }

    fn double_quoted(&mut self, start: usize) -> RuleError {
        self.eat_while(|c| c != '"');
        if self.bump().is_none() {
            return error(self.span(start), "text goes in single quotes, not double quotes", "write `'...'`");
        }
        let inner = self.src.get(start + 1..self.pos - 1).unwrap_or("");
        error(
            self.span(start),
            "text goes in single quotes, not double quotes",
            &format!("write `'{}'`", inner.replace('\'', "''")),
        )
    }

    /// A number, or a duration when a unit letter follows immediately.
    fn number(&mut self, start: usize) -> Result<Token, RuleError> {
        self.eat_while(|c| c.is_ascii_digit());
        let mut whole = true;
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            whole = false;
            self.bump();
            self.eat_while(|c| c.is_ascii_digit());
        }
        let digits_end = self.pos;
        let digits = self.text(start);
        if self.peek().is_some_and(is_ident_start) {
            let unit_start = self.pos;
            self.eat_while(is_ident_char);
            let suffix = self.src.get(unit_start..self.pos).unwrap_or("");
            let written = self.text(start);
            let exponent =
                suffix.strip_prefix(['e', 'E']).is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
            if exponent {
                return Err(error(
                    self.span(start),
                    &format!("`{written}`: numbers cannot be written with an exponent"),
                    "write the number out in full, e.g. `1000000` instead of `1e6`",
                ));
            }
            let Some(unit) = DurationUnit::from_suffix(suffix) else {
                return Err(RuleError {
                    span: self.span(start),
                    message: format!("unknown duration unit `{suffix}` in `{written}`"),
                    help: Some(DURATION_HELP.to_string()),
                });
            };
            if !whole {
                return Err(error(
                    self.span(start),
                    "a duration must be a whole number",
                    "use a smaller unit for a fraction, e.g. `36h` instead of `1.5d`",
                ));
            }
            let amount = digits
                .parse::<u64>()
                .ok()
                .filter(|n| n.checked_mul(unit.seconds()).is_some_and(|s| s <= i64::MAX as u64));
            let Some(amount) = amount else {
                return Err(error(
                    self.span(start),
                    "this duration is too long",
                    "durations are at most 292 billion years",
                ));
            };
            return Ok(Token { tok: Tok::Duration { amount, unit }, span: self.span(start) });
        }
        let span = Span { start, end: digits_end };
        match digits.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Token { tok: Tok::Number(n), span }),
            _ => Err(RuleError { span, message: "this number is too large".to_string(), help: None }),
        }
    }
}

fn error(span: Span, message: &str, help: &str) -> RuleError {
    RuleError { span, message: message.to_string(), help: Some(help.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).map(|ts| ts.into_iter().map(|t| t.tok).collect()).unwrap_or_default()
    }

    #[test]
    fn durations_are_a_number_glued_to_a_unit() {
        assert_eq!(
            toks("14d 12W 6h 30m"),
            vec![
                Tok::Duration { amount: 14, unit: DurationUnit::Days },
                Tok::Duration { amount: 12, unit: DurationUnit::Weeks },
                Tok::Duration { amount: 6, unit: DurationUnit::Hours },
                Tok::Duration { amount: 30, unit: DurationUnit::Minutes },
                Tok::Eof
            ]
        );
    }

    #[test]
    fn a_space_separates_a_number_from_a_name() {
        assert_eq!(toks("14 d"), vec![Tok::Number(14.0), Tok::Ident("d".into()), Tok::Eof]);
    }

    #[test]
    fn keywords_are_case_insensitive_and_names_keep_their_case() {
        assert_eq!(
            toks("NOT Plan In"),
            vec![Tok::Kw(Keyword::Not), Tok::Ident("Plan".into()), Tok::Kw(Keyword::In), Tok::Eof]
        );
    }

    #[test]
    fn doubled_quote_is_a_quote() {
        assert_eq!(toks("'it''s'"), vec![Tok::Str("it's".into()), Tok::Eof]);
        assert_eq!(toks("''"), vec![Tok::Str(String::new()), Tok::Eof]);
    }

    #[test]
    fn operators() {
        assert_eq!(
            toks("<> != <= >= < > = || 0.6"),
            vec![
                Tok::Ne,
                Tok::Ne,
                Tok::Le,
                Tok::Ge,
                Tok::Lt,
                Tok::Gt,
                Tok::Eq,
                Tok::Concat,
                Tok::Number(0.6),
                Tok::Eof
            ]
        );
    }

    fn trigger(src: &str) -> Vec<(TriggerToken, (usize, usize))> {
        lex_trigger(src).into_iter().map(|(t, span)| (t, (span.start, span.end))).collect()
    }

    #[test]
    fn a_trigger_call_with_named_arguments() {
        use TriggerToken::*;
        assert_eq!(
            trigger("health_band_changed(to: 'it''s')"),
            vec![
                (Ident("health_band_changed".into()), (0, 19)),
                (Punct('('), (19, 20)),
                (Ident("to".into()), (20, 22)),
                (Punct(':'), (22, 23)),
                (Str("it's".into()), (24, 31)),
                (Punct(')'), (31, 32)),
            ]
        );
    }

    #[test]
    fn a_date_trigger_joins_a_dotted_name_and_keeps_a_duration_as_written() {
        use TriggerToken::*;
        assert_eq!(
            trigger("account.renewal_date - 90x"),
            vec![
                (Ident("account.renewal_date".into()), (0, 20)),
                (Punct('-'), (21, 22)),
                (Duration("90x".into()), (23, 26))
            ]
        );
        assert_eq!(
            trigger("1.5d"),
            vec![(Duration("1".into()), (0, 1)), (Bad('.'), (1, 2)), (Duration("5d".into()), (2, 4))]
        );
    }

    #[test]
    fn a_trigger_marks_what_it_cannot_read_and_goes_on() {
        use TriggerToken::*;
        assert_eq!(trigger("é = 'ü"), vec![(Bad('é'), (0, 2)), (Bad('='), (3, 4)), (Bad('\''), (5, 8))]);
        assert_eq!(trigger("  "), vec![]);
    }

    #[test]
    fn spans_are_byte_ranges() {
        let tokens = lex("é = 'ü'").unwrap_or_default();
        let spans: Vec<_> = tokens.iter().map(|t| (t.span.start, t.span.end)).collect();
        assert_eq!(spans, vec![(0, 2), (3, 4), (5, 9), (9, 9)]);
    }
}
