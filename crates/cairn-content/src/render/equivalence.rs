//! `render` builds Liquid's globals straight from the context (`globals.rs`), only what a
//! template can read (`reads.rs`). These tests hold it to what rendering did before: the
//! whole context through `to_json` and `liquid::to_object`, escaped as JSON for the HTML
//! part. Same messages, same errors, for every template and context here.
//!
//! No template here renders or loops over an object of more than one field: liquid keeps
//! objects in a `HashMap`, so their order differs from one object to the next.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::*;
use crate::context::{AccountData, ContactData, HealthData, MilestoneData};
use crate::insights::{UserCount, benchmark, leaderboard};
use crate::source::Origin;
use crate::template::{MessageTemplate, PartSource};

/// Rendering as it was: the context through JSON, the roots the template does not mention
/// left out, converted by serde twice (as it is, and escaped for the HTML part).
fn render_via_json(
    template: &ParsedTemplate,
    context: &RenderContext,
    limits: &Limits,
) -> Result<RenderedMessage, RenderError> {
    let mut data = context.to_json();
    if let Value::Object(roots) = &mut data {
        roots.retain(|name, _| name == "now" || template.mentions(name));
        // What the template only pipes into `default` is null where the recipient has
        // nothing.
        for (root, fields) in template.reads.defaulted() {
            if let Some(value) = roots.get_mut(crate::reads::ROOT_NAMES[*root]) {
                fill_null(value, fields);
            }
        }
    }
    let plain = liquid::to_object(&data)
        .map_err(|e| RenderError::Failed { part: Part::Subject, message: first_message(&e.to_string()) })?;
    let escaped = liquid::to_object(&escape_json(data))
        .map_err(|e| RenderError::Failed { part: Part::Html, message: first_message(&e.to_string()) })?;
    render_parts(template, context, limits, |parsed| if parsed.part == Part::Html { &escaped } else { &plain })
}

/// The first field of `fields` missing under `value` set to null.
fn fill_null(value: &mut Value, fields: &[String]) {
    let (Some((first, rest)), Value::Object(object)) = (fields.split_first(), value) else { return };
    match object.get_mut(first) {
        Some(inner) => fill_null(inner, rest),
        None => {
            object.insert(first.clone(), Value::Null);
        }
    }
}

/// Every string and object key of `value` HTML-escaped.
fn escape_json(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(escape_html(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(escape_json).collect()),
        Value::Object(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (escape_html(&k), escape_json(v))).collect())
        }
        other => other,
    }
}

fn at(time: &str) -> Option<Timestamp> {
    time.parse().ok()
}

fn now() -> Timestamp {
    at("2026-03-02T09:00:00Z").unwrap_or_default()
}

fn users(names: &[(&str, u64)]) -> Vec<UserCount> {
    names
        .iter()
        .map(|(name, count)| UserCount { name: (*name).into(), email: format!("{name}@acme.test"), count: *count })
        .collect()
}

