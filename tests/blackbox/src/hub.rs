//! The live hub (`GET /api/v1/live`): dashboards and bridges on WebSockets.
//! On workerd the hub is the organization's Durable Object, on the native
//! host the in-process registry; wasmtime runs the Spin build, which has no
//! WebSockets: there every case checks the 501 that says so (and what to
//! use instead) and nothing else.

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::client::TestApp;
use crate::lab::{id_of, register};
use crate::stack::HostKind;

crate::cases![
    live_hub_fans_readings_out_to_the_organizations_dashboards_only,
    live_hub_runs_commands_over_the_bridge_socket,
    live_hub_refuses_bad_sockets_and_closes_revoked_ones,
    live_hub_agent_rides_out_a_dropped_connection,
];

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(app: &TestApp) -> String {
    app.url("/api/v1/live").replacen("http", "ws", 1)
}

/// Opens a socket with `headers`.
async fn connect(app: &TestApp, headers: &[(&str, &str)]) -> anyhow::Result<Socket> {
    let mut request = ws_url(app).into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .context("connecting to the hub")?;
    let offered = headers
        .iter()
        .any(|(n, v)| *n == "sec-websocket-protocol" && v.contains("antevus.live.v1"));
    if offered {
        ensure!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                == Some("antevus.live.v1"),
            "the hub did not choose antevus.live.v1: {:?}",
            response.headers()
        );
    }
    Ok(socket)
}

/// A dashboard socket the way a browser opens one: the token as a subprotocol.
async fn dashboard(app: &TestApp, token: &str) -> anyhow::Result<Socket> {
    let protocols = format!("antevus.live.v1, bearer.{token}");
    connect(app, &[("sec-websocket-protocol", &protocols)]).await
}

async fn send(socket: &mut Socket, message: Value) -> anyhow::Result<()> {
    socket.send(Message::text(message.to_string())).await?;
    Ok(())
}

/// Sends a (un)subscription and returns the hub's `subscribed` answer.
async fn subscribe(socket: &mut Socket, message: Value) -> anyhow::Result<Value> {
    send(socket, message).await?;
    until(socket, 10, "subscribed", |m| m["type"] == "subscribed").await
}

