//! The live path's benchmark, through the functions on workerd: how many
//! readings per second one agent brings into PostgreSQL with nothing lost,
//! how long a reading takes from the instrument to its row, and what the
//! agent costs in CPU and memory with 100 simulated instruments; and over
//! the hub (the WebSocket transport, the organization's Durable Object),
//! how long a reading takes from the instrument to a dashboard.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use blackbox::TestApp;
use serde_json::json;
use shared::auth::Role;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use uuid::Uuid;

const FLOOD_SECS: u64 = 10;
const PACED_SECS: u64 = 10;
/// The paced stream: 50 readings every 10 ms, 5,000 a second at most.
const PACED_BURST: u64 = 50;
const PACED_EVERY: Duration = Duration::from_millis(10);
const IDLE_INSTRUMENTS: usize = 100;
const IDLE_SECS: u64 = 30;

async fn enroll(app: &TestApp, token: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    blackbox::live::enroll_into(app, token, dir)
        .await
        .map(|_| ())
}

async fn instrument(app: &TestApp, token: &str, kind: &str, n: usize) -> anyhow::Result<Uuid> {
    let made = app
        .as_user(token)
        .post(
            "/api/v1/instruments",
            &json!({"name": format!("Bench {kind} {n}"), "type": kind}),
        )
        .await?;
    blackbox::lab::id_of(made.expect_ok(201)?)
}

/// A LAN instrument that sends bursts of `burst` readings (numbered,
/// stamped now), the next burst when the previous one is acknowledged (and
/// `pace` has passed, if given).
async fn flood(
    port: u16,
    burst: u64,
    until: Instant,
    pace: Option<Duration>,
) -> anyhow::Result<Vec<u64>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let (conn, _) = listener.accept().await?;
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut acked = Vec::new();
    let mut next = 1u64;
    while Instant::now() < until {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)?;
        let mut text = String::new();
        for id in next..next + burst {
            text.push_str(
                &json!({"id": id, "metric": "counter", "value": id as f64, "recordedAt": now})
                    .to_string(),
            );
            text.push('\n');
        }
        write.write_all(text.as_bytes()).await?;
        let mut answered = 0;
        while answered < burst {
            let line = lines.next_line().await?.context("the bridge hung up")?;
            let v: serde_json::Value = serde_json::from_str(&line)?;
            if let Some(id) = v["ack"].as_u64() {
                acked.push(id);
            }
            answered += 1;
        }
        next += burst;
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
    }
    Ok(acked)
}

fn agent_config(dir: &std::path::Path, extra: &str, instruments: &str) -> anyhow::Result<String> {
    Ok(format!(
        "dir = {dir:?}\nheartbeat_secs = 5\nbatch_max_records = 1000\n{extra}\n{instruments}",
        dir = dir.display().to_string()
    ))
}

/// CPU seconds (user + system) and peak resident memory (KiB) of `pid`.
fn usage(pid: u32) -> anyhow::Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 (1-based, after the name).
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Ok((ticks as f64 / 100.0, hwm))
}

