//! Checked programs, templates and the guard rails every send goes through: what a
//! program is (trigger, audience, steps, goal) once `cairn check` has accepted it. The
//! engine runs them; nothing here has state.

use std::collections::BTreeMap;
use std::fmt;

use cairn_rules::{Rule, Subject};
use jiff::SignedDuration;
use jiff::civil::Time;

use crate::diagnostic::Location;
use crate::model::{Band, Id};

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email (HTML and text parts).
    Email,
    /// The in-app inbox the customer's product reads.
    InApp,
    /// A text message.
    Sms,
    /// A Slack message.
    Slack,
    /// An HTTP POST signed with HMAC.
    Webhook,
}

impl Channel {
    /// Every channel's name, as written in YAML.
    pub const NAMES: [&'static str; 5] = ["email", "in_app", "sms", "slack", "webhook"];

    /// Parses a channel name.
    pub fn parse(name: &str) -> Option<Channel> {
        Some(match name {
            "email" => Channel::Email,
            "in_app" => Channel::InApp,
            "sms" => Channel::Sms,
            "slack" => Channel::Slack,
            "webhook" => Channel::Webhook,
            _ => return None,
        })
    }

    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        Channel::NAMES[self as usize]
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The workspace-wide guard rails of every send: frequency caps, quiet hours and what a
/// capped send does.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Guardrails {
    /// At most `max` messages per contact on a channel within a rolling window, across
    /// all programs.
    pub frequency_caps: BTreeMap<Channel, FrequencyCap>,
    /// Hours in the contact's time zone (the workspace's when unknown) when nothing is
    /// sent; a send due then waits for their end.
    pub quiet_hours: Option<QuietHours>,
    /// What a send step that would exceed a cap does, unless it says otherwise.
    pub on_cap: OnCap,
}

/// A frequency cap: `{ max: 3, per: 7d }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    /// Messages allowed in the window (at least 1).
    pub max: u32,
    /// The rolling window.
    pub per: SignedDuration,
}

/// Quiet hours, `{ from: '21:00', to: '08:00' }`: from `from` to `to`, across midnight
/// when `to` is earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// When quiet starts.
    pub from: Time,
    /// When sending may resume.
    pub to: Time,
}

impl QuietHours {
    /// Whether a time of day falls in the quiet hours.
    pub fn contains(&self, t: Time) -> bool {
        if self.from < self.to { self.from <= t && t < self.to } else { t >= self.from || t < self.to }
    }
}

/// What a send that would exceed a frequency cap does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCap {
    /// Waits until the cap allows it (the default).
    #[default]
    Defer,
    /// Is skipped; the program goes on with the next step.
    Skip,
}

/// A message template: `templates: { id: { channel, subject, … } }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Its id (`template: id` in send steps).
    pub id: Id,
    /// The channel it is written for.
    pub channel: Channel,
    /// The subject (email) or title (in-app).
    pub subject: Option<TemplateText>,
    /// The email preheader.
    pub preheader: Option<TemplateText>,
    /// The HTML body.
    pub html: Option<TemplateText>,
    /// The text body (email's text part, the in-app, SMS, Slack or webhook body).
    pub text: Option<TemplateText>,
    /// Where it is defined (its id).
    pub location: Location,
}

impl Template {
    /// Every part that is set, with its key: `subject`, `preheader`, `html`, `text`.
    pub fn parts(&self) -> impl Iterator<Item = (&'static str, &TemplateText)> {
        [("subject", &self.subject), ("preheader", &self.preheader), ("html", &self.html), ("text", &self.text)]
            .into_iter()
            .filter_map(|(key, part)| Some((key, part.as_ref()?)))
    }
}

/// One part of a template, as written (Liquid, not yet rendered or checked), and where
/// it comes from, so that a later Liquid check can point into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateText {
    /// The raw text.
    pub text: String,
    /// Where it was written.
    pub origin: TextOrigin,
}

/// Where a template part's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextOrigin {
    /// Written in the YAML: the value starts at `location` (after the opening quote of a
    /// quoted scalar, at the first content character of a block scalar).
    Inline {
        /// Where the value starts.
        location: Location,
        /// How the scalar is written: byte offsets inside the text map back to the file
        /// exactly for plain and block scalars; quoted ones may hold escapes.
        quoted: bool,
    },
    /// Read from a file of the workspace folder (`file: templates/welcome.html`).
    File {
        /// The path as written, relative to the workspace folder.
        path: String,
        /// The file's name as diagnostics show it (line and column count in it).
        file: String,
        /// Where the `file:` reference is.
        location: Location,
    },
}

