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

async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::InstrumentsView)?;
    let items = bridge::list(&ctx.db(), &principal.scope()).await?;
    Reply::ok(Items { items })
}