pub async fn run(app: &TestApp) -> anyhow::Result<()> {
    let admin = app.new_org_user(Role::Admin).await?;
    let token = app.login(&admin).await?;
    let db = app.db().await?;

    // 1. Throughput (as fast as the instrument is acknowledged, then until
    // PostgreSQL has it all) and latency (a paced stream, instrument to row).
    let dir = tempfile::tempdir()?;
    enroll(app, &token, dir.path()).await?;
    let counter = instrument(app, &token, "freezer", 0).await?;
    let paced = instrument(app, &token, "freezer", 1).await?;
    let port = blackbox::stack::free_port()?;
    let paced_port = blackbox::stack::free_port()?;
    let text = agent_config(
        dir.path(),
        "flush_ms = 20\ntransport = \"http\"",
        &format!(
            "[[instruments]]\ndriver = \"tcp\"\nid = \"{counter}\"\naddress = \"127.0.0.1:{port}\"\n\
             [[instruments]]\ndriver = \"tcp\"\nid = \"{paced}\"\naddress = \"127.0.0.1:{paced_port}\"\n"
        ),
    )?;
    let config =
        edge_bridge::config::Config::parse(&text, |_| None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(edge_bridge::agent::run(config, async move {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    let acked = flood(port, 500, started + Duration::from_secs(FLOOD_SECS), None).await?;
    let offered = started.elapsed();
    let drained = loop {
        if count_of(&db, &counter).await? >= acked.len() {
            break started.elapsed();
        }
        ensure!(
            started.elapsed() < Duration::from_secs(900),
            "never drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rows = db
        .query(
            "SELECT value FROM readings WHERE instrument_id = $1 ORDER BY sequence",
            &[&counter],
        )
        .await?;
    let stored: Vec<u64> = rows.iter().map(|r| r.get::<_, f64>(0) as u64).collect();
    let unique: HashSet<u64> = stored.iter().copied().collect();
    ensure!(unique.len() == stored.len(), "a reading was stored twice");
    ensure!(
        acked.iter().all(|id| unique.contains(id)),
        "an acknowledged reading is missing"
    );

    let paced_started = Instant::now();
    let paced_acked = flood(
        paced_port,
        PACED_BURST,
        paced_started + Duration::from_secs(PACED_SECS),
        Some(PACED_EVERY),
    )
    .await?;
    let paced_offered = paced_started.elapsed();
    while count_of(&db, &paced).await? < paced_acked.len() {
        ensure!(
            paced_started.elapsed() < Duration::from_secs(300),
            "the paced stream never drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let latency = db
        .query_one(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - recorded_at)), \
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - recorded_at)) \
               FROM readings WHERE instrument_id = $1",
            &[&paced],
        )
        .await?;
    let (p50, p99): (f64, f64) = (latency.get(0), latency.get(1));
    let _ = stop.send(());
    let _ = agent.await;
    println!("\nlive path (one agent, HTTP transport, workerd functions, proxy, PostgreSQL):");
    println!(
        "  flood: {} readings acknowledged to the instrument in {:.1} s = {:.0} readings/s onto the disk queue; \
         all in PostgreSQL {:.1} s after the start = {:.0} readings/s end to end; 0 lost, 0 repeated",
        acked.len(),
        offered.as_secs_f64(),
        acked.len() as f64 / offered.as_secs_f64(),
        drained.as_secs_f64(),
        stored.len() as f64 / drained.as_secs_f64()
    );
    println!(
        "  paced stream of {:.0} readings/s: instrument to PostgreSQL row p50 {:.1} ms, p99 {:.1} ms",
        paced_acked.len() as f64 / paced_offered.as_secs_f64(),
        p50 * 1000.0,
        p99 * 1000.0
    );

    // 2. The hub: the same paced stream over the WebSocket transport, and a
    // dashboard following the instrument: instrument to dashboard.
    hub(app).await?;

    // 3. The agent's cost with 100 simulated instruments at 1 Hz, in its own
    // process (an organization of its own).
    let admin = app.new_org_user(Role::Admin).await?;
    let token = app.login(&admin).await?;
    let dir = tempfile::tempdir()?;
    enroll(app, &token, dir.path()).await?;
    let kinds = [
        "freezer",
        "incubator",
        "centrifuge",
        "hplc",
        "qpcr",
        "plate_reader",
        "liquid_handler",
        "dna_sequencer",
        "spectrophotometer",
        "microscope",
        "mass_spectrometer",
        "flow_cytometer",
    ];
    let mut instruments = String::new();
    let mut ids = Vec::new();
    for n in 0..IDLE_INSTRUMENTS {
        let kind = kinds[n % kinds.len()];
        let id = instrument(app, &token, kind, n).await?;
        instruments.push_str(&format!(
            "[[instruments]]\ndriver = \"simulator\"\nid = \"{id}\"\ntype = \"{kind}\"\ninterval_ms = 1000\nseed = {n}\n"
        ));
        ids.push(id);
    }
    let path = dir.path().join("edge-bridge.toml");
    std::fs::write(
        &path,
        agent_config(dir.path(), "transport = \"http\"", &instruments)?,
    )?;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .env(blackbox::live::AGENT_CONFIG_ENV, &path)
        .env("EDGE_BRIDGE_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("pid")?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (cpu0, _) = usage(pid)?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(IDLE_SECS)).await;
    let (cpu1, hwm) = usage(pid)?;
    let window = t0.elapsed().as_secs_f64();
    child.start_kill()?;
    child.wait().await?;
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM readings WHERE organization_id = $1",
            &[&admin.organization_id],
        )
        .await?
        .get(0);
    println!(
        "  agent with {IDLE_INSTRUMENTS} simulated instruments at 1 Hz (about {:.0} readings/s stored): CPU {:.1}% of one core, peak RSS {:.1} MiB ({} readings stored in all)",
        // Each simulated type reports 2-4 signals.
        stored as f64 / (IDLE_SECS as f64 + 5.0),
        (cpu1 - cpu0) / window * 100.0,
        hwm as f64 / 1024.0,
        stored
    );
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// A paced TCP instrument relayed over the hub; a dashboard socket follows
/// it and times every reading from the instrument's stamp to its arrival.
async fn hub(app: &TestApp) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    let admin = app.new_org_user(Role::Admin).await?;
    let token = app.login(&admin).await?;
    let db = app.db().await?;
    let dir = tempfile::tempdir()?;
    enroll(app, &token, dir.path()).await?;
    let paced = instrument(app, &token, "freezer", 2).await?;
    let port = blackbox::stack::free_port()?;
    let text = agent_config(
        dir.path(),
        &format!(
            "flush_ms = 20\ntransport = \"websocket\"\nurl = {:?}",
            app.url("")
        ),
        &format!(
            "[[instruments]]\ndriver = \"tcp\"\nid = \"{paced}\"\naddress = \"127.0.0.1:{port}\"\n"
        ),
    )?;
    let config =
        edge_bridge::config::Config::parse(&text, |_| None).map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut request = app
        .url("/api/v1/live")
        .replacen("http", "ws", 1)
        .into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        format!("antevus.live.v1, bearer.{token}").parse()?,
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    futures::SinkExt::send(
        &mut socket,
        Message::text(json!({"type": "subscribe", "instrumentIds": [paced]}).to_string()),
    )
    .await?;
    // Subscribed before the first reading.
    loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            anyhow::bail!("the hub closed the dashboard socket");
        };
        let v: serde_json::Value = serde_json::from_str(text.as_str())?;
        if v["type"] == "subscribed" {
            break;
        }
        ensure!(v["type"] != "error", "{v}");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(edge_bridge::agent::run(config, async move {
        let _ = stopped.await;
    }));
    // The dashboard times every reading of the stream until told to stop.
    let (done, mut finished) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        let mut latencies = Vec::new();
        loop {
            let message = tokio::select! {
                message = socket.next() => match message {
                    Some(Ok(message)) => message,
                    _ => break,
                },
                _ = &mut finished => break,
            };
            let Message::Text(text) = message else {
                continue;
            };
            let arrived = time::OffsetDateTime::now_utc();
            let v: serde_json::Value = serde_json::from_str(text.as_str())?;
            if v["type"] != "readings" {
                continue;
            }
            for reading in v["readings"].as_array().into_iter().flatten() {
                let at = time::OffsetDateTime::parse(
                    reading["recordedAt"].as_str().unwrap_or_default(),
                    &time::format_description::well_known::Rfc3339,
                )?;
                latencies.push((arrived - at).as_seconds_f64());
            }
        }
        anyhow::Ok(latencies)
    });
    let started = Instant::now();
    let acked = flood(
        port,
        PACED_BURST,
        started + Duration::from_secs(PACED_SECS),
        Some(PACED_EVERY),
    )
    .await?;
    let offered = started.elapsed();
    // What was acknowledged reaches the dashboard within moments.
    while count_of(&db, &paced).await? < acked.len() {
        ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the stream never drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = done.send(());
    let mut latencies = watcher.await??;
    ensure!(
        latencies.len() == acked.len(),
        "the dashboard saw {} of {} readings",
        latencies.len(),
        acked.len()
    );
    let _ = stop.send(());
    let _ = agent.await;
    latencies.sort_by(f64::total_cmp);
    let row = db
        .query_one(
            "SELECT count(*), count(DISTINCT sequence), \
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - recorded_at)), \
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - recorded_at)) \
               FROM readings WHERE instrument_id = $1",
            &[&paced],
        )
        .await?;
    let (rows, distinct, p50, p99): (i64, i64, f64, f64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    ensure!(rows == distinct, "a reading was stored twice");
    println!(
        "  over the hub (websocket transport, the organization's Durable Object): a paced stream of {:.0} readings/s; \
         instrument to dashboard p50 {:.1} ms, p99 {:.1} ms ({} readings timed); instrument to PostgreSQL row p50 {:.1} ms, p99 {:.1} ms",
        acked.len() as f64 / offered.as_secs_f64(),
        percentile(&latencies, 0.5) * 1000.0,
        percentile(&latencies, 0.99) * 1000.0,
        latencies.len(),
        p50 * 1000.0,
        p99 * 1000.0
    );
    Ok(())
}

async fn count_of(db: &tokio_postgres::Client, instrument: &Uuid) -> anyhow::Result<usize> {
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM readings WHERE instrument_id = $1",
            &[&instrument],
        )
        .await?
        .get(0);
    Ok(n as usize)
}
