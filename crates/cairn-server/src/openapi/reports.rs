//! `/api/reports/{name}` (`crate::reports`): one documented path per report, since each
//! answers a document of its own (the JSON of `cairn report NAME --json`).
//!
//! The reports' top levels and the structures they share (periods, exact ratios,
//! intervals, KPIs) are described member by member; deeper statistics (a hypothesis's
//! verdict, an experiment's comparison, the staffing figures) are described as objects
//! with the members always present, open to more.

use serde_json::{Value, json};

use super::schema::*;
use super::{Op, Operation};

fn ratio() -> Value {
    reference("Ratio")
}

fn period() -> Value {
    reference("Period")
}

fn maybe_ratio() -> Value {
    nullable(reference("Ratio"))
}

fn interval() -> Value {
    nullable(reference("Interval"))
}

fn cents(description: &str) -> Value {
    described(integer(), description)
}

pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let kpi_members = || {
        vec![
            ("period", period()),
            ("start_arr_cents", cents("ARR on the period's first day, in cents.")),
            ("end_arr_cents", integer()),
            ("cohort_accounts", count()),
            ("cohort_end_arr_cents", integer()),
            ("retained_arr_cents", integer()),
            ("expansion_cents", integer()),
            ("contraction_cents", integer()),
            ("churned_accounts", count()),
            ("churned_arr_cents", integer()),
            ("new_accounts", count()),
            ("new_arr_cents", integer()),
            ("reactivated_accounts", count()),
            ("reactivated_arr_cents", integer()),
            ("nrr", maybe_ratio()),
            ("grr", maybe_ratio()),
            ("logo_churn", maybe_ratio()),
            ("renewal", reference("RenewalRate")),
        ]
    };
    let kpi_required: Vec<&str> = kpi_members().iter().map(|(k, _)| *k).collect();
    let mut kpi_with_ltv = kpi_members();
    kpi_with_ltv.push((
        "ltv",
        described(
            record(&[
                ("year", period()),
                ("gross_margin", ratio()),
                ("cohort_accounts", count()),
                ("start_arr_cents", integer()),
                ("churned_accounts", count()),
                ("value_cents", maybe_ratio()),
            ]),
            "With `gross_margin`: lifetime value over the year's cohort.",
        ),
    ));
    let movements = || {
        record(&[
            ("period", period()),
            ("start_arr_cents", integer()),
            ("new_cents", integer()),
            ("expansion_cents", integer()),
            ("reactivation_cents", integer()),
            ("contraction_cents", integer()),
            ("churn_cents", integer()),
            ("end_arr_cents", integer()),
            ("new_accounts", count()),
            ("expansion_accounts", count()),
            ("reactivation_accounts", count()),
            ("contraction_accounts", count()),
            ("churn_accounts", count()),
            ("quick_ratio", maybe_ratio()),
        ])
    };
    let task_group = || {
        record(&[
            ("name", nullable(string())),
            ("open", count()),
            ("median_age_days", nullable(number())),
            ("oldest_age_days", nullable(number())),
            ("overdue", count()),
        ])
    };
    let mover = || {
        record(&[
            ("account_id", count()),
            ("name", nullable(string())),
            ("score", number()),
            ("change", number()),
            ("band", nullable(one_of_strings(&["red", "yellow", "green"]))),
        ])
    };
    let nps = || {
        record(&[
            ("responses", count()),
            ("promoters", count()),
            ("passives", count()),
            ("detractors", count()),
            ("nps", maybe_ratio()),
            ("interval", interval()),
        ])
    };
    let csat =
        || record(&[("responses", count()), ("satisfied", count()), ("csat", maybe_ratio()), ("interval", interval())]);
    let goal_arm = || {
        record(&[
            ("enrolled", count()),
            ("too_recent", count()),
            ("measured", count()),
            ("converted", count()),
            ("rate", maybe_ratio()),
            ("interval", interval()),
        ])
    };
    let rate = |name: &'static str| (name, maybe_ratio());
    let ttv_cohort = || {
        record(&[
            ("start", period()),
            ("accounts", count()),
            ("missed", count()),
            ("pending", count()),
            ("reached_rate", maybe_ratio()),
            ("reached", count()),
            ("median", described(nullable(number()), "Days, among those that reached it.")),
            ("p75", nullable(number())),
            ("p90", nullable(number())),
            ("km_median", described(nullable(number()), "Kaplan–Meier median, censoring-aware.")),
        ])
    };
    let verdict_members = [
        ("held", any_object("The accounts that did it: due, retained, retention.")),
        ("not_held", any_object("The accounts that did not.")),
        ("lift_ratio", nullable(number())),
        ("lift_ratio_interval", interval()),
        ("difference", nullable(any_object("The two-proportion test of retention."))),
        ("adjusted_p", nullable(number())),
        ("association", any_object("phi, sensitivity and precision.")),
        ("log_rank", nullable(any_object("The log-rank test of the survival curves."))),
        ("label", one_of_strings(&["positive_indicator", "negative_indicator", "inconclusive", "too_small"])),
    ];
    let hypothesis = {
        let mut m = vec![
            ("name", string()),
            ("rule", string()),
            ("within_days", number()),
            ("undecided_accounts", count()),
            ("without_anchor", count()),
        ];
        m.extend(verdict_members.iter().cloned());
        record(&m)
    };
    let candidate = || {
        let mut m = vec![("event", string()), ("threshold", count()), ("window_days", integer())];
        m.extend(verdict_members.iter().cloned());
        m
    };
    let suggestion = {
        let mut m = vec![("id", string()), ("rule", string()), ("within", string()), ("yaml", string())];
        m.extend(candidate());
        record(&m)
    };
    let auc =
        || vec![("renewed", count()), ("churned", count()), ("auc", nullable(number())), ("note", nullable(string()))];
    let named_auc = {
        let mut m = vec![("id", string())];
        m.extend(auc());
        record(&m)
    };
    let staffing_members = || {
        vec![
            ("csm_hours_per_year", count()),
            ("csm_cost_per_year_cents", integer()),
            ("segments", array(any_object("A segment's accounts, hours and CSMs by stage."))),
            ("total", any_object("Accounts, ARR, hours, CSMs and their cost.")),
            ("outside", record(&[("accounts", count()), ("arr_cents", integer())])),
        ]
    };
    vec![
        (
            "Period",
            described(record(&[("first", date()), ("last", date())]), "A span of calendar days, both included."),
        ),
        (
            "Ratio",
            described(
                record(&[("numerator", integer()), ("denominator", integer()), ("value", number())]),
                "An exact ratio, and its value as a float.",
            ),
        ),
        ("Interval", described(record(&[("low", number()), ("high", number())]), "A 95% confidence interval.")),
        (
            "RenewalRate",
            record(&[
                ("period", period()),
                ("lines_ending", count()),
                ("renewed", count()),
                ("rate", maybe_ratio()),
                ("not_renewed", array(string())),
            ]),
        ),
        ("KpiReport", object(&kpi_with_ltv, &kpi_required)),
        ("KpiSeries", record(&[("period", period()), ("months", array(reference("KpiReport")))])),
        ("Movements", movements()),
        ("MovementsReport", record(&[("total", reference("Movements")), ("months", array(reference("Movements")))])),
        (
            "CohortRow",
            record(&[
                ("start_month", period()),
                ("accounts", count()),
                ("initial_arr_cents", integer()),
                (
                    "months",
                    array(record(&[
                        ("offset", count()),
                        ("on", date()),
                        ("retained_accounts", count()),
                        ("arr_cents", integer()),
                        ("logo_retention", maybe_ratio()),
                        ("revenue_retention", maybe_ratio()),
                    ])),
                ),
            ]),
        ),
        (
            "ProcessReport",
            record(&[
                ("period", period()),
                ("as_of", date()),
                (
                    "health",
                    nullable(record(&[
                        ("at", timestamp()),
                        ("accounts", count()),
                        ("red", count()),
                        ("yellow", count()),
                        ("green", count()),
                        ("unscored", count()),
                        ("p10", nullable(number())),
                        ("p25", nullable(number())),
                        ("median", nullable(number())),
                        ("p75", nullable(number())),
                        ("p90", nullable(number())),
                        ("drops", array(mover())),
                        ("rises", array(mover())),
                    ])),
                ),
                (
                    "tasks",
                    record(&[
                        ("at", timestamp()),
                        ("total", task_group()),
                        ("by_assignee", array(task_group())),
                        ("by_pool", array(task_group())),
                    ]),
                ),
                (
                    "tickets",
                    record(&[
                        ("opened", count()),
                        ("weeks", array(record(&[("week_of", date()), ("opened", count())]))),
                        ("closed", count()),
                        (
                            "open",
                            nullable(record(&[
                                ("at", timestamp()),
                                ("count", count()),
                                ("median_age_days", nullable(number())),
                                ("oldest_age_days", nullable(number())),
                            ])),
                        ),
                        ("note", nullable(string())),
                    ]),
                ),
            ]),
        ),
        (
            "ProgramsReport",
            record(&[
                ("period", period()),
                ("as_of", date()),
                (
                    "programs",
                    array(record(&[
                        ("program", string()),
                        ("name", nullable(string())),
                        ("in_workspace", boolean()),
                        ("enrollments", count()),
                        ("held_out", count()),
                        (
                            "reach",
                            array(record(&[
                                ("step", string()),
                                ("variant", nullable(string())),
                                ("sent", count()),
                                ("delivered", count()),
                                ("bounced", count()),
                                ("opened", count()),
                                ("clicked", count()),
                                ("unsubscribed", count()),
                                ("answered", count()),
                                rate("delivery_rate"),
                                rate("bounce_rate"),
                                rate("open_rate"),
                                rate("click_rate"),
                                rate("unsubscribe_rate"),
                                rate("answer_rate"),
                            ])),
                        ),
                        (
                            "effect",
                            nullable(record(&[
                                ("within", string()),
                                ("treated", goal_arm()),
                                ("held_out", goal_arm()),
                            ])),
                        ),
                        ("no_effect", nullable(text("Why no effect is measured."))),
                        (
                            "roi",
                            record(&[
                                ("enrolled", any_object("Retention at renewal of the enrolled accounts.")),
                                ("held_out", any_object("Of the held-out ones.")),
                                ("enrollments_without_account", count()),
                            ]),
                        ),
                    ])),
                ),
            ]),
        ),
        (
            "ExperimentsReport",
            record(&[
                ("period", period()),
                ("as_of", date()),
                ("mde", described(number(), "The minimum detectable effect, as a rate.")),
                ("alpha", number()),
                ("power", number()),
                ("tests", count()),
                (
                    "experiments",
                    array(record(&[
                        ("program", string()),
                        (
                            "kind",
                            json!({ "oneOf": [
                                record(&[("type", one_of_strings(&["split"])), ("step", string())]),
                                record(&[("type", one_of_strings(&["holdout"]))]),
                            ]}),
                        ),
                        ("arms", array(record(&[("arm", string()), ("share", nullable(number())), ("n", count())]))),
                        ("sample_ratio", nullable(any_object("The sample-ratio mismatch check."))),
                        ("withheld", nullable(text("Why the verdicts are withheld."))),
                        (
                            "metrics",
                            array(object(
                                &[
                                    ("metric", one_of_strings(&["goal", "click", "retention"])),
                                    (
                                        "arms",
                                        array(record(&[
                                            ("arm", string()),
                                            ("n", count()),
                                            ("conversions", count()),
                                            ("rate", nullable(number())),
                                            ("interval", interval()),
                                        ])),
                                    ),
                                    (
                                        "comparisons",
                                        array(record(&[
                                            ("control", string()),
                                            ("treatment", string()),
                                            ("comparison", nullable(any_object("The two-proportion test."))),
                                            ("adjusted_p", nullable(number())),
                                            ("needed_per_arm", nullable(count())),
                                            (
                                                "verdict",
                                                one_of_strings(&[
                                                    "better",
                                                    "worse",
                                                    "no_detectable_difference",
                                                    "not_enough_data_yet",
                                                    "withheld",
                                                ]),
                                            ),
                                        ])),
                                    ),
                                    ("left_out", count()),
                                    ("nrr", array(maybe_ratio())),
                                ],
                                &["metric", "arms", "comparisons", "left_out"],
                            )),
                        ),
                    ])),
                ),
            ]),
        ),
        (
            "NpsReport",
            record(&[
                ("period", period()),
                ("nps", nps()),
                ("csat", csat()),
                ("trend", array(record(&[("month", period()), ("nps", nps()), ("csat", csat())]))),
                ("skipped", record(&[("without_contact", count()), ("bad_score", count())])),
            ]),
        ),
        (
            "JourneyReport",
            record(&[
                ("period", period()),
                ("as_of", date()),
                ("accounts", count()),
                ("without_anchor", count()),
                (
                    "stages",
                    array(record(&[
                        ("id", string()),
                        ("name", nullable(string())),
                        ("entered", count()),
                        ("now_in", count()),
                        (
                            "milestones",
                            array(record(&[
                                ("id", string()),
                                ("name", nullable(string())),
                                ("within_days", nullable(number())),
                                ("due", count()),
                                ("on_time", count()),
                                ("late", count()),
                                ("missed", count()),
                                ("pending", count()),
                                ("on_time_rate", maybe_ratio()),
                            ])),
                        ),
                    ])),
                ),
            ]),
        ),
        (
            "TtvReport",
            record(&[
                ("period", period()),
                ("as_of", date()),
                ("milestone", string()),
                ("milestone_name", nullable(string())),
                ("within_days", nullable(number())),
                ("cohorts", array(ttv_cohort())),
                ("total", ttv_cohort()),
            ]),
        ),
        (
            "HypothesesReport",
            record(&[
                ("as_of", date()),
                ("min_group", count()),
                ("significance", number()),
                ("label_rule", string()),
                ("note", string()),
                ("hypotheses", array(hypothesis)),
                (
                    "discovery",
                    nullable(record(&[
                        ("tested", count()),
                        ("too_small", count()),
                        ("suggestions", array(suggestion)),
                        ("top", array(record(&candidate()))),
                        ("excluded", array(record(&[("event", string()), ("reason", string())]))),
                    ])),
                ),
            ]),
        ),
        (
            "Backtest",
            record(&[
                ("period", period()),
                ("as_of", date()),
                ("lines", count()),
                ("renewed", count()),
                ("churned", count()),
                ("undecided", count()),
                ("min_per_outcome", count()),
                (
                    "source",
                    record(&[
                        ("stored_through", nullable(date())),
                        ("from_store", count()),
                        ("from_replay", count()),
                        ("missing", count()),
                    ]),
                ),
                (
                    "horizons",
                    array(record(&[
                        ("days_before", integer()),
                        ("overall", record(&auc())),
                        ("pillars", array(named_auc.clone())),
                        ("measures", array(named_auc)),
                        (
                            "bands",
                            array(record(&[
                                ("band", string()),
                                ("lines", count()),
                                ("churned", count()),
                                ("churn_rate", maybe_ratio()),
                            ])),
                        ),
                        ("green_then_churned", count()),
                        (
                            "calibration",
                            array(record(&[
                                ("from", count()),
                                ("to", count()),
                                ("lines", count()),
                                ("mean_score", number()),
                                ("renewed", count()),
                                ("renewal_rate", maybe_ratio()),
                            ])),
                        ),
                    ])),
                ),
                (
                    "line_health",
                    array(record(&[
                        ("line", string()),
                        ("account", string()),
                        ("end", date()),
                        ("renewed", boolean()),
                        ("health", array(nullable(any_object("The line's health at a horizon.")))),
                    ])),
                ),
            ]),
        ),
        ("StaffingReport", {
            let mut m = vec![("as_of", timestamp())];
            m.extend(staffing_members());
            m.push((
                "what_if",
                nullable(record(&[
                    ("digital", array(tuple(&[string(), string()]))),
                    ("after", record(&staffing_members())),
                    ("change", any_object("Hours, CSMs and cost saved.")),
                    ("segments", array(tuple(&[string(), any_object("The change in that segment.")]))),
                ])),
            ));
            record(&m)
        }),
    ]
}

