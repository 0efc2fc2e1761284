//! The live path through the agent itself, run in process and as a child
//! process killed with SIGKILL mid-stream: commands, buffering while the
//! cloud is away, a full queue, serial instruments, dropped files, a cloud
//! that lost its copy. Helpers the other live areas share (an enrolled
//! bridge, an in-process agent, a TCP instrument).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::client::TestApp;
use crate::lab::{id_of, register};
use crate::stack::free_port;
use uuid::Uuid;

crate::cases![
    live_commands_round_trip_through_the_agent,
    live_run_runs_on_the_instrument_and_ends_when_it_reports_idle,
    live_agent_buffers_while_the_cloud_is_away,
    live_full_queue_refuses_and_recovers,
    live_kill_9_loses_and_repeats_nothing,
    live_serial_instrument_over_a_pseudo_terminal,
    live_dropped_files_become_run_data_resuming_and_hash_checked,
    live_agent_starts_a_new_stream_when_the_cloud_lost_its_copy,
];

/// The environment variable that makes a suite binary run the agent
/// instead of the tests (the kill -9 case's child process).
pub const AGENT_CONFIG_ENV: &str = "ANTEVUS_BLACKBOX_AGENT_CONFIG";

/// Runs the agent as `edge-bridge agent` would, when this process was
/// started as the kill -9 case's child.
pub fn run_agent_if_asked() -> Option<std::process::ExitCode> {
    let path = std::env::var(AGENT_CONFIG_ENV).ok()?;
    let config = match edge_bridge::config::Config::load(path.as_ref(), |_| None) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("agent: {e}");
            return Some(std::process::ExitCode::FAILURE);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .ok()?;
    Some(
        match runtime.block_on(edge_bridge::agent::run(config, std::future::pending())) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("agent: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    )
}

/// A bridge of `token`'s organization, enrolled into a fresh directory.
pub(crate) async fn enrolled(
    app: &TestApp,
    token: &str,
) -> anyhow::Result<(edge_bridge::enroll::Credentials, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let credentials = enroll_into(app, token, dir.path()).await?;
    Ok((credentials, dir))
}

/// Enrolls a bridge of `token`'s organization into `dir` through the API
/// and the agent's own enrollment code.
pub async fn enroll_into(
    app: &TestApp,
    token: &str,
    dir: &std::path::Path,
) -> anyhow::Result<edge_bridge::enroll::Credentials> {
    let join = join_token(app, token).await?;
    let public = edge_bridge::tls::Trust::load(None)?;
    edge_bridge::enroll::enroll(&app.url(""), &join, dir, Some("bench-pc"), false, &public)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A single-use join token for a bridge of `token`'s organization.
pub(crate) async fn join_token(app: &TestApp, token: &str) -> anyhow::Result<String> {
    let made = app
        .as_user(token)
        .post(
            "/api/v1/bridges/join-tokens",
            &json!({"name": "Bench bridge"}),
        )
        .await?;
    Ok(made.expect_ok(201)?["token"]
        .as_str()
        .context("token")?
        .to_owned())
}

/// An agent running in this process until dropped.
pub(crate) struct InProcessAgent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), edge_bridge::agent::AgentError>>,
}

impl InProcessAgent {
    pub(crate) fn start(config: edge_bridge::config::Config) -> InProcessAgent {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(edge_bridge::agent::run(config, async move {
            let _ = stopped.await;
        }));
        InProcessAgent {
            stop: Some(stop),
            task,
        }
    }

    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => bail!("the agent failed: {e}"),
            Err(e) => bail!("the agent panicked: {e}"),
        }
    }
}

