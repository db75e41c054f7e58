//! The web UI in a real browser: the server on loopback over a small simulated demo, and
//! `node tests/browser/run.mjs` driving Debian's headless Chromium through playwright-core
//! with axe-core (see that script for what it checks). Screenshots land in
//! `target/screenshots/` (under `CARGO_TARGET_DIR` when it is set).
//!
//! Nothing here is optional: without node, the script's packages (`npm ci` in
//! tests/browser, which `.ci/test` runs) or /usr/bin/chromium the test fails and says
//! what to install.

#[path = "support/demo_server.rs"]
mod demo_server;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use demo_server::DemoServer;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn screenshots_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("screenshots"),
        None => repo_root().join("target/screenshots"),
    }
}

/// What the browser run needs, each missing one said with how to get it.
fn missing_tools(browser_dir: &Path, chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node is not installed (`apt-get install -y nodejs npm`, or run `.ci/test`)".to_string());
    }
    for package in ["playwright-core", "axe-core"] {
        if !browser_dir.join("node_modules").join(package).join("package.json").exists() {
            missing.push(format!("{package} is not installed: run `npm ci` in tests/browser (or `.ci/test`)"));
        }
    }
    if !chromium.exists() {
        missing.push(format!(
            "{} is missing: `apt-get install -y chromium` (or `.ci/test`); the tests never download a browser",
            chromium.display()
        ));
    }
    missing
}

/// Creates a demo admin with the CLI when it has `cairn user add` (the sign-in of issue
/// 17); `None` while it has not, when every page is open.
fn demo_admin(db_url: &str) -> Option<(String, String)> {
    use std::io::Write as _;
    let (email, password) = ("browser@cairn.localhost".to_string(), "browser-test-password-7".to_string());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["user", "add", "--email", &email, "--role", "admin", "--password-stdin", "--db", db_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cairn");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = writeln!(stdin, "{password}");
    }
    let out = child.wait_with_output().expect("cairn user add");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unrecognized subcommand") {
        return None;
    }
    assert!(out.status.success(), "cairn user add failed: {stderr}");
    Some((email, password))
}

/// Runs `command` to its end, killing it past `deadline` (a hung browser must not hang CI).
fn run_with_deadline(mut command: std::process::Command, deadline: std::time::Duration) -> std::process::Output {
    let mut child = command.spawn().expect("node runs");
    let start = std::time::Instant::now();
    // The pipes are read on threads so that a full pipe cannot stall the script.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            panic!("the browser run took over {deadline:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    std::process::Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_in_a_real_browser() {
    let browser_dir = repo_root().join("tests/browser");
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let missing = missing_tools(&browser_dir, &chromium);
    assert!(missing.is_empty(), "the browser tests cannot run:\n- {}", missing.join("\n- "));

    let server = DemoServer::start(24, 60).await;
    let mut command = std::process::Command::new("node");
    command
        .arg(browser_dir.join("run.mjs"))
        .env("CAIRN_URL", format!("http://{}", server.addr))
        .env("CAIRN_SCREENSHOTS", screenshots_dir())
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((email, password)) = demo_admin(&server.db_url) {
        command.env("CAIRN_EMAIL", email).env("CAIRN_PASSWORD", password);
    }
    let out = tokio::task::spawn_blocking(move || run_with_deadline(command, std::time::Duration::from_secs(480)))
        .await
        .expect("the browser run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(out.status.success(), "the browser run failed (its output is above)");
    assert!(stdout.contains(" passed, 0 failed"), "the browser run did not report its count");
    server.finish().await;
}
