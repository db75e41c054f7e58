//! The staffing model (`staffing:`): what one CSM gives and costs in a year, and the
//! human hours each touch-model segment's accounts take per year in each journey stage.
//! `cairn report staffing` multiplies it by the live segment sizes (cairn-measure's
//! `staffing`).

use crate::diagnostic::Location;
use crate::model::Id;

/// `staffing:` — checked: its segments are account segments, its stages journey stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staffing {
    /// One CSM's capacity and cost.
    pub csm: Csm,
    /// The touch model, in the order written: an account in several of its segments is
    /// counted in the first listed.
    pub touch_model: Vec<Touch>,
    /// Where `staffing:` is.
    pub location: Location,
}

/// One CSM: the hours a year they give accounts, and what they cost fully loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csm {
    /// Hours a year spent with or for accounts (whole hours, 1–8,760).
    pub hours_per_year: u32,
    /// Fully loaded cost a year (salary, benefits, tools, management share), in cents of
    /// the currency ARR is in.
    pub cost_per_year_cents: i64,
}

/// The hours one segment's accounts take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// An account segment.
    pub segment: Id,
    /// Human hours per account per year, by journey stage, in hundredths of an hour (`1.5`
    /// is 150), in journey order; a stage not listed takes none.
    pub hours: Vec<(Id, u32)>,
    /// The human hours that remain per account per year when a stage is run digitally
    /// (escalations, a pooled team's answers), in hundredths, in journey order; a stage
    /// not listed takes none once digital. Never above the stage's `hours`.
    pub digital_hours: Vec<(Id, u32)>,
    /// Where it is defined (its `segment`).
    pub location: Location,
}

impl Touch {
    /// Human hours (hundredths) per account per year in a stage; 0 when not listed.
    pub fn hours_in(&self, stage: &str) -> u32 {
        find(&self.hours, stage)
    }

    /// The hours (hundredths) that remain in a stage once it is digital; 0 when not listed.
    pub fn digital_hours_in(&self, stage: &str) -> u32 {
        find(&self.digital_hours, stage)
    }
}

fn find(list: &[(Id, u32)], stage: &str) -> u32 {
    list.iter().find(|(id, _)| id.as_str() == stage).map_or(0, |(_, h)| *h)
}
