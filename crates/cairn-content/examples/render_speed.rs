//! How long `cairn_content::render` takes for one typical email, beside liquid alone
//! rendering the same sources with a context built once (the floor render cannot go
//! below: no context to build, no escaping, no limits).
//!
//! ```sh
//! cargo run --release -p cairn-content --example render_speed            # 100,000 messages
//! cargo run --release -p cairn-content --example render_speed -- 20000    # fewer
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use cairn_content::{
    AccountData, ContactData, HealthData, Limits, MessageTemplate, MilestoneData, Origin, PartSource, RenderContext,
    render,
};
use serde_json::json;

const SUBJECT: &str = "{{ contact.first_name }}, your {{ account.name }} dashboard is ready";
const HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif">
<p>Hi {{ contact.first_name }},</p>
<p>Your team at {{ account.name }} has {{ account.seats }} seats on the {{ account.plan }} plan{% if account.industry %}, and teams in {{ account.industry }} love this one{% endif %}.</p>
<p><a href="{{ links.dashboard }}" style="color: #0b5">Open your dashboard</a></p>
<p>Questions? Write to {{ account.owner_email | default: "support@cairn.test" }}.</p>
<p style="font-size: 12px"><a href="{{ links.unsubscribe_url }}">Unsubscribe</a></p>
</body></html>"#;
const TEXT: &str = "Hi {{ contact.first_name }},

Your team at {{ account.name }} has {{ account.seats }} seats on the {{ account.plan }} plan.
Open your dashboard: {{ links.dashboard }}

Unsubscribe: {{ links.unsubscribe_url }}";

fn part(source: &str) -> PartSource {
    PartSource::new(source, Origin::new("templates/dashboard_ready.liquid", 1, 1))
}

/// An account with 15 traits, a contact with 8, a few metrics, milestones and health.
fn context() -> RenderContext {
    let at = |s: &str| s.parse::<jiff::Timestamp>().ok();
    let account = AccountData {
        id: "acc_01HZX3K9".into(),
        name: Some("Acme Logistics".into()),
        plan: Some("team".into()),
        seats: Some(40),
        arr_cents: Some(2_400_050),
        traits: BTreeMap::from([
            ("industry".into(), json!("Logistics & Freight")),
            ("employees".into(), json!(180)),
            ("owner_email".into(), json!("sam.owner@cairn.test")),
            ("start_date".into(), json!("2025-04-01")),
            ("renewal_date".into(), json!("2026-04-01")),
            ("country".into(), json!("DE")),
            ("region".into(), json!("EMEA")),
            ("crm_id".into(), json!("0015g00000XyZ12AAB")),
            ("billing_cycle".into(), json!("annual")),
            ("discount".into(), json!(0.15)),
            ("sso_enabled".into(), json!(true)),
            ("api_calls_quota".into(), json!(1_000_000)),
            ("csm_name".into(), json!("Priya O'Neil")),
            ("tags".into(), json!(["priority", "expansion"])),
            ("integrations".into(), json!({ "slack": true, "salesforce": false })),
        ]),
        stage: Some("adoption".into()),
        segments: vec!["smb".into(), "eu".into(), "logistics".into()],
        health: Some(HealthData {
            score: 72.5,
            band: "green".into(),
            pillars: BTreeMap::from([
                ("adoption".into(), 68.0),
                ("engagement".into(), 75.25),
                ("onboarding".into(), 90.0),
                ("support".into(), 55.0),
            ]),
        }),
        milestones: BTreeMap::from([
            ("invited_team".into(), MilestoneData { status: "achieved".into(), at: at("2025-04-09T10:12:00Z") }),
            ("first_report".into(), MilestoneData { status: "achieved".into(), at: at("2025-04-15T08:00:00Z") }),
            ("connected_source".into(), MilestoneData { status: "missed".into(), at: at("2025-05-01T00:00:00Z") }),
            ("sso_setup".into(), MilestoneData { status: "pending".into(), at: None }),
        ]),
    };
    let contact = ContactData {
        id: "c_01HZX3M2".into(),
        email: "ada.lovelace@acme.test".into(),
        name: Some("Ada Lovelace".into()),
        first_name: None,
        role: Some("admin".into()),
        timezone: Some("Europe/Berlin".into()),
        traits: BTreeMap::from([
            ("title".into(), json!("Head of Operations")),
            ("department".into(), json!("Operations")),
            ("locale".into(), json!("en-GB")),
            ("signup_source".into(), json!("webinar")),
            ("last_login_days".into(), json!(2)),
            ("reports_created".into(), json!(37)),
            ("beta_opt_in".into(), json!(false)),
            ("phone".into(), json!("+49 30 1234567")),
        ]),
    };
    RenderContext::new(account, contact, "2026-03-02T09:00:00Z".parse().unwrap_or_default())
        .metric("reports_30d", 30)
        .metric("active_users_7d", 18)
        .metric("adoption_rate", 0.45)
        .link("dashboard", "https://cairn.test/c/AbC123xyz?u=https%3A%2F%2Fapp.acme.test%2Fdashboards&s=9f8e7d6c5b4a")
        .link("unsubscribe_url", "https://cairn.test/u/eyJjIjoxLCJ0IjoyfQ.Zm9vYmFy")
        .sent_by("dashboard-ready", "Dashboard ready", "send-1", 0)
}

fn main() {
    let messages: u32 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let template =
        MessageTemplate { subject: Some(part(SUBJECT)), preheader: None, html: part(HTML), text: part(TEXT) };
    let parsed = match template.parse() {
        Ok(parsed) => parsed,
        Err(errors) => {
            eprintln!("the template does not parse: {errors:?}");
            std::process::exit(1);
        }
    };
    let context = context();
    let limits = Limits::default();
    match render(&parsed, &context, &limits) {
        Ok(message) => println!("subject: {}\n{}\n", message.subject, message.html),
        Err(error) => {
            eprintln!("the template does not render: {error}");
            std::process::exit(1);
        }
    }

    // Warm up, then measure.
    for _ in 0..messages / 10 {
        black_box(render(&parsed, black_box(&context), &limits).ok());
    }
    let started = Instant::now();
    for _ in 0..messages {
        black_box(render(&parsed, black_box(&context), &limits).ok());
    }
    let cairn = started.elapsed().as_secs_f64() * 1e6 / f64::from(messages);

    // The peer: liquid's own parser with what the template uses, the context converted once.
    use liquid_lib::stdlib;
    let builder = liquid::ParserBuilder::new().block(stdlib::IfBlock).block(stdlib::ForBlock).filter(stdlib::Default);
    let parser = match builder.build() {
        Ok(parser) => parser,
        Err(error) => {
            eprintln!("cannot set up liquid: {error}");
            std::process::exit(1);
        }
    };
    let sources = [SUBJECT, HTML, TEXT];
    let templates: Vec<liquid::Template> = sources.iter().filter_map(|s| parser.parse(s).ok()).collect();
    let globals = match liquid::to_object(&context.to_json()) {
        Ok(globals) => globals,
        Err(error) => {
            eprintln!("cannot convert the context: {error}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    for _ in 0..messages {
        for template in &templates {
            black_box(template.render(black_box(&globals)).ok());
        }
    }
    let peer = started.elapsed().as_secs_f64() * 1e6 / f64::from(messages);

    println!(
        "{messages} messages (subject, HTML, text; {} account traits, {} contact traits)",
        context.account.traits.len(),
        context.contact.traits.len()
    );
    println!("cairn_content::render                        {cairn:>7.2} µs/message");
    println!("peer: liquid alone, context converted once   {peer:>7.2} µs/message");
}
