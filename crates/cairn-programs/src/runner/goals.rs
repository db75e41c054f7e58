//! Goals: at most every `goal_every`, each program's goal rule is evaluated for the
//! enrollments still within the goal's window, and those that meet it are marked (once):
//! per program, the enrollments and their engagement are read set-wise, the rule
//! evaluated in one read of the engine and the goals met written in one transaction.
//! Steps read the goal too (`goal_met()` in rules), evaluated then for their enrollment.

use cairn_workspace::Workspace;
use jiff::Timestamp;

use super::{Facts, Runner, eval_bool, subject_ref};
use crate::ProgramError;

impl Runner {
    pub(super) async fn measure_goals(&self, ws: &Workspace, now: Timestamp) -> Result<(), ProgramError> {
        {
            let mut last = self.last_goal_check.lock().await;
            if last.is_some_and(|t| t.checked_add(self.config.goal_every).is_ok_and(|n| n > now)) {
                return Ok(());
            }
            *last = Some(now);
        }
        for program in ws.programs().iter().filter(|p| self.runs(p)) {
            let Some(goal) = &program.goal else { continue };
            let since = now.checked_sub(goal.within).unwrap_or(now);
            // The enrollments and their engagement in two reads, the rule in one read of
            // the engine, the goals met in one write.
            let open = self.store.enrollments_to_measure(program.id.as_str(), since).await?;
            if open.is_empty() {
                continue;
            }
            let ids: Vec<i64> = open.iter().map(|e| e.id).collect();
            let engagements = self.store.engagements_of(&ids).await?;
            let met: Vec<i64> = self
                .runtime
                .read(|live| {
                    open.iter()
                        .filter(|e| {
                            let engagements = engagements.get(&e.id).map(Vec::as_slice).unwrap_or_default();
                            let facts = Facts { engagements, goal: false };
                            eval_bool(&live.engine, subject_ref(e.subject_kind, e.subject_id), &goal.rule, Some(&facts))
                        })
                        .map(|e| e.id)
                        .collect()
                })
                .await;
            self.store.mark_goals_met(&met, now).await?;
        }
        Ok(())
    }
}
