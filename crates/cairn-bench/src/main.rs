//! `cairn-bench`: cairn's benchmarks, each printing cairn's figures beside a peer's measured
//! in the same run on the same data (see BENCHMARKS.md for the figures and how to read them).
//!
//! A crate of its own so that the shipped `cairn` binary carries none of it: the workload
//! generators, the SQL peers and the comparisons live here; the shared pieces (demo data,
//! the loopback HTTP client, the NDJSON import) come from the `cairn` library crate. Run it
//! in release mode: `cargo run --release -p cairn-bench -- engine`.

// Input never panics (STYLE.md habit 4): outside tests, no unwrap/expect and no slicing
// of a str by byte offsets; handle the error, or use `str::get` and say what to do.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice))]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod engine;
mod figures;
mod ingest;
mod keys;
mod pages;
mod pages_peer;
mod programs;
mod reports;
mod suite;

// The same allocator as the `cairn` binary, so the figures are those of what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "cairn-bench",
    about = "Benchmarks that print cairn's figures beside a peer's, measured in the same run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ingestion: bulk NDJSON import into SQLite and PostgreSQL beside PostgreSQL COPY,
    /// and /v1/batch over loopback with concurrent clients
    Ingest(ingest::IngestArgs),
    /// The engine: backfill and incremental throughput on a generated workload, beside
    /// the same segments and health as SQL in DuckDB and PostgreSQL
    Engine(engine::EngineArgs),
    /// Programs: a million enrollments across five programs sent to the outbox, beside
    /// PostgreSQL writing the same rows, and trigger-to-outbox latency over HTTP
    Programs(programs::ProgramsArgs),
    /// Reports: the KPIs, renewal rate, movements and cohorts of every month of a
    /// generated ledger, beside the same figures as DuckDB SQL, compared figure by figure
    Reports(reports::ReportsArgs),
    /// The web UI: server time of every page on workload W1 (or a fraction of it), signed
    /// in over loopback, beside the accounts list as PostgreSQL SQL
    Pages(pages::PagesArgs),
    /// The whole suite on workload W1 (or a fraction of it) in one run: generation,
    /// ingest, backfill, incremental, program sends and reports, each beside its peer,
    /// in one table
    Suite(suite::SuiteArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => ingest::ingest(args).await,
            Command::Engine(args) => engine::run(args).await,
            Command::Programs(args) => programs::run(args).await,
            Command::Reports(args) => reports::run(args).await,
            Command::Pages(args) => pages::run(args).await,
            Command::Suite(args) => suite::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
