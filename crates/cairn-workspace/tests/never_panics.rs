//! No workspace text makes the checker panic, overflow the stack or run unbounded:
//! arbitrary text as a workspace file, YAML-like fragments and mutated versions of the
//! example workspace's files.

use cairn_workspace::{SourceFile, check_sources};
use proptest::prelude::*;

/// The example workspace's definition files, with the template bodies `templates.yaml`
/// names.
const EXAMPLES: &[(&str, &str)] = &[
    ("workspace.yaml", include_str!("../../../examples/workspace/workspace.yaml")),
    ("segments.yaml", include_str!("../../../examples/workspace/segments.yaml")),
    ("journey.yaml", include_str!("../../../examples/workspace/journey.yaml")),
    ("health.yaml", include_str!("../../../examples/workspace/health.yaml")),
    ("programs.yaml", include_str!("../../../examples/workspace/programs.yaml")),
    ("templates.yaml", include_str!("../../../examples/workspace/templates.yaml")),
];

const BODIES: &[(&str, &str)] = &[
    ("templates/welcome.html", include_str!("../../../examples/workspace/templates/welcome.html")),
    ("templates/welcome.txt", include_str!("../../../examples/workspace/templates/welcome.txt")),
    ("templates/invite_team.html", include_str!("../../../examples/workspace/templates/invite_team.html")),
    ("templates/renewal_recap.html", include_str!("../../../examples/workspace/templates/renewal_recap.html")),
    ("templates/nps.html", include_str!("../../../examples/workspace/templates/nps.html")),
];

fn fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "\n",
        "  ",
        "- ",
        ": ",
        "segments:",
        "journey:",
        "health:",
        "programs:",
        "templates:",
        "workspace:",
        "traits:",
        "pools:",
        "id: x",
        "of: account",
        "where: ",
        "within: 14é",
        "within: 14d",
        "when: ",
        "stages:",
        "milestones:",
        "pillars:",
        "measures:",
        "weight: 0",
        "score:",
        "bands:",
        "trigger: ",
        "steps:",
        "send: email",
        "wait: 3d",
        "template: ",
        "file: ../x",
        "file: templates/welcome.html",
        "{{ contact.name }}",
        "{% if %}",
        "'",
        "\"",
        "[",
        "]",
        "{",
        "}",
        "&a",
        "*a",
        "<<: *a",
        "!!str",
        "---",
        "#",
        "|",
        ">",
        "\t",
        "é",
        "count('x', 7d) >= 1",
        "(",
        ")",
        "segment('smb')",
        "~",
        "null",
        "1e400",
        "-1",
        "0x1F",
    ])
}

/// `source` with characters `at..at+len` (clamped) replaced by `insert`.
fn mutate(source: &str, at: usize, len: usize, insert: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    chars[..at].iter().copied().chain(insert.chars()).chain(chars[end..].iter().copied()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_as_a_workspace_file_never_panics(text in any::<String>()) {
        let _ = check_sources(&[SourceFile::new("ws.yaml", text)]);
    }

    #[test]
    fn yaml_like_text_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
        let _ = check_sources(&[SourceFile::new("ws.yaml", parts.concat())]);
    }

    #[test]
    fn mutated_example_files_never_panic(
        (name, text) in prop::sample::select(EXAMPLES),
        edits in prop::collection::vec((any::<usize>(), 0usize..8, prop::collection::vec(fragment(), 0..3)), 1..4),
    ) {
        let mut text = text.to_owned();
        for (at, len, insert) in edits {
            text = mutate(&text, at, len, &insert.concat());
        }
        let mut files = vec![SourceFile::new(name, text)];
        files.extend(BODIES.iter().map(|(name, body)| SourceFile::new(*name, *body)));
        let _ = check_sources(&files);
    }

    #[test]
    fn deeply_nested_yaml_never_overflows(
        (open, close) in prop::sample::select(vec![("[", "]"), ("{a: ", "}"), ("- ", ""), ("&a [", "]")]),
        depth in prop_oneof![1usize..40, 40usize..400],
    ) {
        let text = format!("segments: {}1{}\n", open.repeat(depth), close.repeat(depth));
        let _ = check_sources(&[SourceFile::new("ws.yaml", text)]);
    }
}
