//! The checks as a workspace author meets them: each test writes a little YAML and reads
//! the exact diagnostics back.
//!
//! Tests of the YAML level run with a stand-in rule compiler (`stub`), so they do not
//! depend on the rule language; tests of rules, references and cycles use the real one.

use cairn_rules::{AggregateTable, Rule, RuleError, Schema, Span, Type};

use crate::{SourceFile, Workspace, check, check_sources, load_dir};

/// Stands in for `cairn_rules::compile`: flags `cnt(` as the real compiler would and
/// otherwise yields no rule and no error, so only YAML-level problems are reported.
fn stub(source: &str, _: &Schema, _: Option<Type>, _: &mut AggregateTable) -> Result<Rule, Vec<RuleError>> {
    let errors = source
        .match_indices("cnt(")
        .map(|(i, _)| RuleError {
            span: Span { start: i, end: i + 3 },
            message: "unknown function `cnt`".into(),
            help: Some("did you mean `count`?".into()),
        })
        .collect();
    Err(errors)
}

fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
    list.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect()
}

/// Every diagnostic of the YAML-level checks, as `file:line:col: error: message` lines
/// (help on its own line).
fn problems_in(list: &[(&str, &str)]) -> Vec<String> {
    match check::check_with(&files(list), stub) {
        Ok(_) => Vec::new(),
        Err(ds) => ds.iter().map(|d| d.to_string()).collect(),
    }
}

fn problems(text: &str) -> Vec<String> {
    problems_in(&[("ws.yaml", text)])
}

/// With the real rule compiler.
fn checked(list: &[(&str, &str)]) -> Result<Workspace, Vec<String>> {
    check_sources(&files(list)).map_err(|ds| ds.iter().map(|d| d.to_string()).collect())
}

fn example() -> Vec<SourceFile> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace");
    crate::read_dir(&dir).expect("example workspace readable")
}

#[test]
fn the_example_workspace_passes_with_everything_the_brief_asks_for() {
    let ws = match check_sources(&example()) {
        Ok(ws) => ws,
        Err(ds) => panic!("{}", ds.iter().map(|d| format!("{d:#}")).collect::<Vec<_>>().join("\n")),
    };
    let s = ws.summary();
    assert!(s.segments >= 20, "{s}");
    assert_eq!((s.stages, s.milestones, s.pillars, s.health_models), (4, 12, 4, 1), "{s}");
    let health = ws.health().expect("health");
    assert!(health.default.pillars.iter().all(|p| (3..=5).contains(&p.measures.len())));
    assert_eq!(ws.journey().and_then(|j| j.value_milestone()).map(|m| m.id.as_str()), Some("first_value"));
    assert_eq!(ws.time_zone_name(), "Europe/Berlin");
}

// ---- YAML syntax and shape ---------------------------------------------------------------

#[test]
fn a_yaml_syntax_error_names_its_position() {
    let text = "segments:\n  - id: smb\n    where: arr: 5\n";
    assert_eq!(problems(text), ["ws.yaml:3:15: error: invalid YAML: mapping values are not allowed in this context"]);
}

#[test]
fn a_misspelt_key_suggests_the_right_one_and_is_not_also_reported_missing() {
    let text = "segments:\n  - id: smb\n    of: account\n    wehre: arr < 20000\n";
    assert_eq!(problems(text), ["ws.yaml:4:5: error: unknown key `wehre` in a segment\n  help: did you mean `where`?"]);
}

#[test]
fn an_unknown_key_without_a_close_match_lists_the_expected_keys() {
    let text = "segments:\n  - id: smb\n    of: account\n    where: arr < 1\n    colour: red\n";
    assert_eq!(
        problems(text),
        ["ws.yaml:5:5: error: unknown key `colour` in a segment\n  help: expected one of `id`, `name`, `of`, `where`"]
    );
}

#[test]
fn a_misspelt_top_level_key_is_caught() {
    assert_eq!(
        problems("segmnets:\n  - id: smb\n"),
        ["ws.yaml:1:1: error: unknown key `segmnets` in a workspace file\n  help: did you mean `segments`?"]
    );
}

#[test]
fn a_file_that_is_not_a_mapping_says_so() {
    assert_eq!(problems("- id: smb\n"), ["ws.yaml:1:1: error: expected a mapping for a workspace file, found a list"]);
}

