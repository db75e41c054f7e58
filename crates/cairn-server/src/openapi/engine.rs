//! `/api/*` over the engine's state (`crate::api`), the programs' tasks (`crate::tasks`)
//! and what became of sends (`crate::delivery`).

use serde_json::{Value, json};

use super::schema::*;
use super::{Op, Operation};

fn success() -> Value {
    json!({ "type": "boolean", "enum": [true] })
}

fn band() -> Value {
    one_of_strings(&["red", "yellow", "green"])
}

pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let subject_kind = || one_of_strings(&["account", "contact"]);
    vec![
        (
            "AccountSummary",
            record(&[
                ("id", described(count(), "cairn's id.")),
                ("name", nullable(string())),
                ("plan", nullable(string())),
                ("arr", described(nullable(number()), "ARR today, in currency units.")),
                ("stage", described(nullable(string()), "The journey stage.")),
                ("health", described(nullable(number()), "The computed score, 0–100.")),
                ("band", nullable(band())),
                ("health_override", described(nullable(number()), "A CSM's override in force.")),
                ("segments", array(string())),
            ]),
        ),
        (
            "Milestone",
            record(&[
                ("id", string()),
                ("stage", string()),
                ("status", one_of_strings(&["pending", "achieved", "missed"])),
                ("at", described(nullable(timestamp()), "When it was achieved or missed.")),
                ("value", described(boolean(), "Whether it is the value milestone (Time to Value).")),
            ]),
        ),
        (
            "MeasureScore",
            record(&[
                ("id", string()),
                ("value", described(nullable(number()), "The measure's value; null without data.")),
                ("score", described(nullable(number()), "0–100.")),
                ("weight", number()),
                ("share", described(number(), "Its share of the pillar once no-data weights are spread.")),
                ("contribution", described(number(), "Points it adds to the pillar's score.")),
            ]),
        ),
        (
            "PillarScore",
            record(&[
                ("id", string()),
                ("score", nullable(number())),
                ("weight", number()),
                ("share", number()),
                ("measures", array(reference("MeasureScore"))),
            ]),
        ),
        (
            "Health",
            described(
                record(&[
                    ("model", string()),
                    ("score", nullable(number())),
                    ("band", nullable(band())),
                    ("pillars", array(reference("PillarScore"))),
                    (
                        "dragging",
                        described(nullable(tuple(&[string(), string()])), "(pillar, measure) pulling it down."),
                    ),
                    ("trend_7d", described(nullable(number()), "Change of the score over 7 days.")),
                    ("trend_30d", nullable(number())),
                ]),
                "Health by pillar with its explanation and trend.",
            ),
        ),
        (
            "HealthOverride",
            record(&[
                ("score", number()),
                ("reason", string()),
                ("by", string()),
                ("set_at", timestamp()),
                ("expires_at", timestamp()),
            ]),
        ),
        (
            "HealthOverrideRecord",
            described(
                record(&[
                    ("id", integer()),
                    ("account_id", integer()),
                    ("score", described(nullable(number()), "null: this row cleared the override.")),
                    ("reason", string()),
                    ("set_by", string()),
                    ("set_at", timestamp()),
                    ("expires_at", nullable(timestamp())),
                ]),
                "One row of the audit trail of overrides.",
            ),
        ),
        ("Contact", record(&[("id", count()), ("traits", map(any("A trait value."))), ("segments", array(string()))])),
        (
            "Transition",
            record(&[
                ("seq", integer()),
                ("at", timestamp()),
                ("subject_kind", subject_kind()),
                ("subject_id", integer()),
                ("kind", text("segment_entered, milestone_missed, health_band_changed, …")),
                ("detail", any("Details of the transition.")),
                ("backfill", described(boolean(), "Found while replaying history, not live.")),
            ]),
        ),
        (
            "TimelineEntry",
            described(
                record(&[
                    ("at", described(timestamp(), "The newest instant the row covers.")),
                    ("when", text("`at` as people read it (UTC, to the minute).")),
                    ("kind", one_of_strings(&["event", "message", "task", "transition", "note", "override"])),
                    ("text", text("What happened, in words (plain text).")),
                    ("by", described(nullable(string()), "Who did it: an author, an assignee.")),
                    (
                        "count",
                        described(
                            count(),
                            "Events grouped into the row (by contact, name and UTC day); 1 for other kinds.",
                        ),
                    ),
                    (
                        "detail",
                        described(
                            nullable(string()),
                            "An event's properties (shortened), a message's opens, clicks and bounces.",
                        ),
                    ),
                    ("links", array(record(&[("href", text("A page of the UI.")), ("label", string())]))),
                ]),
                "One row of the account 360's merged timeline.",
            ),
        ),
        (
            "ContactEngagement",
            described(
                record(&[
                    ("id", count()),
                    ("name", string()),
                    ("email", nullable(string())),
                    ("role", nullable(string())),
                    ("segments", array(string())),
                    (
                        "activity",
                        record(&[
                            ("contact_id", integer()),
                            ("events_30d", described(count(), "Events in the last 30 days.")),
                            ("active_days_30d", described(count(), "UTC days with an event in the last 30 days.")),
                            ("last_seen", described(nullable(timestamp()), "The latest event in the last 90 days.")),
                            ("received", described(count(), "Messages programs sent it.")),
                            ("opened", count()),
                            ("clicked", count()),
                            ("bounced", count()),
                            ("last_message_at", nullable(timestamp())),
                        ]),
                    ),
                    ("open_rate", described(nullable(number()), "opened / received; null when nothing was received.")),
                    ("click_rate", described(nullable(number()), "clicked / received.")),
                ]),
                "A contact of an account with its activity and how it answers messages.",
            ),
        ),
        (
            "Account",
            described(
                record(&[
                    ("id", count()),
                    ("traits", map(any("A trait value."))),
                    ("segments", array(string())),
                    ("stage", nullable(string())),
                    ("stage_since", nullable(timestamp())),
                    ("milestones", array(reference("Milestone"))),
                    ("time_to_value_days", nullable(number())),
                    ("health", nullable(reference("Health"))),
                    ("health_override", nullable(reference("HealthOverride"))),
                    ("contacts", array(reference("Contact"))),
                    ("timeline", described(array(reference("Transition")), "The latest 50 transitions.")),
                ]),
                "The account 360.",
            ),
        ),
        (
            "SegmentSummary",
            record(&[
                ("id", string()),
                ("name", nullable(string())),
                ("of", subject_kind()),
                ("rule", string()),
                ("members", count()),
            ]),
        ),
        ("SubjectRef", record(&[("kind", subject_kind()), ("id", count())])),
        (
            "Task",
            record(&[
                ("id", integer()),
                ("enrollment_id", integer()),
                ("step_id", string()),
                ("account_id", nullable(integer())),
                ("contact_id", nullable(integer())),
                ("title", string()),
                ("body", string()),
                ("assignee", nullable(string())),
                ("pool", nullable(string())),
                ("priority", one_of_strings(&["low", "normal", "high", "urgent"])),
                ("due_at", nullable(timestamp())),
                ("created_at", timestamp()),
                ("completed_by", nullable(string())),
                ("completed_at", nullable(timestamp())),
                ("outcome", nullable(text("What the CSM recorded on completing it (from the UI)."))),
            ]),
        ),
        (
            "DeadLetter",
            record(&[
                ("id", integer()),
                ("due_step_id", integer()),
                ("enrollment_id", integer()),
                ("program_id", string()),
                ("subject_kind", subject_kind()),
                ("subject_id", integer()),
                ("step_id", string()),
                ("attempt", count()),
                ("reason", string()),
                ("at", timestamp()),
            ]),
        ),
        (
            "ProgramPreview",
            record(&[
                ("program", string()),
                ("name", nullable(string())),
                ("subject", subject_kind()),
                ("trigger", string()),
                ("as_of", timestamp()),
                ("basis", text("How the audience was counted.")),
                ("audience", count()),
                ("holdout", count()),
                ("treated", count()),
                ("by_segment", array(record(&[("segment", string()), ("count", count())]))),
                (
                    "samples",
                    array(record(&[
                        ("subject", reference("SubjectRef")),
                        ("to", nullable(string())),
                        ("step", string()),
                        ("template", string()),
                        ("subject_line", string()),
                        ("text", string()),
                        ("html", string()),
                        ("error", nullable(string())),
                    ])),
                ),
            ]),
        ),
    ]
}

