//! A minimal HTTP/1.1 client for loopback use by the benchmarks and the tests: one
//! keep-alive connection, raw bytes in (so tests can send what no polite client would),
//! status and body out. Not a general-purpose client: it expects `Content-Length` replies.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A response: status code and body text.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body (lossy UTF-8).
    pub body: String,
}

impl Response {
    /// The body parsed as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The connection failed before the first byte of an answer.
#[derive(Debug)]
struct NoResponse(String);

impl std::fmt::Display for NoResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoResponse {}

/// One keep-alive connection to `addr`.
pub struct Connection {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    /// A connection to `addr` (`127.0.0.1:PORT`), opened on first use.
    pub fn new(addr: &str) -> Connection {
        Connection { addr: addr.to_string(), stream: None }
    }

    /// Sends a request with the given extra header lines and raw body.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n", self.addr, body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        let reused = self.stream.is_some();
        if !reused {
            self.connect().await?;
        }
        let mut result = tokio::time::timeout(Duration::from_secs(60), self.exchange(&bytes)).await;
        // A kept-alive connection the server closed while it was idle (its keep-alive
        // timeout) is opened again and the request sent once more, as HTTP clients do.
        if reused && matches!(&result, Ok(Err(e)) if e.is::<NoResponse>()) {
            self.connect().await?;
            result = tokio::time::timeout(Duration::from_secs(60), self.exchange(&bytes)).await;
        }
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                bail!("no response from {} within 60 s", self.addr)
            }
        }
    }

    async fn connect(&mut self) -> Result<()> {
        let s = TcpStream::connect(&self.addr).await.with_context(|| format!("connecting to {}", self.addr))?;
        s.set_nodelay(true)?;
        self.stream = Some(BufReader::new(s));
        Ok(())
    }

    async fn exchange(&mut self, bytes: &[u8]) -> Result<Response> {
        let stream = self.stream.as_mut().context("not connected")?;
        // A server may answer (a 413 for an oversized body) and close before the whole
        // request is written: the write then fails with a broken pipe, but the answer is
        // already there to read.
        let written = stream.get_mut().write_all(bytes).await;
        let mut line = String::new();
        match (stream.read_line(&mut line).await, written) {
            (Ok(n), _) if n > 0 => {}
            (_, Err(e)) => return Err(NoResponse(format!("sending the request: {e}")).into()),
            (Ok(_), Ok(())) => return Err(NoResponse("connection closed before a response".into()).into()),
            (Err(e), Ok(())) => return Err(NoResponse(format!("reading the response: {e}")).into()),
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        let mut length = 0usize;
        let mut close = false;
        loop {
            line.clear();
            stream.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                if k == "connection" && v.eq_ignore_ascii_case("close") {
                    close = true;
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await?;
        if close {
            self.stream = None;
        }
        Ok(Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }

    /// POSTs JSON text with Basic auth by write key.
    pub async fn post_json(&mut self, path: &str, write_key: Option<&str>, body: &str) -> Result<Response> {
        let auth = write_key.map(basic_auth);
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        self.request("POST", path, &headers, body.as_bytes()).await
    }
}

/// `Basic base64(key:)`.
pub fn basic_auth(key: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers one request per connection and then closes it (as a server
    /// does with a connection idle past its keep-alive timeout).
    async fn one_answer_per_connection() -> (String, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let mut served = 0;
            while served < 2 {
                let (socket, _) = listener.accept().await.unwrap();
                let mut socket = BufReader::new(socket);
                let mut line = String::new();
                loop {
                    line.clear();
                    socket.read_line(&mut line).await.unwrap();
                    if line.trim_end().is_empty() {
                        break;
                    }
                }
                socket.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.unwrap();
                served += 1;
            }
            served
        });
        (addr, server)
    }

    #[tokio::test]
    async fn a_kept_alive_connection_the_server_closed_is_opened_again() {
        let (addr, server) = one_answer_per_connection().await;
        let mut conn = Connection::new(&addr);
        assert_eq!(conn.request("GET", "/a", &[], b"").await.unwrap().body, "ok");
        assert_eq!(conn.request("GET", "/b", &[], b"").await.unwrap().body, "ok", "the second request reconnects");
        assert_eq!(server.await.unwrap(), 2);
    }
}
