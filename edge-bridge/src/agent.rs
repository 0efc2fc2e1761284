//! The agent loop: drivers hand readings to the [`Recorder`], which stores
//! them in the disk queue (one `fsync` per group, answering each driver
//! only once its readings are on disk); the uplink sends what the queue
//! holds, in order, in batches, and removes only what the cloud
//! acknowledged; commands come down, are recorded as acknowledged before
//! the driver runs them, and their outcome goes up through the queue like
//! any record. `/healthz` and `/metrics` show how it is going.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use serde::Deserialize;
use serde_json::Value;
use shared::ErrorCode;
use shared::envelope::{Envelope, ErrorBody};
use shared::live::{
    Batch, BatchAck, CommandOrder, CommandOutcome, CommandState, Heartbeat, InstrumentState,
    InstrumentStatus, Item, Record,
};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::config::{Config, Transport};
use crate::driver::{self, DriverIo, Order};
use crate::enroll::{self, Credentials};
use crate::queue::{Limits, Queue, QueueError};
use crate::tls::{Trust, TrustError};
use crate::websocket::{Pending, hub_url, websocket};

/// Why readings were not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The queue is at its size limit (alarm raised).
    Full,
    /// The disk failed; the text is for the log.
    Broken(String),
}

struct Submit {
    items: Vec<Item>,
    reply: oneshot::Sender<Result<Range<u64>, Refused>>,
}

/// Where drivers hand their readings.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Submit>,
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

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub records_stored: AtomicU64,
    pub records_refused: AtomicU64,
    pub batches_sent: AtomicU64,
    pub records_sent: AtomicU64,
    pub records_rejected: AtomicU64,
    pub reconnects: AtomicU64,
    pub commands_received: AtomicU64,
    pub queue_full: AtomicBool,
    pub uplink_up: AtomicBool,
}

/// The state the agent's tasks share.
pub struct Agent {
    queue: Mutex<Queue>,
    pub metrics: Metrics,
    statuses: Statuses,
    /// Something new is in the queue.
    wake: Notify,
}

impl Agent {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
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

