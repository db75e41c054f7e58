//! `cairn report` as a CS leader meets it: import the accounts and the subscription
//! ledger, then ask for KPIs, movements and cohorts. The ledger is docs/metrics.md's
//! example, so every figure here can be checked by hand against that page.

use std::process::{Command, Output};

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    /// A fresh SQLite database holding the example ledger of docs/metrics.md.
    fn with_example_ledger() -> Workspace {
        let ws = Workspace { dir: tempfile::tempdir().expect("temp dir") };
        let accounts = "external_id,name\nacme,Acme\nbeta,Beta\ncyan,Cyan\ndelta,Delta\necho,Echo\n";
        let lines = "id,account_id,start_date,end_date,arr\n\
                     A1,acme,2025-01-01,2025-12-31,1000\n\
                     A2,acme,2026-01-01,2026-12-31,1200\n\
                     B1,beta,2025-01-01,2025-12-31,500\n\
                     B2,beta,2025-07-01,2025-12-31,100\n\
                     B3,beta,2026-01-01,2026-12-31,400\n\
                     C1,cyan,2025-01-01,2026-02-28,300\n\
                     D1,delta,2025-02-01,2025-05-31,200\n\
                     D2,delta,2026-02-01,2026-12-31,250\n\
                     E1,echo,2026-03-15,2027-03-14,800\n";
        for (kind, text) in [("accounts", accounts), ("subscriptions", lines)] {
            let path = ws.dir.path().join(format!("{kind}.csv"));
            std::fs::write(&path, text).expect("write file");
            let out = ws.cairn(&["import", kind, path.to_str().expect("path")]);
            assert!(out.status.success(), "import {kind}: {}", text_of(&out.stderr));
        }
        ws
    }

    fn cairn(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(args)
            .env("CAIRN_DB", format!("sqlite://{}", self.dir.path().join("cairn.db").display()))
            .env("CAIRN_LOG", "warn")
            .output()
            .expect("cairn runs")
    }

    fn report(&self, args: &[&str]) -> String {
        let out = self.cairn(&[&["report"], args].concat());
        assert!(out.status.success(), "report {args:?} failed: {}", text_of(&out.stderr));
        text_of(&out.stdout)
    }
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn kpis_of_the_first_quarter_as_a_table_and_as_exact_json() {
    let ws = Workspace::with_example_ledger();
    // The last complete quarter on 2026-04-15 is Q1 2026.
    let table = ws.report(&["kpis", "--period", "quarter", "--as-of", "2026-04-15"]);
    assert!(table.contains("Revenue and retention, 2026-01-01 to 2026-03-31"), "{table}");
    for (label, figure) in [("NRR", "84.2%"), ("GRR", "73.7%"), ("logo churn", "33.3%"), ("end ARR", "2,650.00")] {
        let line =
            table.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{label}: {table}"));
        assert!(line.contains(figure), "{label} should be {figure}: {line}");
    }
    assert!(table.contains("1 new logo"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&ws.report(&["kpis", "--from", "2026-01-01", "--to", "2026-03-31", "--json"]))
            .expect("JSON");
    assert_eq!(json["nrr"]["numerator"], 160_000);
    assert_eq!(json["nrr"]["denominator"], 190_000);
    assert_eq!(json["new_arr_cents"], 80_000);
    assert_eq!(json["reactivated_arr_cents"], 25_000);
    assert_eq!(json["period"]["first"], "2026-01-01");
    // Cyan's line ended 2026-02-28 with nothing after it: 0 of 1 renewed.
    assert_eq!((json["renewal"]["lines_ending"].as_u64(), json["renewal"]["renewed"].as_u64()), (Some(1), Some(0)));
}

#[test]
fn movements_as_csv_bridge_start_to_end() {
    let ws = Workspace::with_example_ledger();
    let csv = ws.report(&["movements", "--from", "2026-01-01", "--to", "2026-03-31", "--csv"]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "first,last,start_arr,new,expansion,reactivation,contraction,churn,end_arr,quick_ratio");
    assert_eq!(rows[2], "2026-02-01,2026-02-28,1900.00,0.00,0.00,250.00,0.00,0.00,2150.00,");
    // The waterfall: 1,900 + 800 + 200 + 250 − 200 − 300 = 2,650; quick ratio 2.5.
    assert_eq!(rows[4], "2026-01-01,2026-03-31,1900.00,800.00,200.00,250.00,200.00,300.00,2650.00,2.5");
    assert_eq!(rows.len(), 5);
}

#[test]
fn cohort_triangle_through_the_report_day() {
    let ws = Workspace::with_example_ledger();
    let table = ws.report(&["cohorts", "--from", "2025-01-01", "--to", "2025-02-28", "--as-of", "2026-03-31"]);
    let revenue = table.split("Revenue retention").nth(1).expect("a revenue block");
    let january = revenue.lines().find(|l| l.trim_start().starts_with("2025-01")).expect("January's row");
    // Initial ARR 1,800; month 6 1,900 (105.6%); month 14 1,600 (88.9%), the last cell.
    assert!(january.contains("1,800.00") && january.contains("105.6%"), "{january}");
    assert!(january.trim_end().ends_with("88.9%"), "{january}");
    let json: serde_json::Value = serde_json::from_str(&ws.report(&[
        "cohorts",
        "--from",
        "2025-01-01",
        "--to",
        "2025-02-28",
        "--as-of",
        "2026-03-31",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(json[1]["months"][12]["revenue_retention"]["value"], 1.25);
}

#[test]
fn a_backwards_range_is_refused_with_what_to_do() {
    let ws = Workspace::with_example_ledger();
    let out = ws.cairn(&["report", "kpis", "--from", "2026-03-01", "--to", "2026-01-31"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text_of(&out.stderr).contains("give --to on or after --from"), "{}", text_of(&out.stderr));
}
