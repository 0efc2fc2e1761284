//! `PUT /api/v1/maintenance/:id` (`instruments:control`): reschedule,
//! complete or cancel a maintenance item, under optimistic concurrency
//! (`If-Match` or `version`): `{status?, scheduledFor?, notes?,
//! calibration?, nextDueAt?}`. Completed and cancelled items are final.
//! Completing a calibration writes the instrument's calibration
//! (`lastCalibratedAt` = now, `dueAt` = `nextDueAt`, else now plus the
//! instrument's `calibrationIntervalDays`, default 365) in the same
//! transaction.

use crate::domain::Timestamp;
use http::header;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::{MaintenanceKind, MaintenanceStatus, optional_text as text, schema};
use crate::envelope::{Reply, etag};
use crate::error::{ApiError, FieldError};
use crate::model::maintenance::{self, Maintenance};
use crate::model::{first_row, instrument};
use crate::platform::Platform;
use crate::request::Rq;

pub const DEFAULT_CALIBRATION_INTERVAL_DAYS: i64 = 365;

super::methods! {
    PUT => update,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MaintenanceUpdate))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateInput {
    /// The version read, when no `If-Match` header is sent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1))]
    version: Option<Value>,
    /// `scheduled` (the default: a reschedule or a note), `completed` or
    /// `cancelled`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<MaintenanceStatus>))]
    status: Option<String>,
    /// A new date; default the current one.
    #[serde(default)]
    scheduled_for: Option<Timestamp>,
    /// Replaces the notes (at most 10000 characters); default kept.
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    notes: Option<String>,
    /// Completing a calibration only: its results, with the calibration
    /// document's fields (`performedBy`, `standard`, `certificate`,
    /// `results`; `shared::domain::schema::CALIBRATION_FIELDS`).
    calibration: Option<Map<String, Value>>,
    /// Completing a calibration only: when the next one is due; default
    /// now plus the instrument's `calibrationIntervalDays` (else 365 days).
    #[serde(default)]
    next_due_at: Option<Timestamp>,
}

/// The requested status (only `scheduled`, `completed`, `cancelled` may be
/// asked for) and notes, or every problem with them.
fn validate(input: &UpdateInput) -> Result<(Option<MaintenanceStatus>, Option<String>), ApiError> {
    let mut problems = Vec::new();
    let status = match input.status.as_deref().map(MaintenanceStatus::parse) {
        None => None,
        Some(Some(
            s @ (MaintenanceStatus::Scheduled
            | MaintenanceStatus::Completed
            | MaintenanceStatus::Cancelled),
        )) => Some(s),
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
    if problems.is_empty() {
        Ok((status, notes))
    } else {
        Err(ApiError::Validation(problems))
    }
}

/// Whether `current` may become `status` with what `input` records.
fn check_transition(
    current: &Maintenance,
    version: i64,
    status: Option<MaintenanceStatus>,
    input: &UpdateInput,
) -> Result<(), ApiError> {
    if current.version != version {
        return Err(ApiError::PreconditionFailed {
            given: version.to_string(),
            current: current.version,
        });
    }
    if current.status.is_final() {
        return Err(ApiError::conflict(format!(
            "This maintenance is {} and cannot change",
            current.status.as_str()
        )));
    }
    let completing = status == Some(MaintenanceStatus::Completed);
    if !completing && (input.calibration.is_some() || input.next_due_at.is_some()) {
        return Err(ApiError::invalid(
            "calibration",
            "Calibration results are recorded when a calibration is completed",
        ));
    }
    if completing && current.kind != MaintenanceKind::Calibration && input.calibration.is_some() {
        return Err(ApiError::invalid(
            "calibration",
            "Only a calibration records calibration results",
        ));
    }
    Ok(())
}

/// A completed calibration: the instrument's new calibration document, its
/// next due date, and the audited statement that records both on the
/// instrument.
struct Calibration {
    doc: Value,
    due: Timestamp,
    statement: crate::db::Statement,
}

async fn calibrate<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    principal: &auth::Principal,
    current: &Maintenance,
    input: &UpdateInput,
) -> Result<Calibration, ApiError> {
    let scope = principal.scope();
    let instrument = instrument::get(&ctx.db(), &scope, current.instrument_id).await?;
    let now = Timestamp::from(ctx.now());
    let interval = instrument.configuration["calibrationIntervalDays"]
        .as_i64()
        .unwrap_or(DEFAULT_CALIBRATION_INTERVAL_DAYS);
    let due = input
        .next_due_at
        .unwrap_or_else(|| Timestamp::from(now.get() + time::Duration::days(interval)));
    let mut doc = input.calibration.clone().unwrap_or_default();
    doc.insert("lastCalibratedAt".into(), json!(now));
    doc.insert("dueAt".into(), json!(due));
    doc.entry("performedBy".to_owned())
        .or_insert_with(|| json!(principal.user_id.to_string()));
    let doc = Value::Object(doc);
    // The instrument's own record changes too, and says so.
    let calibrated = audit::Event {
        old_values: Some(json!({
            "calibration": instrument.calibration,
            "calibrationDueAt": instrument.calibration_due_at,
        })),
        new_values: Some(json!({
            "calibration": doc,
            "calibrationDueAt": due,
            "maintenanceId": current.id,
        })),
        ..audit::Event::by(
            ctx.new_uuid(),
            principal,
            EventType::InstrumentCalibrated,
            current.instrument_id,
        )
    };
    let statement = calibrated.record_change(
        rq,
        instrument::record_calibration(
            &scope,
            current.instrument_id,
            &doc,
            due.get(),
            current.id,
            current.version,
        ),
    )?;
    Ok(Calibration {
        doc,
        due,
        statement,
    })
}

