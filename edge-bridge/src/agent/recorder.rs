//! The recorder: drivers hand in readings and command outcomes; one task
//! stores whatever has arrived with one group commit (`fsync`) and answers
//! each driver only once its records are on disk.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use shared::live::Item;
use tokio::sync::{mpsc, oneshot};

use crate::queue::QueueError;

use super::Agent;

/// Why readings were not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The queue is at its size limit (alarm raised).
    Full,
    /// The disk failed; the text is for the log.
    Broken(String),
}

pub(super) struct Submit {
    pub(super) items: Vec<Item>,
    pub(super) reply: oneshot::Sender<Result<Range<u64>, Refused>>,
}

/// Where drivers hand their readings.
#[derive(Clone)]
pub struct Recorder {
    pub(super) tx: mpsc::Sender<Submit>,
}

impl Recorder {
    /// Stores `items`; answers once they are on disk (their sequences), or
    /// why not.
    pub async fn record(&self, items: Vec<Item>) -> Result<Range<u64>, Refused> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Submit { items, reply }).await.is_err() {
            return Err(Refused::Broken("the agent is stopping".into()));
        }
        answer
            .await
            .unwrap_or(Err(Refused::Broken("the agent is stopping".into())))
    }
}

/// The recorder: takes whatever drivers have handed in, stores it with one
/// group commit, answers each.
pub(super) async fn record(agent: Arc<Agent>, mut rx: mpsc::Receiver<Submit>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < 256 {
            match rx.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let payloads: Vec<Vec<u8>> = group
            .iter()
            .flat_map(|s| s.items.iter())
            .map(|item| serde_json::to_vec(item).unwrap_or_default())
            .collect();
        let count = payloads.len() as u64;
        let worker = agent.clone();
        let stored = tokio::task::spawn_blocking(move || worker.queue().append_all(&payloads))
            .await
            .unwrap_or_else(|e| Err(QueueError::Io(std::io::Error::other(e.to_string()))));
        match stored {
            Ok(range) => {
                agent
                    .metrics
                    .records_stored
                    .fetch_add(count, Ordering::Relaxed);
                if agent.metrics.queue_full.swap(false, Ordering::Relaxed) {
                    tracing::info!("queue has room again; storing readings");
                }
                agent.wake.notify_one();
                let mut start = range.start;
                for submit in group {
                    let end = start + submit.items.len() as u64;
                    let _ = submit.reply.send(Ok(start..end));
                    start = end;
                }
            }
            Err(QueueError::Full { used, max }) => {
                agent
                    .metrics
                    .records_refused
                    .fetch_add(count, Ordering::Relaxed);
                if !agent.metrics.queue_full.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        used,
                        max,
                        "ALARM: the queue is full; new readings are refused (instruments keep them) until the cloud acknowledges"
                    );
                }
                for submit in group {
                    let _ = submit.reply.send(Err(Refused::Full));
                }
            }
            Err(e) => {
                agent
                    .metrics
                    .records_refused
                    .fetch_add(count, Ordering::Relaxed);
                tracing::error!("ALARM: cannot store readings: {e}");
                for submit in group {
                    let _ = submit.reply.send(Err(Refused::Broken(e.to_string())));
                }
            }
        }
    }
}
