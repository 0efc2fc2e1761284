//! `POST /api/auth/mfa/verify`: the second step of a login. `{challengeToken,
//! code}` (the authenticator's current code) or `{challengeToken,
//! recoveryCode}` (one of the single-use codes) -> the tokens, as
//! `POST /api/auth/login` gives them without a second factor.
//!
//! A code counts once: its 30-second step must be later than the last one
//! used. A wrong, used or expired code is `401` and counts toward the
//! account's lockout like a wrong password (`AUTH_MFA_FAILURE`, then
//! `AUTH_ACCOUNT_LOCKED`); a locked or deactivated account is refused
//! whatever the code. The challenge lasts five minutes. The session's
//! `AUTH_LOGIN_SUCCESS` names the factor used (`metadata.secondFactor`); a
//! recovery code is also recorded on its own (`MFA_RECOVERY_CODE_USED`).

use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::Role;
use crate::auth::mfa::{self, Purpose};
use crate::auth::second_factor::recovery_code_hash;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{Id, Scope, second_factor, user};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

super::methods! {
    POST => verify,
}

/// The challenge and exactly one of `code` and `recoveryCode`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaVerifyInput))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    /// The `verify` challenge of `POST /api/auth/login`.
    challenge_token: String,
    /// The authenticator's current code.
    code: Option<String>,
    /// One of the unused recovery codes; it is spent.
    recovery_code: Option<String>,
}

/// Complete a login with the second factor
///
/// Public (the challenge is the credential); rate limited (authentication
/// class) per client address and user. `{challengeToken, code}` (the
/// authenticator's current code) or `{challengeToken, recoveryCode}` (a
/// single-use recovery code) -> the tokens, as `POST /api/auth/login`
/// gives them without a second factor: the refresh token in the body and
/// as the httpOnly `antevus_refresh` cookie. A code counts once (its
/// 30-second step must be later than the last one used). A wrong, used or
/// expired code is `401` and counts toward the account's lockout like a
/// wrong password; a locked or deactivated account is refused whatever the
/// code. The challenge lasts five minutes (then `401 AUTH_TOKEN_EXPIRED`:
/// sign in again). Audited (`AUTH_MFA_FAILURE`, `AUTH_ACCOUNT_LOCKED`,
/// `MFA_RECOVERY_CODE_USED`, `AUTH_LOGIN_SUCCESS` naming the factor used).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/mfa/verify", security(()),
    request_body = Input,
    responses(
        (status = 200, description = "Signed in", body = crate::auth::tokens::TokenReply,
            headers(("Set-Cookie" = String, description = "`antevus_refresh=<refreshToken>; Path=/api/auth; Max-Age=<refreshExpiresIn>; HttpOnly; Secure; SameSite=Strict`"))),
        (status = 400, description = "Neither or both of `code` and `recoveryCode` (`VALIDATION_ERROR`)"),
        (status = 401, description = "A wrong, used or expired code, a locked or deactivated account (`AUTH_INVALID_CREDENTIALS`), or a rejected or expired challenge (`AUTH_TOKEN_INVALID`, `AUTH_TOKEN_EXPIRED`)"),
        (status = 429, description = "Too many attempts (`RATE_LIMIT_EXCEEDED`)"),
    )))]
async fn verify<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: Input = rq.json(ctx)?;
    let proof = match (input.code.as_deref(), input.recovery_code.as_deref()) {
        (Some(code), None) if !code.trim().is_empty() => Proof::Code(code.trim()),
        (None, Some(code)) if !code.trim().is_empty() => Proof::Recovery(code.trim()),
        _ => {
            return Err(ApiError::invalid(
                "code",
                "Give the code your authenticator shows (code) or one of your recovery codes (recoveryCode)",
            ));
        }
    };
    let claims = mfa::read_challenge(ctx, &input.challenge_token, Purpose::Verify)?;
    let scope = Scope::account(claims.org);
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("mfa:{}:{}", rq.client_key(), claims.sub),
        Some(&scope),
    )
    .await?;
    let db = ctx.db();
    let user = user::account(&db, &scope, claims.sub)
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    let role = Role::parse(&user.role).ok_or_else(|| ApiError::internal("unknown role"))?;
    let refuse = |reason: &'static str| audit::Event {
        organization_id: Some(user.organization_id),
        user_id: Some(user.id),
        record_id: Some(user.id),
        metadata: json!({ "reason": reason }),
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthMfaFailure)
    };
    if !user.is_active || user.locked {
        let reason = if user.locked {
            "account locked"
        } else {
            "account inactive"
        };
        scope.batch(&db, vec![refuse(reason).insert(rq)?]).await?;
        return Err(ApiError::InvalidCredentials);
    }
    // The factor may have been reset since the password step.
    let Some(factor) = second_factor::load(&db, &scope, user.id)
        .await?
        .filter(|f| f.confirmed)
    else {
        scope
            .batch(&db, vec![refuse("no second factor").insert(rq)?])
            .await?;
        return Err(ApiError::SecondFactorRefused);
    };
    let method = match proof {
        Proof::Code(code) => {
            // The step is spent before the session opens.
            if !mfa::spend_code(ctx, &scope, user.id, &factor, code).await? {
                super::signing_in::count_failure(ctx, rq, &user, refuse("wrong or used code"))
                    .await?;
                return Err(ApiError::SecondFactorRefused);
            }
            "totp"
        }
        Proof::Recovery(code) => {
            let used = audit::Event {
                organization_id: Some(user.organization_id),
                user_id: Some(user.id),
                record_id: Some(user.id),
                ..audit::Event::new(ctx.new_uuid(), EventType::MfaRecoveryCodeUsed)
            };
            let spend =
                second_factor::use_recovery_code(&scope, user.id, &recovery_code_hash(code));
            let spent: Option<Id> = scope
                .fetch_optional(&db, used.record_change(rq, spend)?)
                .await?;
            if spent.is_none() {
                super::signing_in::count_failure(
                    ctx,
                    rq,
                    &user,
                    refuse("wrong or used recovery code"),
                )
                .await?;
                return Err(ApiError::SecondFactorRefused);
            }
            "recovery_code"
        }
    };
    super::signing_in::token_reply(
        ctx,
        rq,
        &user,
        role,
        json!({ "secondFactor": method }),
        None,
    )
    .await
}

/// What stands for the second factor.
enum Proof<'a> {
    Code(&'a str),
    Recovery(&'a str),
}
