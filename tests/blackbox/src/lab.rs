//! Cases for an instrument's own record: detail, update, configuration,
//! removal, status, control commands and the sorted list; and the helpers
//! other lab areas share.

use anyhow::{Context as _, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use shared::auth::Role;
use uuid::Uuid;

use crate::client::TestApp;

crate::cases![
    instrument_detail_update_and_optimistic_concurrency,
    instrument_configuration_is_checked_against_its_type,
    instrument_removal_needs_a_reason_spares_active_runs_and_keeps_history,
    instrument_status_reports_runs_readings_and_calibration,
    control_commands_are_idempotent_and_checked_against_state,
    instrument_list_sorts_and_pages_in_the_order_asked,
];

/// Registers an instrument through the API; returns it.
pub async fn register(app: &TestApp, token: &str, body: Value) -> anyhow::Result<Value> {
    let resp = app
        .as_user(token)
        .post("/api/v1/instruments", &body)
        .await?;
    Ok(resp.expect_ok(201)?.clone())
}

/// Registers an instrument named `name` of `kind` in `status`; its id.
pub async fn new_instrument(
    app: &TestApp,
    token: &str,
    name: &str,
    kind: &str,
    status: &str,
) -> anyhow::Result<Uuid> {
    id_of(
        &register(
            app,
            token,
            json!({"name": name, "type": kind, "status": status}),
        )
        .await?,
    )
}

/// The `id` of a reply's object, as the UUID it must be.
pub fn id_of(value: &Value) -> anyhow::Result<Uuid> {
    value["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .with_context(|| format!("no UUID id in {value}"))
}

pub async fn count(app: &TestApp, sql: &str, id: &Uuid) -> anyhow::Result<i64> {
    let db = app.db().await?;
    Ok(db.query_one(sql, &[&id]).await?.get(0))
}

async fn instrument_detail_update_and_optimistic_concurrency(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let created = register(
        app,
        &token,
        json!({"name": "HPLC 1", "type": "hplc", "status": "idle", "serialNumber": "H-1",
               "configuration": {"flowRateMlMin": 1.0}}),
    )
    .await?;
    let id = id_of(&created)?;
    let path = format!("/api/v1/instruments/{id}");

    let got = app.as_user(&token).get(&path).await?;
    ensure!(got.expect_ok(200)? == &created, "{}", got.json);
    ensure!(got.headers["etag"] == "\"1\"", "{:?}", got.headers);

    // No version: 428, nothing changes.
    app.as_user(&token)
        .put(&path, &json!({"name": "HPLC A"}))
        .await?
        .expect_error(428, "PRECONDITION_REQUIRED")?;
    // The right version: applied, version and ETag move on.
    let change = json!({"name": "HPLC A", "location": "Lab 2",
                        "configuration": {"flowRateMlMin": 0.5, "columnType": "C18"}});
    let resp = app
        .as_user(&token)
        .header("if-match", "\"1\"")
        .put(&path, &change)
        .await?;
    let updated = resp.expect_ok(200)?.clone();
    ensure!(updated["name"] == "HPLC A", "{updated}");
    ensure!(updated["version"] == 2, "{updated}");
    ensure!(updated["location"] == "Lab 2", "{updated}");
    ensure!(
        updated["serialNumber"] == "H-1",
        "untouched fields stay: {updated}"
    );
    ensure!(resp.headers["etag"] == "\"2\"");
    // A second editor still holding version 1 is refused, told the current one.
    let stale = app
        .as_user(&token)
        .header("if-match", "\"1\"")
        .put(&path, &json!({"name": "HPLC B"}))
        .await?;
    stale.expect_error(412, "PRECONDITION_FAILED")?;
    ensure!(stale.headers["etag"] == "\"2\"");
    // `version` in the body works too; null clears an optional field.
    let resp = app
        .as_user(&token)
        .put(&path, &json!({"version": 2, "location": null}))
        .await?;
    let cleared = resp.expect_ok(200)?;
    ensure!(cleared["location"].is_null(), "{cleared}");
    ensure!(cleared["version"] == 3, "{cleared}");
    // Bad input: named fields, nothing changes.
    for (body, field) in [
        (json!({"version": 3, "colour": "red"}), "colour"),
        (json!({"version": 3, "status": "running"}), "status"),
        (json!({"version": 3, "status": "asleep"}), "status"),
        (json!({"version": 3, "name": ""}), "name"),
        (json!({"version": 0}), "version"),
        (
            json!({"version": 3, "configuration": {"flowRateMlMin": "fast"}}),
            "configuration.flowRateMlMin",
        ),
    ] {
        let resp = app.as_user(&token).put(&path, &body).await?;
        resp.expect_error(400, "VALIDATION_ERROR")?;
        ensure!(
            resp.detail_fields().iter().any(|f| f == field),
            "{body}: {}",
            resp.json
        );
    }
    app.as_user(&token)
        .header("if-match", "nonsense")
        .put(&path, &json!({"name": "x"}))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let now = app.as_user(&token).get(&path).await?;
    ensure!(now.expect_ok(200)?["version"] == 3, "{}", now.json);

    // The update is audited with old and new values of changed fields only.
    let db = app.db().await?;
    let row = db
        .query_one(
            "SELECT old_values, new_values FROM audit_events WHERE record_id = $1 \
             AND event_type = 'INSTRUMENT_UPDATED' ORDER BY created_at LIMIT 1",
            &[&id],
        )
        .await?;
    let (old, new): (Value, Value) = (row.get(0), row.get(1));
    ensure!(old["name"] == "HPLC 1", "{old} {new}");
    ensure!(new["name"] == "HPLC A", "{old} {new}");
    ensure!(
        new.get("serialNumber").is_none(),
        "unchanged fields are not recorded: {new}"
    );

    // Permissions, isolation, unknown ids.
    let (_, tech) = app.member(admin.organization_id, Role::Technician).await?;
    app.as_user(&tech)
        .header("if-match", "\"3\"")
        .put(&path, &json!({"name": "x"}))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    app.as_user(&tech).get(&path).await?.expect_ok(200)?;
    let (_, stranger) = app.admin().await?;
    app.as_user(&stranger)
        .get(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&stranger)
        .header("if-match", "\"3\"")
        .put(&path, &json!({"name": "x"}))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&token)
        .get("/api/v1/instruments/not-a-uuid")
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&token)
        .get(&format!("{path}/nothing-here"))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&token)
        .send(Method::PATCH, &path, None)
        .await?
        .expect_error(405, "METHOD_NOT_ALLOWED")?;
    Ok(())
}

