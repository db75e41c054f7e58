//! The staffing model over the live engine: each account's segments, journey stage and
//! ARR now, the workspace's `staffing:` touch model, and cairn-measure's
//! [`staffing`](cairn_measure::staffing) maths; with `digital`, the what-if.
//!
//! The engine is the one `cairn serve` keeps current (the API) or the one `cairn report
//! staffing` evaluates from the store as of now. ARR is the engine's `arr` trait: the
//! subscription lines active today, loaded from the store in cents.

use std::collections::BTreeSet;

use cairn_engine::Engine;
use cairn_measure::staffing::{self as measure, Account, Digital, Model, SegmentTouch, Staffing, WhatIf};
use cairn_rules::Value;
use jiff::Timestamp;
use serde::Serialize;

use crate::{ReportError, Result};

/// Why `digital` is written as it is, for every message about it.
const DIGITAL_FORM: &str = "write SEGMENT:STAGE[,STAGE…], e.g. `smb:onboarding,adoption`";

/// The staffing the touch model asks for now, and the what-if when stages were moved to
/// digital.
#[derive(Debug, Clone, Serialize)]
pub struct StaffingReport {
    /// The instant the accounts' segments and stages are as of.
    pub as_of: Timestamp,
    /// The staffing as it is.
    #[serde(flatten)]
    pub staffing: Staffing,
    /// With the chosen stages digital, and the change; none when none was chosen.
    pub what_if: Option<WhatIf>,
}

/// The staffing of the engine's accounts now; `digital` lists what-if moves, each
/// `SEGMENT:STAGE[,STAGE…]` (the CLI's `--digital`, the API's `digital`).
pub fn staffing(engine: &Engine, digital: &[String]) -> Result<StaffingReport> {
    let ws = engine.workspace();
    let Some(definition) = ws.staffing() else {
        return Err(ReportError::Invalid(
            "the workspace has no `staffing:` section: add a CSM's capacity and cost and the touch model \
             (see examples/workspace/staffing.yaml)"
                .into(),
        ));
    };
    let stages: Vec<String> =
        ws.journey().map(|j| j.stages.iter().map(|s| s.id.to_string()).collect()).unwrap_or_default();
    let model = Model {
        csm_hours_per_year: definition.csm.hours_per_year,
        csm_cost_per_year_cents: definition.csm.cost_per_year_cents,
        segments: definition
            .touch_model
            .iter()
            .map(|t| SegmentTouch {
                segment: t.segment.to_string(),
                stages: stages.iter().map(|s| (s.clone(), t.hours_in(s), t.digital_hours_in(s))).collect(),
            })
            .collect(),
        stages,
    };
    let moves = parse_digital(digital, &model)?;
    let accounts: Vec<Account> = engine
        .accounts()
        .map(|(id, a)| Account {
            segments: a.segments.clone(),
            stage: engine.stage_of(id).map(str::to_string),
            arr_cents: match a.traits.get("arr") {
                // Loaded as cents / 100: the nearest cent is the cents loaded.
                Some(Value::Number(x)) if x.is_finite() => (x * 100.0).round() as i64,
                _ => 0,
            },
        })
        .collect();
    Ok(StaffingReport {
        as_of: engine.now(),
        staffing: measure::staffing(&model, &accounts, &Digital::new()),
        what_if: (!moves.is_empty()).then(|| measure::what_if(&model, &accounts, &moves)),
    })
}

/// `enterprise:onboarding,adoption` (repeatable) → the (segment, stage) cells, checked
/// against the touch model's segments and the journey's stages.
fn parse_digital(texts: &[String], model: &Model) -> Result<Digital> {
    let mut cells = BTreeSet::new();
    for text in texts {
        let Some((segment, stages)) = text.split_once(':') else {
            return Err(ReportError::Invalid(format!("digital `{text}`: {DIGITAL_FORM}")));
        };
        let segment = segment.trim();
        if !model.segments.iter().any(|s| s.segment == segment) {
            let names: Vec<&str> = model.segments.iter().map(|s| s.segment.as_str()).collect();
            return Err(ReportError::Invalid(format!(
                "digital `{text}`: `{segment}` is not a segment of the touch model{}",
                hint(segment, &names, "the touch model's segments")
            )));
        }
        for stage in stages.split(',').map(str::trim) {
            if stage.is_empty() {
                return Err(ReportError::Invalid(format!("digital `{text}`: a stage is missing; {DIGITAL_FORM}")));
            }
            if !model.stages.iter().any(|s| s == stage) {
                let names: Vec<&str> = model.stages.iter().map(String::as_str).collect();
                return Err(ReportError::Invalid(format!(
                    "digital `{text}`: `{stage}` is not a journey stage{}",
                    hint(stage, &names, "the stages")
                )));
            }
            cells.insert((segment.to_string(), stage.to_string()));
        }
    }
    Ok(cells)
}

/// ` (did you mean `x`?)`, or `; the stages are `a`, `b``.
fn hint(input: &str, names: &[&str], what: &str) -> String {
    match cairn_core::suggest::closest(input, names.iter().copied()) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("; {what} are {}", list.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            csm_hours_per_year: 1600,
            csm_cost_per_year_cents: 1,
            segments: vec![
                SegmentTouch { segment: "enterprise".into(), stages: vec![] },
                SegmentTouch { segment: "smb".into(), stages: vec![] },
            ],
            stages: vec!["onboarding".into(), "adoption".into(), "renewal".into()],
        }
    }

    fn parse(texts: &[&str]) -> Result<Vec<(String, String)>> {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        parse_digital(&texts, &model()).map(|d| d.into_iter().collect())
    }

    #[test]
    fn digital_moves_are_segment_colon_stages_repeatable() {
        let got = parse(&["smb:onboarding, adoption", "enterprise:renewal", "smb:adoption"]).unwrap();
        let pairs: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(pairs, [("enterprise", "renewal"), ("smb", "adoption"), ("smb", "onboarding")]);
    }

    #[test]
    fn bad_digital_moves_say_what_to_write() {
        let err = |t: &str| parse(&[t]).unwrap_err().to_string();
        assert_eq!(err("smb"), "digital `smb`: write SEGMENT:STAGE[,STAGE…], e.g. `smb:onboarding,adoption`");
        assert_eq!(
            err("enterprse:onboarding"),
            "digital `enterprse:onboarding`: `enterprse` is not a segment of the touch model (did you mean `enterprise`?)"
        );
        assert_eq!(
            err("dormant:onboarding"),
            "digital `dormant:onboarding`: `dormant` is not a segment of the touch model; the touch model's segments are `enterprise`, `smb`"
        );
        assert_eq!(
            err("smb:onbording"),
            "digital `smb:onbording`: `onbording` is not a journey stage (did you mean `onboarding`?)"
        );
        assert_eq!(
            err("smb:onboarding,"),
            "digital `smb:onboarding,`: a stage is missing; write SEGMENT:STAGE[,STAGE…], e.g. `smb:onboarding,adoption`"
        );
    }
}
