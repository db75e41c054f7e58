//! Goals: at most every `goal_every`, each program's goal rule is evaluated for the
//! enrollments still within the goal's window, and those that meet it are marked (once).
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
            for e in self.store.enrollments_to_measure(program.id.as_str(), since).await? {
                let engagements = self.store.engagements(e.id).await?;
                let facts = Facts { engagements: &engagements, goal: false };
                let subject = subject_ref(e.subject_kind, e.subject_id);
                let met = self.runtime.read(|live| eval_bool(&live.engine, subject, &goal.rule, Some(&facts))).await;
                if met {
                    self.store.mark_goal_met(e.id, now).await?;
                }
            }
        }
        Ok(())
    }
}
