//! Building an email: headers, the text and HTML parts, tracking and unsubscribe.

use std::time::SystemTime;

use cairn_core::Email;
use cairn_core::html::{escape_html, unescape_html};
use jiff::Timestamp;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use crate::error::ChannelError;
use crate::links::{Link, LinkKind, LinkSigner, LinkSubject, absolute_url, is_http_url};
use crate::mac::hex;

/// The ledger key of a send, (enrollment, step): the one thing a Message-ID is derived
/// from, so that a retried or re-claimed send carries the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LedgerKey {
    /// The enrollment.
    pub enrollment: String,
    /// The step.
    pub step: String,
}

/// A rendered email, ready to be built: who decided to send it and what it says are
/// settled before it reaches this crate.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    /// The ledger key of the send (also binds the tracking links).
    pub ledger_key: LedgerKey,
    /// The contact's identifier, bound into the tracking and unsubscribe links.
    pub contact: String,
    /// Sender address.
    pub from: Email,
    /// Sender display name (no CR, LF or other control characters).
    pub from_name: Option<String>,
    /// Recipient address.
    pub to: Email,
    /// Recipient display name (no control characters).
    pub to_name: Option<String>,
    /// Where replies go, when not to `from`.
    pub reply_to: Option<Email>,
    /// Subject line (no control characters; non-ASCII is encoded).
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part, before tracking (see [`track_html`]).
    pub html: String,
    /// The instant written in the `Date` header (the caller's clock, not ours).
    pub date: Timestamp,
    /// Domain of the Message-ID, usually the sending domain (letters, digits, `-`, `.`).
    pub message_id_domain: String,
    /// Base URL of cairn's public routes, e.g. `https://cs.example.com`.
    pub public_url: String,
    /// Optional `mailto:` address offered in `List-Unsubscribe` beside the HTTPS link.
    pub unsubscribe_mailto: Option<Email>,
}

impl OutgoingEmail {
    /// The subject of this email's signed links: its ledger key and contact.
    pub fn link_subject(&self) -> LinkSubject {
        LinkSubject {
            enrollment: self.ledger_key.enrollment.clone(),
            step: self.ledger_key.step.clone(),
            contact: self.contact.clone(),
        }
    }
}

/// A built message and the identifiers the caller records.
#[derive(Debug, Clone)]
pub struct BuiltEmail {
    /// The Message-ID with its angle brackets, as in the header.
    pub message_id: String,
    /// The unsubscribe URL put in `List-Unsubscribe` (also handy for templates).
    pub unsubscribe_url: String,
    /// The lettre message (envelope and formatted content).
    pub message: Message,
}

impl BuiltEmail {
    /// The message as it goes on the wire (RFC 5322, CRLF line ends); what the outbox
    /// stores.
    pub fn raw(&self) -> Vec<u8> {
        self.message.formatted()
    }
}

/// The Message-ID of the send (enrollment, step), the same for the same send every time.
/// For an enrollment numbered `n` (cairn's own): `<{n, 12 digits or more}.{20 hex
/// digits}@{domain}>`, the hex digits from a SHA-256 of the key. Ids of later enrollments
/// sort later, so the outbox's unique index on them grows at one end, as their rows do:
/// with a hash alone every insert landed on a page of its own in an index of a million,
/// and the send rate halved (BENCHMARKS.md, programs). Any other enrollment key:
/// `<{32 hex digits}@{domain}>`.
pub fn message_id(key: &LedgerKey, domain: &str) -> Result<String, ChannelError> {
    check_domain(domain)?;
    let domain = domain.to_ascii_lowercase();
    let hash = key_hash(key, &[], 32);
    let numbered = !key.enrollment.is_empty() && key.enrollment.bytes().all(|b| b.is_ascii_digit());
    Ok(if numbered {
        format!("<{:0>12}.{}@{domain}>", key.enrollment, hash.get(..20).unwrap_or(&hash))
    } else {
        format!("<{hash}@{domain}>")
    })
}

