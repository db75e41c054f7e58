//! `cairn user add|list|disable`, and the demo's admin (`cairn serve --demo`).
//!
//! A password is read from stdin (`--password-stdin`), never from an argument, where
//! other users of the machine would see it in `ps`.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cairn_core::Clock;
use cairn_server::audit::AuditAction;
use cairn_server::auth::{Role, password};
use cairn_store::{AuditActor, NewAuditEntry, Store};
use clap::Subcommand;
use serde_json::json;

use crate::cli::{DbArg, open_store};

/// The address of the demo's admin.
pub const DEMO_ADMIN: &str = "demo@cairn.localhost";

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user of the web UI (the first admin, say). The password is read from stdin:
    /// `printf '%s' "$PASSWORD" | cairn user add --email ana@example.com --role admin --password-stdin`
    Add {
        /// Their sign-in address (case does not matter when signing in)
        #[arg(long)]
        email: String,
        /// admin (users, keys, audit log, everything), ops (definitions, programs), csm
        /// (accounts, tasks, overrides, notes) or viewer (read-only)
        #[arg(long)]
        role: String,
        /// Read the password from stdin (its first line); at least 10 characters
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the users: address, role, when added, and whether disabled
    List {
        /// Print the list as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Disable a user: they cannot sign in any more and their sessions end at once
    Disable {
        /// Their sign-in address
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArg,
    },
}

async fn audit(store: &Store, clock: &dyn Clock, action: AuditAction, target: &str, detail: serde_json::Value) {
    let entry =
        NewAuditEntry { at: clock.now(), actor: &AuditActor::System, action: action.as_str(), target, detail: &detail };
    if let Err(e) = store.record_audit(&entry).await {
        tracing::error!(error = %e, "the audit log could not be written");
    }
}

/// Runs a `cairn user` command.
pub async fn run(command: UserCommand, clock: &dyn Clock) -> Result<ExitCode> {
    match command {
        UserCommand::Add { email, role, password_stdin, db } => {
            let role = Role::parse(&role)?;
            let email = email.trim();
            cairn_core::Email::parse(email).map_err(|e| anyhow::anyhow!("--email `{email}`: {e}"))?;
            if !password_stdin {
                bail!(
                    "give the password on stdin with --password-stdin (e.g. `printf '%s' \"$PASSWORD\" | cairn user add … --password-stdin`): \
an argument would show it to every user of this machine"
                );
            }
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input).context("reading the password from stdin")?;
            let pw = input.lines().next().unwrap_or("");
            password::check_strength(pw)?;
            let hash = password::hash_new(pw)?;
            let store = open_store(&db.db).await?;
            let Some(id) = store.create_user(email, &hash, role.as_str(), clock.now()).await? else {
                bail!("there is a user with the address `{email}` already (`cairn user list`)");
            };
            audit(&store, clock, AuditAction::UserAdded, email, json!({ "id": id, "role": role.as_str() })).await;
            eprintln!("added {email} ({}): sign in at /login", role.as_str());
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::List { json, db } => {
            let store = open_store(&db.db).await?;
            let users = store.list_users().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({ "users": users }))?);
            } else if users.is_empty() {
                println!("no users yet: `cairn user add --email E --role admin --password-stdin`");
            } else {
                println!("{:>4}  {:<32} {:<7} {:<25} disabled", "id", "email", "role", "added");
                for u in users {
                    let disabled = u.disabled_at.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
                    println!("{:>4}  {:<32} {:<7} {:<25} {disabled}", u.id, u.email, u.role, u.created_at.to_string());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Disable { email, db } => {
            let store = open_store(&db.db).await?;
            let Some((user, _)) = store.user_for_sign_in(&email).await? else {
                bail!("no user `{email}` (`cairn user list`)");
            };
            if !store.disable_user(user.id, clock.now()).await? {
                bail!("{} is disabled already", user.email);
            }
            audit(&store, clock, AuditAction::UserDisabled, &user.email, json!({ "id": user.id })).await;
            eprintln!("disabled {}: their sessions have ended", user.email);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Gives the demo's admin ([`DEMO_ADMIN`]) a new random password, creating the user on
/// the first start; the password, to print once (only its hash is stored).
pub async fn demo_admin(store: &Store, clock: &dyn Clock) -> Result<String> {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let pw: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let hash = password::hash_new(&pw)?;
    match store.user_for_sign_in(DEMO_ADMIN).await? {
        Some((user, _)) => {
            store.set_user_password(user.id, &hash).await?;
        }
        None => {
            if let Some(id) = store.create_user(DEMO_ADMIN, &hash, Role::Admin.as_str(), clock.now()).await? {
                audit(
                    store,
                    clock,
                    AuditAction::UserAdded,
                    DEMO_ADMIN,
                    json!({ "id": id, "role": "admin", "demo": true }),
                )
                .await;
            }
        }
    }
    Ok(pw)
}
