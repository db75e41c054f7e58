//! Segment-spec tracking messages: parsing and validation.
//!
//! The same rules apply to messages that arrive over HTTP (`/v1/track`, `/v1/batch`, …)
//! and to NDJSON files given to `cairn import events`. A message that passes becomes a
//! [`TrackingMessage`]; one that does not gets a [`MessageError`] naming the field.
//!
//! Limits and time handling follow the Segment HTTP tracking API: a message may be at
//! most 32 KB and a batch 500 KB; when the sender gives `sentAt`, the event's
//! `timestamp` is corrected for the sender's clock skew as
//! `receivedAt - (sentAt - timestamp)`.

use std::borrow::Cow;
use std::fmt;

use jiff::Timestamp;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::plausible::PlausibleTimes;

/// Largest accepted message, in bytes (Segment: 32 KB).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest accepted batch request, in bytes (Segment: 500 KB).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Deepest accepted nesting of objects and arrays in a message.
pub const MAX_NESTING: usize = 64;

/// Longest accepted id (`userId`, `anonymousId`, `groupId`, `messageId`), in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// Longest accepted event name (track) or page/screen name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// The kind of a tracking call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Who a user is (`traits`).
    Identify,
    /// What a user did (`event`, `properties`).
    Track,
    /// Which account (group) a user belongs to (`groupId`, `traits`).
    Group,
    /// A page view.
    Page,
    /// A mobile screen view.
    Screen,
    /// Merges a previous id into a user id.
    Alias,
}

impl MessageKind {
    /// The spec's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Identify => "identify",
            MessageKind::Track => "track",
            MessageKind::Group => "group",
            MessageKind::Page => "page",
            MessageKind::Screen => "screen",
            MessageKind::Alias => "alias",
        }
    }

    /// Parses the spec's lowercase name.
    pub fn parse(s: &str) -> Option<MessageKind> {
        Some(match s {
            "identify" => MessageKind::Identify,
            "track" => MessageKind::Track,
            "group" => MessageKind::Group,
            "page" => MessageKind::Page,
            "screen" => MessageKind::Screen,
            "alias" => MessageKind::Alias,
            _ => return None,
        })
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated tracking message, ready to be appended to the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingMessage {
    /// What kind of call this is.
    pub kind: MessageKind,
    /// The sender's unique id for this message; resends with the same id are stored once.
    pub message_id: String,
    /// The product's id of the user, if known.
    pub user_id: Option<String>,
    /// The device/browser id of a not-yet-identified visitor.
    pub anonymous_id: Option<String>,
    /// The product's id of the account: `groupId` of a group call, or `context.groupId`.
    pub group_id: Option<String>,
    /// The event name of a track call, or the name of a page/screen.
    pub event: Option<String>,
    /// For alias calls: the id being merged into `user_id`.
    pub previous_id: Option<String>,
    /// When it happened, corrected for the sender's clock skew.
    pub timestamp: Timestamp,
    /// The `timestamp` exactly as sent, if one was sent.
    pub original_timestamp: Option<Timestamp>,
    /// When the sender says it sent the message.
    pub sent_at: Option<Timestamp>,
    /// When cairn received it.
    pub received_at: Timestamp,
    /// `properties` (track, page, screen) or `traits` (identify, group) as a JSON object.
    pub properties: Option<String>,
    /// `context` as a JSON object.
    pub context: Option<String>,
}

/// Why a message was refused: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MessageError {
    /// The JSON field at fault (`userId`, `properties`, `batch[3].event`), if one is.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub reason: String,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "`{field}` {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl MessageError {
    fn field(field: &str, reason: impl Into<String>) -> Self {
        MessageError { field: Some(field.to_string()), reason: reason.into() }
    }

    fn whole(reason: impl Into<String>) -> Self {
        MessageError { field: None, reason: reason.into() }
    }

    /// The error for a body that is not JSON at all.
    pub fn invalid_json(err: &serde_json::Error) -> Self {
        let detail = err.to_string();
        if detail.contains("recursion limit") {
            MessageError::whole("invalid JSON: nested more than 128 levels deep; flatten the properties")
        } else {
            MessageError::whole(format!("invalid JSON: {detail}"))
        }
    }
}

