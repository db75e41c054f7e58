//! What a due step decides, before anything is written: exits first, then the step.
//!
//! An enrollment whose program or step was removed from the workspace ends as exited. The
//! program's exit rules are evaluated before the step, with engagement and the goal as
//! facts (read only when a rule could need them: a plain send reads neither), and the
//! first that holds ends the enrollment. Flow steps (`wait` for a duration or until a
//! condition with a timeout, polled every `wait_poll`; `if`; `exit`; `update` of a trait)
//! and tasks (assigned to the account owner or a pool, round-robin or least-loaded) are
//! decided here; sends go through the guard rails in `send.rs`.

use cairn_engine::SubjectRef;
use cairn_rules::{Subject, Value};
use cairn_store::{After, DueStep, Enrollment, EnrollmentStatus, LedgerEntry, NewTask, SubjectKind, TaskPriority};
use cairn_workspace::{Assignee, PoolStrategy, Program, Step, Wait, Workspace};
use jiff::Timestamp;
use serde_json::json;

use super::round::{Deferral, Outcome, RoundFacts};
use super::{Facts, Runner, eval_bool, subject_ref};
use crate::ProgramError;
use crate::plan::{branch_target, next_after};

/// Whether a step of `program` evaluates rules (exit rules, or the step's own): only then
/// does it read the enrollment's engagement and goal.
pub(super) fn reads_rules(program: &Program, step: &Step) -> bool {
    !program.exits.is_empty() || matches!(step, Step::If(_) | Step::Wait(_) | Step::Update(_))
}

