//! The real server (`App::build`, as `cairn serve`) on a loopback port over a small
//! simulated demo company: a fresh SQLite file, a few weeks of the simulation run
//! through the engine and the program runner, the example workspace folder loaded (so
//! that reloads work), a key of each kind, and an open task in the `digital` pool (the
//! simulated CSMs work theirs off).

#![allow(dead_code)] // each test binary uses part of it

use std::path::PathBuf;
use std::sync::Arc;

use cairn::app::{App, AppConfig, Definitions};
use cairn::simulation::{Options, simulate};
use cairn_core::FixedClock;
use cairn_store::{KeyKind, NewTask, Store, SubjectKind, TaskPriority};
use jiff::Timestamp;

/// The day the demo's clock stands on (the simulation ends the day before).
pub const TODAY: &str = "2026-03-01";

/// A running demo server.
pub struct DemoServer {
    pub addr: String,
    /// The database's URL, for the CLI.
    pub db_url: String,
    pub store: Store,
    pub secret_key: String,
    pub write_key: String,
    pub publishable_key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// The example workspace folder of the repository.
pub fn example_workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/workspace")
}

impl DemoServer {
    /// Simulates `accounts` customers over `days` days, then serves them.
    pub async fn start(accounts: usize, days: u32) -> DemoServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("cairn.db").display());
        let store = Store::open(&url).await.expect("open the demo database");
        let today: jiff::civil::Date = TODAY.parse().expect("date");
        let (ws, hash) = cairn::demo::example_workspace().expect("the example workspace");
        let options = Options { accounts, seed: 1, today, days, passes_per_day: 4 };
        simulate(&store, Arc::new(ws), hash, &options, |_, _| {}).await.expect("the simulation");
        let now: Timestamp = format!("{TODAY}T09:00:00Z").parse().expect("timestamp");
        let mut keys = Vec::new();
        for (kind, name, seed) in
            [(KeyKind::Secret, "api", 2u8), (KeyKind::Write, "web", 1), (KeyKind::Publishable, "inbox", 3)]
        {
            let key = cairn_server::generate_key(kind, [seed; 32]);
            store.create_api_key(kind, name, &cairn_server::hash_key(&key), name, now).await.expect("a key");
            keys.push(key);
        }
        let enrollment = store.program_enrollments("onboarding_welcome").await.expect("enrollments");
        let enrollment = enrollment.first().expect("the demo enrolled accounts in onboarding_welcome");
        let account = (enrollment.subject_kind == SubjectKind::Account).then_some(enrollment.subject_id);
        let task = NewTask {
            enrollment_id: enrollment.id,
            step_id: "kickoff_call".into(),
            account_id: account,
            contact_id: None,
            title: "Book the kickoff call".into(),
            body: "A new account: book the kickoff call with its admin.".into(),
            assignee: None,
            pool: Some("digital".into()),
            priority: TaskPriority::High,
            due_at: Some(now),
            created_at: now,
        };
        store.create_task(&task).await.expect("a task");
        let clock = Arc::new(FixedClock::new(now));
        let config = AppConfig::new("127.0.0.1:0", Some(Definitions::Folder(example_workspace_dir())));
        let app = App::build(store.clone(), clock, config).await.unwrap_or_else(|e| panic!("{e:#}"));
        let addr = app.addr().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(app.run(async {
            let _ = stopped.await;
        }));
        let [secret_key, write_key, publishable_key] = <[String; 3]>::try_from(keys).expect("three keys");
        DemoServer {
            addr,
            db_url: url,
            store,
            secret_key,
            write_key,
            publishable_key,
            stop: Some(stop),
            running: Some(running),
            _dir: dir,
        }
    }

    /// Stops the server.
    pub async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), running).await;
            assert!(matches!(stopped, Ok(Ok(Ok(())))), "the server stops cleanly: {stopped:?}");
        }
        self.store.close().await;
    }
}