fn config(
    dir: &std::path::Path,
    extra: &str,
    instruments: &str,
) -> anyhow::Result<edge_bridge::config::Config> {
    let text = format!(
        "dir = {dir:?}\ntransport = \"http\"\nheartbeat_secs = 1\n{extra}\n{instruments}",
        dir = dir.display().to_string()
    );
    edge_bridge::config::Config::parse(&text, |_| None).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Polls `check` until it holds (or fails after `secs`).
pub(crate) async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn live_commands_round_trip_through_the_agent(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let (bridge, dir) = enrolled(app, &token).await?;
    let hplc = crate::lab::new_instrument(app, &token, "HPLC", "hplc", "idle").await?;
    let agent = InProcessAgent::start(config(
        dir.path(),
        "",
        &format!(
            "[[instruments]]\ndriver = \"simulator\"\nid = \"{hplc}\"\ntype = \"hplc\"\ninterval_ms = 50\nseed = 3\n"
        ),
    )?);
    // Readings flow.
    let db = app.db().await?;
    eventually(20, "simulated readings in PostgreSQL", || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM readings WHERE instrument_id = $1",
                &[&hplc],
            )
            .await?
            .get(0);
        Ok(n >= 10)
    })
    .await?;
    // A command from the control API reaches the simulated instrument and
    // its result comes back.
    let queued = app.as_user(&token).header("idempotency-key", "start-1").json(reqwest::Method::POST, &format!("/api/v1/instruments/{hplc}/control"), &json!({"command": "start", "parameters": {"protocol": "gradient-5", "settings": {"durationTicks": 5}}}))
        .await?;
    let command = id_of(queued.expect_ok(202)?)?;
    let last = Arc::new(Mutex::new(Value::Null));
    let result = eventually(30, "the command to complete", || {
        let path = format!("/api/v1/instruments/{hplc}/commands");
        let token = token.clone();
        let last = last.clone();
        async move {
            let listed = app.as_user(&token).get(&path).await?;
            let listed = listed.expect_ok(200)?.clone();
            let found = listed["items"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find(|c| c["id"] == command.to_string())
                        .cloned()
                })
                .unwrap_or(Value::Null);
            let done = found["status"] == "completed";
            *last.lock().unwrap_or_else(|e| e.into_inner()) = found;
            Ok(done)
        }
    })
    .await;
    let last = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
    result.with_context(|| format!("last seen: {last}"))?;
    ensure!(last["result"]["running"] == true, "{last}");
    ensure!(last["sentAt"].is_string(), "{last}");
    ensure!(last["acknowledgedAt"].is_string(), "{last}");
    ensure!(last["completedAt"].is_string(), "{last}");
    // The run shows in the readings and the instrument's status.
    eventually(20, "run progress readings", || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM readings WHERE instrument_id = $1 AND metric = 'runProgressPercent'",
                &[&hplc],
            )
            .await?
            .get(0);
        Ok(n >= 1)
    })
    .await?;
    expect_full_command_trail(&db, &command).await?;
    // A command the simulator cannot do fails with its reason.
    let queued = app
        .as_user(&token)
        .header("idempotency-key", "purge-1")
        .json(
            reqwest::Method::POST,
            &format!("/api/v1/instruments/{hplc}/control"),
            &json!({"command": "purge", "parameters": {}}),
        )
        .await?;
    if queued.status == 202 {
        let failing = id_of(&queued.json["data"])?;
        eventually(30, "the unsupported command to fail", || async {
            let row = db
                .query_one(
                    "SELECT status, coalesce(error, '') FROM instrument_commands WHERE id = $1",
                    &[&failing],
                )
                .await?;
            let status: String = row.get(0);
            let error: String = row.get(1);
            Ok(status == "failed" && error.contains("does not implement"))
        })
        .await?;
    }
    // Only the bridge's own key polls commands, within limits.
    app.as_user(&token)
        .get("/api/v1/bridges/commands")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    for bad in ["wait=26", "limit=0", "wait=x"] {
        app.as_key(&bridge.api_key)
            .get(&format!("/api/v1/bridges/commands?{bad}"))
            .await?
            .expect_error(400, "VALIDATION_ERROR")?;
    }
    agent.stop().await
}