/// A program: who enters it when, what they receive, and what counts as success.
#[derive(Debug, Clone)]
pub struct Program {
    /// Its id.
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// Whom it enrolls: contacts (the default) or accounts (`of: account`).
    pub subject: Subject,
    /// What enrolls a subject.
    pub trigger: Trigger,
    /// Who may be enrolled (a condition on the subject; none: everyone triggered).
    pub audience: Option<Rule>,
    /// Whether a subject may be enrolled again.
    pub reentry: Reentry,
    /// The share of enrollments kept as a control group that receives nothing, in
    /// percent (0–50).
    pub holdout_percent: f64,
    /// Its rank when programs compete for a capped channel: 1 goes first.
    pub priority: u32,
    /// The consent topic its messages fall under (required when it sends).
    pub topic: Option<Id>,
    /// Success: a condition met within a window after enrollment.
    pub goal: Option<Goal>,
    /// Conditions that end an enrollment early (any of them).
    pub exits: Vec<Rule>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Where it is defined (its id).
    pub location: Location,
}

impl Program {
    /// Every step, nested ones included, in order (a branch's steps after its `if`).
    pub fn all_steps(&self) -> Vec<&Step> {
        fn walk<'s>(steps: &'s [Step], out: &mut Vec<&'s Step>) {
            for step in steps {
                out.push(step);
                if let Step::If(branch) = step {
                    walk(&branch.then, out);
                    walk(&branch.otherwise, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }

    /// The step with an id, wherever it is nested.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.all_steps().into_iter().find(|s| s.id().as_str() == id)
    }
}

/// What enrolls a subject in a program.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A transition the engine concludes (`milestone_missed('invited_team')`).
    Transition(Transition),
    /// A raw product event (`event('report_created')`).
    Event(String),
    /// A schedule (`schedule('0 9 * * MON')`), in the workspace time zone.
    Schedule(Box<Schedule>),
    /// A day relative to a date trait (`renewal_date - 90d`).
    Date(DateTrigger),
}

/// An engine transition a program can start on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// `segment_entered('id')`.
    SegmentEntered(Id),
    /// `segment_exited('id')`.
    SegmentExited(Id),
    /// `milestone_achieved('id')`.
    MilestoneAchieved(Id),
    /// `milestone_missed('id')`: its deadline passed unachieved.
    MilestoneMissed(Id),
    /// `stage_entered('id')`.
    StageEntered(Id),
    /// `health_band_changed(from: 'green', to: 'red')`: both optional (none: any).
    HealthBandChanged {
        /// The band left.
        from: Option<Band>,
        /// The band entered.
        to: Option<Band>,
    },
}

/// A cron schedule, evaluated in the workspace time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The pattern as written (`0 9 * * MON`).
    pub pattern: String,
    /// The parsed pattern.
    pub cron: croner::Cron,
}

/// `renewal_date - 90d`: enrolls on the day (in the workspace time zone) a date trait
/// plus an offset falls on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTrigger {
    /// Whose trait: the account's (also in contact programs) or the contact's.
    pub owner: Subject,
    /// The trait's name.
    pub name: String,
    /// Whole days added (negative: before the date).
    pub offset_days: i32,
}

/// Whether a subject may be enrolled again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reentry {
    /// Never again (the default).
    #[default]
    Once,
    /// Again once this long has passed since the last enrollment ended.
    After(SignedDuration),
    /// Whenever triggered and not enrolled already.
    Always,
}

/// A program's goal: `{ when: rule, within: 14d }`.
#[derive(Debug, Clone)]
pub struct Goal {
    /// The condition that meets it.
    pub rule: Rule,
    /// How long after enrollment it may be met to count.
    pub within: SignedDuration,
}

/// A step of a program.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send a message.
    Send(SendStep),
    /// Wait a while, or until a condition holds.
    Wait(WaitStep),
    /// Branch on data or on engagement with an earlier send.
    If(IfStep),
    /// Create a task for a person.
    Task(TaskStep),
    /// Set traits.
    Update(UpdateStep),
    /// End the enrollment.
    Exit(ExitStep),
}

impl Step {
    /// The step's id (given, or `stepN` by position).
    pub fn id(&self) -> &Id {
        match self {
            Step::Send(s) => &s.id,
            Step::Wait(s) => &s.id,
            Step::If(s) => &s.id,
            Step::Task(s) => &s.id,
            Step::Update(s) => &s.id,
            Step::Exit(s) => &s.id,
        }
    }

