//! `Rule::next_clock_change` against evaluation day by day: the value of a rule never
//! changes before the day it names, and (for the comparisons it reads) it names the
//! first day the value does change.

mod common;

use cairn_rules::{Aggregate, EventFilter, Subject, Value};
use common::{World, ts};
use jiff::SignedDuration;

/// Noon in Berlin on Friday 27 March 2026 (summer time starts on the 29th), the last
/// login at `at`, renewal on 1 May.
fn last_login(at: &str) -> World {
    let mut world = World::new();
    world.now = ts("2026-03-27T11:00:00Z");
    world
        .aggregate(
            Aggregate::LastSeen { events: EventFilter::Named(vec!["login".to_string()]) },
            Value::Timestamp(ts(at)),
        )
        .account("renewal_date", Value::Date("2026-05-01".parse().expect("a date")))
        .account("seats", Value::Number(12.0))
        .account("plan", Value::String("team".into()))
}

/// The first day (1..=horizon) after the world's day on which `source` evaluates
/// differently from today, evaluating it at noon of each day.
fn first_change(world: &mut World, source: &str, horizon: i64) -> Option<i64> {
    let rule = world.compile(Subject::Account, source).expect("compiles");
    let start = world.now;
    let today = rule.eval(world);
    let mut found = None;
    for k in 1..=horizon {
        world.now = start + SignedDuration::from_hours(24 * k);
        if rule.eval(world) != today {
            found = Some(k);
            break;
        }
    }
    world.now = start;
    found
}

fn predicted(world: &mut World, source: &str) -> Option<i64> {
    let rule = world.compile(Subject::Account, source).expect("compiles");
    assert!(rule.clock_predictable(), "{source} should be predictable");
    rule.next_clock_change(world)
}

#[test]
fn day_counts_compared_with_values_name_the_first_day_they_flip() {
    // World::new is Friday 27 March 2026 (Berlin); the last login was on the 10th: 17 days.
    let cases: &[(&str, Option<i64>)] = &[
        ("days_since(last_seen('login')) > 30", Some(14)),
        ("days_since(last_seen('login')) >= 30", Some(13)),
        ("days_since(last_seen('login')) < 20", Some(3)),
        ("days_since(last_seen('login')) <= 20", Some(4)),
        ("days_since(last_seen('login')) = 18", Some(1)),
        ("days_since(last_seen('login')) <> 19", Some(2)),
        ("30 < days_since(last_seen('login'))", Some(14)),
        ("days_since(last_seen('login')) > 10", None),
        ("days_since(last_seen('login')) > seats", None),
        ("days_since(last_seen('login')) > seats + 10", Some(6)),
        ("days_since(last_seen('login')) > 20.5", Some(4)),
        ("days_since(last_seen('login')) between 20 and 25", Some(3)),
        ("days_since(last_seen('login')) not between 10 and 20", Some(4)),
        ("days_since(last_seen('login')) in (19, 40)", Some(2)),
        // renewal on 1 May: 35 days to go.
        ("days_until(renewal_date) <= 30", Some(5)),
        ("days_until(renewal_date) < 0", Some(36)),
        ("days_until(renewal_date) between 0 and 90", Some(36)),
        ("plan = 'team' and days_until(renewal_date) <= 30", Some(5)),
        ("not (days_until(renewal_date) <= 30) or days_since(last_seen('login')) > 30", Some(5)),
        ("days_since(last_seen('login')) is null", None),
        ("days_since(first_seen('login')) > 3", None),
        ("plan = 'team'", None),
    ];
    for (source, expected) in cases {
        let mut world = last_login("2026-03-10T09:00:00Z");
        assert_eq!(predicted(&mut world, source), *expected, "{source}: prediction");
        // What it predicts is what evaluating day by day finds (a prediction is made for
        // every day count the rule reads, so with one count it is exact).
        assert_eq!(first_change(&mut world, source, 120), *expected, "{source}: day by day");
    }
}

#[test]
fn a_prediction_is_never_later_than_the_change_from_any_day() {
    // Every rule, from every day of four months and at several instants of the day
    // (time zone changes included): the value does not change before the predicted day.
    let rules = [
        "days_since(last_seen('login')) > 30",
        "days_since(last_seen('login')) <= 14 and plan = 'team'",
        "days_until(renewal_date) between 0 and 90 or days_since(last_seen('login')) = 45",
        "not (days_until(renewal_date) in (7, 30, 60))",
        "days_since(last_seen('login')) between seats and seats * 2",
    ];
    for source in rules {
        for start in 0..120 {
            for hour in [0, 7, 23] {
                let mut world = last_login("2026-02-20T23:30:00Z");
                world.now = ts("2026-02-01T00:00:00Z") + SignedDuration::from_hours(24 * start + hour);
                let predicted = predicted(&mut world, source);
                let actual = first_change(&mut world, source, 200);
                match (predicted, actual) {
                    (Some(p), Some(a)) => {
                        assert!(p <= a, "{source} from day {start} h{hour}: predicted {p}, changed on {a}")
                    }
                    (None, Some(a)) => panic!("{source} from day {start} h{hour}: predicted no change, changed on {a}"),
                    (_, None) => {}
                }
            }
        }
    }
}

