//! The uplink: sends what the queue holds, in order, in batches with the
//! heartbeat, and removes only what the cloud acknowledged; and the command
//! path (polled over HTTP or pushed by the hub), each command recorded as
//! acknowledged before its driver runs it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use shared::domain::Timestamp;
use shared::live::{Batch, CommandOrder, CommandOutcome, CommandState, Heartbeat, Item, Record};
use tokio::sync::{mpsc, oneshot};

use crate::driver::Order;
use crate::queue::QueueError;

use super::{Agent, Backoff, Client, Link, Recorder, SendError, hostname};

/// Sends the queue's records in order, a batch at a time, and a heartbeat
/// at least every `heartbeat`; removes what the cloud acknowledges.
pub(super) async fn uplink(
    agent: Arc<Agent>,
    link: Link,
    heartbeat: Duration,
    batch_max: usize,
    flush: Duration,
) {
    let mut backoff = Backoff(0);
    let mut last_sent = tokio::time::Instant::now() - heartbeat;
    let hostname = hostname();
    loop {
        let reader = agent.clone();
        let records = tokio::task::spawn_blocking(move || {
            let queue = reader.queue();
            Ok((
                queue.stream(),
                queue.read(queue.acked(), batch_max, 512 * 1024)?,
            ))
        })
        .await
        .unwrap_or_else(|e| Err(QueueError::Io(std::io::Error::other(e.to_string()))));
        let (stream, records) = match records {
            Ok(read) => read,
            Err(e) => {
                tracing::error!("ALARM: cannot read the queue: {e}");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if records.is_empty() && last_sent.elapsed() < heartbeat {
            let _ = tokio::time::timeout(
                heartbeat.saturating_sub(last_sent.elapsed()),
                agent.wake.notified(),
            )
            .await;
            continue;
        }
        let mut decoded = Vec::with_capacity(records.len());
        for record in &records {
            match serde_json::from_slice::<Item>(&record.payload) {
                Ok(item) => decoded.push(Record {
                    seq: record.sequence,
                    item,
                }),
                Err(e) => {
                    // Only this agent writes the queue; this is a bug, and
                    // the record stays until a person looks.
                    tracing::error!(
                        seq = record.sequence,
                        "ALARM: a queued record does not decode: {e}"
                    );
                    break;
                }
            }
        }
        let (depth, _, _) = agent.queue_state();
        let batch = Batch {
            stream,
            records: decoded,
            heartbeat: Heartbeat {
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                hostname: hostname.clone(),
                queue_depth: depth as u64,
                instruments: agent.statuses.snapshot(),
            },
        };
        match link.send(&batch).await {
            Ok(ack) => {
                last_sent = tokio::time::Instant::now();
                backoff = Backoff(0);
                if !agent.metrics.uplink_up.swap(true, Ordering::Relaxed) {
                    tracing::info!("uplink connected");
                }
                let m = &agent.metrics;
                if !batch.records.is_empty() {
                    m.batches_sent.fetch_add(1, Ordering::Relaxed);
                    m.records_sent
                        .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
                }
                for rejected in &ack.rejected {
                    m.records_rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(seq = rejected.seq, reason = %rejected.reason, "the cloud cannot store a record");
                }
                let acker = agent.clone();
                let acked = ack.acked;
                match tokio::task::spawn_blocking(move || acker.queue().ack(acked)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!("cannot record the acknowledgement: {e}"),
                    Err(e) => tracing::error!("cannot record the acknowledgement: {e}"),
                }
                if batch.records.len() < batch_max {
                    tokio::time::sleep(flush).await;
                }
            }
            Err(e) => {
                if agent.metrics.uplink_up.swap(false, Ordering::Relaxed) {
                    tracing::warn!("uplink lost: {e}; readings stay on disk");
                } else {
                    tracing::debug!("uplink: {e}");
                }
                if let SendError::Gap { expected } = e {
                    let renewed = agent.queue().new_stream();
                    tracing::error!(
                        expected,
                        "ALARM: the cloud's copy of this stream ends before what this bridge still holds (a restored database?); the missing records are no longer here; continuing in a new stream: {renewed:?}"
                    );
                }
                agent.metrics.reconnects.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

/// Takes commands from the cloud over HTTP (long poll) for [`run_commands`].
pub(super) async fn poll_commands(client: Client, commands: mpsc::Sender<Vec<CommandOrder>>) {
    let mut backoff = Backoff(0);
    loop {
        match client.commands(20).await {
            Ok(taken) => {
                backoff = Backoff(0);
                if !taken.is_empty() && commands.send(taken).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!("command poll: {e}");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

/// Runs the commands the cloud hands over (by either transport): records
/// each as acknowledged before its driver runs it, and records the outcome.
pub(super) async fn run_commands(
    agent: Arc<Agent>,
    mut taken: mpsc::Receiver<Vec<CommandOrder>>,
    recorder: Recorder,
    orders: HashMap<uuid::Uuid, mpsc::Sender<Order>>,
) {
    // Commands already taken, with when: the cloud may hand one out again
    // while its acknowledgement is on the way; after an hour it no longer
    // would (it has expired or been acknowledged).
    let mut seen: HashMap<uuid::Uuid, tokio::time::Instant> = HashMap::new();
    while let Some(commands) = taken.recv().await {
        for command in commands {
            seen.retain(|_, at| at.elapsed() < Duration::from_secs(3600));
            if seen
                .insert(command.id, tokio::time::Instant::now())
                .is_some()
            {
                continue;
            }
            agent
                .metrics
                .commands_received
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(command = %command.id, instrument = %command.instrument_id, name = %command.command, "command received");
            let outcome = |state, result, error| {
                Item::CommandOutcome(CommandOutcome {
                    command_id: command.id,
                    state,
                    result,
                    error,
                    at: Timestamp::now(),
                })
            };
            let Some(driver) = orders.get(&command.instrument_id) else {
                let _ = recorder
                    .record(vec![outcome(
                        CommandState::Failed,
                        None,
                        Some("the instrument is not connected to this bridge".into()),
                    )])
                    .await;
                continue;
            };
            if recorder
                .record(vec![outcome(CommandState::Acknowledged, None, None)])
                .await
                .is_err()
            {
                // Not acknowledged: the cloud hands it out again later.
                seen.remove(&command.id);
                continue;
            }
            let (done, result) = oneshot::channel();
            let id = command.id;
            let sent = driver
                .send(Order {
                    command: command.clone(),
                    done,
                })
                .await;
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let outcome = match sent {
                    Ok(()) => result
                        .await
                        .unwrap_or_else(|_| Err("the driver stopped".into())),
                    Err(_) => Err("the driver stopped".into()),
                };
                let (state, result, error) = match outcome {
                    Ok(result) => (CommandState::Completed, Some(result), None),
                    Err(error) => (CommandState::Failed, None, Some(error)),
                };
                tracing::info!(command = %id, state = state.as_str(), "command finished");
                let _ = recorder
                    .record(vec![Item::CommandOutcome(CommandOutcome {
                        command_id: id,
                        state,
                        result: result.filter(Value::is_object),
                        error,
                        at: Timestamp::now(),
                    })])
                    .await;
            });
        }
    }
}
