//! Health scores: measures → pillars → overall, with the explanation a CSM reads.
//!
//! A measure's raw value becomes a 0–100 score through its curve. A pillar's score is
//! the weighted mean of its measures' scores, the overall score the weighted mean of
//! the pillars. A measure with no data (its value is unknown: no seats to divide by, no
//! renewal date) is marked so and left out of the mean — its weight is spread over the
//! pillar's other measures in proportion to theirs, never counted as a silent 0. A pillar
//! whose measures all lack data is left out of the overall score the same way.
//!
//! The band comes from `HealthBands::band`, which takes a score within a billionth below a
//! threshold as at it, since a weighted mean that is 40 on paper can come out as
//! 39.99999999999999. Snapshots, kept as runs (an entry from each day the health changed),
//! give the 7- and 30-day trends; a CSM override is kept beside the score and evaluations
//! never touch it.

use cairn_workspace::{Band, HealthBands, HealthModel};
use serde::Serialize;

/// One measure's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasureScore {
    /// The measure's id.
    pub id: String,
    /// Its raw value (`None`: no data).
    pub value: Option<f64>,
    /// Its 0–100 score (`None`: no data).
    pub score: Option<f64>,
    /// The weight it was defined with.
    pub weight: f64,
    /// Its share of the pillar after spreading the weight of measures without data
    /// (0 when it has no data; the shares of a pillar add up to 1).
    pub share: f64,
    /// Points it adds to the overall score (the contributions of all measures add up to
    /// the overall score).
    pub contribution: f64,
}

/// One pillar's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PillarScore {
    /// The pillar's id.
    pub id: String,
    /// Its 0–100 score (`None`: none of its measures has data).
    pub score: Option<f64>,
    /// The weight it was defined with.
    pub weight: f64,
    /// Its share of the overall score after spreading the weight of pillars without data.
    pub share: f64,
    /// Its measures.
    pub measures: Vec<MeasureScore>,
}

/// A health evaluation with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthScore {
    /// The model that scored it.
    pub model: String,
    /// The overall 0–100 score (`None`: no measure has data).
    pub score: Option<f64>,
    /// Its band.
    pub band: Option<Band>,
    /// Per pillar.
    pub pillars: Vec<PillarScore>,
    /// The measure that costs the most points (`pillar`, `measure`): the one whose
    /// `(100 − score) × share of the overall` is largest.
    pub dragging: Option<(String, String)>,
}

/// Scores one account with `model`, given each measure's raw value in model order
/// (pillar by pillar, measure by measure; `None` or a non-finite number = no data).
pub fn score(model: &HealthModel, bands: &HealthBands, values: &[Option<f64>]) -> HealthScore {
    let mut h = HealthScore {
        model: model.id.as_str().to_string(),
        score: None,
        band: None,
        pillars: model
            .pillars
            .iter()
            .map(|pillar| PillarScore {
                id: pillar.id.as_str().to_string(),
                score: None,
                weight: pillar.weight,
                share: 0.0,
                measures: pillar
                    .measures
                    .iter()
                    .map(|m| MeasureScore {
                        id: m.id.as_str().to_string(),
                        value: None,
                        score: None,
                        weight: m.weight,
                        share: 0.0,
                        contribution: 0.0,
                    })
                    .collect(),
            })
            .collect(),
        dragging: None,
    };
    fill(&mut h, model, bands, values);
    h
}

/// Scores `h` again in place, as [`score`] would, when it is a score of `model` (same
/// model, same pillars and measures): no allocation, but for a new dragging measure.
/// Returns false, leaving `h` as it was, when it is a score of another model.
pub fn rescore(h: &mut HealthScore, model: &HealthModel, bands: &HealthBands, values: &[Option<f64>]) -> bool {
    let same_shape = h.model == model.id.as_str()
        && h.pillars.len() == model.pillars.len()
        && h.pillars.iter().zip(&model.pillars).all(|(p, mp)| {
            p.id == mp.id.as_str()
                && p.measures.len() == mp.measures.len()
                && p.measures.iter().zip(&mp.measures).all(|(m, mm)| m.id == mm.id.as_str())
        });
    if same_shape {
        fill(h, model, bands, values);
    }
    same_shape
}

