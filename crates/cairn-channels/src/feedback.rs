//! Bounce and complaint webhooks from the mail provider, parsed into typed events.
//!
//! cairn's own shape (one event per request):
//!
//! ```json
//! { "type": "bounce", "email": "ada@example.com", "bounce_type": "hard", "message_id": "<…@vendor.example>" }
//! { "type": "complaint", "email": "ada@example.com" }
//! ```
//!
//! `bounce_type` is `hard` (the address does not exist: suppress it) or `soft` (a full
//! mailbox, a greylisting: keep it); it is required for bounces. `message_id` is
//! optional. Also understood: Postmark's bounce and spam-complaint webhooks
//! (`RecordType`) and Amazon SES notifications (`notificationType`, bare or inside an
//! SNS `Notification` envelope). Authenticating the request (a secret in the URL, basic
//! auth, SNS signatures) is the HTTP layer's job.

use cairn_core::Email;
use serde_json::Value;
use thiserror::Error;

/// Larger bodies are refused before parsing.
const MAX_BODY: usize = 256 * 1024;

/// What the provider reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedbackKind {
    /// The address does not exist or refuses mail for good.
    HardBounce,
    /// A temporary refusal (mailbox full, greylisting, auto-reply).
    SoftBounce,
    /// The recipient marked the message as spam.
    Complaint,
}

/// One address's bounce or complaint, for the caller to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFeedback {
    /// What happened.
    pub kind: FeedbackKind,
    /// To whom.
    pub email: Email,
    /// The Message-ID of the message concerned, when the provider tells it.
    pub message_id: Option<String>,
}

impl DeliveryFeedback {
    /// True when cairn must stop emailing the address: a hard bounce or a complaint.
    pub fn suppresses_address(&self) -> bool {
        matches!(self.kind, FeedbackKind::HardBounce | FeedbackKind::Complaint)
    }
}

/// Why a feedback webhook was refused (the HTTP layer answers 400 and stores nothing).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeedbackError {
    /// The body is larger than 256 KiB.
    #[error("the body is larger than 256 KiB")]
    TooLarge,
    /// The body is not JSON.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but no known shape.
    #[error("unknown feedback shape: expected {{\"type\": \"bounce\"|\"complaint\", \"email\": …}}")]
    UnknownShape,
    /// A known shape with a missing or wrong field.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Parses a bounce or complaint webhook body into one event per affected address.
pub fn parse_feedback(body: &[u8]) -> Result<Vec<DeliveryFeedback>, FeedbackError> {
    if body.len() > MAX_BODY {
        return Err(FeedbackError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| FeedbackError::NotJson(e.to_string()))?;
    parse_value(&value, true)
}

fn parse_value(value: &Value, may_unwrap: bool) -> Result<Vec<DeliveryFeedback>, FeedbackError> {
    if value.get("type").is_some() && value.get("email").is_some() {
        return cairn_shape(value).map(|f| vec![f]);
    }
    if let Some(record_type) = value.get("RecordType").and_then(Value::as_str) {
        return postmark_shape(value, record_type).map(|f| vec![f]);
    }
    if let Some(kind) = value.get("notificationType").or_else(|| value.get("eventType")).and_then(Value::as_str) {
        return ses_shape(value, kind);
    }
    // An SNS envelope: the SES notification is a JSON string in `Message`.
    if may_unwrap && value.get("Type").and_then(Value::as_str) == Some("Notification") {
        let inner = text(value, "Message")?;
        let inner: Value = serde_json::from_str(inner).map_err(|e| FeedbackError::NotJson(e.to_string()))?;
        return parse_value(&inner, false);
    }
    Err(FeedbackError::UnknownShape)
}

fn cairn_shape(value: &Value) -> Result<DeliveryFeedback, FeedbackError> {
    let kind = match text(value, "type")? {
        "complaint" => FeedbackKind::Complaint,
        "bounce" => match text(value, "bounce_type")? {
            "hard" => FeedbackKind::HardBounce,
            "soft" => FeedbackKind::SoftBounce,
            other => return Err(invalid("bounce_type", format!("`{other}` is neither `hard` nor `soft`"))),
        },
        other => return Err(invalid("type", format!("`{other}` is neither `bounce` nor `complaint`"))),
    };
    let message_id = match value.get("message_id") {
        None | Some(Value::Null) => None,
        Some(_) => Some(text(value, "message_id")?.to_string()),
    };
    Ok(DeliveryFeedback { kind, email: email(value, "email")?, message_id })
}

fn postmark_shape(value: &Value, record_type: &str) -> Result<DeliveryFeedback, FeedbackError> {
    let kind = match record_type {
        "SpamComplaint" => FeedbackKind::Complaint,
        "Bounce" => match text(value, "Type")? {
            "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated" | "SpamComplaint" => {
                if text(value, "Type")? == "SpamComplaint" { FeedbackKind::Complaint } else { FeedbackKind::HardBounce }
            }
            _ => FeedbackKind::SoftBounce,
        },
        _ => return Err(FeedbackError::UnknownShape),
    };
    Ok(DeliveryFeedback { kind, email: email(value, "Email")?, message_id: None })
}

fn ses_shape(value: &Value, notification: &str) -> Result<Vec<DeliveryFeedback>, FeedbackError> {
    let (kind, recipients) = match notification {
        "Bounce" => {
            let bounce = value.get("bounce").ok_or_else(|| invalid("bounce", "missing"))?;
            let kind = match bounce.get("bounceType").and_then(Value::as_str) {
                Some("Permanent") => FeedbackKind::HardBounce,
                _ => FeedbackKind::SoftBounce,
            };
            (kind, bounce.get("bouncedRecipients"))
        }
        "Complaint" => {
            let complaint = value.get("complaint").ok_or_else(|| invalid("complaint", "missing"))?;
            (FeedbackKind::Complaint, complaint.get("complainedRecipients"))
        }
        _ => return Err(FeedbackError::UnknownShape),
    };
    let recipients = recipients.and_then(Value::as_array).ok_or_else(|| invalid("recipients", "missing"))?;
    let message_id = value.pointer("/mail/commonHeaders/messageId").and_then(Value::as_str).map(str::to_string);
    recipients
        .iter()
        .map(|r| Ok(DeliveryFeedback { kind, email: email(r, "emailAddress")?, message_id: message_id.clone() }))
        .collect()
}

fn text<'a>(value: &'a Value, field: &'static str) -> Result<&'a str, FeedbackError> {
    match value.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(field, "must be a string")),
        None => Err(invalid(field, "missing")),
    }
}

