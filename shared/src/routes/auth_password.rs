//! `PUT /api/auth/password`: a signed-in user changes their own password,
//! giving the current one. The new one must pass the password policy; the
//! change ends every other login of the user (this one stays), clears a
//! lockout, and is audited in the same batch. A wrong current password is
//! `401` and counts toward the account's lockout like a failed login.

use serde::{Deserialize, Serialize};

use super::signing_in;
use crate::audit::{self, EventType};
use crate::auth::{self, password, policy};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::{Scope, session, user};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    PUT => change,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = PasswordChangeInput))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    /// The password in use now.
    current_password: String,
    /// The new password (the policy: `docs/` and the `400` details say
    /// what it lacks).
    new_password: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
struct PasswordChanged {
    /// Always `true`.
    password_changed: bool,
}

/// Change the caller's password
///
/// Any signed-in user, with an access token (an API key has no password).
/// Re-authentication with the current password; rate limited
/// (authentication class) per client address and user. Every other login
/// of the user ends; this one goes on. Audited (`AUTH_PASSWORD_CHANGED`).
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/api/auth/password",
    request_body = Input,
    responses(
        (status = 200, description = "Changed; the other logins ended", body = PasswordChanged),
        (status = 400, description = "The new password fails the policy, or equals the current one, or the caller is an API key (`VALIDATION_ERROR`)"),
        (status = 401, description = "The current password is wrong (`AUTH_INVALID_CREDENTIALS`)"),
        (status = 429, description = "Too many attempts (`RATE_LIMIT_EXCEEDED`)"),
    )))]
async fn change<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let session_id = principal.session_id.ok_or_else(|| {
        ApiError::invalid(
            "authorization",
            "An API key has no password; sign in to change yours",
        )
    })?;
    let input: Input = rq.json(ctx)?;
    let mut problems = Vec::new();
    if input.current_password.is_empty() {
        problems.push(FieldError::new(
            "currentPassword",
            "Enter your current password",
        ));
    }
    if let Err(message) = policy::check(&input.new_password) {
        problems.push(FieldError::new("newPassword", message));
    } else if input.new_password == input.current_password {
        problems.push(FieldError::new(
            "newPassword",
            "Choose a password different from the current one",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let scope = Scope::account(principal.organization_id);
    super::signing_in::reauth_limit(ctx, rq, &scope, principal.user_id).await?;
    let db = ctx.db();
    let account = user::account(&db, &scope, principal.user_id)
        .await?
        .ok_or(ApiError::TokenInvalid("session ended"))?;
    if !password::verify(&input.current_password, &account.password_hash) {
        let failure = signing_in::failure_event(
            ctx,
            Some(account.organization_id),
            Some(account.id),
            "wrong password (password change)",
        );
        signing_in::count_failure(ctx, rq, &account, failure).await?;
        return Err(ApiError::InvalidCredentials);
    }
    let hash = password::hash(&input.new_password, ctx.random_bytes::<16>())
        .map_err(ApiError::internal)?;
    let event = audit::Event::by(
        ctx.new_uuid(),
        &principal,
        EventType::AuthPasswordChanged,
        account.id,
    );
    let owner = principal.scope();
    owner
        .batch(
            &db,
            vec![
                user::set_password(&owner, account.id, &hash),
                session::end_others_of(
                    &owner,
                    account.id,
                    session_id,
                    session::Ending::PasswordChanged,
                ),
                event.insert(rq)?,
            ],
        )
        .await?;
    Reply::ok(PasswordChanged {
        password_changed: true,
    })
}
