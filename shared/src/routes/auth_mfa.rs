//! `/api/auth/mfa`: the signed-in user's second factor.
//!
//! `GET`: whether one is set up (or waiting to be confirmed), how many
//! recovery codes are left, and whether the organization requires one for
//! the user's role. `DELETE {password, code}` removes it (the password and
//! a current code, or a recovery code, given again); refused (`409`) when
//! the organization requires one for the role, so ask an administrator.
//! Audited (`MFA_DISABLED`).

use serde::{Deserialize, Serialize};

use crate::audit::{self, EventType};
use crate::auth::second_factor::recovery_code_hash;
use crate::auth::{self, mfa, password};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{Id, Scope, first_row, second_factor, user};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => status,
    DELETE => remove,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaStatus))]
#[serde(rename_all = "camelCase")]
struct Status {
    /// A confirmed factor is in force.
    enabled: bool,
    /// An enrolment waits for its first code (`POST /api/auth/mfa/confirm`).
    pending: bool,
    /// Unused recovery codes.
    recovery_codes_left: i64,
    /// The organization requires a second factor for the user's role.
    required_for_your_role: bool,
}

/// The caller's second factor
///
/// Any signed-in user (or API key, for its user): whether a factor is in
/// force or waiting to be confirmed, how many recovery codes are left, and
/// whether the organization requires one for the user's role.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/auth/mfa",
    responses((status = 200, description = "The second factor's state", body = Status))))]
async fn status<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let status = second_factor::status(
        &ctx.db(),
        &principal.scope(),
        principal.user_id,
        principal.role.as_str(),
    )
    .await?;
    Reply::ok(Status {
        enabled: status.enabled,
        pending: status.pending,
        recovery_codes_left: status.recovery_codes_left,
        required_for_your_role: status.required,
    })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaRemoval))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Removal {
    /// The caller's password, again.
    password: String,
    /// The authenticator's current code (for a factor in force: this or
    /// `recoveryCode`).
    code: Option<String>,
    /// One of the unused recovery codes, instead of `code`; it is spent.
    recovery_code: Option<String>,
}

/// Remove the caller's second factor
///
/// Any signed-in user. Re-authentication: the password and, for a factor in
/// force, the current code or a recovery code (a pending enrolment needs
/// only the password). Rate limited (authentication class) per client
/// address and user; a wrong password or code is `401` and counts toward
/// the account's lockout like a failed login. `404` when there is no
/// factor; `409` when the organization requires one for the user's role
/// (an administrator can reset it: `DELETE /api/v1/users/{id}/mfa`). The
/// recovery codes go too. Audited (`MFA_DISABLED`).
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/api/auth/mfa",
    request_body = Removal,
    responses(
        (status = 200, description = "The factor is removed", body = Removed),
        (status = 400, description = "No code given for a factor in force (`VALIDATION_ERROR`)"),
        (status = 401, description = "Wrong password, or a wrong, used or expired code (`AUTH_INVALID_CREDENTIALS`)"),
        (status = 404, description = "No second factor is set up"),
        (status = 409, description = "The organization requires a second factor for the caller's role"),
        (status = 429, description = "Too many attempts (`RATE_LIMIT_EXCEEDED`)"),
    )))]
async fn remove<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    let input: Removal = rq.json(ctx)?;
    let scope = Scope::account(principal.organization_id);
    let db = ctx.db();
    super::signing_in::reauth_limit(ctx, rq, &scope, principal.user_id).await?;
    let user = user::account(&db, &scope, principal.user_id)
        .await?
        .ok_or(ApiError::TokenInvalid("session ended"))?;
    let factor = second_factor::load(&db, &scope, user.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let policy = second_factor::policy(&db, &scope).await?;
    if factor.confirmed && policy.required_roles.contains(&user.role) {
        return Err(ApiError::conflict(
            "Your organization requires a second factor for your role; an administrator can reset it if you lost it",
        ));
    }
    // Re-authentication: the password and, for a factor in force, a code.
    let failure = |reason| {
        super::signing_in::failure_event(ctx, Some(user.organization_id), Some(user.id), reason)
    };
    if !password::verify(&input.password, &user.password_hash) {
        super::signing_in::count_failure(
            ctx,
            rq,
            &user,
            failure("wrong password (second factor removal)"),
        )
        .await?;
        return Err(ApiError::InvalidCredentials);
    }
    if factor.confirmed {
        let proven = match (input.code.as_deref(), input.recovery_code.as_deref()) {
            (Some(code), _) => mfa::spend_code(ctx, &scope, user.id, &factor, code).await?,
            (None, Some(code)) => {
                let spend =
                    second_factor::use_recovery_code(&scope, user.id, &recovery_code_hash(code));
                let spent: Option<Id> = scope.fetch_optional(&db, spend).await?;
                spent.is_some()
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "code",
                    "Give the current code of your authenticator (or a recovery code) to remove it",
                ));
            }
        };
        if !proven {
            super::signing_in::count_failure(
                ctx,
                rq,
                &user,
                failure("wrong or used second-factor code (removal)"),
            )
            .await?;
            return Err(ApiError::SecondFactorRefused);
        }
    }
    let event = audit::Event {
        record_id: Some(user.id),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::MfaDisabled, user.id)
    };
    let statements = vec![
        event.record_change(rq, second_factor::remove(&scope, user.id))?,
        second_factor::remove_recovery_codes(&scope, user.id),
    ];
    let results = scope.batch(&db, statements).await?;
    first_row::<Id>(&results, 0)?.ok_or(ApiError::NotFound)?;
    Reply::ok(Removed { enabled: false })
}

/// The factor is gone.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaRemoved))]
struct Removed {
    /// Always `false`.
    enabled: bool,
}
