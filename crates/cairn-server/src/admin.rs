//! The admin pages: users (`/admin/users`: add, change role, disable), API keys
//! (`/admin/keys`: create — shown once — and revoke) and the audit log (`/admin/audit`).
//! Every change is audited. Routes need `Permission::Administer` (see `ui::routes`).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use cairn_store::{ApiKeyListing, AuditActor, AuditEntry, AuditQuery, KeyKind, KeyScope, UserRecord};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::audit::{self, AuditAction};
use crate::auth::{Role, SignedIn, password};
use crate::error::ApiError;
use crate::ui::Chrome;

/// Entries per page of the audit log.
const AUDIT_PAGE: u32 = 100;

fn html(page: impl Template) -> Response {
    match page.render() {
        Ok(body) => Html(body).into_response(),
        Err(e) => ApiError::Internal(format!("rendering an admin page: {e}")).into_response(),
    }
}

fn with_status(status: StatusCode, page: impl Template) -> Response {
    let mut r = html(page);
    *r.status_mut() = status;
    r
}

/// A user as the users page lists them.
struct UserRow {
    id: i64,
    email: String,
    role: String,
    created: String,
    disabled: Option<String>,
    is_me: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage<'a> {
    chrome: Chrome,
    csrf: &'a str,
    users: Vec<UserRow>,
    roles: [&'static str; 4],
    error: Option<String>,
    email: &'a str,
}

async fn users_page(
    state: &AppState,
    me: &SignedIn,
    status: StatusCode,
    error: Option<String>,
    email: &str,
) -> Response {
    let users: Vec<UserRecord> = match state.store.list_users().await {
        Ok(u) => u,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let users = users
        .into_iter()
        .map(|u| UserRow {
            is_me: u.id == me.user_id,
            id: u.id,
            email: u.email,
            role: u.role,
            created: u.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            disabled: u.disabled_at.map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()),
        })
        .collect();
    let roles = Role::ALL.map(Role::as_str);
    with_status(
        status,
        UsersPage { chrome: Chrome::new(me, "/admin/users"), csrf: &me.csrf, users, roles, error, email },
    )
}

/// `GET /admin/users`.
pub(crate) async fn users(State(state): State<AppState>, me: SignedIn) -> Response {
    users_page(&state, &me, StatusCode::OK, None, "").await
}

/// The add-user form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NewUserForm {
    email: String,
    role: String,
    password: String,
}

