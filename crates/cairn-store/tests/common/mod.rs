//! Test harness for the store conformance suite: fresh databases on both backends, and
//! builders that make test data through cairn-core's public parsers (CSV rows, tracking
//! messages) exactly as the importer and the HTTP API do.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_core::Source;
use cairn_core::import::{
    AccountRow, ContactRow, Header, ImportKind, RowError, SubscriptionRow, parse_account, parse_contact,
    parse_subscription,
};
use cairn_core::tracking::{Envelope, TrackingMessage, parse_message};
use cairn_store::Store;
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::Value;

/// When the test "server" received the messages built by [`msg`].
pub const RECEIVED_AT: &str = "2026-03-01T12:00:00Z";
/// The workspace day the doctor is asked about.
pub const TODAY: &str = "2026-03-01";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the suite uses: `CAIRN_TEST_PG`, or the local default.
fn pg_base_url() -> String {
    std::env::var("CAIRN_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn pg_skipped() -> bool {
    pg_base_url() == "skip"
}

/// A name no other test (in this process or another) uses.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("t_{}_{n}_{nanos}", std::process::id())
}

/// A fresh, empty store that is removed again by [`TestDb::close`].
pub struct TestDb {
    pub store: Store,
    place: Place,
}

enum Place {
    /// The temporary directory holding the SQLite file (and its WAL).
    Sqlite(tempfile::TempDir),
    /// The PostgreSQL schema holding the tables.
    Postgres { base: String, schema: String },
}

impl TestDb {
    /// Opens a fresh store; `None` only when PostgreSQL is skipped with `CAIRN_TEST_PG=skip`.
    /// An unreachable PostgreSQL is a failure, never a silent skip.
    pub async fn open(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                let path = dir.path().join(format!("{}.db", unique_name()));
                let store =
                    Store::open(&format!("sqlite://{}", path.display())).await.expect("open a fresh SQLite store");
                Some(TestDb { store, place: Place::Sqlite(dir) })
            }
            Backend::Postgres => {
                if pg_skipped() {
                    return None;
                }
                let base = pg_base_url();
                let schema = unique_name();
                let sep = if base.contains('?') { '&' } else { '?' };
                let store = Store::open(&format!("{base}{sep}schema={schema}")).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {} is needed by this test: {e}\n(start it, point CAIRN_TEST_PG at another server, or set CAIRN_TEST_PG=skip)", cairn_store::redact_url(&base))
                });
                Some(TestDb { store, place: Place::Postgres { base, schema } })
            }
        }
    }

    /// A second store on the same database, with its own connections: another node.
    pub async fn second_node(&self) -> Store {
        let url = match &self.place {
            Place::Sqlite(dir) => {
                // The one database file in the directory.
                let file = std::fs::read_dir(dir.path())
                    .expect("list the test directory")
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "db"))
                    .expect("the test database file");
                format!("sqlite://{}", file.display())
            }
            Place::Postgres { base, schema } => {
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}schema={schema}")
            }
        };
        Store::open(&url).await.expect("open the same database a second time")
    }

    /// Closes the store and removes its database.
    pub async fn close(self) {
        self.store.close().await;
        match self.place {
            Place::Sqlite(dir) => drop(dir),
            Place::Postgres { base, schema } => {
                use sqlx::Connection as _;
                let mut conn =
                    sqlx::PgConnection::connect(&base).await.expect("connect to PostgreSQL to drop the test schema");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&mut conn)
                    .await
                    .expect("drop the test schema");
                conn.close().await.ok();
            }
        }
    }
}

/// Runs one scenario on a fresh store of `backend`, then removes the database, whether
/// the scenario passed or panicked (the panic is then re-raised).
pub async fn run<F, Fut>(backend: Backend, name: &str, scenario: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::open(backend).await else {
        eprintln!("note: CAIRN_TEST_PG=skip, so `{name}` did not run on PostgreSQL");
        return;
    };
    let outcome = tokio::spawn(scenario(db.store.clone())).await;
    db.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("scenario `{name}` did not finish: {e}"),
        }
    }
}

/// Runs a scenario given two stores on one fresh database (two nodes), then removes it.
pub async fn run_two<F, Fut>(backend: Backend, name: &str, scenario: F)
where
    F: FnOnce(Store, Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::open(backend).await else {
        eprintln!("note: CAIRN_TEST_PG=skip, so `{name}` did not run on PostgreSQL");
        return;
    };
    let second = db.second_node().await;
    let outcome = tokio::spawn(scenario(db.store.clone(), second.clone())).await;
    second.close().await;
    db.close().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("scenario `{name}` did not finish: {e}"),
        }
    }
}

/// Runs a blocking scenario (one that opens its own stores, like a property test).
pub fn run_blocking(backend: Backend, name: &str, scenario: fn(Backend)) {
    if backend == Backend::Postgres && pg_skipped() {
        eprintln!("note: CAIRN_TEST_PG=skip, so `{name}` did not run on PostgreSQL");
        return;
    }
    scenario(backend)
}

// ---------------------------------------------------------------------------------------
// Values

pub fn date(s: &str) -> Date {
    s.parse().unwrap_or_else(|e| panic!("bad test date {s}: {e}"))
}

pub fn timestamp(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("bad test timestamp {s}: {e}"))
}

pub fn today() -> Date {
    date(TODAY)
}

// ---------------------------------------------------------------------------------------
// CSV rows: a header line, then one line per row; cells are split on `,` (test data has
// no quoted cells). The header is line 1, as in a file.

