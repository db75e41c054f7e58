//! The `cairn` binary: see `cairn --help`.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

// Ingestion allocates a few small strings per event; mimalloc keeps that off the
// critical path (measured: see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cairn::cli::main()
}
