//! A send step: the guard rails, the render, then delivery on its channel.
//!
//! The guard rails, in order, each recorded with why when it stops a send: a recipient
//! (for an account program, the account's admin, else its first contact with an
//! address); consent (the program's topic and `all`); for email, an address that is not
//! suppressed; quiet hours in the contact's time zone (deferred to when they end);
//! the channel's frequency cap across programs, counting this round's unwritten sends
//! (skipped or deferred to when the window frees, as the step or the workspace says).
//! Then the variant is picked deterministically per subject, the template rendered with
//! signed links, and the message delivered: email (`email.rs`), the in-app inbox, or a
//! signed webhook for the webhook, SMS and Slack channels.

use cairn_channels::LinkSubject;
use cairn_content::{Limits, render};
use cairn_rules::Value;
use cairn_store::{After, DueStep, Enrollment, LedgerEntry};
use cairn_workspace::{Channel, OnCap, Program, SendStep, Workspace};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::json;

use super::email::text_to_html;
use super::round::{Deferral, Outcome, Recipient, RoundFacts};
use super::{Runner, subject_ref};
use crate::ProgramError;
use crate::context::{links, render_context, template_links};
use crate::insights::add_insights;
use crate::plan::{after_quiet_hours, cap_frees_at, local_text, pick_variant};

