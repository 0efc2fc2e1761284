//! The live path over HTTP (the Spin transport), without an agent: batch
//! ingest stored once and in order, heartbeats, the downsampled readings,
//! and command outcomes that only move forward for their own bridge.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::client::TestApp;
use crate::lab::{id_of, register};
use crate::live::enrolled;
use uuid::Uuid;

crate::cases![
    live_batches_are_stored_once_in_order_and_gaps_refused,
    live_heartbeats_show_the_bridge_and_its_instruments,
    live_readings_downsample_by_bucket,
    live_commands_move_forward_only_for_their_bridge,
    live_instruments_are_bound_to_the_bridge_that_serves_them,
];

fn reading(seq: u64, instrument: &Uuid, metric: &str, value: f64, at: &str) -> Value {
    json!({"seq": seq, "kind": "reading", "instrumentId": instrument, "metric": metric,
           "value": value, "unit": "C", "recordedAt": at})
}

fn batch(stream: &str, records: Vec<Value>) -> Value {
    json!({"stream": stream, "records": records, "heartbeat": {"queueDepth": 0}})
}

async fn live_batches_are_stored_once_in_order_and_gaps_refused(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let (bridge, _dir) = enrolled(app, &token).await?;
    let key = bridge.api_key.as_str();
    let freezer =
        id_of(&register(app, &token, json!({"name": "Freezer A", "type": "freezer"})).await?)?;
    let stream = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
    let ingest = "/api/v1/bridges/ingest";

    let first = batch(
        &stream,
        (1..=3)
            .map(|n| {
                reading(
                    n,
                    &freezer,
                    "temperature",
                    -80.0 + n as f64,
                    "2026-11-26T10:00:00Z",
                )
            })
            .collect(),
    );
    let ack = app.as_key(key).post(ingest, &first).await?;
    let ack = ack.expect_ok(200)?.clone();
    ensure!(ack["acked"] == 3, "{ack}");
    ensure!(ack["stored"] == 3, "{ack}");
    ensure!(ack["duplicates"] == 0, "{ack}");
    // The same batch again (a lost acknowledgement): nothing stored twice.
    let again = app.as_key(key).post(ingest, &first).await?;
    let again = again.expect_ok(200)?.clone();
    ensure!(again["acked"] == 3, "{again}");
    ensure!(again["stored"] == 0, "{again}");
    ensure!(again["duplicates"] == 3, "{again}");
    // Overlapping: only the new ones.
    let overlap = batch(
        &stream,
        (3..=5)
            .map(|n| {
                reading(
                    n,
                    &freezer,
                    "temperature",
                    -80.0 + n as f64,
                    "2026-11-26T10:00:01Z",
                )
            })
            .collect(),
    );
    let overlap = app.as_key(key).post(ingest, &overlap).await?;
    let overlap = overlap.expect_ok(200)?.clone();
    ensure!(overlap["acked"] == 5, "{overlap}");
    ensure!(overlap["stored"] == 2, "{overlap}");
    ensure!(overlap["duplicates"] == 1, "{overlap}");
    // A gap is refused with where the stream continues, and stores nothing.
    let gap = batch(
        &stream,
        vec![reading(
            9,
            &freezer,
            "temperature",
            1.0,
            "2026-11-26T10:00:02Z",
        )],
    );
    let refused = app.as_key(key).post(ingest, &gap).await?;
    refused.expect_error(409, "CONFLICT")?;
    ensure!(
        refused.json["error"]["details"][0]["message"] == "6",
        "{}",
        refused.json
    );
    // A reading for an instrument of another organization (or none) is
    // rejected by name and acknowledged, so the queue moves on.
    let (_, other_token) = app.admin().await?;
    let theirs = id_of(
        &register(
            app,
            &other_token,
            json!({"name": "Theirs", "type": "freezer"}),
        )
        .await?,
    )?;
    let mixed = batch(
        &stream,
        vec![
            reading(6, &theirs, "temperature", 1.0, "2026-11-26T10:00:03Z"),
            reading(7, &freezer, "temperature", 2.0, "2026-11-26T10:00:03Z"),
        ],
    );
    let mixed = app.as_key(key).post(ingest, &mixed).await?;
    let mixed = mixed.expect_ok(200)?.clone();
    ensure!(mixed["acked"] == 7, "{mixed}");
    ensure!(mixed["stored"] == 1, "{mixed}");
    ensure!(mixed["rejected"][0]["seq"] == 6, "{mixed}");
    let db = app.db().await?;
    let theirs_stored: i64 = db
        .query_one(
            "SELECT count(*) FROM readings WHERE instrument_id = $1",
            &[&theirs],
        )
        .await?
        .get(0);
    ensure!(
        theirs_stored == 0,
        "another organization's instrument got a reading"
    );
    // Bad batches: 400 in the envelope, nothing stored.
    for bad in [
        batch(
            &stream,
            vec![reading(
                8,
                &freezer,
                "bad metric",
                1.0,
                "2026-11-26T10:00:04Z",
            )],
        ),
        batch(
            &stream,
            vec![
                reading(8, &freezer, "t", 1.0, "2026-11-26T10:00:04Z"),
                reading(10, &freezer, "t", 1.0, "2026-11-26T10:00:04Z"),
            ],
        ),
        batch(&stream, vec![reading(8, &freezer, "t", 1.0, "yesterday")]),
        json!({"stream": stream, "records": [], "heartbeat": {"queueDepth": 0}, "extra": 1}),
        json!({"stream": stream, "records": [], "heartbeat": {"queueDepth": 0,
               "instruments": [{"id": freezer, "status": "maintenance"}]}}),
    ] {
        app.as_key(key)
            .post(ingest, &bad)
            .await?
            .expect_error(400, "VALIDATION_ERROR")?;
    }
    let rows = db
        .query(
            "SELECT sequence, value FROM readings WHERE instrument_id = $1 ORDER BY sequence",
            &[&freezer],
        )
        .await?;
    let stored: Vec<(i64, f64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    ensure!(
        stored
            == vec![
                (1, -79.0),
                (2, -78.0),
                (3, -77.0),
                (4, -76.0),
                (5, -75.0),
                (7, 2.0)
            ],
        "{stored:?}"
    );
    // Only a bridge's key: a person, or another key, is refused.
    app.as_user(&token)
        .post(ingest, &first)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let made = app
        .as_user(&token)
        .post(
            "/api/v1/api-keys",
            &json!({"name": "script", "permissions": ["instruments:view", "instruments:control"]}),
        )
        .await?;
    let script_key = made.expect_ok(201)?["key"]
        .as_str()
        .context("key")?
        .to_owned();
    app.as_key(&script_key)
        .post(ingest, &first)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    app.as_key("ak_forged")
        .post(ingest, &first)
        .await?
        .expect_error(401, "AUTH_TOKEN_INVALID")?;
    let _ = admin;
    Ok(())
}

async fn live_heartbeats_show_the_bridge_and_its_instruments(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let (bridge, _dir) = enrolled(app, &token).await?;
    let incubator = id_of(
        &register(
            app,
            &token,
            json!({"name": "Incubator", "type": "incubator"}),
        )
        .await?,
    )?;
    let heartbeat = json!({"stream": uuid::Builder::from_random_bytes(rand::random()).into_uuid(), "records": [], "heartbeat": {
        "version": "9.9.9", "hostname": "lab-2", "queueDepth": 17,
        "instruments": [{"id": incubator, "status": "running"}]}});
    app.as_key(&bridge.api_key)
        .post("/api/v1/bridges/ingest", &heartbeat)
        .await?
        .expect_ok(200)?;
    let listed = app.as_user(&token).get("/api/v1/bridges").await?;
    let item = listed.expect_ok(200)?["items"][0].clone();
    ensure!(item["online"] == true, "{item}");
    ensure!(item["version"] == "9.9.9", "{item}");
    ensure!(item["hostname"] == "lab-2", "{item}");
    ensure!(item["queueDepth"] == 17, "{item}");
    ensure!(item["connectedInstruments"] == json!([incubator]), "{item}");
    let status = app
        .as_user(&token)
        .get(&format!("/api/v1/instruments/{incubator}/status"))
        .await?;
    let status = status.expect_ok(200)?.clone();
    ensure!(status["status"] == "running", "{status}");
    ensure!(status["reachable"] == true, "{status}");
    // The change is in the trail once; the same heartbeat again adds nothing.
    app.as_key(&bridge.api_key)
        .post("/api/v1/bridges/ingest", &heartbeat)
        .await?
        .expect_ok(200)?;
    let db = app.db().await?;
    let events: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'INSTRUMENT_STATUS_CHANGED' \
               AND record_id = $2 AND new_values->>'status' = 'running'",
            &[&admin.organization_id, &incubator],
        )
        .await?
        .get(0);
    ensure!(events == 1, "{events} status events");
    Ok(())
}