/// A run started through the API reaches the simulated instrument: its
/// start acknowledged, the run is running (started when the instrument took
/// it); the instrument back to idle, the run completed; audited in order.
async fn live_run_runs_on_the_instrument_and_ends_when_it_reports_idle(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let (_, dir) = enrolled(app, &token).await?;
    let hplc = crate::lab::new_instrument(app, &token, "HPLC", "hplc", "idle").await?;
    let agent = InProcessAgent::start(config(
        dir.path(),
        "",
        &format!(
            "[[instruments]]\ndriver = \"simulator\"\nid = \"{hplc}\"\ntype = \"hplc\"\ninterval_ms = 100\nseed = 5\n"
        ),
    )?);
    let db = app.db().await?;
    eventually(20, "the bridge to serve the instrument", || async {
        let bound: bool = db
            .query_one(
                "SELECT bridge_id IS NOT NULL FROM instruments WHERE id = $1",
                &[&hplc],
            )
            .await?
            .get(0);
        Ok(bound)
    })
    .await?;
    let started = app
        .as_user(&token)
        .post(
            "/api/v1/runs",
            &json!({"instrumentId": hplc, "name": "Gradient check", "protocol": "gradient-5",
                    "settings": {"durationTicks": 20}}),
        )
        .await?;
    let started = started.expect_ok(201)?.clone();
    ensure!(started["status"] == "pending", "{started}");
    let run = id_of(&started)?;
    let path = format!("/api/v1/runs/{run}");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let last = Arc::new(Mutex::new(Value::Null));
    let watched = eventually(60, "the run to complete", || {
        let (path, token, seen, last) = (path.clone(), token.clone(), seen.clone(), last.clone());
        async move {
            let now = app
                .as_user(&token)
                .get(&path)
                .await?
                .expect_ok(200)?
                .clone();
            let status = now["status"].as_str().unwrap_or_default().to_owned();
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            *last.lock().unwrap_or_else(|e| e.into_inner()) = now;
            Ok(status != "pending" && status != "running")
        }
    })
    .await;
    let last = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    watched.with_context(|| format!("statuses seen {seen:?}, last {last}"))?;
    ensure!(seen.contains(&"running".to_owned()), "{seen:?}");
    ensure!(last["status"] == "completed", "{last}");
    ensure!(
        last["endReason"] == "The instrument finished the run",
        "{last}"
    );
    let (started_at, completed_at) = (
        last["startedAt"].as_str().context("startedAt")?,
        last["completedAt"].as_str().context("completedAt")?,
    );
    ensure!(started_at < completed_at, "{last}");
    // The start went down with its protocol and settings.
    let parameters: Value = db
        .query_one(
            "SELECT parameters FROM instrument_commands WHERE run_id = $1 AND command = 'start'",
            &[&run],
        )
        .await?
        .get(0);
    ensure!(
        parameters == json!({"protocol": "gradient-5", "settings": {"durationTicks": 20}}),
        "{parameters}"
    );
    let events: Vec<(String, Option<String>)> = db
        .query(
            "SELECT event_type, reason FROM audit_events WHERE record_id = $1 ORDER BY sequence",
            &[&run],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    ensure!(
        events
            == [
                ("RUN_STARTED".to_owned(), None),
                ("RUN_RUNNING".to_owned(), None),
                (
                    "RUN_FINISHED".to_owned(),
                    Some("The instrument finished the run".to_owned())
                ),
            ],
        "{events:?}"
    );
    // The instrument is free for the next run.
    eventually(20, "the instrument to be idle", || async {
        let status: String = db
            .query_one("SELECT status FROM instruments WHERE id = $1", &[&hplc])
            .await?
            .get(0);
        Ok(status == "idle")
    })
    .await?;
    app.as_user(&token)
        .post(
            "/api/v1/runs",
            &json!({"instrumentId": hplc, "settings": "fast"}),
        )
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let big = "x".repeat(17 * 1024);
    app.as_user(&token)
        .post(
            "/api/v1/runs",
            &json!({"instrumentId": hplc, "settings": {"notes": big}}),
        )
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    agent.stop().await
}

/// A command's audit trail is exactly queued, sent, acknowledged, completed.
pub(crate) async fn expect_full_command_trail(
    db: &tokio_postgres::Client,
    command: &Uuid,
) -> anyhow::Result<()> {
    let events = crate::audit::event_types_of(db, command).await?;
    ensure!(
        events
            == [
                "INSTRUMENT_COMMAND_QUEUED",
                "INSTRUMENT_COMMAND_SENT",
                "INSTRUMENT_COMMAND_ACKNOWLEDGED",
                "INSTRUMENT_COMMAND_COMPLETED"
            ],
        "{events:?}"
    );
    Ok(())
}

/// Forwards `port` to the host under test until dropped: the cloud
/// "coming back".
async fn forward(port: u16, to: String) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    Ok(tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(pipe(inbound, to.clone()));
        }
    }))
}

/// Copies `inbound` to a new connection to `to` and back until either
/// side closes (a forwarder's one connection).
pub(crate) async fn pipe<S>(mut inbound: S, to: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}

pub(crate) fn host_address(app: &TestApp) -> anyhow::Result<String> {
    let url = app.url("");
    Ok(url
        .strip_prefix("http://")
        .context("the suite's host speaks http")?
        .trim_end_matches('/')
        .to_owned())
}

