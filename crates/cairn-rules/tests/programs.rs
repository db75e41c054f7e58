//! Rules inside a program: engagement with earlier send steps (`opened('welcome')`,
//! `clicked(previous)`) and the program's goal (`goal()`). Only a program's rules may use
//! them, and only about steps they can see; what a CS Ops person reads when they get it
//! wrong is checked to the letter and the span.

mod common;

use std::ops::Range;

use cairn_rules::{AggregateTable, Engagement, Reference, Schema, Subject, Type, Value, compile};
use common::{World, program_schema, schema};

/// (message, help, span) of each error, or nothing when the rule compiles.
fn errors_in(source: &str, schema: &Schema) -> Vec<(String, Option<String>, Range<usize>)> {
    let mut table = AggregateTable::new();
    match compile(source, schema, Some(Type::Bool), &mut table) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| (e.message, e.help, e.span.start..e.span.end)).collect(),
    }
}

fn one(message: &str, help: &str, span: Range<usize>) -> Vec<(String, Option<String>, Range<usize>)> {
    vec![(message.to_string(), Some(help.to_string()), span)]
}

#[test]
fn engagement_functions_are_errors_outside_a_program() {
    for (source, name) in [
        ("opened('welcome')", "opened"),
        ("clicked('welcome')", "clicked"),
        ("answered('welcome')", "answered"),
        ("delivered('welcome')", "delivered"),
    ] {
        assert_eq!(
            errors_in(source, &schema(Subject::Contact)),
            one(
                &format!("`{name}` is only available in a program's rules"),
                "it asks about a step of the program a contact is enrolled in: use it in a program's `if`, `wait` (`until`), `goal` or `exit` rule",
                0..name.len(),
            ),
        );
    }
}

#[test]
fn goal_is_an_error_outside_a_program() {
    assert_eq!(
        errors_in("arr > 1 and not goal()", &schema(Subject::Account)),
        one(
            "`goal` is only available in a program's rules",
            "it asks about the goal of the program a contact is enrolled in: use it in a program's `if`, `wait` (`until`), `goal` or `exit` rule",
            16..20,
        ),
    );
}

#[test]
fn an_unknown_step_suggests_the_closest_one() {
    assert_eq!(
        errors_in("opened('welcom')", &program_schema()),
        one("unknown step `welcom`", "did you mean `welcome`?", 7..15)
    );
}

#[test]
fn an_unknown_step_far_from_every_name_lists_the_send_steps() {
    assert_eq!(
        errors_in("clicked('zzzzzzzz')", &program_schema()),
        one("unknown step `zzzzzzzz`", "the send steps it may name are `welcome` and `reminder`", 8..18)
    );
}

#[test]
fn a_step_that_is_not_a_send_says_what_it_is() {
    assert_eq!(
        errors_in("opened('pause')", &program_schema()),
        one(
            "step `pause` cannot be used here: it is a `wait` step, not a `send`",
            "`opened` asks about a `send` step that runs before this rule",
            7..14
        )
    );
}

#[test]
fn a_later_step_cannot_be_asked_about() {
    assert_eq!(
        errors_in("not clicked('later')", &program_schema()),
        one(
            "step `later` cannot be used here: it comes after this rule",
            "`clicked` asks about a `send` step that runs before this rule",
            12..19
        )
    );
}

#[test]
fn the_step_must_be_quoted_or_previous() {
    assert_eq!(
        errors_in("opened(welcome)", &program_schema()),
        one(
            "the step in `opened(...)` must be a step id in quotes, or `previous`",
            "write e.g. `opened('welcome')` or `opened(previous)`",
            7..14
        )
    );
}

#[test]
fn previous_needs_an_earlier_send_step() {
    let mut schema = program_schema();
    if let Some(p) = schema.program.as_mut() {
        p.previous = None;
    }
    assert_eq!(
        errors_in("opened(previous)", &schema),
        one(
            "no send step comes before this rule, so `previous` names nothing here",
            "`previous` is the latest `send` step before an `if` or a `wait`; elsewhere name the step, e.g. `opened('welcome')`",
            7..15
        )
    );
}