#[test]
fn missing_required_keys_are_reported_at_the_mapping() {
    let text = "segments:\n  - name: SMB\n    where: arr < 1\n";
    assert_eq!(
        problems(text),
        [
            "ws.yaml:2:5: error: missing key `id` in a segment",
            "ws.yaml:2:5: error: missing key `of` in a segment\n  help: `of: account` or `of: contact`",
        ]
    );
}

#[test]
fn a_segment_without_a_condition_is_reported_by_its_id() {
    let text = "segments:\n  - id: smb\n    of: account\n";
    assert_eq!(
        problems(text),
        [
            "ws.yaml:2:5: error: missing key `where` in segment `smb`\n  help: add the membership condition, e.g. `where: plan = 'team'`"
        ]
    );
}

#[test]
fn a_list_where_a_list_belongs_and_nothing_else() {
    assert_eq!(
        problems("segments:\n  smb: 1\n"),
        ["ws.yaml:2:3: error: expected a list for `segments`, found a mapping"]
    );
}

#[test]
fn a_rule_written_as_a_mapping_gets_a_quoting_hint() {
    let text = "segments:\n  - id: smb\n    of: account\n    where: { arr: 1 }\n";
    assert_eq!(
        problems(text),
        [
            "ws.yaml:4:12: error: expected a rule for `where`, found a mapping\n  help: a rule containing `: ` must be quoted: `\"...\"`, or written as a block after `|`"
        ]
    );
}

#[test]
fn a_bad_id_suggests_a_valid_one() {
    let text = "segments:\n  - id: Power-Admins\n    of: contact\n    where: role = 'admin'\n";
    assert_eq!(
        problems(text),
        [
            "ws.yaml:2:9: error: `Power-Admins` is not a valid id\n  help: ids use lowercase letters, digits and `_` (at most 64), e.g. `power_admins`"
        ]
    );
}

#[test]
fn a_duplicate_id_in_another_file_points_at_the_second_and_names_the_first() {
    let seg = "segments:\n  - id: smb\n    of: account\n    where: arr < 1\n";
    assert_eq!(
        problems_in(&[("a.yaml", seg), ("b.yaml", seg)]),
        [
            "b.yaml:2:9: error: segment `smb` is already defined at a.yaml:2:9\n  help: segment ids are unique across the workspace's files"
        ]
    );
}

#[test]
fn a_key_given_twice_is_reported_at_the_second() {
    let text = "segments:\n  - id: smb\n    of: account\n    of: contact\n    where: arr < 1\n";
    assert_eq!(
        problems(text),
        ["ws.yaml:4:5: error: duplicate key `of` in a segment\n  help: the first `of` is at ws.yaml:3:5; keep one"]
    );
}

#[test]
fn an_unknown_subject_suggests_account() {
    let text = "segments:\n  - id: smb\n    of: acount\n    where: arr < 1\n";
    assert_eq!(
        problems(text),
        ["ws.yaml:3:9: error: `of` must be `account` or `contact`, found `acount`\n  help: did you mean `account`?"]
    );
}

#[test]
fn a_wrong_value_type_names_what_was_found() {
    let text = "health:\n  pillars:\n    adoption:\n      weight: high\n      measures:\n        - { id: m, value: seats, score: { red: 1, green: 2 }, weight: 1 }\n";
    assert_eq!(problems(text), ["ws.yaml:4:15: error: expected a number for `weight`, found `high`"]);
}

// ---- journey -------------------------------------------------------------------------------

const STAGE_HEAD: &str = "journey:\n  stages:\n    - id: onboarding\n      milestones:\n";

#[test]
fn durations_need_a_whole_number_and_a_unit() {
    let text = format!(
        "{STAGE_HEAD}        - {{ id: a, when: x, within: 14 days }}\n        - {{ id: b, when: x, within: 14 }}\n        - {{ id: c, when: x, within: 0d }}\n        - {{ id: d, when: x, within: 2w }}\n"
    );
    assert_eq!(
        problems(&text),
        [
            "ws.yaml:5:37: error: `14 days` is not a duration\n  help: write a whole number of hours, days or weeks: `12h`, `14d`, `2w`",
            "ws.yaml:6:37: error: `14` is not a duration: it has no unit\n  help: add a unit: `14d` for 14 days (write a whole number of hours, days or weeks: `12h`, `14d`, `2w`)",
            "ws.yaml:7:37: error: `0d` is not a positive duration\n  help: a deadline must be after the anchor",
        ]
    );
}