/// A full context: every root, traits of every JSON kind.
fn acme() -> RenderContext {
    let account = AccountData {
        id: "acc_1".into(),
        name: Some("Acme".into()),
        plan: Some("team".into()),
        seats: Some(40),
        arr_cents: Some(2_400_050),
        traits: BTreeMap::from([
            ("industry".into(), json!("Logistics")),
            ("renewal_date".into(), json!("2027-01-14")),
            ("employees".into(), json!(180)),
            ("nickname".into(), json!("acme")),
            ("flag".into(), json!(true)),
            ("zero".into(), json!(0)),
            ("neg".into(), json!(-5)),
            ("float".into(), json!(2.5)),
            ("whole_float".into(), json!(3.0)),
            ("tiny".into(), json!(1e-7)),
            ("huge_float".into(), json!(1e20)),
            ("empty_string".into(), json!("")),
            ("gone".into(), Value::Null),
            (
                "profile".into(),
                json!({
                    "tags": ["priority", "expansion", null, 7],
                    "owner": { "name": "Bob" },
                    "empty_list": [],
                    "nothing": null,
                    "a&b": "and",
                }),
            ),
            ("my-trait".into(), json!("hyphenated")),
            ("stage".into(), json!("shadowed by the built-in stage")),
        ]),
        stage: Some("adoption".into()),
        segments: vec!["smb".into(), "eu".into()],
        health: Some(HealthData {
            score: 64.0,
            band: "yellow".into(),
            pillars: BTreeMap::from([("adoption".into(), 58.5), ("onboarding".into(), 90.0), ("nan".into(), f64::NAN)]),
        }),
        milestones: BTreeMap::from([
            ("invited_team".into(), MilestoneData { status: "achieved".into(), at: at("2026-02-10T12:30:00Z") }),
            ("first_report".into(), MilestoneData { status: "pending".into(), at: None }),
            ("dashboards_shared_widely".into(), MilestoneData { status: "achieved".into(), at: None }),
        ]),
    };
    let contact = ContactData {
        id: "c_1".into(),
        email: "ada@acme.test".into(),
        name: Some("Ada Lovelace".into()),
        first_name: None,
        role: Some("admin".into()),
        timezone: Some("Europe/Berlin".into()),
        traits: BTreeMap::from([
            ("title".into(), json!("Head of Operations")),
            ("my-trait".into(), json!("contact's")),
            ("logins".into(), json!(12)),
        ]),
    };
    let peers = [4.0, 8.0, 12.0, 20.0, 25.0, 30.0, 41.0, 60.0];
    let mut context = RenderContext::new(account, contact, now())
        .metric("reports_30d", 30)
        .metric("ratio", 0.4567)
        .metric("none", Value::Null)
        .metric("list", json!([1, 2.5, "three"]))
        .leaderboard(
            "report_created",
            leaderboard(&users(&[("grace", 42), ("alan", 17), ("edsger", 17), ("ken", 0)]), 2),
        )
        .link("unsubscribe_url", "https://cairn.test/u/sig?c=1&t=2")
        .link("dashboard_url", "https://app.acme.test/dashboards")
        .link("nps_survey_url", "https://cairn.test/s/nps")
        .sent_by("adoption-story", "Adoption story", "send-1", 0)
        .variant("B");
    if let Some(b) = benchmark(30.0, &peers) {
        context = context.benchmark("reports_30d", b);
    }
    for score in 0..=10 {
        context = context.link(format!("nps_{score}"), format!("https://cairn.test/s/nps/{score}?s=sig&c=1"));
    }
    context
}

/// Markup, quotes, Liquid and odd keys in every string a customer controls.
fn hostile() -> RenderContext {
    let evil = r#"<script>alert("x")</script> & 'quotes' {{ 7*7 }} {% if true %}yes{% endif %}"#;
    let mut context = acme();
    context.account.name = Some(evil.into());
    context.account.plan = Some("a&b".into());
    context.account.segments = vec!["<seg>".into(), "plain".into()];
    context.account.traits.insert("nickname".into(), json!("Tom & 'Jerry' <b>"));
    context.account.traits.insert("<k>".into(), json!("keyed by markup"));
    context.account.traits.insert("industry".into(), json!("{{ 7*7 }}"));
    context.account.traits.insert(
        "profile".into(),
        json!({ "a&b": "<i>x</i>", "owner": { "name": "<b>Bob</b>" }, "tags": ["\"q\"", "'s'"] }),
    );
    context.account.milestones.insert("<m>".into(), MilestoneData { status: "<achieved>".into(), at: None });
    if let Some(health) = &mut context.account.health {
        health.band = "<red>".into();
        health.pillars.insert("a&b".into(), 1.0);
    }
    context.contact.name = Some("  Zoë \"Z\" O'Brien-Ünïcödé 🎉  ".into());
    context.contact.email = "zoe+<x>@acme.test".into();
    context.contact.traits.insert("title".into(), json!(evil));
    context = context
        .leaderboard("report_created", leaderboard(&users(&[("<ken>", 3), ("o'neil", 2), ("ada&co", 1)]), 2))
        .link("dashboard_url", "https://app.acme.test/d?a=1&b=\"2\"")
        .sent_by("p<1>", "Program & co", "step'1", 2)
        .variant("<B>");
    context
}