/// Builds the message: From, To, Reply-To, Subject, Date, the deterministic Message-ID,
/// `List-Unsubscribe` (HTTPS one-click link and optional mailto) with
/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and a multipart/alternative
/// body whose HTML part has its links tracked and an open pixel. The output is
/// byte-for-byte deterministic for the same input.
pub fn build_email(email: &OutgoingEmail, signer: &LinkSigner) -> Result<BuiltEmail, ChannelError> {
    let Envelope { message_id, unsubscribe_url, list_unsubscribe, from, to } = envelope(email, signer)?;
    let subject = email.link_subject();
    let html = track_html(&email.html, signer, &email.public_url, &subject);
    // A boundary derived from the content cannot occur in it (short of a hash collision)
    // and keeps the output deterministic.
    let boundary = format!("cairn-{}", key_hash(&email.ledger_key, &[email.text.as_bytes(), html.as_bytes()], 40));
    let body = MultiPart::alternative()
        .boundary(boundary)
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone()))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html));

    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .date(SystemTime::from(email.date))
        .message_id(Some(message_id.clone()))
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), list_unsubscribe))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_string(),
        ));
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(Mailbox::new(None, address("reply_to", reply_to)?));
    }
    let message = builder.multipart(body).map_err(|e| ChannelError::invalid("message", e.to_string()))?;
    Ok(BuiltEmail { message_id, unsubscribe_url, message })
}

/// What an email is identified and addressed by, checked: [`build_email`] without the
/// body, for the local outbox, which keeps the parts rather than the MIME message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailIds {
    /// The Message-ID with its angle brackets, as in the header.
    pub message_id: String,
    /// The unsubscribe URL put in `List-Unsubscribe`.
    pub unsubscribe_url: String,
    /// The `List-Unsubscribe` header's value.
    pub list_unsubscribe: String,
}

/// The checks and identifiers of [`build_email`] without building the message: the
/// same errors for the same input.
pub fn email_ids(email: &OutgoingEmail, signer: &LinkSigner) -> Result<EmailIds, ChannelError> {
    let Envelope { message_id, unsubscribe_url, list_unsubscribe, .. } = envelope(email, signer)?;
    if let Some(reply_to) = &email.reply_to {
        address("reply_to", reply_to)?;
    }
    Ok(EmailIds { message_id, unsubscribe_url, list_unsubscribe })
}

struct Envelope {
    message_id: String,
    unsubscribe_url: String,
    list_unsubscribe: String,
    from: Mailbox,
    to: Mailbox,
}

fn envelope(email: &OutgoingEmail, signer: &LinkSigner) -> Result<Envelope, ChannelError> {
    let message_id = message_id(&email.ledger_key, &email.message_id_domain)?;
    no_controls("subject", &email.subject)?;
    let subject = email.link_subject();
    let from = mailbox("from", &email.from, email.from_name.as_deref())?;
    let to = mailbox("to", &email.to, email.to_name.as_deref())?;

    let unsubscribe_url = absolute_url(&email.public_url, &signer.sign(&Link::Unsubscribe, &subject));
    if !is_http_url(&unsubscribe_url) {
        return Err(ChannelError::invalid("public_url", "must start with http:// or https://"));
    }
    let mut list_unsubscribe = format!("<{unsubscribe_url}>");
    if let Some(mailto) = &email.unsubscribe_mailto {
        address("unsubscribe_mailto", mailto)?;
        list_unsubscribe.push_str(&format!(", <mailto:{}?subject=unsubscribe>", mailto.as_str()));
    }
    Ok(Envelope { message_id, unsubscribe_url, list_unsubscribe, from, to })
}