#[test]
fn durations_parse_to_hours() {
    use jiff::SignedDuration;
    assert_eq!(check::parse_duration("12h"), Ok(SignedDuration::from_hours(12)));
    assert_eq!(check::parse_duration("14d"), Ok(SignedDuration::from_hours(14 * 24)));
    assert_eq!(check::parse_duration("2w"), Ok(SignedDuration::from_hours(14 * 24)));
    assert_eq!(check::parse_duration("d"), Err(check::DurationError::Invalid));
    assert_eq!(check::parse_duration("14é"), Err(check::DurationError::Invalid));
    assert_eq!(check::parse_duration("é"), Err(check::DurationError::Invalid));
    assert_eq!(check::parse_duration(""), Err(check::DurationError::Invalid));
    assert_eq!(check::parse_duration("-3d"), Err(check::DurationError::Invalid));
    assert_eq!(check::parse_duration("99999999999999999999d"), Err(check::DurationError::Invalid));
}

#[test]
fn only_one_milestone_may_be_the_value_milestone() {
    let text = format!(
        "{STAGE_HEAD}        - id: a\n          when: x\n          value: true\n        - id: b\n          when: x\n          value: true\n"
    );
    assert_eq!(
        problems(&text),
        [
            "ws.yaml:10:18: error: only one milestone can be the value milestone; `a` at ws.yaml:5:15 already is\n  help: Time to Value is measured to one milestone: remove `value: true` from one of them"
        ]
    );
}

#[test]
fn the_value_flag_is_a_boolean() {
    let text = format!("{STAGE_HEAD}        - {{ id: a, when: x, value: \"true\" }}\n");
    assert_eq!(problems(&text), ["ws.yaml:5:36: error: expected `true` or `false` for `value`, found a string"]);
}

#[test]
fn milestone_ids_are_unique_across_stages() {
    let text = "journey:\n  stages:\n    - id: one\n      milestones: [ { id: m, when: x } ]\n    - id: two\n      milestones: [ { id: m, when: x } ]\n";
    assert_eq!(
        problems(text),
        [
            "ws.yaml:6:27: error: milestone `m` is already defined at ws.yaml:4:27\n  help: milestone ids are unique across the journey"
        ]
    );
}

#[test]
fn the_anchor_must_be_a_date_trait() {
    let text = "traits:\n  account: { tier: string }\njourney:\n  anchor: tier\n  stages: [ { id: s } ]\n";
    assert_eq!(
        problems(text),
        [
            "ws.yaml:4:11: error: anchor `tier` is a string trait; it must be a date or timestamp\n  help: the anchor is the day the journey starts, e.g. `start_date`"
        ]
    );
}

#[test]
fn an_unknown_anchor_suggests_a_date_trait() {
    let text = "journey:\n  anchor: strat_date\n  stages: [ { id: s } ]\n";
    assert_eq!(
        problems(text),
        ["ws.yaml:2:11: error: unknown account trait `strat_date` for `anchor`\n  help: did you mean `start_date`?"]
    );
}

#[test]
fn a_journey_needs_stages() {
    assert_eq!(problems("journey:\n  stages: []\n"), ["ws.yaml:2:11: error: the journey needs at least one stage"]);
}

#[test]
fn a_second_journey_in_another_file_is_an_error() {
    let j = "journey:\n  stages: [ { id: s } ]\n";
    assert_eq!(
        problems_in(&[("a.yaml", j), ("b.yaml", j.replace("id: s", "id: t").as_str())]),
        [
            "b.yaml:1:1: error: `journey` is already defined at a.yaml:1:1\n  help: a workspace has one `journey` section; merge the two"
        ]
    );
}

// ---- health ---------------------------------------------------------------------------------

/// A health section with one pillar whose one measure has the given `score` and weights.
fn health_with(bands: &str, pillar_weight: &str, score: &str, measure_weight: &str) -> String {
    format!(
        "health:\n{bands}  pillars:\n    adoption:\n      weight: {pillar_weight}\n      measures:\n        - id: m\n          value: seats\n          score: {score}\n          weight: {measure_weight}\n"
    )
}

#[test]
fn weights_must_be_positive() {
    assert_eq!(
        problems(&health_with("", "0", "{ red: 1, green: 2 }", "-5")),
        [
            "ws.yaml:4:15: error: `weight` must be above 0, found 0\n  help: weights are relative shares: use a positive number",
            "ws.yaml:9:19: error: `weight` must be above 0, found -5\n  help: weights are relative shares: use a positive number",
        ]
    );
}

