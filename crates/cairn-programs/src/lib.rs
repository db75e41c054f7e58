//! cairn-programs: the program runner.
//!
//! Programs (defined in the workspace) turn what the engine concludes into touches: a
//! trigger (an engine transition, a product event, a schedule, a date) enrolls a subject
//! that passes the audience rule and the re-entry policy; a deterministic share is held
//! out as a control group; the steps then run from the store's due-step queue (claimed
//! with a lease, recorded once in the send ledger together with what follows), through
//! the guard rails (consent, suppression, frequency caps with priorities, quiet hours),
//! rendered with Liquid and delivered on their channel. Engagement comes back as events.
//!
//! Messages quote the workspace's insights (`insights.rs`): named account metrics, the
//! account's benchmarks among its peers (peer groups gathered once per pass) and
//! leaderboards of its own people.
//!
//! Owns: triggers, enrollment, step order, guard-rail decisions, rendering contexts,
//! delivery orchestration, engagement recording. Must not touch: HTTP (the server calls
//! [`engage::record`] and the [`secret::link_signer`]), rule evaluation internals (the
//! engine evaluates rules), template parsing (the workspace checks templates).

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

mod context;
pub mod dry_run;
pub mod engage;
mod error;
mod insights;
pub mod plan;
pub mod preview;
mod runner;
pub mod secret;

pub use dry_run::{DryRun, DryRunError, DryRunOptions, dry_run};
pub use engage::{EngagementInput, EngagementKind};
pub use error::ProgramError;
pub use insights::PeerGroups;
pub use preview::{PREVIEW_SECRET, Preview, parse_as_of, parse_plausible_as_of, preview, trigger_text};
pub use runner::{PassReport, Runner, RunnerConfig, html_to_text, text_to_html};
pub use secret::link_signer;
