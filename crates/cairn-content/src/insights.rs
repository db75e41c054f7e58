//! Data-driven insights for messages: where an account stands among its peers
//! ([`benchmark`], or a [`Distribution`] of a whole peer group sorted once) and who uses a
//! feature most and least in an account ([`leaderboard`]). Plain functions over plain
//! data; the caller gathers the numbers and picks the peers.

use serde::Serialize;

/// Where one account's value of a metric stands among its peers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Benchmark {
    /// The account's own value.
    pub value: f64,
    /// Percentile rank, 0–100: the percentage of peers with a value strictly below the
    /// account's, plus half of those with an equal value — `100 × (below + ties / 2) / peers`.
    /// Equal to every peer gives 50; below all gives 0; above all gives 100.
    pub percentile: f64,
    /// The account's rank among itself and its peers, highest value first, sharing ranks on
    /// ties ("competition" ranking: 1, 2, 2, 4): 1 + the number of peers strictly above.
    pub rank: usize,
    /// How many peers it was compared with (the account itself not counted).
    pub peers: usize,
    /// The peers' median (linear interpolation between the two middle values).
    pub median: f64,
    /// The peers' 75th percentile (linear interpolation, as a spreadsheet's `PERCENTILE`
    /// or numpy's default: the value at position `0.75 × (peers − 1)` of the sorted values).
    pub p75: f64,
}

/// The account's benchmark on one metric against its peers' values (the account itself
/// not among them). Values that are not finite numbers are ignored; `None` when the
/// account's value is not finite or no peer has a finite value.
pub fn benchmark(value: f64, peer_values: &[f64]) -> Option<Benchmark> {
    Distribution::new(peer_values.iter().copied()).benchmark(value)
}

/// The values of a metric over a group of accounts, sorted once so that each account's
/// [`Benchmark`] among the others is a binary search, not a pass over the group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Distribution {
    /// The finite values, ascending.
    sorted: Vec<f64>,
}

impl Distribution {
    /// The distribution of `values` (those that are not finite numbers are left out).
    pub fn new(values: impl IntoIterator<Item = f64>) -> Distribution {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        Distribution { sorted }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The benchmark of `value` against every value of the distribution (an outsider's).
    pub fn benchmark(&self, value: f64) -> Option<Benchmark> {
        self.rank(value, false)
    }

    /// The benchmark of a member whose own value is `value`, against the others: one copy
    /// of `value` is taken out of the distribution first (an account is never its own
    /// peer). `None` when `value` is not in it or no other value is.
    pub fn benchmark_of_member(&self, value: f64) -> Option<Benchmark> {
        self.rank(value, true)
    }

    fn rank(&self, value: f64, member: bool) -> Option<Benchmark> {
        if !value.is_finite() {
            return None;
        }
        let first_equal = self.sorted.partition_point(|&p| p < value);
        let past_equal = self.sorted.partition_point(|&p| p <= value);
        let own = usize::from(member);
        if past_equal - first_equal < own {
            return None;
        }
        let peers = self.sorted.len() - own;
        if peers == 0 {
            return None;
        }
        // The peers' values, ascending: the sorted values without the member's own copy
        // (the first equal one; which copy does not matter, they are equal).
        let peer = |k: usize| if member && k >= first_equal { self.sorted[k + 1] } else { self.sorted[k] };
        let below = first_equal;
        let ties = past_equal - first_equal - own;
        let above = self.sorted.len() - past_equal;
        Some(Benchmark {
            value,
            percentile: 100.0 * (below as f64 + ties as f64 / 2.0) / peers as f64,
            rank: above + 1,
            peers,
            median: quantile(peers, 0.5, peer),
            p75: quantile(peers, 0.75, peer),
        })
    }
}

/// The `q` quantile of `len` (> 0) ascending values, the `k`-th given by `value(k)`,
/// linearly interpolated.
fn quantile(len: usize, q: f64, value: impl Fn(usize) -> f64) -> f64 {
    let position = q * (len - 1) as f64;
    let lower = position.floor() as usize;
    let upper = (position.ceil() as usize).min(len - 1);
    let (a, b) = (value(lower), value(upper));
    a + (b - a) * (position - lower as f64)
}

/// An account's size by seats, for comparing accounts of similar size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SizeBand {
    /// 1–10 seats (and 0: an account with no seats yet is a small one).
    UpTo10,
    /// 11–50 seats.
    UpTo50,
    /// 51–200 seats.
    UpTo200,
    /// 201–1,000 seats.
    UpTo1000,
    /// More than 1,000 seats.
    Over1000,
}

impl SizeBand {
    /// The label shown in messages and reports (`"11–50 seats"`).
    pub fn label(self) -> &'static str {
        match self {
            SizeBand::UpTo10 => "1–10 seats",
            SizeBand::UpTo50 => "11–50 seats",
            SizeBand::UpTo200 => "51–200 seats",
            SizeBand::UpTo1000 => "201–1,000 seats",
            SizeBand::Over1000 => "1,000+ seats",
        }
    }
}

