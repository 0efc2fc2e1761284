//! `GET /api/v1/instruments/:id/status` (`instruments:view`): what the
//! instrument is doing now, in one query: status, when it was last heard
//! from and whether a bridge reaches it, the active run, the latest value of
//! each reading in the last hour, commands waiting for delivery, and its
//! calibration and maintenance state.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::InstrumentStatus;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

/// An instrument counts as reachable through its bridge when it was heard
/// from this recently.
pub const REACHABLE_WITHIN_SECS: i64 = 120;

super::methods! {
    GET => show,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
struct StatusRow {
    id: uuid::Uuid,
    status: InstrumentStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    last_seen_at: Option<OffsetDateTime>,
    reachable: bool,
    active_run: Option<Value>,
    readings: Value,
    pending_commands: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    calibration_due_at: Option<OffsetDateTime>,
    calibration_overdue: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    next_maintenance_at: Option<OffsetDateTime>,
    overdue_maintenance: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    deleted_at: Option<OffsetDateTime>,
}

async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let id = rq.uuid_param("id")?;
    let row: StatusRow = ctx
        .db()
        .fetch_optional(
            "SELECT i.id, i.status, i.last_seen_at, \
                    coalesce(i.last_seen_at > now() - make_interval(secs => $3), false) AS reachable, \
                    (SELECT jsonb_build_object('id', r.id, 'name', r.name, 'status', r.status, \
                                               'startedAt', r.started_at, 'operatorId', r.operator_id) \
                       FROM runs r WHERE r.organization_id = $2 AND r.instrument_id = $1 \
                        AND r.status IN ('pending', 'running') LIMIT 1) AS active_run, \
                    coalesce((SELECT jsonb_object_agg(l.metric, jsonb_build_object( \
                                  'value', l.value, 'unit', l.unit, 'recordedAt', l.recorded_at)) \
                       FROM (SELECT DISTINCT ON (metric) metric, value, unit, recorded_at FROM readings \
                              WHERE organization_id = $2 AND instrument_id = $1 \
                                AND recorded_at > now() - interval '1 hour' \
                              ORDER BY metric, recorded_at DESC) l), '{}'::jsonb) AS readings, \
                    (SELECT count(*) FROM instrument_commands c \
                      WHERE c.organization_id = $2 AND c.instrument_id = $1 \
                        AND c.status IN ('queued', 'sent') AND c.expires_at > now()) AS pending_commands, \
                    i.calibration_due_at, \
                    coalesce(i.calibration_due_at < now(), false) AS calibration_overdue, \
                    (SELECT min(m.scheduled_for) FROM maintenance m \
                      WHERE m.organization_id = $2 AND m.instrument_id = $1 \
                        AND m.status = 'scheduled') AS next_maintenance_at, \
                    (SELECT count(*) FROM maintenance m \
                      WHERE m.organization_id = $2 AND m.instrument_id = $1 \
                        AND m.status = 'scheduled' AND m.scheduled_for < now()) AS overdue_maintenance, \
                    i.deleted_at \
               FROM instruments i WHERE i.id = $1 AND i.organization_id = $2",
            params![id, principal.organization_id, REACHABLE_WITHIN_SECS as f64],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Reply::ok(row)
}
