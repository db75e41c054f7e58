//! `cairn report programs` and `experiments` on hand-built stores (SQLite and PostgreSQL):
//! known enrollments, sends, engagement, goals and renewals, every figure counted by hand
//! in the comments; the statistics' reference values are SciPy 1.17 / statsmodels 0.15
//! on the same counts (`proportion_confint(method="wilson")`, `chisquare`,
//! `proportions_ztest`), and the sample sizes the Fleiss formula of
//! `cairn_measure::stats::power`.

#[path = "../../cairn-store/tests/common/mod.rs"]
mod common;

use cairn_core::Source;
use cairn_measure::stats::{Test, sample_size_per_arm};
use cairn_measure::{PeriodKind, Ratio};
use cairn_reports::experiments::{Experiment, ExperimentKind, Metric, MetricResult, Verdict, experiments};
use cairn_reports::programs::programs;
use cairn_reports::{Query, QueryText};
use cairn_store::{DueStep, EnrollRequest, LedgerEntry, Store, SubjectKind};
use cairn_workspace::{SourceFile, Workspace, check_sources};
use common::{Backend, date, import_accounts, import_contacts, import_subscriptions, run, timestamp};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

const WORKSPACE: &str = r#"
templates:
  welcome: { channel: email, subject: "Welcome", text: "Hello." }
  welcome_b: { channel: email, subject: "Hi there", text: "Hello." }
programs:
  - id: onboarding
    name: Onboarding
    trigger: event('signed_up')
    topic: onboarding
    holdout: 20%
    goal: { when: "count('report_created', 14d) >= 1", within: 14d }
    steps:
      - id: hello
        send: email
        split: { welcome: 50%, welcome_b: 50% }
  - id: nudge
    trigger: event('stalled')
    topic: onboarding
    holdout: 50%
    goal: { when: "count('report_created', 7d) >= 1", within: 7d }
    steps:
      - { id: mail, send: email, template: welcome }
  - id: rescue
    trigger: event('stalled')
    topic: onboarding
    holdout: 50%
    goal: { when: "count('report_created', 7d) >= 1", within: 7d }
    steps:
      - { id: mail, send: email, template: welcome }
"#;

