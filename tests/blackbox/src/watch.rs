//! The watch: what time brings (a bridge gone silent, maintenance fallen
//! due, a calibration overdue) published once for what it saw, audited,
//! and queued for the webhooks subscribed. Time is moved by moving the
//! rows' times in the database.

use anyhow::ensure;
use serde_json::json;

use crate::client::TestApp;
use crate::lab::{id_of, register};
use crate::live::enrolled;

crate::cases![the_watch_publishes_what_time_brings_once];

/// How many events of `kind` the organization has for `record` (its
/// `data`'s id field `field`), and their deliveries.
async fn published(
    db: &tokio_postgres::Client,
    org: uuid::Uuid,
    kind: &str,
    field: &str,
    record: uuid::Uuid,
) -> anyhow::Result<(i64, i64)> {
    let row = db
        .query_one(
            "SELECT count(DISTINCT e.id), count(d.id) FROM events e \
               LEFT JOIN webhook_deliveries d ON d.event_id = e.id \
              WHERE e.organization_id = $1 AND e.event_type = $2 AND e.data ->> $3 = $4",
            &[&org, &kind, &field, &record.to_string()],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

async fn the_watch_publishes_what_time_brings_once(app: &TestApp) -> anyhow::Result<()> {
    let (admin, token) = app.admin().await?;
    let org = admin.organization_id;
    let db = app.db().await?;
    let key = app.scheduler_key()?;
    let watch = || async {
        let resp = app
            .as_user(&key)
            .post("/api/v1/jobs/watch", &json!({}))
            .await?;
        anyhow::Ok(resp.expect_ok(200)?.clone())
    };
    // Only the scheduler runs it.
    let refused = app
        .as_user(&token)
        .post("/api/v1/jobs/watch", &json!({}))
        .await?;
    ensure!(refused.status == 401, "{}", refused.json);

    let hook = app
        .as_user(&token)
        .post(
            "/api/v1/webhooks",
            &json!({"url": "https://hooks.example.com/watch",
                    "events": ["bridge.disconnected", "maintenance.due", "calibration.overdue"]}),
        )
        .await?;
    hook.expect_ok(201)?;

    // A bridge silent for ten minutes, and one that reported just now.
    let (silent, _dir) = enrolled(app, &token).await?;
    let (alive, _dir2) = enrolled(app, &token).await?;
    db.execute(
        "UPDATE bridges SET last_heartbeat_at = now() - interval '10 minutes' WHERE id = $1",
        &[&silent.bridge_id],
    )
    .await?;
    db.execute(
        "UPDATE bridges SET last_heartbeat_at = now() WHERE id = $1",
        &[&alive.bridge_id],
    )
    .await?;
    // An instrument whose calibration was due yesterday, with maintenance
    // scheduled an hour ago and more next year; a deleted one past due.
    let yesterday = (time::OffsetDateTime::now_utc() - time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)?;
    let instrument = register(
        app,
        &token,
        json!({"name": "Freezer B", "type": "freezer", "status": "idle",
               "calibration": {"dueAt": yesterday}}),
    )
    .await?;
    let instrument_id = id_of(&instrument)?;
    let gone = register(
        app,
        &token,
        json!({"name": "Old freezer", "type": "freezer", "status": "idle",
               "calibration": {"dueAt": yesterday}}),
    )
    .await?;
    let gone_id = id_of(&gone)?;
    app.as_user(&token)
        .json(
            http::Method::DELETE,
            &format!("/api/v1/instruments/{gone_id}"),
            &json!({"reason": "Decommissioned"}),
        )
        .await?
        .expect_ok(200)?;
    let an_hour_ago = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)?;
    let maintenance_path = format!("/api/v1/instruments/{instrument_id}/maintenance");
    let due = app
        .as_user(&token)
        .post(
            &maintenance_path,
            &json!({"kind": "preventive", "title": "Defrost", "scheduledFor": an_hour_ago}),
        )
        .await?;
    let due_id = id_of(due.expect_ok(201)?)?;
    let later = app
        .as_user(&token)
        .post(
            &maintenance_path,
            &json!({"kind": "inspection", "scheduledFor": "2099-01-01T09:00:00Z"}),
        )
        .await?;
    let later_id = id_of(later.expect_ok(201)?)?;

    let ran = watch().await?;
    ensure!(
        ran["bridgesDisconnected"].as_u64() >= Some(1)
            && ran["maintenanceDue"].as_u64() >= Some(1)
            && ran["calibrationsOverdue"].as_u64() >= Some(1),
        "{ran}"
    );
    let bridge = |id| published(&db, org, "bridge.disconnected", "bridgeId", id);
    let maintenance = |id| published(&db, org, "maintenance.due", "maintenanceId", id);
    let calibration = |id| published(&db, org, "calibration.overdue", "instrumentId", id);
    ensure!(
        bridge(silent.bridge_id).await? == (1, 1),
        "the silent bridge"
    );
    ensure!(
        bridge(alive.bridge_id).await? == (0, 0),
        "a bridge that reports"
    );
    ensure!(maintenance(due_id).await? == (1, 1), "the maintenance due");
    ensure!(
        maintenance(later_id).await? == (0, 0),
        "maintenance next year"
    );
    ensure!(
        calibration(instrument_id).await? == (1, 1),
        "the overdue calibration"
    );
    ensure!(
        calibration(gone_id).await? == (0, 0),
        "a deleted instrument"
    );

    // What the event says, and its audit event.
    let data: serde_json::Value = db
        .query_one(
            "SELECT data FROM events WHERE organization_id = $1 AND event_type = 'maintenance.due'",
            &[&org],
        )
        .await?
        .get(0);
    ensure!(
        data["instrumentId"] == instrument_id.to_string()
            && data["kind"] == "preventive"
            && data["title"] == "Defrost"
            && data["scheduledFor"].is_string(),
        "{data}"
    );
    let audited: Vec<String> = db
        .query(
            "SELECT event_type FROM audit_events WHERE organization_id = $1 \
              AND event_type IN ('BRIDGE_DISCONNECTED', 'MAINTENANCE_DUE', 'CALIBRATION_OVERDUE') \
              ORDER BY event_type",
            &[&org],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(
        audited
            == [
                "BRIDGE_DISCONNECTED",
                "CALIBRATION_OVERDUE",
                "MAINTENANCE_DUE"
            ],
        "{audited:?}"
    );

    // Once: the next run publishes nothing again.
    watch().await?;
    ensure!(bridge(silent.bridge_id).await?.0 == 1, "published twice");
    ensure!(maintenance(due_id).await?.0 == 1, "published twice");
    ensure!(calibration(instrument_id).await?.0 == 1, "published twice");

    // Back and silent again, rescheduled and due again, a new due date
    // passed: each is published again.
    db.execute(
        "UPDATE bridges SET last_heartbeat_at = now() - interval '3 minutes' WHERE id = $1",
        &[&silent.bridge_id],
    )
    .await?;
    db.execute(
        "UPDATE maintenance SET scheduled_for = now() - interval '1 minute' WHERE id = $1",
        &[&due_id],
    )
    .await?;
    db.execute(
        "UPDATE instruments SET calibration_due_at = now() - interval '1 minute' WHERE id = $1",
        &[&instrument_id],
    )
    .await?;
    // Done maintenance is not due.
    db.execute(
        "UPDATE maintenance SET scheduled_for = now() - interval '1 minute', status = 'completed', \
                completed_at = now() WHERE id = $1",
        &[&later_id],
    )
    .await?;
    watch().await?;
    ensure!(bridge(silent.bridge_id).await?.0 == 2, "silent again");
    ensure!(maintenance(due_id).await?.0 == 2, "due again");
    ensure!(calibration(instrument_id).await?.0 == 2, "overdue again");
    ensure!(maintenance(later_id).await?.0 == 0, "completed maintenance");
    Ok(())
}
