//! What each side of the benchmark computed: the answer at the end and the history by day.

use std::collections::BTreeMap;

use cairn_workspace::Band;

/// What one side computed at the end instant.
#[derive(Debug, Default)]
pub(super) struct Answer {
    /// Members per segment (only the segments the SQL computes).
    pub(super) segments: BTreeMap<String, u64>,
    /// Overall health per account (account id → score; `None`: no data).
    pub(super) health: BTreeMap<u64, Option<f64>>,
}

/// What one side computed for every day of the history, at the end of the day (day 0:
/// the first day of events; the last: the end day, after its day boundary).
#[derive(Debug, Default)]
pub(super) struct History {
    /// Members per segment and day (only the segments the SQL computes).
    pub(super) segments: BTreeMap<(String, i32), i64>,
    /// Overall health per day and account. Cairn's holds the accounts scored by the
    /// default model that day; the SQL's every account.
    pub(super) health: BTreeMap<(i32, u64), Option<f64>>,
    /// Cairn's only: the band of those account-days, from its `health_band_changed`
    /// transitions (none before the first).
    pub(super) bands: BTreeMap<(i32, u64), Band>,
}
