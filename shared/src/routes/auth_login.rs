//! `POST /api/auth/login`: e-mail + password -> access token + refresh token.
//!
//! Unknown e-mail, wrong password, locked and deactivated accounts all give
//! the same `401 AUTH_INVALID_CREDENTIALS`, after the same argon2id work (a
//! dummy hash is verified when the e-mail is unknown). After
//! [`MAX_FAILED_LOGINS`] failures in a row the account is locked for
//! [`LOCKOUT_MINUTES`] minutes (then unlocks by itself), and the lock is
//! audited. A success opens a session family (see `auth::session`), unless
//! the account has a second factor, or its role must have one: then the
//! answer is a short-lived challenge (`mfaRequired`), and the session opens
//! at `POST /api/auth/mfa/verify` (or, to enrol first, `/api/auth/mfa/enroll`
//! and `/confirm`).

use serde::Deserialize;
use serde_json::json;

use super::signing_in;
use crate::audit::{self, EventType};
use crate::auth::mfa::{self, Purpose};
use crate::auth::{Role, password};
use crate::ctx::Ctx;
use crate::domain::Email;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, second_factor, user};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

/// Longest password accepted (argon2 has no limit; this bounds the work).
pub const MAX_PASSWORD_CHARS: usize = 1024;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct LoginInput {
    email: String,
    /// At most 1024 characters.
    password: String,
}

super::methods! {
    POST => login,
}

/// Sign in with e-mail and password
///
/// Public; rate limited (authentication class) per client address and
/// e-mail. Unknown e-mail, wrong password, locked and deactivated accounts
/// all answer the same `401 AUTH_INVALID_CREDENTIALS`, after the same
/// password-hashing work. After 5 wrong passwords in a row the account is
/// locked for 15 minutes (then unlocks by itself). Every attempt is
/// audited (`AUTH_LOGIN_FAILURE`, `AUTH_ACCOUNT_LOCKED`,
/// `AUTH_LOGIN_SUCCESS`).
///
/// The answer is one of two shapes:
/// - **Tokens** (`TokenReply`): a session opened. The refresh token is in
///   the body and also set as the httpOnly `antevus_refresh` cookie
///   (`Set-Cookie`), for browsers.
/// - **Second step** (`LoginSecondStep`, `mfaRequired: true`): the
///   account has a second factor (`purpose` `verify`: continue at
///   `POST /api/auth/mfa/verify`), or its role must have one and it has
///   none (`purpose` `enroll`: `POST /api/auth/mfa/enroll`, then
///   `POST /api/auth/mfa/confirm`). No session and no cookie yet; the
///   challenge token lasts five minutes. Audited (`AUTH_MFA_REQUIRED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/login", security(()),
    request_body = LoginInput,
    responses(
        (status = 200, description = "Signed in (tokens), or a second factor is due (`mfaRequired`)", body = LoginAnswer,
            headers(("Set-Cookie" = String, description = "Only with tokens: `antevus_refresh=<refreshToken>; Path=/api/auth; Max-Age=<refreshExpiresIn>; HttpOnly; Secure; SameSite=Strict`"))),
        (status = 400, description = "The e-mail or password is malformed (`VALIDATION_ERROR`)"),
        (status = 401, description = "Wrong e-mail or password, or the account is locked or deactivated (`AUTH_INVALID_CREDENTIALS`)"),
        (status = 429, description = "Too many attempts (`RATE_LIMIT_EXCEEDED`)"),
    )))]
