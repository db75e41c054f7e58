//! `cairn import accounts|contacts|subscriptions|events FILE`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cairn_core::import::{Header, ImportKind, RowError, parse_account, parse_contact, parse_subscription};
use cairn_core::plausible::PlausibleTimes;
use cairn_core::tracking::{Envelope, TrackingMessage, parse_message};
use cairn_core::{Clock, Source};
use cairn_store::{Appended, ImportRun, Store};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::cli::{ImportWhat, open_store};
use crate::progress::Progress;

/// Rows sent to the store per transaction.
const CSV_CHUNK: usize = 1_000;
/// Events sent to the store per transaction.
pub const EVENT_CHUNK: usize = 50_000;
/// Events appended per transaction during an import: large, because each commit rewrites
/// the index pages it touched (an import is idempotent, so a crash means re-running it).
pub const EVENTS_PER_COMMIT: u64 = 1_000_000;
/// Rejected rows listed in full (the rest are counted).
const REJECTS_SHOWN: usize = 50;

/// The range of dates an event may carry, for `cairn serve` and `cairn import`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EventRangeArg {
    /// The earliest date an event may carry (YYYY-MM-DD or an ISO-8601 instant; default
    /// 2000-01-01). Events dated earlier, or more than a day ahead of now, are refused
    #[arg(long, env = cairn_core::plausible::EARLIEST_EVENT_ENV)]
    pub earliest_event: Option<String>,
}

impl EventRangeArg {
    /// The range these arguments give.
    pub fn plausible_times(&self) -> Result<PlausibleTimes> {
        let default = PlausibleTimes::default();
        match &self.earliest_event {
            Some(text) => default.with_earliest(text).map_err(|e| anyhow::anyhow!("--earliest-event: {e}")),
            None => Ok(default),
        }
    }
}

/// What an import did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ImportSummary {
    /// The file.
    pub file: String,
    /// accounts, contacts, subscriptions or events.
    pub kind: String,
    /// Data rows (lines) read.
    pub rows: u64,
    /// Rows applied.
    pub imported: u64,
    /// Events already stored (same messageId): unchanged.
    pub duplicates: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// The first rejected rows with line, column and reason.
    pub rejects: Vec<RowError>,
    /// Seconds taken.
    pub seconds: f64,
}

impl ImportSummary {
    fn reject(&mut self, e: RowError) {
        self.rejected += 1;
        if self.rejects.len() < REJECTS_SHOWN {
            self.rejects.push(e);
        }
    }
}

/// How `cairn import` runs, as its flags say.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Check the file and write nothing.
    pub dry_run: bool,
    /// Print the summary as JSON.
    pub json: bool,
    /// The dates an event may carry.
    pub plausible: PlausibleTimes,
}

