//! The `cairn` binary: see `cairn --help`.

fn main() -> std::process::ExitCode {
    cairn::cli::main()
}