/// Fills the numbers of `h`, whose ids are `model`'s, from the measures' raw values.
fn fill(h: &mut HealthScore, model: &HealthModel, bands: &HealthBands, values: &[Option<f64>]) {
    let mut values = values.iter().copied();
    for (p, pillar) in h.pillars.iter_mut().zip(&model.pillars) {
        p.weight = pillar.weight;
        p.share = 0.0;
        for (ms, m) in p.measures.iter_mut().zip(&pillar.measures) {
            let value = values.next().flatten().filter(|v| v.is_finite());
            ms.value = value;
            ms.score = value.map(|v| m.curve.score(v));
            ms.weight = m.weight;
            ms.share = 0.0;
            ms.contribution = 0.0;
        }
        let with_data: f64 = p.measures.iter().filter(|m| m.score.is_some()).map(|m| m.weight).sum();
        let mut score = None;
        if with_data > 0.0 {
            let mut total = 0.0;
            for m in &mut p.measures {
                if let Some(s) = m.score {
                    m.share = m.weight / with_data;
                    total += s * m.share;
                }
            }
            score = Some(total);
        }
        p.score = score;
    }
    let with_data: f64 = h.pillars.iter().filter(|p| p.score.is_some()).map(|p| p.weight).sum();
    let mut overall = None;
    // (points lost, pillar, measure) of the measure dragging the score down.
    let mut dragging: Option<(f64, usize, usize)> = None;
    if with_data > 0.0 {
        let mut total = 0.0;
        for (pi, p) in h.pillars.iter_mut().enumerate() {
            let Some(ps) = p.score else { continue };
            p.share = p.weight / with_data;
            total += ps * p.share;
            for (mi, m) in p.measures.iter_mut().enumerate() {
                if let Some(s) = m.score {
                    let weight = m.share * p.share;
                    m.contribution = s * weight;
                    let lost = (100.0 - s) * weight;
                    if lost > 0.0 && dragging.as_ref().is_none_or(|(l, _, _)| lost > *l) {
                        dragging = Some((lost, pi, mi));
                    }
                }
            }
        }
        overall = Some(total);
    }
    h.score = overall;
    h.band = overall.map(|s| bands.band(s));
    match dragging {
        None => h.dragging = None,
        Some((_, pi, mi)) => {
            let (p, m) = (&h.pillars[pi].id, &h.pillars[pi].measures[mi].id);
            if h.dragging.as_ref().is_none_or(|(dp, dm)| dp != p || dm != m) {
                h.dragging = Some((p.clone(), m.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cairn_workspace::{SourceFile, check_sources};

    use super::*;

    const YAML: &str = r#"
health:
  bands: { red: 40, green: 70 }
  pillars:
    adoption:
      weight: 2
      measures:
        - { id: reports, value: "count('report_created', 30d)", score: { red: 0, green: 8 }, weight: 3 }
        - { id: ratio, value: "active_users(7d) / seats", score: { red: 0.1, green: 0.5 }, weight: 1 }
    value:
      weight: 1
      measures:
        - { id: shared, value: "count('dashboard_shared', 30d)", score: { bands: [ { below: 1, score: 0 }, { below: 3, score: 60 }, { score: 100 } ] }, weight: 1 }
"#;

    fn scored(values: &[Option<f64>]) -> HealthScore {
        let ws = check_sources(&[SourceFile::new("h.yaml", YAML)]).unwrap_or_else(|d| panic!("{d:?}"));
        let h = ws.health().unwrap();
        score(&h.default, &h.bands, values)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn a_measure_without_data_gives_its_weight_to_the_others_in_its_pillar() {
        // reports 4 → 50; ratio unknown (no seats) → left out, reports has the whole
        // pillar: 50. shared 2 → 60. Overall (50·2 + 60·1) / 3 = 53⅓.
        let h = scored(&[Some(4.0), None, Some(2.0)]);
        assert!(close(h.pillars[0].score, 50.0));
        assert_eq!(h.pillars[0].measures[1].score, None);
        assert_eq!(h.pillars[0].measures[1].share, 0.0);
        assert!(close(Some(h.pillars[0].measures[0].share), 1.0));
        assert!(close(h.score, 160.0 / 3.0));
        assert_eq!(h.band, Some(Band::Yellow));
        // Contributions add up to the score: 50·⅔ + 60·⅓.
        let total: f64 = h.pillars.iter().flat_map(|p| &p.measures).map(|m| m.contribution).sum();
        assert!(close(Some(total), 160.0 / 3.0));
        // reports loses 50·⅔ = 33⅓ points, shared 40·⅓ = 13⅓.
        assert_eq!(h.dragging, Some(("adoption".into(), "reports".into())));
    }

    #[test]
    fn weights_split_by_their_ratio_when_every_measure_has_data() {
        // reports 2 → 25 (share ¾), ratio 0.3 → 50 (share ¼): pillar 31.25.
        // shared 5 → 100. Overall (31.25·2 + 100) / 3 = 54.1666…
        let h = scored(&[Some(2.0), Some(0.3), Some(5.0)]);
        assert!(close(h.pillars[0].score, 31.25));
        assert!(close(h.score, 162.5 / 3.0));
    }

    #[test]
    fn a_pillar_without_data_gives_its_weight_to_the_other_pillars() {
        let h = scored(&[Some(8.0), Some(0.5), None]);
        assert_eq!(h.pillars[1].score, None);
        assert!(close(h.score, 100.0));
        assert_eq!(h.band, Some(Band::Green));
        assert_eq!(h.dragging, None);
    }

    #[test]
    fn no_data_at_all_is_no_score_not_zero() {
        let h = scored(&[None, Some(f64::NAN), None]);
        assert_eq!(h.score, None);
        assert_eq!(h.band, None);
    }
}
