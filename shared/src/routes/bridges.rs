//! `GET /api/v1/bridges` (`instruments:view`): the organization's edge
//! bridges with their version, host, last heartbeat (`online` within 60 s),
//! queue depth and connected instruments, newest first.

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::bridge;
use crate::model::page::Items;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

/// The organization's edge bridges
///
/// Requires `instruments:view`. The bridges whose key is active, newest
/// first (at most 500), with their version, host, last heartbeat (`online`
/// within 60 seconds), queue depth and the instruments they serve.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/bridges",
    responses((status = 200, description = "The bridges", body = Items<bridge::Bridge>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let items = bridge::list(&ctx.db(), &principal.scope()).await?;
    Reply::ok(Items { items })
}
