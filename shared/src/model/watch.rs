//! What the watch publishes: bridges gone silent, maintenance fallen due,
//! calibrations overdue. Found across organizations by migration V28's
//! `SECURITY DEFINER` function, then marked published in each one's own
//! statement, which checks again, so two runs never publish one thing
//! twice.

use serde::Deserialize;
use serde_json::Value;

use super::Scope;
use crate::db::{Db, DbError, Statement, statement};
use crate::domain::Timestamp;
use crate::params;
use crate::platform::Platform;

/// Something to publish.
#[derive(Debug, Clone, Deserialize)]
pub struct Due {
    /// The event type: `bridge.disconnected`, `maintenance.due` or
    /// `calibration.overdue`.
    pub kind: String,
    pub organization_id: uuid::Uuid,
    /// The bridge, maintenance or instrument.
    pub record_id: uuid::Uuid,
    /// The value it is published for: the last heartbeat, the scheduled
    /// time, the calibration's due date.
    pub seen: Timestamp,
    /// What the event says besides (names, the instrument, the kind).
    pub details: Value,
}

/// Up to `limit` of each kind not yet published, of every organization
/// (bridges silent for `silent_secs`).
pub async fn due_for_watch<P: Platform>(
    db: &Db<'_, P>,
    limit: i64,
    silent_secs: i64,
) -> Result<Vec<Due>, DbError> {
    db.fetch_all(
        "SELECT kind, organization_id, record_id, seen, details FROM watch_due($1::int, $2::int)",
        params![limit as i32, silent_secs as i32],
    )
    .await
}

/// Marks `due` published, if it is still what it was (the bridge still
/// silent since `seen`, the maintenance still scheduled for `seen`, the
/// calibration still due at `seen`) and not yet published; returns its id
/// (no row: nothing to publish).
pub fn mark_published(scope: &Scope, due: &Due, silent_secs: i64) -> Option<Statement> {
    let sql = match due.kind.as_str() {
        "bridge.disconnected" => {
            "UPDATE bridges SET disconnect_published_for = last_heartbeat_at \
              WHERE id = $1 AND organization_id = $2 AND last_heartbeat_at = $3::timestamptz \
                AND last_heartbeat_at < now() - make_interval(secs => $4::int) \
                AND disconnect_published_for IS DISTINCT FROM last_heartbeat_at RETURNING id"
        }
        "maintenance.due" => {
            "UPDATE maintenance SET due_published_for = scheduled_for \
              WHERE id = $1 AND organization_id = $2 AND scheduled_for = $3::timestamptz \
                AND status = 'scheduled' AND scheduled_for <= now() \
                AND due_published_for IS DISTINCT FROM scheduled_for RETURNING id"
        }
        "calibration.overdue" => {
            "UPDATE instruments SET calibration_overdue_published_for = calibration_due_at \
              WHERE id = $1 AND organization_id = $2 AND calibration_due_at = $3::timestamptz \
                AND calibration_due_at <= now() AND deleted_at IS NULL \
                AND calibration_overdue_published_for IS DISTINCT FROM calibration_due_at RETURNING id"
        }
        _ => return None,
    };
    let mut values = params![due.record_id, scope.organization_id(), due.seen.get()];
    if due.kind == "bridge.disconnected" {
        values.extend(params![silent_secs as i32]);
    }
    Some(statement(sql, values))
}