/// Runs an import and prints its summary; the exit code says whether rows were rejected.
pub async fn run(
    what: ImportWhat,
    file: &Path,
    source: Source,
    options: RunOptions,
    db: &str,
    clock: &dyn Clock,
) -> Result<ExitCode> {
    let RunOptions { dry_run, json: json_out, plausible } = options;
    let started = clock.now();
    let t0 = std::time::Instant::now();
    let store = if dry_run { None } else { Some(open_store(db).await?) };
    let summary = match what {
        ImportWhat::Events => import_events(store.as_ref(), file, started, plausible).await?,
        ImportWhat::Accounts => import_csv(store.as_ref(), file, ImportKind::Accounts, source, dry_run).await?,
        ImportWhat::Contacts => import_csv(store.as_ref(), file, ImportKind::Contacts, source, dry_run).await?,
        ImportWhat::Subscriptions => {
            import_csv(store.as_ref(), file, ImportKind::Subscriptions, source, dry_run).await?
        }
    };
    let summary = ImportSummary { seconds: t0.elapsed().as_secs_f64(), ..summary };
    if let Some(store) = &store {
        store
            .record_import_run(&ImportRun {
                kind: summary.kind.clone(),
                file: summary.file.clone(),
                source: source.as_str().to_string(),
                started_at: started.as_millisecond(),
                finished_at: clock.now().as_millisecond(),
                rows_total: summary.rows,
                rows_ok: summary.imported + summary.duplicates,
                rows_rejected: summary.rejected,
                rejects: serde_json::to_value(&summary.rejects)?,
            })
            .await?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&json!({ "dry_run": dry_run, "summary": summary }))?);
    } else {
        for e in &summary.rejects {
            eprintln!("rejected: {e}");
        }
        if summary.rejected > summary.rejects.len() as u64 {
            eprintln!("… and {} more rejected rows", summary.rejected - summary.rejects.len() as u64);
        }
        let verb = if dry_run { "would import" } else { "imported" };
        println!(
            "{}: {} rows read, {verb} {}, {} already stored, {} rejected ({:.1}s)",
            summary.file, summary.rows, summary.imported, summary.duplicates, summary.rejected, summary.seconds
        );
    }
    Ok(if summary.rejected > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn open(file: &Path) -> Result<(File, u64)> {
    let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((f, len))
}

enum Row {
    Account(cairn_core::import::AccountRow),
    Contact(cairn_core::import::ContactRow),
    Subscription(cairn_core::import::SubscriptionRow),
}

/// Imports a CSV of accounts, contacts or subscription lines (without a store, or with
/// `dry_run`: checks the file only).
pub async fn import_csv(
    store: Option<&Store>,
    file: &Path,
    kind: ImportKind,
    source: Source,
    dry_run: bool,
) -> Result<ImportSummary> {
    let (f, len) = open(file)?;
    let mut summary =
        ImportSummary { file: file.display().to_string(), kind: kind.as_str().to_string(), ..Default::default() };
    let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(f);
    let header_fields: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(e) => bail!("{}: cannot read the header line: {e}", file.display()),
    };
    let header_refs: Vec<&str> = header_fields.iter().map(String::as_str).collect();
    let header = Header::parse(kind, &header_refs).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    if dry_run {
        eprintln!("column mapping for {} ({}):", file.display(), kind.as_str());
        for name in header.names() {
            eprintln!("  {name:<24} → {}", column_role(kind, name));
        }
    }
    let mut progress = Progress::bytes(len, &format!("importing {}", kind.as_str()));
    let mut pending: Vec<Row> = Vec::with_capacity(CSV_CHUNK);
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                summary.rows += 1;
                summary.reject(RowError { line, column: None, reason: format!("not readable as CSV: {e}") });
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        summary.rows += 1;
        let line = record.position().map(|p| p.line()).unwrap_or(line);
        let fields: Vec<&str> = record.iter().collect();
        if fields.iter().all(|f| f.trim().is_empty()) {
            summary.rows -= 1;
            continue;
        }
        let parsed = match kind {
            ImportKind::Accounts => parse_account(&header, line, &fields).map(Row::Account),
            ImportKind::Contacts => parse_contact(&header, line, &fields).map(Row::Contact),
            ImportKind::Subscriptions => parse_subscription(&header, line, &fields).map(Row::Subscription),
        };
        match parsed {
            Ok(row) => {
                if dry_run && summary.imported < 5 {
                    eprintln!("  line {line}: ok");
                }
                pending.push(row);
            }
            Err(e) => summary.reject(e),
        }
        if pending.len() >= CSV_CHUNK {
            flush_rows(store, source, &mut pending, &mut summary).await?;
            progress.set(reader.position().byte());
        }
    }
    flush_rows(store, source, &mut pending, &mut summary).await?;
    progress.finish();
    summary.rejects.sort_by_key(|e| e.line);
    Ok(summary)
}

fn column_role(kind: ImportKind, name: &str) -> &'static str {
    match (kind, name) {
        (_, "external_id") => "external id (in --source)",
        (ImportKind::Subscriptions, "id") => "subscription line id",
        (ImportKind::Subscriptions, "account_id") => "account external id (in --source)",
        (ImportKind::Contacts, "account_external_id") => "account external id (in --source)",
        (_, "crm_id" | "billing_id" | "product_id" | "support_id") => "external id in that source",
        (_, "start_date" | "end_date" | "renewal_date") => "date (YYYY-MM-DD)",
        (_, "arr") => "ARR (decimal, 2 places)",
        (_, "employees" | "seats") => "whole number",
        (_, "email" | "owner_email") => "email",
        (_, "timezone") => "IANA time zone",
        (_, "domains") => "email domains (; separated)",
        (ImportKind::Accounts, "name" | "industry" | "plan")
        | (ImportKind::Contacts, "name" | "role")
        | (ImportKind::Subscriptions, "product") => "text",
        _ => "custom trait (type inferred)",
    }
}

async fn flush_rows(
    store: Option<&Store>,
    source: Source,
    pending: &mut Vec<Row>,
    summary: &mut ImportSummary,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let rows = std::mem::take(pending);
    let Some(store) = store else {
        summary.imported += rows.len() as u64;
        return Ok(());
    };
    let results = match rows.first() {
        Some(Row::Account(_)) => {
            let rows: Vec<_> =
                rows.into_iter().filter_map(|r| if let Row::Account(a) = r { Some(a) } else { None }).collect();
            store.upsert_accounts(source, &rows).await?
        }
        Some(Row::Contact(_)) => {
            let rows: Vec<_> =
                rows.into_iter().filter_map(|r| if let Row::Contact(a) = r { Some(a) } else { None }).collect();
            store.upsert_contacts(source, &rows).await?
        }
        Some(Row::Subscription(_)) => {
            let rows: Vec<_> =
                rows.into_iter().filter_map(|r| if let Row::Subscription(a) = r { Some(a) } else { None }).collect();
            store.upsert_subscriptions(source, &rows).await?
        }
        None => Vec::new(),
    };
    for r in results {
        match r {
            Ok(()) => summary.imported += 1,
            Err(e) => summary.reject(e),
        }
    }
    Ok(())
}

