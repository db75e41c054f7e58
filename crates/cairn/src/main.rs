//! The `cairn` binary: see `cairn --help`.

// Ingestion allocates a few small strings per event; mimalloc keeps that off the
// critical path (measured: see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cairn::cli::main()
}