/// The parts of a request that apply to every message in it.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// When cairn received the request.
    pub received_at: Timestamp,
    /// The batch-level `sentAt`, which applies to messages that have none of their own.
    pub batch_sent_at: Option<Timestamp>,
    /// The batch-level `context`, which applies to messages that have none of their own.
    pub batch_context: Option<&'a RawValue>,
    /// Import mode: trust `timestamp` as already corrected (exports carry the corrected
    /// value) and keep the message's own `receivedAt` when it has one.
    pub trust_timestamps: bool,
    /// The dates an event may carry; `received_at` is "now" for the check.
    pub plausible: PlausibleTimes,
}

/// The message as it arrives: every field kept raw, so that each can be checked with an
/// error that names it.
#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow, rename = "messageId")]
    message_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "userId")]
    user_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "anonymousId")]
    anonymous_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "groupId")]
    group_id: Option<&'a RawValue>,
    #[serde(borrow, rename = "previousId")]
    previous_id: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, rename = "sentAt")]
    sent_at: Option<&'a RawValue>,
    #[serde(borrow, rename = "receivedAt")]
    received_at: Option<&'a RawValue>,
    #[serde(borrow)]
    properties: Option<&'a RawValue>,
    #[serde(borrow)]
    traits: Option<&'a RawValue>,
    #[serde(borrow)]
    context: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawContext<'a> {
    #[serde(borrow, rename = "groupId")]
    group_id: Option<&'a RawValue>,
}

/// A batch request body, with its messages kept raw so each can fail on its own.
#[derive(Deserialize)]
pub struct RawBatch<'a> {
    /// The messages.
    #[serde(borrow)]
    pub batch: Option<Vec<&'a RawValue>>,
    /// Batch-level `sentAt`.
    #[serde(borrow, rename = "sentAt")]
    pub sent_at: Option<&'a RawValue>,
    /// Batch-level `context`.
    #[serde(borrow)]
    pub context: Option<&'a RawValue>,
}