    fn render_metrics(&self) -> String {
        let (depth, bytes, age) = self.queue_state();
        let m = &self.metrics;
        let counter = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let flag = |a: &AtomicBool| u8::from(a.load(Ordering::Relaxed));
        format!(
            "# TYPE edge_bridge_queue_depth gauge\nedge_bridge_queue_depth {depth}\n\
             # TYPE edge_bridge_queue_bytes gauge\nedge_bridge_queue_bytes {bytes}\n\
             # TYPE edge_bridge_oldest_unsent_seconds gauge\nedge_bridge_oldest_unsent_seconds {age:.3}\n\
             # TYPE edge_bridge_queue_full gauge\nedge_bridge_queue_full {}\n\
             # TYPE edge_bridge_uplink_up gauge\nedge_bridge_uplink_up {}\n\
             # TYPE edge_bridge_records_stored_total counter\nedge_bridge_records_stored_total {}\n\
             # TYPE edge_bridge_records_refused_total counter\nedge_bridge_records_refused_total {}\n\
             # TYPE edge_bridge_batches_sent_total counter\nedge_bridge_batches_sent_total {}\n\
             # TYPE edge_bridge_records_sent_total counter\nedge_bridge_records_sent_total {}\n\
             # TYPE edge_bridge_records_rejected_total counter\nedge_bridge_records_rejected_total {}\n\
             # TYPE edge_bridge_reconnects_total counter\nedge_bridge_reconnects_total {}\n\
             # TYPE edge_bridge_commands_received_total counter\nedge_bridge_commands_received_total {}\n",
            flag(&m.queue_full),
            flag(&m.uplink_up),
            counter(&m.records_stored),
            counter(&m.records_refused),
            counter(&m.batches_sent),
            counter(&m.records_sent),
            counter(&m.records_rejected),
            counter(&m.reconnects),
            counter(&m.commands_received),
        )
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

/// The recorder: takes whatever drivers have handed in, stores it with one
/// group commit, answers each.
async fn record(agent: Arc<Agent>, mut rx: mpsc::Receiver<Submit>) {
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

/// The HTTP side of the cloud.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("the cloud cannot be reached: {0}")]
    Unreachable(String),
    #[error("the cloud answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the stream continues at {expected} in the cloud")]
    Gap { expected: u64 },
}

/// How batches reach the cloud.
enum Link {
    /// `POST /api/v1/bridges/ingest`, one request per batch.
    Http(Client),
    /// The hub's socket, kept by [`websocket`]: a batch and where to answer.
    Websocket(mpsc::Sender<Pending>),
}

impl Link {
    async fn send(&self, batch: &Batch) -> Result<BatchAck, SendError> {
        match self {
            Link::Http(client) => client.send(batch).await,
            Link::Websocket(requests) => {
                let (reply, answer) = oneshot::channel();
                requests
                    .send((batch.clone(), reply))
                    .await
                    .map_err(|_| SendError::Unreachable("the hub connection stopped".into()))?;
                answer.await.unwrap_or_else(|_| {
                    Err(SendError::Unreachable("the hub connection stopped".into()))
                })
            }
        }
    }
}

/// What an error answer (HTTP or hub message) means for the uplink.
pub(crate) fn refusal(status: u16, error: Option<ErrorBody>) -> SendError {
    match error {
        Some(error) if status == 409 && error.code == ErrorCode::Conflict => {
            // The cloud names the sequence it expects as the detail for
            // the batch's first record (`shared::live::persist::ingest`).
            let expected = error
                .details
                .iter()
                .find(|d| d.field == "records[0].seq")
                .and_then(|d| d.message.parse().ok())
                .unwrap_or(0);
            SendError::Gap { expected }
        }
        Some(error) if status >= 500 || status == 429 => {
            SendError::Unreachable(format!("{status} {}", error.code.as_str()))
        }
        error => SendError::Refused {
            status,
            message: error.map_or_else(
                || "no data".to_owned(),
                |e| format!("{}: {} {:?}", e.code.as_str(), e.message, e.details),
            ),
        },
    }
}

impl Client {
    fn new(base: &str, credentials: &Credentials, trust: &Trust) -> Result<Client, TrustError> {
        Ok(Client {
            http: trust.http_client(Duration::from_secs(40))?,
            base: base.trim_end_matches('/').to_owned(),
            key: credentials.api_key.clone(),
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, SendError> {
        let response = request
            .header("x-api-key", &self.key)
            .send()
            .await
            .map_err(|e| SendError::Unreachable(enroll::chain(e)))?;
        let status = response.status().as_u16();
        let envelope: Envelope<T> = response.json().await.map_err(|e| {
            if status >= 500 {
                SendError::Unreachable(format!("{status}"))
            } else {
                SendError::Refused {
                    status,
                    message: e.to_string(),
                }
            }
        })?;
        match (envelope.data, envelope.error) {
            (Some(data), None) if status < 300 => Ok(data),
            (_, error) => Err(refusal(status, error)),
        }
    }

    async fn send(&self, batch: &Batch) -> Result<BatchAck, SendError> {
        self.call(
            self.http
                .post(format!("{}/api/v1/bridges/ingest", self.base))
                .json(batch),
        )
        .await
    }

    async fn commands(&self, wait: u64) -> Result<Vec<CommandOrder>, SendError> {
        #[derive(Deserialize)]
        struct Items {
            items: Vec<CommandOrder>,
        }
        let items: Items = self
            .call(
                self.http
                    .get(format!("{}/api/v1/bridges/commands?wait={wait}", self.base)),
            )
            .await?;
        Ok(items.items)
    }
}

/// The cloud's API as the bridge's drivers use it (with the bridge's key).
#[derive(Clone)]
pub struct Cloud(Client);

/// The answer to an upload chunk.
pub struct Answer {
    pub status: u16,
    pub upload_offset: Option<u64>,
    pub message: String,
}

impl Cloud {
    /// `GET path`: the envelope's `data`, or why not.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let client = &self.0;
        client
            .call::<Value>(client.http.get(format!("{}{path}", client.base)))
            .await
            .map_err(|e| e.to_string())
    }

    /// `POST path?query` with raw bytes as one chunk of an upload.
    pub async fn post_bytes(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
        content_range: &str,
        repr_digest: Option<&str>,
    ) -> Result<Answer, String> {
        let client = &self.0;
        let mut request = client
            .http
            .post(format!("{}{path}", client.base))
            .query(query)
            .header("x-api-key", &client.key)
            .header("content-type", "application/octet-stream")
            .header("content-range", content_range)
            .body(body);
        if let Some(digest) = repr_digest {
            request = request.header("repr-digest", digest);
        }
        let response = request.send().await.map_err(enroll::chain)?;
        let status = response.status().as_u16();
        let upload_offset = response
            .headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let message = response
            .json::<Envelope>()
            .await
            .ok()
            .and_then(|envelope| envelope.error)
            .map(|error| error.message)
            .unwrap_or_default();
        Ok(Answer {
            status,
            upload_offset,
            message,
        })
    }
}

/// Jittered exponential backoff: 250 ms doubling to 30 s, a random part of it.
pub(crate) struct Backoff(pub(crate) u32);

impl Backoff {
    pub(crate) fn next(&mut self) -> Duration {
        let ceiling = 250u64.saturating_mul(1 << self.0.min(7)).min(30_000);
        self.0 += 1;
        Duration::from_millis(rand::rng().random_range(ceiling / 2..=ceiling))
    }
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME").ok().or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
    })
}

/// Sends the queue's records in order, a batch at a time, and a heartbeat
/// at least every `heartbeat`; removes what the cloud acknowledges.
async fn uplink(
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
async fn poll_commands(client: Client, commands: mpsc::Sender<Vec<CommandOrder>>) {
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
async fn run_commands(
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
                    at: OffsetDateTime::now_utc(),
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
                        at: OffsetDateTime::now_utc(),
                    })])
                    .await;
            });
        }
    }
}

