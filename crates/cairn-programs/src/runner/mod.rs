//! The runner: triggers → enrollment → due steps → guard rails → render → deliver →
//! ledger, on the clock it is given. Every pass ([`Runner::run_once`]) is idempotent: a
//! trigger enrolls once (the enrollment's unique key), a step is recorded once (the
//! ledger's key) together with what follows it, so crashes, restarts and second nodes
//! neither repeat nor skip anything.
//!
//! A pass, in the order its files read:
//! - `enrollment.rs`: the triggers since the last pass enroll the subjects the audience
//!   and re-entry policy admit;
//! - `goals.rs`: goals are measured;
//! - `round.rs`: rounds of due steps are claimed and run until none is due, each round's
//!   records written while the next one runs;
//! - `steps.rs`: what one step decides (exit rules first; waits, branches, updates, tasks);
//! - `send.rs`: a send step through the guard rails, rendered (with the insights it quotes:
//!   the benchmarks' peer groups gathered once per pass) and delivered on its channel;
//! - `email.rs`: email to the outbox or over SMTP.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_channels::{EmailTransport, LinkSigner, Mailer, RetryPolicy, WebhookClient};
use cairn_core::{Clock, Email};
use cairn_engine::{Engine, ProgramFacts, SubjectRef};
use cairn_rules::{Engagement, Rule, Value};
use cairn_runtime::Runtime;
use cairn_store::{EngagementRecord, Store, SubjectKind};
use cairn_workspace::{Channel, Workspace};
use jiff::{SignedDuration, Timestamp};

use crate::insights::PeerGroups;
use crate::{ProgramError, link_signer};

mod email;
mod enrollment;
mod goals;
mod round;
mod send;
mod steps;

pub use email::{html_to_text, text_to_html};
use enrollment::Admitted;
use round::Batch;

/// How the runner delivers and paces itself.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// This node's name, the owner of the leases it takes.
    pub node: String,
    /// Base URL of cairn's public routes (tracking, unsubscribe, surveys).
    pub public_url: String,
    /// Sender of email.
    pub from: Email,
    /// Sender's display name.
    pub from_name: Option<String>,
    /// Domain of Message-IDs.
    pub message_id_domain: String,
    /// The outbox (default) or SMTP.
    pub email: EmailTransport,
    /// URL per webhook-delivered channel (`webhook`, `sms`, `slack`).
    pub webhooks: BTreeMap<Channel, String>,
    /// The secret webhooks are signed with.
    pub webhook_secret: Vec<u8>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How long a claimed step is the claimer's.
    pub lease: SignedDuration,
    /// Steps claimed per round.
    pub batch: u32,
    /// How often a `wait until` looks at its condition again (engagement wakes it sooner).
    pub wait_poll: SignedDuration,
    /// How old a product event may be and still trigger a program (older ones are history,
    /// e.g. an import).
    pub live_event_window: SignedDuration,
    /// How often goals are measured.
    pub goal_every: SignedDuration,
    /// When set, only these programs enroll and have their goals measured (a dry run
    /// replays one program; the others' sends come in as records).
    pub only_programs: Option<std::collections::BTreeSet<String>>,
    /// Webhook, SMS and Slack sends are recorded as sent without an HTTP request (a dry
    /// run: nothing leaves the machine).
    pub record_webhooks_only: bool,
}

impl RunnerConfig {
    /// Defaults for a node: the outbox, `http://127.0.0.1:8080` links, 5-minute leases.
    pub fn new(node: impl Into<String>) -> RunnerConfig {
        RunnerConfig {
            node: node.into(),
            public_url: "http://127.0.0.1:8080".to_string(),
            from: default_from(),
            from_name: None,
            message_id_domain: "cairn.localhost".to_string(),
            email: EmailTransport::Outbox,
            webhooks: BTreeMap::new(),
            webhook_secret: Vec::new(),
            retry: RetryPolicy::default(),
            lease: SignedDuration::from_mins(5),
            batch: 500,
            wait_poll: SignedDuration::from_mins(15),
            live_event_window: SignedDuration::from_hours(24),
            goal_every: SignedDuration::from_mins(1),
            only_programs: None,
            record_webhooks_only: false,
        }
    }
}

/// The sender until `--mail-from` says otherwise.
const DEFAULT_FROM: &str = "cs@cairn.localhost";

/// [`DEFAULT_FROM`] as an address: a constant that parses (the test below proves it), so
/// this cannot fail at run time; `Email` has no constructor that skips parsing.
#[allow(clippy::expect_used, reason = "a constant valid address, checked by a unit test")]
fn default_from() -> Email {
    Email::parse(DEFAULT_FROM).expect("DEFAULT_FROM is a valid address")
}

/// What one pass did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// New enrollments (holdouts included).
    pub enrolled: u64,
    /// Steps recorded.
    pub steps: u64,
    /// Messages sent (all channels).
    pub sent: u64,
    /// Steps deferred (quiet hours, caps, waits).
    pub deferred: u64,
    /// Of which sends held by quiet hours.
    pub quiet_hours: u64,
    /// Of which sends held by a frequency cap (a cap that skips is recorded in the ledger).
    pub capped: u64,
    /// Steps dead-lettered.
    pub dead: u64,
    /// Steps retried.
    pub retried: u64,
}

