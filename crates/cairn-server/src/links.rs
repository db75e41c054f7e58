//! The routes of the signed links in messages, public (the signature is the credential):
//!
//! - `GET /t/o`: the open pixel — records an open, answers a 1×1 transparent GIF.
//! - `GET /t/c`: a click — records it, redirects (302) to the URL that was signed.
//! - `GET /u`: a confirmation page whose button POSTs to the same link; a GET changes
//!   nothing, because mail scanners prefetch links.
//! - `POST /u`: one-click unsubscribe (RFC 8058, `List-Unsubscribe=One-Click`, also what
//!   the confirmation page sends): consent withdrawn for the program's topic.
//! - `GET /s`: a survey answer with its score — recorded, then a thank-you page.
//! - `GET /s/page`: a survey's hosted page — the scale, each score a signed `/s` link.
//!
//! A missing, tampered or unsigned link gets a 400 page saying the link is invalid:
//! nothing is recorded and nothing redirects. Engagement goes through
//! `cairn_programs::engage::record`, the one way to record it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_channels::{Link, LinkKind, LinkSigner, Survey, VerifiedLink};
use cairn_programs::{EngagementInput, EngagementKind, engage};
use serde_json::{Value, json};

use crate::AppState;
use crate::pages::escape;

/// The consent topic of an unsubscribe whose program has none (or is unknown).
const ALL_TOPICS: &str = "all";

/// A 1×1 transparent GIF (43 bytes).
const PIXEL: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// A link that verified, with its ids as numbers.
struct Followed {
    link: Link,
    enrollment_id: i64,
    step_id: String,
    contact_id: i64,
    subject: cairn_channels::LinkSubject,
    signer: Arc<LinkSigner>,
}

