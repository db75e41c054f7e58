//! The living demo: runs a year of the simulated company (`cairn-sim`) through the real
//! thing. A [`FixedClock`] moves through the year a few hours at a time; at each pass
//! the product events that happened by then go through the tracking API's parser into
//! the event log, the CRM's changes (new customers, renewals, NPS answers) through the
//! importers' row parsers into the store, the engine catches up
//! ([`Runtime::catch_up`]), and the program runner runs once ([`Runner::run_once`]) — so
//! enrollments, holdouts, sends (email to the outbox, in-app, tasks) are the runner's own
//! records. What was sent comes back from the log (`email_sent`, `inapp_sent`): the
//! company decides who opens, clicks and answers, and those engagements are recorded the
//! way the link and in-app routes record them ([`engage::record`]); CSMs complete a share
//! of their tasks (`Store::complete_task`).
//!
//! Before the year, 30 days of history are loaded and replayed when the engine starts (a
//! backfill: programs act only on what happens live). Everything is keyed by the seed and
//! the records, so a fresh database and the same seed give the same summary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use cairn_core::import::{ImportKind, parse_account, parse_contact, parse_subscription};
use cairn_core::tracking::{Envelope, parse_message};
use cairn_core::{Clock, FixedClock, Source};
use cairn_programs::engage::{self, EngagementInput, EngagementKind};
use cairn_programs::{Runner, RunnerConfig};
use cairn_runtime::Runtime;
use cairn_sim::{Channel, Company, Config, CrmUpdate, Delivery, ProductEvent, ReactionKind, TaskSeen, Truth};
use cairn_store::Store;
use cairn_workspace::Workspace;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::Serialize;
use serde_json::{Value, json};

mod summary;

pub use summary::{Arm, BehaviourFound, Kpis, Measured, ProgramYear, Split, Uplift};

/// Days of history before the simulated days: a year, so that the customers of the
/// history have their first year (milestones, first renewal) in the log.
pub const HISTORY_DAYS: u32 = 365;

/// The most customers a live simulation takes.
pub const MAX_ACCOUNTS: usize = 20_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Customers (old and new).
    pub accounts: usize,
    /// The seed.
    pub seed: u64,
    /// The last simulated day is the day before this one (the clock's today).
    pub today: Date,
    /// Days simulated live, ending yesterday.
    pub days: u32,
    /// Passes of the engine and the runner a day (a divisor of 24).
    pub passes_per_day: u32,
}

impl Options {
    /// The default demo: `accounts` customers, a year up to `today`, a pass every 3 hours.
    pub fn new(accounts: usize, seed: u64, today: Date) -> Options {
        Options { accounts, seed, today, days: 365, passes_per_day: 8 }
    }
}

/// What the simulated year did: the demo's summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// The first simulated day.
    pub first_day: Date,
    /// The last simulated day.
    pub last_day: Date,
    /// Customers (started during the history or the simulated days).
    pub accounts: usize,
    /// Of which new during the simulated period.
    pub new_accounts: usize,
    /// People.
    pub contacts: usize,
    /// Product events written to the log.
    pub events: u64,
    /// Per program: what it did, and its Reach, Effect and uplift.
    pub programs: Vec<ProgramYear>,
    /// Engagements recorded, per kind.
    pub engagements: BTreeMap<String, u64>,
    /// Tasks created and completed.
    pub tasks_created: u64,
    /// Completed by the simulated CSMs.
    pub tasks_completed: u64,
    /// Term ends decided in the simulated period (the truth's record): renewed (any
    /// form), of which expanded and contracted, and lost.
    pub renewals_won: u64,
    /// Renewed with more seats.
    pub expanded: u64,
    /// Renewed with fewer seats.
    pub contracted: u64,
    /// Not renewed.
    pub renewals_lost: u64,
    /// What cairn's reports say about the period.
    pub measured: Measured,
}

/// A reaction waiting for its time.
#[derive(Debug, Clone)]
struct Pending {
    at: Timestamp,
    enrollment_id: i64,
    step: String,
    contact_id: i64,
    kind: ReactionKind,
}

