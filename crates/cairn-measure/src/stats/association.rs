//! How well one thing predicts another: the phi coefficient of a 2×2 table (a behaviour
//! against an outcome) and the ROC AUC of a score (health) against an outcome.

use crate::{MeasureError, Ratio};
use serde::Serialize;

/// Accounts counted by whether they did a behaviour and whether the outcome followed
/// (retained at the first renewal, for example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TwoByTwo {
    /// Did the behaviour, had the outcome.
    pub did_and_outcome: u64,
    /// Did the behaviour, no outcome.
    pub did_no_outcome: u64,
    /// Did not, had the outcome.
    pub not_and_outcome: u64,
    /// Did not, no outcome.
    pub not_no_outcome: u64,
}

/// What product-analytics tools show for "which behaviour predicts the outcome".
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Association {
    /// `(a·d − b·c) / √((a+b)(c+d)(a+c)(b+d))`, from −1 to 1 (Matthews' correlation);
    /// `None` when a row or column is empty.
    pub phi: Option<f64>,
    /// Of the accounts with the outcome, the share that did the behaviour.
    pub sensitivity: Option<Ratio>,
    /// Of the accounts that did the behaviour, the share with the outcome.
    pub precision: Option<Ratio>,
}

impl TwoByTwo {
    pub fn association(&self) -> Association {
        let (a, b, c, d) = (
            self.did_and_outcome as f64,
            self.did_no_outcome as f64,
            self.not_and_outcome as f64,
            self.not_no_outcome as f64,
        );
        let margins = (a + b) * (c + d) * (a + c) * (b + d);
        Association {
            phi: (margins > 0.0).then(|| (a * d - b * c) / margins.sqrt()),
            sensitivity: Ratio::new(self.did_and_outcome, self.did_and_outcome + self.not_and_outcome),
            precision: Ratio::new(self.did_and_outcome, self.did_and_outcome + self.did_no_outcome),
        }
    }
}

/// The area under the ROC curve of `scores` for the `positive` labels: the probability
/// that a random positive scores above a random negative, ties counting one half
/// (Mann–Whitney U / (positives × negatives), from mid-ranks). `None` without both a
/// positive and a negative.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Result<Option<f64>, MeasureError> {
    if scores.len() != positive.len() {
        return Err(MeasureError::Input(format!(
            "{} scores but {} outcomes: give one outcome per score",
            scores.len(),
            positive.len()
        )));
    }
    if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
        return Err(MeasureError::Input(format!("a score of {bad} cannot be ranked")));
    }
    let mut order: Vec<(f64, bool)> = scores.iter().copied().zip(positive.iter().copied()).collect();
    order.sort_by(|x, y| x.0.total_cmp(&y.0));
    let positives = order.iter().filter(|(_, p)| *p).count() as f64;
    let negatives = order.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Ok(None);
    }
    // Sum of the positives' mid-ranks (1-based; tied scores share their mean rank).
    let mut rank_sum = 0.0;
    let mut i = 0usize;
    while let Some((score, _)) = order.get(i) {
        let tied = order.get(i..).map_or(0, |rest| rest.iter().take_while(|(s, _)| s == score).count());
        let mid_rank = (2 * i + tied + 1) as f64 / 2.0;
        let tied_positives = order.get(i..i + tied).map_or(0, |g| g.iter().filter(|(_, p)| *p).count());
        rank_sum += mid_rank * tied_positives as f64;
        i += tied;
    }
    Ok(Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)))
}
