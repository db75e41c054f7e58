//! What a recipient's clicks reach, over real HTTP on loopback, on both backends: the
//! signed links in a message (open pixel, click redirect, unsubscribe, survey answers
//! and page), the mail provider's bounce and complaint webhook, the in-app inbox a
//! product embeds, and the tasks CSMs work through. Sends are set up directly in the
//! store (enrolled, claimed, recorded in the ledger) as the runner would leave them; their
//! steps fall due a day after the server's clock, so the server's own runner leaves them
//! to the test.

mod common;

use cairn_channels::{Link, LinkKind, LinkSigner, LinkSubject, Survey};
use cairn_store::{LedgerEntry, NewTask, SubjectKind, TaskPriority};
use common::{TestApp, test_now};
use jiff::SignedDuration;
use serde_json::{Value, json};

const WORKSPACE: &str = r#"
segments:
  - { id: admins, of: contact, where: "role = 'admin'" }
templates:
  welcome:
    channel: email
    subject: Welcome
    text: Hello
programs:
  - id: onboarding
    trigger: segment_entered('admins')
    topic: product_tips
    steps:
      - send: email
        template: welcome
"#;

const MESSAGE_ID: &str = "<x@cairn.test>";

/// A message that went out: its enrollment, the contact and the link subject.
struct Sent {
    enrollment: i64,
    contact: i64,
    step: String,
    subject: LinkSubject,
}

/// Identifies `user` (with `email`) through the tracking API and records a send of
/// `step` on `channel` to them in `program`, as the runner would.
async fn sent(app: &TestApp, user: &str, email: &str, program: &str, step: &str, channel: &str) -> Sent {
    let body = json!({ "userId": user, "traits": { "email": email, "name": user } }).to_string();
    let r = app.post("/v1/identify", &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let contact = app.store.resolve_contact(user).await.unwrap().expect("the contact exists");
    let now = test_now();
    let enrollment = app
        .store
        .enroll(program, SubjectKind::Contact, contact, &format!("test:{user}:{step}"), now, false, None)
        .await
        .unwrap()
        .expect("a new enrollment");
    let due_at = now + SignedDuration::from_hours(24);
    app.store.schedule_step(enrollment.id, step, due_at).await.unwrap();
    let claimed = app.store.claim_due_steps("test", due_at, SignedDuration::from_secs(60), 100).await.unwrap();
    let due = claimed.into_iter().find(|d| d.enrollment_id == enrollment.id).expect("the step is due");
    let entry = LedgerEntry {
        enrollment_id: enrollment.id,
        step_id: step.to_string(),
        channel: channel.to_string(),
        outcome: "sent".to_string(),
        message_id: (channel == "email").then(|| MESSAGE_ID.to_string()),
        detail: "{}".to_string(),
        at: now,
    };
    assert!(app.store.complete_step(&due, "test", &entry, None).await.unwrap());
    let subject =
        LinkSubject { enrollment: enrollment.id.to_string(), step: step.to_string(), contact: contact.to_string() };
    Sent { enrollment: enrollment.id, contact, step: step.to_string(), subject }
}

async fn welcome_email(app: &TestApp) -> Sent {
    sent(app, "u1", "ada@acme.io", "onboarding", "welcome", "email").await
}

async fn signer(app: &TestApp) -> LinkSigner {
    cairn_programs::link_signer(&app.store).await.expect("the database's link signer")
}

async fn get(app: &TestApp, path: &str) -> cairn::loopback::Response {
    app.raw("GET", path, &[], b"").await
}

fn replace_param(path: &str, name: &str, value: &str) -> String {
    let (route, query) = path.split_once('?').expect("a query");
    let query: Vec<String> = query
        .split('&')
        .map(|p| if p.split('=').next() == Some(name) { format!("{name}={value}") } else { p.to_string() })
        .collect();
    format!("{route}?{}", query.join("&"))
}

/// The kinds of engagement recorded for an enrollment.
async fn engagements(app: &TestApp, enrollment: i64) -> Vec<String> {
    app.store.engagements(enrollment).await.unwrap().into_iter().map(|e| e.kind).collect()
}

/// The events named `name` in the log, with their contact and properties.
async fn events(app: &TestApp, name: &str) -> Vec<(Option<i64>, Value)> {
    app.store
        .events_after(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.name.as_deref() == Some(name))
        .map(|e| (e.contact_id, e.properties.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or(Value::Null)))
        .collect()
}

fn assert_invalid(r: &cairn::loopback::Response) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("This link is invalid"), "{}", r.body);
    assert_eq!(r.header("location"), None);
}

