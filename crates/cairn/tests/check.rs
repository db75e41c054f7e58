//! `cairn check DIR` as a workspace author meets it: the real binary on a temporary
//! folder of YAML files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    fn with(files: &[(&str, &str)]) -> Folder {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            let path = dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create folder");
            }
            std::fs::write(path, text).expect("write file");
        }
        Folder { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn check(&self, extra: &[&str]) -> Output {
        check(self.dir.path(), extra)
    }
}

fn check(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("check")
        .arg(dir)
        .args(extra)
        .env("CAIRN_LOG", "warn")
        .output()
        .expect("cairn runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const SEGMENTS: &str = "segments:\n  - id: smb\n    of: account\n    where: arr < 20000 and plan in ('starter', 'team')\n  - id: power_admins\n    of: contact\n    where: role = 'admin' and count('report_created', 30d) >= 10\n";
const JOURNEY: &str = "journey:\n  stages:\n    - id: onboarding\n      until: milestone('first_value')\n      milestones:\n        - id: first_value\n          when: count('dashboard_shared', since_anchor) >= 1\n          within: 30d\n          value: true\n    - id: adoption\n";

#[test]
fn a_valid_workspace_exits_0_with_a_summary_of_what_it_holds() {
    let ws = Folder::with(&[("segments.yaml", SEGMENTS), ("journey.yaml", JOURNEY)]);
    let out = ws.check(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok: 2 segments, 2 stages, 1 milestone, 0 pillars (0 measures), 0 segment health models, 0 programs, 0 templates, 0 pools, 2 aggregates\n"
    );
}

#[test]
fn the_example_workspace_passes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace");
    let out = check(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .starts_with("ok: 26 segments, 4 stages, 12 milestones, 4 pillars (15 measures), 1 segment health model, 5 programs, 10 templates, 2 pools, "),
        "{stdout}"
    );
}

/// Three problems in two files: a misspelt key, an unknown subject and a rule error.
fn broken() -> Folder {
    Folder::with(&[
        ("a.yaml", "segments:\n  - id: smb\n    of: acount\n    where: arr < 20000\n"),
        (
            "b.yaml",
            "journey:\n  stages:\n    - id: onboarding\n      milestones:\n        - id: invited\n          wehn: count('user_invited', since_anchor) >= 5\n        - id: shared\n          when: cnt('dashboard_shared', since_anchor) >= 1\n",
        ),
    ])
}

#[test]
fn every_problem_in_every_file_is_printed_with_file_line_and_column() {
    let ws = broken();
    let out = ws.check(&[]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let expected = [
        format!("{}:3:9: error: `of` must be `account` or `contact`, found `acount`", ws.path("a.yaml")),
        "  help: did you mean `account`?".to_string(),
        format!("{}:6:11: error: unknown key `wehn` in a milestone", ws.path("b.yaml")),
        "  help: did you mean `when`?".to_string(),
        format!("{}:8:17: error: unknown function `cnt`", ws.path("b.yaml")),
        "3 errors in 2 files".to_string(),
    ];
    for line in &expected {
        assert!(stderr.lines().any(|l| l == line), "missing {line:?} in:\n{stderr}");
    }
    // The source line and a caret under the column.
    assert!(stderr.contains(" 3 |     of: acount\n   |         ^\n"), "{stderr}");
    assert!(stderr.ends_with("3 errors in 2 files\n"), "{stderr}");
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn json_lists_the_diagnostics() {
    let ws = broken();
    let out = ws.check(&["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["ok"], false);
    assert_eq!(report["summary"], "3 errors in 2 files");
    let first = &report["diagnostics"][0];
    assert_eq!(first["file"], ws.path("a.yaml"));
    assert_eq!((first["line"].as_u64(), first["column"].as_u64()), (Some(3), Some(9)));
    assert_eq!(first["message"], "`of` must be `account` or `contact`, found `acount`");
    assert_eq!(first["help"], "did you mean `account`?");
    assert_eq!(report["diagnostics"].as_array().map(Vec::len), Some(3));
}

#[test]
fn json_summarises_a_valid_workspace() {
    let program = "programs:\n  - id: welcome\n    trigger: segment_entered('power_admins')\n    topic: onboarding\n    steps:\n      - send: email\n        template: welcome\n";
    let templates =
        "templates:\n  welcome:\n    channel: email\n    subject: Welcome\n    text: Hi {{ contact.name }}\n";
    let ws = Folder::with(&[("segments.yaml", SEGMENTS), ("programs.yaml", program), ("templates.yaml", templates)]);
    let out = ws.check(&["--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["ok"], true);
    assert_eq!(report["summary"]["segments"], 2);
    assert_eq!(report["summary"]["aggregates"], 1);
    assert_eq!(report["summary"]["programs"], 1);
    assert_eq!(report["summary"]["templates"], 1);
}

#[test]
fn a_missing_folder_is_an_error() {
    let ws = Folder::with(&[]);
    let out = check(&ws.dir.path().join("nope"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error: workspace folder not found"), "{}", text(&out.stderr));
}

/// A welcome email whose subject, HTML file and text hold one mistake each, and a task for
/// a pool no one defined.
fn broken_templates() -> Folder {
    let templates = "templates:\n  welcome:\n    channel: email\n    subject: \"Welcome, {{ acount.name }}\"\n    html: { file: templates/welcome.html }\n    text: { file: templates/welcome.txt }\n";
    let html = "<h1>Welcome</h1>\n<p>Your region: {{ account.regoin }}</p>\n";
    let text = "Welcome!\n{% if account.milestones.first_valu.status == 'achieved' %}\nYou are all set.\n";
    let program = "programs:\n  - id: welcome\n    trigger: segment_entered('power_admins')\n    topic: onboarding\n    steps:\n      - send: email\n        template: welcome\n      - task: Call them\n        assign: pool('digitl')\n";
    let traits = "traits:\n  account: { region: string }\npools:\n  digital: { name: Digital CS team, members: [ana@acme.example] }\n";
    Folder::with(&[
        ("segments.yaml", SEGMENTS),
        ("journey.yaml", JOURNEY),
        ("programs.yaml", program),
        ("templates.yaml", templates),
        ("traits.yaml", traits),
        ("templates/welcome.html", html),
        ("templates/welcome.txt", text),
    ])
}

#[test]
fn template_mistakes_point_into_the_yaml_and_the_template_files() {
    let ws = broken_templates();
    let out = ws.check(&[]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let expected = [
        format!("{}:9:17: error: unknown pool `digitl`", ws.path("programs.yaml")),
        "  help: did you mean `pool('digital')`?".to_string(),
        format!("{}:4:27: error: unknown variable `acount`, did you mean `account`?", ws.path("templates.yaml")),
        format!(
            "{}:2:28: error: `account` has no field `regoin`, did you mean `region`?",
            ws.path("templates/welcome.html")
        ),
        format!("{}:2:1: error: Liquid syntax error: `{{% if %}}` is never closed", ws.path("templates/welcome.txt")),
        "  help: close it with `{% endif %}`".to_string(),
        "4 errors in 4 files".to_string(),
    ];
    for line in &expected {
        assert!(stderr.lines().any(|l| l == line), "missing {line:?} in:\n{stderr}");
    }
    // The caret under the misspelt name, in the template file's own line.
    assert!(
        stderr.contains(" 2 | <p>Your region: {{ account.regoin }}</p>\n   |                            ^\n"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_milestone_in_a_template_is_an_error() {
    let templates = "templates:\n  nudge:\n    channel: in_app\n    text: |\n      {% if account.milestones.first_valu.status == 'pending' %}Share a dashboard today{% endif %}\n";
    let ws = Folder::with(&[("journey.yaml", JOURNEY), ("templates.yaml", templates)]);
    let out = ws.check(&["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let first = &report["diagnostics"][0];
    assert_eq!(first["file"], ws.path("templates.yaml"));
    assert_eq!((first["line"].as_u64(), first["column"].as_u64()), (Some(5), Some(32)));
    assert_eq!(first["message"], "`account.milestones` has no field `first_valu`, did you mean `first_value`?");
    assert_eq!(first["help"], "the fields of `account.milestones` are `first_value`");
    assert_eq!(report["diagnostics"].as_array().map(Vec::len), Some(1));
}
