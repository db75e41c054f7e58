//! The DuckDB peer of `cairn-bench reports`: the same figures as SQL written from the
//! definitions in docs/metrics.md, over the same `subscriptions.csv`, through `python3`.
//!
//! Every figure comes back under the same key as cairn's ([`super::answer`]): an integer
//! (cents or a count) or a ratio as a double (`NULL` where the denominator is zero).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use jiff::civil::Date;
use serde_json::json;

use super::answer::Figures;

/// The SQL, run in order; `{first}`, `{end}` (the day after the range) and `{through}`
/// are replaced by dates.
///
/// - `m`: the months, with the day before each (start ARR) and its last day (end ARR);
/// - `arr`: every account's ARR on every day any figure is taken (the month ends);
/// - `acct`: every account's first day with ARR above zero;
/// - `am`: each account's start and end ARR in each month, and whether it had ARR before;
/// - `month_sums`: the sums and counts of each month (the KPIs' and the movements');
/// - `ending`: the lines ending in each month, and whether each was renewed;
/// - `coh`, `crow`, `cells`: the cohort triangle.
const SETUP: &[&str] = &[
    "CREATE OR REPLACE TEMP TABLE m AS
       SELECT t.d::DATE AS m_first, (t.d + INTERVAL 1 MONTH - INTERVAL 1 DAY)::DATE AS m_last,
              (t.d - INTERVAL 1 DAY)::DATE AS m_before, strftime(t.d, '%Y-%m') AS key
       FROM range(DATE '{first}', DATE '{end}', INTERVAL 1 MONTH) t(d)",
    "CREATE OR REPLACE TEMP TABLE arr AS
       WITH days AS (SELECT m_before AS d FROM m UNION SELECT m_last FROM m)
       SELECT l.account_id, days.d, SUM(l.arr_cents) AS arr
       FROM lines l JOIN days ON l.start_date <= days.d AND days.d <= l.end_date
       GROUP BY l.account_id, days.d",
    "CREATE OR REPLACE TEMP TABLE acct AS
       SELECT account_id, MIN(start_date) FILTER (WHERE arr_cents > 0) AS first_day
       FROM lines GROUP BY account_id",
    "CREATE OR REPLACE TEMP TABLE am AS
       SELECT m.key, COALESCE(p.arr, 0) AS prev, COALESCE(c.arr, 0) AS cur,
              COALESCE(a.first_day < m.m_first, false) AS had_before
       FROM m CROSS JOIN acct a
       LEFT JOIN arr p ON p.account_id = a.account_id AND p.d = m.m_before
       LEFT JOIN arr c ON c.account_id = a.account_id AND c.d = m.m_last",
    "CREATE OR REPLACE TEMP TABLE month_sums AS
       SELECT key,
         COALESCE(SUM(prev), 0)::BIGINT AS start_arr,
         COALESCE(SUM(cur), 0)::BIGINT AS end_arr,
         COUNT(*) FILTER (WHERE prev > 0) AS cohort_accounts,
         COALESCE(SUM(cur) FILTER (WHERE prev > 0), 0)::BIGINT AS cohort_end,
         COALESCE(SUM(LEAST(prev, cur)) FILTER (WHERE prev > 0), 0)::BIGINT AS retained,
         COALESCE(SUM(cur - prev) FILTER (WHERE prev > 0 AND cur > prev), 0)::BIGINT AS expansion,
         COUNT(*) FILTER (WHERE prev > 0 AND cur > prev) AS expansion_accounts,
         COALESCE(SUM(prev - cur) FILTER (WHERE prev > cur AND cur > 0), 0)::BIGINT AS contraction,
         COUNT(*) FILTER (WHERE prev > cur AND cur > 0) AS contraction_accounts,
         COUNT(*) FILTER (WHERE prev > 0 AND cur = 0) AS churned_accounts,
         COALESCE(SUM(prev) FILTER (WHERE prev > 0 AND cur = 0), 0)::BIGINT AS churned_arr,
         COUNT(*) FILTER (WHERE prev = 0 AND cur > 0 AND NOT had_before) AS new_accounts,
         COALESCE(SUM(cur) FILTER (WHERE prev = 0 AND cur > 0 AND NOT had_before), 0)::BIGINT AS new_arr,
         COUNT(*) FILTER (WHERE prev = 0 AND cur > 0 AND had_before) AS reactivated_accounts,
         COALESCE(SUM(cur) FILTER (WHERE prev = 0 AND cur > 0 AND had_before), 0)::BIGINT AS reactivated_arr
       FROM am GROUP BY key",
    // A line is renewed when a line of the same account starts after its last day, at
    // most 30 days of gap later (so on or before end + 31).
    "CREATE OR REPLACE TEMP TABLE ending AS
       SELECT m.key, EXISTS (
                SELECT 1 FROM lines n
                WHERE n.account_id = l.account_id AND n.start_date > l.end_date
                  AND n.start_date <= l.end_date + 31) AS renewed
       FROM m JOIN lines l ON l.end_date BETWEEN m.m_first AND m.m_last",
    "CREATE OR REPLACE TEMP TABLE coh AS
       SELECT a.account_id, strftime(a.first_day, '%Y-%m') AS cohort,
              (SELECT SUM(l.arr_cents) FROM lines l
               WHERE l.account_id = a.account_id AND l.start_date <= a.first_day AND a.first_day <= l.end_date)
                AS initial
       FROM acct a WHERE a.first_day BETWEEN DATE '{first}' AND DATE '{end}' - 1",
    "CREATE OR REPLACE TEMP TABLE crow AS
       SELECT m.key AS cohort, COUNT(c.account_id) AS accounts, COALESCE(SUM(c.initial), 0)::BIGINT AS initial
       FROM m LEFT JOIN coh c ON c.cohort = m.key GROUP BY m.key",
    "CREATE OR REPLACE TEMP TABLE cells AS
       SELECT cm.key AS cohort, datediff('month', cm.m_first, om.m_first) AS mo,
              COUNT(arr.arr) FILTER (WHERE arr.arr > 0) AS retained_accounts,
              COALESCE(SUM(arr.arr), 0)::BIGINT AS arr_cents
       FROM m cm JOIN m om ON om.m_first >= cm.m_first AND om.m_last <= DATE '{through}'
       LEFT JOIN coh c ON c.cohort = cm.key
       LEFT JOIN arr ON arr.account_id = c.account_id AND arr.d = om.m_last
       GROUP BY ALL",
];

