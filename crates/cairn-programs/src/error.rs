//! What can go wrong while running programs.

use thiserror::Error;

/// A failure of the runner or of recording engagement.
#[derive(Debug, Error)]
pub enum ProgramError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
    /// The engine runtime failed.
    #[error(transparent)]
    Runtime(#[from] cairn_runtime::RuntimeError),
    /// A channel could not be set up (SMTP settings, the webhook client).
    #[error(transparent)]
    Channel(#[from] cairn_channels::ChannelError),
    /// A task of the runner stopped before it finished (it panicked or was cancelled).
    #[error("{0}")]
    Internal(String),
    /// Something the caller asked for does not exist or does not fit.
    #[error("{0}")]
    Invalid(String),
}
