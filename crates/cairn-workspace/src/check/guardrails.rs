//! The guard rails of sending under `workspace:`: frequency caps per channel, quiet hours
//! and what a send held back by a cap does.

use std::collections::BTreeMap;

use jiff::civil::Time;

use super::*;
use super::{At, Checker};
use crate::programs::{Channel, FrequencyCap, Guardrails, OnCap, QuietHours};
use crate::yaml::{Node, Value};

const CAP_KEYS: &[&str] = &["max", "per"];
const QUIET_KEYS: &[&str] = &["from", "to"];

const ON_CAP: &[&str] = &["defer", "skip"];

impl Checker<'_> {
    pub(super) fn guardrails(&mut self, file: usize, fields: &super::Fields<'_>) -> Guardrails {
        let mut rails = Guardrails::default();
        if let Some(node) = fields.get("frequency_caps") {
            rails.frequency_caps = self.frequency_caps(file, node);
        }
        if let Some(node) = fields.get("quiet_hours") {
            rails.quiet_hours = self.quiet_hours(file, node);
        }
        if let Some(node) = fields.get("on_cap") {
            rails.on_cap = self.on_cap(file, node).unwrap_or_default();
        }
        rails
    }

    pub(super) fn frequency_caps(&mut self, file: usize, node: &Node) -> BTreeMap<Channel, FrequencyCap> {
        let mut caps = BTreeMap::new();
        let Value::Map(entries) = &node.value else {
            let message =
                format!("expected a mapping of channels to caps for `frequency_caps`, found {}", node.value.kind());
            self.error(At { file, offset: node.offset }, message, Some("e.g. `email: { max: 3, per: 7d }`".into()));
            return caps;
        };
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let Some(channel) = self.channel(file, key) else { continue };
            if caps.contains_key(&channel) {
                self.error(key_at, format!("duplicate key `{channel}` in `frequency_caps`"), None);
                continue;
            }
            let what = format!("the `{channel}` cap");
            let Some(fields) = self.fields(file, value, &what, CAP_KEYS) else { continue };
            let max_node =
                self.require(&fields, "max", &what, Some("how many messages the window allows, e.g. `max: 3`"));
            let per_node = self.require(&fields, "per", &what, Some("the rolling window, e.g. `per: 7d`"));
            let max = max_node.and_then(|n| self.whole(file, n, "max", 1, 1000));
            let per = per_node.and_then(|n| self.duration(file, n, "per"));
            if let (Some(max), Some(per)) = (max, per) {
                caps.insert(channel, FrequencyCap { max: max as u32, per });
            }
        }
        caps
    }

    pub(super) fn quiet_hours(&mut self, file: usize, node: &Node) -> Option<QuietHours> {
        let fields = self.fields(file, node, "`quiet_hours`", QUIET_KEYS)?;
        let from = self.require(&fields, "from", "`quiet_hours`", Some("when quiet starts, e.g. `from: '21:00'`"));
        let to = self.require(&fields, "to", "`quiet_hours`", Some("when sending resumes, e.g. `to: '08:00'`"));
        let from_t = from.and_then(|n| self.time_of_day(file, n, "from"));
        let to_t = to.and_then(|n| self.time_of_day(file, n, "to"));
        let (from_t, to_t) = (from_t?, to_t?);
        if from_t == to_t {
            let at = At { file, offset: to.map_or(node.offset, |n| n.offset) };
            self.error(at, "`quiet_hours` start and end at the same time", Some("give two different times".into()));
            return None;
        }
        Some(QuietHours { from: from_t, to: to_t })
    }

    pub(super) fn time_of_day(&mut self, file: usize, node: &Node, key: &str) -> Option<Time> {
        let at = At { file, offset: node.offset };
        let help = Some("write a time of day as `'HH:MM'` in quotes, e.g. `'21:00'`".to_string());
        let text = match &node.value {
            Value::Str(s) => s.trim().to_string(),
            _ => {
                self.error(at, format!("expected a time of day for `{key}`, found {}", self.raw(file, node)), help);
                return None;
            }
        };
        let parsed = text
            .split_once(':')
            .filter(|(h, m)| h.len() <= 2 && m.len() == 2)
            .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)))
            .and_then(|(h, m)| Time::new(h, m, 0, 0).ok());
        if parsed.is_none() {
            self.error(at, format!("`{text}` is not a time of day"), help);
        }
        parsed
    }

    pub(super) fn on_cap(&mut self, file: usize, node: &Node) -> Option<OnCap> {
        let text = self.text(file, node, "on_cap")?;
        match text.as_str() {
            "defer" => Some(OnCap::Defer),
            "skip" => Some(OnCap::Skip),
            _ => {
                let help = suggestion(&text, ON_CAP)
                    .or_else(|| Some("`defer` waits until the cap allows the send; `skip` goes on without it".into()));
                self.error(
                    At { file, offset: node.offset },
                    format!("`on_cap` must be `defer` or `skip`, found `{text}`"),
                    help,
                );
                None
            }
        }
    }
}
