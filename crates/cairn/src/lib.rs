//! cairn's command line: `serve`, `import`, `doctor`, `check`, `show`, `segments`, `keys`, `demo`,
//! `report` and `bench`.
//!
//! This crate is the edge: it reads files and flags, opens the store, starts the server
//! and prints reports. Errors are `anyhow` with context here; the library crates below
//! keep typed errors.

pub mod bench;
pub mod bench_engine;
pub mod bench_programs;
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
