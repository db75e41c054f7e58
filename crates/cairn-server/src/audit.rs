//! The audit log as the handlers write it: [`record`] with an [`AuditAction`]. Reading it
//! is the admin page's (`/admin/audit`).

use cairn_store::{AuditActor, NewAuditEntry};
use serde_json::Value;

use crate::AppState;

/// What is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// A user signed in.
    SignIn,
    /// A sign-in failed (wrong password, unknown or disabled address).
    SignInFailed,
    /// A user signed out.
    SignOut,
    /// The workspace definitions were reloaded.
    WorkspaceReload,
    /// A program was paused.
    ProgramPaused,
    /// A program was resumed.
    ProgramResumed,
    /// An account's health was overridden (or the override cleared).
    HealthOverride,
    /// A note was added to an account.
    NoteAdded,
    /// An API key was created.
    KeyCreated,
    /// An API key was revoked.
    KeyRevoked,
    /// A user was added.
    UserAdded,
    /// A user's role was changed.
    UserRoleChanged,
    /// A user was disabled.
    UserDisabled,
}

impl AuditAction {
    /// Every action, for the audit page's filter.
    pub const ALL: [AuditAction; 13] = [
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::SignOut,
        AuditAction::WorkspaceReload,
        AuditAction::ProgramPaused,
        AuditAction::ProgramResumed,
        AuditAction::HealthOverride,
        AuditAction::NoteAdded,
        AuditAction::KeyCreated,
        AuditAction::KeyRevoked,
        AuditAction::UserAdded,
        AuditAction::UserRoleChanged,
        AuditAction::UserDisabled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "session.sign_in",
            AuditAction::SignInFailed => "session.sign_in_failed",
            AuditAction::SignOut => "session.sign_out",
            AuditAction::WorkspaceReload => "workspace.reload",
            AuditAction::ProgramPaused => "program.paused",
            AuditAction::ProgramResumed => "program.resumed",
            AuditAction::HealthOverride => "health.override",
            AuditAction::NoteAdded => "account.note_added",
            AuditAction::KeyCreated => "key.created",
            AuditAction::KeyRevoked => "key.revoked",
            AuditAction::UserAdded => "user.added",
            AuditAction::UserRoleChanged => "user.role_changed",
            AuditAction::UserDisabled => "user.disabled",
        }
    }
}

/// Records that `actor` did `action` to `target` now (the state's clock). `detail` never
/// holds a secret. A failure to write is logged, not returned: the action it describes
/// has already happened.
pub async fn record(state: &AppState, actor: &AuditActor, action: AuditAction, target: &str, detail: Value) {
    let entry = NewAuditEntry { at: state.clock.now(), actor, action: action.as_str(), target, detail: &detail };
    if let Err(e) = state.store.record_audit(&entry).await {
        tracing::error!(error = %e, action = action.as_str(), target, "the audit log could not be written");
    }
}