impl Runner {
    pub(super) async fn decide(
        &self,
        ws: &Workspace,
        due: &DueStep,
        enrollment: &Enrollment,
        now: Timestamp,
        round: &RoundFacts,
    ) -> Result<Outcome, ProgramError> {
        let entry = |channel: &str, outcome: &str, detail: serde_json::Value| LedgerEntry {
            enrollment_id: due.enrollment_id,
            step_id: due.step_id.clone(),
            channel: channel.to_string(),
            outcome: outcome.to_string(),
            message_id: None,
            detail: detail.to_string(),
            at: now,
        };
        let Some(program) = ws.programs().iter().find(|p| p.id.as_str() == due.program_id) else {
            let e = entry("none", "program_removed", json!({"reason": "the program is no longer defined"}));
            return Ok(Outcome::Record(e, Some(After::End(EnrollmentStatus::Exited))));
        };
        let Some(step) = program.step(&due.step_id) else {
            let e = entry("none", "step_removed", json!({"reason": "the step is no longer in the program"}));
            return Ok(Outcome::Record(e, Some(After::End(EnrollmentStatus::Exited))));
        };
        let subject = subject_ref(enrollment.subject_kind, enrollment.subject_id);
        // Engagement and the goal are read only by rules: a plain send needs neither (the
        // round read the engagement of the steps that do).
        let reads_rules = reads_rules(program, step);
        let engagements = round.engagements.get(&enrollment.id).map(Vec::as_slice).unwrap_or_default();
        let goal = match &program.goal {
            _ if !reads_rules => false,
            None => false,
            Some(g) => {
                enrollment.goal_met_at.is_some() || {
                    let within = enrollment.enrolled_at.checked_add(g.within).is_ok_and(|end| now <= end);
                    let facts = Facts { engagements, goal: false };
                    within && self.runtime.read(|live| eval_bool(&live.engine, subject, &g.rule, Some(&facts))).await
                }
            }
        };
        let facts = Facts { engagements, goal };
        // An exit rule ends the enrollment before anything else happens.
        for (i, rule) in program.exits.iter().enumerate() {
            if self.runtime.read(|live| eval_bool(&live.engine, subject, rule, Some(&facts))).await {
                let e = entry("none", "exited", json!({"exit_rule": i, "rule": rule.source()}));
                return Ok(Outcome::Record(e, Some(After::End(EnrollmentStatus::Exited))));
            }
        }
        let next = |at: Timestamp| -> Option<After> {
            Some(match next_after(program, &due.step_id) {
                Some(s) => After::Next { step_id: s.id().to_string(), due_at: at },
                None => After::End(EnrollmentStatus::Completed),
            })
        };
        Ok(match step {
            Step::Wait(w) => match &w.wait {
                Wait::For(d) => {
                    let until = due.started_at.checked_add(*d).unwrap_or(now).max(now);
                    Outcome::Record(entry("wait", "waited", json!({"for": format!("{d:#}")})), next(until))
                }
                Wait::Until { rule, timeout } => {
                    let deadline = due.started_at.checked_add(*timeout).unwrap_or(now);
                    if self.runtime.read(|live| eval_bool(&live.engine, subject, rule, Some(&facts))).await {
                        Outcome::Record(entry("wait", "condition_met", json!({"rule": rule.source()})), next(now))
                    } else if now >= deadline {
                        Outcome::Record(entry("wait", "timed_out", json!({"rule": rule.source()})), next(now))
                    } else {
                        let again = now.checked_add(self.config.wait_poll).unwrap_or(deadline).min(deadline);
                        Outcome::Defer(
                            again,
                            format!("waiting until {} (at most until {deadline})", rule.source()),
                            Deferral::Wait,
                        )
                    }
                }
            },
            Step::If(branch) => {
                let holds =
                    self.runtime.read(|live| eval_bool(&live.engine, subject, &branch.condition, Some(&facts))).await;
                let after = match branch_target(program, &due.step_id, holds) {
                    Some(s) => After::Next { step_id: s.id().to_string(), due_at: now },
                    None => After::End(EnrollmentStatus::Completed),
                };
                Outcome::Record(
                    entry("if", if holds { "then" } else { "else" }, json!({"rule": branch.condition.source()})),
                    Some(after),
                )
            }
            Step::Exit(_) => {
                Outcome::Record(entry("exit", "exited", json!({})), Some(After::End(EnrollmentStatus::Exited)))
            }
            Step::Update(update) => {
                let mut set = serde_json::Map::new();
                for u in &update.set {
                    let value = self
                        .runtime
                        .read(|live| {
                            live.engine
                                .evaluate_rule(subject, &u.value, Some(&facts))
                                .map(|v| cairn_runtime::views::json_value(&v))
                        })
                        .await
                        .unwrap_or(serde_json::Value::Null);
                    let target = match (u.owner, subject) {
                        (Subject::Account, SubjectRef::Account(a)) => Some((SubjectKind::Account, a as i64)),
                        (Subject::Account, SubjectRef::Contact(c)) => self
                            .runtime
                            .read(|live| live.engine.contact(c).and_then(|s| s.account))
                            .await
                            .map(|a| (SubjectKind::Account, a as i64)),
                        (Subject::Contact, SubjectRef::Contact(c)) => Some((SubjectKind::Contact, c as i64)),
                        (Subject::Contact, SubjectRef::Account(_)) => None,
                    };
                    if let Some((kind, id)) = target {
                        self.store.set_custom_trait(kind, id, &u.name, &value).await?;
                    }
                    set.insert(u.name.clone(), value);
                }
                Outcome::Record(entry("update", "updated", serde_json::Value::Object(set)), next(now))
            }
            Step::Task(task) => self.task_step(program, task, due, enrollment, subject, now, next(now)).await?,
            Step::Send(send) => self.send_step(ws, program, send, due, enrollment, now, round, next(now)).await?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn task_step(
        &self,
        program: &Program,
        task: &cairn_workspace::TaskStep,
        due: &DueStep,
        enrollment: &Enrollment,
        subject: SubjectRef,
        now: Timestamp,
        after: Option<After>,
    ) -> Result<Outcome, ProgramError> {
        let (account, contact) = self
            .runtime
            .read(|live| match subject {
                SubjectRef::Account(a) => (Some(a), None),
                SubjectRef::Contact(c) => (live.engine.contact(c).and_then(|s| s.account), Some(c)),
            })
            .await;
        let owner = match account {
            Some(a) => {
                self.runtime
                    .read(|live| {
                        live.engine.account(a).and_then(|s| match s.traits.get("owner_email") {
                            Some(Value::String(e)) => Some(e.to_string()),
                            _ => None,
                        })
                    })
                    .await
            }
            None => None,
        };
        let ws = self.workspace().await;
        let (assignee, pool) = match &task.assign {
            Assignee::Owner => (owner, None),
            Assignee::Pool { name, strategy } => {
                let members: Vec<String> = ws.pool(name.as_str()).map(|p| p.members.clone()).unwrap_or_default();
                let pick = match strategy {
                    _ if members.is_empty() => None,
                    PoolStrategy::RoundRobin => {
                        let last = self.store.last_pool_assignee(name.as_str()).await?;
                        let at = last
                            .and_then(|l| members.iter().position(|m| *m == l))
                            .map_or(0, |i| (i + 1) % members.len());
                        members.get(at).cloned()
                    }
                    PoolStrategy::LeastLoaded => {
                        let counts = self.store.open_task_counts(&members).await?;
                        counts.iter().min_by_key(|(_, n)| *n).map(|(m, _)| m.clone())
                    }
                };
                (pick, Some(name.to_string()))
            }
        };
        let priority = match task.priority {
            1 => TaskPriority::Urgent,
            2 => TaskPriority::High,
            3 => TaskPriority::Normal,
            _ => TaskPriority::Low,
        };
        let new = NewTask {
            enrollment_id: enrollment.id,
            step_id: due.step_id.clone(),
            account_id: account.map(|a| a as i64),
            contact_id: contact.map(|c| c as i64),
            title: task.title.clone(),
            body: task.notes.clone().unwrap_or_default(),
            assignee: assignee.clone(),
            pool: pool.clone(),
            priority,
            due_at: task.due.and_then(|d| now.checked_add(d).ok()),
            created_at: now,
        };
        let id = self.store.create_task(&new).await?;
        let detail = json!({"task_id": id, "assignee": assignee, "pool": pool, "program": program.id.as_str(), "contact_id": contact});
        Ok(Outcome::Record(
            LedgerEntry {
                enrollment_id: due.enrollment_id,
                step_id: due.step_id.clone(),
                channel: "task".to_string(),
                outcome: "task_created".to_string(),
                message_id: None,
                detail: detail.to_string(),
                at: now,
            },
            after,
        ))
    }
}
