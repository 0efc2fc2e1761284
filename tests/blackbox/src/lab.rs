//! Cases for the lab's resources: instruments, control commands, runs, run
//! data, QC and maintenance.

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
    runs_start_list_and_stop_with_legal_transitions_only,
    runs_list_filters_paginates_and_rejects_bad_queries,
    maintenance_schedules_completes_calibration_and_reports_overdue,
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

/// The `id` of a reply's object, as the UUID it must be.
pub fn id_of(value: &Value) -> anyhow::Result<Uuid> {
    value["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .with_context(|| format!("no UUID id in {value}"))
}

async fn put(
    app: &TestApp,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: &Value,
) -> anyhow::Result<crate::client::Resp> {
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
    app.as_user(token).headers(&headers).put(path, body).await
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
    put(app, &path, &token, None, &json!({"name": "HPLC A"}))
        .await?
        .expect_error(428, "PRECONDITION_REQUIRED")?;
    // The right version: applied, version and ETag move on.
    let resp = put(
        app,
        &path,
        &token,
        Some("\"1\""),
        &json!({"name": "HPLC A", "location": "Lab 2", "configuration": {"flowRateMlMin": 0.5, "columnType": "C18"}}),
    )
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
    let stale = put(
        app,
        &path,
        &token,
        Some("\"1\""),
        &json!({"name": "HPLC B"}),
    )
    .await?;
    stale.expect_error(412, "PRECONDITION_FAILED")?;
    ensure!(stale.headers["etag"] == "\"2\"");
    // `version` in the body works too; null clears an optional field.
    let resp = put(
        app,
        &path,
        &token,
        None,
        &json!({"version": 2, "location": null}),
    )
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
        let resp = put(app, &path, &token, None, &body).await?;
        resp.expect_error(400, "VALIDATION_ERROR")?;
        ensure!(
            resp.detail_fields().iter().any(|f| f == field),
            "{body}: {}",
            resp.json
        );
    }
    put(app, &path, &token, Some("nonsense"), &json!({"name": "x"}))
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
    put(app, &path, &tech, Some("\"3\""), &json!({"name": "x"}))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    app.as_user(&tech).get(&path).await?.expect_ok(200)?;
    let (_, stranger) = app.admin().await?;
    app.as_user(&stranger)
        .get(&path)
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    put(app, &path, &stranger, Some("\"3\""), &json!({"name": "x"}))
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
    put(app, &path, &token, Some("\"2\""), &json!({"name": "x"}))
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

/// A run started through the API on a fresh idle instrument of `kind`.
pub async fn started_run(
    app: &TestApp,
    manager: &str,
    token: &str,
    kind: &str,
) -> anyhow::Result<(Uuid, Value)> {
    let instrument = register(
        app,
        manager,
        json!({"name": format!("{kind} for runs"), "type": kind, "status": "idle"}),
    )
    .await?;
    let id = id_of(&instrument)?;
    let run = app
        .as_user(token)
        .post(
            "/api/v1/runs",
            &json!({"instrumentId": id, "name": "Assay 1", "protocol": "ELISA-v2"}),
        )
        .await?;
    Ok((id, run.expect_ok(201)?.clone()))
}

async fn runs_start_list_and_stop_with_legal_transitions_only(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let (_, scientist) = app.member(admin.organization_id, Role::Scientist).await?;
    let (instrument_id, run) = started_run(app, &token, &scientist, "plate_reader").await?;
    let run_id = id_of(&run)?;
    ensure!(run["status"] == "pending", "{run}");
    ensure!(run["name"] == "Assay 1", "{run}");
    ensure!(run["instrumentId"] == instrument_id.to_string(), "{run}");
    // The start command waits for the bridge.
    let commands = app
        .as_user(&token)
        .get(&format!("/api/v1/instruments/{instrument_id}/commands"))
        .await?;
    let items = commands.expect_ok(200)?["items"].clone();
    ensure!(items[0]["command"] == "start", "{items}");
    ensure!(items[0]["runId"] == run_id.to_string(), "{items}");
    ensure!(items[0]["parameters"]["protocol"] == "ELISA-v2", "{items}");
    // One active run per instrument.
    app.as_user(&scientist)
        .post("/api/v1/runs", &json!({"instrumentId": instrument_id}))
        .await?
        .expect_error(409, "CONFLICT")?;
    // Idempotent start: the same key gives the same run.
    let (other_id, _) = {
        let i = register(
            app,
            &token,
            json!({"name": "HPLC", "type": "hplc", "status": "online"}),
        )
        .await?;
        (id_of(&i)?, ())
    };
    let key = [("idempotency-key", "start-1")];
    let body = json!({"instrumentId": other_id});
    let first = app
        .as_user(&scientist)
        .headers(&key)
        .post("/api/v1/runs", &body)
        .await?;
    let first = first.expect_ok(201)?.clone();
    let again = app
        .as_user(&scientist)
        .headers(&key)
        .post("/api/v1/runs", &body)
        .await?;
    ensure!(again.expect_ok(201)?["id"] == first["id"]);
    ensure!(again.headers["idempotent-replayed"] == "true");

    let detail = app
        .as_user(&scientist)
        .get(&format!("/api/v1/runs/{run_id}"))
        .await?;
    ensure!(detail.expect_ok(200)?["id"] == run_id.to_string());
    ensure!(detail.headers["etag"] == "\"1\"");

    // Bad input and illegal transitions.
    for (body, field) in [
        (json!({}), "instrumentId"),
        (json!({"instrumentId": "nope"}), "instrumentId"),
        (
            json!({"instrumentId": "00000000-0000-4000-8000-000000000000"}),
            "instrumentId",
        ),
        (json!({"instrumentId": instrument_id, "name": ""}), "name"),
        (
            json!({"instrumentId": instrument_id, "metadata": []}),
            "metadata",
        ),
    ] {
        let resp = app.as_user(&scientist).post("/api/v1/runs", &body).await?;
        resp.expect_error(400, "VALIDATION_ERROR")?;
        ensure!(
            resp.detail_fields().iter().any(|f| f == field),
            "{body}: {}",
            resp.json
        );
    }
    let stop = format!("/api/v1/runs/{run_id}/stop");
    let resp = put(
        app,
        &stop,
        &scientist,
        None,
        &json!({"outcome": "completed"}),
    )
    .await?;
    resp.expect_error(409, "CONFLICT")?;
    put(
        app,
        &stop,
        &scientist,
        None,
        &json!({"outcome": "exploded"}),
    )
    .await?
    .expect_error(400, "VALIDATION_ERROR")?;
    let (_, viewer) = app.member(admin.organization_id, Role::Viewer).await?;
    put(app, &stop, &viewer, None, &json!({}))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    app.as_user(&viewer)
        .post("/api/v1/runs", &json!({"instrumentId": instrument_id}))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // Pending -> aborted withdraws the undelivered start command.
    let aborted = put(
        app,
        &stop,
        &scientist,
        None,
        &json!({"reason": "Wrong plate loaded"}),
    )
    .await?;
    let aborted = aborted.expect_ok(200)?.clone();
    ensure!(aborted["status"] == "aborted", "{aborted}");
    ensure!(aborted["endReason"] == "Wrong plate loaded", "{aborted}");
    ensure!(aborted["completedAt"].is_string(), "{aborted}");
    let items = app
        .as_user(&token)
        .get(&format!("/api/v1/instruments/{instrument_id}/commands"))
        .await?
        .expect_ok(200)?["items"]
        .clone();
    ensure!(items[0]["status"] == "failed", "{items}");
    put(app, &stop, &scientist, None, &json!({}))
        .await?
        .expect_error(409, "CONFLICT")?;

    // Running (the instrument acknowledged) -> aborted queues a stop command
    // and frees the instrument.
    let run2 = app
        .as_user(&scientist)
        .post("/api/v1/runs", &json!({"instrumentId": instrument_id}))
        .await?;
    let run2_id = id_of(run2.expect_ok(201)?)?;
    let db = app.db().await?;
    db.execute(
        "UPDATE runs SET status = 'running', started_at = now() WHERE id = $1",
        &[&run2_id],
    )
    .await?;
    db.execute(
        "UPDATE instruments SET status = 'running' WHERE id = $1",
        &[&instrument_id],
    )
    .await?;
    let stopped = put(
        app,
        &format!("/api/v1/runs/{run2_id}/stop"),
        &scientist,
        None,
        &json!({"reason": "Contamination"}),
    )
    .await?;
    ensure!(
        stopped.expect_ok(200)?["status"] == "aborted",
        "{}",
        stopped.json
    );
    let items = app
        .as_user(&token)
        .get(&format!("/api/v1/instruments/{instrument_id}/commands"))
        .await?
        .expect_ok(200)?["items"]
        .clone();
    ensure!(items[0]["command"] == "stop", "{items}");
    ensure!(items[0]["status"] == "queued", "{items}");
    let instrument = app
        .as_user(&token)
        .get(&format!("/api/v1/instruments/{instrument_id}"))
        .await?;
    ensure!(
        instrument.expect_ok(200)?["status"] == "idle",
        "{}",
        instrument.json
    );
    let audited = count(
        app,
        "SELECT count(*) FROM audit_events WHERE record_id = $1 AND event_type IN ('RUN_STARTED', 'RUN_STOPPED')",
        &run_id,
    )
    .await?;
    ensure!(audited == 2, "{audited}");
    let (_, stranger) = app.admin().await?;
    app.as_user(&stranger)
        .get(&format!("/api/v1/runs/{run_id}"))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    put(app, &stop, &stranger, None, &json!({}))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}

async fn runs_list_filters_paginates_and_rejects_bad_queries(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let (_, first) = started_run(app, &token, &token, "qpcr").await?;
    let (instrument_id, second) = started_run(app, &token, &token, "hplc").await?;
    let db = app.db().await?;
    db.execute(
        "UPDATE runs SET status = 'running', started_at = '2026-01-15T10:00:00Z' WHERE id = $1",
        &[&id_of(&second)?],
    )
    .await?;
    let list = app.as_user(&token).get("/api/v1/runs?limit=1").await?;
    let page1 = list.expect_ok(200)?.clone();
    ensure!(
        page1["items"][0]["id"] == second["id"],
        "newest first: {page1}"
    );
    let cursor = page1["nextCursor"].as_str().context("cursor")?;
    let page2 = app
        .as_user(&token)
        .get(&format!("/api/v1/runs?limit=1&cursor={cursor}"))
        .await?;
    let page2 = page2.expect_ok(200)?.clone();
    ensure!(page2["items"][0]["id"] == first["id"], "{page2}");
    ensure!(page2["nextCursor"].is_null(), "{page2}");
    for (query, expected) in [
        (format!("instrumentId={instrument_id}"), 1),
        ("status=running".to_owned(), 1),
        ("status=pending".to_owned(), 1),
        (format!("operatorId={}", admin.id), 2),
        (
            "startedFrom=2026-01-01T00:00:00Z&startedTo=2026-02-01T00:00:00Z".to_owned(),
            1,
        ),
        ("startedFrom=2026-03-01T00:00:00Z".to_owned(), 0),
    ] {
        let resp = app
            .as_user(&token)
            .get(&format!("/api/v1/runs?{query}"))
            .await?;
        let n = resp.expect_ok(200)?["items"].as_array().map(Vec::len);
        ensure!(n == Some(expected), "{query}: {}", resp.json);
    }
    for (query, field) in [
        ("status=lost", "status"),
        ("instrumentId=x", "instrumentId"),
        ("startedFrom=yesterday", "startedFrom"),
        (
            "startedFrom=2026-03-01T00:00:00Z&startedTo=2026-01-01T00:00:00Z",
            "startedTo",
        ),
        ("limit=0", "limit"),
        ("cursor=%%%", "cursor"),
    ] {
        let resp = app
            .as_user(&token)
            .get(&format!("/api/v1/runs?{query}"))
            .await?;
        resp.expect_error(400, "VALIDATION_ERROR")?;
        ensure!(
            resp.detail_fields().iter().any(|f| f == field),
            "{query}: {}",
            resp.json
        );
    }
    let (_, stranger) = app.admin().await?;
    let theirs = app.as_user(&stranger).get("/api/v1/runs").await?;
    ensure!(theirs.expect_ok(200)?["items"] == json!([]));
    let (_, guest) = app.member(admin.organization_id, Role::Guest).await?;
    app.as_user(&guest)
        .get("/api/v1/runs")
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    Ok(())
}

async fn maintenance_schedules_completes_calibration_and_reports_overdue(
    app: &TestApp,
) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let instrument = register(
        app,
        &token,
        json!({"name": "Spectro", "type": "spectrophotometer", "status": "idle",
               "configuration": {"calibrationIntervalDays": 90}}),
    )
    .await?;
    let id = id_of(&instrument)?;
    let path = format!("/api/v1/instruments/{id}/maintenance");
    let overdue = app
        .as_user(&token)
        .post(
            &path,
            &json!({"kind": "inspection", "scheduledFor": "2020-01-01T09:00:00Z"}),
        )
        .await?;
    ensure!(
        overdue.expect_ok(201)?["status"] == "overdue",
        "{}",
        overdue.json
    );
    let calibration = app.as_user(&token).post(&path, &json!({"kind": "calibration", "title": "Annual", "scheduledFor": "2099-01-01T09:00:00Z"}))
        .await?;
    let calibration = calibration.expect_ok(201)?.clone();
    ensure!(calibration["status"] == "scheduled", "{calibration}");
    ensure!(calibration["version"] == 1, "{calibration}");
    for (body, field) in [
        (
            json!({"kind": "polish", "scheduledFor": "2099-01-01T09:00:00Z"}),
            "kind",
        ),
        (
            json!({"kind": "repair", "scheduledFor": "soon"}),
            "scheduledFor",
        ),
        (json!({"kind": "repair"}), "scheduledFor"),
    ] {
        let resp = app.as_user(&token).post(&path, &body).await?;
        resp.expect_error(400, "VALIDATION_ERROR")?;
        ensure!(
            resp.detail_fields().iter().any(|f| f == field),
            "{body}: {}",
            resp.json
        );
    }
    let status = app
        .as_user(&token)
        .get(&format!("/api/v1/instruments/{id}/status"))
        .await?;
    ensure!(
        status.expect_ok(200)?["overdueMaintenance"] == 1,
        "{}",
        status.json
    );

    let (_, tech) = app.member(admin.organization_id, Role::Technician).await?;
    app.as_user(&tech)
        .post(
            &path,
            &json!({"kind": "repair", "scheduledFor": "2099-01-01T09:00:00Z"}),
        )
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    let item = format!("/api/v1/maintenance/{}", id_of(&calibration)?);
    put(app, &item, &tech, None, &json!({"status": "completed"}))
        .await?
        .expect_error(428, "PRECONDITION_REQUIRED")?;
    put(
        app,
        &item,
        &tech,
        Some("\"1\""),
        &json!({"calibration": {"standard": "NIST"}}),
    )
    .await?
    .expect_error(400, "VALIDATION_ERROR")?;
    put(
        app,
        &item,
        &tech,
        Some("\"1\""),
        &json!({"status": "completed", "calibration": {"colour": "red"}}),
    )
    .await?
    .expect_error(400, "VALIDATION_ERROR")?;
    let done = put(
        app,
        &item,
        &tech,
        Some("\"1\""),
        &json!({"status": "completed", "notes": "Within tolerance", "calibration": {"standard": "NIST 930e", "results": {"absorbanceError": 0.002}}}),
    )
    .await?;
    let done = done.expect_ok(200)?.clone();
    ensure!(done["status"] == "completed", "{done}");
    ensure!(done["completedAt"].is_string(), "{done}");
    ensure!(done["version"] == 2, "{done}");
    let updated = app
        .as_user(&token)
        .get(&format!("/api/v1/instruments/{id}"))
        .await?;
    let updated = updated.expect_ok(200)?.clone();
    ensure!(
        updated["calibration"]["standard"] == "NIST 930e",
        "{updated}"
    );
    ensure!(
        updated["calibration"]["lastCalibratedAt"].is_string(),
        "{updated}"
    );
    let due = time::OffsetDateTime::parse(
        updated["calibrationDueAt"].as_str().context("due")?,
        &time::format_description::well_known::Rfc3339,
    )?;
    let days = (due - time::OffsetDateTime::now_utc()).whole_days();
    ensure!(
        (89..=90).contains(&days),
        "due in the configured 90 days: {days}"
    );
    put(
        app,
        &item,
        &tech,
        Some("\"2\""),
        &json!({"status": "scheduled"}),
    )
    .await?
    .expect_error(409, "CONFLICT")?;
    put(app, &item, &tech, Some("\"1\""), &json!({"notes": "late"}))
        .await?
        .expect_error(412, "PRECONDITION_FAILED")?;
    let list = app.as_user(&tech).get(&path).await?;
    let items = list.expect_ok(200)?["items"].clone();
    ensure!(items.as_array().map(Vec::len) == Some(2), "{items}");
    ensure!(items[0]["status"] == "overdue", "{items}");
    let audited = count(
        app,
        "SELECT count(*) FROM audit_events WHERE record_id = $1 AND event_type = 'CALIBRATION_COMPLETED'",
        &id_of(&calibration)?,
    )
    .await?;
    ensure!(audited == 1);
    let (_, stranger) = app.admin().await?;
    put(app, &item, &stranger, Some("\"2\""), &json!({"notes": "x"}))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
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
