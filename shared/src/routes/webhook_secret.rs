//! `POST /api/v1/webhooks/:id/secret` (`webhooks:manage`): rotates the
//! endpoint's signing secret. The new one is answered once; for 24 hours
//! the one before it still signs too (both signatures in
//! `webhook-signature`), so a receiver can switch without losing a
//! delivery.

use serde::Serialize;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::webhook::{self, Webhook};
use crate::platform::Platform;
use crate::request::Rq;
use crate::webhook::{self as hooks, sign};

super::methods! {
    POST => rotate,
}

/// A rotated secret.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhookSecretRotated))]
#[serde(rename_all = "camelCase")]
struct Rotated {
    /// The new signing secret, shown this once (`previousSecretUntil`
    /// says until when the one before it still signs too).
    secret: String,
    #[serde(flatten)]
    webhook: Webhook,
}

/// Rotate a webhook endpoint's secret
///
/// Requires `webhooks:manage`. A new secret, answered once; every delivery
/// in the next 24 hours is signed with both the new and the previous one
/// (two `v1,` signatures, space-separated), then with the new one only.
/// Rotating again within the 24 hours drops the oldest. Audited
/// (`WEBHOOK_SECRET_ROTATED`; never a secret).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/webhooks/{id}/secret",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The new secret, shown once, and the endpoint", body = Rotated))))]
async fn rotate<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let id = rq.uuid_param("id")?;
    let scope = principal.scope();
    let db = ctx.db();
    webhook::get(&db, &scope, id).await?;
    let secret = sign::new_secret(ctx.random_bytes::<{ sign::KEY_BYTES }>());
    let sealed = hooks::seal_secret(ctx, &scope, id, &secret)?;
    let event = audit::Event {
        metadata: serde_json::json!({ "previousSecretSignsForHours": hooks::ROTATION_OVERLAP_HOURS }),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            EventType::WebhookSecretRotated,
            id,
        )
    };
    let rotated: Option<Webhook> = scope
        .fetch_optional(
            &db,
            event.record_change(
                rq,
                webhook::rotate_secret(&scope, id, &sealed, hooks::ROTATION_OVERLAP_HOURS),
            )?,
        )
        .await?;
    let webhook = rotated.ok_or(ApiError::NotFound)?;
    Reply::ok(Rotated { secret, webhook })
}
