//! The dry run's report, read from the scratch store's own records once the period has
//! been replayed: the program's enrollments made in the period, what the ledger says each
//! step did (per step, channel and variant), and a few rendered messages.

use std::collections::BTreeMap;

use cairn_store::Store;
use cairn_workspace::Program;
use jiff::Timestamp;
use serde::Serialize;

use super::DryRunError;
use super::feed::History;
use crate::{PassReport, html_to_text};

/// Samples shown.
const SAMPLES: usize = 3;
/// Characters of a sample's text shown.
const EXCERPT_CHARS: usize = 600;

/// What a program would have done over a period of history.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// The program.
    pub program: String,
    /// Its name.
    pub name: Option<String>,
    /// The period: from (inclusive) …
    pub from: Timestamp,
    /// … to (exclusive).
    pub to: Timestamp,
    /// Passes of the engine and the runner over the period.
    pub passes: u64,
    /// Enrollments made in the period, the holdout included.
    pub enrolled: u64,
    /// Of which held out (enrolled, sent nothing).
    pub held_out: u64,
    /// Messages sent in the period (every channel).
    pub sent: u64,
    /// Tasks created in the period.
    pub tasks_created: u64,
    /// Times a send was held back by quiet hours (a send held twice counts twice).
    pub quiet_hours_deferrals: u64,
    /// Times a send was held back by a frequency cap.
    pub cap_deferrals: u64,
    /// Sends dropped by a frequency cap (`on_cap: skip`).
    pub cap_skips: u64,
    /// Per step, channel and variant: the ledger's outcomes (`sent`, `skipped_cap`, …).
    pub steps: Vec<StepLoad>,
    /// Engagement recorded on the program's real enrollments, replayed onto the dry run's.
    pub engagements_replayed: u64,
    /// Real engagement with a send the dry run did not make.
    pub engagements_not_matched: u64,
    /// A few messages as they would have been rendered.
    pub samples: Vec<DryRunSample>,
    /// Every enrollment made, in time order.
    pub enrollments: Vec<DryRunEnrollment>,
    /// Every send and task in the period, in time order.
    pub sends: Vec<DryRunSend>,
    /// What the dry run could not know, and how it decided.
    pub notes: Vec<String>,
}

/// One step's load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepLoad {
    /// The step's id.
    pub step: String,
    /// `email`, `in_app`, `task`, `wait`, `if`, …
    pub channel: String,
    /// The A/B variant (template) of a split send.
    pub variant: Option<String>,
    /// Outcome → count.
    pub outcomes: BTreeMap<String, u64>,
}

/// One enrollment of the dry run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DryRunEnrollment {
    /// When.
    pub enrolled_at: Timestamp,
    /// `account` or `contact`.
    pub subject_kind: String,
    /// The account's or contact's id.
    pub subject_id: i64,
    /// Held out.
    pub holdout: bool,
}

/// One send (or task) of the dry run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DryRunSend {
    /// When.
    pub at: Timestamp,
    /// The step.
    pub step: String,
    /// The recipient contact (for a task, the contact it is about, if any).
    pub contact_id: Option<i64>,
    /// The channel (`task` for a task).
    pub channel: String,
    /// The variant of a split send.
    pub variant: Option<String>,
    /// The subject enrolled (`account:12`, `contact:40`).
    pub enrollment: String,
}

/// A rendered message.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunSample {
    /// The step.
    pub step: String,
    /// The channel.
    pub channel: String,
    /// The recipient (address for email, contact id otherwise).
    pub to: String,
    /// When it would have gone.
    pub at: Timestamp,
    /// Subject line (in-app: title).
    pub subject: String,
    /// The start of its text.
    pub excerpt: String,
}