/// Rewrites every `href="http…"` / `href='https…'` of an `<a>` or `<area>` tag into a
/// signed click redirect and adds the open pixel (before `</body>` if there is one).
///
/// Left alone: `mailto:`, `tel:`, relative and fragment links, unquoted attribute values,
/// the unsubscribe link (a click redirect in front of it would count a click and break
/// one-click), other tags' `href` (stylesheets) and HTML comments. Entities in the href
/// (`&amp;`) are decoded before signing, so the redirect goes where the browser would
/// have gone.
///
/// Hand-written rather than `lol_html` (Cloudflare's streaming rewriter, the well-kept
/// crate for this): it brings Servo's `cssparser` and `selectors`, `derive_more` and `phf`
/// code generation, 22 crates new to the tree, to rewrite one attribute of two tags; and
/// it would re-serialize what it rewrites (quoting, entity style), changing messages
/// that are byte-for-byte deterministic today. The scanner here is a quote-aware `<…>`
/// splitter; `never_panics_on_arbitrary_html` below feeds it arbitrary input.
pub fn track_html(html: &str, signer: &LinkSigner, public_url: &str, subject: &LinkSubject) -> String {
    let unsubscribe_prefix = format!("{}?", absolute_url(public_url, LinkKind::Unsubscribe.path()));
    let track = |href: &str| -> Option<String> {
        let url = unescape_html(href);
        let url = url.trim();
        if !is_http_url(url) || url.starts_with(&unsubscribe_prefix) {
            return None;
        }
        let link = Link::Click { url: url.to_string() };
        Some(escape_html(&absolute_url(public_url, &signer.sign(&link, subject))))
    };

    let mut out = String::with_capacity(html.len() + 512);
    let mut rest = html;
    while let Some((before, from_tag)) = rest.find('<').and_then(|at| rest.split_at_checked(at)) {
        out.push_str(before);
        let comment = from_tag.starts_with("<!--");
        let end = match from_tag.strip_prefix("<!--") {
            Some(body) => body.find("-->").map_or(from_tag.len(), |e| 4 + e + 3),
            None => tag_end(from_tag.as_bytes(), 1),
        };
        // `end` follows an ASCII `>` (or is the end): always a character boundary.
        let (tag, after) = from_tag.split_at_checked(end).unwrap_or((from_tag, ""));
        if comment {
            out.push_str(tag);
        } else {
            rewrite_tag(tag, &track, &mut out);
        }
        rest = after;
    }
    out.push_str(rest);

    let pixel = format!(
        r#"<img src="{}" width="1" height="1" alt="" style="border:0;width:1px;height:1px">"#,
        escape_html(&absolute_url(public_url, &signer.sign(&Link::Open, subject)))
    );
    match out.to_ascii_lowercase().rfind("</body") {
        Some(at) => out.insert_str(at, &pixel),
        None => out.push_str(&pixel),
    }
    out
}

/// Index just past the `>` closing the tag that starts before `from`, quotes respected;
/// the end of the text if it never closes.
fn tag_end(bytes: &[u8], from: usize) -> usize {
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return i + 1,
            None => {}
        }
    }
    bytes.len()
}

/// Copies `tag` to `out`, replacing the quoted `href` value of an `a` or `area` tag when
/// `track` returns a replacement. Positions are bytes, and text is taken with `str::get`:
/// every position taken sits at an ASCII byte, so a character boundary.
fn rewrite_tag(tag: &str, track: &dyn Fn(&str) -> Option<String>, out: &mut String) {
    let bytes = tag.as_bytes();
    let name_len = bytes.iter().skip(1).take_while(|b| b.is_ascii_alphanumeric()).count();
    let is_link = tag
        .get(1..1 + name_len)
        .is_some_and(|name| name.eq_ignore_ascii_case("a") || name.eq_ignore_ascii_case("area"));
    if !is_link {
        out.push_str(tag);
        return;
    }
    let mut copied = 0;
    let mut i = 1 + name_len;
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\'' {
            // A quoted value of some other attribute: skip it whole.
            i = find_byte(bytes, i + 1, b).map_or(bytes.len(), |e| e + 1);
            continue;
        }
        let at_name = i.checked_sub(1).and_then(|p| bytes.get(p)).is_some_and(u8::is_ascii_whitespace)
            && bytes.get(i..i + 4).is_some_and(|w| w.eq_ignore_ascii_case(b"href"));
        if !at_name {
            i += 1;
            continue;
        }
        let mut j = skip_spaces(bytes, i + 4);
        if bytes.get(j) != Some(&b'=') {
            i += 4;
            continue;
        }
        j = skip_spaces(bytes, j + 1);
        let Some(&quote) = bytes.get(j).filter(|q| **q == b'"' || **q == b'\'') else {
            i = j;
            continue;
        };
        let value_start = j + 1;
        let Some(value_end) = find_byte(bytes, value_start, quote) else {
            break;
        };
        let kept = tag.get(copied..value_start);
        let tracked = tag.get(value_start..value_end).and_then(track);
        if let (Some(kept), Some(tracked)) = (kept, tracked) {
            out.push_str(kept);
            out.push_str(&tracked);
            copied = value_end;
        }
        i = value_end + 1;
    }
    out.push_str(tag.get(copied..).unwrap_or_default());
}

