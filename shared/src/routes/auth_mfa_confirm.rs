//! `POST /api/auth/mfa/confirm`: `{code}` from the authenticator puts the
//! pending second factor in force and issues ten single-use recovery codes,
//! shown this once. Signed in; or with `{challengeToken, code}` at a login
//! the organization requires a second factor for, which then signs in
//! (the answer is the login's, with `recoveryCodes`). A wrong code changes nothing
//! (`400`, try the current one). Audited (`MFA_ENABLED`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{Role, mfa};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{Id, Scope, first_row, second_factor};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    POST => confirm,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaConfirmInput))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    /// The six digits the authenticator shows.
    code: String,
    /// At a login: the `enroll` challenge of `POST /api/auth/login`
    /// (then confirming signs in); left out when signed in.
    challenge_token: Option<String>,
}

/// Confirm the pending second factor with a first code
///
/// Puts the factor started at `POST /api/auth/mfa/enroll` in force and
/// issues ten single-use recovery codes, shown this once. Signed in (an
/// access token, not an API key): the answer is `{enabled, recoveryCodes}`.
/// With `{challengeToken, code}` at a login (the `enroll` challenge): the
/// login completes, and the answer is its tokens (`TokenReply`, with
/// `recoveryCodes`) and the httpOnly `antevus_refresh` cookie. A code that
/// is not the authenticator's current one changes nothing (`400` on
/// `code`); `409` when no enrolment is pending, or it was confirmed or
/// replaced meanwhile. Audited (`MFA_ENABLED`; at a login also
/// `AUTH_LOGIN_SUCCESS`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/mfa/confirm",
    security((), ("bearerAuth" = [])),
    request_body = Input,
    responses(
        (status = 200, description = "The factor is in force: its recovery codes, or (at a login) the tokens with them", body = MfaConfirmAnswer,
            headers(("Set-Cookie" = String, description = "Only at a login (with tokens): `antevus_refresh=<refreshToken>; Path=/api/auth; Max-Age=<refreshExpiresIn>; HttpOnly; Secure; SameSite=Strict`"))),
        (status = 400, description = "Not a current code, or called with an API key (`VALIDATION_ERROR`)"),
        (status = 401, description = "An inactive or locked account (`AUTH_INVALID_CREDENTIALS`), or a rejected or expired challenge (`AUTH_TOKEN_INVALID`, `AUTH_TOKEN_EXPIRED`)"),
        (status = 409, description = "No enrolment is pending, or it changed meanwhile"),
    )))]
async fn confirm<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: Input = rq.json(ctx)?;
    if !crate::auth::second_factor::looks_like_code(input.code.trim()) {
        return Err(ApiError::invalid(
            "code",
            "Enter the six digits your authenticator shows",
        ));
    }
    // Signed in, confirming needs no password again: the enrolment did.
    let (user, by_challenge) = super::signing_in::enrolling(
        ctx,
        rq,
        super::signing_in::Again::Nothing,
        input.challenge_token.as_deref(),
    )
    .await?;
    let scope = Scope::account(user.organization_id);
    let db = ctx.db();
    let pending = second_factor::load(&db, &scope, user.id)
        .await?
        .filter(|f| !f.confirmed)
        .ok_or_else(|| {
            ApiError::conflict(
                "No second factor is waiting to be confirmed; start with POST /api/auth/mfa/enroll",
            )
        })?;
    let step = mfa::step_of(ctx, user.id, &pending, &input.code)?.ok_or_else(|| {
        ApiError::invalid(
            "code",
            "Not the current code of the authenticator you set up; check its clock and try the next code",
        )
    })?;
    let (codes, hashes) = mfa::recovery_codes(ctx);
    let event = audit::Event {
        organization_id: Some(user.organization_id),
        user_id: Some(user.id),
        record_id: Some(user.id),
        metadata: json!({ "recoveryCodes": codes.len() }),
        ..audit::Event::new(ctx.new_uuid(), EventType::MfaEnabled)
    };
    let mut statements =
        vec![event.record_change(rq, second_factor::confirm(&scope, user.id, step))?];
    statements.extend(second_factor::issue_recovery_codes(
        &scope, user.id, &hashes,
    ));
    let results = scope.batch(&db, statements).await?;
    first_row::<Id>(&results, 0)?.ok_or_else(|| {
        ApiError::conflict("The second factor was confirmed or replaced meanwhile; sign in again")
    })?;
    if !by_challenge {
        return Reply::ok(Confirmed {
            enabled: true,
            recovery_codes: codes,
        });
    }
    let role = Role::parse(&user.role).ok_or_else(|| ApiError::internal("unknown role"))?;
    super::signing_in::token_reply(
        ctx,
        rq,
        &user,
        role,
        json!({ "secondFactor": "totp", "enrolled": true }),
        Some(codes),
    )
    .await
}

/// The factor in force, and its recovery codes (shown this once).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaConfirmed))]
#[serde(rename_all = "camelCase")]
struct Confirmed {
    /// Always `true`.
    enabled: bool,
    /// Ten single-use codes that stand for a code of the authenticator
    /// (shown this once: keep them safe).
    recovery_codes: Vec<String>,
}

/// What a confirmation answers: signed in, the recovery codes; at a login,
/// the login's tokens (with `recoveryCodes`).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum MfaConfirmAnswer {
    /// Signed in: the factor is in force.
    Confirmed(Confirmed),
    /// At a login: the session opened.
    Tokens(crate::auth::tokens::TokenReply),
}
