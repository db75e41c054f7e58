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

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cairn.db").display())
    }

    /// Runs `f` on the workspace's database, opened in this process (what the engine and
    /// the program runner would have written: transitions, tasks).
    fn with_store<F: AsyncFnOnce(&cairn_store::Store)>(&self, f: F) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let store = cairn_store::Store::open(&self.db_url()).await.expect("open the database");
            f(&store).await;
            store.close().await;
        });
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

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

/// A segment transition as the runtime records it.
fn segment_change(
    store_id: i64,
    subject_kind: &str,
    kind: &str,
    segment: &str,
    at: &str,
) -> cairn_store::NewTransition {
    cairn_store::NewTransition {
        key: format!("{kind}:{segment}:{subject_kind}:{store_id}:{at}"),
        at: ts(at),
        subject_kind: subject_kind.into(),
        subject_id: store_id,
        kind: kind.into(),
        detail: serde_json::json!({ "type": kind, "segment": segment }).to_string(),
        backfill: false,
    }
}

/// docs/metrics.md's ledger, with a segment `big`: Acme in it since 2025-06-01; Cyan in it
/// since 2025-09-01 and out of it on 2026-03-01, after its line ended on 2026-02-28 (the
/// segment follows ARR); Beta joins it on 2026-02-15. And a contact segment `admins`.
fn with_a_segment() -> Workspace {
    let ws = Workspace::with_example_ledger();
    ws.with_store(async |store| {
        let id = |x: &'static str| async move { store.resolve_account(x).await.expect("store").expect(x) };
        let (acme, beta, cyan) = (id("acme").await, id("beta").await, id("cyan").await);
        store
            .append_transitions(&[
                segment_change(acme, "account", "segment_entered", "big", "2025-06-01T00:00:00Z"),
                segment_change(cyan, "account", "segment_entered", "big", "2025-09-01T00:00:00Z"),
                segment_change(beta, "account", "segment_entered", "big", "2026-02-15T10:00:00Z"),
                segment_change(cyan, "account", "segment_exited", "big", "2026-03-01T00:00:00Z"),
                segment_change(1, "contact", "segment_entered", "admins", "2025-01-01T00:00:00Z"),
            ])
            .await
            .expect("transitions");
    });
    ws
}

#[test]
fn a_segment_counts_its_members_at_the_period_start_so_churn_stays_in_the_denominator() {
    let ws = with_a_segment();
    let args = ["kpis", "--from", "2026-01-01", "--to", "2026-03-31", "--segment", "big"];
    let json: serde_json::Value = serde_json::from_str(&ws.report(&[&args[..], &["--json"]].concat())).expect("JSON");
    // Members on 2026-01-01: Acme and Cyan (Beta joined mid-period: left out).
    // Start ARR 1,000 + 300 = 1,300; end 1,200 + 0 = 1,200. NRR 1,200 / 1,300 = 92.3%;
    // GRR min(1,200, 1,000) + min(0, 300) = 1,000 / 1,300 = 76.9%; Cyan churned: 1 of 2.
    assert_eq!(
        (json["nrr"]["numerator"].as_i64(), json["nrr"]["denominator"].as_i64()),
        (Some(120_000), Some(130_000))
    );
    assert_eq!(json["grr"]["numerator"], 100_000);
    assert_eq!((json["churned_accounts"].as_u64(), json["cohort_accounts"].as_u64()), (Some(1), Some(2)));
    assert_eq!(json["churned_arr_cents"], 30_000);
    assert_eq!(json["expansion_cents"], 20_000);
    assert_eq!(json["new_arr_cents"], 0, "Echo is not in the segment");
    let table = ws.report(&args);
    let nrr = table.lines().find(|l| l.trim_start().starts_with("NRR")).expect("NRR row");
    assert!(nrr.contains("92.3%") && nrr.contains("1,200.00 / 1,300.00"), "{nrr}");

    // March: Beta (in since Feb 15) counts. Cyan left the segment at 00:00 on March 1,
    // because its line ended the day before: that is not before the period's start, so
    // Cyan is in March's cohort and churns in it.
    let march: serde_json::Value = serde_json::from_str(&ws.report(&[
        "kpis",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--segment",
        "big",
        "--json",
    ]))
    .expect("JSON");
    // Start (ARR on Feb 28): Acme 1,200 + Beta 400 + Cyan 300 = 1,900; Cyan ends at 0.
    assert_eq!(march["start_arr_cents"], 190_000);
    assert_eq!((march["churned_accounts"].as_u64(), march["cohort_accounts"].as_u64()), (Some(1), Some(3)));
}

