//! Cases for runs: starting one (a command for the bridge), the legal
//! transitions, the list's filters and pages.

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};
use shared::auth::Role;
use uuid::Uuid;

use crate::client::TestApp;
use crate::lab::{count, id_of, register};

crate::cases![
    runs_start_list_and_stop_with_legal_transitions_only,
    runs_list_filters_paginates_and_rejects_bad_queries,
];

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
    let resp = app
        .as_user(&scientist)
        .put(&stop, &json!({"outcome": "completed"}))
        .await?;
    resp.expect_error(409, "CONFLICT")?;
    app.as_user(&scientist)
        .put(&stop, &json!({"outcome": "exploded"}))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let (_, viewer) = app.member(admin.organization_id, Role::Viewer).await?;
    app.as_user(&viewer)
        .put(&stop, &json!({}))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    app.as_user(&viewer)
        .post("/api/v1/runs", &json!({"instrumentId": instrument_id}))
        .await?
        .expect_error(403, "AUTH_INSUFFICIENT_PERMISSIONS")?;
    // Pending -> aborted withdraws the undelivered start command.
    let aborted = app
        .as_user(&scientist)
        .put(&stop, &json!({"reason": "Wrong plate loaded"}))
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
    app.as_user(&scientist)
        .put(&stop, &json!({}))
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
    let stopped = app
        .as_user(&scientist)
        .put(
            &format!("/api/v1/runs/{run2_id}/stop"),
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
    app.as_user(&stranger)
        .put(&stop, &json!({}))
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
