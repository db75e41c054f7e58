//! Group commit for the tracking API: many concurrent requests' messages go into one
//! transaction, and each request is answered only after that transaction commits.

use cairn_core::tracking::TrackingMessage;
use tokio::sync::{mpsc, oneshot};

use crate::{Appended, Result, Store, StoreError};

/// Most messages folded into one transaction.
const MAX_MESSAGES_PER_COMMIT: usize = 20_000;

struct Job {
    source: String,
    messages: Vec<TrackingMessage>,
    reply: oneshot::Sender<Result<Vec<Appended>>>,
}

/// A handle to the store's single writer task. Cheap to clone.
#[derive(Clone)]
pub struct Appender {
    jobs: mpsc::Sender<Job>,
}

impl Appender {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Store) -> Appender {
        let (jobs, mut rx) = mpsc::channel::<Job>(1024);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                let mut size = group[0].messages.len();
                while size < MAX_MESSAGES_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(job) => {
                            size += job.messages.len();
                            group.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let parts: Vec<(&str, &[TrackingMessage])> =
                    group.iter().map(|j| (j.source.as_str(), j.messages.as_slice())).collect();
                match store.append_groups(&parts).await {
                    Ok(results) => {
                        for (job, result) in group.into_iter().zip(results) {
                            let _ = job.reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        let text = e.to_string();
                        tracing::error!(error = %text, "group commit failed; every request in it gets an error");
                        for job in group {
                            let _ = job.reply.send(Err(StoreError::WriteFailed(text.clone())));
                        }
                    }
                }
            }
        });
        Appender { jobs }
    }

    /// Appends messages; returns once they are committed.
    pub async fn append(&self, source: &str, messages: Vec<TrackingMessage>) -> Result<Vec<Appended>> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { source: source.to_string(), messages, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}