fn json_type_name(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't') | Some(b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Reads an id: a non-empty string (numbers are accepted and turned into strings, as
/// Segment's libraries do).
fn read_id(field: &str, raw: Option<&RawValue>) -> Result<Option<String>, MessageError> {
    let Some(raw) = raw else { return Ok(None) };
    if is_null(raw) {
        return Ok(None);
    }
    let text = raw.get();
    let id = match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<Cow<str>>(text)
            .map_err(|e| MessageError::field(field, format!("is not a valid string: {e}")))?
            .into_owned(),
        Some(b'-' | b'0'..=b'9') => text.to_string(),
        _ => {
            return Err(MessageError::field(field, format!("must be a string, got {}", json_type_name(raw))));
        }
    };
    let id = id.trim().to_string();
    if id.is_empty() {
        return Err(MessageError::field(field, "must not be empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(MessageError::field(field, format!("is longer than {MAX_ID_BYTES} bytes")));
    }
    refuse_control_characters(field, &id)?;
    Ok(Some(id))
}

/// Refuses C0 and C1 control characters (NUL, ESC, CR, LF, DEL, …) in a name or id: they
/// corrupt logs and terminals and never belong in one.
fn refuse_control_characters(field: &str, text: &str) -> Result<(), MessageError> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(MessageError::field(
            field,
            format!("must not contain control characters (found U+{:04X}); remove it", u32::from(c)),
        )),
        None => Ok(()),
    }
}

/// Reads a name (an event name, a page or screen name): a string of at most
/// [`MAX_NAME_CHARS`] characters without control characters, trimmed.
fn read_name(field: &str, raw: Option<&RawValue>) -> Result<Option<String>, MessageError> {
    let Some(name) = read_string(field, raw)? else { return Ok(None) };
    let name = name.trim();
    if name.is_empty() {
        return Err(MessageError::field(field, "must not be empty"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(MessageError::field(
            field,
            format!("is {chars} characters long; the limit is {MAX_NAME_CHARS} characters"),
        ));
    }
    refuse_control_characters(field, name)?;
    Ok(Some(name.to_string()))
}

fn read_string(field: &str, raw: Option<&RawValue>) -> Result<Option<String>, MessageError> {
    let Some(raw) = raw else { return Ok(None) };
    if is_null(raw) {
        return Ok(None);
    }
    if !raw.get().starts_with('"') {
        return Err(MessageError::field(field, format!("must be a string, got {}", json_type_name(raw))));
    }
    let s = serde_json::from_str::<Cow<str>>(raw.get())
        .map_err(|e| MessageError::field(field, format!("is not a valid string: {e}")))?;
    Ok(Some(s.into_owned()))
}

fn read_object(field: &str, raw: Option<&RawValue>) -> Result<Option<String>, MessageError> {
    let Some(raw) = raw else { return Ok(None) };
    if is_null(raw) {
        return Ok(None);
    }
    if !raw.get().starts_with('{') {
        return Err(MessageError::field(field, format!("must be an object, got {}", json_type_name(raw))));
    }
    check_json_values(field, raw.get())?;
    Ok(Some(raw.get().to_string()))
}

/// Reads every value of a JSON object as the store will, so that what is accepted can be
/// read back whole: a number JSON cannot hold in a double (`1e400`) or a string with a lone
/// surrogate (`"\ud800"`) is refused here, with its path, rather than dropped later. The
/// raw-value parse that split the message out only checks the syntax.
fn check_json_values(field: &str, text: &str) -> Result<(), MessageError> {
    let mut path = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let checked = CheckedValue { path: &mut path }.deserialize(&mut de).and_then(|()| de.end());
    checked.map_err(|e| {
        let mut at = field.to_string();
        for key in &path {
            at.push('.');
            at.push_str(key);
        }
        let detail = e.to_string();
        let what = if detail.contains("number out of range") {
            "holds a number too large for a JSON double (at most about 1.8e308); send it as a string"
        } else if detail.contains("surrogate") || detail.contains("hex escape") {
            // The raw parse already checked escapes' syntax: what fails now is a `\uD800`–
            // `\uDFFF` escape without its pair.
            "holds a string with a lone UTF-16 surrogate escape, which is not text; encode the string as UTF-8"
        } else {
            "is not valid JSON"
        };
        MessageError::field(&at, format!("{what} ({detail})"))
    })
}

/// Visits a JSON value fully (numbers parsed, strings decoded), remembering the keys on
/// the way to a failure in `path`.
struct CheckedValue<'p> {
    path: &'p mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for CheckedValue<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CheckedValue<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        if v.is_finite() { Ok(()) } else { Err(E::custom("number out of range")) }
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            self.path.push(format!("[{index}]"));
            if seq.next_element_seed(CheckedValue { path: self.path })?.is_none() {
                self.path.pop();
                return Ok(());
            }
            self.path.pop();
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            self.path.push(key.into_owned());
            map.next_value_seed(CheckedValue { path: self.path })?;
            self.path.pop();
        }
        Ok(())
    }
}

/// Parses an ISO-8601 timestamp field.
pub fn read_timestamp(field: &str, raw: Option<&RawValue>) -> Result<Option<Timestamp>, MessageError> {
    let Some(text) = read_string(field, raw)? else { return Ok(None) };
    parse_timestamp(&text).map(Some).ok_or_else(|| {
        MessageError::field(
            field,
            format!("`{text}` is not an ISO-8601 timestamp (expected e.g. 2026-03-01T12:30:00.000Z)"),
        )
    })
}

/// Refuses an instant outside the plausible range, naming the field.
fn check_plausible(
    field: &str,
    t: Option<Timestamp>,
    plausible: &PlausibleTimes,
    now: Timestamp,
) -> Result<(), MessageError> {
    match t {
        Some(t) => plausible.check(t, now).map_err(|e| MessageError::field(field, e.to_string())),
        None => Ok(()),
    }
}

