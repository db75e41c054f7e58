//! A program's dry run over history (DESIGN §2: "what would this program have done over
//! the last 90 days"): the event log replayed over a period on a simulated clock through
//! the real engine ([`Runtime`]) and the real [`Runner`], with the program running,
//! sending nothing and writing nothing to the real database.
//!
//! Everything happens in a scratch SQLite store in a temporary folder, deleted at the
//! end. It is seeded from the real store (`feed.rs`): the directory (accounts, contacts,
//! identities, subscription lines) with its ids, the consent and suppressions recorded
//! before the period, the log as it stood at `from`, and the program's own enrollments
//! from before the period (so re-entry rules see them). The engine starts there (a
//! backfill: a program acts only on what happens live). Then the clock steps through the
//! period a pass at a time (every 3 hours by default, on a grid aligned to midnight UTC,
//! as the demo's simulation runs): each pass first brings in what really happened by then
//! — events as the engine tailed them (by `seq`, once received), consent changes, the
//! sends of other programs (they count towards the frequency caps), the engagement
//! recorded on the program's real enrollments replayed onto the dry run's matching ones —
//! then the engine catches up and the runner makes one pass, enrolling only into this
//! program. Email goes to the scratch outbox, in-app messages to the scratch inbox,
//! webhook channels are recorded without a request, tasks are created in the scratch
//! store: every channel records, none delivers.
//!
//! What it cannot know, it says (`DryRun::notes`): traits have no history, so the period
//! is evaluated with today's traits; only the program's enrollments made in the period
//! are replayed; a program that never ran has no engagement to replay, so its branches on
//! `opened`/`clicked`/`answered` take the path of no engagement.

mod feed;
mod report;

use std::collections::BTreeSet;
use std::sync::Arc;

use cairn_core::FixedClock;
use cairn_runtime::Runtime;
use cairn_store::Store;
use cairn_workspace::Workspace;
use jiff::{SignedDuration, Timestamp};

pub use report::{DryRun, DryRunEnrollment, DryRunSample, DryRunSend, StepLoad};

use crate::{PassReport, ProgramError, Runner, RunnerConfig};
use feed::History;

/// The longest period a dry run replays: its work grows with the period (a pass every few
/// hours, each with the engine and the runner), so a year and a leap day is the bound.
pub const MAX_DRY_RUN_DAYS: i64 = 366;

/// How often the dry run's clock passes by default: the demo's simulation's pace.
pub const DEFAULT_PASS_EVERY: SignedDuration = SignedDuration::from_hours(3);

/// What to replay.
#[derive(Debug, Clone)]
pub struct DryRunOptions {
    /// The first instant of the period.
    pub from: Timestamp,
    /// The end of the period (exclusive).
    pub to: Timestamp,
    /// The real clock's now: a period reaching past it ends at it.
    pub now: Timestamp,
    /// The time between two passes of the engine and the runner (a divisor of a day).
    pub pass_every: SignedDuration,
    /// Base URL of the links in the rendered samples.
    pub public_url: String,
}

/// Why a dry run could not run.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// No such program in the workspace.
    #[error("no program `{id}`{hint}")]
    UnknownProgram {
        /// The id asked for.
        id: String,
        /// `, did you mean …?` or the list of programs.
        hint: String,
    },
    /// The period is empty, too long or in the future.
    #[error("{0}")]
    BadPeriod(String),
    /// The scratch store could not be made.
    #[error("cannot make the dry run's scratch database in a temporary folder: {0}")]
    Scratch(String),
    /// The real or the scratch store failed.
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
    /// The engine failed.
    #[error(transparent)]
    Runtime(#[from] cairn_runtime::RuntimeError),
    /// The runner failed.
    #[error(transparent)]
    Program(#[from] ProgramError),
}

/// A dry run's period, day or instant, as the CLI and the API read `from` and `to`: a day
/// (`2026-03-10`) is its start in the workspace time zone for `from`, its end (the next
/// day's start) for `to`, so `--from 2026-01-01 --to 2026-03-31` is the whole quarter; an
/// instant is taken as given.
pub fn parse_period(from: &str, to: &str, tz: &jiff::tz::TimeZone) -> Result<(Timestamp, Timestamp), DryRunError> {
    let read = |name: &str, text: &str, end_of_day: bool| -> Result<Timestamp, DryRunError> {
        if let Ok(t) = text.parse::<Timestamp>() {
            return Ok(t);
        }
        let day: jiff::civil::Date = text.parse().map_err(|_| {
            DryRunError::BadPeriod(format!(
                "{name} `{text}` is neither a date (2026-03-10) nor an instant (2026-03-10T09:00:00Z)"
            ))
        })?;
        let day =
            if end_of_day { day.tomorrow().map_err(|e| DryRunError::BadPeriod(format!("{name}: {e}")))? } else { day };
        day.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|e| DryRunError::BadPeriod(format!("{name} `{text}`: {e}")))
    };
    Ok((read("from", from, false)?, read("to", to, true)?))
}

