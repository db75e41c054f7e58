//! Crash safety: a client streams batches to `cairn serve` while the process is killed
//! with SIGKILL at random moments and restarted. Every event that got a 2xx must be in
//! the store afterwards, exactly once — including batches the client resent after a
//! crash without knowing whether they had been stored.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn::demo::Rng;
use cairn::loopback::Connection;
use cairn_store::Store;

const ROUNDS: usize = 12;
const BATCH: usize = 50;

fn cairn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn start_server(db: &str, port: u16) -> Child {
    cairn()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db", db])
        .env("CAIRN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cairn serve starts")
}

async fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = Connection::new(addr);
        if let Ok(r) = c.request("GET", "/healthz", &[], b"").await
            && r.status == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "cairn serve did not become ready on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn batch_body(ids: &[String]) -> String {
    let msgs: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"type":"track","messageId":"{id}","userId":"u-crash","event":"report_created","properties":{{"n":1}}}}"#))
        .collect();
    format!(r#"{{"batch":[{}]}}"#, msgs.join(","))
}

async fn kill_and_restart_while_streaming(db: String) {
    let key_out = cairn()
        .args(["keys", "create", "--kind", "write", "--name", "crash", "--db", &db])
        .output()
        .expect("keys create runs");
    assert!(key_out.status.success(), "keys create failed: {}", String::from_utf8_lossy(&key_out.stderr));
    let key = String::from_utf8(key_out.stdout).expect("utf8 key").trim().to_string();

    let mut rng = Rng::new(7);
    let mut acked: Vec<String> = Vec::new();
    let mut unacked: Option<Vec<String>> = None;
    let mut next = 0u64;
    let mut kills = 0;
    for round in 0..ROUNDS {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = start_server(&db, port);
        wait_ready(&addr).await;
        let kill_after = Duration::from_millis(100 + rng.below(400));
        let started = Instant::now();
        let mut conn = Connection::new(&addr);
        loop {
            // A real client retries what it never got an answer for.
            let ids = unacked.take().unwrap_or_else(|| {
                (0..BATCH)
                    .map(|_| {
                        next += 1;
                        format!("crash-{next}")
                    })
                    .collect()
            });
            if started.elapsed() >= kill_after {
                // Kill while a request is in flight: send, then kill before reading.
                let body = batch_body(&ids);
                let send = conn.post_json("/v1/batch", Some(&key), &body);
                let killer = async {
                    tokio::time::sleep(Duration::from_millis(rng.below(5))).await;
                };
                tokio::select! {
                    r = send => {
                        if let Ok(r) = r { if r.status == 200 { acked.extend(ids.iter().cloned()); } else { unacked = Some(ids.clone()); } }
                        else { unacked = Some(ids.clone()); }
                    }
                    _ = killer => { unacked = Some(ids.clone()); }
                }
                break;
            }
            match conn.post_json("/v1/batch", Some(&key), &batch_body(&ids)).await {
                Ok(r) if r.status == 200 => {
                    let v = r.json();
                    assert_eq!(v["rejected"].as_array().map(Vec::len), Some(0), "round {round}: {}", r.body);
                    acked.extend(ids);
                }
                other => panic!("round {round}: the server answered {other:?} before being killed"),
            }
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        kills += 1;
    }
    assert!(kills >= 10, "killed {kills} times");
    assert!(acked.len() > 1000, "only {} events acknowledged: the test did not stream enough", acked.len());

    // Every acknowledged event is stored exactly once.
    let store = Store::open(&db).await.expect("store opens after the crashes");
    let counts = store.count_message_ids(&acked).await.expect("counts");
    let missing: Vec<&String> = acked.iter().filter(|id| counts.get(*id).copied().unwrap_or(0) != 1).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events are not stored exactly once, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let mut distinct = acked.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), acked.len(), "an event was acknowledged twice");
    let stored = store.last_seq().await.expect("seq");
    assert!(stored as usize >= acked.len());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acknowledged_events_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    kill_and_restart_while_streaming(format!("sqlite://{}", dir.path().join("crash.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_acknowledged_events_survive_sigkill_exactly_once() {
    let base = std::env::var("CAIRN_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if base == "skip" {
        eprintln!("CAIRN_TEST_PG=skip: PostgreSQL variant not run");
        return;
    }
    let schema = format!("crash_{}_{}", std::process::id(), jiff::Timestamp::now().as_millisecond() % 1_000_000);
    let url = format!("{base}?schema={schema}");
    kill_and_restart_while_streaming(url).await;
    use sqlx::Connection as _;
    if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
        let _ =
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&mut c).await;
    }
}
