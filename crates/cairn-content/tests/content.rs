//! Message content from the outside: a template as a workspace holds it, checked, then
//! rendered for a recipient.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_content::*;
use serde_json::json;

fn part(source: &str) -> PartSource {
    PartSource::new(source, Origin::new("templates/t.liquid", 1, 1))
}

fn template(subject: &str, html: &str, text: &str) -> MessageTemplate {
    MessageTemplate { subject: Some(part(subject)), preheader: None, html: part(html), text: part(text) }
}

fn parse(subject: &str, html: &str, text: &str) -> ParsedTemplate {
    template(subject, html, text).parse().expect("template parses")
}

fn now() -> jiff::Timestamp {
    "2026-03-02T09:00:00Z".parse().unwrap()
}

fn acme() -> RenderContext {
    let account = AccountData {
        id: "acc_1".into(),
        name: Some("Acme".into()),
        plan: Some("team".into()),
        seats: Some(40),
        arr_cents: Some(2_400_000),
        traits: BTreeMap::from([("industry".into(), json!("Logistics"))]),
        stage: Some("adoption".into()),
        segments: vec!["smb".into()],
        health: Some(HealthData {
            score: 64.0,
            band: "yellow".into(),
            pillars: BTreeMap::from([("adoption".into(), 58.0), ("onboarding".into(), 90.0)]),
        }),
        milestones: BTreeMap::from([(
            "invited_team".into(),
            MilestoneData { status: "achieved".into(), at: Some("2026-02-10T12:30:00Z".parse().unwrap()) },
        )]),
    };
    let contact = ContactData {
        id: "c_1".into(),
        email: "ada@acme.test".into(),
        name: Some("Ada Lovelace".into()),
        role: Some("admin".into()),
        ..ContactData::default()
    };
    RenderContext::new(account, contact, now())
}

fn render_text(source: &str, context: &RenderContext) -> Result<String, RenderError> {
    let parsed = parse("s", "", source);
    render(&parsed, context, &Limits::default()).map(|m| m.text)
}

fn render_html(source: &str, context: &RenderContext) -> Result<String, RenderError> {
    let parsed = parse("s", source, "");
    render(&parsed, context, &Limits::default()).map(|m| m.html)
}

fn hostile(value: &str) -> RenderContext {
    let mut context = acme();
    context.contact.name = Some(value.to_owned());
    context.account.traits.insert("nickname".into(), json!(value));
    context
}

// --- escaping ---------------------------------------------------------------------------

#[test]
fn script_tags_in_a_trait_are_text_in_html() {
    let context = hostile("<script>alert(1)</script>");
    let html = render_html("<p>Hi {{ contact.name }}</p>", &context).unwrap();
    assert_eq!(html, "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>");
    // The plain-text part is not HTML: the data is as it is.
    assert_eq!(render_text("Hi {{ contact.name }}", &context).unwrap(), "Hi <script>alert(1)</script>");
}