/// Checks the period: not empty, at most [`MAX_DRY_RUN_DAYS`], begun before `now`; a
/// period reaching past `now` ends at `now`. The period to replay.
pub fn check_period(from: Timestamp, to: Timestamp, now: Timestamp) -> Result<(Timestamp, Timestamp), DryRunError> {
    if to <= from {
        return Err(DryRunError::BadPeriod(format!("the period is empty: to ({to}) is not after from ({from})")));
    }
    let days =
        to.duration_since(from).as_hours().div_euclid(24) + i64::from(to.duration_since(from).as_hours() % 24 != 0);
    let longest = SignedDuration::from_hours(24 * MAX_DRY_RUN_DAYS);
    if to.duration_since(from) > longest {
        return Err(DryRunError::BadPeriod(format!(
            "the period is {days} days long; a dry run replays at most {MAX_DRY_RUN_DAYS} days, because its work \
             grows with the period (the engine and the runner pass every few hours): dry-run a shorter period"
        )));
    }
    if from >= now {
        return Err(DryRunError::BadPeriod(format!(
            "from ({from}) is not in the past: a dry run replays what has already happened"
        )));
    }
    Ok((from, to.min(now)))
}

/// The dry run of `program_id` over the options' period, on `real` (only read).
pub async fn dry_run(
    real: &Store,
    ws: Arc<Workspace>,
    program_id: &str,
    options: &DryRunOptions,
) -> Result<DryRun, DryRunError> {
    let Some(program) = ws.programs().iter().find(|p| p.id.as_str() == program_id).cloned() else {
        let ids: Vec<&str> = ws.programs().iter().map(|p| p.id.as_str()).collect();
        let hint = cairn_core::suggest::closest(program_id, ids.iter().copied())
            .map(|near| format!(", did you mean `{near}`?"))
            .unwrap_or_else(|| format!("; the workspace has: {}", ids.join(", ")));
        return Err(DryRunError::UnknownProgram { id: program_id.to_string(), hint });
    };
    let (from, to) = check_period(options.from, options.to, options.now)?;
    let step = options.pass_every;
    if step < SignedDuration::from_secs(60) || (SignedDuration::from_hours(24).as_secs() % step.as_secs()) != 0 {
        return Err(DryRunError::BadPeriod(format!(
            "a pass every {step:#} does not divide a day into whole minutes' passes: use 1h, 3h, 6h, …"
        )));
    }
    let folder =
        tempfile::Builder::new().prefix("cairn-dry-run-").tempdir().map_err(|e| DryRunError::Scratch(e.to_string()))?;
    let path = folder.path().join("dry-run.db");
    let scratch = Store::open(&format!("sqlite://{}", path.display())).await?;
    let result = replay(real, &scratch, ws, &program, from, to, options).await;
    scratch.close().await;
    drop(folder);
    result
}

