//! The staffing model (`staffing:`): one CSM's capacity and cost, and the touch model —
//! human hours per account per year by account segment and journey stage. Amounts and
//! hours are read from the text as written (at most two decimals), never through a float.

use std::collections::BTreeMap;

use cairn_core::values::Money;
use cairn_rules::Subject;

use super::*;
use crate::staffing::{Csm, Staffing, Touch};
use crate::yaml::{Node, Value};

const STAFFING_KEYS: &[&str] = &["csm", "touch_model"];
const CSM_KEYS: &[&str] = &["hours_per_year", "cost_per_year"];
const TOUCH_KEYS: &[&str] = &["segment", "hours", "digital_hours"];

const CSM_EXAMPLE: &str = "e.g. `csm: { hours_per_year: 1600, cost_per_year: 95000 }`";
const TOUCH_EXAMPLE: &str = "e.g. `- segment: enterprise\n      hours: { onboarding: 40, adoption: 20 }`";
const HOURS_EXAMPLE: &str =
    "a mapping of journey stage to hours per account per year, e.g. `{ onboarding: 40, adoption: 20 }`";

/// Hours in a year: no account takes more of one person, nor does a CSM give more.
const HOURS_IN_A_YEAR: u32 = 8_760;

/// What the touch model may name.
pub(super) struct StaffingNames<'k> {
    /// Every segment id declared, with whom it holds.
    pub segments: &'k BTreeMap<String, Subject>,
    /// Every journey stage id, in order.
    pub stages: &'k [String],
    /// Whether a `journey:` is defined at all.
    pub journey: bool,
}