/// One group of figures: `source` selects a `key` prefix and the columns; integers and
/// ratios are unpivoted apart, so each keeps its type (cents stay exact integers).
struct Group {
    source: &'static str,
    ints: &'static str,
    ratios: &'static str,
}

const GROUPS: &[Group] = &[
    // Period KPIs of every month.
    Group {
        source: "SELECT * REPLACE (key || ' kpis.' AS key),
                   CASE WHEN start_arr = 0 THEN NULL ELSE cohort_end::DOUBLE / start_arr END AS nrr,
                   CASE WHEN start_arr = 0 THEN NULL ELSE retained::DOUBLE / start_arr END AS grr,
                   CASE WHEN cohort_accounts = 0 THEN NULL ELSE churned_accounts::DOUBLE / cohort_accounts END
                     AS logo_churn
                 FROM month_sums",
        ints: "start_arr, end_arr, cohort_accounts, cohort_end, retained, expansion, contraction, churned_accounts,
               churned_arr, new_accounts, new_arr, reactivated_accounts, reactivated_arr",
        ratios: "nrr, grr, logo_churn",
    },
    // Movements of every month, and the waterfall over the range.
    Group {
        source: "WITH mv AS (
                   SELECT key || ' movements.' AS key, start_arr, new_arr, expansion, reactivated_arr, contraction,
                     churned_arr, end_arr, new_accounts, expansion_accounts, reactivated_accounts,
                     contraction_accounts, churned_accounts
                   FROM month_sums
                   UNION ALL
                   SELECT 'waterfall movements.', arg_min(start_arr, key), SUM(new_arr), SUM(expansion),
                     SUM(reactivated_arr), SUM(contraction), SUM(churned_arr), arg_max(end_arr, key),
                     SUM(new_accounts), SUM(expansion_accounts), SUM(reactivated_accounts),
                     SUM(contraction_accounts), SUM(churned_accounts)
                   FROM month_sums)
                 SELECT *, CASE WHEN contraction + churned_arr = 0 THEN NULL
                   ELSE (new_arr + expansion + reactivated_arr)::DOUBLE / (contraction + churned_arr) END AS quick_ratio
                 FROM mv",
        ints: "start_arr, new_arr, expansion, reactivated_arr, contraction, churned_arr, end_arr, new_accounts,
               expansion_accounts, reactivated_accounts, contraction_accounts, churned_accounts",
        ratios: "quick_ratio",
    },
    // The renewal rate of every month.
    Group {
        source: "WITH r AS (
                   SELECT m.key, COUNT(e.key) AS lines_ending, COUNT(e.key) FILTER (WHERE e.renewed) AS renewed
                   FROM m LEFT JOIN ending e ON e.key = m.key GROUP BY m.key)
                 SELECT key || ' renewal.' AS key, lines_ending, renewed,
                   CASE WHEN lines_ending = 0 THEN NULL ELSE renewed::DOUBLE / lines_ending END AS rate
                 FROM r",
        ints: "lines_ending, renewed",
        ratios: "rate",
    },
    // The cohort triangle: rows, then cells.
    Group {
        source: "SELECT 'cohort ' || cohort || ' ' AS key, accounts, initial FROM crow",
        ints: "accounts, initial",
        ratios: "",
    },
    Group {
        source: "SELECT 'cohort ' || cells.cohort || ' +' || mo || ' ' AS key, retained_accounts, arr_cents,
                   CASE WHEN accounts = 0 THEN NULL ELSE retained_accounts::DOUBLE / accounts END AS logo_retention,
                   CASE WHEN initial = 0 THEN NULL ELSE arr_cents::DOUBLE / initial END AS revenue_retention
                 FROM cells JOIN crow ON crow.cohort = cells.cohort",
        ints: "retained_accounts, arr_cents",
        ratios: "logo_retention, revenue_retention",
    },
];