/// A deterministic message id for an NDJSON line without one, so that re-importing the
/// same file changes nothing.
pub fn line_message_id(line: &str) -> String {
    let digest = Sha256::digest(line.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("import-{hex}")
}

struct ParsedChunk {
    messages: Vec<TrackingMessage>,
    rejects: Vec<RowError>,
    lines: u64,
    bytes_read: u64,
}

/// Reads an NDJSON file on a thread of its own, parsing while the store writes.
fn spawn_event_reader(
    file: File,
    received_at: jiff::Timestamp,
    plausible: PlausibleTimes,
) -> tokio::sync::mpsc::Receiver<std::io::Result<ParsedChunk>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    std::thread::spawn(move || {
        let envelope =
            Envelope { received_at, batch_sent_at: None, batch_context: None, trust_timestamps: true, plausible };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line_no = 0u64;
        let mut bytes_read = 0u64;
        let mut buf = Vec::with_capacity(4096);
        loop {
            let mut chunk =
                ParsedChunk { messages: Vec::with_capacity(EVENT_CHUNK), rejects: Vec::new(), lines: 0, bytes_read: 0 };
            let mut eof = false;
            while chunk.messages.len() < EVENT_CHUNK {
                buf.clear();
                let n = match (&mut reader)
                    .take(cairn_core::tracking::MAX_MESSAGE_BYTES as u64 * 4)
                    .read_until(b'\n', &mut buf)
                {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                if n == 0 {
                    eof = true;
                    break;
                }
                bytes_read += n as u64;
                line_no += 1;
                if buf.last() != Some(&b'\n') && n == cairn_core::tracking::MAX_MESSAGE_BYTES * 4 {
                    // An absurdly long line: skip to its end.
                    let mut rest = Vec::new();
                    let _ = reader.read_until(b'\n', &mut rest);
                    bytes_read += rest.len() as u64;
                    chunk.lines += 1;
                    chunk.rejects.push(RowError {
                        line: line_no,
                        column: None,
                        reason: "line is longer than 128 KB; a message may be at most 32 KB".into(),
                    });
                    continue;
                }
                let text = match std::str::from_utf8(&buf) {
                    Ok(t) => t.trim(),
                    Err(e) => {
                        chunk.lines += 1;
                        chunk.rejects.push(RowError {
                            line: line_no,
                            column: None,
                            reason: format!("not valid UTF-8 (byte {})", e.valid_up_to()),
                        });
                        continue;
                    }
                };
                if text.is_empty() {
                    continue;
                }
                chunk.lines += 1;
                match parse_message(text, None, &envelope, || line_message_id(text)) {
                    Ok(m) => chunk.messages.push(m),
                    Err(e) => chunk.rejects.push(RowError {
                        line: line_no,
                        column: e.field.clone(),
                        reason: e.reason.clone(),
                    }),
                }
            }
            chunk.bytes_read = bytes_read;
            if tx.blocking_send(Ok(chunk)).is_err() || eof {
                return;
            }
        }
    });
    rx
}

/// Imports an NDJSON file of Segment messages with the same validation as the HTTP API
/// (without a store: checks the file only). Events dated outside `plausible` (with
/// `received_at` as "now") are rejected with their line.
pub async fn import_events(
    store: Option<&Store>,
    file: &Path,
    received_at: jiff::Timestamp,
    plausible: PlausibleTimes,
) -> Result<ImportSummary> {
    let (f, len) = open(file)?;
    let mut summary = ImportSummary { file: file.display().to_string(), kind: "events".into(), ..Default::default() };
    let mut progress = Progress::bytes(len, "importing events");
    let mut chunks = spawn_event_reader(f, received_at, plausible);
    let mut bulk = match store {
        Some(s) => Some(s.bulk_append().await?),
        None => None,
    };
    let mut uncommitted = 0u64;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.with_context(|| format!("reading {}", file.display()))?;
        summary.rows += chunk.lines;
        for e in chunk.rejects {
            summary.reject(e);
        }
        match (&mut bulk, store) {
            (Some(tx), Some(store)) if !chunk.messages.is_empty() => {
                for outcome in tx.append("import", &chunk.messages).await? {
                    match outcome {
                        Appended::New => summary.imported += 1,
                        Appended::Duplicate => summary.duplicates += 1,
                    }
                }
                uncommitted += chunk.messages.len() as u64;
                if uncommitted >= EVENTS_PER_COMMIT {
                    if let Some(tx) = bulk.take() {
                        tx.commit().await?;
                    }
                    bulk = Some(store.bulk_append().await?);
                    uncommitted = 0;
                }
            }
            (_, None) => summary.imported += chunk.messages.len() as u64,
            _ => {}
        }
        progress.set(chunk.bytes_read);
    }
    if let Some(tx) = bulk {
        tx.commit().await?;
    }
    progress.finish();
    summary.rejects.sort_by_key(|e| e.line);
    Ok(summary)
}
