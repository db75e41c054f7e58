//! Compiled rules evaluated against a fixed world: SQL's null logic, dates and durations
//! in the workspace time zone, and what a rule tells the engine it reads.

mod common;

use cairn_rules::{
    AggId, Aggregate, AggregateSpec, AggregateTable, EventFilter, Reference, Subject, Type, Value, Window, compile,
};
use common::{World, schema, ts};
use jiff::civil::date;

fn num(n: f64) -> Value {
    Value::Number(n)
}

fn text(s: &str) -> Value {
    Value::String(s.into())
}

fn named(events: &[&str]) -> EventFilter {
    EventFilter::Named(events.iter().map(|s| s.to_string()).collect())
}

#[test]
fn smb_segment_matches_small_accounts_on_small_plans() {
    let rule = "arr < 20000 and plan in ('starter', 'team')";
    assert_eq!(World::new().account("arr", num(12_000.0)).account("plan", text("team")).eval(rule), Value::Bool(true));
    assert_eq!(World::new().account("arr", num(50_000.0)).account("plan", text("team")).eval(rule), Value::Bool(false));
    assert_eq!(World::new().account("arr", num(12_000.0)).account("plan", text("pro")).eval(rule), Value::Bool(false));
}

#[test]
fn a_missing_trait_makes_comparisons_unknown_and_conditions_false() {
    let mut world = World::new().account("plan", text("team"));
    assert_eq!(world.eval("arr < 20000"), Value::Null);
    assert_eq!(world.eval("not (arr < 20000)"), Value::Null);
    assert_eq!(world.eval("arr is null"), Value::Bool(true));
    assert_eq!(world.eval("arr is not null"), Value::Bool(false));
    // Kleene logic: unknown or true is true, unknown and false is false.
    assert_eq!(world.eval("arr < 20000 or plan = 'team'"), Value::Bool(true));
    assert_eq!(world.eval("arr < 20000 and plan = 'pro'"), Value::Bool(false));
    assert_eq!(world.eval("arr < 20000 and plan = 'team'"), Value::Null);
    assert_eq!(world.eval("arr < 20000 or plan = 'pro'"), Value::Null);
    let rule = world.compile(Subject::Account, "not (arr < 20000)").expect("compiles");
    assert!(!rule.eval_bool(&world));
    assert_eq!(world.eval("arr between 1 and 10"), Value::Null);
    assert_eq!(world.eval("coalesce(arr, 0) < 20000"), Value::Bool(true));
}

#[test]
fn in_follows_sql_when_the_list_holds_null() {
    let mut world = World::new().account("plan", text("team"));
    assert_eq!(world.eval("plan in ('team', null)"), Value::Bool(true));
    assert_eq!(world.eval("plan in ('pro', null)"), Value::Null);
    assert_eq!(world.eval("plan not in ('pro', null)"), Value::Null);
    assert_eq!(world.eval("plan not in ('pro', 'enterprise')"), Value::Bool(true));
    assert_eq!(world.eval("name in ('x')"), Value::Null);
}

#[test]
fn list_traits_answer_in() {
    let domains = Value::List(vec![text("acme.com"), text("acme.io")].into());
    let mut world = World::new().account("domains", domains);
    assert_eq!(world.eval("'acme.io' in domains"), Value::Bool(true));
    assert_eq!(world.eval("'example.com' in domains"), Value::Bool(false));
}

#[test]
fn between_like_and_case() {
    let mut world = World::new().account("arr", num(15_000.0)).account("name", text("Acme GmbH"));
    assert_eq!(world.eval("arr between 10000 and 20000"), Value::Bool(true));
    assert_eq!(world.eval("arr not between 10000 and 20000"), Value::Bool(false));
    assert_eq!(world.eval("name like 'Acme%'"), Value::Bool(true));
    assert_eq!(world.eval("name like '%gmbh'"), Value::Bool(false));
    assert_eq!(world.eval("lower(name) like '%gmbh'"), Value::Bool(true));
    assert_eq!(world.eval("name not like 'A_me %'"), Value::Bool(false));
    let tier = "case when arr >= 100000 then 'enterprise' when arr >= 10000 then 'mid' else 'smb' end";
    assert_eq!(world.eval(tier), text("mid"));
    assert_eq!(world.eval("case when arr > 1000000000 then 1 end"), Value::Null);
}