/// The `(key, value)` queries of every group.
fn figure_queries() -> Vec<String> {
    let mut out = Vec::new();
    for g in GROUPS {
        for cols in [g.ints, g.ratios] {
            if !cols.is_empty() {
                out.push(format!("SELECT key || k, v FROM ({}) UNPIVOT INCLUDE NULLS (v FOR k IN ({cols}))", g.source));
            }
        }
    }
    out
}

const SCRIPT: &str = r#"
import json, sys, time
try:
    import duckdb
except ImportError as e:
    print(json.dumps({"missing": str(e)}))
    sys.exit(0)
spec = json.load(sys.stdin)
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.perf_counter()
con.execute("CREATE TABLE lines AS SELECT id, account_id, start_date, end_date, CAST(arr * 100 AS BIGINT) AS arr_cents "
            "FROM read_csv(?, header = true, columns = {'id': 'VARCHAR', 'account_id': 'VARCHAR', "
            "'start_date': 'DATE', 'end_date': 'DATE', 'arr': 'DECIMAL(18,2)'})", [spec["csv"]])
load = time.perf_counter() - t
times = []
for _ in range(spec["runs"]):
    t = time.perf_counter()
    for s in spec["setup"]:
        con.execute(s)
    figures = {}
    for q in spec["figures"]:
        for k, v in con.execute(q).fetchall():
            figures[k] = v
    times.append(time.perf_counter() - t)
threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
print(json.dumps({"version": duckdb.__version__, "threads": threads, "load_s": load, "query_s": times,
                  "figures": figures}, default=float))
"#;

/// DuckDB's run: load time, each run's query time, and its figures.
pub(crate) struct DuckRun {
    pub(crate) note: String,
    pub(crate) load_secs: f64,
    pub(crate) query_secs: Vec<f64>,
    pub(crate) figures: Figures,
}

/// Whether DuckDB could run, and if not why.
pub(crate) enum Duck {
    Ran(DuckRun),
    Missing(String),
}

fn fill(sql: &str, first: Date, end: Date, through: Date) -> String {
    sql.replace("{first}", &first.to_string())
        .replace("{end}", &end.to_string())
        .replace("{through}", &through.to_string())
}

/// Runs the SQL over `csv` for the months from `first` to `last` (whole months), the
/// cohort cells through `through` (a month end no later than `last`), `runs` times.
pub(crate) fn run(csv: &Path, first: Date, last: Date, through: Date, runs: u32) -> Result<Duck> {
    let end = last.tomorrow().context("the range ends on the last day there is")?;
    let spec = json!({
        "csv": csv,
        "runs": runs.max(1),
        "setup": SETUP.iter().map(|s| fill(s, first, end, through)).collect::<Vec<_>>(),
        "figures": figure_queries().iter().map(|s| fill(s, first, end, through)).collect::<Vec<_>>(),
    });
    let mut child = match std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Ok(Duck::Missing(format!("python3 could not be started ({e})"))),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(spec.to_string().as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        anyhow::bail!("the DuckDB peer failed ({}); its error is above", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last_line = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last_line).with_context(|| {
        format!("reading the DuckDB peer's answer: {}", last_line.chars().take(200).collect::<String>())
    })?;
    if let Some(why) = v.get("missing") {
        return Ok(Duck::Missing(format!(
            "the Python package is missing ({why}); install it with `pip install duckdb`"
        )));
    }
    let mut figures = Figures::default();
    if let Some(map) = v["figures"].as_object() {
        for (k, value) in map {
            figures.insert_json(k, value)?;
        }
    }
    Ok(Duck::Ran(DuckRun {
        note: format!(
            "DuckDB {} (python3), {} threads",
            v["version"].as_str().unwrap_or("?"),
            v["threads"].as_i64().map_or("?".to_string(), |t| t.to_string())
        ),
        load_secs: v["load_s"].as_f64().unwrap_or(0.0),
        query_secs: v["query_s"].as_array().map(|a| a.iter().filter_map(|t| t.as_f64()).collect()).unwrap_or_default(),
        figures,
    }))
}
