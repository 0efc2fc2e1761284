//! Signing in with a second factor: the challenge the password step
//! yields (a short-lived signed token, never a session), the sealed TOTP
//! key, and checking a code against it. The routes (`auth-login`,
//! `auth-mfa-*`, `run-signatures`) record what happens.

use super::jwt::{self, CHALLENGE_TOKEN_TYPE, ChallengeClaims};
use super::second_factor;
use crate::ctx::Ctx;
use crate::error::ApiError;
use crate::model::second_factor::{Factor, use_step};
use crate::model::{Id, Scope};
use crate::platform::Platform;

/// How long a challenge stands: five minutes to open the authenticator.
pub const CHALLENGE_TTL_SECS: i64 = 300;

/// What a challenge lets its holder do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Give a code of the confirmed factor (or a recovery code).
    Verify,
    /// Enrol a factor first: the organization requires one for the role.
    Enroll,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Enroll => "enroll",
        }
    }
}

/// A challenge for `user_id` of `organization_id` (the password was right).
pub fn challenge<P: Platform>(
    ctx: &Ctx<P>,
    user_id: uuid::Uuid,
    organization_id: uuid::Uuid,
    purpose: Purpose,
) -> Result<String, ApiError> {
    let tokens = ctx.config.tokens()?;
    let claims = ChallengeClaims {
        iss: tokens.issuer.clone(),
        aud: tokens.audience.clone(),
        sub: user_id,
        org: organization_id,
        purpose: purpose.as_str().to_owned(),
        jti: ctx.new_uuid(),
    };
    jwt::sign_typed(
        ctx.config.token_signing_key()?,
        &claims,
        CHALLENGE_TOKEN_TYPE,
        ctx.now(),
        CHALLENGE_TTL_SECS,
    )
    .map_err(ApiError::internal)
}

/// The challenge `token` for `purpose`; an expired one is
/// `AUTH_TOKEN_EXPIRED` (sign in again), any other fault one answer.
pub fn read_challenge<P: Platform>(
    ctx: &Ctx<P>,
    token: &str,
    purpose: Purpose,
) -> Result<ChallengeClaims, ApiError> {
    let tokens = ctx.config.tokens()?;
    let claims: ChallengeClaims = jwt::verify_typed(
        &tokens.public_keys,
        token,
        CHALLENGE_TOKEN_TYPE,
        ctx.now(),
        &tokens.issuer,
        &tokens.audience,
    )
    .map_err(|e| match e {
        jwt::TokenError::Expired => ApiError::TokenExpired,
        _ => ApiError::TokenInvalid("second-factor challenge rejected"),
    })?;
    if claims.purpose != purpose.as_str() {
        return Err(ApiError::TokenInvalid("second-factor challenge rejected"));
    }
    Ok(claims)
}

/// A new TOTP key sealed for `user_id`'s row, with what enrolment shows.
pub fn new_key<P: Platform>(
    ctx: &Ctx<P>,
    user_id: uuid::Uuid,
    account: &str,
) -> Result<(String, second_factor::Enrolment), ApiError> {
    let secret = ctx.random_bytes::<20>();
    let enrolment = second_factor::enrolment(&secret, account)
        .ok_or_else(|| ApiError::internal("TOTP key refused"))?;
    let sealed = ctx.config.sealing_keys()?.seal(
        &secret,
        &second_factor::sealing_context(user_id),
        ctx.random_bytes::<12>(),
    );
    Ok((sealed, enrolment))
}

/// The step `code` belongs to for `user_id`'s factor, if it is one not used
/// before (see [`second_factor::matching_step`]).
pub fn step_of<P: Platform>(
    ctx: &Ctx<P>,
    user_id: uuid::Uuid,
    factor: &Factor,
    code: &str,
) -> Result<Option<i64>, ApiError> {
    let secret = ctx
        .config
        .sealing_keys()?
        .open(
            &factor.secret_sealed,
            &second_factor::sealing_context(user_id),
        )
        .map_err(ApiError::internal)?;
    Ok(second_factor::matching_step(
        &secret,
        code.trim(),
        ctx.now().unix_timestamp(),
        factor.last_used_step,
    ))
}

/// Spends `code` of `user_id`'s confirmed factor: whether it was a current
/// code of a step not used before. Of two requests with one code only one
/// is told yes (one conditional `UPDATE`).
pub async fn spend_code<P: Platform>(
    ctx: &Ctx<P>,
    scope: &Scope,
    user_id: uuid::Uuid,
    factor: &Factor,
    code: &str,
) -> Result<bool, ApiError> {
    let Some(step) = step_of(ctx, user_id, factor, code)? else {
        return Ok(false);
    };
    let spent: Option<Id> = scope
        .fetch_optional(&ctx.db(), use_step(scope, user_id, step))
        .await?;
    Ok(spent.is_some())
}

/// Fresh recovery codes: the codes to show once, and their hashes to keep.
pub fn recovery_codes<P: Platform>(ctx: &Ctx<P>) -> (Vec<String>, Vec<String>) {
    let codes: Vec<String> = (0..second_factor::RECOVERY_CODES)
        .map(|_| second_factor::recovery_code(ctx.random_bytes::<8>()))
        .collect();
    let hashes = codes
        .iter()
        .map(|c| second_factor::recovery_code_hash(c))
        .collect();
    (codes, hashes)
}