/// A LAN instrument for the TCP driver: sends readings numbered from 1
/// (the number is also the value), records which the bridge acknowledged.
pub(crate) struct Instrument {
    acked: Arc<Mutex<Vec<u64>>>,
    nacked: Arc<Mutex<Vec<(u64, String)>>>,
    sent: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Instrument {
    /// Listens on a free port; sends `per_burst` readings every `every`
    /// to whichever bridge is connected.
    pub(crate) async fn start(
        per_burst: u64,
        every: Duration,
    ) -> anyhow::Result<(Instrument, u16)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let nacked = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (a, n, s) = (acked.clone(), nacked.clone(), sent.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (read, mut write) = conn.into_split();
                let (a, n) = (a.clone(), n.clone());
                let reader = tokio::spawn(async move {
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let Ok(v) = serde_json::from_str::<Value>(&line) else {
                            continue;
                        };
                        if let Some(id) = v["ack"].as_u64() {
                            a.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                        } else if let Some(id) = v["nack"].as_u64() {
                            let why = v["error"].as_str().unwrap_or("").to_owned();
                            n.lock().unwrap_or_else(|e| e.into_inner()).push((id, why));
                        }
                    }
                });
                loop {
                    let mut burst = String::new();
                    for _ in 0..per_burst {
                        let id = s.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        burst.push_str(
                            &json!({"id": id, "metric": "counter", "value": id as f64}).to_string(),
                        );
                        burst.push('\n');
                    }
                    if write.write_all(burst.as_bytes()).await.is_err() || reader.is_finished() {
                        break;
                    }
                    tokio::time::sleep(every).await;
                }
                reader.abort();
            }
        });
        Ok((
            Instrument {
                acked,
                nacked,
                sent,
                task,
            },
            port,
        ))
    }

    pub(crate) fn acked(&self) -> Vec<u64> {
        self.acked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Instrument {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The stored values of `instrument`'s counter readings, in stream order.
pub(crate) async fn stored_counter(
    db: &tokio_postgres::Client,
    instrument: &Uuid,
) -> anyhow::Result<Vec<u64>> {
    Ok(db
        .query(
            "SELECT value FROM readings WHERE instrument_id = $1 AND metric = 'counter' \
             ORDER BY stream_id, sequence",
            &[&instrument],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, f64>(0) as u64)
        .collect())
}

pub(crate) async fn metrics(port: u16) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect())
}

async fn live_agent_buffers_while_the_cloud_is_away(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let (_, dir) = enrolled(app, &token).await?;
    let freezer =
        id_of(&register(app, &token, json!({"name": "Freezer", "type": "freezer"})).await?)?;
    let (instrument, instrument_port) = Instrument::start(5, Duration::from_millis(20)).await?;
    let cloud_port = free_port()?;
    let metrics_port = free_port()?;
    let agent = InProcessAgent::start(config(
        dir.path(),
        &format!(
            "url = \"http://127.0.0.1:{cloud_port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\""
        ),
        &format!(
            "[[instruments]]\ndriver = \"tcp\"\nid = \"{freezer}\"\naddress = \"127.0.0.1:{instrument_port}\"\n"
        ),
    )?);
    // The cloud is away: readings are acknowledged to the instrument from
    // disk and wait there.
    eventually(20, "readings buffered on disk", || async {
        Ok(instrument.acked().len() >= 200)
    })
    .await?;
    let m = metrics(metrics_port).await?;
    ensure!(m["edge_bridge_queue_depth"] >= 200.0, "{m:?}");
    ensure!(m["edge_bridge_uplink_up"] == 0.0, "{m:?}");
    let health: Value = reqwest::get(format!("http://127.0.0.1:{metrics_port}/healthz"))
        .await?
        .json()
        .await?;
    ensure!(health["status"] == "buffering", "{health}");
    let db = app.db().await?;
    ensure!(stored_counter(&db, &freezer).await?.is_empty());
    // It comes back: everything arrives, in order, once.
    let forwarder = forward(cloud_port, host_address(app)?).await?;
    eventually(30, "the backlog to arrive", || async {
        let acked = instrument.acked();
        let stored: HashSet<u64> = stored_counter(&db, &freezer).await?.into_iter().collect();
        Ok(acked.iter().take(200).all(|id| stored.contains(id)))
    })
    .await?;
    let stored = stored_counter(&db, &freezer).await?;
    ensure!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "out of order or repeated"
    );
    // The uplink settles: connected, the backlog acknowledged and gone from
    // disk (under load a slow answer may cost it a reconnect on the way).
    let last = Arc::new(Mutex::new(BTreeMap::new()));
    let settled = eventually(30, "the uplink to settle", || {
        let last = last.clone();
        async move {
            let m = metrics(metrics_port).await?;
            let done = m["edge_bridge_uplink_up"] == 1.0
                && m["edge_bridge_queue_depth"] < 200.0
                && m["edge_bridge_reconnects_total"] >= 1.0;
            *last.lock().unwrap_or_else(|e| e.into_inner()) = m;
            Ok(done)
        }
    })
    .await;
    let m = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
    settled.with_context(|| format!("{m:?}"))?;
    forwarder.abort();
    agent.stop().await
}

