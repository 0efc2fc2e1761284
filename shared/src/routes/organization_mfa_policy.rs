//! `/api/v1/organization/mfa-policy` (`users:manage`): which roles must
//! sign in with a second factor. `GET` reads it; `PUT {requiredRoles}`
//! replaces it, audited with the old and new roles
//! (`MFA_POLICY_CHANGED`). A member of a required role without a factor is
//! asked to set one up at their next login (the password step's `enroll`
//! challenge); sessions already open stay open.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, EventType};
use crate::auth::{self, Permission, Role};
use crate::ctx::Ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, FieldError};
use crate::model::second_factor;
use crate::platform::Platform;
use crate::request::Rq;

super::methods! {
    GET => read,
    PUT => replace,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaPolicy))]
#[serde(rename_all = "camelCase")]
struct PolicyView {
    /// The roles whose members must sign in with a second factor.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Role>))]
    required_roles: Vec<String>,
}

/// The organization's second-factor policy
///
/// Requires `users:manage`: the roles that must sign in with a second
/// factor.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/api/v1/organization/mfa-policy",
    responses((status = 200, description = "The policy", body = PolicyView))))]
async fn read<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let policy = second_factor::policy(&ctx.db(), &principal.scope()).await?;
    Reply::ok(PolicyView {
        required_roles: policy.required_roles,
    })
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = MfaPolicyInput))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    /// The roles that must have a second factor (the whole list; empty:
    /// none).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Role>))]
    required_roles: Vec<String>,
}

/// Replace the organization's second-factor policy
///
/// Requires `users:manage`. Replaces the list of roles that must sign in
/// with a second factor (duplicates dropped, sorted). A member of a
/// required role without a factor is asked to set one up at their next
/// login; sessions already open stay open. `409` when another change
/// landed while this one was made (read the policy again). Audited
/// (`MFA_POLICY_CHANGED`, with the old and new roles).
#[cfg_attr(feature = "openapi", utoipa::path(put, path = "/api/v1/organization/mfa-policy",
    request_body = Input,
    responses(
        (status = 200, description = "The policy as it is now", body = PolicyView),
        (status = 400, description = "Not a role (`VALIDATION_ERROR`)"),
        (status = 409, description = "The policy changed meanwhile"),
    )))]
async fn replace<P: Platform>(ctx: &Ctx<P>, rq: &mut Rq) -> Result<Reply, ApiError> {
    let principal = auth::authenticate(ctx, rq).await?;
    principal.require(Permission::UsersManage)?;
    let input: Input = rq.json(ctx)?;
    let mut roles = Vec::new();
    let mut problems = Vec::new();
    for raw in &input.required_roles {
        match Role::parse(raw) {
            Some(role) if !roles.contains(&role.as_str().to_owned()) => {
                roles.push(role.as_str().to_owned());
            }
            Some(_) => {}
            None => problems.push(FieldError::new(
                "requiredRoles",
                format!("{raw} is not a role"),
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    roles.sort();
    let scope = principal.scope();
    let db = ctx.db();
    let old = second_factor::policy(&db, &scope).await?;
    let event = audit::Event {
        old_values: Some(json!({ "requiredRoles": old.required_roles })),
        new_values: Some(json!({ "requiredRoles": roles })),
        ..audit::Event::by(
            ctx.new_uuid(),
            &principal,
            EventType::MfaPolicyChanged,
            principal.organization_id,
        )
    };
    // Only over the policy just read: a change made meanwhile is not
    // overwritten unseen, and the event's old roles are the true ones.
    let changed: Option<second_factor::Policy> = scope
        .fetch_optional(
            &db,
            event.record_change(
                rq,
                second_factor::set_policy(&scope, &old.required_roles, &roles),
            )?,
        )
        .await?;
    changed.ok_or_else(|| {
        ApiError::conflict(
            "The policy was changed meanwhile; read it again and reapply your change",
        )
    })?;
    Reply::ok(PolicyView {
        required_roles: roles,
    })
}