/// Almost nothing: every optional field absent, traits shadowed by built-ins removed.
fn sparse() -> RenderContext {
    let account = AccountData {
        id: "acc_2".into(),
        traits: BTreeMap::from([
            ("name".into(), json!("a trait called name")),
            ("health".into(), json!("a trait called health")),
            ("seats".into(), json!(3)),
        ]),
        ..AccountData::default()
    };
    let contact = ContactData {
        id: "c_2".into(),
        email: "x@y.test".into(),
        traits: BTreeMap::from([("first_name".into(), json!("from a trait"))]),
        ..ContactData::default()
    };
    RenderContext::new(account, contact, now())
}

/// Integers Liquid cannot hold, in places templates may or may not read.
fn too_large() -> Vec<RenderContext> {
    let mut in_unread_trait = acme();
    in_unread_trait.account.traits.insert("huge".into(), json!(u64::MAX));
    let mut nested = acme();
    nested.contact.traits.insert("deep".into(), json!({ "list": [1, u64::MAX] }));
    let in_metric = acme().metric("big", u64::MAX);
    let mut in_step = acme();
    in_step.step.insert("big".into(), json!(u64::MAX));
    let in_leaderboard = acme().leaderboard(
        "big",
        crate::insights::Leaderboard { top: leaderboard(&users(&[("max", u64::MAX)]), 1).top, bottom: Vec::new() },
    );
    // Traits named like a built-in field never reach Liquid.
    let mut shadowed = acme();
    shadowed.account.traits.insert("seats".into(), json!(u64::MAX));
    shadowed.account.traits.insert("milestones".into(), json!(u64::MAX));
    shadowed.contact.traits.insert("email".into(), json!([u64::MAX]));
    let mut removed = sparse();
    removed.account.traits.insert("plan".into(), json!(u64::MAX));
    removed.contact.traits.insert("role".into(), json!(u64::MAX));
    // Large but still an i64.
    let fits = acme().metric("big", i64::MAX as u64).metric("small", i64::MIN);
    vec![in_unread_trait, nested, in_metric, in_step, in_leaderboard, shadowed, removed, fits]
}

