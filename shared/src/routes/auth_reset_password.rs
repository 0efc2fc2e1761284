//! `POST /api/auth/reset-password`: `{token, password}`. The token is spent,
//! the password replaced, the lockout cleared and every session of the user
//! ended, all in one statement; then audited. An unknown, used or expired
//! token is a `400` on `token`.

use serde::{Deserialize, Serialize};

use crate::audit::{self, EventType};
use crate::auth::{password, policy};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, password_reset};
use crate::platform::Platform;
use crate::ratelimit::Class;
use crate::request::Rq;

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ResetPasswordInput))]
#[serde(deny_unknown_fields)]
struct Input {
    /// The token of the mailed link (`pr_...`).
    token: String,
    /// The new password: 8 to 128 characters, not a common one.
    password: String,
}

/// The answer of a reset.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct PasswordReset {
    /// Always `true`.
    password_reset: bool,
}

super::methods! {
    POST => reset,
}

fn invalid_token() -> ApiError {
    ApiError::invalid(
        "token",
        "The reset link is invalid or has expired; ask for a new one",
    )
}

/// Set a new password with a reset link
///
/// Public (the link's token is the credential); rate limited
/// (authentication class) per client address. Spends the token, replaces
/// the password, clears the lockout and ends every session of the user, at
/// once; then the user signs in with the new password. An unknown, used or
/// expired token (or an account deactivated since) is `400` on `token`.
/// Audited (`AUTH_PASSWORD_RESET`).
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/api/auth/reset-password", security(()),
    request_body = Input,
    responses(
        (status = 200, description = "The password is replaced", body = PasswordReset),
        (status = 400, description = "An invalid or expired token, or a password the policy refuses (`VALIDATION_ERROR`)"),
        (status = 429, description = "Too many requests (`RATE_LIMIT_EXCEEDED`)"),
    )))]
async fn reset<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let input: Input = rq.json(ctx)?;
    let mut problems = Vec::new();
    let token_ok = input.token.len() == 46 && input.token.starts_with("pr_");
    if !token_ok {
        problems.push(FieldError::new(
            "token",
            "The reset link is invalid or has expired; ask for a new one",
        ));
    }
    if let Err(message) = policy::check(&input.password) {
        problems.push(FieldError::new("password", message));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    crate::ratelimit::check(
        ctx,
        rq,
        Class::Auth,
        &format!("reset:{}", rq.client_key()),
        None,
    )
    .await?;
    let hash =
        password::hash(&input.password, ctx.random_bytes::<16>()).map_err(ApiError::internal)?;
    let token_hash = crate::auth::session::token_hash(&input.token);
    let db = ctx.db();
    // Whose link it is (the event names the organization), then the reset
    // and its record in one statement: a link spent meanwhile changes
    // nothing and records nothing.
    let owner = password_reset::reset_token_owner(&db, &token_hash)
        .await?
        .ok_or_else(invalid_token)?;
    let event = audit::Event {
        organization_id: Some(owner.organization_id),
        user_id: Some(owner.id),
        record_id: Some(owner.id),
        ..audit::Event::new(ctx.new_uuid(), EventType::AuthPasswordReset)
    };
    let scope = Scope::account(owner.organization_id);
    let reset: Option<password_reset::Reset> = scope
        .fetch_optional(
            &db,
            event.record_change(rq, password_reset::use_reset_token(&token_hash, &hash))?,
        )
        .await?;
    reset.ok_or_else(invalid_token)?;
    Reply::ok(PasswordReset {
        password_reset: true,
    })
}
