//! `/api/v1/webhooks/:id` (`webhooks:manage`): `GET` one endpoint, `PUT`
//! changes its URL, event types, description or enabled state (optimistic:
//! `If-Match`), `DELETE` removes it with its deliveries. Another
//! organization's endpoint is 404.

use http::header;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::audit::{self, EventType};
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::{Reply, etag};
use crate::error::{ApiError, FieldError};
use crate::model::rows;
use crate::model::webhook::{self, Webhook};
use crate::platform::Platform;
use crate::request::Rq;
use crate::webhook as hooks;

super::methods! {
    GET => show,
    PUT => update,
    DELETE => remove,
}

/// A deleted endpoint.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhookDeleted))]
struct Deleted {
    id: uuid::Uuid,
    deleted: bool,
}

/// One webhook endpoint
///
/// Requires `webhooks:manage`. The `ETag` is its version, for `If-Match`
/// on `PUT`.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/webhooks/{id}",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint", body = Webhook,
        headers(("ETag" = String, description = "Its version, quoted (`\"3\"`)"))))))]
async fn show<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let found = webhook::get(&ctx.db(), &principal.scope(), rq.uuid_param("id")?).await?;
    let version = found.version;
    Ok(Reply::ok(found)?.header(header::ETAG, etag(i64::from(version))))
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WebhookPatch))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Patch {
    /// The version read, when no `If-Match` header is sent.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    version: Option<Value>,
    /// `https` to a public address, checked as at registration.
    url: Option<String>,
    /// The event types to send, at least one.
    events: Option<Vec<String>>,
    description: Option<String>,
    /// `true` enables it again (clearing why it was disabled); `false`
    /// stops deliveries (pending ones wait, and go once it is enabled).
    enabled: Option<bool>,
}

/// Change a webhook endpoint
///
/// Requires `webhooks:manage`. The given fields replace the current ones.
/// Optimistic concurrency: the version read as `If-Match` (its `ETag`) or
/// `version`; 428 without either, 412 when it changed since. Audited
/// (`WEBHOOK_UPDATED`, old and new values of what changed).
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/api/v1/webhooks/{id}",
    params(
        ("id" = uuid::Uuid, Path, description = "The endpoint's id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The version read (its `ETag`); else `version` in the body")),
    request_body = Patch,
    responses(
        (status = 200, description = "The endpoint as it is now", body = Webhook,
            headers(("ETag" = String, description = "Its new version, quoted"))),
        (status = 412, description = "The endpoint changed since it was read"),
        (status = 428, description = "Neither `If-Match` nor `version` was sent"))))]
async fn update<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let id = rq.uuid_param("id")?;
    let patch: Patch = rq.json(ctx)?;
    let version = rq.expected_version(patch.version.as_ref())?;
    let mut problems = Vec::new();
    let url = match &patch.url {
        None => None,
        Some(raw) => match hooks::check_target(ctx, raw, false).await {
            Ok(target) => Some(target.url.to_string()),
            Err(why) => {
                problems.push(FieldError::new("url", why));
                None
            }
        },
    };
    let events = match &patch.events {
        None => None,
        Some(raw) => hooks::parse_events(raw).map_err(|e| problems.push(e)).ok(),
    };
    let description = match &patch.description {
        None => None,
        Some(raw) => hooks::parse_description(raw)
            .map_err(|e| problems.push(e))
            .ok(),
    };
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let scope = principal.scope();
    let db = ctx.db();
    let current = webhook::get(&db, &scope, id).await?;
    if i64::from(current.version) != version {
        return Err(ApiError::PreconditionFailed {
            given: version.to_string(),
            current: i64::from(current.version),
        });
    }
    let shown = |w: &Webhook| json!({ "url": w.url, "events": w.events, "description": w.description, "enabled": w.enabled });
    let audited = |v: Value| match v {
        Value::Object(mut map) => {
            if let Some(url) = map.get("url").and_then(Value::as_str) {
                let named = hooks::target::audit_form(url);
                map.insert("url".into(), Value::from(named));
            }
            Value::Object(map)
        }
        other => other,
    };
    let before = shown(&current);
    let mut after = before.clone();
    if let Some(map) = after.as_object_mut() {
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                map.insert(k.to_owned(), v);
            }
        };
        put("url", url.clone().map(Value::from));
        put("events", events.clone().map(Value::from));
        put("description", description.clone().map(Value::from));
        put("enabled", patch.enabled.map(Value::from));
    }
    let (old_values, new_values) = audit::changed_fields(&before, &after, &[]);
    if new_values.as_object().is_some_and(Map::is_empty) {
        return Ok(Reply::ok(current)?.header(header::ETAG, etag(version)));
    }
    let event = audit::Event {
        old_values: Some(audited(old_values)),
        new_values: Some(audited(new_values)),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::WebhookUpdated, id)
    };
    let change = webhook::update(
        &scope,
        id,
        current.version,
        &webhook::Changes {
            url: url.as_deref(),
            events: events.as_deref(),
            description: description.as_deref(),
            enabled: patch.enabled,
        },
    );
    let updated: Option<Webhook> = scope
        .fetch_optional(&db, event.record_change(rq, change)?)
        .await?;
    match updated {
        Some(updated) => {
            let version = updated.version;
            Ok(Reply::ok(updated)?.header(header::ETAG, etag(i64::from(version))))
        }
        // Changed between the read and the write.
        None => Err(ApiError::PreconditionFailed {
            given: version.to_string(),
            current: version + 1,
        }),
    }
}

/// Delete a webhook endpoint
///
/// Requires `webhooks:manage`. Removes it and its delivery log; nothing
/// more is sent to it. Audited (`WEBHOOK_DELETED`).
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/api/v1/webhooks/{id}",
    params(("id" = uuid::Uuid, Path, description = "The endpoint's id")),
    responses((status = 200, description = "Deleted", body = Deleted))))]
async fn remove<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::WebhooksManage)?;
    let id = rq.uuid_param("id")?;
    let scope = principal.scope();
    let db = ctx.db();
    let current = webhook::get(&db, &scope, id).await?;
    let event = audit::Event {
        old_values: Some(json!({
            "url": hooks::target::audit_form(&current.url),
            "events": current.events,
        })),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::WebhookDeleted, id)
    };
    let removed = scope
        .batch(
            &db,
            vec![event.record_change(rq, webhook::delete(&scope, id))?],
        )
        .await?;
    if rows::<Value>(&removed, 0)?.is_empty() {
        return Err(ApiError::NotFound);
    }
    Reply::ok(Deleted { id, deleted: true })
}
