//! An SMTP server on loopback that counts what a real one would have accepted: a message
//! is received only when its DATA ends with the `.` line, and only then is it answered
//! `250`. A client killed halfway through DATA has delivered nothing, which is what the
//! exactly-once tests need (the channel tests' sink, `cairn-channels/tests/support`, keeps
//! a cut-off message as received).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted message: its Message-ID header and its recipients.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message_id: String,
    pub rcpt_to: Vec<String>,
}

/// The running sink.
pub struct StrictSink {
    pub port: u16,
    accepted: Arc<Mutex<Vec<Accepted>>>,
}

impl StrictSink {
    /// Every message accepted so far, in order (a message delivered twice is here twice).
    pub fn accepted(&self) -> Vec<Accepted> {
        self.accepted.lock().expect("sink lock").clone()
    }

    /// How many times each Message-ID was accepted.
    pub fn deliveries(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for m in self.accepted.lock().expect("sink lock").iter() {
            *counts.entry(m.message_id.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// How many distinct Message-IDs were accepted.
    pub fn distinct(&self) -> usize {
        self.deliveries().len()
    }
}

/// Starts the sink on a free loopback port.
pub async fn spawn_strict_sink() -> StrictSink {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP sink");
    let port = listener.local_addr().expect("sink address").port();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let store = accepted.clone();
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(session(stream, store.clone()));
                }
                // A failed accept (a client gone before it was accepted) must not stop the sink.
                Err(e) => {
                    eprintln!("SMTP sink: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    });
    StrictSink { port, accepted }
}

/// One SMTP session; ends quietly when the client goes away (it may have been killed).
async fn session(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Accepted>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut rcpt_to = Vec::new();
    if write.write_all(b"220 sink.test ESMTP ready\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        quick_ack(lines.get_ref().get_ref().as_ref());
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("MAIL FROM:") || upper.starts_with("RSET") {
            rcpt_to.clear();
            b"250 2.1.0 Ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt_to.push(line[8..].trim().to_string());
            b"250 2.1.5 Ok\r\n"
        } else if upper == "DATA" {
            if write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.is_err() {
                return;
            }
            let mut message_id = None;
            let mut in_headers = true;
            let mut complete = false;
            while let Ok(Some(line)) = lines.next_line().await {
                quick_ack(lines.get_ref().get_ref().as_ref());
                if line == "." {
                    complete = true;
                    break;
                }
                if line.is_empty() {
                    in_headers = false;
                } else if in_headers && line.to_ascii_lowercase().starts_with("message-id:") {
                    message_id = Some(line["message-id:".len()..].trim().to_string());
                }
            }
            if !complete {
                // Cut off: a real server would discard it.
                return;
            }
            let message_id = message_id.unwrap_or_else(|| "(no Message-ID header)".to_string());
            store.lock().expect("sink lock").push(Accepted { message_id, rcpt_to: std::mem::take(&mut rcpt_to) });
            b"250 2.0.0 Ok: queued\r\n"
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            b"250 Ok\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// Acknowledges what arrived at once instead of after the delayed-ACK timeout. cairn's SMTP
/// client (lettre) writes a message and its final `.` line in two writes without
/// TCP_NODELAY, so Nagle holds the `.` until the message is acknowledged: with delayed
/// ACKs every message would wait ~40 ms, which caps one node at ~25 messages a second.
/// These tests are about exactly-once, not about that wait.
#[cfg(target_os = "linux")]
fn quick_ack(stream: &tokio::net::TcpStream) {
    use std::os::fd::AsRawFd as _;
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const std::ffi::c_void, len: u32) -> i32;
    }
    const IPPROTO_TCP: i32 = 6;
    const TCP_QUICKACK: i32 = 12;
    let on: i32 = 1;
    // SAFETY: the descriptor is the stream's open socket, and `on` outlives the call,
    // which only reads `len` bytes from it. A failure only means a slower test.
    unsafe {
        setsockopt(stream.as_raw_fd(), IPPROTO_TCP, TCP_QUICKACK, (&raw const on).cast(), 4);
    }
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_stream: &tokio::net::TcpStream) {}