async fn live_readings_downsample_by_bucket(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let (bridge, _dir) = enrolled(app, &token).await?;
    let centrifuge = id_of(
        &register(
            app,
            &token,
            json!({"name": "Spinner", "type": "centrifuge"}),
        )
        .await?,
    )?;
    let stream = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
    // Two minutes of readings, one every 10 s: values 0..11 for speed.
    let records: Vec<Value> = (0..12)
        .map(|i| {
            let at = format!("2026-11-26T10:{:02}:{:02}Z", i / 6, (i % 6) * 10);
            let mut r = reading(i + 1, &centrifuge, "speedRpm", i as f64, &at);
            r["unit"] = json!("rpm");
            r
        })
        .collect();
    app.as_key(&bridge.api_key)
        .post("/api/v1/bridges/ingest", &batch(&stream, records))
        .await?
        .expect_ok(200)?;
    let path = format!(
        "/api/v1/instruments/{centrifuge}/readings?from=2026-11-26T10:00:00Z&to=2026-11-26T10:02:00Z&bucket=1m"
    );
    let series = app.as_user(&token).get(&path).await?;
    let series = series.expect_ok(200)?.clone();
    let speed = &series["series"][0];
    ensure!(speed["metric"] == "speedRpm", "{series}");
    ensure!(speed["unit"] == "rpm", "{series}");
    let points = speed["points"].as_array().context("points")?;
    ensure!(points.len() == 2, "{series}");
    ensure!(points[0]["t"] == "2026-11-26T10:00:00Z", "{series}");
    ensure!(points[0]["min"] == 0.0, "{series}");
    ensure!(points[0]["max"] == 5.0, "{series}");
    ensure!(points[0]["avg"] == 2.5, "{series}");
    ensure!(points[0]["count"] == 6, "{series}");
    ensure!(points[1]["min"] == 6.0, "{series}");
    ensure!(points[1]["max"] == 11.0, "{series}");
    // Narrowed to a metric that has no readings: empty.
    let none = app
        .as_user(&token)
        .get(&format!("{path}&metric=temperature"))
        .await?;
    ensure!(none.expect_ok(200)?["series"] == json!([]));
    for bad in [
        "bucket=0",
        "bucket=5x",
        "from=2026-11-26T10:00:00Z&to=2026-11-26T09:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2026-11-26T00:00:00Z&bucket=1d",
        "from=2026-11-26T00:00:00Z&to=2026-11-27T00:00:00Z&bucket=1s",
        "metric=no%20such",
        "colour=blue",
    ] {
        app.as_user(&token)
            .get(&format!("/api/v1/instruments/{centrifuge}/readings?{bad}"))
            .await?
            .expect_error(400, "VALIDATION_ERROR")
            .with_context(|| bad.to_owned())?;
    }
    // Another organization sees no such instrument.
    let (_, other) = app.admin().await?;
    app.as_user(&other)
        .get(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

async fn live_commands_move_forward_only_for_their_bridge(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let (ours, _d1) = enrolled(app, &token).await?;
    let (other, _d2) = enrolled(app, &token).await?;
    let hplc = crate::lab::new_instrument(app, &token, "HPLC", "hplc", "idle").await?;
    let ingest = "/api/v1/bridges/ingest";
    let stream = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
    let other_stream = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
    let heartbeat = |stream: &str, records: Vec<Value>| {
        json!({"stream": stream, "records": records,
               "heartbeat": {"queueDepth": 0, "instruments": [{"id": hplc, "status": "idle"}]}})
    };
    app.as_key(&ours.api_key)
        .post(ingest, &heartbeat(&stream, vec![]))
        .await?
        .expect_ok(200)?;
    let queued = app
        .as_user(&token)
        .header("idempotency-key", "home-1")
        .post(
            &format!("/api/v1/instruments/{hplc}/control"),
            &json!({"command": "home"}),
        )
        .await?;
    let command = id_of(queued.expect_ok(202)?)?;
    let poll = "/api/v1/bridges/commands";
    let handed = app.as_key(&ours.api_key).get(poll).await?;
    ensure!(handed.expect_ok(200)?["items"][0]["id"] == command.to_string());
    // Not again while it may still be on its way; again once 30 s passed
    // without an acknowledgement.
    let again = app.as_key(&ours.api_key).get(poll).await?;
    ensure!(again.expect_ok(200)?["items"] == json!([]));
    let db = app.db().await?;
    db.execute(
        "UPDATE instrument_commands SET sent_at = sent_at - interval '31 seconds' WHERE id = $1",
        &[&command],
    )
    .await?;
    let redelivered = app.as_key(&ours.api_key).get(poll).await?;
    ensure!(redelivered.expect_ok(200)?["items"][0]["id"] == command.to_string());
    let outcome = |seq: u64, state: &str| {
        let mut o = json!({"seq": seq, "kind": "commandOutcome", "commandId": command, "state": state,
                           "at": "2026-11-26T10:00:00Z"});
        if state == "completed" {
            o["result"] = json!({"homed": true});
        }
        o
    };
    // Another bridge of the organization cannot report on it.
    let theirs = app
        .as_key(&other.api_key)
        .post(
            ingest,
            &heartbeat(&other_stream, vec![outcome(1, "completed")]),
        )
        .await?;
    ensure!(
        theirs.expect_ok(200)?["rejected"][0]["seq"] == 1,
        "{}",
        theirs.json
    );
    // Its own bridge moves it forward; never back.
    let done = app
        .as_key(&ours.api_key)
        .post(ingest, &heartbeat(&stream, vec![outcome(1, "completed")]))
        .await?;
    ensure!(done.expect_ok(200)?["stored"] == 1, "{}", done.json);
    let back = app
        .as_key(&ours.api_key)
        .post(
            ingest,
            &heartbeat(&stream, vec![outcome(2, "acknowledged")]),
        )
        .await?;
    ensure!(
        back.expect_ok(200)?["rejected"][0]["seq"] == 2,
        "{}",
        back.json
    );
    let status: String = db
        .query_one(
            "SELECT status FROM instrument_commands WHERE id = $1",
            &[&command],
        )
        .await?
        .get(0);
    ensure!(status == "completed", "{status}");
    // A bridge never takes an instrument out of maintenance.
    db.execute(
        "UPDATE instruments SET status = 'maintenance' WHERE id = $1",
        &[&hplc],
    )
    .await?;
    app.as_key(&ours.api_key)
        .post(ingest, &heartbeat(&stream, vec![]))
        .await?
        .expect_ok(200)?;
    let status: String = db
        .query_one("SELECT status FROM instruments WHERE id = $1", &[&hplc])
        .await?
        .get(0);
    ensure!(status == "maintenance", "{status}");
    // Readings are never edited by the application.
    crate::audit::refused_as_app(app, "UPDATE readings SET value = 0", json!([])).await
}

/// One bridge serves an instrument: the first to report it; another
/// bridge of the organization can neither report for it nor take its
/// commands until an administrator moves it.
async fn live_instruments_are_bound_to_the_bridge_that_serves_them(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let (first, _d1) = enrolled(app, &token).await?;
    let (second, _d2) = enrolled(app, &token).await?;
    let freezer =
        id_of(&register(app, &token, json!({"name": "Freezer B", "type": "freezer"})).await?)?;
    let ingest = "/api/v1/bridges/ingest";
    let new_stream = || {
        uuid::Builder::from_random_bytes(rand::random())
            .into_uuid()
            .to_string()
    };
    let (first_stream, second_stream) = (new_stream(), new_stream());
    let report = |stream: &str, seq: u64, status: &str| {
        json!({"stream": stream,
               "records": [reading(seq, &freezer, "temperature", -79.5, "2026-11-26T10:00:00Z")],
               "heartbeat": {"queueDepth": 0, "instruments": [{"id": freezer, "status": status}]}})
    };
    let bridge_of = || async {
        let shown = app
            .as_user(&token)
            .get(&format!("/api/v1/instruments/{freezer}"))
            .await?;
        anyhow::Ok(shown.expect_ok(200)?["bridgeId"].clone())
    };
    ensure!(bridge_of().await?.is_null(), "unbound at first");

    // The first to report it serves it, on the record.
    let ack = app
        .as_key(&first.api_key)
        .post(ingest, &report(&first_stream, 1, "idle"))
        .await?;
    ensure!(ack.expect_ok(200)?["stored"] == 1, "{}", ack.json);
    ensure!(bridge_of().await? == first.bridge_id.to_string());
    let db = app.db().await?;
    let bound: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_events WHERE chain_id = $1 AND event_type = 'INSTRUMENT_BOUND_TO_BRIDGE' \
               AND record_id = $2 AND new_values->>'bridgeId' = $3",
            &[&admin.organization_id, &freezer, &first.bridge_id.to_string()],
        )
        .await?
        .get(0);
    ensure!(bound == 1, "{bound} binding events");

    // Another bridge: its readings are rejected, its status ignored, and it
    // does not list the instrument as its own.
    let refused = app
        .as_key(&second.api_key)
        .post(ingest, &report(&second_stream, 1, "error"))
        .await?;
    let refused = refused.expect_ok(200)?.clone();
    ensure!(refused["stored"] == 0, "{refused}");
    ensure!(
        refused["rejected"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("another bridge")),
        "{refused}"
    );
    let status: String = db
        .query_one("SELECT status FROM instruments WHERE id = $1", &[&freezer])
        .await?
        .get(0);
    ensure!(status == "idle", "{status}");
    let listed = app.as_user(&token).get("/api/v1/bridges").await?;
    let listed = listed.expect_ok(200)?.clone();
    let connected = |id: Uuid| {
        listed["items"]
            .as_array()
            .and_then(|items| items.iter().find(|b| b["id"] == id.to_string()))
            .map(|b| b["connectedInstruments"].clone())
    };
    ensure!(
        connected(first.bridge_id) == Some(json!([freezer])),
        "{listed}"
    );
    ensure!(connected(second.bridge_id) == Some(json!([])), "{listed}");

    // Its commands go to the bridge that serves it only.
    let queued = app
        .as_user(&token)
        .header("idempotency-key", "defrost-1")
        .post(
            &format!("/api/v1/instruments/{freezer}/control"),
            &json!({"command": "defrost"}),
        )
        .await?;
    let command = id_of(queued.expect_ok(202)?)?;
    let poll = "/api/v1/bridges/commands";
    let theirs = app.as_key(&second.api_key).get(poll).await?;
    ensure!(
        theirs.expect_ok(200)?["items"] == json!([]),
        "{}",
        theirs.json
    );
    let ours = app.as_key(&first.api_key).get(poll).await?;
    ensure!(
        ours.expect_ok(200)?["items"][0]["id"] == command.to_string(),
        "{}",
        ours.json
    );

    // An administrator moves it (an update of the instrument, audited with
    // the old and new bridge); a bridge the organization lacks is refused.
    let shown = app
        .as_user(&token)
        .get(&format!("/api/v1/instruments/{freezer}"))
        .await?;
    let version = shown.expect_ok(200)?["version"].clone();
    let nowhere = app
        .as_user(&token)
        .header("if-match", &format!("\"{version}\""))
        .put(
            &format!("/api/v1/instruments/{freezer}"),
            &json!({"bridgeId": Uuid::from_u128(7)}),
        )
        .await?;
    nowhere.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(nowhere.detail_fields() == ["bridgeId"], "{}", nowhere.json);
    let moved = app
        .as_user(&token)
        .header("if-match", &format!("\"{version}\""))
        .put(
            &format!("/api/v1/instruments/{freezer}"),
            &json!({"bridgeId": second.bridge_id}),
        )
        .await?;
    ensure!(
        moved.expect_ok(200)?["bridgeId"] == second.bridge_id.to_string(),
        "{}",
        moved.json
    );
    let audited = db
        .query_one(
            "SELECT old_values->>'bridgeId', new_values->>'bridgeId' FROM audit_events \
             WHERE record_id = $1 AND event_type = 'INSTRUMENT_UPDATED'",
            &[&freezer],
        )
        .await?;
    ensure!(audited.get::<_, Option<String>>(0) == Some(first.bridge_id.to_string()));
    ensure!(audited.get::<_, Option<String>>(1) == Some(second.bridge_id.to_string()));
    let now_theirs = app
        .as_key(&second.api_key)
        .post(ingest, &report(&second_stream, 2, "idle"))
        .await?;
    ensure!(
        now_theirs.expect_ok(200)?["stored"] == 1,
        "{}",
        now_theirs.json
    );
    let no_longer = app
        .as_key(&first.api_key)
        .post(ingest, &report(&first_stream, 2, "idle"))
        .await?;
    ensure!(
        no_longer.expect_ok(200)?["stored"] == 0,
        "{}",
        no_longer.json
    );
    Ok(())
}
