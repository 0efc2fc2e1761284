//! The watch: a scheduled job (every minute) that publishes what no request
//! causes but the passing of time, each once for what it saw:
//!
//! - `bridge.disconnected`: a bridge (its key not revoked) whose last
//!   heartbeat is more than [`SILENT_SECS`] old; again after it comes back
//!   and goes silent again;
//! - `maintenance.due`: scheduled maintenance whose time has come; again
//!   if it is rescheduled and falls due again;
//! - `calibration.overdue`: an instrument whose calibration is past due;
//!   again for a new due date.
//!
//! Each is an audit event of the organization (`BRIDGE_DISCONNECTED`,
//! `MAINTENANCE_DUE`, `CALIBRATION_OVERDUE`) written by the statement that
//! marks the row published (`model::watch`), so the event and its webhook
//! deliveries commit with the mark, and two runs at once publish it once.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{self, EventType};
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::model::Scope;
use crate::model::watch::{self, Due};
use crate::platform::Platform;
use crate::request::Rq;

/// How long a bridge may go without a heartbeat (it sends one every few
/// seconds; the bridges list calls it offline after 60) before it is
/// published disconnected: long enough that a restart or a brief network
/// blip does not page anyone.
pub const SILENT_SECS: i64 = 120;

/// The most of each kind one run publishes (the rest, the next minute).
pub const BATCH: i64 = 200;

/// What one run published.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Watched))]
#[serde(rename_all = "camelCase")]
pub struct Watched {
    pub bridges_disconnected: usize,
    pub maintenance_due: usize,
    pub calibrations_overdue: usize,
}

/// The audit event type of a kind, and its metadata.
fn event_of(due: &Due) -> Option<(EventType, Value)> {
    let details = &due.details;
    Some(match due.kind.as_str() {
        "bridge.disconnected" => (
            EventType::BridgeDisconnected,
            json!({ "name": details["name"], "hostname": details["hostname"], "lastHeartbeatAt": due.seen }),
        ),
        "maintenance.due" => (
            EventType::MaintenanceDue,
            json!({ "instrumentId": details["instrumentId"], "kind": details["kind"],
                    "title": details["title"], "scheduledFor": due.seen }),
        ),
        "calibration.overdue" => (
            EventType::CalibrationOverdue,
            json!({ "name": details["name"], "calibrationDueAt": due.seen }),
        ),
        _ => return None,
    })
}

/// Publishes what is due, one transaction per organization.
pub async fn run<P: Platform>(ctx: &Ctx<P>, rq: &Rq) -> Result<Watched, ApiError> {
    let db = ctx.db();
    let mut by_organization: BTreeMap<uuid::Uuid, Vec<Due>> = BTreeMap::new();
    for due in watch::due_for_watch(&db, BATCH, SILENT_SECS).await? {
        by_organization
            .entry(due.organization_id)
            .or_default()
            .push(due);
    }
    let mut watched = Watched::default();
    for (organization_id, dues) in by_organization {
        let scope = Scope::scheduled(organization_id);
        let mut statements = Vec::new();
        let mut kinds = Vec::new();
        for due in &dues {
            let (Some(change), Some((event_type, metadata))) = (
                watch::mark_published(&scope, due, SILENT_SECS),
                event_of(due),
            ) else {
                continue;
            };
            let event = audit::Event {
                organization_id: Some(organization_id),
                record_id: Some(due.record_id),
                metadata,
                ..audit::Event::new(ctx.new_uuid(), event_type)
            };
            statements.push(event.record_change(rq, change)?);
            kinds.push(event_type);
        }
        if statements.is_empty() {
            continue;
        }
        let results = scope.batch(&db, statements).await?;
        for (i, kind) in kinds.iter().enumerate() {
            if results.get(i).is_none_or(|r| r.rows.is_empty()) {
                continue;
            }
            match kind {
                EventType::BridgeDisconnected => watched.bridges_disconnected += 1,
                EventType::MaintenanceDue => watched.maintenance_due += 1,
                _ => watched.calibrations_overdue += 1,
            }
        }
    }
    Ok(watched)
}