async fn live_full_queue_refuses_and_recovers(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let (_, dir) = enrolled(app, &token).await?;
    let freezer =
        id_of(&register(app, &token, json!({"name": "Freezer", "type": "freezer"})).await?)?;
    let (instrument, instrument_port) = Instrument::start(5, Duration::from_millis(20)).await?;
    let cloud_port = free_port()?;
    let metrics_port = free_port()?;
    let agent = InProcessAgent::start(config(
        dir.path(),
        &format!(
            "url = \"http://127.0.0.1:{cloud_port}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\
             [queue]\nmax_bytes = 16384\nsegment_bytes = 4096\n"
        ),
        &format!(
            "[[instruments]]\ndriver = \"tcp\"\nid = \"{freezer}\"\naddress = \"127.0.0.1:{instrument_port}\"\n"
        ),
    )?);
    eventually(20, "the queue to refuse", || async {
        Ok(instrument
            .nacked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(_, why)| why.contains("full")))
    })
    .await?;
    // Near the limit, a smaller group may still fit and clear the alarm
    // until the next refusal: look until the alarm and the 503 are seen
    // together.
    eventually(20, "the full alarm and an unhealthy bridge", || async {
        let m = metrics(metrics_port).await?;
        let health = reqwest::get(format!("http://127.0.0.1:{metrics_port}/healthz")).await?;
        Ok(m["edge_bridge_queue_full"] == 1.0
            && m["edge_bridge_records_refused_total"] > 0.0
            && health.status() == 503)
    })
    .await?;
    let acked_while_full = instrument.acked();
    let forwarder = forward(cloud_port, host_address(app)?).await?;
    // Room again: the queue drains, new readings are taken again.
    let db = app.db().await?;
    eventually(30, "recovery", || async {
        let acked = instrument.acked();
        let stored: HashSet<u64> = stored_counter(&db, &freezer).await?.into_iter().collect();
        Ok(acked.len() > acked_while_full.len() + 50
            && acked_while_full.iter().all(|id| stored.contains(id)))
    })
    .await?;
    let m = metrics(metrics_port).await?;
    ensure!(m["edge_bridge_queue_full"] == 0.0, "{m:?}");
    // What was refused was never stored, what was acknowledged is stored.
    let refused: HashSet<u64> = instrument
        .nacked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let stored = stored_counter(&db, &freezer).await?;
    ensure!(
        stored.iter().all(|id| !refused.contains(id)),
        "a refused reading was stored"
    );
    ensure!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "out of order or repeated"
    );
    forwarder.abort();
    agent.stop().await
}

