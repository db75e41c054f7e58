//! Who is signed in to the web UI, and what their role allows.
//!
//! Every UI route is declared once, in [`crate::ui::routes`], with the [`Permission`] it
//! needs; the router is built from that list and the role × route tests enumerate it, so
//! a new page cannot be added without saying who may use it.
//!
//! SKELETON (this commit): the contract the UI pages and the sign-in work code against.
//! [`SignedIn`] is not yet read from a session: every request is treated as a demo admin.
//! Sessions, sign-in, CSRF and the audit log replace this in the same piece of work.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, and users, API keys and the audit log.
    Admin,
    /// Definitions and programs (reload, pause, resume), and everything a viewer sees.
    Ops,
    /// Accounts and tasks: health overrides, notes, claiming and completing tasks.
    Csm,
    /// Reads every page; changes nothing.
    Viewer,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read any page or report.
    Read,
    /// A CSM's work: health overrides, notes, claiming and completing tasks.
    Work,
    /// Operations: workspace reloads, pausing and resuming programs.
    Operate,
    /// Administration: users, API keys, the audit log.
    Administer,
}

impl Role {
    /// Whether this role may use a route that needs `p`.
    pub fn allows(self, p: Permission) -> bool {
        matches!(
            (self, p),
            (_, Permission::Read) | (Role::Admin, _) | (Role::Ops, Permission::Operate) | (Role::Csm, Permission::Work)
        )
    }

    /// The role's name as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Csm => "csm",
            Role::Viewer => "viewer",
        }
    }
}

/// The person behind a UI request.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user's row id.
    pub user_id: i64,
    /// Their sign-in address.
    pub email: String,
    /// Their role.
    pub role: Role,
    /// The session's CSRF token: every form carries it as the hidden field `csrf`.
    pub csrf: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        // SKELETON: replaced by the session lookup.
        Ok(SignedIn { user_id: 0, email: "demo@cairn.localhost".into(), role: Role::Admin, csrf: String::new() })
    }
}

/// Lets the request through when the signed-in user's role allows `needs`; 403 otherwise.
pub(crate) async fn require(
    needs: Permission,
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let user = SignedIn::from_request_parts(&mut parts, &state).await?;
    if !user.role.allows(needs) {
        return Err(ApiError::Forbidden(format!(
            "your role ({}) may not do this: ask an admin for a role that may",
            user.role.as_str()
        )));
    }
    Ok(next.run(Request::from_parts(parts, body)).await)
}
