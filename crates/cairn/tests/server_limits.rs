//! A client holds a connection only while it keeps its side of the exchange: over real
//! loopback sockets, a client that trickles its headers, one that never finishes its body,
//! one that says nothing and an idle keep-alive connection are all closed, and `/healthz`
//! answers however many connections are open. Timeouts are set to a second so that the
//! tests take about that long.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(1);

async fn app_with(max_connections: usize, header_timeout: Duration) -> TestApp {
    TestApp::spawn_configured(Backend::Sqlite, None, |c| {
        c.limits.header_timeout = header_timeout;
        c.limits.body_timeout = TIMEOUT;
        c.limits.max_connections = max_connections;
    })
    .await
    .expect("sqlite")
}

/// Reads until the server closes the connection; what it sent, and how long that took.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server still holds the connection after 10 s");
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    let app = app_with(100, TIMEOUT).await;
    let mut stream = TcpStream::connect(&app.addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // One header byte every 200 ms, as a slowloris client does, until the server hangs up.
    let mut closed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut probe)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection stayed open for 10 s of trickled headers");
    assert!(started.elapsed() < TIMEOUT * 4, "closed after {:?}", started.elapsed());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_nothing_or_goes_idle_is_disconnected() {
    let app = app_with(100, TIMEOUT).await;
    let mut silent = TcpStream::connect(&app.addr).await.unwrap();
    let (sent, took) = read_until_closed(&mut silent).await;
    assert_eq!(sent, "", "no answer to no request");
    assert!(took >= TIMEOUT / 2 && took < TIMEOUT * 4, "closed after {took:?}");

    let mut idle = TcpStream::connect(&app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (sent, took) = read_until_closed(&mut idle).await;
    assert!(sent.starts_with("HTTP/1.1 200"), "the request is answered first: {sent}");
    assert!(took < TIMEOUT * 4, "the idle keep-alive connection closed after {took:?}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_answered_and_the_connection_closed() {
    let app = app_with(100, Duration::from_secs(30)).await;
    let mut stream = TcpStream::connect(&app.addr).await.unwrap();
    let auth = cairn::loopback::basic_auth(&app.write_key);
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(br#"{"userId":"u1","#).await.unwrap();
    let (sent, took) = read_until_closed(&mut stream).await;
    assert!(sent.starts_with("HTTP/1.1 400"), "{sent}");
    assert!(sent.contains("did not arrive within"), "the answer says why: {sent}");
    assert!(took < TIMEOUT * 4, "answered after {took:?}");
    assert_eq!(app.store.last_seq().await.unwrap(), 0, "nothing was stored");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_with_many_connections_open() {
    let app = app_with(300, Duration::from_secs(30)).await;
    let mut open = Vec::new();
    for _ in 0..250 {
        open.push(TcpStream::connect(&app.addr).await.unwrap());
    }
    let r = tokio::time::timeout(Duration::from_secs(5), app.raw("GET", "/healthz", &[], b"")).await;
    assert_eq!(r.expect("/healthz answers within 5 s").status, 200);
    drop(open);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_bound_a_new_client_waits_for_an_idle_one_to_time_out() {
    let app = app_with(20, TIMEOUT).await;
    let mut open = Vec::new();
    for _ in 0..20 {
        open.push(TcpStream::connect(&app.addr).await.unwrap());
    }
    // Let the server accept all twenty (the bound), so the next one waits.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), app.raw("GET", "/healthz", &[], b"")).await;
    assert_eq!(r.expect("/healthz answers once idle connections time out").status, 200);
    assert!(started.elapsed() >= TIMEOUT / 2, "the 21st connection waited: {:?}", started.elapsed());
    drop(open);
    app.finish().await;
}