/// The position of the first `byte` at or after `from`.
fn find_byte(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    bytes.get(from..)?.iter().position(|b| *b == byte).map(|p| from + p)
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// Hex SHA-256 of the ledger key and extra content, length-prefixed.
/// The first `digits` hex digits (at most 64) of a SHA-256 of the key and `extra`.
fn key_hash(key: &LedgerKey, extra: &[&[u8]], digits: usize) -> String {
    let mut hasher = Sha256::new();
    let fields = [b"cairn-message-v1".as_slice(), key.enrollment.as_bytes(), key.step.as_bytes()];
    for field in fields.iter().chain(extra) {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    let mut hash = hex(&hasher.finalize());
    // Hex digits are ASCII: any length is a character boundary.
    hash.truncate(digits);
    hash
}

fn check_domain(domain: &str) -> Result<(), ChannelError> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(ChannelError::invalid("message_id_domain", format!("`{domain}` is not a domain name")))
    }
}

/// Refuses control characters (CR and LF above all): header injection is impossible by
/// construction, not by escaping.
fn no_controls(field: &'static str, text: &str) -> Result<(), ChannelError> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(ChannelError::invalid(field, format!("contains the control character {c:?}"))),
        None => Ok(()),
    }
}

fn address(field: &'static str, email: &Email) -> Result<lettre::Address, ChannelError> {
    no_controls(field, email.as_str())?;
    email.as_str().parse::<lettre::Address>().map_err(|e| ChannelError::invalid(field, e.to_string()))
}

