//! How a rendered message leaves cairn.
//!
//! This crate owns the last step of a program's `send`: it takes a message that another
//! crate has already decided to send (who, what, when — the programs and the ledger) and
//! already rendered (cairn-content), and delivers it:
//!
//! - **Signed links** ([`LinkSigner`]): click redirects, the open pixel, one-click
//!   unsubscribe (RFC 8058) and NPS/CSAT survey answers, each bound by an HMAC-SHA256 to
//!   the enrollment, step and contact (and, for a click, the target URL). A tampered or
//!   unsigned link is refused with a typed [`LinkError`]; only signed URLs redirect, so
//!   there is no open redirect.
//! - **Email** ([`build_email`], [`track_html`]): a MIME message with text and HTML parts,
//!   a Message-ID derived from the ledger key (so a retried send carries the same id),
//!   tracked links, an open pixel and `List-Unsubscribe` / `List-Unsubscribe-Post`.
//! - **Transports** ([`EmailTransport`], [`Mailer`]): the local outbox by default —
//!   nothing leaves the machine unless SMTP is configured — or SMTP with STARTTLS or TLS
//!   and authentication. Failures are classified transient or permanent
//!   ([`ChannelError::is_transient`]) so the scheduler retries or dead-letters.
//! - **Webhooks** ([`WebhookClient`]): a JSON POST signed with HMAC-SHA256 over a
//!   timestamp and the body; [`verify_webhook_signature`] for receivers; the retry
//!   schedule as plain functions ([`RetryPolicy`]). SMS and Slack are reached this way.
//! - **Delivery feedback** ([`parse_feedback`]): bounce and complaint webhooks turned into
//!   typed events that the caller stores (a hard bounce or a complaint suppresses the
//!   address).
//!
//! What it must not do: decide who gets what (audience, consent, frequency caps, quiet
//! hours and the ledger live elsewhere), store anything (the outbox hands the raw message
//! back to the caller), or read the clock — every instant (the `Date` header, a webhook's
//! timestamp, a signature's freshness) is an argument. Secrets never appear in `Debug`
//! output, errors or logs.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

mod email;
mod error;
mod feedback;
mod links;
mod mac;
mod retry;
mod transport;
mod webhook;

pub use email::{BuiltEmail, EmailIds, LedgerKey, OutgoingEmail, build_email, email_ids, message_id, track_html};
pub use error::ChannelError;
pub use feedback::{DeliveryFeedback, FeedbackError, FeedbackKind, parse_feedback};
pub use links::{
    Link, LinkError, LinkKind, LinkSigner, LinkSubject, Survey, VerifiedLink, absolute_url, encode_query_value,
};
pub use retry::RetryPolicy;
pub use transport::{Delivery, EmailTransport, Mailer, SmtpCredentials, SmtpSecurity, SmtpSettings};
pub use webhook::{
    SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookClient, WebhookResponse, WebhookSignatureError, sign_webhook,
    verify_webhook_signature,
};
