//! `POST /api/v1/bridges/enroll`: an edge bridge exchanges a join token for
//! its own credentials. No other authentication: `{token, version?,
//! hostname?}` -> 201 `{bridgeId, organizationId, name, apiKey}`; the key
//! (shown once) is the bridge's identity from then on. A token works once
//! and until it expires; an unknown, used or expired token is 401 without
//! saying which. Rate-limited per client address like other public routes.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::bridge_join_tokens::token_hash;
use crate::audit::{self, Outcome};
use crate::auth::api_key;
use crate::ctx::Ctx;
use crate::db::statement;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::params;
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

super::methods! {
    POST => enroll,
}

/// What a bridge's key may do: read and control its instruments, and
/// upload the raw data files of their runs (the file-drop driver).
pub const BRIDGE_SCOPES: &str =
    r#"["instruments:view","instruments:control","runs:view","runs:create"]"#;

/// A bridge's key has its own rate limit (requests a minute): batches,
/// heartbeats, command polls and file chunks of a busy lab.
pub const BRIDGE_RATE_LIMIT: i32 = 6000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    token: String,
    version: Option<String>,
    hostname: Option<String>,
}

#[derive(Deserialize)]
struct Invitation {
    id: uuid::Uuid,
    organization_id: uuid::Uuid,
    created_by: uuid::Uuid,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Enrolled {
    bridge_id: uuid::Uuid,
    organization_id: uuid::Uuid,
    name: String,
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
    let invitation: Invitation = db
        .fetch_optional(
            "SELECT id, organization_id, created_by, name FROM bridge_join_tokens \
             WHERE token_hash = $1::text::bytea AND used_at IS NULL AND expires_at > now()",
            params![token_hash(token)],
        )
        .await?
        .ok_or(rejected)?;

    let bridge_id = ctx.new_uuid();
    let key_id = ctx.new_uuid();
    let (key, prefix, hash) = api_key::new_key(ctx.random_bytes::<6>(), ctx.random_bytes::<32>());
    let event = audit::Event {
        id: ctx.new_uuid(),
        organization_id: Some(invitation.organization_id),
        user_id: None,
        event_type: "BRIDGE_ENROLLED",
        severity: "INFO",
        action: "Edge bridge enrolled",
        outcome: Outcome::Success,
        record_type: Some("bridge"),
        record_id: Some(bridge_id),
        old_values: None,
        new_values: Some(json!({
            "name": invitation.name,
            "version": version,
            "hostname": hostname,
            "apiKeyPrefix": prefix,
        })),
        metadata: json!({ "joinTokenId": invitation.id, "joinTokenCreatedBy": invitation.created_by }),
        reason: None,
    };
    // One transaction; `used_at = now()` marks the token this transaction
    // consumed (now() is the transaction's start), so a concurrent
    // enrolment with the same token creates nothing.
    let results = db
        .batch(
            vec![
                event.record_change(
                    rq,
                    statement(
                        "UPDATE bridge_join_tokens SET used_at = now() \
                         WHERE id = $1 AND used_at IS NULL AND expires_at > now() RETURNING id",
                        params![invitation.id],
                    ),
                ),
                statement(
                    format!(
                        "INSERT INTO api_keys (id, organization_id, user_id, key_prefix, key_hash, name, permissions, rate_limit) \
                         SELECT $2, organization_id, created_by, $3, $4::text::bytea, left('bridge: ' || name, 255), \
                                '{BRIDGE_SCOPES}'::jsonb, {BRIDGE_RATE_LIMIT} \
                         FROM bridge_join_tokens WHERE id = $1 AND used_at = now()"
                    ),
                    params![invitation.id, key_id, prefix, hash],
                ),
                statement(
                    "INSERT INTO bridges (id, organization_id, name, api_key_id, version, hostname, enrolled_by) \
                     SELECT $2, t.organization_id, t.name, k.id, $4, $5, t.created_by \
                     FROM bridge_join_tokens t JOIN api_keys k ON k.id = $3 \
                     WHERE t.id = $1 AND t.used_at = now()",
                    params![invitation.id, bridge_id, key_id, version, hostname],
                ),
                statement(
                    "UPDATE bridge_join_tokens SET bridge_id = $2 WHERE id = $1 AND used_at = now()",
                    params![invitation.id, bridge_id],
                ),
            ],
            Default::default(),
        )
        .await?;
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
