//! `POST /api/v1/webhooks/:id/test` (`webhooks:manage`): sends the
//! endpoint a `webhook.test` event now, signed like every delivery, and
//! answers how it went. It is in the delivery log; it is not retried.

use serde_json::json;

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
    POST => test,
}

/// Send a webhook endpoint a test event
///
/// Requires `webhooks:manage`. Posts `{type: "webhook.test", timestamp,
/// data: {webhookId}}` to the endpoint now (enabled or not), signed like
/// every delivery, and answers the attempt: status, duration, the start of
/// the answer. It is in the delivery log and is not retried; a `410`
/// disables the endpoint as a delivery's would. Audited (`WEBHOOK_TESTED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/webhooks/{id}/test",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, description = "How the attempt went", body = hooks::Attempted))))]
async fn test<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let id = rq.uuid_param("id")?;
    let scope = principal.scope();
    let db = ctx.db();
    webhook::get(&db, &scope, id).await?;
    let event_id = ctx.new_uuid();
    let delivery_id = ctx.new_uuid();
    let event = audit::Event::by(ctx.new_uuid(), &principal, EventType::WebhookTested, id);
    let payload = json!({
        "type": hooks::TEST_EVENT,
        "timestamp": crate::domain::Timestamp::from(rq.started_at()),
        "data": { "webhookId": id },
    });
    scope
        .batch(
            &db,
            vec![
                event.insert(rq)?,
                webhook::queue_test(&scope, id, event.id, event_id, delivery_id, &payload),
            ],
        )
        .await?;
    Reply::ok(hooks::deliver_now(ctx, rq, &scope, id, delivery_id, false).await?)
}
