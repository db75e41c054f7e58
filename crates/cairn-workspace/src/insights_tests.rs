//! Insights as their author meets them: an `insights:` section beside a segment and a
//! custom trait, read back typed or as the exact diagnostics.

use crate::{Peers, SourceFile, Workspace, check_sources};

const BASE: &str = "traits:
  account: { region: string }
segments:
  - { id: smb, of: account, where: seats <= 50 }
  - { id: admins, of: contact, where: \"role = 'admin'\" }
";

fn check(insights: &str) -> Result<Workspace, Vec<String>> {
    let files = [SourceFile::new("base.yaml", BASE), SourceFile::new("insights.yaml", insights)];
    check_sources(&files).map_err(|ds| ds.iter().map(|d| d.to_string()).collect())
}

fn problems(insights: &str) -> Vec<String> {
    check(insights).err().unwrap_or_default()
}

const GOOD: &str = "insights:
  metrics:
    - { id: reports_30d, name: Reports in 30 days, value: \"count('report_created', 30d)\" }
  benchmarks:
    - id: reports_vs_plan
      value: count('report_created', 30d)
      peers: { trait: plan }
      min_peers: 3
    - { id: everyone, value: active_users(30d), peers: all }
    - { id: small, value: active_users(30d), peers: { segment: smb } }
    - { id: same_size, value: seats, peers: size_band }
    - { id: same_region, value: seats, peers: { trait: region } }
  leaderboards:
    - { id: most_active, value: active_days(30d), top: 3 }
    - { id: reporters, value: \"count('report_created', 30d)\" }
";

#[test]
fn insights_load_typed_with_their_defaults() {
    let ws = check(GOOD).unwrap_or_else(|e| panic!("{e:#?}"));
    let i = ws.insights();
    assert_eq!(i.metrics.len(), 1);
    assert_eq!(i.metrics[0].name.as_deref(), Some("Reports in 30 days"));
    let peers: Vec<(&str, &Peers, usize)> =
        i.benchmarks.iter().map(|b| (b.id.as_str(), &b.peers, b.min_peers)).collect();
    assert_eq!(
        peers,
        [
            ("reports_vs_plan", &Peers::Trait("plan".into()), 3),
            ("everyone", &Peers::All, 5),
            ("small", &Peers::Segment(crate::Id::parse("smb").unwrap()), 5),
            ("same_size", &Peers::SizeBand, 5),
            ("same_region", &Peers::Trait("region".into()), 5),
        ]
    );
    let tops: Vec<(&str, usize)> = i.leaderboards.iter().map(|l| (l.id.as_str(), l.top)).collect();
    assert_eq!(tops, [("most_active", 3), ("reporters", 5)]);
    assert_eq!(i.benchmarks[0].location.to_string(), "insights.yaml:5:11");
    // Templates may read what is declared.
    let schema = ws.context_schema();
    assert!(schema.metrics.contains("reports_30d"));
    assert!(schema.benchmarks.contains("reports_vs_plan") && schema.benchmarks.contains("same_size"));
    assert!(schema.leaderboards.contains("most_active"));
}

#[test]
fn a_workspace_without_insights_has_none() {
    let ws = check("").unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(ws.insights().is_empty());
    assert!(ws.context_schema().benchmarks.is_empty());
}

#[test]
fn wrong_insights_are_reported_where_they_are() {
    let text = "insights:
  metrics:
    - { id: logins, value: \"count('login', 30d) > 3\" }
  benchmarks:
    - { id: a, value: seats, peers: plan }
    - { id: b, value: seats, peers: { segment: admins } }
    - { id: c, value: seats, peers: { segment: enterprize } }
    - { id: d, value: seats, peers: { trait: industri } }
    - { id: e, value: seats, peers: all, min_peers: 0 }
    - { id: e, value: seats }
  leaderboards:
    - { id: top, value: \"count('login', 30d)\", top: 500 }
    - { id: names, value: name }
  extra: 1
";
    assert_eq!(
        problems(text),
        [
            "insights.yaml:3:29: error: expected a number, found a condition (true or false)\n  help: turn it into a number: `case when ... then 1 else 0 end`",
            "insights.yaml:5:37: error: unknown peers `plan`\n  help: write `peers: all`, `peers: size_band`, `peers: { segment: <account segment> }` or `peers: { trait: plan }`",
            "insights.yaml:6:48: error: segment `admins` holds contacts\n  help: peers are accounts: name a segment of accounts",
            "insights.yaml:7:48: error: unknown segment `enterprize`",
            "insights.yaml:8:46: error: unknown account trait `industri`\n  help: did you mean `industry`?",
            "insights.yaml:9:53: error: `min_peers` must be between 1 and 10000, found 0",
            "insights.yaml:10:7: error: missing key `peers` in benchmark `e`\n  help: write `peers: all`, `peers: size_band`, `peers: { segment: <account segment> }` or `peers: { trait: plan }`",
            "insights.yaml:10:13: error: benchmark `e` is already defined at insights.yaml:9:13\n  help: benchmark ids are unique across the workspace's files",
            "insights.yaml:12:53: error: `top` must be between 1 and 100, found 500",
            "insights.yaml:13:27: error: expected a number, found a string",
            "insights.yaml:14:3: error: unknown key `extra` in `insights`\n  help: expected one of `metrics`, `benchmarks`, `leaderboards`",
        ]
    );
}

#[test]
fn a_template_may_read_only_what_insights_declare() {
    let files = [
        SourceFile::new("base.yaml", BASE),
        SourceFile::new("insights.yaml", GOOD),
        SourceFile::new(
            "templates.yaml",
            "templates:
  review:
    channel: email
    subject: \"{{ insights.benchmark.reports_vs_plan.percentile }} {{ metrics.reports_30d }}\"
    text: \"{{ insights.leaderboard.most_activ.top.first.name }} {{ insights.benchmark.nope.rank }}\"
",
        ),
    ];
    let errors: Vec<String> = check_sources(&files).err().unwrap_or_default().iter().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("no field `most_activ`, did you mean `most_active`?"), "{errors:#?}");
    assert!(errors[1].contains("no field `nope`"), "{errors:#?}");
}
