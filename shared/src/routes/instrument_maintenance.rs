//! `/api/v1/instruments/:id/maintenance`: `GET` lists the instrument's
//! maintenance, soonest first (`instruments:view`); `POST` schedules some
//! (`instruments:manage`): `{kind, scheduledFor, title?, notes?}` with kind
//! `calibration`, `preventive`, `repair` or `inspection`. A scheduled item
//! past its date reads as `overdue`.

use crate::domain::Timestamp;
use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::{MaintenanceKind, optional_text as text};
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::instrument;
use crate::model::maintenance::{self, Maintenance};
use crate::model::page::Items;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
    POST => schedule,
}

/// An instrument's maintenance
///
/// Requires `instruments:view`. Its maintenance items (scheduled, overdue,
/// completed, cancelled), soonest first, at most 500. A removed
/// instrument's maintenance stays readable.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/instruments/{id}/maintenance",
    params(("id" = uuid::Uuid, Path, description = "The instrument's id")),
    responses((status = 200, description = "Its maintenance items", body = Items<Maintenance>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let instrument_id = rq.uuid_param("id")?;
    let scope = principal.scope();
    let db = ctx.db();
    instrument::get(&db, &scope, instrument_id).await?;
    let items = maintenance::of_instrument(&db, &scope, instrument_id).await?;
    Reply::ok(Items { items })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MaintenanceInput))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScheduleInput {
    #[cfg_attr(feature = "openapi", schema(value_type = MaintenanceKind))]
    kind: String,
    /// When it is due; once past while still scheduled, it reads `overdue`.
    scheduled_for: Timestamp,
    /// At most 255 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    title: Option<String>,
    /// At most 10000 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    notes: Option<String>,
}

/// Schedule maintenance for an instrument
///
/// Requires `instruments:manage`. A `calibration`, `preventive`, `repair`
/// or `inspection` item for an instrument in service (404 for a removed
/// one), `scheduled` until it is completed or cancelled
/// (`PUT /api/v1/maintenance/{id}`). Audited (`MAINTENANCE_SCHEDULED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/instruments/{id}/maintenance",
    params(("id" = uuid::Uuid, Path, description = "The instrument's id")),
    request_body = ScheduleInput,
    responses((status = 201, description = "Scheduled", body = Maintenance))))]
async fn schedule<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsManage)?;
    let instrument_id = rq.uuid_param("id")?;
    let input: ScheduleInput = rq.json(ctx)?;
    let mut problems = Vec::new();
    let kind = MaintenanceKind::parse(&input.kind);
    if kind.is_none() {
        problems.push(FieldError::new(
            "kind",
            format!("Must be one of: {}", MaintenanceKind::expected()),
        ));
    }
    let title = text("title", input.title.as_deref(), 255, &mut problems);
    let notes = text("notes", input.notes.as_deref(), 10_000, &mut problems);
    let (Some(kind), true) = (kind, problems.is_empty()) else {
        return Err(ApiError::Validation(problems));
    };
    let scope = principal.scope();
    let db = ctx.db();
    let instrument = instrument::get(&db, &scope, instrument_id).await?;
    if instrument.deleted_at.is_some() {
        return Err(ApiError::NotFound);
    }
    let id = ctx.new_uuid();
    let event = audit::Event {
        new_values: Some(json!({
            "instrumentId": instrument_id, "kind": input.kind, "title": title,
            "scheduledFor": input.scheduled_for.format(&time::format_description::well_known::Rfc3339).ok(),
        })),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            EventType::MaintenanceScheduled,
            id,
        )
    };
    let insert = maintenance::insert(
        &scope,
        &maintenance::NewMaintenance {
            id,
            instrument_id,
            kind,
            title: title.as_deref(),
            scheduled_for: input.scheduled_for.get(),
            notes: notes.as_deref(),
            created_by: principal.user_id,
        },
    );
    let created: Maintenance = scope
        .fetch_optional(&db, event.record_change(rq, insert)?)
        .await?
        .ok_or_else(|| ApiError::internal("INSERT ... RETURNING gave no row"))?;
    Reply::created(created)
}
