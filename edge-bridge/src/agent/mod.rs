//! The agent loop: drivers hand readings to the [`Recorder`], which stores
//! them in the disk queue (one `fsync` per group, answering each driver
//! only once its readings are on disk); the uplink sends what the queue
//! holds, in order, in batches, and removes only what the cloud
//! acknowledged; commands come down, are recorded as acknowledged before
//! the driver runs them, and their outcome goes up through the queue like
//! any record. `/healthz` and `/metrics` show how it is going.
mod cloud;
mod metrics;
mod recorder;
mod uplink;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::live::{InstrumentState, InstrumentStatus};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};

use crate::config::{Config, Transport};
use crate::driver::{self, DriverIo};
use crate::enroll::{self};
use crate::queue::{Limits, Queue, QueueError};
use crate::tls::TrustError;
use crate::websocket::{hub_url, websocket};

pub use cloud::{Answer, Cloud};
pub(crate) use cloud::{Backoff, SendError, refusal};
use cloud::{Client, Link};
pub use metrics::Metrics;
use metrics::serve_metrics;
use recorder::record;
pub use recorder::{Recorder, Refused};
use uplink::{poll_commands, run_commands, uplink};

/// What each instrument is doing, as its driver last said.
#[derive(Clone, Default)]
pub struct Statuses(Arc<Mutex<HashMap<uuid::Uuid, InstrumentStatus>>>);

impl Statuses {
    pub fn set(&self, id: uuid::Uuid, status: InstrumentStatus) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let before = map.insert(id, status);
        if before != Some(status) {
            tracing::info!(
                instrument = %id,
                from = before.map_or("unknown", InstrumentStatus::as_str),
                to = status.as_str(),
                "instrument status"
            );
        }
    }

    fn snapshot(&self) -> Vec<InstrumentState> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut states: Vec<InstrumentState> = map
            .iter()
            .map(|(id, status)| InstrumentState {
                id: *id,
                status: *status,
            })
            .collect();
        states.sort_by_key(|s| s.id);
        states
    }
}

/// The state the agent's tasks share.
pub struct Agent {
    queue: Mutex<Queue>,
    pub metrics: Metrics,
    pub(super) statuses: Statuses,
    /// Something new is in the queue.
    pub(super) wake: Notify,
}

impl Agent {
    pub(super) fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue depth, bytes and the age of the oldest unsent record (s).
    pub fn queue_state(&self) -> (usize, u64, f64) {
        let queue = self.queue();
        let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let age = queue
            .oldest_ms()
            .map_or(0.0, |ms| (now_ms - i128::from(ms)).max(0) as f64 / 1000.0);
        (queue.depth(), queue.bytes(), age)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Credentials(#[from] enroll::EnrollError),
    #[error("the queue in {0} cannot be opened: {1}")]
    Queue(std::path::PathBuf, QueueError),
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    #[error(transparent)]
    Tls(#[from] TrustError),
}

/// Opens the queue, starts the drivers, the recorder, the uplink, the
/// command poll and the metrics endpoint, and runs until `stop` resolves.
pub async fn run(
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let credentials = enroll::load(&config.dir)?;
    let queue_dir = config.dir.join("queue");
    let queue = Queue::open(
        &queue_dir,
        Limits {
            segment_bytes: config.queue.segment_bytes,
            max_bytes: config.queue.max_bytes,
        },
    )
    .map_err(|e| AgentError::Queue(queue_dir.clone(), e))?;
    if queue.repaired_bytes > 0 {
        tracing::warn!(
            bytes = queue.repaired_bytes,
            "cut a record torn by a crash from the queue's tail (it was never acknowledged)"
        );
    }
    tracing::info!(
        stream = %queue.stream(),
        pending = queue.depth(),
        acked = queue.acked(),
        "queue open"
    );
    let agent = Arc::new(Agent {
        queue: Mutex::new(queue),
        metrics: Metrics::default(),
        statuses: Statuses::default(),
        wake: Notify::new(),
    });
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| AgentError::Listen(addr, e))?,
        ),
        None => None,
    };

    let (tx, rx) = mpsc::channel(1024);
    let recorder = Recorder { tx };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(record(agent.clone(), rx));

    let url = config
        .url
        .clone()
        .unwrap_or_else(|| credentials.url.clone());
    let trust = config.trust()?;
    if trust.own_authorities() > 0 {
        tracing::info!(
            authorities = trust.own_authorities(),
            "trusting the lab's own certificate authorities as well as the public ones"
        );
    }
    let client = Client::new(&url, &credentials, &trust)?;
    let (commands_tx, commands_rx) = mpsc::channel(16);
    let link = match config.transport {
        Transport::Http => {
            tasks.spawn(poll_commands(client.clone(), commands_tx));
            Link::Http(client.clone())
        }
        Transport::Websocket => {
            let (requests_tx, requests_rx) = mpsc::channel(1);
            tasks.spawn(websocket(
                hub_url(&url),
                trust.clone(),
                credentials.api_key.clone(),
                requests_rx,
                commands_tx,
            ));
            Link::Websocket(requests_tx)
        }
    };
    let mut orders = HashMap::new();
    for instrument in &config.instruments {
        let (order_tx, order_rx) = mpsc::channel(16);
        orders.insert(instrument.id(), order_tx);
        tasks.spawn(driver::run(
            instrument.clone(),
            DriverIo {
                instrument_id: instrument.id(),
                recorder: recorder.clone(),
                orders: order_rx,
                statuses: agent.statuses.clone(),
            },
            Cloud(client.clone()),
        ));
    }
    tasks.spawn(uplink(
        agent.clone(),
        link,
        Duration::from_secs(config.heartbeat_secs),
        config.batch_max_records,
        Duration::from_millis(config.flush_ms),
    ));
    tasks.spawn(run_commands(agent.clone(), commands_rx, recorder, orders));
    if let Some(listener) = metrics_listener {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "metrics and health endpoint");
        }
        tasks.spawn(serve_metrics(agent.clone(), listener));
    }
    tracing::info!(
        bridge = %credentials.bridge_id,
        url = %url,
        transport = ?config.transport,
        instruments = config.instruments.len(),
        "agent started"
    );
    stop.await;
    tracing::info!("agent stopping; everything acknowledged to instruments is on disk");
    tasks.abort_all();
    Ok(())
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME").ok().or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
    })
}
