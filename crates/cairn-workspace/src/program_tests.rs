//! Programs, templates and guard rails as a workspace author meets them: a small
//! workspace, one program at a time, and the exact diagnostics (file, line, column,
//! message, help) each mistake gets.

use cairn_rules::Subject;

use crate::programs::{Assignee, Channel, OnCap, PoolStrategy, Reentry, Step, TextOrigin, Transition, Trigger, Wait};
use crate::{Band, SourceFile, Workspace, check_sources};

/// Segments, a journey, health, custom traits and templates for programs to refer to.
const BASE: &str = "\
workspace:
  time_zone: Europe/Berlin
traits:
  account: { rescue_started_on: date, region: string }
  contact: { nps_surveyed_at: timestamp }
pools:
  digital: { name: Digital CS team, members: [ana@acme.example, Bo@Acme.example] }
  cs_leads: { members: [lea@acme.example] }
segments:
  - { id: new_users, of: contact, where: 'days_since(first_seen()) <= 14' }
  - { id: at_risk, of: account, where: 'health() < 40' }
journey:
  stages:
    - id: onboarding
      milestones:
        - { id: invited_team, when: \"count('user_invited', since_anchor) >= 5\", within: 14d }
    - id: renewal
      from: days_until(renewal_date) <= 90
health:
  pillars:
    adoption:
      weight: 1
      measures:
        - { id: active, value: active_days(30d), score: { red: 2, green: 12 }, weight: 1 }
";

const TEMPLATES: &str = "\
templates:
  welcome:
    channel: email
    subject: Welcome
    html: { file: templates/welcome.html }
  welcome_b:
    channel: email
    subject: Welcome!
    text: Hi {{ contact.name }}
  nudge_inapp:
    channel: in_app
    text: Invite your team
";

fn sources(programs: &str) -> Vec<SourceFile> {
    vec![
        SourceFile::new("base.yaml", BASE),
        SourceFile::new("programs.yaml", programs),
        SourceFile::new("templates.yaml", TEMPLATES),
        SourceFile::new("templates/welcome.html", "<p>Welcome, {{ contact.name }}</p>"),
    ]
}

fn check(programs: &str) -> Result<Workspace, Vec<String>> {
    check_sources(&sources(programs)).map_err(|ds| ds.iter().map(|d| d.to_string()).collect())
}

/// The diagnostics of a workspace whose programs file is `programs`.
fn problems(programs: &str) -> Vec<String> {
    match check(programs) {
        Ok(_) => Vec::new(),
        Err(ds) => ds,
    }
}

/// One program with `body` (indented under `- id: p`), plus the usual required keys
/// unless `body` sets them.
fn program(body: &str) -> String {
    let mut text = String::from("programs:\n  - id: p\n");
    if !body.contains("trigger:") {
        text.push_str("    trigger: segment_entered('new_users')\n");
    }
    if !body.contains("topic:") {
        text.push_str("    topic: onboarding\n");
    }
    text.push_str(body);
    if !body.contains("steps:") {
        text.push_str("    steps:\n      - send: email\n        template: welcome\n");
    }
    text
}

#[test]
fn a_complete_program_loads_into_typed_steps() {
    let text = program(
        "    name: Invite your team
    trigger: milestone_missed('invited_team')
    audience: role = 'admin'
    reentry: { after: 30d }
    holdout: 10%
    priority: 20
    goal: { when: \"milestone('invited_team')\", within: 14d }
    exit: [ \"segment('at_risk')\", \"opened('ab')\" ]
    steps:
      - id: ab
        send: email
        split: { welcome: 60%, welcome_b: 40% }
        on_cap: skip
      - wait: 3d
      - if: opened(previous) and not goal()
        then:
          - send: in_app
            template: nudge_inapp
        else:
          - task: Call the admin
            assign: pool('digital')
            strategy: least_loaded
            due: 2d
            priority: 1
      - wait: { until: clicked('ab'), timeout: 7d }
      - update: { nps_surveyed_at: now(), account.rescue_started_on: date(now()) }
      - exit
",
    );
    let ws = check(&text).unwrap_or_else(|e| panic!("{e:#?}"));
    let p = &ws.programs()[0];
    assert_eq!(p.id.as_str(), "p");
    assert_eq!(p.name.as_deref(), Some("Invite your team"));
    assert_eq!(p.subject, Subject::Contact);
    assert!(matches!(&p.trigger, Trigger::Transition(Transition::MilestoneMissed(m)) if m.as_str() == "invited_team"));
    assert_eq!(p.reentry, Reentry::After(jiff::SignedDuration::from_hours(30 * 24)));
    assert_eq!((p.holdout_percent, p.priority), (10.0, 20));
    assert_eq!(p.topic.as_ref().map(|t| t.as_str()), Some("onboarding"));
    assert_eq!(p.goal.as_ref().map(|g| g.within), Some(jiff::SignedDuration::from_hours(14 * 24)));
    assert_eq!(p.exits.len(), 2);
    assert!(p.audience.is_some());
    let ids: Vec<&str> = p.all_steps().iter().map(|s| s.id().as_str()).collect();
    assert_eq!(ids, ["ab", "step2", "step3", "step4", "step5", "step6", "step7", "step8"]);
    let kinds: Vec<&str> = p.all_steps().iter().map(|s| s.kind()).collect();
    assert_eq!(kinds, ["send", "wait", "if", "send", "task", "wait", "update", "exit"]);
    let Step::Send(send) = &p.steps[0] else { panic!("not a send") };
    assert_eq!(send.channel, Channel::Email);
    assert_eq!(send.on_cap, Some(OnCap::Skip));
    let variants: Vec<(&str, f64)> = send.variants.iter().map(|v| (v.template.as_str(), v.percent)).collect();
    assert_eq!(variants, [("welcome", 60.0), ("welcome_b", 40.0)]);
    let Step::If(branch) = &p.steps[2] else { panic!("not an if") };
    assert_eq!(branch.condition.source(), "opened(previous) and not goal()");
    assert_eq!(
        branch.condition.references().iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
        ["Engagement { step: \"ab\", kind: Opened }", "Goal"]
    );
    let Step::Task(task) = &branch.otherwise[0] else { panic!("not a task") };
    assert_eq!(
        task.assign,
        Assignee::Pool { name: crate::Id::parse("digital").unwrap(), strategy: PoolStrategy::LeastLoaded }
    );
    assert_eq!((task.title.as_str(), task.priority), ("Call the admin", 1));
    assert_eq!(task.location.to_string(), "programs.yaml:23:13");
    let Step::Wait(wait) = &p.steps[3] else { panic!("not a wait") };
    assert!(matches!(&wait.wait, Wait::Until { timeout, .. } if *timeout == jiff::SignedDuration::from_hours(7 * 24)));
    let Step::Update(update) = &p.steps[4] else { panic!("not an update") };
    let set: Vec<(Subject, &str)> = update.set.iter().map(|u| (u.owner, u.name.as_str())).collect();
    assert_eq!(set, [(Subject::Contact, "nps_surveyed_at"), (Subject::Account, "rescue_started_on")]);
    assert_eq!(p.step("step8").map(|s| s.kind()), Some("exit"));
}

#[test]
fn templates_keep_their_raw_text_and_where_it_came_from() {
    let ws = check(&program("")).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(ws.summary().templates, 3);
    assert_eq!(ws.summary().programs, 1);
    let welcome = ws.template("welcome").expect("welcome");
    assert_eq!(welcome.channel, Channel::Email);
    let html = welcome.html.as_ref().expect("html");
    assert_eq!(html.text, "<p>Welcome, {{ contact.name }}</p>");
    assert_eq!(
        html.origin,
        TextOrigin::File {
            path: "templates/welcome.html".into(),
            file: "templates/welcome.html".into(),
            location: crate::Location { file: "templates.yaml".into(), line: 5, column: 19 },
        }
    );
    let text = ws.template("welcome_b").and_then(|t| t.text.as_ref()).expect("text");
    assert_eq!(text.text, "Hi {{ contact.name }}");
    assert!(
        matches!(&text.origin, TextOrigin::Inline { location, quoted: false } if location.to_string() == "templates.yaml:9:11")
    );
    let parts: Vec<&str> = welcome.parts().map(|(k, _)| k).collect();
    assert_eq!(parts, ["subject", "html"]);
}

#[test]
fn guard_rails_are_read_from_the_workspace_section() {
    let base = BASE.replace(
        "  time_zone: Europe/Berlin\n",
        "  time_zone: Europe/Berlin\n  frequency_caps:\n    email: { max: 3, per: 7d }\n  quiet_hours: { from: '21:00', to: '08:00' }\n  on_cap: skip\n",
    );
    let mut files = sources(&program(""));
    files[0] = SourceFile::new("base.yaml", base);
    let ws = check_sources(&files).unwrap_or_else(|e| panic!("{e:#?}"));
    let rails = ws.guardrails();
    let cap = rails.frequency_caps.get(&Channel::Email).expect("email cap");
    assert_eq!((cap.max, cap.per), (3, jiff::SignedDuration::from_hours(7 * 24)));
    let quiet = rails.quiet_hours.expect("quiet hours");
    assert!(quiet.contains(jiff::civil::time(23, 0, 0, 0)));
    assert!(quiet.contains(jiff::civil::time(7, 59, 0, 0)));
    assert!(!quiet.contains(jiff::civil::time(8, 0, 0, 0)));
    assert_eq!(rails.on_cap, OnCap::Skip);
}

#[test]
fn triggers_of_every_kind() {
    let cases: &[(&str, &str)] = &[
        ("segment_entered('new_users')", "SegmentEntered"),
        ("segment_exited('at_risk')", "SegmentExited"),
        ("milestone_achieved('invited_team')", "MilestoneAchieved"),
        ("stage_entered('renewal')", "StageEntered"),
        ("\"health_band_changed(from: 'yellow', to: 'red')\"", "HealthBandChanged"),
        ("health_band_changed('red')", "HealthBandChanged"),
        ("event('report_created')", "Event"),
        ("schedule('0 9 * * MON')", "Schedule"),
        ("renewal_date - 90d", "Date"),
        ("contact.nps_surveyed_at + 2w", "Date"),
    ];
    for (trigger, kind) in cases {
        let ws = check(&program(&format!("    trigger: {trigger}\n"))).unwrap_or_else(|e| panic!("{trigger}: {e:#?}"));
        let found = match &ws.programs()[0].trigger {
            Trigger::Transition(t) => format!("{t:?}"),
            Trigger::Event(_) => "Event".into(),
            Trigger::Schedule(_) => "Schedule".into(),
            Trigger::Date(_) => "Date".into(),
        };
        assert!(found.starts_with(kind), "{trigger}: {found}");
    }
    let ws = check(&program("    trigger: \"health_band_changed(from: 'yellow', to: 'red')\"\n")).expect("valid");
    assert!(matches!(
        ws.programs()[0].trigger,
        Trigger::Transition(Transition::HealthBandChanged { from: Some(Band::Yellow), to: Some(Band::Red) })
    ));
    let ws = check(&program("    trigger: renewal_date - 90d\n")).expect("valid");
    let Trigger::Date(date) = &ws.programs()[0].trigger else { panic!("not a date trigger") };
    assert_eq!((date.owner, date.name.as_str(), date.offset_days), (Subject::Account, "renewal_date", -90));
    // A zero offset is the day itself.
    for zero in ["renewal_date - 0d", "renewal_date + 0w"] {
        let ws = check(&program(&format!("    trigger: {zero}\n"))).unwrap_or_else(|d| panic!("{zero}: {d:?}"));
        let Trigger::Date(date) = &ws.programs()[0].trigger else { panic!("not a date trigger") };
        assert_eq!(date.offset_days, 0, "{zero}");
    }
}

#[test]
fn a_program_of_accounts_reads_account_rules_and_assigns_tasks() {
    let text = "programs:
  - id: rescue
    of: account
    trigger: segment_entered('at_risk')
    audience: arr > 1000 and region = 'EMEA'
    steps:
      - task: Call them
        assign: owner
";
    let ws = check(text).unwrap_or_else(|e| panic!("{e:#?}"));
    let p = &ws.programs()[0];
    assert_eq!(p.subject, Subject::Account);
    assert_eq!(p.priority, 100);
    assert_eq!(p.reentry, Reentry::Once);
    assert!(p.topic.is_none());
    let Step::Task(task) = &p.steps[0] else { panic!("not a task") };
    assert_eq!((task.assign.clone(), task.priority), (Assignee::Owner, 3));
}

#[test]
fn the_example_workspace_holds_its_eight_programs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace");
    let ws = crate::load_dir(&dir)
        .unwrap_or_else(|ds| panic!("{}", ds.iter().map(|d| format!("{d:#}")).collect::<Vec<_>>().join("\n")));
    let ids: Vec<&str> = ws.programs().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "onboarding_welcome",
            "invite_your_team",
            "at_risk_rescue",
            "renewal_sequence",
            "renewal_risk_handoff",
            "nps_survey",
            "alerts_launch",
            "business_review"
        ]
    );
    assert!(ws.programs().iter().all(|p| p.holdout_percent > 0.0 && p.topic.is_some()));
    assert!(ws.templates().iter().any(|t| matches!(t.html.as_ref().map(|h| &h.origin), Some(TextOrigin::File { .. }))));
    assert!(ws.guardrails().quiet_hours.is_some());
}