async fn an_opened_email_answers_a_pixel_and_is_recorded_once(app: &TestApp) {
    let send = welcome_email(app).await;
    let open = signer(app).await.sign(&Link::Open, &send.subject);
    for _ in 0..2 {
        let r = get(app, &open).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("content-type"), Some("image/gif"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("content-length"), Some("43"));
        assert!(r.body.starts_with("GIF89a"));
    }
    assert_eq!(engagements(app, send.enrollment).await, ["opened"]);
    let opened = events(app, "email_opened").await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0].0, Some(send.contact));
    assert_eq!(opened[0].1["program"], "onboarding");
    assert_eq!(opened[0].1["step"], "welcome");
}

async fn a_click_redirects_to_the_signed_url_and_a_changed_link_goes_nowhere(app: &TestApp) {
    let send = welcome_email(app).await;
    let url = "https://docs.example.com/start?utm=a&b=c";
    let click = signer(app).await.sign(&Link::Click { url: url.into() }, &send.subject);
    assert_invalid(&get(app, &replace_param(&click, "url", "https%3A%2F%2Fevil.example%2F")).await);
    assert_invalid(&get(app, &replace_param(&click, "sig", "AAAA")).await);
    assert_invalid(&get(app, click.rsplit_once("&sig=").unwrap().0).await);
    assert_invalid(&get(app, "/t/c").await);
    assert_invalid(&get(app, "/t/c?url=https%3A%2F%2Fevil.example").await);
    assert!(engagements(app, send.enrollment).await.is_empty(), "a refused link records nothing");

    let r = get(app, &click).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.header("location"), Some(url));
    let recorded = app.store.engagements(send.enrollment).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].kind, "clicked");
    assert_eq!(serde_json::from_str::<Value>(&recorded[0].detail).unwrap(), json!({ "url": url }));
    let clicked = events(app, "email_clicked").await;
    assert_eq!(clicked.len(), 1);
    assert_eq!(clicked[0].1["url"], url);
}

async fn an_unsubscribe_link_asks_on_get_and_unsubscribes_on_one_click_post(app: &TestApp) {
    let send = welcome_email(app).await;
    let unsubscribe = signer(app).await.sign(&Link::Unsubscribe, &send.subject);
    // A mail scanner prefetching the link changes nothing.
    let r = get(app, &unsubscribe).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<form method=post"), "{}", r.body);
    assert!(r.body.contains("product_tips"), "{}", r.body);
    assert!(r.body.contains(&unsubscribe.replace('&', "&amp;")), "the form posts to the same link: {}", r.body);
    assert_eq!(app.store.consent(send.contact, "product_tips").await.unwrap(), None);
    assert!(engagements(app, send.enrollment).await.is_empty());

    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = app.raw("POST", &unsubscribe, &form, b"something=else").await;
    assert_eq!(r.status, 400, "a POST without List-Unsubscribe=One-Click: {}", r.body);
    let tampered = replace_param(&unsubscribe, "c", "999");
    assert_invalid(&app.raw("POST", &tampered, &form, b"List-Unsubscribe=One-Click").await);
    assert_eq!(app.store.consent(send.contact, "product_tips").await.unwrap(), None);

    for _ in 0..2 {
        let r = app.raw("POST", &unsubscribe, &form, b"List-Unsubscribe=One-Click").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("You are unsubscribed"), "{}", r.body);
    }
    assert_eq!(app.store.consent(send.contact, "product_tips").await.unwrap(), Some(false));
    let history = app.store.consent_history(send.contact).await.unwrap();
    assert_eq!(history.len(), 1, "a second POST changes nothing: {history:?}");
    assert_eq!(history[0].source, "unsubscribe_link");
    assert_eq!(engagements(app, send.enrollment).await, ["unsubscribed"]);
    let unsubscribed = events(app, "unsubscribed").await;
    assert_eq!(unsubscribed.len(), 1);
    assert_eq!(unsubscribed[0].1["topic"], "product_tips");

    // A program that is not (or no longer) defined: the contact leaves every topic.
    let other = sent(app, "u2", "bo@acme.io", "retired_program", "hello", "email").await;
    let link = signer(app).await.sign(&Link::Unsubscribe, &other.subject);
    let r = app.raw("POST", &link, &form, b"List-Unsubscribe=One-Click").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.store.consent(other.contact, "all").await.unwrap(), Some(false));
}