/// The size band of an account with `seats` seats: 1–10, 11–50, 51–200, 201–1,000, more.
pub fn size_band(seats: u64) -> SizeBand {
    match seats {
        0..=10 => SizeBand::UpTo10,
        11..=50 => SizeBand::UpTo50,
        51..=200 => SizeBand::UpTo200,
        201..=1000 => SizeBand::UpTo1000,
        _ => SizeBand::Over1000,
    }
}

/// One user's count of an event in the window, the input of [`leaderboard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCount {
    /// Display name.
    pub name: String,
    /// Email address (the tie-breaker: unique per contact).
    pub email: String,
    /// How many times they did the event in the window.
    pub count: u64,
}

/// One row of a leaderboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Rank by count among all users given, highest first, sharing ranks on ties
    /// (1, 2, 2, 4).
    pub rank: usize,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// The count.
    pub count: u64,
}

/// The top and bottom users of an account on one event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Leaderboard {
    /// The `n` users with the highest counts, highest first.
    pub top: Vec<Entry>,
    /// The `n` users with the lowest counts among those not in `top`, lowest first.
    pub bottom: Vec<Entry>,
}

/// The top and bottom `n` users by count. Ties are broken by email, then name (ascending),
/// in both lists, so the result never depends on the input's order. A user appears in at
/// most one list: with fewer than `2n` users, `bottom` holds those left after `top`.
pub fn leaderboard(per_user_counts: &[UserCount], n: usize) -> Leaderboard {
    let mut ranked: Vec<&UserCount> = per_user_counts.iter().collect();
    ranked.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.email.cmp(&b.email)).then_with(|| a.name.cmp(&b.name)));
    let entry = |user: &UserCount| Entry {
        rank: 1 + ranked.iter().filter(|other| other.count > user.count).count(),
        name: user.name.clone(),
        email: user.email.clone(),
        count: user.count,
    };
    let top_len = n.min(ranked.len());
    let top = ranked[..top_len].iter().map(|u| entry(u)).collect();
    let rest = &ranked[top_len..];
    let mut bottom: Vec<&UserCount> = rest.to_vec();
    bottom.sort_by(|a, b| a.count.cmp(&b.count).then_with(|| a.email.cmp(&b.email)).then_with(|| a.name.cmp(&b.name)));
    let bottom = bottom.iter().take(n).map(|u| entry(u)).collect();
    Leaderboard { top, bottom }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn percentile_equal_to_every_peer_is_the_middle() {
        let b = benchmark(5.0, &[5.0, 5.0, 5.0, 5.0]).unwrap();
        assert!(close(b.percentile, 50.0));
        assert_eq!((b.rank, b.peers), (1, 4));
        assert!(close(b.median, 5.0) && close(b.p75, 5.0));
    }

    #[test]
    fn smallest_and_largest() {
        let peers = [10.0, 20.0, 30.0, 40.0];
        let low = benchmark(1.0, &peers).unwrap();
        assert!(close(low.percentile, 0.0));
        assert_eq!(low.rank, 5);
        let high = benchmark(99.0, &peers).unwrap();
        assert!(close(high.percentile, 100.0));
        assert_eq!(high.rank, 1);
        // Median of 10, 20, 30, 40 = 25; p75 at position 2.25 → 30 + 0.25 × 10.
        assert!(close(high.median, 25.0) && close(high.p75, 32.5));
    }

    #[test]
    fn ties_count_half() {
        // 1 below, 2 equal, 1 above: (1 + 2/2) / 4 = 50 %; rank 2 (one peer above).
        let b = benchmark(2.0, &[1.0, 2.0, 2.0, 3.0]).unwrap();
        assert!(close(b.percentile, 50.0));
        assert_eq!(b.rank, 2);
        // 3 below, 1 equal of 5: (3 + 0.5) / 5 = 70 %.
        let b = benchmark(7.0, &[7.0, 1.0, 6.0, 9.0, 3.0]).unwrap();
        assert!(close(b.percentile, 70.0));
        assert!(close(b.median, 6.0) && close(b.p75, 7.0));
    }

    #[test]
    fn no_peers_or_no_number_gives_nothing() {
        assert_eq!(benchmark(1.0, &[]), None);
        assert_eq!(benchmark(1.0, &[f64::NAN]), None);
        assert_eq!(benchmark(f64::INFINITY, &[1.0]), None);
        assert_eq!(benchmark(1.0, &[f64::NAN, 3.0]).unwrap().peers, 1);
    }

    #[test]
    fn size_bands_have_documented_edges() {
        let bands: Vec<SizeBand> = [0, 10, 11, 50, 51, 200, 201, 1000, 1001].into_iter().map(size_band).collect();
        use SizeBand::*;
        assert_eq!(bands, [UpTo10, UpTo10, UpTo50, UpTo50, UpTo200, UpTo200, UpTo1000, UpTo1000, Over1000]);
    }

    #[test]
    fn a_member_is_benchmarked_against_the_others() {
        // Group 3, 5, 5, 8, 10. The account with 5 against 3, 5, 8, 10: 1 below, 1 equal
        // → (1 + 0.5) / 4 = 37.5 %; rank 3 (8 and 10 above); median (5 + 8) / 2 = 6.5;
        // p75 at position 2.25 of 3, 5, 8, 10 → 8 + 0.25 × 2 = 8.5.
        let group = Distribution::new([10.0, 5.0, 3.0, 8.0, 5.0]);
        let b = group.benchmark_of_member(5.0).unwrap();
        assert!(close(b.percentile, 37.5), "{b:?}");
        assert_eq!((b.rank, b.peers), (3, 4));
        assert!(close(b.median, 6.5) && close(b.p75, 8.5), "{b:?}");
        // The largest: all four others below → 100 %, rank 1; peers 3, 5, 5, 8.
        let top = group.benchmark_of_member(10.0).unwrap();
        assert!(close(top.percentile, 100.0) && top.rank == 1);
        assert!(close(top.median, 5.0) && close(top.p75, 5.75), "{top:?}");
        // The smallest: 0 %, last of five.
        let low = group.benchmark_of_member(3.0).unwrap();
        assert!(close(low.percentile, 0.0) && low.rank == 5);
        // Not a member, or alone: nothing.
        assert_eq!(group.benchmark_of_member(4.0), None);
        assert_eq!(Distribution::new([7.0]).benchmark_of_member(7.0), None);
        // Two equal accounts: each is level with its one peer.
        let pair = Distribution::new([2.0, 2.0]).benchmark_of_member(2.0).unwrap();
        assert!(close(pair.percentile, 50.0) && pair.rank == 1 && pair.peers == 1);
    }

    #[test]
    fn a_member_gets_what_the_others_alone_give() {
        let values = [0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 9.5, 12.0, 40.0];
        let group = Distribution::new(values);
        for (i, own) in values.iter().enumerate() {
            let others: Vec<f64> = values.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, v)| *v).collect();
            assert_eq!(group.benchmark_of_member(*own), benchmark(*own, &others), "value {own}");
        }
    }

    fn user(name: &str, count: u64) -> UserCount {
        UserCount { name: name.to_owned(), email: format!("{}@acme.test", name.to_lowercase()), count }
    }

    #[test]
    fn leaderboard_breaks_ties_by_email_whatever_the_input_order() {
        let users = [user("Dan", 5), user("Ann", 9), user("Cy", 5), user("Bo", 5), user("Eve", 0), user("Fay", 1)];
        let board = leaderboard(&users, 2);
        let names = |entries: &[Entry]| entries.iter().map(|e| (e.name.clone(), e.rank)).collect::<Vec<_>>();
        assert_eq!(names(&board.top), [("Ann".to_owned(), 1), ("Bo".to_owned(), 2)]);
        assert_eq!(names(&board.bottom), [("Eve".to_owned(), 6), ("Fay".to_owned(), 5)]);
        let mut reversed = users.clone();
        reversed.reverse();
        assert_eq!(leaderboard(&reversed, 2), board);
    }

    #[test]
    fn small_accounts_never_list_a_user_twice() {
        let users = [user("Ann", 3), user("Bo", 2), user("Cy", 1)];
        let board = leaderboard(&users, 2);
        assert_eq!(board.top.len(), 2);
        assert_eq!(board.bottom.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["Cy"]);
        assert_eq!(leaderboard(&[], 3), Leaderboard::default());
        assert_eq!(leaderboard(&users, 0), Leaderboard::default());
    }
}
