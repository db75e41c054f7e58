//! The one error type of a delivery attempt.

use thiserror::Error;

/// Why a message could not be built or delivered.
///
/// The scheduler only needs one bit from it: [`ChannelError::is_transient`] says whether
/// to retry later (with [`crate::RetryPolicy`]) or to dead-letter now. Messages never
/// contain a secret.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// The message itself is unusable (an address that does not parse, a CR/LF in a
    /// header, an empty domain); sending it again will not help.
    #[error("invalid message: {field}: {reason}")]
    InvalidMessage {
        /// The field at fault, e.g. `subject` or `to`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The channel's settings are unusable (a malformed webhook URL, an SMTP host that is
    /// not a name); fix the configuration.
    #[error("invalid channel configuration: {0}")]
    Config(String),
    /// The attempt failed but may succeed later: connection refused or reset, a timeout,
    /// an SMTP 4xx, an HTTP 5xx, 408 or 429.
    #[error("transient delivery failure{}: {detail}", code_suffix(*code))]
    Transient {
        /// The SMTP or HTTP status, when the other side answered.
        code: Option<u16>,
        /// What happened, for the dead-letter record and the operator.
        detail: String,
    },
    /// The other side refused for good: an SMTP 5xx (550 mailbox unavailable), an HTTP
    /// 4xx other than 408 and 429, a redirect we will not follow.
    #[error("permanent delivery failure{}: {detail}", code_suffix(*code))]
    Permanent {
        /// The SMTP or HTTP status, when the other side answered.
        code: Option<u16>,
        /// What happened, for the dead-letter record and the operator.
        detail: String,
    },
}

fn code_suffix(code: Option<u16>) -> String {
    code.map(|c| format!(" ({c})")).unwrap_or_default()
}

impl ChannelError {
    /// True when retrying later may succeed; false when the attempt should be
    /// dead-lettered at once.
    pub fn is_transient(&self) -> bool {
        matches!(self, ChannelError::Transient { .. })
    }

    /// The SMTP or HTTP status the other side answered with, if any.
    pub fn code(&self) -> Option<u16> {
        match self {
            ChannelError::Transient { code, .. } | ChannelError::Permanent { code, .. } => *code,
            _ => None,
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ChannelError::InvalidMessage { field, reason: reason.into() }
    }
}
