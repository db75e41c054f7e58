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
    holdout_percent > 0.0
        && unit_hash(&format!("holdout\0{program}\0{}", subject_key(subject))) * 100.0 < holdout_percent
}

/// The variant of a send step a subject gets: deterministic per (program, step,
/// subject), each variant with its share. `None` only for an empty list.
pub fn pick_variant<'v>(
    program: &str,
    step: &str,
    subject: SubjectRef,
    variants: &'v [Variant],
) -> Option<&'v Variant> {
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
        _ => match today_end.checked_add(SignedDuration::from_hours(24)).ok().and_then(|d| d.to_zoned(tz.clone()).ok())
        {
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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_workspace::{SourceFile, check_sources};
    use jiff::civil::time;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn quiet() -> QuietHours {
        QuietHours { from: time(21, 0, 0, 0), to: time(8, 0, 0, 0) }
    }

    #[test]
    fn quiet_hours_hold_a_send_until_morning_in_the_recipients_zone() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let kolkata = TimeZone::get("Asia/Kolkata").unwrap();
        let new_york = TimeZone::get("America/New_York").unwrap();
        // 23:00Z is midnight in Berlin (winter): morning is 07:00Z.
        assert_eq!(after_quiet_hours(&quiet(), ts("2026-03-02T23:00:00Z"), &berlin), ts("2026-03-03T07:00:00Z"));
        // … 04:30 in Kolkata: 08:00 there is 02:30Z.
        assert_eq!(after_quiet_hours(&quiet(), ts("2026-03-02T23:00:00Z"), &kolkata), ts("2026-03-03T02:30:00Z"));
        // … 18:00 in New York: not quiet.
        assert_eq!(after_quiet_hours(&quiet(), ts("2026-03-02T23:00:00Z"), &new_york), ts("2026-03-02T23:00:00Z"));
        // 21:00 sharp is quiet until the next morning; 08:00 sharp is not quiet.
        assert_eq!(after_quiet_hours(&quiet(), ts("2026-03-02T20:00:00Z"), &berlin), ts("2026-03-03T07:00:00Z"));
        assert_eq!(after_quiet_hours(&quiet(), ts("2026-03-03T07:00:00Z"), &berlin), ts("2026-03-03T07:00:00Z"));
        // Across the change to summer time (29 March in Berlin): 08:00 CEST is 06:00Z.
        assert_eq!(after_quiet_hours(&quiet(), ts("2026-03-28T22:30:00Z"), &berlin), ts("2026-03-29T06:00:00Z"));
        // Quiet hours that do not cross midnight.
        let lunch = QuietHours { from: time(12, 0, 0, 0), to: time(13, 0, 0, 0) };
        let utc = TimeZone::UTC;
        assert_eq!(after_quiet_hours(&lunch, ts("2026-03-02T12:30:00Z"), &utc), ts("2026-03-02T13:00:00Z"));
        assert_eq!(after_quiet_hours(&lunch, ts("2026-03-02T13:30:00Z"), &utc), ts("2026-03-02T13:30:00Z"));
    }

    #[test]
    fn a_frequency_cap_frees_up_when_the_oldest_counted_send_leaves_the_window() {
        let week = SignedDuration::from_hours(24 * 7);
        let sent = [ts("2026-03-01T10:00:00Z"), ts("2026-03-03T10:00:00Z"), ts("2026-03-05T10:00:00Z")];
        assert_eq!(cap_frees_at(&sent[..2], 3, week), None, "two of three: one more may go");
        assert_eq!(cap_frees_at(&sent, 3, week), Some(ts("2026-03-08T10:00:00Z")));
        assert_eq!(cap_frees_at(&sent, 2, week), Some(ts("2026-03-10T10:00:00Z")), "the last two count");
        assert_eq!(cap_frees_at(&[], 1, week), None);
    }

    #[test]
    fn the_holdout_is_its_share_of_subjects_within_statistical_tolerance_and_stable() {
        // 20,000 contacts at 10%: the count is Binomial(20000, 0.1), sd = sqrt(20000·0.1·0.9) ≈ 42.4;
        // 4 sd either side of 2,000 is a false alarm once in ~16,000 runs (and the hash is fixed,
        // so this run's answer never changes).
        let held = (0..20_000u64).filter(|c| in_holdout("onboarding", SubjectRef::Contact(*c), 10.0)).count();
        assert!((2_000 - 170..=2_000 + 170).contains(&held), "{held} held out of 20,000 at 10%");
        for c in 0..1000u64 {
            assert_eq!(in_holdout("p", SubjectRef::Contact(c), 10.0), in_holdout("p", SubjectRef::Contact(c), 10.0));
        }
        assert_eq!((0..1000u64).filter(|c| in_holdout("p", SubjectRef::Contact(*c), 0.0)).count(), 0);
        // Another program holds out other people.
        let a: Vec<u64> = (0..2000u64).filter(|c| in_holdout("a", SubjectRef::Contact(*c), 10.0)).collect();
        let b: Vec<u64> = (0..2000u64).filter(|c| in_holdout("b", SubjectRef::Contact(*c), 10.0)).collect();
        assert_ne!(a, b);
    }

    fn variants(shares: &[(&str, f64)]) -> Vec<Variant> {
        shares.iter().map(|(t, p)| Variant { template: cairn_workspace::Id::parse(t).unwrap(), percent: *p }).collect()
    }

    #[test]
    fn splits_are_deterministic_per_contact_and_follow_their_weights() {
        let v = variants(&[("a", 70.0), ("b", 30.0)]);
        let mut counts = [0usize; 2];
        for c in 0..10_000u64 {
            let pick = pick_variant("invite", "email", SubjectRef::Contact(c), &v).unwrap();
            assert_eq!(
                pick,
                pick_variant("invite", "email", SubjectRef::Contact(c), &v).unwrap(),
                "same contact, same arm"
            );
            counts[usize::from(pick.template.as_str() == "b")] += 1;
        }
        // Binomial(10000, 0.3): sd ≈ 45.8; ±4 sd.
        assert!((3_000 - 183..=3_000 + 183).contains(&counts[1]), "{counts:?}");
        let one = variants(&[("only", 100.0)]);
        assert_eq!(pick_variant("p", "s", SubjectRef::Contact(1), &one).unwrap().template.as_str(), "only");
        assert!(pick_variant("p", "s", SubjectRef::Contact(1), &[]).is_none());
    }

    #[test]
    fn steps_follow_each_other_into_and_out_of_branches() {
        let yaml = r#"
templates:
  t: { channel: email, subject: Hi, text: Hello }
programs:
  - id: p
    trigger: event('x')
    topic: news
    steps:
      - id: a
        send: email
        template: t
      - id: check
        if: "opened('a')"
        then:
          - id: b
            send: email
            template: t
          - id: c
            wait: 1d
        else: []
      - id: d
        send: email
        template: t
"#;
        let ws = check_sources(&[SourceFile::new("ws.yaml", yaml)]).unwrap_or_else(|d| panic!("{d:#?}"));
        let p = &ws.programs()[0];
        let id = |s: Option<&Step>| s.map(|s| s.id().to_string());
        assert_eq!(id(first_step(p)), Some("a".into()));
        assert_eq!(id(next_after(p, "a")), Some("check".into()));
        assert_eq!(id(branch_target(p, "check", true)), Some("b".into()));
        assert_eq!(id(branch_target(p, "check", false)), Some("d".into()), "an empty branch goes on after the if");
        assert_eq!(id(next_after(p, "b")), Some("c".into()));
        assert_eq!(id(next_after(p, "c")), Some("d".into()), "the end of a branch goes on after the if");
        assert_eq!(id(next_after(p, "d")), None);
    }

    #[test]
    fn transitions_match_their_triggers_by_kind_and_detail() {
        use cairn_workspace::{Id, Transition as T};
        let id = |s: &str| Id::parse(s).unwrap();
        let seg = Trigger::Transition(T::SegmentEntered(id("at_risk")));
        assert!(transition_matches(&seg, "segment_entered", &serde_json::json!({"segment": "at_risk"})));
        assert!(!transition_matches(&seg, "segment_exited", &serde_json::json!({"segment": "at_risk"})));
        assert!(!transition_matches(&seg, "segment_entered", &serde_json::json!({"segment": "other"})));
        let red = Trigger::Transition(T::HealthBandChanged { from: None, to: Some(Band::Red) });
        assert!(transition_matches(&red, "health_band_changed", &serde_json::json!({"from": "yellow", "to": "red"})));
        assert!(!transition_matches(&red, "health_band_changed", &serde_json::json!({"from": "red", "to": "yellow"})));
        let stage = Trigger::Transition(T::StageEntered(id("adoption")));
        assert!(transition_matches(
            &stage,
            "stage_changed",
            &serde_json::json!({"from": "onboarding", "to": "adoption"})
        ));
        let missed = Trigger::Transition(T::MilestoneMissed(id("invited_team")));
        assert!(transition_matches(&missed, "milestone_missed", &serde_json::json!({"milestone": "invited_team"})));
        assert!(!transition_matches(&Trigger::Event("x".into()), "segment_entered", &serde_json::json!({})));
    }
}