fn mailbox(field: &'static str, email: &Email, name: Option<&str>) -> Result<Mailbox, ChannelError> {
    if let Some(name) = name {
        no_controls(field, name)?;
    }
    Ok(Mailbox::new(name.map(str::to_string), address(field, email)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> LinkSubject {
        LinkSubject { enrollment: "enr-1".into(), step: "s1".into(), contact: "c-9".into() }
    }

    fn signer() -> LinkSigner {
        LinkSigner::new(b"test-secret")
    }

    const PUBLIC: &str = "https://cs.example.com";

    fn outgoing() -> OutgoingEmail {
        OutgoingEmail {
            ledger_key: LedgerKey { enrollment: "enr-1".into(), step: "s1".into() },
            contact: "c-9".into(),
            from: Email::parse("success@vendor.example").unwrap(),
            from_name: Some("Vendor Success".into()),
            to: Email::parse("ada@customer.example").unwrap(),
            to_name: Some("Ada Lovelace".into()),
            reply_to: Some(Email::parse("csm@vendor.example").unwrap()),
            subject: "Your first report — 3 steps".into(),
            text: "Hello Ada\nhttps://docs.vendor.example/start\n".into(),
            html: r#"<html><body><p>Hello <a href="https://docs.vendor.example/start?a=1&amp;b=2">start</a></p></body></html>"#
                .into(),
            date: "2026-03-02T09:30:00Z".parse().unwrap(),
            message_id_domain: "vendor.example".into(),
            public_url: PUBLIC.into(),
            unsubscribe_mailto: Some(Email::parse("unsubscribe@vendor.example").unwrap()),
        }
    }

    fn hrefs(html: &str) -> Vec<String> {
        html.split("href=\"").skip(1).map(|s| s.split('"').next().unwrap().replace("&amp;", "&")).collect()
    }

    #[test]
    fn http_links_become_signed_redirects_to_the_same_target() {
        let s = signer();
        let html = r#"<a href="https://a.example/x?p=1&amp;q=2">A</a> <A class="btn" HREF = 'http://b.example'>B</A>"#;
        let tracked = track_html(html, &s, PUBLIC, &subject());
        let links: Vec<&str> = tracked.split(['"', '\'']).filter(|p| p.starts_with(PUBLIC)).collect();
        assert_eq!(links.len(), 3, "{tracked}"); // two clicks and the pixel
        let targets: Vec<String> = links[..2]
            .iter()
            .map(|l| {
                let q = l.replace("&amp;", "&");
                let q = q.split_once('?').unwrap().1.to_string();
                match s.verify(LinkKind::Click, &q).unwrap().link {
                    Link::Click { url } => url,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(targets, ["https://a.example/x?p=1&q=2", "http://b.example"]);
        assert!(tracked.contains(r#"class="btn""#));
    }

    #[test]
    fn mailto_relative_unsubscribe_stylesheets_and_comments_are_left_alone() {
        let s = signer();
        let unsubscribe = absolute_url(PUBLIC, &s.sign(&Link::Unsubscribe, &subject()));
        let html = format!(
            concat!(
                r#"<link rel="stylesheet" href="https://fonts.example/a.css">"#,
                r##"<a href="mailto:csm@vendor.example">mail</a><a href="/relative">r</a><a href="#top">t</a>"##,
                r#"<a href="tel:+331">tel</a><a href={unquoted}>u</a><!-- <a href="https://c.example"> -->"#,
                r#"<a href="{unsub}">unsubscribe</a><a data-x='href="https://no.example"' title=">">x</a>"#
            ),
            unquoted = "https://unquoted.example",
            unsub = escape_html(&unsubscribe)
        );
        let tracked = track_html(&html, &s, PUBLIC, &subject());
        let pixel_at = tracked.find("<img").unwrap();
        assert_eq!(&tracked[..pixel_at], html);
    }

    #[test]
    fn the_pixel_goes_before_the_closing_body_tag() {
        let s = signer();
        let tracked = track_html("<html><BODY>hi</BODY></html>", &s, PUBLIC, &subject());
        assert!(tracked.starts_with("<html><BODY>hi<img src=\"https://cs.example.com/t/o?"), "{tracked}");
        assert!(tracked.ends_with("\"></BODY></html>"));
        let q = tracked.split("/t/o?").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
        assert_eq!(s.verify(LinkKind::Open, &q).unwrap().link, Link::Open);
        assert!(track_html("fragment", &s, PUBLIC, &subject()).starts_with("fragment<img "));
    }

    #[test]
    fn hostile_html_never_panics() {
        let s = signer();
        for html in [
            "<",
            "<a",
            "<a href",
            "<a href=",
            "<a href=\"",
            "<a href='https://x",
            "<!--",
            "<a \u{e9}href=\"https://é\">",
            "<a xx\u{e9}\u{e9} hr\u{e9}f>",
            "&#xFFFFFFFF;",
            "<a href=\"https://x/&#99999999;\">",
        ] {
            let _ = track_html(html, &s, PUBLIC, &subject());
        }
    }

    #[test]
    fn message_id_depends_on_the_ledger_key_only() {
        let key = LedgerKey { enrollment: "enr-1".into(), step: "s1".into() };
        let id = message_id(&key, "Vendor.Example").unwrap();
        assert_eq!(id, message_id(&key, "vendor.example").unwrap());
        assert!(id.starts_with('<') && id.ends_with("@vendor.example>") && id.len() == 1 + 32 + 1 + 14 + 1, "{id}");
        let other = LedgerKey { enrollment: "enr-1".into(), step: "s2".into() };
        assert_ne!(id, message_id(&other, "vendor.example").unwrap());
        let shifted = LedgerKey { enrollment: "enr-1s".into(), step: "1".into() };
        assert_ne!(id, message_id(&shifted, "vendor.example").unwrap());
        for bad in ["", "a b", "x>@y", "-a.example", "a.example."] {
            assert!(message_id(&key, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn message_ids_of_numbered_enrollments_sort_by_enrollment() {
        let id = |enrollment: &str, step: &str| {
            message_id(&LedgerKey { enrollment: enrollment.into(), step: step.into() }, "vendor.example").unwrap()
        };
        let first = id("523001", "mail");
        assert!(first.starts_with("<000000523001.") && first.ends_with("@vendor.example>"), "{first}");
        assert_eq!(first.len(), 1 + 12 + 1 + 20 + 1 + 14 + 1, "{first}");
        assert_eq!(first, id("523001", "mail"));
        assert_ne!(first, id("523001", "reminder"));
        // In enrollment order whatever the step, across a change in the number of digits
        // (up to 12 of them).
        let ids: Vec<String> = ["9", "10", "99", "523001", "523002", "999999999999"]
            .iter()
            .enumerate()
            .map(|(i, e)| id(e, if i % 2 == 0 { "mail" } else { "zz" }))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids);
        assert!(id("1000000000000", "mail").starts_with("<1000000000000."));
        // Not a number: the hash alone.
        assert_eq!(id("enr-1", "mail").len(), 1 + 32 + 1 + 14 + 1);
    }

    #[test]
    fn the_built_message_has_every_header_and_both_parts_and_is_deterministic() {
        let built = build_email(&outgoing(), &signer()).unwrap();
        let raw = String::from_utf8(built.raw()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(head.contains(&format!("Message-ID: {}", built.message_id)), "{head}");
        assert!(head.contains("Date: Mon, 02 Mar 2026 09:30:00 +0000"), "{head}");
        assert!(head.contains("From: \"Vendor Success\" <success@vendor.example>"), "{head}");
        assert!(head.contains("To: \"Ada Lovelace\" <ada@customer.example>"), "{head}");
        assert!(head.contains("Reply-To: csm@vendor.example"), "{head}");
        assert!(head.contains("Subject: Your first report =?utf-8?b?4oCU?= 3 steps"), "non-ASCII is encoded: {head}");
        assert!(head.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{head}");
        let unfolded = head.replace("\r\n ", " ");
        assert!(
            unfolded.contains(&format!(
                "List-Unsubscribe: <{}>, <mailto:unsubscribe@vendor.example?subject=unsubscribe>",
                built.unsubscribe_url
            )),
            "{unfolded}"
        );
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
        assert_eq!(raw, String::from_utf8(build_email(&outgoing(), &signer()).unwrap().raw()).unwrap());
    }

    #[test]
    fn control_characters_in_headers_are_refused() {
        for (field, email) in [
            ("subject", OutgoingEmail { subject: "Hi\r\nBcc: eve@evil.example".into(), ..outgoing() }),
            ("subject", OutgoingEmail { subject: "Hi\nthere".into(), ..outgoing() }),
            ("from", OutgoingEmail { from_name: Some("A\r\nBcc: x@y.z".into()), ..outgoing() }),
            ("to", OutgoingEmail { to_name: Some("A\u{0}".into()), ..outgoing() }),
            ("public_url", OutgoingEmail { public_url: "javascript:".into(), ..outgoing() }),
            ("message_id_domain", OutgoingEmail { message_id_domain: "a\r\nb".into(), ..outgoing() }),
        ] {
            match build_email(&email, &signer()) {
                Err(ChannelError::InvalidMessage { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        // A quote or angle bracket in a name is quoted by the builder, not interpreted.
        let odd = OutgoingEmail { to_name: Some("Eve <eve@evil.example>, \"x\"".into()), ..outgoing() };
        let raw = String::from_utf8(build_email(&odd, &signer()).unwrap().raw()).unwrap();
        let to_line = raw.lines().find(|l| l.starts_with("To: ")).unwrap();
        assert!(to_line.ends_with("<ada@customer.example>"), "{to_line}");
        assert_eq!(build_email(&odd, &signer()).unwrap().message.envelope().to().len(), 1);
    }

    #[test]
    fn the_html_part_links_are_tracked() {
        let built = build_email(&outgoing(), &signer()).unwrap();
        let tracked = track_html(&outgoing().html, &signer(), PUBLIC, &outgoing().link_subject());
        assert!(hrefs(&tracked)[0].starts_with("https://cs.example.com/t/c?e=enr-1&s=s1&c=c-9&url=https%3A%2F%2Fdocs"));
        assert!(built.unsubscribe_url.starts_with("https://cs.example.com/u?e=enr-1&s=s1&c=c-9&sig="));
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Arbitrary HTML, made of the pieces the scanner looks for in any order, never
        /// panics, and the text outside tracked hrefs comes through: the output starts
        /// with everything before the first `<`.
        #[test]
        fn never_panics_on_arbitrary_html(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "<", ">", "a", "A", "area", "href", "HREF", " ", "=", "\"", "'", "!--", "-->", "&amp;",
                        "&#", ";", "é", "🎉", "https://x.example/p", "mailto:a@b.c", "</body>",
                    ])
                    .prop_map(str::to_string),
                    proptest::char::any().prop_map(String::from),
                ],
                0..48,
            ),
        ) {
            let html = pieces.concat();
            let out = track_html(&html, &signer(), PUBLIC, &subject());
            let head = html.split('<').next().unwrap_or_default();
            proptest::prop_assert!(out.starts_with(head));
        }
    }
}
