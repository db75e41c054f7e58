//! Data-driven insights for messages: where an account stands among its peers
//! ([`benchmark`]) and who uses a feature most and least in an account ([`leaderboard`]).
//! Plain functions over plain data; the caller gathers the numbers.

use std::collections::BTreeSet;

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
/// excluded, see [`peer_values`]). Values that are not finite numbers are ignored; `None`
/// when the account's value is not finite or no peer has a finite value.
pub fn benchmark(value: f64, peer_values: &[f64]) -> Option<Benchmark> {
    if !value.is_finite() {
        return None;
    }
    let mut peers: Vec<f64> = peer_values.iter().copied().filter(|v| v.is_finite()).collect();
    if peers.is_empty() {
        return None;
    }
    peers.sort_by(f64::total_cmp);
    let below = peers.iter().filter(|&&p| p < value).count();
    let ties = peers.iter().filter(|&&p| p == value).count();
    let above = peers.len() - below - ties;
    let n = peers.len() as f64;
    Some(Benchmark {
        value,
        percentile: 100.0 * (below as f64 + ties as f64 / 2.0) / n,
        rank: above + 1,
        peers: peers.len(),
        median: quantile(&peers, 0.5),
        p75: quantile(&peers, 0.75),
    })
}

/// The `q` quantile of sorted, non-empty `values`, linearly interpolated.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    match (sorted.get(lower), sorted.get(upper)) {
        (Some(&a), Some(&b)) => a + (b - a) * (position - lower as f64),
        _ => f64::NAN,
    }
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

/// What an account is compared on, to pick its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cohort {
    /// Accounts in the same segment (both members of it).
    Segment(String),
    /// Accounts on the same plan.
    Plan,
    /// Accounts in the same [`SizeBand`].
    SizeBand,
}

/// What peer selection needs to know of an account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerProfile {
    /// The account id (an account is never its own peer).
    pub id: String,
    /// Its plan, if known.
    pub plan: Option<String>,
    /// Its seats, if known.
    pub seats: Option<u64>,
    /// The segments it is in.
    pub segments: BTreeSet<String>,
}

/// Whether `other` is a peer of `account` in `cohort`: a different account sharing the
/// segment, the plan or the size band. An account missing the attribute has no peers.
pub fn is_peer(account: &PeerProfile, other: &PeerProfile, cohort: &Cohort) -> bool {
    if account.id == other.id {
        return false;
    }
    match cohort {
        Cohort::Segment(segment) => account.segments.contains(segment) && other.segments.contains(segment),
        Cohort::Plan => account.plan.is_some() && account.plan == other.plan,
        Cohort::SizeBand => match (account.seats, other.seats) {
            (Some(a), Some(b)) => size_band(a) == size_band(b),
            _ => false,
        },
    }
}

/// The metric values of `account`'s peers among `candidates` (profile, value): the input
/// of [`benchmark`].
pub fn peer_values<'a>(
    account: &PeerProfile,
    candidates: impl IntoIterator<Item = (&'a PeerProfile, f64)>,
    cohort: &Cohort,
) -> Vec<f64> {
    candidates.into_iter().filter(|(other, _)| is_peer(account, other, cohort)).map(|(_, value)| value).collect()
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
    fn peers_share_the_cohort_and_exclude_the_account() {
        let profile = |id: &str, plan: &str, seats: u64, segments: &[&str]| PeerProfile {
            id: id.to_owned(),
            plan: Some(plan.to_owned()),
            seats: Some(seats),
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
        };
        let me = profile("a", "team", 30, &["smb"]);
        let others = [
            (profile("a", "team", 30, &["smb"]), 1.0),
            (profile("b", "team", 300, &[]), 2.0),
            (profile("c", "starter", 45, &["smb"]), 3.0),
            (profile("d", "team", 12, &["smb"]), 4.0),
        ];
        let candidates = || others.iter().map(|(p, v)| (p, *v));
        assert_eq!(peer_values(&me, candidates(), &Cohort::Plan), [2.0, 4.0]);
        assert_eq!(peer_values(&me, candidates(), &Cohort::SizeBand), [3.0, 4.0]);
        assert_eq!(peer_values(&me, candidates(), &Cohort::Segment("smb".into())), [3.0, 4.0]);
        let no_plan = PeerProfile { plan: None, ..me.clone() };
        assert!(peer_values(&no_plan, candidates(), &Cohort::Plan).is_empty());
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
