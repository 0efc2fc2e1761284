//! `/api/v1/webhooks`: `GET` lists the organization's webhook endpoints,
//! `POST` registers one and shows its signing secret once. Both need
//! `webhooks:manage`. See `crate::webhook` for how deliveries go.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::page::Items;
use crate::model::{first_row, webhook};
use crate::platform::Platform;
use crate::request::Rq;
use crate::webhook::{self as hooks, sign};

super::methods! {
    GET => list,
    POST => create,
}

/// A new endpoint: its secret, shown this once, and how it is listed.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhookCreated))]
struct Created {
    /// The signing secret (`whsec_` + base64 of 32 random bytes), shown this
    /// once: verify each delivery's `webhook-signature` with it (any
    /// Standard Webhooks library does).
    secret: String,
    #[serde(flatten)]
    webhook: webhook::Webhook,
}

/// List the webhook endpoints
///
/// Requires `webhooks:manage`. Every endpoint of the organization, newest
/// first; never a secret.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/webhooks",
    responses((status = 200, description = "The endpoints", body = Items<webhook::Webhook>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let items = webhook::list(&ctx.db(), &principal.scope()).await?;
    Reply::ok(Items { items })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhookInput))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateInput {
    /// `https` to a public address (not loopback, private, link-local or
    /// reserved; names resolving to such are refused where the host can
    /// resolve them); at most 2048 characters.
    url: String,
    /// The event types to send (`docs/EVENTS.md`), at least one.
    events: Vec<String>,
    /// At most 500 characters.
    #[serde(default)]
    description: String,
    /// Whether deliveries go now (default true).
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// Register a webhook endpoint
///
/// Requires `webhooks:manage`. Every event of the subscribed types is then
/// posted to the URL, signed per Standard Webhooks (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`) with the secret answered
/// this once (it is kept sealed). At most 25 endpoints per organization.
/// Audited (`WEBHOOK_CREATED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/webhooks",
    request_body = CreateInput,
    responses(
        (status = 201, description = "The endpoint and its secret, shown once", body = Created),
        (status = 400, description = "A malformed field: a URL that is not https to a public address, an unknown event type (`VALIDATION_ERROR`)"),
        (status = 409, description = "The organization has 25 endpoints already"),
    )))]
async fn create<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let input: CreateInput = rq.json(ctx)?;
    let mut problems = Vec::new();
    let url = match hooks::check_target(ctx, &input.url, false).await {
        Ok(target) => Some(target.url.to_string()),
        Err(why) => {
            problems.push(FieldError::new("url", why));
            None
        }
    };
    let events = hooks::parse_events(&input.events)
        .map_err(|e| problems.push(e))
        .ok();
    let description = hooks::parse_description(&input.description)
        .map_err(|e| problems.push(e))
        .ok();
    let (Some(url), Some(events), Some(description)) = (url, events, description) else {
        return Err(ApiError::Validation(problems));
    };
    let scope = principal.scope();
    let db = ctx.db();
    let id = ctx.new_uuid();
    let secret = sign::new_secret(ctx.random_bytes::<{ sign::KEY_BYTES }>());
    let sealed = hooks::seal_secret(ctx, &scope, id, &secret)?;
    let insert = webhook::insert(
        &scope,
        &webhook::NewWebhook {
            id,
            user_id: principal.user_id,
            url: &url,
            events: &events,
            description: &description,
            enabled: input.enabled,
            secret: &sealed,
        },
        hooks::MAX_WEBHOOKS,
    );
    let event = audit::Event {
        new_values: Some(json!({
            "url": hooks::target::audit_form(&url), "events": events, "description": description, "enabled": input.enabled,
        })),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::WebhookCreated, id)
    };
    let results = scope
        .batch(
            &db,
            vec![
                webhook::lock_endpoints(&scope),
                event.record_change(rq, insert)?,
            ],
        )
        .await?;
    let Some(webhook) = first_row::<webhook::Webhook>(&results, 1)? else {
        return Err(ApiError::Conflict {
            message: format!(
                "The organization has {} webhook endpoints, the most it may have; delete one first",
                hooks::MAX_WEBHOOKS
            ),
            details: Vec::new(),
        });
    };
    Reply::created(Created { secret, webhook })
}
