//! `/api/v1/bridges/join-tokens/:id`: `DELETE` revokes a join token no
//! bridge has used yet (`keys:manage`); it stops working at once. Another
//! organization's token, or none, is 404; one used, expired or revoked is
//! 409. (An enrolled bridge is taken out of service by revoking its key.)

use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::bridge::{self, JoinTokenStatus};
use crate::model::rows;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    DELETE => revoke,
}

/// Revoke a bridge join token
///
/// Requires `keys:manage`. A token no bridge has used stops working at
/// once. Audited (`BRIDGE_JOIN_TOKEN_REVOKED`). Another organization's
/// token, or an unknown one, is `404`; one used, expired or revoked is
/// `409`. To take an enrolled bridge out of service, revoke its key
/// (`DELETE /api/v1/api-keys/{apiKeyId}`).
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/api/v1/bridges/join-tokens/{id}",
    params(("id" = uuid::Uuid, Path, description = "The join token")),
    responses(
        (status = 200, description = "The token, now revoked", body = bridge::JoinTokenListed),
        (status = 404, description = "No such join token in the organization"),
        (status = 409, description = "The token was already used, expired or revoked"),
    )))]
async fn revoke<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::KeysManage)?;
    let id = rq.uuid_param("id")?;
    let scope = principal.scope();
    let db = ctx.db();
    let Some(before) = bridge::join_token(&db, &scope, id).await? else {
        return Err(ApiError::NotFound);
    };
    let event = audit::Event {
        old_values: Some(json!({ "status": before.status, "name": before.name })),
        new_values: Some(json!({ "status": JoinTokenStatus::Revoked })),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            EventType::BridgeJoinTokenRevoked,
            id,
        )
    };
    let change = bridge::revoke_join_token(&scope, id, principal.user_id);
    let results = scope
        .batch(&db, vec![event.record_change(rq, change)?])
        .await?;
    let after = bridge::join_token(&db, &scope, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if rows::<serde_json::Value>(&results, 0)?.is_empty() {
        let why = match after.status {
            JoinTokenStatus::Used => "A bridge already enrolled with this token",
            JoinTokenStatus::Expired => "The token has expired",
            JoinTokenStatus::Revoked => "The token was already revoked",
            JoinTokenStatus::Active => "The token changed meanwhile; try again",
        };
        return Err(ApiError::Conflict {
            message: why.to_owned(),
            details: vec![FieldError::new("id", "Only an unused token can be revoked")],
        });
    }
    Reply::ok(after)
}
