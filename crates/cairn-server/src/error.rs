//! The one HTTP error type: every failure a handler can meet maps to a status and a JSON
//! body `{"success": false, "error": "...", "field": "..."}` here, and nowhere else.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_core::tracking::MessageError;
use serde_json::json;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No write key, or one that is unknown, revoked or of the wrong kind: the tracking
    /// API, whose clients send the key as the Basic user name (`WWW-Authenticate: Basic`).
    #[error("{0}")]
    Unauthorized(String),
    /// No Bearer key, or one that is unknown, revoked or of the wrong kind: the REST API
    /// and the in-app inbox (`WWW-Authenticate: Bearer`).
    #[error("{0}")]
    UnauthorizedBearer(String),
    /// The request body is larger than the endpoint accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The request body is in an encoding (`Content-Encoding`) that is not understood.
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// The request body is not a valid message.
    #[error("{0}")]
    BadMessage(MessageError),
    /// Any other malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// A batch whose every message was rejected: the body lists each one.
    #[error("every message in the batch was rejected")]
    BadBatch(serde_json::Value),
    /// A request rejected with a body that lists every problem (e.g. workspace
    /// diagnostics).
    #[error("the request was rejected")]
    Rejected(serde_json::Value),
    /// Signed in (or authenticated) but not allowed: the role or key scope does not permit it.
    #[error("{0}")]
    Forbidden(String),
    /// No such route, or no such thing at it.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is stored (a task that is already done).
    #[error("{0}")]
    Conflict(String),
    /// A failure that is neither the client's nor the store's (logged; a bug to report).
    #[error("{0}")]
    Internal(String),
    /// A handler panicked (a bug): the panic is logged under `id`, which the client gets
    /// to report.
    #[error("internal error {id}: the request could not be completed; please report this id")]
    Bug {
        /// Names the panic in the log.
        id: String,
    },
    /// The store failed; the client should retry (nothing was acknowledged).
    #[error("the event store is unavailable, retry later: {0}")]
    Unavailable(#[from] cairn_store::StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized(_) | ApiError::UnauthorizedBearer(_) => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadMessage(_) | ApiError::BadRequest(_) | ApiError::BadBatch(_) | ApiError::Rejected(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Bug { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(e) => {
                tracing::error!(error = %e, "store unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let field = match &self {
            ApiError::BadMessage(m) => m.field.clone(),
            _ => None,
        };
        let challenge = match &self {
            ApiError::Unauthorized(_) => Some("Basic realm=\"cairn\""),
            ApiError::UnauthorizedBearer(_) => Some("Bearer realm=\"cairn\""),
            _ => None,
        };
        let error_id = match &self {
            ApiError::Bug { id } => Some(id.clone()),
            _ => None,
        };
        if let ApiError::BadBatch(body) | ApiError::Rejected(body) = self {
            return (status, axum::Json(body)).into_response();
        }
        let body = match (field, error_id) {
            (Some(f), _) => json!({ "success": false, "error": self.to_string(), "field": f }),
            (None, Some(id)) => json!({ "success": false, "error": self.to_string(), "error_id": id }),
            (None, None) => json!({ "success": false, "error": self.to_string() }),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(challenge) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(challenge));
        }
        response
    }
}

impl From<cairn_programs::ProgramError> for ApiError {
    fn from(e: cairn_programs::ProgramError) -> ApiError {
        use cairn_programs::ProgramError;
        match e {
            ProgramError::Store(s) | ProgramError::Runtime(cairn_runtime::RuntimeError::Store(s)) => {
                ApiError::Unavailable(s)
            }
            ProgramError::Invalid(m) => ApiError::BadRequest(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The fallback for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no such endpoint `{}`: tracking calls go to /v1/identify, /v1/track, /v1/group, /v1/page, /v1/screen, /v1/alias or /v1/batch",
        uri.path()
    ))
}