/// Malformed programs: (program body or whole file, expected diagnostics).
#[rustfmt::skip]
fn cases() -> Vec<(String, Vec<&'static str>)> {
    let steps = |s: &str| program(&format!("    steps:\n{s}"));
    vec![
        // triggers
        (program("    trigger: milestone_mised('invited_team')\n"), vec!["programs.yaml:4:14: error: unknown trigger `milestone_mised`\n  help: did you mean `milestone_missed`?"]),
        (program("    trigger: segment_entered('at_rsk')\n"), vec!["programs.yaml:4:30: error: unknown segment `at_rsk`\n  help: did you mean `at_risk`?"]),
        (program("    trigger: milestone_missed('invite_team')\n"), vec!["programs.yaml:4:31: error: unknown milestone `invite_team`\n  help: did you mean `invited_team`?"]),
        (program("    trigger: \"health_band_changed(to: 'purple')\"\n"), vec!["programs.yaml:4:39: error: unknown health band `purple`\n  help: the bands are `red`, `yellow`, `green`"]),
        (program("    trigger: \"health_band_changed(too: 'red')\"\n"), vec!["programs.yaml:4:35: error: unknown argument `too` of `health_band_changed`\n  help: did you mean `to`?"]),
        (program("    trigger: schedule('0 25 * * *')\n"), vec!["programs.yaml:4:23: error: invalid schedule `0 25 * * *`: number out of bounds\n  help: a cron pattern has five fields — minute hour day-of-month month day-of-week — in the workspace time zone, e.g. `0 9 * * MON`"]),
        (program("    trigger: schedule('every monday')\n"), vec!["programs.yaml:4:23: error: invalid schedule `every monday`: pattern must have 5 fields when seconds are disallowed\n  help: a cron pattern has five fields — minute hour day-of-month month day-of-week — in the workspace time zone, e.g. `0 9 * * MON`"]),
        (program("    trigger: renewal_dat - 90d\n"), vec!["programs.yaml:4:14: error: unknown trigger or date trait `renewal_dat`\n  help: did you mean `renewal_date`?"]),
        (program("    trigger: plan - 90d\n"), vec!["programs.yaml:4:14: error: `plan` is a string trait, not a date\n  help: a date trigger counts from a date or timestamp trait, e.g. `renewal_date - 90d`"]),
        (program("    trigger: renewal_date - 6h\n"), vec!["programs.yaml:4:29: error: the offset must be whole days or weeks, found `6h`\n  help: a date trigger fires on a day: use whole days or weeks, e.g. `90d`, `2w`"]),
        (program("    trigger: stage_entered('renewal', 'onboarding')\n"), vec!["programs.yaml:4:14: error: `stage_entered` takes one stage id in quotes\n  help: usage: `stage_entered('renewal')`"]),
        (program("    trigger: segment_entered(new_users)\n"), vec!["programs.yaml:4:30: error: unexpected `new_users` in the trigger\n  help: ids and names go in single quotes, e.g. `segment_entered('some_id')`"]),
        (program("    trigger: segment_entered('new_users'\n"), vec!["programs.yaml:4:41: error: this `(` is never closed\n  help: add a `)` to close it"]),
        ("programs:\n  - id: p\n    of: account\n    trigger: segment_entered('new_users')\n    steps:\n      - task: Call\n        assign: owner\n".to_string(), vec!["programs.yaml:4:30: error: `new_users` is a segment of contacts\n  help: a program of accounts starts on segments of accounts"]),
        // program keys
        (program("    holdout: 60%\n"), vec!["programs.yaml:5:14: error: `holdout` must be between 0% and 50%, found 60%\n  help: the holdout is the share of the audience kept as a control group: at most half of it"]),
        (program("    holdout: lots\n"), vec!["programs.yaml:5:14: error: expected a percentage for `holdout`, found `lots`\n  help: write a share as e.g. `10%`"]),
        (program("    priority: 1.5\n"), vec!["programs.yaml:5:15: error: expected a whole number for `priority`, found 1.5"]),
        (program("    priority: 0\n"), vec!["programs.yaml:5:15: error: `priority` must be between 1 and 1000, found 0"]),
        (program("    topic: Product News\n"), vec!["programs.yaml:4:12: error: `Product News` is not a valid topic\n  help: topics are ids: lowercase letters, digits and `_`, e.g. `product_news`"]),
        ("programs:\n  - id: p\n    trigger: segment_entered('new_users')\n    steps:\n      - send: email\n        template: welcome\n".to_string(), vec!["programs.yaml:2:5: error: missing key `topic` in program `p`\n  help: the consent topic its messages fall under, e.g. `topic: onboarding`: contacts who unsubscribe from it receive none"]),
        (program("    reentry: twice\n"), vec!["programs.yaml:5:14: error: unknown re-entry policy `twice`\n  help: `reentry: once` (the default), `reentry: always` or `reentry: { after: 30d }`"]),
        (program("    reentry: { after: 30 }\n"), vec!["programs.yaml:5:23: error: `30` is not a duration: it has no unit\n  help: add a unit: `30d` for 30 days (write a whole number of hours, days or weeks: `12h`, `14d`, `2w`)"]),
        (program("    goal: { when: \"milestone('invited_team')\" }\n"), vec!["programs.yaml:5:11: error: missing key `within` in `goal`\n  help: how long after enrollment it may be met, e.g. `within: 14d`"]),
        (program("    goal: { when: \"goal()\", within: 14d }\n"), vec!["programs.yaml:5:20: error: `goal()` cannot be used in the goal's own rule\n  help: the goal rule says when the goal is met; write that condition itself"]),
        (program("    audience: opened('step1')\n"), vec!["programs.yaml:5:15: error: `opened` is only available in a program's rules\n  help: it asks about a step of the program a contact is enrolled in: use it in a program's `if`, `wait` (`until`), `goal` or `exit` rule"]),
        (program("    of: acount\n"), vec!["programs.yaml:5:9: error: `of` must be `account` or `contact`, found `acount`\n  help: did you mean `account`?"]),
        (program("    triger: segment_entered('new_users')\n"), vec!["programs.yaml:5:5: error: unknown key `triger` in a program\n  help: did you mean `trigger`?"]),
        (program("    exit: \"clicked('step9')\"\n"), vec!["programs.yaml:5:20: error: unknown step `step9`\n  help: did you mean `step1`?"]),
        // steps
        (steps("      - send: email\n        template: welcom\n"), vec!["programs.yaml:7:19: error: unknown template `welcom`\n  help: did you mean `welcome`?"]),
        (steps("      - send: email\n        template: nudge_inapp\n"), vec!["programs.yaml:7:19: error: template `nudge_inapp` is written for in_app, not email\n  help: send it with `send: in_app`, or use an email template"]),
        (steps("      - send: emial\n        template: welcome\n"), vec!["programs.yaml:6:15: error: unknown channel `emial`\n  help: did you mean `email`?"]),
        (steps("      - send: email\n"), vec!["programs.yaml:6:9: error: missing key `template` in a `send` step\n  help: name what to send: `template: welcome`, or an A/B test: `split: { welcome_a: 50%, welcome_b: 50% }`"]),
        (steps("      - send: email\n        split: { welcome: 50%, welcome_b: 40% }\n"), vec!["programs.yaml:7:16: error: the split's shares add up to 90%, not 100%\n  help: give each variant its share of the enrollments, e.g. `{ welcome_a: 50%, welcome_b: 50% }`"]),
        (steps("      - send: email\n        split: { welcome: 100% }\n"), vec!["programs.yaml:7:16: error: a `split` needs at least two variants\n  help: a split sends one of several templates: list at least two, or use `template`"]),
        (steps("      - send: email\n        template: welcome\n        on_cap: drop\n"), vec!["programs.yaml:8:17: error: `on_cap` must be `defer` or `skip`, found `drop`\n  help: `defer` waits until the cap allows the send; `skip` goes on without it"]),
        (steps("      - { id: a, send: email, template: welcome }\n      - { id: a, wait: 1d }\n"), vec!["programs.yaml:7:15: error: step `a` is already defined at programs.yaml:6:15\n  help: step ids are unique within a program"]),
        (steps("      - { send: email, template: welcome }\n      - { id: step1, wait: 1d }\n"), vec!["programs.yaml:7:15: error: step `step1` is already defined at programs.yaml:6:9\n  help: step ids are unique within a program"]),
        (steps("      - if: opened('later')\n        then: [ { wait: 1d } ]\n      - { id: later, send: email, template: welcome }\n"), vec!["programs.yaml:6:20: error: step `later` cannot be used here: it comes after this step\n  help: `opened` asks about a `send` step that runs before this rule"]),
        (steps("      - { id: pause, wait: 1d }\n      - if: opened('pause')\n        then: [ exit ]\n"), vec!["programs.yaml:7:20: error: step `pause` cannot be used here: it is a `wait` step, not a `send`\n  help: `opened` asks about a `send` step that runs before this rule"]),
        (steps("      - if: \"true\"\n        then: [ { id: a, send: email, template: welcome } ]\n        else: [ { if: opened('a'), then: [ exit ] } ]\n"), vec!["programs.yaml:8:30: error: step `a` cannot be used here: it is on another branch of an `if`, so it has not run before this step\n  help: `opened` asks about a `send` step that runs before this rule"]),
        (steps("      - if: opened(previous)\n        then: [ exit ]\n"), vec!["programs.yaml:6:20: error: no send step comes before this rule, so `previous` names nothing here\n  help: `previous` is the latest `send` step before an `if` or a `wait`; elsewhere name the step, e.g. `opened('welcome')`"]),
        (steps("      - wait:\n"), vec!["programs.yaml:6:13: error: `wait` needs a duration or a condition\n  help: `wait: 3d`, or `wait: { until: \"clicked('welcome')\", timeout: 7d }`"]),
        (steps("      - wait: { until: \"segment('at_risk')\" }\n"), vec!["programs.yaml:6:15: error: missing key `timeout` in `wait`\n  help: the longest wait, e.g. `timeout: 7d`: a condition may never hold"]),
        (steps("      - wait: 3 days\n"), vec!["programs.yaml:6:15: error: `3 days` is not a duration\n  help: write a whole number of hours, days or weeks: `12h`, `14d`, `2w`"]),
        (steps("      - wait: 3\n"), vec!["programs.yaml:6:15: error: `3` is not a duration: it has no unit\n  help: add a unit: `3d` for 3 days (write a whole number of hours, days or weeks: `12h`, `14d`, `2w`)"]),
        (steps("      - task:\n        assign: owner\n"), vec!["programs.yaml:6:13: error: a task needs a title\n  help: say what to do: `task: Call the admin about team invites`"]),
        (steps("      - task: Call\n        assign: team('digital')\n"), vec!["programs.yaml:7:17: error: unknown assignee `team('digital')`\n  help: `assign: owner` (the account's owner) or `assign: pool('team')`"]),
        (steps("      - task: Call\n        assign: pool('digital')\n        strategy: random\n"), vec!["programs.yaml:8:19: error: unknown strategy `random`\n  help: `round_robin` takes turns; `least_loaded` picks whoever has the fewest open tasks"]),
        (steps("      - task: Call\n        assign: owner\n        strategy: least_loaded\n"), vec!["programs.yaml:8:19: error: `strategy` applies to a pool, not to the owner\n  help: a strategy shares tasks among a pool: `assign: pool('team')`"]),
        (steps("      - task: Call\n        assign: owner\n        priority: high\n"), vec!["programs.yaml:8:19: error: expected a whole number for `priority`, found `high`"]),
        (steps("      - task: Call\n"), vec!["programs.yaml:6:9: error: missing key `assign` in a `task` step\n  help: `assign: owner` (the account's owner) or `assign: pool('team')`"]),
        (steps("      - update: { plan: \"'pro'\" }\n"), vec!["programs.yaml:6:19: error: `plan` is a built-in account trait: programs set custom traits only\n  help: built-in traits come from your data; declare a custom one under `traits: account:`"]),
        (steps("      - update: { nps_surveyd_at: now() }\n"), vec!["programs.yaml:6:19: error: unknown custom contact trait `nps_surveyd_at`\n  help: did you mean `nps_surveyed_at`?"]),
        (steps("      - update: { nps_surveyed_at: \"'yesterday'\" }\n"), vec!["programs.yaml:6:37: error: expected a timestamp, found a string"]),
        (steps("      - sned: email\n"), vec!["programs.yaml:6:9: error: unknown key `sned` in a step\n  help: did you mean `send`?"]),
        (steps("      - send: email\n        wait: 1d\n"), vec!["programs.yaml:7:9: error: a step cannot be both `send` and `wait`\n  help: a step does one thing: split it into two steps"]),
        (steps("      - send: email\n        templte: welcome\n"), vec!["programs.yaml:7:9: error: unknown key `templte` in a `send` step\n  help: did you mean `template`?"]),
        (steps("      - stop\n"), vec!["programs.yaml:6:9: error: expected a step, found `stop`\n  help: a step is a mapping with one of `send`, `wait`, `if`, `task`, `update`, `exit`, e.g. `- send: email`"]),
        (steps("      - if: \"true\"\n"), vec!["programs.yaml:6:9: error: missing key `then` in an `if` step\n  help: the steps when the condition holds, e.g. `then: [ { send: email, template: nudge } ]`"]),
        (program("    steps: []\n"), vec!["programs.yaml:5:12: error: program `p` has no steps"]),
        (steps("      - update: { region: \"'EMEA'\" }\n"), vec!["programs.yaml:6:19: error: unknown custom contact trait `region`\n  help: did you mean `account.region`?"]),
        (steps("      - send: email\n        template: welcome\n      - exit: now\n"), vec!["programs.yaml:8:15: error: `exit` takes no value\n  help: write `- exit` or `- { id: stop, exit: true }`"]),
        ("programs:\n  - id: p\n    of: account\n    trigger: segment_entered('at_risk')\n    steps:\n      - send: email\n        template: welcome\n".to_string(), vec!["programs.yaml:6:9: error: a program of accounts cannot send messages\n  help: messages go to contacts: leave out `of: account` and choose them with `audience`, or use a `task`"]),
        ("programs:\n  - id: p\n    trigger: event('x')\n    steps: [ exit ]\n  - id: p\n    trigger: event('y')\n    steps: [ exit ]\n".to_string(), vec!["programs.yaml:5:9: error: program `p` is already defined at programs.yaml:2:9\n  help: program ids are unique across the workspace's files"]),
        (program("    trigger: event('')\n"), vec!["programs.yaml:4:20: error: the event name is empty"]),
        (program("    trigger: segment_entered('new_users') extra\n"), vec!["programs.yaml:4:43: error: unexpected text after the trigger\n  help: a program has one trigger"]),
        (program("    trigger: 42\n"), vec!["programs.yaml:4:14: error: expected a trigger for `trigger`, found a number\n  help: e.g. `trigger: segment_entered('at_risk')`, `trigger: renewal_date - 90d`"]),
    ]
}

