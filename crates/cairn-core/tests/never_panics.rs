//! Every parser of untrusted input in cairn-core, fed arbitrary input: tracking messages
//! (as text, as bytes, as message-shaped JSON of every type, and in batches), NDJSON
//! import lines, and CSV rows of each kind. None may panic; what is accepted must be
//! whole (its JSON reads back, its date is plausible, its names are clean), and a refusal
//! names what is wrong.

use cairn_core::import::{Header, ImportKind, parse_account, parse_contact, parse_subscription};
use cairn_core::plausible::PlausibleTimes;
use cairn_core::tracking::{
    Envelope, MAX_NAME_CHARS, MessageKind, RawBatch, TrackingMessage, parse_batch_item, parse_message, parse_timestamp,
};
use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// At least 10,000 cases per parser, as CI requires.
const CASES: u32 = 10_000;

const KINDS: [Option<MessageKind>; 7] = [
    None,
    Some(MessageKind::Identify),
    Some(MessageKind::Track),
    Some(MessageKind::Group),
    Some(MessageKind::Page),
    Some(MessageKind::Screen),
    Some(MessageKind::Alias),
];

fn now() -> Timestamp {
    Timestamp::constant(1_772_366_400, 0) // 2026-03-01T12:00:00Z
}

fn envelope(trust_timestamps: bool) -> Envelope<'static> {
    Envelope {
        received_at: now(),
        batch_sent_at: None,
        batch_context: None,
        trust_timestamps,
        plausible: PlausibleTimes::default(),
    }
}

/// What an accepted message must be: everything in it readable back, nothing out of range.
fn assert_whole(m: &TrackingMessage) {
    for text in [&m.properties, &m.context].into_iter().flatten() {
        assert!(serde_json::from_str::<Map<String, Value>>(text).is_ok(), "accepted JSON does not read back: {text}");
    }
    assert!(PlausibleTimes::default().check(m.timestamp, now()).is_ok(), "implausible date accepted: {}", m.timestamp);
    if let Some(name) = &m.event {
        assert!(!name.chars().any(char::is_control), "control character accepted in {name:?}");
        assert!(name.chars().count() <= MAX_NAME_CHARS);
    }
    for id in
        [Some(&m.message_id), m.user_id.as_ref(), m.anonymous_id.as_ref(), m.group_id.as_ref()].into_iter().flatten()
    {
        assert!(!id.is_empty() && !id.chars().any(char::is_control), "bad id accepted: {id:?}");
    }
}

/// As every endpoint reads it, and as an import line.
fn parse_every_way(text: &str) {
    let import = (None, true);
    for (kind, trust) in KINDS.into_iter().map(|k| (k, false)).chain([import]) {
        match parse_message(text, kind, &envelope(trust), || "fallback".into()) {
            Ok(m) => assert_whole(&m),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// Text that looks like a timestamp, with odd characters where offsets and digits go.
fn timestamp_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?",
        "[0-9€é+:TZ-]{0,30}",
        short_text(),
    ]
}

fn json_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        Just("1e400".to_string()),
        Just("-1e999".to_string()),
        Just("123456789012345678901234567890".to_string()),
        short_text().prop_map(|s| Value::String(s).to_string()),
        Just(r#""\ud800""#.to_string()),
        Just(r#""\udc00\ud800""#.to_string()),
        Just(r#""\ud83d\ude00""#.to_string()),
        Just(r#""a\u0000b\u001b\r\n""#.to_string()),
        timestamp_like().prop_map(|s| Value::String(s).to_string()),
    ]
}

/// JSON text (not a `Value`, so that numbers and escapes a `Value` cannot hold appear).
fn json_text() -> impl Strategy<Value = String> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-zA-Z\\\\\"]{0,6}", inner), 0..6).prop_map(|kv| {
                let fields: Vec<String> = kv.into_iter().map(|(k, v)| format!("{}:{v}", Value::String(k))).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

const FIELDS: [&str; 14] = [
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "groupId",
    "previousId",
    "event",
    "name",
    "timestamp",
    "sentAt",
    "receivedAt",
    "properties",
    "traits",
    "context",
];

/// A message-shaped object: known fields (sometimes with fitting values) and strays.
fn message_text() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        3 => json_text(),
        2 => prop::sample::select(vec!["identify", "track", "group", "page", "screen", "alias"])
            .prop_map(|t| format!("\"{t}\"")),
        2 => timestamp_like().prop_map(|s| Value::String(s).to_string()),
        1 => "[a-z0-9 ]{0,8}".prop_map(|s| format!("\"{s}\"")),
    ];
    let field = prop_oneof![prop::sample::select(FIELDS.to_vec()).prop_map(str::to_string), "[a-zA-Z.]{0,8}"];
    prop::collection::vec((field, value), 0..8).prop_map(|kv| {
        let fields: Vec<String> = kv.into_iter().map(|(k, v)| format!("{}:{v}", Value::String(k))).collect();
        format!("{{{}}}", fields.join(","))
    })
}

fn parse_batch(text: &str) {
    let Ok(batch) = serde_json::from_str::<RawBatch<'_>>(text) else { return };
    let batch_sent_at = batch.sent_at.and_then(|s| serde_json::from_str::<String>(s.get()).ok());
    let envelope = Envelope {
        received_at: now(),
        batch_sent_at: batch_sent_at.as_deref().and_then(parse_timestamp),
        batch_context: batch.context,
        trust_timestamps: false,
        plausible: PlausibleTimes::default(),
    };
    for item in batch.batch.unwrap_or_default() {
        if let Ok(m) = parse_batch_item(item, &envelope, || "fallback".into()) {
            assert_whole(&m);
        }
    }
}

/// Short arbitrary text: any characters, cheap to generate.
fn short_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter)
}

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        short_text(),
        "[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,2}",
        "-?[0-9]{0,25}(\\.[0-9]{0,4})?",
        "[a-zA-Z0-9.@_ -]{0,20}",
        Just("Europe/Paris".to_string()),
        Just("acme.com; www.ACME.io".to_string()),
        Just("\u{0}\u{1b}\r\n".to_string()),
    ]
}