async fn serve_metrics(agent: Arc<Agent>, listener: tokio::net::TcpListener) {
    use axum::routing::get;
    let health = agent.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let agent = agent.clone();
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        agent.render_metrics(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let agent = health.clone();
                async move {
                    let (depth, _, age) = agent.queue_state();
                    let full = agent.metrics.queue_full.load(Ordering::Relaxed);
                    let up = agent.metrics.uplink_up.load(Ordering::Relaxed);
                    let status = if full {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    };
                    (
                        status,
                        axum::Json(serde_json::json!({
                            "status": if full { "queue_full" } else if up { "ok" } else { "buffering" },
                            "uplink": up,
                            "queueDepth": depth,
                            "oldestUnsentSeconds": age,
                        })),
                    )
                }
            }),
        );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("metrics endpoint stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, details: Value) -> Option<ErrorBody> {
        serde_json::from_value(serde_json::json!({
            "code": code, "message": "m", "details": details
        }))
        .ok()
    }

    #[test]
    fn an_error_answer_tells_the_uplink_what_to_do() {
        let gap = refusal(
            409,
            error(
                "CONFLICT",
                serde_json::json!([{"field": "other", "message": "x"},
                                   {"field": "records[0].seq", "message": "7"}]),
            ),
        );
        assert!(matches!(gap, SendError::Gap { expected: 7 }), "{gap:?}");
        for status in [429, 500, 503] {
            let later = refusal(status, error("RATE_LIMIT_EXCEEDED", serde_json::json!([])));
            assert!(matches!(later, SendError::Unreachable(_)), "{later:?}");
        }
        let refused = refusal(400, error("VALIDATION_ERROR", serde_json::json!([])));
        assert!(
            matches!(refused, SendError::Refused { status: 400, ref message } if message.starts_with("VALIDATION_ERROR")),
            "{refused:?}"
        );
        assert!(matches!(
            refusal(502, None),
            SendError::Refused { status: 502, .. }
        ));
    }
}