/// Reschedule, complete or cancel maintenance
///
/// Requires `instruments:control`. Optimistic concurrency: send the
/// version read (the item's `version`) as `If-Match: "<version>"` or as
/// `version` in the body; 428 without either, 412 when the item changed
/// since. A change without `status` keeps the item scheduled. Completed and cancelled items are final (409). `calibration` and
/// `nextDueAt` are accepted only when completing, `calibration` only for a
/// calibration item (400 otherwise). Completing a calibration writes the
/// instrument's calibration in the same transaction (`lastCalibratedAt`
/// now, `dueAt` `nextDueAt` or now plus its `calibrationIntervalDays`,
/// default 365; `performedBy` default the caller), audited as
/// `INSTRUMENT_CALIBRATED`. The item's change is audited too
/// (`MAINTENANCE_UPDATED`, `MAINTENANCE_COMPLETED`, `CALIBRATION_COMPLETED`
/// or `MAINTENANCE_CANCELLED`).
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/api/v1/maintenance/{id}",
    params(
        ("id" = uuid::Uuid, Path, description = "The maintenance item's id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The version read, e.g. `\"3\"`; else `version` in the body")),
    request_body = UpdateInput,
    responses(
        (status = 200, description = "The item as it is now", body = Maintenance,
            headers(("ETag" = String, description = "Its new version, quoted"))),
        (status = 409, description = "The item is completed or cancelled"),
        (status = 412, description = "The version is stale"),
        (status = 428, description = "Neither `If-Match` nor `version` was sent"))))]
async fn update<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsControl)?;
    let id = rq.uuid_param("id")?;
    let input: UpdateInput = rq.json(ctx)?;
    let version = rq.expected_version(input.version.as_ref())?;
    let (status, notes) = validate(&input)?;
    let scope = principal.scope();
    let db = ctx.db();
    let current = maintenance::get(&db, &scope, id).await?;
    check_transition(&current, version, status, &input)?;

    let new_status = status.unwrap_or(MaintenanceStatus::Scheduled);
    let is_calibration = current.kind == MaintenanceKind::Calibration;
    let calibration = if new_status == MaintenanceStatus::Completed && is_calibration {
        Some(calibrate(ctx, rq, &principal, &current, &input).await?)
    } else {
        None
    };
    let scheduled_for = input.scheduled_for.unwrap_or(current.scheduled_for);
    let after = json!({
        "status": new_status,
        "scheduledFor": scheduled_for,
        "notes": notes.clone().or(current.notes.clone()),
        "calibration": calibration.as_ref().map(|c| &c.doc),
    });
    let before = json!({
        "status": current.status,
        "scheduledFor": current.scheduled_for,
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
                MaintenanceStatus::Completed if is_calibration => EventType::CalibrationCompleted,
                MaintenanceStatus::Completed => EventType::MaintenanceCompleted,
                MaintenanceStatus::Cancelled => EventType::MaintenanceCancelled,
                _ => EventType::MaintenanceUpdated,
            },
            id,
        )
    };
    let change = maintenance::update(
        &scope,
        id,
        version,
        &maintenance::Change {
            status: new_status,
            scheduled_for: scheduled_for.get(),
            notes: notes.as_deref(),
            performed_by: principal.user_id,
            calibration: calibration.as_ref().map(|c| &c.doc),
            next_due_at: calibration.as_ref().map(|c| c.due.get()),
        },
    );
    // The maintenance first: the instrument only changes if it did.
    let mut statements = vec![event.record_change(rq, change)?];
    statements.extend(calibration.map(|c| c.statement));
    let results = scope.batch(&db, statements).await?;
    let updated: Option<Maintenance> = first_row(&results, 0)?;
    match updated {
        Some(item) => {
            let version = item.version;
            Ok(Reply::ok(item)?.header(header::ETAG, etag(version)))
        }
        None => {
            let now = maintenance::get(&db, &scope, id).await?;
            Err(ApiError::PreconditionFailed {
                given: version.to_string(),
                current: now.version,
            })
        }
    }
}
