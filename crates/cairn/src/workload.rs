//! `cairn demo --scale w1 --out DIR`: workload W1 ([`cairn_sim::w1`]) written as the files
//! a customer would load — `accounts.csv`, `contacts.csv` and `subscriptions.csv` in the
//! columns `cairn import` reads, the product events as NDJSON Segment track calls
//! (`events.ndjson`, for `cairn import events` and `/v1/batch`) and the same events as CSV
//! (`events.csv`, for DuckDB's `read_csv` and PostgreSQL's `COPY`).
//!
//! The events are made a day at a time on every core (a day's events depend on its number
//! alone) and written in day order by the calling thread, each day formatted into one
//! buffer per file that goes back to its worker once written: no allocation per event,
//! no JSON serializer.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use anyhow::{Context, Result};
use cairn_sim::w1::{Scale, Stamp, W1, W1Config, W1Event};

use crate::progress::Progress;

/// The sizes `--scale` offers.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleArg {
    /// W1: 10,000 accounts, 500,000 contacts, 50 million events over 180 days (about 11 GB)
    W1,
    /// A tenth of W1: 1,000 accounts, 50,000 contacts, 5 million events
    M,
    /// A hundredth: 100 accounts, 5,000 contacts, 500,000 events
    S,
    /// A thousandth: 10 accounts, 500 contacts, 50,000 events (tests)
    Xs,
}

impl ScaleArg {
    /// The scale it names.
    pub fn scale(self) -> Scale {
        match self {
            ScaleArg::W1 => Scale::W1,
            ScaleArg::M => Scale::w1_over(10),
            ScaleArg::S => Scale::w1_over(100),
            ScaleArg::Xs => Scale::w1_over(1000),
        }
    }
}

/// The files of a written workload.
pub const FILES: [&str; 5] = ["accounts.csv", "contacts.csv", "subscriptions.csv", "events.ndjson", "events.csv"];

/// What was written, and how fast.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    /// The folder.
    pub dir: PathBuf,
    /// Rows of each CSV of the CRM.
    pub accounts: usize,
    /// Contacts.
    pub contacts: usize,
    /// Subscription lines.
    pub subscription_lines: usize,
    /// Events (lines of each events file).
    pub events: u64,
    /// Days of events.
    pub days: u32,
    /// Bytes of `events.ndjson`.
    pub ndjson_bytes: u64,
    /// Bytes of `events.csv`.
    pub csv_bytes: u64,
    /// Seconds drawing the customers, their people and the ledger, and writing the CRM files.
    pub setup_secs: f64,
    /// Seconds generating and writing the events.
    pub events_secs: f64,
    /// Events generated and written per second.
    pub events_per_sec: f64,
    /// Threads that generated the events.
    pub threads: usize,
}

impl Written {
    /// The workload in one line, for the benchmarks' headers.
    pub fn describe(&self, scale: impl std::fmt::Debug, seed: u64) -> String {
        format!(
            "scale {scale:?} (seed {seed}): {} accounts, {} contacts, {} subscription lines, {} events over {} days",
            self.accounts, self.contacts, self.subscription_lines, self.events, self.days
        )
    }
}

/// One day's events, formatted.
struct DayFiles {
    k: u32,
    events: u64,
    ndjson: Vec<u8>,
    csv: Vec<u8>,
}

/// Writes the workload of `config` into `dir` (created if missing; the five files
/// replaced). `progress` draws a bar on stderr.
pub fn write(config: W1Config, dir: &Path, progress: bool) -> Result<Written> {
    let t = Instant::now();
    let w1 = W1::new(config);
    let drawn = t.elapsed().as_secs_f64();
    let written = write_w1(&w1, dir, progress)?;
    Ok(Written { setup_secs: written.setup_secs + drawn, ..written })
}

/// Writes a workload already drawn into `dir`; `setup_secs` counts the CRM files only.
pub fn write_w1(w1: &W1, dir: &Path, progress: bool) -> Result<Written> {
    write_w1_days(w1, dir, None, progress)
}

