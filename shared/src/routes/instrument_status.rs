//! `GET /api/v1/instruments/:id/status` (`instruments:view`): what the
//! instrument is doing now, in one query: status, when it was last heard
//! from and whether a bridge reaches it, the active run, the latest value of
//! each reading in the last hour, commands waiting for delivery, and its
//! calibration and maintenance state.

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::instrument;
use crate::platform::Platform;
use crate::request::Rq;

/// An instrument counts as reachable through its bridge when it was heard
/// from this recently.
pub const REACHABLE_WITHIN_SECS: i64 = 120;

super::methods! {
    GET => show,
}

/// What an instrument is doing now
///
/// Requires `instruments:view`. In one answer: its status, when its bridge
/// last reported it and whether it is reachable (heard from within 120
/// seconds), its pending or running run, the latest value of each metric
/// in the last hour, the commands waiting for delivery, and its
/// calibration and maintenance state. A removed instrument answers too.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/instruments/{id}/status",
    params(("id" = uuid::Uuid, Path, description = "The instrument's id")),
    responses((status = 200, description = "Its status now", body = instrument::Status))))]
async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let id = rq.uuid_param("id")?;
    let status = instrument::status(&ctx.db(), &principal.scope(), id, REACHABLE_WITHIN_SECS)
        .await?
        .ok_or(ApiError::NotFound)?;
    Reply::ok(status)
}