/// Broken templates and guard rails: (templates file, workspace section, expected).
#[rustfmt::skip]
fn template_cases() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let ok_ws = "workspace:\n  time_zone: UTC\n";
    vec![
        ("templates:\n  a:\n    channel: emal\n    text: x\n", ok_ws, vec!["templates.yaml:3:14: error: unknown channel `emal`\n  help: did you mean `email`?"]),
        ("templates:\n  a:\n    channel: email\n    text: x\n", ok_ws, vec!["templates.yaml:3:5: error: missing key `subject` in template `a`\n  help: an email needs a subject"]),
        ("templates:\n  a:\n    channel: email\n    subject: Hi\n", ok_ws, vec!["templates.yaml:3:5: error: template `a` has no body: add `html` or `text`"]),
        ("templates:\n  a:\n    channel: sms\n    subject: Hi\n    text: x\n", ok_ws, vec!["templates.yaml:4:14: error: `subject` does not apply to an sms template\n  help: an sms template has `text`"]),
        ("templates:\n  a:\n    channel: email\n    subject: Hi\n    html: { file: templates/missing.html }\n", ok_ws, vec!["templates.yaml:5:19: error: template file `templates/missing.html` not found\n  help: template files live in the workspace folder's `templates/` folder"]),
        ("templates:\n  a:\n    channel: email\n    subject: Hi\n    html: { file: ../secrets.txt }\n", ok_ws, vec!["templates.yaml:5:19: error: `../secrets.txt` is outside the workspace folder\n  help: write a path relative to the workspace folder, e.g. `templates/welcome.html`"]),
        ("templates:\n  a:\n    channel: email\n    subject: Hi\n    html: { file: templates/welcom.html }\n", ok_ws, vec!["templates.yaml:5:19: error: template file `templates/welcom.html` not found\n  help: did you mean `templates/welcome.html`?"]),
        ("templates:\n  Welcome-Mail:\n    channel: email\n    subject: Hi\n    text: x\n", ok_ws, vec!["templates.yaml:2:3: error: `Welcome-Mail` is not a valid id\n  help: ids use lowercase letters, digits and `_` (at most 64), e.g. `welcome_mail`"]),
        ("templates:\n  a:\n    channel: email\n    subject: Hi\n    text: [1]\n", ok_ws, vec!["templates.yaml:5:11: error: expected text for `text`, found a list\n  help: write the text, or `text: { file: templates/x.html }`"]),
        ("", "workspace:\n  frequency_caps:\n    emails: { max: 3, per: 7d }\n", vec!["ws.yaml:3:5: error: unknown channel `emails`\n  help: did you mean `email`?"]),
        ("", "workspace:\n  frequency_caps:\n    email: { max: 0, per: 7d }\n", vec!["ws.yaml:3:19: error: `max` must be between 1 and 1000, found 0"]),
        ("", "workspace:\n  frequency_caps:\n    email: { max: 3 }\n", vec!["ws.yaml:3:12: error: missing key `per` in the `email` cap\n  help: the rolling window, e.g. `per: 7d`"]),
        ("", "workspace:\n  quiet_hours: { from: '25:00', to: '08:00' }\n", vec!["ws.yaml:2:24: error: `25:00` is not a time of day\n  help: write a time of day as `'HH:MM'` in quotes, e.g. `'21:00'`"]),
        ("", "workspace:\n  quiet_hours: { from: '08:00', to: '08:00' }\n", vec!["ws.yaml:2:37: error: `quiet_hours` start and end at the same time\n  help: give two different times"]),
        ("", "workspace:\n  on_cap: later\n", vec!["ws.yaml:2:11: error: `on_cap` must be `defer` or `skip`, found `later`\n  help: `defer` waits until the cap allows the send; `skip` goes on without it"]),
        ("", "workspace:\n  quiet_hour: { from: '21:00', to: '08:00' }\n", vec!["ws.yaml:2:3: error: unknown key `quiet_hour` in `workspace`\n  help: did you mean `quiet_hours`?"]),
    ]
}