async fn instrument_configuration_is_checked_against_its_type(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    let before = app.as_user(&token).get("/api/v1/instruments").await?;
    let resp = app.as_user(&token).post("/api/v1/instruments", &json!({"name": "Reader", "type": "plate_reader",
                    "configuration": {"wells": 97, "readMode": "smell", "rpm": 3,
                                      "qcThresholds": {"zPrime": {"warn": 0.1, "fail": 0.6}, "ntcMinCt": {}}},
                    "calibration": {"dueAt": "soon", "colour": "red"}}))
        .await?;
    resp.expect_error(400, "VALIDATION_ERROR")?;
    let mut fields = resp.detail_fields();
    fields.sort();
    ensure!(
        fields
            == [
                "calibration.colour",
                "calibration.dueAt",
                "configuration.qcThresholds.ntcMinCt",
                "configuration.qcThresholds.zPrime",
                "configuration.readMode",
                "configuration.rpm",
                "configuration.wells",
            ],
        "{}",
        resp.json
    );
    let after = app.as_user(&token).get("/api/v1/instruments").await?;
    ensure!(
        before.json["data"] == after.json["data"],
        "nothing was created"
    );
    // The same document is fine for the type it belongs to.
    let ok = register(
        app,
        &token,
        json!({"name": "Reader", "type": "plate_reader",
               "configuration": {"wells": 384, "readMode": "fluorescence", "wavelengthNm": 485,
                                 "qcThresholds": {"zPrime": {"warn": 0.6, "fail": 0.3}}},
               "calibration": {"dueAt": "2027-06-01T00:00:00Z", "standard": "NIST 930e"}}),
    )
    .await?;
    ensure!(ok["calibrationDueAt"] == "2027-06-01T00:00:00Z", "{ok}");
    Ok(())
}