#[test]
fn quotes_in_data_cannot_break_out_of_an_attribute() {
    let context = hostile(r#"x" onmouseover="alert(1)' y"#);
    let html = render_html(r#"<a title="{{ account.nickname }}" data-x='{{ contact.name }}'>"#, &context).unwrap();
    assert_eq!(
        html,
        r#"<a title="x&quot; onmouseover=&quot;alert(1)&#39; y" data-x='x&quot; onmouseover=&quot;alert(1)&#39; y'>"#
    );
}

#[test]
fn liquid_in_data_is_never_run() {
    let context = hostile("{{ 7*7 }} {% raw %}{{ contact.email }}{% endraw %} {{ links.unsubscribe_url }}");
    assert_eq!(
        render_text("{{ contact.name }}", &context).unwrap(),
        "{{ 7*7 }} {% raw %}{{ contact.email }}{% endraw %} {{ links.unsubscribe_url }}"
    );
    assert_eq!(
        render_html("{{ account.nickname }}", &context).unwrap(),
        "{{ 7*7 }} {% raw %}{{ contact.email }}{% endraw %} {{ links.unsubscribe_url }}"
    );
}

#[test]
fn the_template_authors_markup_stays_and_escape_is_not_doubled() {
    let context = hostile("Tom & Jerry");
    let html =
        render_html(r#"<b class="x">{{ contact.name }}</b> {{ contact.name | escape }} {{ "<i>ok</i>" }}"#, &context)
            .unwrap();
    assert_eq!(html, r#"<b class="x">Tom &amp; Jerry</b> Tom &amp; Jerry <i>ok</i>"#);
}

#[test]
fn emoji_and_accents_pass_through_untouched() {
    let context = hostile("Zoë 🎉 日本");
    assert_eq!(render_html("{{ contact.name }}!", &context).unwrap(), "Zoë 🎉 日本!");
    assert_eq!(render_text("{{ contact.name | upcase }}", &context).unwrap(), "ZOË 🎉 日本");
}

#[test]
fn subject_lines_cannot_carry_line_breaks() {
    let context = hostile("Ada\r\nBcc: everyone@example.test");
    let parsed = parse("Hello {{ contact.name }}\n", "", "");
    let message = render(&parsed, &context, &Limits::default()).unwrap();
    assert_eq!(message.subject, "Hello Ada Bcc: everyone@example.test");
}

// --- undefined variables --------------------------------------------------------------

fn schema() -> ContextSchema {
    ContextSchema {
        account_traits: ["nickname".to_owned()].into(),
        milestones: ["invited_team".to_owned()].into(),
        pillars: ["adoption".to_owned(), "onboarding".to_owned()].into(),
        metrics: ["reports_30d".to_owned()].into(),
        benchmarks: ["reports_30d".to_owned()].into(),
        leaderboards: ["report_created".to_owned()].into(),
        ..ContextSchema::default()
    }
}

fn check(html: &str) -> Vec<String> {
    let parsed = parse("Hi", html, "");
    check_variables(&parsed, &schema()).iter().map(ToString::to_string).collect()
}

#[test]
fn a_misspelt_root_is_a_check_error_with_a_suggestion() {
    assert_eq!(
        check("<p>\n  {{ acount.name }}</p>"),
        ["templates/t.liquid:2:6: html: unknown variable `acount`, did you mean `account`?"]
    );
}

#[test]
fn a_misspelt_builtin_field_is_a_check_error() {
    assert_eq!(
        check("{{ account.nme }}"),
        ["templates/t.liquid:1:12: html: `account` has no field `nme`, did you mean `name`?"]
    );
    assert_eq!(
        check("{{ account.health.pillars.adoptoin }}"),
        ["templates/t.liquid:1:27: html: `account.health.pillars` has no field `adoptoin`, did you mean `adoption`?"]
    );
    assert_eq!(
        check("{{ account.milestones.first_value.status }}"),
        ["templates/t.liquid:1:23: html: `account.milestones` has no field `first_value`"]
    );
    assert_eq!(check("{{ account.segments.name }}").len(), 1);
}

#[test]
fn declared_names_locals_and_trait_contents_pass_the_check() {
    let html = "{% assign best = insights.leaderboard.report_created.top.first %}{{ best.name }}\
        {% for u in insights.leaderboard['report_created'].bottom %}{{ u.email }}{{ forloop.index }}{% endfor %}\
        {{ account.nickname.anything }}{{ account.segments.size }}{{ contact.name.size }}\
        {% if account.milestones.invited_team.status == 'achieved' %}{{ metrics.reports_30d }}{% endif %}\
        {{ insights.benchmark.reports_30d.percentile }}{{ links.unsubscribe_url }}{{ now | date: '%Y' }}\
        {% raw %}{{ not_checked }}{% endraw %}";
    assert_eq!(check(html), Vec::<String>::new());
}

#[test]
fn undeclared_trait_metric_and_leaderboard_are_check_errors() {
    let errors = check("{{ account.nickame }} {{ metrics.logins }} {{ insights.leaderboard.login.top }}");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].contains("did you mean `nickname`?"), "{errors:?}");
}

#[test]
fn a_value_missing_at_render_time_is_an_error_not_a_blank() {
    let context = acme();
    assert_eq!(
        render_text("Renewal on {{ account.renewal_date }}", &context),
        Err(RenderError::Undefined { part: Part::Text, name: "account.renewal_date".into() })
    );
    assert_eq!(
        render_html("{{ insights.benchmark.reports_30d.percentile }}", &context),
        Err(RenderError::Undefined { part: Part::Html, name: "insights.benchmark.reports_30d".into() })
    );
    // Guarded, it is fine.
    assert_eq!(render_text("{% if account.renewal_date %}soon{% else %}-{% endif %}", &context).unwrap(), "-");
    let error = render_text("{{ links.unsubscribe_url }}", &context).unwrap_err();
    assert_eq!(
        error.to_string(),
        "text: `links.unsubscribe_url` is not defined for this recipient; guard it with {% if links.unsubscribe_url %} or supply it"
    );
}

#[test]
fn an_empty_subject_is_an_error() {
    let parsed = parse("{% if contact.role == 'owner' %}For owners{% endif %}  ", "x", "x");
    assert_eq!(render(&parsed, &acme(), &Limits::default()), Err(RenderError::EmptySubject));
}

#[test]
fn a_message_without_a_subject_renders_with_an_empty_one() {
    let mut t = template("unused", "", "Hi {{ contact.first_name }}, your report is ready");
    t.subject = None;
    let message = render(&t.parse().expect("parses"), &acme(), &Limits::default()).expect("renders");
    assert_eq!(message.subject, "");
    assert_eq!(message.text, "Hi Ada, your report is ready");
}

// --- syntax errors ---------------------------------------------------------------------

#[test]
fn syntax_errors_point_into_the_workspace_file() {
    let mut t = template("Hi", "<p>\n  {{ contact.name | }}</p>", "ok");
    t.html.origin = Origin::new("workspace/templates.yaml", 12, 11).with_indent(6);
    t.subject = Some(PartSource::new("Hi", Origin::new("workspace/templates.yaml", 10, 14)));
    let errors = t.parse().unwrap_err();
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!((e.part, e.line, e.column), (Part::Html, 13, 6 + 21));
    assert_eq!(e.to_string(), "workspace/templates.yaml:13:27: html: Liquid syntax error: expected Identifier");
}

#[test]
fn an_unclosed_block_points_at_the_tag_left_open() {
    let t = template("Hi", "<p>\n  {% for u in account.segments %}{% if u %}{{ u }}{% endif %}\n</p>", "ok");
    let errors = t.parse().unwrap_err();
    let got: Vec<(u32, u32, &str, Option<&str>)> =
        errors.iter().map(|e| (e.line, e.column, e.message.as_str(), e.help.as_deref())).collect();
    assert_eq!(got, [(2, 3, "Liquid syntax error: `{% for %}` is never closed", Some("close it with `{% endfor %}`"))]);
}

#[test]
fn every_part_reports_its_own_syntax_error() {
    let t = template("{% if x %}", "{% bogus %}", "x\n{{ a | upcse }}");
    let errors = t.parse().unwrap_err();
    let shown: Vec<(Part, u32, u32, String, Option<String>)> =
        errors.into_iter().map(|e| (e.part, e.line, e.column, e.message, e.help)).collect();
    assert_eq!(shown[1], (Part::Html, 1, 4, "unknown tag `bogus`".to_owned(), shown[1].4.clone()));
    assert_eq!(
        shown[2],
        (Part::Text, 2, 8, "unknown filter `upcse`".to_owned(), Some("did you mean `upcase`?".to_owned()))
    );
    assert_eq!(
        shown[0],
        (
            Part::Subject,
            1,
            1,
            "Liquid syntax error: `{% if %}` is never closed".to_owned(),
            Some("close it with `{% endif %}`".to_owned())
        )
    );
}

#[test]
fn include_and_render_are_not_available() {
    let errors = template("x", "{% include 'header' %}", "x").parse().unwrap_err();
    assert_eq!(errors[0].message, "unknown tag `include`");
}

// --- limits ----------------------------------------------------------------------------

#[test]
fn a_huge_range_is_refused_at_parse_time() {
    let errors = template("x", "{% for i in (1..100000000) %}x{% endfor %}", "x").parse().unwrap_err();
    assert_eq!(errors[0].message, "the range (1..100000000) is longer than 10000");
    let errors = template("x", "{% for i in (1..account.seats) %}x{% endfor %}", "x").parse().unwrap_err();
    assert_eq!((errors[0].line, errors[0].column), (1, 13));
}

#[test]
fn nested_loops_that_print_too_much_stop_at_the_size_limit() {
    let source = "{% for a in (1..10000) %}{% for b in (1..10000) %}xxxxxxxxxx{% endfor %}{% endfor %}";
    let parsed = parse("s", source, "");
    let limits = Limits { max_bytes_per_part: 256 * 1024, time_budget: Duration::from_secs(30) };
    assert_eq!(render(&parsed, &acme(), &limits), Err(RenderError::TooLarge { part: Part::Html, limit: 256 * 1024 }));
}

#[test]
fn silent_nested_loops_stop_at_the_time_budget() {
    let source = "{% for a in (1..10000) %}{% for b in (1..10000) %}{% assign x = b %}{% endfor %}{% endfor %}done";
    let parsed = parse("s", "", source);
    let limits = Limits { max_bytes_per_part: 1024, time_budget: Duration::from_millis(50) };
    let started = std::time::Instant::now();
    assert_eq!(
        render(&parsed, &acme(), &limits),
        Err(RenderError::TooSlow { part: Part::Text, budget: limits.time_budget })
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_string_doubling_loop_stops_at_the_size_limit() {
    let source = "{% assign s = 'ab' %}{% for i in (1..64) %}{% assign s = s | append: s %}{% endfor %}{{ s.size }}";
    let parsed = parse("s", "", source);
    assert_eq!(
        render(&parsed, &acme(), &Limits::default()),
        Err(RenderError::TooLarge { part: Part::Text, limit: 256 * 1024 })
    );
}

#[test]
fn date_now_is_the_contexts_now_not_the_wall_clock() {
    assert_eq!(
        render_text("{{ 'now' | date: '%Y-%m-%d' }} {{ now | date: '%B %-d' }}", &acme()).unwrap(),
        "2026-03-02 March 2"
    );
}

#[test]
fn calendar_dates_format_with_date_like_instants() {
    assert_eq!(
        render_text("{{ '2027-01-14' | date: '%-d %B %Y' }} {{ '2027-01-14 09:30:00 +0100' | date: '%H:%M' }} {{ '2027-1-4' | date: '%Y' }}", &acme()).unwrap(),
        "14 January 2027 09:30 2027-1-4"
    );
}

// --- the story ------------------------------------------------------------------------

fn story_context() -> RenderContext {
    let users = [
        UserCount { name: "Grace".into(), email: "grace@acme.test".into(), count: 42 },
        UserCount { name: "Alan".into(), email: "alan@acme.test".into(), count: 17 },
        UserCount { name: "Edsger".into(), email: "edsger@acme.test".into(), count: 17 },
        UserCount { name: "Barbara".into(), email: "barbara@acme.test".into(), count: 3 },
        UserCount { name: "Ken <K&R>".into(), email: "ken@acme.test".into(), count: 0 },
    ];
    let peers = [4.0, 8.0, 12.0, 20.0, 25.0, 30.0, 41.0, 60.0];
    acme()
        .metric("reports_30d", 30)
        .benchmark("reports_30d", benchmark(30.0, &peers).unwrap())
        .leaderboard("report_created", leaderboard(&users, 2))
        .link("unsubscribe_url", "https://cairn.test/u/sig?c=1&t=2")
        .link("dashboard_url", "https://app.acme.test/dashboards")
        .sent_by("adoption-story", "Adoption story", "send-1", 0)
}

const STORY_SUBJECT: &str = "{{ account.name }} built {{ metrics.reports_30d }} reports this month";
const STORY_HTML: &str = r#"<h1>{{ contact.first_name }}, your team is ahead of {{ insights.benchmark.reports_30d.percentile }}% of teams like yours</h1>
<ul>
<li>{{ metrics.reports_30d }} reports in 30 days; similar teams build {{ insights.benchmark.reports_30d.median }}.</li>
{%- assign champ = insights.leaderboard.report_created.top.first %}
<li>{{ champ.name }} leads with {{ champ.count }} reports.</li>
<li>{% for u in insights.leaderboard.report_created.bottom %}{{ u.name }} ({{ u.count }}){% unless forloop.last %}, {% endunless %}{% endfor %} could use a hand.</li>
</ul>
<p><a href="{{ links.dashboard_url }}">Share a dashboard</a> · <a href="mailto:{{ champ.email }}">Ask {{ champ.name }} for tips</a> · <a href="{{ links.unsubscribe_url }}">Unsubscribe</a></p>"#;
const STORY_TEXT: &str = r#"{{ contact.first_name }}, your team is ahead of {{ insights.benchmark.reports_30d.percentile }}% of teams like yours.
- {{ metrics.reports_30d }} reports in 30 days (top quarter starts at {{ insights.benchmark.reports_30d.p75 }}).
{%- for u in insights.leaderboard.report_created.top %}
- #{{ u.rank }} {{ u.name }}: {{ u.count }}
{%- endfor %}
Share a dashboard: {{ links.dashboard_url }}
Unsubscribe: {{ links.unsubscribe_url }}"#;

#[test]
fn the_adoption_story_renders_exactly() {
    let mut t = template(STORY_SUBJECT, STORY_HTML, STORY_TEXT);
    t.preheader =
        Some(part("{{ insights.benchmark.reports_30d.peers }} peers, {{ account.segments.first | upcase }} segment"));
    let parsed = t.parse().unwrap();
    let schema = ContextSchema { links: ["dashboard_url".to_owned()].into(), ..schema() };
    assert_eq!(check_variables(&parsed, &schema), []);
    let message = render(&parsed, &story_context(), &Limits::default()).unwrap();
    assert_eq!(message.subject, "Acme built 30 reports this month");
    assert_eq!(message.preheader.as_deref(), Some("8 peers, SMB segment"));
    // 30 among 4, 8, 12, 20, 25, 30, 41, 60: 5 below, 1 equal → (5 + 0.5) / 8 = 68.75 → 69;
    // median (20 + 25) / 2 = 22.5; p75 at 5.25 → 30 + 0.25 × 11 = 32.75.
    assert_eq!(
        message.html,
        r#"<h1>Ada, your team is ahead of 69% of teams like yours</h1>
<ul>
<li>30 reports in 30 days; similar teams build 22.5.</li>
<li>Grace leads with 42 reports.</li>
<li>Ken &lt;K&amp;R&gt; (0), Barbara (3) could use a hand.</li>
</ul>
<p><a href="https://app.acme.test/dashboards">Share a dashboard</a> · <a href="mailto:grace@acme.test">Ask Grace for tips</a> · <a href="https://cairn.test/u/sig?c=1&amp;t=2">Unsubscribe</a></p>"#
    );
    assert_eq!(
        message.text,
        "Ada, your team is ahead of 69% of teams like yours.
- 30 reports in 30 days (top quarter starts at 32.75).
- #1 Grace: 42
- #2 Alan: 17
Share a dashboard: https://app.acme.test/dashboards
Unsubscribe: https://cairn.test/u/sig?c=1&t=2"
    );
}

#[test]
fn default_gives_a_missing_value_its_fallback_as_liquid_defines_it() {
    let mut nameless = acme();
    nameless.contact.name = None;
    let welcome = "Welcome, {{ contact.name | default: 'there' }}!";
    assert_eq!(render_text(welcome, &nameless).unwrap(), "Welcome, there!");
    assert_eq!(render_html(welcome, &nameless).unwrap(), "Welcome, there!");
    assert_eq!(render_text(welcome, &acme()).unwrap(), "Welcome, Ada Lovelace!");
    // Deeper paths and conditions beside it; an assignment from a chain starting with it.
    let guarded = "{% if contact.name %}named{% endif %}{{ contact.name | default: 'x' }} {{ account.health.pillars.nope | default: 0 }} {% assign who = account.renewal_date | default: 'soon' %}{{ who }}";
    assert_eq!(render_text(guarded, &nameless).unwrap(), "x 0 soon");
    // Used any other way, a missing value is still an error, not a blank.
    assert_eq!(
        render_text("{{ contact.name | default: 'there' }} / {{ contact.name }}", &nameless),
        Err(RenderError::Undefined { part: Part::Text, name: "contact.name".into() })
    );
    assert_eq!(
        render_text("{{ 'Hi ' | append: contact.name | default: 'there' }}", &nameless),
        Err(RenderError::Undefined { part: Part::Text, name: "contact.name".into() })
    );
}

#[test]
fn templates_nested_too_deeply_are_refused_before_liquid_parses_them() {
    let nest = |depth: usize| format!("{}x{}", "{% if a %}".repeat(depth), "{% endif %}".repeat(depth));
    assert!(template("s", "", &nest(MAX_NESTING)).parse().is_ok());
    for depth in [MAX_NESTING + 1, 5_000, 100_000] {
        let errors = template("s", "", &format!("line one\n{}", nest(depth))).parse().unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].message, format!("templates may nest blocks at most {MAX_NESTING} deep"));
        assert_eq!((errors[0].part, errors[0].line, errors[0].column), (Part::Text, 2, 1 + MAX_NESTING as u32 * 10));
    }
    let indexes = format!("{{{{ {}0{} }}}}", "a[".repeat(10_000), "]".repeat(10_000));
    let errors = template("s", &indexes, "").parse().unwrap_err();
    assert_eq!(errors[0].message, format!("templates may nest indexes (`a[b[c]]`) at most {MAX_NESTING} deep"));
}
