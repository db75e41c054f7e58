//! `/tasks`: the signed-in CSM's open tasks, the pooled queues and everyone else's, with
//! claiming (taking a task from a pool or a colleague) and completing with an outcome
//! (the same completion as `POST /api/tasks/{id}/complete`, so rules can count it).

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::{Html, Response};
use cairn_store::Task;
use serde::{Deserialize, Serialize};

use super::{Chrome, UiError, back_to, bad_form, render};
use crate::AppState;
use crate::auth::SignedIn;
use crate::error::ApiError;

/// The outcomes a CSM chooses from when completing a task.
pub(crate) const OUTCOMES: &[&str] =
    &["done", "reached, follow-up planned", "no answer", "customer declined", "escalated", "not needed"];

/// A queue of tasks under a heading.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Queue {
    pub title: String,
    pub tasks: Vec<TaskLine>,
}

/// A task with the names the page shows.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskLine {
    #[serde(flatten)]
    pub task: Task,
    pub account: Option<String>,
    /// Whether it is the signed-in user's.
    pub mine: bool,
}

impl TaskLine {
    /// The priority's name.
    pub fn priority(&self) -> String {
        format!("{:?}", self.task.priority).to_lowercase()
    }
}

/// The tasks page's data.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TasksView {
    pub me: String,
    pub queues: Vec<Queue>,
    pub open: usize,
    pub outcomes: Vec<&'static str>,
}

/// Every open task, in queues for `me`: mine, each pool's unclaimed or others', the rest.
pub(crate) async fn data(state: &AppState, me: &str) -> Result<TasksView, ApiError> {
    let open = state.store.open_tasks(None, None).await?;
    let ids: Vec<u64> = open.iter().filter_map(|t| t.account_id).map(|a| a as u64).collect();
    let names: std::collections::HashMap<u64, String> = match &state.runtime {
        Some(rt) => {
            rt.read(|live| {
                ids.iter()
                    .filter_map(|id| {
                        let a = live.engine.account(*id)?;
                        match a.traits.get("name") {
                            Some(cairn_rules::Value::String(s)) => Some((*id, s.to_string())),
                            _ => None,
                        }
                    })
                    .collect()
            })
            .await
        }
        None => Default::default(),
    };
    let count = open.len();
    let mut mine = Vec::new();
    let mut pools: std::collections::BTreeMap<String, Vec<TaskLine>> = Default::default();
    let mut others = Vec::new();
    for t in open {
        let account = t.account_id.and_then(|a| names.get(&(a as u64)).cloned());
        let is_mine = t.assignee.as_deref() == Some(me);
        let line = TaskLine { account, mine: is_mine, task: t };
        if is_mine {
            mine.push(line);
        } else if let Some(pool) = line.task.pool.clone() {
            pools.entry(pool).or_default().push(line);
        } else {
            others.push(line);
        }
    }
    let mut queues = vec![Queue { title: "My tasks".into(), tasks: mine }];
    queues.extend(pools.into_iter().map(|(pool, tasks)| Queue { title: format!("Pool: {pool}"), tasks }));
    queues.push(Queue { title: "Assigned to others".into(), tasks: others });
    Ok(TasksView { me: me.to_string(), queues, open: count, outcomes: OUTCOMES.to_vec() })
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct Page {
    chrome: Chrome,
    d: TasksView,
}

/// `GET /tasks`.
pub(crate) async fn page(State(state): State<AppState>, user: SignedIn) -> Result<Html<String>, UiError> {
    let d = data(&state, &user.email).await?;
    render(&Page { chrome: Chrome::new(&user, "/tasks"), d })
}

async fn task(state: &AppState, id: &str) -> Result<Task, UiError> {
    let missing = || UiError(ApiError::NotFound(format!("no task `{id}`")));
    let n = id.parse::<i64>().map_err(|_| missing())?;
    state.store.task(n).await?.ok_or_else(missing)
}

/// `POST /tasks/{id}/claim`: the task becomes the signed-in user's.
pub(crate) async fn claim(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let t = task(&state, &id).await?;
    if t.completed_at.is_some() {
        return Err(UiError(ApiError::Conflict(format!("task {} is already done", t.id))));
    }
    state.store.claim_task(t.id, &user.email).await?;
    Ok(back_to(&format!("/tasks#task-{}", t.id)))
}

/// The completion form.
#[derive(Debug, Deserialize)]
pub(crate) struct CompleteForm {
    outcome: String,
}

/// `POST /tasks/{id}/complete`: done by the signed-in user, with one of [`OUTCOMES`].
pub(crate) async fn complete(
    State(state): State<AppState>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CompleteForm>,
) -> Result<Response, UiError> {
    let t = task(&state, &id).await?;
    let Some(outcome) = OUTCOMES.iter().find(|o| **o == form.outcome.trim()) else {
        return Err(bad_form(format!("outcome `{}` is not one of: {}", form.outcome, OUTCOMES.join(", "))));
    };
    crate::tasks::finish(&state, &t, &user.email, Some(outcome)).await?;
    Ok(back_to("/tasks"))
}