#[test]
fn health_bands_red_must_be_below_green() {
    assert_eq!(
        problems(&health_with("  bands: { red: 80, green: 70 }\n", "1", "{ red: 1, green: 2 }", "1")),
        [
            "ws.yaml:2:17: error: band `red` (80) must be below `green` (70)\n  help: below `red` is red, from `green` up is green, yellow between"
        ]
    );
}

#[test]
fn health_bands_lie_between_0_and_100() {
    assert_eq!(
        problems(&health_with("  bands: { red: 40, green: 120 }\n", "1", "{ red: 1, green: 2 }", "1")),
        ["ws.yaml:2:28: error: band `green` must be between 0 and 100, found 120"]
    );
}

#[test]
fn a_linear_curve_needs_two_different_points() {
    assert_eq!(
        problems(&health_with("", "1", "{ red: 5, green: 5 }", "1")),
        [
            "ws.yaml:8:35: error: `red` and `green` are both 5: the score would jump from 0 to 100\n  help: give two different values; `red` above `green` means lower is better"
        ]
    );
}

#[test]
fn a_linear_curve_needs_both_points() {
    assert_eq!(
        problems(&health_with("", "1", "{ red: 5 }", "1")),
        ["ws.yaml:8:18: error: missing key `green` in a linear `score`\n  help: the value that scores 100"]
    );
}

#[test]
fn a_bands_curve_must_end_with_a_catch_all() {
    assert_eq!(
        problems(&health_with("", "1", "{ bands: [ { below: 2, score: 100 }, { below: 5, score: 50 } ] }", "1")),
        [
            "ws.yaml:8:55: error: the last band must have no `below`: it scores every value above the others\n  help: add a last band without `below`, e.g. `{ score: 0 }`"
        ]
    );
}

#[test]
fn a_bands_curve_must_increase() {
    assert_eq!(
        problems(&health_with(
            "",
            "1",
            "{ bands: [ { below: 5, score: 100 }, { below: 5, score: 50 }, { score: 0 } ] }",
            "1"
        )),
        ["ws.yaml:8:64: error: `below` must increase from band to band: 5 follows 5"]
    );
}

#[test]
fn only_the_last_band_may_catch_all() {
    assert_eq!(
        problems(&health_with("", "1", "{ bands: [ { score: 100 }, { below: 5, score: 50 }, { score: 0 } ] }", "1")),
        [
            "ws.yaml:8:29: error: only the last band may leave out `below`\n  help: it catches every value left, so nothing after it could apply: move it to the end"
        ]
    );
}

#[test]
fn band_scores_lie_between_0_and_100() {
    assert_eq!(
        problems(&health_with("", "1", "{ bands: [ { below: 5, score: 150 }, { score: 0 } ] }", "1")),
        ["ws.yaml:8:48: error: band `score` must be between 0 and 100, found 150"]
    );
}

#[test]
fn a_score_is_linear_or_bands_not_both() {
    assert_eq!(
        problems(&health_with("", "1", "{ red: 1, bands: [ { score: 0 } ] }", "1")),
        [
            "ws.yaml:8:25: error: `score` is either linear (`red`, `green`) or `bands`, not both\n  help: remove `red` and `green`, or `bands`"
        ]
    );
}

#[test]
fn measure_ids_are_unique_within_a_model_but_may_repeat_across_models() {
    let text = "health:\n  pillars:\n    a:\n      weight: 1\n      measures:\n        - { id: m, value: seats, score: { red: 1, green: 2 }, weight: 1 }\n    b:\n      weight: 1\n      measures:\n        - { id: m, value: seats, score: { red: 1, green: 2 }, weight: 1 }\n  models:\n    - id: other\n      for: arr > 1\n      pillars:\n        a:\n          weight: 1\n          measures:\n            - { id: m, value: seats, score: { red: 1, green: 2 }, weight: 1 }\n";
    assert_eq!(
        problems(text),
        [
            "ws.yaml:10:17: error: measure `m` is already defined at ws.yaml:6:17\n  help: measure ids are unique within a health model"
        ]
    );
}

#[test]
fn a_pillar_needs_measures() {
    let text = "health:\n  pillars:\n    adoption:\n      weight: 1\n      measures: []\n";
    assert_eq!(problems(text), ["ws.yaml:5:17: error: pillar `adoption` has no measures"]);
}

