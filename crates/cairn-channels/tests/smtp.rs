//! A real SMTP conversation: lettre's transport talks to a small SMTP sink on loopback
//! that records each message or refuses it on demand.

use std::time::Duration;

use base64::Engine as _;
use cairn_channels::{
    ChannelError, Delivery, EmailTransport, LedgerKey, Link, LinkKind, LinkSigner, Mailer, OutgoingEmail,
    SmtpCredentials, SmtpSecurity, SmtpSettings, build_email,
};
use cairn_core::Email;

#[path = "support/smtp_sink.rs"]
mod smtp_sink;
use smtp_sink::{Answer, spawn_sink};

fn mailer(port: u16) -> Mailer {
    let mut settings = SmtpSettings::new("127.0.0.1", port);
    settings.security = SmtpSecurity::None;
    settings.hello_name = Some("vendor.example".into());
    settings.timeout = Duration::from_secs(5);
    Mailer::new(&EmailTransport::Smtp(settings)).unwrap()
}

const PUBLIC: &str = "http://127.0.0.1:8080";

fn signer() -> LinkSigner {
    LinkSigner::new(b"integration-test-link-secret-32b")
}

fn welcome_email() -> OutgoingEmail {
    OutgoingEmail {
        ledger_key: LedgerKey { enrollment: "enr-7".into(), step: "welcome".into() },
        contact: "contact-7".into(),
        from: Email::parse("success@vendor.example").unwrap(),
        from_name: Some("Vendor Success".into()),
        to: Email::parse("ada@customer.example").unwrap(),
        to_name: Some("Ada".into()),
        reply_to: None,
        subject: "Welcome aboard".into(),
        text: "Hi Ada,\n\nStart here: https://docs.vendor.example/start\n".into(),
        html: concat!(
            "<html><body><p>Hi Ada,</p>",
            "<p><a href=\"https://docs.vendor.example/start?from=email&amp;step=1\">Start here</a>",
            " or <a href=\"mailto:csm@vendor.example\">write to your CSM</a>.</p>",
            "</body></html>"
        )
        .into(),
        date: "2026-03-02T09:30:00Z".parse().unwrap(),
        message_id_domain: "vendor.example".into(),
        public_url: PUBLIC.into(),
        unsubscribe_mailto: Some(Email::parse("unsubscribe@vendor.example").unwrap()),
    }
}

/// Headers of a MIME entity (unfolded) and its body.
fn split_entity(entity: &str) -> (String, &str) {
    let (head, body) = entity.split_once("\r\n\r\n").unwrap_or((entity, ""));
    (head.replace("\r\n ", " ").replace("\r\n\t", " "), body)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = joined.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(byte) if bytes[i] == b'=' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The decoded text and HTML parts of a multipart/alternative message.
fn parts(data: &str) -> (String, String) {
    let (head, body) = split_entity(data);
    let content_type = header(&head, "Content-Type").unwrap();
    assert!(content_type.starts_with("multipart/alternative"), "{content_type}");
    let boundary = content_type.split("boundary=").nth(1).unwrap().trim_matches('"');
    let mut text = None;
    let mut html = None;
    for part in body.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let (head, body) = split_entity(part.trim_start_matches("\r\n"));
        let body = body.strip_suffix("\r\n").unwrap_or(body);
        let decoded = match header(&head, "Content-Transfer-Encoding").unwrap_or("7bit") {
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => {
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body.replace("\r\n", "")).unwrap())
                    .unwrap()
            }
            _ => body.to_string(),
        };
        match header(&head, "Content-Type").unwrap() {
            t if t.starts_with("text/plain") => text = Some(decoded),
            t if t.starts_with("text/html") => html = Some(decoded),
            other => panic!("unexpected part {other}"),
        }
    }
    (text.unwrap(), html.unwrap())
}

fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    html.split(&format!("{attribute}=\"")).skip(1).map(|s| s.split('"').next().unwrap().replace("&amp;", "&")).collect()
}

