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

async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let id = rq.uuid_param("id")?;
    let status = instrument::status(&ctx.db(), &principal.scope(), id, REACHABLE_WITHIN_SECS)
        .await?
        .ok_or(ApiError::NotFound)?;
    Reply::ok(status)
}
