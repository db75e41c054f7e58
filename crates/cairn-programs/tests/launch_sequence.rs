//! The launch sequence from our customer guides, end to end on a simulated clock, with a
//! real SMTP server on loopback and a real store (SQLite and PostgreSQL): an introduction
//! email 7 days before a tech-touch, a reminder 2 days before, the tech-touch itself (an
//! NPS question), a thank-you right after the contact answers, and a reminder 2 days
//! after to those who did not. Asserted: each recipient, each send time (quiet hours in
//! each contact's time zone), each rendered subject, and that the SMTP server got exactly
//! these messages, each once, with the Message-ID the ledger holds.

#[path = "../../cairn-store/tests/common/mod.rs"]
mod common;
#[path = "../../cairn-channels/tests/support/smtp_sink.rs"]
mod smtp_sink;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_channels::{EmailTransport, SmtpSecurity, SmtpSettings};
use cairn_core::{Clock, FixedClock, Source};
use cairn_programs::engage::{self, EngagementInput, EngagementKind};
use cairn_programs::{Runner, RunnerConfig};
use cairn_runtime::Runtime;
use cairn_store::{EnrollmentStatus, Store, SubjectKind};
use cairn_workspace::{SourceFile, check_sources};
use common::{Backend, import_accounts, import_contacts, run};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use smtp_sink::{Answer, spawn_sink};

const WORKSPACE: &str = r#"
workspace:
  time_zone: Europe/Berlin
  quiet_hours: { from: '21:00', to: '08:00' }
  frequency_caps:
    email: { max: 5, per: 7d }
traits:
  account:
    launch_date: date
templates:
  intro:
    channel: email
    subject: "Coming on {{ account.launch_date | date: '%-d %B' }}: live dashboards for {{ account.name }}"
    text: "Hi {{ contact.name }}, live dashboards arrive in a week."
  reminder:
    channel: email
    subject: "Two days to go, {{ contact.name }}"
    text: "Live dashboards arrive on {{ account.launch_date }}."
  launch:
    channel: email
    subject: "Live dashboards are here. How likely are you to recommend them?"
    html: "<p>Hi {{ contact.name }},</p><p><a href=\"{{ links.nps_9 }}\">9</a> <a href=\"{{ links.nps_10 }}\">10</a></p>"
    text: "Answer here: {{ links.nps_survey_url }}"
  thanks:
    channel: email
    subject: "Thank you, {{ contact.name }}"
    text: "Your answer goes straight to the product team."
  nudge:
    channel: email
    subject: "Did you try live dashboards yet, {{ contact.name }}?"
    text: "It takes two minutes."
programs:
  - id: launch
    name: Live dashboards launch
    trigger: launch_date - 7d
    audience: email is not null
    holdout: 0%
    priority: 10
    topic: product_news
    steps:
      - id: intro
        send: email
        template: intro
      - wait: 5d
      - id: reminder
        send: email
        template: reminder
      - wait: 2d
      - id: techtouch
        send: email
        template: launch
      - id: await_answer
        wait: { until: "answered('techtouch')", timeout: 2d }
      - if: "answered('techtouch')"
        then:
          - id: thanks
            send: email
            template: thanks
        else:
          - id: nudge
            send: email
            template: nudge
"#;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

async fn contact_id(store: &Store, email: &str) -> i64 {
    store
        .engine_contacts()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.email.as_deref() == Some(email))
        .unwrap_or_else(|| panic!("no contact {email}"))
        .id
}