fn csv_row(kind: ImportKind, header: &str, fields: &[String]) {
    let names: Vec<&str> = header.split(',').collect();
    let header = Header::parse(kind, &names).expect("the test headers are valid");
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let _ = match kind {
        ImportKind::Accounts => parse_account(&header, 2, &fields).map(|_| ()),
        ImportKind::Contacts => parse_contact(&header, 2, &fields).map(|_| ()),
        ImportKind::Subscriptions => parse_subscription(&header, 2, &fields).map(|_| ()),
    }
    .map_err(|e| assert!(!e.reason.is_empty()));
}

const ACCOUNTS: &str =
    "external_id,name,industry,employees,plan,seats,owner_email,start_date,renewal_date,domains,billing_id,crm_id,tier";
const CONTACTS: &str = "external_id,account_external_id,email,name,role,timezone,product_id,support_id,nps";
const SUBSCRIPTIONS: &str = "id,account_id,start_date,end_date,arr,seats,product,billing_id,region";

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn tracking_messages_from_arbitrary_text_never_panic(text in any::<String>()) {
        parse_every_way(&text);
    }

    #[test]
    fn tracking_messages_from_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            parse_every_way(text);
        }
        parse_every_way(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn message_shaped_json_of_every_type_never_panics(text in message_text()) {
        parse_every_way(&text);
    }

    #[test]
    fn batches_never_panic(items in prop::collection::vec(message_text(), 0..3), sent_at in timestamp_like(), context in json_text()) {
        let body = format!(
            r#"{{"batch":[{}],"sentAt":{},"context":{context}}}"#,
            items.join(","),
            Value::String(sent_at)
        );
        parse_batch(&body);
    }

    #[test]
    fn timestamps_never_panic(text in timestamp_like()) {
        let _ = parse_timestamp(&text);
        let _ = PlausibleTimes::default().with_earliest(&text);
    }

    #[test]
    fn ndjson_import_lines_never_panic(line in prop_oneof![message_text(), short_text()]) {
        match parse_message(line.trim(), None, &envelope(true), || "import-line".into()) {
            Ok(m) => assert_whole(&m),
            Err(e) => prop_assert!(!e.reason.is_empty()),
        }
    }

    #[test]
    fn account_rows_never_panic(fields in prop::collection::vec(csv_cell(), 13)) {
        csv_row(ImportKind::Accounts, ACCOUNTS, &fields);
    }

    #[test]
    fn contact_rows_never_panic(fields in prop::collection::vec(csv_cell(), 9)) {
        csv_row(ImportKind::Contacts, CONTACTS, &fields);
    }

    #[test]
    fn subscription_rows_never_panic(fields in prop::collection::vec(csv_cell(), 9)) {
        csv_row(ImportKind::Subscriptions, SUBSCRIPTIONS, &fields);
    }

    #[test]
    fn rows_with_the_wrong_number_of_fields_never_panic(fields in prop::collection::vec(csv_cell(), 0..16)) {
        csv_row(ImportKind::Accounts, ACCOUNTS, &fields);
        csv_row(ImportKind::Contacts, CONTACTS, &fields);
        csv_row(ImportKind::Subscriptions, SUBSCRIPTIONS, &fields);
    }
}
