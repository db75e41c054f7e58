//! Engagement: how a recipient answered a send (opened, clicked, answered a survey,
//! unsubscribed, bounced, …). Recorded once per (enrollment, step, kind) in the store —
//! what `opened('step')` and friends read — and appended to the event log as an event of
//! the contact (`email_opened`, `nps_submitted`, …), so it counts in rules, segments and
//! health like any product event. A `wait until` of the enrollment is woken, so a
//! "thank you right after the answer" goes out right after the answer.

use std::collections::HashMap;

use cairn_core::tracking::{MessageKind, TrackingMessage};
use cairn_rules::Engagement;
use cairn_store::{EngagementRecord, Enrollment, Store};
use cairn_workspace::{Program, Step, Wait, Workspace};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::ProgramError;

/// A kind of engagement with a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngagementKind {
    /// The provider accepted the message for the recipient (SMTP) or it reached the inbox.
    Delivered,
    /// Opened (email pixel) or seen (in-app).
    Opened,
    /// A link in it was followed.
    Clicked,
    /// A survey in it was answered.
    Answered,
    /// The address bounced.
    Bounced,
    /// The recipient marked it as spam.
    Complained,
    /// The recipient unsubscribed from its topic.
    Unsubscribed,
    /// Dismissed from the in-app inbox.
    Dismissed,
}

impl EngagementKind {
    /// The name stored in the store's engagements.
    pub fn as_str(self) -> &'static str {
        match self {
            EngagementKind::Delivered => "delivered",
            EngagementKind::Opened => "opened",
            EngagementKind::Clicked => "clicked",
            EngagementKind::Answered => "answered",
            EngagementKind::Bounced => "bounced",
            EngagementKind::Complained => "complained",
            EngagementKind::Unsubscribed => "unsubscribed",
            EngagementKind::Dismissed => "dismissed",
        }
    }

    /// The kind a rule function asks about (`opened('step')` → `opened`).
    pub fn of_rule(kind: Engagement) -> EngagementKind {
        match kind {
            Engagement::Delivered => EngagementKind::Delivered,
            Engagement::Opened => EngagementKind::Opened,
            Engagement::Clicked => EngagementKind::Clicked,
            Engagement::Answered => EngagementKind::Answered,
        }
    }
}

/// The event written to the log for an engagement on a channel (`email_opened`,
/// `inapp_clicked`, `nps_submitted` for an answer whose detail has `"survey": "nps"`).
pub fn event_name(channel: &str, kind: EngagementKind, detail: &Value) -> String {
    if kind == EngagementKind::Answered {
        let survey = detail.get("survey").and_then(Value::as_str).unwrap_or("survey");
        return format!("{survey}_submitted");
    }
    if kind == EngagementKind::Unsubscribed {
        return "unsubscribed".to_string();
    }
    let channel = if channel == "in_app" { "inapp" } else { channel };
    let verb = match (channel, kind) {
        ("inapp", EngagementKind::Opened) => "seen",
        _ => kind.as_str(),
    };
    format!("{channel}_{verb}")
}

/// One engagement to record.
#[derive(Debug, Clone)]
pub struct EngagementInput {
    /// The enrollment the send belongs to.
    pub enrollment_id: i64,
    /// The send step.
    pub step_id: String,
    /// The recipient (for the event's identity); none when unknown.
    pub contact_id: Option<i64>,
    /// What happened.
    pub kind: EngagementKind,
    /// When.
    pub at: Timestamp,
    /// Details kept with it and put in the event's properties (`score`, `url`, …).
    pub detail: Value,
}

/// Records an engagement: once per (enrollment, step, kind) in the store, one event in
/// the log (its `messageId` derived from the same key, so a retry adds nothing), and the
/// enrollment's `wait until` steps woken. `Ok(false)` when it was known already (or the
/// enrollment does not exist).
pub async fn record(store: &Store, ws: Option<&Workspace>, input: &EngagementInput) -> Result<bool, ProgramError> {
    Ok(record_all(store, ws, std::slice::from_ref(input)).await?.first().copied().unwrap_or(false))
}

