//! Health scoring: bands, the default model and segment-specific models, their pillars
//! and measures, and each measure's scoring curve.

use std::collections::BTreeMap;

use cairn_rules::{AggregateTable, Schema, Subject, Type};

use super::*;
use crate::model::{Curve, CurveBand, Health, HealthBands, HealthModel, Id, Measure, Pillar};
use crate::order::Definition;
use crate::yaml::{Node, Value};

const HEALTH_KEYS: &[&str] = &["bands", "pillars", "models"];
const BANDS_KEYS: &[&str] = &["red", "green"];

const MODEL_KEYS: &[&str] = &["id", "name", "for", "pillars"];
const PILLAR_KEYS: &[&str] = &["name", "weight", "measures"];

const MEASURE_KEYS: &[&str] = &["id", "name", "value", "score", "weight"];
const SCORE_KEYS: &[&str] = &["red", "green", "bands"];

const BAND_KEYS: &[&str] = &["below", "score"];

impl Checker<'_> {
    pub(super) fn health(&mut self, file: usize, node: &Node, key_at: Option<At>) -> Option<HealthDecl> {
        let fields = self.fields(file, node, "health", HEALTH_KEYS)?;
        let at = key_at.unwrap_or(fields.at);
        let bands = fields.get("bands").and_then(|n| self.health_bands(file, n)).unwrap_or_default();
        let pillars_node = self.require(
            &fields,
            "pillars",
            "health",
            Some("the default model's pillars, e.g. `pillars: { adoption: { weight: 40, measures: [...] } }`"),
        );
        let default = ModelDecl {
            id: Id::parse("default").ok(),
            at,
            name: None,
            condition: None,
            pillars: pillars_node.map(|n| self.pillars(file, n)).unwrap_or_default(),
        };
        let mut model_ids = BTreeMap::from([("default".to_string(), at)]);
        let mut models = Vec::new();
        if let Some(list_node) = fields.get("models") {
            for item in self.list(file, list_node, "models") {
                if let Some(m) = self.model(file, item, &mut model_ids) {
                    models.push(m);
                }
            }
        }
        Some(HealthDecl { at, bands, default, models })
    }

    pub(super) fn health_bands(&mut self, file: usize, node: &Node) -> Option<HealthBands> {
        let fields = self.fields(file, node, "`bands`", BANDS_KEYS)?;
        let red_node = self.require(&fields, "red", "`bands`", Some("scores below `red` are red"));
        let green_node = self.require(&fields, "green", "`bands`", Some("scores at or above `green` are green"));
        let in_range = |cx: &mut Self, n: Option<&Node>, key: &str| {
            let n = n?;
            let x = cx.number(file, n, key)?;
            if !(0.0..=100.0).contains(&x) {
                cx.error(
                    At { file, offset: n.offset },
                    format!("band `{key}` must be between 0 and 100, found {}", cx.raw(file, n)),
                    None,
                );
                return None;
            }
            Some(x)
        };
        let red = in_range(self, red_node, "red");
        let green = in_range(self, green_node, "green");
        let (red, green) = (red?, green?);
        if red >= green {
            let at = At { file, offset: red_node.map_or(node.offset, |n| n.offset) };
            let message = format!("band `red` ({red}) must be below `green` ({green})");
            self.error(at, message, Some("below `red` is red, from `green` up is green, yellow between".into()));
            return None;
        }
        Some(HealthBands { red, green })
    }

    pub(super) fn model(&mut self, file: usize, node: &Node, seen: &mut BTreeMap<String, At>) -> Option<ModelDecl> {
        let fields = self.fields(file, node, "a health model", MODEL_KEYS)?;
        let id_node = self.require(&fields, "id", "a health model", None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let what = id.as_ref().map_or("a health model".to_string(), |id| format!("health model `{id}`"));
        let for_node =
            self.require(&fields, "for", &what, Some("the accounts it scores, e.g. `for: stage() = 'onboarding'`"));
        let pillars_node = self.require(&fields, "pillars", &what, None);
        let id = match id {
            Some(id)
                if self.claim(
                    seen,
                    "health model",
                    &id,
                    at,
                    "health model ids are unique (`default` is the default model)",
                ) =>
            {
                Some(id)
            }
            _ => None,
        };
        Some(ModelDecl {
            id,
            at,
            name: self.label(file, fields.get("name"), "name"),
            condition: self.rule(file, for_node, "for"),
            pillars: pillars_node.map(|n| self.pillars(file, n)).unwrap_or_default(),
        })
    }

    pub(super) fn pillars(&mut self, file: usize, node: &Node) -> Vec<PillarDecl> {
        let at = At { file, offset: node.offset };
        let Value::Map(entries) = &node.value else {
            let message =
                format!("expected a mapping of pillar ids to pillars for `pillars`, found {}", node.value.kind());
            self.error(at, message, Some("e.g. `pillars: { adoption: { weight: 40, measures: [...] } }`".into()));
            return Vec::new();
        };
        if entries.is_empty() {
            self.error(at, "a health model needs at least one pillar", None);
        }
        let mut seen = BTreeMap::new();
        let mut measure_ids = BTreeMap::new();
        let mut pillars = Vec::new();
        for (key, value) in entries {
            let key_at = At { file, offset: key.offset };
            let id = self.id(file, Some(key));
            let id = match id {
                Some(id) if self.claim(&mut seen, "pillar", &id, key_at, "a model lists each pillar once") => Some(id),
                _ => None,
            };
            let what = id.as_ref().map_or("a pillar".to_string(), |id| format!("pillar `{id}`"));
            let Some(fields) = self.fields(file, value, &what, PILLAR_KEYS) else { continue };
            let weight_node =
                self.require(&fields, "weight", &what, Some("its share of the overall score, e.g. `weight: 25`"));
            let measures_node = self.require(&fields, "measures", &what, None);
            let mut measures = Vec::new();
            if let Some(list_node) = measures_node {
                let items = self.list(file, list_node, "measures");
                if items.is_empty() && matches!(list_node.value, Value::Seq(_) | Value::Null) {
                    self.error(At { file, offset: list_node.offset }, format!("{what} has no measures"), None);
                }
                for item in items {
                    if let Some(m) = self.measure(file, item, &mut measure_ids) {
                        measures.push(m);
                    }
                }
            }
            pillars.push(PillarDecl {
                id,
                at: key_at,
                name: self.label(file, fields.get("name"), "name"),
                weight: self.weight(file, weight_node),
                measures,
            });
        }
        pillars
    }

    pub(super) fn measure(&mut self, file: usize, node: &Node, seen: &mut BTreeMap<String, At>) -> Option<MeasureDecl> {
        let fields = self.fields(file, node, "a measure", MEASURE_KEYS)?;
        let id_node = self.require(&fields, "id", "a measure", None);
        let id = self.id(file, id_node);
        let at = id_node.map_or(fields.at, |n| At { file, offset: n.offset });
        let what = id.as_ref().map_or("a measure".to_string(), |id| format!("measure `{id}`"));
        let value =
            self.require(&fields, "value", &what, Some("the figure to score, e.g. `value: active_users(7d) / seats`"));
        let score = self.require(
            &fields,
            "score",
            &what,
            Some("`score: { red: 0.2, green: 0.6 }` or `score: { bands: [...] }`"),
        );
        let weight = self.require(&fields, "weight", &what, Some("its share of the pillar's score, e.g. `weight: 50`"));
        let id = match id {
            Some(id) if self.claim(seen, "measure", &id, at, "measure ids are unique within a health model") => {
                Some(id)
            }
            _ => None,
        };
        Some(MeasureDecl {
            id,
            at,
            name: self.label(file, fields.get("name"), "name"),
            value: self.rule(file, value, "value"),
            curve: score.and_then(|n| self.curve(file, n)),
            weight: self.weight(file, weight),
        })
    }

    pub(super) fn curve(&mut self, file: usize, node: &Node) -> Option<Curve> {
        let fields = self.fields(file, node, "`score`", SCORE_KEYS)?;
        let at = fields.at;
        match (fields.get("red"), fields.get("green"), fields.get("bands")) {
            (None, None, None) => {
                let help = Some(
                    "`{ red: 0.2, green: 0.6 }` (linear) or `{ bands: [ { below: 2, score: 100 }, { score: 0 } ] }`"
                        .into(),
                );
                self.error(at, "`score` needs `red` and `green`, or `bands`", help);
                None
            }
            (red, green, None) => {
                let red_n = self.require(&fields, "red", "a linear `score`", Some("the value that scores 0"))?;
                let green_n = self.require(&fields, "green", "a linear `score`", Some("the value that scores 100"))?;
                let (red_v, green_v) = (self.number(file, red_n, "red"), self.number(file, green_n, "green"));
                let (red, green) = (red.and(red_v)?, green.and(green_v)?);
                if red == green {
                    let message = format!(
                        "`red` and `green` are both {}: the score would jump from 0 to 100",
                        self.raw(file, green_n)
                    );
                    let help = Some("give two different values; `red` above `green` means lower is better".into());
                    self.error(At { file, offset: green_n.offset }, message, help);
                    return None;
                }
                Some(Curve::Linear { red, green })
            }
            (red, green, Some(bands)) => {
                if let Some(n) = red.or(green) {
                    let help = Some("remove `red` and `green`, or `bands`".into());
                    self.error(
                        At { file, offset: n.offset },
                        "`score` is either linear (`red`, `green`) or `bands`, not both",
                        help,
                    );
                    return None;
                }
                self.curve_bands(file, bands)
            }
        }
    }

    pub(super) fn curve_bands(&mut self, file: usize, node: &Node) -> Option<Curve> {
        let items = self.list(file, node, "bands");
        if items.is_empty() {
            if matches!(node.value, Value::Seq(_) | Value::Null) {
                self.error(At { file, offset: node.offset }, "`bands` needs at least one band", None);
            }
            return None;
        }
        let mut bands = Vec::new();
        let mut ok = true;
        let mut previous: Option<f64> = None;
        for (i, item) in items.iter().enumerate() {
            let last = i + 1 == items.len();
            let Some(fields) = self.fields(file, item, "a band", BAND_KEYS) else {
                ok = false;
                continue;
            };
            let score_node = self.require(&fields, "score", "a band", Some("the score (0–100) of values in this band"));
            let score = score_node.and_then(|n| {
                let s = self.number(file, n, "score")?;
                if !(0.0..=100.0).contains(&s) {
                    self.error(
                        At { file, offset: n.offset },
                        format!("band `score` must be between 0 and 100, found {}", self.raw(file, n)),
                        None,
                    );
                    return None;
                }
                Some(s)
            });
            let below = match fields.get("below") {
                None => {
                    if !last {
                        let help = Some(
                            "it catches every value left, so nothing after it could apply: move it to the end".into(),
                        );
                        self.error(fields.at, "only the last band may leave out `below`", help);
                        ok = false;
                    }
                    None
                }
                Some(n) => {
                    let below = self.number(file, n, "below");
                    if let (Some(b), Some(p)) = (below, previous)
                        && b <= p
                    {
                        let message =
                            format!("`below` must increase from band to band: {} follows {p}", self.raw(file, n));
                        self.error(At { file, offset: n.offset }, message, None);
                        ok = false;
                    }
                    if below.is_some() {
                        previous = below;
                    }
                    if last {
                        let help = Some("add a last band without `below`, e.g. `{ score: 0 }`".into());
                        self.error(
                            fields.at,
                            "the last band must have no `below`: it scores every value above the others",
                            help,
                        );
                        ok = false;
                    }
                    below.or_else(|| {
                        ok = false;
                        None
                    })
                }
            };
            match score {
                Some(score) => bands.push(CurveBand { below, score }),
                None => ok = false,
            }
        }
        ok.then_some(Curve::Bands(bands))
    }

    pub(super) fn compile_health(
        &mut self,
        decl: HealthDecl,
        schema: &Schema,
        table: &mut AggregateTable,
        graph: &mut Graph,
    ) -> Option<Health> {
        graph.dependencies.entry(Definition::Health).or_default();
        let default = self.compile_model(decl.default, schema, table, graph);
        let mut models = Some(Vec::new());
        for m in decl.models {
            match (self.compile_model(m, schema, table, graph), &mut models) {
                (Some(m), Some(list)) => list.push(m),
                _ => models = None,
            }
        }
        Some(Health { bands: decl.bands, default: default?, models: models?, location: self.location(decl.at) })
    }

    pub(super) fn compile_model(
        &mut self,
        decl: ModelDecl,
        schema: &Schema,
        table: &mut AggregateTable,
        graph: &mut Graph,
    ) -> Option<HealthModel> {
        let condition = match &decl.condition {
            None => Ok(None),
            Some(src) => match self.compile_rule(src, schema, Subject::Account, Type::Bool, table) {
                Some(rule) => {
                    graph.add(Definition::Health, &rule, src.at);
                    Ok(Some(rule))
                }
                None => Err(()),
            },
        };
        let mut pillars = Some(Vec::new());
        for p in decl.pillars {
            let mut measures = Some(Vec::new());
            for m in p.measures {
                let value =
                    m.value.as_ref().and_then(|r| self.compile_rule(r, schema, Subject::Account, Type::Number, table));
                if let (Some(rule), Some(src)) = (&value, &m.value) {
                    graph.add(Definition::Health, rule, src.at);
                }
                let measure = (|| {
                    Some(Measure {
                        id: m.id?,
                        name: m.name,
                        value: value?,
                        curve: m.curve?,
                        weight: m.weight?,
                        location: self.location(m.at),
                    })
                })();
                match (measure, &mut measures) {
                    (Some(m), Some(list)) => list.push(m),
                    _ => measures = None,
                }
            }
            let pillar = (|| {
                Some(Pillar {
                    id: p.id?,
                    name: p.name,
                    weight: p.weight?,
                    measures: measures?,
                    location: self.location(p.at),
                })
            })();
            match (pillar, &mut pillars) {
                (Some(p), Some(list)) => list.push(p),
                _ => pillars = None,
            }
        }
        Some(HealthModel {
            id: decl.id?,
            name: decl.name,
            condition: condition.ok()?,
            pillars: pillars?,
            location: self.location(decl.at),
        })
    }
}