async fn live_kill_9_loses_and_repeats_nothing(app: &TestApp) -> anyhow::Result<()> {
    use rand::Rng as _;
    let (_, token) = app.admin().await?;
    let (_, dir) = enrolled(app, &token).await?;
    let freezer =
        id_of(&register(app, &token, json!({"name": "Freezer", "type": "freezer"})).await?)?;
    let (instrument, instrument_port) = Instrument::start(10, Duration::from_millis(10)).await?;
    let config_path = dir.path().join("edge-bridge.toml");
    std::fs::write(
        &config_path,
        format!(
            "dir = {dir:?}\ntransport = \"http\"\nheartbeat_secs = 1\nbatch_max_records = 200\n\
             [[instruments]]\ndriver = \"tcp\"\nid = \"{freezer}\"\naddress = \"127.0.0.1:{instrument_port}\"\n",
            dir = dir.path().display().to_string()
        ),
    )?;
    let spawn = || -> anyhow::Result<tokio::process::Child> {
        Ok(tokio::process::Command::new(std::env::current_exe()?)
            .env(AGENT_CONFIG_ENV, &config_path)
            .env("EDGE_BRIDGE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?)
    };
    let mut child = spawn()?;
    let mut kills = 0;
    for _ in 0..5 {
        let pause = rand::rng().random_range(300..1500);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.start_kill()?; // SIGKILL
        child.wait().await?;
        kills += 1;
        child = spawn()?;
    }
    // Let the last one drain what was acknowledged.
    let db = app.db().await?;
    let acked = instrument.acked();
    ensure!(
        acked.len() > 500,
        "too few readings acknowledged: {}",
        acked.len()
    );
    eventually(60, "every acknowledged reading in PostgreSQL", || async {
        let stored: HashSet<u64> = stored_counter(&db, &freezer).await?.into_iter().collect();
        Ok(acked.iter().all(|id| stored.contains(id)))
    })
    .await?;
    child.start_kill()?;
    child.wait().await?;
    let stored = stored_counter(&db, &freezer).await?;
    let unique: HashSet<u64> = stored.iter().copied().collect();
    ensure!(unique.len() == stored.len(), "a reading was stored twice");
    ensure!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "readings out of the instrument's order"
    );
    let sent = instrument.sent.load(std::sync::atomic::Ordering::SeqCst);
    ensure!(stored.iter().all(|id| *id <= sent), "a reading nobody sent");
    eprintln!(
        "kill -9 x{kills}: {} sent, {} acknowledged, {} stored, 0 lost, 0 repeated",
        sent,
        acked.len(),
        stored.len()
    );
    Ok(())
}

async fn live_serial_instrument_over_a_pseudo_terminal(app: &TestApp) -> anyhow::Result<()> {
    use tokio_serial::SerialPort as _;
    let (_, token) = app.admin().await?;
    let (_, dir) = enrolled(app, &token).await?;
    let reader =
        crate::lab::new_instrument(app, &token, "Plate reader", "plate_reader", "idle").await?;
    // The instrument's end of an RS-232 line; the bridge opens the other.
    // The bridge opens its end exclusively; the instrument's end is used
    // once it has (a pseudo-terminal without its other end answers EIO).
    let (instrument, line) = tokio_serial::SerialStream::pair()?;
    let path = line.name().context("the pseudo-terminal has no name")?;
    drop(line);
    let agent = InProcessAgent::start(config(
        dir.path(),
        "",
        &format!(
            "[[instruments]]\ndriver = \"serial\"\nid = \"{reader}\"\npath = {path:?}\nbaud = 115200\n"
        ),
    )?);
    let db = app.db().await?;
    eventually(20, "the bridge to open the line", || async {
        let status: String = db
            .query_one("SELECT status FROM instruments WHERE id = $1", &[&reader])
            .await?
            .get(0);
        Ok(status == "online")
    })
    .await?;
    let (read, mut write) = tokio::io::split(instrument);
    let mut lines = BufReader::new(read).lines();
    for n in 1..=3 {
        write
            .write_all(
                format!("{{\"id\": {n}, \"metric\": \"absorbance\", \"value\": 0.{n}}}\n")
                    .as_bytes(),
            )
            .await?;
    }
    write.write_all(b"not json\n").await?;
    let mut answers = Vec::new();
    while answers.len() < 4 {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .context("no answer on the serial line")??
            .context("the line closed")?;
        answers.push(serde_json::from_str::<Value>(&line)?);
    }
    ensure!(
        answers.iter().filter(|a| a["ack"].is_u64()).count() == 3,
        "{answers:?}"
    );
    ensure!(
        answers.iter().any(|a| a["error"]
            .as_str()
            .is_some_and(|e| e.contains("not a reading"))),
        "{answers:?}"
    );
    eventually(20, "the serial readings in PostgreSQL", || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM readings WHERE instrument_id = $1 AND metric = 'absorbance'",
                &[&reader],
            )
            .await?
            .get(0);
        Ok(n == 3)
    })
    .await?;
    // A command goes down the line and the instrument's answer comes back.
    let queued = app
        .as_user(&token)
        .header("idempotency-key", "serial-home")
        .json(
            reqwest::Method::POST,
            &format!("/api/v1/instruments/{reader}/control"),
            &json!({"command": "home"}),
        )
        .await?;
    let command = id_of(queued.expect_ok(202)?)?;
    let order = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("no command on the serial line")??
            .context("the line closed")?;
        let v: Value = serde_json::from_str(&line)?;
        if v["commandId"].is_string() {
            break v;
        }
    };
    ensure!(order["commandId"] == command.to_string(), "{order}");
    ensure!(order["command"] == "home", "{order}");
    write
        .write_all(
            format!(
                "{{\"commandId\": \"{command}\", \"ok\": true, \"result\": {{\"homed\": true}}}}\n"
            )
            .as_bytes(),
        )
        .await?;
    eventually(20, "the command's result", || async {
        let row = db
            .query_one(
                "SELECT status, coalesce(result->>'homed', '') FROM instrument_commands WHERE id = $1",
                &[&command],
            )
            .await?;
        Ok(row.get::<_, String>(0) == "completed" && row.get::<_, String>(1) == "true")
    })
    .await?;
    // A run's start the instrument refuses fails the run with its reason; a
    // start it takes makes the run running, and a LAN instrument that only
    // says it is online leaves the run running until a person ends it.
    let mut answer_start = async |ok: bool| -> anyhow::Result<Uuid> {
        let started = app
            .as_user(&token)
            .post("/api/v1/runs", &json!({"instrumentId": reader}))
            .await?;
        let run = id_of(started.expect_ok(201)?)?;
        let order = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .context("no start on the serial line")??
                .context("the line closed")?;
            let v: Value = serde_json::from_str(&line)?;
            if v["command"] == "start" {
                break v;
            }
        };
        let id = order["commandId"].as_str().context("commandId")?;
        let answer = if ok {
            format!("{{\"commandId\": \"{id}\", \"ok\": true}}\n")
        } else {
            format!(
                "{{\"commandId\": \"{id}\", \"ok\": false, \"error\": \"lamp not warmed up\"}}\n"
            )
        };
        write.write_all(answer.as_bytes()).await?;
        Ok(run)
    };
    let refused = answer_start(false).await?;
    let run_status = |run: Uuid| {
        let db = &db;
        async move {
            let row = db
                .query_one(
                    "SELECT status, coalesce(end_reason, ''), started_at IS NOT NULL FROM runs WHERE id = $1",
                    &[&run],
                )
                .await?;
            anyhow::Ok((
                row.get::<_, String>(0),
                row.get::<_, String>(1),
                row.get::<_, bool>(2),
            ))
        }
    };
    eventually(20, "the refused run to fail", || async {
        Ok(run_status(refused).await?.0 == "failed")
    })
    .await?;
    let (_, reason, _) = run_status(refused).await?;
    ensure!(
        reason == "The instrument refused the start: lamp not warmed up",
        "{reason}"
    );
    let taken = answer_start(true).await?;
    eventually(20, "the taken run to be running", || async {
        Ok(run_status(taken).await?.0 == "running")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        run_status(taken).await?.0 == "running",
        "a heartbeat ended the run"
    );
    app.as_user(&token)
        .json(
            reqwest::Method::PUT,
            &format!("/api/v1/runs/{taken}/stop"),
            &json!({"outcome": "completed"}),
        )
        .await?
        .expect_ok(200)?;
    agent.stop().await
}

