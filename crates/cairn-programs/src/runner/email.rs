//! Email delivery: the message built with its signed links, to the outbox or over SMTP.
//!
//! With the outbox (the default), the parts and the headers a real message would carry
//! (Message-ID, List-Unsubscribe) are stored with the ledger record in one transaction;
//! with SMTP, the MIME message is built and sent, and the server's answer kept in the
//! ledger detail; it is recorded right after the server accepted it, so a crash in
//! between can resend it with the same Message-ID (the one known duplicate window).
//! Transient failures retry as new attempts; permanent ones (a template that cannot
//! render, a refused address) are dead letters with the reason. A message with only a text part gets an HTML part made from it, and one
//! with only HTML gets a text part.
//!
//! The text part is made by hand ([`html_to_text`]: tags dropped, references decoded,
//! blank runs collapsed) rather than by a crate: `html2text`, the well-kept one, brings
//! html5ever and its generated atom tables (15 crates new to the tree, several with code
//! generation at build time) for a part that only plain-text readers see, and it would
//! change every text part's layout (wrapping, link footnotes). Revisit if text parts need
//! lists and tables laid out.

use std::collections::BTreeMap;

use cairn_channels::{LedgerKey, OutgoingEmail, build_email, email_ids};
use cairn_content::RenderedMessage;
use cairn_core::Email;
use cairn_core::html::{escape_html, unescape_html};
use cairn_rules::Value;
use cairn_store::{After, DueStep, Enrollment, OutboxMessage};
use jiff::Timestamp;
use serde_json::json;

use super::Runner;
use super::round::Outcome;
use super::send::ledger;
use crate::ProgramError;

impl Runner {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn deliver_email(
        &self,
        due: &DueStep,
        enrollment: &Enrollment,
        contact: u64,
        address: String,
        traits: &BTreeMap<String, Value>,
        rendered: RenderedMessage,
        detail: serde_json::Value,
        now: Timestamp,
        after: Option<After>,
    ) -> Result<Outcome, ProgramError> {
        let to = match Email::parse(&address) {
            Ok(e) => e,
            Err(e) => {
                return Ok(Outcome::Failed {
                    transient: false,
                    reason: format!("the contact's address `{address}` is not valid: {e}"),
                });
            }
        };
        let html = if rendered.html.is_empty() { text_to_html(&rendered.text) } else { rendered.html };
        let text = if rendered.text.is_empty() { html_to_text(&html) } else { rendered.text };
        let outgoing = OutgoingEmail {
            ledger_key: LedgerKey { enrollment: enrollment.id.to_string(), step: due.step_id.clone() },
            contact: contact.to_string(),
            from: self.config.from.clone(),
            from_name: self.config.from_name.clone(),
            to,
            to_name: match traits.get("name") {
                Some(Value::String(n)) => Some(n.chars().filter(|c| !c.is_control()).collect()),
                _ => None,
            },
            reply_to: None,
            subject: rendered.subject.clone(),
            text,
            html,
            date: now,
            message_id_domain: self.config.message_id_domain.clone(),
            public_url: self.config.public_url.clone(),
            unsubscribe_mailto: None,
        };
        let mut entry = ledger(due, "email", "sent", detail, now);
        if !self.mailer.is_smtp() {
            // The outbox keeps the parts, not the MIME message: the same checks and ids
            // without building it.
            let ids = match email_ids(&outgoing, &self.signer) {
                Ok(ids) => ids,
                Err(e) => return Ok(Outcome::Failed { transient: false, reason: e.to_string() }),
            };
            entry.message_id = Some(ids.message_id.clone());
            let headers = json!({
                "From": self.config.from.as_str(),
                "To": address,
                "Message-ID": ids.message_id,
                "List-Unsubscribe": ids.list_unsubscribe,
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            });
            let outbox = OutboxMessage {
                message_id: ids.message_id,
                to: address,
                subject: rendered.subject,
                html: outgoing.html,
                text: outgoing.text,
                headers: headers.to_string(),
                at: now,
            };
            return Ok(Outcome::Outbox(entry, outbox, after));
        }
        let built = match build_email(&outgoing, &self.signer) {
            Ok(b) => b,
            Err(e) => return Ok(Outcome::Failed { transient: false, reason: e.to_string() }),
        };
        entry.message_id = Some(built.message_id.clone());
        match self.mailer.send(&built).await {
            Ok(delivery) => {
                if let cairn_channels::Delivery::Smtp { code, reply } = delivery {
                    entry.detail = {
                        let mut d: serde_json::Value = serde_json::from_str(&entry.detail).unwrap_or_default();
                        d["smtp"] = json!({"code": code, "reply": reply});
                        d.to_string()
                    };
                }
                Ok(Outcome::Record(entry, after))
            }
            Err(e) => Ok(Outcome::Failed { transient: e.is_transient(), reason: e.to_string() }),
        }
    }
}

/// A text body as HTML: escaped, paragraphs and line breaks kept.
pub fn text_to_html(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape_html(p.trim()).replace('\n', "<br>\n")))
        .collect();
    paragraphs.join("\n")
}

/// An HTML body as plain text for the text part: tags dropped, character references
/// decoded, blank runs collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = unescape_html(&out);
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
