//! `--segment`: the accounts a report is restricted to.
//!
//! A segment's members are the accounts in it **just before 00:00 UTC of the period's
//! first day** (the end of the day the start ARR is read on), rebuilt from the recorded
//! `segment_entered` / `segment_exited` transitions. Membership is fixed at the start so
//! that what happens during the period cannot change who is measured: an account that
//! churns, and leaves a segment such as "paying" because of it, stays in its own
//! denominator; an account that joins mid-period is not counted until the next period.

use std::collections::BTreeSet;

use cairn_measure::Period;
use cairn_rules::Subject;
use cairn_store::{Store, SubjectKind};
use cairn_workspace::Workspace;
use jiff::tz::TimeZone;

use crate::{ReportError, Result};

/// The accounts (cairn ids, as the ledger names them) in `segment` at the start of
/// `period`. Fails, naming the known segments, when the id is neither in the workspace
/// (when one is given) nor in any recorded transition, and when it holds contacts.
pub async fn accounts_at_start(
    store: &Store,
    workspace: Option<&Workspace>,
    segment: &str,
    period: Period,
) -> Result<BTreeSet<String>> {
    let seen = store.segments_in_transitions().await?;
    let defined = workspace.and_then(|ws| ws.segments().iter().find(|s| s.id.as_str() == segment));
    let of_accounts = match defined {
        Some(s) => matches!(s.subject, Subject::Account),
        None => {
            let kinds: Vec<SubjectKind> = seen.iter().filter(|(id, _)| id == segment).map(|(_, k)| *k).collect();
            if kinds.is_empty() {
                return Err(unknown(segment, workspace, &seen));
            }
            kinds.contains(&SubjectKind::Account)
        }
    };
    if !of_accounts {
        return Err(ReportError::Invalid(format!(
            "`{segment}` is a segment of contacts: revenue reports count accounts, so give a segment of accounts{}",
            list(&account_segments(workspace, &seen))
        )));
    }
    let start = period
        .first()
        .to_zoned(TimeZone::UTC)
        .map_err(|e| ReportError::Invalid(format!("the period's first day {} has no instant: {e}", period.first())))?
        .timestamp();
    Ok(store
        .segment_members_before(segment, SubjectKind::Account, start)
        .await?
        .into_iter()
        .map(|id| id.to_string())
        .collect())
}

fn account_segments(workspace: Option<&Workspace>, seen: &[(String, SubjectKind)]) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> =
        seen.iter().filter(|(_, k)| *k == SubjectKind::Account).map(|(id, _)| id.clone()).collect();
    if let Some(ws) = workspace {
        ids.extend(
            ws.segments().iter().filter(|s| matches!(s.subject, Subject::Account)).map(|s| s.id.as_str().to_string()),
        );
    }
    ids
}

fn list(ids: &BTreeSet<String>) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(" ({})", ids.iter().map(String::as_str).collect::<Vec<_>>().join(", "))
    }
}

fn unknown(segment: &str, workspace: Option<&Workspace>, seen: &[(String, SubjectKind)]) -> ReportError {
    let ids = account_segments(workspace, seen);
    if ids.is_empty() {
        return ReportError::Invalid(format!(
            "no segment `{segment}`: no account segment is known yet (segments are known from the workspace \
             and from the entries the engine has recorded; `cairn segments --workspace DIR` lists them)"
        ));
    }
    ReportError::Invalid(format!(
        "no segment `{segment}`: the account segments are {}",
        ids.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
    ))
}