/// The program runner of one node.
pub struct Runner {
    store: Store,
    runtime: Runtime,
    clock: Arc<dyn Clock>,
    signer: Arc<LinkSigner>,
    mailer: Mailer,
    webhook: WebhookClient,
    config: RunnerConfig,
    last_goal_check: tokio::sync::Mutex<Option<Timestamp>>,
    /// Sends decided in the current batch, per (contact, channel), not committed yet.
    pending_sends: std::sync::Mutex<std::collections::HashMap<(i64, String), usize>>,
    /// Enrollments admitted in this pass, written in batches.
    enrollments: std::sync::Mutex<Admitted>,
    /// The programs an operator paused, read at the start of each pass: nobody is
    /// enrolled into them (their triggers in the meantime are passed over) and the store
    /// does not hand out their due steps, which wait for a resume.
    paused: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The benchmarks' peer groups, gathered at the first send of a pass that quotes a
    /// benchmark and shared by the pass's other sends (cleared when a pass starts).
    peer_groups: std::sync::Mutex<Option<Arc<PeerGroups>>>,
}

/// The facts a program rule reads beyond the engine: engagement and the goal.
struct Facts<'a> {
    engagements: &'a [EngagementRecord],
    goal: bool,
}

impl ProgramFacts for Facts<'_> {
    fn engagement(&self, step: &str, kind: Engagement) -> bool {
        let kind = crate::EngagementKind::of_rule(kind).as_str();
        self.engagements.iter().any(|e| e.step_id == step && e.kind == kind)
    }

    fn goal_met(&self) -> bool {
        self.goal
    }
}

fn subject_ref(kind: SubjectKind, id: i64) -> SubjectRef {
    match kind {
        SubjectKind::Account => SubjectRef::Account(id as u64),
        SubjectKind::Contact => SubjectRef::Contact(id as u64),
    }
}

fn eval_bool(engine: &Engine, subject: SubjectRef, rule: &Rule, facts: Option<&dyn ProgramFacts>) -> bool {
    matches!(engine.evaluate_rule(subject, rule, facts), Some(Value::Bool(true)))
}

impl Runner {
    /// A runner over the store and the engine runtime, on `clock`.
    pub async fn new(
        store: Store,
        runtime: Runtime,
        clock: Arc<dyn Clock>,
        config: RunnerConfig,
    ) -> Result<Runner, ProgramError> {
        let signer = Arc::new(link_signer(&store).await?);
        let mailer = Mailer::new(&config.email)?;
        let webhook = WebhookClient::new(Duration::from_secs(10))?;
        Ok(Runner {
            store,
            runtime,
            clock,
            signer,
            mailer,
            webhook,
            config,
            last_goal_check: tokio::sync::Mutex::new(None),
            pending_sends: std::sync::Mutex::new(std::collections::HashMap::new()),
            enrollments: std::sync::Mutex::new(Admitted::default()),
            paused: std::sync::Mutex::new(std::collections::HashSet::new()),
            peer_groups: std::sync::Mutex::new(None),
        })
    }

    /// The link signer (the same secret every node uses).
    pub fn signer(&self) -> Arc<LinkSigner> {
        self.signer.clone()
    }

    /// Whether `program` enrolls and is measured on this runner.
    fn runs(&self, program: &cairn_workspace::Program) -> bool {
        self.config.only_programs.as_ref().is_none_or(|only| only.contains(program.id.as_str()))
    }

    /// This pass's peer groups, gathered from `engine` on first use.
    fn peer_groups(&self, engine: &Engine) -> Arc<PeerGroups> {
        let mut cached = self.peer_groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.get_or_insert_with(|| Arc::new(PeerGroups::gather(engine))).clone()
    }

    async fn workspace(&self) -> Arc<Workspace> {
        self.runtime.read(|live| live.engine.workspace_arc().clone()).await
    }

    /// Keeps running passes until `shutdown`: every second, and when events arrive.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut appends = self.store.event_appends();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                r = appends.changed() => if r.is_err() { return },
                _ = tick.tick() => {}
            }
            if let Err(e) = self.run_once().await {
                tracing::warn!("programs: {e}");
            }
        }
    }

    /// One pass at the clock's now: new triggers enroll, goals are measured, then every
    /// step due is run, until none is due.
    pub async fn run_once(&self) -> Result<PassReport, ProgramError> {
        let mut report = PassReport::default();
        *self.peer_groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let ws = self.workspace().await;
        let now = self.clock.now();
        self.enroll_triggered(&ws, now, &mut report).await?;
        self.measure_goals(&ws, now).await?;
        // Rounds are pipelined: a round's records are written while the next round runs
        // its steps (the writer's thread and this one on two cores). The next round claims
        // and reads its facts before the write starts (SQLite has one writer, and the
        // facts must not see half of what is in flight: the sends being written count
        // through `pending_sends` instead).
        let mut ready: Option<Batch> = None;
        let result = self.rounds(&ws, &mut ready, &mut report).await;
        // Only after a failure is a decided round left unwritten: write it anyway, so its
        // steps are not run again when their leases expire.
        if let Some(batch) = ready.take() {
            self.write(batch).await?;
        }
        result?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sender_is_a_valid_address() {
        assert!(Email::parse(DEFAULT_FROM).is_ok());
        assert_eq!(RunnerConfig::new("n").from.as_str(), DEFAULT_FROM);
    }
}