async fn a_survey_answer_is_recorded_with_its_score(app: &TestApp) {
    let send = welcome_email(app).await;
    let s = signer(app).await;
    let answer = s.sign(&Link::Survey { survey: Survey::Nps, score: 9 }, &send.subject);
    assert_invalid(&get(app, &replace_param(&answer, "score", "10")).await);
    assert_invalid(&get(app, &s.sign(&Link::Survey { survey: Survey::Nps, score: 11 }, &send.subject)).await);
    assert_invalid(&get(app, &s.sign(&Link::Survey { survey: Survey::Csat, score: 0 }, &send.subject)).await);
    assert!(engagements(app, send.enrollment).await.is_empty());

    let r = get(app, &answer).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Thank you"), "{}", r.body);
    assert_eq!(engagements(app, send.enrollment).await, ["answered"]);
    let submitted = events(app, "nps_submitted").await;
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    assert_eq!(submitted[0].0, Some(send.contact));
    assert_eq!(submitted[0].1["score"], 9);
    assert_eq!(submitted[0].1["survey"], "nps");
}

/// The `href`s of a page, unescaped.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(|h| h.replace("&amp;", "&")).collect()
}

async fn the_survey_page_shows_the_scale_as_signed_answers(app: &TestApp) {
    let send = welcome_email(app).await;
    let s = signer(app).await;
    let r = get(app, &s.sign(&Link::SurveyPage { survey: Survey::Nps }, &send.subject)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let links = hrefs(&r.body);
    assert_eq!(links.len(), 11, "{}", r.body);
    for (expected, link) in (0..=10).zip(&links) {
        let verified = s.verify(LinkKind::Survey, link.split_once('?').unwrap().1).expect("a signed answer");
        assert_eq!(verified.link, Link::Survey { survey: Survey::Nps, score: expected });
        assert_eq!(verified.subject, send.subject);
    }
    let r = get(app, &s.sign(&Link::SurveyPage { survey: Survey::Csat }, &send.subject)).await;
    assert_eq!(hrefs(&r.body).len(), 5, "{}", r.body);
    assert!(engagements(app, send.enrollment).await.is_empty(), "showing the page answers nothing");
    // An answer's link is not a page, and a page's link answers nothing.
    let answer = s.sign(&Link::Survey { survey: Survey::Nps, score: 3 }, &send.subject);
    assert_invalid(&get(app, &answer.replacen("/s?", "/s/page?", 1)).await);
    let page = s.sign(&Link::SurveyPage { survey: Survey::Nps }, &send.subject);
    assert_invalid(&get(app, &page.replacen("/s/page?", "/s?", 1)).await);
    // Links signed with another secret are refused too.
    let forged =
        LinkSigner::new(b"not-the-database-secret").sign(&Link::SurveyPage { survey: Survey::Nps }, &send.subject);
    assert_invalid(&get(app, &forged).await);
}

async fn bounces_and_complaints_suppress_the_address_and_mark_the_send(app: &TestApp) {
    let send = welcome_email(app).await;
    let hard = json!({ "type": "bounce", "email": "Ada@Acme.io", "bounce_type": "hard", "message_id": MESSAGE_ID });
    let (status, body) = app.api_post("/api/email/feedback", &hard.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["suppressed"].clone(), body["recorded"].clone()), (json!(1), json!(1)));
    assert!(app.store.is_suppressed("ada@acme.io").await.unwrap());
    assert_eq!(engagements(app, send.enrollment).await, ["bounced"]);
    let bounced = events(app, "email_bounced").await;
    assert_eq!(bounced.len(), 1);
    assert_eq!(bounced[0].0, Some(send.contact));

    // A complaint naming the message without its angle brackets.
    let complaint = json!({ "type": "complaint", "email": "ada@acme.io", "message_id": "x@cairn.test" });
    let (status, body) = app.api_post("/api/email/feedback", &complaint.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], 1);
    assert!(engagements(app, send.enrollment).await.contains(&"complained".to_string()));

    // A soft bounce keeps the address; an unknown Message-ID marks no send.
    let soft = json!({ "type": "bounce", "email": "eve@acme.io", "bounce_type": "soft", "message_id": "<other@x>" });
    let (status, body) = app.api_post("/api/email/feedback", &soft.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["suppressed"].clone(), body["recorded"].clone()), (json!(0), json!(0)));
    assert!(!app.store.is_suppressed("eve@acme.io").await.unwrap());

    let (status, body) = app.api_post("/api/email/feedback", r#"{"type":"bounce","email":"a@b.io"}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("bounce_type"), "{body}");
    let (status, _) = app.api_post("/api/email/feedback", "not json").await;
    assert_eq!(status, 400);
    let r = app.raw("POST", "/api/email/feedback", &[], hard.to_string().as_bytes()).await;
    assert_eq!(r.status, 401, "a secret key is required: {}", r.body);
}

