//! cairn-engine: turns the event log into what a Digital CSM acts on.
//!
//! It keeps behavioural aggregates current one event at a time ([`aggregates`]), and
//! evaluates a checked workspace (segments, journey stages and milestones, health) for
//! each account and contact, producing transitions (`segment_entered`,
//! `milestone_achieved`, `health_band_changed`, …) stamped with the moment they really
//! happened. Time always comes from the caller: the same events, definitions and
//! instants give the same state and transitions, byte for byte.
//!
//! Pure: no I/O, no async, no clock of its own. Reading the log and storing transitions
//! is the caller's job.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

pub mod aggregates;
pub mod days;
pub mod engine;
mod fast;
pub mod health;
pub mod state;

pub use engine::{DayWork, Engine, EngineEvent, ProgramFacts};
pub use state::{
    AccountState, ContactState, HealthOverride, HealthRun, HealthSnapshot, MilestoneStatus, SubjectRef, Transition,
    TransitionKind,
};
