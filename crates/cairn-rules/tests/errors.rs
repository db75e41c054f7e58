//! What a CS Ops person sees when a definition is wrong: for each malformed rule, the
//! exact message, help and span `cairn check` reports.

mod common;

use std::ops::Range;

use cairn_rules::{AggregateTable, Subject, Type, compile};

const A: Subject = Subject::Account;
const C: Subject = Subject::Contact;
const BOOL: Option<Type> = Some(Type::Bool);
const NUM: Option<Type> = Some(Type::Number);
const ANY: Option<Type> = None;

struct Case {
    source: &'static str,
    subject: Subject,
    expected: Option<Type>,
    message: &'static str,
    help: Option<&'static str>,
    span: Range<usize>,
}

fn case(
    source: &'static str,
    subject: Subject,
    expected: Option<Type>,
    message: &'static str,
    help: Option<&'static str>,
    span: Range<usize>,
) -> Case {
    Case { source, subject, expected, message, help, span }
}

/// Compiles `source` and describes its errors as (message, help, span) for comparison.
fn errors(source: &str, subject: Subject, expected: Option<Type>) -> Vec<(String, Option<String>, Range<usize>)> {
    let mut table = AggregateTable::new();
    match compile(source, &common::schema(subject), expected, &mut table) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| (e.message, e.help, e.span.start..e.span.end)).collect(),
    }
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        case("cnt('login') > 1", A, BOOL, "unknown function `cnt`", Some("did you mean `count`?"), 0..3),
        case("ar < 20000", A, BOOL, "unknown trait `ar`", Some("did you mean `arr`?"), 0..2),
        case("Plan = 'team'", A, BOOL, "unknown trait `Plan`", Some("did you mean `plan`?"), 0..4),
        case("zzzzzz = 1", A, BOOL, "unknown trait `zzzzzz`", Some("the account traits are `arr`, `domains`, `is_paying`, `last_login_at`, `name`, `plan`, `renewal_date`, `seats`, … (10 in all); declare custom traits under traits.account in workspace.yaml"), 0..6),
        case("rol = 'admin'", C, BOOL, "unknown trait `rol`", Some("did you mean `role`?"), 0..3),
        case("segment('enterprize')", A, BOOL, "unknown segment `enterprize`", Some("did you mean `enterprise`?"), 8..20),
        case("milestone('invite_team')", A, BOOL, "unknown milestone `invite_team`", Some("did you mean `invited_team`?"), 10..23),
        case("health('adopton') > 50", A, BOOL, "unknown health pillar `adopton`", Some("did you mean `adoption`?"), 7..16),
        case("health('zzzzzzzz') > 50", A, BOOL, "unknown health pillar `zzzzzzzz`", Some("the health pillars are `adoption` and `support`"), 7..17),
        case("stage() = 'onbording'", A, BOOL, "unknown stage `onbording`", Some("did you mean `onboarding`?"), 10..21),
        case("segment(plan)", A, BOOL, "the id in `segment(...)` must be written in quotes", Some("write e.g. `segment('some_id')`"), 8..12),
        case("segment('power_admins')", A, BOOL, "`power_admins` is a segment of contacts; a rule of accounts can only use segments of accounts", None, 8..22),
        case("count('a', 30d, 1) > 0", A, BOOL, "`count` takes 0 to 2 arguments, found 3", Some("usage: `count(event[, window])`"), 0..18),
        case("lower() = 'x'", A, BOOL, "`lower` takes 1 argument, found 0", Some("usage: `lower(text)`"), 0..7),
        case("now(1) > now()", A, BOOL, "`now` takes no arguments, found 1", Some("usage: `now()`"), 0..6),
        case("round(arr, 1, 2) > 0", A, BOOL, "`round` takes 1 or 2 arguments, found 3", Some("usage: `round(x[, digits])`"), 0..16),
        case("concat() = ''", A, BOOL, "`concat` takes at least 1 argument, found 0", Some("usage: `concat(value, ...)`"), 0..8),
        case("count('a', seats) > 0", A, BOOL, "the window of `count` must be written literally", Some("write a number of days or weeks (`30d`, `12w`), `since_anchor` or `all_time`"), 11..16),
        case("count('a', 14d + 1d) > 0", A, BOOL, "the window of `count` must be written literally", Some("write a number of days or weeks (`30d`, `12w`), `since_anchor` or `all_time`"), 11..19),
        case("count(plan) > 0", A, BOOL, "the event of `count` must be written literally", Some("write an event name in quotes (`'login'`), a list of names (`['login', 'report_created']`) or `'*'` for any event"), 6..10),
        case("count('a', 6h) > 0", A, BOOL, "the window of `count` must be whole days or weeks, found `6h`", Some("windows count whole days in the workspace time zone; use e.g. `1d`"), 11..13),
        case("count('a', 0d) > 0", A, BOOL, "a window must be at least one day", Some("use e.g. `1d`"), 11..13),
        case("count('a', since_ancor) > 0", A, BOOL, "unknown window `since_ancor`", Some("did you mean `since_anchor`?"), 11..22),
        case("count('a', 5x) > 0", A, BOOL, "unknown duration unit `x` in `5x`", Some("a duration is a whole number followed by d (days), w (weeks), h (hours) or m (minutes), e.g. `14d`"), 11..13),
        case("count('a', 1.5d) > 0", A, BOOL, "a duration must be a whole number", Some("use a smaller unit for a fraction, e.g. `36h` instead of `1.5d`"), 11..15),
        case("plan = 'team", A, BOOL, "this string is never closed", Some("end it with a single quote `'` (write `''` for a quote inside the text)"), 7..12),
        case("plan = \"team\"", A, BOOL, "text goes in single quotes, not double quotes", Some("write `'team'`"), 7..13),
        case("(arr > 1 and seats > 2", A, BOOL, "this `(` is never closed", Some("add a `)` to close it"), 0..1),
        case("arr > 1)", A, BOOL, "this `)` has no matching `(`", Some("remove it"), 7..8),
        case("arr > 1 seats", A, BOOL, "unexpected `seats` after the end of the expression", Some("join conditions with `and` or `or`"), 8..13),
        case("", A, BOOL, "this rule is empty", Some("write a condition such as `plan = 'team'`"), 0..0),
        case("   ", A, BOOL, "this rule is empty", Some("write a condition such as `plan = 'team'`"), 3..3),
        case("arr > 1 and", A, BOOL, "`and` has nothing on its right", Some("complete the expression after `and`, or remove it"), 8..11),
        case("arr > 1 and or seats > 1", A, BOOL, "expected a value, found `or`", None, 12..14),
        case("arr > '20000'", A, BOOL, "cannot compare a number with a string", Some("remove the quotes to compare as a number"), 0..13),
        case("plan = 1", A, BOOL, "cannot compare a string with a number", None, 0..8),
        case("arr", A, BOOL, "expected a condition (true or false), found a number", Some("compare it: `... > 0`"), 0..3),
        case("plan", A, BOOL, "expected a condition (true or false), found a string", Some("compare it: `... = 'value'`"), 0..4),
        case("arr > 1", A, NUM, "expected a number, found a condition (true or false)", Some("turn it into a number: `case when ... then 1 else 0 end`"), 0..7),
        case("contact.role = 'admin'", A, BOOL, "`contact.role` cannot be used here: contact traits are only available in rules of contacts", Some("this rule is evaluated for an account, which has no single contact"), 0..12),
        case("role = 'admin'", A, BOOL, "`role` is a contact trait: contact traits are only available in rules of contacts", Some("this rule is evaluated for an account, which has no single contact"), 0..4),
        case("distinct_users('a') > 1", C, BOOL, "`distinct_users` counts the people of an account, so it is only available in rules of accounts", Some("in a rule of contacts, count the contact's own events with `count(...)`"), 0..19),
        case("active_users(7d) > 1", C, BOOL, "`active_users` counts the people of an account, so it is only available in rules of accounts", Some("in a rule of contacts, count the contact's own events with `count(...)`"), 0..16),
        case("age() > 30", A, BOOL, "cannot compare a duration with a number", Some("write `30d` for a duration of 30 days"), 0..10),
        case("days_since(start_date) > 30d", A, BOOL, "cannot compare a number with a duration", Some("write the plain number `30`"), 0..28),
        case("last_seen('login') > 14d", A, BOOL, "cannot compare a timestamp with a duration", Some("count days with `days_since(...)` or `days_until(...)`, e.g. `days_since(...) > 30`"), 0..24),
        case("renewal_date < '2026-01-01'", A, BOOL, "cannot compare a date with a string", Some("write `date('2026-01-01')` to compare with a date"), 0..27),
        case("plan + 'x' = 'y'", A, BOOL, "cannot apply `+` to a string and a string", Some("join strings with `||`"), 0..10),
        case("renewal_date + 30 > now()", A, BOOL, "cannot apply `+` to a date and a number", Some("write a duration: `30d` for 30 days"), 0..17),
        case("arr = null", A, BOOL, "a comparison with `null` is never true (`=`)", Some("write `arr is null`"), 4..5),
        case("arr != null", A, BOOL, "a comparison with `null` is never true (`!=`)", Some("write `arr is not null`"), 4..6),
        case("arr in ('1', '2')", A, BOOL, "cannot look for a number in a list of strings", Some("remove the quotes to compare as numbers"), 0..17),
        case("plan in (1, 2)", A, BOOL, "cannot look for a string in a list of numbers", Some("put the values in quotes: `('a', 'b')`"), 0..14),
        case("plan in plan", A, BOOL, "the right side of `in` must be a list, found a string", Some("write the values in parentheses: `plan in ('starter', 'team')`"), 8..12),
        case("plan in ()", A, BOOL, "the list after `in` is empty", Some("put at least one value between the parentheses: `in ('a', 'b')`"), 8..10),
        case("[1, 'a'] = [1]", A, BOOL, "a list holds values of one type, but this is a string among numbers", None, 4..7),
        case("is_paying < true", A, BOOL, "conditions (true or false) cannot be ordered with `<`", Some("compare them with `=` or `!=`"), 0..16),
        case("arr between 1 and 'x'", A, BOOL, "cannot compare a number with a string", None, 0..21),
        case("arr between 1", A, BOOL, "expected `and` between the bounds of `between`, found the end of the rule", Some("write `x between 1 and 10`"), 13..13),
        case("plan like 5", A, BOOL, "the pattern of `like` must be a string, found a number", None, 10..11),
        case("case when arr then 1 else 0 end > 0", A, BOOL, "expected a condition (true or false), found a number", Some("compare it: `... > 0`"), 10..13),
        case("case when arr > 1 then 1 else 'x' end = 1", A, BOOL, "the results of `case` must have one type, but this is a string and an earlier one a number", None, 30..33),
        case("case when arr > 1 then 1", A, BOOL, "this `case` has no `end`", Some("close it with `end`"), 0..4),
        case("case arr when 1 then 2 end = 2", A, BOOL, "expected `when` after `case`, found `arr`", Some("write `case when condition then value [else value] end`"), 5..8),
        case("lower(arr) = 'x'", A, BOOL, "argument `text` of `lower` must be a string, found a number", None, 6..9),
        case("days_since(arr) > 1", A, BOOL, "argument `x` of `days_since` must be a date or a timestamp, found a number", None, 11..14),
        case("coalesce(arr, plan) = 1", A, BOOL, "argument 2 of `coalesce` is a string, but an earlier one is a number", Some("all arguments of `coalesce` must have the same type"), 14..18),
        case("date('2026-13-01') < renewal_date", A, BOOL, "`2026-13-01` is not a date", Some("write dates as YYYY-MM-DD, e.g. `date('2026-01-31')`"), 5..17),
        case("not arr", A, BOOL, "expected a condition (true or false), found a number", Some("compare it: `... > 0`"), 4..7),
        case("-plan = 'x'", A, BOOL, "cannot negate a string", Some("only numbers and durations have a minus sign"), 0..5),
        case("plan || arr = 'x'", A, BOOL, "cannot join a string and a number with `||`", Some("`||` joins strings; `concat(...)` turns any value into text"), 0..11),
        case("arr == 1", A, BOOL, "`==` is not an operator", Some("use a single `=` to compare"), 4..6),
        case("arr > 1 && seats > 1", A, BOOL, "`&` is not an operator", Some("write `and` to join conditions"), 8..10),
        case("1 < arr < 3", A, BOOL, "comparisons cannot be chained", Some("combine them with `and`, e.g. `a < b and b < c`"), 8..9),
        case("arr is 1", A, BOOL, "expected `null` after `is`, found `1`", Some("write `x is null` or `x is not null`; compare values with `=`"), 7..8),
        case("arr not 1", A, BOOL, "expected `in`, `between` or `like` after `not`, found `1`", Some("to negate a condition, put `not` before it: `not a = b`"), 8..9),
        case("acount.arr > 1", A, BOOL, "unknown qualifier `acount`", Some("did you mean `account.arr`?"), 0..6),
        case("account.ar > 1", A, BOOL, "unknown account trait `ar`", Some("did you mean `account.arr`?"), 8..10),
        case("account. > 1", A, BOOL, "expected a trait name after `account.`, found `>`", Some("write e.g. `account.plan`"), 9..10),
        case("count('a' 30d) > 1", A, BOOL, "expected `,` or `)` after an argument of `count`, found `30d`", None, 10..13),
        case("count('a', 30d > 1", A, BOOL, "this `(` is never closed", Some("add a `)` to close it"), 5..6),
        case("now > renewal_date", A, BOOL, "`now` is a function", Some("call it with parentheses: `now()`"), 0..3),
        case("since_anchor > 1", A, BOOL, "`since_anchor` is a window, not a value", Some("use it as the window of a behavioural function, e.g. `count('login', since_anchor)`"), 0..12),
        case("plan() = 'x'", A, BOOL, "unknown function `plan`", Some("`plan` is a trait: write it without parentheses"), 0..4),
        case("sum('invoice_paid', amount) > 1", A, BOOL, "the property of `sum` must be a name in quotes", Some("write e.g. `sum('invoice_paid', 'amount', 90d)`"), 20..26),
        case("count('') > 1", A, BOOL, "an event name cannot be empty", Some("write the event's name, or `'*'` for any event"), 6..8),
        case("distinct_events([plan, 'b']) > 1", A, BOOL, "event names in a list must be written in quotes", None, 17..21),
        case("null", A, ANY, "this rule is always null", Some("write a condition or a value to compute"), 0..4),
        case("arr @ 1", A, BOOL, "unexpected character `@`", None, 4..5),
        case("count('a', 99999999999w) > 1", A, BOOL, "this window is too long", Some("use `all_time` to look at the whole history"), 11..23),
        case("()", A, BOOL, "empty parentheses", Some("put an expression inside them"), 0..2),
        case("[]", A, BOOL, "a list needs at least one value", Some("write the values between the brackets: `['a', 'b']`"), 0..2),
        case("domains = domains", A, BOOL, "lists cannot be compared", Some("test whether a list holds a value with `in`: `'value' in ...`"), 0..17),
        case("contact.rol = 'x'", C, BOOL, "unknown contact trait `rol`", Some("did you mean `contact.role`?"), 8..11),
        case("is_paying = 'true'", A, BOOL, "cannot compare a boolean with a string", Some("remove the quotes to compare with a boolean"), 0..18),
        case("trial_length > 14", A, BOOL, "cannot compare a duration with a number", Some("write `14d` for a duration of 14 days"), 0..17),
        case("renewal_date - last_login_at > 1d", A, BOOL, "cannot apply `-` to a date and a timestamp", Some("convert the timestamp to a date with `date(...)`"), 0..28),
        case("last_seen('login') < 7", A, BOOL, "cannot compare a timestamp with a number", Some("count days with `days_since(...)` or `days_until(...)`, e.g. `days_since(...) > 30`"), 0..22),
        case("arr > 1e6", A, BOOL, "`1e6`: numbers cannot be written with an exponent", Some("write the number out in full, e.g. `1000000` instead of `1e6`"), 6..9),
    ]
}

