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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        compile_and_eval(&source);
    }

    #[test]
    fn rule_like_text_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
        compile_and_eval(&parts.join(" "));
        compile_and_eval(&parts.concat());
    }
}
