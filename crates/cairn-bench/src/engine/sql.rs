//! The SQL the peers run, for the same computation as the engine: the account and
//! contact segments that SQL can express over events and attributes, and the default
//! health model with its no-data weight redistribution. Once at the end instant
//! ([`end_sql`]), and once for every day of the history ([`history_sql`]): what a backfill
//! holds, by day. The statements are plain SQL that DuckDB and PostgreSQL both run.

use anyhow::{Context, Result, bail};
use cairn_engine::days::{date_of_day, day_of_date};
use cairn_workspace::{Curve, Workspace};
use jiff::civil::Date;

/// What a peer runs: statements that build its feature tables (`setup`), then a query of
/// segment member counts and one of health per account.
///
/// At the end instant the rows are `(segment, members)` and `(account_id, score)`; over
/// the history `(segment, day, members)` and `(day, account_id, score)`, `day` counting
/// from the first day of events (0).
pub(super) struct PeerSql {
    pub setup: Vec<String>,
    pub segments: String,
    pub health: String,
}

/// A segment's id and its membership condition as SQL.
type SegmentSql = (&'static str, String);

/// Account segments of the example workspace written as SQL over one row per account
/// (attributes and behavioural features: `acc_f`, or `acc_h` for each day), and contact
/// segments over `con_f c` joined with its account `a`. `d(n)` is the SQL for the date `n`
/// days before today.
fn segment_sql(d: &dyn Fn(i32) -> String) -> (Vec<SegmentSql>, Vec<SegmentSql>) {
    let accounts = vec![
        ("smb", "arr < 20000 AND plan IN ('starter', 'team')".to_string()),
        ("mid_market", "arr >= 20000 AND arr < 100000".to_string()),
        ("enterprise", "plan = 'enterprise' OR arr >= 100000".to_string()),
        ("emea_named", "region = 'EMEA' AND csm_pool = 'named'".to_string()),
        ("new_customers", format!("start_date >= {}", d(30))),
        ("ttv_overdue", format!("first_value_shares = 0 AND start_date < {}", d(30))),
        ("renewal_window", format!("renewal_date <= {}", d(-90))),
        ("power_accounts", "reports_30 >= 50 AND dash_viewers_30 >= 10".to_string()),
        ("seat_pressure", "users_30 >= seats * 0.9".to_string()),
        ("dormant", format!("days_14 = 0 AND start_date < {}", d(14))),
        ("usage_dropping", "days_7 < CAST(days_30 AS DOUBLE PRECISION) / 4 * 0.5 AND days_30 >= 4".to_string()),
        ("no_integration", format!("integrations_all = 0 AND start_date < {}", d(30))),
        ("support_heavy", "tickets_30 >= 5".to_string()),
        ("webinar_engaged", "webinars_90 >= 2".to_string()),
        ("detractors", "nps_last <= 6".to_string()),
        ("promoters", "nps_last >= 9".to_string()),
    ];
    let contacts = vec![
        ("admins", "c.role = 'admin'".to_string()),
        ("power_admins", "c.role = 'admin' AND c.reports_30 >= 10".to_string()),
        ("champions", "c.role = 'champion'".to_string()),
        ("buyers_in_renewal", format!("c.role = 'economic_buyer' AND a.renewal_date <= {}", d(-90))),
        ("new_users", format!("c.first_day >= {}", d(14))),
        ("lapsed_users", format!("c.last_day < {}", d(30))),
        ("dashboard_sharers", "c.shares_30 >= 1".to_string()),
    ];
    (accounts, contacts)
}

/// Segments of the example workspace the SQL leaves out, and why.
pub(super) const LEFT_OUT: &str = "in_onboarding (the journey stage: forward-only, path-dependent over the whole history), \
renewal_at_risk and expansion_candidates (health of the model the stage selects), milestones other than \
first_value and the onboarding health model";

/// The date literal `n` days before `today`.
fn date_before(today: Date, n: i32) -> String {
    format!("DATE '{}'", date_of_day(day_of_date(today) - n))
}

/// The SQL of the time zone's local day of column `ts`.
fn local_day(ws: &Workspace) -> Result<String> {
    let tz = ws.time_zone().iana_name().context("the workspace time zone has no IANA name for SQL")?;
    Ok(format!("CAST(ts AT TIME ZONE '{tz}' AS DATE)"))
}

/// The segments and health at the end instant (`today`).
pub(super) fn end_sql(ws: &Workspace, today: Date) -> Result<PeerSql> {
    let d = |n: i32| date_before(today, n);
    let (t7, t14, t30, t90) = (d(7), d(14), d(30), d(90));
    let local_day = local_day(ws)?;
    let acc_f = format!(
        "CREATE TEMP TABLE acc_f AS
SELECT a.account_id, a.plan, a.seats, a.arr, a.start_date, a.renewal_date, a.region, a.csm_pool, a.nps_last,
  COALESCE(x.reports_30, 0) AS reports_30, COALESCE(x.dash_viewers_30, 0) AS dash_viewers_30,
  COALESCE(x.users_7, 0) AS users_7, COALESCE(x.users_30, 0) AS users_30,
  COALESCE(x.days_7, 0) AS days_7, COALESCE(x.days_14, 0) AS days_14, COALESCE(x.days_30, 0) AS days_30,
  COALESCE(x.integrations_all, 0) AS integrations_all, COALESCE(x.tickets_30, 0) AS tickets_30,
  COALESCE(x.webinars_90, 0) AS webinars_90, COALESCE(x.shares_30, 0) AS shares_30,
  COALESCE(x.exports_30, 0) AS exports_30, COALESCE(x.invited_since_anchor, 0) AS invited_since_anchor,
  COALESCE(x.setup_breadth, 0) AS setup_breadth, COALESCE(x.feature_breadth, 0) AS feature_breadth,
  COALESCE(x.first_value_shares, 0) AS first_value_shares, x.first_report_day, x.last_day
FROM accounts a LEFT JOIN (
  SELECT e.account_id,
    SUM(CASE WHEN e.event = 'report_created' AND e.day > {t30} THEN 1 ELSE 0 END) AS reports_30,
    COUNT(DISTINCT CASE WHEN e.event = 'dashboard_viewed' AND e.day > {t30} THEN e.contact_id END) AS dash_viewers_30,
    COUNT(DISTINCT CASE WHEN e.day > {t7} THEN e.contact_id END) AS users_7,
    COUNT(DISTINCT CASE WHEN e.day > {t30} THEN e.contact_id END) AS users_30,
    COUNT(DISTINCT CASE WHEN e.day > {t7} THEN e.day END) AS days_7,
    COUNT(DISTINCT CASE WHEN e.day > {t14} THEN e.day END) AS days_14,
    COUNT(DISTINCT CASE WHEN e.day > {t30} THEN e.day END) AS days_30,
    SUM(CASE WHEN e.event = 'integration_connected' THEN 1 ELSE 0 END) AS integrations_all,
    SUM(CASE WHEN e.event = 'ticket_opened' AND e.day > {t30} THEN 1 ELSE 0 END) AS tickets_30,
    SUM(CASE WHEN e.event = 'webinar_attended' AND e.day > {t90} THEN 1 ELSE 0 END) AS webinars_90,
    SUM(CASE WHEN e.event = 'dashboard_shared' AND e.day > {t30} THEN 1 ELSE 0 END) AS shares_30,
    SUM(CASE WHEN e.event = 'export_downloaded' AND e.day > {t30} THEN 1 ELSE 0 END) AS exports_30,
    SUM(CASE WHEN e.event = 'user_invited' AND e.day >= s.start_date THEN 1 ELSE 0 END) AS invited_since_anchor,
    COUNT(DISTINCT CASE WHEN e.event IN ('report_created', 'alert_set', 'dashboard_shared', 'integration_connected')
      AND e.day >= s.start_date THEN e.event END) AS setup_breadth,
    COUNT(DISTINCT CASE WHEN e.event IN ('report_created', 'alert_set', 'dashboard_shared', 'export_downloaded')
      AND e.day > {t30} THEN e.event END) AS feature_breadth,
    SUM(CASE WHEN e.event = 'dashboard_shared' AND e.day >= s.start_date AND e.day < s.start_date + 30
      THEN 1 ELSE 0 END) AS first_value_shares,
    MIN(CASE WHEN e.event = 'report_created' THEN e.day END) AS first_report_day,
    MAX(e.day) AS last_day
  FROM (SELECT account_id, contact_id, event, {local_day} AS day FROM events) e
  JOIN accounts s ON s.account_id = e.account_id
  GROUP BY e.account_id
) x ON x.account_id = a.account_id"
    );
    let con_f = format!(
        "CREATE TEMP TABLE con_f AS
SELECT c.contact_id, c.account_id, c.role, COALESCE(x.reports_30, 0) AS reports_30,
  COALESCE(x.shares_30, 0) AS shares_30, x.first_day, x.last_day
FROM contacts c LEFT JOIN (
  SELECT contact_id,
    SUM(CASE WHEN event = 'report_created' AND day > {t30} THEN 1 ELSE 0 END) AS reports_30,
    SUM(CASE WHEN event = 'dashboard_shared' AND day > {t30} THEN 1 ELSE 0 END) AS shares_30,
    MIN(day) AS first_day, MAX(day) AS last_day
  FROM (SELECT contact_id, event, {local_day} AS day FROM events) e
  GROUP BY contact_id
) x ON x.contact_id = c.contact_id"
    );
    let (acc_segs, con_segs) = segment_sql(&d);
    let mut parts: Vec<String> = acc_segs
        .iter()
        .map(|(id, cond)| {
            format!("SELECT CAST('{id}' AS TEXT) AS segment, COUNT(*) AS members FROM acc_f WHERE {cond}")
        })
        .collect();
    parts.extend(con_segs.iter().map(|(id, cond)| {
        format!(
            "SELECT CAST('{id}' AS TEXT) AS segment, COUNT(*) AS members FROM con_f c JOIN acc_f a ON a.account_id = c.account_id WHERE {cond}"
        )
    }));
    let segments = parts.join("\nUNION ALL\n");

    let health = health_sql(ws, "acc_f", &d(0), "account_id")?;
    Ok(PeerSql { setup: vec![acc_f, con_f], segments, health })
}

/// Health of the default model over `table` (one row per `key`): measure values →
/// scores → pillars → overall, with the weight of what has no data spread over the rest.
/// `today_sql` is the SQL of the day it is scored on.
fn health_sql(ws: &Workspace, table: &str, today_sql: &str, key: &str) -> Result<String> {
    let Some(health) = ws.health() else { bail!("the workspace has no health model") };
    let value_of = |id: &str| -> Option<String> {
        Some(match id {
            "teammates_invited" => "invited_since_anchor".into(),
            "setup_breadth" => "setup_breadth".into(),
            "days_to_first_report" => "first_report_day - start_date".into(),
            "active_user_ratio" => "CAST(users_7 AS DOUBLE PRECISION) / NULLIF(seats, 0)".into(),
            "active_days" => "days_30".into(),
            "feature_breadth" => "feature_breadth".into(),
            "reports_created" => "reports_30".into(),
            "dashboards_shared" => "shares_30".into(),
            "exports" => "exports_30".into(),
            "integrations" => "CASE WHEN integrations_all > 0 THEN 1 ELSE 0 END".into(),
            "tickets" => "tickets_30".into(),
            "nps" => "nps_last".into(),
            "days_since_last_seen" => format!("{today_sql} - last_day"),
            "seat_utilisation" => "CAST(users_30 AS DOUBLE PRECISION) / NULLIF(seats, 0)".into(),
            "webinars" => "webinars_90".into(),
            _ => return None,
        })
    };
    let mut values = Vec::new();
    let mut scores = Vec::new();
    let mut pillars = Vec::new();
    let mut overall_num = Vec::new();
    let mut overall_den = Vec::new();
    for (pi, p) in health.default.pillars.iter().enumerate() {
        let mut num = Vec::new();
        let mut den = Vec::new();
        for (mi, m) in p.measures.iter().enumerate() {
            let name = format!("m{pi}_{mi}");
            let Some(v) = value_of(m.id.as_str()) else {
                bail!("measure {} of the default health model has no SQL in this benchmark", m.id.as_str())
            };
            values.push(format!("CAST({v} AS DOUBLE PRECISION) AS {name}"));
            let curve = match &m.curve {
                Curve::Linear { red, green } if red == green => {
                    format!("CASE WHEN {name} >= {green:?} THEN 100.0 ELSE 0.0 END")
                }
                Curve::Linear { red, green } => format!("({name} - ({red:?})) / ({:?}) * 100.0", green - red),
                Curve::Bands(bands) => {
                    let mut s = String::from("CASE");
                    for b in bands {
                        match b.below {
                            Some(below) => s.push_str(&format!(" WHEN {name} < {below:?} THEN {:?}", b.score)),
                            None => s.push_str(&format!(" WHEN TRUE THEN {:?}", b.score)),
                        }
                    }
                    let last = bands.last().map_or(0.0, |b| b.score);
                    s.push_str(&format!(" ELSE {last:?} END"));
                    s
                }
            };
            scores.push(format!(
                "CASE WHEN {name} IS NULL THEN NULL ELSE LEAST(100.0, GREATEST(0.0, {curve})) END AS s{pi}_{mi}"
            ));
            num.push(format!("COALESCE(s{pi}_{mi} * {:?}, 0)", m.weight));
            den.push(format!("CASE WHEN s{pi}_{mi} IS NULL THEN 0 ELSE {:?} END", m.weight));
        }
        pillars.push(format!("({}) / NULLIF({}, 0) AS p{pi}", num.join(" + "), den.join(" + ")));
        overall_num.push(format!("COALESCE(p{pi} * {:?}, 0)", p.weight));
        overall_den.push(format!("CASE WHEN p{pi} IS NULL THEN 0 ELSE {:?} END", p.weight));
    }
    Ok(format!(
        "SELECT {key}, CAST(({}) / NULLIF({}, 0) AS DOUBLE PRECISION) AS score FROM (
  SELECT {key}, {} FROM (
    SELECT {key}, {} FROM (
      SELECT {key}, {} FROM {table}) v) s) p
ORDER BY {key}",
        overall_num.join(" + "),
        overall_den.join(" + "),
        pillars.join(", "),
        scores.join(", "),
        values.join(", "),
    ))
}