#[tokio::test]
async fn a_welcome_email_crosses_a_real_smtp_conversation_with_every_header_and_part() {
    let sink = spawn_sink(Answer::Accept).await;
    let signer = signer();
    let built = build_email(&welcome_email(), &signer).unwrap();
    let delivery = mailer(sink.port).send(&built).await.unwrap();
    assert_eq!(delivery, Delivery::Smtp { code: 250, reply: "2.0.0 Ok: queued as 4F2A".into() });

    let received = sink.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.helo, "vendor.example");
    assert_eq!(message.mail_from, "<success@vendor.example>");
    assert_eq!(message.rcpt_to, ["<ada@customer.example>"]);

    let (head, _) = split_entity(&message.data);
    let message_id = header(&head, "Message-ID").unwrap();
    assert_eq!(message_id, built.message_id);
    assert!(message_id.ends_with("@vendor.example>"));
    let again = build_email(&welcome_email(), &signer).unwrap();
    assert_eq!(again.message_id, message_id, "the same ledger key gives the same Message-ID");
    assert_eq!(header(&head, "Subject"), Some("Welcome aboard"));
    assert_eq!(header(&head, "Date"), Some("Mon, 02 Mar 2026 09:30:00 +0000"));
    assert_eq!(header(&head, "List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
    let list_unsubscribe = header(&head, "List-Unsubscribe").unwrap();
    let (https, mailto) = list_unsubscribe.split_once(", ").unwrap();
    assert_eq!(mailto, "<mailto:unsubscribe@vendor.example?subject=unsubscribe>");
    let unsubscribe = https.trim_matches(['<', '>']);
    assert!(unsubscribe.starts_with("http://127.0.0.1:8080/u?"), "{unsubscribe}");
    let verified = signer.verify(LinkKind::Unsubscribe, unsubscribe.split_once('?').unwrap().1).unwrap();
    assert_eq!(verified.link, Link::Unsubscribe);
    assert_eq!((verified.subject.enrollment.as_str(), verified.subject.contact.as_str()), ("enr-7", "contact-7"));

    let (text, html) = parts(&message.data);
    assert!(text.contains("Start here: https://docs.vendor.example/start"), "{text}");
    let hrefs = attribute_values(&html, "href");
    assert_eq!(hrefs.len(), 2, "{html}");
    assert!(hrefs[0].starts_with("http://127.0.0.1:8080/t/c?"), "{html}");
    let click = signer.verify(LinkKind::Click, hrefs[0].split_once('?').unwrap().1).unwrap();
    assert_eq!(click.link, Link::Click { url: "https://docs.vendor.example/start?from=email&step=1".into() });
    assert_eq!(hrefs[1], "mailto:csm@vendor.example");
    let images = attribute_values(&html, "src");
    assert_eq!(images.len(), 1);
    assert!(images[0].starts_with("http://127.0.0.1:8080/t/o?"));
    assert_eq!(signer.verify(LinkKind::Open, images[0].split_once('?').unwrap().1).unwrap().link, Link::Open);
    let pixel_at = html.find("<img ").unwrap();
    assert_eq!(&html[html[pixel_at..].find('>').unwrap() + pixel_at + 1..], "</body></html>", "pixel before </body>");
}

#[tokio::test]
async fn login_is_offered_when_credentials_are_configured() {
    let sink = spawn_sink(Answer::Accept).await;
    let mut settings = SmtpSettings::new("127.0.0.1", sink.port);
    settings.security = SmtpSecurity::None;
    settings.credentials = Some(SmtpCredentials::new("cairn", "secret"));
    let mailer = Mailer::new(&EmailTransport::Smtp(settings)).unwrap();
    let built = build_email(&welcome_email(), &signer()).unwrap();
    mailer.send(&built).await.unwrap();
    let received = sink.received.lock().unwrap().clone();
    let plain = base64::engine::general_purpose::STANDARD.encode("\0cairn\0secret");
    assert_eq!(received[0].auth, [format!("AUTH PLAIN {plain}")]);
}

#[tokio::test]
async fn a_4xx_reply_is_transient() {
    let sink = spawn_sink(Answer::RefuseRecipient("450 4.2.1 Mailbox busy, try later")).await;
    let built = build_email(&welcome_email(), &signer()).unwrap();
    let error = mailer(sink.port).send(&built).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(error.code(), Some(450));
    let sink = spawn_sink(Answer::RefuseData("421 4.3.0 Service shutting down")).await;
    let error = mailer(sink.port).send(&built).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(sink.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_5xx_reply_is_permanent() {
    let sink = spawn_sink(Answer::RefuseRecipient("550 5.1.1 Mailbox unavailable")).await;
    let built = build_email(&welcome_email(), &signer()).unwrap();
    let error = mailer(sink.port).send(&built).await.unwrap_err();
    assert!(matches!(error, ChannelError::Permanent { code: Some(550), .. }), "{error:?}");
    assert!(!error.is_transient());
    let sink = spawn_sink(Answer::RefuseData("554 5.7.1 Message rejected as spam")).await;
    let error = mailer(sink.port).send(&built).await.unwrap_err();
    assert_eq!((error.is_transient(), error.code()), (false, Some(554)));
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let built = build_email(&welcome_email(), &signer()).unwrap();
    let error = mailer(port).send(&built).await.unwrap_err();
    assert!(matches!(error, ChannelError::Transient { code: None, .. }), "{error:?}");
}

#[tokio::test]
async fn the_outbox_keeps_the_message_and_sends_nothing() {
    let built = build_email(&welcome_email(), &signer()).unwrap();
    let mailer = Mailer::new(&EmailTransport::Outbox).unwrap();
    match mailer.send(&built).await.unwrap() {
        Delivery::Outbox { raw } => {
            assert_eq!(raw, built.raw());
            let (text, html) = parts(std::str::from_utf8(&raw).unwrap());
            assert!(text.contains("Hi Ada"));
            assert!(html.contains("/t/o?"));
        }
        other => panic!("{other:?}"),
    }
}