#[test]
fn every_malformed_rule_reports_its_message_help_and_span() {
    let cases = cases();
    assert!(cases.len() >= 45, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let want = vec![(c.message.to_string(), c.help.map(str::to_string), c.span.clone())];
        let got = errors(c.source, c.subject, c.expected.clone());
        if got != want {
            failures.push(format!("`{}`:\n  want {want:?}\n  got  {got:?}", c.source));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn a_failed_rule_leaves_the_aggregate_table_untouched() {
    let mut table = AggregateTable::new();
    let result = compile("count('login', 7d) > 0 and nope", &common::schema(A), BOOL, &mut table);
    assert!(result.is_err());
    assert!(table.specs().is_empty());
}

#[test]
fn every_unknown_name_is_reported_not_just_the_first() {
    let got = errors("zzzz > 1 and plna = 'team' or cnt('x') > 1 or segment('smv')", A, BOOL);
    let messages: Vec<&str> = got.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(
        messages,
        vec!["unknown trait `zzzz`", "unknown trait `plna`", "unknown function `cnt`", "unknown segment `smv`"]
    );
    assert_eq!(got[1].1.as_deref(), Some("did you mean `plan`?"));
    assert_eq!(got[3].1.as_deref(), Some("did you mean `smb`?"));
}

#[test]
fn type_errors_in_both_branches_are_both_reported() {
    let got = errors("arr > '1' or plan = 2", A, BOOL);
    let spans: Vec<Range<usize>> = got.iter().map(|(_, _, s)| s.clone()).collect();
    assert_eq!(spans, vec![0..9, 13..21]);
}

#[test]
fn too_deep_nesting_is_an_error_not_a_crash() {
    for source in [
        format!("{}arr{} > 1", "(".repeat(65), ")".repeat(65)),
        format!("{}arr > 1", "not ".repeat(100)),
        format!("{}1{} > 0", "abs(".repeat(80), ")".repeat(80)),
        format!("arr{} > 0", " + 1".repeat(100)),
        "(".repeat(100_000),
    ] {
        let got = errors(&source, A, BOOL);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "this rule is nested too deeply (more than 64 levels)");
        assert_eq!(got[0].1.as_deref(), Some("simplify it, e.g. move a part into a segment and use `segment('id')`"));
    }
}

#[test]
fn measures_must_be_numbers() {
    let got = errors("plan", A, NUM);
    assert_eq!(got, vec![("expected a number, found a string".to_string(), None, 0..4)]);
    let got = errors("age()", A, NUM);
    assert_eq!(got[0].1.as_deref(), Some("divide it by a unit to count it, e.g. `... / 1d` for days"));
    assert!(errors("age() / 1d", A, NUM).is_empty());
    let _ = (C, ANY);
}
