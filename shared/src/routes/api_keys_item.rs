//! `/api/v1/api-keys/:id`: `DELETE` revokes a key (`keys:manage`). Another
//! organization's key, or no key, is 404.

use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, Outcome};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::db::{BatchOptions, statement};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    DELETE => revoke,
}

/// The `:id` of `/api/v1/api-keys/:id`.
async fn revoke<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::KeysManage)?;
    let id = rq.uuid_param("id")?;
    #[derive(Deserialize)]
    struct Revoked {
        #[allow(dead_code)]
        record_id: uuid::Uuid,
    }
    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id: Some(principal.organization_id),
        user_id: Some(principal.user_id),
        event_type: "API_KEY_REVOKED",
        severity: "INFO",
        action: "API key revoked",
        outcome: Outcome::Success,
        record_type: Some("api_key"),
        record_id: Some(id),
        old_values: Some(json!({ "isActive": true })),
        new_values: Some(json!({ "isActive": false })),
        metadata: json!({}),
        reason: None,
    };
    // One statement: the audit row exists only if the key was there to revoke.
    let change = statement(
        "UPDATE api_keys SET is_active = false WHERE id = $1 AND organization_id = $2 AND is_active RETURNING id",
        params![id, principal.organization_id],
    );
    let results = ctx
        .db()
        .batch(
            vec![event.insert_after(rq, change)],
            BatchOptions::default(),
        )
        .await?;
    let revoked = results
        .first()
        .and_then(|r| r.decode::<Revoked>().ok())
        .is_some_and(|rows| !rows.is_empty());
    if revoked {
        Reply::ok(json!({ "id": id, "revoked": true }))
    } else {
        Err(ApiError::NotFound)
    }
}