pub(super) fn operations() -> Vec<Operation> {
    let report = |name: &'static str, summary: &str| {
        let path: &'static str = match name {
            "kpis" => "/api/reports/kpis",
            "movements" => "/api/reports/movements",
            "cohorts" => "/api/reports/cohorts",
            "process" => "/api/reports/process",
            "programs" => "/api/reports/programs",
            "experiments" => "/api/reports/experiments",
            "nps" => "/api/reports/nps",
            "journey" => "/api/reports/journey",
            "ttv" => "/api/reports/ttv",
            "hypotheses" => "/api/reports/hypotheses",
            "backtest" => "/api/reports/backtest",
            _ => "/api/reports/staffing",
        };
        Op::get(path, &format!("report_{name}"), summary)
            .describe(&format!("The JSON of `cairn report {name} --json`."))
            .tag("reports")
            .secret()
            .query(
                "period",
                one_of_strings(&["month", "quarter", "year"]),
                "The last such calendar period complete on as_of.",
            )
            .query("from", date(), "The period's first day, with `to`.")
            .query("to", date(), "The period's last day (included), with `from`.")
            .query("as_of", date(), "The day the report is made on (default today, UTC): nothing after it is known.")
            .query("segment", string(), "Only the accounts in this segment at the period's start.")
            .error(400, "BadRequest")
    };
    vec![
        report("kpis", "Revenue and retention KPIs: NRR, GRR, churn, expansion, renewals, LTV.")
            .query_example("series", boolean(), "One row per calendar month (the last twelve by default).", "true")
            .query_example("gross_margin", string(), "`0.8` or `80%`: adds lifetime value (not with series).", "0.8")
            .ok(json!({ "oneOf": [reference("KpiReport"), reference("KpiSeries")] }))
            .done(),
        report("movements", "The ARR waterfall, month by month.").ok(reference("MovementsReport")).done(),
        report("cohorts", "The cohort retention triangle by start month.").ok(array(reference("CohortRow"))).done(),
        report("process", "Health distribution and movers, the task backlog, support tickets.")
            .ok(reference("ProcessReport"))
            .done(),
        report("programs", "Reach, Effect and ROI of each program.")
            .query_example("program", string(), "Only this program.", "onboarding_welcome")
            .ok(reference("ProgramsReport"))
            .done(),
        report("experiments", "Every A/B split and holdout, checked, corrected and powered.")
            .query("program", string(), "Only this program.")
            .query_example("mde", number(), "The minimum detectable effect in percentage points (default 5).", "10")
            .ok(reference("ExperimentsReport"))
            .done(),
        report("nps", "NPS and CSAT with their intervals and the monthly trend.").ok(reference("NpsReport")).done(),
        report("journey", "The journey funnel of a start cohort, per stage and milestone.")
            .ok(reference("JourneyReport"))
            .error(409, "Conflict")
            .done(),
        report("ttv", "Time to Value per start month.").ok(reference("TtvReport")).error(409, "Conflict").done(),
        report("hypotheses", "Do the milestones (and a rule) go with retention; discovery of behaviours that do.")
            .query("rule", string(), "A rule to test beside the milestones (`count('alert_set', since_anchor) >= 3`).")
            .query("within", string(), "The rule's deadline from the anchor (`30d`).")
            .query("min_group", count(), "The smallest group labelled, in accounts due for renewal.")
            .query("discover", boolean(), "Scan every event × threshold × window.")
            .ok(reference("HypothesesReport"))
            .done(),
        report("backtest", "The health score's AUC, churn per band and calibration at renewal.")
            .ok(reference("Backtest"))
            .done(),
        report("staffing", "The CSMs the touch model needs, and the what-if of moving stages to digital.")
            .query_example(
                "digital",
                string(),
                "SEGMENT:STAGE[,STAGE…], repeatable: the what-if.",
                "smb:adoption,value",
            )
            .ok(reference("StaffingReport"))
            .error(404, "NotFound")
            .done(),
    ]
}
