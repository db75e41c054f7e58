//! cairn-content: what a message says. Liquid templates for the subject, preheader, HTML
//! and text of a message, checked against the shape of the render context at `cairn
//! check` time and rendered per recipient, plus the data-driven insights templates quote
//! (an account's [`benchmark`] among its peers, a feature's [`leaderboard`] of users).
//!
//! The way through the crate:
//!
//! 1. [`MessageTemplate::parse`] parses each part with the `liquid` crate (standard tags
//!    and filters, minus `include`/`render`), every error a [`ContentError`] pointing at
//!    file:line:column through the part's [`Origin`].
//! 2. [`check_variables`] reports references to things no context can hold
//!    (`{{ acount.name }}`, `{{ account.nme }}`, an undeclared trait or milestone) against a
//!    [`ContextSchema`] built from the workspace, each with its position and a
//!    did-you-mean.
//! 3. [`render`] renders a [`ParsedTemplate`] with a [`RenderContext`] within [`Limits`]:
//!    data HTML-escaped in the HTML part before Liquid sees it, and never evaluated as
//!    Liquid; anything undefined is an error ([`RenderError::Undefined`]) rather than a
//!    blank, so the caller dead-letters the send with the reason instead of mailing a
//!    broken email — except a value the template only pipes into `default` or tests in
//!    an `if`, which is empty when the recipient lacks it, so the fallback applies.
//!
//! The context's shape is documented on the [`context`] module.
//!
//! Owns: template syntax, the context shape, escaping, render limits, insight maths. Must
//! not touch: the store, channels (SMTP, in-app), scheduling, signing links (the caller
//! passes signed URLs in), or the workspace YAML (the caller passes sources and origins).
//! Pure: no I/O, no async, no clock — except `std::time::Instant` as the render's safety
//! net against runaway templates (see `guard.rs`); "now" is part of the context.
//!
//! Templates use the `liquid` crate with `include`/`render` removed and every tag, block and
//! filter wrapped to enforce a size limit and a render-time budget. Each part keeps where it
//! starts in its file so syntax errors point at file:line:col. `check_variables` finds
//! references to names that can never exist (did-you-mean); `render` fails with `Undefined`
//! rather than leave a blank. In the HTML part every data value is HTML-escaped before
//! Liquid sees it, so Liquid or markup inside customer data is inert text; the HTML part's
//! escaped copy is made only of what it reads, and only where escaping changes something.
//! `render_via_json` in the tests (the old path through `to_json` and serde) holds the direct
//! path (`globals.rs`) to the same messages and errors. Insights are pure functions:
//! `benchmark` (percentile among peers; a `Distribution` sorts a peer group once so each
//! member's benchmark against the others is a binary search) and `leaderboard` (top and
//! bottom users); which accounts are peers is the caller's choice (the workspace declares it).

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

pub mod context;
mod globals;
mod guard;
mod insights;
mod reads;
mod render;
mod scan;
mod source;
mod suggest;
mod template;

pub use context::{AccountData, ContactData, ContextSchema, HealthData, MilestoneData, RenderContext, check_variables};
pub use insights::{
    Benchmark, Distribution, Entry, Leaderboard, SizeBand, UserCount, benchmark, leaderboard, size_band,
};
pub use render::{Limits, RenderError, RenderedMessage, escape_html, render};
pub use scan::MAX_NESTING;
pub use source::{ContentError, Origin, Part};
pub use template::{MAX_RANGE_LEN, MessageTemplate, ParsedTemplate, PartSource};