async fn login<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: LoginInput = rq.json(ctx)?;
    let mut problems = Vec::new();
    let email = Email::parse(&input.email)
        .map_err(|m| problems.push(FieldError::new("email", m)))
        .ok();
    if input.password.is_empty() {
        problems.push(FieldError::new("password", "Password is required"));
    } else if input.password.chars().count() > MAX_PASSWORD_CHARS {
        problems.push(FieldError::new(
            "password",
            format!("Password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let email = match email {
        Some(email) if problems.is_empty() => email,
        _ => return Err(ApiError::Validation(problems)),
    };
    // Per client address and account: brute force on one account is slowed
    // here and stopped by the lockout; a lab behind one address is not.
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("login:{}:{}", rq.client_key(), email.as_str()),
        None,
    )
    .await?;

    let db = ctx.db();
    let user = user::account_for_login(&db, email.as_str()).await?;

    let Some(user) = user else {
        password::verify_dummy(&input.password);
        record_failure(ctx, rq, None, None, "unknown e-mail").await?;
        return Err(ApiError::InvalidCredentials);
    };
    // Verify even when locked or inactive: every refusal costs the same.
    let verified = password::verify(&input.password, &user.password_hash);
    let role = Role::parse(&user.role);
    let (true, true, false, Some(role)) = (verified, user.is_active, user.locked, role) else {
        let reason = if user.locked {
            "account locked"
        } else if !verified {
            "wrong password"
        } else {
            "account inactive"
        };
        if reason == "wrong password" {
            let failure =
                signing_in::failure_event(ctx, Some(user.organization_id), Some(user.id), reason);
            signing_in::count_failure(ctx, rq, &user, failure).await?;
        } else {
            record_failure(ctx, rq, Some(user.organization_id), Some(user.id), reason).await?;
        }
        return Err(ApiError::InvalidCredentials);
    };

    // The account names its organization: from here on, queries are
    // confined to it. An account with a second factor, or whose role the
    // organization requires one for, gets a challenge, not a session.
    let scope = Scope::account(user.organization_id);
    let standing = second_factor::standing(&db, &scope, user.id, role.as_str()).await?;
    let purpose = if standing.has_factor {
        Some(Purpose::Verify)
    } else if standing.required {
        Some(Purpose::Enroll)
    } else {
        None
    };
    if let Some(purpose) = purpose {
        let challenge = mfa::challenge(ctx, user.id, user.organization_id, purpose)?;
        let event = audit::Event {
            organization_id: Some(user.organization_id),
            user_id: Some(user.id),
            record_id: Some(user.id),
            metadata: json!({ "purpose": purpose.as_str() }),
            ..audit::Event::new(ctx.new_uuid(), EventType::AuthMfaRequired)
        };
        scope.batch(&db, vec![event.insert(rq)?]).await?;
        return Reply::ok(SecondStep {
            mfa_required: true,
            purpose: purpose.as_str(),
            challenge_token: challenge,
            challenge_expires_in: mfa::CHALLENGE_TTL_SECS,
            methods: match purpose {
                Purpose::Verify => &["totp", "recovery_code"],
                Purpose::Enroll => &["enroll"],
            },
        });
    }
    signing_in::token_reply(ctx, rq, &user, role, json!({}), None).await
}

/// What the password step answers when a second factor is due: no
/// session, a challenge for `POST /api/auth/mfa/verify` (or, to enrol,
/// `/api/auth/mfa/enroll` and `/confirm`).
#[derive(serde::Serialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = LoginSecondStep)
)]
#[serde(rename_all = "camelCase")]
struct SecondStep {
    /// Always `true`.
    mfa_required: bool,
    /// `verify` or `enroll`.
    #[cfg_attr(feature = "openapi", schema(value_type = ChallengePurpose))]
    purpose: &'static str,
    /// The challenge to give the next step (`challengeToken`); a signed
    /// token, not a session.
    challenge_token: String,
    /// Seconds the challenge is valid (300).
    challenge_expires_in: i64,
    /// How the next step may prove the second factor: `totp` and
    /// `recovery_code` for `verify`, `enroll` for `enroll`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<SecondStepMethod>))]
    methods: &'static [&'static str],
}

/// What a login answers: its tokens, or the challenge of a second step.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum LoginAnswer {
    /// Signed in: a session opened.
    Tokens(crate::auth::tokens::TokenReply),
    /// A second factor is due: no session yet.
    SecondStep(SecondStep),
}

/// What a second-step challenge is for.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum ChallengePurpose {
    /// Give a code of the confirmed factor, or a recovery code
    /// (`POST /api/auth/mfa/verify`).
    Verify,
    /// Set up a factor first (`POST /api/auth/mfa/enroll`, then `/confirm`).
    Enroll,
}

/// A way to pass the second step.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum SecondStepMethod {
    /// The authenticator's current code.
    Totp,
    /// One of the single-use recovery codes.
    RecoveryCode,
    /// Enrol a factor.
    Enroll,
}

async fn record_failure<P: Platform>(
    ctx: &Ctx<P>,
    rq: &Rq,
    organization_id: Option<uuid::Uuid>,
    user_id: Option<uuid::Uuid>,
    reason: &str,
) -> Result<(), ApiError> {
    let event = signing_in::failure_event(ctx, organization_id, user_id, reason);
    audit::store(ctx, rq, &event).await?;
    Ok(())
}
