//! The report cache: each report's figures, computed once per data version and shared by
//! the pages (`/insights`, `/kpis`, `/journey`, `/programs`), their JSON
//! (`/api/views/*`) and `/api/reports/*`.
//!
//! A report is keyed by its name and everything it is asked for (the resolved query, the
//! loaded definitions, its own parameters). The data version is the store's
//! [`cairn_store::Store::report_inputs`] counter, which moves after every write a report
//! reads (events, account data, transitions, health, the send ledger, …). A result is
//! *current* when it was computed at the version the request saw; the computation runs in
//! its own task (one at a time per key), so a page never waits for a replay of the log:
//!
//! - [`Wait::Page`] waits a short while for a current result (longer when it has no
//!   older one: a small store's first figures come in that time), then answers with the
//!   last complete one (stale, with the time it was computed from) or, the first time,
//!   with nothing ("computing"); the computation goes on and the next visit finds it.
//! - [`Wait::Current`] (the JSON API) waits for a current result: what it returns is what
//!   the report computes from the data as it was when the request came.
//!
//! A failed computation is not kept: the requests that waited for it get its error, the
//! next one tries again. Writes by another process do not move the version (the counter
//! is in-process); they are seen once this process writes, or the day changes (the
//! query's as-of day is in the key).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cairn_core::Clock;
use jiff::Timestamp;
use tokio::sync::watch;

use crate::error::ApiError;

/// How long a page waits for a current result before showing the last one it has.
pub(crate) const PAGE_WAIT: Duration = Duration::from_millis(40);

/// How long a page waits for a result when there is none yet (the first visit after a
/// start or a reload of the definitions), counted from when its computation started: on
/// a small store the figures come in this time; on a large one the page says they are
/// being computed, at once for every visit after the computation's first 1.5 s.
pub(crate) const FIRST_WAIT: Duration = Duration::from_millis(1500);

/// The most keys kept; the least recently used beyond it are dropped.
const MAX_KEYS: usize = 64;

/// The most computations that run at once; the others wait their turn, first come first
/// served. Each holds a store connection while it reads, and the pages' own reads need
/// the rest of the pool (SQLite's has four; a first visit of the morning view starts
/// six computations, the warm-up dozens).
const MAX_RUNNING: usize = 3;

/// How long a request waits for a result.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// At most `stale` when there is an older result to show; when there is none, until
    /// the computation has run `first`; then the last complete result, or none.
    Page { stale: Duration, first: Duration },
    /// Until a current result is there.
    Current,
}

impl Wait {
    /// A page's wait: [`PAGE_WAIT`], or [`FIRST_WAIT`] with nothing to show yet.
    pub(crate) const PAGE: Wait = Wait::Page { stale: PAGE_WAIT, first: FIRST_WAIT };
    /// No wait: the computation is started (or joined) and whatever is there returned.
    pub(crate) const START: Wait = Wait::Page { stale: Duration::ZERO, first: Duration::ZERO };
}

/// A report as a request finds it.
#[derive(Debug)]
pub(crate) enum Fetched<T> {
    /// Complete figures.
    Ready {
        value: Arc<T>,
        /// When the computation started: the figures count the data stored by then.
        as_of: Timestamp,
        /// Whether they were computed at the data version the request saw.
        current: bool,
    },
    /// Never computed yet for this key: the computation is running.
    Computing,
}

impl<T> Fetched<T> {
    /// The figures of a [`Wait::Current`] request (which always has them).
    pub(crate) fn ready(self) -> Result<Arc<T>, ApiError> {
        match self {
            Fetched::Ready { value, .. } => Ok(value),
            Fetched::Computing => Err(ApiError::Internal("the report is still being computed".into())),
        }
    }
}

/// How fresh the figures of a page are, over every report it shows.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Freshness {
    /// The oldest `as_of` of the reports shown.
    pub as_of: Option<Timestamp>,
    /// Some report shown is older than the data: a newer one is being computed.
    pub updating: bool,
    /// Some report has never been computed yet: the page has nothing to show.
    pub computing: bool,
}

impl Freshness {
    /// Takes one report's state into the page's: its value when there is one.
    pub(crate) fn take<T>(&mut self, fetched: Fetched<T>) -> Option<Arc<T>> {
        match fetched {
            Fetched::Ready { value, as_of, current } => {
                self.as_of = Some(self.as_of.map_or(as_of, |a| a.min(as_of)));
                self.updating |= !current;
                Some(value)
            }
            Fetched::Computing => {
                self.computing = true;
                None
            }
        }
    }

    /// Takes another part of the page's state into this one.
    pub(crate) fn merge(&mut self, other: Freshness) {
        self.as_of = match (self.as_of, other.as_of) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.updating |= other.updating;
        self.computing |= other.computing;
    }

