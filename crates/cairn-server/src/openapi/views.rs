//! `/api/views/…` (`crate::ui::views_api`): each page's data as the page shows it, one
//! documented path per page (the router serves them as `/api/views/{page}`). The members
//! are the page's own and change with it, so each is described as an open object.

use super::schema::*;
use super::{Op, Operation};

/// Each page's view: its path, operation id and what it holds.
const PAGES: &[(&str, &str, &str)] = &[
    (
        "/api/views/morning",
        "viewMorning",
        "The morning view: KPI tiles, the ranked worklist with reasons, health movers, missed milestones, renewals at risk, tasks due, programs needing attention.",
    ),
    (
        "/api/views/accounts",
        "viewAccounts",
        "The accounts list: one page of accounts after the page's filters (q, segment, stage, band, owner, renewal, sort, page).",
    ),
    ("/api/views/segments", "viewSegments", "Segments with their members and size over time."),
    (
        "/api/views/journey",
        "viewJourney",
        "The stage funnel, milestone achievement and Time to Value by start-month cohort.",
    ),
    ("/api/views/programs", "viewPrograms", "Every program with its reach, effect and state (paused or running)."),
    ("/api/views/tasks", "viewTasks", "Open tasks by assignee and pool (`me` names whose tasks are \"mine\")."),
    (
        "/api/views/insights",
        "viewInsights",
        "Behaviour hypotheses with their Kaplan–Meier curves and labels, and the health backtest.",
    ),
    (
        "/api/views/kpis",
        "viewKpis",
        "KPIs by period and segment: the ARR waterfall, NRR and GRR over time, cohort retention, NPS and CSAT.",
    ),
    (
        "/api/views/staffing",
        "viewStaffing",
        "The staffing calculator (`digital` names the segments served digitally, for the what-if).",
    ),
    ("/api/views/data", "viewData", "Data readiness: the doctor report."),
];

pub(super) fn operations() -> Vec<Operation> {
    let mut ops: Vec<Operation> = PAGES
        .iter()
        .map(|(path, id, summary)| {
            Op::get(path, id, summary).tag("views").secret().ok(any_object("The page's data.")).done()
        })
        .collect();
    ops.push(
        Op::get("/api/views/accounts/{id}", "viewAccount", "One account's 360, as its page shows it.")
            .tag("views")
            .secret()
            .path_param("id", "cairn id of the account.", "1")
            .ok(any_object("The account page's data."))
            .error(404, "NotFound")
            .done(),
    );
    ops.push(
        Op::get("/api/views/programs/{id}", "viewProgram", "One program, as its page shows it.")
            .tag("views")
            .secret()
            .path_param("id", "The program's id.", "onboarding_welcome")
            .ok(any_object("The program page's data."))
            .error(404, "NotFound")
            .done(),
    );
    ops
}
