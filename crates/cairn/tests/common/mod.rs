//! The test harness: the real cairn server on a loopback port with a fresh database of
//! its own (a temporary SQLite file, or a PostgreSQL schema), zero2prod style.

#![allow(dead_code)]

use std::sync::Arc;

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
    schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// Starts the server on a fresh database; `None` when the backend is skipped.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, None).await
    }

    /// Starts the server with the engine running the workspace folder `workspace`.
    pub async fn spawn_with_workspace(backend: Backend, workspace: &std::path::Path) -> Option<TestApp> {
        TestApp::spawn_with(backend, Some(workspace)).await
    }

    async fn spawn_with(backend: Backend, workspace: Option<&std::path::Path>) -> Option<TestApp> {
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        // As `cairn serve` does: the database's link signer serves the signed-link routes.
        let signer = cairn_programs::link_signer(&store).await.expect("link signer");
        let mut state = cairn_server::AppState::new(store.clone(), clock.clone()).with_links(signer);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (stop_engine, engine_stopped) = tokio::sync::oneshot::channel::<()>();
        if let Some(dir) = workspace {
            let (ws, hash) = cairn_server::load_workspace(dir).unwrap_or_else(|d| panic!("workspace: {d:?}"));
            let runtime = cairn_runtime::Runtime::start(store.clone(), clock.clone(), Arc::new(ws), hash)
                .await
                .expect("engine start");
            tokio::spawn(runtime.clone().run(async {
                let _ = engine_stopped.await;
            }));
            state = state.with_runtime(runtime, Some(dir.to_path_buf()));
        }
        tokio::spawn(cairn_server::serve(listener, state, async move {
            let _ = stopped.await;
            let _ = stop_engine.send(());
        }));
        Some(TestApp { addr, store, write_key, secret_key, clock, stop: Some(stop), schema, _dir: dir })
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

    /// POSTs raw bytes with the given headers.
    pub async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.connection().request(method, path, headers, body).await.expect("request")
    }

    /// Stops the server and removes the PostgreSQL schema.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
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
