//! The last line of defence: a request whose handler panics gets a 500 with an error id,
//! the panic is logged under that id, and the server keeps serving. Input must never
//! make a handler panic (property tests check the parsers); this keeps one bug from
//! closing a client's connection without an answer.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Middleware: runs the rest of the stack, turning a panic into [`ApiError::Bug`].
pub(crate) async fn catch_panic(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    match CatchUnwind(Box::pin(next.run(request))).await {
        Ok(response) => response,
        Err(payload) => {
            let id = error_id();
            tracing::error!(error_id = %id, %method, %path, panic = %message(payload.as_ref()), "a request handler panicked");
            ApiError::Bug { id }.into_response()
        }
    }
}

/// What a panic said, when it said it with text.
fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// 16 hex characters, random (a counter and the time when the OS gives no randomness).
fn error_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes = (u64::from(nanos) << 32 | COUNTER.fetch_add(1, Ordering::Relaxed)).to_be_bytes();
    }
    crate::keys::hex(&bytes)
}

/// A future whose panic, while polled, becomes `Err(payload)`.
struct CatchUnwind(Pin<Box<dyn Future<Output = Response> + Send>>);

impl Future for CatchUnwind {
    type Output = Result<Response, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        // A panicked future is never polled again (this future completes with the
        // error), so no broken state can be observed after the unwind.
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(response)) => Poll::Ready(Ok(response)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