#[test]
fn other_clock_reads_are_not_predictable() {
    let mut world = last_login("2026-03-10T09:00:00Z");
    for source in
        ["now() - last_seen('login') > 14d", "case when days_since(last_seen('login')) > 3 then true else false end"]
    {
        let rule = world.compile(Subject::Account, source).expect("compiles");
        assert!(!rule.clock_predictable(), "{source}");
        assert_eq!(rule.next_clock_change(&world), Some(1), "{source}");
    }
}

#[test]
fn comparisons_that_move_steadily_with_the_days_are_never_predicted_late() {
    // `age() > 30d` reads the instant, so it is not predictable through day counts; the
    // engine still asks on which day it can next flip, and the answer must never be later
    // than the day it really flips (None only when it never does).
    for source in [
        "age() > 30d",
        "age() < 400d",
        "days_since(last_seen('login')) + 1 > 30",
        "days_since(last_seen('login')) > days_until(renewal_date)",
    ] {
        let mut world = last_login("2026-03-10T09:00:00Z");
        let rule = world.compile(Subject::Account, source).expect("compiles");
        assert!(!rule.clock_predictable(), "{source}");
        let predicted = rule.next_clock_change(&world);
        match (predicted, first_change(&mut world, source, 500)) {
            (Some(p), Some(a)) => assert!(p <= a, "{source}: predicted {p}, changed on {a}"),
            (None, Some(a)) => panic!("{source}: predicted no change, changed on {a}"),
            (_, None) => {}
        }
    }
}

/// Every hour of Friday 27 March 2026 in Berlin, as instants.
fn hours_of_the_day() -> Vec<jiff::Timestamp> {
    (0..24).map(|h| ts("2026-03-26T23:00:00Z") + SignedDuration::from_hours(h)).collect()
}

#[test]
fn rules_that_read_the_clock_only_through_day_counts_hold_one_value_all_day() {
    let cases: &[(&str, bool)] = &[
        ("days_since(last_seen('login')) > 16", false),
        ("days_until(renewal_date) <= 35", false),
        ("days_since(last_seen('login')) * 2 + days_until(renewal_date) > 68", false),
        ("seats > 10", false),
        ("age() > 30d", true),
        ("now() - last_seen('login') > 17d", true),
        ("case when now() - last_seen('login') > 17d + 5h then 1 else 0 end = 1", true),
    ];
    let mut world = last_login("2026-03-10T09:00:00Z");
    world.anchor = Some(ts("2026-02-25T11:00:00Z"));
    for (source, instant) in cases {
        let rule = world.compile(Subject::Account, source).expect("compiles");
        assert_eq!(rule.reads_instant(), *instant, "{source}");
        let values: Vec<Value> = hours_of_the_day()
            .into_iter()
            .map(|at| {
                world.now = at;
                rule.eval(&world)
            })
            .collect();
        // Those that read the instant do change within this day; the others never do.
        let one_value = values.windows(2).all(|w| w[0] == w[1]);
        assert_eq!(one_value, !instant, "{source}: {values:?}");
    }
}

#[test]
fn an_aggregate_read_only_through_a_day_count_is_not_read_exactly() {
    let login = || Aggregate::LastSeen { events: EventFilter::Named(vec!["login".to_string()]) };
    let cases: &[(&str, bool)] = &[
        ("days_since(last_seen('login')) > 16", false),
        ("days_since(last_seen('login')) between 10 and 20", false),
        ("last_seen('login') > now() - 17d", true),
        ("days_since(last_seen('login')) > 16 and last_seen('login') < now() - 17d", true),
        ("last_seen('login') is null", true),
    ];
    for (source, exactly) in cases {
        let mut world = last_login("2026-03-10T09:00:00Z");
        world.now = ts("2026-03-27T21:00:00Z");
        let rule = world.compile(Subject::Account, source).expect("compiles");
        let id = rule.aggregates()[0];
        assert_eq!(rule.reads_exactly(id), *exactly, "{source}");
        assert!(!rule.reads_exactly(cairn_rules::AggId(id.0 + 1)), "{source}: an aggregate it does not read");
        // The last login moving within its day changes the value only when read exactly.
        let values: Vec<Value> = hours_of_the_day()
            .into_iter()
            .map(|at| {
                world.aggregates = vec![(login(), Value::Timestamp(at - SignedDuration::from_hours(24 * 17)))];
                rule.eval(&world)
            })
            .collect();
        let one_value = values.windows(2).all(|w| w[0] == w[1]);
        if !exactly {
            assert!(one_value, "{source}: {values:?}");
        }
    }
}
