//! The checked workspace: typed definitions that passed `cairn check`. Nothing here can
//! be built from unchecked YAML except through [`crate::check_sources`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cairn_content::{ContextSchema, ParsedTemplate};
use cairn_rules::{AggregateTable, Rule, Subject, Type};
use jiff::SignedDuration;
use jiff::tz::TimeZone;

use crate::diagnostic::Location;
use crate::order::Definition;
use crate::programs::{Guardrails, Pool, Program, Template};
use crate::staffing::Staffing;

/// An identifier of a definition: lowercase letters, digits and `_`, 1 to 64 of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(String);

/// Why a text is not an [`Id`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id")]
pub struct IdError(pub String);

impl Id {
    /// Parses an id.
    pub fn parse(text: &str) -> Result<Id, IdError> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok { Ok(Id(text.to_string())) } else { Err(IdError(text.to_string())) }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The type of a custom trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TraitType {
    /// A number.
    Number,
    /// Text.
    String,
    /// `true` / `false`.
    Boolean,
    /// A calendar date.
    Date,
    /// An instant.
    Timestamp,
}

impl TraitType {
    /// Every type's name, as written in YAML.
    pub const NAMES: [&'static str; 5] = ["number", "string", "boolean", "date", "timestamp"];

    /// Parses a type name (`number`, `string`, `boolean`, `date`, `timestamp`).
    pub fn parse(name: &str) -> Option<TraitType> {
        Some(match name {
            "number" => TraitType::Number,
            "string" => TraitType::String,
            "boolean" => TraitType::Boolean,
            "date" => TraitType::Date,
            "timestamp" => TraitType::Timestamp,
            _ => return None,
        })
    }

    /// The rule language's type.
    pub fn rule_type(self) -> Type {
        match self {
            TraitType::Number => Type::Number,
            TraitType::String => Type::String,
            TraitType::Boolean => Type::Bool,
            TraitType::Date => Type::Date,
            TraitType::Timestamp => Type::Timestamp,
        }
    }
}

/// Built-in account traits and their types.
pub const BUILTIN_ACCOUNT_TRAITS: [(&str, TraitType); 9] = [
    ("name", TraitType::String),
    ("industry", TraitType::String),
    ("employees", TraitType::Number),
    ("plan", TraitType::String),
    ("seats", TraitType::Number),
    ("arr", TraitType::Number),
    ("owner_email", TraitType::String),
    ("start_date", TraitType::Date),
    ("renewal_date", TraitType::Date),
];

/// Built-in contact traits and their types.
pub const BUILTIN_CONTACT_TRAITS: [(&str, TraitType); 4] = [
    ("email", TraitType::String),
    ("name", TraitType::String),
    ("role", TraitType::String),
    ("timezone", TraitType::String),
];

/// Custom traits declared under `traits:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomTraits {
    /// Custom account traits.
    pub account: BTreeMap<String, TraitType>,
    /// Custom contact traits.
    pub contact: BTreeMap<String, TraitType>,
}

/// A named, dynamic set of accounts or contacts.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its id (`segment('id')` in rules).
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// Whom it holds.
    pub subject: Subject,
    /// The membership condition.
    pub rule: Rule,
    /// Where it is defined (its `id`).
    pub location: Location,
}

/// The customer journey: ordered stages with time-bound milestones.
#[derive(Debug, Clone)]
pub struct Journey {
    /// The account date trait milestones' deadlines and `since_anchor` count from.
    pub anchor: String,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Where `journey:` is.
    pub location: Location,
}

impl Journey {
    /// Every milestone of every stage, in order.
    pub fn milestones(&self) -> impl Iterator<Item = &Milestone> {
        self.stages.iter().flat_map(|s| s.milestones.iter())
    }

    /// The milestone that defines Time to Value, if one is marked `value: true`.
    pub fn value_milestone(&self) -> Option<&Milestone> {
        self.milestones().find(|m| m.value)
    }
}

/// A lifecycle stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its id (`stage() = 'id'` in rules).
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// `from`: the condition to enter the stage (none: entered when the previous one is left).
    pub entry: Option<Rule>,
    /// `until`: the condition to leave it (none: left when a later stage's entry holds).
    pub exit: Option<Rule>,
    /// Its milestones.
    pub milestones: Vec<Milestone>,
    /// Where it is defined (its `id`).
    pub location: Location,
}

