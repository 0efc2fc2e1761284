//! `POST /api/v1/webhooks/:id/deliveries/:deliveryId/retry`
//! (`webhooks:manage`): sends one delivery again now (failed, cancelled,
//! pending or even delivered: a receiver that lost it) and answers how it
//! went. The same `webhook-id` as every attempt before.

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::webhook;
use crate::platform::Platform;
use crate::request::Rq;
use crate::webhook as hooks;

super::methods! {
    POST => retry,
}

/// Send a delivery again
///
/// Requires `webhooks:manage`; the endpoint must be enabled (409). One
/// attempt now, with the delivery's own `webhook-id` and body, answered
/// like a test; if it fails, the delivery's schedule goes on from its
/// attempts so far (a delivery whose schedule is spent stays `failed`).
/// Audited (`WEBHOOK_DELIVERY_RETRIED`, with how it went) once the attempt
/// is made.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{deliveryId}/retry",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id"),
           ("deliveryId" = uuid::Uuid, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "How the attempt went", body = hooks::Attempted),
        (status = 409, description = "The endpoint is disabled, or an attempt at the delivery is under way"))))]
async fn retry<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let id = rq.uuid_param("id")?;
    let delivery_id = rq.uuid_param("deliveryId")?;
    let scope = principal.scope();
    let db = ctx.db();
    let endpoint = webhook::get(&db, &scope, id).await?;
    hooks::require_enabled(&endpoint, "sending to it again")?;
    let attempted = hooks::deliver_now(ctx, rq, &scope, id, delivery_id, true).await?;
    let event = audit::Event {
        metadata: serde_json::json!({
            "deliveryId": delivery_id,
            "delivered": attempted.delivered,
            "statusCode": attempted.attempt.status_code,
        }),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            EventType::WebhookDeliveryRetried,
            id,
        )
    };
    scope.batch(&db, vec![event.insert(rq)?]).await?;
    Reply::ok(attempted)
}
