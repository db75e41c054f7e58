//! The command line as a user meets it: import files, read the doctor's report, create
//! keys. Each test runs the real `cairn` binary on a fresh SQLite file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn db(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cairn.db").display())
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }

    fn cairn(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_DB", self.db())
            .env("CAIRN_LOG", "warn")
            .output()
            .expect("cairn runs")
    }

    fn import(&self, kind: &str, file: &Path) -> Output {
        self.cairn(&["import", kind, file.to_str().expect("path")])
    }

    fn doctor(&self, as_of: &str) -> serde_json::Value {
        let out = self.cairn(&["doctor", "--json", "--as-of", as_of]);
        assert!(out.status.success(), "doctor failed: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const ACCOUNTS: &str = "external_id,name,plan,seats,domains,region\nA1,Acme,team,20,acme.com,EMEA\nA2,Globex,enterprise,lots,globex.com,AMER\nA3,Initech,starter,5,,APAC\n";
const CONTACTS: &str = "external_id,account_external_id,email,name,role,timezone\nC1,A1,ada@acme.com,Ada,admin,Europe/London\nC2,,bob@acme.com,Bob,user,America/New_York\nC3,A9,eve@nowhere.io,Eve,user,\nC4,,zed@unknown.org,Zed,user,\n";
const SUBSCRIPTIONS: &str = "id,account_id,start_date,end_date,arr\nS1,A1,2026-01-01,2026-12-31,12000.00\nS2,A1,2026-06-01,2026-12-31,3000.50\nS3,A3,2025-01-01,2025-12-31,999\n";

#[test]
fn importing_accounts_reports_bad_rows_by_line_and_column_and_keeps_the_good_ones() {
    let ws = Workspace::new();
    let f = ws.file("accounts.csv", ACCOUNTS);
    let out = ws.import("accounts", &f);
    assert_eq!(out.status.code(), Some(2), "some rows rejected → exit 2; stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("line 3, column `seats`: `lots` is not a whole number ≥ 0"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("3 rows read, imported 2"), "{}", text(&out.stdout));
    assert_eq!(ws.doctor("2026-07-01")["totals"]["accounts"], 2);
}

#[test]
fn reimporting_the_same_files_changes_nothing() {
    let ws = Workspace::new();
    let a = ws.file("a.csv", &ACCOUNTS.replace("lots", "100"));
    let c = ws.file("c.csv", CONTACTS);
    let s = ws.file("s.csv", SUBSCRIPTIONS);
    for _ in 0..2 {
        assert!(ws.import("accounts", &a).status.success());
        ws.import("contacts", &c);
        assert!(ws.import("subscriptions", &s).status.success());
    }
    let first = ws.doctor("2026-07-01");
    for _ in 0..2 {
        ws.import("accounts", &a);
        ws.import("contacts", &c);
        ws.import("subscriptions", &s);
    }
    assert_eq!(ws.doctor("2026-07-01"), first);
    assert_eq!(first["totals"]["accounts"], 3);
    assert_eq!(first["totals"]["contacts"], 3, "C3 names an unknown account and is rejected");
    assert_eq!(first["totals"]["subscription_lines"], 3);
}

#[test]
fn doctor_reports_what_is_missing() {
    let ws = Workspace::new();
    ws.import("accounts", &ws.file("a.csv", &ACCOUNTS.replace("lots", "100")));
    let out = ws.import("contacts", &ws.file("c.csv", CONTACTS));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "line 4, column `account_external_id`: `A9` matches no account with a crm id; import the accounts first"
        ),
        "{}",
        text(&out.stderr)
    );
    ws.import("subscriptions", &ws.file("s.csv", SUBSCRIPTIONS));
    let events = ws.file(
        "e.ndjson",
        "{\"type\":\"track\",\"messageId\":\"e1\",\"userId\":\"nobody\",\"event\":\"report_created\",\"timestamp\":\"2026-06-30T10:00:00Z\"}\n",
    );
    assert!(ws.import("events", &events).status.success());
    let r = ws.doctor("2026-07-01");
    assert_eq!(r["totals"], serde_json::json!({"accounts": 3, "contacts": 3, "subscription_lines": 3, "events": 1}));
    assert_eq!(r["unmatched"]["events_matched_to_nobody"], 1);
    assert_eq!(r["unmatched"]["contacts_without_account"], 1, "zed@unknown.org matches no domain");
    assert_eq!(r["accounts_without_arr"]["count"], 2, "A2 has no line; A3's line ended in 2025");
    assert_eq!(r["accounts_without_renewal_date"]["count"], 2);
    assert_eq!(r["accounts_without_crm_id"]["count"], 0);
    assert_eq!(r["sources"][0]["source"], "import");
    assert_eq!(r["sources"][0]["newest_event_at"], "2026-06-30T10:00:00Z");
    let human = ws.cairn(&["doctor", "--as-of", "2026-07-01"]);
    assert!(text(&human.stdout).contains("contacts without an account"), "{}", text(&human.stdout));
}

#[test]
fn event_import_rejects_bad_lines_and_deduplicates_on_reimport() {
    let ws = Workspace::new();
    let f = ws.file(
        "e.ndjson",
        concat!(
            "{\"type\":\"track\",\"messageId\":\"m1\",\"userId\":\"u1\",\"event\":\"report_created\",\"timestamp\":\"2026-03-01T12:00:00Z\"}\n",
            "{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"alert_set\",\"timestamp\":\"2026-03-01T12:05:00Z\"}\n",
            "not json\n",
            "\n",
            "{\"type\":\"track\",\"userId\":\"u1\"}\n",
        ),
    );
    let out = ws.import("events", &f);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("line 3: invalid JSON"), "{err}");
    assert!(err.contains("line 5, column `event`: is required for a track call"), "{err}");
    let again = ws.import("events", &f);
    assert!(text(&again.stdout).contains("imported 0, 2 already stored, 2 rejected"), "{}", text(&again.stdout));
    assert_eq!(ws.doctor("2026-03-02")["totals"]["events"], 2);
}