/// `POST /admin/users`: adds a user.
pub(crate) async fn add_user(State(state): State<AppState>, me: SignedIn, Form(f): Form<NewUserForm>) -> Response {
    let email = f.email.trim();
    let refuse = |msg: String| users_page(&state, &me, StatusCode::BAD_REQUEST, Some(msg), email);
    if let Err(e) = cairn_core::Email::parse(email) {
        return refuse(format!("`{email}` is not an email address: {e}")).await;
    }
    let role = match Role::parse(&f.role) {
        Ok(r) => r,
        Err(e) => return refuse(e.to_string()).await,
    };
    if let Err(e) = password::check_strength(&f.password) {
        return refuse(e.to_string()).await;
    }
    let hash = match password::hash_new(&f.password) {
        Ok(h) => h,
        Err(e) => return ApiError::Internal(e.to_string()).into_response(),
    };
    match state.store.create_user(email, &hash, role.as_str(), state.clock.now()).await {
        Ok(Some(id)) => {
            audit::record(
                &state,
                &me.actor(),
                AuditAction::UserAdded,
                email,
                json!({ "id": id, "role": role.as_str() }),
            )
            .await;
            Redirect::to("/admin/users").into_response()
        }
        Ok(None) => refuse(format!("there is a user with the address `{email}` already")).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The change-role form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RoleForm {
    role: String,
}

/// `POST /admin/users/{id}/role`.
pub(crate) async fn change_role(
    State(state): State<AppState>,
    me: SignedIn,
    Path(id): Path<i64>,
    Form(f): Form<RoleForm>,
) -> Response {
    let role = match Role::parse(&f.role) {
        Ok(r) => r,
        Err(e) => return users_page(&state, &me, StatusCode::BAD_REQUEST, Some(e.to_string()), "").await,
    };
    if id == me.user_id {
        let msg = "You cannot change your own role: ask another admin.".to_string();
        return users_page(&state, &me, StatusCode::CONFLICT, Some(msg), "").await;
    }
    match state.store.set_user_role(id, role.as_str()).await {
        Ok(true) => {
            audit::record(
                &state,
                &me.actor(),
                AuditAction::UserRoleChanged,
                &id.to_string(),
                json!({ "role": role.as_str() }),
            )
            .await;
            Redirect::to("/admin/users").into_response()
        }
        Ok(false) => users_page(&state, &me, StatusCode::NOT_FOUND, Some(format!("no user {id}")), "").await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /admin/users/{id}/disable`: the user cannot sign in any more; their sessions end.
pub(crate) async fn disable_user(State(state): State<AppState>, me: SignedIn, Path(id): Path<i64>) -> Response {
    if id == me.user_id {
        let msg = "You cannot disable yourself: ask another admin.".to_string();
        return users_page(&state, &me, StatusCode::CONFLICT, Some(msg), "").await;
    }
    match state.store.disable_user(id, state.clock.now()).await {
        Ok(true) => {
            audit::record(&state, &me.actor(), AuditAction::UserDisabled, &id.to_string(), json!({})).await;
            Redirect::to("/admin/users").into_response()
        }
        Ok(false) => {
            let msg = format!("no user {id}, or disabled already");
            users_page(&state, &me, StatusCode::NOT_FOUND, Some(msg), "").await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A key as the keys page lists it.
struct KeyRow {
    id: i64,
    kind: &'static str,
    name: String,
    prefix: String,
    scope: &'static str,
    created: String,
    revoked: Option<String>,
}

impl From<ApiKeyListing> for KeyRow {
    fn from(k: ApiKeyListing) -> KeyRow {
        KeyRow {
            id: k.id,
            kind: k.kind.as_str(),
            name: k.name,
            prefix: k.prefix,
            scope: k.scope.map(KeyScope::as_str).unwrap_or(""),
            created: k.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            revoked: k.revoked_at.map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage<'a> {
    chrome: Chrome,
    csrf: &'a str,
    keys: Vec<KeyRow>,
    error: Option<String>,
    /// A key just created: shown this once.
    created: Option<(String, &'static str, String)>,
}

async fn keys_page(
    state: &AppState,
    me: &SignedIn,
    status: StatusCode,
    error: Option<String>,
    created: Option<(String, &'static str, String)>,
) -> Response {
    let keys = match state.store.list_api_keys().await {
        Ok(k) => k.into_iter().rev().map(KeyRow::from).collect(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let shows_key = created.is_some();
    let mut r =
        with_status(status, KeysPage { chrome: Chrome::new(me, "/admin/keys"), csrf: &me.csrf, keys, error, created });
    if shows_key {
        r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    }
    r
}

/// `GET /admin/keys`.
pub(crate) async fn keys(State(state): State<AppState>, me: SignedIn) -> Response {
    keys_page(&state, &me, StatusCode::OK, None, None).await
}

/// The create-key form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NewKeyForm {
    kind: String,
    name: String,
    scope: String,
}

/// `POST /admin/keys`: creates a key and shows it, once.
pub(crate) async fn create_key(State(state): State<AppState>, me: SignedIn, Form(f): Form<NewKeyForm>) -> Response {
    let Some(kind) = KeyKind::parse(f.kind.trim()) else {
        let msg = format!("unknown key kind `{}`: choose write, publishable or secret", f.kind);
        return keys_page(&state, &me, StatusCode::BAD_REQUEST, Some(msg), None).await;
    };
    let scope = match (kind, KeyScope::parse(f.scope.trim())) {
        (KeyKind::Secret, Some(s)) => Some(s),
        (KeyKind::Secret, None) => {
            let msg = format!("unknown scope `{}`: choose read, write or admin", f.scope);
            return keys_page(&state, &me, StatusCode::BAD_REQUEST, Some(msg), None).await;
        }
        _ => None,
    };
    let name = match f.name.trim() {
        "" => kind.as_str().to_string(),
        n => n.chars().take(100).collect(),
    };
    let mut random = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut random) {
        return ApiError::Internal(format!("no randomness from the OS: {e}")).into_response();
    }
    let key = crate::keys::generate_key(kind, random);
    let prefix = crate::keys::key_prefix(&key).to_string();
    let hash = crate::keys::hash_key(&key);
    let now = state.clock.now();
    let stored = match scope {
        Some(scope) => state.store.create_secret_key(scope, &name, &hash, &prefix, now).await,
        None => state.store.create_api_key(kind, &name, &hash, &prefix, now).await,
    };
    if let Err(e) = stored {
        return ApiError::from(e).into_response();
    }
    let detail = json!({ "kind": kind.as_str(), "name": name, "scope": scope.map(KeyScope::as_str) });
    audit::record(&state, &me.actor(), AuditAction::KeyCreated, &prefix, detail).await;
    keys_page(&state, &me, StatusCode::CREATED, None, Some((key, kind.as_str(), name))).await
}

/// `POST /admin/keys/{id}/revoke`: the key stops working at once, on every node.
pub(crate) async fn revoke_key(State(state): State<AppState>, me: SignedIn, Path(id): Path<i64>) -> Response {
    let listing = match state.store.list_api_keys().await {
        Ok(keys) => keys.into_iter().find(|k| k.id == id),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(key) = listing else {
        return keys_page(&state, &me, StatusCode::NOT_FOUND, Some(format!("no key {id}")), None).await;
    };
    match state.store.revoke_api_key(id, state.clock.now()).await {
        Ok(true) => {
            let detail = json!({ "id": id, "kind": key.kind.as_str(), "name": key.name });
            audit::record(&state, &me.actor(), AuditAction::KeyRevoked, &key.prefix, detail).await;
            Redirect::to("/admin/keys").into_response()
        }
        Ok(false) => {
            let msg = format!("key {id} is revoked already");
            keys_page(&state, &me, StatusCode::CONFLICT, Some(msg), None).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// An entry as the audit page lists it.
struct AuditRow {
    at: String,
    actor_kind: &'static str,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

impl From<AuditEntry> for AuditRow {
    fn from(e: AuditEntry) -> AuditRow {
        let actor_kind = match &e.actor {
            AuditActor::User { .. } => "user",
            AuditActor::Key { .. } => "key",
            AuditActor::Anonymous { .. } => "anonymous",
            AuditActor::System => "system",
        };
        AuditRow {
            at: e.at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor_kind,
            actor: e.actor.label().to_string(),
            action: e.action,
            target: e.target,
            detail: if e.detail == json!({}) { String::new() } else { e.detail.to_string() },
        }
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditRow>,
    actions: Vec<&'static str>,
    action: String,
    actor: String,
    /// The query of the next (older) page, when there may be one.
    older: Option<String>,
}

/// The audit page's filters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AuditFilter {
    action: String,
    actor: String,
    before: Option<i64>,
}

/// `GET /admin/audit?action=&actor=&before=`: newest first, a page at a time.
pub(crate) async fn audit(State(state): State<AppState>, me: SignedIn, Query(f): Query<AuditFilter>) -> Response {
    let action = f.action.trim().to_string();
    let actor = f.actor.trim().to_string();
    let query = AuditQuery {
        action: (!action.is_empty()).then(|| action.clone()),
        actor: (!actor.is_empty()).then(|| actor.clone()),
        before: f.before,
        limit: AUDIT_PAGE,
    };
    let entries = match state.store.audit_entries(&query).await {
        Ok(e) => e,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let older = (entries.len() == AUDIT_PAGE as usize).then(|| {
        let last = entries.last().map(|e| e.id).unwrap_or_default();
        form_urlencoded::Serializer::new(String::new())
            .append_pair("action", &action)
            .append_pair("actor", &actor)
            .append_pair("before", &last.to_string())
            .finish()
    });
    let entries = entries.into_iter().map(AuditRow::from).collect();
    let actions = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
    html(AuditPage { chrome: Chrome::new(&me, "/admin/audit"), entries, actions, action, actor, older })
}
