//! `GET /api/v1/bridges` (`instruments:view`): the organization's edge
//! bridges with their version, host, last heartbeat (`online` within 60 s),
//! queue depth and connected instruments, newest first.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

/// A bridge as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all(serialize = "camelCase"))]
pub struct BridgeView {
    pub id: uuid::Uuid,
    pub name: String,
    pub version: Option<String>,
    pub hostname: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_heartbeat_at: Option<OffsetDateTime>,
    pub online: bool,
    pub queue_depth: Option<i64>,
    pub connected_instruments: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let items: Vec<BridgeView> = ctx
        .db()
        .fetch_all(
            "SELECT b.id, b.name, b.version, b.hostname, b.last_heartbeat_at, \
               coalesce(b.last_heartbeat_at > now() - interval '60 seconds', false) AS online, \
               b.queue_depth, b.connected_instruments, b.created_at \
             FROM bridges b JOIN api_keys k ON k.id = b.api_key_id \
             WHERE b.organization_id = $1 AND k.is_active \
             ORDER BY b.created_at DESC, b.id DESC LIMIT 500",
            params![principal.organization_id],
        )
        .await?;
    Reply::ok(json!({ "items": items }))
}