/// A key, time-bound product behaviour.
#[derive(Debug, Clone)]
pub struct Milestone {
    /// Its id (`milestone('id')` in rules).
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// When it is achieved.
    pub rule: Rule,
    /// The deadline, counted from the journey anchor (none: no deadline, never missed).
    pub within: Option<SignedDuration>,
    /// Whether it defines Time to Value (at most one milestone does).
    pub value: bool,
    /// The stage it belongs to.
    pub stage: Id,
    /// Where it is defined (its `id`).
    pub location: Location,
}

/// Health scoring: bands, the default model and per-segment models.
#[derive(Debug, Clone)]
pub struct Health {
    /// Score thresholds of the red / yellow / green bands.
    pub bands: HealthBands,
    /// The model for accounts no segment model claims (id `default`).
    pub default: HealthModel,
    /// Models chosen by condition: the first whose condition holds wins.
    pub models: Vec<HealthModel>,
    /// Where `health:` is.
    pub location: Location,
}

/// The colour of a health score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// Below `red`.
    Red,
    /// Between.
    Yellow,
    /// At or above `green`.
    Green,
}

/// Score thresholds: below `red` is red, at or above `green` is green, yellow between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthBands {
    /// The red threshold (0–100, below `green`).
    pub red: f64,
    /// The green threshold (0–100, above `red`).
    pub green: f64,
}

impl Default for HealthBands {
    fn default() -> Self {
        HealthBands { red: 40.0, green: 70.0 }
    }
}

impl HealthBands {
    /// How close below a threshold a score still counts as reaching it. Scores are
    /// weighted means in floating point: one that is exactly 40 on paper can come out as
    /// 39.99999999999999, and must not turn red where red is "below 40".
    pub const TOLERANCE: f64 = 1e-9;

    /// The band of a score.
    pub fn band(&self, score: f64) -> Band {
        if score >= self.green - Self::TOLERANCE {
            Band::Green
        } else if score < self.red - Self::TOLERANCE {
            Band::Red
        } else {
            Band::Yellow
        }
    }
}

/// A health model: pillars of weighted measures.
#[derive(Debug, Clone)]
pub struct HealthModel {
    /// `default` for the default model, else its id.
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// `for`: which accounts it scores (none for the default model).
    pub condition: Option<Rule>,
    /// The pillars, in source order.
    pub pillars: Vec<Pillar>,
    /// Where it is defined.
    pub location: Location,
}

/// One health dimension, scored 0–100 as a weighted mean of its measures.
#[derive(Debug, Clone)]
pub struct Pillar {
    /// Its id (`health('id')` in rules).
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// Its weight in the overall score (> 0).
    pub weight: f64,
    /// Its measures.
    pub measures: Vec<Measure>,
    /// Where it is defined (its key).
    pub location: Location,
}

/// A measured figure turned into a 0–100 score.
#[derive(Debug, Clone)]
pub struct Measure {
    /// Its id (unique within its model).
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// The figure (a number rule).
    pub value: Rule,
    /// How the figure becomes a score.
    pub curve: Curve,
    /// Its weight within its pillar (> 0).
    pub weight: f64,
    /// Where it is defined (its `id`).
    pub location: Location,
}

/// How a measure's value becomes a 0–100 score.
#[derive(Debug, Clone, PartialEq)]
pub enum Curve {
    /// `{ red: R, green: G }`: 0 at or past `red`, 100 at or past `green`, linear between.
    /// `red > green` means lower is better.
    Linear {
        /// The value scoring 0.
        red: f64,
        /// The value scoring 100.
        green: f64,
    },
    /// `{ bands: [ { below: 2, score: 100 }, …, { score: 0 } ] }`: the first band whose
    /// `below` is above the value gives the score; the last band (no `below`) catches the
    /// rest. `below` increases strictly.
    Bands(Vec<CurveBand>),
}

/// One step of a [`Curve::Bands`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveBand {
    /// The band holds values strictly below this (none: every value left, the last band).
    pub below: Option<f64>,
    /// The score for values in the band (0–100).
    pub score: f64,
}

impl Curve {
    /// The score of a value, in `0..=100`. A value that is not a number (NaN) scores 0.
    pub fn score(&self, x: f64) -> f64 {
        if x.is_nan() {
            return 0.0;
        }
        let score = match self {
            Curve::Linear { red, green } => {
                if red == green {
                    if x >= *green { 100.0 } else { 0.0 }
                } else {
                    (x - red) / (green - red) * 100.0
                }
            }
            Curve::Bands(bands) => bands
                .iter()
                .find(|b| b.below.is_none_or(|below| x < below))
                .or(bands.last())
                .map(|b| b.score)
                .unwrap_or(0.0),
        };
        score.clamp(0.0, 100.0)
    }
}

