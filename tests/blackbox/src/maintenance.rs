//! Cases for maintenance: scheduling, completing a calibration (which
//! recalibrates its instrument), and what is overdue.

use anyhow::{Context as _, ensure};
use serde_json::json;
use shared::auth::Role;

use crate::client::TestApp;
use crate::lab::{count, id_of, register};

crate::cases![maintenance_schedules_completes_calibration_and_reports_overdue];

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
    app.as_user(&tech)
        .put(&item, &json!({"status": "completed"}))
        .await?
        .expect_error(428, "PRECONDITION_REQUIRED")?;
    app.as_user(&tech)
        .header("if-match", "\"1\"")
        .put(&item, &json!({"calibration": {"standard": "NIST"}}))
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    app.as_user(&tech)
        .header("if-match", "\"1\"")
        .put(
            &item,
            &json!({"status": "completed", "calibration": {"colour": "red"}}),
        )
        .await?
        .expect_error(400, "VALIDATION_ERROR")?;
    let done = app.as_user(&tech).header("if-match", "\"1\"").put(&item, &json!({"status": "completed", "notes": "Within tolerance", "calibration": {"standard": "NIST 930e", "results": {"absorbanceError": 0.002}}}))
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
    app.as_user(&tech)
        .header("if-match", "\"2\"")
        .put(&item, &json!({"status": "scheduled"}))
        .await?
        .expect_error(409, "CONFLICT")?;
    app.as_user(&tech)
        .header("if-match", "\"1\"")
        .put(&item, &json!({"notes": "late"}))
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
    app.as_user(&stranger)
        .header("if-match", "\"2\"")
        .put(&item, &json!({"notes": "x"}))
        .await?
        .expect_error(404, "RESOURCE_NOT_FOUND")?;
    Ok(())
}