async fn instrument_removal_needs_a_reason_spares_active_runs_and_keeps_history(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let body =
        json!({"name": "Freezer", "type": "freezer", "status": "online", "serialNumber": "F-9"});
    let created = register(app, &token, body.clone()).await?;
    let id = id_of(&created)?;
    let path = format!("/api/v1/instruments/{id}");
    let db = app.db().await?;
    db.execute(
        "INSERT INTO runs (organization_id, instrument_id, status) VALUES ($1, $2, 'running')",
        &[&admin.organization_id, &id],
    )
    .await?;
    let reason = json!({"reason": "Decommissioned after compressor failure"});
    app.as_user(&token)
        .json(Method::DELETE, &path, &reason)
        .await?
        .expect_error(409, "CONFLICT")?;
    db.execute(
        "UPDATE runs SET status = 'completed' WHERE instrument_id = $1",
        &[&id],
    )
    .await?;
    for bad in [json!({}), json!({"reason": "  "})] {
        app.as_user(&token)
            .json(Method::DELETE, &path, &bad)
            .await?
            .expect_error(400, "VALIDATION_ERROR")?;
    }
    let (_, scientist) = app.member(admin.organization_id, Role::Scientist).await?;
    app.as_user(&scientist)
        .json(Method::DELETE, &path, &reason)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let removed = app
        .as_user(&token)
        .json(Method::DELETE, &path, &reason)
        .await?;
    ensure!(
        removed.expect_ok(200)?["deletedAt"].is_string(),
        "{}",
        removed.json
    );
    // History stays readable; the list and updates no longer see it.
    let got = app.as_user(&token).get(&path).await?;
    ensure!(got.expect_ok(200)?["deletedAt"].is_string());
    let list = app.as_user(&token).get("/api/v1/instruments").await?;
    ensure!(list.expect_ok(200)?["items"] == json!([]), "{}", list.json);
    app.as_user(&token)
        .header("if-match", "\"2\"")
        .put(&path, &json!({"name": "x"}))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    app.as_user(&token)
        .json(Method::DELETE, &path, &reason)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    let runs = count(
        app,
        "SELECT count(*) FROM runs WHERE instrument_id = $1",
        &id,
    )
    .await?;
    ensure!(runs == 1, "runs are kept");
    // The serial number is free for a replacement.
    register(app, &token, body).await?;
    let audited = count(
        app,
        "SELECT count(*) FROM audit_events WHERE record_id = $1 AND event_type = 'INSTRUMENT_DELETED' \
         AND reason = 'Decommissioned after compressor failure'",
        &id,
    )
    .await?;
    ensure!(audited == 1);
    Ok(())
}