/// Snippets, each rendered in several arrangements of parts.
const SNIPPETS: &[&str] = &[
    "Hi {{ contact.first_name }} from {{ account.name }}",
    "{{ account.industry }} {{ account.nickname }} {{ account.nickname | size }} {{ account.nickname | upcase }}",
    "{% if account.renewal_date %}renews {{ account.renewal_date | date: '%-d %B %Y' }}{% else %}no renewal{% endif %}",
    "{{ account.missing }}",
    "{{ acount.name }}",
    "{{ account.health.score }} {{ account.health.band }} {{ account.health.pillars.adoption }} {{ account.health.pillars.size }} {{ account.health.pillars.nan | default: 'none' }}",
    "{% for s in account.segments %}[{{ s }}]{% endfor %} {{ account.segments | join: ', ' }} {{ account.segments.size }} {{ account.segments.first }} {{ account.segments }}",
    "{{ account.milestones.invited_team.status }} {{ account.milestones.invited_team.at | date: '%Y-%m-%d %H:%M' }} {{ account.milestones.size }} {{ account.milestones.first_report.at }}",
    "{% for u in insights.leaderboard.report_created.top %}{{ u.rank }}. {{ u.name }} <{{ u.email }}> {{ u.count }}\n{% endfor %}{{ insights.leaderboard.report_created.bottom.size }} {{ insights.leaderboard.report_created.bottom.first.name }}",
    "{{ insights.benchmark.reports_30d.percentile }} {{ insights.benchmark.reports_30d.median }} {{ insights.benchmark.reports_30d.p75 }} {{ insights.benchmark.reports_30d.rank }}/{{ insights.benchmark.reports_30d.peers }} {{ insights.benchmark.reports_30d.value }}",
    "{{ insights.size }} {{ insights.benchmark.size }} {{ insights.leaderboard.size }}",
    "{{ metrics.reports_30d }} {{ metrics.ratio }} {{ metrics.ratio | times: 100 | round: 1 }} {{ metrics.list | join: '/' }} {{ metrics.size }}",
    "{{ metrics.none | default: 'n/a' }}",
    "{{ metrics.big | plus: 0 }} {{ metrics.small }}",
    "{{ account.profile.tags.first }} {{ account.profile.tags.size }} {{ account.profile.owner.name }} {% for t in account.profile.tags %}{{ t }};{% endfor %} {{ account.profile.empty_list.size }} {{ account.profile.nothing | default: 'nil!' }}",
    "{% for pair in account.profile.owner %}{{ pair[0] }}={{ pair[1] }}{% endfor %}",
    "{{ account.profile['a&b'] }}",
    "{{ account['<k>'] }}",
    "{{ contact.name }} | {{ contact.email }} | {{ contact.title }} | {{ contact.title | escape }} | {{ contact.title | size }} | {{ contact.title | strip_html }}",
    "{{ contact.name | upcase }} {{ contact.name | size }} {{ contact.name | slice: 2, 4 }} {{ contact.name | split: ' ' | last }}",
    "{{ account.size }} {{ contact.size }} {{ links.size }} {{ program.size }} {{ step.size }}",
    "{% if contact %}a contact{% endif %}{% if account == empty %}empty{% endif %}",
    "{{ links.unsubscribe_url }} {{ links.dashboard_url }} {{ links.nps_7 }} {{ links['nps_7'] }}",
    "{{ links.missing_url }}",
    "{{ program.id }} {{ program.name }} {{ step.id }} {{ step.index | plus: 1 }} {{ step.variant | default: 'A' }}",
    "{{ now }} {{ 'now' | date: '%Y' }} {{ now | date: '%H:%M' }} {{ 'today' | date: '%d' }}",
    "{{ account.seats | times: 2 }} {{ account.arr }} {{ account.arr | divided_by: 12 }} {{ account.employees }} {{ account.id }} {{ account.stage }}",
    "{% assign a = account %}{{ a.name }} {{ a.plan }} {{ a.size }}",
    "{% assign c = contact.first_name | default: 'there' %}{% capture line %}{{ c }} at {{ account.name }}{% endcapture %}{{ line | strip }}",
    "{{ account.name | append: contact.email | upcase }} {{ contact.title | downcase | truncate: 8 }} {{ contact.first_name | default: 'there' }}",
    "{% case account.plan %}{% when 'team' %}T{% when 'a&b' %}AB{% else %}?{% endcase %}",
    "{{ account.name-}} / {{-account.plan-}} / {%- if account.seats -%} seats {%- endif -%}",
    "{{ contact.my-trait }} {{ account.my-trait }}",
    "{% if account.segments contains 'smb' %}smb{% endif %}{% if account.nickname contains '<' %}lt{% endif %}{% if account.name contains '&' %}amp{% endif %}",
    "{{ account.flag }} {% if account.flag %}on{% else %}off{% endif %} {{ account.zero }} {{ account.neg }} {{ account.float }} {{ account.whole_float }} {{ account.tiny }} {{ account.huge_float }} {{ account.float | round }} {{ account.empty_string | size }}{% if account.empty_string == empty %}E{% endif %}{% if account.empty_string == blank %}B{% endif %}",
    "{{ account.gone }}",
    "{% raw %}{{ account.name }}{% endraw %} {{ account.plan }} {% comment %}{{ contact.x }}{% endcomment %}",
    "{{ \"}}\" | append: account.nickname }}{% assign x = '%}' | append: contact.email %}{{ x }}",
    "{{ 'account' | append: account.name }} {{ \"contact.email\" | append: contact.email }}",
    "{{ account.name | divided_by: 0 }}",
    "{{ account.name | times: 'x' }}",
    "{{ account.nickname | replace: '&', 'and' }} {{ account.nickname | escape_once }} {{ account.nickname | url_encode }}",
    "{% for m in (1..3) %}{{ m }}{{ account.segments[m] }}{% endfor %} {% for s in account.segments limit: 1 %}{{ forloop.index }}{{ s }}{% endfor %}",
    "{{ account.milestones['<m>'].status }}",
    "{{ account.name }}{{ account.plan | prepend: contact.name }}{{ account.segments | first | capitalize }}",
    "Your account and your contact details, now: step by step through the program's links.",
    "",
];

