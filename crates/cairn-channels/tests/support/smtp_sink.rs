//! A small SMTP server on loopback for tests: records every message it accepts, or
//! refuses on demand. Shared by the channel tests and the program runner's tests
//! (`#[path]`-included), so both talk real SMTP to the same sink.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the sink answers.
#[derive(Clone, Copy)]
pub enum Answer {
    Accept,
    /// Refuse the recipient with this reply.
    RefuseRecipient(&'static str),
    /// Refuse the message after DATA with this reply.
    RefuseData(&'static str),
}

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub helo: String,
    pub auth: Vec<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

pub struct Sink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
}

pub async fn spawn_sink(answer: Answer) -> Sink {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let mut current = Received::default();
                write.write_all(b"220 sink.test ESMTP ready\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        current.helo = line[4..].trim().to_string();
                        "250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN\r\n".into()
                    } else if upper.starts_with("AUTH") {
                        current.auth.push(line.clone());
                        "235 2.7.0 Authentication successful\r\n".into()
                    } else if upper.starts_with("MAIL FROM:") {
                        current.mail_from = line[10..].trim().to_string();
                        "250 2.1.0 Ok\r\n".into()
                    } else if upper.starts_with("RCPT TO:") {
                        match answer {
                            Answer::RefuseRecipient(reply) => format!("{reply}\r\n"),
                            _ => {
                                current.rcpt_to.push(line[8..].trim().to_string());
                                "250 2.1.5 Ok\r\n".into()
                            }
                        }
                    } else if upper == "DATA" {
                        write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.unwrap();
                        let mut data = String::new();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if line == "." {
                                break;
                            }
                            // Undo dot-stuffing.
                            data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
                            data.push_str("\r\n");
                        }
                        match answer {
                            Answer::RefuseData(reply) => format!("{reply}\r\n"),
                            _ => {
                                current.data = data;
                                store.lock().unwrap().push(std::mem::take(&mut current));
                                "250 2.0.0 Ok: queued as 4F2A\r\n".into()
                            }
                        }
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
                        break;
                    } else {
                        "250 Ok\r\n".into()
                    };
                    if write.write_all(reply.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Sink { port, received }
}
