//! `/v1/*`: the Segment-compatible tracking API (`crate::tracking`) and the in-app inbox
//! (`crate::inapp`).

use serde_json::{Value, json};

use super::schema::*;
use super::{Op, Operation};

pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let message = |kind: &str, extra: &[(&str, Value)]| {
        let mut props = vec![
            ("userId", text("The product's id of the user (this or anonymousId).")),
            ("anonymousId", text("A device's id before the user is known.")),
            ("messageId", text("Unique per message: a retried message is stored once.")),
            ("timestamp", described(timestamp(), "When it happened (corrected for clock skew with sentAt).")),
            ("sentAt", described(timestamp(), "When the client sent it.")),
            ("context", any_object("The Segment context (ip, library, …).")),
            ("integrations", any_object("Ignored.")),
            ("writeKey", text("The write key, when not sent as the Basic user name.")),
        ];
        props.extend(extra.iter().cloned());
        let mut s = object(&props, &[]);
        s["additionalProperties"] = json!(true);
        s["description"] = json!(format!("A Segment `{kind}` message."));
        s
    };
    let traits = || any_object("Traits: name, email, plan, seats, … and custom ones.");
    let properties = || any_object("The event's properties.");
    vec![
        ("Identify", message("identify", &[("traits", traits())])),
        ("Track", message("track", &[("event", text("The event's name (required).")), ("properties", properties())])),
        ("Group", message("group", &[("groupId", text("The account's product id (required).")), ("traits", traits())])),
        ("Page", message("page", &[("name", string()), ("properties", properties())])),
        ("Screen", message("screen", &[("name", string()), ("properties", properties())])),
        ("Alias", message("alias", &[("previousId", text("The id the user had before (required)."))])),
        (
            "Batch",
            described(
                open_record(&[(
                    "batch",
                    array(
                        json!({ "type": "object", "description": "A message with its `type` (identify, track, …)." }),
                    ),
                )]),
                "Messages of any type, each with `type`; `sentAt`, `context` and `writeKey` beside `batch` \
apply to all.",
            ),
        ),
        (
            "Acknowledged",
            record(&[("success", json!({ "type": "boolean", "enum": [true] })), ("duplicate", boolean())]),
        ),
        (
            "RejectedMessage",
            record(&[
                ("index", count()),
                ("messageId", nullable(string())),
                ("field", nullable(string())),
                ("error", string()),
            ]),
        ),
        (
            "BatchAcknowledged",
            record(&[
                ("success", json!({ "type": "boolean", "enum": [true] })),
                ("accepted", count()),
                ("duplicates", count()),
                ("rejected", array(reference("RejectedMessage"))),
            ]),
        ),
        (
            "BatchRejected",
            described(
                record(&[
                    ("success", json!({ "type": "boolean", "enum": [false] })),
                    ("accepted", count()),
                    ("duplicates", count()),
                    ("rejected", array(reference("RejectedMessage"))),
                    ("error", string()),
                ]),
                "Every message of the batch was rejected: each one listed.",
            ),
        ),
        (
            "InAppMessage",
            record(&[
                ("id", integer()),
                ("title", string()),
                ("body_html", text("Rendered, escaped HTML.")),
                ("created_at", timestamp()),
                ("seen_at", nullable(timestamp())),
                ("clicked_at", nullable(timestamp())),
                ("dismissed_at", nullable(timestamp())),
            ]),
        ),
    ]
}