async fn instrument_status_reports_runs_readings_and_calibration(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let created = register(
        app,
        &token,
        json!({"name": "Incubator", "type": "incubator", "status": "online",
               "calibration": {"dueAt": "2020-01-01T00:00:00Z"}}),
    )
    .await?;
    let id = id_of(&created)?;
    let path = format!("/api/v1/instruments/{id}/status");
    let status = app.as_user(&token).get(&path).await?;
    let data = status.expect_ok(200)?;
    ensure!(data["status"] == "online", "{data}");
    ensure!(data["reachable"] == false, "{data}");
    ensure!(data["activeRun"].is_null(), "{data}");
    ensure!(data["readings"] == json!({}), "{data}");
    ensure!(data["calibrationOverdue"] == true, "{data}");
    ensure!(data["pendingCommands"] == 0, "{data}");
    let db = app.db().await?;
    db.execute(
        "UPDATE instruments SET last_seen_at = now() WHERE id = $1",
        &[&id],
    )
    .await?;
    db.execute(
        "INSERT INTO readings (organization_id, instrument_id, metric, value, unit, recorded_at) VALUES \
         ($1, $2, 'temperature', 36.9, 'C', now() - interval '2 minutes'), \
         ($1, $2, 'temperature', 37.1, 'C', now() - interval '1 minute'), \
         ($1, $2, 'co2', 5.0, '%', now() - interval '3 minutes'), \
         ($1, $2, 'humidity', 90, '%', now() - interval '3 hours')",
        &[&admin.organization_id, &id],
    )
    .await?;
    db.execute(
        "INSERT INTO runs (organization_id, instrument_id, status, name, started_at) \
         VALUES ($1, $2, 'running', 'Culture 7', now())",
        &[&admin.organization_id, &id],
    )
    .await?;
    let data = app
        .as_user(&token)
        .get(&path)
        .await?
        .expect_ok(200)?
        .clone();
    ensure!(data["reachable"] == true, "{data}");
    ensure!(data["activeRun"]["name"] == "Culture 7", "{data}");
    ensure!(
        data["readings"]["temperature"]["value"] == 37.1,
        "latest value per metric within the hour: {data}"
    );
    ensure!(
        data["readings"]["co2"]["unit"] == "%",
        "latest value per metric within the hour: {data}"
    );
    ensure!(
        data["readings"].get("humidity").is_none(),
        "latest value per metric within the hour: {data}"
    );
    let (_, guest) = app.member(admin.organization_id, Role::Guest).await?;
    app.as_user(&guest).get(&path).await?.expect_ok(200)?;
    let (_, stranger) = app.admin().await?;
    app.as_user(&stranger)
        .get(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

async fn control_commands_are_idempotent_and_checked_against_state(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let centrifuge = register(
        app,
        &token,
        json!({"name": "Spin 1", "type": "centrifuge", "status": "idle"}),
    )
    .await?;
    let id = id_of(&centrifuge)?;
    let path = format!("/api/v1/instruments/{id}/control");
    let speed = json!({"command": "set_speed", "parameters": {"rpm": 3000}});
    app.as_user(&token)
        .post(&path, &speed)
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let key = [("idempotency-key", "k-1")];
    let first = app
        .as_user(&token)
        .headers(&key)
        .post(&path, &speed)
        .await?;
    let command = first.expect_ok(202)?.clone();
    ensure!(command["status"] == "queued", "{command}");
    ensure!(command["command"] == "set_speed", "{command}");
    ensure!(command["parameters"]["rpm"] == 3000, "{command}");
    let again = app
        .as_user(&token)
        .headers(&key)
        .post(&path, &speed)
        .await?;
    ensure!(
        again.expect_ok(202)?["id"] == command["id"],
        "{}",
        again.json
    );
    ensure!(again.headers["idempotent-replayed"] == "true");
    let other = json!({"command": "set_speed", "parameters": {"rpm": 4000}});
    app.as_user(&token)
        .headers(&key)
        .post(&path, &other)
        .await?
        .expect_error(409, "CONFLICT")?;
    // Concurrent retries of one key make one command.
    let retrying = app.as_user(&token).header("idempotency-key", "k-burst");
    let burst = futures::future::join_all((0..6).map(|_| retrying.post(&path, &speed))).await;
    let mut ids = std::collections::HashSet::new();
    for resp in burst {
        ids.insert(resp?.expect_ok(202)?["id"].clone());
    }
    ensure!(ids.len() == 1, "one command for one key: {ids:?}");

    // Bad commands and parameters are named; state conflicts are 409.
    for (body, field) in [
        (json!({"command": "fly"}), "command"),
        (
            json!({"command": "set_speed", "parameters": {"rpm": 0}}),
            "parameters.rpm",
        ),
        (json!({"command": "set_speed"}), "parameters.rpm"),
        (
            json!({"command": "home", "parameters": {"fast": true}}),
            "parameters.fast",
        ),
        (
            json!({"command": "home", "timeoutSeconds": 1}),
            "timeoutSeconds",
        ),
    ] {
        let resp = app
            .as_user(&token)
            .header("idempotency-key", "bad")
            .post(&path, &body)
            .await?;
        resp.expect_error(400, "VALIDATION_ERROR")?;
        ensure!(
            resp.detail_fields().iter().any(|f| f == field),
            "{body}: {}",
            resp.json
        );
    }
    app.as_user(&token)
        .header("idempotency-key", "k-stop")
        .post(&path, &json!({"command": "stop"}))
        .await?
        .expect_error(409, "CONFLICT")?;
    let db = app.db().await?;
    db.execute(
        "UPDATE instruments SET status = 'maintenance' WHERE id = $1",
        &[&id],
    )
    .await?;
    let refused = app
        .as_user(&token)
        .header("idempotency-key", "k-home")
        .post(&path, &json!({"command": "home"}))
        .await?;
    refused.expect_error(409, "CONFLICT")?;
    ensure!(
        refused.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("maintenance")),
        "{}",
        refused.json
    );
    let (_, viewer) = app.member(admin.organization_id, Role::Viewer).await?;
    app.as_user(&viewer)
        .header("idempotency-key", "k-v")
        .post(&path, &speed)
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;

    // Listed newest first; past its deadline a queued command reads as expired.
    db.execute(
        "UPDATE instrument_commands SET expires_at = now() - interval '1 second' WHERE idempotency_key = 'k-1'",
        &[],
    )
    .await?;
    let list = app
        .as_user(&viewer)
        .get(&format!("/api/v1/instruments/{id}/commands"))
        .await?;
    let items = list.expect_ok(200)?["items"].clone();
    ensure!(items.as_array().map(Vec::len) == Some(2), "{items}");
    ensure!(items[1]["id"] == command["id"], "{items}");
    ensure!(items[1]["status"] == "expired", "{items}");
    let expired = app
        .as_user(&viewer)
        .get(&format!("/api/v1/instruments/{id}/commands?status=expired"))
        .await?;
    ensure!(expired.expect_ok(200)?["items"].as_array().map(Vec::len) == Some(1));
    app.as_user(&viewer)
        .get(&format!("/api/v1/instruments/{id}/commands?status=lost"))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let audited = count(
        app,
        "SELECT count(*) FROM audit_events WHERE event_type = 'INSTRUMENT_COMMAND_QUEUED' \
         AND (new_values->>'instrumentId')::uuid = $1",
        &id,
    )
    .await?;
    ensure!(
        audited == 2,
        "one event per queued command, none for replays: {audited}"
    );
    Ok(())
}

async fn instrument_list_sorts_and_pages_in_the_order_asked(app: &TestApp) -> anyhow::Result<()> {
    let (_, token) = app.admin().await?;
    // Names out of creation order, one with the cursor's separator in it.
    for name in ["Delta", "alpha|1", "Charlie", "Bravo", "Echo"] {
        register(app, &token, json!({"name": name, "type": "freezer"})).await?;
    }
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let token = token.as_str();
    let walk = |sort: &'static str| async move {
        let mut seen = Vec::new();
        let mut path = format!("/api/v1/instruments?sort={sort}&limit=2");
        loop {
            let resp = app.as_user(token).get(&path).await?;
            let page = resp.expect_ok(200)?;
            seen.extend(names(page));
            match page["nextCursor"].as_str() {
                Some(cursor) => {
                    path = format!("/api/v1/instruments?sort={sort}&limit=2&cursor={cursor}")
                }
                None => break,
            }
        }
        anyhow::Ok(seen)
    };
    let by_name = walk("name").await?;
    let mut expected = by_name.clone();
    expected.sort();
    ensure!(by_name == expected, "{by_name:?}");
    ensure!(by_name.len() == 5, "{by_name:?}");
    let mut descending = walk("-name").await?;
    descending.reverse();
    ensure!(descending == by_name, "{descending:?}");
    ensure!(walk("createdAt").await? == ["Delta", "alpha|1", "Charlie", "Bravo", "Echo"]);
    ensure!(walk("-createdAt").await? == ["Echo", "Bravo", "Charlie", "alpha|1", "Delta"]);
    // A bad order, or a cursor from another order, is refused.
    let bad = app
        .as_user(token)
        .get("/api/v1/instruments?sort=serialNumber")
        .await?;
    bad.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(bad.detail_fields() == ["sort"]);
    let first = app
        .as_user(token)
        .get("/api/v1/instruments?limit=1")
        .await?;
    let cursor = first.expect_ok(200)?["nextCursor"]
        .as_str()
        .context("a next page")?
        .to_owned();
    let mixed = app
        .as_user(token)
        .get(&format!("/api/v1/instruments?sort=name&cursor={cursor}"))
        .await?;
    mixed.expect_error(400, "VALIDATION_ERROR")?;
    ensure!(mixed.detail_fields() == ["cursor"]);
    Ok(())
}

/// Serves `app` on a free loopback port until the returned sender is
/// dropped (or sent to): a stand-in for a third party the system calls (a
/// webhook receiver, a mail provider). Returns its address.
pub async fn serve_local(
    app: axum::Router,
) -> anyhow::Result<(std::net::SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok((address, stop))
}
