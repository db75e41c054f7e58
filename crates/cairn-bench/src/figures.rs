//! The rows that `ingest` and `engine` print: one measured figure each, as a Markdown
//! table (what BENCHMARKS.md quotes) or as JSON.

/// One measured figure.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Row {
    pub(crate) what: String,
    pub(crate) events: u64,
    pub(crate) seconds: f64,
    pub(crate) events_per_s: f64,
    pub(crate) note: String,
}

/// A figure; events per second is 0 when no events were timed.
pub(crate) fn row(what: &str, events: u64, seconds: f64, note: String) -> Row {
    let events_per_s = if events == 0 { 0.0 } else { events as f64 / seconds.max(1e-9) };
    Row { what: what.into(), events, seconds, events_per_s, note }
}

/// The rows as a Markdown table.
pub(crate) fn print_table(rows: &[Row]) {
    println!("| what | events | seconds | events/s | note |");
    println!("|---|---:|---:|---:|---|");
    for r in rows {
        println!("| {} | {} | {:.2} | {:.0} | {} |", r.what, r.events, r.seconds, r.events_per_s, r.note);
    }
}
