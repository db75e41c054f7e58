//! The report cache over real HTTP on loopback, on both backends: what `/api/reports/…`,
//! `/api/views/…` and the pages show is what the reports compute from the store now,
//! after the data changed too (a stale cache fails these tests), and the pages say when
//! their figures are from.

mod common;

use std::time::{Duration, Instant};

use cairn_core::Clock;
use cairn_measure::PeriodKind;
use cairn_reports::QueryText;
use common::TestApp;
use serde_json::Value;

const WORKSPACE: &str = r#"
segments:
  - { id: big, of: account, where: arr >= 50000 }
journey:
  anchor: start_date
  stages:
    - id: onboarding
      milestones:
        - { id: first_report, when: "count('report_created', since_anchor) >= 1", within: 7d }
"#;

/// The KPI series the `/kpis` page and `kpis?series=true` show by default, computed from
/// the store now, without the server.
async fn fresh_series(app: &TestApp) -> Value {
    let today = app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut query = QueryText::default().resolve(PeriodKind::Month, today).expect("query");
    query.period = cairn_reports::revenue::last_twelve_months(query.period).expect("range");
    let series = cairn_reports::revenue::kpis_series(&app.store, None, &query).await.expect("series");
    serde_json::to_value(series).expect("json")
}

/// The journey report the `/journey` page shows by default, computed now.
async fn fresh_journey(app: &TestApp) -> Value {
    let dir = common::workspace_dir(WORKSPACE);
    let (ws, _) = cairn_server::load_workspace(dir.path()).expect("workspace");
    let today = app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let query = QueryText::default().resolve(PeriodKind::Year, today).expect("query");
    serde_json::to_value(cairn_reports::journey::journey(&app.store, &ws, &query).await.expect("journey"))
        .expect("json")
}

async fn cached_figures_follow_the_data(app: &TestApp) {
    app.import_crm(
        "external_id,name,seats\na1,Alpha,5\na2,Bravo,20\n",
        "id,account_id,start_date,end_date,arr\ns1,a1,2025-01-01,2025-12-31,60000\n",
    )
    .await;
    let before = fresh_series(app).await;
    let (status, api) = app.api_get("/api/reports/kpis?series=true").await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api, before);
    let (status, view) = app.api_get("/api/views/kpis").await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["series"], before);

    // Bravo's line, and Alpha renewed at a lower price: the figures move.
    app.import_crm(
        "external_id,name,seats\na2,Bravo,20\n",
        "id,account_id,start_date,end_date,arr\ns2,a2,2025-06-01,2026-05-31,24000\ns3,a1,2026-01-01,2026-12-31,30000\n",
    )
    .await;
    let after = fresh_series(app).await;
    assert_ne!(after, before, "the new lines change the KPIs");
    let (_, api) = app.api_get("/api/reports/kpis?series=true").await;
    assert_eq!(api, after, "the API returned figures from before the import");
    let (_, view) = app.api_get("/api/views/kpis").await;
    assert_eq!(view["series"], after, "the view returned figures from before the import");

    // The journey reads what the engine stored: the view is what the report computes.
    let start = Instant::now();
    loop {
        let fresh = fresh_journey(app).await;
        let (status, view) = app.api_get("/api/views/journey").await;
        assert_eq!(status, 200, "{view}");
        if view["journey"] == fresh {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the journey view never matched: {view} vs {fresh}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn pages_say_when_their_figures_are_from(app: &TestApp) {
    let s = app.signed_in_as("admin").await;
    for path in ["/insights", "/kpis", "/journey", "/programs", "/data", "/segments?segment=big"] {
        // The first visit may find the figures still computing; they come within seconds.
        let start = Instant::now();
        loop {
            let r = app.ui(&s, "GET", path, &[]).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            assert!(r.body.contains("id=freshness"), "{path} says nothing of its figures' time: {}", r.body);
            // No page reloads itself (a timed refresh is a barrier): app.js tells the
            // reader when figures computed for the first time are there.
            assert!(!r.body.contains("http-equiv=refresh"), "{path} reloads itself");
            if r.body.contains("Computing these figures") {
                assert!(r.body.contains("data-computing"), "{path}: app.js cannot see that it computes: {}", r.body);
            }
            if r.body.contains("Figures as of ") && !r.body.contains("being recomputed") {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{path} never showed current figures: {}", r.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

on_both_backends!(
    workspace = super::WORKSPACE;
    cached_figures_follow_the_data,
    pages_say_when_their_figures_are_from,
);