#[test]
fn an_unknown_or_contact_segment_is_refused_naming_the_account_segments() {
    let ws = with_a_segment();
    let out = ws.cairn(&["report", "movements", "--segment", "huge"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text_of(&out.stderr).contains("no segment `huge`: the account segments are big"),
        "{}",
        text_of(&out.stderr)
    );
    let out = ws.cairn(&["report", "kpis", "--segment", "admins"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text_of(&out.stderr).contains("`admins` is a segment of contacts"), "{}", text_of(&out.stderr));
}

#[test]
fn kpis_month_by_month_as_a_table_csv_and_json() {
    let ws = Workspace::with_example_ledger();
    let range = ["kpis", "--series", "--from", "2026-01-01", "--to", "2026-03-31"];
    let json: serde_json::Value = serde_json::from_str(&ws.report(&[&range[..], &["--json"]].concat())).expect("JSON");
    let months = json["months"].as_array().expect("months");
    assert_eq!(months.len(), 3);
    let pair = |m: &serde_json::Value, k: &str| (m[k]["numerator"].as_i64(), m[k]["denominator"].as_i64());
    // January: start (ARR on Dec 31) Acme 1,000 + Beta 600 + Cyan 300 = 1,900; end Acme
    // 1,200, Beta 400, Cyan 300 = 1,900. GRR 1,000 + 400 + 300 = 1,700 / 1,900.
    assert_eq!(pair(&months[0], "nrr"), (Some(190_000), Some(190_000)));
    assert_eq!(pair(&months[0], "grr"), (Some(170_000), Some(190_000)));
    assert_eq!(
        (months[0]["expansion_cents"].as_i64(), months[0]["contraction_cents"].as_i64()),
        (Some(20_000), Some(20_000))
    );
    assert!(months[0]["renewal"]["rate"].is_null(), "no line ends in January");
    // February: Delta comes back (250, reactivated); Cyan's line ends on the 28th, not renewed.
    assert_eq!(months[1]["reactivated_arr_cents"], 25_000);
    assert_eq!(
        (months[1]["renewal"]["lines_ending"].as_u64(), months[1]["renewal"]["renewed"].as_u64()),
        (Some(1), Some(0))
    );
    // March: start 1,200 + 400 + 300 + 250 = 2,150; Cyan churns: end of the cohort 1,850;
    // 1 of 4 logos; Echo new at 800.
    assert_eq!(pair(&months[2], "nrr"), (Some(185_000), Some(215_000)));
    assert_eq!(pair(&months[2], "logo_churn"), (Some(1), Some(4)));
    assert_eq!(months[2]["new_arr_cents"], 80_000);

    let table = ws.report(&range);
    let march = table.lines().find(|l| l.trim_start().starts_with("2026-03")).expect("March row");
    // 1,850 / 2,150 = 86.05%; churn 25.0%; new ARR 800.00.
    assert!(march.contains("86.0%") && march.contains("25.0%") && march.contains("800.00"), "{march}");
    let january = table.lines().find(|l| l.trim_start().starts_with("2026-01")).expect("January row");
    assert!(
        january.contains("100.0%") && january.contains("89.5%") && january.trim_end().ends_with("n/a"),
        "{january}"
    );

    let csv = ws.report(&[&range[..], &["--csv"]].concat());
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "a header and a row per month: {csv}");
    assert!(rows[2].starts_with("2026-02-01,2026-02-28,1900.00,2150.00,3,1900.00,1,1,0,"), "{}", rows[2]);

    // Without a range: the twelve complete months before --as-of.
    let json: serde_json::Value =
        serde_json::from_str(&ws.report(&["kpis", "--series", "--as-of", "2026-04-15", "--json"])).expect("JSON");
    assert_eq!(json["months"].as_array().map(Vec::len), Some(12));
    assert_eq!(
        (json["period"]["first"].as_str(), json["period"]["last"].as_str()),
        (Some("2025-04-01"), Some("2026-03-31"))
    );
}

#[test]
fn lifetime_value_with_a_gross_margin_states_its_formula() {
    let ws = Workspace::with_example_ledger();
    // The year 2025-04-01 to 2026-03-31: start ARR (on 2025-03-31) Acme 1,000 + Beta 500 +
    // Cyan 300 + Delta 200 = 2,000 over 4 accounts; Cyan churned (Delta is back by the end).
    // LTV = ARPA 500 × 0.8 / (1 / 4) = 2,000 × 0.8 / 1 = 1,600.
    let json: serde_json::Value = serde_json::from_str(&ws.report(&[
        "kpis",
        "--from",
        "2025-04-01",
        "--to",
        "2026-03-31",
        "--gross-margin",
        "80%",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(json["ltv"]["value_cents"]["value"], 160_000.0);
    assert_eq!(
        (json["ltv"]["start_arr_cents"].as_i64(), json["ltv"]["churned_accounts"].as_u64()),
        (Some(200_000), Some(1))
    );
    // A quarter's report reads LTV over the year ending on its last day: the same year.
    let table = ws.report(&["kpis", "--period", "quarter", "--as-of", "2026-04-15", "--gross-margin", "0.8"]);
    let ltv = table.lines().find(|l| l.trim_start().starts_with("LTV ")).expect("LTV row");
    assert!(ltv.contains("1,600.00") && ltv.contains("2,000.00 × 80.0% / 1 churned account"), "{ltv}");
    assert!(
        table.contains("LTV = ARPA × gross margin / annual logo churn") && table.contains("2025-04-01 to 2026-03-31"),
        "{table}"
    );
    let out = ws.cairn(&["report", "kpis", "--gross-margin", "120%"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text_of(&out.stderr).contains("give it like 0.8 or 80%"), "{}", text_of(&out.stderr));
}

#[test]
fn process_shows_the_task_backlog_and_tickets_on_a_day() {
    let ws = Workspace::with_example_ledger();
    ws.with_store(async |store| {
        let task = async |n: i64, assignee: &str, pool: Option<&str>, created: &str, due: Option<&str>| {
            let e = store
                .enroll("save", cairn_store::SubjectKind::Account, n, &format!("k{n}"), ts(created), false, None)
                .await
                .expect("enroll")
                .expect("new");
            store
                .create_task(&cairn_store::NewTask {
                    enrollment_id: e.id,
                    step_id: "call".into(),
                    account_id: Some(n),
                    contact_id: None,
                    title: "Call".into(),
                    body: String::new(),
                    assignee: Some(assignee.into()),
                    pool: pool.map(str::to_string),
                    priority: cairn_store::TaskPriority::Normal,
                    due_at: due.map(ts),
                    created_at: ts(created),
                })
                .await
                .expect("task")
        };
        task(1, "ana@vendor.com", Some("cs"), "2026-02-20T00:00:00Z", Some("2026-02-25T00:00:00Z")).await;
        task(2, "ana@vendor.com", None, "2026-02-28T12:00:00Z", Some("2026-03-05T00:00:00Z")).await;
        task(3, "bo@vendor.com", Some("cs"), "2026-02-01T00:00:00Z", None).await;
        let done = task(4, "bo@vendor.com", Some("cs"), "2026-02-10T00:00:00Z", None).await;
        store.complete_task(done, "bo@vendor.com", ts("2026-02-15T00:00:00Z")).await.expect("complete");
        task(5, "bo@vendor.com", Some("cs"), "2026-03-05T00:00:00Z", None).await;
    });
    let event = |id: &str, name: &str, at: &str, ticket: &str| {
        format!(
            r#"{{"type":"track","messageId":"{id}","userId":"u1","event":"{name}","timestamp":"{at}","properties":{{"ticket_id":"{ticket}"}}}}"#
        )
    };
    let events = [
        event("e1", "ticket_opened", "2026-02-02T09:00:00Z", "T1"),
        event("e2", "ticket_closed", "2026-02-04T09:00:00Z", "T1"),
        event("e3", "ticket_opened", "2026-02-10T00:00:00Z", "T2"),
        event("e4", "ticket_opened", "2026-02-24T00:00:00Z", "T3"),
        event("e5", "ticket_opened", "2026-03-01T12:00:00Z", "T4"),
        event("e6", "ticket_opened", "2026-03-03T00:00:00Z", "T5"),
    ]
    .join("\n");
    let path = ws.dir.path().join("events.ndjson");
    std::fs::write(&path, events + "\n").expect("write events");
    let out = ws.cairn(&["import", "events", path.to_str().expect("path")]);
    assert!(out.status.success(), "import events: {}", text_of(&out.stderr));

    let args = ["process", "--from", "2026-02-01", "--to", "2026-02-28", "--as-of", "2026-03-01"];
    let json: serde_json::Value = serde_json::from_str(&ws.report(&[&args[..], &["--json"]].concat())).expect("JSON");
    // Measured at the end of 2026-03-01. Open: tasks 1 (10 days, overdue), 2 (1.5 days),
    // 3 (29 days); 4 was completed and 5 made later.
    let tasks = &json["tasks"];
    assert_eq!(tasks["at"], "2026-03-02T00:00:00Z");
    assert_eq!((tasks["total"]["open"].as_u64(), tasks["total"]["overdue"].as_u64()), (Some(3), Some(1)));
    assert_eq!(tasks["total"]["median_age_days"], 10.0);
    let ana = &tasks["by_assignee"][0];
    assert_eq!(ana["name"], "ana@vendor.com");
    assert_eq!(
        (ana["open"].as_u64(), ana["median_age_days"].as_f64(), ana["oldest_age_days"].as_f64()),
        (Some(2), Some(5.75), Some(10.0))
    );
    let cs = tasks["by_pool"].as_array().expect("pools").iter().find(|g| g["name"] == "cs").expect("cs").clone();
    assert_eq!((cs["open"].as_u64(), cs["median_age_days"].as_f64()), (Some(2), Some(19.5)));
    // Tickets in February: T1, T2, T3 opened, T1 closed. Open at the end of March 1:
    // T2 (Feb 10 to Mar 2: 20 days), T3 (Feb 24 to Mar 2: 6 days), T4 (half a day).
    let tickets = &json["tickets"];
    assert_eq!((tickets["opened"].as_u64(), tickets["closed"].as_u64()), (Some(3), Some(1)));
    let weeks: Vec<(String, u64)> = tickets["weeks"]
        .as_array()
        .expect("weeks")
        .iter()
        .map(|w| (w["week_of"].as_str().unwrap_or_default().to_string(), w["opened"].as_u64().unwrap_or(99)))
        .collect();
    let expected = [("2026-01-26", 0), ("2026-02-02", 1), ("2026-02-09", 1), ("2026-02-16", 0), ("2026-02-23", 1)];
    assert_eq!(weeks, expected.map(|(d, n)| (d.to_string(), n)));
    assert_eq!((tickets["open"]["count"].as_u64(), tickets["open"]["median_age_days"].as_f64()), (Some(3), Some(6.0)));
    assert_eq!(tickets["open"]["oldest_age_days"], 20.0);

    let table = ws.report(&args);
    assert!(table.contains("Health: give --workspace DIR"), "{table}");
    assert!(table.contains("Open tasks at 2026-03-02 00:00:00 UTC: 3 (1 overdue)"), "{table}");
    let ana = table.lines().find(|l| l.trim_start().starts_with("ana@vendor.com")).expect("ana's row");
    assert_eq!(ana.split_whitespace().collect::<Vec<_>>(), ["ana@vendor.com", "2", "5.8d", "10.0d", "1"]);
    assert!(
        table.contains("3 opened, 1 closed")
            && table.contains("open at 2026-03-02 00:00:00 UTC: 3, median age 6.0d, oldest 20.0d"),
        "{table}"
    );
}
