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
            .starts_with("ok: 26 segments, 4 stages, 12 milestones, 4 pillars (15 measures), 1 segment health model, 8 programs, 17 templates, 2 pools, "),
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

/// Exit code 1 with every `expected` line in stderr: a clean refusal, not a crash.
fn refuses(out: &Output, expected: &[String]) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "status {:?}, stderr:\n{stderr}", out.status);
    for line in expected {
        assert!(stderr.lines().any(|l| l == line), "missing {line:?} in:\n{stderr}");
    }
    stderr
}

#[test]
fn a_deadline_ending_in_a_wide_character_is_an_error_not_a_crash() {
    let journey = "journey:\n  stages:\n    - id: onboarding\n      milestones:\n        - id: first_value\n          when: count('dashboard_shared', since_anchor) >= 1\n          within: 14é\n";
    let ws = Folder::with(&[("journey.yaml", journey)]);
    refuses(
        &ws.check(&[]),
        &[
            format!("{}:7:19: error: `14é` is not a duration", ws.path("journey.yaml")),
            "  help: write a whole number of hours, days or weeks: `12h`, `14d`, `2w`".to_string(),
        ],
    );
}

fn deep_template(depth: usize) -> Folder {
    let templates =
        "templates:\n  deep:\n    channel: email\n    subject: Hi\n    text: { file: templates/deep.txt }\n";
    let body = format!("Hi\n{}x{}", "{% if contact.name %}".repeat(depth), "{% endif %}".repeat(depth));
    Folder::with(&[("segments.yaml", SEGMENTS), ("templates.yaml", templates), ("templates/deep.txt", &body)])
}

#[test]
fn templates_nested_thousands_deep_are_refused_not_a_stack_overflow() {
    for depth in [1_500, 5_000] {
        let ws = deep_template(depth);
        refuses(
            &ws.check(&[]),
            &[
                format!(
                    "{}:2:{}: error: templates may nest blocks at most {} deep",
                    ws.path("templates/deep.txt"),
                    1 + 50 * 21,
                    50
                ),
                "1 error in 1 file".to_string(),
            ],
        );
    }
    let ws = deep_template(50);
    let out = ws.check(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

#[test]
fn a_template_file_linking_out_of_the_folder_is_refused_where_it_is_named() {
    let outside = tempfile::tempdir().expect("temp dir");
    let secret = outside.path().join("passwd");
    std::fs::write(&secret, "root:x:0:0:root:/root:/bin/bash\n").expect("write");
    let templates = "templates:\n  welcome:\n    channel: email\n    subject: Hi\n    html: { file: templates/welcome.html }\n    text: Hi\n";
    let ws = Folder::with(&[("segments.yaml", SEGMENTS), ("templates.yaml", templates)]);
    std::fs::create_dir_all(ws.dir.path().join("templates")).expect("folder");
    std::os::unix::fs::symlink(&secret, ws.dir.path().join("templates/welcome.html")).expect("link");
    let real = secret.canonicalize().expect("canonical");
    let stderr = refuses(
        &ws.check(&[]),
        &[
            format!(
                "{}:5:19: error: `templates/welcome.html`: the template file is a link to `{}`, outside the workspace folder",
                ws.path("templates.yaml"),
                real.display()
            ),
            "  help: template files must be inside the workspace folder: copy the file into it instead of linking"
                .to_string(),
            "1 error in 1 file".to_string(),
        ],
    );
    assert!(!stderr.contains("root:x"), "{stderr}");
    // A link that stays inside the folder is fine.
    std::fs::remove_file(ws.dir.path().join("templates/welcome.html")).expect("unlink");
    std::fs::write(ws.dir.path().join("templates/shared.html"), "<p>Hi</p>").expect("write");
    std::os::unix::fs::symlink(
        ws.dir.path().join("templates/shared.html"),
        ws.dir.path().join("templates/welcome.html"),
    )
    .expect("link");
    let out = ws.check(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

#[test]
fn template_and_yaml_files_have_a_size_limit_stated_in_the_error() {
    let templates = "templates:\n  big:\n    channel: email\n    subject: Hi\n    text: { file: templates/big.txt }\n";
    let big = "x".repeat(300 * 1024);
    let ws = Folder::with(&[("segments.yaml", SEGMENTS), ("templates.yaml", templates), ("templates/big.txt", &big)]);
    refuses(
        &ws.check(&[]),
        &[format!(
            "{}:5:19: error: `templates/big.txt`: the template file is 300 KiB; a template file may be at most 256 KiB",
            ws.path("templates.yaml")
        )],
    );

    let huge = format!("segments:\n{}", "  # padding to make the file too large to read\n".repeat(50_000));
    let ws = Folder::with(&[("huge.yaml", &huge), ("segments.yaml", SEGMENTS)]);
    refuses(
        &ws.check(&[]),
        &[
            format!(
                "{}: error: the workspace file is 2295 KiB; a workspace file may be at most 1024 KiB",
                ws.path("huge.yaml")
            ),
            "  help: split the definitions over several `*.yaml` files in the folder".to_string(),
            "1 error in 1 file".to_string(),
        ],
    );
}

#[test]
fn a_file_with_too_many_values_says_which_limit_and_what_to_do() {
    let many = format!("segments: [{}]\n", "1,".repeat(150_000));
    let ws = Folder::with(&[("many.yaml", &many)]);
    let stderr = refuses(
        &ws.check(&[]),
        &["  help: split the definitions over several `*.yaml` files in the folder".to_string()],
    );
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{}:1:", ws.path("many.yaml")))
            && first.ends_with("error: the file holds more than 100000 values (keys, items and scalars)"),
        "{stderr}"
    );
    let deep = format!("segments: {}1{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let ws = Folder::with(&[("deep.yaml", &deep)]);
    refuses(
        &ws.check(&[]),
        &[
            format!("{}:1:43: error: lists and mappings nest more than 32 levels deep here", ws.path("deep.yaml")),
            "  help: workspace definitions need only a few levels: check the brackets and the indentation".to_string(),
        ],
    );
    let indented: String = (0..40).map(|depth| format!("{}- \n", "  ".repeat(depth))).collect();
    let ws = Folder::with(&[("deep.yaml", &format!("segments:\n{indented}"))]);
    let stderr = refuses(&ws.check(&[]), &[]);
    assert!(stderr.contains("error: lists and mappings nest more than 32 levels deep here"), "{stderr}");
}

#[test]
fn a_yaml_syntax_error_comes_first_without_the_follow_on_errors_it_causes() {
    let uses = "segments:\n  - id: big_smb\n    of: account\n    where: segment('smb') and arr > 10000\n";
    let broken = "segments:\n  - id: smb\n    of: account\n    where: arr < 20000\n  - [\n";
    let ws = Folder::with(&[("a.yaml", uses), ("z.yaml", broken)]);
    let stderr = refuses(&ws.check(&[]), &["1 error in 1 file".to_string()]);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("{}:", ws.path("z.yaml"))) && first.contains("error: invalid YAML"), "{stderr}");
    assert!(!stderr.contains("smb`"), "a follow-on error: {stderr}");
}
