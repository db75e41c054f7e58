//! `cairn report hypotheses` on a population whose truth is known: a generator (fixed
//! seed) makes accounts of two sizes, each anchored on its start date with a one-year
//! line, and decides renewal from three behaviours in the first weeks:
//!
//! - `report_shared` (A) and `teammate_invited` (B) raise the chance of renewing,
//! - `error_shown` (C) lowers it,
//! - `sso_configured` (D) and `api_key_created` (E) are done mostly by large accounts,
//!   and size changes nothing: decoys, correlated with size only,
//! - `login` is done by everyone, `subscription_renewed` is recorded at renewal (an
//!   outcome) and `thank_you_viewed` only after renewal.
//!
//! The report must label A and B positive, C negative and neither decoy; discovery must
//! rank A and B first among its suggestions, leave the outcome events out, and print
//! milestones that `cairn check` accepts.

use std::path::PathBuf;
use std::process::{Command, Output};

use jiff::ToSpan;
use jiff::civil::{Date, date};

/// splitmix64: a deterministic generator, so the population is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ACCOUNTS: usize = 700;
const AS_OF: &str = "2026-03-01";

const WORKSPACE: &str = r#"
journey:
  anchor: start_date
  stages:
    - id: onboarding
      milestones:
        - { id: shared_report, when: "count('report_shared', since_anchor) >= 1", within: 30d }
        - { id: invited_team, when: "count('teammate_invited', since_anchor) >= 1", within: 30d }
        - { id: saw_errors, when: "count('error_shown', since_anchor) >= 1", within: 30d }
        - { id: set_up_sso, when: "count('sso_configured', since_anchor) >= 1", within: 30d }
        - { id: created_api_key, when: "count('api_key_created', since_anchor) >= 1", within: 30d }
    - id: adoption
"#;

struct Population {
    dir: tempfile::TempDir,
}

impl Population {
    /// Generates the population and imports it into a fresh SQLite database.
    fn generate() -> Population {
        let p = Population { dir: tempfile::tempdir().expect("temp dir") };
        let mut rng = Rng(15);
        let mut accounts = String::from("external_id,name,employees,start_date,product_id\n");
        let mut lines = String::from("id,account_id,start_date,end_date,arr\n");
        let mut events = String::new();
        let mut event = |account: usize, name: &str, day: Date, hour: u64| {
            let ts = format!("{day}T{:02}:15:00Z", hour % 24);
            events.push_str(&format!(
                r#"{{"type":"track","userId":"u{account}","event":"{name}","timestamp":"{ts}","context":{{"groupId":"p{account}"}},"messageId":"m{}"}}"#,
                events.len()
            ));
            events.push('\n');
        };
        for i in 0..ACCOUNTS {
            let start = date(2024, 1, 1).checked_add((rng.below(180) as i64).days()).expect("date");
            let large = rng.chance(0.5);
            let employees = if large { 500 + rng.below(2000) } else { 5 + rng.below(45) };
            accounts.push_str(&format!("a{i},Account {i},{employees},{start},p{i}\n"));
            let (a, b, c) = (rng.chance(0.5), rng.chance(0.5), rng.chance(0.4));
            // Decoys follow size, not renewal.
            let d = rng.chance(if large { 0.8 } else { 0.2 });
            let e = rng.chance(if large { 0.7 } else { 0.15 });
            let p_renew: f64 =
                0.5 + if a { 0.25 } else { 0.0 } + if b { 0.2 } else { 0.0 } - if c { 0.25 } else { 0.0 };
            let renewed = rng.chance(p_renew.clamp(0.05, 0.95));
            let day = |offset: u64| start.checked_add((offset as i64).days()).expect("date");
            if a {
                for _ in 0..3 + rng.below(3) {
                    event(i, "report_shared", day(rng.below(10)), rng.below(24));
                }
            } else if rng.chance(0.3) {
                // Some do it too late to count (after the 30-day window).
                event(i, "report_shared", day(45 + rng.below(60)), rng.below(24));
            }
            if b {
                for _ in 0..2 {
                    event(i, "teammate_invited", day(rng.below(20)), rng.below(24));
                }
            }
            if c {
                for _ in 0..1 + rng.below(4) {
                    event(i, "error_shown", day(rng.below(25)), rng.below(24));
                }
            }
            if d {
                event(i, "sso_configured", day(rng.below(20)), rng.below(24));
            }
            if e {
                for _ in 0..1 + rng.below(3) {
                    event(i, "api_key_created", day(rng.below(28)), rng.below(24));
                }
            }
            for _ in 0..3 + rng.below(8) {
                event(i, "login", day(rng.below(300)), rng.below(24));
            }
            let end = start.checked_add(1.year()).and_then(|d| d.yesterday()).expect("date");
            lines.push_str(&format!("L{i}a,a{i},{start},{end},{}\n", 6000 + rng.below(4000)));
            if renewed {
                let next = end.tomorrow().expect("date");
                let next_end = next.checked_add(1.year()).and_then(|d| d.yesterday()).expect("date");
                lines.push_str(&format!("L{i}b,a{i},{next},{next_end},{}\n", 6000 + rng.below(6000)));
                event(i, "subscription_renewed", next, 9);
                event(i, "thank_you_viewed", next.checked_add(2.days()).expect("date"), 10);
            }
        }
        for (kind, name, text) in [
            ("accounts", "accounts.csv", accounts),
            ("subscriptions", "subscriptions.csv", lines),
            ("events", "events.ndjson", events),
        ] {
            let path = p.dir.path().join(name);
            std::fs::write(&path, text).expect("write file");
            let out = p.cairn(&["import", kind, path.to_str().expect("path")]);
            assert!(out.status.success(), "import {kind}: {}", text_of(&out.stderr));
        }
        std::fs::create_dir_all(p.definitions()).expect("dir");
        std::fs::write(p.definitions().join("workspace.yaml"), WORKSPACE).expect("write workspace");
        p
    }