/// Reads the report from the scratch store.
#[allow(clippy::too_many_arguments)]
pub(super) async fn build(
    scratch: &Store,
    program: &Program,
    from: Timestamp,
    to: Timestamp,
    passes: u64,
    totals: &PassReport,
    history: &History,
) -> Result<DryRun, DryRunError> {
    let mut enrollments = Vec::new();
    let mut sends = Vec::new();
    let mut loads: BTreeMap<StepKey, BTreeMap<String, u64>> = BTreeMap::new();
    let order: Vec<String> = program.all_steps().iter().map(|s| s.id().to_string()).collect();
    let mut cap_skips = 0;
    // The enrollments made in the period with their ledger entries, in one read.
    let activity = scratch.program_activity(from, to).await?;
    let mine: std::collections::HashMap<i64, &cairn_store::Enrollment> = activity
        .enrollments
        .iter()
        .map(|m| &m.enrollment)
        .filter(|e| e.program_id == program.id.as_str())
        .map(|e| (e.id, e))
        .collect();
    for e in mine.values() {
        enrollments.push(DryRunEnrollment {
            enrolled_at: e.enrolled_at,
            subject_kind: e.subject_kind.as_str().to_string(),
            subject_id: e.subject_id,
            holdout: e.holdout,
        });
    }
    for record in &activity.sends {
        let entry = &record.entry;
        let Some(e) = mine.get(&entry.enrollment_id) else { continue };
        if entry.at >= to {
            continue;
        }
        let detail: serde_json::Value = serde_json::from_str(&entry.detail).unwrap_or_default();
        let variant = detail.get("variant").and_then(serde_json::Value::as_str).map(str::to_string);
        let position = order.iter().position(|s| *s == entry.step_id).unwrap_or(usize::MAX);
        *loads
            .entry((position, entry.step_id.clone(), entry.channel.clone(), variant.clone()))
            .or_default()
            .entry(entry.outcome.clone())
            .or_default() += 1;
        cap_skips += u64::from(entry.outcome == "skipped_cap");
        if entry.outcome == "sent" || entry.outcome == "task_created" {
            let contact = match e.subject_kind {
                cairn_store::SubjectKind::Contact => Some(e.subject_id),
                cairn_store::SubjectKind::Account => detail.get("contact_id").and_then(serde_json::Value::as_i64),
            };
            sends.push((
                DryRunSend {
                    at: entry.at,
                    step: entry.step_id.clone(),
                    contact_id: contact,
                    channel: entry.channel.clone(),
                    variant,
                    enrollment: format!("{}:{}", e.subject_kind.as_str(), e.subject_id),
                },
                e.id,
                entry.message_id.clone(),
                detail.get("subject").and_then(serde_json::Value::as_str).map(str::to_string),
            ));
        }
    }
    enrollments.sort();
    sends.sort_by(|a, b| a.0.cmp(&b.0));
    let samples = samples(scratch, &sends).await?;
    let held_out = enrollments.iter().filter(|e| e.holdout).count() as u64;
    let sent = sends.iter().filter(|s| s.0.channel != "task").count() as u64;
    let tasks_created = sends.len() as u64 - sent;
    let mut notes = vec![
        "traits have no history: accounts and contacts are evaluated over the whole period with their traits of \
         today (plan, seats, renewal date, and accounts that joined later)"
            .to_string(),
        "only the enrollments made in the period are replayed; the program's earlier enrollments are taken as \
         they really ran, and their sends, like every other program's, count towards the frequency caps"
            .to_string(),
    ];
    if history.ran_before {
        notes.push(format!(
            "engagement with the program's real sends was replayed onto the same subjects' sends: {} replayed, {} \
             with a send this dry run did not make",
            history.engagements_replayed, history.engagements_unmatched
        ));
    } else {
        notes.push(
            "the program never ran, so nobody engaged with it: steps that branch on opened, clicked or answered \
             take the path of no engagement"
                .to_string(),
        );
    }
    Ok(DryRun {
        program: program.id.as_str().to_string(),
        name: program.name.clone(),
        from,
        to,
        passes,
        enrolled: enrollments.len() as u64,
        held_out,
        sent,
        tasks_created,
        quiet_hours_deferrals: totals.quiet_hours,
        cap_deferrals: totals.capped,
        cap_skips,
        steps: loads
            .into_iter()
            .map(|((_, step, channel, variant), outcomes)| StepLoad { step, channel, variant, outcomes })
            .collect(),
        engagements_replayed: history.engagements_replayed,
        engagements_not_matched: history.engagements_unmatched,
        samples,
        enrollments,
        sends: sends.into_iter().map(|s| s.0).collect(),
        notes,
    })
}

type SendRow = (DryRunSend, i64, Option<String>, Option<String>);

/// A step's place in the program, its id, channel and variant: how the load is grouped.
type StepKey = (usize, String, String, Option<String>);

/// Up to [`SAMPLES`] rendered messages, of different steps first, from the scratch outbox
/// and inbox.
async fn samples(scratch: &Store, sends: &[SendRow]) -> Result<Vec<DryRunSample>, DryRunError> {
    let messages: Vec<&SendRow> = sends.iter().filter(|s| s.0.channel == "email" || s.0.channel == "in_app").collect();
    let mut picked: Vec<&SendRow> = Vec::new();
    for s in &messages {
        if picked.len() < SAMPLES && !picked.iter().any(|p| p.0.step == s.0.step) {
            picked.push(s);
        }
    }
    for s in &messages {
        if picked.len() < SAMPLES && !picked.iter().any(|p| std::ptr::eq(*p, *s)) {
            picked.push(s);
        }
    }
    let outbox =
        if picked.iter().any(|s| s.0.channel == "email") { scratch.outbox(u32::MAX).await? } else { Vec::new() };
    let mut out = Vec::new();
    for (send, enrollment, message_id, subject) in picked {
        let (to, subject, text) = if send.channel == "email" {
            match outbox.iter().find(|m| Some(&m.message_id) == message_id.as_ref()) {
                Some(m) => {
                    let text = if m.text.is_empty() { html_to_text(&m.html) } else { m.text.clone() };
                    (m.to.clone(), m.subject.clone(), text)
                }
                None => (String::new(), subject.clone().unwrap_or_default(), String::new()),
            }
        } else {
            let contact = send.contact_id.unwrap_or_default();
            let inbox = scratch.inapp_messages(contact, true).await?;
            match inbox.iter().find(|m| m.enrollment_id == *enrollment && m.step_id == send.step) {
                Some(m) => (format!("contact {contact}"), m.title.clone(), html_to_text(&m.body_html)),
                None => (format!("contact {contact}"), subject.clone().unwrap_or_default(), String::new()),
            }
        };
        out.push(DryRunSample {
            step: send.step.clone(),
            channel: send.channel.clone(),
            to,
            at: send.at,
            subject,
            excerpt: excerpt(&text),
        });
    }
    Ok(out)
}

/// The first [`EXCERPT_CHARS`] characters, cut at a character boundary, with `…` when cut.
fn excerpt(text: &str) -> String {
    let trimmed = text.trim();
    if trimmed.chars().count() <= EXCERPT_CHARS {
        return trimmed.to_string();
    }
    let mut out: String = trimmed.chars().take(EXCERPT_CHARS).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_cut_on_a_character_boundary() {
        assert_eq!(excerpt("  short  "), "short");
        let long = "é".repeat(EXCERPT_CHARS + 5);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