async fn the_inapp_inbox_serves_a_product_with_a_publishable_key(app: &TestApp) {
    let ada = sent(app, "u1", "ada@acme.io", "onboarding", "tip", "in_app").await;
    let bo = sent(app, "u2", "bo@acme.io", "onboarding", "tip", "in_app").await;
    let now = test_now();
    let ada_msg =
        app.store.add_inapp_message(ada.contact, ada.enrollment, &ada.step, "Invite your team", "<p>Hi</p>", now).await;
    let ada_msg = ada_msg.unwrap();
    let bo_msg =
        app.store.add_inapp_message(bo.contact, bo.enrollment, &bo.step, "Tip", "<p>Bo</p>", now).await.unwrap();
    let pk = app.publishable_key().await;
    let bearer = format!("Bearer {pk}");
    // What the product's backend computes with the key's identity secret.
    let h1 = app.user_hash(&pk, "u1").await;
    let u1 = format!("userId=u1&userHash={h1}");

    let r = app.raw("GET", &format!("/v1/inapp/messages?{u1}"), &[("authorization", &bearer)], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let list = r.json();
    assert_eq!(list["messages"].as_array().unwrap().len(), 1, "{list}");
    let m = &list["messages"][0];
    assert_eq!(m["id"], ada_msg);
    assert_eq!(m["title"], "Invite your team");
    assert_eq!(m["body_html"], "<p>Hi</p>");
    assert_eq!(m["created_at"], "2026-03-01T12:00:00Z");
    assert_eq!(m["seen_at"], Value::Null);
    assert!(m.get("contact_id").is_none(), "{m}");
    let r = get(app, &format!("/v1/inapp/messages?{u1}&key={pk}")).await;
    assert_eq!(r.status, 200, "the key may come in the query: {}", r.body);
    let nobody = app.user_hash(&pk, "nobody").await;
    let r = get(app, &format!("/v1/inapp/messages?userId=nobody&userHash={nobody}&key={pk}")).await;
    assert_eq!(r.json()["messages"], json!([]), "an unknown user has an empty inbox");

    let r = app.raw("OPTIONS", "/v1/inapp/messages", &[("origin", "https://app.acme.example")], b"").await;
    assert!(r.status == 204 || r.status == 200, "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let methods = r.header("access-control-allow-methods").unwrap_or("");
    assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");
    let allowed = r.header("access-control-allow-headers").unwrap_or("");
    assert!(allowed.contains("Authorization") && allowed.contains("Content-Type"), "{allowed}");

    for key in [&app.secret_key, &app.write_key] {
        let path = format!("/v1/inapp/messages?{u1}");
        let r = app.raw("GET", &path, &[("authorization", &format!("Bearer {key}"))], b"").await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.json()["error"].as_str().unwrap().contains("publishable key"), "{}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    assert_eq!(get(app, &format!("/v1/inapp/messages?{u1}")).await.status, 401);

    // Ada cannot mark Bo's message, nor can anyone mark a message that does not exist.
    let json_body = [("authorization", bearer.as_str()), ("content-type", "application/json")];
    let u1_body = json!({ "userId": "u1", "userHash": h1 }).to_string();
    let path = format!("/v1/inapp/messages/{bo_msg}/seen");
    let r = app.raw("POST", &path, &json_body, u1_body.as_bytes()).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = app.raw("POST", "/v1/inapp/messages/9999/seen", &json_body, u1_body.as_bytes()).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = app.raw("POST", &format!("/v1/inapp/messages/{ada_msg}/deleted"), &json_body, u1_body.as_bytes()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(engagements(app, bo.enrollment).await.is_empty());

    let r = app.raw("POST", &format!("/v1/inapp/messages/{ada_msg}/clicked"), &json_body, u1_body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.json()["message"]["clicked_at"], "2026-03-01T12:00:00Z");
    assert_eq!(r.json()["message"]["seen_at"], "2026-03-01T12:00:00Z");
    let mut kinds = engagements(app, ada.enrollment).await;
    kinds.sort();
    assert_eq!(kinds, ["clicked", "opened"]);
    assert_eq!(events(app, "inapp_clicked").await.len(), 1);
    assert_eq!(events(app, "inapp_seen").await.len(), 1);

    let path = format!("/v1/inapp/messages/{ada_msg}/dismissed?userId=u1");
    let r = app.raw("POST", &path, &[("authorization", &bearer), ("x-cairn-user-hash", &h1)], b"").await;
    assert_eq!(r.status, 200, "userId may come in the query, userHash in a header: {}", r.body);
    let r = get(app, &format!("/v1/inapp/messages?{u1}&key={pk}")).await;
    assert_eq!(r.json()["messages"], json!([]), "a dismissed message leaves the inbox");
    let r = get(app, &format!("/v1/inapp/messages?{u1}&key={pk}&include_dismissed=true")).await;
    assert_eq!(r.json()["messages"][0]["dismissed_at"], "2026-03-01T12:00:00Z");
    assert_eq!(events(app, "inapp_dismissed").await.len(), 1);
}

async fn the_inapp_inbox_verifies_whose_inbox_it_is(app: &TestApp) {
    let ada = sent(app, "u1", "ada@acme.io", "onboarding", "tip", "in_app").await;
    let msg = app.store.add_inapp_message(ada.contact, ada.enrollment, &ada.step, "Hi", "<p>Hi</p>", test_now()).await;
    let msg = msg.unwrap();
    let pk = app.publishable_key().await;
    let inbox = |query: String| {
        let path = format!("/v1/inapp/messages?key={pk}&{query}");
        async move { get(app, &path).await }
    };

    // The publishable key is public: without the backend's HMAC of the user id, nobody's
    // inbox can be read.
    let r = inbox("userId=u1".into()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("`userHash`"), "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("www-authenticate"), None, "no login dialog over the product");
    let other = app.user_hash(&pk, "u2").await;
    let r = inbox(format!("userId=u1&userHash={other}")).await;
    assert_eq!(r.status, 401, "another user's hash does not open u1's inbox: {}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("does not match"), "{}", r.body);
    assert_eq!(inbox("userId=u1&userHash=zz".into()).await.status, 401);
    let h1 = app.user_hash(&pk, "u1").await;
    let r = inbox(format!("userId=u1&userHash={}", h1.to_uppercase())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["messages"][0]["id"], msg);

    // Marking is verified the same way.
    let path = format!("/v1/inapp/messages/{msg}/seen?key={pk}");
    let r = app.raw("POST", &path, &[], json!({ "userId": "u1" }).to_string().as_bytes()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = app.raw("POST", &path, &[], json!({ "userId": "u1", "userHash": other }).to_string().as_bytes()).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(engagements(app, ada.enrollment).await.is_empty(), "nothing was recorded");
    let r = app.raw("POST", &path, &[], json!({ "userId": "u1", "userHash": h1 }).to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // The identity secret is the publishable key's own: another key's does not verify.
    let second = app.another_publishable_key().await;
    let r = get(app, &format!("/v1/inapp/messages?key={second}&userId=u1&userHash={h1}")).await;
    assert_eq!(r.status, 401, "{}", r.body);
}

async fn a_csm_lists_and_completes_tasks(app: &TestApp) {
    let send = sent(app, "u1", "ada@acme.io", "onboarding", "call", "task").await;
    let task = NewTask {
        enrollment_id: send.enrollment,
        step_id: "call".into(),
        account_id: None,
        contact_id: Some(send.contact),
        title: "Call Ada about the rollout".into(),
        body: "She has not invited her team.".into(),
        assignee: Some("ana@acme.example".into()),
        pool: Some("digital".into()),
        priority: TaskPriority::High,
        due_at: None,
        created_at: test_now(),
    };
    let id = app.store.create_task(&task).await.unwrap();

    let (status, body) = app.api_get("/api/tasks?assignee=ana@acme.example").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tasks"][0]["id"], id);
    assert_eq!(body["tasks"][0]["title"], "Call Ada about the rollout");
    let (_, body) = app.api_get("/api/tasks?pool=digital").await;
    assert_eq!(body["tasks"].as_array().unwrap().len(), 1);
    let (_, body) = app.api_get("/api/tasks?assignee=bo@acme.example").await;
    assert_eq!(body["tasks"], json!([]));
    assert_eq!(app.raw("GET", "/api/tasks", &[], b"").await.status, 401);

    let done = format!("/api/tasks/{id}/complete");
    let (status, body) = app.api_post(&done, r#"{"by":"ana@acme.example"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["task"]["completed_by"], "ana@acme.example");
    let (status, body) = app.api_post(&done, r#"{"by":"ana@acme.example"}"#).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("already done"), "{body}");
    let (status, _) = app.api_post("/api/tasks/9999/complete", r#"{"by":"ana@acme.example"}"#).await;
    assert_eq!(status, 404);
    let (_, body) = app.api_get("/api/tasks").await;
    assert_eq!(body["tasks"], json!([]));
    let completed = events(app, "task_completed").await;
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0].0, Some(send.contact));
    assert_eq!(completed[0].1["by"], "ana@acme.example");

    // A step that failed for good shows up in the dead letters.
    let due_at = test_now() + SignedDuration::from_hours(24);
    app.store.schedule_step(send.enrollment, "webhook", due_at).await.unwrap();
    let due = app.store.claim_due_steps("test", due_at, SignedDuration::from_secs(60), 10).await.unwrap();
    app.store.dead_letter(&due[0], "test", "HTTP 410 from the CRM", test_now()).await.unwrap();
    let (status, body) = app.api_get("/api/programs/dead-letters?limit=10").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dead_letters"][0]["reason"], "HTTP 410 from the CRM");
    assert_eq!(body["dead_letters"][0]["step_id"], "webhook");
}

on_both_backends!(
    workspace = super::WORKSPACE;
    an_opened_email_answers_a_pixel_and_is_recorded_once,
    a_click_redirects_to_the_signed_url_and_a_changed_link_goes_nowhere,
    an_unsubscribe_link_asks_on_get_and_unsubscribes_on_one_click_post,
    a_survey_answer_is_recorded_with_its_score,
    the_survey_page_shows_the_scale_as_signed_answers,
    bounces_and_complaints_suppress_the_address_and_mark_the_send,
    the_inapp_inbox_serves_a_product_with_a_publishable_key,
    the_inapp_inbox_verifies_whose_inbox_it_is,
    a_csm_lists_and_completes_tasks,
);