pub(super) fn operations() -> Vec<Operation> {
    vec![
        Op::get("/api/accounts", "listAccounts", "Every account with its stage, health and segments.")
            .tag("accounts")
            .secret()
            .ok(record(&[("accounts", array(reference("AccountSummary")))]))
            .error(404, "NotFound")
            .done(),
        Op::get("/api/accounts/{id}", "getAccount", "The account 360.")
            .describe("Traits, segments, stage, milestones, health by pillar with explanation and trend, the override in force, contacts and the latest transitions.")
            .tag("accounts")
            .secret()
            .path_param("id", "cairn id, CRM id or product id.", "1")
            .ok(reference("Account"))
            .error(404, "NotFound")
            .done(),
        Op::get("/api/accounts/{id}/timeline", "getAccountTimeline", "One page of the account 360's merged timeline.")
            .describe("Product events (grouped by contact, event and day), messages sent with their engagement, tasks created and completed, transitions, notes and overrides, newest first. `older` is the `before` of the next page (null when there is none).")
            .tag("accounts")
            .secret()
            .path_param("id", "cairn id, CRM id or product id.", "1")
            .query("before", string(), "Rows strictly before this instant (RFC 3339 or ms since the epoch).")
            .query_example("kind", string(), "Kinds, comma-separated: event, message, task, transition, note, override.", "event,message")
            .ok(record(&[
                ("account", count()),
                ("entries", array(reference("TimelineEntry"))),
                ("older", nullable(timestamp())),
            ]))
            .error(400, "BadRequest")
            .error(404, "NotFound")
            .done(),
        Op::get("/api/accounts/{id}/contacts", "getAccountContacts", "The account's contacts with their engagement.")
            .describe("By default the 10 most active; `contacts=all` lists every contact, 50 a page.")
            .tag("accounts")
            .secret()
            .path_param("id", "cairn id, CRM id or product id.", "1")
            .query_example("sort", one_of_strings(&["activity", "name", "last_seen", "opened", "received"]), "The order (default activity).", "last_seen")
            .query_example("contacts", one_of_strings(&["all"]), "`all`: every contact, a page at a time.", "all")
            .query("page", string(), "The page of every contact, from 1.")
            .query("contact", string(), "A contact (cairn id) to list whatever the order.")
            .ok(record(&[
                ("account", count()),
                (
                    "contacts",
                    record(&[
                        ("lines", array(reference("ContactEngagement"))),
                        ("total", count()),
                        ("sort", one_of_strings(&["activity", "name", "last_seen", "opened", "received"])),
                        ("all", boolean()),
                        ("page", count()),
                        ("pages", count()),
                    ]),
                ),
            ]))
            .error(400, "BadRequest")
            .error(404, "NotFound")
            .done(),
        Op::post("/api/accounts/{id}/health/override", "overrideHealth", "Sets or clears a CSM's health override.")
            .describe("Audited: every override is a new row, never an edit. `score: null` clears it; it expires at `expires_at` or after `days` (default 30).")
            .tag("accounts")
            .secret()
            .path_param("id", "cairn id, CRM id or product id.", "1")
            .body(
                object(
                    &[
                        ("score", described(nullable(json!({ "type": "number", "minimum": 0, "maximum": 100 })), "null clears.")),
                        ("reason", text("Why (required).")),
                        ("expires_at", described(timestamp(), "When it stops applying; or…")),
                        ("days", described(count(), "…how many days from now (default 30).")),
                        ("by", text("Who sets it (default: the key's name).")),
                    ],
                    &["reason"],
                ),
                true,
                json!({ "score": 75, "reason": "renewal agreed on the phone", "days": 30 }),
            )
            .ok(record(&[
                ("success", success()),
                ("account", described(count(), "cairn's id of the account.")),
                ("history", array(reference("HealthOverrideRecord"))),
            ]))
            .error(404, "NotFound")
            .error(409, "Conflict")
            .done(),
        Op::get("/api/segments", "listSegments", "Every segment with its rule and size.")
            .tag("accounts")
            .secret()
            .ok(record(&[("segments", array(reference("SegmentSummary")))]))
            .error(404, "NotFound")
            .done(),
        Op::get("/api/segments/{id}/members", "segmentMembers", "A segment's members.")
            .tag("accounts")
            .secret()
            .path_param("id", "The segment's id.", "new_customers")
            .ok(record(&[("segment", string()), ("count", count()), ("members", array(reference("SubjectRef")))]))
            .error(404, "NotFound")
            .done(),
        Op::post("/api/workspace/reload", "reloadWorkspace", "Loads the workspace folder again.")
            .describe("Invalid definitions are answered with every diagnostic (FILE:LINE:COL), and the running ones stay.")
            .tag("accounts")
            .secret()
            .ok(record(&[("success", success()), ("loaded", text("What was loaded, in a line."))]))
            .status(
                400,
                "The workspace has problems; the running definitions are kept.",
                json!({ "oneOf": [
                    reference("Error"),
                    record(&[
                        ("success", json!({ "type": "boolean", "enum": [false] })),
                        ("error", string()),
                        ("diagnostics", array(text("FILE:LINE:COL: message"))),
                    ]),
                ]}),
            )
            .error(404, "NotFound")
            .error(409, "Conflict")
            .done(),
        Op::post("/api/email/feedback", "emailFeedback", "A mail provider's bounce or complaint callback.")
            .describe("cairn's shape, Postmark's or Amazon SES's (bare or in an SNS envelope). A hard bounce or a complaint suppresses the address; one naming a Message-ID cairn sent is recorded on that send.")
            .tag("programs")
            .secret()
            .body(
                json!({ "type": "object", "description": "cairn's shape: `type` (bounce|complaint), `email`, `bounce_type` (hard|soft, for bounces), `message_id`; or a Postmark or SES notification." }),
                true,
                json!({ "type": "bounce", "email": "nobody@bounce.example", "bounce_type": "hard" }),
            )
            .ok(record(&[("success", success()), ("suppressed", count()), ("recorded", count())]))
            .done(),
        Op::get("/api/programs/dead-letters", "deadLetters", "Steps that failed for good, newest first.")
            .tag("programs")
            .secret()
            .query_example("limit", json!({ "type": "integer", "minimum": 1, "maximum": 1000 }), "At most this many (default 100).", "5")
            .ok(record(&[("count", count()), ("dead_letters", array(reference("DeadLetter")))]))
            .error(400, "BadRequest")
            .done(),
        Op::get("/api/programs/{id}/preview", "previewProgram", "A program's dry run.")
            .describe("Its audience, holdout, audience by segment and three rendered first messages, as of now or an instant. Writes nothing.")
            .tag("programs")
            .secret()
            .path_param("id", "The program's id.", "onboarding_welcome")
            .query_example("as_of", string(), "An instant (RFC 3339) or a day; default now.", "2026-02-01")
            .ok(reference("ProgramPreview"))
            .error(400, "BadRequest")
            .error(404, "NotFound")
            .done(),
        Op::get("/api/programs/{id}/dry-run", "dryRunProgram", "What a program would have done over a period of history.")
            .describe("Replays the log over the period (at most 366 days) in a scratch database with the program added: enrollments, holdout, sends per step and variant, caps and quiet hours hit, tasks created and sample messages. Nothing is sent and nothing is written to this database.")
            .tag("programs")
            .secret()
            .path_param("id", "The program's id.", "onboarding_welcome")
            .query_required("from", string(), "A day (its start) or an instant.", "2026-02-20")
            .query_required("to", string(), "A day (its end) or an instant.", "2026-02-24")
            .ok(any_object("The dry run's report: what `cairn program preview ID --from --to --json` prints."))
            .error(400, "BadRequest")
            .error(404, "NotFound")
            .done(),
        Op::get("/api/tasks", "listTasks", "Open tasks, most urgent first.")
            .tag("programs")
            .secret()
            .query("assignee", string(), "Only this assignee's.")
            .query_example("pool", string(), "Only this pool's.", "digital")
            .ok(record(&[("count", count()), ("tasks", array(reference("Task")))]))
            .error(400, "BadRequest")
            .done(),
        Op::post("/api/tasks/{id}/complete", "completeTask", "Marks a task done.")
            .describe("Appends `task_completed` to the log for the contact it is about, so rules and health can count it.")
            .tag("programs")
            .secret()
            .path_param("id", "The task's id (`GET /api/tasks`).", "1")
            .body(
                object(&[("by", text("Who did it (default: the key's name)."))], &[]),
                false,
                json!({ "by": "ana@cairn.example" }),
            )
            .ok(record(&[("success", success()), ("task", reference("Task"))]))
            .error(404, "NotFound")
            .error(409, "Conflict")
            .done(),
    ]
}
