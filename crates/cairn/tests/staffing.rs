//! `cairn report staffing` and `GET /api/reports/staffing` as a CS leader meets them: a
//! handful of accounts whose segments and stages follow from their ARR and seats, a touch
//! model, and the CSMs, cost and what-if worked out by hand below.
//!
//! The customer base (ARR from subscription lines active 2020–2099):
//!
//! | account | seats | ARR     | segment | stage      |
//! |---------|-------|---------|---------|------------|
//! | a1      | 5     | 100,000 | big     | onboarding |
//! | a2      | 20    | 80,000  | big     | adoption   |
//! | a3      | 20    | 60,000  | big     | adoption   |
//! | a4      | 5     | 10,000  | small   | onboarding |
//! | a5      | 20    | 20,000  | small   | adoption   |
//! | a6      | 5     | none    | neither (outside the model) |
//!
//! A CSM gives 100 hours for 50,000.00 a year. big: 40 h onboarding + 2 × 20 h adoption =
//! 80 h = 0.80 CSM, 40,000.00, ARR 240,000 → 0.167 per ARR dollar, 300,000.00 per CSM.
//! small: 10 + 2 × 1 = 12 h = 0.12 CSM, 6,000.00. Total 92 h = 0.92 CSM → 1 to hire;
//! 46,000.00 for the hours, 50,000.00 for the CSM; 46,000 / 270,000 = 0.170 per ARR
//! dollar. What if big's adoption went digital (5 h left each): big 40 + 2 × 5 = 50 h,
//! total 62 h = 0.62 CSM, 31,000.00: −30 h, −0.30 CSM, still 1 to hire, −15,000.00,
//! 31,000 / 270,000 = 0.115 per ARR dollar (−0.056).

mod common;

use std::process::{Command, Output};

use common::TestApp;
use serde_json::Value;

const WORKSPACE: &str = r#"
segments:
  - { id: big, of: account, where: arr >= 50000 }
  - { id: small, of: account, where: arr < 50000 }
journey:
  stages:
    - id: onboarding
      until: seats >= 10
    - id: adoption
      from: seats >= 10
staffing:
  csm: { hours_per_year: 100, cost_per_year: 50000 }
  touch_model:
    - segment: big
      hours: { onboarding: 40, adoption: 20 }
      digital_hours: { adoption: 5 }
    - segment: small
      hours: { onboarding: 10, adoption: 2 }
"#;

const ACCOUNTS: &str = "external_id,name,seats
a1,Alpha,5
a2,Bravo,20
a3,Charlie,20
a4,Delta,5
a5,Echo,20
a6,Foxtrot,5
";

const SUBSCRIPTIONS: &str = "id,account_id,start_date,end_date,arr
s1,a1,2020-01-01,2099-12-31,100000
s2,a2,2020-01-01,2099-12-31,80000
s3,a3,2020-01-01,2099-12-31,60000
s4,a4,2020-01-01,2099-12-31,10000
s5,a5,2020-01-01,2099-12-31,20000
";

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A database and a workspace folder in a temporary directory, used through the binary.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    /// An empty database, and `workspace` as the workspace folder.
    fn empty(workspace: &str) -> Cli {
        let cli = Cli { dir: tempfile::tempdir().expect("temp dir") };
        std::fs::create_dir(cli.dir.path().join("ws")).expect("ws folder");
        std::fs::write(cli.dir.path().join("ws/workspace.yaml"), workspace).expect("workspace");
        cli
    }

    /// The customer base of the table above, and `workspace`.
    fn new(workspace: &str) -> Cli {
        let cli = Cli::empty(workspace);
        for (kind, text) in [("accounts", ACCOUNTS), ("subscriptions", SUBSCRIPTIONS)] {
            let path = cli.dir.path().join(format!("{kind}.csv"));
            std::fs::write(&path, text).expect("write file");
            let out = cli.cairn(&["import", kind, path.to_str().expect("path")]);
            assert!(out.status.success(), "import {kind}: {}", text_of(&out.stderr));
        }
        cli
    }

    fn cairn(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_DB", format!("sqlite://{}", self.dir.path().join("cairn.db").display()))
            .env("CAIRN_WORKSPACE", self.dir.path().join("ws"))
            .env("CAIRN_LOG", "warn")
            .output()
            .expect("cairn runs")
    }

    fn staffing(&self, args: &[&str]) -> String {
        let out = self.cairn(&[&["report", "staffing"], args].concat());
        assert!(out.status.success(), "report staffing {args:?} failed: {}", text_of(&out.stderr));
        text_of(&out.stdout)
    }
}

