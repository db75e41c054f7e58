//! The pure part of running programs: which step follows which, who is held out, which
//! variant a contact gets, when quiet hours end, when a frequency cap frees up, and which
//! transitions start which programs. No I/O, no clock: instants are arguments.

use cairn_engine::SubjectRef;
use cairn_workspace::{Band, Program, QuietHours, Step, Transition, Trigger, Variant};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use sha2::{Digest, Sha256};

/// A number in `[0, 1)` fixed by the text: the same text gives the same number on every
/// node and every run (the first 8 bytes of a SHA-256, as a fraction).
pub fn unit_hash(text: &str) -> f64 {
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: every value is exactly representable and strictly below 1.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// The key a subject is hashed by: `account:12`, `contact:7`.
pub fn subject_key(subject: SubjectRef) -> String {
    match subject {
        SubjectRef::Account(id) => format!("account:{id}"),
        SubjectRef::Contact(id) => format!("contact:{id}"),
    }
}

/// Whether a subject is in a program's holdout: a deterministic `holdout_percent` share
/// of subjects, the same subject always on the same side (so a control contact stays a
/// control contact across re-entries).
pub fn in_holdout(program: &str, subject: SubjectRef, holdout_percent: f64) -> bool {
    holdout_percent > 0.0 && unit_hash(&format!("holdout\0{program}\0{}", subject_key(subject))) * 100.0 < holdout_percent
}

/// The variant of a send step a subject gets: deterministic per (program, step,
/// subject), each variant with its share. `None` only for an empty list.
pub fn pick_variant<'v>(program: &str, step: &str, subject: SubjectRef, variants: &'v [Variant]) -> Option<&'v Variant> {
    if variants.len() <= 1 {
        return variants.first();
    }
    let total: f64 = variants.iter().map(|v| v.percent).sum();
    let point = unit_hash(&format!("split\0{program}\0{step}\0{}", subject_key(subject))) * total;
    let mut upto = 0.0;
    for v in variants {
        upto += v.percent;
        if point < upto {
            return Some(v);
        }
    }
    variants.last()
}

/// The program's first step.
pub fn first_step(program: &Program) -> Option<&Step> {
    program.steps.first()
}

/// The step that runs after `step_id` when it does not branch: the next one in its
/// list, else the one after the `if` it is nested in, and so on up. `None`: the program
/// is done.
pub fn next_after<'p>(program: &'p Program, step_id: &str) -> Option<&'p Step> {
    fn find<'p>(steps: &'p [Step], id: &str, after: Option<&'p Step>) -> Option<Option<&'p Step>> {
        for (i, step) in steps.iter().enumerate() {
            let next_here = steps.get(i + 1).or(after);
            if step.id().as_str() == id {
                return Some(next_here);
            }
            if let Step::If(branch) = step {
                if let Some(found) = find(&branch.then, id, next_here) {
                    return Some(found);
                }
                if let Some(found) = find(&branch.otherwise, id, next_here) {
                    return Some(found);
                }
            }
        }
        None
    }
    find(&program.steps, step_id, None).flatten()
}

/// Where an `if` goes: the first step of the branch taken, or (an empty branch) the
/// step after the `if`.
pub fn branch_target<'p>(program: &'p Program, if_id: &str, holds: bool) -> Option<&'p Step> {
    match program.step(if_id) {
        Some(Step::If(b)) => {
            let steps = if holds { &b.then } else { &b.otherwise };
            steps.first().or_else(|| next_after(program, if_id))
        }
        _ => next_after(program, if_id),
    }
}

/// The first instant at or after `at` outside the quiet hours, in the recipient's time
/// zone. `at` itself when it is not quiet.
pub fn after_quiet_hours(quiet: &QuietHours, at: Timestamp, tz: &TimeZone) -> Timestamp {
    let local = at.to_zoned(tz.clone());
    if !quiet.contains(local.time()) {
        return at;
    }
    // The end is `to` today if that is still ahead, else `to` tomorrow.
    let today_end = local.date().to_datetime(quiet.to);
    let end = match today_end.to_zoned(tz.clone()) {
        Ok(z) if z.timestamp() > at => z,
        _ => match today_end.checked_add(SignedDuration::from_hours(24)).ok().and_then(|d| d.to_zoned(tz.clone()).ok()) {
            Some(z) => z,
            None => return at,
        },
    };
    end.timestamp()
}

/// When a frequency cap lets one more message through: given the instants of the
/// messages sent within the window (oldest first), with `max` allowed per `per`. `None`
/// when one may go now.
pub fn cap_frees_at(sent: &[Timestamp], max: u32, per: SignedDuration) -> Option<Timestamp> {
    let max = max as usize;
    if sent.len() < max {
        return None;
    }
    // The oldest of the last `max` sends must leave the window.
    let oldest_that_counts = sent[sent.len() - max];
    oldest_that_counts.checked_add(per).ok()
}

/// Whether a stored transition (its kind, `segment_entered`, …, and its JSON detail as
/// the runtime stores it) starts a program with this trigger.
pub fn transition_matches(trigger: &Trigger, kind: &str, detail: &serde_json::Value) -> bool {
    let Trigger::Transition(t) = trigger else { return false };
    let field = |name: &str| detail.get(name).and_then(serde_json::Value::as_str);
    match t {
        Transition::SegmentEntered(id) => kind == "segment_entered" && field("segment") == Some(id.as_str()),
        Transition::SegmentExited(id) => kind == "segment_exited" && field("segment") == Some(id.as_str()),
        Transition::MilestoneAchieved(id) => kind == "milestone_achieved" && field("milestone") == Some(id.as_str()),
        Transition::MilestoneMissed(id) => kind == "milestone_missed" && field("milestone") == Some(id.as_str()),
        Transition::StageEntered(id) => kind == "stage_changed" && field("to") == Some(id.as_str()),
        Transition::HealthBandChanged { from, to } => {
            kind == "health_band_changed" && band_matches(*from, field("from")) && band_matches(*to, field("to"))
        }
    }
}

fn band_matches(wanted: Option<Band>, actual: Option<&str>) -> bool {
    match wanted {
        None => true,
        Some(b) => actual == Some(band_name(b)),
    }
}

/// A band's name as transitions carry it.
pub fn band_name(b: Band) -> &'static str {
    match b {
        Band::Red => "red",
        Band::Yellow => "yellow",
        Band::Green => "green",
    }
}

/// The local time of an instant in a zone, for the record ("2026-03-02 08:00 Europe/Berlin").
pub fn local_text(at: Timestamp, tz: &TimeZone) -> String {
    let z: Zoned = at.to_zoned(tz.clone());
    format!("{} {}", z.strftime("%Y-%m-%d %H:%M"), tz.iana_name().unwrap_or("UTC"))
}