/// A task a simulated CSM will complete at `at`.
#[derive(Debug, Clone)]
struct TaskDue {
    at: Timestamp,
    task: cairn_store::Task,
    program: String,
    account: Option<String>,
}

/// The state of the drive: the company, the clock, the engine, the runner, and what
/// is still to come.
struct Drive<'a> {
    store: &'a Store,
    ws: Arc<Workspace>,
    company: Company,
    clock: Arc<FixedClock>,
    events: Vec<ProductEvent>,
    reactions: Vec<Pending>,
    tasks_due: Vec<TaskDue>,
    tasks_seen: HashSet<i64>,
    emails: HashMap<i64, String>,
    accounts: HashMap<i64, String>,
    cursor: i64,
    summary: Summary,
    sent: BTreeMap<String, ProgramYear>,
}

fn midnight(d: Date) -> Timestamp {
    d.to_zoned(TimeZone::UTC).map(|z| z.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `cairn demo`: refuses a database that holds events already, simulates with the
/// built-in example workspace and a progress bar on stderr, and returns the summary.
pub async fn run(store: &Store, options: &Options) -> Result<Summary> {
    anyhow::ensure!(
        store.last_seq().await? == 0,
        "the database holds events already: the demo simulates into an empty one (give --db sqlite://demo.db, a new file)"
    );
    let (ws, hash) = crate::demo::example_workspace()?;
    let mut bar = crate::progress::Progress::steps(u64::from(options.days), "days", "simulating the year");
    let (summary, _truth) = simulate(store, Arc::new(ws), hash, options, |done, _| bar.set(done)).await?;
    bar.finish();
    Ok(summary)
}

/// Runs the simulation into `store` (a fresh database) with the workspace `ws`; calls
/// `progress(done, total)` once a simulated day. Returns the summary and the truth.
pub async fn simulate(
    store: &Store,
    ws: Arc<Workspace>,
    hash: String,
    options: &Options,
    mut progress: impl FnMut(u64, u64),
) -> Result<(Summary, Truth)> {
    anyhow::ensure!(
        (1..=MAX_ACCOUNTS).contains(&options.accounts),
        "--accounts must be between 1 and {MAX_ACCOUNTS} (a live year of more would take hours)"
    );
    anyhow::ensure!(options.days > 0 && options.days <= 3660, "--days must be between 1 and 3660");
    anyhow::ensure!(
        options.passes_per_day > 0 && 24 % options.passes_per_day == 0,
        "passes per day must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)"
    );
    let first_day = options.today.checked_sub(i64::from(options.days).days()).context("--days goes too far back")?;
    let config = Config {
        accounts: options.accounts,
        seed: options.seed,
        first_day,
        days: options.days,
        history_days: HISTORY_DAYS,
    };
    let company = Company::new(config.clone());
    let new_accounts = company.accounts().filter(|a| a.start_date >= first_day).count();
    let contacts = company.accounts().map(|a| a.contacts.len()).sum();
    let mut phases = Phases::from_env();
    let history_start = config.history_start();
    let clock = Arc::new(FixedClock::new(midnight(history_start)));
    let mut drive = Drive {
        store,
        ws: Arc::clone(&ws),
        company,
        clock: Arc::clone(&clock),
        events: Vec::new(),
        reactions: Vec::new(),
        tasks_due: Vec::new(),
        tasks_seen: HashSet::new(),
        emails: HashMap::new(),
        accounts: HashMap::new(),
        cursor: 0,
        summary: Summary {
            first_day,
            last_day: options.today.checked_sub(1.day()).unwrap_or(options.today),
            accounts: options.accounts,
            new_accounts,
            contacts,
            events: 0,
            programs: Vec::new(),
            engagements: BTreeMap::new(),
            tasks_created: 0,
            tasks_completed: 0,
            renewals_won: 0,
            expanded: 0,
            contracted: 0,
            renewals_lost: 0,
            measured: Measured::default(),
        },
        sent: BTreeMap::new(),
    };
    // The history: loaded before the engine starts (the CRM's changes as one import),
    // replayed as backfill.
    let mut crm = CrmUpdate::default();
    let mut d = history_start;
    while d <= first_day {
        let day = drive.company.day(d);
        crm.accounts.extend(day.crm.accounts);
        crm.contacts.extend(day.crm.contacts);
        crm.lines.extend(day.crm.lines);
        drive.events.extend(day.events);
        d = d.checked_add(1.day())?;
    }
    drive.import(&crm).await?;
    clock.set(midnight(first_day));
    drive.append_due(midnight(first_day)).await?;
    drive.cursor = store.last_seq().await?;
    let runtime = Runtime::start(store.clone(), clock.clone(), Arc::clone(&ws), hash)
        .await
        .context("starting the engine on the history")?;
    let mut config = RunnerConfig::new("demo");
    config.message_id_domain = "demo.cairn.localhost".to_string();
    let runner = Runner::new(store.clone(), runtime.clone(), clock.clone(), config)
        .await
        .context("starting the program runner")?;
    drive.refresh_ids().await?;
    phases.lap("history and engine start");
    // The year, a pass every few hours; tomorrow's product use is drawn at noon UTC (the
    // earliest working hour anywhere is later: 08:00 in Sydney is 21:00 UTC).
    let step = SignedDuration::from_hours(24 / i64::from(options.passes_per_day));
    let mut t = midnight(first_day);
    let end = midnight(options.today);
    let mut generated = first_day;
    let total = u64::from(options.days);
    while t < end {
        clock.set(t);
        let today = t.to_zoned(TimeZone::UTC).date();
        let mut traits_changed = t == midnight(today);
        if t >= midnight(today) + SignedDuration::from_hours(12) && generated <= today {
            let tomorrow = today.checked_add(1.day())?;
            if tomorrow < options.today {
                traits_changed |= drive.generate(tomorrow).await?;
            }
            generated = tomorrow;
        }
        phases.lap("generate");
        drive.react_until(t).await?;
        phases.lap("react");
        drive.complete_tasks_until(t).await?;
        phases.lap("complete tasks");
        drive.append_due(t).await?;
        phases.lap("append events");
        if traits_changed {
            // One read of the records for the engine and the drive's ids.
            let day = runtime.traits_day().await;
            let (accounts, contacts) = (store.engine_accounts(day).await?, store.engine_contacts().await?);
            runtime.refresh_traits_from(&accounts, &contacts).await?;
            drive.set_ids(&accounts, &contacts);
            phases.lap("refresh traits");
        }
        runtime.catch_up().await?;
        phases.lap("engine catch-up");
        runner.run_once().await?;
        phases.lap("runner pass");
        drive.read_sends().await?;
        phases.lap("read sends");
        if t == midnight(today) {
            drive.see_tasks().await?;
            phases.lap("see tasks");
            let done = today.since(first_day).map(|s| s.get_days()).unwrap_or(0) as u64 + 1;
            progress(done, total);
        }
        t += step;
    }
    clock.set(end);
    drive.react_until(end).await?;
    drive.append_due(end).await?;
    runtime.catch_up().await?;
    runner.run_once().await?;
    drive.read_sends().await?;
    drive.see_tasks().await?;
    phases.lap("last pass");
    let out = drive.finish(options).await;
    phases.lap("summary");
    phases.print();
    out
}

/// Wall time per phase of the drive, printed on stderr at the end when the environment
/// variable `CAIRN_SIM_PROFILE` is set (for tuning; the simulation does not depend on it).
struct Phases {
    on: bool,
    last: std::time::Instant,
    spent: BTreeMap<&'static str, (std::time::Duration, u64)>,
}

impl Phases {
    fn from_env() -> Phases {
        let on = std::env::var_os("CAIRN_SIM_PROFILE").is_some();
        Phases { on, last: std::time::Instant::now(), spent: BTreeMap::new() }
    }

    /// Charges the time since the previous lap to `phase`.
    fn lap(&mut self, phase: &'static str) {
        if !self.on {
            return;
        }
        let now = std::time::Instant::now();
        let e = self.spent.entry(phase).or_default();
        e.0 += now - self.last;
        e.1 += 1;
        self.last = now;
    }

    fn print(&self) {
        if !self.on {
            return;
        }
        let total: f64 = self.spent.values().map(|(d, _)| d.as_secs_f64()).sum();
        eprintln!("simulation phases ({total:.1} s):");
        for (phase, (d, n)) in &self.spent {
            eprintln!(
                "  {phase:<26} {:>8.2} s {:>5.1}%  {n:>6} times",
                d.as_secs_f64(),
                100.0 * d.as_secs_f64() / total
            );
        }
    }
}

impl Drive<'_> {
    /// Draws day `d` of the company: its CRM changes imported now, its events queued.
    /// Whether the CRM changed.
    async fn generate(&mut self, d: Date) -> Result<bool> {
        let day = self.company.day(d);
        let changed = !day.crm.is_empty();
        if changed {
            self.import(&day.crm).await?;
        }
        self.events.extend(day.events);
        Ok(changed)
    }

    /// Writes a CRM update through the importers' row parsers, as `cairn import` does.
    async fn import(&self, update: &CrmUpdate) -> Result<()> {
        let files = self.company.crm_files(update);
        if !files.accounts.is_empty() {
            let rows = crate::demo::rows(&files.accounts, ImportKind::Accounts, parse_account)?;
            self.store.upsert_accounts(Source::Crm, &rows).await?.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
        if !files.contacts.is_empty() {
            let rows = crate::demo::rows(&files.contacts, ImportKind::Contacts, parse_contact)?;
            self.store.upsert_contacts(Source::Crm, &rows).await?.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
        if !files.subscriptions.is_empty() {
            let rows = crate::demo::rows(&files.subscriptions, ImportKind::Subscriptions, parse_subscription)?;
            self.store.upsert_subscriptions(Source::Crm, &rows).await?.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
        Ok(())
    }

    /// Appends the product events dated up to `t`, in time order, through the tracking
    /// API's parser (a Segment `track` call each).
    async fn append_due(&mut self, t: Timestamp) -> Result<()> {
        self.events.sort_by(|a, b| (b.at, &b.message_id).cmp(&(a.at, &a.message_id)));
        let split = self.events.iter().position(|e| e.at <= t).unwrap_or(self.events.len());
        let due: Vec<ProductEvent> = self.events.split_off(split).into_iter().rev().collect();
        for chunk in due.chunks(5_000) {
            let mut messages = Vec::with_capacity(chunk.len());
            for e in chunk {
                let line = json!({
                    "type": "track",
                    "messageId": e.message_id,
                    "userId": e.user_id,
                    "event": e.name,
                    "context": { "groupId": e.group_id, "library": { "name": "cairn-sim" } },
                    "timestamp": e.at.to_string(),
                })
                .to_string();
                let envelope = Envelope {
                    received_at: e.at,
                    batch_sent_at: None,
                    batch_context: None,
                    trust_timestamps: true,
                    plausible: Default::default(),
                };
                messages.push(parse_message(&line, None, &envelope, || e.message_id.clone())?);
            }
            self.store.append("product", &messages).await?;
            self.summary.events += chunk.len() as u64;
        }
        Ok(())
    }

    /// Maps cairn's contact ids to addresses and account ids to CRM ids.
    async fn refresh_ids(&mut self) -> Result<()> {
        let today = self.clock.now().to_zoned(TimeZone::UTC).date();
        let (accounts, contacts) = (self.store.engine_accounts(today).await?, self.store.engine_contacts().await?);
        self.set_ids(&accounts, &contacts);
        Ok(())
    }

    /// [`Drive::refresh_ids`] from records read already.
    fn set_ids(&mut self, accounts: &[cairn_store::AccountRecord], contacts: &[cairn_store::ContactRecord]) {
        for c in contacts {
            if let Some(email) = &c.email {
                self.emails.insert(c.id, email.clone());
            }
        }
        for a in accounts {
            if let Some(crm) = &a.crm_id {
                self.accounts.insert(a.id, crm.clone());
            }
        }
    }

    /// Reads what the runner sent since the last look and lets the recipients react.
    async fn read_sends(&mut self) -> Result<()> {
        loop {
            let events = self.store.events_after_from(self.cursor, "cairn", 10_000).await?;
            let Some(last) = events.last() else { return Ok(()) };
            self.cursor = last.seq;
            for e in &events {
                let Some(name) = e.name.as_deref() else { continue };
                let props: Value =
                    e.properties.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
                let program = props["program"].as_str().unwrap_or_default().to_string();
                let channel = match name {
                    "email_sent" => Channel::Email,
                    "inapp_sent" => Channel::InApp,
                    n if n.ends_with("_sent") => Channel::Other,
                    _ => continue,
                };
                let entry = self.sent.entry(program.clone()).or_default();
                *entry.sent.entry(props["channel"].as_str().unwrap_or("other").to_string()).or_default() += 1;
                let (Some(contact), Some(enrollment)) = (e.contact_id, props["enrollment_id"].as_i64()) else {
                    continue;
                };
                let Some(email) = self.emails.get(&contact) else { continue };
                let step = props["step"].as_str().unwrap_or_default().to_string();
                let delivery = Delivery {
                    email,
                    program: &program,
                    step: &step,
                    channel,
                    variant: props["variant"].as_str(),
                    at: e.ts,
                    key: enrollment as u64,
                };
                for r in self.company.respond(&delivery) {
                    self.reactions.push(Pending {
                        at: r.at,
                        enrollment_id: enrollment,
                        step: step.clone(),
                        contact_id: contact,
                        kind: r.kind,
                    });
                }
            }
        }
    }

    /// Records the reactions due by `t`, as the link and in-app routes do, in one batch
    /// ([`engage::record_all`]: the same records as one at a time).
    async fn react_until(&mut self, t: Timestamp) -> Result<()> {
        self.reactions.sort_by_key(|r| std::cmp::Reverse((r.at, r.enrollment_id)));
        let mut inputs = Vec::new();
        while self.reactions.last().is_some_and(|r| r.at <= t) {
            let Some(r) = self.reactions.pop() else { break };
            let (kind, detail) = match r.kind {
                ReactionKind::Opened => (EngagementKind::Opened, json!({})),
                ReactionKind::Clicked => (EngagementKind::Clicked, json!({"url": "https://app.acme.example/"})),
                ReactionKind::Answered { survey, score } => {
                    (EngagementKind::Answered, json!({"survey": survey.as_str(), "score": score}))
                }
            };
            inputs.push(EngagementInput {
                enrollment_id: r.enrollment_id,
                step_id: r.step,
                contact_id: Some(r.contact_id),
                kind,
                at: r.at,
                detail,
            });
        }
        let new = engage::record_all(self.store, Some(&self.ws), &inputs).await?;
        for (input, _) in inputs.iter().zip(new).filter(|(_, new)| *new) {
            *self.summary.engagements.entry(input.kind.as_str().to_string()).or_default() += 1;
        }
        Ok(())
    }

    /// The CSMs look at their open tasks (once a day) and decide when they do each.
    async fn see_tasks(&mut self) -> Result<()> {
        let new: Vec<cairn_store::Task> =
            self.store.open_tasks(None, None).await?.into_iter().filter(|t| self.tasks_seen.insert(t.id)).collect();
        let ids: Vec<i64> = new.iter().map(|t| t.enrollment_id).collect();
        let programs: HashMap<i64, String> =
            self.store.enrollments(&ids).await?.into_iter().map(|e| (e.id, e.program_id)).collect();
        for task in new {
            let program = programs.get(&task.enrollment_id).cloned().unwrap_or_default();
            // Counted here rather than from `task_created` events: a task about an account
            // has no contact to carry one.
            self.sent.entry(program.clone()).or_default().tasks += 1;
            self.summary.tasks_created += 1;
            let account = task.account_id.and_then(|a| self.accounts.get(&a).cloned());
            let seen = TaskSeen {
                id: task.id as u64,
                program: &program,
                account: account.as_deref(),
                urgent: task.priority == cairn_store::TaskPriority::Urgent,
                created_at: task.created_at,
            };
            if let Some(at) = self.company.work_task(&seen) {
                self.tasks_due.push(TaskDue { at: at.max(self.clock.now()), task, program, account });
            }
        }
        Ok(())
    }

    /// Completes the tasks the CSMs do by `t`, as `POST /api/tasks/{id}/complete` does
    /// (with `task_completed` in the log for a task about a contact), in one batch.
    async fn complete_tasks_until(&mut self, t: Timestamp) -> Result<()> {
        self.tasks_due.sort_by_key(|d| std::cmp::Reverse((d.at, d.task.id)));
        let mut due = Vec::new();
        while self.tasks_due.last().is_some_and(|d| d.at <= t) {
            let Some(d) = self.tasks_due.pop() else { break };
            due.push(d);
        }
        let by = |d: &TaskDue| d.task.assignee.clone().unwrap_or_else(|| "csm@acme.example".into());
        let rows: Vec<(i64, String, Timestamp)> = due.iter().map(|d| (d.task.id, by(d), d.at)).collect();
        let done = self.store.complete_tasks(&rows).await?;
        let mut events = Vec::new();
        for (d, _) in due.iter().zip(done).filter(|(_, done)| *done) {
            self.summary.tasks_completed += 1;
            if let Some(contact) = d.task.contact_id {
                events.push(engage::ContactEvent {
                    contact_id: contact,
                    name: "task_completed".to_string(),
                    message_id: format!("cairn:task:{}:completed", d.task.id),
                    at: d.at,
                    properties: json!({
                        "task_id": d.task.id,
                        "title": d.task.title,
                        "by": by(d),
                        "enrollment_id": d.task.enrollment_id,
                        "step": d.task.step_id,
                    }),
                });
            }
            let seen = TaskSeen {
                id: d.task.id as u64,
                program: &d.program,
                account: d.account.as_deref(),
                urgent: false,
                created_at: d.at,
            };
            self.company.task_done(&seen, d.at);
        }
        engage::append_contact_events(self.store, &events).await?;
        Ok(())
    }

    /// The summary, from the store's records, the reports and the company's truth.
    async fn finish(mut self, options: &Options) -> Result<(Summary, Truth)> {
        for p in self.ws.programs() {
            let id = p.id.as_str().to_string();
            let enrollments = self.store.program_enrollments(&id).await?;
            let mut year = self.sent.remove(&id).unwrap_or_default();
            year.program = id;
            year.enrolled = enrollments.len() as u64;
            year.held_out = enrollments.iter().filter(|e| e.holdout).count() as u64;
            year.holdout_share = p.holdout_percent;
            self.summary.programs.push(year);
        }
        let truth = self.company.truth();
        let first = self.summary.first_day;
        for r in truth.renewals.iter().filter(|r| r.term_end >= first && r.term_end < options.today) {
            match r.outcome {
                cairn_sim::Outcome::Churned => self.summary.renewals_lost += 1,
                o => {
                    self.summary.renewals_won += 1;
                    self.summary.expanded += u64::from(o == cairn_sim::Outcome::Expanded);
                    self.summary.contracted += u64::from(o == cairn_sim::Outcome::Contracted);
                }
            }
        }
        let last = self.summary.last_day;
        self.summary.measured =
            summary::measure(self.store, &self.ws, &truth, first, last, &mut self.summary.programs).await?;
        Ok((self.summary, truth))
    }
}

/// The summary for the terminal.
pub fn render(summary: &Summary) -> String {
    use std::fmt::Write as _;
    let m = &summary.measured;
    let k = &m.kpis;
    let money = crate::report::format::money;
    let pct = |x: Option<f64>| x.map_or_else(|| "n/a".to_string(), |x| format!("{x:.1}%"));
    let mut out = format!(
        "simulated {} to {}: {} accounts ({} new in the period), {} contacts, {} product events\n",
        summary.first_day, summary.last_day, summary.accounts, summary.new_accounts, summary.contacts, summary.events
    );
    let _ = writeln!(
        out,
        "\nKPIs      ARR ${} → ${}   NRR {}   GRR {}   logo churn {} ({} of {} accounts, ${} ARR lost)   renewal rate {}",
        money(k.arr_start_cents),
        money(k.arr_end_cents),
        pct(k.nrr),
        pct(k.grr),
        pct(k.logo_churn),
        k.churned_accounts,
        k.cohort_accounts,
        money(k.churned_arr_cents),
        pct(k.renewal_rate),
    );
    let _ = writeln!(
        out,
        "renewals  {} won ({} expanded, {} contracted), {} lost   tasks {} created, {} completed",
        summary.renewals_won,
        summary.expanded,
        summary.contracted,
        summary.renewals_lost,
        summary.tasks_created,
        summary.tasks_completed
    );
    let _ = writeln!(
        out,
        "\n{:<22} {:>8} {:>9}  {:<22} {:>6} {:>7} {:>7}  {:<14} {:<14} uplift (95% interval)",
        "program", "enrolled", "held out", "sent", "tasks", "opened", "clicked", "goal treated", "goal held out"
    );
    let arm = |a: Option<Arm>| match a {
        Some(a) if a.n > 0 => format!("{}/{} {:.0}%", a.converted, a.n, 100.0 * a.converted as f64 / a.n as f64),
        _ => "-".to_string(),
    };
    for p in &summary.programs {
        let sent: Vec<String> = p.sent.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let uplift = p.uplift.as_ref().map_or_else(
            || "-".to_string(),
            |u| format!("{:+.1} pts [{:+.1}, {:+.1}] {}", u.points, u.low, u.high, u.verdict),
        );
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>9}  {:<22} {:>6} {:>7} {:>7}  {:<14} {:<14} {}",
            p.program,
            p.enrolled,
            format!("{} ({:.0}%)", p.held_out, p.holdout_share),
            if sent.is_empty() { "-".to_string() } else { sent.join(", ") },
            p.tasks,
            p.opened,
            p.clicked,
            arm(p.goal_treated),
            arm(p.goal_held_out),
            uplift
        );
        for s in &p.splits {
            let arms: Vec<String> = s.arms.iter().map(|(a, n, c)| format!("{a} {c}/{n} clicked")).collect();
            let _ = writeln!(out, "    A/B {}: {}: {}", s.step, arms.join(", "), s.verdict);
        }
    }
    let engaged: Vec<String> = summary.engagements.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "engagement: {}", if engaged.is_empty() { "none".into() } else { engaged.join(", ") });
    let _ = writeln!(
        out,
        "\nhealth backtest: AUC {} of overall health {} days before each renewal",
        m.health_auc.map_or_else(|| "n/a".to_string(), |a| format!("{a:.3}")),
        m.health_auc_days_before.unwrap_or(0)
    );
    let _ =
        writeln!(out, "\n{:<24} {:<10} {:<20} cairn found (retention with / without)", "behaviour", "truth", "event");
    for b in &summary.measured.behaviours {
        let truth = match b.truth {
            cairn_sim::Effect::Raises => "raises",
            cairn_sim::Effect::Lowers => "lowers",
            cairn_sim::Effect::Decoy => "decoy",
        };
        let figures = match (b.retention_with, b.retention_without, &b.rule) {
            (Some(w), Some(wo), Some(rule)) => format!(" ({w:.1}% / {wo:.1}%; {rule})"),
            _ => String::new(),
        };
        let _ = writeln!(out, "{:<24} {:<10} {:<20} {}{}", b.behaviour, truth, b.event, b.label, figures);
    }
    out
}
