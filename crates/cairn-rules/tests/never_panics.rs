//! No input makes the compiler or the evaluator panic.

mod common;

use cairn_rules::{Subject, Type};
use common::World;
use proptest::prelude::*;

/// Fragments that make parseable-looking rules more likely than random text does.
fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "arr",
        "plan",
        "seats",
        "renewal_date",
        "last_login_at",
        "domains",
        "role",
        "account.",
        "contact.",
        "(",
        ")",
        "[",
        "]",
        ",",
        "'",
        "'team'",
        "''",
        "1",
        "0",
        "0.5",
        "14d",
        "6h",
        "0d",
        "12w",
        "5x",
        "and",
        "or",
        "not",
        "in",
        "between",
        "is",
        "null",
        "like",
        "case",
        "when",
        "then",
        "else",
        "end",
        "=",
        "!=",
        "<",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "||",
        "count(",
        "sum(",
        "distinct_events(",
        "days_until(",
        "age()",
        "now()",
        "since_anchor",
        "segment('smb')",
        "health(",
        "coalesce(",
        "date(",
        "'2026-01-01'",
        "true",
        " ",
    ])
}

fn compile_and_eval(source: &str) {
    let mut world = World::new().account("arr", cairn_rules::Value::Number(1.0));
    for subject in [Subject::Account, Subject::Contact] {
        for expected in [None, Some(Type::Bool), Some(Type::Number)] {
            let schema = common::schema(subject);
            if let Ok(rule) = cairn_rules::compile(source, &schema, expected, &mut world.table) {
                let _ = rule.eval(&world);
                let _ = rule.eval_bool(&world);
            }
        }
    }
}

/// Prefixes and wrappers that nest: a parser recursing on them without a bound would
/// overflow the stack.
fn nesting() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop::sample::select(vec![
        ("(", ")"),
        ("not ", ""),
        ("-", ""),
        ("[", "]"),
        ("coalesce(", ", 1)"),
        ("case when ", " then 1 else 0 end"),
        ("1 + ", ""),
        ("", " or true"),
        ("count('x', 7d) > ", ""),
    ])
}

proptest! {
    // Ten thousand cases each, in CI like every test: a few seconds.
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        compile_and_eval(&source);
    }

    #[test]
    fn rule_like_text_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
        compile_and_eval(&parts.join(" "));
        compile_and_eval(&parts.concat());
    }

    #[test]
    fn a_trigger_lexes_into_ordered_spans_with_only_spaces_between(source in any::<String>()) {
        let mut end = 0;
        for (_, span) in cairn_rules::lex_trigger(&source) {
            prop_assert!(source.get(end..span.start).is_some_and(|gap| gap.trim().is_empty()));
            prop_assert!(span.start < span.end && source.get(span.start..span.end).is_some());
            end = span.end;
        }
        prop_assert!(source.get(end..).is_some_and(|rest| rest.trim().is_empty()));
    }

    #[test]
    fn deeply_nested_rules_are_refused_not_a_stack_overflow(
        (open, close) in nesting(),
        depth in prop_oneof![1usize..80, 80usize..400],
        inner in fragment(),
    ) {
        let source = format!("{}{inner}{}", open.repeat(depth), close.repeat(depth));
        let mut world = World::new();
        let schema = common::schema(Subject::Account);
        if let Ok(rule) = cairn_rules::compile(&source, &schema, None, &mut world.table) {
            let _ = rule.eval(&world);
        }
    }
}