// ---- workspace settings and traits ------------------------------------------------------------

#[test]
fn an_unknown_time_zone_suggests_the_closest() {
    assert_eq!(
        problems("workspace:\n  time_zone: Europe/Berln\n"),
        ["ws.yaml:2:14: error: unknown time zone `Europe/Berln`\n  help: did you mean `Europe/Berlin`?"]
    );
}

#[test]
fn an_unknown_trait_type_suggests_or_lists_the_types() {
    assert_eq!(
        problems("traits:\n  account:\n    tier: strnig\n    seats_bought: int\n"),
        [
            "ws.yaml:3:11: error: unknown trait type `strnig`\n  help: did you mean `string`?",
            "ws.yaml:4:19: error: unknown trait type `int`\n  help: trait types are `number`, `string`, `boolean`, `date`, `timestamp`",
        ]
    );
}

#[test]
fn a_custom_trait_may_not_shadow_a_built_in_one() {
    assert_eq!(
        problems("traits:\n  account:\n    plan: number\n  contact:\n    role: string\n"),
        [
            "ws.yaml:3:5: error: `plan` is a built-in account trait (string)\n  help: custom traits need names of their own",
            "ws.yaml:5:5: error: `role` is a built-in contact trait (string)\n  help: custom traits need names of their own",
        ]
    );
}

// ---- collecting everything ---------------------------------------------------------------------

#[test]
fn every_problem_in_every_file_is_reported_in_file_order() {
    let a = "segments:\n  - id: smb\n    of: acount\n    where: arr < 1\n  - id: Bad\n    of: account\n    where: arr < 1\n";
    let b = "workspace: { time_zone: Mars/Olympus }\nhealth: { pillars: { p: { weight: 0, measures: [] } } }\n";
    let got = problems_in(&[("b.yaml", b), ("a.yaml", a)]);
    let heads: Vec<&str> = got.iter().map(|d| d.lines().next().unwrap_or("")).collect();
    assert_eq!(
        heads,
        [
            "b.yaml:1:25: error: unknown time zone `Mars/Olympus`",
            "b.yaml:2:35: error: `weight` must be above 0, found 0",
            "b.yaml:2:48: error: pillar `p` has no measures",
            "a.yaml:3:9: error: `of` must be `account` or `contact`, found `acount`",
            "a.yaml:5:9: error: `Bad` is not a valid id",
        ]
    );
}

#[test]
fn an_invalid_file_does_not_hide_the_others() {
    let got = problems_in(&[("a.yaml", "segments: [\n"), ("b.yaml", "segmnets: []\n")]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], "a.yaml:1:11: error: invalid YAML: unclosed bracket '['");
    assert!(got[1].starts_with("b.yaml:1:1: error: unknown key `segmnets`"), "{got:?}");
}

// ---- rule errors mapped into the file -----------------------------------------------------------

#[test]
fn rule_errors_land_on_the_exact_column_of_plain_and_quoted_scalars() {
    let text = "segments:\n  - id: a\n    of: account\n    where: arr > 1 and cnt('x') > 1\n  - id: b\n    of: account\n    where: 'plan = ''team'' and cnt(''x'') > 1'\n  - id: c\n    of: account\n    where: \"plan = 'team' and cnt('x') > 1\"\n";
    let heads: Vec<String> = problems(text).iter().map(|d| d.lines().next().unwrap_or("").to_string()).collect();
    assert_eq!(
        heads,
        [
            "ws.yaml:4:24: error: unknown function `cnt`",
            "ws.yaml:7:33: error: unknown function `cnt`",
            "ws.yaml:10:31: error: unknown function `cnt`",
        ]
    );
}

#[test]
fn rule_errors_land_on_the_exact_line_and_column_of_block_scalars() {
    let text = "segments:\n  - id: a\n    of: account\n    where: |\n      arr > 1\n        and cnt('x') > 1\n";
    assert_eq!(problems(text), ["ws.yaml:6:13: error: unknown function `cnt`\n  help: did you mean `count`?"]);
}

#[test]
fn the_caret_display_shows_the_source_line() {
    let text = "segments:\n  - id: a\n    of: account\n    where: cnt('x') > 1\n";
    let ds = check::check_with(&files(&[("ws.yaml", text)]), stub).unwrap_err();
    assert_eq!(
        format!("{:#}", ds[0]),
        "ws.yaml:4:12: error: unknown function `cnt`\n   |\n 4 |     where: cnt('x') > 1\n   |            ^\n  help: did you mean `count`?"
    );
}

