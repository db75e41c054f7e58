//! A program's dry run: who it would reach as of an instant, how they split across
//! segments and the holdout, and what the first message would say to three of them.
//! Pure over the engine's state: nothing is enrolled, sent or stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_channels::{LinkSigner, LinkSubject};
use cairn_content::{Limits, render};
use cairn_core::plausible::PlausibleTimes;
use cairn_engine::{Engine, SubjectRef};
use cairn_rules::{Subject, Value};
use cairn_workspace::{Program, Step, Trigger};
use jiff::Timestamp;
use serde::Serialize;

use crate::ProgramError;
use crate::context::{links, render_context, template_links};
use crate::insights::{PeerGroups, add_insights};
use crate::plan::{in_holdout, pick_variant};

/// Preview links are signed with a throwaway secret: they show the shape, not a link
/// that verifies.
pub const PREVIEW_SECRET: &[u8] = b"cairn-preview-links-do-not-verify";

/// A preview's `as_of`: an instant (`2026-03-10T09:00:00Z`) or a day (`2026-03-10`, its
/// start in the workspace time zone).
pub fn parse_as_of(text: &str, tz: &jiff::tz::TimeZone) -> Result<Timestamp, ProgramError> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let day: jiff::civil::Date = text.parse().map_err(|_| {
        ProgramError::Invalid(format!(
            "as_of `{text}` is neither a date (2026-03-10) nor an instant (2026-03-10T09:00:00Z)"
        ))
    })?;
    day.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| ProgramError::Invalid(format!("as_of `{text}`: {e}")))
}

/// A preview's `as_of` as [`parse_as_of`] reads it, refused outside the plausible range
/// of dates at `now` (from 2000-01-01 to a day ahead: [`PlausibleTimes`]), where the
/// engine's state says nothing a program would act on and a far date would only cost
/// time.
pub fn parse_plausible_as_of(text: &str, tz: &jiff::tz::TimeZone, now: Timestamp) -> Result<Timestamp, ProgramError> {
    let at = parse_as_of(text, tz)?;
    PlausibleTimes::default()
        .check(at, now)
        .map_err(|e| ProgramError::Invalid(format!("as_of `{text}` is out of range: {e}")))?;
    Ok(at)
}

/// What a program would do, as of an instant.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The program.
    pub program: String,
    /// Its name.
    pub name: Option<String>,
    /// Whom it enrolls: `account` or `contact`.
    pub subject: &'static str,
    /// The trigger as written.
    pub trigger: String,
    /// The instant of the preview.
    pub as_of: Timestamp,
    /// How the audience was counted.
    pub basis: String,
    /// Subjects the audience rule admits (for a date trigger: whose date falls on the day).
    pub audience: usize,
    /// Of those, the deterministic holdout (sent nothing).
    pub holdout: usize,
    /// Of those, the ones that would be sent to.
    pub treated: usize,
    /// Audience members per segment they are in (contacts count in their account's
    /// account segments too), largest first.
    pub by_segment: Vec<SegmentCount>,
    /// Up to three rendered first messages.
    pub samples: Vec<Sample>,
}

/// Audience members in one segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentCount {
    /// The segment.
    pub segment: String,
    /// How many audience members are in it.
    pub count: usize,
}

/// One rendered sample message.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// `contact` or `account` and its id.
    pub subject: SubjectRef,
    /// The recipient's address, if any.
    pub to: Option<String>,
    /// The send step.
    pub step: String,
    /// The template (the variant this subject gets).
    pub template: String,
    /// Rendered subject line.
    pub subject_line: String,
    /// Rendered text part.
    pub text: String,
    /// Rendered HTML part.
    pub html: String,
    /// Why it could not be rendered, if it could not (the send would be dead-lettered).
    pub error: Option<String>,
}