fn email(value: &Value, field: &'static str) -> Result<Email, FeedbackError> {
    let raw = text(value, field)?;
    // SES gives `"Ada" <ada@example.com>` at times.
    let bare = raw.rsplit_once('<').and_then(|(_, after)| after.rsplit_once('>')).map_or(raw, |(inside, _)| inside);
    Email::parse(bare).map_err(|e| invalid(field, e.to_string()))
}

fn invalid(field: &'static str, reason: impl Into<String>) -> FeedbackError {
    FeedbackError::Invalid { field, reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> DeliveryFeedback {
        let mut all = parse_feedback(body.as_bytes()).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn cairn_shape_hard_bounce_suppresses_soft_does_not() {
        let hard =
            one(r#"{"type":"bounce","email":"Ada@Example.com","bounce_type":"hard","message_id":"<x@v.example>"}"#);
        assert_eq!(hard.kind, FeedbackKind::HardBounce);
        assert_eq!(hard.email.as_str(), "ada@example.com");
        assert_eq!(hard.message_id.as_deref(), Some("<x@v.example>"));
        assert!(hard.suppresses_address());
        let soft = one(r#"{"type":"bounce","email":"ada@example.com","bounce_type":"soft"}"#);
        assert!(!soft.suppresses_address());
        assert_eq!((soft.kind, soft.message_id), (FeedbackKind::SoftBounce, None));
        let complaint = one(r#"{"type":"complaint","email":"ada@example.com","message_id":null}"#);
        assert!(complaint.suppresses_address());
    }

    #[test]
    fn bad_cairn_payloads_name_the_field() {
        let cases = [
            (r#"{"type":"bounce","email":"ada@example.com"}"#, "bounce_type"),
            (r#"{"type":"bounce","email":"ada@example.com","bounce_type":"medium"}"#, "bounce_type"),
            (r#"{"type":"delivered","email":"ada@example.com"}"#, "type"),
            (r#"{"type":"complaint","email":"not an address"}"#, "email"),
            (r#"{"type":"complaint","email":42}"#, "email"),
            (r#"{"type":"complaint","email":"a@b.example","message_id":7}"#, "message_id"),
        ];
        for (body, field) in cases {
            match parse_feedback(body.as_bytes()) {
                Err(FeedbackError::Invalid { field: f, .. }) => assert_eq!(f, field, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(matches!(parse_feedback(b"{"), Err(FeedbackError::NotJson(_))));
        assert!(matches!(parse_feedback(b"[]"), Err(FeedbackError::UnknownShape)));
        assert!(matches!(parse_feedback(b"{\"hello\":1}"), Err(FeedbackError::UnknownShape)));
        assert_eq!(parse_feedback(&vec![b' '; MAX_BODY + 1]), Err(FeedbackError::TooLarge));
    }

    #[test]
    fn postmark_bounces_and_complaints() {
        let hard = one(
            r#"{"RecordType":"Bounce","Type":"HardBounce","TypeCode":1,"Email":"ada@example.com","MessageID":"883953f4"}"#,
        );
        assert_eq!(hard.kind, FeedbackKind::HardBounce);
        let soft = one(r#"{"RecordType":"Bounce","Type":"Transient","Email":"ada@example.com"}"#);
        assert_eq!(soft.kind, FeedbackKind::SoftBounce);
        let spam = one(r#"{"RecordType":"SpamComplaint","Type":"SpamComplaint","Email":"ada@example.com"}"#);
        assert_eq!(spam.kind, FeedbackKind::Complaint);
        assert!(matches!(
            parse_feedback(br#"{"RecordType":"Open","Email":"ada@example.com"}"#),
            Err(FeedbackError::UnknownShape)
        ));
    }

    #[test]
    fn ses_notifications_bare_and_in_an_sns_envelope() {
        let ses = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"\"Ada\" <ada@example.com>"},{"emailAddress":"bob@example.com"}]},"mail":{"messageId":"ses-1","commonHeaders":{"messageId":"<abc@vendor.example>"}}}"#;
        let all = parse_feedback(ses.as_bytes()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].email.as_str(), "ada@example.com");
        assert!(all.iter().all(|f| f.kind == FeedbackKind::HardBounce));
        assert_eq!(all[1].message_id.as_deref(), Some("<abc@vendor.example>"));
        let envelope = serde_json::json!({"Type": "Notification", "Message": r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"ada@example.com"}]}}"#});
        let all = parse_feedback(envelope.to_string().as_bytes()).unwrap();
        assert_eq!(all[0].kind, FeedbackKind::Complaint);
        let transient = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Transient","bouncedRecipients":[{"emailAddress":"ada@example.com"}]}}"#;
        assert_eq!(one(transient).kind, FeedbackKind::SoftBounce);
        // Nested envelopes are not unwrapped twice.
        let twice = serde_json::json!({"Type": "Notification", "Message": envelope.to_string()});
        assert!(parse_feedback(twice.to_string().as_bytes()).is_err());
    }
}
