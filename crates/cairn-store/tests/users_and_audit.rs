//! Users, sessions, the audit log and secret keys' scopes, on both backends (as
//! `conformance.rs`: a fresh SQLite file and a fresh PostgreSQL schema per scenario).

mod common;

use cairn_store::{AuditActor, AuditQuery, KeyKind, KeyScope, NewAuditEntry, Store};
use common::*;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            use crate::common::{run, Backend};
            $(
                #[tokio::test]
                async fn $scenario() {
                    run(Backend::Sqlite, stringify!($scenario), super::$scenario).await;
                }
            )*
        }
        mod postgres {
            use crate::common::{run, Backend};
            $(
                #[tokio::test]
                async fn $scenario() {
                    run(Backend::Postgres, stringify!($scenario), super::$scenario).await;
                }
            )*
        }
    };
}

on_both_backends! {
    a_user_is_found_by_address_in_any_case_and_an_address_is_taken_once,
    a_session_is_found_until_it_ends_and_never_for_a_disabled_user,
    a_users_role_can_change,
    audit_entries_read_newest_first_and_filter_by_action_and_actor,
    secret_keys_keep_their_scope_and_other_keys_have_none,
}

fn t0() -> Timestamp {
    timestamp(RECEIVED_AT)
}

async fn a_user_is_found_by_address_in_any_case_and_an_address_is_taken_once(store: Store) {
    let id = store.create_user("Ana@Example.com", "$argon2id$x", "admin", t0()).await.unwrap().expect("created");
    assert_eq!(store.create_user(" ana@example.COM ", "$argon2id$y", "viewer", t0()).await.unwrap(), None);
    let (user, hash) = store.user_for_sign_in("ANA@example.com").await.unwrap().expect("found");
    assert_eq!(
        (user.id, user.email.as_str(), user.role.as_str(), hash.as_str()),
        (id, "Ana@Example.com", "admin", "$argon2id$x")
    );
    assert_eq!(user.created_at, t0());
    assert_eq!(store.user_for_sign_in("bob@example.com").await.unwrap(), None);
    store.create_user("bob@example.com", "h", "csm", t0()).await.unwrap().expect("created");
    let emails: Vec<String> = store.list_users().await.unwrap().into_iter().map(|u| u.email).collect();
    assert_eq!(emails, ["Ana@Example.com", "bob@example.com"]);
}

async fn a_session_is_found_until_it_ends_and_never_for_a_disabled_user(store: Store) {
    let ana = store.create_user("ana@example.com", "h", "csm", t0()).await.unwrap().unwrap();
    let ends = t0() + SignedDuration::from_hours(12);
    store.create_session("hash-1", ana, "csrf-1", t0(), ends).await.unwrap();
    let s = store.find_session("hash-1", t0()).await.unwrap().expect("live");
    assert_eq!(
        (s.user.id, s.csrf.as_str(), s.created_at, s.expires_at, s.last_seen),
        (ana, "csrf-1", t0(), ends, t0())
    );
    let later = t0() + SignedDuration::from_hours(1);
    store.touch_session("hash-1", later).await.unwrap();
    assert_eq!(store.find_session("hash-1", later).await.unwrap().unwrap().last_seen, later);
    // The last millisecond it lives, then gone.
    assert!(store.find_session("hash-1", ends - SignedDuration::from_millis(1)).await.unwrap().is_some());
    assert_eq!(store.find_session("hash-1", ends).await.unwrap(), None);
    assert_eq!(store.find_session("hash-2", t0()).await.unwrap(), None);

    // A sign-in after the end removes the ended session's row.
    store.create_session("hash-2", ana, "csrf-2", ends, ends + SignedDuration::from_hours(12)).await.unwrap();
    assert!(!store.end_session("hash-1").await.unwrap(), "the ended session was removed");
    assert!(store.end_session("hash-2").await.unwrap());
    assert_eq!(store.find_session("hash-2", ends).await.unwrap(), None);

    store.create_session("hash-3", ana, "csrf-3", t0(), ends).await.unwrap();
    assert!(store.disable_user(ana, later).await.unwrap());
    assert!(!store.disable_user(ana, later).await.unwrap(), "disabled once");
    assert_eq!(store.find_session("hash-3", later).await.unwrap(), None);
    let (user, _) = store.user_for_sign_in("ana@example.com").await.unwrap().unwrap();
    assert_eq!(user.disabled_at, Some(later));
}

