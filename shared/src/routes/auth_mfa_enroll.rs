//! `POST /api/auth/mfa/enroll`: starts setting up a TOTP second factor.
//!
//! Signed in, with `{password}` (re-authentication: whoever holds a
//! browser left open must not bind their own authenticator); or, at a
//! login the organization requires a second factor for, with
//! `{challengeToken}` (the password step's `enroll` challenge). The answer
//! is the key, as base32 to type in and as an `otpauth://` URI for a QR
//! code; the factor counts only once `POST /api/auth/mfa/confirm` gets a
//! first code from it. A pending enrolment is replaced; a confirmed factor
//! must be removed first (`409`). Audited (`MFA_ENROLMENT_STARTED`).

use serde::{Deserialize, Serialize};

use super::signing_in;
use crate::audit::{self, EventType};
use crate::auth::mfa;
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Id, Scope, second_factor};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    POST => enroll,
}

/// Either `password` (signed in) or `challengeToken` (at a login), not both.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaEnrollInput))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    /// Signed in: the caller's password, again.
    password: Option<String>,
    /// At a login: the `enroll` challenge of `POST /api/auth/login`.
    challenge_token: Option<String>,
}

/// The new key, for the authenticator.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaEnrolment))]
#[serde(rename_all = "camelCase")]
struct Enrolment {
    /// The key in base32, to type in.
    secret: String,
    /// The `otpauth://totp/...` URI, for a QR code.
    otpauth_uri: String,
    issuer: &'static str,
    /// Always `SHA1`.
    algorithm: &'static str,
    /// Always 6.
    digits: u32,
    /// Seconds a code lasts.
    period: i64,
}

/// Start setting up a TOTP second factor
///
/// Two ways in: signed in (an access token, not an API key), with
/// `{password}` again; or at a login whose role must have a factor, with
/// `{challengeToken}` (the `enroll` challenge of `POST /api/auth/login`;
/// no other credential). The answer is a new key (base32 and an
/// `otpauth://` URI); it counts only once `POST /api/auth/mfa/confirm`
/// gets a first code from it. A pending enrolment is replaced; with a
/// factor already confirmed it is `409` (remove it first). A wrong password
/// is `401` and counts toward the lockout (rate limited per client address
/// and user). Audited (`MFA_ENROLMENT_STARTED`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/mfa/enroll",
    security((), ("bearerAuth" = [])),
    request_body = Input,
    responses(
        (status = 200, description = "The key to add to the authenticator", body = Enrolment),
        (status = 400, description = "Both `password` and `challengeToken`, signed in without `password`, or called with an API key (`VALIDATION_ERROR`)"),
        (status = 401, description = "Wrong password, an inactive or locked account (`AUTH_INVALID_CREDENTIALS`), or a rejected or expired challenge (`AUTH_TOKEN_INVALID`, `AUTH_TOKEN_EXPIRED`)"),
        (status = 409, description = "A second factor is already in force"),
    )))]
async fn enroll<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: Input = rq.json(ctx)?;
    if input.password.is_some() && input.challenge_token.is_some() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "challengeToken",
            "Give either your password (signed in) or the login's challenge, not both",
        )]));
    }
    let (user, _) = signing_in::enrolling(
        ctx,
        rq,
        signing_in::Again::Password(input.password.as_deref()),
        input.challenge_token.as_deref(),
    )
    .await?;
    let scope = Scope::account(user.organization_id);
    let (sealed, enrolment) = mfa::new_key(ctx, user.id, &user.email)?;
    let event = audit::Event {
        organization_id: Some(user.organization_id),
        user_id: Some(user.id),
        record_id: Some(user.id),
        ..audit::Event::new(ctx.new_uuid(), EventType::MfaEnrolmentStarted)
    };
    let begun: Option<Id> = scope
        .fetch_optional(
            &ctx.db(),
            event.record_change(rq, second_factor::begin(&scope, user.id, &sealed))?,
        )
        .await?;
    begun.ok_or_else(|| {
        ApiError::conflict(
            "A second factor is already set up; remove it (DELETE /api/auth/mfa) before setting up another",
        )
    })?;
    Reply::ok(Enrolment {
        secret: enrolment.secret_base32,
        otpauth_uri: enrolment.otpauth_uri,
        issuer: crate::auth::second_factor::ISSUER,
        algorithm: "SHA1",
        digits: 6,
        period: crate::auth::second_factor::STEP_SECS,
    })
}