/// A workspace that passed every check: built only by [`crate::check_sources`].
#[derive(Debug, Clone)]
pub struct Workspace {
    pub(crate) time_zone: TimeZone,
    pub(crate) time_zone_name: String,
    pub(crate) traits: CustomTraits,
    pub(crate) segments: Vec<Segment>,
    pub(crate) journey: Option<Journey>,
    pub(crate) health: Option<Health>,
    pub(crate) aggregates: AggregateTable,
    pub(crate) order: Vec<Definition>,
    pub(crate) guardrails: Guardrails,
    pub(crate) templates: Vec<Template>,
    /// Each template's parts parsed as Liquid, by template id.
    pub(crate) parsed_templates: BTreeMap<String, Arc<ParsedTemplate>>,
    /// What a template may refer to (the workspace's traits, milestones, pillars, links).
    pub(crate) context_schema: ContextSchema,
    pub(crate) pools: Vec<Pool>,
    pub(crate) programs: Vec<Program>,
    /// The files it was checked from, to check them again with a probe milestone.
    pub(crate) sources: Vec<crate::SourceFile>,
    pub(crate) staffing: Option<Staffing>,
    pub(crate) insights: crate::insights::Insights,
}

impl Workspace {
    /// The time zone days are counted in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// The time zone's IANA name (`UTC` by default).
    pub fn time_zone_name(&self) -> &str {
        &self.time_zone_name
    }

    /// The custom traits.
    pub fn traits(&self) -> &CustomTraits {
        &self.traits
    }

    /// The segments, in file order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The journey, if defined.
    pub fn journey(&self) -> Option<&Journey> {
        self.journey.as_ref()
    }

    /// Health scoring, if defined.
    pub fn health(&self) -> Option<&Health> {
        self.health.as_ref()
    }

    /// Every aggregate any rule needs, shared by all rules.
    pub fn aggregates(&self) -> &AggregateTable {
        &self.aggregates
    }

    /// The definitions in an order where each comes after everything it reads.
    pub fn evaluation_order(&self) -> &[Definition] {
        &self.order
    }

    /// The guard rails of every send: frequency caps, quiet hours, what a capped send does.
    pub fn guardrails(&self) -> &Guardrails {
        &self.guardrails
    }

    /// The message templates, in file order.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// A template by id.
    pub fn template(&self, id: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.id.as_str() == id)
    }

    /// A template's parts parsed as Liquid and checked against [`Self::context_schema`],
    /// ready for `cairn_content::render` (its subject is absent when the template has
    /// none; an absent HTML or text body is empty).
    pub fn parsed_template(&self, id: &str) -> Option<&ParsedTemplate> {
        self.parsed_templates.get(id).map(Arc::as_ref)
    }

    /// What templates may refer to: the custom traits, milestones and pillars of this
    /// workspace, the links a send carries (the standard ones plus the one-click survey
    /// answers `nps_0`…`nps_10` and `csat_1`…`csat_5`) and the metrics, benchmarks and
    /// leaderboards of [`Self::insights`].
    pub fn context_schema(&self) -> &ContextSchema {
        &self.context_schema
    }

    /// The pools of people pooled tasks go to, in file order.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// A pool by id.
    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.id.as_str() == id)
    }

    /// The programs, in file order.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// The staffing model (`staffing:`), if defined: what `cairn report staffing` reads.
    pub fn staffing(&self) -> Option<&Staffing> {
        self.staffing.as_ref()
    }

    /// The metrics, benchmarks and leaderboards messages may quote (`insights:`; empty
    /// when the workspace declares none).
    pub fn insights(&self) -> &crate::insights::Insights {
        &self.insights
    }

    /// Counts of what was loaded.
    pub fn summary(&self) -> Summary {
        let (pillars, measures) = self
            .health
            .as_ref()
            .map(|h| (h.default.pillars.len(), h.default.pillars.iter().map(|p| p.measures.len()).sum()))
            .unwrap_or((0, 0));
        Summary {
            segments: self.segments.len(),
            stages: self.journey.as_ref().map_or(0, |j| j.stages.len()),
            milestones: self.journey.as_ref().map_or(0, |j| j.milestones().count()),
            pillars,
            measures,
            health_models: self.health.as_ref().map_or(0, |h| h.models.len()),
            programs: self.programs.len(),
            templates: self.templates.len(),
            pools: self.pools.len(),
            aggregates: self.aggregates.specs().len(),
        }
    }
}

