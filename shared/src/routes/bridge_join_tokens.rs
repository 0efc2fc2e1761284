//! `POST /api/v1/bridges/join-tokens` (`keys:manage`): a single-use token
//! that enrolls one edge bridge (`edge-bridge enroll --url ... --token
//! ...`). `{name, expiresInMinutes?}` (default 60, at most 7 days) -> 201
//! with `token` (`bj_...`), shown once and stored only as its SHA-256.

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
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    POST => create,
}

/// Longest a join token lives, in minutes (7 days).
const MAX_MINUTES: i64 = 7 * 24 * 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Input {
    name: String,
    expires_in_minutes: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    id: uuid::Uuid,
    name: String,
    token: String,
    expires_at: Timestamp,
}

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