pub(super) fn operations() -> Vec<Operation> {
    let single = |path: &'static str, id: &str, kind: &str, example: Value| {
        Op::post(path, id, &format!("Records a `{kind}` message."))
            .describe(
                "Answered after the message is committed. A message whose `messageId` was stored before is \
acknowledged with `duplicate: true` and stored once.",
            )
            .tag("tracking")
            .write_key()
            .body(reference(kind), true, example)
            .ok(reference("Acknowledged"))
            .done()
    };
    let batch = |path: &'static str, id: &str, summary: &str| {
        Op::post(path, id, summary)
            .describe(
                "Every valid message is kept, each invalid one listed in `rejected` with its index and reason; \
a batch whose every message is rejected is a 400 listing them.",
            )
            .tag("tracking")
            .write_key()
            .body(
                reference("Batch"),
                true,
                json!({ "batch": [
                    { "type": "identify", "userId": "u-42", "messageId": "b-1", "traits": { "email": "ada@acme.example" } },
                    { "type": "track", "userId": "u-42", "messageId": "b-2", "event": "report_created" },
                ]}),
            )
            .ok(reference("BatchAcknowledged"))
            .status(
                400,
                "Not a batch, or every message rejected.",
                json!({ "oneOf": [reference("Error"), reference("BatchRejected")] }),
            )
            .done()
    };
    let user_id = "The product's id of the user whose inbox it is.";
    let user_hash = "Hex HMAC-SHA256 of userId with the key's identity secret (required while identity \
verification is on; `cairn keys identity-secret NAME`).";
    vec![
        single(
            "/v1/identify",
            "identify",
            "Identify",
            json!({ "userId": "u-42", "messageId": "id-1", "traits": { "email": "ada@acme.example", "role": "admin" } }),
        ),
        single(
            "/v1/track",
            "track",
            "Track",
            json!({ "userId": "u-42", "messageId": "tr-1", "event": "report_created", "properties": { "pages": 3 } }),
        ),
        single(
            "/v1/group",
            "group",
            "Group",
            json!({ "userId": "u-42", "messageId": "gr-1", "groupId": "acme", "traits": { "name": "Acme", "plan": "team" } }),
        ),
        single("/v1/page", "page", "Page", json!({ "userId": "u-42", "messageId": "pg-1", "name": "Dashboard" })),
        single("/v1/screen", "screen", "Screen", json!({ "userId": "u-42", "messageId": "sc-1", "name": "Home" })),
        single("/v1/alias", "alias", "Alias", json!({ "userId": "u-42", "messageId": "al-1", "previousId": "anon-7" })),
        batch("/v1/batch", "batch", "Records a batch of messages."),
        batch(
            "/v1/import",
            "import",
            "Records a batch of messages (Segment's import endpoint: the same as /v1/batch).",
        ),
        Op::get("/v1/inapp/messages", "inappMessages", "A user's in-app messages, newest first.")
            .describe("Empty for a user cairn does not know (yet). CORS is open to every origin.")
            .tag("in-app")
            .publishable()
            .query_required("userId", string(), user_id, "u-42")
            .query("userHash", string(), user_hash)
            .query_example("include_dismissed", boolean(), "Also the dismissed ones (default false).", "true")
            .header("X-Cairn-User-Hash", "userHash, as a header.")
            .ok(record(&[("messages", array(reference("InAppMessage")))]))
            .error(400, "BadRequest")
            .done(),
        Op::options("/v1/inapp/messages", "inappMessagesPreflight", "The CORS preflight.")
            .tag("in-app")
            .public()
            .empty(204, "The methods and headers a browser may use.")
            .done(),
        Op::post("/v1/inapp/messages/{id}/{action}", "inappMark", "Marks one of the user's in-app messages.")
            .describe(
                "Records the engagement on the send that put it there (clicked and dismissed imply seen), and \
answers the message as it now is. 404 for a message that is not the user's.",
            )
            .tag("in-app")
            .publishable()
            .path_param("id", "The message's id.", "1")
            .path_enum("action", "What the user did.", &["seen", "clicked", "dismissed"])
            .query("userId", string(), user_id)
            .query("userHash", string(), user_hash)
            .header("X-Cairn-User-Hash", "userHash, as a header.")
            .body(
                object(&[("userId", text(user_id)), ("userHash", text(user_hash))], &[]),
                false,
                json!({ "userId": "u-42", "userHash": "…" }),
            )
            .ok(record(&[
                ("success", json!({ "type": "boolean", "enum": [true] })),
                ("message", reference("InAppMessage")),
            ]))
            .error(404, "NotFound")
            .done(),
        Op::options("/v1/inapp/messages/{id}/{action}", "inappMarkPreflight", "The CORS preflight.")
            .tag("in-app")
            .public()
            .path_param("id", "The message's id.", "1")
            .path_enum("action", "What the user did.", &["seen", "clicked", "dismissed"])
            .empty(204, "The methods and headers a browser may use.")
            .done(),
    ]
}
