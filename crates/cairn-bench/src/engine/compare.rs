//! How a peer's answer compares with cairn's, at the end and day by day.

use cairn_workspace::HealthBands;

use super::answer::History;
use super::peers::PeerRun;
use super::replay::CairnRun;

/// How a peer's answer compares with cairn's.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Agreement {
    pub(super) peer: String,
    pub(super) segments_compared: usize,
    pub(super) segments_matching: usize,
    pub(super) mismatches: Vec<String>,
    pub(super) health_accounts: usize,
    pub(super) health_mean_cairn: f64,
    pub(super) health_mean_peer: f64,
    pub(super) health_accounts_differing: usize,
    pub(super) health_max_difference: f64,
}

impl Agreement {
    pub(crate) fn ok(&self) -> bool {
        self.mismatches.is_empty() && self.health_accounts_differing == 0
    }
}

pub(super) fn compare(cairn: &CairnRun, peer: &PeerRun) -> Agreement {
    let mut mismatches = Vec::new();
    let mut matching = 0;
    for (id, n) in &cairn.answer.segments {
        match peer.answer.segments.get(id) {
            Some(p) if p == n => matching += 1,
            Some(p) => mismatches.push(format!("{id}: cairn {n}, {} {p}", peer.name)),
            None => mismatches.push(format!("{id}: cairn {n}, {} has no answer", peer.name)),
        }
    }
    let (mut sum_c, mut sum_p, mut n, mut differing, mut max_diff) = (0.0, 0.0, 0usize, 0usize, 0.0f64);
    for id in &cairn.default_model_accounts {
        let c = cairn.answer.health.get(id).copied().flatten();
        let p = peer.answer.health.get(id).copied().flatten();
        n += 1;
        match (c, p) {
            (Some(c), Some(p)) => {
                sum_c += c;
                sum_p += p;
                let d = (c - p).abs();
                max_diff = max_diff.max(d);
                if d > 1e-6 {
                    differing += 1;
                }
            }
            (None, None) => {}
            _ => differing += 1,
        }
    }
    if differing > 0 && mismatches.len() < 50 {
        let shown: Vec<String> = cairn
            .default_model_accounts
            .iter()
            .filter_map(|id| {
                let c = cairn.answer.health.get(id).copied().flatten();
                let p = peer.answer.health.get(id).copied().flatten();
                let same = match (c, p) {
                    (Some(c), Some(p)) => (c - p).abs() <= 1e-6,
                    (None, None) => true,
                    _ => false,
                };
                (!same).then(|| format!("health of account {id}: cairn {c:?}, {} {p:?}", peer.name))
            })
            .take(5)
            .collect();
        mismatches.extend(shown);
    }
    Agreement {
        peer: peer.name.clone(),
        segments_compared: cairn.answer.segments.len(),
        segments_matching: matching,
        mismatches,
        health_accounts: n,
        health_mean_cairn: sum_c / n.max(1) as f64,
        health_mean_peer: sum_p / n.max(1) as f64,
        health_accounts_differing: differing,
        health_max_difference: max_diff,
    }
}

/// How a peer's history compares with cairn's, day by day.
#[derive(Debug, serde::Serialize)]
pub(crate) struct HistoryAgreement {
    pub(super) peer: String,
    pub(super) segments: usize,
    pub(super) days: usize,
    pub(super) segment_days_differing: usize,
    /// Account-days cairn scored with the default model.
    pub(super) health_points: usize,
    pub(super) health_differing: usize,
    pub(super) health_max_difference: f64,
    /// Of those, the account-days the SQL scores: the band cairn's transitions put the
    /// account in, against the band of the SQL's score.
    pub(super) bands_compared: usize,
    pub(super) bands_differing: usize,
    /// The first few differences.
    pub(super) mismatches: Vec<String>,
}

impl HistoryAgreement {
    pub(crate) fn ok(&self) -> bool {
        self.segment_days_differing == 0 && self.health_differing == 0 && self.bands_differing == 0
    }
}

pub(super) fn compare_history(
    cairn: &History,
    peer_name: &str,
    peer: &History,
    bands: &HealthBands,
) -> HistoryAgreement {
    const SHOWN: usize = 8;
    let mut mismatches = Vec::new();
    let mut segment_days_differing = 0;
    for (key, n) in &cairn.segments {
        let p = peer.segments.get(key).copied();
        if p != Some(*n) {
            segment_days_differing += 1;
            if mismatches.len() < SHOWN {
                mismatches.push(format!("{} on day {}: cairn {n}, {peer_name} {p:?}", key.0, key.1));
            }
        }
    }
    let (mut health_differing, mut max_diff) = (0, 0.0f64);
    for (key, c) in &cairn.health {
        let p = peer.health.get(key).copied().flatten();
        let same = match (c, p) {
            (Some(c), Some(p)) => {
                max_diff = max_diff.max((c - p).abs());
                (c - p).abs() <= 1e-6
            }
            (None, None) => true,
            _ => false,
        };
        if !same {
            health_differing += 1;
            if mismatches.len() < 2 * SHOWN {
                mismatches
                    .push(format!("health of account {} on day {}: cairn {c:?}, {peer_name} {p:?}", key.1, key.0));
            }
        }
    }
    let (mut bands_compared, mut bands_differing) = (0, 0);
    for key in cairn.health.keys() {
        let Some(p) = peer.health.get(key).copied().flatten() else { continue };
        bands_compared += 1;
        // The SQL's score through cairn's band rule (which takes a hair below a threshold
        // as at it: the two sides add the same numbers in different orders).
        let (expected, got) = (bands.band(p), cairn.bands.get(key).copied());
        if got != Some(expected) {
            bands_differing += 1;
            if mismatches.len() < 3 * SHOWN {
                mismatches.push(format!(
                    "band of account {} on day {}: cairn's transitions {got:?}, {peer_name}'s score {p} is {expected:?}",
                    key.1, key.0
                ));
            }
        }
    }
    let segments: std::collections::BTreeSet<&str> = cairn.segments.keys().map(|(id, _)| id.as_str()).collect();
    HistoryAgreement {
        peer: peer_name.to_string(),
        segments: segments.len(),
        days: cairn.segments.len() / segments.len().max(1),
        segment_days_differing,
        health_points: cairn.health.len(),
        health_differing,
        health_max_difference: max_diff,
        bands_compared,
        bands_differing,
        mismatches,
    }
}

impl Agreement {
    /// One line: the peer, whether it matches, what was compared.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} {}: {}/{} segment counts, {} health scores within 1e-6 of {}",
            if self.ok() { "MATCH" } else { "MISMATCH" },
            self.peer,
            self.segments_matching,
            self.segments_compared,
            self.health_accounts - self.health_accounts_differing,
            self.health_accounts
        )
    }
}

impl HistoryAgreement {
    /// One line: the peer, whether its history matches, what was compared.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} {} by day: {} segments × {} days ({} counts differ), {} health scores ({} differ)",
            if self.ok() { "MATCH" } else { "MISMATCH" },
            self.peer,
            self.segments,
            self.days,
            self.segment_days_differing,
            self.health_points,
            self.health_differing
        )
    }
}