impl Runner {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send_step(
        &self,
        ws: &Workspace,
        program: &Program,
        send: &SendStep,
        due: &DueStep,
        enrollment: &Enrollment,
        now: Timestamp,
        round: &RoundFacts,
        after: Option<After>,
    ) -> Result<Outcome, ProgramError> {
        let channel = send.channel.name();
        let record = |outcome: &str, detail: serde_json::Value, after: Option<After>| {
            Outcome::Record(
                LedgerEntry {
                    enrollment_id: due.enrollment_id,
                    step_id: due.step_id.clone(),
                    channel: channel.to_string(),
                    outcome: outcome.to_string(),
                    message_id: None,
                    detail: detail.to_string(),
                    at: now,
                },
                after,
            )
        };
        let subject = subject_ref(enrollment.subject_kind, enrollment.subject_id);
        let Some(Recipient { contact, account, traits }) = round.recipients.get(&due.id) else {
            return Ok(record("skipped_no_recipient", json!({"reason": "no contact to send to"}), after));
        };
        let (contact, account) = (*contact, *account);
        let base = json!({"contact_id": contact});
        let with = |extra: serde_json::Value| {
            let mut d = base.clone();
            if let (serde_json::Value::Object(d), serde_json::Value::Object(x)) = (&mut d, extra) {
                d.extend(x);
            }
            d
        };
        // Consent: the program's topic, and `all`.
        let topic = program.topic.as_ref().map(|t| t.to_string());
        let topics: Vec<&str> = topic.iter().map(String::as_str).chain(["all"]).collect();
        let unsubscribed = round.unsubscribed.get(&(contact as i64));
        if let Some(t) = topics.iter().find(|t| unsubscribed.is_some_and(|u| u.contains(**t))) {
            return Ok(record("skipped_consent", with(json!({"topic": t})), after));
        }
        let email = match traits.get("email") {
            Some(Value::String(e)) => Some(e.to_string()),
            _ => None,
        };
        if send.channel == Channel::Email {
            let Some(address) = &email else {
                return Ok(record(
                    "skipped_no_address",
                    with(json!({"reason": "the contact has no email address"})),
                    after,
                ));
            };
            if round.suppressed.contains(&cairn_store::normalize_address(address)) {
                return Ok(record("skipped_suppressed", with(json!({"address": address})), after));
            }
        }
        // Quiet hours, in the contact's time zone (the workspace's when unknown).
        let tz = match traits.get("timezone") {
            Some(Value::String(name)) => TimeZone::get(name).unwrap_or_else(|_| ws.time_zone().clone()),
            _ => ws.time_zone().clone(),
        };
        if let Some(quiet) = &ws.guardrails().quiet_hours {
            let resume = after_quiet_hours(quiet, now, &tz);
            if resume > now {
                return Ok(Outcome::Defer(
                    resume,
                    format!("quiet hours for the contact: resumes at {}", local_text(resume, &tz)),
                    Deferral::QuietHours,
                ));
            }
        }
        // The frequency cap of the channel, across programs.
        if let Some(cap) = ws.guardrails().frequency_caps.get(&send.channel) {
            // The window is the last `per` up to now: a send exactly `per` ago has left it.
            let mut sent = round.sent.get(&(send.channel, contact as i64)).cloned().unwrap_or_default();
            // Sends of this batch not committed yet count too.
            sent.extend(std::iter::repeat_n(now, self.pending(contact as i64, channel)));
            if let Some(frees) = cap_frees_at(&sent, cap.max, cap.per) {
                let note = format!("frequency cap: {} {channel} per {:#} reached", cap.max, cap.per);
                return Ok(match send.on_cap.unwrap_or(ws.guardrails().on_cap) {
                    OnCap::Skip => record("skipped_cap", with(json!({"cap": note})), after),
                    OnCap::Defer => {
                        Outcome::Defer(frees.max(now), format!("{note}; deferred until {frees}"), Deferral::Cap)
                    }
                });
            }
        }
        // What it says.
        let Some(variant) = pick_variant(program.id.as_str(), &due.step_id, subject, &send.variants) else {
            return Ok(Outcome::Failed { transient: false, reason: "the send step has no template".into() });
        };
        let Some(parsed) = ws.parsed_template(variant.template.as_str()) else {
            return Ok(Outcome::Failed {
                transient: false,
                reason: format!("template `{}` is not defined", variant.template),
            });
        };
        let link_subject = LinkSubject {
            enrollment: enrollment.id.to_string(),
            step: due.step_id.clone(),
            contact: contact.to_string(),
        };
        let links = links(&self.signer, &self.config.public_url, &link_subject, template_links(parsed));
        let index = program.all_steps().iter().position(|s| s.id().as_str() == due.step_id).unwrap_or(0) as u32;
        let variant_name = (send.variants.len() > 1).then(|| variant.template.as_str());
        let ctx = self
            .runtime
            .read(|live| {
                let ctx = render_context(
                    &live.engine,
                    account,
                    contact,
                    (program.id.as_str(), program.name.as_deref().unwrap_or(program.id.as_str())),
                    (due.step_id.as_str(), index),
                    variant_name,
                    links,
                    now,
                );
                add_insights(ctx, &live.engine, account, parsed, || self.peer_groups(&live.engine))
            })
            .await;
        let rendered = match render(parsed, &ctx, &Limits::default()) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Outcome::Failed {
                    transient: false,
                    reason: format!("template `{}`: {e}", variant.template),
                });
            }
        };
        let detail = with(json!({"variant": variant.template.as_str(), "subject": rendered.subject}));
        match send.channel {
            Channel::Email => {
                self.deliver_email(
                    due,
                    enrollment,
                    contact,
                    email.unwrap_or_default(),
                    traits,
                    rendered,
                    detail,
                    now,
                    after,
                )
                .await
            }
            Channel::InApp => {
                let body = if rendered.html.is_empty() { text_to_html(&rendered.text) } else { rendered.html.clone() };
                let id = self
                    .store
                    .add_inapp_message(contact as i64, enrollment.id, &due.step_id, &rendered.subject, &body, now)
                    .await?;
                let mut entry = ledger(due, channel, "sent", detail, now);
                entry.message_id = Some(format!("inapp:{id}"));
                Ok(Outcome::Record(entry, after))
            }
            Channel::Webhook | Channel::Sms | Channel::Slack if self.config.record_webhooks_only => {
                let mut d = detail;
                d["recorded_only"] = json!(true);
                Ok(Outcome::Record(ledger(due, channel, "sent", d, now), after))
            }
            Channel::Webhook | Channel::Sms | Channel::Slack => {
                let Some(url) = self.config.webhooks.get(&send.channel) else {
                    let var = format!("CAIRN_{}_WEBHOOK_URL", channel.to_uppercase());
                    return Ok(Outcome::Failed {
                        transient: false,
                        reason: format!("no URL is configured for the {channel} channel: set {var}"),
                    });
                };
                let body = json!({
                    "channel": channel,
                    "program": program.id.as_str(),
                    "step": due.step_id,
                    "enrollment_id": enrollment.id,
                    "contact": {"id": contact, "email": email, "phone": traits.get("phone").map(cairn_runtime::views::json_value)},
                    "account_id": account,
                    "subject": rendered.subject,
                    "text": rendered.text,
                });
                match self.webhook.post_webhook(url, &body, &self.config.webhook_secret, now).await {
                    Ok(answer) => {
                        let mut d = detail;
                        d["status"] = json!(answer.status);
                        Ok(Outcome::Record(ledger(due, channel, "sent", d, now), after))
                    }
                    Err(e) => Ok(Outcome::Failed { transient: e.is_transient(), reason: e.to_string() }),
                }
            }
        }
    }
}

pub(super) fn ledger(
    due: &DueStep,
    channel: &str,
    outcome: &str,
    detail: serde_json::Value,
    at: Timestamp,
) -> LedgerEntry {
    LedgerEntry {
        enrollment_id: due.enrollment_id,
        step_id: due.step_id.clone(),
        channel: channel.to_string(),
        outcome: outcome.to_string(),
        message_id: None,
        detail: detail.to_string(),
        at,
    }
}