async fn the_launch_sequence_reaches_each_contact_at_the_right_local_time(store: Store) {
    import_accounts(
        &store,
        Source::Crm,
        "external_id,name,seats,start_date,launch_date\nA1,Acme,20,2025-06-01,2026-03-10",
    )
    .await;
    import_contacts(
        &store,
        Source::Crm,
        "external_id,account_external_id,email,name,role,timezone
C1,A1,ada@acme.example,Ada,admin,Europe/Berlin
C2,A1,bo@acme.example,Bo,user,America/New_York
C3,A1,chandra@acme.example,Chandra,user,Asia/Kolkata
C4,A1,,Dan,user,Europe/Berlin
C5,A1,eve@acme.example,Eve,user,Europe/Berlin",
    )
    .await;
    let ada = contact_id(&store, "ada@acme.example").await;
    let chandra = contact_id(&store, "chandra@acme.example").await;
    let eve = contact_id(&store, "eve@acme.example").await;
    store.set_consent(eve, "product_news", false, "preference_center", ts("2026-02-01T00:00:00Z")).await.unwrap();

    let sink = spawn_sink(Answer::Accept).await;
    let clock = Arc::new(FixedClock::new(ts("2026-03-01T12:00:00Z")));
    let files = vec![SourceFile::new("ws.yaml", WORKSPACE)];
    let ws = Arc::new(check_sources(&files).unwrap_or_else(|d| panic!("{d:#?}")));
    let runtime = Runtime::start(store.clone(), clock.clone(), ws.clone(), cairn_runtime::definitions_hash(&files))
        .await
        .unwrap();
    // The dry run, as of the trigger day: the four with an address, three samples.
    let as_of = cairn_programs::parse_as_of("2026-03-03", ws.time_zone()).unwrap();
    assert_eq!(as_of, ts("2026-03-02T23:00:00Z"));
    let live = Runtime::evaluate(&store, &FixedClock::new(as_of), ws.clone()).await.unwrap();
    let program = ws.programs()[0].clone();
    let signer = cairn_channels::LinkSigner::new(cairn_programs::PREVIEW_SECRET);
    let preview = cairn_programs::preview(&live.engine, &program, &signer, "http://cairn.test").unwrap();
    assert_eq!((preview.audience, preview.treated, preview.holdout), (4, 4, 0));
    assert_eq!(preview.trigger, "launch_date - 7d");
    let samples: Vec<(Option<&str>, &str)> =
        preview.samples.iter().map(|s| (s.to.as_deref(), s.subject_line.as_str())).collect();
    assert_eq!(samples.len(), 3, "{samples:?}");
    assert!(
        samples.iter().all(|(_, subject)| *subject == "Coming on 10 March: live dashboards for Acme"),
        "{samples:?}"
    );
    let day_before = Runtime::evaluate(&store, &FixedClock::new(ts("2026-03-01T12:00:00Z")), ws.clone()).await.unwrap();
    assert_eq!(
        cairn_programs::preview(&day_before.engine, &program, &signer, "http://cairn.test").unwrap().audience,
        0
    );
    assert!(store.program_enrollments("launch").await.unwrap().is_empty(), "a preview enrolls nobody");

    let mut config = RunnerConfig::new("node-a");
    let mut smtp = SmtpSettings::new("127.0.0.1", sink.port);
    smtp.security = SmtpSecurity::None;
    smtp.timeout = Duration::from_secs(5);
    config.email = EmailTransport::Smtp(smtp);
    config.message_id_domain = "cairn.test".into();
    let runner = Runner::new(store.clone(), runtime.clone(), clock.clone(), config).await.unwrap();

    // Twelve days in half-hour passes; the answers arrive between passes.
    let answers = [(ts("2026-03-10T09:10:00Z"), ada), (ts("2026-03-10T17:00:00Z"), chandra)];
    let mut t = clock.now();
    let end = ts("2026-03-13T00:00:00Z");
    while t <= end {
        for (at, who) in answers {
            if at > t - SignedDuration::from_mins(30) && at <= t {
                clock.set(at);
                answer(&store, &ws, who, at).await;
                runtime.catch_up().await.unwrap();
                runner.run_once().await.unwrap();
            }
        }
        clock.set(t);
        runtime.catch_up().await.unwrap();
        runner.run_once().await.unwrap();
        t += SignedDuration::from_mins(30);
    }

    // What the ledger says was sent, to whom and when.
    let enrollments = store.program_enrollments("launch").await.unwrap();
    let mut sent: Vec<(String, String, Timestamp, String)> = Vec::new();
    let mut by_email: BTreeMap<i64, String> = BTreeMap::new();
    for c in store.engine_contacts().await.unwrap() {
        by_email.insert(c.id, c.email.unwrap_or_default());
    }
    let mut skipped = Vec::new();
    let mut message_ids = Vec::new();
    for e in &enrollments {
        assert_eq!(e.subject_kind, SubjectKind::Contact);
        assert_eq!(e.status, EnrollmentStatus::Completed, "{e:?}");
        for l in store.ledger_for_enrollment(e.id).await.unwrap() {
            let detail: serde_json::Value = serde_json::from_str(&l.detail).unwrap();
            let who = by_email[&e.subject_id].clone();
            if l.outcome == "sent" {
                sent.push((who, l.step_id.clone(), l.at, detail["subject"].as_str().unwrap().to_string()));
                message_ids.push(l.message_id.clone().unwrap());
            } else if l.outcome.starts_with("skipped") {
                skipped.push((who, l.step_id.clone(), l.outcome.clone()));
            }
        }
    }
    sent.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    let got: Vec<String> =
        sent.iter().map(|(who, step, at, subject)| format!("{at} {who} {step}: {subject}")).collect();
    let expected = vec![
        // The trigger day starts at midnight in Berlin (23:00Z): 18:00 in New York, fine;
        // 04:30 in Kolkata and midnight in Berlin are quiet, so those wait for 08:00 local.
        "2026-03-02T23:00:00Z bo@acme.example intro: Coming on 10 March: live dashboards for Acme",
        "2026-03-03T02:30:00Z chandra@acme.example intro: Coming on 10 March: live dashboards for Acme",
        "2026-03-03T07:00:00Z ada@acme.example intro: Coming on 10 March: live dashboards for Acme",
        // Five days after each intro.
        "2026-03-07T23:00:00Z bo@acme.example reminder: Two days to go, Bo",
        "2026-03-08T02:30:00Z chandra@acme.example reminder: Two days to go, Chandra",
        "2026-03-08T07:00:00Z ada@acme.example reminder: Two days to go, Ada",
        // Two days later: the tech-touch (New York is on daylight time since 8 March: 19:00).
        "2026-03-09T23:00:00Z bo@acme.example techtouch: Live dashboards are here. How likely are you to recommend them?",
        "2026-03-10T02:30:00Z chandra@acme.example techtouch: Live dashboards are here. How likely are you to recommend them?",
        "2026-03-10T07:00:00Z ada@acme.example techtouch: Live dashboards are here. How likely are you to recommend them?",
        // Ada answers at 10:10 Berlin: thanked at once.
        "2026-03-10T09:10:00Z ada@acme.example thanks: Thank you, Ada",
        // Chandra answers at 22:30 in Kolkata: thanked at 08:00 there.
        "2026-03-11T02:30:00Z chandra@acme.example thanks: Thank you, Chandra",
        // Bo never answers: reminded when the two-day wait runs out.
        "2026-03-11T23:00:00Z bo@acme.example nudge: Did you try live dashboards yet, Bo?",
    ];
    assert_eq!(got, expected, "\n{}", got.join("\n"));
    // Dan has no address (not in the audience); Eve unsubscribed from the topic.
    assert!(enrollments.iter().all(|e| !by_email[&e.subject_id].is_empty()), "Dan is not enrolled");
    let eve_skips: Vec<&(String, String, String)> = skipped.iter().filter(|s| s.0 == "eve@acme.example").collect();
    assert_eq!(eve_skips.len(), 4, "{skipped:?}");
    assert!(eve_skips.iter().all(|s| s.2 == "skipped_consent"));

    // The SMTP server got exactly those twelve, each once, with the ledger's Message-IDs.
    let received = sink.received.lock().unwrap().clone();
    assert_eq!(received.len(), 12);
    let mut seen_ids: Vec<String> = received
        .iter()
        .map(|m| {
            let line = m.data.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).unwrap();
            line["message-id:".len()..].trim().to_string()
        })
        .collect();
    seen_ids.sort();
    message_ids.sort();
    assert_eq!(seen_ids, message_ids);
    let subjects: Vec<&str> = received
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.contains("bo@acme.example")))
        .map(|m| m.data.lines().find(|l| l.starts_with("Subject:")).unwrap())
        .collect();
    assert_eq!(
        subjects,
        vec![
            "Subject: Coming on 10 March: live dashboards for Acme",
            "Subject: Two days to go, Bo",
            "Subject: Live dashboards are here. How likely are you to recommend them?",
            "Subject: Did you try live dashboards yet, Bo?",
        ]
    );
    // Sends and the answers are events of each contact.
    let events = store.events_after(0, 1000).await.unwrap();
    let names: Vec<&str> =
        events.iter().filter(|e| e.contact_id == Some(ada)).filter_map(|e| e.name.as_deref()).collect();
    assert_eq!(names, vec!["email_sent", "email_sent", "email_sent", "nps_submitted", "email_sent"]);
}

/// What the survey route does with a signed answer: records it (once) and wakes the wait.
async fn answer(store: &Store, ws: &cairn_workspace::Workspace, contact: i64, at: Timestamp) {
    let enrollment = store.last_enrollment("launch", SubjectKind::Contact, contact).await.unwrap().unwrap();
    let input = EngagementInput {
        enrollment_id: enrollment.id,
        step_id: "techtouch".into(),
        contact_id: Some(contact),
        kind: EngagementKind::Answered,
        at,
        detail: json!({"survey": "nps", "score": 9}),
    };
    assert!(engage::record(store, Some(ws), &input).await.unwrap());
    assert!(!engage::record(store, Some(ws), &input).await.unwrap(), "an answer counts once");
}

#[tokio::test]
async fn sqlite_the_launch_sequence_reaches_each_contact_at_the_right_local_time() {
    run(Backend::Sqlite, "launch sequence", the_launch_sequence_reaches_each_contact_at_the_right_local_time).await;
}

#[tokio::test]
async fn postgres_the_launch_sequence_reaches_each_contact_at_the_right_local_time() {
    run(Backend::Postgres, "launch sequence", the_launch_sequence_reaches_each_contact_at_the_right_local_time).await;
}