async fn live_dropped_files_become_run_data_resuming_and_hash_checked(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let (bridge, dir) = enrolled(app, &token).await?;
    let (reader, run) = crate::runs::started_run(app, &token, &token, "plate_reader").await?;
    let run = id_of(&run)?;
    let (sequencer, raw_run) =
        crate::runs::started_run(app, &token, &token, "dna_sequencer").await?;
    let raw_run = id_of(&raw_run)?;
    let plates = tempfile::tempdir()?;
    let reads = tempfile::tempdir()?;
    // An interrupted upload of the sequencer's file: its first chunk is
    // already in the cloud.
    let raw: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let first = as_bridge_bytes(
        app,
        &bridge.api_key,
        &format!("/api/v1/runs/{raw_run}/data?filename=reads.bin"),
        raw[..65_536].to_vec(),
        "bytes 0-65535/200000",
    )
    .await?;
    ensure!(first.status == 202, "{}", first.json);
    let agent = InProcessAgent::start(config(
        dir.path(),
        "",
        &format!(
            "[[instruments]]\ndriver = \"file_drop\"\nid = \"{reader}\"\nfolder = {plates:?}\nsettle_ms = 600\nformat = \"plate_reader_csv\"\n\
             [[instruments]]\ndriver = \"file_drop\"\nid = \"{sequencer}\"\nfolder = {reads:?}\nsettle_ms = 300\nchunk_bytes = 65536\n",
            plates = plates.path().display().to_string(),
            reads = reads.path().display().to_string(),
        ),
    )?);
    // The plate reader writes its file in two steps: nothing leaves before
    // the file is complete.
    let csv = include_bytes!("../samples/plate_reader_elisa.csv");
    let (head, tail) = csv.split_at(csv.len() / 2);
    let plate_file = plates.path().join("elisa.csv");
    std::fs::write(&plate_file, head)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&plate_file)?
            .write_all(tail)?;
    }
    std::fs::write(reads.path().join("reads.bin"), &raw)?;
    let db = app.db().await?;
    eventually(30, "both files uploaded", || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM run_data WHERE run_id IN ($1, $2) AND status = 'complete'",
                &[&run, &raw_run],
            )
            .await?
            .get(0);
        Ok(n == 2)
    })
    .await?;
    let sha = |bytes: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    let detail = app
        .as_user(&token)
        .get(&format!("/api/v1/runs/{run}"))
        .await?;
    let detail = detail.expect_ok(200)?.clone();
    ensure!(detail["data"]["sha256"] == sha(csv), "{detail}");
    ensure!(detail["data"]["filename"] == "elisa.csv", "{detail}");
    ensure!(
        detail["results"].is_object(),
        "the plate was parsed into results: {detail}"
    );
    let detail = app
        .as_user(&token)
        .get(&format!("/api/v1/runs/{raw_run}"))
        .await?;
    let detail = detail.expect_ok(200)?.clone();
    ensure!(detail["data"]["sha256"] == sha(&raw), "{detail}");
    ensure!(detail["data"]["totalBytes"] == 200_000, "{detail}");
    // The runs' start commands reached the bridge and were taken as the
    // runs being on (a file-drop instrument is operated at its own panel):
    // both runs are running, their files their data.
    eventually(20, "the start commands taken", || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM instrument_commands c JOIN runs r ON r.id = c.run_id \
                  WHERE c.instrument_id IN ($1, $2) AND c.command = 'start' AND c.status = 'completed' \
                    AND c.result->>'operatedAtPanel' = 'true' AND r.status = 'running'",
                &[&reader, &sequencer],
            )
            .await?
            .get(0);
        Ok(n == 2)
    })
    .await?;
    // Any other command is refused with the reason.
    let refused = app
        .as_user(&token)
        .header("idempotency-key", "drop-home")
        .json(
            reqwest::Method::POST,
            &format!("/api/v1/instruments/{reader}/control"),
            &json!({"command": "home"}),
        )
        .await?;
    let refused = id_of(refused.expect_ok(202)?)?;
    eventually(20, "the command refused", || async {
        let row = db
            .query_one(
                "SELECT status, coalesce(error, '') FROM instrument_commands WHERE id = $1",
                &[&refused],
            )
            .await?;
        Ok(row.get::<_, String>(0) == "failed" && row.get::<_, String>(1).contains("file drop"))
    })
    .await?;
    eventually(10, "the files moved aside", || async {
        Ok(plates.path().join(".antevus-sent/elisa.csv").exists()
            && reads.path().join(".antevus-sent/reads.bin").exists()
            && !plate_file.exists())
    })
    .await?;
    agent.stop().await
}