/// [`write_w1`] with only the events of the workload's last `last_days` days (all of them
/// for `None`): the whole CRM and ledger beside a recent slice of the product's use, for a
/// benchmark that needs W1's accounts but not its 11 GB of events.
pub fn write_w1_days(w1: &W1, dir: &Path, last_days: Option<u32>, progress: bool) -> Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let t = Instant::now();
    let create = |name: &str| {
        let path = dir.join(name);
        File::create(&path).with_context(|| format!("creating {}", path.display()))
    };
    create("accounts.csv")?.write_all(w1.accounts_csv().as_bytes())?;
    create("contacts.csv")?.write_all(w1.contacts_csv().as_bytes())?;
    create("subscriptions.csv")?.write_all(w1.subscriptions_csv().as_bytes())?;
    let setup_secs = t.elapsed().as_secs_f64();

    let mut ndjson = create("events.ndjson")?;
    let mut csv = create("events.csv")?;
    csv.write_all(W1::EVENTS_CSV_HEADER.as_bytes())?;
    csv.write_all(b"\n")?;
    let days = w1.days();
    let first = days.saturating_sub(last_days.unwrap_or(days).max(1));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8).min((days - first) as usize);
    let mut bar = progress.then(|| Progress::steps(u64::from(days - first), "days", "writing the events"));
    let t = Instant::now();
    let (mut events, mut ndjson_bytes, mut csv_bytes) = (0u64, 0u64, 0u64);
    let written: Result<()> = std::thread::scope(|scope| {
        let mut full: Vec<Receiver<DayFiles>> = Vec::new();
        let mut empty: Vec<SyncSender<DayFiles>> = Vec::new();
        for worker in 0..threads {
            let (full_tx, full_rx) = sync_channel::<DayFiles>(1);
            let (empty_tx, empty_rx) = sync_channel::<DayFiles>(2);
            full.push(full_rx);
            empty.push(empty_tx);
            scope.spawn(move || {
                let mut day: Vec<W1Event> = Vec::new();
                let mut spare: Vec<DayFiles> = Vec::new();
                let mut k = first + worker as u32;
                while k < days {
                    let mut files = spare.pop().or_else(|| empty_rx.try_recv().ok()).unwrap_or(DayFiles {
                        k,
                        events: 0,
                        ndjson: Vec::new(),
                        csv: Vec::new(),
                    });
                    format_day(w1, k, &mut day, &mut files);
                    if full_tx.send(files).is_err() {
                        return;
                    }
                    if let Ok(f) = empty_rx.try_recv() {
                        spare.push(f);
                    }
                    k += threads as u32;
                }
            });
        }
        for k in first..days {
            let worker = (k - first) as usize % threads;
            let files = full[worker].recv().context("a generator thread stopped")?;
            anyhow::ensure!(files.k == k, "day {} arrived for day {k}", files.k);
            ndjson.write_all(&files.ndjson)?;
            csv.write_all(&files.csv)?;
            events += files.events;
            ndjson_bytes += files.ndjson.len() as u64;
            csv_bytes += files.csv.len() as u64;
            let _ = empty[worker].try_send(files);
            if let Some(bar) = bar.as_mut() {
                bar.set(u64::from(k - first) + 1);
            }
        }
        Ok(())
    });
    written?;
    ndjson.flush()?;
    csv.flush()?;
    if let Some(bar) = bar {
        bar.finish();
    }
    let events_secs = t.elapsed().as_secs_f64();
    Ok(Written {
        dir: dir.to_path_buf(),
        accounts: w1.accounts.len(),
        contacts: w1.contacts.len(),
        subscription_lines: w1.lines.len(),
        events,
        days: days - first,
        ndjson_bytes,
        csv_bytes: csv_bytes + W1::EVENTS_CSV_HEADER.len() as u64 + 1,
        setup_secs,
        events_secs,
        events_per_sec: events as f64 / events_secs.max(1e-9),
        threads,
    })
}

/// Day `k`'s events, formatted into `files`' buffers (cleared first).
fn format_day(w1: &W1, k: u32, day: &mut Vec<W1Event>, files: &mut DayFiles) {
    w1.day_events(k, day);
    files.k = k;
    files.events = day.len() as u64;
    files.ndjson.clear();
    files.csv.clear();
    files.ndjson.reserve(day.len() * 160);
    files.csv.reserve(day.len() * 80);
    let mut stamp = Stamp::default();
    for (n, e) in day.iter().enumerate() {
        w1.push_ndjson(&mut files.ndjson, &mut stamp, k, n, e);
        w1.push_csv(&mut files.csv, &mut stamp, k, n, e);
    }
}

/// `cairn demo --scale … --out DIR`: writes the files and prints what was written.
pub fn run(scale: ScaleArg, seed: u64, dir: &Path, json: bool) -> Result<()> {
    let written = write(W1Config::new(scale.scale(), seed), dir, true)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    } else {
        print!("{}", render(&written));
    }
    Ok(())
}

/// The summary of a written workload, for a person.
pub fn render(w: &Written) -> String {
    format!(
        "wrote {} accounts, {} contacts, {} subscription lines and {} events over {} days to {}\n\
         events.ndjson {:.0} MB, events.csv {:.0} MB\n\
         customers and ledger {:.1} s; events {:.1} s on {} threads: {:.0} events/s\n\
         load it with: cairn import accounts {d}/accounts.csv; cairn import contacts {d}/contacts.csv; \
         cairn import subscriptions {d}/subscriptions.csv; cairn import events {d}/events.ndjson\n",
        w.accounts,
        w.contacts,
        w.subscription_lines,
        w.events,
        w.days,
        w.dir.display(),
        w.ndjson_bytes as f64 / 1e6,
        w.csv_bytes as f64 / 1e6,
        w.setup_secs,
        w.events_secs,
        w.threads,
        w.events_per_sec,
        d = w.dir.display(),
    )
}
