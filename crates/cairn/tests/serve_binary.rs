//! The real `cairn serve` binary: SIGTERM stops it within seconds with everything it
//! acknowledged stored, and a key revoked with `cairn keys revoke` (another process)
//! stops working on the running server at once.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cairn::loopback::Connection;
use cairn_store::Store;

const WORKSPACE: &str = r#"
segments:
  - { id: reporters, of: account, where: "count('report_created', 30d) >= 1" }
"#;

fn cairn(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"));
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("CAIRN_")) {
        command.env_remove(name);
    }
    command.args(args);
    command
}

fn run(args: &[&str]) -> Output {
    let out = cairn(args).output().expect("cairn runs");
    assert!(out.status.success(), "cairn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// `cairn serve` on `db` with the engine and runner on a workspace, on a free port.
fn serve(db: &str, workspace: &Path) -> (Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = cairn(&["serve", "--listen", &addr, "--db", db, "--shutdown-grace-secs", "2", "--workspace"])
        .arg(workspace)
        .env("CAIRN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cairn serve starts");
    (child, addr)
}

async fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = Connection::new(addr).request("GET", "/healthz", &[], b"").await
            && r.status == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "cairn serve did not become ready on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
}

/// Waits for the process to exit; its status and how long that took.
fn wait_exit(child: &mut Child, within: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status, started.elapsed());
        }
        if started.elapsed() > within {
            let _ = child.kill();
            panic!("cairn serve still running {within:?} after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Setup {
    dir: tempfile::TempDir,
    db: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}", dir.path().join("cairn.db").display());
        std::fs::create_dir(dir.path().join("ws")).expect("workspace folder");
        std::fs::write(dir.path().join("ws/workspace.yaml"), WORKSPACE).expect("workspace");
        Setup { dir, db }
    }

    fn workspace(&self) -> std::path::PathBuf {
        self.dir.path().join("ws")
    }

    fn key(&self, kind: &str, name: &str) -> String {
        let out = run(&["keys", "create", "--kind", kind, "--name", name, "--db", &self.db]);
        String::from_utf8(out.stdout).expect("utf8").trim().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_within_seconds_keeping_what_it_acknowledged() {
    let setup = Setup::new();
    let key = setup.key("write", "web");
    let (mut child, addr) = serve(&setup.db, &setup.workspace());
    wait_ready(&addr).await;
    let mut acknowledged = 0;
    let mut conn = Connection::new(&addr);
    for i in 0..50 {
        let body = format!(r#"{{"userId":"u{i}","event":"report_created","messageId":"m{i}"}}"#);
        let r = conn.post_json("/v1/track", Some(&key), &body).await.expect("track");
        assert_eq!(r.status, 200, "{}", r.body);
        acknowledged += 1;
    }
    // A client left holding an idle connection does not hold the shutdown up.
    let idle = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    sigterm(&child);
    let (status, took) = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    drop(idle);
    let store = Store::open(&setup.db).await.expect("the database opens after the stop");
    assert_eq!(store.last_seq().await.unwrap(), acknowledged, "every acknowledged event is stored");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_with_the_cli_stops_working_on_the_running_server_at_once() {
    let setup = Setup::new();
    let write = setup.key("write", "web");
    let secret = setup.key("secret", "ops");
    let (mut child, addr) = serve(&setup.db, &setup.workspace());
    wait_ready(&addr).await;
    let mut conn = Connection::new(&addr);
    let auth = format!("Bearer {secret}");
    let r = conn.request("GET", "/api/segments", &[("authorization", &auth)], b"").await.expect("api");
    assert_eq!(r.status, 200, "{}", r.body);
    let track = r#"{"userId":"u1","event":"report_created"}"#;
    assert_eq!(conn.post_json("/v1/track", Some(&write), track).await.expect("track").status, 200);

    let list = run(&["keys", "list", "--json", "--db", &setup.db]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let keys = list["keys"].as_array().expect("a list");
    assert_eq!(keys.len(), 2, "{list}");
    assert_eq!((keys[0]["kind"].as_str(), keys[0]["name"].as_str()), (Some("write"), Some("web")));
    assert_eq!(keys[0]["revoked_at"], serde_json::Value::Null);
    let prefix = keys[0]["prefix"].as_str().expect("a prefix");
    assert!(write.starts_with(prefix) && prefix.len() > "cairn_wk_".len(), "{prefix}");
    assert!(!list.to_string().contains(&write), "the list never shows a key");

    run(&["keys", "revoke", prefix, "--db", &setup.db]);
    let r = conn.post_json("/v1/track", Some(&write), track).await.expect("track");
    assert_eq!(r.status, 401, "refused at once: {}", r.body);
    let r = conn.request("GET", "/api/segments", &[("authorization", &auth)], b"").await.expect("api");
    assert_eq!(r.status, 200, "the other key still works: {}", r.body);
    run(&["keys", "revoke", "ops", "--db", &setup.db]);
    let r = conn.request("GET", "/api/segments", &[("authorization", &auth)], b"").await.expect("api");
    assert_eq!(r.status, 401, "revoked by name: {}", r.body);

    let text = String::from_utf8(run(&["keys", "list", "--db", &setup.db]).stdout).expect("utf8");
    assert!(text.contains("web") && text.contains("ops") && !text.contains(" - \n"), "both revoked:\n{text}");
    let again = cairn(&["keys", "revoke", "web", "--db", &setup.db]).output().expect("runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already revoked"));
    let nothing = cairn(&["keys", "revoke", "nope", "--db", &setup.db]).output().expect("runs");
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("cairn keys list"), "says where to look");
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_reload_stops_the_server_within_seconds() {
    use tokio::io::AsyncWriteExt as _;
    let setup = Setup::new();
    let secret = setup.key("secret", "ops");
    let (mut child, addr) = serve(&setup.db, &setup.workspace());
    wait_ready(&addr).await;
    // An event dated in year 1 made an evaluation of the log run for many minutes; a
    // reload in flight then held SIGTERM's graceful shutdown forever. (Where the import
    // refuses such a date, the reload is quick and the signal stops a serving server.)
    let events = setup.dir.path().join("old.ndjson");
    let old = r#"{"type":"track","userId":"u1","event":"report_created","timestamp":"0001-01-01T00:00:00Z","messageId":"old"}"#;
    std::fs::write(&events, format!("{old}\n")).expect("events file");
    let _ = cairn(&["import", "events", events.to_str().expect("utf8 path"), "--db", &setup.db]).output();
    let mut reload = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let request = format!(
        "POST /api/workspace/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\nContent-Length: 0\r\n\r\n"
    );
    reload.write_all(request.as_bytes()).await.expect("the reload is sent");
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&child);
    let (_, took) = wait_exit(&mut child, Duration::from_secs(30));
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
}