/// The next JSON text message within `secs`; `None` when none came.
async fn next(socket: &mut Socket, secs: u64) -> anyhow::Result<Option<Value>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let message = match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => bail!("the hub closed the socket"),
            Ok(Some(message)) => message?,
        };
        match message {
            Message::Text(text) => return Ok(Some(serde_json::from_str(text.as_str())?)),
            Message::Close(frame) => bail!("the hub closed the socket: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads messages until one satisfies `wanted` (within `secs`).
async fn until(
    socket: &mut Socket,
    secs: u64,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(socket, left.as_secs().max(1)).await? {
            Some(message) if wanted(&message) => return Ok(message),
            Some(message) => seen.push(message["type"].as_str().unwrap_or("?").to_owned()),
            None => bail!("no {what} within {secs} s; saw {}", summary(&seen)),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no {what} within {secs} s; saw {}", summary(&seen));
        }
    }
}

/// `readings x12, status x1`: what a socket got instead.
fn summary(types: &[String]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for t in types {
        *counts.entry(t.as_str()).or_insert(0) += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(t, n)| format!("{t} x{n}")).collect();
    if parts.is_empty() {
        "nothing".to_owned()
    } else {
        parts.join(", ")
    }
}

/// On wasmtime (Spin), the hub is absent: the upgrade is answered 501 with
/// the HTTP alternatives. Returns whether this host is that one.
async fn spin_has_no_hub(app: &TestApp, token: &str) -> anyhow::Result<bool> {
    if app.stack.kind != HostKind::Wasmtime {
        return Ok(false);
    }
    let resp = app
        .as_user(token)
        .headers(&[
            ("upgrade", "websocket"),
            ("connection", "upgrade"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ])
        .send(reqwest::Method::GET, "/api/v1/live", None)
        .await?;
    resp.expect_error(501, "NOT_IMPLEMENTED")?;
    let message = resp.json["error"]["message"].as_str().unwrap_or_default();
    ensure!(message.contains("/api/v1/bridges/ingest"), "{message}");
    ensure!(message.contains("readings"), "{message}");
    Ok(true)
}

/// The transport of a deployment's bridges: the hub's socket, or on Spin
/// (no WebSockets) HTTPS batches and the command long poll.
pub(crate) fn transport(spin: bool) -> &'static str {
    if spin { "http" } else { "websocket" }
}

pub(crate) fn agent_config(
    dir: &std::path::Path,
    url: &str,
    transport: &str,
    instruments: &str,
) -> anyhow::Result<edge_bridge::config::Config> {
    let text = format!(
        "dir = {dir:?}\nurl = {url:?}\ntransport = {transport:?}\nheartbeat_secs = 1\nflush_ms = 20\n{instruments}",
        dir = dir.display().to_string()
    );
    edge_bridge::config::Config::parse(&text, |_| None).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn live_hub_fans_readings_out_to_the_organizations_dashboards_only(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    if spin_has_no_hub(app, &token).await? {
        return readings_over_http_instead(app, &token).await;
    }
    let (_, other_token) = app.admin().await?;
    let oven = crate::lab::new_instrument(app, &token, "Oven", "incubator", "offline").await?;
    let quiet =
        crate::lab::new_instrument(app, &token, "Quiet reader", "plate_reader", "idle").await?;
    let elsewhere =
        crate::lab::new_instrument(app, &other_token, "Other lab's oven", "incubator", "idle")
            .await?;

    // A browser-style dashboard follows the oven; it is told its state first.
    let mut mine = dashboard(app, &token).await?;
    let subscribed = subscribe(
        &mut mine,
        json!({"type": "subscribe", "instrumentIds": [oven]}),
    )
    .await?;
    ensure!(
        subscribed["instruments"][0]["id"] == oven.to_string(),
        "{subscribed}"
    );
    ensure!(
        subscribed["instruments"][0]["status"] == "offline",
        "{subscribed}"
    );
    ensure!(
        subscribed["instruments"].as_array().map(Vec::len) == Some(1),
        "{subscribed}"
    );
    // A second dashboard of the same lab follows only the quiet reader.
    let mut sideline = connect(app, &[("authorization", &format!("Bearer {token}"))]).await?;
    subscribe(
        &mut sideline,
        json!({"type": "subscribe", "instrumentIds": [quiet]}),
    )
    .await?;
    // Another organization's dashboard cannot follow the oven (it does not
    // exist for it) and, following everything of its own, sees nothing of it.
    let mut theirs = dashboard(app, &other_token).await?;
    send(
        &mut theirs,
        json!({"type": "subscribe", "instrumentIds": [oven]}),
    )
    .await?;
    let refused = until(&mut theirs, 10, "an error", |m| m["type"] == "error").await?;
    ensure!(refused["status"] == 400, "{refused}");
    ensure!(refused["error"]["code"] == "VALIDATION_ERROR", "{refused}");
    let all = subscribe(&mut theirs, json!({"type": "subscribe", "all": true})).await?;
    ensure!(all["all"] == true, "{all}");
    ensure!(
        all["instruments"][0]["id"] == elsewhere.to_string(),
        "{all}"
    );

    // The lab's bridge streams the oven over the hub.
    let dir = tempfile::tempdir()?;
    let credentials = crate::live::enroll_into(app, &token, dir.path()).await?;
    let agent = crate::live::InProcessAgent::start(agent_config(
        dir.path(),
        &credentials.url,
        transport(false),
        &format!(
            "[[instruments]]\ndriver = \"simulator\"\nid = \"{oven}\"\ntype = \"incubator\"\ninterval_ms = 100\nseed = 5\n"
        ),
    )?);
    // Its readings and its coming online (in the same batch's heartbeat,
    // in either order).
    let (mut readings, mut online) = (None, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while readings.is_none() || !online {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "within 30 s: readings {readings:?}, online {online}"
        );
        let Some(message) = next(&mut mine, 5).await? else {
            continue;
        };
        ensure!(message["instrumentId"] == oven.to_string(), "{message}");
        match message["type"].as_str() {
            Some("readings") => readings = Some(message),
            Some("status") => online = message["status"] != "offline",
            _ => bail!("unexpected {message}"),
        }
    }
    let readings = readings.unwrap_or_default();
    let first = &readings["readings"][0];
    ensure!(first["metric"].is_string(), "{readings}");
    ensure!(first["value"].is_number(), "{readings}");
    ensure!(first["recordedAt"].is_string(), "{readings}");
    // What the dashboard saw is what PostgreSQL holds, each reading once.
    let db = app.db().await?;
    let row = db
        .query_one(
            "SELECT count(*), count(DISTINCT (stream_id, sequence)) FROM readings WHERE instrument_id = $1",
            &[&oven],
        )
        .await?;
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    ensure!(rows > 0, "{rows} rows, {distinct} distinct");
    ensure!(rows == distinct, "{rows} rows, {distinct} distinct");

    // Neither the other lab nor the dashboard following something else got
    // anything of the oven.
    for (name, socket) in [
        ("other organization", &mut theirs),
        ("sideline", &mut sideline),
    ] {
        while let Some(message) = next(socket, 2).await? {
            ensure!(
                message["instrumentId"] != oven.to_string(),
                "the {name} dashboard saw {message}"
            );
        }
    }
    // Unsubscribed, the dashboard gets no more readings.
    subscribe(&mut mine, json!({"type": "unsubscribe", "all": true})).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while next(&mut mine, 0).await?.is_some() {}
    let after = next(&mut mine, 2).await?;
    ensure!(after.is_none(), "after unsubscribing: {after:?}");
    agent.stop().await
}

async fn live_hub_runs_commands_over_the_bridge_socket(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    // Spin has no hub: there the same round trip runs over its bridges'
    // transport, HTTPS batches and the command long poll.
    let spin = spin_has_no_hub(app, &token).await?;
    let hplc = crate::lab::new_instrument(app, &token, "HPLC", "hplc", "idle").await?;
    // A dashboard is open first: on Workers the organization's hub then
    // sleeps until its credentials are due (30 s), and the bridge joining
    // must wake it every second for the commands.
    let mut watching = None;
    if !spin {
        let mut socket = dashboard(app, &token).await?;
        subscribe(
            &mut socket,
            json!({"type": "subscribe", "instrumentIds": [hplc]}),
        )
        .await?;
        watching = Some(socket);
    }
    let dir = tempfile::tempdir()?;
    let credentials = crate::live::enroll_into(app, &token, dir.path()).await?;
    let agent = crate::live::InProcessAgent::start(agent_config(
        dir.path(),
        &credentials.url,
        transport(spin),
        &format!(
            "[[instruments]]\ndriver = \"simulator\"\nid = \"{hplc}\"\ntype = \"hplc\"\ninterval_ms = 100\nseed = 9\n"
        ),
    )?);
    let db = app.db().await?;
    // The bridge's heartbeat reached the cloud (through the hub, or its
    // HTTPS batches on Spin).
    crate::live::eventually(30, "the bridge's heartbeat", || async {
        let row = db
            .query_one(
                "SELECT count(*) FROM bridges WHERE id = $1 AND connected_instruments ? $2",
                &[&credentials.bridge_id, &hplc.to_string()],
            )
            .await?;
        Ok(row.get::<_, i64>(0) == 1)
    })
    .await?;
    let queued = app.as_user(&token).header("idempotency-key", "hub-start-1").json(reqwest::Method::POST, &format!("/api/v1/instruments/{hplc}/control"), &json!({"command": "start", "parameters": {"protocol": "gradient-5", "settings": {"durationTicks": 3}}}))
        .await?;
    let command = id_of(queued.expect_ok(202)?)?;
    crate::live::eventually(20, "the command to complete", || async {
        let status: String = db
            .query_one(
                "SELECT status FROM instrument_commands WHERE id = $1",
                &[&command],
            )
            .await?
            .get(0);
        Ok(status == "completed")
    })
    .await?;
    crate::live::expect_full_command_trail(&db, &command).await?;
    drop(watching);
    agent.stop().await
}

/// What a Spin deployment does instead of the hub's fan-out: the bridge
/// sends its batches over HTTPS and the lab reads what was stored, its own
/// organization only.
async fn readings_over_http_instead(app: &TestApp, token: &str) -> anyhow::Result<()> {
    let (_, other_token) = app.admin().await?;
    let oven = crate::lab::new_instrument(app, token, "Oven", "incubator", "offline").await?;
    let dir = tempfile::tempdir()?;
    let credentials = crate::live::enroll_into(app, token, dir.path()).await?;
    let agent = crate::live::InProcessAgent::start(agent_config(
        dir.path(),
        &credentials.url,
        transport(true),
        &format!(
            "[[instruments]]\ndriver = \"simulator\"\nid = \"{oven}\"\ntype = \"incubator\"\ninterval_ms = 100\nseed = 5\n"
        ),
    )?);
    let readings = format!("/api/v1/instruments/{oven}/readings");
    crate::live::eventually(30, "the oven's readings, read back", || async {
        let resp = app.as_user(token).get(&readings).await?;
        let data = resp.expect_ok(200)?;
        Ok(data["series"].as_array().is_some_and(|series| {
            series
                .iter()
                .any(|m| m["points"].as_array().is_some_and(|p| !p.is_empty()))
        }))
    })
    .await?;
    let status = app
        .as_user(token)
        .get(&format!("/api/v1/instruments/{oven}/status"))
        .await?;
    ensure!(
        status.expect_ok(200)?["reachable"] == true,
        "{}",
        status.json
    );
    app.as_user(&other_token)
        .get(&readings)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    agent.stop().await
}

async fn live_hub_refuses_bad_sockets_and_closes_revoked_ones(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    if spin_has_no_hub(app, &token).await? {
        // A plain GET is told to upgrade there too.
        app.as_user(&token)
            .get("/api/v1/live")
            .await?
            .expect_error(400, "VALIDATION_ERROR")?;
        return Ok(());
    }
    let upgrade = [
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    // No credentials, hostile ones, a plain GET: envelope errors, no socket.
    app.anonymous()
        .headers(&upgrade)
        .send(reqwest::Method::GET, "/api/v1/live", None)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let mut with_junk = upgrade.to_vec();
    with_junk.push(("authorization", "Bearer not-a-token"));
    app.anonymous()
        .headers(&with_junk)
        .send(reqwest::Method::GET, "/api/v1/live", None)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let mut token_alone = upgrade.to_vec();
    let offered = format!("bearer.{token}");
    token_alone.push(("sec-websocket-protocol", &offered));
    app.anonymous()
        .headers(&token_alone)
        .send(reqwest::Method::GET, "/api/v1/live", None)
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    app.as_user(&token)
        .get("/api/v1/live")
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;

    // Bad messages are answered and the socket stays.
    let mut socket = dashboard(app, &token).await?;
    socket.send(Message::text("{not json")).await?;
    let error = until(&mut socket, 10, "an error", |m| m["type"] == "error").await?;
    ensure!(error["error"]["code"] == "VALIDATION_ERROR", "{error}");
    socket.send(Message::binary(vec![1u8, 2, 3])).await?;
    until(&mut socket, 10, "an error", |m| m["type"] == "error").await?;
    let many: Vec<String> = (0..21)
        .map(|_| uuid::Uuid::from_bytes(rand::random()).to_string())
        .collect();
    send(
        &mut socket,
        json!({"type": "subscribe", "instrumentIds": many}),
    )
    .await?;
    let error = until(&mut socket, 10, "an error", |m| m["type"] == "error").await?;
    ensure!(
        error["error"]["details"][0]["field"] == "instrumentIds",
        "{error}"
    );
    subscribe(&mut socket, json!({"type": "subscribe", "all": true})).await?;

    // A dashboard that floods the hub with messages is refused and closed.
    let mut flood = dashboard(app, &token).await?;
    let allowed = shared::live::hub::DASHBOARD_MESSAGES_PER_MINUTE as usize;
    for _ in 0..=allowed {
        send(&mut flood, json!({"type": "subscribe", "all": true})).await?;
    }
    let mut answered = 0;
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match flood.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                    if message["type"] == "subscribed" {
                        answered += 1;
                    } else if message["type"] == "error" {
                        ensure!(
                            message["error"]["code"] == "RATE_LIMIT_EXCEEDED",
                            "{message}"
                        );
                    }
                }
                Some(Ok(Message::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                _ => return Ok(None),
            }
        }
    })
    .await
    .context("the flooding socket stayed open")??;
    ensure!(closed == Some(1008), "closed with {closed:?}");
    ensure!(answered == allowed, "{answered} of {allowed} answered");

    // A bridge's socket, spoken by hand: a batch is acknowledged, a gap is
    // a 409 naming the sequence expected, a batch sent again stores nothing.
    let dir = tempfile::tempdir()?;
    let credentials = crate::live::enroll_into(app, &token, dir.path()).await?;
    let oven = crate::lab::new_instrument(app, &token, "Hand oven", "incubator", "idle").await?;
    let mut bridge = connect(
        app,
        &[
            ("x-api-key", &credentials.api_key),
            ("sec-websocket-protocol", "antevus.live.v1"),
        ],
    )
    .await?;
    let stream = uuid::Uuid::from_bytes(rand::random()).to_string();
    let reading = |seq: u64| {
        json!({"seq": seq, "kind": "reading", "instrumentId": oven, "metric": "temperature",
               "value": 37.0 + seq as f64 / 10.0, "unit": "C", "recordedAt": "2026-11-26T10:00:00Z"})
    };
    let batch = |records: Vec<Value>| {
        json!({"type": "batch", "batch": {"stream": stream, "records": records,
               "heartbeat": {"queueDepth": 0, "instruments": [{"id": oven, "status": "running"}]}}})
    };
    send(&mut bridge, batch(vec![reading(1), reading(2)])).await?;
    let ack = until(&mut bridge, 10, "an ack", |m| m["type"] == "ack").await?;
    ensure!(ack["ack"]["acked"] == 2, "{ack}");
    ensure!(ack["ack"]["stored"] == 2, "{ack}");
    // The dashboard following everything saw both readings and the status.
    let seen = until(&mut socket, 10, "the readings", |m| m["type"] == "readings").await?;
    ensure!(seen["instrumentId"] == oven.to_string(), "{seen}");
    ensure!(
        seen["readings"].as_array().map(Vec::len) == Some(2),
        "{seen}"
    );
    until(&mut socket, 10, "the status", |m| {
        m["type"] == "status" && m["instrumentId"] == oven.to_string() && m["status"] == "running"
    })
    .await?;
    send(&mut bridge, batch(vec![reading(1), reading(2)])).await?;
    let again = until(&mut bridge, 10, "an ack", |m| m["type"] == "ack").await?;
    ensure!(again["ack"]["stored"] == 0, "{again}");
    ensure!(again["ack"]["duplicates"] == 2, "{again}");
    send(&mut bridge, batch(vec![reading(5)])).await?;
    let gap = until(&mut bridge, 10, "an error", |m| m["type"] == "error").await?;
    ensure!(gap["status"] == 409, "{gap}");
    ensure!(gap["error"]["code"] == "CONFLICT", "{gap}");
    ensure!(gap["error"]["details"][0]["message"] == "3", "{gap}");
    // A dashboard's message on a bridge socket is refused.
    send(&mut bridge, json!({"type": "subscribe", "all": true})).await?;
    until(&mut bridge, 10, "an error", |m| m["type"] == "error").await?;

    // The bridge's key is revoked: its next batch is refused and the socket
    // closed.
    let db = app.db().await?;
    let key: uuid::Uuid = db
        .query_one(
            "SELECT api_key_id FROM bridges WHERE id = $1",
            &[&credentials.bridge_id],
        )
        .await?
        .get(0);
    app.as_user(&token)
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/api-keys/{key}"),
            None,
        )
        .await?
        .expect_ok(200)?;
    send(&mut bridge, batch(vec![reading(3)])).await?;
    let refused = until(&mut bridge, 10, "an error", |m| m["type"] == "error").await?;
    ensure!(refused["status"] == 401, "{refused}");
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match bridge.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .context("the socket stayed open")?;
    ensure!(closed == Some(4401), "closed with {closed:?}");
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM readings WHERE instrument_id = $1",
            &[&oven],
        )
        .await?
        .get(0);
    ensure!(stored == 2, "{stored} readings stored");
    Ok(())
}