async fn as_bridge_bytes(
    app: &TestApp,
    key: &str,
    path: &str,
    body: Vec<u8>,
    range: &str,
) -> anyhow::Result<crate::client::Resp> {
    app.as_key(key)
        .header("content-range", range)
        .send(
            reqwest::Method::POST,
            path,
            Some(("application/octet-stream", body)),
        )
        .await
}

async fn live_agent_starts_a_new_stream_when_the_cloud_lost_its_copy(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let (bridge, dir) = enrolled(app, &token).await?;
    let freezer =
        id_of(&register(app, &token, json!({"name": "Freezer", "type": "freezer"})).await?)?;
    let (_instrument, port) = Instrument::start(5, Duration::from_millis(20)).await?;
    let agent = InProcessAgent::start(config(
        dir.path(),
        "",
        &format!(
            "[[instruments]]\ndriver = \"tcp\"\nid = \"{freezer}\"\naddress = \"127.0.0.1:{port}\"\n"
        ),
    )?);
    let db = app.db().await?;
    eventually(20, "readings flowing", || async {
        Ok(stored_counter(&db, &freezer).await?.len() >= 100)
    })
    .await?;
    // The cloud's copy of the stream goes back in time (a database restored
    // from a backup): the bridge's next batch no longer continues it.
    db.execute(
        "UPDATE bridge_streams SET acked_sequence = 1 WHERE bridge_id = $1",
        &[&bridge.bridge_id],
    )
    .await?;
    eventually(30, "a second stream", || async {
        let streams: i64 = db
            .query_one(
                "SELECT count(DISTINCT stream_id) FROM readings WHERE instrument_id = $1",
                &[&freezer],
            )
            .await?
            .get(0);
        Ok(streams == 2)
    })
    .await?;
    // Readings keep arriving, each once.
    let before = stored_counter(&db, &freezer).await?.len();
    eventually(20, "more readings", || async {
        Ok(stored_counter(&db, &freezer).await?.len() > before + 50)
    })
    .await?;
    let values = stored_counter(&db, &freezer).await?;
    let unique: HashSet<u64> = values.iter().copied().collect();
    ensure!(unique.len() == values.len(), "a reading was stored twice");
    agent.stop().await
}