/// Previews `program` on the engine's state (its clock is the preview's instant).
pub fn preview(
    engine: &Engine,
    program: &Program,
    signer: &LinkSigner,
    public_url: &str,
) -> Result<Preview, ProgramError> {
    let ws = engine.workspace();
    let now = engine.now();
    let today = now.to_zoned(ws.time_zone().clone()).date();
    let subjects: Vec<SubjectRef> = match program.subject {
        Subject::Account => engine.accounts().map(|(id, _)| SubjectRef::Account(id)).collect(),
        Subject::Contact => engine.contacts().map(|(id, _)| SubjectRef::Contact(id)).collect(),
    };
    let (on_day, basis) = match &program.trigger {
        Trigger::Date(d) => {
            let target = today.checked_sub(jiff::Span::new().days(i64::from(d.offset_days))).ok();
            (
                Some((d.owner, d.name.clone(), target)),
                format!("whose {} puts the trigger on {today}, and whom the audience rule admits", d.name),
            )
        }
        _ => (None, "whom the audience rule admits now (the trigger decides when each is enrolled)".to_string()),
    };
    let mut audience = Vec::new();
    for s in subjects {
        if let Some((owner, name, target)) = &on_day {
            let traits = match (owner, s) {
                (Subject::Account, SubjectRef::Account(a)) => engine.account(a).map(|x| &x.traits),
                (Subject::Account, SubjectRef::Contact(c)) => {
                    engine.contact(c).and_then(|x| x.account).and_then(|a| engine.account(a)).map(|x| &x.traits)
                }
                (Subject::Contact, SubjectRef::Contact(c)) => engine.contact(c).map(|x| &x.traits),
                (Subject::Contact, SubjectRef::Account(_)) => None,
            };
            let hit = matches!((traits.and_then(|t| t.get(name)), target), (Some(Value::Date(d)), Some(t)) if d == t);
            if !hit {
                continue;
            }
        }
        let admitted = match &program.audience {
            None => true,
            Some(rule) => matches!(engine.evaluate_rule(s, rule, None), Some(Value::Bool(true))),
        };
        if admitted {
            audience.push(s);
        }
    }
    let holdout = audience.iter().filter(|s| in_holdout(program.id.as_str(), **s, program.holdout_percent)).count();
    let mut segments: BTreeMap<String, usize> = BTreeMap::new();
    for s in &audience {
        let (account, contact) = match *s {
            SubjectRef::Account(a) => (engine.account(a), None),
            SubjectRef::Contact(c) => {
                let contact = engine.contact(c);
                (contact.and_then(|x| x.account).and_then(|a| engine.account(a)), contact)
            }
        };
        for seg in account.iter().flat_map(|a| a.segments.iter()).chain(contact.iter().flat_map(|c| c.segments.iter()))
        {
            *segments.entry(seg.clone()).or_default() += 1;
        }
    }
    let mut by_segment: Vec<SegmentCount> =
        segments.into_iter().map(|(segment, count)| SegmentCount { segment, count }).collect();
    by_segment.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.segment.cmp(&b.segment)));

    // Samples: the first send step, for the first, middle and last treated subject.
    let treated: Vec<SubjectRef> =
        audience.iter().copied().filter(|s| !in_holdout(program.id.as_str(), *s, program.holdout_percent)).collect();
    let send = program.all_steps().into_iter().find_map(|s| match s {
        Step::Send(send) => Some(send),
        _ => None,
    });
    let mut samples = Vec::new();
    // The benchmarks' peer groups, gathered once for the samples that quote one.
    let peers = std::sync::OnceLock::new();
    if let Some(send) = send {
        let mut picks = vec![0, treated.len() / 2, treated.len().saturating_sub(1)];
        picks.dedup();
        for i in picks.into_iter().filter(|i| *i < treated.len()) {
            let s = treated[i];
            let (contact, account) = match s {
                SubjectRef::Contact(c) => (Some(c), engine.contact(c).and_then(|x| x.account)),
                SubjectRef::Account(a) => (engine.account(a).and_then(|x| x.contacts.iter().next().copied()), Some(a)),
            };
            let Some(contact) = contact else { continue };
            let Some(variant) = pick_variant(program.id.as_str(), send.id.as_str(), s, &send.variants) else {
                continue;
            };
            let to = engine.contact(contact).and_then(|c| match c.traits.get("email") {
                Some(Value::String(e)) => Some(e.to_string()),
                _ => None,
            });
            let link_subject =
                LinkSubject { enrollment: "preview".into(), step: send.id.to_string(), contact: contact.to_string() };
            let parsed = ws.parsed_template(variant.template.as_str());
            let links = match parsed {
                Some(t) => links(signer, public_url, &link_subject, template_links(t)),
                None => Default::default(),
            };
            let ctx = render_context(
                engine,
                account,
                contact,
                (program.id.as_str(), program.name.as_deref().unwrap_or(program.id.as_str())),
                (send.id.as_str(), 0),
                (send.variants.len() > 1).then(|| variant.template.as_str()),
                links,
                now,
            );
            let rendered = parsed.map(|t| {
                let gather = || peers.get_or_init(|| Arc::new(PeerGroups::gather(engine))).clone();
                render(t, &add_insights(ctx, engine, account, t, gather), &Limits::default())
            });
            let (subject_line, text, html, error) = match rendered {
                Some(Ok(r)) => (r.subject, r.text, r.html, None),
                Some(Err(e)) => (String::new(), String::new(), String::new(), Some(e.to_string())),
                None => (
                    String::new(),
                    String::new(),
                    String::new(),
                    Some(format!("template `{}` is not defined", variant.template)),
                ),
            };
            samples.push(Sample {
                subject: s,
                to,
                step: send.id.to_string(),
                template: variant.template.to_string(),
                subject_line,
                text,
                html,
                error,
            });
        }
    }
    Ok(Preview {
        program: program.id.to_string(),
        name: program.name.clone(),
        subject: match program.subject {
            Subject::Account => "account",
            Subject::Contact => "contact",
        },
        trigger: trigger_text(&program.trigger),
        as_of: now,
        basis,
        audience: audience.len(),
        holdout,
        treated: audience.len() - holdout,
        by_segment,
        samples,
    })
}

