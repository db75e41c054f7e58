//! cairn's command line: `serve`, `import`, `doctor`, `check`, `show`, `segments`, `keys`, `user`,
//! `demo` and `report` (the benchmarks are the `cairn-bench` crate's).
//!
//! This crate is the edge: it reads files and flags, opens the store, starts the server
//! and prints reports. Errors are `anyhow` with context here; the library crates below
//! keep typed errors.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

pub mod app;
pub mod check;
pub mod cli;
pub mod delivery;
pub mod demo;
pub mod import;
pub mod loopback;
pub mod program;
pub mod progress;
pub mod report;
pub mod show;
pub mod simulation;
pub mod users;
pub mod workload;
