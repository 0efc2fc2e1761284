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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefreshInput {
    /// The refresh token (`rt_...`); left out, the `antevus_refresh`
    /// cookie's is used.
    refresh_token: Option<String>,
}

super::methods! {
    POST => refresh,
}

/// Trade a refresh token for new tokens
///
/// Public (the refresh token is the credential); rate limited
/// (authentication class) per client address. The refresh token comes
/// from the body (`{"refreshToken"}`, API clients) or, when the body is
/// empty or names none, from the httpOnly `antevus_refresh` cookie
/// (browsers). It is single
/// use: it is spent in the same statement that issues its successor, so of
/// two concurrent uses one succeeds. The answer is a new access token and
/// a new refresh token (in the body and set again as the cookie); the
/// session keeps its end (`refreshExpiresIn` counts down to it). An
/// unknown, expired or spent token is `401 AUTH_TOKEN_INVALID`;
/// presenting a spent one again ends the whole session (all its tokens)
/// and is audited (`AUTH_REFRESH_REUSE`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/refresh", security(()),
    request_body(content = Option<RefreshInput>, description = "Optional: no body (or no `refreshToken`) uses the `antevus_refresh` cookie"),
    responses(
        (status = 200, description = "New tokens", body = crate::auth::tokens::TokenReply,
            headers(("Set-Cookie" = String, description = "The new refresh token: `antevus_refresh=<refreshToken>; Path=/api/auth; Max-Age=<refreshExpiresIn>; HttpOnly; Secure; SameSite=Strict`"))),
        (status = 400, description = "No refresh token in the body or the cookie (`VALIDATION_ERROR`)"),
        (status = 401, description = "The refresh token is unknown, expired or spent (`AUTH_TOKEN_INVALID`)"),
        (status = 429, description = "Too many attempts (`RATE_LIMIT_EXCEEDED`)"),
    )))]
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