async fn a_users_role_can_change(store: Store) {
    let ana = store.create_user("ana@example.com", "h", "viewer", t0()).await.unwrap().unwrap();
    assert!(store.set_user_role(ana, "ops").await.unwrap());
    assert!(!store.set_user_role(ana + 100, "ops").await.unwrap());
    assert_eq!(store.list_users().await.unwrap()[0].role, "ops");
}

async fn audit_entries_read_newest_first_and_filter_by_action_and_actor(store: Store) {
    let ana = AuditActor::User { id: 1, email: "ana@example.com".into() };
    let key = AuditActor::Key { id: 7, prefix: "cairn_sk_12345678".into() };
    let anonymous = AuditActor::Anonymous { label: "eve@example.com".into() };
    let entries = [
        (&ana, "session.sign_in", ""),
        (&anonymous, "session.sign_in_failed", "eve@example.com"),
        (&key, "health.override", "42"),
        (&ana, "program.paused", "welcome"),
        (&AuditActor::System, "user.added", "bob@example.com"),
    ];
    let mut ids = Vec::new();
    for (i, (actor, action, target)) in entries.iter().enumerate() {
        let at = t0() + SignedDuration::from_secs(i as i64);
        let detail = json!({ "n": i });
        ids.push(store.record_audit(&NewAuditEntry { at, actor, action, target, detail: &detail }).await.unwrap());
    }
    let all = store.audit_entries(&AuditQuery { limit: 100, ..AuditQuery::default() }).await.unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["user.added", "program.paused", "health.override", "session.sign_in_failed", "session.sign_in"]
    );
    assert_eq!(all[2].actor, key);
    assert_eq!(all[2].target, "42");
    assert_eq!(all[2].detail, json!({ "n": 2 }));
    assert_eq!(all[2].at, t0() + SignedDuration::from_secs(2));
    assert_eq!(all[0].actor, AuditActor::System);
    assert_eq!(all[3].actor, anonymous);

    let by_ana = store
        .audit_entries(&AuditQuery { actor: Some("ana@example.com".into()), limit: 100, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(by_ana.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[3], ids[0]]);
    let sign_ins = store
        .audit_entries(&AuditQuery { action: Some("session.sign_in".into()), limit: 100, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(sign_ins.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[0]]);
    let page =
        store.audit_entries(&AuditQuery { before: Some(ids[2]), limit: 1, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[1]]);
}

async fn secret_keys_keep_their_scope_and_other_keys_have_none(store: Store) {
    store.create_secret_key(KeyScope::Read, "dashboards", "h-read", "cairn_sk_r", t0()).await.unwrap();
    store.create_api_key(KeyKind::Secret, "ops", "h-full", "cairn_sk_f", t0()).await.unwrap();
    store.create_api_key(KeyKind::Write, "web", "h-write", "cairn_wk_w", t0()).await.unwrap();
    assert_eq!(store.find_api_key("h-read").await.unwrap().unwrap().scope, Some(KeyScope::Read));
    assert_eq!(store.find_api_key("h-full").await.unwrap().unwrap().scope, Some(KeyScope::Admin));
    assert_eq!(store.find_api_key("h-write").await.unwrap().unwrap().scope, None);
    let scopes: Vec<Option<KeyScope>> = store.list_api_keys().await.unwrap().into_iter().map(|k| k.scope).collect();
    assert_eq!(scopes, [Some(KeyScope::Read), Some(KeyScope::Admin), None]);
    assert!(KeyScope::Admin.allows(KeyScope::Write) && KeyScope::Write.allows(KeyScope::Read));
    assert!(!KeyScope::Read.allows(KeyScope::Write) && !KeyScope::Write.allows(KeyScope::Admin));
}