#[test]
fn a_bad_header_imports_nothing_and_says_what_is_missing() {
    let ws = Workspace::new();
    let out = ws.import("subscriptions", &ws.file("s.csv", "id,account_id,arr\nS1,A1,10\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing columns `start_date`, `end_date`"), "{}", text(&out.stderr));
}

#[test]
fn dry_run_checks_without_writing() {
    let ws = Workspace::new();
    let out = ws.cairn(&["import", "accounts", ws.file("a.csv", ACCOUNTS).to_str().unwrap(), "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["summary"]["imported"], 2);
    assert!(text(&out.stderr).contains("region"), "the column mapping is shown");
    assert_eq!(ws.doctor("2026-07-01")["totals"]["accounts"], 0);
}

#[test]
fn keys_create_prints_only_the_key() {
    let ws = Workspace::new();
    let out = ws.cairn(&["keys", "create", "--kind", "write", "--name", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let key = stdout.trim_end_matches('\n');
    assert!(key.starts_with("cairn_wk_") && !key.contains(char::is_whitespace), "{stdout:?}");
    assert_eq!(stdout.lines().count(), 1);
}

#[test]
fn every_subcommand_has_help() {
    let ws = Workspace::new();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["import", "--help"],
        vec!["doctor", "--help"],
        vec!["keys", "create", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "revoke", "--help"],
        vec!["keys", "identity-secret", "--help"],
        vec!["demo", "--help"],
        vec!["check", "--help"],
        vec!["show", "account", "--help"],
        vec!["segments", "--help"],
    ] {
        let out = ws.cairn(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: cairn"), "{args:?}");
    }
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let ws = Workspace::new();
    let out = ws.cairn(&["doctor", "--db", "mysql://x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unsupported database URL `mysql://x`: use sqlite://PATH"),
        "{}",
        text(&out.stderr)
    );
}

const ENGINE_WORKSPACE: &str = r#"
segments:
  - { id: team_plans, of: account, where: "plan = 'team'" }
  - { id: reporters, of: account, where: "count('report_created', 30d) >= 1" }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      until: milestone('first_report')
      milestones:
        - { id: first_report, when: "count('report_created') >= 1", value: true }
    - id: adoption
health:
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 4 }, weight: 1 }
"#;

/// Acme with one report created yesterday, and the workspace folder.
fn engine_data(ws: &Workspace) -> PathBuf {
    let accounts =
        ws.file("accounts.csv", "external_id,name,plan,seats,start_date,product_id\nA1,Acme,team,20,2026-01-01,acme\n");
    assert!(ws.import("accounts", &accounts).status.success());
    let yesterday = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let events = ws.file(
        "events.ndjson",
        &format!(r#"{{"type":"track","userId":"u1","event":"report_created","timestamp":"{yesterday}","context":{{"groupId":"acme"}}}}"#),
    );
    let out = ws.import("events", &events);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = ws.dir.path().join("definitions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("workspace.yaml"), ENGINE_WORKSPACE).unwrap();
    dir
}

#[test]
fn show_account_explains_stage_milestones_and_health_as_text_and_json() {
    let ws = Workspace::new();
    let defs = engine_data(&ws);
    let defs = defs.to_str().unwrap();
    let out = ws.cairn(&["show", "account", "A1", "--workspace", defs]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for expected in ["Acme (account 1)", "stage: adoption", "first_report", "achieved", "health: 25 red", "reports"] {
        assert!(shown.contains(expected), "`{expected}` missing from:\n{shown}");
    }
    let out = ws.cairn(&["show", "account", "acme", "--workspace", defs, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["stage"], "adoption");
    assert_eq!(v["segments"], serde_json::json!(["reporters", "team_plans"]));
    assert_eq!(v["health"]["pillars"][0]["measures"][0]["value"], 1.0);
    assert_eq!(v["health"]["score"], 25.0);
    let out = ws.cairn(&["show", "account", "nobody", "--workspace", defs]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no account `nobody`"), "{}", text(&out.stderr));
    // Reading changes nothing: no transition is stored by a report.
    let out = ws.cairn(&["show", "account", "A1", "--workspace", defs, "--json"]);
    assert!(out.status.success());
}

#[test]
fn segments_lists_rules_and_sizes_and_a_broken_workspace_is_a_clear_error() {
    let ws = Workspace::new();
    let defs = engine_data(&ws);
    let out = ws.cairn(&["segments", "--workspace", defs.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v[0]["id"], "team_plans");
    assert_eq!(v[0]["members"], 1);
    assert_eq!(v[1]["rule"], "count('report_created', 30d) >= 1");
    let out = ws.cairn(&["segments", "--workspace", defs.to_str().unwrap()]);
    assert!(text(&out.stdout).contains("reporters"), "{}", text(&out.stdout));
    std::fs::write(defs.join("workspace.yaml"), ENGINE_WORKSPACE.replace("count(", "cout(")).unwrap();
    let out = ws.cairn(&["segments", "--workspace", defs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("unknown function `cout`") && err.contains("did you mean `count`?"), "{err}");
    assert!(err.contains("workspace.yaml:4:"), "{err}");
}