fn workspace() -> Workspace {
    check_sources(&[SourceFile::new("cairn.yaml", WORKSPACE)]).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn query(from: &str, to: &str, as_of: &str) -> Query {
    QueryText { from: Some(from.into()), to: Some(to.into()), as_of: Some(as_of.into()), ..QueryText::default() }
        .resolve(PeriodKind::Month, date(as_of))
        .unwrap()
}

async fn contact_ids(store: &Store) -> std::collections::HashMap<String, i64> {
    store.engine_contacts().await.unwrap().into_iter().filter_map(|c| Some((c.email?, c.id))).collect()
}

/// Records that step `step` of enrollment `e` was sent at `at` with `variant`, as the
/// runner does: scheduled, claimed, completed with its ledger entry.
async fn sent(store: &Store, e: i64, step: &str, variant: &str, at: Timestamp) {
    store.schedule_step(e, step, at).await.unwrap();
    let mut claimed: Vec<DueStep> = store.claim_due_steps("test", at, SignedDuration::from_mins(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let due = claimed.remove(0);
    let entry = LedgerEntry {
        enrollment_id: e,
        step_id: step.into(),
        channel: "email".into(),
        outcome: "sent".into(),
        message_id: None,
        detail: json!({ "variant": variant }).to_string(),
        at,
    };
    assert!(store.complete_step(&due, "test", &entry, None).await.unwrap());
}

/// The onboarding story of docs/metrics.md: six contacts of six accounts enrolled in
/// March 2026 (one more in February, outside the period), measured on 2026-04-12.
async fn onboarding_story(store: Store) {
    let n = 6;
    let accounts: String = (1..=n).map(|i| format!("a{i},Account {i}\n")).collect();
    import_accounts(&store, Source::Crm, &format!("external_id,name\n{accounts}")).await;
    let contacts: String = (1..=n).map(|i| format!("c{i},a{i},c{i}@example.com\n")).collect();
    import_contacts(&store, Source::Crm, &format!("external_id,account_external_id,email\n{contacts}")).await;
    // Renewals: a1 renewed (1,000 → 1,200), a2 churned (500), a3 renewed after a 10-day gap
    // (800 → 600), a6's line ends in December (pending on 2026-04-12); held out: a4 churned
    // (400), a5 renewed (300 → 300).
    import_subscriptions(
        &store,
        Source::Crm,
        "id,account_id,start_date,end_date,arr
         a1-1,a1,2025-03-06,2026-03-05,1000
         a1-2,a1,2026-03-06,2027-03-05,1200
         a2-1,a2,2025-03-08,2026-03-07,500
         a3-1,a3,2025-03-10,2026-03-09,800
         a3-2,a3,2026-03-20,2027-03-19,600
         a4-1,a4,2025-03-07,2026-03-06,400
         a5-1,a5,2025-03-09,2026-03-08,300
         a5-2,a5,2026-03-09,2027-03-08,300
         a6-1,a6,2026-01-01,2026-12-31,900",
    )
    .await;
    let ids = contact_ids(&store).await;
    let c = |i: u32| ids[&format!("c{i}@example.com")];
    let enroll = |i: u32, day: &str, holdout: bool| {
        let store = store.clone();
        let at = timestamp(&format!("{day}T09:00:00Z"));
        let (subject, key) = (c(i), format!("k{i}{day}"));
        async move {
            store
                .enroll("onboarding", SubjectKind::Contact, subject, &key, at, holdout, None)
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let before = enroll(1, "2026-02-27", false).await;
    let e1 = enroll(1, "2026-03-02", false).await;
    let e2 = enroll(2, "2026-03-03", false).await;
    let e3 = enroll(3, "2026-03-04", false).await;
    let e4 = enroll(4, "2026-03-05", true).await;
    enroll(5, "2026-03-06", true).await;
    let e6 = enroll(6, "2026-03-31", false).await;
    let t = |s: &str| timestamp(s);
    sent(&store, before, "hello", "welcome", t("2026-02-27T09:00:00Z")).await;
    sent(&store, e1, "hello", "welcome", t("2026-03-02T09:00:00Z")).await;
    sent(&store, e2, "hello", "welcome_b", t("2026-03-03T09:00:00Z")).await;
    sent(&store, e3, "hello", "welcome_b", t("2026-03-04T09:00:00Z")).await;
    sent(&store, e6, "hello", "welcome", t("2026-03-31T09:00:00Z")).await;
    for (e, kind, at) in [
        (before, "delivered", "2026-02-27T09:01:00Z"),
        (e1, "delivered", "2026-03-02T09:01:00Z"),
        (e1, "opened", "2026-03-02T10:00:00Z"),
        (e1, "clicked", "2026-03-02T10:01:00Z"),
        (e2, "delivered", "2026-03-03T09:01:00Z"),
        (e2, "opened", "2026-03-04T08:00:00Z"),
        (e3, "bounced", "2026-03-04T09:01:00Z"),
        (e6, "delivered", "2026-03-31T09:01:00Z"),
        // After the report's day: not known on 2026-04-12.
        (e6, "opened", "2026-04-13T09:00:00Z"),
    ] {
        assert!(store.record_engagement(e, "hello", kind, t(at), "{}").await.unwrap());
    }
    // Goals: e1 within its window (closes 03-16 09:00); e3 after it (closes 03-18 09:00);
    // held-out e4 within (closes 03-19 09:00).
    for (e, at) in [(e1, "2026-03-05T12:00:00Z"), (e3, "2026-03-25T12:00:00Z"), (e4, "2026-03-10T12:00:00Z")] {
        assert!(store.mark_goal_met(e, t(at)).await.unwrap());
    }

    let ws = workspace();
    let q = query("2026-03-01", "2026-03-31", "2026-04-12");
    let report = programs(&store, Some(&ws), &q, Some("onboarding")).await.unwrap();
    assert_eq!(report.programs.len(), 1);
    let p = &report.programs[0];
    assert_eq!((p.program.as_str(), p.name.as_deref(), p.in_workspace), ("onboarding", Some("Onboarding"), true));
    assert_eq!((p.enrollments, p.held_out), (6, 2));

    // Reach on `hello` (February's send is outside the period):
    // welcome:   sent c1, c6; delivered c1, c6; opened c1 (c6's open is after as_of); clicked c1.
    // welcome_b: sent c2, c3; delivered c2; bounced c3; opened c2.
    let rows: Vec<(&str, Option<&str>, [u64; 7])> = p
        .reach
        .iter()
        .map(|r| {
            let counts = [r.sent, r.delivered, r.bounced, r.opened, r.clicked, r.unsubscribed, r.answered];
            (r.step.as_str(), r.variant.as_deref(), counts)
        })
        .collect();
    assert_eq!(
        rows,
        vec![("hello", Some("welcome"), [2, 2, 0, 1, 1, 0, 0]), ("hello", Some("welcome_b"), [2, 1, 1, 1, 0, 0, 0])]
    );
    assert_eq!((p.reach[0].open_rate, p.reach[0].click_rate), (Ratio::new(1, 2), Ratio::new(1, 2)));
    assert_eq!((p.reach[1].delivery_rate, p.reach[1].bounce_rate), (Ratio::new(1, 2), Ratio::new(1, 2)));
    assert_eq!(p.reach[1].open_rate, Ratio::new(1, 1));

    // Effect, 14-day window, as of the end of 2026-04-12: treated e1, e2, e3 elapsed (e1
    // converted; e3's goal came too late), e6 (window closes 04-14) too recent → 1 of 3;
    // held out e4, e5 → 1 of 2.
    let effect = p.effect.as_ref().unwrap();
    assert_eq!(effect.within, "14d");
    let t_arm = effect.treated;
    assert_eq!((t_arm.enrolled, t_arm.too_recent, t_arm.measured, t_arm.converted), (4, 1, 3, 1));
    let h_arm = effect.held_out;
    assert_eq!((h_arm.enrolled, h_arm.too_recent, h_arm.measured, h_arm.converted), (2, 0, 2, 1));
    // Wilson 95%, statsmodels: 1/3 → (0.0614919447, 0.7923403992); 1/2 → (0.0945312057, 0.9054687943).
    let w = t_arm.interval.unwrap();
    assert!((w.low - 0.061_491_944_720_396_26).abs() < 1e-12 && (w.high - 0.792_340_399_197_952_3).abs() < 1e-12);
    let w = h_arm.interval.unwrap();
    assert!((w.low - 0.094_531_205_734_230_68).abs() < 1e-12 && (w.high - 0.905_468_794_265_769_3).abs() < 1e-12);

    // ROI at the next renewal after enrollment (decided once end + 31 days ≤ 2026-04-12):
    // enrolled a1 renewed (1,000 → 1,200 on 04-05), a2 churned (500 → 0 on 04-07), a3
    // renewed (800 → 600 on 04-09), a6 pending → 2 of 3, NRR 1,800 / 2,300;
    // held out a4 churned (400 → 0), a5 renewed (300 → 300) → 1 of 2, NRR 300 / 700.
    let r = &p.roi.enrolled;
    assert_eq!((r.accounts, r.pending, r.decided, r.renewed), (4, 1, 3, 2));
    assert_eq!((r.retention, r.nrr), (Ratio::new(2, 3), Ratio::new(180_000, 230_000)));
    let r = &p.roi.held_out;
    assert_eq!((r.accounts, r.pending, r.decided, r.renewed), (2, 0, 2, 1));
    assert_eq!((r.retention, r.nrr), (Ratio::new(1, 2), Ratio::new(30_000, 70_000)));

    // Experiments on the same enrollments.
    let x = experiments(&store, Some(&ws), &q, Some("onboarding"), 0.05).await.unwrap();
    assert_eq!(x.experiments.len(), 2);
    let split = &x.experiments[0];
    assert!(matches!(&split.kind, ExperimentKind::Split { step } if step == "hello"));
    assert_eq!(
        split.arms.iter().map(|a| (a.arm.as_str(), a.n)).collect::<Vec<_>>(),
        [("welcome", 2), ("welcome_b", 2)]
    );
    // 2 and 2 against 50/50: chi-square 0, p 1.
    let srm = split.sample_ratio.as_ref().unwrap();
    assert_eq!((srm.chi_square, srm.p_value, srm.mismatch), (0.0, 1.0, false));
    // Goal: welcome e1 converted (e6 too recent) → 1 of 1; welcome_b e2, e3 → 0 of 2.
    let goal = metric(split, Metric::Goal);
    assert_eq!(counts(goal), [(1, 1), (2, 0)]);
    assert_eq!(goal.left_out, 1);
    // Click on hello: welcome c1 of c1, c6 → 1 of 2; welcome_b 0 of 2.
    assert_eq!(counts(metric(split, Metric::Click)), [(2, 1), (2, 0)]);
    let holdout = &x.experiments[1];
    assert!(matches!(holdout.kind, ExperimentKind::Holdout));
    // 2 held out and 4 treated against 20/80: expected 1.2 and 4.8, chi-square
    // 0.8²/1.2 + 0.8²/4.8 = 0.6667; SciPy p = 0.414216178.
    let srm = holdout.sample_ratio.as_ref().unwrap();
    assert!((srm.chi_square - 2.0 / 3.0).abs() < 1e-12 && (srm.p_value - 0.414_216_178_242_525_2).abs() < 1e-9);
    assert_eq!(counts(metric(holdout, Metric::Goal)), [(2, 1), (3, 1)]);
    assert_eq!(counts(metric(holdout, Metric::Retention)), [(2, 1), (3, 2)]);
    // Tiny arms: expected cells below 5, so Fisher's exact test (SciPy: 1/2 vs 1/3, p = 1.0),
    // and never a verdict: the held-out base rate 0.5 needs 1,565 per arm for a 5-point
    // change at 80% power (hand: (1.95996·√(2·0.525·0.475) + 0.84162·√(0.25 + 0.2475))² / 0.05²).
    let c = &metric(holdout, Metric::Goal).comparisons[0];
    let comparison = c.comparison.unwrap();
    assert_eq!((comparison.test, comparison.p_value), (Test::FisherExact, 1.0));
    assert_eq!(c.needed_per_arm, Some(1565));
    assert_eq!(c.needed_per_arm, sample_size_per_arm(0.5, 0.05, 0.05, 0.8).ok());
    assert_eq!(c.verdict, Verdict::NotEnoughDataYet);
    assert_eq!(c.verdict_text(), "not enough data yet (needs 1565 per arm)");
    for x in &x.experiments {
        for m in &x.metrics {
            assert!(m.comparisons.iter().all(|c| c.verdict == Verdict::NotEnoughDataYet), "{m:#?}");
        }
    }
}

fn metric(x: &Experiment, which: Metric) -> &MetricResult {
    x.metrics.iter().find(|m| m.metric == which).unwrap()
}

fn counts(m: &MetricResult) -> Vec<(u64, u64)> {
    m.arms.iter().map(|a| (a.n, a.conversions)).collect()
}

/// Two holdout programs enrolled in bulk: `nudge`'s 50% split came out 40 held out to 100
/// treated (broken), `rescue`'s 300 to 300 with goals 15 against 60 (a clear effect).
async fn a_broken_split_is_flagged_and_a_clear_effect_is_called(store: Store) {
    let at = timestamp("2026-03-10T09:00:00Z");
    let mut requests = Vec::new();
    let mut add = |program: &str, subject: i64, holdout: bool| {
        requests.push(EnrollRequest {
            program_id: program.into(),
            subject_kind: SubjectKind::Contact,
            subject_id: subject,
            trigger_key: "k".into(),
            at,
            holdout,
            first_step: None,
        });
    };
    for i in 0..140 {
        add("nudge", i, i < 40);
    }
    for i in 0..600 {
        add("rescue", 1000 + i, i < 300);
    }
    assert_eq!(store.enroll_many(&requests).await.unwrap(), 740);
    let enrolled = store.program_activity(at, at + SignedDuration::from_secs(1)).await.unwrap().enrollments;
    // rescue: the first 15 held out and the first 60 treated meet the goal within 7 days.
    let met_at = timestamp("2026-03-12T09:00:00Z");
    for m in &enrolled {
        let (e, i) = (&m.enrollment, m.enrollment.subject_id - 1000);
        if e.program_id == "rescue" && ((e.holdout && i < 15) || (!e.holdout && (300..360).contains(&i))) {
            store.mark_goal_met(e.id, met_at).await.unwrap();
        }
    }
    let ws = workspace();
    let q = query("2026-03-01", "2026-03-31", "2026-04-30");
    let x = experiments(&store, Some(&ws), &q, None, 0.10).await.unwrap();
    let find = |p: &str| x.experiments.iter().find(|e| e.program == p).unwrap();

    // nudge: 40 and 100 against 50/50 → expected 70 each, chi-square 2·30²/70 = 25.714,
    // SciPy p = 3.95885677e-07 < 0.001: broken, verdict withheld.
    let nudge = find("nudge");
    let srm = nudge.sample_ratio.as_ref().unwrap();
    assert!((srm.chi_square - 25.714_285_714_285_715).abs() < 1e-9);
    assert!((srm.p_value - 3.958_856_765_956_04e-7).abs() < 1e-12 && srm.mismatch);
    assert!(nudge.withheld.as_deref().unwrap().contains("sample ratio mismatch"));
    assert!(nudge.metrics.iter().flat_map(|m| &m.comparisons).all(|c| c.verdict == Verdict::Withheld));

    // rescue: held out 15/300 = 5%, treated 60/300 = 20%. statsmodels proportions_ztest:
    // z = 5.554920598635309, p = 2.7773798106167513e-08. With an MDE of 10 points at the
    // base rate 0.05: 141 per arm (hand: (1.95996·√(2·0.1·0.9) + 0.84162·√(0.0475 + 0.1275))²
    // / 0.1² = 140.1) ≤ 300, so a verdict.
    let rescue = find("rescue");
    assert!(!rescue.sample_ratio.as_ref().unwrap().mismatch);
    let goal = metric(rescue, Metric::Goal);
    assert_eq!(counts(goal), [(300, 15), (300, 60)]);
    let c = &goal.comparisons[0];
    let comparison = c.comparison.unwrap();
    assert_eq!(comparison.test, Test::TwoProportionZ);
    assert!((comparison.z.unwrap() - 5.554_920_598_635_309).abs() < 1e-9);
    assert!((comparison.p_value - 2.777_379_810_616_751_3e-8).abs() < 1e-15);
    assert_eq!(c.needed_per_arm, Some(141));
    // Benjamini–Hochberg over the report's p-values: nudge's goal (0 of 40 vs 0 of 100:
    // nothing to test, p 1) and rescue's goal; rescue's is the smallest of m = 2, so its
    // adjusted p is 2 · p.
    assert_eq!(x.tests, 2);
    assert!((c.adjusted_p.unwrap() - 2.0 * 2.777_379_810_616_751_3e-8).abs() < 1e-15);
    assert_eq!(c.verdict, Verdict::Better);
    assert_eq!(c.verdict_text(), "treated better");
    // Retention: the subjects belong to no account, so no renewal to measure, no verdict.
    let retention = metric(rescue, Metric::Retention);
    assert_eq!(counts(retention), [(0, 0), (0, 0)]);
    assert_eq!(retention.comparisons[0].verdict, Verdict::NotEnoughDataYet);
}

async fn a_program_in_the_data_but_not_in_the_workspace_shows_what_the_data_allows(store: Store) {
    let at = timestamp("2026-03-10T09:00:00Z");
    let e = store.enroll("retired", SubjectKind::Contact, 7, "k", at, false, None).await.unwrap().unwrap();
    sent(&store, e.id, "mail", "old_a", at).await;
    let ws = workspace();
    let q = query("2026-03-01", "2026-03-31", "2026-04-30");
    let report = programs(&store, Some(&ws), &q, None).await.unwrap();
    // The workspace's three programs (no enrollments) and the retired one.
    let ids: Vec<&str> = report.programs.iter().map(|p| p.program.as_str()).collect();
    assert_eq!(ids, ["nudge", "onboarding", "rescue", "retired"]);
    let retired = &report.programs[3];
    assert!(!retired.in_workspace && retired.effect.is_none());
    assert_eq!(retired.no_effect.as_deref(), Some("not in the workspace: its goal window is unknown"));
    assert_eq!(retired.reach[0].sent, 1);
    let err = programs(&store, Some(&ws), &q, Some("nosuch")).await.unwrap_err().to_string();
    assert!(err.contains("program `nosuch` is neither in the workspace nor in the enrollments"), "{err}");
    let err = experiments(&store, Some(&ws), &q, None, 5.0).await.unwrap_err().to_string();
    assert!(err.contains("500 percentage points is not between 0 and 100"), "{err}");
}

#[tokio::test]
async fn sqlite_onboarding_story() {
    run(Backend::Sqlite, "onboarding", onboarding_story).await;
}

#[tokio::test]
async fn postgres_onboarding_story() {
    run(Backend::Postgres, "onboarding", onboarding_story).await;
}

#[tokio::test]
async fn sqlite_a_broken_split_is_flagged_and_a_clear_effect_is_called() {
    run(Backend::Sqlite, "experiments", a_broken_split_is_flagged_and_a_clear_effect_is_called).await;
}

#[tokio::test]
async fn postgres_a_broken_split_is_flagged_and_a_clear_effect_is_called() {
    run(Backend::Postgres, "experiments", a_broken_split_is_flagged_and_a_clear_effect_is_called).await;
}

#[tokio::test]
async fn sqlite_a_program_in_the_data_but_not_in_the_workspace_shows_what_the_data_allows() {
    run(Backend::Sqlite, "retired", a_program_in_the_data_but_not_in_the_workspace_shows_what_the_data_allows).await;
}