/// A trigger as a workspace writes it, e.g. `segment_entered('trial')`.
pub fn trigger_text(t: &Trigger) -> String {
    match t {
        Trigger::Transition(t) => {
            use cairn_workspace::Transition as T;
            match t {
                T::SegmentEntered(id) => format!("segment_entered('{id}')"),
                T::SegmentExited(id) => format!("segment_exited('{id}')"),
                T::MilestoneAchieved(id) => format!("milestone_achieved('{id}')"),
                T::MilestoneMissed(id) => format!("milestone_missed('{id}')"),
                T::StageEntered(id) => format!("stage_entered('{id}')"),
                T::HealthBandChanged { from, to } => {
                    let args: Vec<String> = [("from", from), ("to", to)]
                        .into_iter()
                        .filter_map(|(k, b)| b.map(|b| format!("{k}: '{}'", crate::plan::band_name(b))))
                        .collect();
                    format!("health_band_changed({})", args.join(", "))
                }
            }
        }
        Trigger::Event(name) => format!("event('{name}')"),
        Trigger::Schedule(s) => format!("schedule('{}')", s.pattern),
        Trigger::Date(d) => {
            format!("{} {} {}d", d.name, if d.offset_days < 0 { '-' } else { '+' }, d.offset_days.abs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_as_of_outside_the_plausible_range_is_refused_with_the_range() {
        let tz = jiff::tz::TimeZone::UTC;
        let now: Timestamp = "2026-03-10T09:00:00Z".parse().unwrap();
        assert_eq!(
            parse_plausible_as_of("2026-03-01", &tz, now).unwrap(),
            "2026-03-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(parse_plausible_as_of("2026-03-11T08:00:00Z", &tz, now).is_ok(), "a day ahead is allowed");
        for far in ["9999-01-01", "0001-01-01", "1999-12-31T23:59:59Z", "2026-03-12"] {
            let e = parse_plausible_as_of(far, &tz, now).unwrap_err().to_string();
            assert!(e.contains(&format!("as_of `{far}` is out of range")), "{e}");
        }
        assert!(parse_plausible_as_of("soon", &tz, now).unwrap_err().to_string().contains("neither a date"));
    }
}
