//! `POST /api/v1/bridges/enroll`: an edge bridge exchanges a join token for
//! its own credentials. No other authentication: `{token, version?,
//! hostname?}` -> 201 `{bridgeId, organizationId, name, apiKey}`; the key
//! (shown once) is the bridge's identity from then on. A token works once
//! and until it expires; an unknown, used or expired token is 401 without
//! saying which. Rate-limited per client address like other public routes.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::api_key;
use crate::auth::session::token_hash;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, bridge};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

super::methods! {
    POST => enroll,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = EnrollInput))]
#[serde(deny_unknown_fields)]
struct Input {
    /// The join token (`bj_...`).
    token: String,
    /// The agent's version: at most 64 printable characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    version: Option<String>,
    /// At most 255 printable characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 255))]
    hostname: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BridgeEnrollment))]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    bridge_id: uuid::Uuid,
    organization_id: uuid::Uuid,
    /// The join token's name.
    name: String,
    /// The bridge's API key (`ak_...`), shown this once: its credential
    /// from now on (`Authorization: Bearer` or `X-API-Key`).
    api_key: String,
}

fn short(
    field: &str,
    value: Option<String>,
    max: usize,
    problems: &mut Vec<FieldError>,
) -> Option<String> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value
        .as_ref()
        .is_some_and(|v| !crate::domain::printable_within(v, max))
    {
        problems.push(FieldError::new(
            field,
            format!("Must be at most {max} printable characters"),
        ));
        return None;
    }
    value
}

/// Enroll an edge bridge
///
/// Public: the join token is the only credential. Exchanges a join token
/// (from `POST /api/v1/bridges/join-tokens`) for the bridge's own API key,
/// shown once, limited to what a bridge does (`instruments:view`,
/// `instruments:control`, `runs:view`, `runs:create`). A token works once
/// and until it expires: an unknown, used or expired token is 401 without
/// saying which. Rate limited per client address. Audited
/// (`BRIDGE_ENROLLED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/bridges/enroll", security(()),
    request_body = Input,
    responses(
        (status = 201, description = "Enrolled: the bridge and its key", body = Enrolled),
        (status = 401, description = "The token is unknown, used or expired"))))]
async fn enroll<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Public,
        &format!("bridge-enroll:{}", rq.client_key()),
        None,
    )
    .await?;
    let input: Input = rq.json(ctx)?;
    let mut problems = Vec::new();
    let version = short("version", input.version, 64, &mut problems);
    let hostname = short("hostname", input.hostname, 255, &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let rejected = ApiError::TokenInvalid("join token rejected");
    let token = input.token.trim();
    if !token.starts_with("bj_") || token.len() > 100 {
        return Err(rejected);
    }
    let db = ctx.db();
    let invitation = bridge::join_token_by_hash(&db, &token_hash(token))
        .await?
        .ok_or(rejected)?;

    let bridge_id = ctx.new_uuid();
    let key_id = ctx.new_uuid();
    let (key, prefix, hash) = api_key::new_key(ctx.random_bytes::<6>(), ctx.random_bytes::<32>());
    let event = audit::Event {
        organization_id: Some(invitation.organization_id),
        record_id: Some(bridge_id),
        new_values: Some(json!({
            "name": invitation.name,
            "version": version,
            "hostname": hostname,
            "apiKeyPrefix": prefix,
        })),
        metadata: json!({ "joinTokenId": invitation.id, "joinTokenCreatedBy": invitation.created_by }),
        ..audit::Event::new(ctx.new_uuid(), EventType::BridgeEnrolled)
    };
    // One transaction; `used_at = now()` marks the token this transaction
    // consumed (now() is the transaction's start), so a concurrent
    // enrolment with the same token creates nothing.
    let scope = Scope::bridge(invitation.organization_id);
    let enrolment = bridge::Enrolment {
        join_token_id: invitation.id,
        bridge_id,
        key_id,
        key_prefix: &prefix,
        key_hash: &hash,
        version: version.as_deref(),
        hostname: hostname.as_deref(),
    };
    let (spend, create) = bridge::enroll(&scope, &enrolment);
    let mut statements = vec![event.record_change(rq, spend)?];
    statements.extend(create);
    let results = scope.batch(&db, statements).await?;
    if results.first().is_none_or(|r| r.rows.is_empty()) {
        return Err(ApiError::TokenInvalid("join token rejected"));
    }
    Reply::created(Enrolled {
        bridge_id,
        organization_id: invitation.organization_id,
        name: invitation.name,
        api_key: key,
    })
}
