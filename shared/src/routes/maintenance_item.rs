//! `PUT /api/v1/maintenance/:id` (`instruments:control`): reschedule,
//! complete or cancel a maintenance item, under optimistic concurrency
//! (`If-Match` or `version`): `{status?, scheduledFor?, notes?,
//! calibration?, nextDueAt?}`. Completed and cancelled items are final.
//! Completing a calibration writes the instrument's calibration
//! (`lastCalibratedAt` = now, `dueAt` = `nextDueAt`, else now plus the
//! instrument's `calibrationIntervalDays`, default 365) in the same
//! transaction.

use http::header;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::instrument_maintenance::{MAINTENANCE_COLUMNS, MaintenanceView, text};
use crate::audit;
use crate::auth::{self, Permission, Principal};
use crate::ctx::Ctx;
use crate::db::statement;
use crate::domain::schema;
use crate::envelope::Reply;
use crate::envelope::etag;
use crate::error::{ApiError, FieldError};
use crate::model::instrument;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

pub const DEFAULT_CALIBRATION_INTERVAL_DAYS: i64 = 365;

super::methods! {
    PUT => update,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateInput {
    version: Option<Value>,
    status: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    scheduled_for: Option<OffsetDateTime>,
    notes: Option<String>,
    calibration: Option<Map<String, Value>>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    next_due_at: Option<OffsetDateTime>,
}

async fn load<P: Platform>(
    ctx: &Ctx<P>,
    principal: &Principal,
    id: uuid::Uuid,
) -> Result<MaintenanceView, ApiError> {
    ctx.db()
        .fetch_optional(
            &format!("SELECT {MAINTENANCE_COLUMNS} FROM maintenance WHERE id = $1 AND organization_id = $2"),
            params![id, principal.organization_id],
        )
        .await?
        .ok_or(ApiError::NotFound)
}

async fn update<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsControl)?;
    let id = rq.uuid_param("id")?;
    let input: UpdateInput = rq.json(ctx)?;
    let version = rq.expected_version(input.version.as_ref())?;
    let mut problems = Vec::new();
    let status = match input.status.as_deref() {
        None => None,
        Some(s @ ("scheduled" | "completed" | "cancelled")) => Some(s),
        Some(_) => {
            problems.push(FieldError::new(
                "status",
                "Must be one of: scheduled, completed, cancelled",
            ));
            None
        }
    };
    let notes = text("notes", input.notes.as_deref(), 10_000, &mut problems);
    if let Some(doc) = &input.calibration {
        problems.extend(schema::check_calibration(doc));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let current = load(ctx, &principal, id).await?;
    if current.version != version {
        return Err(ApiError::PreconditionFailed {
            given: version.to_string(),
            current: current.version,
        });
    }
    if matches!(current.status.as_str(), "completed" | "cancelled") {
        return Err(ApiError::Conflict {
            message: format!("This maintenance is {} and cannot change", current.status),
            details: Vec::new(),
        });
    }
    let completing = status == Some("completed");
    let is_calibration = current.kind == "calibration";
    if !completing && (input.calibration.is_some() || input.next_due_at.is_some()) {
        return Err(ApiError::invalid(
            "calibration",
            "Calibration results are recorded when a calibration is completed",
        ));
    }
    if completing && !is_calibration && input.calibration.is_some() {
        return Err(ApiError::invalid(
            "calibration",
            "Only a calibration records calibration results",
        ));
    }

    let now = ctx.now();
    let new_status = status.unwrap_or("scheduled");
    let scheduled_for = input.scheduled_for.unwrap_or(current.scheduled_for);
    let mut statements = Vec::new();
    let mut calibration_doc = None;
    let mut next_due = None;
    if completing && is_calibration {
        let instrument =
            instrument::get(&ctx.db(), &principal.scope(), current.instrument_id).await?;
        let interval = instrument.configuration["calibrationIntervalDays"]
            .as_i64()
            .unwrap_or(DEFAULT_CALIBRATION_INTERVAL_DAYS);
        let due = input
            .next_due_at
            .unwrap_or(now + time::Duration::days(interval));
        let mut doc = input.calibration.clone().unwrap_or_default();
        doc.insert(
            "lastCalibratedAt".into(),
            json!(now.format(&Rfc3339).map_err(ApiError::internal)?),
        );
        doc.insert(
            "dueAt".into(),
            json!(due.format(&Rfc3339).map_err(ApiError::internal)?),
        );
        doc.entry("performedBy".to_owned())
            .or_insert_with(|| json!(principal.user_id.to_string()));
        let doc = Value::Object(doc);
        // The instrument's own record changes too, and says so.
        let calibrated = audit::Event {
            old_values: Some(json!({
                "calibration": instrument.calibration,
                "calibrationDueAt": instrument.calibration_due_at.and_then(|t| t.format(&Rfc3339).ok()),
            })),
            new_values: Some(json!({
                "calibration": doc,
                "calibrationDueAt": due.format(&Rfc3339).ok(),
                "maintenanceId": id,
            })),
            ..audit::Event::by(
                ctx.new_uuid(),
                &principal,
                "INSTRUMENT_CALIBRATED",
                "Instrument calibration recorded",
                ("instrument", current.instrument_id),
            )
        };
        statements.push(calibrated.record_change(
            rq,
            statement(
                "UPDATE instruments SET calibration = $3::jsonb, calibration_due_at = $4, version = version + 1, \
                 updated_at = now() WHERE id = $1 AND organization_id = $2 \
                   AND EXISTS (SELECT 1 FROM maintenance WHERE id = $5 AND version = $6 + 1 AND status = 'completed') \
                 RETURNING id",
                params![
                    current.instrument_id,
                    principal.organization_id,
                    doc,
                    due,
                    id,
                    version,
                ],
            ),
        ));
        calibration_doc = Some(doc);
        next_due = Some(due);
    }
    let after = json!({
        "status": new_status,
        "scheduledFor": scheduled_for.format(&Rfc3339).ok(),
        "notes": notes.clone().or(current.notes.clone()),
        "calibration": calibration_doc,
    });
    let before = json!({
        "status": current.status,
        "scheduledFor": current.scheduled_for.format(&Rfc3339).ok(),
        "notes": current.notes,
        "calibration": current.calibration,
    });
    let (old_values, new_values) = audit::changed_fields(&before, &after, &[]);
    let event = audit::Event {
        old_values: Some(old_values),
        new_values: Some(new_values),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            match new_status {
                "completed" if is_calibration => "CALIBRATION_COMPLETED",
                "completed" => "MAINTENANCE_COMPLETED",
                "cancelled" => "MAINTENANCE_CANCELLED",
                _ => "MAINTENANCE_UPDATED",
            },
            "Maintenance updated",
            ("maintenance", id),
        )
    };
    let change = statement(
        format!(
            "UPDATE maintenance SET status = $4, scheduled_for = $5, notes = coalesce($6, notes), \
             completed_at = CASE WHEN $4 = 'completed' THEN now() ELSE completed_at END, \
             performed_by = CASE WHEN $4 = 'completed' THEN $7 ELSE performed_by END, \
             calibration = coalesce($8::jsonb, calibration), next_due_at = coalesce($9, next_due_at), \
             version = version + 1, updated_at = now() \
             WHERE id = $1 AND organization_id = $2 AND version = $3 AND status = 'scheduled' \
             RETURNING {MAINTENANCE_COLUMNS}"
        ),
        params![
            id,
            principal.organization_id,
            version,
            new_status,
            scheduled_for,
            notes,
            principal.user_id,
            calibration_doc,
            next_due,
        ],
    );
    // The maintenance first: the instrument only changes if it did.
    statements.insert(0, event.record_change(rq, change));
    let results = ctx.db().batch(statements, Default::default()).await?;
    let updated: Option<MaintenanceView> = results
        .first()
        .and_then(|r| r.decode::<MaintenanceView>().ok())
        .and_then(|rows| rows.into_iter().next());
    match updated {
        Some(item) => {
            let version = item.version;
            Ok(Reply::ok(item)?.header(header::ETAG, etag(version)))
        }
        None => {
            let now = load(ctx, &principal, id).await?;
            Err(ApiError::PreconditionFailed {
                given: version.to_string(),
                current: now.version,
            })
        }
    }
}