// ---- with the real rule compiler -----------------------------------------------------------------

const TWO_SEGMENTS: &str = "segments:\n  - id: smb\n    of: account\n    where: arr < 20000 and plan in ('starter', 'team')\n  - id: busy_smb\n    of: account\n    where: segment('smb') and count('report_created', 30d) >= 10\n";

#[test]
fn a_valid_workspace_loads_into_typed_definitions() {
    let program = "programs:\n  - id: nudge\n    of: account\n    trigger: segment_entered('busy_smb')\n    steps: [ { task: Call them, assign: owner } ]\n";
    let ws = checked(&[("segments.yaml", TWO_SEGMENTS), ("later.yaml", program)]).expect("valid");
    assert_eq!(ws.segments().len(), 2);
    assert_eq!(ws.segments()[1].location.to_string(), "segments.yaml:5:9");
    assert_eq!(ws.time_zone_name(), "UTC");
    assert_eq!(ws.aggregates().specs().len(), 1);
    assert_eq!(
        ws.evaluation_order(),
        [crate::Definition::Segment("smb".into()), crate::Definition::Segment("busy_smb".into())]
    );
    assert_eq!(ws.programs()[0].location.to_string(), "later.yaml:2:9");
}

#[test]
fn rules_that_count_the_same_thing_share_one_aggregate() {
    let text = "segments:\n  - { id: a, of: account, where: \"count('report_created', 30d) >= 1\" }\n  - { id: b, of: account, where: \"count('report_created', 30d) >= 10\" }\n  - { id: c, of: account, where: \"count('alert_set', 30d) >= 1\" }\n";
    assert_eq!(checked(&[("ws.yaml", text)]).expect("valid").aggregates().specs().len(), 2);
}

#[test]
fn custom_traits_can_be_used_in_rules() {
    let text =
        "traits:\n  account: { tier: string }\nsegments:\n  - { id: gold, of: account, where: \"tier = 'gold'\" }\n";
    let ws = checked(&[("ws.yaml", text)]).expect("valid");
    assert_eq!(ws.traits().account.get("tier"), Some(&crate::TraitType::String));
}

#[test]
fn a_real_rule_error_is_mapped_to_its_file_line_and_column() {
    let text = "segments:\n  - id: a\n    of: account\n    where: arr > 1 and segment('nope')\n";
    let got = checked(&[("ws.yaml", text)]).unwrap_err();
    assert_eq!(got, ["ws.yaml:4:32: error: unknown segment `nope`\n  help: the segments are `a`"]);
}

#[test]
fn segments_that_read_each_other_are_a_cycle() {
    let text = "segments:\n  - id: a\n    of: account\n    where: segment('b')\n  - id: b\n    of: account\n    where: arr > 1 and segment('a')\n";
    assert_eq!(
        checked(&[("ws.yaml", text)]).unwrap_err(),
        [
            "ws.yaml:4:12: error: definitions depend on each other in a cycle: segment `a` → segment `b` → segment `a`\n  help: a definition cannot depend on itself, directly or not: remove one of these references"
        ]
    );
}

#[test]
fn a_health_model_chosen_by_a_segment_that_reads_health_is_a_cycle() {
    let text = "segments:\n  - { id: green, of: account, where: \"health() >= 70\" }\nhealth:\n  pillars:\n    p: { weight: 1, measures: [ { id: m, value: seats, score: { red: 1, green: 9 }, weight: 1 } ] }\n  models:\n    - id: greens\n      for: segment('green')\n      pillars:\n        p: { weight: 1, measures: [ { id: m, value: seats, score: { red: 1, green: 9 }, weight: 1 } ] }\n";
    let got = checked(&[("ws.yaml", text)]).unwrap_err();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].lines().next(),
        Some(
            "ws.yaml:2:38: error: definitions depend on each other in a cycle: segment `green` → health → segment `green`"
        )
    );
}

