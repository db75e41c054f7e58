//! Serving connections: cairn's own accept loop over hyper, so that a client holds a
//! connection only while it keeps its side of the exchange, and a slow or idle one cannot
//! starve the others.
//!
//! - **Headers and idle keep-alive**: hyper's header-read timeout starts whenever the
//!   connection waits for a request head — right after accept, and again after each
//!   response — so one limit closes a client that trickles its headers (slowloris) and a
//!   keep-alive connection left idle.
//! - **Body**: the whole body must arrive within [`Limits::body_timeout`] of the head.
//!   Past it, reading the body fails, the handler answers 400 saying so, and the
//!   connection is closed (hyper does not reuse a connection whose body was not read to
//!   the end).
//! - **How many**: at most [`Limits::max_connections`] at once. At the bound the loop
//!   stops accepting (new connections wait in the kernel's backlog until one closes), so
//!   the process never runs out of file descriptors and whoever is being served keeps
//!   being served.
//! - **A client that leaves**: hyper notices the closed connection and drops the request's
//!   future, which cancels the work at its next await.
//! - **Who**: each request carries its peer's address as `ConnectInfo<SocketAddr>` (the
//!   sign-in rate limit counts per address).
//! - **Panics**: [`crate::panics`] turns a handler's panic into a 500 with an error id.
//! - **Shutdown**: when `shutdown` completes the loop stops accepting; each connection
//!   finishes the request in flight and closes; after [`Limits::shutdown_grace`] the
//!   rest are abandoned.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How long clients may take, and how many may be connected at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a request's headers, counted from when the connection starts
    /// waiting for them: also how long an idle keep-alive connection stays open.
    pub header_timeout: Duration,
    /// Time to send a request's whole body, counted from its headers.
    pub body_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    /// 20 s for headers (and idle keep-alive), 60 s for a body (the largest, a 500 KB
    /// batch, at 8 KB/s), 1,000 connections, 10 s of grace at shutdown.
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(60),
            max_connections: 1_000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets the
/// requests in flight finish for up to `limits.shutdown_grace`.
pub(crate) async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let body_timeout = limits.body_timeout;
    let app = app
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            next.run(request.map(|body| Body::new(DeadlineBody::new(body, body_timeout))))
        }))
        .layer(axum::middleware::from_fn(crate::panics::catch_panic));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, closing_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, or the peer left before accept: pause, so a
                    // persistent failure does not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(stream, app.clone(), limits, closing_rx.clone(), permit));
    }
    drop(listener);
    let _ = closing.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all)).await.is_err() {
        tracing::warn!("requests still in flight after {:?}: abandoned", limits.shutdown_grace);
    }
    Ok(())
}

/// Serves one connection, holding `_permit` while it is open.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), WithPeer { inner: TowerToHyperService::new(app), peer });
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = closed(closing) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection closed");
    }
}

/// The app, with the peer's address put on every request it serves.
#[derive(Clone)]
struct WithPeer {
    inner: TowerToHyperService<Router>,
    peer: Option<SocketAddr>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for WithPeer {
    type Response =
        <TowerToHyperService<Router> as hyper::service::Service<hyper::Request<hyper::body::Incoming>>>::Response;
    type Error = <TowerToHyperService<Router> as hyper::service::Service<hyper::Request<hyper::body::Incoming>>>::Error;
    type Future =
        <TowerToHyperService<Router> as hyper::service::Service<hyper::Request<hyper::body::Incoming>>>::Future;

    fn call(&self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(peer) = self.peer {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        self.inner.call(req)
    }
}

/// Completes once `closing` turns true (or its sender is gone).
async fn closed(mut closing: watch::Receiver<bool>) {
    let _ = closing.wait_for(|c| *c).await;
}

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}: send it faster, or in smaller requests")]
pub struct BodyTimedOut(Duration);

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Body,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, limit: Duration) -> DeadlineBody {
        DeadlineBody { inner, limit, deadline: Box::pin(tokio::time::sleep(limit)) }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves `app` on a loopback port; the address and the trigger that stops it.
    async fn spawn(app: Router) -> (String, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_router(listener, app, Limits::default(), async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Sends `request` on a new connection and reads until the server closes it.
    async fn exchange(addr: &str, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await.unwrap().unwrap();
        out
    }

    /// Drops a flag when dropped: shows that a request's future was dropped.
    struct SetOnDrop(Arc<AtomicBool>);

    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn work_for_a_client_that_left_is_dropped() {
        let dropped = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
        let flag = Arc::clone(&dropped);
        let app = Router::new().route(
            "/slow",
            get(move || {
                let guard = SetOnDrop(Arc::clone(&flag));
                let started = started_tx.lock().unwrap().take();
                async move {
                    let _guard = guard;
                    if let Some(s) = started {
                        let _ = s.send(());
                    }
                    std::future::pending::<()>().await;
                }
            }),
        );
        let (addr, _stop) = spawn(app).await;
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        started_rx.await.unwrap();
        assert!(!dropped.load(Ordering::SeqCst));
        drop(s);
        tokio::time::timeout(Duration::from_secs(5), async {
            while !dropped.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the handler's future is dropped once its client is gone");
    }

    async fn boom() -> &'static str {
        panic!("a bug in a handler")
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_a_500_with_an_id_and_the_server_keeps_serving() {
        let app = Router::new().route("/boom", get(boom)).route("/fine", get(|| async { "fine" }));
        let (addr, _stop) = spawn(app).await;
        let answer = exchange(&addr, "GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        let id = json["error_id"].as_str().expect("an error id");
        assert_eq!(id.len(), 16, "{json}");
        assert!(json["error"].as_str().unwrap().contains(id), "{json}");
        let again = exchange(&addr, "GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(again.starts_with("HTTP/1.1 200") && again.ends_with("fine"), "{again}");
    }
}