#[test]
fn division_by_zero_is_null_not_a_crash() {
    let mut world =
        World::new().account("seats", num(0.0)).aggregate(Aggregate::ActiveUsers { window: Window::Days(7) }, num(3.0));
    assert_eq!(world.eval("active_users(7d) / seats"), Value::Null);
    assert_eq!(world.eval("active_users(7d) % seats"), Value::Null);
    assert_eq!(world.eval("active_users(7d) / seats >= 0.6"), Value::Null);
    let mut world = world.account("seats", num(4.0));
    assert_eq!(world.eval("active_users(7d) / seats"), num(0.75));
}

#[test]
fn arithmetic_precedence_in_evaluation() {
    let mut world = World::new();
    assert_eq!(world.eval("1 + 2 * 3"), num(7.0));
    assert_eq!(world.eval("10 - 4 - 3"), num(3.0));
    assert_eq!(world.eval("-2 * 3 + 10 % 4"), num(-4.0));
    assert_eq!(world.eval("'a' || 'b' || 'c'"), text("abc"));
}

#[test]
fn string_and_number_functions() {
    let mut world = World::new().account("name", text("  Acme  ")).account("arr", num(1234.5678));
    assert_eq!(world.eval("trim(name)"), text("Acme"));
    assert_eq!(world.eval("upper(trim(name))"), text("ACME"));
    assert_eq!(world.eval("length(trim(name))"), num(4.0));
    assert_eq!(world.eval("contains(name, 'cm')"), Value::Bool(true));
    assert_eq!(world.eval("starts_with(trim(name), 'Ac') and ends_with(trim(name), 'me')"), Value::Bool(true));
    assert_eq!(world.eval("concat(trim(name), ': ', arr, ' ', plan)"), text("Acme: 1234.5678 "));
    assert_eq!(world.eval("round(arr)"), num(1235.0));
    assert_eq!(world.eval("round(arr, 2)"), num(1234.57));
    assert_eq!(world.eval("floor(arr) + ceil(0.2) + abs(-1)"), num(1236.0));
    assert_eq!(world.eval("least(3, arr, null)"), num(3.0));
    assert_eq!(world.eval("greatest(3, arr)"), num(1234.5678));
    assert_eq!(world.eval("coalesce(plan, 'none')"), text("none"));
    assert_eq!(world.eval("lower(plan)"), Value::Null);
}

#[test]
fn days_are_counted_in_the_workspace_time_zone_across_summer_time() {
    // Now is Friday 27 March 2026, 23:30 in Berlin; clocks go forward on Sunday the 29th.
    let mut world = World::new()
        .account("renewal_date", Value::Date(date(2026, 3, 30)))
        // Monday 30 March, 00:30 in Berlin: only 48 hours from now, but three days away.
        .account("last_login_at", Value::Timestamp(ts("2026-03-29T22:30:00Z")))
        // Friday 27 March, 00:10 in Berlin (still the 26th in UTC).
        .contact("signed_up_at", Value::Timestamp(ts("2026-03-26T23:10:00Z")));
    assert_eq!(world.eval("days_until(renewal_date)"), num(3.0));
    assert_eq!(world.eval("days_until(last_login_at)"), num(3.0));
    assert_eq!(world.eval("last_login_at - now()"), Value::Duration(48 * 3600));
    assert_eq!(world.eval_for(Subject::Contact, "days_since(signed_up_at)"), num(0.0));
    assert_eq!(world.eval_for(Subject::Contact, "date(signed_up_at)"), Value::Date(date(2026, 3, 27)));
    assert_eq!(world.eval("days_since(date('2026-03-26'))"), num(1.0));
    assert_eq!(world.eval("days_until(renewal_date) <= 90"), Value::Bool(true));
}

#[test]
fn dates_compare_with_timestamps_from_the_start_of_their_day() {
    // 00:30 on 27 March in Berlin is 23:30 on the 26th in UTC.
    let mut world = World::new().account("last_login_at", Value::Timestamp(ts("2026-03-26T23:30:00Z")));
    assert_eq!(world.eval("last_login_at >= date('2026-03-27')"), Value::Bool(true));
    assert_eq!(world.eval("date('2026-03-27') <= last_login_at"), Value::Bool(true));
    assert_eq!(world.eval("last_login_at between date('2026-03-27') and now()"), Value::Bool(true));
    assert_eq!(world.eval("last_login_at < date('2026-03-27')"), Value::Bool(false));
}

