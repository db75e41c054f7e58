//! No template text makes parsing, checking or rendering panic, overflow the stack or run
//! unbounded: arbitrary text, Liquid-like fragments and mutated example templates.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_content::*;
use proptest::prelude::*;
use serde_json::json;

const EXAMPLES: &[&str] = &[
    include_str!("../../../examples/workspace/templates/welcome.html"),
    include_str!("../../../examples/workspace/templates/welcome.txt"),
    include_str!("../../../examples/workspace/templates/invite_team.html"),
    include_str!("../../../examples/workspace/templates/renewal_recap.html"),
    include_str!("../../../examples/workspace/templates/nps.html"),
];

fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "{{",
        "}}",
        "{%",
        "%}",
        "{{-",
        "-}}",
        " if ",
        " endif ",
        " for u in ",
        " endfor ",
        " unless ",
        " case ",
        " when ",
        " else ",
        " raw ",
        " endraw ",
        " comment ",
        " endcomment ",
        " capture c ",
        " assign x = ",
        "contact.name",
        "account.name",
        "account.health.pillars.adoption",
        "account.milestones.first_value.status",
        "insights.leaderboard.report_created.top",
        "links.unsubscribe_url",
        "now",
        "[",
        "]",
        "(",
        ")",
        "(1..5)",
        "(1..100000)",
        "..",
        "|",
        " default: 'there' ",
        " date: '%Y' ",
        " append: ",
        " size ",
        " truncate: 3 ",
        ":",
        ",",
        "'",
        "\"",
        "==",
        "<",
        "contains",
        "and",
        "or",
        "nil",
        "empty",
        "x",
        "é",
        "🎉",
        "\n",
        " ",
    ])
}

/// `source` with a piece replaced: characters `at..at+len` (clamped) become `insert`.
fn mutate(source: &str, at: usize, len: usize, insert: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    chars[..at].iter().chain(insert.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect()
}

fn context() -> RenderContext {
    let account = AccountData {
        id: "acc_1".into(),
        name: Some("Acme <b>&</b>".into()),
        plan: Some("team".into()),
        seats: Some(40),
        traits: BTreeMap::from([("industry".into(), json!("{{ 7*7 }}"))]),
        segments: vec!["smb".into()],
        ..AccountData::default()
    };
    let contact = ContactData { id: "c_1".into(), email: "ada@acme.test".into(), ..ContactData::default() };
    let now = "2026-03-02T09:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
    RenderContext::new(account, contact, now).link("unsubscribe_url", "https://cairn.test/u")
}

fn part(source: &str) -> PartSource {
    PartSource::new(source, Origin::new("templates/t.liquid", 1, 1))
}

/// Parses `source` as every part, checks and renders it: whatever happens, it returns.
fn parse_check_render(source: &str) {
    check_and_render(MessageTemplate {
        subject: Some(part(source)),
        preheader: None,
        html: part(source),
        text: part(source),
    });
}

/// Parses `source` as the text part, checks and renders it.
fn parse_check_render_text(source: &str) {
    check_and_render(MessageTemplate { subject: None, preheader: None, html: part(""), text: part(source) });
}

fn check_and_render(template: MessageTemplate) {
    if let Ok(parsed) = template.parse() {
        let _ = check_variables(&parsed, &ContextSchema::default());
        let limits = Limits { max_bytes_per_part: 64 * 1024, time_budget: Duration::from_millis(50) };
        let _ = render(&parsed, &context(), &limits);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        parse_check_render(&source);
    }

    #[test]
    fn liquid_like_text_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
        parse_check_render(&parts.concat());
    }

    #[test]
    fn mutated_example_templates_never_panic(
        example in prop::sample::select(EXAMPLES),
        edits in prop::collection::vec((any::<usize>(), 0usize..8, prop::collection::vec(fragment(), 0..3)), 1..4),
    ) {
        let mut source = example.to_owned();
        for (at, len, insert) in edits {
            source = mutate(&source, at, len, &insert.concat());
        }
        parse_check_render_text(&source);
    }

    #[test]
    fn deeply_nested_templates_never_overflow(
        (open, close) in prop::sample::select(vec![
            ("{% if account.name %}", "{% endif %}"),
            ("{% for s in account.segments %}", "{% endfor %}"),
            ("{% comment %}", "{% endcomment %}"),
            ("{% unless x %}{% if now %}", "{% endif %}{% endunless %}"),
            ("{{ account[", "] }}"),
            ("{% capture c %}", "{% endcapture %}"),
        ]),
        depth in prop_oneof![1usize..60, 60usize..500],
        closed in any::<bool>(),
    ) {
        let closing = if closed { close.repeat(depth) } else { String::new() };
        parse_check_render_text(&format!("{}x{closing}", open.repeat(depth)));
    }
}