/// The replay proper, on a seeded scratch store.
async fn replay(
    real: &Store,
    scratch: &Store,
    ws: Arc<Workspace>,
    program: &cairn_workspace::Program,
    from: Timestamp,
    to: Timestamp,
    options: &DryRunOptions,
) -> Result<DryRun, DryRunError> {
    let id = program.id.as_str().to_string();
    // The engine starts a millisecond before the period, so a transition at its first
    // instant is live, as it was for the real runner.
    let start = from.checked_sub(SignedDuration::from_millis(1)).unwrap_or(from);
    let mut history = History::seed(real, scratch, &ws, &id, start, to).await?;
    let clock = Arc::new(FixedClock::new(start));
    let runtime = Runtime::start(scratch.clone(), clock.clone(), Arc::clone(&ws), format!("dry-run:{id}")).await?;
    let mut config = RunnerConfig::new("dry-run");
    config.public_url = options.public_url.clone();
    config.message_id_domain = "dry-run.cairn.localhost".to_string();
    config.only_programs = Some(BTreeSet::from([id.clone()]));
    config.record_webhooks_only = true;
    let runner = Runner::new(scratch.clone(), runtime.clone(), clock.clone(), config).await?;
    let tz = ws.time_zone().clone();
    let mut totals = PassReport::default();
    let mut passes = 0u64;
    let mut day = tz.to_datetime(start).date();
    // Passes on the grid, from the first at or after `from` to the first at or after `to`
    // (it enrolls what happened just before `to`; only the period is reported).
    let mut t = grid_at_or_after(from, options.pass_every);
    let last = grid_at_or_after(to, options.pass_every);
    while t <= last {
        clock.set(t);
        history.bring_in(real, scratch, &ws, program, t).await?;
        let today = tz.to_datetime(t).date();
        if today != day {
            runtime.refresh_traits().await?;
            day = today;
        }
        runtime.catch_up().await?;
        let pass = runner.run_once().await?;
        add(&mut totals, &pass);
        passes += 1;
        t = match t.checked_add(options.pass_every) {
            Ok(next) => next,
            Err(_) => break,
        };
    }
    report::build(scratch, program, from, to, passes, &totals, &history).await
}

/// The first instant of the pass grid (multiples of `every` since the Unix epoch, so
/// midnight UTC for a divisor of a day) at or after `t`.
fn grid_at_or_after(t: Timestamp, every: SignedDuration) -> Timestamp {
    let every_ms = every.as_millis().max(1) as i64;
    let ms = t.as_millisecond();
    let up = ms.div_euclid(every_ms) * every_ms + if ms.rem_euclid(every_ms) == 0 { 0 } else { every_ms };
    Timestamp::from_millisecond(up).unwrap_or(t)
}

fn add(totals: &mut PassReport, pass: &PassReport) {
    totals.enrolled += pass.enrolled;
    totals.steps += pass.steps;
    totals.sent += pass.sent;
    totals.deferred += pass.deferred;
    totals.quiet_hours += pass.quiet_hours;
    totals.capped += pass.capped;
    totals.dead += pass.dead;
    totals.retried += pass.retried;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_pass_grid_is_aligned_to_midnight_utc() {
        let three = SignedDuration::from_hours(3);
        assert_eq!(grid_at_or_after(at("2026-03-01T00:00:00Z"), three), at("2026-03-01T00:00:00Z"));
        assert_eq!(grid_at_or_after(at("2026-02-28T23:00:00Z"), three), at("2026-03-01T00:00:00Z"));
        assert_eq!(grid_at_or_after(at("2026-03-01T03:00:00.001Z"), three), at("2026-03-01T06:00:00Z"));
    }

    #[test]
    fn a_period_is_checked_before_anything_runs() {
        let now = at("2026-06-01T00:00:00Z");
        let e = check_period(at("2026-03-01T00:00:00Z"), at("2026-03-01T00:00:00Z"), now).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = check_period(at("2025-01-01T00:00:00Z"), at("2026-01-03T00:00:00Z"), now).unwrap_err();
        assert!(e.to_string().contains("at most 366 days"), "{e}");
        assert!(e.to_string().contains("is 367 days long"), "{e}");
        // A leap year's whole 366 days pass.
        assert!(check_period(at("2024-01-01T00:00:00Z"), at("2025-01-01T00:00:00Z"), now).is_ok());
        let e = check_period(at("2026-07-01T00:00:00Z"), at("2026-08-01T00:00:00Z"), now).unwrap_err();
        assert!(e.to_string().contains("not in the past"), "{e}");
        // A period reaching past now ends at now.
        assert_eq!(check_period(at("2026-05-01T00:00:00Z"), at("2026-07-01T00:00:00Z"), now).unwrap().1, now);
    }

    #[test]
    fn a_day_ends_the_period_at_its_end_in_the_workspace_time_zone() {
        let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let (from, to) = parse_period("2026-01-01", "2026-03-31", &tz).unwrap();
        assert_eq!(from, at("2025-12-31T23:00:00Z"));
        assert_eq!(to, at("2026-03-31T22:00:00Z"));
        let (from, to) = parse_period("2026-01-01T06:00:00Z", "2026-01-02T06:00:00Z", &tz).unwrap();
        assert_eq!((from, to), (at("2026-01-01T06:00:00Z"), at("2026-01-02T06:00:00Z")));
        let e = parse_period("yesterday", "2026-01-02", &tz).unwrap_err();
        assert!(e.to_string().contains("from `yesterday` is neither a date"), "{e}");
    }
}
