//! `/api/v1/api-keys/:id`: `DELETE` revokes a key (`keys:manage`). Another
//! organization's key, or no key, is 404.

use serde::Serialize;
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{api_key, instrument, rows};
use crate::platform::Platform;
use crate::request::Rq;

/// The answer of a revocation.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ApiKeyRevoked))]
struct Revoked {
    id: uuid::Uuid,
    /// Always `true`.
    revoked: bool,
}

super::methods! {
    DELETE => revoke,
}

/// Revoke an API key
///
/// Requires `keys:manage`. The key stops working at once. A bridge's key
/// revoked takes the bridge out of service: its instruments go to the next
/// bridge that reports them. Another organization's key, an unknown or an
/// already revoked one is `404`. Audited (`API_KEY_REVOKED`).
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/api/v1/api-keys/{id}",
    params(("id" = uuid::Uuid, Path, description = "The key")),
    responses(
        (status = 200, description = "The key is revoked", body = Revoked),
        (status = 404, description = "No active key with this id in the organization"),
    )))]
async fn revoke<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::KeysManage)?;
    let id = rq.uuid_param("id")?;
    let event = audit::Event {
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        record_id: Some(id),
        old_values: Some(json!({ "isActive": true })),
        new_values: Some(json!({ "isActive": false })),
        ..audit::Event::new(ctx.new_uuid(), EventType::ApiKeyRevoked)
    };
    // One statement: the audit row exists only if the key was there to revoke.
    let scope = principal.scope();
    let change = api_key::revoke(&scope, id);
    // A bridge's key revoked: the bridge is out of service, and its
    // instruments go to the next bridge that reports them.
    let results = scope
        .batch(
            &ctx.db(),
            vec![
                event.insert_after(rq, change)?,
                instrument::release_from_revoked_bridge(&scope, id),
            ],
        )
        .await?;
    if rows::<serde_json::Value>(&results, 0)?.is_empty() {
        return Err(ApiError::NotFound);
    }
    Reply::ok(Revoked { id, revoked: true })
}