    /// `as_of` for the page, to the second, in UTC.
    pub(crate) fn as_of_text(&self) -> String {
        self.as_of.map_or_else(String::new, |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
    }
}

type Value = Arc<dyn Any + Send + Sync>;

/// A finished computation.
struct Done {
    version: u64,
    as_of: Timestamp,
    value: Value,
}

/// A failed computation, for the requests that waited on it.
struct Failed {
    version: u64,
    error: Arc<ApiError>,
}

#[derive(Default)]
struct Entry {
    done: Option<Done>,
    failed: Option<Failed>,
    /// The running computation: its version, a receiver that turns `true` when it ends,
    /// and when it started.
    running: Option<(u64, watch::Receiver<bool>, tokio::time::Instant)>,
    /// Kept alive while the key is (the loaded definitions: an address in the key is not
    /// reused while the entry holds it).
    _pin: Option<Value>,
    used: u64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    tick: u64,
}

/// The cache (cheap to clone: one shared map).
#[derive(Clone)]
pub(crate) struct ReportCache {
    version: watch::Receiver<u64>,
    clock: Arc<dyn Clock>,
    entries: Arc<Mutex<Entries>>,
    /// [`MAX_RUNNING`] permits, one held by each running computation.
    running: Arc<tokio::sync::Semaphore>,
}

/// What a request does next.
enum Step<T> {
    Answer(Result<Fetched<T>, ApiError>),
    /// Wait for this computation (started then); whether an older result is there to
    /// show meanwhile.
    WaitFor(watch::Receiver<bool>, tokio::time::Instant, bool),
}

impl ReportCache {
    /// A cache versioned by `version` (the store's `report_inputs()`), timing with `clock`.
    pub(crate) fn new(version: watch::Receiver<u64>, clock: Arc<dyn Clock>) -> ReportCache {
        ReportCache {
            version,
            clock,
            entries: Arc::default(),
            running: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The report under `key` (`key` names its type too: one key, one `T`), computed by
    /// `compute` when no current result is there; `pin` is kept with the entry.
    pub(crate) async fn get<T, F, Fut>(
        &self,
        key: String,
        pin: Option<Value>,
        wait: Wait,
        compute: F,
    ) -> Result<Fetched<T>, ApiError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let wanted = *self.version.borrow();
        let asked = tokio::time::Instant::now();
        let mut compute = Some(compute);
        let mut pin = pin;
        loop {
            let step = {
                let mut entries = self.lock();
                entries.tick += 1;
                let tick = entries.tick;
                let entry = entries.map.entry(key.clone()).or_default();
                entry.used = tick;
                if entry._pin.is_none() {
                    entry._pin = pin.take();
                }
                self.step(&key, entry, wanted, &mut compute)
            };
            let (mut finished, started, has_older) = match step {
                Step::Answer(a) => {
                    self.evict();
                    return a;
                }
                Step::WaitFor(rx, started, has_older) => (rx, started, has_older),
            };
            let deadline = match wait {
                Wait::Page { stale, .. } if has_older => Some(asked + stale),
                Wait::Page { first, .. } => Some(started + first),
                Wait::Current => None,
            };
            let ended = async { finished.wait_for(|done| *done).await.is_ok() };
            let in_time = match deadline {
                Some(at) => tokio::time::timeout_at(at, ended).await.ok(),
                None => Some(ended.await),
            };
            if in_time == Some(false) {
                // Its task was dropped without an answer (the runtime is shutting down).
                return Err(ApiError::Internal("the report computation was stopped".into()));
            }
            if in_time.is_none() {
                // Out of time: the last complete result, or none yet.
                let entries = self.lock();
                let done = entries.map.get(&key).and_then(|e| e.done.as_ref());
                return Ok(match done.and_then(|d| Some((d.value.clone().downcast::<T>().ok()?, d))) {
                    Some((value, d)) => Fetched::Ready { value, as_of: d.as_of, current: d.version >= wanted },
                    None => Fetched::Computing,
                });
            }
        }
    }

    /// Under the lock: answer from the entry, join its running computation, or start one.
    fn step<T, F, Fut>(&self, key: &str, entry: &mut Entry, wanted: u64, compute: &mut Option<F>) -> Step<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        if let Some(d) = &entry.done
            && d.version >= wanted
        {
            return Step::Answer(match d.value.clone().downcast::<T>() {
                Ok(value) => Ok(Fetched::Ready { value, as_of: d.as_of, current: true }),
                Err(_) => Err(ApiError::Internal("the report cache holds another type under this key".into())),
            });
        }
        if let Some((_, rx, started)) = &entry.running {
            return Step::WaitFor(rx.clone(), *started, entry.done.is_some());
        }
        if let Some(f) = &entry.failed
            && f.version >= wanted
            && compute.is_none()
        {
            // The computation this request started (or waited for) failed.
            return Step::Answer(Err(copy_error(&f.error)));
        }
        let Some(compute) = compute.take() else {
            // Started one already, which ended without a result for this version.
            return Step::Answer(Err(ApiError::Internal("the report computation ended without a result".into())));
        };
        // The version read now: the computation reads data at least this new.
        let version = (*self.version.borrow()).max(wanted);
        let (tx, rx) = watch::channel(false);
        let started = tokio::time::Instant::now();
        entry.running = Some((version, rx.clone(), started));
        entry.failed = None;
        let as_of = self.clock.now();
        let (work, permits) = (compute(), self.running.clone());
        let work = tokio::spawn(async move {
            // Never closed: the permit is always granted, in turn.
            let _turn = permits.acquire_owned().await;
            work.await
        });
        let cache = self.clone();
        let key = key.to_string();
        tokio::spawn(async move {
            let outcome = match work.await {
                Ok(r) => r,
                Err(e) => Err(ApiError::Internal(format!("the report computation failed: {e}"))),
            };
            {
                let mut entries = cache.lock();
                if let Some(entry) = entries.map.get_mut(&key) {
                    entry.running = None;
                    match outcome {
                        Ok(v) => entry.done = Some(Done { version, as_of, value: Arc::new(v) }),
                        Err(e) => {
                            if matches!(e, ApiError::Internal(_) | ApiError::Unavailable(_)) {
                                tracing::warn!("report `{key}`: {e}");
                            }
                            entry.failed = Some(Failed { version, error: Arc::new(e) });
                        }
                    }
                }
            }
            tx.send_replace(true);
        });
        Step::WaitFor(rx, started, entry.done.is_some())
    }