    fn definitions(&self) -> PathBuf {
        self.dir.path().join("definitions")
    }

    fn cairn(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_DB", format!("sqlite://{}", self.dir.path().join("cairn.db").display()))
            .env("CAIRN_LOG", "warn")
            .output()
            .expect("cairn runs")
    }

    fn hypotheses(&self, extra: &[&str]) -> Output {
        let defs = self.definitions();
        let mut args = vec!["report", "hypotheses", "--workspace", defs.to_str().expect("path"), "--as-of", AS_OF];
        args.extend_from_slice(extra);
        self.cairn(&args)
    }

    fn json(&self, extra: &[&str]) -> serde_json::Value {
        let out = self.hypotheses(&[extra, &["--json"]].concat());
        assert!(out.status.success(), "{}", text_of(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn label_of<'a>(report: &'a serde_json::Value, name: &str) -> &'a str {
    report["hypotheses"]
        .as_array()
        .expect("hypotheses")
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no hypothesis {name}"))["label"]
        .as_str()
        .expect("label")
}

#[test]
fn the_real_behaviours_are_labelled_and_the_decoys_are_not() {
    let p = Population::generate();
    let report = p.json(&["--rule", "count('report_shared', since_anchor) >= 3", "--within", "14d"]);
    assert_eq!(label_of(&report, "shared_report"), "positive_indicator", "{report:#}");
    assert_eq!(label_of(&report, "invited_team"), "positive_indicator");
    assert_eq!(label_of(&report, "saw_errors"), "negative_indicator");
    assert_eq!(label_of(&report, "set_up_sso"), "inconclusive");
    assert_eq!(label_of(&report, "created_api_key"), "inconclusive");
    assert_eq!(label_of(&report, "--rule"), "positive_indicator");
    // Every account started in the first half of 2024: all decided and due by 2026-03-01.
    let shared = &report["hypotheses"][0];
    assert_eq!(shared["held"]["accounts"].as_u64().unwrap() + shared["not_held"]["accounts"].as_u64().unwrap(), 700);
    assert_eq!(shared["undecided_accounts"], 0);
    assert!(report["note"].as_str().unwrap().contains("holdout"));

    // The table says the same to a person.
    let out = p.hypotheses(&["--rule", "count('report_shared', since_anchor) >= 3", "--within", "14d"]);
    let table = text_of(&out.stdout);
    assert!(table.contains("shared_report: count('report_shared', since_anchor) >= 1 within 30 days"), "{table}");
    assert!(table.contains("=> positive indicator") && table.contains("=> negative indicator"), "{table}");
    assert!(table.contains("correlations, not causes"), "{table}");

    // With a minimum above every group, nothing is labelled.
    let strict = p.json(&["--min-group", "100000"]);
    assert_eq!(label_of(&strict, "shared_report"), "too_small");
}

#[test]
fn discovery_finds_the_real_behaviours_and_prints_milestones_that_check() {
    let p = Population::generate();
    let report = p.json(&["--discover"]);
    let d = &report["discovery"];
    let suggested: Vec<&str> =
        d["suggestions"].as_array().expect("suggestions").iter().map(|s| s["event"].as_str().expect("event")).collect();
    let top: Vec<&str> = suggested.iter().take(3).copied().collect();
    assert!(top.contains(&"report_shared") && top.contains(&"teammate_invited"), "{suggested:?}");
    assert!(!suggested.contains(&"sso_configured") && !suggested.contains(&"api_key_created"), "{suggested:?}");
    let excluded: Vec<&str> =
        d["excluded"].as_array().expect("excluded").iter().map(|e| e["event"].as_str().expect("event")).collect();
    assert_eq!(excluded, ["subscription_renewed", "thank_you_viewed"]);
    // The 6 event names kept × 5 thresholds × 4 windows: each tested or too small.
    assert_eq!(d["tested"].as_u64().unwrap() + d["too_small"].as_u64().unwrap(), 6 * 5 * 4);

    // Paste the suggestions under a stage and check the workspace with the real checker.
    let yaml: String = d["suggestions"]
        .as_array()
        .expect("suggestions")
        .iter()
        .map(|s| s["yaml"].as_str().expect("yaml").lines().map(|l| format!("        {l}\n")).collect::<String>())
        .collect();
    let pasted = format!("journey:\n  anchor: start_date\n  stages:\n    - id: onboarding\n      milestones:\n{yaml}");
    let dir = p.dir.path().join("suggested");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("workspace.yaml"), &pasted).expect("write");
    let out = p.cairn(&["check", dir.to_str().expect("path")]);
    assert!(out.status.success(), "{pasted}\n{}", text_of(&out.stdout) + &text_of(&out.stderr));

    let out = p.hypotheses(&["--discover"]);
    let table = text_of(&out.stdout);
    assert!(table.contains("Milestones to paste under a stage's `milestones:`"), "{table}");
    assert!(table.contains("subscription_renewed: a billing or subscription event"), "{table}");
}

#[test]
fn a_wrong_rule_is_reported_at_its_position_and_csv_has_a_row_per_hypothesis() {
    let p = Population::generate();
    let out = p.hypotheses(&["--rule", "count('report_shared', since_anchr) >= 3"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text_of(&out.stderr);
    assert!(err.contains("--rule:1:"), "{err}");
    assert!(err.contains("since_anchor"), "a did-you-mean: {err}");
    let out = p.hypotheses(&["--rule", "count('x') >= 1", "--within", "30"]);
    assert!(text_of(&out.stderr).contains("within: `30` is not a duration"), "{}", text_of(&out.stderr));

    let out = p.hypotheses(&["--csv"]);
    assert!(out.status.success(), "{}", text_of(&out.stderr));
    let csv = text_of(&out.stdout);
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("milestone,shared_report,"), "{csv}");
}

#[macro_use]
mod common;

/// The same report over HTTP for a secret key, on both backends: the milestones and the
/// rule as JSON, discovery reading the events from the store; a wrong rule is a 400
/// naming its position.
async fn the_api_serves_the_report_and_its_errors(app: &common::TestApp) {
    let acme = cairn_core::import::AccountRow {
        line: 2,
        external_id: "A1".into(),
        name: "Acme".into(),
        industry: None,
        employees: None,
        plan: None,
        seats: None,
        owner_email: None,
        start_date: Some(Some(date(2026, 1, 5))),
        renewal_date: None,
        domains: None,
        other_ids: vec![(cairn_core::Source::Product, "acme".into())],
        traits: Default::default(),
    };
    let imported = app.store.upsert_accounts(cairn_core::Source::Crm, &[acme]).await.expect("store");
    assert!(imported.iter().all(Result::is_ok));
    let r = app.post("/v1/track", r#"{"userId":"u1","event":"report_shared","timestamp":"2026-01-06T10:00:00Z","context":{"groupId":"acme"}}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rule = "as_of=2026-03-01&rule=count(%27report_shared%27,%20since_anchor)%20%3E%3D%203&within=14d&discover=true";
    let start = std::time::Instant::now();
    let body = loop {
        let (status, body) = app.api_get(&format!("/api/reports/hypotheses?{rule}")).await;
        assert_eq!(status, 200, "{body}");
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the event never showed: {body}");
        // The event is in the log once the group commit holding it is done.
        if body["discovery"]["too_small"] == 20 {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let names: Vec<&str> = body["hypotheses"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["shared_report", "invited_team", "saw_errors", "set_up_sso", "created_api_key", "--rule"]);
    // One account, decided (2026-01-05 + 30 days is before 2026-03-01), did it, no
    // subscription line: no renewal due, nothing to label.
    let shared = &body["hypotheses"][0];
    assert_eq!((shared["held"]["accounts"].as_u64(), shared["label"].as_str()), (Some(1), Some("too_small")));
    // report_shared × 5 thresholds × 4 windows, all too small.
    assert_eq!(body["discovery"]["tested"], 0);
    let (status, body) = app.api_get("/api/reports/hypotheses?rule=count(%27x%27,%20since_anchr)%20%3E%3D%201").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("--rule:1:12"), "{body}");
    let (status, body) = app.api_get("/api/reports/hypotheses?min_group=0").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.api_get("/api/reports/nothing").await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("hypotheses"), "{body}");
}

on_both_backends!(
    workspace = super::WORKSPACE;
    the_api_serves_the_report_and_its_errors,
);
