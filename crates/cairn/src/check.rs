//! `cairn check DIR`: load a workspace folder and report every problem, or what it holds.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use cairn_workspace::{Diagnostic, Workspace};

/// Checks the workspace in `dir`; prints diagnostics to stderr (or everything as JSON to
/// stdout with `json`). Exit status 1 when there is any error.
pub fn run(dir: &Path, json: bool) -> ExitCode {
    let result = cairn_workspace::load_dir(dir);
    if json {
        println!("{}", report_json(&result));
    } else {
        match &result {
            Ok(ws) => println!("ok: {}", ws.summary()),
            Err(diagnostics) => {
                for d in diagnostics {
                    eprintln!("{d:#}");
                }
                eprintln!("{}", error_summary(diagnostics));
            }
        }
    }
    if result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// `3 errors in 2 files`.
pub fn error_summary(diagnostics: &[Diagnostic]) -> String {
    let files: BTreeSet<&str> = diagnostics.iter().map(|d| d.file.as_str()).collect();
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!("{} in {}", plural(diagnostics.len(), "error", "errors"), plural(files.len(), "file", "files"))
}

/// `{"ok": true, "summary": {...}}` or `{"ok": false, "errors": N,
/// "diagnostics": [...]}`.
pub fn report_json(result: &Result<Workspace, Vec<Diagnostic>>) -> serde_json::Value {
    match result {
        Ok(ws) => serde_json::json!({
            "ok": true,
            "summary": ws.summary(),
        }),
        Err(diagnostics) => serde_json::json!({
            "ok": false,
            "summary": error_summary(diagnostics),
            "diagnostics": diagnostics,
        }),
    }
}