    /// Drops the least recently used keys beyond [`MAX_KEYS`] (not those computing).
    fn evict(&self) {
        let mut entries = self.lock();
        while entries.map.len() > MAX_KEYS {
            let oldest = entries
                .map
                .iter()
                .filter(|(_, e)| e.running.is_none())
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => entries.map.remove(&k),
                None => break,
            };
        }
    }
}

/// The error again, for another request that waited on the same computation.
fn copy_error(e: &ApiError) -> ApiError {
    match e {
        ApiError::BadRequest(m) => ApiError::BadRequest(m.clone()),
        ApiError::NotFound(m) => ApiError::NotFound(m.clone()),
        ApiError::Conflict(m) => ApiError::Conflict(m.clone()),
        other => ApiError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use cairn_core::FixedClock;

    use super::*;

    /// A cache over a version the test moves, and a "report" that reads `data` and counts
    /// its runs.
    struct Fixture {
        version: watch::Sender<u64>,
        cache: ReportCache,
        data: Arc<AtomicU64>,
        runs: Arc<AtomicU64>,
    }

    impl Fixture {
        fn new() -> Fixture {
            let (version, rx) = watch::channel(0);
            let clock = Arc::new(FixedClock::new("2026-03-01T12:00:00Z".parse().expect("ts")));
            Fixture { version, cache: ReportCache::new(rx, clock), data: Arc::default(), runs: Arc::default() }
        }

        /// Changes the data, as a write does: the value, then the version.
        fn write(&self, value: u64) {
            self.data.store(value, Ordering::SeqCst);
            self.version.send_modify(|v| *v += 1);
        }

        async fn get(&self, wait: Wait, delay: Duration) -> Result<Fetched<u64>, ApiError> {
            let (data, runs) = (self.data.clone(), self.runs.clone());
            self.cache
                .get("sum".into(), None, wait, move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let seen = data.load(Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    Ok(seen)
                })
                .await
        }
    }

    fn value(f: Fetched<u64>) -> (u64, bool) {
        match f {
            Fetched::Ready { value, current, .. } => (*value, current),
            Fetched::Computing => panic!("still computing"),
        }
    }

    #[tokio::test]
    async fn a_current_request_sees_every_write_and_reuses_what_did_not_change() {
        let f = Fixture::new();
        f.write(1);
        assert_eq!(value(f.get(Wait::Current, Duration::ZERO).await.expect("ok")), (1, true));
        assert_eq!(value(f.get(Wait::Current, Duration::ZERO).await.expect("ok")), (1, true));
        assert_eq!(f.runs.load(Ordering::SeqCst), 1, "the second request reused the first result");
        f.write(2);
        assert_eq!(value(f.get(Wait::Current, Duration::ZERO).await.expect("ok")), (2, true));
        assert_eq!(f.runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_page_gets_computing_then_the_last_result_while_a_newer_one_is_computed() {
        let f = Fixture::new();
        f.write(1);
        let slow = Duration::from_millis(200);
        assert!(matches!(f.get(Wait::START, slow).await.expect("ok"), Fetched::Computing));
        // The computation goes on without the page: a current request joins it.
        assert_eq!(value(f.get(Wait::Current, slow).await.expect("ok")), (1, true));
        assert_eq!(f.runs.load(Ordering::SeqCst), 1, "one computation for both");
        f.write(5);
        assert_eq!(value(f.get(Wait::START, slow).await.expect("ok")), (1, false), "stale, and said so");
        assert_eq!(value(f.get(Wait::Current, slow).await.expect("ok")), (5, true));
        assert_eq!(value(f.get(Wait::START, slow).await.expect("ok")), (5, true));
        assert_eq!(f.runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_after_a_write_does_not_take_a_computation_that_started_before_it() {
        let f = Fixture::new();
        f.write(1);
        let slow = Duration::from_millis(200);
        assert!(matches!(f.get(Wait::START, slow).await.expect("ok"), Fetched::Computing));
        // Written while the first computation runs: a current request waits for it, then
        // for one that reads the write.
        f.write(7);
        assert_eq!(value(f.get(Wait::Current, slow).await.expect("ok")), (7, true));
        assert_eq!(f.runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failure_goes_to_its_request_and_is_not_kept() {
        let f = Fixture::new();
        let failing = f
            .cache
            .get::<u64, _, _>("sum".into(), None, Wait::Current, || async {
                Err(ApiError::BadRequest("no such segment".into()))
            })
            .await;
        assert!(matches!(failing, Err(ApiError::BadRequest(m)) if m == "no such segment"));
        f.write(3);
        assert_eq!(value(f.get(Wait::Current, Duration::ZERO).await.expect("ok")), (3, true));
    }

    #[tokio::test]
    async fn a_panicking_computation_is_an_error_not_a_hang() {
        let f = Fixture::new();
        let r = f
            .cache
            .get::<u64, _, _>("boom".into(), None, Wait::Current, || async { panic!("a bug in a report") })
            .await;
        assert!(matches!(r, Err(ApiError::Internal(_))), "{r:?}");
    }

    #[tokio::test]
    async fn a_page_waits_longer_for_its_first_figures_than_for_newer_ones() {
        let f = Fixture::new();
        f.write(1);
        // Nothing to show yet: a computation shorter than FIRST_WAIT is waited for.
        let quick = PAGE_WAIT * 3;
        assert!(quick < FIRST_WAIT);
        assert_eq!(value(f.get(Wait::PAGE, quick).await.expect("ok")), (1, true));
        // An older result to show: the page waits PAGE_WAIT, then shows it.
        f.write(2);
        assert_eq!(value(f.get(Wait::PAGE, quick).await.expect("ok")), (1, false));
        assert_eq!(value(f.get(Wait::Current, quick).await.expect("ok")), (2, true));
    }

    #[tokio::test]
    async fn a_long_first_computation_is_waited_for_once_then_said_to_be_computing() {
        let f = Fixture::new();
        f.write(1);
        let long = FIRST_WAIT * 3;
        let asked = tokio::time::Instant::now();
        assert!(matches!(f.get(Wait::PAGE, long).await.expect("ok"), Fetched::Computing));
        assert!(asked.elapsed() >= FIRST_WAIT);
        // Past its first FIRST_WAIT, the computation keeps nobody waiting.
        let asked = tokio::time::Instant::now();
        assert!(matches!(f.get(Wait::PAGE, long).await.expect("ok"), Fetched::Computing));
        assert!(asked.elapsed() < FIRST_WAIT / 2, "{:?}", asked.elapsed());
        assert_eq!(f.runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn no_more_than_max_running_computations_run_at_once() {
        let f = Fixture::new();
        let (now, most) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let n = MAX_RUNNING as u64 + 3;
        for i in 0..n {
            let (now, most) = (now.clone(), most.clone());
            let r = f
                .cache
                .get(format!("k{i}"), None, Wait::START, move || async move {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(running, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(i)
                })
                .await;
            assert!(matches!(r.expect("ok"), Fetched::Computing));
        }
        // Every one of them ends, in turn.
        for i in 0..n {
            let r = f.cache.get(format!("k{i}"), None, Wait::Current, || async { Ok(u64::MAX) }).await;
            assert_eq!(value(r.expect("ok")).0, i);
        }
        assert_eq!(most.load(Ordering::SeqCst), MAX_RUNNING as u64);
    }

    #[tokio::test]
    async fn keys_beyond_the_limit_are_dropped_least_recently_used_first() {
        let f = Fixture::new();
        for i in 0..(MAX_KEYS as u64 + 10) {
            let r = f.cache.get(format!("k{i}"), None, Wait::Current, move || async move { Ok(i) }).await;
            assert_eq!(value(r.expect("ok")).0, i);
        }
        let entries = f.cache.lock();
        assert_eq!(entries.map.len(), MAX_KEYS);
        assert!(!entries.map.contains_key("k0") && entries.map.contains_key(&format!("k{}", MAX_KEYS + 9)));
    }
}
