//! Whatever a template, a recipient or a stranger on the internet supplies, nothing
//! panics, nothing leaks into headers, and only what was signed verifies.

use cairn_channels::{
    LedgerKey, Link, LinkKind, LinkSigner, LinkSubject, OutgoingEmail, build_email, parse_feedback, track_html,
};
use cairn_core::Email;
use proptest::prelude::*;

const PUBLIC: &str = "https://cs.example.com";

fn subject() -> LinkSubject {
    LinkSubject { enrollment: "enr".into(), step: "step".into(), contact: "contact".into() }
}

fn email_with(subject_line: String, name: String, html: String) -> OutgoingEmail {
    OutgoingEmail {
        ledger_key: LedgerKey { enrollment: "enr".into(), step: "step".into() },
        contact: "contact".into(),
        from: Email::parse("success@vendor.example").unwrap(),
        from_name: Some(name.clone()),
        to: Email::parse("ada@customer.example").unwrap(),
        to_name: Some(name),
        reply_to: None,
        subject: subject_line,
        text: "text".into(),
        html,
        date: "2026-03-02T09:30:00Z".parse().unwrap(),
        message_id_domain: "vendor.example".into(),
        public_url: PUBLIC.into(),
        unsubscribe_mailto: None,
    }
}

fn html_soup() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "<a href=\"https://x.example/p?a=1&amp;b=2\">",
        "<a href='http://y.example'>",
        "<A HREF=\"mailto:a@b.c\">",
        "<area href=\"https://z.example\">",
        "<link href=\"https://css.example\">",
        "</a>",
        "<!--",
        "-->",
        "<",
        ">",
        "\"",
        "'",
        "href=",
        " ",
        "é",
        "&amp;",
        "&#",
        "</body>",
        "text",
    ]);
    prop::collection::vec(prop_oneof![pieces.prop_map(String::from), any::<String>()], 0..24)
        .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn tracking_never_panics_and_every_redirect_it_writes_verifies(html in html_soup()) {
        let signer = LinkSigner::new(b"fuzz");
        let tracked = track_html(&html, &signer, PUBLIC, &subject());
        let click = format!("{PUBLIC}/t/c?");
        for piece in tracked.split(&click).skip(1) {
            let query = piece.split(['"', '\'']).next().unwrap().replace("&amp;", "&");
            let verified = signer.verify(LinkKind::Click, &query);
            prop_assert!(matches!(verified, Ok(ref v) if matches!(v.link, Link::Click { .. })), "{query}: {verified:?}");
        }
        let pixel = format!("{PUBLIC}/t/o?");
        prop_assert!(tracked.contains(&pixel), "no pixel in {}", tracked);
    }

    #[test]
    fn verification_never_panics_and_never_accepts_what_was_not_signed(query in ".{0,200}") {
        let signer = LinkSigner::new(b"fuzz");
        for kind in [LinkKind::Click, LinkKind::Open, LinkKind::Unsubscribe, LinkKind::Survey] {
            prop_assert!(signer.verify(kind, &query).is_err());
        }
    }

    #[test]
    fn feedback_parsing_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_feedback(&body);
    }

    #[test]
    fn no_subject_or_name_can_add_a_header(subject_line in ".{0,80}", name in ".{0,40}", html in html_soup()) {
        let hostile = format!("{subject_line}\r\nBcc: eve@evil.example");
        for (s, n) in [(subject_line.clone(), name.clone()), (hostile.clone(), name.clone()), (subject_line.clone(), hostile)] {
            if let Ok(built) = build_email(&email_with(s, n, html.clone()), &LinkSigner::new(b"fuzz")) {
                let raw = String::from_utf8_lossy(&built.raw()).into_owned();
                let head = raw.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
                prop_assert!(!head.contains("\nbcc:"), "{head}");
                prop_assert_eq!(built.message.envelope().to().len(), 1);
            }
        }
    }
}
