//! cairn-workspace: the workspace definitions as code.
//!
//! A workspace is a folder of YAML files (`*.yaml`, `*.yml`, read in name order, not
//! recursively) holding the custom traits, segments, the customer journey, health
//! scoring, programs, message templates, the pools of people tasks go to and the guard
//! rails of sending, beside a `templates/` folder of template bodies. [`check_sources`]
//! parses them with positions (serde-saphyr), checks their shape, compiles every rule with
//! `cairn_rules::compile` against a schema of every declared name, parses every template
//! part as Liquid and checks its variables with `cairn_content` against the context this
//! workspace can give, orders the definitions by what they read and rejects cycles. It
//! returns a typed [`Workspace`] — a different type from the YAML, buildable only this way
//! — or every problem found across all files as a [`Diagnostic`] with file, line and
//! column.
//! The YAML shape is documented in this crate's `README.md`.
//!
//! Owns: the YAML shape, its checks and messages, the checked definition types, health
//! curves' scoring maths and the evaluation order (Liquid itself and the context's shape
//! belong to `cairn-content`). Must not touch: a database, HTTP, the
//! clock or evaluation state — it describes what to compute, the engine computes it. The
//! only I/O is [`load_dir`] / [`read_dir`], a thin reader over [`check_sources`].

mod check;
mod diagnostic;
mod model;
mod order;
mod programs;
mod suggest;
mod yaml;

#[cfg(test)]
mod program_tests;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use diagnostic::{Diagnostic, Location};
pub use model::{
    BUILTIN_ACCOUNT_TRAITS, BUILTIN_CONTACT_TRAITS, Band, Curve, CurveBand, CustomTraits, Health, HealthBands,
    HealthModel, Id, IdError, Journey, Measure, Milestone, Pillar, Segment, Stage, Summary, TraitType, Workspace,
};
pub use order::{Cycle, Definition, evaluation_order};
pub use programs::{
    Assignee, Channel, DateTrigger, ExitStep, FrequencyCap, Goal, Guardrails, IfStep, OnCap, Pool, PoolStrategy,
    Program, QuietHours, Reentry, Schedule, SendStep, Step, TaskStep, Template, TemplateText, TextOrigin, TraitUpdate,
    Transition, Trigger, UpdateStep, Variant, Wait, WaitStep,
};
pub use yaml::{Node, Value};

/// One workspace file: its name (used in diagnostics) and its text. Files named
/// `*.yaml` / `*.yml` hold definitions; any other file is a template body that a
/// template's `file:` names by its path relative to the definition file's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The name diagnostics show (`segments.yaml`, or a path).
    pub name: String,
    /// The YAML text.
    pub text: String,
}

impl SourceFile {
    /// A file from a name and its text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile { name: name.into(), text: text.into() }
    }
}

/// Checks a workspace's files (in the order given; template bodies among them) into a
/// [`Workspace`], or returns every problem found, sorted by file and position. Pure: no
/// I/O.
pub fn check_sources(files: &[SourceFile]) -> Result<Workspace, Vec<Diagnostic>> {
    check::check_with(files, cairn_rules::compile)
}

/// Reads the `*.yaml` and `*.yml` files of a folder (sorted by name, not recursive) and
/// checks them. Diagnostics name files as `DIR/NAME`. A missing, unreadable or empty
/// folder, or a file that is not UTF-8, is a diagnostic too.
pub fn load_dir(path: &Path) -> Result<Workspace, Vec<Diagnostic>> {
    check_sources(&read_dir(path)?)
}

/// Whether a file holds definitions (`*.yaml`, `*.yml`) rather than a template body.
pub(crate) fn is_definition_file(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|x| x == "yaml" || x == "yml")
}

/// The folder template bodies are read from, inside the workspace folder.
pub const TEMPLATE_FOLDER: &str = "templates";

/// The workspace files of a folder: its `*.yaml` / `*.yml` files sorted by name, then the
/// files of its `templates/` folder (recursively, sorted by path), which templates name
/// with `file:`.
pub fn read_dir(path: &Path) -> Result<Vec<SourceFile>, Vec<Diagnostic>> {
    let folder = path.display().to_string();
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(vec![Diagnostic::whole(folder, "workspace folder not found", None)]);
        }
        Err(e) => {
            return Err(vec![Diagnostic::whole(folder, format!("cannot read the workspace folder: {e}"), None)]);
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        let help = Some("put segments, journey and health definitions in `*.yaml` files there".to_string());
        return Err(vec![Diagnostic::whole(folder, "no workspace files (*.yaml, *.yml) in the folder", help)]);
    }
    let mut bodies = Vec::new();
    template_files(&path.join(TEMPLATE_FOLDER), 0, &mut bodies);
    bodies.sort();
    paths.extend(bodies);
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        let name = p.display().to_string();
        match std::fs::read(&p) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => files.push(SourceFile { name, text }),
                Err(_) => {
                    problems.push(Diagnostic::whole(name, "not UTF-8 text", Some("save the file as UTF-8".into())))
                }
            },
            Err(e) => problems.push(Diagnostic::whole(name, format!("cannot read the file: {e}"), None)),
        }
    }
    if problems.is_empty() { Ok(files) } else { Err(problems) }
}

/// Every file under `dir` (a few levels deep, hidden entries skipped), or nothing if it
/// does not exist.
fn template_files(dir: &Path, depth: usize, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let p = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() && depth < 4 {
            template_files(&p, depth + 1, out);
        } else if p.is_file() && !is_definition_file(&p.display().to_string()) {
            out.push(p);
        }
    }
}
