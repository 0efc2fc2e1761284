//! `/api/v1/instruments/:id/maintenance`: `GET` lists the instrument's
//! maintenance, soonest first (`instruments:view`); `POST` schedules some
//! (`instruments:manage`): `{kind, scheduledFor, title?, notes?}` with kind
//! `calibration`, `preventive`, `repair` or `inspection`. A scheduled item
//! past its date reads as `overdue`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::audit;
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::db::statement;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::instrument;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

pub const KINDS: &[&str] = &["calibration", "preventive", "repair", "inspection"];

/// Columns of a maintenance item as the API shows it.
pub const MAINTENANCE_COLUMNS: &str = "id, instrument_id, kind, title, \
     CASE WHEN status = 'scheduled' AND scheduled_for < now() THEN 'overdue' ELSE status END AS status, \
     scheduled_for, completed_at, notes, performed_by, calibration, next_due_at, version, created_by, \
     created_at, updated_at";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct MaintenanceView {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub kind: String,
    pub title: Option<String>,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_for: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    pub notes: Option<String>,
    pub performed_by: Option<uuid::Uuid>,
    pub calibration: Option<Value>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_due_at: Option<OffsetDateTime>,
    pub version: i64,
    pub created_by: Option<uuid::Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

super::methods! {
    GET => list,
    POST => schedule,
}

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let instrument_id = rq.uuid_param("id")?;
    instrument::get(&ctx.db(), &principal.scope(), instrument_id).await?;
    let items: Vec<MaintenanceView> = ctx
        .db()
        .fetch_all(
            &format!(
                "SELECT {MAINTENANCE_COLUMNS} FROM maintenance WHERE organization_id = $1 AND instrument_id = $2 \
                 ORDER BY scheduled_for, id LIMIT 500"
            ),
            params![principal.organization_id, instrument_id],
        )
        .await?;
    Reply::ok(json!({ "items": items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScheduleInput {
    kind: String,
    #[serde(with = "time::serde::rfc3339")]
    scheduled_for: OffsetDateTime,
    title: Option<String>,
    notes: Option<String>,
}

/// Checks optional free text.
pub fn text(
    field: &str,
    value: Option<&str>,
    max: usize,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    if value.chars().count() > max {
        problems.push(FieldError::new(
            field,
            format!("Must be at most {max} characters"),
        ));
    }
    Some(value.to_owned())
}

async fn schedule<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsManage)?;
    let instrument_id = rq.uuid_param("id")?;
    let input: ScheduleInput = rq.json(ctx)?;
    let mut problems = Vec::new();
    if !KINDS.contains(&input.kind.as_str()) {
        problems.push(FieldError::new(
            "kind",
            format!("Must be one of: {}", KINDS.join(", ")),
        ));
    }
    let title = text("title", input.title.as_deref(), 255, &mut problems);
    let notes = text("notes", input.notes.as_deref(), 10_000, &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let instrument = instrument::get(&ctx.db(), &principal.scope(), instrument_id).await?;
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
            "MAINTENANCE_SCHEDULED",
            "Maintenance scheduled",
            ("maintenance", id),
        )
    };
    let insert = statement(
        format!(
            "INSERT INTO maintenance (id, organization_id, instrument_id, kind, title, scheduled_for, notes, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {MAINTENANCE_COLUMNS}"
        ),
        params![
            id,
            principal.organization_id,
            instrument_id,
            input.kind,
            title,
            input.scheduled_for,
            notes,
            principal.user_id,
        ],
    );
    let recorded = event.record_change(rq, insert);
    let created: MaintenanceView = ctx
        .db()
        .fetch_optional(&recorded.query, recorded.params)
        .await?
        .ok_or_else(|| ApiError::internal("INSERT ... RETURNING gave no row"))?;
    Reply::created(created)
}
