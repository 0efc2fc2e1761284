//! `/api/v1/invitations/:id`: `DELETE` revokes a pending invitation
//! (`users:manage`); its link stops working at once. Another
//! organization's invitation, or none, is 404; one already accepted,
//! expired or revoked is 409.

use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::invitation::{self, Status};
use crate::model::rows;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    DELETE => revoke,
}

/// Revoke an invitation
///
/// Requires `users:manage`. A pending invitation's link stops working at
/// once. Audited (`INVITATION_REVOKED`). Another organization's
/// invitation, or an unknown one, is `404`; one no longer pending is `409`.
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/api/v1/invitations/{id}",
    params(("id" = uuid::Uuid, Path, description = "The invitation")),
    responses(
        (status = 200, description = "The invitation, now revoked", body = invitation::Invitation),
        (status = 404, description = "No such invitation in the organization"),
        (status = 409, description = "The invitation was already accepted, expired or revoked"),
    )))]
async fn revoke<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let id = rq.uuid_param("id")?;
    let scope = principal.scope();
    let db = ctx.db();
    let Some(before) = invitation::get(&db, &scope, id).await? else {
        return Err(ApiError::NotFound);
    };
    let event = audit::Event {
        old_values: Some(json!({ "status": before.status, "email": before.email })),
        new_values: Some(json!({ "status": Status::Revoked })),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::InvitationRevoked, id)
    };
    let change = invitation::revoke(&scope, id, principal.user_id);
    let results = scope
        .batch(&db, vec![event.record_change(rq, change)?])
        .await?;
    let after = invitation::get(&db, &scope, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if rows::<serde_json::Value>(&results, 0)?.is_empty() {
        return Err(not_pending(after.status));
    }
    Reply::ok(after)
}

fn not_pending(status: Status) -> ApiError {
    let why = match status {
        Status::Accepted => "The invitation was already accepted",
        Status::Expired => "The invitation has expired",
        Status::Revoked => "The invitation was already revoked",
        Status::Pending => "The invitation changed meanwhile; try again",
    };
    ApiError::Conflict {
        message: why.to_owned(),
        details: vec![FieldError::new(
            "id",
            "Only a pending invitation can be revoked",
        )],
    }
}
