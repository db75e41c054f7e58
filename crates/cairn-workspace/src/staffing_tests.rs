//! The staffing model as its author meets it: a `staffing:` section beside small segments
//! and a journey, read back typed or as the exact diagnostics.

use crate::{SourceFile, Workspace, check_sources};

const BASE: &str = "segments:
  - { id: enterprise, of: account, where: \"plan = 'enterprise'\" }
  - { id: smb, of: account, where: arr < 20000 }
  - { id: admins, of: contact, where: \"role = 'admin'\" }
journey:
  stages:
    - id: onboarding
      until: age() > 30d
    - id: adoption
      from: age() > 30d
    - id: renewal
      from: days_until(renewal_date) <= 90
";

fn check(staffing: &str) -> Result<Workspace, Vec<String>> {
    let files = [SourceFile::new("base.yaml", BASE), SourceFile::new("staffing.yaml", staffing)];
    check_sources(&files).map_err(|ds| ds.iter().map(|d| d.to_string()).collect())
}

fn problems(staffing: &str) -> Vec<String> {
    check(staffing).err().unwrap_or_default()
}

const GOOD: &str = "staffing:
  csm: { hours_per_year: 1600, cost_per_year: 95000.50 }
  touch_model:
    - segment: enterprise
      hours: { renewal: 12, onboarding: 40, adoption: 20.25 }
      digital_hours: { onboarding: 2.5 }
    - segment: smb
      hours: { onboarding: 4 }
";

#[test]
fn a_staffing_model_loads_typed_in_journey_order() {
    let ws = check(GOOD).unwrap_or_else(|e| panic!("{e:#?}"));
    let s = ws.staffing().expect("staffing");
    assert_eq!((s.csm.hours_per_year, s.csm.cost_per_year_cents), (1600, 9_500_050));
    let segments: Vec<&str> = s.touch_model.iter().map(|t| t.segment.as_str()).collect();
    assert_eq!(segments, ["enterprise", "smb"]);
    let enterprise = &s.touch_model[0];
    // Hundredths of an hour, in the journey's order whatever the order written.
    let hours: Vec<(&str, u32)> = enterprise.hours.iter().map(|(s, h)| (s.as_str(), *h)).collect();
    assert_eq!(hours, [("onboarding", 4000), ("adoption", 2025), ("renewal", 1200)]);
    assert_eq!((enterprise.digital_hours_in("onboarding"), enterprise.digital_hours_in("adoption")), (250, 0));
    assert_eq!((s.touch_model[1].hours_in("onboarding"), s.touch_model[1].hours_in("renewal")), (400, 0));
    assert_eq!(enterprise.location.to_string(), "staffing.yaml:4:16");
}

#[test]
fn a_workspace_without_staffing_has_none() {
    let ws = check("").unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(ws.staffing().is_none());
}

#[test]
fn unknown_segments_and_stages_are_pointed_at_with_a_suggestion() {
    let text = "staffing:
  csm: { hours_per_year: 1600, cost_per_year: 95000 }
  touch_model:
    - segment: enterprse
      hours: { onboardng: 40, churned: 1 }
    - segment: admins
      hours: { adoption: 1 }
    - segment: mid_market
      hours: { adoption: 1 }
";
    assert_eq!(
        problems(text),
        [
            "staffing.yaml:4:16: error: unknown segment `enterprse`\n  help: did you mean `enterprise`?",
            "staffing.yaml:5:16: error: unknown stage `onboardng` in `hours`\n  help: did you mean `onboarding`?",
            "staffing.yaml:5:31: error: unknown stage `churned` in `hours`\n  help: the journey's stages are `onboarding`, `adoption`, `renewal`",
            "staffing.yaml:6:16: error: segment `admins` holds contacts, not accounts\n  help: the touch model counts accounts: name a segment with `of: account`",
            "staffing.yaml:8:16: error: unknown segment `mid_market`\n  help: define `mid_market` under `segments:` (`of: account`)",
        ]
    );
}

#[test]
fn bad_numbers_keys_and_repeats_are_all_reported() {
    let text = "staffing:
  csm: { hours_per_year: 10000, cost_per_year: 95k }
  touch_modle: []
";
    assert_eq!(
        problems(text),
        [
            "staffing.yaml:2:26: error: `hours_per_year` must be between 1 and 8760, found 10000",
            "staffing.yaml:2:48: error: `95k` is not an amount: expected digits with at most two decimal places, like 1200.50\n  help: write the amount in the currency of ARR, without separators: `95000` or `95000.50`",
            "staffing.yaml:3:3: error: unknown key `touch_modle` in `staffing`\n  help: did you mean `touch_model`?",
        ]
    );
    let text = "staffing:
  csm: { hours_per_year: 1600, cost_per_year: 0 }
  touch_model:
    - segment: smb
      hours: { onboarding: 1.255, adoption: -1, renewal: 9000 }
      digital_hours: { onboarding: 3 }
    - segment: smb
      hours: { adoption: 1, adoption: 2 }
";
    assert_eq!(
        problems(text),
        [
            "staffing.yaml:2:47: error: `cost_per_year` must be above 0\n  help: give the salary, benefits, tools and management share of one CSM",
            "staffing.yaml:5:28: error: `1.255` is not a number of hours\n  help: hours per account per year: a number from 0 to 8760 with at most two decimals, e.g. `1.5`",
            "staffing.yaml:5:45: error: `-1` is not a number of hours\n  help: hours per account per year: a number from 0 to 8760 with at most two decimals, e.g. `1.5`",
            "staffing.yaml:5:58: error: `9000` hours is more than a year holds\n  help: hours per account per year: a number from 0 to 8760 with at most two decimals, e.g. `1.5`",
            "staffing.yaml:7:16: error: segment `smb` is already in the touch model at staffing.yaml:4:16\n  help: give each segment one entry with all its stages",
            "staffing.yaml:8:29: error: duplicate stage `adoption` in `hours`\n  help: the first `adoption` is at staffing.yaml:8:16; keep one",
        ]
    );
}

#[test]
fn digital_hours_above_the_human_hours_are_refused_where_written() {
    let text = "staffing:
  csm: { hours_per_year: 1600, cost_per_year: 95000 }
  touch_model:
    - segment: smb
      hours: { onboarding: 4 }
      digital_hours: { adoption: 0.5, onboarding: 4 }
";
    assert_eq!(
        problems(text),
        [
            "staffing.yaml:6:24: error: `digital_hours` of `adoption` (0.5) is above its `hours` (0)\n  help: digital hours are the human time left once the stage is digital: at most its hours",
        ]
    );
}

#[test]
fn staffing_needs_a_journey_and_appears_once() {
    let files = [SourceFile::new(
        "ws.yaml",
        "segments:\n  - { id: smb, of: account, where: arr < 1 }\nstaffing:\n  csm: { hours_per_year: 1600, cost_per_year: 1 }\n  touch_model: [ { segment: smb, hours: {} } ]\n",
    )];
    let got: Vec<String> = check_sources(&files).err().unwrap_or_default().iter().map(|d| d.to_string()).collect();
    assert_eq!(
        got,
        [
            "ws.yaml:4:3: error: `staffing` needs a journey\n  help: the touch model counts hours by journey stage: define `journey:` with its stages"
        ]
    );
    let files = [
        SourceFile::new("base.yaml", BASE),
        SourceFile::new("a.yaml", GOOD),
        SourceFile::new("b.yaml", "staffing:\n  csm: { hours_per_year: 1, cost_per_year: 1 }\n  touch_model: []\n"),
    ];
    let got: Vec<String> = check_sources(&files).err().unwrap_or_default().iter().map(|d| d.to_string()).collect();
    assert_eq!(
        got,
        [
            "b.yaml:1:1: error: `staffing` is already defined at a.yaml:1:1\n  help: a workspace has one `staffing` section; merge the two"
        ]
    );
}
