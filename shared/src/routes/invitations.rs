//! `GET /api/v1/invitations` (`users:manage`): the organization's
//! invitations, newest first, each with where it stands (pending,
//! accepted, expired or revoked). Invitations are made by `POST
//! /api/v1/users`; their links are never shown again.

use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::invitation;
use crate::model::page::Items;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
}

/// The organization's invitations
///
/// Requires `users:manage`. Newest first (at most 500), with who invited,
/// when each expires and whether it is pending, accepted, expired or
/// revoked. Never the link.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/invitations",
    responses((status = 200, description = "The invitations", body = Items<invitation::Invitation>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let items = invitation::list(&ctx.db(), &principal.scope()).await?;
    Reply::ok(Items { items })
}