#[test]
fn date_and_duration_arithmetic() {
    let mut world = World::new()
        .account("renewal_date", Value::Date(date(2026, 6, 30)))
        .account("start_date", Value::Date(date(2026, 3, 1)));
    assert_eq!(world.eval("renewal_date - 90d"), Value::Date(date(2026, 4, 1)));
    assert_eq!(world.eval("renewal_date + 2w"), Value::Date(date(2026, 7, 14)));
    // A date moves by whole days: the part day is dropped.
    assert_eq!(world.eval("renewal_date + 36h"), Value::Date(date(2026, 7, 1)));
    assert_eq!(world.eval("renewal_date - start_date"), Value::Duration(121 * 86_400));
    assert_eq!(world.eval("(renewal_date - start_date) / 1d"), num(121.0));
    assert_eq!(world.eval("now() - 1d"), Value::Timestamp(ts("2026-03-26T22:30:00Z")));
    assert_eq!(world.eval("2 * 7d = 2w"), Value::Bool(true));
    assert_eq!(world.eval("14d + 6h - 30m"), Value::Duration(14 * 86_400 + 6 * 3600 - 1800));
    assert_eq!(world.eval("-(1d) < 0d"), Value::Bool(true));
    assert_eq!(world.eval("7d / 2"), Value::Duration(302_400));
}

#[test]
fn age_runs_from_the_journey_anchor() {
    let mut world = World::new();
    assert_eq!(world.eval("age()"), Value::Null);
    assert!(!world.compile(Subject::Account, "age() > 30d").expect("compiles").eval_bool(&world));
    world.anchor = Some(ts("2026-02-25T21:30:00Z"));
    assert_eq!(world.eval("age() > 30d"), Value::Bool(true));
    assert_eq!(world.eval("age() / 1d"), num(30.0 + 1.0 / 24.0));
}

#[test]
fn definitions_read_segments_milestones_stage_and_health() {
    let mut world = World::new();
    world.segments.insert("enterprise".to_string());
    world.milestones.insert("first_value".to_string());
    world.stage = Some("onboarding".to_string());
    world.health.insert(None, 72.0);
    world.health.insert(Some("adoption".to_string()), 35.0);
    assert_eq!(world.eval("segment('enterprise') and not segment('smb')"), Value::Bool(true));
    assert_eq!(world.eval("milestone('first_value') and not milestone('invited_team')"), Value::Bool(true));
    assert_eq!(world.eval("stage() in ('onboarding', 'adoption')"), Value::Bool(true));
    assert_eq!(world.eval("health() >= 70 and health('adoption') < 40"), Value::Bool(true));
    assert_eq!(world.eval("health('support')"), Value::Null);
}

#[test]
fn behavioural_functions_intern_their_aggregates() {
    let mut table = AggregateTable::new();
    let account = schema(Subject::Account);
    let rule = compile(
        "count('login', 30d) > 0 and count('login', 30D) < 10 and distinct_events(['b', 'a', 'b'], 12w) >= 2",
        &account,
        Some(Type::Bool),
        &mut table,
    )
    .expect("compiles");
    assert_eq!(rule.aggregates(), &[AggId(0), AggId(1)]);
    assert_eq!(
        table.specs(),
        &[
            AggregateSpec {
                scope: Subject::Account,
                aggregate: Aggregate::Count { events: named(&["login"]), window: Window::Days(30) }
            },
            AggregateSpec {
                scope: Subject::Account,
                aggregate: Aggregate::DistinctEvents { events: named(&["a", "b"]), window: Window::Days(84) }
            },
        ]
    );
    // A second rule counting the same thing shares the aggregate.
    let other = compile("count('login', 30d)", &account, None, &mut table).expect("compiles");
    assert_eq!(other.aggregates(), &[AggId(0)]);
    assert_eq!(other.ty(), &Type::Number);
    assert_eq!(other.source(), "count('login', 30d)");
}