/// A TCP forwarder to the host whose connections can all be cut at once
/// (the network dropping under an open socket).
struct Link {
    listener: tokio::task::JoinHandle<()>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Link {
    async fn open(port: u16, to: String) -> anyhow::Result<Link> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = connections.clone();
        let listener = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = to.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                held.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(connection);
            }
        });
        Ok(Link {
            listener,
            connections,
        })
    }

    fn cut(self) {
        self.listener.abort();
        for connection in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            connection.abort();
        }
    }
}

async fn live_hub_agent_rides_out_a_dropped_connection(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    if spin_has_no_hub(app, &token).await? {
        return Ok(());
    }
    let freezer =
        id_of(&register(app, &token, json!({"name": "Freezer", "type": "freezer"})).await?)?;
    let dir = tempfile::tempdir()?;
    crate::live::enroll_into(app, &token, dir.path()).await?;
    let (instrument, instrument_port) =
        crate::live::Instrument::start(5, Duration::from_millis(20)).await?;
    let cloud_port = crate::stack::free_port()?;
    let metrics_port = crate::stack::free_port()?;
    let link = Link::open(cloud_port, crate::live::host_address(app)?).await?;
    let text = format!(
        "dir = {dir:?}\nurl = \"http://127.0.0.1:{cloud_port}\"\ntransport = \"websocket\"\n\
         metrics_listen = \"127.0.0.1:{metrics_port}\"\nheartbeat_secs = 1\nflush_ms = 20\n\
         [[instruments]]\ndriver = \"tcp\"\nid = \"{freezer}\"\naddress = \"127.0.0.1:{instrument_port}\"\n",
        dir = dir.path().display().to_string()
    );
    let config =
        edge_bridge::config::Config::parse(&text, |_| None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let agent = crate::live::InProcessAgent::start(config);
    let db = app.db().await?;
    crate::live::eventually(30, "readings through the hub", || async {
        Ok(crate::live::stored_counter(&db, &freezer).await?.len() >= 100)
    })
    .await?;
    // The network drops under the open socket and stays down: readings
    // wait on disk.
    link.cut();
    let before = instrument.acked().len();
    crate::live::eventually(30, "readings buffered while the hub is away", || async {
        let m = crate::live::metrics(metrics_port).await?;
        Ok(instrument.acked().len() >= before + 200 && m["edge_bridge_uplink_up"] == 0.0)
    })
    .await?;
    // It comes back: everything acknowledged to the instrument arrives, in
    // order, once (a batch whose acknowledgement was cut off is sent again
    // and stored once).
    let link = Link::open(cloud_port, crate::live::host_address(app)?).await?;
    let acked = instrument.acked();
    crate::live::eventually(60, "the backlog to arrive", || async {
        let stored: std::collections::HashSet<u64> = crate::live::stored_counter(&db, &freezer)
            .await?
            .into_iter()
            .collect();
        Ok(acked.iter().all(|id| stored.contains(id)))
    })
    .await?;
    let stored = crate::live::stored_counter(&db, &freezer).await?;
    ensure!(
        stored.windows(2).all(|w| w[0] < w[1]),
        "out of order or repeated"
    );
    let m = crate::live::metrics(metrics_port).await?;
    ensure!(m["edge_bridge_uplink_up"] == 1.0, "{m:?}");
    ensure!(m["edge_bridge_reconnects_total"] >= 1.0, "{m:?}");
    link.cut();
    agent.stop().await
}