#[test]
fn broken_templates_and_guard_rails_are_reported_exactly() {
    let mut failures = Vec::new();
    for (i, (templates, ws, want)) in template_cases().into_iter().enumerate() {
        let files = vec![
            SourceFile::new("ws.yaml", ws),
            SourceFile::new("templates.yaml", templates),
            SourceFile::new("templates/welcome.html", "<p>hi</p>"),
        ];
        let got: Vec<String> = match check_sources(&files) {
            Ok(_) => Vec::new(),
            Err(ds) => ds.iter().map(|d| d.to_string()).collect(),
        };
        if got != want {
            failures.push(format!("case {i}:\n{templates}{ws}\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn malformed_programs_are_reported_exactly() {
    let mut failures = Vec::new();
    for (i, (text, want)) in cases().into_iter().enumerate() {
        let got = problems(&text);
        if got != want {
            failures.push(format!("case {i}:\n{text}\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn odd_triggers_are_diagnostics_never_panics() {
    for trigger in [
        "\"'\"",
        "\"(\"",
        "\")\"",
        "\"segment_entered('x\"",
        "\"é(')\"",
        "\"renewal_date -\"",
        "\"renewal_date - 99999999999d\"",
        "\"account.\"",
        "\"x.y.z - 1d\"",
        "\"health_band_changed(to:)\"",
        "\"schedule('')\"",
        "\"event('a', 'b')\"",
        "\"renewal_date + 1d + 2d\"",
        "\"contact.renewal_date\"",
        "\"😀\"",
    ] {
        let got = problems(&program(&format!("    trigger: {trigger}\n")));
        assert_eq!(got.len(), 1, "{trigger}: {got:#?}");
        assert!(got[0].starts_with("programs.yaml:4:"), "{trigger}: {got:#?}");
    }
}

// --- templates as Liquid ----------------------------------------------------------------

/// The diagnostics of the base workspace with `templates` as its templates file and
/// `html` as `templates/welcome.html`.
fn template_problems(templates: &str, html: &str) -> Vec<String> {
    let files = vec![
        SourceFile::new("base.yaml", BASE),
        SourceFile::new("templates.yaml", templates),
        SourceFile::new("templates/welcome.html", html),
    ];
    match check_sources(&files) {
        Ok(_) => Vec::new(),
        Err(ds) => ds.iter().map(|d| d.to_string()).collect(),
    }
}

const ROOTS: &str = "the variables are `account`, `contact`, `insights`, `links`, `metrics`, `now`, `program`, `step`";

#[test]
fn a_misspelt_variable_in_an_inline_subject_points_into_the_yaml_scalar() {
    let templates =
        "templates:\n  hello:\n    channel: email\n    subject: \"Hi {{ acount.name }}\"\n    text: Hello\n";
    assert_eq!(
        template_problems(templates, ""),
        [format!("templates.yaml:4:21: error: unknown variable `acount`, did you mean `account`?\n  help: {ROOTS}")]
    );
}

#[test]
fn an_unknown_trait_in_a_template_file_points_at_its_line_and_column() {
    let templates =
        "templates:\n  hello:\n    channel: email\n    subject: Hi\n    html: { file: templates/welcome.html }\n";
    let got = template_problems(templates, "<p>Hi {{ contact.name }},</p>\n<p>Your region: {{ account.regoin }}</p>\n");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with(
            "templates/welcome.html:2:28: error: `account` has no field `regoin`, did you mean `region`?\n  help: the fields of `account` are `arr`, `employees`, `health`, "
        ),
        "{got:#?}"
    );
}

#[test]
fn an_unclosed_if_in_a_template_file_is_a_liquid_syntax_error() {
    let templates =
        "templates:\n  hello:\n    channel: email\n    subject: Hi\n    html: { file: templates/welcome.html }\n";
    let got = template_problems(templates, "<p>Hi</p>\n{% if contact.name %}\n<p>{{ contact.name }}</p>\n");
    assert_eq!(
        got,
        [
            "templates/welcome.html:2:1: error: Liquid syntax error: `{% if %}` is never closed\n  help: close it with `{% endif %}`"
        ]
    );
}

#[test]
fn an_unknown_milestone_is_reported_with_the_declared_ones() {
    let templates = "templates:\n  hello:\n    channel: email\n    subject: Hi\n    text: |\n      Hello,\n      {% if account.milestones.invited_teem.status == 'achieved' %}thanks{% endif %}\n";
    assert_eq!(
        template_problems(templates, ""),
        [
            "templates.yaml:7:32: error: `account.milestones` has no field `invited_teem`, did you mean `invited_team`?\n  help: the fields of `account.milestones` are `invited_team`"
        ]
    );
}

#[test]
fn metrics_are_not_declared_so_none_can_be_named() {
    let templates = "templates:\n  hello:\n    channel: in_app\n    text: 'You built {{ metrics.reports }} reports'\n";
    assert_eq!(
        template_problems(templates, ""),
        [
            "templates.yaml:4:33: error: `metrics` has no field `reports`\n  help: nothing is declared under `metrics` in the workspace"
        ]
    );
}

#[test]
fn every_problem_in_every_part_is_reported_once_even_in_a_shared_file() {
    let templates = "templates:\n  a:\n    channel: email\n    subject: \"{{ contact.nme }}\"\n    html: { file: templates/welcome.html }\n  b:\n    channel: email\n    subject: Hi\n    html: { file: templates/welcome.html }\n    text: \"{% bogus %}\"\n";
    let got = template_problems(templates, "{{ links.team }}");
    let messages: Vec<&str> = got.iter().map(|d| d.split('\n').next().unwrap_or_default()).collect();
    assert_eq!(
        messages,
        [
            "templates.yaml:4:26: error: `contact` has no field `nme`, did you mean `name`?",
            "templates.yaml:10:15: error: unknown tag `bogus`",
            "templates/welcome.html:1:10: error: `links` has no field `team`",
        ]
    );
}

#[test]
fn checked_templates_are_kept_parsed_and_render_with_survey_links() {
    let templates = "templates:
  nps:
    channel: email
    subject: 'How likely are you to recommend us, {{ contact.name }}?'
    html: { file: templates/welcome.html }
  nps_sms:
    channel: sms
    text: '0: {{ links.nps_0 }} 10: {{ links.nps_10 }} ({{ account.health.pillars.adoption }}, {{ account.region }})'
";
    let html = "<a href=\"{{ links.nps_0 }}\">0</a> <a href=\"{{ links.csat_5 }}\">5</a> {{ links.unsubscribe_url }}";
    let files = vec![
        SourceFile::new("base.yaml", BASE),
        SourceFile::new("templates.yaml", templates),
        SourceFile::new("templates/welcome.html", html),
    ];
    let ws = check_sources(&files).unwrap_or_else(|ds| panic!("{ds:#?}"));
    let schema = ws.context_schema();
    assert!(schema.milestones.contains("invited_team") && schema.pillars.contains("adoption"));
    assert!(schema.account_traits.contains("region") && schema.contact_traits.contains("nps_surveyed_at"));
    assert!(schema.links.contains("nps_10") && schema.links.contains("csat_1") && schema.metrics.is_empty());
    assert!(ws.parsed_template("nps").is_some());
    assert!(ws.parsed_template("nope").is_none());

    let account = cairn_content::AccountData {
        id: "acme".into(),
        traits: [("region".to_owned(), serde_json::json!("EMEA"))].into(),
        health: Some(cairn_content::HealthData {
            score: 50.0,
            band: "yellow".into(),
            pillars: [("adoption".to_owned(), 62.0)].into(),
        }),
        ..Default::default()
    };
    let contact =
        cairn_content::ContactData { id: "c1".into(), email: "ana@acme.example".into(), ..Default::default() };
    let now = "2026-03-02T09:00:00Z".parse().expect("instant");
    let context = cairn_content::RenderContext::new(account, contact, now)
        .link("nps_0", "https://t.example/n0")
        .link("nps_10", "https://t.example/n10");
    let sms = ws.parsed_template("nps_sms").expect("parsed");
    let message = cairn_content::render(sms, &context, &cairn_content::Limits::default())
        .expect("an SMS renders without a subject");
    assert_eq!(message.subject, "");
    assert_eq!(message.text, "0: https://t.example/n0 10: https://t.example/n10 (62, EMEA)");
}

#[test]
fn a_checked_workspace_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug>() {}
    shareable::<Workspace>();
}

// --- pools ------------------------------------------------------------------------------

#[test]
fn pools_are_loaded_with_lowercase_members() {
    let ws = check(&program("")).unwrap_or_else(|e| panic!("{e:#?}"));
    let ids: Vec<&str> = ws.pools().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["digital", "cs_leads"]);
    let digital = ws.pool("digital").expect("digital");
    assert_eq!(digital.name.as_deref(), Some("Digital CS team"));
    assert_eq!(digital.members, ["ana@acme.example", "bo@acme.example"]);
    assert_eq!(digital.location.to_string(), "base.yaml:7:3");
    assert_eq!(ws.pool("cs_leads").and_then(|p| p.name.clone()), None);
    assert!(ws.pool("sales").is_none());
    assert_eq!(ws.summary().pools, 2);
}

#[test]
fn a_task_for_an_undefined_pool_points_at_the_assignee() {
    let text = program("    steps:\n      - task: Call\n        assign: pool('digitl')\n");
    assert_eq!(
        problems(&text),
        ["programs.yaml:7:17: error: unknown pool `digitl`\n  help: did you mean `pool('digital')`?"]
    );
    let text = program("    steps:\n      - task: Call\n        assign: pool('sales')\n");
    assert_eq!(
        problems(&text),
        [
            "programs.yaml:7:17: error: unknown pool `sales`\n  help: the pools are `cs_leads`, `digital`; define `sales` under `pools:`"
        ]
    );
}

#[test]
fn a_task_for_a_pool_when_none_is_defined_says_how_to_define_one() {
    let pool_lines = ["pools:", "  digital:", "  cs_leads:"];
    let without_pools: String =
        BASE.lines().filter(|l| !pool_lines.iter().any(|p| l.starts_with(p))).map(|l| format!("{l}\n")).collect();
    let files = vec![
        SourceFile::new("base.yaml", without_pools),
        SourceFile::new("programs.yaml", program("    steps:\n      - task: Call\n        assign: pool('digital')\n")),
        SourceFile::new("templates.yaml", TEMPLATES),
        SourceFile::new("templates/welcome.html", "<p>hi</p>"),
    ];
    let got: Vec<String> = check_sources(&files).err().unwrap_or_default().iter().map(|d| d.to_string()).collect();
    assert_eq!(
        got,
        [
            "programs.yaml:7:17: error: unknown pool `digital`\n  help: no pools are defined: add one to a workspace file, e.g. `pools: { digital: { members: [ana@acme.example] } }`"
        ]
    );
}

/// Malformed pools: (the `pools:` section, expected diagnostics).
#[rustfmt::skip]
fn pool_cases() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("pools:\n  Digital-Team:\n    members: [ana@acme.example]\n", vec!["pools.yaml:2:3: error: `Digital-Team` is not a valid id\n  help: ids use lowercase letters, digits and `_` (at most 64), e.g. `digital_team`"]),
        ("pools:\n  team:\n    name: Team\n", vec!["pools.yaml:3:5: error: missing key `members` in pool `team`\n  help: e.g. `members: [ana@acme.example, bo@acme.example]`"]),
        ("pools:\n  team:\n    members: []\n", vec!["pools.yaml:3:14: error: pool `team` has no members\n  help: list who takes its tasks, e.g. `members: [ana@acme.example, bo@acme.example]`"]),
        ("pools:\n  team:\n    members: ana@acme.example\n", vec!["pools.yaml:3:14: error: expected a list of email addresses for `members`, found a string\n  help: e.g. `members: [ana@acme.example, bo@acme.example]`"]),
        ("pools:\n  team:\n    members: [ana@acme.example, ana.acme.example]\n", vec!["pools.yaml:3:33: error: `ana.acme.example` is not an email address (expected name@domain.tld)\n  help: e.g. `members: [ana@acme.example, bo@acme.example]`"]),
        ("pools:\n  team:\n    members: [ana@acme.example, Ana@Acme.Example]\n", vec!["pools.yaml:3:33: error: `ana@acme.example` is listed twice in pool `team`\n  help: it is first listed at pools.yaml:3:15; keep one"]),
        ("pools:\n  team:\n    members: [ana@acme.example, 42]\n", vec!["pools.yaml:3:33: error: expected an email address in `members`, found a number\n  help: e.g. `members: [ana@acme.example, bo@acme.example]`"]),
        ("pools:\n  team:\n    members: [ana@acme.example]\n    strategy: round_robin\n", vec!["pools.yaml:4:5: error: unknown key `strategy` in pool `team`\n  help: expected one of `name`, `members`"]),
        ("pools:\n  team:\n    mebers: [ana@acme.example]\n", vec!["pools.yaml:3:5: error: unknown key `mebers` in pool `team`\n  help: did you mean `members`?"]),
        ("pools:\n  team: [ana@acme.example]\n", vec!["pools.yaml:2:9: error: expected a mapping for pool `team`, found a list"]),
        ("pools: [team]\n", vec!["pools.yaml:1:8: error: expected a mapping of pool ids to pools for `pools`, found a list\n  help: e.g. `pools: { digital: { name: Digital CS team, members: [ana@acme.example] } }`"]),
        ("pools:\n  digital: { members: [x@acme.example] }\n", vec!["pools.yaml:2:3: error: pool `digital` is already defined at base.yaml:7:3\n  help: pool ids are unique across the workspace's files"]),
    ]
}

#[test]
fn malformed_pools_are_reported_exactly() {
    let mut failures = Vec::new();
    for (i, (pools, want)) in pool_cases().into_iter().enumerate() {
        let mut files = sources(&program(""));
        files.push(SourceFile::new("pools.yaml", pools));
        let got: Vec<String> = check_sources(&files).err().unwrap_or_default().iter().map(|d| d.to_string()).collect();
        if got != want {
            failures.push(format!("case {i}:\n{pools}\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
