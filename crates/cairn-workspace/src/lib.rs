//! cairn-workspace: the workspace definitions as code.
//!
//! A workspace is a folder of YAML files (`*.yaml`, `*.yml`, read in name order, not
//! recursively) holding the custom traits, segments, the customer journey, health
//! scoring, programs, message templates, the pools of people tasks go to, the guard
//! rails of sending, the staffing model (a CSM's capacity and cost, the touch model) and
//! the insights messages quote (named account metrics, benchmarks against peers,
//! leaderboards of an account's people), beside a `templates/` folder of template bodies. [`check_sources`]
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
//!
//! Program rules (`if`, `wait until`, `goal`, `exit`) are compiled with a program scope,
//! which is what makes `opened('step')`, `clicked(previous)` and `goal()` nameable there and
//! nowhere else. Template parts are parsed with `cairn-content` and their variables checked
//! against a `ContextSchema` built from the workspace (custom traits, milestones, pillars, the
//! standard links and the one-click survey answers `nps_0`…`nps_10`, `csat_1`…`csat_5`); the
//! checked `Workspace` keeps each `ParsedTemplate` (`parsed_template(id)`) so sending never
//! re-parses. A task's `pool('x')` must name a pool defined under `pools:`. `insights:` rules
//! are numbers over the account (metrics, benchmarks) or the contact (leaderboards), compiled
//! into the same aggregate table so the engine maintains what they read; a benchmark's
//! `peers` names an account segment or trait; the ids become what templates may read under
//! `metrics.` and `insights.`. Rule and Liquid
//! errors are mapped from their span into the YAML scalar, or into the template file.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

mod check;
mod diagnostic;
mod folder;
mod insights;
mod model;
mod order;
mod programs;
mod staffing;
mod suggest;
mod yaml;

#[cfg(test)]
mod insights_tests;
#[cfg(test)]
mod program_tests;
#[cfg(test)]
mod staffing_tests;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use diagnostic::{Diagnostic, Location};
pub use folder::MAX_TEMPLATE_BYTES;
pub use insights::{BenchmarkDef, Insights, LeaderboardDef, Metric, Peers};
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
pub use staffing::{Csm, Staffing, Touch};
pub use yaml::{MAX_YAML_BYTES, Node, Value};

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
/// folder, or a file that is not UTF-8, is a diagnostic too; so is a template file that
/// resolves outside the folder (a link) or is too large, at the template naming it.
pub fn load_dir(path: &Path) -> Result<Workspace, Vec<Diagnostic>> {
    let folder = folder::read(path)?;
    check::check_folder(&folder.files, &folder.refused, None, cairn_rules::compile)
}

/// The name diagnostics give a probe milestone's rule (`--rule:1:8: error: …`).
pub const PROBE_FILE: &str = "--rule";

/// A milestone tested beside the workspace's own without being written into it: a rule
/// (the `when` of a milestone) and its deadline from the journey's anchor. `cairn report
/// hypotheses --rule … --within …` checks one with [`Workspace::with_probe`] and lets the
/// engine decide it for every account as it decides any milestone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeMilestone {
    /// The condition, in the rule language.
    pub rule: String,
    /// The deadline from the anchor.
    pub within: jiff::SignedDuration,
}

/// A deadline as a milestone's `within` is written (`12h`, `14d`, `2w`); the error says
/// what is wrong.
pub fn parse_within(text: &str) -> Result<jiff::SignedDuration, String> {
    check::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is {e}: write a whole number of hours, days or weeks above zero (`12h`, `14d`, `2w`)")
    })
}

impl Workspace {
    /// This workspace with `probe` added to its journey's last stage, checked again from
    /// the same files; returns it and the probe's milestone id. Errors in the rule are
    /// diagnostics at `--rule:line:col` ([`PROBE_FILE`]).
    pub fn with_probe(&self, probe: &ProbeMilestone) -> Result<(Workspace, String), Vec<Diagnostic>> {
        let ws = check::check_folder(&self.sources, &[], Some(probe), cairn_rules::compile)?;
        let id = ws
            .journey()
            .and_then(|j| j.stages.last())
            .and_then(|s| s.milestones.last())
            .map(|m| m.id.to_string())
            .unwrap_or_default();
        Ok((ws, id))
    }
}

/// Whether a file holds definitions (`*.yaml`, `*.yml`) rather than a template body.
pub(crate) fn is_definition_file(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|x| x == "yaml" || x == "yml")
}

/// The folder template bodies are read from, inside the workspace folder.
pub const TEMPLATE_FOLDER: &str = "templates";

/// The workspace files of a folder: its `*.yaml` / `*.yml` files sorted by name, then the
/// files of its `templates/` folder (recursively, sorted by path), which templates name
/// with `file:`. Every file must resolve inside the folder (no link out of it) and be at
/// most [`MAX_YAML_BYTES`] (definitions) or [`MAX_TEMPLATE_BYTES`] (template bodies).
pub fn read_dir(path: &Path) -> Result<Vec<SourceFile>, Vec<Diagnostic>> {
    let folder = folder::read(path)?;
    if folder.refused.is_empty() {
        Ok(folder.files)
    } else {
        Err(folder.refused.into_iter().map(|r| Diagnostic::whole(r.name, r.message, Some(r.help))).collect())
    }
}
