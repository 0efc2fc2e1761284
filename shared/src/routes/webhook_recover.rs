//! `POST /api/v1/webhooks/:id/recover` (`webhooks:manage`): replays the
//! endpoint's failed and cancelled deliveries since a time, each with the
//! whole schedule again, by the delivery job.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::domain::Timestamp;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{rows, webhook};
use crate::platform::Platform;
use crate::request::Rq;
use crate::webhook as hooks;

super::methods! {
    POST => recover,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhookRecoverInput))]
#[serde(deny_unknown_fields)]
struct Input {
    /// Replay what failed or was cancelled since this time (not in the
    /// future, at most 30 days ago).
    since: Timestamp,
}

/// What was replayed.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhookRecovered))]
struct Recovered {
    /// Deliveries queued again.
    recovered: usize,
}

/// Replay a webhook endpoint's failed deliveries
///
/// Requires `webhooks:manage`; the endpoint must be enabled (409). Every
/// delivery of the endpoint that failed or was cancelled (the endpoint was
/// disabled) since `since` is queued again with the whole retry schedule;
/// the delivery job sends them within about a second while it runs, each
/// with its own `webhook-id`. Test events are not replayed. Audited
/// (`WEBHOOK_RECOVERED`) when anything was.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/webhooks/{id}/recover",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    request_body = Input,
    responses(
        (status = 200, description = "How many deliveries were queued again", body = Recovered),
        (status = 409, description = "The endpoint is disabled"))))]
async fn recover<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let id = rq.uuid_param("id")?;
    let input: Input = rq.json(ctx)?;
    let now = ctx.now();
    if input.since > now {
        return Err(ApiError::invalid("since", "Must not be in the future"));
    }
    if (now - input.since.get()).whole_days() > hooks::RECOVER_DAYS {
        return Err(ApiError::invalid(
            "since",
            format!("Must be within the last {} days", hooks::RECOVER_DAYS),
        ));
    }
    let scope = principal.scope();
    let db = ctx.db();
    let endpoint = webhook::get(&db, &scope, id).await?;
    hooks::require_enabled(&endpoint, "replaying to it")?;
    let event = audit::Event {
        metadata: json!({ "since": input.since }),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::WebhookRecovered, id)
    };
    let results = scope
        .batch(
            &db,
            vec![event.record_change(rq, webhook::recover(&scope, id, input.since.get()))?],
        )
        .await?;
    Reply::ok(Recovered {
        recovered: rows::<Value>(&results, 0)?.len(),
    })
}