/// Parses an ISO-8601 timestamp with an offset (`Z`, `+02:00`, `+0200`) or a bare date.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    // `+0000` style offsets: insert the colon jiff expects. The last five characters
    // must then be ASCII, so splitting there is on a character boundary; `split_at_checked`
    // still refuses any other split (text is untrusted).
    if let Some((head, tail)) = text.len().checked_sub(5).and_then(|at| text.split_at_checked(at))
        && let Some((sign, digits)) = tail.split_at_checked(1)
        && (sign == "+" || sign == "-")
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Some((hours, minutes)) = digits.split_at_checked(2)
        && !head.is_empty()
    {
        let fixed = format!("{head}{sign}{hours}:{minutes}");
        if let Ok(ts) = fixed.parse::<Timestamp>() {
            return Some(ts);
        }
    }
    if text.len() == 10
        && let Ok(d) = text.parse::<jiff::civil::Date>()
    {
        return d.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    None
}

/// Validates one message.
///
/// `implied` is the kind given by the endpoint (`/v1/track` implies track); inside a
/// batch it is `None` and the message's own `type` decides. `fallback_id` is used as
/// the message id when the sender gave none (it should be unique per message).
pub fn parse_message(
    text: &str,
    implied: Option<MessageKind>,
    envelope: &Envelope<'_>,
    fallback_id: impl FnOnce() -> String,
) -> Result<TrackingMessage, MessageError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::whole(format!(
            "message is {} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (32 KB)",
            text.len()
        )));
    }
    check_nesting(text, MAX_NESTING)?;
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Err(err) => MessageError::invalid_json(&err),
            Ok(_) => MessageError::whole("a message must be a JSON object"),
        });
    }
    let raw: RawMessage<'_> = serde_json::from_str(text).map_err(|e| MessageError::invalid_json(&e))?;
    validate(raw, implied, envelope, fallback_id)
}

/// Validates one message that was already split out of a batch.
pub fn parse_batch_item(
    raw: &RawValue,
    envelope: &Envelope<'_>,
    fallback_id: impl FnOnce() -> String,
) -> Result<TrackingMessage, MessageError> {
    parse_message(raw.get(), None, envelope, fallback_id)
}

/// Refuses JSON text nested more than `limit` levels deep, before any parser sees it.
pub fn check_nesting(text: &str, limit: usize) -> Result<(), MessageError> {
    match nesting_deeper_than(text, limit) {
        Some(depth) => Err(MessageError::whole(format!(
            "invalid JSON: nested at least {depth} levels deep; the limit is {limit}: flatten the properties"
        ))),
        None => Ok(()),
    }
}