#[test]
fn stage_rules_and_milestones_order_before_what_reads_the_stage() {
    let text = "journey:\n  stages:\n    - id: onboarding\n      until: milestone('first_value')\n      milestones:\n        - { id: first_value, when: \"count('dashboard_shared', since_anchor) >= 1\", within: 30d, value: true }\n    - id: adoption\nsegments:\n  - { id: onboarding, of: account, where: \"stage() = 'onboarding'\" }\n";
    let ws = checked(&[("ws.yaml", text)]).expect("valid");
    use crate::Definition::*;
    assert_eq!(ws.evaluation_order(), [Milestone("first_value".into()), Stage, Segment("onboarding".into())]);
    let m = ws.journey().and_then(|j| j.value_milestone()).expect("value milestone");
    assert_eq!((m.stage.as_str(), m.within), ("onboarding", Some(jiff::SignedDuration::from_hours(30 * 24))));
}

#[test]
fn a_measure_must_be_a_number() {
    let got = checked(&[(
        "ws.yaml",
        &health_with("", "1", "{ red: 1, green: 2 }", "1").replace("value: seats", "value: plan"),
    )]);
    let got = got.unwrap_err();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("ws.yaml:7:18: error: "), "{got:?}");
}

// ---- the folder ------------------------------------------------------------------------------------

#[test]
fn a_missing_or_empty_folder_is_a_clear_diagnostic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope");
    assert_eq!(
        load_dir(&missing).unwrap_err()[0].to_string(),
        format!("{}: error: workspace folder not found", missing.display())
    );
    std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
    assert_eq!(load_dir(dir.path()).unwrap_err()[0].message, "no workspace files (*.yaml, *.yml) in the folder");
}

#[test]
fn folder_files_are_read_in_name_order_and_named_by_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("b.yml"), "segmnets: []\n").expect("write");
    std::fs::write(dir.path().join("a.yaml"), "segmnets: []\n").expect("write");
    let got = load_dir(dir.path()).unwrap_err();
    let files: Vec<String> = got.iter().map(|d| d.file.clone()).collect();
    assert_eq!(
        files,
        [dir.path().join("a.yaml").display().to_string(), dir.path().join("b.yml").display().to_string()]
    );
}

mod probe {
    use super::*;
    use crate::{PROBE_FILE, ProbeMilestone, parse_within};

    const JOURNEY: &str = "journey:\n  stages:\n    - id: onboarding\n      milestones:\n        - { id: rule, when: \"count('login', since_anchor) >= 1\", within: 7d }\n    - id: adoption\n";

    fn probe(rule: &str) -> ProbeMilestone {
        ProbeMilestone { rule: rule.into(), within: jiff::SignedDuration::from_hours(30 * 24) }
    }

    #[test]
    fn a_probe_is_a_milestone_of_the_last_stage_under_a_free_id() {
        let ws = check_sources(&files(&[("ws.yaml", JOURNEY)])).unwrap();
        let (with, id) = ws.with_probe(&probe("count('alert_set', since_anchor) >= 3")).unwrap();
        assert_eq!(id, "rule_2", "`rule` is taken by the workspace");
        let journey = with.journey().unwrap();
        let m = journey.stages[1].milestones.last().unwrap();
        assert_eq!((m.id.as_str(), m.rule.source()), ("rule_2", "count('alert_set', since_anchor) >= 3"));
        assert_eq!(m.within, Some(jiff::SignedDuration::from_hours(720)));
        assert_eq!(journey.milestones().count(), 2);
        // The workspace itself is unchanged.
        assert_eq!(ws.journey().unwrap().milestones().count(), 1);
    }

    #[test]
    fn a_wrong_rule_is_reported_at_its_column_in_the_rule() {
        let ws = check_sources(&files(&[("ws.yaml", JOURNEY)])).unwrap();
        let errors = ws.with_probe(&probe("count('alert_set', since_anchr) >= 3")).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{text:?}");
        assert_eq!((errors[0].file.as_str(), errors[0].line, errors[0].column), (PROBE_FILE, 1, 20), "{text:?}");
        assert!(text[0].contains("since_anchor"), "a did-you-mean: {text:?}");
    }

    #[test]
    fn without_a_journey_there_is_nothing_to_anchor_on() {
        let ws = check_sources(&files(&[("ws.yaml", "segments: []\n")])).unwrap();
        let errors = ws.with_probe(&probe("count('x') >= 1")).unwrap_err();
        assert!(errors[0].to_string().contains("the workspace has no journey"), "{}", errors[0]);
        assert!(parse_within("30").unwrap_err().contains("`30` is not a duration"));
        assert_eq!(parse_within("2w"), Ok(jiff::SignedDuration::from_hours(336)));
    }
}