/// The example workspace's templates, as written.
const EXAMPLE_TEMPLATES: &[&str] = &[
    include_str!("../../../../examples/workspace/templates/welcome.html"),
    include_str!("../../../../examples/workspace/templates/welcome.txt"),
    include_str!("../../../../examples/workspace/templates/invite_team.html"),
    include_str!("../../../../examples/workspace/templates/renewal_recap.html"),
    include_str!("../../../../examples/workspace/templates/nps.html"),
    "Welcome to Acme Analytics, {{ contact.name | default: 'there' }}",
    "{{ account.name }} has {{ account.seats }} seats: who else should see your dashboards?",
    "Hi {{ contact.name }},\n{{ account.name }}'s subscription renews on {{ account.renewal_date | date: '%-d %B %Y' }}.",
];

/// The parts a snippet is tried in: everywhere, only in plain parts, only in HTML, and in
/// the subject with HTML reading something else.
fn arrangements(snippet: &str) -> Vec<MessageTemplate> {
    let part = |source: &str| PartSource::new(source, Origin::new("templates/t.liquid", 1, 1));
    let template = |subject: Option<&str>, preheader: Option<&str>, html: &str, text: &str| MessageTemplate {
        subject: subject.map(part),
        preheader: preheader.map(part),
        html: part(html),
        text: part(text),
    };
    vec![
        template(Some("s"), None, snippet, snippet),
        template(Some("s"), Some(snippet), "<p>static</p>", snippet),
        template(Some("s"), None, snippet, "static"),
        template(Some(snippet), None, "<b>{{ contact.email }}</b>", ""),
        template(None, None, snippet, "{{ account.name }}"),
    ]
}

#[test]
fn render_builds_the_same_messages_and_errors_as_the_json_path() {
    let mut contexts = vec![acme(), hostile(), sparse()];
    contexts.extend(too_large());
    let limits = Limits::default();
    let (mut ok, mut undefined, mut failed) = (0, 0, 0);
    for snippet in SNIPPETS.iter().chain(EXAMPLE_TEMPLATES) {
        for (arrangement, template) in arrangements(snippet).iter().enumerate() {
            let parsed = match template.parse() {
                Ok(parsed) => parsed,
                Err(errors) => panic!("{snippet:?} does not parse: {errors:?}"),
            };
            for (c, context) in contexts.iter().enumerate() {
                let new = render(&parsed, context, &limits);
                let old = render_via_json(&parsed, context, &limits);
                assert_eq!(new, old, "snippet {snippet:?}, arrangement {arrangement}, context {c}");
                match new {
                    Ok(_) => ok += 1,
                    Err(RenderError::Undefined { .. }) => undefined += 1,
                    Err(_) => failed += 1,
                }
            }
        }
    }
    // The corpus exercises every outcome.
    assert!(ok > 800 && undefined > 300 && failed > 300, "ok {ok}, undefined {undefined}, failed {failed}");
}

#[test]
fn an_integer_liquid_cannot_hold_fails_as_it_did() {
    let parsed = match arrangements("{{ account.name }}").swap_remove(0).parse() {
        Ok(parsed) => parsed,
        Err(errors) => panic!("{errors:?}"),
    };
    let context = too_large().swap_remove(0);
    let expected = RenderError::Failed { part: Part::Subject, message: NumberTooLarge::MESSAGE.to_owned() };
    assert_eq!(render_via_json(&parsed, &context, &Limits::default()), Err(expected.clone()));
    assert_eq!(render(&parsed, &context, &Limits::default()), Err(expected));
}

#[test]
fn hostile_data_is_escaped_in_html_and_kept_in_text() {
    let part = |source: &str| PartSource::new(source, Origin::new("templates/t.liquid", 1, 1));
    let template = MessageTemplate {
        subject: Some(part("{{ account.plan }}")),
        preheader: None,
        html: part("<p>{{ account.name }}</p>"),
        text: part("{{ account.name }}|{{ account.profile['a&b'] }}"),
    };
    let message = match template.parse().map(|parsed| render(&parsed, &hostile(), &Limits::default())) {
        Ok(Ok(message)) => message,
        other => panic!("{other:?}"),
    };
    assert_eq!(message.subject, "a&b");
    assert_eq!(
        message.html,
        "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39; {{ 7*7 }} {% if true %}yes{% endif %}</p>"
    );
    assert_eq!(
        message.text,
        r#"<script>alert("x")</script> & 'quotes' {{ 7*7 }} {% if true %}yes{% endif %}|<i>x</i>"#
    );
}
