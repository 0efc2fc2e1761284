//! `maintenance`: scheduled, completed or cancelled maintenance and
//! calibration of an instrument, updated under optimistic concurrency.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::{MaintenanceKind, MaintenanceStatus};
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;

/// Columns of a maintenance item as the API shows it.
pub const COLUMNS: &str = "id, instrument_id, kind, title, \
     CASE WHEN status = 'scheduled' AND scheduled_for < now() THEN 'overdue' ELSE status END AS status, \
     scheduled_for, completed_at, notes, performed_by, calibration, next_due_at, version, created_by, \
     created_at, updated_at";

/// A maintenance item of an instrument.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(rename_all = "camelCase")
)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct Maintenance {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub kind: MaintenanceKind,
    pub title: Option<String>,
    /// A scheduled item past `scheduledFor` reads `overdue`; `completed`
    /// and `cancelled` are final.
    pub status: MaintenanceStatus,
    pub scheduled_for: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub notes: Option<String>,
    /// Who completed it.
    pub performed_by: Option<uuid::Uuid>,
    /// A completed calibration's document, as written on the instrument
    /// (`lastCalibratedAt`, `dueAt`, `performedBy`, and what was given).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub calibration: Option<Value>,
    /// A completed calibration's next due date.
    pub next_due_at: Option<Timestamp>,
    /// Its version for optimistic concurrency (also the `ETag`).
    pub version: i64,
    pub created_by: Option<uuid::Uuid>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Instrument `instrument_id`'s maintenance, soonest first.
pub async fn of_instrument<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    instrument_id: uuid::Uuid,
) -> Result<Vec<Maintenance>, DbError> {
    scope
        .fetch_all(
            db,
            statement(
                format!(
                    "SELECT {COLUMNS} FROM maintenance WHERE organization_id = $1 AND instrument_id = $2 \
                     ORDER BY scheduled_for, id LIMIT 500"
                ),
                params![scope.organization_id(), instrument_id],
            ),
        )
        .await
}

/// Maintenance item `id`; 404 when the organization has none.
pub async fn get<P: Platform>(
    db: &Db<'_, P>,
    scope: &Scope,
    id: uuid::Uuid,
) -> Result<Maintenance, ApiError> {
    scope
        .fetch_optional(
            db,
            statement(
                format!("SELECT {COLUMNS} FROM maintenance WHERE id = $1 AND organization_id = $2"),
                params![id, scope.organization_id()],
            ),
        )
        .await?
        .ok_or(ApiError::NotFound)
}

/// Maintenance to schedule.
pub struct NewMaintenance<'a> {
    pub id: uuid::Uuid,
    pub instrument_id: uuid::Uuid,
    pub kind: MaintenanceKind,
    pub title: Option<&'a str>,
    pub scheduled_for: OffsetDateTime,
    pub notes: Option<&'a str>,
    pub created_by: uuid::Uuid,
}

/// Schedules `new`; returns the row.
pub fn insert(scope: &Scope, new: &NewMaintenance<'_>) -> Statement {
    statement(
        format!(
            "INSERT INTO maintenance (id, organization_id, instrument_id, kind, title, scheduled_for, notes, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ),
        params![
            new.id,
            scope.organization_id(),
            new.instrument_id,
            new.kind.as_str(),
            new.title,
            new.scheduled_for,
            new.notes,
            new.created_by,
        ],
    )
}

/// A change of a scheduled item.
pub struct Change<'a> {
    pub status: MaintenanceStatus,
    pub scheduled_for: OffsetDateTime,
    /// New notes (none: kept).
    pub notes: Option<&'a str>,
    /// Who completed it (recorded only when `status` is `completed`).
    pub performed_by: uuid::Uuid,
    pub calibration: Option<&'a Value>,
    pub next_due_at: Option<OffsetDateTime>,
}

/// Changes item `id` if it is still scheduled and at `version`; returns the
/// row (none when it moved on).
pub fn update(scope: &Scope, id: uuid::Uuid, version: i64, change: &Change<'_>) -> Statement {
    statement(
        format!(
            "UPDATE maintenance SET status = $4, scheduled_for = $5, notes = coalesce($6, notes), \
             completed_at = CASE WHEN $4 = 'completed' THEN now() ELSE completed_at END, \
             performed_by = CASE WHEN $4 = 'completed' THEN $7 ELSE performed_by END, \
             calibration = coalesce($8::jsonb, calibration), next_due_at = coalesce($9, next_due_at), \
             version = version + 1, updated_at = now() \
             WHERE id = $1 AND organization_id = $2 AND version = $3 AND status = 'scheduled' \
             RETURNING {COLUMNS}"
        ),
        params![
            id,
            scope.organization_id(),
            version,
            change.status.as_str(),
            change.scheduled_for,
            change.notes,
            change.performed_by,
            change.calibration,
            change.next_due_at,
        ],
    )
}