/// A small HTML page. Links carry their signature in the URL, so pages are neither
/// cached, indexed nor sent as a referrer.
fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
<title>{title}</title><style>body{{font:16px system-ui,sans-serif;margin:3rem auto;max-width:34rem;padding:0 1rem;color:#222}}\
.scale{{display:flex;flex-wrap:wrap;gap:.4rem;margin:1.2rem 0}}.scale a{{display:inline-block;min-width:2.4rem;padding:.5rem;\
border:1px solid #bbb;border-radius:6px;text-align:center;text-decoration:none;color:#222}}.ends{{display:flex;\
justify-content:space-between;color:#666;font-size:.9rem}}button{{font:inherit;padding:.5rem 1.2rem}}</style></head>\
<body><h1>{title}</h1>{body_html}</body></html>",
        title = escape(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn invalid_link(why: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link is invalid",
        &format!(
            "<p>This link is invalid: it may have been cut or changed on its way to you. Nothing was recorded.</p>\
<p>Try the link in the original message, or copy the whole address into your browser.</p><p><small>{}</small></p>",
            escape(why)
        ),
    )
}

fn unavailable(what: &str) -> Response {
    page(StatusCode::SERVICE_UNAVAILABLE, "Please try again later", &format!("<p>{}</p>", escape(what)))
}

/// Why a link is not followed.
enum Refusal {
    /// The server has no link signer.
    NoSigner,
    /// The link did not verify (the reason, for the page's small print).
    Invalid(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoSigner => unavailable(
                "Links are not set up on this server: it was started without a link signer \
(`cairn serve` creates one from the database).",
            ),
            Refusal::Invalid(why) => invalid_link(&why),
        }
    }
}

/// Verifies the request's query as a link of `expected`'s kind.
fn follow(state: &AppState, expected: LinkKind, query: Option<&str>) -> Result<Followed, Refusal> {
    let signer = state.links.clone().ok_or(Refusal::NoSigner)?;
    let VerifiedLink { subject, link } = signer.verify(expected, query.unwrap_or("")).map_err(|e| {
        tracing::debug!(error = %e, route = expected.path(), "refused a link");
        Refusal::Invalid(e.to_string())
    })?;
    // cairn signs numeric ids; anything else was not signed by a sender of this server.
    let (Ok(enrollment_id), Ok(contact_id)) = (subject.enrollment.parse::<i64>(), subject.contact.parse::<i64>())
    else {
        return Err(Refusal::Invalid("the link does not name a send of this server".into()));
    };
    Ok(Followed { link, enrollment_id, step_id: subject.step.clone(), contact_id, subject, signer })
}

/// Records `kind` for the link's send; `Ok(false)` when it was already recorded.
async fn record(
    state: &AppState,
    followed: &Followed,
    kind: EngagementKind,
    detail: Value,
) -> Result<bool, cairn_programs::ProgramError> {
    let ws = crate::api::live_workspace(state).await;
    let input = EngagementInput {
        enrollment_id: followed.enrollment_id,
        step_id: followed.step_id.clone(),
        contact_id: Some(followed.contact_id),
        kind,
        at: state.clock.now(),
        detail,
    };
    engage::record(&state.store, ws.as_deref(), &input).await
}

/// `GET /t/o`: records an open; always the pixel for a valid link, even when recording
/// failed (the reader's mail client must not show a broken image).
pub async fn open(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let followed = match follow(&state, LinkKind::Open, query.as_deref()) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    if let Err(e) = record(&state, &followed, EngagementKind::Opened, json!({})).await {
        tracing::error!(error = %e, enrollment = followed.enrollment_id, "could not record an open");
    }
    let mut response = PIXEL.to_vec().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /t/c`: records a click and redirects to the signed URL (only a signed URL: there
/// is no open redirect). The reader gets there even when recording failed.
pub async fn click(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let followed = match follow(&state, LinkKind::Click, query.as_deref()) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let Link::Click { url } = &followed.link else {
        return invalid_link("not a click link");
    };
    let Ok(location) = HeaderValue::from_str(&location(url)) else {
        return invalid_link("the target URL cannot be redirected to");
    };
    if let Err(e) = record(&state, &followed, EngagementKind::Clicked, json!({ "url": url })).await {
        tracing::error!(error = %e, enrollment = followed.enrollment_id, "could not record a click");
    }
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// A URL as a `Location` value: non-ASCII characters and spaces percent-encoded (as a
/// browser would), the rest as signed.
pub(crate) fn location(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        if c.is_ascii() && c != ' ' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The consent topic of the enrollment's program: its `topic`, or `all` when the program
/// has none or is not (or no longer) defined.
async fn unsubscribe_topic(state: &AppState, enrollment_id: i64) -> Result<String, cairn_store::StoreError> {
    let Some(enrollment) = state.store.enrollment(enrollment_id).await? else {
        return Ok(ALL_TOPICS.to_string());
    };
    let ws = crate::api::live_workspace(state).await;
    let topic = ws.as_deref().and_then(|ws| {
        ws.programs()
            .iter()
            .find(|p| p.id.as_str() == enrollment.program_id)
            .and_then(|p| p.topic.as_ref().map(|t| t.as_str().to_string()))
    });
    Ok(topic.unwrap_or_else(|| ALL_TOPICS.to_string()))
}

fn topic_label(topic: &str) -> String {
    if topic == ALL_TOPICS { "all emails".to_string() } else { format!("“{}” emails", escape(topic)) }
}

/// `GET /u`: asks for confirmation. Changes nothing: a mail scanner that prefetches the
/// link must not unsubscribe anyone.
pub async fn unsubscribe_page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let followed = match follow(&state, LinkKind::Unsubscribe, query.as_deref()) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let topic = match unsubscribe_topic(&state, followed.enrollment_id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not read the enrollment of an unsubscribe link");
            return unavailable("We could not load this page. Please try again in a moment.");
        }
    };
    let action = format!("{}?{}", LinkKind::Unsubscribe.path(), query.as_deref().unwrap_or(""));
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop receiving {label}?</p><form method=post action=\"{action}\">\
<input type=hidden name=List-Unsubscribe value=One-Click><button type=submit>Unsubscribe</button></form>",
            label = topic_label(&topic),
            action = escape(&action),
        ),
    )
}

/// True when the body asks for a one-click unsubscribe (RFC 8058): the form field
/// `List-Unsubscribe=One-Click`, URL-encoded or as multipart form data.
pub(crate) fn is_one_click(body: &str) -> bool {
    body.split('&').any(|pair| pair.trim() == "List-Unsubscribe=One-Click")
        || (body.contains("name=\"List-Unsubscribe\"") && body.contains("One-Click"))
}

/// `POST /u`: withdraws consent for the program's topic (source `unsubscribe_link`) and
/// records the unsubscribe; a second POST changes nothing more.
pub async fn unsubscribe(State(state): State<AppState>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let followed = match follow(&state, LinkKind::Unsubscribe, query.as_deref()) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    if !is_one_click(&String::from_utf8_lossy(&body)) {
        return page(
            StatusCode::BAD_REQUEST,
            "Nothing was changed",
            "<p>An unsubscribe request must send the form field <code>List-Unsubscribe=One-Click</code> (RFC 8058).</p>",
        );
    }
    let done = async {
        let topic = unsubscribe_topic(&state, followed.enrollment_id).await?;
        let now = state.clock.now();
        if state.store.consent(followed.contact_id, &topic).await? != Some(false) {
            state.store.set_consent(followed.contact_id, &topic, false, "unsubscribe_link", now).await?;
        }
        record(&state, &followed, EngagementKind::Unsubscribed, json!({ "topic": topic })).await?;
        Ok::<String, cairn_programs::ProgramError>(topic)
    };
    match done.await {
        Ok(topic) => page(
            StatusCode::OK,
            "You are unsubscribed",
            &format!("<p>You will no longer receive {}.</p>", topic_label(&topic)),
        ),
        Err(e) => {
            tracing::error!(error = %e, enrollment = followed.enrollment_id, "could not unsubscribe");
            unavailable("We could not unsubscribe you just now. Please try the link again in a moment.")
        }
    }
}

fn survey_name(survey: Survey) -> &'static str {
    match survey {
        Survey::Nps => "nps",
        Survey::Csat => "csat",
    }
}

/// `GET /s`: records the answer (`nps_submitted` / `csat_submitted` with its score) and
/// thanks. The first answer to a send is the one kept.
pub async fn survey_answer(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let followed = match follow(&state, LinkKind::Survey, query.as_deref()) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let Link::Survey { survey, score } = followed.link else {
        return invalid_link("not a survey answer");
    };
    let detail = json!({ "survey": survey_name(survey), "score": score });
    match record(&state, &followed, EngagementKind::Answered, detail).await {
        Ok(true) => page(StatusCode::OK, "Thank you!", &format!("<p>Your answer ({score}) was recorded.</p>")),
        Ok(false) => page(StatusCode::OK, "Thank you!", "<p>Your answer to this survey was already recorded.</p>"),
        Err(e) => {
            tracing::error!(error = %e, enrollment = followed.enrollment_id, "could not record a survey answer");
            unavailable("We could not record your answer just now. Please try the link again in a moment.")
        }
    }
}

/// `GET /s/page`: the survey's scale, each score a signed answer link for the same send
/// and contact. Records nothing.
pub async fn survey_page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let followed = match follow(&state, LinkKind::SurveyPage, query.as_deref()) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let Link::SurveyPage { survey } = followed.link else {
        return invalid_link("not a survey page");
    };
    let (question, low, high) = match survey {
        Survey::Nps => {
            ("How likely are you to recommend us to a friend or colleague?", "Not at all likely", "Extremely likely")
        }
        Survey::Csat => ("How satisfied are you with us?", "Very unsatisfied", "Very satisfied"),
    };
    let scale: String = followed
        .signer
        .survey_links(survey, &followed.subject)
        .into_iter()
        .map(|(score, link)| format!("<a href=\"{}\">{score}</a>", escape(&link)))
        .collect();
    page(
        StatusCode::OK,
        "A quick question",
        &format!(
            "<p>{question}</p><div class=scale>{scale}</div><div class=ends><span>{low}</span><span>{high}</span></div>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_signer_every_link_route_answers_503() {
        let dir = std::env::temp_dir().join(format!("cairn-links-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = cairn_store::Store::open(&format!("sqlite://{}", dir.join("cairn.db").display())).await.unwrap();
        let clock = Arc::new(cairn_core::FixedClock::new("2026-03-01T12:00:00Z".parse().unwrap()));
        let state = AppState::new(store.clone(), clock);
        let query = || RawQuery(Some("e=1&s=welcome&c=2&sig=AAAA".to_string()));
        let responses = [
            open(State(state.clone()), query()).await,
            click(State(state.clone()), query()).await,
            unsubscribe_page(State(state.clone()), query()).await,
            unsubscribe(State(state.clone()), query(), Bytes::from_static(b"List-Unsubscribe=One-Click")).await,
            survey_answer(State(state.clone()), query()).await,
            survey_page(State(state.clone()), query()).await,
        ];
        for r in responses {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers().get(header::LOCATION), None);
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_pixel_is_a_gif() {
        assert!(PIXEL.starts_with(b"GIF89a"));
        assert_eq!(PIXEL.last(), Some(&0x3b));
    }

    #[test]
    fn a_location_keeps_ascii_and_encodes_the_rest() {
        assert_eq!(location("https://x.example/a?b=c&d#e"), "https://x.example/a?b=c&d#e");
        assert_eq!(location("https://x.example/ü p"), "https://x.example/%C3%BC%20p");
        assert!(HeaderValue::from_str(&location("https://x.example/日本")).is_ok());
    }

    #[test]
    fn one_click_bodies_are_recognised() {
        assert!(is_one_click("List-Unsubscribe=One-Click"));
        assert!(is_one_click("a=b&List-Unsubscribe=One-Click"));
        assert!(is_one_click(
            "--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--"
        ));
        assert!(!is_one_click(""));
        assert!(!is_one_click("List-Unsubscribe=Other"));
    }
}
