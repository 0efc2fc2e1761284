//! `POST /api/auth/refresh`: a refresh token (body `{"refreshToken"}` for
//! API clients, or the `antevus_refresh` cookie for browsers) -> a new access
//! token and a new refresh token. The presented token is spent in the same
//! statement that issues its successor, so two concurrent uses cannot both
//! succeed. Presenting a spent token revokes the whole session family and is
//! audited as reuse.

use serde::Deserialize;
use serde_json::json;

use super::auth_login::{TokenUser, token_reply};
use crate::audit::{self, Outcome};
use crate::auth::Role;
use crate::auth::session::{self, looks_like_refresh_token, new_refresh_token, token_hash};
use crate::ctx::Ctx;
use crate::db::{BatchOptions, statement};
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::params;
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefreshInput {
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct Rotated {
    family_id: uuid::Uuid,
    user_id: uuid::Uuid,
    organization_id: uuid::Uuid,
    email: String,
    name: String,
    role: String,
    expires_in: f64,
}

#[derive(Deserialize)]
struct Spent {
    family_id: uuid::Uuid,
    user_id: uuid::Uuid,
    organization_id: uuid::Uuid,
    reused: bool,
}

super::methods! {
    POST => refresh,
}

async fn refresh<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let from_body = if rq.req.body().iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        rq.json::<RefreshInput, P>(ctx)?.refresh_token
    };
    let token = from_body
        .or_else(|| session::refresh_token_from_cookies(rq.req.headers()))
        .ok_or_else(|| {
            ApiError::invalid(
                "refreshToken",
                "A refresh token is required (body or cookie)",
            )
        })?;
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("refresh:{}", rq.client_key()),
        None,
    )
    .await?;
    if !looks_like_refresh_token(&token) {
        return Err(ApiError::TokenInvalid("refresh token rejected"));
    }
    let presented = token_hash(&token);
    let successor = ctx.new_uuid();
    let (next_token, next_hash) = new_refresh_token(ctx.random_bytes::<32>());
    let db = ctx.db();
    let rotated: Option<Rotated> = db
        .fetch_optional(
            "WITH spent AS ( \
               UPDATE sessions SET revoked_at = now(), revoked_reason = 'rotated', replaced_by = $2, last_used_at = now() \
               WHERE token_hash = $1::text::bytea AND revoked_at IS NULL AND expires_at > now() \
               RETURNING organization_id, user_id, family_id, expires_at), \
             fresh AS ( \
               INSERT INTO sessions (id, organization_id, user_id, token_hash, family_id, ip_address, user_agent, expires_at) \
               SELECT $2, s.organization_id, s.user_id, $3::text::bytea, s.family_id, $4::inet, $5, s.expires_at \
               FROM spent s JOIN users u ON u.id = s.user_id WHERE u.is_active \
               RETURNING family_id, user_id, organization_id, expires_at) \
             SELECT f.family_id, f.user_id, f.organization_id, u.email, u.name, u.role, \
                    extract(epoch FROM f.expires_at - now())::float8 AS expires_in \
             FROM fresh f JOIN users u ON u.id = f.user_id",
            params![presented, successor, next_hash, rq.client_ip().map(|ip| ip.to_string()), rq.user_agent()],
        )
        .await?;
    if let Some(r) = rotated {
        let role =
            Role::parse(&r.role).ok_or_else(|| ApiError::internal("unknown role in database"))?;
        let user = TokenUser {
            id: r.user_id,
            organization_id: r.organization_id,
            email: r.email,
            name: r.name,
            role,
        };
        return token_reply(
            ctx,
            user,
            r.family_id,
            next_token,
            r.expires_in.max(0.0) as i64,
        );
    }

    // Not rotated: unknown, expired, inactive user, or a spent token (reuse).
    let spent: Option<Spent> = db
        .fetch_optional(
            "SELECT family_id, user_id, organization_id, (revoked_reason = 'rotated') AS reused \
             FROM sessions WHERE token_hash = $1::text::bytea",
            params![presented],
        )
        .await?;
    if let Some(spent) = spent.filter(|s| s.reused) {
        let event = audit::Event {
            id: ctx.new_uuid(),
            organization_id: Some(spent.organization_id),
            user_id: Some(spent.user_id),
            event_type: "AUTH_REFRESH_REUSE",
            severity: "CRITICAL",
            action: "Spent refresh token presented again; session family revoked",
            outcome: Outcome::Denied,
            record_type: Some("session"),
            record_id: Some(spent.family_id),
            old_values: None,
            new_values: None,
            metadata: json!({}),
            reason: None,
        };
        db.batch(
            vec![
                statement(
                    "UPDATE sessions SET revoked_at = now(), revoked_reason = 'reuse' \
                     WHERE family_id = $1 AND revoked_at IS NULL",
                    params![spent.family_id],
                ),
                event.insert(rq),
            ],
            BatchOptions::default(),
        )
        .await?;
    }
    Err(ApiError::TokenInvalid("refresh token rejected"))
}
