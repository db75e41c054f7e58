//! The order of a replay: by time, then by arrival.

use jiff::Timestamp;

/// Sorts `(seq, ts)` pairs by time, ties by seq, so a replay sees events in the order
/// they happened (the log itself is in arrival order: an import of history arrives after
/// newer live events).
pub fn time_order(mut times: Vec<(i64, Timestamp)>) -> Vec<(i64, Timestamp)> {
    times.sort_unstable_by_key(|(seq, ts)| (*ts, *seq));
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_imported_late_is_replayed_in_time_order() {
        let t = |s: i64| Timestamp::from_second(s).unwrap();
        let order = time_order(vec![(1, t(50)), (2, t(10)), (3, t(50)), (4, t(0))]);
        assert_eq!(order, vec![(4, t(0)), (2, t(10)), (1, t(50)), (3, t(50))]);
    }
}
