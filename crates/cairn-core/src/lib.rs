//! cairn-core: the domain of cairn as plain data and pure functions.
//!
//! It owns the typed values (ids, emails, money, dates), the clock abstraction, the
//! validation of Segment-spec tracking messages and the parsing of CSV import rows.
//! It knows nothing of tokio, sqlx, HTTP or the file system: every function here takes
//! its inputs (including the current time) as arguments, so it is testable in isolation.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

pub mod clock;
pub mod doctor;
pub mod html;
pub mod import;
pub mod plausible;
pub mod suggest;
pub mod tracking;
pub mod values;

pub use clock::{Clock, FixedClock, SystemClock};
pub use values::{Email, EntityKind, Money, Source, ValueError};