/// [`record`] for many engagements at once, in order, with the same records: the
/// engagements in one transaction, their events in one append, the wake-ups in one
/// transaction (a simulation records a few hundred an hour of simulated time). One answer
/// per input; a second input with the key of an earlier one is `false`.
pub async fn record_all(
    store: &Store,
    ws: Option<&Workspace>,
    inputs: &[EngagementInput],
) -> Result<Vec<bool>, ProgramError> {
    let rows: Vec<EngagementRecord> = inputs
        .iter()
        .map(|i| EngagementRecord {
            enrollment_id: i.enrollment_id,
            step_id: i.step_id.clone(),
            kind: i.kind.as_str().to_string(),
            at: i.at,
            detail: i.detail.to_string(),
        })
        .collect();
    let new = store.record_engagements(&rows).await?;
    let mut ids: Vec<i64> = inputs.iter().zip(&new).filter(|(_, n)| **n).map(|(i, _)| i.enrollment_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(new);
    }
    let enrollments: HashMap<i64, Enrollment> = store.enrollments(&ids).await?.into_iter().map(|e| (e.id, e)).collect();
    let channels: HashMap<(i64, String), String> =
        store.ledger_entries_of(&ids).await?.into_iter().map(|l| ((l.enrollment_id, l.step_id), l.channel)).collect();
    let mut events = Vec::new();
    let mut wakes = Vec::new();
    for input in inputs.iter().zip(&new).filter(|(_, n)| **n).map(|(i, _)| i) {
        let enrollment = enrollments.get(&input.enrollment_id);
        let channel =
            channels.get(&(input.enrollment_id, input.step_id.clone())).cloned().unwrap_or_else(|| "email".to_string());
        if let Some(contact) = input.contact_id {
            let mut properties = json!({
                "enrollment_id": input.enrollment_id,
                "step": input.step_id,
                "channel": channel,
            });
            if let Some(e) = enrollment {
                properties["program"] = json!(e.program_id);
            }
            if let (Value::Object(p), Value::Object(d)) = (&mut properties, &input.detail) {
                for (k, v) in d {
                    p.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            events.push(ContactEvent {
                contact_id: contact,
                name: event_name(&channel, input.kind, &input.detail),
                message_id: format!("cairn:{}:{}:{}", input.enrollment_id, input.step_id, input.kind.as_str()),
                at: input.at,
                properties,
            });
        }
        if let (Some(ws), Some(e)) = (ws, enrollment)
            && let Some(program) = ws.programs().iter().find(|p| p.id.as_str() == e.program_id)
        {
            wakes.push((e.id, wait_until_steps(program), input.at));
        }
    }
    append_contact_events(store, &events).await?;
    store.wake_steps_many(&wakes).await?;
    Ok(new)
}

/// Appends an event of a contact to the log, written by cairn itself (source `cairn`):
/// its `userId` is the contact's internal alias, so identity resolution ties it to the
/// contact. `message_id` makes it exactly once.
pub async fn append_contact_event(
    store: &Store,
    contact_id: i64,
    name: &str,
    message_id: &str,
    at: Timestamp,
    properties: &Value,
) -> Result<(), ProgramError> {
    let event = ContactEvent {
        contact_id,
        name: name.to_string(),
        message_id: message_id.to_string(),
        at,
        properties: properties.clone(),
    };
    append_contact_events(store, &[event]).await
}

/// An event of a contact that cairn writes (a send, a task).
#[derive(Debug, Clone)]
pub struct ContactEvent {
    /// The contact.
    pub contact_id: i64,
    /// The event's name.
    pub name: String,
    /// Its message id (exactly once).
    pub message_id: String,
    /// When.
    pub at: Timestamp,
    /// Its properties.
    pub properties: Value,
}

/// [`append_contact_event`] for many events: the aliases in one transaction, the events
/// in one append.
pub async fn append_contact_events(store: &Store, events: &[ContactEvent]) -> Result<(), ProgramError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<i64> = events.iter().map(|e| e.contact_id).collect();
    ids.sort_unstable();
    ids.dedup();
    store.contact_aliases(&ids).await?;
    let messages: Vec<TrackingMessage> = events.iter().map(ContactEvent::message).collect();
    store.append("cairn", &messages).await?;
    Ok(())
}

impl ContactEvent {
    /// The event as a track call of the contact's internal alias (`cairn:contact:{id}`).
    pub fn message(&self) -> TrackingMessage {
        TrackingMessage {
            kind: MessageKind::Track,
            message_id: self.message_id.clone(),
            user_id: Some(cairn_store::contact_alias_of(self.contact_id)),
            anonymous_id: None,
            group_id: None,
            event: Some(self.name.clone()),
            previous_id: None,
            timestamp: self.at,
            original_timestamp: None,
            sent_at: None,
            received_at: self.at,
            properties: Some(self.properties.to_string()),
            context: None,
        }
    }
}

/// The ids of a program's `wait until` steps: what an engagement wakes.
pub fn wait_until_steps(program: &Program) -> Vec<String> {
    program
        .all_steps()
        .into_iter()
        .filter(|s| matches!(s, Step::Wait(w) if matches!(w.wait, Wait::Until { .. })))
        .map(|s| s.id().as_str().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_named_by_channel_and_kind() {
        assert_eq!(event_name("email", EngagementKind::Opened, &json!({})), "email_opened");
        assert_eq!(event_name("email", EngagementKind::Clicked, &json!({})), "email_clicked");
        assert_eq!(event_name("in_app", EngagementKind::Opened, &json!({})), "inapp_seen");
        assert_eq!(event_name("in_app", EngagementKind::Dismissed, &json!({})), "inapp_dismissed");
        assert_eq!(
            event_name("email", EngagementKind::Answered, &json!({"survey": "nps", "score": 9})),
            "nps_submitted"
        );
        assert_eq!(event_name("in_app", EngagementKind::Answered, &json!({"survey": "csat"})), "csat_submitted");
        assert_eq!(event_name("email", EngagementKind::Unsubscribed, &json!({})), "unsubscribed");
        assert_eq!(event_name("email", EngagementKind::Bounced, &json!({})), "email_bounced");
    }
}
