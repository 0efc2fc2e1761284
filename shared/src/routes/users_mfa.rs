//! `DELETE /api/v1/users/:id/mfa` (`users:manage`): an administrator
//! removes a user's second factor (a lost phone) with a `reason`, kept in
//! the trail (`MFA_RESET`). The user signs in with their password again
//! and, where the organization requires a factor for their role, sets up a
//! new one at once. An admin cannot reset a super admin's; no one resets
//! their own this way (`DELETE /api/auth/mfa` is for that).

use serde::Deserialize;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission, Role};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::ApiError;
use crate::model::{Id, first_row, second_factor, user};
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    DELETE => reset,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaResetInput))]
#[serde(deny_unknown_fields)]
struct Input {
    /// Why (1 to 1000 characters); kept in the audit trail.
    reason: String,
}

/// Reset a user's second factor
///
/// Requires `users:manage`; only a super admin resets a super admin's. For
/// a user who lost their authenticator: their factor and recovery codes are
/// removed; they sign in with their password again and, where the
/// organization requires a factor for their role, set up a new one at
/// once. Not for the caller's own factor (`400`: use `DELETE
/// /api/auth/mfa`). `409` when the user has none. Audited (`MFA_RESET`,
/// with the reason).
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/api/v1/users/{id}/mfa",
    params(("id" = uuid::Uuid, Path, description = "The user")),
    request_body = Input,
    responses(
        (status = 200, description = "The factor is removed", body = Reset),
        (status = 400, description = "No reason, or the caller's own user (`VALIDATION_ERROR`)"),
        (status = 403, description = "A super admin's, reset by someone else (`AUTH_INSUFFICIENT_PERMISSIONS`)"),
        (status = 404, description = "No such user in the organization"),
        (status = 409, description = "The user has no second factor"),
    )))]
async fn reset<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let id = rq.uuid_param("id")?;
    let input: Input = rq.json(ctx)?;
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(ApiError::invalid(
            "reason",
            "Say why the second factor is reset (1 to 1000 characters); it is kept in the audit trail",
        ));
    }
    let scope = principal.scope();
    let db = ctx.db();
    let target = user::get(&db, &scope, id).await?;
    if target.id == principal.user_id {
        return Err(ApiError::invalid(
            "id",
            "Remove your own second factor with DELETE /api/auth/mfa (your password and a code)",
        ));
    }
    if target.role == Role::SuperAdmin && principal.role != Role::SuperAdmin {
        return Err(ApiError::Forbidden {
            caller: Some(principal.caller()),
        });
    }
    let event = audit::Event {
        reason: Some(reason),
        ..audit::Event::by(ctx.new_uuid(), &principal, EventType::MfaReset, id)
    };
    let results = scope
        .batch(
            &db,
            vec![
                event.record_change(rq, second_factor::remove(&scope, id))?,
                second_factor::remove_recovery_codes(&scope, id),
            ],
        )
        .await?;
    first_row::<Id>(&results, 0)?
        .ok_or_else(|| ApiError::conflict("This user has no second factor"))?;
    Reply::ok(Reset {
        user_id: id,
        mfa_reset: true,
    })
}

/// Whose factor was reset.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaReset))]
#[serde(rename_all = "camelCase")]
struct Reset {
    user_id: uuid::Uuid,
    /// Always `true`.
    mfa_reset: bool,
}