#[test]
fn events_and_windows_may_be_left_out_or_starred() {
    let cases = [
        ("count()", Aggregate::Count { events: EventFilter::Any, window: Window::AllTime }),
        ("count(7d)", Aggregate::Count { events: EventFilter::Any, window: Window::Days(7) }),
        ("count('*', all_time)", Aggregate::Count { events: EventFilter::Any, window: Window::AllTime }),
        ("count(['x', '*'])", Aggregate::Count { events: EventFilter::Any, window: Window::AllTime }),
        (
            "distinct_users('user_invited', since_anchor)",
            Aggregate::DistinctUsers { events: named(&["user_invited"]), window: Window::SinceAnchor },
        ),
        (
            "sum('invoice_paid', 'amount', 90d)",
            Aggregate::Sum {
                events: named(&["invoice_paid"]),
                property: "amount".to_string(),
                window: Window::Days(90),
            },
        ),
        ("active_users()", Aggregate::ActiveUsers { window: Window::AllTime }),
        ("active_days(4w)", Aggregate::ActiveDays { window: Window::Days(28) }),
        ("first_seen('login')", Aggregate::FirstSeen { events: named(&["login"]) }),
        ("last_seen()", Aggregate::LastSeen { events: EventFilter::Any }),
    ];
    for (source, aggregate) in cases {
        let mut table = AggregateTable::new();
        let rule = compile(source, &schema(Subject::Account), None, &mut table);
        assert!(rule.is_ok(), "{source}: {rule:?}");
        assert_eq!(table.specs(), &[AggregateSpec { scope: Subject::Account, aggregate }], "{source}");
    }
}

#[test]
fn behavioural_values_come_from_the_env() {
    let mut world = World::new()
        .aggregate(Aggregate::DistinctUsers { events: named(&["user_invited"]), window: Window::SinceAnchor }, num(5.0))
        .aggregate(Aggregate::LastSeen { events: named(&["login"]) }, Value::Timestamp(ts("2026-03-10T09:00:00Z")));
    assert_eq!(world.eval("distinct_users('user_invited', since_anchor) >= 5"), Value::Bool(true));
    assert_eq!(world.eval("days_since(last_seen('login')) > 14"), Value::Bool(true));
    assert_eq!(world.eval("now() - last_seen('login') > 14d"), Value::Bool(true));
    assert_eq!(world.eval("last_seen('signup') is null"), Value::Bool(true));
}

#[test]
fn contact_rules_see_contact_traits_first_then_the_account() {
    let mut world = World::new()
        .account("plan", text("team"))
        .contact("plan", text("viewer"))
        .contact("role", text("admin"))
        .account("arr", num(5000.0));
    assert_eq!(world.eval_for(Subject::Contact, "plan"), text("viewer"));
    assert_eq!(world.eval_for(Subject::Contact, "account.plan"), text("team"));
    assert_eq!(world.eval_for(Subject::Contact, "contact.role = 'admin' and arr < 20000"), Value::Bool(true));
    let rule = world.compile(Subject::Contact, "role = 'admin' and count('report_created', 30d) >= 10").expect("ok");
    assert_eq!(world.table.get(rule.aggregates()[0]).scope, Subject::Contact);
}

#[test]
fn references_list_every_definition_and_trait_read() {
    let mut world = World::new();
    let rule = world
        .compile(
            Subject::Contact,
            "segment('smb') and milestone('first_value') and stage() = 'adoption' and health('adoption') > 1 \
             and health() > 1 and age() > 1d and role = 'admin' and account.arr > 1 and arr > 2",
        )
        .expect("compiles");
    assert_eq!(
        rule.references(),
        &[
            Reference::Segment("smb".into()),
            Reference::Milestone("first_value".into()),
            Reference::Stage,
            Reference::Health(None),
            Reference::Health(Some("adoption".into())),
            Reference::Anchor,
            Reference::AccountTrait("arr".into()),
            Reference::ContactTrait("role".into()),
        ]
    );
    let rule = world.compile(Subject::Account, "count('x', since_anchor) > 1").expect("compiles");
    assert_eq!(rule.references(), &[Reference::Anchor]);
}

#[test]
fn values_of_an_unexpected_kind_evaluate_to_null() {
    let mut world = World::new().account("arr", text("lots")).account("renewal_date", num(3.0));
    assert_eq!(world.eval("arr > 1"), Value::Null);
    assert_eq!(world.eval("arr + 1"), Value::Null);
    assert_eq!(world.eval("days_until(renewal_date)"), Value::Null);
    assert_eq!(world.eval("-arr"), Value::Null);
    assert_eq!(world.eval("not is_paying"), Value::Null);
}

#[test]
fn keywords_and_functions_are_case_insensitive() {
    let mut world = World::new().account("plan", text("team"));
    assert_eq!(world.eval("PLAN_X is NULL OR plan IN ('team')".replace("PLAN_X", "arr").as_str()), Value::Bool(true));
    assert_eq!(world.eval("LOWER(plan) = 'team' AND NOT False"), Value::Bool(true));
}
