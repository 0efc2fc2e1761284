//! `POST /api/auth/refresh`: a refresh token (body `{"refreshToken"}` for
//! API clients, or the `antevus_refresh` cookie for browsers) -> a new access
//! token and a new refresh token. The presented token is spent in the same
//! statement that issues its successor, so two concurrent uses cannot both
//! succeed. Presenting a spent token revokes the whole session family and is
//! audited as reuse.

use serde::Deserialize;

use crate::audit::{self, EventType};
use crate::auth::Role;
use crate::auth::session::{self, looks_like_refresh_token, new_refresh_token, token_hash};
use crate::auth::tokens::{TokenUser, token_reply};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{self, Scope};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefreshInput {
    refresh_token: Option<String>,
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
    let client = model::session::Client {
        ip: rq.client_ip().map(|ip| ip.to_string()),
        user_agent: rq.user_agent(),
    };
    let rotated =
        model::session::rotate_refresh_token(&db, &presented, successor, &next_hash, &client)
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
            None,
        );
    }

    // Not rotated: unknown, expired, inactive user, or a spent token (reuse).
    let spent = model::session::refresh_token_state(&db, &presented).await?;
    if let Some(spent) = spent.filter(|s| s.reused) {
        let event = audit::Event {
            organization_id: Some(spent.organization_id),
            user_id: Some(spent.user_id),
            record_id: Some(spent.family_id),
            ..audit::Event::new(ctx.new_uuid(), EventType::AuthRefreshReuse)
        };
        // The spent token names its organization.
        let scope = Scope::account(spent.organization_id);
        scope
            .batch(
                &db,
                vec![
                    model::session::end_family(
                        &scope,
                        spent.family_id,
                        model::session::Ending::Reuse,
                    ),
                    event.insert(rq)?,
                ],
            )
            .await?;
    }
    Err(ApiError::TokenInvalid("refresh token rejected"))
}