#[test]
fn goal_cannot_be_used_in_the_goal_itself() {
    let mut schema = program_schema();
    if let Some(p) = schema.program.as_mut() {
        p.goal = false;
    }
    assert_eq!(
        errors_in("goal() or opened('welcome')", &schema),
        one(
            "`goal()` cannot be used in the goal's own rule",
            "the goal rule says when the goal is met; write that condition itself",
            0..4
        )
    );
}

#[test]
fn engagement_functions_take_one_step() {
    assert_eq!(
        errors_in("opened()", &program_schema()),
        one("`opened` takes 1 argument, found 0", "usage: `opened('step_id')`", 0..8)
    );
    assert_eq!(
        errors_in("goal(1)", &program_schema()),
        one("`goal` takes no arguments, found 1", "usage: `goal()`", 0..7)
    );
}

#[test]
fn a_misspelt_engagement_function_is_suggested() {
    assert_eq!(
        errors_in("opend('welcome')", &program_schema()),
        one("unknown function `opend`", "did you mean `opened`?", 0..5)
    );
}

#[test]
fn engagement_and_goal_are_conditions() {
    assert_eq!(
        errors_in("opened('welcome') + 1 > 0", &program_schema()),
        vec![("cannot apply `+` to a boolean and a number".to_string(), None, 0..21)]
    );
}

#[test]
fn previous_resolves_to_the_latest_send_step_and_is_listed_as_a_reference() {
    let mut table = AggregateTable::new();
    let rule = compile(
        "opened(previous) and not goal() or clicked('welcome')",
        &program_schema(),
        Some(Type::Bool),
        &mut table,
    )
    .expect("compiles");
    assert_eq!(
        rule.references(),
        [
            Reference::Engagement { step: "reminder".into(), kind: Engagement::Opened },
            Reference::Engagement { step: "welcome".into(), kind: Engagement::Clicked },
            Reference::Goal,
        ]
    );
}

#[test]
fn engagement_is_evaluated_through_the_env() {
    let mut world = World::new();
    let mut table = AggregateTable::new();
    let rule =
        compile("opened(previous) and not goal()", &program_schema(), Some(Type::Bool), &mut table).expect("compiles");
    assert_eq!(rule.eval(&world), Value::Bool(false));
    world.engaged.insert(("reminder".to_string(), Engagement::Opened));
    assert_eq!(rule.eval(&world), Value::Bool(true));
    world.goal_met = true;
    assert_eq!(rule.eval(&world), Value::Bool(false));
    let answered =
        compile("answered('welcome') or delivered('welcome')", &program_schema(), Some(Type::Bool), &mut table)
            .expect("compiles");
    assert_eq!(answered.eval(&world), Value::Bool(false));
    world.engaged.insert(("welcome".to_string(), Engagement::Delivered));
    assert_eq!(answered.eval(&world), Value::Bool(true));
}

#[test]
fn an_env_that_knows_nothing_of_programs_answers_false() {
    struct Plain(World);
    impl cairn_rules::Env for Plain {
        fn now(&self) -> jiff::Timestamp {
            self.0.now
        }
        fn time_zone(&self) -> &jiff::tz::TimeZone {
            &self.0.tz
        }
        fn account_trait(&self, _: &str) -> Value {
            Value::Null
        }
        fn contact_trait(&self, _: &str) -> Value {
            Value::Null
        }
        fn aggregate(&self, _: cairn_rules::AggId) -> Value {
            Value::Null
        }
        fn segment(&self, _: &str) -> bool {
            false
        }
        fn milestone_achieved(&self, _: &str) -> bool {
            false
        }
        fn stage(&self) -> Option<String> {
            None
        }
        fn health(&self, _: Option<&str>) -> Option<f64> {
            None
        }
        fn anchor(&self) -> Option<jiff::Timestamp> {
            None
        }
    }
    let mut world = World::new();
    world.goal_met = true;
    world.engaged.insert(("welcome".to_string(), Engagement::Opened));
    let mut table = AggregateTable::new();
    let rule =
        compile("opened('welcome') or goal()", &program_schema(), Some(Type::Bool), &mut table).expect("compiles");
    assert_eq!(rule.eval(&world), Value::Bool(true));
    assert_eq!(rule.eval(&Plain(world)), Value::Bool(false));
}

#[test]
fn program_rules_still_read_traits_and_definitions() {
    assert!(errors_in("role = 'admin' and segment('smb') and opened('welcome')", &program_schema()).is_empty());
}