fn parse_csv<T>(kind: ImportKind, csv: &str, parse: fn(&Header, u64, &[&str]) -> Result<T, RowError>) -> Vec<T> {
    let mut lines = csv.lines().map(str::trim).filter(|l| !l.is_empty());
    let header_line = lines.next().expect("a CSV needs a header line");
    let header = Header::parse(kind, &header_line.split(',').collect::<Vec<_>>())
        .unwrap_or_else(|e| panic!("bad test header: {e}"));
    lines
        .zip(2..)
        .map(|(line, n)| {
            parse(&header, n, &line.split(',').collect::<Vec<_>>()).unwrap_or_else(|e| panic!("bad test row: {e}"))
        })
        .collect()
}

pub fn account_rows(csv: &str) -> Vec<AccountRow> {
    parse_csv(ImportKind::Accounts, csv, parse_account)
}

pub fn contact_rows(csv: &str) -> Vec<ContactRow> {
    parse_csv(ImportKind::Contacts, csv, parse_contact)
}

pub fn subscription_rows(csv: &str) -> Vec<SubscriptionRow> {
    parse_csv(ImportKind::Subscriptions, csv, parse_subscription)
}

fn all_ok(what: &str, results: Vec<Result<(), RowError>>) {
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "importing {what} rejected rows: {errors:#?}");
}

/// Imports accounts from CSV text; every row must be accepted.
pub async fn import_accounts(store: &Store, source: Source, csv: &str) {
    all_ok("accounts", store.upsert_accounts(source, &account_rows(csv)).await.expect("upsert accounts"));
}

/// Imports contacts from CSV text; every row must be accepted.
pub async fn import_contacts(store: &Store, source: Source, csv: &str) {
    all_ok("contacts", store.upsert_contacts(source, &contact_rows(csv)).await.expect("upsert contacts"));
}

/// Imports subscription lines from CSV text; every row must be accepted.
pub async fn import_subscriptions(store: &Store, source: Source, csv: &str) {
    all_ok(
        "subscriptions",
        store.upsert_subscriptions(source, &subscription_rows(csv)).await.expect("upsert subscriptions"),
    );
}

// ---------------------------------------------------------------------------------------
// Tracking messages, validated as the HTTP API validates them. Each needs its own
// `type` and `messageId`.

/// A message received at [`RECEIVED_AT`].
pub fn msg(json: Value) -> TrackingMessage {
    msg_received_at(RECEIVED_AT, json)
}

/// A message received at `received_at`.
pub fn msg_received_at(received_at: &str, json: Value) -> TrackingMessage {
    parse_at(received_at, &json.to_string())
}

/// A message from its JSON text exactly as sent (whitespace and escapes kept), received
/// at [`RECEIVED_AT`].
pub fn msg_text(text: &str) -> TrackingMessage {
    parse_at(RECEIVED_AT, text)
}

fn parse_at(received_at: &str, text: &str) -> TrackingMessage {
    let envelope = Envelope {
        received_at: timestamp(received_at),
        batch_sent_at: None,
        batch_context: None,
        trust_timestamps: false,
        plausible: Default::default(),
    };
    parse_message(text, None, &envelope, || panic!("test messages carry their own messageId: {text}"))
        .unwrap_or_else(|e| panic!("invalid test message {text}: {e}"))
}

/// Appends messages from `source`; every one must be new.
pub async fn append_new(store: &Store, source: &str, messages: Vec<TrackingMessage>) {
    let outcome = store.append(source, &messages).await.expect("append");
    assert!(outcome.iter().all(|a| *a == cairn_store::Appended::New), "expected only new messages, got {outcome:?}");
}

// ---------------------------------------------------------------------------------------
// Snapshot lookups. Entities in a snapshot are named by labels such as `crm:A1(import)`;
// these helpers find one by the label without its basis (`crm:A1`).

fn entities<'a>(snapshot: &'a Value, kind: &str) -> &'a Vec<Value> {
    snapshot[kind].as_array().unwrap_or_else(|| panic!("snapshot has no `{kind}` array: {snapshot:#}"))
}

fn has_id(entity: &Value, id: &str) -> bool {
    let prefix = format!("{id}(");
    entity["ids"].as_array().is_some_and(|ids| ids.iter().any(|l| l.as_str().is_some_and(|l| l.starts_with(&prefix))))
}

fn find<'a>(snapshot: &'a Value, kind: &str, id: &str) -> Option<&'a Value> {
    entities(snapshot, kind).iter().find(|e| has_id(e, id))
}

/// The accounts in a snapshot.
pub fn accounts(snapshot: &Value) -> &Vec<Value> {
    entities(snapshot, "accounts")
}

/// The contacts in a snapshot.
pub fn contacts(snapshot: &Value) -> &Vec<Value> {
    entities(snapshot, "contacts")
}

/// The account with external id `id` (`source:external_id`).
pub fn account<'a>(snapshot: &'a Value, id: &str) -> &'a Value {
    find(snapshot, "accounts", id).unwrap_or_else(|| panic!("no account `{id}` in the snapshot: {snapshot:#}"))
}

/// The contact with external id `id` (`source:external_id`).
pub fn contact<'a>(snapshot: &'a Value, id: &str) -> &'a Value {
    find(snapshot, "contacts", id).unwrap_or_else(|| panic!("no contact `{id}` in the snapshot: {snapshot:#}"))
}

/// Whether the snapshot holds an account with external id `id`.
pub fn has_account(snapshot: &Value, id: &str) -> bool {
    find(snapshot, "accounts", id).is_some()
}

/// Whether the snapshot holds a contact with external id `id`.
pub fn has_contact(snapshot: &Value, id: &str) -> bool {
    find(snapshot, "contacts", id).is_some()
}
