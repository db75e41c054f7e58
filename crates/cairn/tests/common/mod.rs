//! The test harness: the real cairn server on a loopback port with a fresh database of
//! its own (a temporary SQLite file, or a PostgreSQL schema), zero2prod style.

#![allow(dead_code)]

pub mod ui;

use std::sync::Arc;

use cairn::app::{App, AppConfig, Definitions};
use cairn::loopback::{Connection, Response};
use cairn_core::FixedClock;
use cairn_store::{KeyKind, Store};
use jiff::Timestamp;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL the tests use; `None` when CAIRN_TEST_PG=skip.
pub fn postgres_base() -> Option<String> {
    let base = std::env::var("CAIRN_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    (base != "skip").then_some(base)
}

/// The instant the test clock stands at.
pub fn test_now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().expect("timestamp")
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: String,
    pub store: Store,
    pub write_key: String,
    pub secret_key: String,
    pub clock: Arc<FixedClock>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Starts the server on a fresh database; `None` when the backend is skipped.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_configured(backend, None, |_| {}).await
    }

    /// Starts the server with the engine and the program runner running the workspace
    /// folder `workspace`.
    pub async fn spawn_with_workspace(backend: Backend, workspace: &std::path::Path) -> Option<TestApp> {
        TestApp::spawn_configured(backend, Some(workspace), |_| {}).await
    }

    /// Starts the server through the app builder `cairn serve` uses, on a free loopback
    /// port and a fresh database, with the settings `configure` leaves.
    pub async fn spawn_configured(
        backend: Backend,
        workspace: Option<&std::path::Path>,
        configure: impl FnOnce(&mut AppConfig),
    ) -> Option<TestApp> {
        let (url, dir, schema) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                (format!("sqlite://{}", dir.path().join("cairn.db").display()), Some(dir), None)
            }
            Backend::Postgres => {
                let base = postgres_base()?;
                let schema = format!(
                    "http_{}_{}",
                    std::process::id(),
                    Timestamp::now().as_nanosecond().rem_euclid(1_000_000_000_000)
                );
                (format!("{base}?schema={schema}"), None, Some((base, schema)))
            }
        };
        let store = Store::open(&url).await.unwrap_or_else(|e| panic!("cannot open the test database {url}: {e}"));
        let write_key = cairn_server::generate_key(KeyKind::Write, [1; 32]);
        let secret_key = cairn_server::generate_key(KeyKind::Secret, [2; 32]);
        store
            .create_api_key(KeyKind::Write, "web", &cairn_server::hash_key(&write_key), "w", test_now())
            .await
            .expect("key");
        store
            .create_api_key(KeyKind::Secret, "api", &cairn_server::hash_key(&secret_key), "s", test_now())
            .await
            .expect("key");
        let clock = Arc::new(FixedClock::new(test_now()));
        let mut config = AppConfig::new("127.0.0.1:0", workspace.map(|d| Definitions::Folder(d.to_path_buf())));
        config.delivery.node = Some("test-server".into());
        configure(&mut config);
        let app = App::build(store.clone(), clock.clone(), config).await.unwrap_or_else(|e| panic!("{e:#}"));
        let addr = app.addr().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        Some(TestApp {
            addr,
            store,
            write_key,
            secret_key,
            clock,
            stop: Some(stop),
            running: Some(running),
            schema,
            _dir: dir,
        })
    }

    /// A new keep-alive connection.
    pub fn connection(&self) -> Connection {
        Connection::new(&self.addr)
    }

    /// POSTs JSON with the write key.
    pub async fn post(&self, path: &str, body: &str) -> Response {
        self.connection().post_json(path, Some(&self.write_key), body).await.expect("request")
    }

    /// GETs a REST API path with the secret key; the status and JSON body.
    pub async fn api_get(&self, path: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.secret_key);
        let r = self.raw("GET", path, &[("authorization", &auth)], b"").await;
        (r.status, serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null))
    }

    /// GETs a REST API path until `ok` holds of its body (or 30 s pass: the engine tails
    /// the log, and a loaded machine can take seconds); the last body.
    pub async fn wait_for(&self, path: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            let (_, body) = self.api_get(path).await;
            if ok(&body) {
                return body;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(30), "{path} never got there: {body}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Stores accounts and subscription lines given as CRM CSV text (header first), as
    /// `cairn import` would, under the source `crm`.
    pub async fn import_crm(&self, accounts: &str, subscriptions: &str) {
        use cairn_core::import::{Header, ImportKind, parse_account, parse_subscription};
        fn fields(l: &[String]) -> Vec<&str> {
            l.iter().map(String::as_str).collect()
        }
        fn rows(kind: ImportKind, text: &str) -> (Header, Vec<(u64, Vec<String>)>) {
            let mut lines = text.lines();
            let names: Vec<&str> = lines.next().expect("header").split(',').collect();
            let header = Header::parse(kind, &names).expect("header");
            (
                header,
                lines.enumerate().map(|(i, l)| (i as u64 + 2, l.split(',').map(str::to_string).collect())).collect(),
            )
        }
        let (header, lines) = rows(ImportKind::Accounts, accounts);
        let accounts: Vec<_> =
            lines.iter().map(|(n, l)| parse_account(&header, *n, &fields(l)).expect("account row")).collect();
        let (header, lines) = rows(ImportKind::Subscriptions, subscriptions);
        let subscriptions: Vec<_> =
            lines.iter().map(|(n, l)| parse_subscription(&header, *n, &fields(l)).expect("subscription row")).collect();
        let source = cairn_core::Source::parse("crm").expect("source");
        for r in self.store.upsert_accounts(source, &accounts).await.expect("accounts") {
            r.expect("account row");
        }
        for r in self.store.upsert_subscriptions(source, &subscriptions).await.expect("subscriptions") {
            r.expect("subscription row");
        }
    }

    /// POSTs JSON to a REST API path with the secret key.
    pub async fn api_post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.secret_key);
        let r = self
            .raw("POST", path, &[("authorization", &auth), ("content-type", "application/json")], body.as_bytes())
            .await;
        (r.status, serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null))
    }

    /// A new publishable key (`cairn_pk_…`), as a product's front end would embed it.
    pub async fn publishable_key(&self) -> String {
        let key = cairn_server::generate_key(KeyKind::Publishable, [3; 32]);
        self.store
            .create_api_key(KeyKind::Publishable, "inbox", &cairn_server::hash_key(&key), "p", test_now())
            .await
            .expect("key");
        key
    }

    /// A second publishable key, as another product (or a rotated key) would embed it.
    pub async fn another_publishable_key(&self) -> String {
        let key = cairn_server::generate_key(KeyKind::Publishable, [4; 32]);
        self.store
            .create_api_key(KeyKind::Publishable, "other", &cairn_server::hash_key(&key), "p2", test_now())
            .await
            .expect("key");
        key
    }

    /// The `userHash` of `user_id` that a product's backend computes with the identity
    /// secret of `publishable_key`.
    pub async fn user_hash(&self, publishable_key: &str, user_id: &str) -> String {
        let key = self.store.find_api_key(&cairn_server::hash_key(publishable_key)).await.expect("store");
        let key = key.expect("a live publishable key");
        let secret = cairn_server::inapp_identity_secret(&self.store, key.id).await.expect("identity secret");
        cairn_server::user_hash(&secret, user_id)
    }

    /// POSTs raw bytes with the given headers.
    pub async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.connection().request(method, path, headers, body).await.expect("request")
    }

    /// Stops the server (the runner and the engine with it) and removes the PostgreSQL
    /// schema.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), running).await;
            assert!(matches!(stopped, Ok(Ok(Ok(())))), "the server stops cleanly: {stopped:?}");
        }
        self.store.close().await;
        if let Some((base, schema)) = self.schema.take() {
            use sqlx::Connection as _;
            if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&mut c)
                    .await;
            }
        }
    }
}

/// Writes `yaml` as `workspace.yaml` in a new temporary folder.
pub fn workspace_dir(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("workspace.yaml"), yaml).expect("write the workspace");
    dir
}

/// Runs each listed `async fn scenario(app: &TestApp)` on SQLite and on PostgreSQL;
/// with `workspace = YAML;` first, with the engine running those definitions.
#[macro_export]
macro_rules! on_both_backends {
    (workspace = $yaml:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = $crate::common::workspace_dir($yaml);
                    let app = $crate::common::TestApp::spawn_with_workspace($crate::common::Backend::Sqlite, dir.path())
                        .await
                        .expect("sqlite");
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = $crate::common::workspace_dir($yaml);
                    let Some(app) =
                        $crate::common::TestApp::spawn_with_workspace($crate::common::Backend::Postgres, dir.path()).await
                    else {
                        eprintln!("CAIRN_TEST_PG=skip: PostgreSQL variant not run");
                        return;
                    };
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await.expect("sqlite");
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::common::TestApp::spawn($crate::common::Backend::Postgres).await else {
                        eprintln!("CAIRN_TEST_PG=skip: PostgreSQL variant not run");
                        return;
                    };
                    super::$name(&app).await;
                    app.finish().await;
                }
            )*
        }
    };
}