/// Scans JSON text (without parsing it) for objects and arrays nested more than `limit`
/// deep; returns the depth reached when it is. Strings are skipped, escapes honoured.
fn nesting_deeper_than(text: &str, limit: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Some(depth);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn validate(
    raw: RawMessage<'_>,
    implied: Option<MessageKind>,
    envelope: &Envelope<'_>,
    fallback_id: impl FnOnce() -> String,
) -> Result<TrackingMessage, MessageError> {
    let declared = read_string("type", raw.kind)?;
    let kind = match (implied, declared.as_deref()) {
        (Some(k), None) => k,
        (Some(k), Some(t)) if t == k.as_str() => k,
        (Some(k), Some(t)) => {
            return Err(MessageError::field(
                "type",
                format!("is `{t}` but this endpoint takes `{k}` calls; send it to /v1/{t} or /v1/batch"),
            ));
        }
        (None, Some(t)) => MessageKind::parse(t).ok_or_else(|| {
            MessageError::field(
                "type",
                format!("`{t}` is not a known type: expected identify, track, group, page, screen or alias"),
            )
        })?,
        (None, None) => {
            return Err(MessageError::field(
                "type",
                "is missing: a batch message needs one of identify, track, group, page, screen, alias",
            ));
        }
    };

    let user_id = read_id("userId", raw.user_id)?;
    let anonymous_id = read_id("anonymousId", raw.anonymous_id)?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(MessageError::whole("`userId` or `anonymousId` is required (neither was given)"));
    }
    let message_id = read_id("messageId", raw.message_id)?.unwrap_or_else(fallback_id);

    let context = match raw.context {
        Some(c) => read_object("context", Some(c))?,
        None => match envelope.batch_context {
            Some(c) => read_object("context", Some(c))?,
            None => None,
        },
    };
    let context_group = match &context {
        Some(c) => {
            let rc: RawContext<'_> =
                serde_json::from_str(c).map_err(|e| MessageError::field("context", e.to_string()))?;
            read_id("context.groupId", rc.group_id)?
        }
        None => None,
    };

    let mut event = None;
    let mut previous_id = None;
    let group_id;
    let properties;
    match kind {
        MessageKind::Track => {
            event = Some(
                read_name("event", raw.event)?
                    .ok_or_else(|| MessageError::field("event", "is required for a track call"))?,
            );
            properties = read_object("properties", raw.properties)?;
            group_id = context_group;
        }
        MessageKind::Page | MessageKind::Screen => {
            event = read_name("name", raw.name)?;
            properties = read_object("properties", raw.properties)?;
            group_id = context_group;
        }
        MessageKind::Identify => {
            properties = read_object("traits", raw.traits)?;
            group_id = context_group;
        }
        MessageKind::Group => {
            group_id = Some(
                read_id("groupId", raw.group_id)?
                    .ok_or_else(|| MessageError::field("groupId", "is required for a group call"))?,
            );
            properties = read_object("traits", raw.traits)?;
        }
        MessageKind::Alias => {
            previous_id = Some(
                read_id("previousId", raw.previous_id)?
                    .ok_or_else(|| MessageError::field("previousId", "is required for an alias call"))?,
            );
            if user_id.is_none() {
                return Err(MessageError::field("userId", "is required for an alias call"));
            }
            properties = None;
            group_id = context_group;
        }
    }

    let original_timestamp = read_timestamp("timestamp", raw.timestamp)?;
    let own_sent_at = read_timestamp("sentAt", raw.sent_at)?;
    let own_received_at = read_timestamp("receivedAt", raw.received_at)?;
    let sent_at = own_sent_at.or(envelope.batch_sent_at);
    let received_at =
        if envelope.trust_timestamps { own_received_at.unwrap_or(envelope.received_at) } else { envelope.received_at };
    let timestamp = match (original_timestamp, sent_at) {
        (Some(ts), _) if envelope.trust_timestamps => ts,
        (Some(ts), Some(sent)) => {
            // The sender's clock is off by (sentAt - receivedAt); remove that offset.
            let skew = sent.duration_since(received_at);
            ts.checked_sub(skew).unwrap_or(ts)
        }
        (Some(ts), None) => ts,
        (None, _) => received_at,
    };
    // The instant stored is checked, whichever fields it came from; `received_at` is
    // "now" for a live call and, on import, the start of the import.
    let now = envelope.received_at;
    let plausible = &envelope.plausible;
    check_plausible("timestamp", original_timestamp, plausible, now)?;
    if original_timestamp.is_some() && sent_at.is_some() && !envelope.trust_timestamps {
        check_plausible("timestamp", Some(timestamp), plausible, now).map_err(|e| MessageError {
            reason: format!("{} (after correcting for the sender's clock skew by `sentAt`)", e.reason),
            ..e
        })?;
    }
    if envelope.trust_timestamps {
        check_plausible("receivedAt", own_received_at, plausible, now)?;
    }

    Ok(TrackingMessage {
        kind,
        message_id,
        user_id,
        anonymous_id,
        group_id,
        event,
        previous_id,
        timestamp,
        original_timestamp,
        sent_at,
        received_at,
        properties,
        context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(received: &str) -> Envelope<'static> {
        Envelope {
            received_at: received.parse().unwrap(),
            batch_sent_at: None,
            batch_context: None,
            trust_timestamps: false,
            plausible: PlausibleTimes::default(),
        }
    }

    fn parse(text: &str, kind: Option<MessageKind>) -> Result<TrackingMessage, MessageError> {
        parse_message(text, kind, &env("2026-03-01T12:00:00Z"), || "generated".into())
    }

    #[test]
    fn segment_track_example_is_accepted() {
        let m = parse(
            r#"{"userId":"019mr8mf4r","event":"Item Purchased","properties":{"name":"Leap to Conclusions Mat","revenue":14.99},"context":{"ip":"24.5.68.47"},"timestamp":"2012-12-02T00:30:12.984Z"}"#,
            Some(MessageKind::Track),
        )
        .unwrap();
        assert_eq!(m.kind, MessageKind::Track);
        assert_eq!(m.user_id.as_deref(), Some("019mr8mf4r"));
        assert_eq!(m.event.as_deref(), Some("Item Purchased"));
        assert_eq!(m.message_id, "generated");
        assert_eq!(m.timestamp.to_string(), "2012-12-02T00:30:12.984Z");
        assert!(m.properties.unwrap().contains("Leap to Conclusions Mat"));
    }

    #[test]
    fn clock_skew_is_corrected_with_sent_at() {
        // The device clock runs 1 hour fast: it says it sent at 13:00 what arrived at 12:00.
        let m = parse(
            r#"{"userId":"u","event":"e","timestamp":"2026-03-01T12:59:00Z","sentAt":"2026-03-01T13:00:00Z"}"#,
            Some(MessageKind::Track),
        )
        .unwrap();
        assert_eq!(m.timestamp.to_string(), "2026-03-01T11:59:00Z");
        assert_eq!(m.original_timestamp.unwrap().to_string(), "2026-03-01T12:59:00Z");
    }

    #[test]
    fn missing_timestamp_means_received_at() {
        let m = parse(r#"{"anonymousId":"a1","event":"e"}"#, Some(MessageKind::Track)).unwrap();
        assert_eq!(m.timestamp.to_string(), "2026-03-01T12:00:00Z");
    }

    #[test]
    fn context_group_id_binds_a_track_to_an_account() {
        let m = parse(r#"{"userId":"u","event":"e","context":{"groupId":"acme"}}"#, Some(MessageKind::Track)).unwrap();
        assert_eq!(m.group_id.as_deref(), Some("acme"));
    }

    #[test]
    fn numeric_user_ids_become_strings() {
        let m = parse(r#"{"userId":42,"event":"e"}"#, Some(MessageKind::Track)).unwrap();
        assert_eq!(m.user_id.as_deref(), Some("42"));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"event":"e"}"#, "`userId` or `anonymousId` is required (neither was given)"),
            (r#"{"userId":{"a":1},"event":"e"}"#, "`userId` must be a string, got an object"),
            (r#"{"userId":"u"}"#, "`event` is required for a track call"),
            (r#"{"userId":"u","event":""}"#, "`event` must not be empty"),
            (r#"{"userId":"u","event":"e","properties":[1]}"#, "`properties` must be an object, got an array"),
            (
                r#"{"userId":"u","event":"e","timestamp":"yesterday"}"#,
                "`timestamp` `yesterday` is not an ISO-8601 timestamp (expected e.g. 2026-03-01T12:30:00.000Z)",
            ),
            (
                r#"{"userId":"u","event":"e","type":"identify"}"#,
                "`type` is `identify` but this endpoint takes `track` calls; send it to /v1/identify or /v1/batch",
            ),
            (r#"[1,2]"#, "a message must be a JSON object"),
        ];
        for (text, expected) in cases {
            let err = parse(text, Some(MessageKind::Track)).unwrap_err();
            assert_eq!(err.to_string(), expected, "for {text}");
        }
    }

    #[test]
    fn group_needs_group_id_and_batch_items_need_a_type() {
        let err = parse(r#"{"userId":"u"}"#, Some(MessageKind::Group)).unwrap_err();
        assert_eq!(err.to_string(), "`groupId` is required for a group call");
        let err = parse(r#"{"userId":"u","type":"purchase"}"#, None).unwrap_err();
        assert!(err.to_string().starts_with("`type` `purchase` is not a known type"));
    }

    #[test]
    fn timestamps_in_several_iso_forms() {
        for t in [
            "2026-03-01T12:00:00Z",
            "2026-03-01T14:00:00+02:00",
            "2026-03-01T14:00:00+0200",
            "2026-03-01T12:00:00.000Z",
        ] {
            assert_eq!(parse_timestamp(t).unwrap().to_string(), "2026-03-01T12:00:00Z", "{t}");
        }
        assert!(parse_timestamp("2026-03-01T12:00:00").is_none(), "no offset: ambiguous");
    }

    #[test]
    fn a_multibyte_character_where_the_offset_goes_is_not_a_panic() {
        for t in ["aa€0000", "€€€€€€", "x+€00", "2026-03-01T12:00:00+00€", "é"] {
            assert!(parse_timestamp(t).is_none(), "{t}");
        }
    }

    #[test]
    fn a_valid_date_out_of_range_is_not_called_unparseable() {
        let err = parse(r#"{"userId":"u","event":"e","timestamp":"0001-01-01T00:00:00Z"}"#, Some(MessageKind::Track))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("timestamp"));
        assert!(err.reason.starts_with("0001-01-01T00:00:00Z is before the earliest accepted date"), "{err}");
        let err = parse(r#"{"userId":"u","event":"e","timestamp":"2026-03-03T00:00:00Z"}"#, Some(MessageKind::Track))
            .unwrap_err();
        assert!(err.reason.contains("is later than 2026-03-02T12:00:00Z"), "{err}");
    }

    #[test]
    fn json_a_reader_cannot_hold_is_refused_with_its_path() {
        let cases = [
            (r#"{"userId":"u","traits":{"a":{"b":[0,1e400]}}}"#, "traits.a.b.[1]"),
            (r#"{"userId":"u","traits":{"s":"\ud800"}}"#, "traits.s"),
            (r#"{"userId":"u","context":{"x":-1e309}}"#, "context.x"),
        ];
        for (text, field) in cases {
            let err = parse(text, Some(MessageKind::Identify)).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{text}: {err}");
        }
        assert!(
            parse(r#"{"userId":"u","traits":{"n":1e308,"s":"\ud83d\ude00"}}"#, Some(MessageKind::Identify)).is_ok()
        );
    }

    #[test]
    fn names_are_limited_in_characters_and_free_of_control_characters() {
        let ok = format!(r#"{{"userId":"u","event":"{}"}}"#, "€".repeat(200));
        assert!(parse(&ok, Some(MessageKind::Track)).is_ok(), "200 characters (600 bytes) fit");
        let long = format!(r#"{{"userId":"u","event":"{}"}}"#, "a".repeat(201));
        let err = parse(&long, Some(MessageKind::Track)).unwrap_err();
        assert_eq!(err.to_string(), "`event` is 201 characters long; the limit is 200 characters");
        let err = parse(r#"{"userId":"u","event":"a\u001bb"}"#, Some(MessageKind::Track)).unwrap_err();
        assert_eq!(err.to_string(), "`event` must not contain control characters (found U+001B); remove it");
        let err = parse(r#"{"userId":"u","name":"a\u0085b"}"#, Some(MessageKind::Page)).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("name"));
    }

    #[test]
    fn a_hugely_nested_batch_body_is_refused_without_recursion() {
        let body = format!(r#"{{"batch":[{}]}}"#, "[".repeat(200_000));
        let err = check_nesting(&body, MAX_NESTING + 2).unwrap_err();
        assert!(err.to_string().starts_with("invalid JSON: nested at least 67 levels deep"));
    }

    #[test]
    fn oversize_message_is_refused() {
        let big = format!(r#"{{"userId":"u","event":"e","properties":{{"x":"{}"}}}}"#, "a".repeat(MAX_MESSAGE_BYTES));
        let err = parse(&big, Some(MessageKind::Track)).unwrap_err();
        assert!(err.to_string().contains("the limit is 32768 bytes"));
    }

    #[test]
    fn deep_nesting_is_a_clear_error() {
        let deep = format!(r#"{{"userId":"u","event":"e","properties":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        let err = parse(&deep, Some(MessageKind::Track)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON: nested at least 65 levels deep; the limit is 64: flatten the properties"
        );
        let object =
            format!(r#"{{"userId":"u","event":"e","properties":{}1{}}}"#, r#"{"a":"#.repeat(100), "}".repeat(100));
        assert!(
            parse(&object, Some(MessageKind::Track)).unwrap_err().to_string().contains("nested at least 65 levels")
        );
        let quoted =
            format!(r#"{{"userId":"u","event":"e","properties":{{"s":"{}\"{}"}}}}"#, "[".repeat(100), "{".repeat(100));
        assert!(parse(&quoted, Some(MessageKind::Track)).is_ok(), "brackets inside strings are text");
    }
}
