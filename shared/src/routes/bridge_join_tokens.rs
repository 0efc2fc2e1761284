//! `/api/v1/bridges/join-tokens` (`keys:manage`): `POST` makes a
//! single-use token that enrolls one edge bridge (`edge-bridge enroll --url
//! ... --token ...`). `{name, expiresInMinutes?}` (default 60, at most 7
//! days) -> 201 with `token` (`bj_...`), shown once and stored only as its
//! SHA-256. `GET` lists the organization's tokens (never the token), newest
//! first, each active, used, expired or revoked.

use crate::domain::Timestamp;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::session::token_hash;
use crate::auth::{self, Permission};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::bridge;
use crate::model::page::Items;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => list,
    POST => create,
}

/// The organization's bridge join tokens
///
/// Requires `keys:manage`. Newest first (at most 500): name, who made it,
/// when it expires, whether it is active, used (and by which bridge),
/// expired or revoked. Never the token itself.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/bridges/join-tokens",
    responses((status = 200, description = "The join tokens", body = Items<bridge::JoinTokenListed>))))]
async fn list<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::KeysManage)?;
    let items = bridge::join_tokens(&ctx.db(), &principal.scope()).await?;
    Reply::ok(Items { items })
}

/// Longest a join token lives, in minutes (7 days).
const MAX_MINUTES: i64 = 7 * 24 * 60;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = JoinTokenInput))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Input {
    /// The bridge's name once enrolled: 1 to 255 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    name: String,
    /// How long the token works, 1 to 10080 minutes (7 days); default 60.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10080))]
    expires_in_minutes: Option<i64>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = JoinToken))]
#[serde(rename_all = "camelCase")]
struct Created {
    id: uuid::Uuid,
    name: String,
    /// `bj_...`: shown this once (only its SHA-256 is stored); give it to
    /// `edge-bridge enroll --url ... --token ...`.
    token: String,
    /// It enrolls one bridge until then.
    expires_at: Timestamp,
}

/// Create a bridge join token
///
/// Requires `keys:manage`. A single-use token that enrolls one edge bridge
/// (`POST /api/v1/bridges/enroll`) until it expires (default 60 minutes,
/// at most 7 days). The token is in this answer only. Audited
/// (`BRIDGE_JOIN_TOKEN_CREATED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/v1/bridges/join-tokens",
    request_body = Input,
    responses((status = 201, description = "The token, shown once", body = Created))))]
async fn create<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::KeysManage)?;
    let input: Input = rq.json(ctx)?;
    let name = input.name.trim().to_owned();
    let mut problems = Vec::new();
    if name.is_empty() || name.chars().count() > 255 {
        problems.push(FieldError::new("name", "Must be 1 to 255 characters"));
    }
    let minutes = input.expires_in_minutes.unwrap_or(60);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        problems.push(FieldError::new(
            "expiresInMinutes",
            format!("Must be from 1 to {MAX_MINUTES}"),
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let id = ctx.new_uuid();
    let token = format!(
        "bj_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ctx.random_bytes::<32>())
    );
    let expires_at = ctx.now() + time::Duration::minutes(minutes);
    let event = audit::Event {
        new_values: Some(
            json!({ "name": name, "expiresAt": expires_at.format(&time::format_description::well_known::Rfc3339).ok() }),
        ),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            EventType::BridgeJoinTokenCreated,
            id,
        )
    };
    let scope = principal.scope();
    let insert = bridge::insert_join_token(
        &scope,
        id,
        &token_hash(&token),
        &name,
        principal.user_id,
        expires_at,
    );
    scope
        .batch(&ctx.db(), vec![event.record_change(rq, insert)?])
        .await?;
    Reply::created(Created {
        id,
        name,
        token,
        expires_at: expires_at.into(),
    })
}
