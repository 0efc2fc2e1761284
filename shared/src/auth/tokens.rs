//! What login and refresh answer: a signed access token and the refresh
//! token, with the refresh cookie for browsers.

use http::header;
use serde::Serialize;

use super::{Role, jwt, session};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::platform::Platform;

/// The user part of login and refresh replies.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenUser {
    pub id: uuid::Uuid,
    pub organization_id: uuid::Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// What login and refresh return.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenReply {
    /// The access token, a signed JWT (EdDSA; keys at `GET /api/auth/jwks`):
    /// send it as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token is valid.
    pub expires_in: i64,
    /// The refresh token (`rt_...`, opaque, single use: each refresh
    /// answers a new one). Also set as the httpOnly `antevus_refresh`
    /// cookie (path `/api/auth`) for browsers.
    pub refresh_token: String,
    /// Seconds the refresh token (the session) is valid.
    pub refresh_expires_in: i64,
    pub user: TokenUser,
    /// The recovery codes of a second factor confirmed as this session
    /// opened (shown this once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// Signs an access token for `user` in session family `sid`.
pub fn access_token<P: Platform>(
    ctx: &Ctx<P>,
    user: &TokenUser,
    sid: uuid::Uuid,
) -> Result<String, ApiError> {
    let claims = jwt::AccessClaims {
        iss: ctx.config.tokens()?.issuer.clone(),
        aud: ctx.config.tokens()?.audience.clone(),
        sub: user.id,
        org: user.organization_id,
        role: user.role.as_str().to_owned(),
        sid,
        jti: ctx.new_uuid(),
    };
    jwt::sign(
        ctx.config.token_signing_key()?,
        &claims,
        ctx.now(),
        ctx.config.tokens()?.access_ttl_secs,
    )
    .map_err(ApiError::internal)
}

/// The reply of login and refresh, with the refresh cookie for browsers
/// (and `recovery_codes` when a second factor was confirmed to sign in).
pub fn token_reply<P: Platform>(
    ctx: &Ctx<P>,
    user: TokenUser,
    sid: uuid::Uuid,
    refresh_token: String,
    refresh_expires_in: i64,
    recovery_codes: Option<Vec<String>>,
) -> Result<Reply, ApiError> {
    let access_token = access_token(ctx, &user, sid)?;
    let cookie = session::refresh_cookie(&refresh_token, refresh_expires_in);
    Ok(Reply::ok(TokenReply {
        access_token,
        token_type: "Bearer",
        expires_in: ctx.config.tokens()?.access_ttl_secs,
        refresh_token,
        refresh_expires_in,
        user,
        recovery_codes,
    })?
    .header(header::SET_COOKIE, cookie))
}