    /// Where the step is.
    pub fn location(&self) -> &Location {
        match self {
            Step::Send(s) => &s.location,
            Step::Wait(s) => &s.location,
            Step::If(s) => &s.location,
            Step::Task(s) => &s.location,
            Step::Update(s) => &s.location,
            Step::Exit(s) => &s.location,
        }
    }

    /// The step's kind as written: `send`, `wait`, `if`, `task`, `update`, `exit`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Send(_) => "send",
            Step::Wait(_) => "wait",
            Step::If(_) => "if",
            Step::Task(_) => "task",
            Step::Update(_) => "update",
            Step::Exit(_) => "exit",
        }
    }
}

/// `send: email` with a `template`, or a `split` of templates.
#[derive(Debug, Clone, PartialEq)]
pub struct SendStep {
    /// Its id.
    pub id: Id,
    /// The channel.
    pub channel: Channel,
    /// The templates sent and their shares in percent (one at 100 without a split);
    /// shares add up to 100 and a contact's variant is deterministic.
    pub variants: Vec<Variant>,
    /// What it does when a frequency cap stops it (none: the workspace's `on_cap`).
    pub on_cap: Option<OnCap>,
    /// Where it is.
    pub location: Location,
}

/// One variant of a send: a template and its share.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The template.
    pub template: Id,
    /// Its share of the enrollments, in percent.
    pub percent: f64,
}

/// `wait: 3d`, or `wait: { until: rule, timeout: 7d }`.
#[derive(Debug, Clone)]
pub struct WaitStep {
    /// Its id.
    pub id: Id,
    /// What it waits for.
    pub wait: Wait,
    /// Where it is.
    pub location: Location,
}

/// What a wait step waits for.
#[derive(Debug, Clone)]
pub enum Wait {
    /// A fixed time.
    For(SignedDuration),
    /// A condition, at most `timeout`.
    Until {
        /// The condition.
        rule: Rule,
        /// The longest wait.
        timeout: SignedDuration,
    },
}

/// `if: rule` with `then` steps and optional `else` steps.
#[derive(Debug, Clone)]
pub struct IfStep {
    /// Its id.
    pub id: Id,
    /// The condition.
    pub condition: Rule,
    /// Steps when it holds.
    pub then: Vec<Step>,
    /// Steps when it does not.
    pub otherwise: Vec<Step>,
    /// Where it is.
    pub location: Location,
}

/// A human touchpoint: `task: Call the admin`, assigned to the owner or a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskStep {
    /// Its id.
    pub id: Id,
    /// What to do.
    pub title: String,
    /// More detail for the assignee.
    pub notes: Option<String>,
    /// Who does it.
    pub assign: Assignee,
    /// How long after the step the task is due.
    pub due: Option<SignedDuration>,
    /// 1 (most urgent) to 5; 3 by default.
    pub priority: u8,
    /// Where it is.
    pub location: Location,
}

/// Who a task goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// The account's owner (`owner_email`).
    Owner,
    /// A pooled team, `pool('digital')`, shared by a strategy.
    Pool {
        /// The team.
        name: Id,
        /// How tasks are shared out.
        strategy: PoolStrategy,
    },
}

/// A team that pooled tasks go to: `pools: { digital: { name: Digital CS team, members:
/// [ana@acme.example, bo@acme.example] } }`, named by `assign: pool('digital')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Its id (`pool('id')` in task steps).
    pub id: Id,
    /// A label for people.
    pub name: Option<String>,
    /// The members' email addresses, lowercase, distinct, in the order written (at least
    /// one).
    pub members: Vec<String>,
    /// Where it is defined (its id).
    pub location: Location,
}

/// How a pool's tasks are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolStrategy {
    /// In turn (the default).
    #[default]
    RoundRobin,
    /// To whoever has the fewest open tasks.
    LeastLoaded,
}

/// `update: { trait: value, … }`: sets custom traits.
#[derive(Debug, Clone)]
pub struct UpdateStep {
    /// Its id.
    pub id: Id,
    /// The traits set, in order.
    pub set: Vec<TraitUpdate>,
    /// Where it is.
    pub location: Location,
}

/// One trait set by an update step.
#[derive(Debug, Clone)]
pub struct TraitUpdate {
    /// Whose trait.
    pub owner: Subject,
    /// The custom trait's name.
    pub name: String,
    /// The value (a rule of the trait's type).
    pub value: Rule,
}

/// `exit`: ends the enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStep {
    /// Its id.
    pub id: Id,
    /// Where it is.
    pub location: Location,
}