impl Checker<'_> {
    pub(super) fn staffing(&mut self, file: usize, node: &Node, names: &StaffingNames<'_>) -> Option<Staffing> {
        let what = "`staffing`";
        let fields = self.fields(file, node, what, STAFFING_KEYS)?;
        let csm_node = self.require(&fields, "csm", what, Some(CSM_EXAMPLE));
        let touch_node = self.require(&fields, "touch_model", what, Some(TOUCH_EXAMPLE));
        let csm = csm_node.and_then(|n| self.csm(file, n));
        if !names.journey {
            let help = "the touch model counts hours by journey stage: define `journey:` with its stages".to_string();
            self.error(fields.at, "`staffing` needs a journey", Some(help));
            return None;
        }
        let mut touch_model = Some(Vec::new());
        let mut seen: BTreeMap<String, At> = BTreeMap::new();
        if let Some(touch_node) = touch_node {
            let items = self.list(file, touch_node, "touch_model");
            if items.is_empty() && matches!(touch_node.value, Value::Seq(_) | Value::Null) {
                let help = Some(format!("list each segment's hours, {TOUCH_EXAMPLE}"));
                self.error(At { file, offset: touch_node.offset }, "the touch model is empty", help);
                touch_model = None;
            }
            for item in items {
                match (self.touch(file, item, names, &mut seen), &mut touch_model) {
                    (Some(t), Some(list)) => list.push(t),
                    _ => touch_model = None,
                }
            }
        }
        Some(Staffing { csm: csm?, touch_model: touch_model?, location: self.location(fields.at) })
    }

    fn csm(&mut self, file: usize, node: &Node) -> Option<Csm> {
        let what = "`csm`";
        let fields = self.fields(file, node, what, CSM_KEYS)?;
        let hours = self.require(&fields, "hours_per_year", what, Some("hours a CSM spends on accounts, e.g. `1600`"));
        let cost = self.require(&fields, "cost_per_year", what, Some("a CSM's fully loaded cost, e.g. `95000`"));
        let hours = hours.and_then(|n| self.whole(file, n, "hours_per_year", 1, i64::from(HOURS_IN_A_YEAR)));
        let cost = cost.and_then(|n| self.amount(file, n, "cost_per_year"));
        let cost = cost.filter(|c| {
            if c.cents() == 0 {
                let at = fields.get("cost_per_year").map_or(fields.at, |n| At { file, offset: n.offset });
                let help = Some("give the salary, benefits, tools and management share of one CSM".to_string());
                self.error(at, "`cost_per_year` must be above 0", help);
            }
            c.cents() > 0
        });
        Some(Csm { hours_per_year: u32::try_from(hours?).ok()?, cost_per_year_cents: cost?.cents() })
    }

    fn touch(
        &mut self,
        file: usize,
        node: &Node,
        names: &StaffingNames<'_>,
        seen: &mut BTreeMap<String, At>,
    ) -> Option<Touch> {
        let fields = self.fields(file, node, "a touch model entry", TOUCH_KEYS)?;
        let segment_node = self.require(&fields, "segment", "a touch model entry", Some(TOUCH_EXAMPLE));
        let at = segment_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let segment = self.touch_segment(file, segment_node, names, seen);
        let what = segment.as_ref().map_or("a touch model entry".to_string(), |s| format!("the touch model of `{s}`"));
        let hours_node = self.require(&fields, "hours", &what, Some(HOURS_EXAMPLE));
        let hours = hours_node.and_then(|n| self.stage_hours(file, n, "hours", names.stages));
        let digital = match fields.get("digital_hours") {
            Some(n) => self.stage_hours(file, n, "digital_hours", names.stages),
            None => Some(Vec::new()),
        };
        let (hours, digital) = (hours?, digital?);
        let mut ok = true;
        for (stage, digital_hours) in &digital {
            let human = hours.iter().find(|(s, _)| s == stage).map_or(0, |(_, h)| *h);
            if *digital_hours > human {
                let at = digital_at(&fields, file, stage.as_str()).unwrap_or(fields.at);
                let message = format!(
                    "`digital_hours` of `{stage}` ({}) is above its `hours` ({})",
                    hundredths(*digital_hours),
                    hundredths(human)
                );
                let help =
                    Some("digital hours are the human time left once the stage is digital: at most its hours".into());
                self.error(at, message, help);
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        Some(Touch { segment: segment?, hours, digital_hours: digital, location: self.location(at) })
    }

    /// The entry's segment: a declared account segment not listed before in the touch
    /// model.
    fn touch_segment(
        &mut self,
        file: usize,
        node: Option<&Node>,
        names: &StaffingNames<'_>,
        seen: &mut BTreeMap<String, At>,
    ) -> Option<Id> {
        let node = node?;
        let at = At { file, offset: node.offset };
        let id = self.id(file, Some(node))?;
        match names.segments.get(id.as_str()) {
            None => {
                let help = did_you_mean(id.as_str(), names.segments.keys().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some(format!("define `{id}` under `segments:` (`of: account`)")));
                self.error(at, format!("unknown segment `{id}`"), help);
                return None;
            }
            Some(Subject::Contact) => {
                let help = Some("the touch model counts accounts: name a segment with `of: account`".to_string());
                self.error(at, format!("segment `{id}` holds contacts, not accounts"), help);
                return None;
            }
            Some(Subject::Account) => {}
        }
        if let Some(first) = seen.get(id.as_str()) {
            let message = format!("segment `{id}` is already in the touch model at {}", self.place(*first));
            self.error(at, message, Some("give each segment one entry with all its stages".to_string()));
            return None;
        }
        seen.insert(id.as_str().to_string(), at);
        Some(id)
    }

    /// `{ stage: hours, … }`, in journey order.
    fn stage_hours(&mut self, file: usize, node: &Node, key: &str, stages: &[String]) -> Option<Vec<(Id, u32)>> {
        let Value::Map(entries) = &node.value else {
            let message = format!("expected a mapping for `{key}`, found {}", node.value.kind());
            self.error(At { file, offset: node.offset }, message, Some(HOURS_EXAMPLE.to_string()));
            return None;
        };
        let mut out = Some(Vec::new());
        let mut first: BTreeMap<String, At> = BTreeMap::new();
        for (stage_node, value) in entries {
            let at = At { file, offset: stage_node.offset };
            let stage = self.id(file, Some(stage_node)).filter(|id| {
                let known = stages.iter().any(|s| s == id.as_str());
                if !known {
                    let help = did_you_mean(id.as_str(), stages.iter().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| {
                            let stages: Vec<&str> = stages.iter().map(String::as_str).collect();
                            Some(format!("the journey's stages are {}", list(&stages)))
                        });
                    self.error(at, format!("unknown stage `{id}` in `{key}`"), help);
                }
                known
            });
            let stage = stage.filter(|id| {
                if let Some(previous) = first.get(id.as_str()) {
                    let help = Some(format!("the first `{id}` is at {}; keep one", self.place(*previous)));
                    self.error(at, format!("duplicate stage `{id}` in `{key}`"), help);
                    return false;
                }
                first.insert(id.as_str().to_string(), at);
                true
            });
            let hours = self.hours(file, value, key);
            match (stage, hours, &mut out) {
                (Some(stage), Some(hours), Some(list)) => list.push((stage, hours)),
                _ => out = None,
            }
        }
        let mut out = out?;
        out.sort_by_key(|(id, _)| stages.iter().position(|s| s == id.as_str()));
        Some(out)
    }

    /// Hours per account per year: 0 to 8,760 with at most two decimals, in hundredths.
    fn hours(&mut self, file: usize, node: &Node, key: &str) -> Option<u32> {
        let at = At { file, offset: node.offset };
        let text = match &node.value {
            Value::Int(_) | Value::Float(_) => self.raw(file, node).to_string(),
            Value::Str(s) => s.clone(),
            other => {
                let message = format!("expected hours (a number) in `{key}`, found {}", other.kind());
                self.error(at, message, Some(HOURS_EXAMPLE.to_string()));
                return None;
            }
        };
        let help = Some("hours per account per year: a number from 0 to 8760 with at most two decimals, e.g. `1.5`");
        let Ok(parsed) = Money::parse_decimal(&text) else {
            self.error(at, format!("`{text}` is not a number of hours"), help.map(str::to_string));
            return None;
        };
        match u32::try_from(parsed.cents()) {
            Ok(h) if h <= HOURS_IN_A_YEAR * 100 => Some(h),
            _ => {
                self.error(at, format!("`{text}` hours is more than a year holds"), help.map(str::to_string));
                None
            }
        }
    }

    /// An amount of money as written (`95000`, `95000.50`), in cents.
    fn amount(&mut self, file: usize, node: &Node, key: &str) -> Option<Money> {
        let at = At { file, offset: node.offset };
        let text = match &node.value {
            Value::Int(_) | Value::Float(_) => self.raw(file, node).to_string(),
            Value::Str(s) => s.clone(),
            other => {
                self.error(at, format!("expected an amount for `{key}`, found {}", other.kind()), None);
                return None;
            }
        };
        match Money::parse_decimal(&text) {
            Ok(m) => Some(m),
            Err(e) => {
                let help = Some("write the amount in the currency of ARR, without separators: `95000` or `95000.50`");
                self.error(at, e.to_string(), help.map(str::to_string));
                None
            }
        }
    }
}

/// Where a stage is written in `digital_hours`.
fn digital_at(fields: &Fields<'_>, file: usize, stage: &str) -> Option<At> {
    let Value::Map(entries) = &fields.get("digital_hours")?.value else { return None };
    entries
        .iter()
        .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == stage))
        .map(|(k, _)| At { file, offset: k.offset })
}

/// Hundredths of an hour as written: `1.5`, `40`.
fn hundredths(h: u32) -> String {
    match h % 100 {
        0 => format!("{}", h / 100),
        r if r % 10 == 0 => format!("{}.{}", h / 100, r / 10),
        r => format!("{}.{r:02}", h / 100),
    }
}