/// The segment ids the SQL computes, in its order.
pub(super) fn sql_segment_ids() -> Vec<&'static str> {
    // Only the ids are wanted: any dates will do.
    let (a, c) = segment_sql(&|n| n.to_string());
    a.iter().chain(c.iter()).map(|(id, _)| *id).collect()
}

/// The segments and health at the end of every day from `first` (day 0) to day `last`:
/// the same features as [`end_sql`], as a running computation over a grid of accounts ×
/// days (window sums over the days; distinct users, days and event names as intervals
/// during which each counts), and the contact segments as the intervals during which
/// each contact is a member, added up per day.
pub(super) fn history_sql(ws: &Workspace, first: Date, last: i32) -> Result<PeerSql> {
    let local_day = local_day(ws)?;
    let f = format!("DATE '{first}'");
    // Each event with its day number; per account and day, the counts the windows sum;
    // per contact and day, what it did.
    let ev = format!(
        "CREATE TEMP TABLE ev AS SELECT account_id, contact_id, event, CAST({local_day} - {f} AS INTEGER) AS dn FROM events"
    );
    let ad = "CREATE TEMP TABLE ad AS SELECT account_id, dn,
  SUM(CASE WHEN event = 'report_created' THEN 1 ELSE 0 END) AS reports,
  SUM(CASE WHEN event = 'ticket_opened' THEN 1 ELSE 0 END) AS tickets,
  SUM(CASE WHEN event = 'webinar_attended' THEN 1 ELSE 0 END) AS webinars,
  SUM(CASE WHEN event = 'dashboard_shared' THEN 1 ELSE 0 END) AS shares,
  SUM(CASE WHEN event = 'export_downloaded' THEN 1 ELSE 0 END) AS exports,
  SUM(CASE WHEN event = 'integration_connected' THEN 1 ELSE 0 END) AS integrations,
  SUM(CASE WHEN event = 'user_invited' THEN 1 ELSE 0 END) AS invited
FROM ev GROUP BY account_id, dn"
        .to_string();
    let cd = "CREATE TEMP TABLE cd AS SELECT account_id, contact_id, dn,
  MAX(CASE WHEN event = 'dashboard_viewed' THEN 1 ELSE 0 END) AS viewed,
  MAX(CASE WHEN event = 'dashboard_shared' THEN 1 ELSE 0 END) AS shared,
  SUM(CASE WHEN event = 'report_created' THEN 1 ELSE 0 END) AS reports
FROM ev WHERE contact_id IS NOT NULL GROUP BY account_id, contact_id, dn"
        .to_string();
    // Distinct counts over windows, as +1 when one starts counting and -1 when it stops:
    // a contact (or event name) active on day d counts until its next active day or the
    // window's end, whichever comes first; setup breadth counts each name from its first
    // day since the anchor on.
    let until = |w: i32| format!("LEAST(COALESCE(nx, dn + {w}), dn + {w})");
    let next = |part: &str| format!("LEAD(dn) OVER (PARTITION BY {part} ORDER BY dn) AS nx");
    let names = "SELECT DISTINCT account_id, event, dn FROM ev
      WHERE event IN ('report_created', 'alert_set', 'dashboard_shared', 'export_downloaded')";
    let adelta = format!(
        "CREATE TEMP TABLE adelta AS SELECT account_id, dn, SUM(u7) AS u7, SUM(u30) AS u30, SUM(dv30) AS dv30,
  SUM(fb30) AS fb30, SUM(sb) AS sb FROM (
  SELECT account_id, dn, 1 AS u7, 1 AS u30, 0 AS dv30, 0 AS fb30, 0 AS sb FROM cd
  UNION ALL SELECT account_id, {u7}, -1, 0, 0, 0, 0 FROM (SELECT account_id, dn, {nc} FROM cd) x
  UNION ALL SELECT account_id, {u30}, 0, -1, 0, 0, 0 FROM (SELECT account_id, dn, {nc} FROM cd) x
  UNION ALL SELECT account_id, dn, 0, 0, 1, 0, 0 FROM cd WHERE viewed = 1
  UNION ALL SELECT account_id, {u30}, 0, 0, -1, 0, 0 FROM (SELECT account_id, dn, {nc} FROM cd WHERE viewed = 1) x
  UNION ALL SELECT account_id, dn, 0, 0, 0, 1, 0 FROM ({names}) y
  UNION ALL SELECT account_id, {u30}, 0, 0, 0, -1, 0 FROM (SELECT account_id, dn, {ne} FROM ({names}) y) x
  UNION ALL SELECT e.account_id, MIN(e.dn), 0, 0, 0, 0, 1 FROM ev e JOIN accounts s ON s.account_id = e.account_id
    WHERE e.event IN ('report_created', 'alert_set', 'dashboard_shared', 'integration_connected')
      AND e.dn >= CAST(s.start_date - {f} AS INTEGER) GROUP BY e.account_id, e.event
) z GROUP BY account_id, dn",
        u7 = until(7),
        u30 = until(30),
        nc = next("account_id, contact_id"),
        ne = next("account_id, event"),
    );
    // One row per account and day with the columns `acc_f` has at the end.
    let acc_h = format!(
        "CREATE TEMP TABLE acc_h AS
SELECT account_id, dn, plan, seats, arr, start_date, renewal_date, region, csm_pool, nps_last, today,
  SUM(reports) OVER w30 AS reports_30, SUM(dv30) OVER wall AS dash_viewers_30,
  SUM(u7) OVER wall AS users_7, SUM(u30) OVER wall AS users_30,
  SUM(active) OVER w7 AS days_7, SUM(active) OVER w14 AS days_14, SUM(active) OVER w30 AS days_30,
  SUM(integrations) OVER wall AS integrations_all, SUM(tickets) OVER w30 AS tickets_30,
  SUM(webinars) OVER w90 AS webinars_90, SUM(shares) OVER w30 AS shares_30, SUM(exports) OVER w30 AS exports_30,
  SUM(CASE WHEN today >= start_date THEN invited ELSE 0 END) OVER wall AS invited_since_anchor,
  SUM(sb) OVER wall AS setup_breadth, SUM(fb30) OVER wall AS feature_breadth,
  SUM(CASE WHEN today >= start_date AND today < start_date + 30 THEN shares ELSE 0 END) OVER wall AS first_value_shares,
  MIN(CASE WHEN reports > 0 THEN today END) OVER wall AS first_report_day,
  MAX(CASE WHEN active = 1 THEN today END) OVER wall AS last_day
FROM (
  SELECT a.*, CAST(g.dn AS INTEGER) AS dn, {f} + CAST(g.dn AS INTEGER) AS today,
    COALESCE(x.reports, 0) AS reports, COALESCE(x.tickets, 0) AS tickets, COALESCE(x.webinars, 0) AS webinars,
    COALESCE(x.shares, 0) AS shares, COALESCE(x.exports, 0) AS exports,
    COALESCE(x.integrations, 0) AS integrations, COALESCE(x.invited, 0) AS invited,
    CASE WHEN x.dn IS NULL THEN 0 ELSE 1 END AS active,
    COALESCE(d.u7, 0) AS u7, COALESCE(d.u30, 0) AS u30, COALESCE(d.dv30, 0) AS dv30,
    COALESCE(d.fb30, 0) AS fb30, COALESCE(d.sb, 0) AS sb
  FROM accounts a CROSS JOIN generate_series(0, {last}) AS g(dn)
  LEFT JOIN ad x ON x.account_id = a.account_id AND x.dn = g.dn
  LEFT JOIN adelta d ON d.account_id = a.account_id AND d.dn = g.dn
) t
WINDOW wall AS (PARTITION BY account_id ORDER BY dn ROWS UNBOUNDED PRECEDING),
  w7 AS (PARTITION BY account_id ORDER BY dn ROWS 6 PRECEDING),
  w14 AS (PARTITION BY account_id ORDER BY dn ROWS 13 PRECEDING),
  w30 AS (PARTITION BY account_id ORDER BY dn ROWS 29 PRECEDING),
  w90 AS (PARTITION BY account_id ORDER BY dn ROWS 89 PRECEDING)"
    );
    let d = |n: i32| if n >= 0 { format!("(today - {n})") } else { format!("(today + {})", -n) };
    let (acc_segs, con_segs) = segment_sql(&d);
    // Each contact segment as the days during which a contact is a member: +1 on the day
    // it enters, -1 on the day it leaves.
    let mut deltas = Vec::new();
    for (id, _) in &con_segs {
        deltas.push(match *id {
            "admins" => {
                "SELECT 'admins' AS segment, 0 AS dn, COUNT(*) AS d FROM contacts WHERE role = 'admin'".to_string()
            }
            "champions" => "SELECT 'champions', 0, COUNT(*) FROM contacts WHERE role = 'champion'".to_string(),
            "buyers_in_renewal" => format!(
                "SELECT 'buyers_in_renewal', CAST(a.renewal_date - {f} AS INTEGER) - 90, 1
    FROM contacts c JOIN accounts a ON a.account_id = c.account_id WHERE c.role = 'economic_buyer'"
            ),
            // From the first day seen to 14 days later.
            "new_users" => "SELECT 'new_users', MIN(dn), 1 FROM cd GROUP BY contact_id
  UNION ALL SELECT 'new_users', MIN(dn) + 15, -1 FROM cd GROUP BY contact_id"
                .to_string(),
            // From 31 days after an active day to the next one.
            "lapsed_users" => "SELECT 'lapsed_users', dn + 31, 1 FROM act WHERE nx IS NULL OR nx > dn + 31
  UNION ALL SELECT 'lapsed_users', nx, -1 FROM act WHERE nx > dn + 31"
                .to_string(),
            "dashboard_sharers" => format!(
                "SELECT 'dashboard_sharers', dn, 1 FROM sh
  UNION ALL SELECT 'dashboard_sharers', {}, -1 FROM sh",
                until(30)
            ),
            // The 30-day count changes only on a day with reports and 30 days after it:
            // between two such days, membership holds.
            "power_admins" => "SELECT 'power_admins', s, 1 FROM iv WHERE r >= 10
  UNION ALL SELECT 'power_admins', e, -1 FROM iv WHERE r >= 10 AND e IS NOT NULL"
                .to_string(),
            other => bail!("contact segment {other} has no SQL over the history in this benchmark"),
        });
    }
    let cdelta = format!(
        "CREATE TEMP TABLE cdelta AS
WITH act AS (SELECT contact_id, dn, {nx} FROM (SELECT DISTINCT contact_id, dn FROM cd) a),
sh AS (SELECT contact_id, dn, {nx} FROM cd WHERE shared = 1),
pa AS (SELECT x.contact_id, x.dn, x.reports AS n FROM cd x JOIN contacts c ON c.contact_id = x.contact_id
       WHERE c.role = 'admin' AND x.reports > 0),
pts AS (SELECT contact_id, dn, SUM(n) AS n FROM (SELECT contact_id, dn, n FROM pa UNION ALL
        SELECT contact_id, dn + 30, 0 FROM pa) u GROUP BY contact_id, dn),
roll AS (SELECT contact_id, dn,
         SUM(n) OVER (PARTITION BY contact_id ORDER BY dn RANGE BETWEEN 29 PRECEDING AND CURRENT ROW) AS r FROM pts),
iv AS (SELECT dn AS s, LEAD(dn) OVER (PARTITION BY contact_id ORDER BY dn) AS e, r FROM roll)
SELECT segment, GREATEST(dn, 0) AS dn, SUM(d) AS d FROM (
  {}
) z GROUP BY segment, GREATEST(dn, 0)",
        deltas.join("\n  UNION ALL "),
        nx = next("contact_id"),
    );
    let ids: Vec<String> = con_segs.iter().map(|(id, _)| format!("('{id}')")).collect();
    let mut parts: Vec<String> = acc_segs
        .iter()
        .map(|(id, cond)| {
            format!(
                "SELECT CAST('{id}' AS TEXT) AS segment, dn, CAST(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END) AS BIGINT) AS members
FROM acc_h GROUP BY dn"
            )
        })
        .collect();
    parts.push(format!(
        "SELECT CAST(s.segment AS TEXT), CAST(g.dn AS INTEGER),
  CAST(SUM(COALESCE(x.d, 0)) OVER (PARTITION BY s.segment ORDER BY g.dn ROWS UNBOUNDED PRECEDING) AS BIGINT)
FROM (VALUES {}) AS s(segment) CROSS JOIN generate_series(0, {last}) AS g(dn)
LEFT JOIN cdelta x ON x.segment = s.segment AND x.dn = g.dn",
        ids.join(", ")
    ));
    let segments = parts.join("\nUNION ALL\n");
    let health = health_sql(ws, "acc_h", "today", "dn, account_id")?;
    Ok(PeerSql { setup: vec![ev, ad, cd, adelta, acc_h, cdelta], segments, health })
}