/// Counts of a loaded workspace. `Display`: `22 segments, 4 stages, 12 milestones,
/// 4 pillars (16 measures), 1 segment health model, 5 programs, 9 templates, 2 pools,
/// 18 aggregates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Segments.
    pub segments: usize,
    /// Journey stages.
    pub stages: usize,
    /// Milestones across stages.
    pub milestones: usize,
    /// Pillars of the default health model.
    pub pillars: usize,
    /// Measures of the default health model.
    pub measures: usize,
    /// Segment-specific health models.
    pub health_models: usize,
    /// Programs.
    pub programs: usize,
    /// Message templates.
    pub templates: usize,
    /// Pools of people for pooled tasks.
    pub pools: usize,
    /// Distinct aggregates the rules need.
    pub aggregates: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn n(count: usize, one: &str, many: &str) -> String {
            format!("{count} {}", if count == 1 { one } else { many })
        }
        write!(
            f,
            "{}, {}, {}, {} ({}), {}, {}, {}, {}, {}",
            n(self.segments, "segment", "segments"),
            n(self.stages, "stage", "stages"),
            n(self.milestones, "milestone", "milestones"),
            n(self.pillars, "pillar", "pillars"),
            n(self.measures, "measure", "measures"),
            n(self.health_models, "segment health model", "segment health models"),
            n(self.programs, "program", "programs"),
            n(self.templates, "template", "templates"),
            n(self.pools, "pool", "pools"),
            n(self.aggregates, "aggregate", "aggregates"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bands(steps: &[(Option<f64>, f64)]) -> Curve {
        Curve::Bands(steps.iter().map(|&(below, score)| CurveBand { below, score }).collect())
    }

    #[test]
    fn linear_curve_scores_zero_at_red_and_hundred_at_green() {
        let c = Curve::Linear { red: 0.2, green: 0.6 };
        assert_eq!(c.score(0.2), 0.0);
        assert_eq!(c.score(0.6), 100.0);
        assert!((c.score(0.4) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn linear_curve_clamps_outside_the_two_points() {
        let c = Curve::Linear { red: 0.2, green: 0.6 };
        assert_eq!(c.score(-5.0), 0.0);
        assert_eq!(c.score(3.0), 100.0);
    }

    #[test]
    fn linear_curve_with_red_above_green_means_lower_is_better() {
        let c = Curve::Linear { red: 10.0, green: 2.0 };
        assert_eq!(c.score(12.0), 0.0);
        assert_eq!(c.score(1.0), 100.0);
        assert!((c.score(6.0) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn a_value_that_is_not_a_number_scores_zero() {
        assert_eq!(Curve::Linear { red: 0.0, green: 1.0 }.score(f64::NAN), 0.0);
        assert_eq!(bands(&[(None, 80.0)]).score(f64::NAN), 0.0);
    }

    #[test]
    fn bands_curve_picks_the_first_band_the_value_is_below() {
        let c = bands(&[(Some(2.0), 100.0), (Some(5.0), 50.0), (None, 0.0)]);
        assert_eq!(c.score(0.0), 100.0);
        assert_eq!(c.score(1.99), 100.0);
        assert_eq!(c.score(2.0), 50.0);
        assert_eq!(c.score(4.5), 50.0);
        assert_eq!(c.score(5.0), 0.0);
        assert_eq!(c.score(1e9), 0.0);
    }

    #[test]
    fn bands_curve_clamps_scores_into_range() {
        assert_eq!(bands(&[(Some(1.0), 150.0), (None, -3.0)]).score(0.0), 100.0);
        assert_eq!(bands(&[(Some(1.0), 150.0), (None, -3.0)]).score(2.0), 0.0);
    }

    #[test]
    fn health_bands_colour_scores() {
        let b = HealthBands::default();
        assert_eq!(b.band(39.9), Band::Red);
        assert_eq!(b.band(40.0), Band::Yellow);
        assert_eq!(b.band(70.0), Band::Green);
        // A hair below a threshold from floating point is at it; a real shortfall is not.
        assert_eq!(b.band(39.99999999999999), Band::Yellow);
        assert_eq!(b.band(69.99999999999999), Band::Green);
        assert_eq!(b.band(39.999999), Band::Red);
        assert_eq!(b.band(69.999999), Band::Yellow);
    }

    #[test]
    fn ids_are_lowercase_letters_digits_and_underscores() {
        assert!(Id::parse("power_admins_2").is_ok());
        assert_eq!(Id::parse("Power-Admins").unwrap_err().to_string(), "`Power-Admins` is not a valid id");
        assert!(Id::parse("").is_err());
    }
}
