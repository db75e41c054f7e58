//! Page figures kept between requests: what a page computes by reading much of the store
//! (the doctor's counts over every event, a segment's size at each month's start from
//! its transitions; report figures are the report cache's), held until what it was
//! computed from can have moved. The key says what that is: the store's change counters
//! ([`StoreVersion`], bumped after every commit of new events or changed accounts,
//! contacts and subscription lines), the day, the loaded definitions, the page's query.
//! A request whose key matches the held one answers from memory; any other computes and
//! replaces it (one value per page family: the last key asked).

use std::sync::{Arc, Mutex, PoisonError};

use cairn_core::doctor::DoctorReport;
use jiff::civil::Date;

use crate::AppState;

/// How far the store's contents have moved: its change counters (bumped after every
/// commit of this process that stored new events or changed accounts, contacts or
/// subscription lines) and the last event the engine applied (which also moves for
/// events another process imported: the engine reads the log every second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreVersion {
    events: u64,
    data: u64,
    engine_seq: Option<i64>,
}

impl StoreVersion {
    /// The version now.
    pub(crate) async fn of(state: &AppState) -> StoreVersion {
        let engine_seq = match &state.runtime {
            Some(rt) => Some(rt.read(|live| live.last_seq).await),
            None => None,
        };
        let store = &state.store;
        StoreVersion { events: *store.event_appends().borrow(), data: *store.data_changes().borrow(), engine_seq }
    }
}

/// What a segment's sizes by month were computed from, and which segment.
pub(crate) type SegmentKey = (StoreVersion, Date, SameDefinitions, String);

/// The figures kept for the pages, one slot each.
#[derive(Clone, Default)]
pub(crate) struct KeptFigures {
    /// `/data`: the doctor report, by version and day.
    pub(crate) doctor: Kept<(StoreVersion, Date), DoctorReport>,
    /// `/segments?segment=`: a segment's size at each month's start, by version, day,
    /// definitions and segment.
    pub(crate) segment_sizes: Kept<SegmentKey, Vec<(String, usize)>>,
}

/// One kept value and the key it was computed for.
pub(crate) struct Kept<K, V>(Arc<Mutex<Option<(K, V)>>>);

impl<K, V> Clone for Kept<K, V> {
    fn clone(&self) -> Self {
        Kept(Arc::clone(&self.0))
    }
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Kept(Arc::new(Mutex::new(None)))
    }
}

impl<K: PartialEq, V: Clone> Kept<K, V> {
    /// The value kept for `key`, if that is the key it was computed for.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.as_ref().filter(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// Keeps `value` as computed for `key`.
    pub(crate) fn put(&self, key: K, value: V) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((key, value));
    }
}

/// Loaded definitions compared by identity: a reload swaps the `Arc`, so equal means the
/// same definitions (the `Arc` is held, so its address is not reused while kept).
#[derive(Clone)]
pub(crate) struct SameDefinitions(pub Arc<cairn_workspace::Workspace>);

impl PartialEq for SameDefinitions {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_kept_for_its_key_only() {
        let kept: Kept<(u64, &str), String> = Kept::default();
        assert_eq!(kept.get(&(1, "a")), None);
        kept.put((1, "a"), "one".into());
        assert_eq!(kept.get(&(1, "a")).as_deref(), Some("one"));
        assert_eq!(kept.get(&(2, "a")), None);
        assert_eq!(kept.get(&(1, "b")), None);
        kept.put((2, "a"), "two".into());
        assert_eq!(kept.get(&(1, "a")), None);
    }
}