/// The cells of the first line of `table` whose cells start with `first`.
fn row<'t>(table: &'t str, first: &[&str]) -> Vec<&'t str> {
    table
        .lines()
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>())
        .find(|cells| cells.starts_with(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{table}"))
}

#[test]
fn the_staffing_table_counts_accounts_by_segment_and_stage() {
    let cli = Cli::new(WORKSPACE);
    let table = cli.staffing(&[]);
    assert!(table.contains("One CSM: 100 hours a year, 50,000.00 a year (500.00 an hour)"), "{table}");
    // segment, stage, accounts, ARR, h/account, hours, CSMs, cost, cost/ARR $, ARR per CSM
    assert_eq!(
        row(&table, &["big", "onboarding"]),
        ["big", "onboarding", "1", "100,000.00", "40.0", "40.0", "0.40", "20,000.00", "0.200", "250,000.00"]
    );
    assert_eq!(
        row(&table, &["big", "adoption"]),
        ["big", "adoption", "2", "140,000.00", "20.0", "40.0", "0.40", "20,000.00", "0.143", "350,000.00"]
    );
    assert_eq!(
        row(&table, &["big", "total"]),
        ["big", "total", "3", "240,000.00", "80.0", "0.80", "40,000.00", "0.167", "300,000.00"]
    );
    assert_eq!(
        row(&table, &["small", "total"]),
        ["small", "total", "2", "30,000.00", "12.0", "0.12", "6,000.00", "0.200", "250,000.00"]
    );
    assert_eq!(
        row(&table, &["total"]),
        ["total", "5", "270,000.00", "92.0", "0.92", "46,000.00", "0.170", "293,478.26"]
    );
    assert!(
        table.contains(
            "0.92 CSMs needed, 1 to hire: 50,000.00 a year (46,000.00 for the hours alone), 0.170 per ARR dollar."
        ),
        "{table}"
    );
    assert!(table.contains("1 account with 0.00 ARR in no touch-model segment"), "{table}");
}

#[test]
fn a_what_if_shows_before_after_and_the_change() {
    let cli = Cli::new(WORKSPACE);
    let table = cli.staffing(&["--digital", "big:adoption"]);
    assert!(table.contains("What if digital: big:adoption"), "{table}");
    assert_eq!(row(&table, &["big", "adoption (digital)"])[4..7], ["5.0", "10.0", "0.10"]);
    assert_eq!(row(&table, &["hours"]), ["hours", "92.0", "62.0", "-30.0"]);
    assert_eq!(row(&table, &["CSMs needed"]), ["CSMs needed", "0.92", "0.62", "-0.30"]);
    assert_eq!(row(&table, &["CSMs to hire"]), ["CSMs to hire", "1", "1", "0"]);
    assert_eq!(row(&table, &["cost of the hours"]), ["cost of the hours", "46,000.00", "31,000.00", "-15,000.00"]);
    assert_eq!(row(&table, &["cost per ARR $"]), ["cost per ARR $", "0.170", "0.115", "-0.056"]);
    assert!(table.contains("By segment: big -0.30 CSMs (-15,000.00)."), "{table}");
    // JSON: the exact figures.
    let json: Value = serde_json::from_str(&cli.staffing(&["--digital", "big:adoption", "--json"])).expect("JSON");
    assert_eq!(json["total"]["cost_cents"], 4_600_000);
    assert_eq!(json["total"]["csms"]["value"], 0.92);
    assert_eq!(json["outside"]["accounts"], 1);
    assert_eq!(json["what_if"]["after"]["total"]["cost_cents"], 3_100_000);
    assert_eq!(json["what_if"]["change"]["cost_cents"], -1_500_000);
    assert_eq!(json["what_if"]["digital"], serde_json::json!([["big", "adoption"]]));
    // CSV: one row per segment and stage, as is and with the what-if.
    let csv = cli.staffing(&["--digital", "big:adoption", "--csv"]);
    assert!(csv.starts_with("scenario,segment,stage,digital,accounts,arr,hours_per_account,hours,csms"), "{csv}");
    assert!(csv.contains("\nwhat_if,big,adoption,true,2,140000.00,5,10,0.1,1,5000.00,50000.00,"), "{csv}");
    assert!(csv.contains("\nas_is,total,,false,5,270000.00,,92,0.92,1,46000.00,50000.00,"), "{csv}");
}

#[test]
fn a_mistyped_what_if_or_a_workspace_without_staffing_says_what_to_do() {
    let cli = Cli::new(WORKSPACE);
    let out = cli.cairn(&["report", "staffing", "--digital", "bigg:adoption"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text_of(&out.stderr)
            .contains("digital `bigg:adoption`: `bigg` is not a segment of the touch model (did you mean `big`?)"),
        "{}",
        text_of(&out.stderr)
    );
    let without = WORKSPACE.split("staffing:").next().expect("segments and journey");
    let cli = Cli::new(without);
    let out = cli.cairn(&["report", "staffing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text_of(&out.stderr).contains("the workspace has no `staffing:` section"), "{}", text_of(&out.stderr));
}

#[test]
fn the_example_workspace_staffs_the_demo_customer_base() {
    let cli = Cli::empty(WORKSPACE);
    let out = cli.cairn(&["demo", "--accounts", "40"]);
    assert!(out.status.success(), "demo: {}", text_of(&out.stderr));
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace");
    let example = example.to_str().expect("path");
    let json: Value = serde_json::from_str(&cli.staffing(&[
        "--workspace",
        example,
        "--json",
        "--digital",
        "smb:onboarding,adoption",
    ]))
    .expect("JSON");
    // examples/workspace/staffing.yaml, read independently of the checker.
    let hours = |segment: &str, stage: &str| -> f64 {
        match (segment, stage) {
            ("enterprise", "onboarding") => 60.0,
            ("enterprise", "adoption") => 30.0,
            ("enterprise", "value") => 20.0,
            ("enterprise", "renewal") => 24.0,
            ("mid_market", "onboarding") => 16.0,
            ("mid_market", "adoption") => 8.0,
            ("mid_market", "value") => 6.0,
            ("mid_market", "renewal") => 8.0,
            ("smb", "onboarding") => 3.0,
            ("smb", "adoption") => 1.0,
            ("smb", "value") => 0.5,
            ("smb", "renewal") => 1.0,
            _ => 0.0,
        }
    };
    let segments = json["segments"].as_array().expect("segments");
    let names: Vec<&str> = segments.iter().filter_map(|s| s["segment"].as_str()).collect();
    assert_eq!(names, ["enterprise", "mid_market", "smb"]);
    let (mut accounts, mut total_hours) = (json["outside"]["accounts"].as_u64().expect("outside"), 0.0);
    for s in segments {
        let segment = s["segment"].as_str().expect("id");
        for row in s["stages"].as_array().expect("stages") {
            let stage = row["stage"].as_str().unwrap_or("");
            let n = row["accounts"].as_u64().expect("accounts");
            let expected = n as f64 * hours(segment, stage);
            assert!(
                (row["hours"]["value"].as_f64().expect("hours") - expected).abs() < 1e-9,
                "{segment} {stage}: {row}"
            );
            accounts += n;
            total_hours += expected;
        }
    }
    assert_eq!(accounts, 40, "every demo account is staffed or counted apart");
    assert!((json["total"]["hours"]["value"].as_f64().expect("hours") - total_hours).abs() < 1e-9);
    assert!((json["total"]["csms"]["value"].as_f64().expect("csms") - total_hours / 1600.0).abs() < 1e-9);
    assert_eq!(json["total"]["whole_csms"].as_f64(), Some((total_hours / 1600.0).ceil()));
    // smb's onboarding and adoption went digital (no digital hours given): they take none.
    let smb_after = &json["what_if"]["after"]["segments"][2];
    for row in smb_after["stages"].as_array().expect("stages") {
        if matches!(row["stage"].as_str(), Some("onboarding" | "adoption")) {
            assert_eq!((row["digital"].as_bool(), row["hours"]["value"].as_f64()), (Some(true), Some(0.0)), "{row}");
        }
    }
    // The table reads as a person would want it.
    let table = cli.staffing(&["--workspace", example]);
    eprintln!("{table}");
    assert!(table.contains("One CSM: 1600 hours a year, 95,000.00 a year (59.38 an hour)"), "{table}");
}

// ---- the API ---------------------------------------------------------------------------

async fn import(app: &TestApp) {
    app.import_crm(ACCOUNTS, SUBSCRIPTIONS).await;
    // The engine reloads from the store: the accounts with today's ARR.
    let (status, body) = app.api_post("/api/workspace/reload", "").await;
    assert_eq!(status, 200, "{body}");
}

async fn the_staffing_report_over_http_is_the_cli_document(app: &TestApp) {
    import(app).await;
    let (status, body) = app.api_get("/api/reports/staffing").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"]["cost_cents"], 4_600_000);
    assert_eq!(
        (body["total"]["csms"]["numerator"].as_i64(), body["total"]["csms"]["denominator"].as_i64()),
        (Some(9_200), Some(10_000))
    );
    assert_eq!(body["segments"][0]["total"]["arr_cents"], 24_000_000);
    assert_eq!(body["what_if"], Value::Null);
    assert_eq!(body["as_of"], "2026-03-01T12:00:00Z");
    let (status, body) = app.api_get("/api/reports/staffing?digital=big:adoption&digital=small:onboarding").await;
    assert_eq!(status, 200, "{body}");
    // small's onboarding drops its 10 h too: 92 − 30 − 10 = 52 h, 26,000.00.
    assert_eq!(body["what_if"]["after"]["total"]["cost_cents"], 2_600_000);
    assert_eq!(body["what_if"]["change"]["whole_csms"], 0);
    assert_eq!(body["what_if"]["digital"], serde_json::json!([["big", "adoption"], ["small", "onboarding"]]));
    let (status, body) = app.api_get("/api/reports/staffing?digital=big:adoptoin").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().expect("error").contains("`adoptoin` is not a journey stage (did you mean `adoption`?)"),
        "{body}"
    );
    let r = app.raw("GET", "/api/reports/staffing", &[], b"").await;
    assert_eq!(r.status, 401);
}

on_both_backends!(workspace = super::WORKSPACE; the_staffing_report_over_http_is_the_cli_document);
